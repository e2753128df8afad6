"""Zooniverse Panoptes classification exports: raw project exports to one long votes table, every row accounted for.

One export row is one classification: a volunteer's path through a workflow's tasks for one subject. The reader
turns it into one vote per (classification, question task):

- single-answer tasks: the answer label is normalised and matched to an answer of the classification's *own*
  workflow version (``annostat.data.io.workflows``); multiple-answer tasks become one yes/no question per answer
  (``T10/ring``); ``null`` values are "not answered", not votes; raw API indices (``"value": 0``) are read too;
- drawing, survey, text, slider and other tasks are skipped and counted per type;
- with a tree preset (``annostat.data.trees``), tasks and answers get Zoobot's names, and a version whose answers differ
  from every candidate question is skipped and counted.

Each subject's ``subject_data`` (its metadata: image file name, ``ra``, ``dec``, survey names, the simulator's
``image_id``) is kept, the first text of each subject used, and becomes the votes' subjects table
(:class:`annostat.data.subjects.Subjects`).

Row accounting (``PanoptesReport``): rows read = rows used + rows quarantined + rows skipped by policy.

- quarantined (kept in ``quarantine``, with row number, classification id and reason): malformed JSON in
  ``annotations``, ``metadata`` or ``subject_data``, an unknown workflow version or task, an answer label that
  matches no answer of its version, an unreadable ``created_at``, a missing subject id or volunteer;
- skipped by policy: other workflows, ``seen_before`` re-classifications (default: dropped), a volunteer's repeat
  classifications of a subject (default: the first is kept, as panoptes_aggregation's ``-F first`` is documented
  to do), not-logged-in volunteers (kept by default as pseudo-volunteers ``not-logged-in-<hash>``, flagged;
  ``anonymous="drop"`` drops them), rows with no answered question task.

Reading is batched (polars' lazy CSV scan), and each distinct ``annotations`` text is parsed once, so large exports
stream through in bounded memory.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from annostat.data.io.tables import describe_problems, record_problems, refuse_repeated_names
from annostat.data.io.workflows import Workflow, normalise_label, read_workflows
from annostat.data.sorting import run_boundaries
from annostat.data.trees import EXTRA_QUESTIONS, PANOPTES_TASKS, TREES
from annostat.errors import InputError, first_line

STANDARD_COLUMNS = (
    "classification_id",
    "user_name",
    "user_id",
    "user_ip",
    "workflow_id",
    "workflow_name",
    "workflow_version",
    "created_at",
    "gold_standard",
    "expert",
    "metadata",
    "annotations",
    "subject_data",
    "subject_ids",
)
#: the columns every export must have; ``workflow_id`` too, unless the workflow is named (Galaxy Zoo's reduction
#: scripts pass around exports of one workflow without it: classification_id, user_id, workflow_version, created_at,
#: annotations, subject_ids)
REQUIRED_COLUMNS = ("classification_id", "workflow_version", "created_at", "annotations", "subject_ids")
QUESTION_TYPES = ("single", "multiple")
#: Galaxy Zoo workflows whose tasks map onto a tree preset
KNOWN_WORKFLOW_TREES = {"6122": "gz-decals-dr5"}
BATCH_ROWS = 100_000


def is_panoptes_export(columns: list[str]) -> bool:
    """A classification export is recognised by its columns."""
    return {"classification_id", "annotations", "subject_ids"} <= set(columns)


@dataclass
class PanoptesReport:
    """Where every classification row went."""

    source: str
    rows_read: int = 0
    rows_used: int = 0
    quarantined: Counter = field(default_factory=Counter)
    skipped: Counter = field(default_factory=Counter)
    tasks_skipped_by_type: Counter = field(default_factory=Counter)
    tasks_skipped: Counter = field(default_factory=Counter)  # "T3 (survey)" -> classifications
    votes_skipped: Counter = field(default_factory=Counter)
    anonymous_rows: int = 0
    workflow_id: str | None = None
    workflow_id_given: bool = False  # the export has no workflow_id column: every row is taken as this workflow
    tree: str | None = None
    quarantine: pl.DataFrame | None = None

    @property
    def rows_quarantined(self) -> int:
        return sum(self.quarantined.values())

    @property
    def rows_skipped(self) -> int:
        return sum(self.skipped.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "format": "panoptes",
            "workflow_id": self.workflow_id,
            "tree": self.tree,
            "read": self.rows_read,
            "used": self.rows_used,
            "quarantined": self.rows_quarantined,
            "quarantined_by_reason": dict(self.quarantined),
            "skipped": self.rows_skipped,
            "skipped_by_policy": dict(self.skipped),
            "tasks_skipped_by_type": dict(self.tasks_skipped_by_type),
            "tasks_skipped": dict(self.tasks_skipped),
            "votes_skipped": dict(self.votes_skipped),
            **(
                {"workflow_id_column": "absent: every row taken as the workflow given"}
                if self.workflow_id_given
                else {}
            ),
            "anonymous_rows_used": self.anonymous_rows,
        }

    def summary(self) -> str:
        text = f"{self.rows_read:,} classifications read, {self.rows_used:,} used"
        if self.quarantined:
            text += f", {self.rows_quarantined:,} quarantined ({', '.join(f'{n:,} {k}' for k, n in self.quarantined.items())})"
        if self.skipped:
            text += f", {self.rows_skipped:,} skipped ({', '.join(f'{n:,} {k}' for k, n in self.skipped.items())})"
        return text

    def skipped_tasks(self) -> list[str]:
        """One line per task whose answers are not votes, and per set of votes set aside, with why."""

        def times(n: int) -> str:
            return f"{n:,} classification{'' if n == 1 else 's'}"

        lines = [
            f"task {task} skipped in {times(n)}: only single- and multiple-answer tasks are votes"
            for task, n in sorted(self.tasks_skipped.items())
        ]
        lines += [f"votes skipped in {times(n)}: {why}" for why, n in sorted(self.votes_skipped.items())]
        return lines


# ---------------------------------------------------------------------------------------------------- answers
def _answer_map(workflow: Workflow | None, tree: str | None) -> pl.DataFrame | None:
    """(workflow_version, task) rows with the task type and, per answer label, the question and answer names.

    Columns: workflow_version, task, task_type, label, question, answer, status ("ok" or why the votes are skipped).
    For multiple-answer tasks question is ``task/label`` and answer is filled in per vote (yes/no).
    """
    if workflow is None:
        return None
    candidates = PANOPTES_TASKS.get(tree or "", {})
    tree_answers = {q.name: set(q.answers) for q in TREES[tree].questions.values()} if tree else {}
    tree_answers.update({q: set(a) for q, a in EXTRA_QUESTIONS.get(tree or "", {}).items()})
    rows = []
    for version in workflow.versions.values():
        for task in version.tasks.values():
            labels = task.normalised
            base = {"workflow_version": version.version, "task": task.id, "task_type": task.type}
            if task.type not in QUESTION_TYPES or not labels:
                rows.append({**base, "label": None, "question": None, "answer": None, "status": "ok"})
                continue
            if task.type == "multiple":
                for label in labels:
                    rows.append(
                        {**base, "label": label, "question": f"{task.id}/{label}", "answer": None, "status": "ok"}
                    )
                continue
            mapped, status = None, "ok"
            if task.id in candidates:
                status = f"{task.id} v{version.version}: its answers match no question of the {tree} tree"
                for question, aliases in candidates[task.id]:
                    if all(label in aliases for label in labels) and {
                        aliases[label] for label in labels
                    } == tree_answers.get(question):
                        mapped, status = (question, aliases), "ok"
                        break
            for label in labels:
                question, answer = (mapped[0], mapped[1][label]) if mapped else (task.id, label)
                rows.append({**base, "label": label, "question": question, "answer": answer, "status": status})
    return pl.DataFrame(
        rows,
        schema={
            "workflow_version": pl.Utf8,
            "task": pl.Utf8,
            "task_type": pl.Utf8,
            "label": pl.Utf8,
            "question": pl.Utf8,
            "answer": pl.Utf8,
            "status": pl.Utf8,
        },
    )


_ANNOTATION_SCHEMA = {"annotations": pl.Utf8, "task": pl.Utf8, "kind": pl.Utf8, "value": pl.Utf8}


def _parse_annotation(text: str) -> list[tuple]:
    """One annotations text -> (task, kind, value) items, one per answer chosen. Kinds: null (not answered),
    label, index, labels (a multiple-answer value; an empty list gives one item with value None), indices,
    other:<shape>, malformed, empty."""
    try:
        items = json.loads(text)
        if not isinstance(items, list):
            raise TypeError
    except (ValueError, TypeError):
        return [(None, "malformed", None)]
    if not items:
        return [(None, "empty", None)]
    out: list[tuple[str | None, str, str | None]] = []
    for item in items:
        if not isinstance(item, dict) or "task" not in item:
            return [(None, "malformed", None)]
        task, value = str(item["task"]), item.get("value")
        if value is None:
            out.append((task, "null", None))
        elif isinstance(value, str):
            out.append((task, "label", _normalised(value)))
        elif isinstance(value, bool):
            out.append((task, "other:boolean", None))
        elif isinstance(value, int):
            out.append((task, "index", str(value)))
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            out.extend((task, "labels", _normalised(v)) for v in value) if value else out.append((task, "labels", None))
        elif isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            out.extend((task, "indices", str(v)) for v in value) if value else out.append((task, "indices", None))
        else:
            out.append((task, "other:structured", None))
    return out


@lru_cache(maxsize=65536)
def _normalised(label: str) -> str:
    return normalise_label(label)


class _AnnotationCache:
    """Parsed annotation texts, kept across batches: each distinct text is parsed once per export."""

    def __init__(self) -> None:
        self.frame = pl.DataFrame(schema=_ANNOTATION_SCHEMA)
        self.known: set[str] = set()

    def items(self, texts: pl.Series) -> pl.DataFrame:
        distinct = texts.unique()
        new = [t for t in distinct.to_list() if t is not None and t not in self.known]
        if new:
            rows = [(text, *item) for text in new for item in _parse_annotation(text)]
            self.frame = pl.concat([self.frame, pl.DataFrame(rows, schema=_ANNOTATION_SCHEMA, orient="row")])
            self.known.update(new)
        return self.frame


class _LabelCodes:
    """Question or answer labels coded as integers across batches (first seen, first coded), so the votes of a
    large export are kept as compact integer arrays rather than as many small polars frames."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}

    def codes(self, labels: pl.Series) -> np.ndarray:
        """Codes of ``labels`` (-1 for null)."""
        for value in labels.unique().to_list():
            if value is not None and value not in self.index:
                self.index[value] = len(self.index)
        return labels.replace_strict(self.index, default=None, return_dtype=pl.Int32).fill_null(-1).to_numpy()


