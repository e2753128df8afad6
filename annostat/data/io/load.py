"""One entry point for data: any supported input becomes a :class:`~annostat.data.votes.Votes` table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from annostat.data._memory import with_plain_pages
from annostat.data.gold import Gold
from annostat.data.io.panoptes import PanoptesExport, _columns, is_panoptes_export, read_panoptes
from annostat.data.io.tables import _integer_if_lossless
from annostat.data.sorting import run_boundaries, stable_argsort
from annostat.data.subjects import subjects_from_subject_data
from annostat.data.trees import EXTRA_QUESTIONS, TREES
from annostat.data.votes import Votes, _answer_labels, _codes
from annostat.errors import InputError

FORMATS = ("auto", "table", "panoptes")


def detect_format(path: str | Path) -> str:
    """``panoptes`` for a classification export (recognised by its columns), else ``table``."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: file not found")
    if path.is_dir():
        raise InputError(f"{path}: is a folder, expected a CSV or Parquet file")
    if path.suffix.lower() in (".parquet", ".pq"):
        return "table"
    return "panoptes" if is_panoptes_export(_columns(path)) else "table"


@with_plain_pages
def votes_from_panoptes(path: str | Path, **options: Any) -> tuple[Votes, PanoptesExport]:
    """Read a Panoptes export (options as :func:`annostat.data.io.panoptes.read_panoptes`) into votes.

    Subjects and volunteers are coded once per classification, questions and answers once per label, so a large
    export never becomes a table of strings per vote. Questions of a tree preset take the tree's full answer sets
    (an answer nobody chose still counts); multiple-answer tasks are yes/no questions. Experience follows the
    classifications' ``created_at`` order. ``votes.provenance["export"]`` holds the classification accounting, and
    ``votes.subject_table`` the subjects' metadata from ``subject_data``.
    """
    export = read_panoptes(path, **options)
    c, codes = export.classifications, export.codes
    subjects, subject_code = _codes(_integer_if_lossless(c["subject"]))
    subject_table = None
    if export.subject_data is not None:
        ids = export.subject_data["subject"].cast(subjects.dtype)
        subject_table = subjects_from_subject_data(ids, export.subject_data["subject_data"], str(path))
    volunteers, volunteer_code = _codes(c["volunteer"])
    subject_code, volunteer_code = subject_code.to_numpy(), volunteer_code.to_numpy()
    # each vote's classification: votes and classifications are both sorted by row, and every used
    # classification has at least one vote
    vote_rows = codes.row
    index = np.cumsum(run_boundaries(vote_rows), dtype=np.int32)
    index -= 1
    counts = np.bincount(index, minlength=c.height)
    starts = np.cumsum(counts) - counts

    # questions in sorted order; each question's answers: the tree's, yes/no, or those seen (sorted)
    questions = sorted(codes.questions)
    question_position = np.empty(max(len(codes.questions), 1), np.int32)
    question_position[[codes.questions.index(q) for q in questions]] = np.arange(len(questions), dtype=np.int32)
    question_code = question_position[codes.question]
    assert (codes.answer >= 0).all(), "a vote without an answer"
    seen_pairs = np.zeros((len(questions), max(len(codes.answers), 1)), bool)
    seen_pairs[question_code, codes.answer] = True
    tree = export.report.tree
    given = {q.name: list(q.answers) for q in TREES[tree].questions.values()} if tree else {}
    given.update({q: list(a) for q, a in EXTRA_QUESTIONS.get(tree or "", {}).items()})
    answer_sets, lookup = [], np.full((len(questions), max(len(codes.answers), 1)), -1, np.int32)
    for q, question in enumerate(questions):
        seen = sorted(codes.answers[a] for a in np.flatnonzero(seen_pairs[q]))
        # a multiple-answer task's answer (``T10/ring``) is a yes/no question; a task id that itself holds "/" is not
        names = ["yes", "no"] if "/" in question and set(seen) <= {"yes", "no"} else given.get(question, seen)
        answer_sets.append(pl.Series("answer", names, dtype=pl.Utf8))
        for a, label in enumerate(codes.answers):
            if label in names:
                lookup[q, a] = names.index(label)
    questions = pl.Series("question", questions, dtype=pl.Utf8)

    # the table's order (question, subject, row) without a sort of the votes: classifications in (subject, row)
    # order, their votes in blocks, then a stable counting sort by question
    final = _vote_order(index, counts, starts, subject_code, question_code, len(questions))
    # what each vote needs, packed into one int64 so that the votes are moved into that order by one gather:
    # classification, place within it, question, answer
    answer_code = lookup[question_code, codes.answer]
    assert (answer_code >= 0).all(), "an answer outside its question's answer set"
    offset = np.arange(len(index), dtype=np.int64)
    offset -= starts[index]
    bits = [max(int(x), 1).bit_length() for x in (counts.max(), len(questions), lookup.max() + 1)]
    if max(c.height, 1).bit_length() + sum(bits) > 63:
        raise InputError(f"{path}: too many classifications or answers to pack a vote into 64 bits")
    packed = index.astype(np.int64)
    del index
    for part, width in zip((offset, question_code, answer_code), bits):
        packed <<= width
        packed |= part
    del offset, question_code, answer_code
    packed = packed[final]
    del final
    answer_f = (packed & ((1 << bits[2]) - 1)).astype(np.int32)
    packed >>= bits[2]
    question_f = (packed & ((1 << bits[1]) - 1)).astype(np.int32)
    packed >>= bits[1]
    offset_f = (packed & ((1 << bits[0]) - 1)).astype(np.int32)
    packed >>= bits[0]
    index_f = packed.astype(np.int32)
    del packed
    subject_f, volunteer_f = subject_code[index_f], volunteer_code[index_f]
    row_f = c["row"].to_numpy().astype(np.int32)[index_f]
    gold_c = c["gold_standard"].to_numpy() if "gold_standard" in c.columns else np.zeros(c.height, bool)
    gold_votes = gold_c[index_f] if gold_c.any() else None
    # time: each vote's place in time order (classifications by created_at, ties by row; a classification's votes
    # in the order of its annotation): distinct, so experience never depends on how the votes are laid out
    order = np.argsort(c["created_at"].to_numpy(), kind="stable")
    first = np.empty(c.height, np.int64)
    first[order] = np.cumsum(counts[order]) - counts[order]
    time_f = first.astype(np.int32 if len(vote_rows) < 2**31 else np.int64)[index_f]
    time_f += offset_f
    del order, first, index_f, offset_f
    # gold-standard classifications (an expert's, marked gold_standard) are the subjects' gold answers, not votes
    gold = None
    dropped = {}
    if gold_votes is not None:
        gold = Gold(
            pl.DataFrame(
                {
                    "subject": subjects.gather(subject_f[gold_votes]),
                    "question": questions.gather(question_f[gold_votes]),
                    "answer": _answer_labels(answer_sets, question_f[gold_votes], answer_f[gold_votes]),
                    "row": row_f[gold_votes].astype(np.int64),
                }
            ),
            f"{path} (gold_standard classifications)",
        )
        keep = ~gold_votes
        subject_f, volunteer_f, question_f, answer_f, row_f, time_f = (
            a[keep] for a in (subject_f, volunteer_f, question_f, answer_f, row_f, time_f)
        )
        dropped = {"gold_standard classification (a gold answer)": int(gold_votes.sum())}
    votes = Votes.from_codes(
        subject=subject_f,
        volunteer=volunteer_f,
        question=question_f,
        answer=answer_f,
        row=row_f,
        time=pl.Series("created_at", time_f),
        subjects=subjects,
        volunteers=volunteers,
        questions=questions,
        answers=answer_sets,
        duplicates="all",
        dropped=dropped,
        columns={"format": "panoptes"},
        source=str(path),
        provenance={"export": export.report.to_dict()},
        in_order=gold is None,
        subject_table=subject_table,
    )
    if gold is not None:
        votes.attach_gold(gold)
    if "expert" in c.columns and c["expert"].any():  # classifications made in expert mode: their volunteers
        votes.attach_experts(c.filter(pl.col("expert"))["volunteer"].unique())
    return votes, export


