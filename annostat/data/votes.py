"""The votes table: every input becomes one integer-coded :class:`Votes`.

A vote is one volunteer's answer to one question about one subject, at one time. :class:`Votes` holds the votes as
integer codes (``subject``, ``volunteer``, ``question``, ``answer`` per question), each volunteer's experience
(``experience``: how many responses they had given before this one, on any question; ``experience_question``: on this
question), the label maps both ways, and a :class:`RowReport` that accounts for every input row.

Codes follow the sorted order of the original labels, so they are deterministic. Answer codes are per question:
questions may have different answer sets (a 3-answer and a 2-answer question in one table is normal).

Row accounting: rows with a missing subject, volunteer, question or answer are dropped and counted by reason;
duplicate votes (one volunteer, one subject, one question, several rows) follow a policy (``first`` keeps the
earliest, ``last`` the latest, ``all`` keeps every row) and are counted. ``rows read = rows kept + rows dropped``
always holds.

Experience is counted over every valid response (duplicates included: the volunteer did see the subject again),
in time order, ties broken by file order; rows without a time sort after the timed ones of the same volunteer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
import polars as pl

from annostat.data._memory import with_plain_pages
from annostat.data.io.tables import PARQUET_SUFFIXES, read_table
from annostat.data.sorting import (
    argsort_distinct,
    repeats_in_runs,
    run_boundaries,
    run_members,
    stable_sort,
    take_columns,
)
from annostat.data.subjects import Subjects
from annostat.errors import InputError, where

if TYPE_CHECKING:
    from annostat.data.gold import Gold

DUPLICATE_POLICIES = ("first", "last", "all")
DEFAULT_COLUMNS = {
    "subject": "subject",
    "volunteer": "volunteer",
    "question": "question",
    "answer": "answer",
    "time": "created_at",
}
ROLES = ("subject", "volunteer", "question", "answer")
ROW_COLUMN = "__annostat_row"  # a reader that read a share of a file gives each row's number in the file here
SHARE_SEED = 20260  # the seed of the hash that deals subjects to processes (the same in every process)


def share_of_subjects(column: str, share: tuple[int, int]) -> pl.Expr:
    """True for the rows whose subject falls to process ``share = (index, count)``: a seeded hash of the subject's
    label (as text) modulo ``count``, so every vote on one subject goes to one process, the same in every process
    that reads the same file."""
    index, count = share
    if not 0 <= index < count:
        raise ValueError(f"share {index} of {count}: the index runs from 0 to {count - 1}")
    return pl.col(column).cast(pl.String).hash(seed=SHARE_SEED) % count == index


@dataclass
class RowReport:
    """Where every input row went: kept, or dropped with a reason."""

    source: str
    rows_read: int
    rows_kept: int
    dropped: dict[str, int] = field(default_factory=dict)
    duplicate_policy: str = "first"
    duplicates: int = 0
    missing_time: int = 0

    @property
    def rows_dropped(self) -> int:
        return sum(self.dropped.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "read": self.rows_read,
            "kept": self.rows_kept,
            "dropped": self.rows_dropped,
            "dropped_by_reason": dict(self.dropped),
            "duplicate_policy": self.duplicate_policy,
            "duplicates_found": self.duplicates,
            "missing_time": self.missing_time,
        }

    def summary(self) -> str:
        text = f"{self.rows_read:,} rows read, {self.rows_kept:,} kept"
        if self.dropped:
            text += ", " + ", ".join(f"{n:,} dropped ({why})" for why, n in self.dropped.items())
        if self.duplicates and self.duplicate_policy == "all":
            text += f", {self.duplicates:,} repeat votes kept (policy all)"
        return text


def _resolve_columns(frame_columns: Sequence[str], source: str, given: Mapping[str, str | None]) -> dict[str, str]:
    """Map roles to column names. Optional roles (question, time) left at their default are dropped if absent."""
    resolved: dict[str, str] = {}
    available = ", ".join(repr(c) for c in frame_columns)
    for role in ("subject", "volunteer", "answer", "question", "time"):
        name = given.get(role)
        optional = role in ("question", "time")
        if name is None:
            continue
        if name in resolved.values():
            clash = next(r for r, c in resolved.items() if c == name)
            if optional and name == DEFAULT_COLUMNS[role]:
                continue  # e.g. a table whose subject column is called "question" (dog, duck)
            raise InputError(f"{source}: column {name!r} is given both as the {clash} and as the {role} column")
        if name not in frame_columns:
            if optional and name == DEFAULT_COLUMNS[role]:
                continue
            raise InputError(f"{source}: no {role} column {name!r}; the columns are {available}")
        resolved[role] = name
    return resolved


def _type_name(dtype: pl.DataType) -> str | None:
    """What a column of this type holds, in words, if a vote's label or time cannot be it (else None)."""
    if isinstance(dtype, (pl.List, pl.Array)):
        return f"lists ({dtype})"
    if isinstance(dtype, pl.Struct):
        return f"structs ({dtype})"
    if isinstance(dtype, pl.Decimal):
        return f"decimals ({dtype})"
    for kind, words in (
        (pl.Duration, "durations"),
        (pl.Time, "times of day"),
        (pl.Binary, "bytes"),
        (pl.Object, "Python objects"),
    ):
        if isinstance(dtype, kind) or dtype == kind:
            return f"{words} ({dtype})"
    return None


def _check_types(frame: pl.DataFrame, cols: Mapping[str, str], source: str) -> None:
    """Refuse, before anything is read, a label column of a type a label cannot have (lists, structs, decimals,
    durations, bytes, dates) or a time column that is not a time, a date, a number or text."""
    for role, name in cols.items():
        dtype = frame.schema[name]
        held = _type_name(dtype)
        if held is None and role != "time" and (dtype.is_temporal()):
            held = f"dates or times ({dtype})"
        if held is None and role == "time" and dtype == pl.Boolean:
            held = "true/false values"
        if held is not None:
            allowed = (
                "a datetime, a date, a number or time text"
                if role == "time"
                else "text, a whole number, a number or true/false"
            )
            raise InputError(
                f"{where(source, column=name)}: the {role} column holds {held}; a vote's {role} must be "
                f"{allowed} (cast the column first)"
            )