# ---------------------------------------------------------------------------------------------------- reader
@dataclass
class VoteCodes:
    """An export's votes as integer arrays, sorted by row: ``question[i]`` and ``answer[i]`` index the label lists
    (``answer`` -1: no answer). Compact (12 bytes a vote) where a frame of labels would not be."""

    row: np.ndarray  # int32 export row (1-based) of the classification
    question: np.ndarray  # int32 code into ``questions``
    answer: np.ndarray  # int32 code into ``answers``
    questions: list[str]
    answers: list[str]

    def __len__(self) -> int:
        return len(self.row)

    def take(self, mask: np.ndarray) -> VoteCodes:
        return VoteCodes(self.row[mask], self.question[mask], self.answer[mask], self.questions, self.answers)

    def frame(self) -> pl.DataFrame:
        """row, question, answer (categorical), built without a string per vote."""
        return pl.DataFrame(
            [
                pl.Series("row", self.row),
                _categorical(self.question, self.questions, "question"),
                _categorical(self.answer, self.answers, "answer"),
            ]
        )

    @classmethod
    def from_frame(cls, frame: pl.DataFrame) -> VoteCodes:
        questions, answers = _LabelCodes(), _LabelCodes()
        return cls(
            frame["row"].cast(pl.Int32).to_numpy(),
            questions.codes(frame["question"].cast(pl.Utf8)),
            answers.codes(frame["answer"].cast(pl.Utf8)),
            list(questions.index),
            list(answers.index),
        )


