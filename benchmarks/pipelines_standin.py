"""Pipelines against simulated truth: the whole loop on stand-in galaxies, annostat and crowd-kit on the same votes.

Not part of the test suite. Renders ``--galaxies`` stand-in galaxies (``annostat truth standin``), lets
``--volunteers`` simulated volunteers walk the Galaxy Zoo DECaLS tree on them (``annostat simulate``, default
population: learning curves, image difficulty, 3% "artifact" spammers, retired after ``--retire-after``), and runs
``annostat benchmark`` with every pipeline given (the label-efficiency curve for the fast ones). Prints the mean over
questions and the smooth-or-featured and bar rows; ``--write`` appends them to RESULTS.md. The full report stays in
``--out``.

    python benchmarks/pipelines_standin.py --out /tmp/pipelines [--write]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--galaxies", type=int, default=1000)
    parser.add_argument("--volunteers", type=int, default=400)
    parser.add_argument("--retire-after", type=int, default=20)
    parser.add_argument("--pipelines", default="mv,ds,hds,learning,ck-mv,ck-ds,ck-ods,ck-glad,ck-mace")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()

    from annostat.evaluation.harness import run_benchmark
    from annostat.evaluation.report import markdown_table
    from annostat.truth.simulate import VolunteerPopulation, simulate
    from annostat.truth.standin import standin_truth_set

    start = time.perf_counter()
    truth_set = standin_truth_set(args.out / "truth", args.galaxies, seed=0)
    sim = simulate(truth_set, VolunteerPopulation(n_volunteers=args.volunteers), retire_after=args.retire_after, seed=0)
    sim.write(truth_set.votes_dir)
    result = run_benchmark(truth_set.root, args.pipelines.split(","), args.out / "report", log=print)
    seconds = time.perf_counter() - start
    s = result.scores
    mean = (
        s.groupby("pipeline", sort=False)
        .agg(
            accuracy=("accuracy", "mean"),
            balanced_accuracy=("balanced_accuracy", "mean"),
            ece=("ece", "mean"),
            brier=("brier", "mean"),
            volunteer_mae=("volunteer_mae", "mean"),
            volunteer_corr=("volunteer_corr", "mean"),
            seconds=("seconds", "first"),
        )
        .reset_index()
    )
    columns = [
        "pipeline",
        "subjects",
        "accuracy",
        "balanced_accuracy",
        "ece",
        "brier",
        "volunteer_corr",
        "volunteer_mae",
        "volunteer_coverage90",
        "learning_curve_mae",
    ]
    rows = {q: s[s["question"] == q][[c for c in columns if c in s]] for q in ("smooth-or-featured", "bar")}
    eff = (
        result.efficiency[result.efficiency["question"] == "smooth-or-featured"]
        .pivot_table(index="pipeline", columns="votes_per_subject", values="accuracy")
        .reset_index()
    )
    eff.columns = [str(c) for c in eff.columns]
    setup = result.setup
    text = "\n".join(
        [
            "",
            "## Pipelines against simulated truth (`benchmarks/pipelines_standin.py`)",
            "",
            (
                f"{args.galaxies:,} stand-in galaxies, {args.volunteers} simulated volunteers walking the DECaLS tree (default "
                f"population: learning, image difficulty, 3% artifact spammers), {args.retire_after} classifications a galaxy: "
                f"{setup['votes']:,} votes read back from the simulated Panoptes export. Every pipeline on the same votes; "
                f"whole run {seconds:.0f} s on the 2-core CPU machine. Mean over the 10 questions:"
            ),
            "",
            markdown_table(mean),
            "",
            "smooth-or-featured:",
            "",
            markdown_table(rows["smooth-or-featured"]),
            "",
            "bar (strong / weak / no):",
            "",
            markdown_table(rows["bar"]),
            "",
            "Label efficiency, smooth-or-featured (accuracy with each galaxy's first m classifications):",
            "",
            markdown_table(eff),
            "",
        ]
    )
    print(text)
    if args.write:
        with open(HERE / "RESULTS.md", "a", encoding="utf-8") as f:
            f.write(text)


if __name__ == "__main__":
    main()
