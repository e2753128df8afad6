"""Precomputed image representations in: ``annostat fit VOTES --features TABLE``.

Zoobot's papers recommend, for new questions with few labels, a small head on a pretrained network's representation
rather than a network trained from the pixels. A features table is one row per subject: an id column (``subject``,
else the first of :data:`~annostat.data.priors.ID_COLUMNS`) and either numeric columns (one feature each, e.g.
``vgg000`` ... ``vgg511`` or Zoobot's ``feat_0`` ...) or a single list/array column holding each subject's vector. CSV,
TSV or Parquet. The features are standardised (each column to mean 0 and standard deviation 1 over the table; the means
and scales are kept with the network so new subjects are scaled the same way by ``annostat predict``).

Example:
    >>> import pandas as pd
    >>> table = read_features(pd.DataFrame({"subject": [1, 2, 3], "f0": [0.0, 1.0, 2.0], "f1": [1.0, 1.0, 4.0]}))
    >>> table.values.shape, table.columns
    ((3, 2), ['f0', 'f1'])
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from annostat.data.io.tables import refuse_repeated_names
from annostat.data.priors import ID_COLUMNS
from annostat.errors import InputError, first_line


@dataclass
class FeatureTable:
    """Subjects' feature vectors: ``ids`` (as read), ``values`` [N, D] float32 (not yet standardised)."""

    ids: list[Any]
    values: np.ndarray
    columns: list[str]
    source: str

    def standardised(
        self, mean: np.ndarray | None = None, scale: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(values scaled to mean 0, sd 1, mean, scale); ``mean``/``scale`` given: those of the training table."""
        if mean is None or scale is None:
            mean = self.values.mean(axis=0)
            scale = self.values.std(axis=0)
            scale = np.where(scale > 0, scale, 1.0)
        return ((self.values - mean) / scale).astype(np.float32), mean.astype(np.float32), scale.astype(np.float32)


def read_features(table: Any, id_col: str | None = None) -> FeatureTable:
    """A features table (path or pandas/polars frame): see the module docstring. Errors name the file and column."""
    source = str(table) if isinstance(table, (str, os.PathLike)) else "<data frame>"
    frame = _read(table, source)
    frame = frame.drop([c for c in frame.columns if c.startswith("__index_level_")])  # pandas' saved index
    if id_col is None:
        id_col = next((c for c in ID_COLUMNS if c in frame.columns), None)
        if id_col is None:
            raise InputError(f"{source}: no id column (expected one of {', '.join(ID_COLUMNS)}, or --features-id-col)")
    elif id_col not in frame.columns:
        raise InputError(f"{source}: no id column {id_col!r}")
    ids = frame[id_col]
    if ids.null_count():
        row = int(np.flatnonzero(ids.is_null().to_numpy())[0]) + 1
        raise InputError(f"{source}, row {row}, column {id_col!r}: no subject id")
    if ids.is_duplicated().any():
        dup = ids.filter(ids.is_duplicated())[0]
        raise InputError(f"{source}, column {id_col!r}: subject {dup!r} has more than one row")
    rest = [c for c in frame.columns if c != id_col]
    lists = [c for c in rest if isinstance(frame[c].dtype, (pl.List, pl.Array))]
    if lists:
        if len(rest) != 1:
            raise InputError(f"{source}, column {lists[0]!r}: a vector column must be the only column beside the id")
        column = frame[lists[0]]
        lengths = column.list.len() if isinstance(column.dtype, pl.List) else None
        if lengths is not None and (lengths.n_unique() != 1 or lengths.null_count()):
            row = int(np.flatnonzero((lengths != lengths[0]).fill_null(True).to_numpy())[0]) + 1
            raise InputError(f"{source}, row {row}, column {lists[0]!r}: vectors of different lengths")
        try:
            values = np.asarray(column.to_list(), np.float32)
        except (TypeError, ValueError):
            raise InputError(f"{source}, column {lists[0]!r}: not a vector of numbers") from None
        columns = [f"{lists[0]}[{i}]" for i in range(values.shape[1])]
    else:
        if not rest:
            raise InputError(f"{source}: no feature columns beside {id_col!r}")
        for c in rest:
            if not frame[c].dtype.is_numeric():
                raise InputError(f"{source}, column {c!r}: not numeric ({frame[c].dtype}); features are numbers")
        values = frame.select(rest).to_numpy().astype(np.float32)
        columns = rest
    bad = ~np.isfinite(values)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise InputError(f"{source}, row {row + 1}, column {columns[col]!r}: not a finite number")
    return FeatureTable(ids.to_list(), values, columns, source)


def _read(table: Any, source: str) -> pl.DataFrame:
    if isinstance(table, pl.DataFrame):
        return table
    if not isinstance(table, (str, os.PathLike)):
        return pl.from_pandas(table)
    path = Path(table)
    if not path.is_file():
        raise InputError(f"{path}: features table not found")
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            return pl.read_parquet(path, glob=False)
        separator = "\t" if path.suffix.lower() == ".tsv" else ","
        refuse_repeated_names(path, separator)
        return pl.read_csv(path, separator=separator, infer_schema_length=None, glob=False)
    except Exception as exc:  # noqa: BLE001 - polars and pyarrow raise several kinds
        reason = first_line(exc)
        raise InputError(f"{path}: not a readable features table ({reason})") from None
