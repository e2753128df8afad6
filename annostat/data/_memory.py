"""Allocation settings for the big numpy passes over the votes.

NumPy asks the kernel for transparent huge pages on every large array (``madvise(MADV_HUGEPAGE)``). Where the
kernel's huge-page defragmentation is set to ``madvise`` (a common server default) and memory is fragmented (a page
cache full of a 20 GB export), each such request may stall on compaction: on the project's machines a fresh 140 MB
array then took ~0.4 s to fault in instead of ~0.09 s, which made building 100M votes several times slower than the
arithmetic. The loaders switch the request off for their own duration and restore the caller's setting afterwards.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import numpy as np

F = TypeVar("F", bound=Callable)


def _setter() -> Callable[[bool], bool] | None:
    core = getattr(np, "_core", None) or getattr(np, "core", None)
    return getattr(getattr(core, "multiarray", None), "_set_madvise_hugepage", None)


@contextmanager
def plain_pages() -> Iterator[None]:
    """Within the block, large numpy arrays do not request huge pages (a no-op where NumPy cannot be told)."""
    setter = _setter()
    if setter is None:
        yield
        return
    previous = setter(False)
    try:
        yield
    finally:
        setter(previous)


def with_plain_pages(function: F) -> F:
    """Decorator form of :func:`plain_pages`."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        with plain_pages():
            return function(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