def _categorical(codes: np.ndarray, labels: list[str], name: str) -> pl.Series:
    """A categorical column from codes into ``labels`` (-1 becomes null)."""
    column = pl.Series(name, labels or [""], dtype=pl.Utf8).cast(pl.Categorical).gather(np.maximum(codes, 0))
    missing = codes < 0
    if missing.any():
        column = pl.select(pl.when(pl.Series(missing)).then(None).otherwise(column).alias(name)).to_series()
    return column


@dataclass
class PanoptesExport:
    """What :func:`read_panoptes` returns: the votes, the classifications they come from, and the accounting."""

    codes: VoteCodes  # one entry per vote, sorted by row
    classifications: pl.DataFrame  # one row per used classification, sorted by row
    report: PanoptesReport
    subject_data: pl.DataFrame | None = None  # subject, subject_data (text): the first of each used subject

    @property
    def answers(self) -> pl.DataFrame:
        """One row per vote, sorted by row: row, question, answer (categorical)."""
        return self.codes.frame()

    @property
    def votes(self) -> pl.DataFrame:
        """The long votes table with labels: subject, volunteer, question, answer, created_at, classification_id,
        anonymous, dwell_seconds, workflow_version, row."""
        return (
            self.answers.join(self.classifications, on="row", how="inner")
            .select(
                "subject",
                "volunteer",
                pl.col("question").cast(pl.Utf8),
                pl.col("answer").cast(pl.Utf8),
                "created_at",
                "classification_id",
                "anonymous",
                "dwell_seconds",
                "workflow_version",
                "row",
            )
            .sort("row", maintain_order=True)
        )


#: how every export is scanned: the exact file named (no glob), bytes that are not UTF-8 replaced so the rows around
#: them still read (the rows that hold them are found by ``record_problems`` and quarantined)
SCAN_OPTIONS: dict[str, Any] = {"infer_schema": False, "glob": False, "encoding": "utf8-lossy"}


def _columns(path: Path) -> list[str]:
    if path.is_dir():
        raise InputError(f"{path}: is a folder, expected a CSV export or votes table")
    try:
        names = pl.scan_csv(path, **SCAN_OPTIONS).collect_schema().names()
    except Exception as exc:
        raise InputError(f"{path}: cannot be read as CSV: {first_line(exc)}") from exc
    refuse_repeated_names(path)
    return names


