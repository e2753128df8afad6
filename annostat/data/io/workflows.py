"""Zooniverse workflow definitions: tasks, answers and versions, from the project export CSV or the API's JSON.

A workflow changes over its life: answers are reworded, icons swapped, questions rephrased. Classification exports
carry the answer *label text* of the version the volunteer saw, so annostat matches labels per version:

- :func:`normalise_label` strips markdown images and links, collapses whitespace and case-folds, so
  ``"![feature_or_disk.png](https://...) Features or Disk"`` becomes ``"features or disk"``;
- each task's answers get stable ids from their normalised labels: one label is one answer in every version that
  has it, whatever its position; a tree preset (``annostat.data.trees``) may alias reworded labels to one answer name;
- a label that matches no answer of its own version is not guessed: the classification row is quarantined.

Versions are ``major.minor`` text; the export's ``28.3`` (a float-mangled ``28.30``) finds version 28.30 when no
version 28.3 exists.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from annostat.errors import InputError, first_line
from annostat.files import read_json

_IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_MARKUP = re.compile(r"[*_`]+")


def normalise_label(text: Any) -> str:
    """Answer or question text without markdown images/links/emphasis, whitespace collapsed, case-folded."""
    if text is None:
        return ""
    text = _IMAGE.sub(" ", str(text))
    text = _LINK.sub(r"\1", text)
    text = _MARKUP.sub("", text)
    return " ".join(text.split()).casefold()


def version_key(version: Any) -> tuple[int, str]:
    """``"28.30"`` -> (28, "30"); the minor part stays text (55.121 is not 55.12)."""
    text = str(version).strip()
    major, _, minor = text.partition(".")
    try:
        return int(major), minor or "0"
    except ValueError:
        raise ValueError(f"workflow version {version!r} is not major.minor") from None


@dataclass
class Task:
    """One task of one workflow version."""

    id: str
    type: str  # single, multiple, drawing, survey, text, slider, dropdown, shortcut, ...
    question: str  # the question text (raw)
    labels: list[str] = field(default_factory=list)  # answer label text (raw), by answer index
    next: list[str | None] = field(default_factory=list)  # per answer: the task it leads to (single tasks)
    task_next: str | None = None  # the task after this one (multiple tasks and others)

    @property
    def normalised(self) -> list[str]:
        return [normalise_label(label) for label in self.labels]


@dataclass
class WorkflowVersion:
    workflow_id: str
    major: int
    minor: str
    first_task: str | None
    tasks: dict[str, Task]

    @property
    def version(self) -> str:
        return f"{self.major}.{self.minor}"


@dataclass
class Workflow:
    """All known versions of one workflow, and the stable answers of each task across them."""

    id: str
    name: str | None
    versions: dict[tuple[int, str], WorkflowVersion]

    def version(self, version: Any) -> WorkflowVersion | None:
        """The version ``major.minor``; ``28.3`` also finds 28.30 when 28.3 itself is unknown and 28.30 is unique."""
        try:
            key = version_key(version)
        except ValueError:
            return None
        if key in self.versions:
            return self.versions[key]
        padded = [v for k, v in self.versions.items() if k[0] == key[0] and k[1].rstrip("0") == key[1].rstrip("0")]
        return padded[0] if len(padded) == 1 else None

    @property
    def latest(self) -> WorkflowVersion:
        return self.versions[max(self.versions, key=lambda k: (k[0], int(k[1]) if k[1].isdigit() else -1))]

    def task_ids(self) -> list[str]:
        ids: dict[str, None] = {}
        for v in self.versions.values():
            ids.update(dict.fromkeys(v.tasks))
        return sorted(ids, key=_task_order)

    def answer_labels(self, task_id: str) -> list[str]:
        """Stable answers of a task: every normalised label any version uses, latest version's order first."""
        order: dict[str, None] = {}
        versions = sorted(
            self.versions.values(), key=lambda v: (v.major, int(v.minor) if v.minor.isdigit() else -1), reverse=True
        )
        for v in versions:
            task = v.tasks.get(task_id)
            if task is not None:
                order.update(dict.fromkeys(label for label in task.normalised if label not in order))
        return list(order)


def _task_order(task_id: str) -> tuple[int, str]:
    digits = re.sub(r"\D", "", task_id)
    return (int(digits) if digits else 10**9, task_id)


class _Shape(ValueError):
    """Workflow definitions whose JSON is valid but not the shape Panoptes writes."""


def _json_object(value: Any, what: str) -> dict:
    """``value`` (JSON text or already decoded) as a dict; empty for null; :class:`_Shape` if it is not an object."""
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise _Shape(f"{what} is not valid JSON ({exc.msg}, char {exc.pos})") from None
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _Shape(f"{what} is a JSON {_json_kind(value)}, expected an object")
    return value


def _json_kind(value: Any) -> str:
    return {dict: "object", list: "list", str: "string", bool: "boolean", int: "number", float: "number"}.get(
        type(value), "value"
    )


def _text(value: Any, what: str) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        raise _Shape(f"{what} is a JSON {_json_kind(value)}, expected text")
    return str(value)


