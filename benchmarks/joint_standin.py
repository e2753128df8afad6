"""The joint model on stand-in galaxies whose true answers are known, beside Dawid-Skene and the image baselines on the
same votes and images.

A truth set of ``--n`` rendered galaxies (64x64, g r z; ``annostat truth standin``), simulated volunteers walking the
whole Galaxy Zoo DECaLS tree with 3 classifications a galaxy (``annostat simulate --retire-after 3``: 300 volunteers,
learning, image difficulty, 3% spammers), then the votes of the last ``--unvoted`` share of the galaxies removed: those
galaxies have images and no votes. Scores (mean over the 10 questions, each against the truth where the true path
asks it): accuracy and ECE on the voted galaxies, accuracy on the unvoted ones (the network's answer), and the MAE of
the volunteers' estimated accuracy (volunteers with 10+ votes on a question).

With ``--efficiency 2,3,5`` it measures label efficiency instead: the volunteers give 10 classifications a galaxy
(``--retire-after 10``), and each pipeline is fitted on every galaxy's first m classifications for each m given (the
harness's ``first_classifications``), Dawid-Skene also at 10; the figure is the fewest classifications a galaxy with
which the joint model matches Dawid-Skene's accuracy at 10.

Not part of the test suite (about 10 minutes a pipeline on 2 CPU cores at 6,000 galaxies).

    python benchmarks/joint_standin.py [--n 6000] [--pipelines ds,joint-ds,two-stage,crowdlayer,zoobot-style] [--write]
    python benchmarks/joint_standin.py --efficiency 2,3,5 --pipelines joint-ds [--write]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
OPTIONS = {
    "joint-ds": {},
    "joint-hds": {"model": "hds"},
    "two-stage": {"loss": "soft"},
    "zoobot-style": {"loss": "dirichlet"},
    "crowdlayer": {"loss": "crowdlayer"},
    "joint-ds (marginal)": {"method": "marginal"},
}


def make_data(root: Path, n: int, seed: int, retire_after: int = 3) -> Path:
    run = [sys.executable, "-m", "annostat"]
    subprocess.run(
        run + ["truth", "standin", "--n", str(n), "--size", "64", "--seed", str(seed), "--out", str(root)],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        run
        + [
            "simulate",
            str(root),
            "--retire-after",
            str(retire_after),
            "--seed",
            str(seed),
            "--out",
            str(root / f"votes{retire_after}"),
        ],
        check=True,
        capture_output=True,
    )
    return root


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=6000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--unvoted", type=float, default=0.2)
    parser.add_argument("--pipelines", default="ds,joint-ds,two-stage,crowdlayer,zoobot-style")
    parser.add_argument("--data", type=Path, default=None, help="an existing truth set made as make_data makes it")
    parser.add_argument("--efficiency", default="", help="classifications a galaxy to refit at, e.g. 2,3,5")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    grid = [int(m) for m in args.efficiency.split(",") if m.strip()]
    retire_after = 10 if grid else 3

    import polars as pl

    from annostat import DawidSkene, Votes
    from annostat.evaluation.harness import answer_scores, read_simulated_votes, true_answers, volunteer_scores
    from annostat.models.joint import JointModel
    from annostat.truth.truthset import load_truth_set
    from annostat.vision.inputs import image_inputs

    root = args.data or make_data(
        Path(tempfile.mkdtemp(prefix="annostat-joint-")) / "truth", args.n, args.seed, retire_after
    )
    truth_set = load_truth_set(root, check_images=False)
    votes, folder, _ = read_simulated_votes(truth_set, root / f"votes{retire_after}")
    frame = votes.to_frame()
    subjects = frame["subject"].unique(maintain_order=True).to_list()
    unvoted = set(subjects[int(len(subjects) * (1 - args.unvoted)) :])
    table = votes.subject_table
    votes = Votes.from_frame(frame.filter(~pl.col("subject").is_in(list(unvoted))), time="time", duplicates="all")
    votes.subject_table = table
    truth = pd.concat([true_answers(truth_set, folder), truth_set.true_answers()])  # by Panoptes id and image id
    true_volunteers = pd.read_parquet(folder / "volunteers.parquet")
    inputs = image_inputs(root, votes.subjects.to_list(), 64, subject_table=votes.subject_table)
    print(f"{votes}; {len(inputs)} images, {len(inputs) - votes.n_subjects} without votes", flush=True)
    if grid:
        efficiency(votes, inputs, truth, grid, args)
        return
    rows = []
    for name in args.pipelines.split(","):
        start = time.perf_counter()
        fit = DawidSkene().fit(votes) if name == "ds" else JointModel(**OPTIONS[name]).fit(votes, inputs)
        post = fit.posteriors
        extra = getattr(fit, "extra_subjects", None)
        no_votes = set(map(str, extra.to_list())) if extra is not None else set()
        is_unvoted = post["subject"].astype(str).isin(no_votes)
        voted_scores, _ = answer_scores(post[~is_unvoted], truth)
        unvoted_scores = answer_scores(post[is_unvoted], truth)[0] if is_unvoted.any() else None
        vol, _ = volunteer_scores(fit.volunteers[["volunteer", "question", "n", "accuracy"]], true_volunteers, 10)
        rows.append(
            {
                "pipeline": name,
                "voted_accuracy": voted_scores["accuracy"].mean(),
                "voted_ece": voted_scores["ece"].mean(),
                "unvoted_accuracy": np.nan if unvoted_scores is None else unvoted_scores["accuracy"].mean(),
                "volunteer_mae": vol["volunteer_mae"].mean(),
                "seconds": time.perf_counter() - start,
                "per_question": voted_scores.set_index("question")["accuracy"].round(3).to_dict(),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    if args.write:
        write(pd.DataFrame(rows), args, votes, len(inputs))


def efficiency(votes, inputs, truth, grid: list[int], args) -> None:
    """Each pipeline on every galaxy's first m classifications; Dawid-Skene also at 10."""
    from annostat import DawidSkene
    from annostat.evaluation.harness import answer_scores, first_classifications
    from annostat.models.joint import JointModel

    rows = []
    for name in args.pipelines.split(","):
        for m in sorted(set(grid) | ({10} if name == "ds" else set())):
            subset = first_classifications(votes, m)
            subset.subject_table = votes.subject_table
            start = time.perf_counter()
            fit = DawidSkene().fit(subset) if name == "ds" else JointModel(**OPTIONS[name]).fit(subset, inputs)
            post = fit.posteriors
            post = post[post["subject"].astype(str).isin(set(map(str, subset.subjects.to_list())))]
            scores, _ = answer_scores(post, truth)
            rows.append(
                {
                    "pipeline": name,
                    "votes_per_galaxy": m,
                    "votes": int(subset.n_votes),
                    "accuracy": scores["accuracy"].mean(),
                    "ece": scores["ece"].mean(),
                    "seconds": time.perf_counter() - start,
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    table = pd.DataFrame(rows)
    target = table[(table["pipeline"] == "ds") & (table["votes_per_galaxy"] == 10)]["accuracy"]
    matched = {}
    if len(target):
        for name, part in table[table["pipeline"] != "ds"].groupby("pipeline"):
            hits = part[part["accuracy"] >= float(target.iloc[0])]["votes_per_galaxy"]
            matched[name] = int(hits.min()) if len(hits) else None
    print(json.dumps({"ds_at_10": None if not len(target) else float(target.iloc[0]), "matched_at": matched}))
    if args.write:
        write_efficiency(table, matched, args, votes, len(inputs))


def versions_line() -> str:
    import flax
    import jax

    import annostat

    return f"annostat {annostat.__version__}, jax {jax.__version__}, flax {flax.__version__}; 2 CPU cores. "


def write_efficiency(table: pd.DataFrame, matched: dict, args, votes, n_images: int) -> None:
    wide = table.pivot_table(index="pipeline", columns="votes_per_galaxy", values="accuracy")
    lines = [
        "",
        ("## Label efficiency of the joint model on stand-in galaxies (`benchmarks/joint_standin.py --efficiency`)"),
        "",
        versions_line() + f"{n_images:,} stand-in galaxies (64x64, seed {args.seed}), 10 classifications each "
        f"by simulated volunteers on the whole DECaLS tree, the votes of {args.unvoted:.0%} removed; each "
        "pipeline refitted on every galaxy's first m classifications. Mean accuracy over the 10 questions on the "
        "voted galaxies.",
        "",
        "| pipeline | " + " | ".join(f"m = {m}" for m in wide.columns) + " |",
        "|---|" + "---|" * len(wide.columns),
    ]
    for name, row in wide.iterrows():
        lines.append(f"| {name} | " + " | ".join("-" if np.isnan(v) else f"{v:.3f}" for v in row) + " |")
    lines += [
        "",
        "Classifications a galaxy with which each pipeline matches Dawid-Skene at 10: "
        + "; ".join(
            f"{name}: {'more than ' + str(max(table['votes_per_galaxy'][table['pipeline'] == name])) if m is None else m}"
            for name, m in matched.items()
        ),
    ]
    path = HERE / "RESULTS.md"
    path.write_text(path.read_text(encoding="utf-8") + "\n".join(lines) + "\n", encoding="utf-8")


def write(table: pd.DataFrame, args, votes, n_images: int) -> None:
    lines = [
        "",
        "## The joint model on stand-in galaxies (`benchmarks/joint_standin.py`)",
        "",
        versions_line()
        + f"{n_images:,} stand-in galaxies (64x64, seed {args.seed}), 3 classifications each by simulated volunteers "
        f"on the whole DECaLS tree, the votes of {args.unvoted:.0%} removed: {votes.n_votes:,} votes on "
        f"{votes.n_subjects:,} galaxies. Means over the 10 questions; the default CNN and settings.",
        "",
        "| pipeline | accuracy (voted) | ECE (voted) | accuracy (no votes) | volunteer MAE | seconds |",
        "|---|---|---|---|---|---|",
    ]
    for r in table.itertuples():
        unvoted = "-" if np.isnan(r.unvoted_accuracy) else f"{r.unvoted_accuracy:.3f}"
        lines.append(
            f"| {r.pipeline} | {r.voted_accuracy:.3f} | {r.voted_ece:.3f} | {unvoted} | "
            f"{r.volunteer_mae:.4f} | {r.seconds:.0f} |"
        )
    lines += [
        "",
        "Per question (voted galaxies): "
        + "; ".join(
            f"{r.pipeline}: " + ", ".join(f"{q} {a:.3f}" for q, a in r.per_question.items()) for r in table.itertuples()
        ),
    ]
    path = HERE / "RESULTS.md"
    path.write_text(path.read_text(encoding="utf-8") + "\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