def read_panoptes(
    path: str | Path,
    workflows: str | Path | dict[str, Workflow] | None = None,
    workflow_id: str | int | None = None,
    *,
    tree: str | None = "auto",
    seen_before: str = "drop",
    repeats: str = "first",
    anonymous: str = "keep",
    strict: bool = False,
    batch_rows: int = BATCH_ROWS,
) -> PanoptesExport:
    """Read a Panoptes classification export (see the module docstring).

    Args:
        workflows: workflow definitions (path or :func:`~annostat.data.io.workflows.read_workflows` result).
            Without them, answers are taken as written (normalised) and nothing can be checked against the workflow.
        workflow_id: which workflow to read; required when the export holds several.
        tree: a tree preset for Zoobot names, ``"auto"`` (the preset of a known Galaxy Zoo workflow) or ``None``.
        seen_before: ``drop`` (default) or ``keep`` re-classifications the volunteer had seen before.
        repeats: ``first`` (default), ``last`` or ``all`` classifications by one volunteer of one subject.
        anonymous: ``keep`` (default) not-logged-in volunteers as pseudo-volunteers, or ``drop`` them.
        strict: raise :class:`~annostat.errors.InputError` on the first quarantined row instead of quarantining.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: file not found")
    for name, value, allowed in (
        ("seen_before", seen_before, ("drop", "keep")),
        ("repeats", repeats, ("first", "last", "all")),
        ("anonymous", anonymous, ("keep", "drop")),
    ):
        if value not in allowed:
            raise InputError(f"{name} policy {value!r} is not one of {', '.join(allowed)}")
    columns = _columns(path)
    index_columns = [c for c in columns if c == "" or c.startswith("Unnamed") or c == "__index_level_0__"]
    if missing := [c for c in REQUIRED_COLUMNS if c not in columns]:
        raise InputError(f"{path}: not a Panoptes classification export: no column(s) {', '.join(missing)}")
    has_workflow_column = "workflow_id" in columns
    if not has_workflow_column and workflow_id is None:
        raise InputError(
            f"{path}: the export has no workflow_id column (a reduced export of one workflow): name "
            "its workflow with --workflow-id"
        )
    if "user_name" not in columns and "user_id" not in columns:
        raise InputError(f"{path}: no volunteer column: the export needs user_name or user_id")
    if isinstance(workflows, (str, Path)):
        workflows = read_workflows(workflows)

    audit = _CsvAudit(path)
    # which workflow: given, or the only one in the export
    if workflow_id is None:
        ids = audit.read(lambda scan: scan.select(pl.col("workflow_id").drop_nulls().unique()).collect())
        ids = ids["workflow_id"].to_list()
        if len(ids) != 1:
            raise InputError(
                f"{path}: the export holds {len(ids)} workflows ({', '.join(sorted(ids)[:10])}); "
                "choose one with --workflow-id"
            )
        workflow_id = ids[0]
    workflow_id = str(workflow_id)
    workflow = None
    if workflows is not None:
        if workflow_id not in workflows:
            raise InputError(
                f"workflow {workflow_id} is not in the workflow definitions (they hold {', '.join(sorted(workflows))})"
            )
        workflow = workflows[workflow_id]
    if tree == "auto":
        tree = KNOWN_WORKFLOW_TREES.get(workflow_id) if workflow is not None else None
    if tree is not None and tree not in TREES:
        raise InputError(f"no tree preset {tree!r}; the presets are {', '.join(sorted(TREES))}")
    answer_map = _answer_map(workflow, tree)

    def read_batches(scan: pl.LazyFrame):
        """Every batch of the export, with a report of its own (a read cut short by ragged rows starts again)."""
        report = PanoptesReport(
            source=str(path), workflow_id=workflow_id, tree=tree, workflow_id_given=not has_workflow_column
        )
        scan = scan.drop(index_columns)
        if not has_workflow_column:
            scan = scan.with_columns(pl.lit(workflow_id).alias("workflow_id"))
        classifications, votes, quarantine, subject_data = [], [], [], []
        offset = 0
        cache = _AnnotationCache()
        labels = (_LabelCodes(), _LabelCodes())  # questions, answers
        for batch in scan.collect_batches(chunk_size=batch_rows):
            batch = batch.with_row_index("row", offset=offset + 1).with_columns(pl.col("row").cast(pl.Int64))
            offset += batch.height
            c, v, q, d = _read_batch(
                batch,
                workflow_id,
                workflow,
                answer_map,
                report,
                seen_before,
                anonymous,
                cache,
                labels,
                audit,
                columns[-1],
            )
            classifications.append(c)
            subject_data.append(d)
            votes.append(v)
            quarantine.append(q)
            if strict and q.height:
                first = q.sort("row").row(0, named=True)
                raise InputError(
                    f"{path}, row {first['row']}, classification {first['classification_id']}: "
                    f"{first['reason']} (--strict)"
                )
        return report, classifications, votes, quarantine, subject_data, offset, labels

    report, classifications, votes, quarantine, subject_data, offset, labels = audit.read(read_batches)
    report.rows_read = offset
    if offset == 0:
        raise InputError(f"{path}: the export has a header but no rows")
    classifications = pl.concat(classifications)
    row, question, answer = (np.concatenate(parts) for parts in zip(*votes, strict=True))
    codes = VoteCodes(row, question, answer, list(labels[0].index), list(labels[1].index))
    del votes
    if workflow is None:
        codes = VoteCodes.from_frame(_expand_multiple(codes.frame()))
    report.quarantine = pl.concat(quarantine).sort("row")
    report.quarantined.update(Counter(report.quarantine["reason"].str.replace(r":.*", "").to_list()))

    # a volunteer's repeat classifications of a subject
    if repeats != "all" and classifications.height:
        order = classifications.sort(["created_at", "row"], descending=repeats == "last")
        keep = order.unique(["volunteer", "subject"], keep="first", maintain_order=True)["row"]
        n_repeats = classifications.height - len(keep)
        if n_repeats:
            report.skipped[f"repeat classification of a subject (kept the {repeats})"] += n_repeats
            classifications = classifications.filter(pl.col("row").is_in(keep.implode()))
    # rows left without any vote (codes.row is sorted)
    voted = codes.row[run_boundaries(codes.row)]
    has_votes = np.isin(classifications["row"].to_numpy(), voted, assume_unique=True)
    if not has_votes.all():
        report.skipped["no answered question task"] += int((~has_votes).sum())
        classifications = classifications.filter(pl.Series(has_votes))
    report.rows_used = classifications.height
    report.anonymous_rows = int(classifications["anonymous"].sum()) if classifications.height else 0
    assert report.rows_read == report.rows_used + report.rows_quarantined + report.rows_skipped, report.to_dict()
    if report.rows_used == 0:
        reasons = {**report.quarantined, **report.skipped}
        raise InputError(
            f"{path}: nothing usable remains of {report.rows_read:,} classifications "
            f"({', '.join(f'{n:,} {k}' for k, n in reasons.items()) or 'no question tasks'})"
        )
    # votes of the classifications kept (both sorted by row)
    used_rows = classifications["row"].to_numpy()
    if len(used_rows) < len(voted):
        at = np.minimum(np.searchsorted(used_rows, codes.row), len(used_rows) - 1)
        codes = codes.take(used_rows[at] == codes.row)
    metadata = None
    if "subject_data" in columns:
        metadata = (
            pl.concat(subject_data)
            .unique("subject", keep="first", maintain_order=True)
            .join(classifications.select(pl.col("subject").unique()), on="subject", how="semi")
        )
    return PanoptesExport(codes, classifications, report, metadata)


class _CsvAudit:
    """The export's malformed CSV rows (bytes that are not UTF-8, too many or too few fields), found by one Python pass
    over the file, run only when the fast reader saw a sign of them: a ragged-row error, a replaced byte, or a row
    whose last column is empty."""

    RAGGED = "more fields than defined"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._problems: dict[int, str] | None = None

    @property
    def problems(self) -> dict[int, str]:
        if self._problems is None:
            self._problems = record_problems(self.path, limit=None)
        return self._problems

    def refuse_or_retry(self, exc: Exception) -> None:
        """After a polars error: return (to read again, ragged rows quarantined) if the file only has rows with extra
        fields; else raise one line naming the first bad row, or polars' reason."""
        problems = self.problems
        fatal = {row: why for row, why in problems.items() if "never closed" in why or "quoting" in why}
        if fatal or self.RAGGED not in str(exc):
            if problems := fatal or problems:
                raise InputError(f"{self.path}, {describe_problems(problems)}") from exc
            reason = first_line(exc)
            raise InputError(f"{self.path}: cannot be read as CSV: {reason}") from exc

    def read(self, use):
        """``use(scan)`` of the export's lazy scan; if the exact read fails on rows with extra fields, ``use`` runs
        again on a scan that cuts them (they are quarantined by :meth:`rows`); anything else unreadable is one line."""
        try:
            return use(pl.scan_csv(self.path, truncate_ragged_lines=False, **SCAN_OPTIONS))
        except pl.exceptions.PolarsError as exc:
            self.refuse_or_retry(exc)
        try:
            return use(pl.scan_csv(self.path, truncate_ragged_lines=True, **SCAN_OPTIONS))
        except pl.exceptions.PolarsError as exc:  # the rows with extra fields cannot be cut either: name them
            raise InputError(
                f"{self.path}, {describe_problems(self.problems)}"
                if self.problems
                else f"{self.path}: cannot be read as CSV: {first_line(exc)}"
            ) from exc

    def rows(self, batch: pl.DataFrame, last_column: str) -> pl.DataFrame:
        """(row, csv_problem) for the batch's malformed rows; looked for only where the batch shows a sign."""
        empty = pl.DataFrame(schema={"row": pl.Int64, "csv_problem": pl.Utf8})
        text = [c for c, t in batch.schema.items() if t == pl.Utf8]
        sign = (
            pl.any_horizontal([pl.col(c).str.contains("\ufffd", literal=True).fill_null(False) for c in text])
            if text
            else pl.lit(False)
        )
        if last_column in batch.columns:
            sign = sign | pl.col(last_column).is_null()
        if self._problems is None and not batch.select(sign.any()).item():
            return empty
        if not self.problems:
            return empty
        first, last = int(batch["row"].min()), int(batch["row"].max())  # type: ignore[arg-type]  # an int column
        found = [(row, why) for row, why in self.problems.items() if first <= row <= last]
        return pl.DataFrame(found, schema=empty.schema, orient="row") if found else empty


