"""What every benchmark records beside its figures: the versions it ran with and the machine, and one way to append a
section to ``RESULTS.md``.

    >>> "annostat" in versions()
    True
"""

from __future__ import annotations

import datetime
import os
from importlib import metadata
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
PACKAGES = ("annostat", "jax", "numpy", "pandas", "polars", "crowd-kit")


def versions(*extra: str) -> str:
    """``annostat 0.1.0, jax 0.10.2, ...`` for :data:`PACKAGES` and ``extra`` (those not installed are left out)."""
    parts = []
    for name in (*PACKAGES, *extra):
        try:
            parts.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return ", ".join(parts)


def environment(*extra: str) -> str:
    """One sentence for RESULTS.md: the date, the versions and the CPU cores this process may use."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"Measured {datetime.date.today().isoformat()} with {versions(*extra)}; {cores} CPU cores."


def markdown_table(columns: list[tuple[str, str]], rows: list[list[str]]) -> str:
    """A Markdown table: ``columns`` as (heading, ``"l"`` or ``"r"`` alignment), each row its cells as text.

    >>> print(markdown_table([("model", "l"), ("seconds", "r")], [["ds", "1.0"]]), end="")
    | model | seconds |
    |:---|---:|
    | ds | 1.0 |
    """
    rule = "|" + "|".join(":---" if align == "l" else "---:" for _, align in columns) + "|"
    lines = ["| " + " | ".join(name for name, _ in columns) + " |", rule]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def record(title: str, setup: str, figures: str, *extra: str) -> None:
    """Append a benchmark's section to RESULTS.md: what was measured (``setup``), the environment sentence (with
    the ``extra`` packages' versions), then the figures."""
    append_section(title, f"{setup} {environment(*extra)}\n\n{figures}")


def append_section(title: str, body: str) -> None:
    """Append ``## title`` and ``body`` to RESULTS.md."""
    with open(RESULTS, "a", encoding="utf-8") as handle:
        handle.write(f"\n## {title}\n\n{body.rstrip()}\n")
