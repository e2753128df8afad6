"""Look before fitting: what a Panoptes export (or a votes table) holds, and what a fit would keep."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from annostat.data.io.load import detect_format
from annostat.data.io.panoptes import _columns, _CsvAudit, read_panoptes, volunteer_columns
from annostat.errors import InputError


def _distribution(counts: pl.Series) -> dict[str, float]:
    if counts.is_empty():
        return {}
    values, p90 = counts.to_numpy(), counts.quantile(0.9)  # polars' quantile: the nearest rank
    assert p90 is not None  # (a non-empty column)
    return {
        "min": int(values.min()),
        "median": float(np.median(values)),
        "mean": round(float(values.mean()), 2),
        "p90": float(p90),
        "max": int(values.max()),
    }


def inspect_export(
    path: str | Path, workflows: str | Path | None = None, workflow_id: str | None = None
) -> dict[str, Any]:
    """Summary of a classification export: workflows and versions, task types, subjects, volunteers, anonymous
    share, repeats, ``seen_before``, votes per subject, and the row accounting of a fit with default policies."""
    path = Path(path)
    columns = _columns(path)
    has = set(columns)
    user, anonymous = volunteer_columns(has)  # the same volunteers the reader sees
    seen = (
        (pl.col("metadata").str.json_path_match("$.seen_before") == "true").fill_null(False)
        if "metadata" in has
        else pl.lit(False)
    )

    def build(scan: pl.LazyFrame) -> pl.LazyFrame:
        if "workflow_id" not in has:  # a reduced export of one workflow: the workflow named, or unknown
            scan = scan.with_columns(
                pl.lit(None if workflow_id is None else str(workflow_id), pl.Utf8).alias("workflow_id")
            )
        return scan.select(
            pl.col("workflow_id"),
            pl.col("workflow_version"),
            pl.col("subject_ids").alias("subject"),
            user.alias("volunteer"),
            anonymous.alias("anonymous"),
            seen.alias("seen_before"),
            pl.col("annotations"),
        )

    frame = _CsvAudit(path).read(lambda scan: build(scan).collect())
    versions = (
        frame.group_by("workflow_id", "workflow_version").len("classifications").sort("workflow_id", "workflow_version")
    )
    task_types: Counter = Counter()
    for text in frame["annotations"].unique().to_list():
        try:
            items = json.loads(text)
        except (TypeError, ValueError):
            task_types["malformed"] += 1
            continue
        if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
            task_types["malformed"] += 1
            continue
        for item in items:
            value = item.get("value")
            kind = (
                "single"
                if isinstance(value, (str, int))
                else "multiple"
                if isinstance(value, list) and all(isinstance(v, (str, int)) for v in value)
                else "not answered"
                if value is None
                else "other"
            )
            task_types[f"{item.get('task')}: {kind}"] += 1
    per_subject = frame.group_by("subject").len("n")["n"]
    summary: dict[str, Any] = {
        "file": str(path),
        "columns": columns,
        "classifications": frame.height,
        "workflows": [{"workflow_id": w, "version": v, "classifications": n} for w, v, n in versions.iter_rows()],
        "task_values (distinct annotation texts)": dict(sorted(task_types.items())),
        "subjects": frame["subject"].n_unique(),
        "volunteers": frame["volunteer"].n_unique(),
        "anonymous_share": round(float(frame["anonymous"].mean()), 4) if frame.height else 0.0,
        "repeat_classifications": frame.height - frame.select("volunteer", "subject").n_unique(),
        "seen_before": int(frame["seen_before"].sum()),
        "classifications_per_subject": _distribution(per_subject),
    }
    try:
        export = read_panoptes(path, workflows, workflow_id)
        summary["fit_would_keep"] = export.report.to_dict()
        summary["votes_per_question"] = dict(export.votes.group_by("question").len().sort("question").iter_rows())
    except InputError as exc:
        summary["fit_would_keep"] = f"a fit would stop: {exc}"
    return summary


def inspect_table(path: str | Path, **options: Any) -> dict[str, Any]:
    from annostat.data.votes import Votes

    votes = Votes.read(path, **options)
    per_subject = votes.table.group_by("subject").len("n")["n"]
    return {
        "file": str(path),
        "votes": votes.n_votes,
        "subjects": votes.n_subjects,
        "volunteers": votes.n_volunteers,
        "questions": {str(q): a.to_list() for q, a in zip(votes.questions, votes.answers)},
        "votes_per_subject": _distribution(per_subject),
        "rows": votes.report.to_dict(),
    }


def inspect_path(path: str | Path, **options: Any) -> dict[str, Any]:
    if detect_format(path) == "panoptes":
        return inspect_export(path, options.get("workflows"), options.get("workflow_id"))
    return inspect_table(path)
