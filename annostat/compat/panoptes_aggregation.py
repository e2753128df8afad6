"""Side-by-side runs of the Zooniverse's own reducer, panoptes_aggregation (``pip install annostat[peers]``).

:func:`reduce_questions` runs panoptes_aggregation's ``extract`` (question extractor) and ``reduce`` (question
reducer, ``-F first``) on a classification export and returns its vote counts per subject, task and answer slug.
:func:`annostat_counts` gives annostat's counts in the same terms (workflow task ids, answers as normalised labels),
and :func:`slug_to_label` maps panoptes_aggregation's slugs of whole label texts back to normalised labels, so the
two can be compared answer for answer.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from pathlib import Path

import polars as pl

from annostat.data.io.panoptes import read_panoptes
from annostat.data.io.workflows import Workflow, normalise_label


def reduce_questions(
    classifications: str | Path, workflow_id: int, tasks: list[str], workdir: str | Path | None = None
) -> pl.DataFrame:
    """panoptes_aggregation's question extract + reduce; columns subject, task, slug, count."""
    import yaml
    from panoptes_aggregation.scripts.extract_panoptes_csv import extract_csv
    from panoptes_aggregation.scripts.reduce_panoptes_csv import reduce_csv

    workdir = Path(workdir or tempfile.mkdtemp(prefix="panoptes-aggregation-"))
    extract_config = workdir / "extractor_config.yaml"
    extract_config.write_text(
        yaml.safe_dump(
            {
                "workflow_id": int(workflow_id),
                "workflow_version": {"min": "0.1"},
                "extractor_config": {"question_extractor": [{"task": t} for t in tasks]},
            }
        )
    )
    reduce_config = workdir / "reducer_config.yaml"
    reduce_config.write_text(yaml.safe_dump({"reducer_config": {"question_reducer": {}}}))
    extracted = extract_csv(str(classifications), str(extract_config), output_dir=str(workdir), hide_progressbar=True)
    return read_reductions(
        [
            reduce_csv(path, str(reduce_config), filter="first", output_dir=str(workdir), hide_progressbar=True)
            for path in extracted
        ]
    )


def read_reductions(paths: Iterable[str | Path]) -> pl.DataFrame:
    """panoptes_aggregation's question-reducer CSVs -> subject, task, slug, count (one row per non-empty count)."""
    rows = []
    for path in paths:
        for row in pl.read_csv(path, infer_schema=False).iter_rows(named=True):
            for column, value in row.items():
                if column.startswith("data.") and column != "data.aggregation_version" and value not in (None, ""):
                    rows.append(
                        {
                            "subject": row["subject_id"],
                            "task": row["task"],
                            "slug": column.removeprefix("data."),
                            "count": int(float(value)),
                        }
                    )
    return pl.DataFrame(rows, schema={"subject": pl.Utf8, "task": pl.Utf8, "slug": pl.Utf8, "count": pl.Int64})


def with_labels(reductions: pl.DataFrame, workflow: Workflow) -> pl.DataFrame:
    """Add ``label``: annostat's normalised label of each slug (``?slug`` for a slug no version's label makes)."""
    labels = slug_to_label(workflow)
    return reductions.with_columns(
        pl.struct("task", "slug")
        .map_elements(lambda r: labels.get((r["task"], r["slug"]), "?" + r["slug"]), return_dtype=pl.Utf8)
        .alias("label")
    )


def same_counts(reductions: pl.DataFrame, ours: pl.DataFrame) -> bool:
    """Whether labelled reductions (:func:`with_labels`) and :func:`annostat_counts` hold the same counts."""
    theirs = reductions.group_by("subject", "task", "label").agg(pl.col("count").cast(pl.Int64).sum())
    joined = theirs.join(ours, on=["subject", "task", "label"], how="full", suffix="_ours", coalesce=True)
    return bool(joined.height == theirs.height == ours.height and (joined["count"] == joined["count_ours"]).all())


def slug_to_label(workflow: Workflow) -> dict[tuple[str, str], str]:
    """(task, panoptes_aggregation slug of a raw label) -> annostat's normalised label, over every version."""
    from panoptes_aggregation.extractors.question_extractor import slugify_or_null

    mapping = {}
    for version in workflow.versions.values():
        for task in version.tasks.values():
            for raw in task.labels:
                mapping[(task.id, slugify_or_null(raw))] = normalise_label(raw)
    return mapping


def annostat_counts(classifications: str | Path, workflows: str | Path, repeats: str = "all") -> pl.DataFrame:
    """annostat's vote counts in panoptes_aggregation's terms: subject, task, label, count (task ids, no tree;
    multiple-answer tasks count the answers chosen).

    ``repeats="all"`` by default: panoptes_aggregation 5.3.1's ``reduce`` accepts ``-F first`` but never applies it
    (``reduce_csv`` does not pass the filter on), so it counts a volunteer's repeat classifications of a subject.
    """
    export = read_panoptes(classifications, workflows, tree=None, seen_before="keep", repeats=repeats)
    votes = export.votes.with_columns(
        pl.col("question").str.split("/").list.first().alias("task"),
        pl.when(pl.col("question").str.contains("/"))
        .then(pl.col("question").str.split("/").list.slice(1).list.join("/"))
        .otherwise(pl.col("answer"))
        .alias("label"),
    )
    chosen = votes.filter(~pl.col("question").str.contains("/") | (pl.col("answer") == "yes"))
    return chosen.group_by("subject", "task", "label").len("count").with_columns(pl.col("count").cast(pl.Int64))