def _parse_tasks(tasks: Any, strings: Any) -> dict[str, Task]:
    """A version's ``tasks`` and ``strings`` (JSON text or decoded) as tasks; :class:`_Shape` names the part that
    is not the shape Panoptes writes."""
    tasks = _json_object(tasks, "tasks")
    strings = _json_object(strings, "strings")
    parsed = {}
    for task_id, task in tasks.items():
        if not isinstance(task, dict):
            raise _Shape(f"tasks.{task_id} is a JSON {_json_kind(task)}, expected an object")
        answers = task.get("answers") or []
        if not isinstance(answers, list):
            raise _Shape(f"tasks.{task_id}.answers is a JSON {_json_kind(answers)}, expected a list")
        labels = []
        for i, a in enumerate(answers):
            label = a.get("label", "") if isinstance(a, dict) else a
            label = _text(label, f"tasks.{task_id}.answers[{i}].label")
            labels.append(_text(strings.get(label, label), f"strings[{label!r}]"))
        question = _text(task.get("question") or task.get("instruction"), f"tasks.{task_id}.question")
        nexts = [
            _text(a.get("next"), f"tasks.{task_id}.answers[{i}].next") or None if isinstance(a, dict) else None
            for i, a in enumerate(answers)
        ]
        parsed[task_id] = Task(
            id=task_id,
            type=_text(task.get("type", "unknown"), f"tasks.{task_id}.type"),
            question=_text(strings.get(question, question), f"strings[{question!r}]"),
            labels=labels,
            next=nexts,
            task_next=_text(task.get("next"), f"tasks.{task_id}.next") or None,
        )
    return parsed


def _major(value: Any) -> int:
    try:
        return int(str(value).strip())
    except ValueError:
        raise _Shape(f"version {value!r} is not a whole number") from None


def read_workflows(path: str | Path) -> dict[str, Workflow]:
    """Read workflow definitions: the project workflow export CSV (``tasks``, ``strings``, ``version``,
    ``minor_version``) or the API's workflow-versions JSON (a list, or ``{"workflow_versions": [...]}``)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: file not found")
    if path.is_dir():
        raise InputError(f"{path}: is a folder, expected workflow definitions (CSV or JSON)")
    versions: list[tuple[str, str | None, WorkflowVersion]] = []
    try:
        if path.suffix.lower() == ".json":
            data = read_json(path, "workflow definitions")
            items = data.get("workflow_versions", data) if isinstance(data, dict) else data
            if isinstance(items, dict):
                items = [items]
            if not isinstance(items, list):
                raise InputError(
                    f"{path}: the JSON is a {_json_kind(items)}; workflow definitions are a list of "
                    'workflow versions or {"workflow_versions": [...]}'
                )
            for i, item in enumerate(items):
                at = f"{path}, workflow version {i + 1}"
                if not isinstance(item, dict):
                    raise InputError(f"{at}: a JSON {_json_kind(item)}, expected an object")
                try:
                    links = item.get("links") or {}
                    if not isinstance(links, dict):
                        raise _Shape(f"links is a JSON {_json_kind(links)}, expected an object")
                    if "major_number" not in item:
                        raise _Shape("no major_number")
                    workflow_id = _text(links.get("workflow") or item.get("workflow_id"), "links.workflow")
                    versions.append(
                        (
                            workflow_id,
                            None,
                            WorkflowVersion(
                                workflow_id,
                                _major(item["major_number"]),
                                _text(item.get("minor_number"), "minor_number") or "0",
                                _text(item.get("first_task"), "first_task") or None,
                                _parse_tasks(item.get("tasks"), item.get("strings")),
                            ),
                        )
                    )
                except _Shape as exc:
                    raise InputError(f"{at}: {exc}") from exc
        else:
            try:
                frame = pl.read_csv(path, infer_schema=False)
            except pl.exceptions.PolarsError as exc:
                reason = first_line(exc)
                raise InputError(f"{path}: cannot be read as a workflow export CSV: {reason}") from exc
            needed = {"workflow_id", "version", "tasks", "strings"}
            if missing := needed - set(frame.columns):
                raise InputError(f"{path}: not a workflow export: no column(s) {', '.join(sorted(missing))}")
            for i, row in enumerate(frame.iter_rows(named=True)):
                try:
                    tasks = _parse_tasks(row["tasks"], row["strings"])
                    versions.append(
                        (
                            str(row["workflow_id"]),
                            row.get("display_name"),
                            WorkflowVersion(
                                str(row["workflow_id"]),
                                _major(row["version"]),
                                str(row.get("minor_version") or "0"),
                                row.get("first_task"),
                                tasks,
                            ),
                        )
                    )
                except _Shape as exc:
                    raise InputError(f"{path}, row {i + 1}: {exc}") from exc
    except InputError:
        raise
    except (json.JSONDecodeError, KeyError, ValueError, TypeError, pl.exceptions.PolarsError) as exc:
        raise InputError(f"{path}: cannot be read as workflow definitions: {exc}") from exc
    if not versions:
        raise InputError(f"{path}: no workflow versions found")
    workflows: dict[str, Workflow] = {}
    for workflow_id, name, version in versions:
        wf = workflows.setdefault(workflow_id, Workflow(workflow_id, name, {}))
        wf.versions[(version.major, version.minor)] = version
        wf.name = wf.name or name
    return workflows
