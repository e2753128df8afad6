"""The one figure set-up: matplotlib on its file-only backend (no screen needed), and saving a figure."""

from __future__ import annotations

import os
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def pyplot() -> ModuleType:
    """``matplotlib.pyplot`` on the Agg backend (figures go to files; nothing opens a window), except in a notebook,
    whose inline backend stays (annostat closes its own figures, so they are not shown there): switching it to Agg
    would stop the user's own figures from showing after any annostat call that writes one."""
    import matplotlib

    chosen = str(getattr(matplotlib.rcParams, "_get_backend_or_none", lambda: None)() or "")
    if "inline" not in chosen and "inline" not in os.environ.get("MPLBACKEND", ""):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig: Figure, path: str | Path, dpi: int = 110, tight: bool = True) -> Path:
    """Lay out (``tight``), write ``fig`` to ``path`` and close it; returns the path."""
    if tight:
        fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    pyplot().close(fig)
    return Path(path)