def volunteer_columns(columns: Collection[str]) -> tuple[pl.Expr, pl.Expr]:
    """Who classified, from whichever of ``user_name``, ``user_id``, ``user_ip`` an export has: the user name, else
    ``user-<id>``, else ``not-logged-in-<ip hash>``; and whether they were not logged in (no user id, or a
    ``not-logged-in-`` name)."""

    def column(name: str) -> pl.Expr:
        return pl.col(name) if name in columns else pl.lit(None, pl.Utf8)

    name, user_id, ip = column("user_name"), column("user_id"), column("user_ip")
    volunteer = pl.coalesce(
        name,
        pl.when(user_id.is_not_null()).then(pl.lit("user-") + user_id),
        pl.when(ip.is_not_null()).then(pl.lit("not-logged-in-") + ip),
    )
    return volunteer, user_id.is_null() | name.str.starts_with("not-logged-in-").fill_null(False)


def _read_batch(
    batch, workflow_id, workflow, answer_map, report, seen_before, anonymous, cache, labels, audit, last_column
):
    """One batch of export rows -> (used classifications, votes as (row, question code, answer code) arrays,
    quarantined rows, the first subject_data text of each subject used)."""
    quarantine = []
    malformed = audit.rows(batch, last_column)
    batch = (
        batch.join(malformed, on="row", how="left", maintain_order="left")
        if malformed.height
        else batch.with_columns(pl.lit(None, pl.Utf8).alias("csv_problem"))
    )

    def quarantine_rows(mask_frame: pl.DataFrame, reason: str | pl.Expr):
        if mask_frame.height:
            reason_expr = pl.lit(reason) if isinstance(reason, str) else reason
            quarantine.append(mask_frame.select("row", "classification_id", reason_expr.alias("reason")))

    # other workflows (a row without a workflow id is quarantined below, not taken as another workflow)
    other = batch.select(
        (pl.col("workflow_id") != workflow_id).fill_null(False) & pl.col("csv_problem").is_null()
    ).to_series()
    if other.any():
        report.skipped["other workflow"] += int(other.sum())
        batch = batch.filter(~other)
    # volunteer, anonymous flag
    has = set(batch.columns)
    volunteer, not_logged_in = volunteer_columns(has)
    batch = batch.with_columns(
        volunteer.alias("volunteer"),
        not_logged_in.alias("anonymous"),
        pl.col("subject_ids").str.strip_chars().alias("subject"),
        _parse_created_at(batch["created_at"]).alias("created_at_parsed"),
        _flag(has, "gold_standard").alias("gold_standard"),
        _flag(has, "expert").alias("expert"),
    )
    # row-level problems, first reason wins
    problems = [
        (pl.col("csv_problem").is_not_null(), pl.format("malformed CSV row: {}", pl.col("csv_problem"))),
        (pl.col("workflow_id").is_null(), "no workflow_id"),
        (pl.col("subject").is_null() | (pl.col("subject") == ""), "missing subject id"),
        (pl.col("subject").str.contains(r"[,;\s]").fill_null(False), "several subject ids in one classification"),
        (pl.col("volunteer").is_null(), "no volunteer (user_name, user_id and user_ip all empty)"),
        (pl.col("created_at_parsed").is_null(), "unparsable created_at"),
        (pl.col("annotations").is_null(), "missing annotations"),
    ]
    if "subject_data" in has:  # one value per subject: check each distinct text once
        texts = batch["subject_data"].drop_nulls().unique()
        broken = texts.filter(texts.str.json_path_match("$").is_null())
        problems.append((pl.col("subject_data").is_in(broken.implode()), "malformed subject_data JSON"))
    if workflow is not None:  # the export's version text -> the workflow's version (28.3 finds 28.30)
        mapping = {}
        for raw in batch["workflow_version"].unique().to_list():
            found = workflow.version(raw) if raw is not None else None
            mapping[raw] = found.version if found else None
        batch = batch.with_columns(
            pl.col("workflow_version").replace_strict(mapping, default=None, return_dtype=pl.Utf8).alias("version")
        )
        problems.append((pl.col("version").is_null(), "unknown workflow version"))
    else:
        batch = batch.with_columns(pl.col("workflow_version").alias("version"))
    reason = pl.lit(None, pl.Utf8)
    for mask, label in reversed(problems):
        reason = pl.when(mask).then(pl.lit(label) if isinstance(label, str) else label).otherwise(reason)
    batch = batch.with_columns(reason.alias("problem"))
    bad = batch.filter(pl.col("problem").is_not_null())
    quarantine_rows(bad, pl.col("problem"))
    batch = batch.filter(pl.col("problem").is_null())

    # metadata: seen_before and dwell time, one JSON pass (a per-row check only when a batch holds bad JSON)
    if "metadata" in has:
        meta = _decode_metadata(batch)
        batch = batch.with_columns(meta)
        bad = batch.filter(pl.col("metadata_problem").is_not_null())
        quarantine_rows(bad, pl.col("metadata_problem"))
        batch = batch.filter(pl.col("metadata_problem").is_null())
    else:
        batch = batch.with_columns(pl.lit(False).alias("seen_before"), pl.lit(None, pl.Float32).alias("dwell_seconds"))
    if seen_before == "drop":
        seen = batch["seen_before"]
        if seen.any():
            report.skipped["seen_before re-classification"] += int(seen.sum())
            batch = batch.filter(~pl.col("seen_before"))
    if anonymous == "drop":
        anon = batch["anonymous"]
        if anon.any():
            report.skipped["not-logged-in volunteer"] += int(anon.sum())
            batch = batch.filter(~pl.col("anonymous"))

    # annotations: resolved once per distinct (annotations text, version) pair, then joined to the rows
    grouped = (
        batch.group_by("annotations", "version")
        .agg(pl.col("row"))
        .with_row_index("pair")
        .with_columns(pl.col("pair").cast(pl.Int64), pl.col("row").list.len().alias("n"))
    )
    row_pair = grouped.select("pair", "row").explode("row")
    pairs = grouped.drop("row")
    items = pairs.join(cache.items(pairs["annotations"]), on="annotations", how="inner").drop("annotations")
    reasons = [
        items.filter(pl.col("kind") == "malformed").select("pair", pl.lit("malformed annotations JSON").alias("reason"))
    ]
    items = items.filter(~pl.col("kind").is_in(["malformed", "empty"]))
    if answer_map is not None:
        task_types = answer_map.select("workflow_version", "task", "task_type").unique()
        items = items.join(task_types, left_on=["version", "task"], right_on=["workflow_version", "task"], how="left")
        reasons.append(
            items.filter(pl.col("task_type").is_null()).select(
                "pair",
                pl.format("unknown task: {} is not a task of version {}", pl.col("task"), pl.col("version")).alias(
                    "reason"
                ),
            )
        )
    else:  # without workflow definitions, the value's shape says the task type
        items = items.with_columns(
            pl.when(pl.col("kind").is_in(["label", "index"]))
            .then(pl.lit("single"))
            .when(pl.col("kind").is_in(["labels", "indices"]))
            .then(pl.lit("multiple"))
            .when(pl.col("kind") == "null")
            .then(pl.lit("unknown"))
            .otherwise(pl.col("kind").str.replace("other:", ""))
            .alias("task_type")
        )
    votes, bad_labels = _votes_from_items(items.filter(pl.col("task_type").is_not_null()), answer_map)
    reasons.append(bad_labels)
    pair_reason = pl.concat(reasons).unique("pair", keep="first", maintain_order=True)
    good_pairs = pairs.join(pair_reason, on="pair", how="anti")
    # tasks of other types, and votes set aside by the tree, counted per classification
    others = (
        items.join(good_pairs.select("pair"), on="pair")
        .filter(
            ~pl.col("task_type").is_in(list(QUESTION_TYPES))
            & (pl.col("kind") != "null")
            & pl.col("task_type").is_not_null()
        )
        .unique(["pair", "task"])
    )
    for task_type, n in others.group_by("task_type").agg(pl.col("n").sum()).iter_rows():
        report.tasks_skipped_by_type[task_type] += int(n)
    for task, task_type, n in others.group_by("task", "task_type").agg(pl.col("n").sum()).iter_rows():
        report.tasks_skipped[f"{task} ({task_type})"] += int(n)
    aside = votes.filter(pl.col("status") != "ok").join(good_pairs.select("pair", "n"), on="pair")
    for status, n in aside.group_by("status").agg(pl.col("n").sum()).iter_rows():
        report.votes_skipped[status] += int(n)

    rows = batch.drop("annotations").join(row_pair, on="row", how="left", maintain_order="left")
    bad = rows.join(pair_reason, on="pair", how="inner")
    quarantine_rows(bad, pl.col("reason"))
    used = rows.join(pair_reason, on="pair", how="anti", maintain_order="left")
    # labels are coded once per pair, not once per vote; the join keeps the rows' order
    pair_votes = votes.filter(pl.col("status") == "ok")
    pair_votes = pl.DataFrame(
        {
            "pair": pair_votes["pair"],
            "question": labels[0].codes(pair_votes["question"]),
            "answer": labels[1].codes(pair_votes["answer"]),
        }
    )
    row_votes = used.select(pl.col("row").cast(pl.Int32), "pair").join(
        pair_votes, on="pair", maintain_order="left_right"
    )
    row_votes = tuple(row_votes[name].to_numpy().copy() for name in ("row", "question", "answer"))
    classifications = used.select(
        "row",
        "classification_id",
        "volunteer",
        "subject",
        pl.col("created_at_parsed").alias("created_at"),
        "anonymous",
        "dwell_seconds",
        pl.col("version").alias("workflow_version"),
        "gold_standard",
        "expert",
    )
    q = (
        pl.concat(quarantine)
        if quarantine
        else pl.DataFrame(schema={"row": pl.Int64, "classification_id": pl.Utf8, "reason": pl.Utf8})
    )
    metadata = (
        used.select("subject", "subject_data").unique("subject", keep="first", maintain_order=True)
        if "subject_data" in used.columns
        else None
    )
    return classifications, row_votes, q.unique("row", keep="first", maintain_order=True), metadata


