"""Panoptes export ingestion: scale, and speed against panoptes_aggregation (not part of the test suite).

A synthetic Galaxy Zoo DECaLS-shaped classification export: the real workflow 6122's last five versions (from
``shared/data/zooniverse/gz-decals/workflow_versions.json``), annotations that walk the decision tree with the
versions' markdown labels (icons included), a heavy-tailed volunteer pool with 5% not-logged-in volunteers, ~40
classifications per subject, per-row metadata with start and finish times, and per-subject ``subject_data``.

    python benchmarks/panoptes_ingest.py --rows 10000000          # annostat alone: time and peak memory
    python benchmarks/panoptes_ingest.py --compare 100000         # annostat vs panoptes_aggregation, same counts
    python benchmarks/panoptes_ingest.py --reference              # regenerate tests/data/panoptes_aggregation_*.csv

Each timed run happens in a fresh process (peak RSS is its own). The comparison needs panoptes_aggregation
(``pip install panoptes_aggregation``; it pins pandas < 3, so keep it out of the test environment).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
ZOO = ROOT.parent / "shared" / "data" / "zooniverse"
WORKFLOWS = ZOO / "gz-decals" / "workflow_versions.json"
VERSIONS = ["57.132", "60.226", "63.228", "66.356", "66.425"]


def _paths(version: dict, rng: np.random.Generator, n: int) -> list[str]:
    """n distinct-ish annotation JSON texts: walks of the version's tree with its raw labels."""
    tasks, strings = version["tasks"], version["strings"]
    out = set()
    tries = 0
    while len(out) < n and tries < 50 * n:
        tries += 1
        task_id, annotations = version["first_task"], []
        while task_id:
            task = tasks[task_id]
            labels = [strings.get(a["label"], a["label"]) for a in task.get("answers", [])]
            question = strings.get(task.get("question", ""), "")
            if task["type"] == "single":
                i = int(rng.integers(len(labels)))
                annotations.append({"task": task_id, "task_label": question, "value": labels[i]})
                task_id = task["answers"][i].get("next")
            elif task["type"] == "multiple":
                picked = [label for label in labels if rng.random() < 0.08]
                annotations.append({"task": task_id, "task_label": question, "value": picked})
                task_id = task.get("next")
            else:
                task_id = task.get("next")
        out.add(json.dumps(annotations, separators=(",", ":")))
    return sorted(out)


