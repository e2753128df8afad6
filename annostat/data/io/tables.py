"""Read long tables of votes (CSV or Parquet) into polars, with one-line errors for bad files.

CSV columns are read as text first and turned into integers only where every value reads back as the same text
(so ``0012`` stays ``"0012"`` and ids keep their original values). Parquet keeps its own types.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from annostat.errors import InputError

CSV_SUFFIXES = {".csv", ".tsv", ".txt", ".gz"}
PARQUET_SUFFIXES = {".parquet", ".pq"}


def _integer_if_lossless(column: pl.Series) -> pl.Series:
    """Cast a text column to Int64 when every non-null value is an integer written canonically."""
    ints = column.cast(pl.Int64, strict=False)
    if ints.null_count() != column.null_count():
        return column
    if not (ints.cast(pl.Utf8) == column).fill_null(True).all():
        return column
    return ints


def read_table(path: str | Path, *, separator: str | None = None) -> pl.DataFrame:
    """Read a CSV/TSV or Parquet file into a polars DataFrame.

    Raises :class:`InputError` for a missing file, an unreadable file or a table without rows.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: file not found")
    if path.is_dir():
        raise InputError(f"{path}: is a folder, expected a CSV or Parquet file")
    suffixes = {s.lower() for s in path.suffixes}
    try:
        if suffixes & PARQUET_SUFFIXES:
            frame = pl.read_parquet(path)
        else:
            sep = separator or ("\t" if ".tsv" in suffixes else ",")
            frame = pl.read_csv(path, separator=sep, infer_schema=False, truncate_ragged_lines=False)
            frame = frame.with_columns(_integer_if_lossless(frame[c]) for c in frame.columns)
    except InputError:
        raise
    except Exception as exc:  # polars raises several exception types for unreadable files
        kind = "Parquet" if suffixes & PARQUET_SUFFIXES else "CSV"
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{path}: cannot be read as {kind}: {reason}") from exc
    if frame.width == 0:
        raise InputError(f"{path}: the file is empty (no header, no rows)")
    if frame.height == 0:
        raise InputError(f"{path}: the table has a header but no rows")
    return frame