def _flag(columns: set[str], name: str) -> pl.Expr:
    """A Panoptes true/false column (``gold_standard``, ``expert``: usually empty) as booleans; absent: false."""
    if name not in columns:
        return pl.lit(False)
    return pl.col(name).str.strip_chars().str.to_lowercase().is_in(["true", "t", "1", "yes"]).fill_null(False)


def _parse_created_at(text: pl.Series) -> pl.Series:
    """Panoptes' ``2019-01-01 00:07:21 UTC`` by its format (fast); any other spelling by polars' inference."""
    parsed = text.str.to_datetime(format="%Y-%m-%d %H:%M:%S UTC", strict=False, time_unit="us", time_zone="UTC")
    if parsed.null_count() > text.null_count():
        inferred = text.str.replace(r"\s*UTC$", "").str.to_datetime(strict=False, time_unit="us", time_zone="UTC")
        parsed = parsed.fill_null(inferred)
    return parsed


_METADATA = pl.Struct({"started_at": pl.Utf8, "finished_at": pl.Utf8, "seen_before": pl.Boolean})


def _decode_metadata(batch: pl.DataFrame) -> list[pl.Series]:
    """seen_before, dwell_seconds and why a row's metadata cannot be used (null where it can) from the metadata JSON
    column: one decode of the batch, and a per-row look only when some row is not JSON of the shape Panoptes writes
    (not JSON, not an object, ``seen_before`` not true/false)."""
    text = batch["metadata"]
    problem = pl.Series("metadata_problem", [None] * batch.height, dtype=pl.Utf8)
    try:
        fields = text.str.json_decode(_METADATA).struct.unnest()
        started, finished, seen = fields["started_at"], fields["finished_at"], fields["seen_before"]
    except pl.exceptions.PolarsError:  # some row is not JSON, or not its shape: find which, use the rest
        whole = text.str.json_path_match("$")
        seen_text = text.str.json_path_match("$.seen_before")
        frame = pl.DataFrame({"text": text, "whole": whole, "seen": seen_text})
        problem = frame.select(
            pl.when(pl.col("text").is_not_null() & pl.col("whole").is_null())
            .then(pl.lit("malformed metadata JSON"))
            .when(pl.col("text").is_not_null() & ~pl.col("text").str.strip_chars_start().str.starts_with("{"))
            .then(pl.lit("metadata is not a JSON object"))
            .when(pl.col("seen").is_not_null() & ~pl.col("seen").is_in(["true", "false"]))
            .then(pl.format("metadata seen_before not true or false: '{}'", pl.col("seen")))
            .otherwise(None)
            .alias("metadata_problem")
        ).to_series()
        started, finished = text.str.json_path_match("$.started_at"), text.str.json_path_match("$.finished_at")
        seen = seen_text == "true"
    when = [t.str.to_datetime(strict=False, time_unit="ms", time_zone="UTC") for t in (started, finished)]
    dwell = ((when[1] - when[0]).dt.total_milliseconds() / 1000).cast(pl.Float32)
    return [seen.fill_null(False).alias("seen_before"), dwell.alias("dwell_seconds"), problem]