def make_export(path: Path, n_rows: int, seed: int = 0, chunk: int = 1_000_000) -> Path:
    rng = np.random.default_rng(seed)
    versions = {f"{v['major_number']}.{v['minor_number']}": v for v in json.loads(WORKFLOWS.read_text())}
    pool = {v: _paths(versions[v], rng, 2000) for v in VERSIONS}
    n_subjects = max(n_rows // 40, 1)
    n_users = max(n_rows // 100, 10)
    weights = rng.pareto(1.0, n_users) + 1
    weights /= weights.sum()
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(
            "classification_id,user_name,user_id,user_ip,workflow_id,workflow_name,workflow_version,"
            "created_at,gold_standard,expert,metadata,annotations,subject_data,subject_ids\n"
        )
        for start in range(0, n_rows, chunk):
            n = min(chunk, n_rows - start)
            version_index = rng.integers(len(VERSIONS), size=n)
            path_index = rng.integers(2000, size=n)
            annotations = [pool[VERSIONS[v]][p % len(pool[VERSIONS[v]])] for v, p in zip(version_index, path_index)]
            user = rng.choice(n_users, n, p=weights)
            anonymous = rng.random(n) < 0.05
            seconds = np.sort(rng.integers(0, 3 * 365 * 86400, n)) + 1_546_300_800
            dwell = rng.gamma(2.0, 15.0, n).round(3)
            subject = rng.integers(n_subjects, size=n) + 20_000_000
            frame = pl.DataFrame(
                {
                    "classification_id": np.arange(start, start + n) + 100_000_000,
                    "user": user,
                    "anonymous": anonymous,
                    "subject": subject,
                    "version": np.array(VERSIONS)[version_index],
                    "annotations": annotations,
                    "t": seconds,
                    "dwell": dwell,
                }
            )
            created = pl.from_epoch(pl.col("t"), time_unit="s")
            frame = frame.select(
                "classification_id",
                pl.when(pl.col("anonymous"))
                .then(pl.lit("not-logged-in-") + pl.col("user").hash().cast(pl.Utf8).str.slice(0, 20))
                .otherwise(pl.lit("volunteer") + pl.col("user").cast(pl.Utf8))
                .alias("user_name"),
                pl.when(pl.col("anonymous")).then(None).otherwise(pl.col("user") + 1000).alias("user_id"),
                pl.col("user").hash().cast(pl.Utf8).str.slice(0, 20).alias("user_ip"),
                pl.lit(6122).alias("workflow_id"),
                pl.lit("DECaLS DR5").alias("workflow_name"),
                pl.col("version").alias("workflow_version"),
                created.dt.strftime("%Y-%m-%d %H:%M:%S UTC").alias("created_at"),
                pl.lit(None, pl.Utf8).alias("gold_standard"),
                pl.lit(None, pl.Utf8).alias("expert"),
                pl.concat_str(
                    pl.lit('{"source":"api","session":"'),
                    pl.col("user").cast(pl.Utf8),
                    pl.lit('","viewport":{"width":1280,"height":800},"started_at":"'),
                    (created - pl.duration(milliseconds=(pl.col("dwell") * 1000).cast(pl.Int64))).dt.strftime(
                        "%Y-%m-%dT%H:%M:%S%.3fZ"
                    ),
                    pl.lit('","user_agent":"Mozilla/5.0","utc_offset":"0","finished_at":"'),
                    created.dt.strftime("%Y-%m-%dT%H:%M:%S%.3fZ"),
                    pl.lit('","live_project":true,"user_language":"en"}'),
                ).alias("metadata"),
                "annotations",
                pl.concat_str(
                    pl.lit('{"'),
                    pl.col("subject").cast(pl.Utf8),
                    pl.lit('":{"retired":null,"ra":"'),
                    (pl.col("subject") % 360).cast(pl.Utf8),
                    pl.lit('","dec":"'),
                    (pl.col("subject") % 90).cast(pl.Utf8),
                    pl.lit('"}}'),
                ).alias("subject_data"),
                pl.col("subject").alias("subject_ids"),
            )
            frame.write_csv(fh, include_header=False)
    return path


def worker(kind: str, export: str, workdir: str) -> None:
    start = time.perf_counter()
    if kind == "annostat":
        from annostat.data.io.load import load_votes

        votes, ex = load_votes(export, workflows=WORKFLOWS, workflow_id="6122")
        result = {"votes": votes.n_votes, "classifications_used": ex.report.rows_used, "rows_read": ex.report.rows_read}
    else:
        from annostat.compat.panoptes_aggregation import reduce_questions

        counts = reduce_questions(export, 6122, [f"T{i}" for i in range(12)], workdir)
        result = {"count_rows": counts.height}
    result.update(
        kind=kind,
        seconds=time.perf_counter() - start,
        peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    )
    print(json.dumps(result))


def spawn(kind: str, export: Path, workdir: Path) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--worker", kind, str(export), str(workdir)],
        check=False,
        capture_output=True,
        text=True,
        env=os.environ,
    )
    if out.returncode:
        raise RuntimeError(out.stderr[-3000:])
    result = json.loads(out.stdout.strip().splitlines()[-1])
    print(result, flush=True)
    return result


def same_counts(export: Path, workdir: Path) -> bool:
    from annostat.compat import panoptes_aggregation as pa
    from annostat.data.io.workflows import read_workflows

    workflow = read_workflows(WORKFLOWS)["6122"]
    theirs = pa.with_labels(pa.read_reductions(sorted(workdir.glob("question_reducer_*.csv"))), workflow)
    return pa.same_counts(theirs, pa.annostat_counts(export, {"6122": workflow}))


def counts_from_extraction(export: Path, extraction: Path) -> tuple[int, bool]:
    """Sum panoptes_aggregation's question extractions per subject, task and answer (what its question reducer
    adds up; its reduce step never finished on 100k rows) and compare with annostat's counts."""
    from annostat.compat import panoptes_aggregation as pa
    from annostat.data.io.workflows import read_workflows

    ext = pl.read_csv(extraction, infer_schema=False)
    data = [c for c in ext.columns if c.startswith("data.") and c != "data.aggregation_version"]
    sums = ext.group_by("subject_id", "task").agg([pl.col(c).cast(pl.Float64).sum() for c in data])
    long = sums.unpivot(index=["subject_id", "task"], on=data, variable_name="slug", value_name="count")
    reductions = long.filter(pl.col("count") > 0).select(
        pl.col("subject_id").alias("subject"),
        "task",
        pl.col("slug").str.replace("^data\\.", ""),
        pl.col("count").cast(pl.Int64),
    )
    workflow = read_workflows(WORKFLOWS)["6122"]
    ours = pa.annostat_counts(export, {"6122": workflow})
    return ours.height, pa.same_counts(pa.with_labels(reductions, workflow), ours)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=0)
    parser.add_argument("--compare", type=int, default=0)
    parser.add_argument("--reference", action="store_true")
    parser.add_argument("--worker", nargs=3)
    parser.add_argument("--workdir", default=tempfile.gettempdir())
    parser.add_argument("--reuse", action="store_true", help="reuse an export of that size already in --workdir")
    parser.add_argument(
        "--check-extraction",
        nargs=2,
        metavar=("EXPORT", "EXTRACTIONS"),
        help="compare annostat's counts with panoptes_aggregation's summed question extractions",
    )
    args = parser.parse_args()
    if args.worker:
        worker(*args.worker)
        return
    workdir = Path(args.workdir)
    if args.check_extraction:
        n, same = counts_from_extraction(Path(args.check_extraction[0]), Path(args.check_extraction[1]))
        print(f"{n:,} subject-task-answer counts; identical: {same}")
    if args.reference:
        write_reference()
    if args.compare:
        export = make_export(workdir / f"export_{args.compare}.csv", args.compare)
        pa_dir = workdir / "panoptes_aggregation"
        pa_dir.mkdir(exist_ok=True)
        ours = spawn("annostat", export, pa_dir)
        theirs = spawn("panoptes_aggregation", export, pa_dir)
        print(
            f"{args.compare:,} rows: annostat {ours['seconds']:.1f} s, panoptes_aggregation "
            f"{theirs['seconds']:.1f} s, ratio {theirs['seconds'] / ours['seconds']:.0f}x, identical counts: "
            f"{same_counts(export, pa_dir)}"
        )
    if args.rows:
        start = time.perf_counter()
        export = workdir / f"export_{args.rows}.csv"
        if not (args.reuse and export.exists()):
            make_export(export, args.rows)
            print(f"made {export} ({export.stat().st_size / 1e9:.1f} GB) in {time.perf_counter() - start:.0f} s")
        spawn("annostat", export, workdir)


def write_reference() -> None:
    from annostat.compat.panoptes_aggregation import reduce_questions, with_labels
    from annostat.data.io.workflows import read_workflows

    for name, export, workflows, workflow_id in [
        ("gz-decals", ZOO / "gz-decals" / "classifications.csv", WORKFLOWS, "6122"),
        ("slsn", ZOO / "slsn" / "classifications.csv", ZOO / "slsn" / "workflows.csv", "10"),
    ]:
        workflow = read_workflows(workflows)[workflow_id]
        counts = with_labels(reduce_questions(export, int(workflow_id), workflow.task_ids()), workflow)
        counts.sort("subject", "task", "slug").write_csv(ROOT / "tests" / "data" / f"panoptes_aggregation_{name}.csv")


if __name__ == "__main__":
    main()
