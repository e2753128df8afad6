"""Gold-standard answers and experts: what a project knows about some subjects and some volunteers.

**Gold answers** are true answers known for some (subject, question) pairs: from an expert's classifications marked
``gold_standard`` in a Panoptes export, or a table (``subject, question, answer``; one question without the question
column). Every model fixes those subjects' answers (crowd-kit's ``true_labels``): their posteriors are the gold
answer, and their votes measure the volunteers against it.

**Experts** are volunteers a project knows to be experts (the Panoptes export's ``expert`` column, or a list): the
hierarchical models give them a population prior of their own, and ``volunteers.parquet`` says who is one.

Both travel with the votes (``votes.gold``, ``votes.experts``) so that every model and every later command sees them;
a fit folder keeps them (``gold.parquet``, the ``expert`` column of ``volunteers.parquet``).

Example:
    >>> import polars as pl
    >>> from annostat import Votes
    >>> votes = Votes.from_frame(pl.DataFrame({"subject": [1, 1, 2, 2], "volunteer": ["a", "b", "a", "b"],
    ...                                        "answer": ["smooth", "smooth", "smooth", "featured"]}))
    >>> gold = Gold.from_frame(pl.DataFrame({"subject": [2], "answer": ["featured"]}))
    >>> votes.attach_gold(gold)["used"]
    1
    >>> subjects, answers = votes.gold_codes(0)
    >>> votes.subjects.gather(subjects).to_list(), votes.answers[0].gather(answers).to_list()
    ([2], ['featured'])
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from annostat.errors import InputError, where

if TYPE_CHECKING:
    import pandas as pd

GOLD_COLUMNS = ("subject", "question", "answer")


class Gold:
    """Known true answers, one row per (subject, question): labels as read, and the file they came from."""

    def __init__(self, frame: pl.DataFrame, source: str = "<gold answers>") -> None:
        missing = [c for c in ("subject", "answer") if c not in frame.columns]
        if missing:
            raise InputError(
                f"{source}: no column(s) {', '.join(missing)} (gold answers need subject and answer, "
                "and question when the votes have several)"
            )
        if "question" not in frame.columns:
            frame = frame.with_columns(pl.lit(None, dtype=pl.String).alias("question"))
        if "row" not in frame.columns:
            frame = frame.with_row_index("row")
        frame = frame.select("subject", "question", "answer", pl.col("row").cast(pl.Int64))
        for column in ("subject", "answer"):
            empty = frame[column].is_null()
            if empty.any():
                raise InputError(
                    f"{where(source, column=column, row=int(frame['row'][int(np.flatnonzero(empty.to_numpy())[0])]) + 1)}: empty"
                )
        counts = frame.group_by("subject", "question").agg(pl.col("answer").n_unique().alias("n"), pl.col("row").min())
        conflict = counts.filter(pl.col("n") > 1).sort("row")
        if conflict.height:
            first = conflict.row(0, named=True)
            raise InputError(
                f"{where(source, column='answer', row=first['row'] + 1)}: subject {first['subject']!r} "
                f"has {first['n']} different gold answers"
                + (f" to {first['question']!r}" if first["question"] is not None else "")
            )
        self.frame = frame.unique(["subject", "question"], keep="first", maintain_order=True)
        self.source = source

    @classmethod
    def read(
        cls, path: str | Path, *, subject: str = "subject", question: str = "question", answer: str = "answer"
    ) -> Gold:
        """Gold answers from a CSV/TSV or Parquet table (``question`` may be absent for one question)."""
        from annostat.data.io.tables import read_table

        return cls.from_frame(read_table(path), subject=subject, question=question, answer=answer, source=str(path))

    @classmethod
    def from_frame(
        cls,
        frame: pl.DataFrame | pd.DataFrame,
        *,
        subject: str = "subject",
        question: str = "question",
        answer: str = "answer",
        source: str = "<gold answers>",
    ) -> Gold:
        """Gold answers from a pandas or polars DataFrame."""
        if not isinstance(frame, pl.DataFrame):
            frame = pl.from_pandas(frame)
        names = {subject: "subject", answer: "answer", **({question: "question"} if question in frame.columns else {})}
        absent = [c for c in (subject, answer) if c not in frame.columns]
        if absent:
            raise InputError(f"{source}: no column(s) {', '.join(absent)} (the columns are {', '.join(frame.columns)})")
        return cls(frame.with_row_index("row").select("row", *names).rename(names), source)

    def __len__(self) -> int:
        return self.frame.height

    def __repr__(self) -> str:
        return f"Gold({len(self):,} gold answers from {self.source})"

    def merge(self, other: Gold) -> Gold:
        """Both tables' gold answers (a pair in both must have the same answer)."""
        both = pl.concat(
            [self.frame.with_columns(pl.col("row")), other.frame.with_columns(pl.col("row"))], how="vertical_relaxed"
        )
        return Gold(both, f"{self.source} + {other.source}")