def _votes_from_items(items: pl.DataFrame, answer_map: pl.DataFrame | None):
    """(pair, version, task, kind, value) items -> votes (pair, question, answer, status) and (pair, reason) for
    labels outside the workflow. Without a workflow, multiple-answer tasks give ``yes`` votes for the answers chosen
    and a marker vote (question = task, answer = None) to be expanded once every answer of the task is known."""
    vote_schema = {"pair": pl.Int64, "question": pl.Utf8, "answer": pl.Utf8, "status": pl.Utf8}
    bad_schema = {"pair": pl.Int64, "reason": pl.Utf8}
    items = items.filter(pl.col("task_type").is_in(list(QUESTION_TYPES)) & (pl.col("kind") != "null"))
    if items.height == 0:
        return pl.DataFrame(schema=vote_schema), pl.DataFrame(schema=bad_schema)
    single = items.filter(pl.col("task_type") == "single")
    multiple = items.filter(pl.col("task_type") == "multiple")
    answered = multiple.select("pair", "version", "task").unique()
    chosen = multiple.filter(pl.col("value").is_not_null())
    ok = pl.lit("ok").alias("status")

    if answer_map is None:
        single_votes = single.select("pair", pl.col("task").alias("question"), pl.col("value").alias("answer"), ok)
        picked = chosen.select(
            "pair", (pl.col("task") + "/" + pl.col("value")).alias("question"), pl.lit("yes").alias("answer"), ok
        )
        markers = answered.select("pair", pl.col("task").alias("question"), pl.lit(None, pl.Utf8).alias("answer"), ok)
        return pl.concat([single_votes, picked, markers]).unique(), pl.DataFrame(schema=bad_schema)

    labelled = answer_map.filter(pl.col("label").is_not_null()).with_columns(
        pl.int_range(pl.len()).over(["workflow_version", "task"]).cast(pl.Utf8).alias("index")
    )

    def resolve(frame: pl.DataFrame, index_kind: str, columns: list[str]) -> pl.DataFrame:
        """Labels (or raw API indices) of the classification's version -> the workflow's answers."""
        frame = frame.join(
            labelled.select("workflow_version", "task", "index", pl.col("label").alias("from_index")),
            left_on=["version", "task", "value"],
            right_on=["workflow_version", "task", "index"],
            how="left",
        )
        frame = frame.with_columns(
            pl.when(pl.col("kind") == index_kind).then(pl.col("from_index")).otherwise(pl.col("value")).alias("label")
        )
        return frame.join(
            labelled.select("workflow_version", "task", "label", *columns),
            left_on=["version", "task", "label"],
            right_on=["workflow_version", "task", "label"],
            how="left",
        )

    def outside(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.filter(pl.col("question").is_null()).select(
            "pair",
            pl.when(pl.col("value").is_null())
            .then(
                pl.format(
                    "answer of the wrong type: {}'s value is {}",
                    pl.col("task"),
                    pl.col("kind").replace_strict(
                        {"other:boolean": "true/false"}, default="not text, an answer index or a list of them"
                    ),
                )
            )
            .otherwise(
                pl.format(
                    "answer not in workflow: {} '{}' is not an answer of version {}",
                    pl.col("task"),
                    pl.col("value"),
                    pl.col("version"),
                )
            )
            .alias("reason"),
        )

    single = resolve(single, "index", ["question", "answer", "status"])
    bad_single = outside(single)
    single_votes = single.filter(pl.col("question").is_not_null()).select("pair", "question", "answer", "status")
    # multiple: every answer of the version's task becomes a yes/no vote
    chosen = resolve(chosen, "indices", ["question"])
    bad_multiple = outside(chosen)
    picked = chosen.filter(pl.col("question").is_not_null()).select("pair", "question", pl.lit(True).alias("picked"))
    task_labels = labelled.filter(pl.col("task_type") == "multiple").select("workflow_version", "task", "question")
    multi_votes = (
        answered.join(task_labels, left_on=["version", "task"], right_on=["workflow_version", "task"])
        .join(picked, on=["pair", "question"], how="left")
        .select(
            "pair",
            "question",
            pl.when(pl.col("picked")).then(pl.lit("yes")).otherwise(pl.lit("no")).alias("answer"),
            ok,
        )
    )
    return pl.concat([single_votes, multi_votes]), pl.concat([bad_single, bad_multiple])


def _expand_multiple(votes: pl.DataFrame) -> pl.DataFrame:
    """Without workflow definitions: each answered multiple-answer task (a marker vote) becomes one yes/no vote per
    answer of the task seen anywhere in the export."""
    if votes["answer"].null_count() == 0:
        return votes
    votes = votes.with_columns(pl.col("question").cast(pl.Utf8), pl.col("answer").cast(pl.Utf8))
    markers = votes.filter(pl.col("answer").is_null())
    chosen = votes.filter(pl.col("answer").is_not_null() & pl.col("question").str.contains("/"))
    labels = chosen.select(pl.col("question").str.split("/").list.first().alias("task"), "question").unique()
    expanded = (
        markers.select("row", pl.col("question").alias("task"))
        .join(labels, on="task")
        .join(chosen.select("row", "question", "answer"), on=["row", "question"], how="left")
        .select("row", "question", pl.col("answer").fill_null("no"))
    )
    singles = votes.filter(pl.col("answer").is_not_null() & ~pl.col("question").str.contains("/"))
    return (
        pl.concat([singles, expanded])
        .sort("row", maintain_order=True)
        .with_columns(pl.col("question").cast(pl.Categorical), pl.col("answer").cast(pl.Categorical))
    )
