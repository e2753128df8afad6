"""The live loop: classifications each strategy needs to reach the accuracy of Galaxy Zoo's fixed retirement (40
classifications a galaxy), on stand-in galaxies with volunteers simulated on demand.

Not part of the test suite. The galaxies are the stand-in renderer's (``annostat.truth.standin``: its parameter
prior and true answers, so faint, small and edge-on galaxies are harder; no images are rendered, the loop does not
look at them), on the first two questions of the DECaLS tree; the volunteers are the simulator's default population
(``VolunteerPopulation``), ``--volunteers`` of them, but for ``--difficulty-weight``. Strategies and targets: ``annostat.evaluation.loop``. Each
retirement threshold in ``--thresholds`` is one run of every strategy.

    python benchmarks/live_loop.py                       # print the figures
    python benchmarks/live_loop.py --write               # and append them to RESULTS.md
    python benchmarks/live_loop.py --joint --thresholds 0.99999 --write   # with the joint model (slow: ~15 min)

With ``--joint`` the strategies are retirement, retirement + selection, and both with the joint model on features
simulated as a classifier's representation of each galaxy (8 numbers: a centre per true answer of each question,
plus Gaussian noise of sd ``--feature-noise``), its networks fine-tuned each round.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from environment import markdown_table, record

QUESTIONS = ("smooth-or-featured", "disk-edge-on")


def standin_truth(n: int, seed: int) -> pd.DataFrame:
    """The stand-in renderer's galaxies as a truth table: parameters (which set the images' difficulty) and true
    answers, without rendering."""
    from annostat.truth.standin import PARAMETERS, answers_from, draw_parameters
    from annostat.truth.truthset import true_column

    params = draw_parameters(n, seed)
    rows = []
    for i, p in params.iterrows():
        row = {"image_id": f"standin-{i:06d}", **{k: float(p[k]) for k in PARAMETERS}}
        row.update({true_column(q): a for q, a in answers_from(p).items()})
        rows.append(row)
    return pd.DataFrame(rows)


def simulated_features(stream, noise: float, seed: int):
    """Features of each galaxy as a classifier would give them: the sum of a random centre per true answer of each
    question (8 numbers), plus Gaussian noise."""
    import numpy as np

    from annostat.vision.inputs import Inputs

    rng = np.random.default_rng(seed)
    truth = stream.truth
    x = np.zeros((len(stream.subjects), 8), np.float32)
    row = {s: i for i, s in enumerate(stream.subjects)}
    for question in QUESTIONS:
        part = truth[truth["question"] == question]
        answers = sorted(part["answer"].unique())
        centres = rng.normal(0, 1.5, (len(answers), 8))
        for subject, answer in zip(part["subject"], part["answer"]):
            x[row[subject]] += centres[answers.index(answer)]
    x += rng.normal(0, noise, x.shape).astype(np.float32)
    return Inputs("features", stream.subjects.tolist(), x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--galaxies", type=int, default=2000)
    parser.add_argument("--volunteers", type=int, default=1000)
    parser.add_argument("--thresholds", default="0.999,0.9999,0.99999")
    parser.add_argument(
        "--difficulty-weight",
        type=float,
        default=0.6,
        help="how much faint, small, edge-on galaxies mislead the volunteers (the population's default)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--joint", action="store_true", help="compare with the joint model on simulated features")
    parser.add_argument("--feature-noise", type=float, default=1.0)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()

    from annostat.evaluation.loop import run_loop
    from annostat.truth.simulate import OnDemandVolunteers, VolunteerPopulation

    truth = standin_truth(args.galaxies, args.seed)
    stream = OnDemandVolunteers.simulate(
        truth,
        VolunteerPopulation(n_volunteers=args.volunteers, difficulty_weight=args.difficulty_weight),
        most=40,
        seed=args.seed,
        questions=QUESTIONS,
    )
    runs = []
    extra = {}
    if args.joint:
        extra = {
            "strategies": ("swap", "swap+select", "swap+joint", "swap+select+joint"),
            "inputs": simulated_features(stream, args.feature_noise, args.seed),
            "joint_options": {"rounds": 2, "epochs_per_round": 30, "folds": 3},
        }
    for threshold in map(float, args.thresholds.split(",")):
        start = time.perf_counter()
        result = run_loop(stream, threshold=threshold, tree="gz-decals-dr5", log=print, **extra)
        seconds = time.perf_counter() - start
        print(result.summary.to_string(), f"\n{seconds:.0f} s", flush=True)
        runs.append((threshold, result, seconds))

    if args.write:
        rows = []
        for threshold, result, _ in runs:
            for r in result.summary.to_dict("records"):
                if (r["strategy"].startswith("fixed") or r["strategy"] == "uniform") and threshold != runs[0][0]:
                    continue  # the same in every run
                share = [
                    "not reached"
                    if r[f"share_{n}40"] is None or r[f"share_{n}40"] != r[f"share_{n}40"]
                    else f"{r[f'share_{n}40']:.1%}"
                    for n in ("mv", "ds")
                ]
                quarter = (
                    ""
                    if r["accuracy_at_quarter"] is None or r["accuracy_at_quarter"] != r["accuracy_at_quarter"]
                    else f"{r['accuracy_at_quarter']:.4f}"
                )
                rows.append(
                    [
                        r["strategy"],
                        "" if r["strategy"].startswith("fixed") or r["strategy"] == "uniform" else f"{threshold:g}",
                        *share,
                        quarter,
                        f"{r['final_classifications']:,}",
                        f"{r['final_accuracy']:.4f}",
                    ]
                )
        targets = runs[0][1].targets
        table = markdown_table(
            [
                ("strategy", "l"),
                ("threshold", "r"),
                ("to mv@40", "r"),
                ("to ds@40", "r"),
                ("best accuracy within 25%", "r"),
                ("classifications at the end", "r"),
                ("accuracy at the end", "r"),
            ],
            rows,
        )
        record(
            "The live loop: classifications to reach the accuracy of 40 a galaxy"
            + (", with the joint model" if args.joint else ""),
            f"`benchmarks/live_loop.py`: {args.galaxies:,} stand-in galaxies (the renderer's parameter prior and true "
            f"answers, on {' and '.join(QUESTIONS)}), {args.volunteers:,} simulated volunteers of the default "
            f"population (images' difficulty weight {args.difficulty_weight:g}) answering on demand; every galaxy first classified twice, Dawid-Skene updated each round "
            "(incremental EM), retirement after 3 classifications at the threshold on the tree path or at 40, "
            "swap+select giving a fifth of the galaxies' worth of classifications a round. The fixed rule (40 a "
            f"galaxy, {runs[0][1].setup['fixed_classifications']:,} classifications) reaches accuracy "
            f"{targets['mv']:.4f} with vote fractions (Galaxy Zoo's aggregation) and {targets['ds']:.4f} with "
            "Dawid-Skene; the columns give the classifications each strategy had spent when its accuracy first "
            "reached those, as a share of the fixed rule's (every (galaxy, question) on the true path scored), and "
            "the best accuracy it had with at most a quarter of them."
            + (
                f" The joint strategies fit Dawid-Skene with an MLP on features simulated as a classifier's (noise sd "
                f"{args.feature_noise:g}; 3 cross-fitted networks, 2 EM rounds of 30 epochs first, then one round "
                "of fine-tuning each loop round)."
                if args.joint
                else ""
            ),
            table,
        )


if __name__ == "__main__":
    main()