def code_gold(
    gold: Gold, subjects: pl.Series, questions: pl.Series, answers: list[pl.Series]
) -> tuple[dict[int, tuple[np.ndarray, np.ndarray]], dict[str, Any]]:
    """Per question code: the gold subjects' codes (sorted) and their answers' codes; and the accounting (rows,
    used, and those not used by reason). An answer outside its question's answer set is an error naming the row."""
    frame = gold.frame
    if frame["question"].null_count() == frame.height:  # one question: the votes must have one too
        if len(questions) != 1:
            raise InputError(f"{gold.source}: no question column, and the votes have {len(questions)} questions")
        question_code = np.zeros(frame.height, np.int64)
    else:
        from annostat.data.votes import positions_in

        question_code = positions_in(frame["question"].cast(pl.String), questions.cast(pl.String))
    from annostat.data.votes import positions_in

    subject_code = positions_in(frame["subject"], subjects)
    result: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    unused = {
        "question not in the votes": int((question_code < 0).sum()),
        "subject without votes": int(((question_code >= 0) & (subject_code < 0)).sum()),
    }
    for q in np.unique(question_code[question_code >= 0]):
        rows = np.flatnonzero((question_code == q) & (subject_code >= 0))
        answer_code = positions_in(frame["answer"].gather(rows).cast(answers[q].dtype, strict=False), answers[q])
        bad = np.flatnonzero(answer_code < 0)
        if len(bad):
            r = rows[bad[0]]
            raise InputError(
                f"{where(gold.source, column='answer', row=int(frame['row'][int(r)]) + 1)}: "
                f"{frame['answer'][int(r)]!r} is not an answer of {questions[int(q)]!r} (its answers: "
                f"{', '.join(map(str, answers[q].to_list()))})"
            )
        order = np.argsort(subject_code[rows], kind="stable")
        result[int(q)] = (subject_code[rows][order].astype(np.int64), answer_code[order].astype(np.int64))
    used = int(sum(len(s) for s, _ in result.values()))
    summary = {
        "source": gold.source,
        "rows": frame.height,
        "used": used,
        "not_used": {k: v for k, v in unused.items() if v},
    }
    return result, summary


def read_experts(value: str | Path | Iterable[Any]) -> pl.Series:
    """Expert volunteers: a table with a ``volunteer`` column (CSV/Parquet), or their ids (comma-separated text or a
    list)."""
    if isinstance(value, (str, Path)) and Path(value).is_file():
        from annostat.data.io.tables import read_table

        table = read_table(value)
        column = "volunteer" if "volunteer" in table.columns else table.columns[0]
        return table[column].drop_nulls().unique(maintain_order=True).rename("volunteer")
    if isinstance(value, Path):
        raise InputError(f"{value}: file not found (experts: a table with a volunteer column, or their ids)")
    ids = [v.strip() for v in value.split(",") if v.strip()] if isinstance(value, str) else list(value)
    return pl.Series("volunteer", ids).unique(maintain_order=True)
