"""Dawid-Skene at Galaxy Zoo's size: a Parquet votes table to a fit folder with ``annostat fit --model ds``.

Not part of the test suite. Synthetic votes as Galaxy Zoo's whole size has them: 10 votes a subject, subjects and
volunteers as integer ids (volunteers with heavy-tailed activity), three answers as text, the rows in random order
(as an export sorted by time has them). Each size runs the command line in a fresh process, timed from start to the
written fit folder, with its peak resident memory; the tables are made once into ``--data`` (3 GB at 100M votes).

    python benchmarks/ds_scale.py                          # 10M, 30M and 100M votes
    python benchmarks/ds_scale.py --sizes 10 --write       # 10M only, and append the table to RESULTS.md
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

VOTES_PER_SUBJECT = 10
ANSWERS = np.array(["smooth", "featured", "artifact"])


def make_table(path: Path, n_votes: int, seed: int = 0) -> None:
    """``n_votes`` votes on ``n_votes / 10`` subjects by ``n_votes / 100`` volunteers, written in chunks."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    n_subjects, n_volunteers = n_votes // VOTES_PER_SUBJECT, max(n_votes // 100, 1)
    activity = rng.pareto(1.0, n_volunteers) + 1
    cumulative = np.cumsum(activity / activity.sum())
    accuracy = rng.beta(6, 2, n_volunteers).astype(np.float32)
    truth = rng.choice(3, n_subjects, p=[0.5, 0.3, 0.2]).astype(np.int8)
    order = rng.permutation(n_votes)  # row r is vote order[r] of the subject-major layout
    tmp = path.with_suffix(".tmp")
    with pq.ParquetWriter(
        tmp,
        pa.schema(
            [("subject", pa.int64()), ("volunteer", pa.int64()), ("answer", pa.dictionary(pa.int8(), pa.string()))]
        ),
    ) as writer:
        for start in range(0, n_votes, 10_000_000):
            rows = order[start : start + 10_000_000]
            subject = rows // VOTES_PER_SUBJECT
            volunteer = np.minimum(np.searchsorted(cumulative, rng.random(len(rows))), n_volunteers - 1)
            correct = rng.random(len(rows)) < accuracy[volunteer]
            answer = np.where(correct, truth[subject], (truth[subject] + rng.integers(1, 3, len(rows))) % 3)
            labels = pa.DictionaryArray.from_arrays(pa.array(answer.astype(np.int8)), pa.array(ANSWERS))
            writer.write_table(pa.table({"subject": subject + 1_000_000_000, "volunteer": volunteer, "answer": labels}))
    tmp.rename(path)
    np.save(path.with_suffix(".truth.npy"), truth)


def run_fit(table: Path, out: Path) -> dict:
    """``annostat fit TABLE --model ds`` in a fresh process: seconds and peak memory (of that process)."""
    script = (
        "import json, resource, sys, time; start = time.perf_counter()\n"
        "from annostat.cli import main\n"
        "sys.argv = ['annostat', 'fit', sys.argv[1], '--model', 'ds', '--out', sys.argv[2], '--quiet']\n"
        "try:\n    main()\nexcept SystemExit as exc:\n    assert not exc.code, exc.code\n"
        "print(json.dumps({'seconds': time.perf_counter() - start,\n"
        "                  'peak_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(table), str(out)],
        check=False,
        capture_output=True,
        text=True,
        env=os.environ,
    )
    if done.returncode:
        raise SystemExit(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def score(out: Path, truth_path: Path) -> tuple[float, int]:
    """Accuracy of the fit's answers against the simulated truth, and EM iterations."""
    import polars as pl

    truth = np.load(truth_path)
    posteriors = pl.read_parquet(out / "posteriors.parquet", columns=["subject", "answer", "p"])
    best = posteriors.sort("p", descending=True).unique("subject", keep="first")
    code = best["answer"].replace_strict({a: i for i, a in enumerate(ANSWERS)}, return_dtype=pl.Int8).to_numpy()
    subject = best["subject"].cast(pl.Int64).to_numpy() - 1_000_000_000
    fit = json.loads((out / "fit.json").read_text())
    iterations = int(fit["iterations"])
    return float((truth[subject] == code).mean()), iterations


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10,30,100", help="millions of votes")
    parser.add_argument("--data", type=Path, default=Path("/tmp/annostat-ds-scale"))
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    args.data.mkdir(parents=True, exist_ok=True)
    rows = []
    for millions in (int(s) for s in args.sizes.split(",")):
        table = args.data / f"votes-{millions}m.parquet"
        if not table.exists():
            start = time.perf_counter()
            make_table(table, millions * 1_000_000)
            print(f"made {table} in {time.perf_counter() - start:.0f} s", flush=True)
        out = args.data / f"fit-{millions}m"
        result = run_fit(table, out)
        accuracy, iterations = score(out, table.with_suffix(".truth.npy"))
        rows.append({"votes": millions * 1_000_000, **result, "accuracy": accuracy, "iterations": iterations})
        print(rows[-1], flush=True)
    from environment import markdown_table  # beside this script

    columns = [
        (name, "r")
        for name in (
            "votes",
            "subjects",
            "volunteers",
            "seconds, table to fit folder",
            "ns a vote",
            "peak RSS (GiB)",
            "EM iterations",
            "accuracy",
        )
    ]
    text = markdown_table(
        columns,
        [
            [
                f"{r['votes']:,}",
                f"{r['votes'] // 10:,}",
                f"{r['votes'] // 100:,}",
                f"{r['seconds']:.1f}",
                f"{r['seconds'] / r['votes'] * 1e9:.0f}",
                f"{r['peak_mb'] / 1024:.2f}",
                f"{r['iterations']}",
                f"{r['accuracy']:.4f}",
            ]
            for r in rows
        ],
    )
    print(text)
    if args.write:
        from environment import record  # beside this script

        record(
            "Dawid-Skene at Galaxy Zoo's size (`benchmarks/ds_scale.py`)",
            "Synthetic Parquet votes table (subject and volunteer integer ids, answers as text, rows in random "
            "order; 10 votes a subject, 100 a volunteer on average with heavy-tailed activity), `annostat fit "
            "TABLE --model ds` in a fresh process with its defaults (stop at a relative change of 1e-6), timed "
            "from the start of the process to the written fit folder.",
            text,
        )


if __name__ == "__main__":
    main()
