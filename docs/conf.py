"""Sphinx configuration of annostat's documentation site.

Sphinx (with the PyData theme NumPyro and ArviZ use) rather than MkDocs: annostat's docstrings are written with
reStructuredText roles (``:class:``, ``:func:``, ``:math:``) and Google-style sections (``Args:``), which autodoc and
napoleon read as written; the Markdown pages (README sections, model cards, RESULTS.md) come in through MyST, the
tutorials through myst-nb (executed with nbclient at build time, so the site shows their outputs and figures), and
the command-line reference is generated from the typer app by typer's documentation writer.

Build: ``pip install '.[docs]' && sphinx-build -W --keep-going -n -b html docs docs/_build/html``.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

import typer
import typer.cli

import annostat
import annostat.cli

# the command-line reference, generated from the typer app by typer's own documentation writer (typer carries its
# own click, which sphinx-click does not take): every command, argument and option with its default
_command = typer.main.get_command(annostat.cli.app)
(HERE / "cli.md").write_text(
    "<!-- written by docs/conf.py from the typer app: edit the commands' help, not this file -->\n"
    + typer.cli.get_docs_for_click(
        obj=_command, ctx=typer.Context(_command, info_name="annostat"), name="annostat", title="Command-line reference"
    ),
    encoding="utf-8",
)

# the tutorials live in notebooks/; the site executes copies of them (CI's one run of them)
TUTORIALS = HERE / "tutorials"
TUTORIALS.mkdir(exist_ok=True)
for notebook in sorted((ROOT / "notebooks").glob("*.ipynb")):
    shutil.copyfile(notebook, TUTORIALS / notebook.name)

project = "annostat"
author = "The annostat developers"
copyright = "2026, The annostat developers"
version = release = annostat.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "myst_nb",
]
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
exclude_patterns = ["_build", "jupyter_execute", "**.ipynb_checkpoints"]
myst_enable_extensions = ["dollarmath", "colon_fence"]
myst_heading_anchors = 3
# the README's sections and the model cards keep their own heading levels when a page includes them
suppress_warnings = ["myst.header"]

nb_execution_mode = "force"  # every build runs the tutorials (nbclient): their outputs are the site's
nb_execution_timeout = 600
nb_execution_raise_on_error = True
nb_execution_in_temp = True  # the tutorials write their fit folders in a scratch folder, not in docs/

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "undoc-members": False, "show-inheritance": False}
napoleon_google_docstring = True
napoleon_numpy_docstring = False

# strict builds (-n -W): a reference to annostat that does not resolve fails the build; the libraries annostat takes
# and returns (numpy, pandas, polars, JAX, ...) are named in signatures without their own documentation at hand
nitpicky = True
#: library types named without their module in annotations
_BARE_NAMES = ["Path", "Any", "Callable", "Iterator", "Sequence", "Mapping", "Iterable", "Collection", "PathLike"]
_BARE_NAMES += ["ModuleType", "ndarray", "DataFrame", "Series", "Figure"]
nitpick_ignore_regex = [
    (
        r"py:.*",
        (
            r"(numpy|np|pandas|pd|polars|pl|pathlib|os|jax|jnp|flax|nnx|optax|numpyro|arviz|collections|concurrent|"
            r"typing|types|typer|matplotlib|astropy|pyarrow|h5py|az)\..*"
        ),
    ),
    (r"py:.*", "|".join(_BARE_NAMES)),
    (r"py:.*", r"annostat(\.\w+)*\._\w+"),  # private helpers named in public signatures
    (r"py:.*", r"'.*"),  # a dataclass's generated __init__ keeps its annotations as text
]


def _prose_attribute_docstring(self) -> list[str]:
    """annostat's attribute and property docstrings are prose, not napoleon's ``type: description`` line."""
    return self._consume_to_end()


from sphinx.ext.napoleon.docstring import GoogleDocstring

GoogleDocstring._parse_attribute_docstring = _prose_attribute_docstring

# the README's and model cards' links point into the repository (right on GitHub); on the site they point at its pages
_LINKS = [
    (r"\]\((?:\.\./)?models/(\w+)\.md\)", r"](/model-cards/\1.md)"),
    (r"\]\((?:\.\./)?benchmarks/RESULTS\.md\)", r"](/benchmarks.md)"),
    (r"\]\((?:\.\./)?notebooks/(\w+)\.ipynb\)", r"](/tutorials/\1.ipynb)"),
    (r"\]\((?:\.\./)?CITATION\.cff\)", r"](/citing.md)"),
    (r"\]\((?:\.\./)?CHANGELOG\.md\)", r"](/changelog.md)"),
    (r"\[([^\]]+)\]\((?:\.\./)?(?:annostat|benchmarks|tests)/[\w/.]+\)", r"\1"),  # source files: their names stay
]


def _site_links(app, relative_path, parent_docname, content) -> None:
    import re

    for pattern, replacement in _LINKS:
        content[0] = re.sub(pattern, replacement, content[0])


def setup(app) -> None:
    app.connect("include-read", _site_links)


html_theme = "pydata_sphinx_theme"
html_title = f"annostat {release}"
html_theme_options = {"navigation_depth": 2, "show_toc_level": 2}
