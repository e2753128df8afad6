"""The one figure set-up: matplotlib on its file-only backend (no screen needed), and saving a figure."""

from __future__ import annotations

from pathlib import Path


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend (figures go to files; nothing opens a window)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig, path: str | Path, dpi: int = 110, tight: bool = True) -> Path:
    """Lay out (``tight``), write ``fig`` to ``path`` and close it; returns the path."""
    if tight:
        fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    pyplot().close(fig)
    return Path(path)
