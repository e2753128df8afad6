"""Read long tables of votes (CSV or Parquet) into polars, with one-line errors for bad files.

CSV columns are read as text first and turned into integers only where every value reads back as the same text
(so ``0012`` stays ``"0012"`` and ids keep their original values). Parquet keeps its own types.
"""

from __future__ import annotations

import csv
import gzip
from collections.abc import Iterator
from pathlib import Path

import polars as pl

from annostat.errors import InputError, first_line

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


def _open_binary(path: Path):
    return gzip.open(path, "rb") if path.suffix.lower() == ".gz" else open(path, "rb")


def header_names(path: str | Path, separator: str = ",") -> list[str]:
    """The header row's names exactly as written (polars renames a repeated name; this does not)."""
    import io

    path = Path(path)
    with _open_binary(path) as handle:
        text = io.TextIOWrapper(handle, encoding="utf-8-sig", errors="replace", newline="")
        try:
            return next(csv.reader(text, delimiter=separator), [])
        except csv.Error:  # a header csv cannot parse: the table reader says what is wrong with it
            return []


def refuse_repeated_names(path: str | Path, separator: str = ",") -> list[str]:
    """The header's names; a one-line error if one is written twice (polars would rename the second silently)."""
    names = header_names(path, separator)
    if repeated := sorted({n for n in names if names.count(n) > 1}):
        raise InputError(f"{path}: the header names column(s) {', '.join(map(repr, repeated))} more than once")
    return names


def record_problems(path: str | Path, separator: str = ",", limit: int | None = 1000) -> dict[int, str]:
    """Data rows (numbered from 1, as the readers number them) that are not well-formed CSV, with why: bytes that
    are not UTF-8, more or fewer fields than the header, a quoted field that is never closed (that row and
    everything after it). A streaming pass in Python, run only when a fast read found something wrong.
    Blank lines are rows with no values, not problems. At most ``limit`` rows are reported."""
    path = Path(path)
    problems: dict[int, str] = {}
    bad_lines: set[int] = set()

    def lines() -> Iterator[str]:
        with _open_binary(path) as handle:
            for number, raw in enumerate(handle, start=1):
                try:
                    yield raw.decode("utf-8-sig" if number == 1 else "utf-8")
                except UnicodeDecodeError:
                    bad_lines.add(number)
                    yield raw.decode("utf-8", errors="replace")

    reader = csv.reader(lines(), delimiter=separator, strict=True)
    try:
        header = next(reader)
    except (StopIteration, csv.Error):
        return {}
    width, row, line = len(header), 0, reader.line_num
    try:
        for record in reader:
            row += 1
            first_line, line = line + 1, reader.line_num
            if any(n in bad_lines for n in range(first_line, line + 1)):
                problems[row] = f"bytes that are not UTF-8 (line {first_line})"
            elif record and len(record) != width:
                problems[row] = (
                    f"{len(record)} field{'s' if len(record) != 1 else ''} where the header has "
                    f"{width} (line {first_line})"
                )
            if limit is not None and len(problems) >= limit:
                break
    except csv.Error as exc:  # the quoting breaks: this row, and nothing after it, can be read
        if "unexpected end of data" in str(exc) or "EOF" in str(exc):
            problems[row + 1] = f"a quoted field opened on line {line + 1} is never closed"
        else:
            problems[row + 1] = f"broken quoting ({exc}) (line {line + 1})"
    return problems


def describe_problems(problems: dict[int, str]) -> str:
    """``row 12: 15 fields where the header has 14 (line 13)`` for the first problem, and how many more."""
    first = min(problems)
    more = f" ({len(problems) - 1:,} more such rows)" if len(problems) > 1 else ""
    return f"row {first}: {problems[first]}{more}"


def read_table(path: str | Path, *, separator: str | None = None) -> pl.DataFrame:
    """Read a CSV/TSV or Parquet file into a polars DataFrame.

    Raises :class:`~annostat.errors.InputError` for a missing file, an unreadable file or a table without rows.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: file not found")
    if path.is_dir():
        raise InputError(f"{path}: is a folder, expected a CSV or Parquet file")
    suffixes = {s.lower() for s in path.suffixes}
    sep = separator or ("\t" if ".tsv" in suffixes else ",")
    try:
        if suffixes & PARQUET_SUFFIXES:
            frame = pl.read_parquet(path, glob=False)
        else:
            refuse_repeated_names(path, sep)
            frame = pl.scan_csv(
                path, separator=sep, infer_schema=False, truncate_ragged_lines=False, glob=False
            ).collect()
            # a short row reads as trailing nulls
            if frame.width > 1 and frame[frame.columns[-1]].null_count() and (problems := record_problems(path, sep)):
                raise InputError(f"{path}, {describe_problems(problems)}")
            frame = frame.with_columns(_integer_if_lossless(frame[c]) for c in frame.columns)
    except InputError:
        raise
    except Exception as exc:  # polars raises several exception types for unreadable files
        kind = "Parquet" if suffixes & PARQUET_SUFFIXES else "CSV"
        if kind == "CSV" and (problems := _problems_or_none(path, sep)):
            raise InputError(f"{path}, {describe_problems(problems)}") from exc
        reason = first_line(exc)
        raise InputError(f"{path}: cannot be read as {kind}: {reason}") from exc
    if frame.width == 0:
        raise InputError(f"{path}: the file is empty (no header, no rows)")
    if frame.height == 0:
        raise InputError(f"{path}: the table has a header but no rows")
    return frame


def _problems_or_none(path: Path, separator: str) -> dict[int, str]:
    try:
        return record_problems(path, separator)
    except (OSError, EOFError, gzip.BadGzipFile):
        return {}
