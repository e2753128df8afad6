"""Subjects: the things volunteers classify (galaxy images), with their metadata and images, with or without votes.

A galaxy exists before anyone classifies it: a project uploads subjects with metadata (coordinates, survey names,
the image file), and a classifier may have predictions for millions of galaxies no volunteer has seen. A
:class:`Subjects` table holds one row per subject:

- ``subject``: the id, as the votes name it (unique, never null);
- ``image``: where its image is (a file name or path, relative to a folder the user gives), or null;
- any metadata columns: ``ra``, ``dec``, ``iauname``, the simulator's ``image_id``, ...

Sources: a Panoptes export's ``subject_data`` (:func:`subjects_from_subject_data`; the reader keeps it), a truth
set (:meth:`annostat.truth.truthset.TruthSet.subjects`), any table (:meth:`Subjects.read`), or the votes' ids.
Tables of several sources combine with :meth:`Subjects.merge`; a fit carries its subjects (``fit.subjects``), so
subjects without votes can appear in its tables.

Example:
    >>> import polars as pl
    >>> s = Subjects.from_frame(pl.DataFrame({"subject": [1, 2], "Filename": ["a.png", "b.png"], "ra": [1.5, 2.5]}))
    >>> s.image_of(2), len(s), s.columns
    ('b.png', 2, ['subject', 'image', 'ra'])
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from annostat.errors import InputError, where

if TYPE_CHECKING:
    import pandas as pd

#: metadata keys that name a subject's image file, in order of preference (case and a leading # or ! ignored)
IMAGE_KEYS = ("image", "image_name", "filename", "file_name", "file", "image_file", "imagefile", "image_path")
_HIDDEN = re.compile(r"^[#!]+")  # Zooniverse's hidden-metadata prefixes


class Subjects:
    """One row per subject: ``subject``, ``image`` and metadata columns (see the module docstring)."""

    def __init__(self, frame: pl.DataFrame, source: str = "<subjects>") -> None:
        if "subject" not in frame.columns:
            raise InputError(f"{source}: no subject column")
        if "image" not in frame.columns:
            frame = frame.with_columns(pl.lit(None, pl.Utf8).alias("image"))
        frame = frame.select("subject", "image", pl.exclude("subject", "image"))
        if frame["subject"].null_count():
            raise InputError(f"{where(source, column='subject')}: a subject without an id")
        duplicated = frame["subject"].is_duplicated()
        if duplicated.any():
            first = frame["subject"].filter(duplicated)[0]
            raise InputError(f"{where(source, column='subject')}: subject {first!r} appears more than once")
        self.frame = frame
        self.source = source
        self._images: dict[Any, Any] | None = None

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_frame(
        cls,
        frame: pl.DataFrame | pd.DataFrame,
        *,
        subject: str = "subject",
        image: str | None = None,
        source: str | None = None,
    ) -> Subjects:
        """From a pandas or polars table: ``subject`` names the id column; ``image`` the image column (default: the
        first of :data:`IMAGE_KEYS` present, matched without case or a leading ``#``/``!``)."""
        source = source or "<subjects>"
        if not isinstance(frame, pl.DataFrame):
            frame = pl.from_pandas(frame)
        if subject not in frame.columns:
            raise InputError(
                f"{source}: no subject column {subject!r}; the columns are {', '.join(repr(c) for c in frame.columns)}"
            )
        frame = frame.rename({subject: "subject"}) if subject != "subject" else frame
        image = image or _image_column(frame.columns)
        if image is not None:
            if image not in frame.columns:
                raise InputError(f"{source}: no image column {image!r}")
            if image != "image":
                frame = frame.drop("image", strict=False).rename({image: "image"})
            frame = frame.with_columns(pl.col("image").cast(pl.Utf8))
        return cls(frame, source)

    @classmethod
    def read(cls, path: str | Path, **options: Any) -> Subjects:
        """Read a CSV/TSV or Parquet subjects table (options as :meth:`from_frame`)."""
        from annostat.data.io.tables import read_table

        return cls.from_frame(read_table(path), source=str(path), **options)

    @classmethod
    def from_ids(cls, ids: Iterable[Any] | pl.Series, source: str = "<votes>") -> Subjects:
        """Subjects known only by their ids (the votes'), without images or metadata."""
        ids = ids if isinstance(ids, pl.Series) else pl.Series(list(ids))
        return cls(pl.DataFrame({"subject": ids.rename("subject")}), source)

    def merge(self, other: Subjects) -> Subjects:
        """This table's rows, then ``other``'s subjects that it lacks; columns of both (this table's values win)."""
        mine, theirs = self.frame, other.frame
        if theirs["subject"].dtype != mine["subject"].dtype:
            theirs = theirs.with_columns(pl.col("subject").cast(mine["subject"].dtype, strict=False)).filter(
                pl.col("subject").is_not_null()
            )
        known = mine.select("subject").join(theirs, on="subject", how="left")
        extra = [c for c in theirs.columns if c not in mine.columns]
        filled = mine.with_columns(known[c] for c in extra) if extra else mine
        if "image" in theirs.columns:
            filled = filled.with_columns(pl.coalesce("image", known["image"].cast(pl.Utf8)).alias("image"))
        new = theirs.join(mine.select("subject"), on="subject", how="anti")
        return Subjects(pl.concat([filled, new], how="diagonal_relaxed"), self.source)

    def subset(self, ids: Iterable[Any] | pl.Series) -> Subjects:
        """The rows of the subjects in ``ids`` (in this table's order); ids it lacks are left out."""
        ids = ids if isinstance(ids, pl.Series) else pl.Series(list(ids))
        wanted = pl.DataFrame({"subject": ids.cast(self.frame["subject"].dtype, strict=False)})
        return Subjects(self.frame.join(wanted, on="subject", how="semi"), self.source)

    # ------------------------------------------------------------------ access
    def __len__(self) -> int:
        return self.frame.height

    def __repr__(self) -> str:
        with_image = self.frame.height - self.frame["image"].null_count()
        return f"Subjects({len(self):,} subjects, {with_image:,} with an image; columns {', '.join(self.columns)})"

    @property
    def columns(self) -> list[str]:
        return self.frame.columns

    @property
    def ids(self) -> pl.Series:
        return self.frame["subject"]

    def image_of(self, subject: Any) -> Any:
        """The image of ``subject`` (None when it has none or is unknown); a dictionary lookup."""
        if self._images is None:
            self._images = dict(zip(self.frame["subject"].to_list(), self.frame["image"].to_list()))
        return self._images.get(subject)

    def find(self, column: str, values: Iterable[Any]) -> pl.Series:
        """The subject ids whose ``column`` holds each of ``values`` (null where none does), e.g. survey names."""
        if column not in self.frame.columns:
            raise KeyError(f"no subject column {column!r}; the columns are {', '.join(self.columns)}")
        lookup = self.frame.select(pl.col(column).cast(pl.Utf8).alias("key"), "subject").unique("key", keep="first")
        wanted = pl.DataFrame({"key": pl.Series([None if v is None else str(v) for v in values], dtype=pl.Utf8)})
        return wanted.join(lookup, on="key", how="left", maintain_order="left")["subject"]

    def to_pandas(self) -> pd.DataFrame:
        return self.frame.to_pandas()


def _image_column(columns: Iterable[str]) -> str | None:
    """The first column naming an image file (:data:`IMAGE_KEYS`), compared without case or hidden-key prefix."""
    plain = {_HIDDEN.sub("", c).lower(): c for c in reversed(list(columns))}
    return next((plain[key] for key in IMAGE_KEYS if key in plain), None)


def subjects_from_subject_data(subject: pl.Series, subject_data: pl.Series, source: str) -> Subjects:
    """Subjects from a Panoptes export's ``subject_data`` texts (``{"<id>": {metadata}}``), one per subject:
    metadata keys become columns (a leading ``#`` or ``!``, Zooniverse's hidden-key marks, dropped; where both
    ``ra`` and ``#ra`` exist the first seen wins), nested values stay JSON text, numbers stay numbers; the image
    column is the first of :data:`IMAGE_KEYS`. Decoded by polars in one pass; texts it cannot decode together
    (mixed types for one key) are decoded one by one."""
    inner = subject_data.str.replace(r'^\s*\{\s*"[^"]*"\s*:\s*', "").str.replace(r"\}\s*$", "")
    try:
        decoded = inner.str.json_decode(infer_schema_length=None)
        if not isinstance(decoded.dtype, pl.Struct):
            raise TypeError("not objects")
        meta = decoded.struct.unnest()
    except (pl.exceptions.PolarsError, ValueError, TypeError):
        meta = _decode_one_by_one(subject_data)
    columns = {"subject": subject}
    for name in meta.columns:
        plain = _HIDDEN.sub("", name) or name
        if plain in columns:
            continue
        column = meta[name]
        if isinstance(column.dtype, (pl.Struct, pl.List, pl.Array)):
            column = column.map_elements(lambda v: json.dumps(_plain(v)), return_dtype=pl.Utf8)
        elif column.dtype == pl.Null:
            column = column.cast(pl.Utf8)
        columns[plain] = column.alias(plain)
    return Subjects.from_frame(pl.DataFrame(columns), source=source)


def _plain(value: Any) -> Any:
    """A decoded polars value (struct as dict, list as list) as plain JSON-able Python."""
    if isinstance(value, pl.Series):
        value = value.to_list()
    return value


def _decode_one_by_one(subject_data: pl.Series) -> pl.DataFrame:
    """The metadata of each ``subject_data`` text, decoded by Python's JSON reader (texts it cannot read: none)."""
    rows: list[dict[str, Any]] = []
    for text in subject_data.to_list():
        try:
            outer = json.loads(text) if text else None
        except ValueError:
            outer = None
        inner = next(iter(outer.values()), None) if isinstance(outer, dict) and len(outer) == 1 else outer
        rows.append(
            {
                str(k): json.dumps(v) if isinstance(v, (dict, list)) else v
                for k, v in (inner.items() if isinstance(inner, dict) else ())
            }
        )
    names = list(dict.fromkeys(k for row in rows for k in row))
    columns = {}
    for name in names:
        values = [row.get(name) for row in rows]
        try:
            columns[name] = pl.Series(name, values, strict=False)
        except (TypeError, ValueError, OverflowError):
            columns[name] = pl.Series(name, [None if v is None else str(v) for v in values], dtype=pl.Utf8)
    return pl.DataFrame(columns, height=len(rows)) if columns else pl.DataFrame(height=len(rows))
