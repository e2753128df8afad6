"""The tutorials and figures in notebooks.

The tutorials themselves (``notebooks/*.ipynb``) are executed by a Jupyter kernel (nbclient, through myst-nb) when the
documentation site is built, which CI does in strict mode after the tests (``.ci/run``): a cell that fails fails the
build, and the site shows every output and figure. Run one alone with ``jupyter execute notebooks/NAME.ipynb``."""


def test_annostat_figures_leave_a_notebooks_inline_backend():
    """annostat writes its figures to files on Agg, but in a notebook (the inline backend) it keeps the backend, so
    the reader's own figures still show after annostat wrote one."""
    import os
    import subprocess
    import sys

    code = "import matplotlib; from annostat.figures import pyplot; plt = pyplot(); print(matplotlib.get_backend())"
    inline = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "MPLBACKEND": "module://matplotlib_inline.backend_inline"},
    )
    assert "inline" in inline.stdout
    plain = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={k: v for k, v in os.environ.items() if k != "MPLBACKEND"},
    )
    assert plain.stdout.strip().lower() == "agg"
