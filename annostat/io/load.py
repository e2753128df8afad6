"""One entry point for data: any supported input becomes a :class:`~annostat.votes.Votes` table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from annostat.errors import InputError
from annostat.io.panoptes import PanoptesExport, _columns, is_panoptes_export, read_panoptes
from annostat.io.tables import _integer_if_lossless
from annostat.trees import EXTRA_QUESTIONS, TREES
from annostat.votes import Votes

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

    Questions of a tree preset take the tree's full answer sets (so an answer nobody chose still counts);
    ``votes.provenance["export"]`` holds the classification-level accounting.
    """
    export = read_panoptes(path, **options)
    tree = export.report.tree
    # multiple-answer tasks are yes/no questions, whatever was chosen
    answers = {q: ["yes", "no"] for q in export.votes["question"].unique().to_list() if "/" in q}
    if tree:
        answers = {q.name: list(q.answers) for q in TREES[tree].questions.values()}
        answers.update({q: list(a) for q, a in EXTRA_QUESTIONS.get(tree, {}).items()})
    frame = export.votes.with_columns(_integer_if_lossless(export.votes["subject"]))
    votes = Votes.from_frame(frame, subject="subject", volunteer="volunteer", question="question", answer="answer",
                             time="created_at", duplicates="all", answers=answers, source=str(path))
    votes.provenance = {"export": export.report.to_dict()}
    return votes, export


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
