"""Errors that carry a one-line, user-facing explanation.

Every problem with a user's input (a missing file, an unknown column, an empty table, a value that cannot be read)
is raised as :class:`~annostat.errors.InputError`. Its message is one line that names the file, the column and, where it
applies, the row, so the command line can print it without a traceback.
"""

from __future__ import annotations


class InputError(ValueError):
    """Bad input: the message names the file, column and/or row and the reason, in one line."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (libraries such as polars write several), or its type's name."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def where(source: str | None, *, column: str | None = None, row: int | None = None) -> str:
    """Format the location part of an error message: ``votes.csv, row 12, column 'answer'``."""
    parts = [source or "<data frame>"]
    if row is not None:
        parts.append(f"row {row}")
    if column is not None:
        parts.append(f"column {column!r}")
    return ", ".join(parts)
