"""Dawid-Skene speed: annostat (JAX EM) against crowd-kit, from the same DataFrame to posteriors.

Not part of the test suite. Synthetic votes: S subjects x 10 votes, V volunteers with heavy-tailed (Pareto) activity,
3 answers, per-volunteer accuracy ~ Beta(6, 2) with errors spread evenly. 50 EM iterations, no early stop. Each
contender runs in a fresh process (so annostat's JAX compilation is included and peak memory is its own): the library
is imported (timed separately), then the clock runs from the pandas DataFrame to the posterior table. Accuracy is
against the simulated truth.

    python benchmarks/ds_speed.py                 # 2M votes: annostat vs crowd-kit, then annostat alone at 10M
    python benchmarks/ds_speed.py --write         # also append the table to RESULTS.md
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np
import pandas as pd

N_ITER = 50


def make_votes(n_subjects: int, n_volunteers: int, votes_per_subject: int = 10, seed: int = 0):
    rng = np.random.default_rng(seed)
    activity = rng.pareto(1.0, n_volunteers) + 1
    activity /= activity.sum()
    truth = rng.choice(3, n_subjects, p=[0.5, 0.3, 0.2])
    task = np.repeat(np.arange(n_subjects), votes_per_subject)
    worker = rng.choice(n_volunteers, len(task), p=activity)
    accuracy = rng.beta(6, 2, n_volunteers)
    correct = rng.random(len(task)) < accuracy[worker]
    label = np.where(correct, truth[task], (truth[task] + rng.integers(1, 3, len(task))) % 3)
    df = pd.DataFrame({"task": task, "worker": worker, "label": label})
    return df, pd.Series(truth, name="truth")


def import_annostat():
    import annostat  # noqa: F401


def import_crowdkit():
    import crowdkit.aggregation  # noqa: F401


def run_annostat(df: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    from annostat import DawidSkene, Votes

    votes = Votes.from_frame(
        df, subject="task", volunteer="worker", answer="label", question=None, time=None, duplicates="all"
    )
    fit = DawidSkene(max_iter=N_ITER, tol=0.0).fit(votes)
    posteriors = fit.posteriors
    labels = posteriors.loc[posteriors.groupby("subject")["p"].idxmax(), ["subject", "answer"]]
    return labels.set_index("subject")["answer"], {"iterations": fit.iterations}


def run_crowdkit(df: pd.DataFrame):
    from crowdkit.aggregation import DawidSkene

    probas = DawidSkene(n_iter=N_ITER, tol=0.0).fit_predict_proba(df)
    return probas.idxmax(axis=1), {}


def worker(contender: str, n_subjects: int, n_volunteers: int) -> None:
    df, truth = make_votes(n_subjects, n_volunteers)
    shuffled = contender.endswith("-shuffled")
    contender = contender.removesuffix("-shuffled")
    if shuffled:  # rows in random order, as in an export sorted by classification rather than subject
        df = df.sample(frac=1.0, random_state=1).reset_index(drop=True)
    start = time.perf_counter()
    {"annostat": import_annostat, "crowdkit": import_crowdkit}[contender]()
    import_seconds = time.perf_counter() - start
    start = time.perf_counter()
    labels, extra = {"annostat": run_annostat, "crowdkit": run_crowdkit}[contender](df)
    seconds = time.perf_counter() - start
    accuracy = float((labels.reindex(truth.index).to_numpy() == truth.to_numpy()).mean())
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "contender": contender + ("-shuffled" if shuffled else ""),
                "votes": len(df),
                "seconds": seconds,
                "import_seconds": import_seconds,
                "accuracy": accuracy,
                "peak_rss_mb": peak_mb,
                **extra,
            }
        )
    )


def spawn(contender: str, n_subjects: int, n_volunteers: int) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--worker", contender, str(n_subjects), str(n_volunteers)],
        check=True,
        capture_output=True,
        text=True,
        env=os.environ,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    print(result, flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--worker", nargs=3)
    parser.add_argument("--write", action="store_true")
    parser.add_argument("--skip-10m", action="store_true")
    args = parser.parse_args()
    if args.worker:
        worker(args.worker[0], int(args.worker[1]), int(args.worker[2]))
        return
    ours = spawn("annostat", 200_000, 20_000)
    peer = spawn("crowdkit", 200_000, 20_000)
    ours_shuffled = spawn("annostat-shuffled", 200_000, 20_000)
    big = None if args.skip_10m else spawn("annostat", 1_000_000, 100_000)
    lines = [
        "| votes | contender | seconds, DataFrame to posteriors (50 iterations) | import seconds | accuracy | peak RSS (MB) |",
        "|---:|:---|---:|---:|---:|---:|",
    ]
    names = {
        "annostat": "annostat DawidSkene (JAX, compile included)",
        "crowdkit": "crowd-kit 1.4.2",
        "annostat-shuffled": "annostat, same votes with the rows shuffled",
    }
    for r in [ours, peer, ours_shuffled] + ([big] if big else []):
        name = names[r["contender"]]
        lines.append(
            f"| {r['votes']:,} | {name} | {r['seconds']:.2f} | {r['import_seconds']:.2f} | "
            f"{r['accuracy']:.4f} | {r['peak_rss_mb']:.0f} |"
        )
    ratio = peer["seconds"] / ours["seconds"]
    ratio_with_import = (peer["seconds"] + peer["import_seconds"]) / (ours["seconds"] + ours["import_seconds"])
    text = "\n".join(lines) + (
        f"\n\nSpeed ratio at 2M votes, DataFrame to posteriors: **{ratio:.1f}x** faster than crowd-kit "
        f"({ratio_with_import:.1f}x with the imports counted too); accuracy difference "
        f"{abs(ours['accuracy'] - peer['accuracy']):.4f}. With the rows shuffled: "
        f"{peer['seconds'] / ours_shuffled['seconds']:.1f}x.\n"
    )
    print(text)
    if args.write:
        from environment import record  # beside this script

        record(
            "Dawid-Skene speed (`benchmarks/ds_speed.py`)",
            "Synthetic votes, 10 per subject, 3 answers, heavy-tailed volunteer activity (2M: 200k subjects, 20k "
            "volunteers; 10M: 1M subjects, 100k volunteers); 50 EM iterations without early stop; each contender "
            "in a fresh process, from the same pandas DataFrame to the posteriors (annostat's JAX compilation "
            "included).",
            text,
        )


if __name__ == "__main__":
    main()
