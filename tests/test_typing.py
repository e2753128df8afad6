"""The package is typed for its users (PEP 561): py.typed ships, and every public function and method says the types
of its parameters and what it returns (mypy, run by CI, checks the bodies against them)."""

import ast
import importlib.resources
from pathlib import Path

import annostat

PACKAGE = Path(annostat.__file__).parent


def _unannotated(path: Path, root: Path = PACKAGE.parent) -> list[str]:
    """``path:line name (what is missing)`` for each public function or public class's method lacking annotations."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []

    def check(fn: ast.FunctionDef | ast.AsyncFunctionDef, owner: str = "") -> None:
        if fn.name.startswith("_") and fn.name not in ("__init__", "__call__"):
            return
        args = [*fn.args.posonlyargs, *fn.args.args, *fn.args.kwonlyargs, fn.args.vararg, fn.args.kwarg]
        missing = [a.arg for a in args if a is not None and a.annotation is None and a.arg not in ("self", "cls")]
        if fn.returns is None and fn.name != "__init__":
            missing.append("return")
        if missing:
            found.append(f"{path.relative_to(root)}:{fn.lineno} {owner}{fn.name} ({', '.join(missing)})")

    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            check(node)
        elif isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                    check(item, f"{node.name}.")
    return found


def test_public_functions_are_annotated():
    modules = [
        p
        for p in sorted(PACKAGE.rglob("*.py"))
        if p.name != "__main__.py" and not any(part.startswith("_") and part != "__init__.py" for part in p.parts)
    ]
    assert len(modules) > 50
    missing = [line for path in modules for line in _unannotated(path)]
    assert not missing, "public functions without annotations:\n" + "\n".join(missing)


def test_private_helpers_are_not_counted(tmp_path):
    source = tmp_path / "example.py"
    source.write_text("def public(x): pass\ndef _private(x): pass\nclass A:\n    def m(self, y: int) -> None: ...\n")
    assert _unannotated(source, tmp_path) == ["example.py:1 public (x, return)"]


def test_py_typed_ships():
    assert importlib.resources.files("annostat").joinpath("py.typed").is_file()