def _vote_order(index, counts, starts, subject_code, question_code, n_questions: int) -> np.ndarray:
    """Permutation of the votes into (question, subject, row) order, for votes in row order where vote n belongs to
    classification ``index[n]`` (ascending; ``counts`` votes from ``starts``) of subject ``subject_code[index[n]]``:
    classifications sorted by subject, their votes moved in blocks, then a stable counting sort by question."""
    N = len(index)
    dtype = np.int32 if N < 2**31 else np.int64
    by_subject = stable_argsort(subject_code)
    lengths = counts[by_subject]
    moved = np.cumsum(lengths) - lengths
    shift = (starts[by_subject] - moved).astype(dtype)
    perm = np.repeat(shift, lengths)
    perm += np.arange(N, dtype=dtype)
    del lengths, moved, shift, by_subject
    small = np.int8 if n_questions <= 127 else np.int16 if n_questions <= 32767 else np.int32
    by_question = np.argsort(question_code[perm].astype(small), kind="stable")
    return perm[by_question]


def load_votes(path: str | Path, format: str = "auto", **options: Any) -> tuple[Votes, PanoptesExport | None]:
    """Votes from a long table (CSV/TSV/Parquet) or a Panoptes classification export.

    Table options are :meth:`Votes.from_frame <annostat.data.votes.Votes.from_frame>`'s (column names, duplicate
    policy); export options are :func:`annostat.data.io.panoptes.read_panoptes`'s. Returns the votes and, for an export,
    the export (with its quarantine).
    """
    if format not in FORMATS:
        raise InputError(f"format {format!r} is not one of {', '.join(FORMATS)}")
    if format == "auto":
        format = detect_format(path)
    if format == "panoptes":
        return votes_from_panoptes(path, **options)
    return Votes.read(path, **options), None
