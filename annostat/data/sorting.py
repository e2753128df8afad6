"""Sorting helpers shared by the votes table and the EM kernels."""

from __future__ import annotations

import numpy as np
import polars as pl


def argsort_distinct(keys: np.ndarray) -> np.ndarray:
    """Argsort of distinct int64 keys: polars' multithreaded sort (stability is moot when keys are distinct).

    Make keys distinct, and the order deterministic, by folding in the row index: ``key * n + arange(n)``.
    """
    if len(keys) < 2 or bool((keys[1:] > keys[:-1]).all()):  # already in order (e.g. votes sorted by subject)
        return np.arange(len(keys), dtype=np.int64)
    return pl.Series(keys).arg_sort().to_numpy()


def first_of_each(keys: np.ndarray, last: bool = False) -> np.ndarray:
    """For each entry, whether it is the first (``last``: the last) entry with its key, in array order.

    By a stable multithreaded sort (polars) and a comparison of neighbours: at 10M int64 keys ~1.4 s on 2 cores,
    where a hash pass (``is_first_distinct``) takes ~2.4 s."""
    n = len(keys)
    if n == 0:
        return np.zeros(0, bool)
    order = stable_argsort(keys)
    ordered = keys[order]
    boundary = np.empty(n, bool)
    if last:
        boundary[-1] = True
        np.not_equal(ordered[:-1], ordered[1:], out=boundary[:-1])
    else:
        boundary[0] = True
        np.not_equal(ordered[1:], ordered[:-1], out=boundary[1:])
    mark = np.empty(n, bool)
    mark[order] = boundary
    return mark


def stable_argsort(keys: np.ndarray) -> np.ndarray:
    """Stable argsort (ties in array order) by polars' multithreaded sort, as uint32 positions (fewer than 2**32
    keys): no int64 composite key, so memory stays at the keys' own size plus the positions. Keys already in order
    (e.g. votes sorted by subject) are not sorted."""
    if len(keys) < 2 or bool((keys[1:] >= keys[:-1]).all()):
        return np.arange(len(keys), dtype=np.int64)
    return pl.DataFrame({"key": keys}).with_row_index("at").sort("key", maintain_order=True)["at"].to_numpy()
