"""One entry point for data: any supported input becomes a :class:`~annostat.votes.Votes` table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from annostat.errors import InputError
from annostat.io.panoptes import PanoptesExport, _columns, is_panoptes_export, read_panoptes
from annostat.io.tables import _integer_if_lossless
from annostat.trees import EXTRA_QUESTIONS, TREES
from annostat.votes import Votes, _codes

FORMATS = ("auto", "table", "panoptes")


def detect_format(path: str | Path) -> str:
    """``panoptes`` for a classification export (recognised by its columns), else ``table``."""
    path = Path(path)
    if path.suffix.lower() in (".parquet", ".pq"):
        return "table"
    if not path.exists():
        raise InputError(f"{path}: file not found")
    return "panoptes" if is_panoptes_export(_columns(path)) else "table"


def votes_from_panoptes(path: str | Path, **options: Any) -> tuple[Votes, PanoptesExport]:
    """Read a Panoptes export (options as :func:`annostat.io.panoptes.read_panoptes`) into votes.

    Subjects and volunteers are coded once per classification, questions and answers once per label, so a large
    export never becomes a table of strings per vote. Questions of a tree preset take the tree's full answer sets
    (an answer nobody chose still counts); multiple-answer tasks are yes/no questions. Experience follows the
    classifications' ``created_at`` order. ``votes.provenance["export"]`` holds the classification accounting.
    """
    export = read_panoptes(path, **options)
    c, answers = export.classifications, export.answers
    subjects, subject_code = _codes(_integer_if_lossless(c["subject"]))
    volunteers, volunteer_code = _codes(c["volunteer"])
    # each vote's classification: votes and classifications are both sorted by row, and every used
    # classification has at least one vote
    vote_rows = answers["row"].to_numpy()
    index = np.empty(len(vote_rows), np.int32)
    index[0] = 0
    np.cumsum(vote_rows[1:] != vote_rows[:-1], out=index[1:])
    order = np.argsort(c["created_at"].to_numpy(), kind="stable")  # classifications in time order
    position = np.empty(c.height, np.int32)
    position[order] = np.arange(c.height, dtype=np.int32)

    questions, question_code = _category_codes(answers["question"])
    labels, answer_global = _category_codes(answers["answer"])
    tree = export.report.tree
    given = {q.name: list(q.answers) for q in TREES[tree].questions.values()} if tree else {}
    given.update({q: list(a) for q, a in EXTRA_QUESTIONS.get(tree or "", {}).items()})
    pairs = np.flatnonzero(np.bincount(question_code.astype(np.int64) * len(labels) + answer_global,
                                       minlength=len(questions) * len(labels)))
    seen: dict[str, list[str]] = {}
    for pair in pairs:
        seen.setdefault(questions[int(pair // len(labels))], []).append(labels[int(pair % len(labels))])
    answer_sets, lookup = [], np.full((len(questions), len(labels)), -1, np.int32)
    for q, question in enumerate(questions.to_list()):
        names = ["yes", "no"] if "/" in question else given.get(question, sorted(seen.get(question, [])))
        answer_sets.append(pl.Series("answer", names, dtype=pl.Utf8))
        for a, label in enumerate(labels.to_list()):
            if label in names:
                lookup[q, a] = names.index(label)
    answer_code = lookup[question_code, answer_global]
    assert (answer_code >= 0).all(), "an answer outside its question's answer set"
    votes = Votes.from_codes(
        subject=subject_code.to_numpy()[index], volunteer=volunteer_code.to_numpy()[index],
        question=question_code, answer=answer_code, row=vote_rows,
        time=pl.Series("created_at", position[index]), subjects=subjects, volunteers=volunteers,
        questions=questions.rename("question"), answers=answer_sets, duplicates="all",
        columns={"format": "panoptes"}, source=str(path), provenance={"export": export.report.to_dict()},
    )
    return votes, export


def _category_codes(column: pl.Series) -> tuple[pl.Series, np.ndarray]:
    """Sorted labels of a categorical column and each value's position among them, from the physical codes
    (O(n), no string per row)."""
    physical = column.to_physical().to_numpy().astype(np.int64)
    present = np.flatnonzero(np.bincount(physical))
    first = np.zeros(int(physical.max()) + 1, np.int64)
    first[physical] = np.arange(len(physical))  # a row holding each code (any one will do)
    names = column.gather(first[present]).cast(pl.Utf8)
    order = np.argsort(names.to_numpy(), kind="stable")
    position = np.empty(int(physical.max()) + 1, np.int32)
    position[present[order]] = np.arange(len(present), dtype=np.int32)
    return names.gather(order).rename(column.name), position[physical]


def load_votes(path: str | Path, format: str = "auto", **options: Any) -> tuple[Votes, PanoptesExport | None]:
    """Votes from a long table (CSV/TSV/Parquet) or a Panoptes classification export.

    Table options are :meth:`Votes.from_frame`'s (column names, duplicate policy); export options are
    :func:`annostat.io.panoptes.read_panoptes`'s. Returns the votes and, for an export, the export (with its
    quarantine).
    """
    if format not in FORMATS:
        raise InputError(f"format {format!r} is not one of {', '.join(FORMATS)}")
    if format == "auto":
        format = detect_format(path)
    if format == "panoptes":
        return votes_from_panoptes(path, **options)
    return Votes.read(path, **options), None
