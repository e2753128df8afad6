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