def _blank_to_null(expr: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    if dtype == pl.Utf8:
        return pl.when(expr.str.strip_chars() == "").then(None).otherwise(expr)
    if dtype.is_float():
        return pl.when(expr.is_nan()).then(None).otherwise(expr)
    return expr


def _parse_time(column: pl.Series, source: str, name: str, rows: pl.Series) -> pl.Series:
    """Turn a time/order column into sortable Float64 (numbers) or Int64 microseconds (dates)."""
    dtype = column.dtype
    if dtype == pl.Date:
        column = column.cast(pl.Datetime("us"))
        dtype = column.dtype
    if isinstance(dtype, pl.Datetime):
        return column.dt.replace_time_zone(None).dt.cast_time_unit("us").cast(pl.Int64)
    if dtype.is_numeric():
        return column.cast(pl.Float64)
    text = column.cast(pl.Utf8)
    as_number = text.cast(pl.Float64, strict=False)
    if as_number.null_count() == text.null_count():
        return as_number
    parsed = text.str.replace(r"\s*UTC$", "").str.to_datetime(strict=False, time_unit="us", time_zone="UTC")
    if parsed.null_count() != text.null_count():
        try:  # mixed formats: let pandas try each value on its own
            pandas_parsed = pd.to_datetime(text.to_pandas(), utc=True, format="mixed", errors="coerce")
            parsed = pl.Series(pl.from_pandas(pandas_parsed)).dt.cast_time_unit("us")
        except (ValueError, TypeError):
            pass
    bad = parsed.is_null() & text.is_not_null()
    if bad.any():
        first = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputError(
            f"{where(source, column=name, row=int(rows[first]) + 1)}: cannot read {text[first]!r} as a time "
            f"({int(bad.sum()):,} such rows); fix the values or leave out the time column to use file order"
        )
    return parsed.dt.replace_time_zone(None).cast(pl.Int64)


class Votes:
    """Integer-coded votes with label maps, experience and row accounting.

    Build one with :meth:`Votes.from_frame` (pandas or polars) or :meth:`Votes.read` (CSV or Parquet)::

        votes = Votes.read("classifications.csv", subject="subject_id", volunteer="user_name")
        votes.table            # polars: subject, volunteer, question, answer (codes), row, time,
                               #         experience, experience_question
        votes.subjects[12]     # the original label of subject code 12
        votes.report.summary() # '10,000 rows read, 9,990 kept, 10 dropped (missing answer)'
        votes.subject_table    # the subjects' metadata and images (Panoptes subject_data), or None

    The table is sorted by question, then subject, then input row.
    """

    def __init__(
        self,
        codes: dict[str, np.ndarray],
        subjects: pl.Series,
        volunteers: pl.Series,
        questions: pl.Series,
        answers: list[pl.Series],
        report: RowReport,
        columns: dict[str, str],
        time: pl.Series | None = None,
        experience: Callable[[], tuple[np.ndarray, np.ndarray]] | None = None,
        provenance: dict[str, Any] | None = None,
        subject_table: Subjects | None = None,
    ) -> None:
        """Low-level constructor: ``codes`` holds int arrays ``subject, volunteer, question, answer`` and int64
        ``row``, sorted by question, subject, row. Use :meth:`from_frame` or :meth:`read` instead."""
        self._codes = codes
        self.subjects = subjects
        self.volunteers = volunteers
        self.questions = questions
        self.answers = answers
        self.report = report
        self.columns = columns
        self._time = time
        self._experience = experience
        self.provenance = provenance or {}  # what the reader that made these votes reports (e.g. a Panoptes export)
        self.subject_table = subject_table  # the subjects' metadata and images, where the reader had them
        self.gold: Gold | None = None  # known true answers, set by attach_gold
        self.experts: pl.Series | None = None  # expert volunteers' labels, set by attach_experts
        self._gold: tuple[dict[int, tuple[np.ndarray, np.ndarray]], dict[str, Any]] | None = None
        self._table: pl.DataFrame | None = None
        self._question_bounds = np.searchsorted(codes["question"], np.arange(len(questions) + 1), side="left")

    @property
    def table(self) -> pl.DataFrame:
        """The votes as a polars DataFrame of codes: subject, volunteer, question, answer, row (input row, from 0),
        time, experience, experience_question; sorted by question, subject, row. Built on first use."""
        if self._table is None:
            n = self.n_votes
            experience, experience_question = (
                self._experience() if self._experience else (np.zeros(n, np.int32), np.zeros(n, np.int32))
            )
            self._table = pl.DataFrame(
                {
                    **{c: self._codes[c] for c in ("subject", "volunteer", "question", "answer", "row")},
                    "time": self._time if self._time is not None else _no_times(n),
                    "experience": experience,
                    "experience_question": experience_question,
                }
            )
        return self._table

    # ------------------------------------------------------------------ construction
    @classmethod
    def read(cls, path: str | Path, *, share: tuple[int, int] | None = None, **options: Any) -> Votes:
        """Read votes from a CSV/TSV or Parquet file; options as in :meth:`from_frame`.

        ``share = (index, count)`` reads only the votes on the subjects that fall to process ``index`` of
        ``count`` (:func:`~annostat.data.votes.share_of_subjects`; ``annostat.infer.hosts``): from Parquet only those
        rows are materialised (the filter is pushed into the scan), a CSV is parsed whole and then filtered."""
        path = Path(path)
        subject = options.get("subject", "subject")
        if share is not None and path.exists() and {x.lower() for x in path.suffixes} & PARQUET_SUFFIXES:
            try:
                names = pl.read_parquet_schema(path)
            except Exception:  # noqa: BLE001 -- unreadable, whatever the error: read_table says why
                names = {}
            if subject in names:  # read as a share: its rows keep their numbers in the file (ROW_COLUMN)
                frame = (
                    pl.scan_parquet(path, glob=False)
                    .with_row_index(ROW_COLUMN)
                    .filter(share_of_subjects(subject, share))
                    .collect()
                )
                return cls.from_frame(_HandedOver(frame), source=str(path), **options)
        return cls.from_frame(_HandedOver(read_table(path)), source=str(path), share=share, **options)

    @classmethod
    @with_plain_pages
    def from_frame(
        cls,
        frame: pl.DataFrame | pd.DataFrame,
        *,
        subject: str = "subject",
        volunteer: str = "volunteer",
        question: str | None = "question",
        answer: str = "answer",
        time: str | None = "created_at",
        duplicates: str = "first",
        answers: Mapping[Any, Sequence[Any]] | Sequence[Any] | None = None,
        source: str | None = None,
        share: tuple[int, int] | None = None,
    ) -> Votes:
        """Build the votes table from a long DataFrame, one row per vote.

        Args:
            frame: pandas or polars DataFrame.
            subject, volunteer, answer: column names (required columns).
            question: the question column; ``None``, or the default name when absent, means one question.
            time: the time/order column (datetimes, ISO/Panoptes time text, or numbers); ``None``, or the default
                name when absent, means file order.
            duplicates: ``first`` (default), ``last`` or ``all`` for repeat votes by one volunteer on one subject
                and question.
            answers: the answer set of questions (``{question: [answers...]}``, or a list for one question), in
                the order to code them; votes with other answers are dropped and counted. Questions not given (and
                all questions by default) take the answers seen, sorted.
            source: name used in messages (the file name).
            share: ``(index, count)``: keep only the rows on the subjects that fall to process ``index`` of
                ``count`` (:func:`~annostat.data.votes.share_of_subjects`); the row report then counts that share's
                rows, and the row numbers stay those of the whole table.
        """
        if isinstance(frame, _HandedOver):
            frame = frame.take()
        source = source or "<data frame>"
        if duplicates not in DUPLICATE_POLICIES:
            raise InputError(f"duplicate policy {duplicates!r} is not one of {', '.join(DUPLICATE_POLICIES)}")
        if isinstance(frame, pd.DataFrame):
            try:
                frame = pl.from_pandas(frame, nan_to_null=True)
            except Exception as exc:
                raise InputError(f"{source}: cannot convert the pandas DataFrame: {exc}") from exc
        if not isinstance(frame, pl.DataFrame):
            raise InputError(f"{source}: expected a pandas or polars DataFrame, got {type(frame).__name__}")
        shared = share is not None or ROW_COLUMN in frame.columns  # a share of a table may hold no rows at all
        if frame.width == 0 or (frame.height == 0 and not shared):
            raise InputError(f"{source}: the table is empty (no rows)")
        given = {"subject": subject, "volunteer": volunteer, "question": question, "answer": answer, "time": time}
        cols = _resolve_columns(frame.columns, source, given)
        _check_types(frame, cols, source)
        frame = _plain_categoricals(frame, [c for role, c in cols.items() if role != "time"])
        if share is not None:  # this process's subjects; row numbers those of the whole table
            frame = frame.with_row_index(ROW_COLUMN).filter(share_of_subjects(cols["subject"], share))
        n_read = frame.height

        work = frame.select(
            [_blank_to_null(pl.col(c), frame.schema[c]).alias(role) for role, c in cols.items() if role != "time"]
            + ([pl.col(ROW_COLUMN).alias("row")] if ROW_COLUMN in frame.columns else [])
        )
        if "row" not in work.columns:
            work = work.with_row_index("row")
        if "question" not in cols:
            work = work.with_columns(pl.lit(0, dtype=pl.Int32).alias("question"))
        if "time" in cols:
            work = work.with_columns(_parse_time(frame[cols["time"]], source, cols["time"], work["row"]).alias("time"))
        else:
            work = work.with_columns(pl.lit(None, dtype=pl.Float64).alias("time"))

        missing = pl.lit(False)
        reasons = []
        for role in ROLES:  # a row missing several values counts once, under the first missing role
            reasons.append((~missing & pl.col(role).is_null()).sum().alias(role))
            missing = missing | pl.col(role).is_null()
        counts = work.select(reasons).row(0, named=True)
        dropped = {f"missing {role}": int(n) for role, n in counts.items() if n}
        if dropped:
            work = work.filter(~missing)
        if work.height == 0 and shared:
            return cls._no_votes(n_read, dropped, duplicates, cols, source, frame.schema, work.schema)
        if work.height == 0:
            raise InputError(
                f"{source}: no usable votes: every one of the {n_read:,} rows has a {' or '.join(dropped)}"
            )

        # label maps and codes (sorted order of the labels)
        subjects, subject_code = _codes(work["subject"])
        volunteers, volunteer_code = _codes(work["volunteer"])
        if "question" in cols:
            questions, question_code = _codes(work["question"])
        else:  # one question, named after the answer column
            questions, question_code = pl.Series([cols["answer"]]), work["question"]
        work = work.with_columns(
            subject_code.alias("subject_code"),
            volunteer_code.alias("volunteer_code"),
            question_code.alias("question_code"),
        )
        n_outside = 0  # votes whose answer is outside its question's given answer set (their labels may go unused)
        if answers is not None:
            work = work.with_columns(pl.col("answer").cast(_text_type(work.schema["answer"])))
            work, answer_sets, n_outside = _code_given_answers(work, questions, answers, source)
            if n_outside:
                dropped["answer not in its question's answer set"] = n_outside
        elif len(questions) == 1:
            labels, answer_code = _codes(work["answer"])
            work = work.with_columns(answer_code.alias("answer_code"))
            answer_sets = [labels.rename("answer")]
        else:
            work = work.with_columns(pl.col("answer").cast(_text_type(work.schema["answer"])))
            work = work.with_columns(
                (pl.col("answer").rank("dense").over("question_code") - 1).cast(pl.Int32).alias("answer_code")
            )
            answer_map = work.group_by("question_code").agg(pl.col("answer").unique().sort()).sort("question_code")
            answer_sets = [pl.Series("answer", a, dtype=work.schema["answer"]) for a in answer_map["answer"]]

        coded = {role: work[f"{role}_code"].to_numpy() for role in ("subject", "volunteer", "question", "answer")}
        row, time_column = work["row"].to_numpy(), work["time"] if "time" in cols else None
        del work, frame  # the labels as read are no longer needed: at 100M votes, gigabytes freed before the sort
        return cls.from_codes(
            subject=coded["subject"],
            volunteer=coded["volunteer"],
            question=coded["question"],
            answer=coded["answer"],
            row=row,
            time=time_column,
            subjects=subjects,
            volunteers=volunteers,
            questions=questions,
            answers=answer_sets,
            duplicates=duplicates,
            dropped=dropped,
            rows_read=n_read,
            columns=cols,
            source=source,
            labels_used=not n_outside,
        )

    @classmethod
    def _no_votes(
        cls,
        n_read: int,
        dropped: dict[str, int],
        duplicates: str,
        cols: dict[str, str],
        source: str,
        schema: Mapping[str, pl.DataType],
        work_schema: Mapping[str, pl.DataType],
    ) -> Votes:
        """A share of a table (``share``) on which no votes fell: no labels, its rows accounted for."""

        def empty(role: str) -> pl.Series:
            return pl.Series(role, [], dtype=_text_type(work_schema[role]))

        questions = empty("question") if "question" in cols else pl.Series("question", [cols["answer"]])
        answers = [] if "question" in cols else [empty("answer")]
        none = np.zeros(0, np.int32)
        return cls.from_codes(
            subject=none,
            volunteer=none,
            question=none,
            answer=none,
            row=none.astype(np.int64),
            time=None,
            subjects=empty("subject"),
            volunteers=empty("volunteer"),
            questions=questions,
            answers=answers,
            duplicates=duplicates,
            dropped=dropped,
            rows_read=n_read,
            columns=cols,
            source=source,
        )

    @classmethod
    @with_plain_pages
    def from_codes(
        cls,
        *,
        subject: np.ndarray,
        volunteer: np.ndarray,
        question: np.ndarray,
        answer: np.ndarray,
        row: np.ndarray,
        time: pl.Series | None,
        subjects: pl.Series,
        volunteers: pl.Series,
        questions: pl.Series,
        answers: list[pl.Series],
        duplicates: str = "first",
        dropped: dict[str, int] | None = None,
        rows_read: int | None = None,
        columns: dict[str, str] | None = None,
        source: str = "<codes>",
        provenance: dict[str, Any] | None = None,
        in_order: bool = False,
        subject_table: Subjects | None = None,
        labels_used: bool = False,
    ) -> Votes:
        """Votes from integer codes (one entry per vote, any order) and their label maps: the duplicate policy,
        time order, experience and final sort of :meth:`from_frame`, for readers that code labels themselves.

        ``in_order=True`` says the votes already are in the table's order (question, subject, input row) and every
        subject and volunteer label has a vote (duplicate policy ``all`` only): the arrays are kept as given, with
        no sort and no copies, which matters for exports of 100M votes. ``labels_used=True`` says every subject and
        volunteer label has a vote among these (none need dropping: no pass to find them)."""
        dropped = dict(dropped or {})
        subject, volunteer, question = (np.asarray(a, dtype=np.int32) for a in (subject, volunteer, question))
        answer = np.asarray(answer, dtype=np.int32)
        row = np.asarray(row)
        if row.dtype not in (np.int32, np.int64):  # input row numbers: int32 if they fit (100M votes), else int64
            row = row.astype(np.int32 if len(row) == 0 or int(row.max()) < 2**31 else np.int64)
        n = len(subject)
        rows_read = n + sum(dropped.values()) if rows_read is None else rows_read
        S, Q = len(subjects), len(questions)

        def time_order() -> np.ndarray:
            """Vote indices in time order (ties and missing times: input order, missing last)."""
            if time is None:
                return np.arange(n, dtype=np.int64)
            return np.argsort(time.cast(pl.Float64).fill_null(np.inf).to_numpy(), kind="stable")

        if in_order and duplicates != "all":
            raise ValueError("in_order needs the duplicate policy 'all'")
        if in_order:  # counted within each subject's votes, as they lie (no sort, no copies of the codes)
            runs = question.astype(np.int64)
            runs *= S
            runs += subject
            n_duplicates = int(np.count_nonzero(repeats_in_runs(runs, volunteer)))
            del runs
            final = None
            codes = {"subject": subject, "volunteer": volunteer, "question": question, "answer": answer, "row": row}
        else:  # the table's order, (question, subject, input order), then the repeats within each subject's votes
            sort_key: np.ndarray = question.astype(np.int32 if Q * S < 2**31 else np.int64)  # int32 sorts faster
            sort_key *= S
            sort_key += subject
            order, runs = stable_sort(sort_key)  # runs: the sorted keys
            assert runs is not None
            del sort_key
            # the sorted keys give each vote's subject and question; rows numbered 0..n-1 (every row read was kept):
            # a row is its position
            positions = len(row) == 0 or (row[0] == 0 and row[-1] == n - 1 and bool((row[1:] > row[:-1]).all()))
            codes = take_columns(
                {"volunteer": volunteer, "answer": answer} | ({} if positions else {"row": row}), order
            )
            if Q > 1:
                codes["question"], codes["subject"] = (c.astype(np.int32) for c in np.divmod(runs, S))
            else:
                codes["question"], codes["subject"] = np.zeros(n, np.int32), runs.astype(np.int32, copy=False)
            codes["row"] = codes["row"] if not positions else order.astype(row.dtype)
            codes = {role: codes[role] for role in ("subject", "volunteer", "question", "answer", "row")}
            rank = None  # repeats: the first (or last) in time order is kept; no times, in input order
            if time is not None and duplicates != "all":
                rank = np.empty(n, np.int64)
                rank[time_order()] = np.arange(n)
                rank = rank[order]
            repeat = repeats_in_runs(runs, codes["volunteer"], rank, last=duplicates == "last")
            del runs, rank
            n_duplicates = int(np.count_nonzero(repeat))
            final = order
            if n_duplicates and duplicates != "all":
                dropped[f"duplicate vote (policy {duplicates})"] = n_duplicates
                kept = ~repeat
                final = order[kept]
                codes = take_columns(codes, kept)
            del repeat, order

        def experience() -> tuple[np.ndarray, np.ndarray]:
            overall, per_question = _experience(volunteer, question, time_order(), Q)
            return (overall, per_question) if final is None else (overall[final], per_question[final])

        time_column = time.gather(final) if time is not None and final is not None else time
        if not in_order and not labels_used:  # labels whose every vote fell to a filter: dropped, codes compacted
            codes, subjects, volunteers = _compact(codes, subjects, volunteers)
        report = RowReport(
            source=source,
            rows_read=rows_read,
            rows_kept=len(codes["subject"]),
            dropped=dropped,
            duplicate_policy=duplicates,
            duplicates=n_duplicates,
            missing_time=int(time_column.null_count()) if time_column is not None else 0,
        )
        assert report.rows_read == report.rows_kept + report.rows_dropped, report
        return cls(
            codes,
            subjects.rename("subject"),
            volunteers.rename("volunteer"),
            questions.rename("question"),
            answers,
            report,
            columns or {},
            time=time_column,
            experience=experience,
            provenance=provenance,
            subject_table=subject_table,
        )

    def extended(self, new: Votes, duplicates: str | None = None, source: str | None = None) -> tuple[Votes, int]:
        """These votes and ``new`` in one table, and the row offset from which the rows are ``new``'s.

        These votes keep their codes and rows (labels they lack get the next codes, so the table is not coded again);
        a new vote's row is the offset (one past the largest row here) plus its row in ``new``. The two tables are
        merged, not sorted again: the order stays (question, subject, row). Repeat votes across the two (one
        volunteer, subject and question) follow ``duplicates`` (default this table's policy): ``first`` keeps this
        table's vote, ``last`` the new one, ``all`` both; the row report counts those dropped."""
        duplicates = duplicates or self.report.duplicate_policy
        if duplicates not in DUPLICATE_POLICIES:
            raise InputError(f"duplicate policy {duplicates!r} is not one of {', '.join(DUPLICATE_POLICIES)}")
        source = source or f"{self.report.source} + {new.report.source}"
        subjects, subject_of = _extend_labels(self.subjects, new.subjects, new.report.source, "subject")
        volunteers, volunteer_of = _extend_labels(self.volunteers, new.volunteers, new.report.source, "volunteer")
        questions, question_of = _extend_labels(self.questions, new.questions, new.report.source, "question")
        answers: list[pl.Series | None] = [*self.answers, *[None] * (len(questions) - len(self.answers))]
        answer_of = []  # per new question code: the codes of its answers in the combined answer set
        for q_new, labels in enumerate(new.answers):
            q = int(question_of[q_new])
            known = answers[q]
            if known is None:
                answers[q], in_known = labels.rename("answer"), np.arange(len(labels), dtype=np.int64)
            else:
                answers[q], in_known = _extend_labels(known, labels, new.report.source, "answer")
            answer_of.append(in_known)
        offsets = np.concatenate([[0], np.cumsum([len(a) for a in answer_of])]).astype(np.int64)
        flat = np.concatenate(answer_of) if answer_of else np.zeros(0, np.int64)
        row_offset = int(self._codes["row"].max()) + 1 if self.n_votes else 0
        added = {
            "subject": subject_of[new._codes["subject"]].astype(np.int32),
            "volunteer": volunteer_of[new._codes["volunteer"]].astype(np.int32),
            "question": question_of[new._codes["question"]].astype(np.int32),
            "answer": flat[offsets[new._codes["question"]] + new._codes["answer"]].astype(np.int32),
            "row": new._codes["row"].astype(np.int64) + row_offset,
        }
        old = {c: self._codes[c] for c in added}
        old_bounds = self._question_bounds
        n_old_questions = len(old_bounds) - 1

        def old_block(question: np.ndarray, subject: np.ndarray, side: Literal["left", "right"]) -> np.ndarray:
            """Per vote (question and subject codes): where its (question, subject) block of the votes here starts
            (``left``) or ends (``right``); the votes here are in (question, subject) order."""
            at = np.full(len(question), len(old["row"]) if side == "right" else 0, np.int64)
            for q in np.unique(question):
                these = np.flatnonzero(question == q)
                if q >= n_old_questions:  # a question these votes lack: after all of them
                    at[these] = len(old["row"])
                    continue
                a, b = int(old_bounds[q]), int(old_bounds[q + 1])
                at[these] = a + np.searchsorted(old["subject"][a:b], subject[these], side=side)
            return at

        keep_old: np.ndarray | None = None
        keep_new: np.ndarray | None = None
        if duplicates != "all" and new.n_votes and self.n_votes:
            # a repeat (one volunteer, subject and question in both) lies in the new vote's (question, subject)
            # block here: only those blocks are compared, not every vote here
            lo = old_block(added["question"], added["subject"], "left")
            hi = old_block(added["question"], added["subject"], "right")
            pair_old, pair_new = run_members(lo, hi, np.arange(len(lo)))
            same = old["volunteer"][pair_old] == added["volunteer"][pair_new]
            if duplicates == "first":
                keep_new = np.ones(len(lo), bool)
                keep_new[pair_new[same]] = False
            else:
                keep_old = np.ones(len(old["row"]), bool)
                keep_old[pair_old[same]] = False
        n_repeats = (0 if keep_new is None else int((~keep_new).sum())) + (
            0 if keep_old is None else int((~keep_old).sum())
        )
        old_time, new_time = _combined_times(self, new)
        if keep_old is not None:
            old = {c: a[keep_old] for c, a in old.items()}
            old_time = old_time.filter(pl.Series(keep_old)) if old_time is not None else None
            old_bounds = np.searchsorted(old["question"], np.arange(n_old_questions + 1), side="left")
        order = np.lexsort((added["subject"], added["question"]))
        if keep_new is not None:
            order = order[keep_new[order]]
        added = {c: a[order] for c, a in added.items()}
        new_time = new_time.gather(order) if new_time is not None else None
        # merge: each new vote after the votes here of its (question, subject) (their rows are smaller)
        at = old_block(added["question"], added["subject"], "right")
        n = len(at) + len(old["row"])
        place_new = at + np.arange(len(at))
        is_old = np.ones(n, bool)
        is_old[place_new] = False
        codes: dict[str, np.ndarray] = {}
        for c in added:
            merged = np.empty(n, old[c].dtype if c != "row" else np.int64)
            merged[place_new] = added[c]
            merged[is_old] = old[c]
            codes[c] = merged
        time = None
        if old_time is not None and new_time is not None and not old_time.null_count() and not new_time.null_count():
            merged = np.empty(n, np.float64)  # the times as numbers, merged as the codes are
            merged[place_new] = new_time.to_numpy()
            merged[is_old] = old_time.to_numpy()
            time = pl.Series("time", merged)
        elif old_time is not None and new_time is not None:  # (both or neither: _combined_times)
            positions = np.empty(n, np.int64)
            positions[place_new] = np.arange(len(at)) + len(old["row"])
            positions[is_old] = np.arange(len(old["row"]))
            time = pl.concat([old_time, new_time]).gather(positions)
        dropped = {f"duplicate vote (policy {duplicates})": n_repeats} if n_repeats else {}
        report = RowReport(
            source=source,
            rows_read=self.n_votes + new.n_votes,
            rows_kept=n,
            dropped=dropped,
            duplicate_policy=duplicates,
            duplicates=n_repeats + self.report.duplicates + new.report.duplicates,
            missing_time=int(time.null_count()) if time is not None else 0,
        )

        def experience() -> tuple[np.ndarray, np.ndarray]:  # in time order, ties by row, as from_codes has it
            order = (
                np.argsort(codes["row"], kind="stable")
                if time is None
                else np.lexsort((codes["row"], time.cast(pl.Float64).fill_null(np.inf).to_numpy()))
            )
            return _experience(codes["volunteer"], codes["question"], order, len(questions))

        subject_table = self.subject_table
        if new.subject_table is not None:
            subject_table = new.subject_table if subject_table is None else subject_table.merge(new.subject_table)
        votes = Votes(
            codes,
            subjects.rename("subject"),
            volunteers.rename("volunteer"),
            questions.rename("question"),
            [a for a in answers if a is not None],  # every question has its answers by now
            report,
            self.columns,
            time=time,
            experience=experience,
            provenance=dict(self.provenance),
            subject_table=subject_table.subset(subjects) if subject_table is not None else None,
        )
        gold = self.gold if new.gold is None else new.gold if self.gold is None else self.gold.merge(new.gold)
        votes.attach_gold(gold)
        experts = [e for e in (self.experts, new.experts) if e is not None]
        if experts:
            votes.attach_experts(pl.concat([e.cast(votes.volunteers.dtype, strict=False) for e in experts]))
        return votes, row_offset

    # ------------------------------------------------------------------ gold answers and experts
    def attach_gold(self, gold: Gold | None) -> dict[str, Any]:
        """Fix the answers of the subjects ``gold`` (:class:`annostat.data.gold.Gold`) knows, in every model fitted
        to these votes; returns the accounting (rows, used, not used by reason). An answer outside its question's
        answer set is an :class:`~annostat.errors.InputError` naming the row."""
        from annostat.data.gold import code_gold

        if gold is None:
            self.gold, self._gold = None, None
            return {}
        self._gold = code_gold(gold, self.subjects, self.questions, self.answers)
        self.gold = gold
        return self._gold[1]

    def gold_codes(self, question: int) -> tuple[np.ndarray, np.ndarray]:
        """The gold subjects of ``question`` (codes, sorted) and their gold answers' codes; empty without gold."""
        if self._gold is None or question not in self._gold[0]:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        return self._gold[0][question]

    @property
    def gold_summary(self) -> dict[str, Any] | None:
        """The gold answers' accounting (see :meth:`attach_gold`), or ``None`` without gold."""
        return None if self._gold is None else self._gold[1]

    def attach_experts(self, experts: Sequence[Any] | pl.Series) -> int:
        """Mark these volunteers as experts (their labels; those without votes here are left out); returns how many
        have votes."""
        wanted = pl.Series("volunteer", list(experts) if not isinstance(experts, pl.Series) else experts)
        codes = positions_in(wanted, self.volunteers)
        self.experts = self.volunteers.gather(np.unique(codes[codes >= 0])) if (codes >= 0).any() else None
        return 0 if self.experts is None else len(self.experts)

    def expert_mask(self, volunteers: np.ndarray | None = None) -> np.ndarray:
        """Whether each volunteer (codes; all by default) is an expert."""
        mask = np.zeros(self.n_volunteers, bool)
        if self.experts is not None:
            mask[positions_in(self.experts, self.volunteers)] = True
        return mask if volunteers is None else mask[volunteers]

    # ------------------------------------------------------------------ sizes and views
    @property
    def n_votes(self) -> int:
        return len(self._codes["subject"])

    @property
    def n_subjects(self) -> int:
        return len(self.subjects)

    @property
    def n_volunteers(self) -> int:
        return len(self.volunteers)

    @property
    def n_questions(self) -> int:
        return len(self.questions)

    @property
    def n_answers(self) -> list[int]:
        return [len(a) for a in self.answers]

    def question_slice(self, question: int) -> slice:
        """Rows of :attr:`table` holding the votes on question code ``question`` (sorted by subject)."""
        return slice(int(self._question_bounds[question]), int(self._question_bounds[question + 1]))

    @property
    def times(self) -> pl.Series | None:
        """Every vote's time as read (Float64 numbers or Int64 microseconds), in table order; ``None`` without times."""
        return self._time

    def codes(self, role: str) -> np.ndarray:
        """Every vote's code of ``role`` (subject, volunteer, question, answer, or row), in table order, without
        building :attr:`table` (whose experience columns cost two sorts of every vote)."""
        return self._codes[role]

    def arrays(self, question: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(subject, volunteer, answer) int32 codes of one question's votes, sorted by subject."""
        part = self.question_slice(question)
        return self._codes["subject"][part], self._codes["volunteer"][part], self._codes["answer"][part]

    def iter_questions(self) -> Iterator[tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
        for q in range(self.n_questions):
            yield (q, *self.arrays(q))

    def labels_of(self, role: str, codes: Sequence[int] | np.ndarray, question: int | None = None) -> pl.Series:
        """Original labels of ``codes`` for ``role`` (subject, volunteer, question, or answer of ``question``)."""
        return self._label_map(role, question).gather(np.asarray(codes, dtype=np.int64))

    def codes_of(self, role: str, labels: Sequence[Any] | pl.Series, question: int | None = None) -> np.ndarray:
        """Codes of original ``labels`` for ``role``; -1 for a label the votes do not hold."""
        wanted = pl.Series(list(labels) if not isinstance(labels, pl.Series) else labels)
        return positions_in(wanted, self._label_map(role, question))

    def _label_map(self, role: str, question: int | None) -> pl.Series:
        if role == "answer":
            if question is None:
                if self.n_questions != 1:
                    raise ValueError("answers are coded per question: give the question code")
                question = 0
            return self.answers[question]
        maps = {"subject": self.subjects, "volunteer": self.volunteers, "question": self.questions}
        if role not in maps:
            raise ValueError(f"role must be subject, volunteer, question or answer, not {role!r}")
        return maps[role]

    def question_code(self, label: Any) -> int:
        matches = (self.questions == label).arg_true()
        if len(matches) == 0:
            raise KeyError(f"no question {label!r}; the questions are {self.questions.to_list()}")
        return int(matches[0])

    def to_frame(self, experience: bool = True, rows: slice | None = None) -> pl.DataFrame:
        """The votes with their original labels (and codes), in table order; ``experience=False`` leaves out the
        experience columns (and does not compute them: two sorts of every vote); ``rows`` a slice of the table
        (so a large table can be written a part at a time)."""
        start, stop, _ = (rows or slice(None)).indices(self.n_votes)
        if experience:
            t = self.table.slice(start, stop - start)
        else:
            t = pl.DataFrame(
                {
                    **{c: self._codes[c][start:stop] for c in ("subject", "volunteer", "question", "answer", "row")},
                    "time": self._time.slice(start, stop - start)
                    if self._time is not None
                    else _no_times(stop - start),
                }
            )
        answer_labels = _answer_labels(self.answers, t["question"].to_numpy(), t["answer"].to_numpy())
        return t.select(
            self.subjects.gather(t["subject"]).alias("subject"),
            self.volunteers.gather(t["volunteer"]).alias("volunteer"),
            self.questions.gather(t["question"]).alias("question"),
            answer_labels.alias("answer"),
            pl.col("row"),
            pl.col("time"),
            *([pl.col("experience"), pl.col("experience_question")] if experience else []),
        )

    def __repr__(self) -> str:
        return (
            f"Votes({self.n_votes:,} votes: {self.n_subjects:,} subjects, {self.n_volunteers:,} volunteers, "
            f"{self.n_questions} question{'s' if self.n_questions != 1 else ''} with "
            f"{'/'.join(map(str, self.n_answers))} answers)"
        )


class _HandedOver:
    """A table handed to :meth:`Votes.from_frame` by a reader that keeps no reference to it: taken out on entry, so
    it is freed once its labels are coded (the decorator's arguments would otherwise hold it to the end: at 100M
    votes, gigabytes through the sort)."""

    def __init__(self, frame: pl.DataFrame) -> None:
        self._frame: pl.DataFrame | None = frame

    def take(self) -> pl.DataFrame:
        frame, self._frame = self._frame, None
        assert frame is not None, "a handed-over table is taken once"
        return frame


def positions_in(labels: pl.Series, vocabulary: pl.Series) -> np.ndarray:
    """Each label's position (int64) in ``vocabulary``, -1 for a label it does not hold."""
    known = pl.DataFrame({"label": vocabulary, "code": np.arange(len(vocabulary), dtype=np.int64)})
    wanted = pl.DataFrame({"label": labels}).with_columns(pl.col("label").cast(vocabulary.dtype, strict=False))
    return wanted.join(known, on="label", how="left", maintain_order="left")["code"].fill_null(-1).to_numpy()


def _extend_labels(known: pl.Series, labels: pl.Series, source: str, role: str) -> tuple[pl.Series, np.ndarray]:
    """``known`` with the labels of ``labels`` it lacks appended, and each label's code in it (int64). Labels of
    another type are read as ``known``'s type (integer ids read back as text match), or refused in one line."""
    if labels.dtype != known.dtype and len(known):
        cast = labels.cast(known.dtype, strict=False)
        if cast.null_count() > labels.null_count():
            bad = labels.filter(cast.is_null() & labels.is_not_null())[0]
            raise InputError(
                f"{source}: column {role}: {bad!r} is not a {role} label of the kind the votes before "
                f"have ({known.dtype})"
            )
        labels = cast
    code = positions_in(labels, known).copy()
    unseen = code < 0
    if unseen.any():
        code[unseen] = len(known) + np.arange(int(unseen.sum()))
        known = pl.concat([known, labels.filter(pl.Series(unseen)).rename(known.name)])
    return known, code


def _combined_times(old: Votes, new: Votes) -> tuple[pl.Series | None, pl.Series | None]:
    """Both tables' times as numbers (a fit folder keeps dates as microseconds), or (None, None) when neither has
    any. A Panoptes export's times are places in its own time order, so a new export's come after the old one's."""
    a, b = old.times, new.times
    if a is None and b is None:
        return None, None
    a = (a if a is not None else pl.repeat(None, old.n_votes, dtype=pl.Float64, eager=True)).cast(pl.Float64)
    b = (b if b is not None else pl.repeat(None, new.n_votes, dtype=pl.Float64, eager=True)).cast(pl.Float64)
    if old.columns.get("format") == "panoptes" and new.columns.get("format") == "panoptes" and a.null_count() < len(a):
        b = b + (float(a.max()) + 1)  # type: ignore[arg-type]  # a float column's max is a float
    return a.rename("time"), b.rename("time")


def _no_times(n: int) -> pl.Series:
    """A time column of ``n`` missing times (without a Python list of ``n`` Nones)."""
    return pl.repeat(None, n, dtype=pl.Float64, eager=True).alias("time")


def _text_type(dtype: pl.DataType) -> pl.DataType:
    """The type a label column is coded as: categorical labels are their text, any other type itself."""
    return pl.String() if isinstance(dtype, (pl.Categorical, pl.Enum)) else dtype


def _plain_categoricals(frame: pl.DataFrame, columns: Sequence[str]) -> pl.DataFrame:
    """Categorical label columns (a Parquet dictionary column, a pandas category) are their labels as text: those
    with a blank label (read as missing, as in a text column) are cast to text here; the others stay categorical,
    and :func:`_codes` codes them from their few distinct labels without writing every vote's text."""
    blank = []
    for name in columns:
        if isinstance(frame.schema[name], (pl.Categorical, pl.Enum)):
            labels = frame[name].unique().drop_nulls().cast(pl.String)
            if (labels.str.strip_chars() == "").any():
                blank.append(name)
    return frame.with_columns(pl.col(blank).cast(pl.String)) if blank else frame


def _codes(column: pl.Series) -> tuple[pl.Series, pl.Series]:
    """Sorted unique labels and the Int32 code (position among them) of every value."""
    if isinstance(column.dtype, (pl.Categorical, pl.Enum)):  # labels sorted as text; codes from a small table
        present = column.unique().drop_nulls()
        text = present.cast(pl.String)
        order = text.arg_sort().to_numpy()
        physical = present.to_physical().to_numpy().astype(np.int64)
        code_of = np.zeros(int(physical.max()) + 1 if len(physical) else 1, np.int32)
        code_of[physical[order]] = np.arange(len(order), dtype=np.int32)
        return text.gather(order).rename(column.name), pl.Series(code_of[column.to_physical().to_numpy()])
    if column.dtype.is_integer():
        values = column.to_numpy()
        low, high = int(values.min()), int(values.max())
        if high - low <= 4 * len(values) + 1_000_000:  # compact range: a counting pass, no sort
            offset = np.subtract(values, low, dtype=np.int32 if high - low < 2**31 else np.int64, casting="unsafe")
            present = _present(offset, high - low + 1)
            labels = np.flatnonzero(present) + low
            if len(labels) == high - low + 1:  # every id in the range is there: the code is the offset
                return pl.Series(column.name, labels, dtype=column.dtype), pl.Series(offset)
            code_of = np.cumsum(present, dtype=np.int32) - 1
            return pl.Series(column.name, labels, dtype=column.dtype), pl.Series(code_of[offset])
    sorted_labels = column.unique().sort()
    if column.dtype == pl.Utf8:
        codes = column.cast(pl.Enum(sorted_labels)).to_physical()
    else:
        codes = column.rank("dense") - 1
    return sorted_labels, codes.cast(pl.Int32)


def _present(codes: np.ndarray, size: int) -> np.ndarray:
    """Whether each of the codes 0..size-1 occurs in ``codes``: one scatter of True (half a ``bincount``'s time, which
    also counts and first widens the codes to int64)."""
    present = np.zeros(size, bool)
    present[codes] = True
    return present


def _experience(
    volunteer: np.ndarray, question: np.ndarray, time_order: np.ndarray, n_questions: int
) -> tuple[np.ndarray, np.ndarray]:
    """Each vote's experience (int32): its volunteer's earlier votes in ``time_order`` (the votes' indices in time
    order), overall and on its question."""
    n = len(volunteer)
    position = np.empty(n, np.int64)
    position[time_order] = np.arange(n)
    volunteer = volunteer.astype(np.int64)
    overall = _rank_within(volunteer, position)
    per_question = overall if n_questions == 1 else _rank_within(volunteer * n_questions + question, position)
    return overall.astype(np.int32), per_question.astype(np.int32)


def _rank_within(group: np.ndarray, position: np.ndarray) -> np.ndarray:
    """For each row, how many rows of the same group come earlier in ``position`` order."""
    n = len(group)
    order = argsort_distinct(group * n + position)
    g = group[order]
    starts = np.zeros(n, np.int64)
    new_group = run_boundaries(g)
    starts[new_group] = np.flatnonzero(new_group)
    ranks = np.empty(n, np.int64)
    ranks[order] = np.arange(n) - np.maximum.accumulate(starts)
    return ranks


def _answer_labels(answers: list[pl.Series], question: np.ndarray, answer: np.ndarray) -> pl.Series:
    """Original answer labels for (question code, answer code) pairs."""
    flat = pl.concat(answers) if len(answers) > 1 else answers[0]
    offsets = np.concatenate([[0], np.cumsum([len(a) for a in answers])])
    return flat.gather(offsets[question] + answer)


def _code_given_answers(
    work: pl.DataFrame, questions: pl.Series, answers: Mapping[Any, Sequence[Any]] | Sequence[Any], source: str
) -> tuple[pl.DataFrame, list[pl.Series], int]:
    if not isinstance(answers, Mapping):
        if len(questions) != 1:
            raise InputError(f"{source}: answers given as a list, but the table has {len(questions)} questions")
        answers = {questions[0]: answers}
    dtype = work.schema["answer"]
    answer_sets, rows = [], []
    for code, q in enumerate(questions.to_list()):
        if q in answers:
            labels = pl.Series("answer", list(answers[q])).cast(dtype, strict=False)
        else:  # not given: the answers seen, sorted
            labels = work.filter(pl.col("question_code") == code)["answer"].unique().sort()
        if labels.null_count() or labels.n_unique() != len(labels):
            raise InputError(f"{source}: the answer set of question {q!r} has repeated or unreadable values")
        answer_sets.append(labels)
        rows.append(
            pl.DataFrame(
                {
                    "question_code": pl.Series([code] * len(labels), dtype=pl.Int32),
                    "answer": labels,
                    "answer_code": pl.Series(range(len(labels)), dtype=pl.Int32),
                }
            )
        )
    coded = work.join(pl.concat(rows), on=["question_code", "answer"], how="left")
    outside = coded["answer_code"].is_null()
    return coded.filter(~outside), answer_sets, int(outside.sum())


def _compact(codes: dict[str, np.ndarray], subjects: pl.Series, volunteers: pl.Series):
    """Drop labels that have no votes left and re-code densely."""
    for name, labels in (("subject", subjects), ("volunteer", volunteers)):
        used = _present(codes[name], len(labels))
        if used.all():
            continue
        remap = np.cumsum(used, dtype=np.int32) - 1
        codes[name] = remap[codes[name]]
        if name == "subject":
            subjects = labels.filter(pl.Series(used))
        else:
            volunteers = labels.filter(pl.Series(used))
    return codes, subjects, volunteers
