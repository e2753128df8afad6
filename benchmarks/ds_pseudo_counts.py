"""Choose Dawid-Skene's default Dirichlet pseudo-counts from evidence (not part of the test suite).

Grid over (diagonal, off-diagonal) pseudo-counts; for each: accuracy on the real dog and duck data (gold truth), and on
simulated Galaxy-Zoo-shaped votes (5 seeds, 5 and 10 votes per subject) the accuracy of the answers and the mean
absolute error of the volunteers' accuracy. Prints a Markdown table; ``--write`` adds it to RESULTS.md.

    python benchmarks/ds_pseudo_counts.py [--write]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from annostat import DawidSkene, MajorityVote, Votes
from annostat.evaluation.harness import answer_scores, volunteer_scores
from annostat.truth.simulate import VolunteerPopulation, simulate, truth_table

HERE = Path(__file__).resolve().parent
REAL = HERE.parent.parent / "shared" / "data" / "real"
GRID = [
    (0, 0),
    (0.5, 0.25),
    (1, 0),
    (1, 0.25),
    (1, 0.5),
    (1, 1),
    (1.5, 0.25),
    (2, 0.1),
    (2, 0.25),
    (2, 0.5),
    (2, 1),
    (3, 0.5),
    (4, 1),
]


def real_data():
    for name in ("dog", "duck"):
        votes = Votes.from_frame(pd.read_csv(REAL / name / "answer.csv"), subject="question", volunteer="worker")
        truth = pd.read_csv(REAL / name / "truth.csv").rename(columns={"question": "subject", "truth": "true"})
        yield name, votes, truth


def accuracy(fit, truth) -> float:
    answers = fit.answers.merge(truth, on="subject")
    return float((answers["answer"] == answers["true"]).mean())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    real = list(real_data())
    questions = ("smooth-or-featured", "disk-edge-on")
    sims = [
        simulate(
            truth_table(2000, questions=questions, seed=seed),
            VolunteerPopulation(n_volunteers=300),
            questions=questions,
            retire_after=m,
            seed=seed,
        )
        for seed in range(5)
        for m in (5, 10)
    ]
    sim_votes = [Votes.from_frame(s.votes) for s in sims]
    rows = [{"pseudo-counts": "majority vote", **{n: accuracy(MajorityVote().fit(v), t) for n, v, t in real}}]
    for diag, off in GRID:
        model = DawidSkene(pseudo_diagonal=diag, pseudo_off_diagonal=off)
        row = {"pseudo-counts": f"{diag} / {off}", **{n: accuracy(model.fit(v), t) for n, v, t in real}}
        fits = [model.fit(v) for v in sim_votes]
        row["sim accuracy"] = pd.concat([answer_scores(f.posteriors, s.truth)[0] for f, s in zip(fits, sims)])[
            "accuracy"
        ].mean()
        row["sim volunteer MAE"] = pd.concat(
            [volunteer_scores(f.volunteers, s.volunteers, min_votes=1)[0] for f, s in zip(fits, sims)]
        )["volunteer_mae"].mean()
        rows.append(row)
        print(row, flush=True)
    table = pd.DataFrame(rows).to_markdown(index=False, floatfmt=".4f")
    print(table)
    if args.write:
        text = (
            "\n## Dawid-Skene pseudo-counts (`benchmarks/ds_pseudo_counts.py`)\n\n"
            "Accuracy on dog and duck (gold truth); on simulated Galaxy-Zoo-shaped votes (5 seeds x 5 and 10 votes "
            "per subject, 2 questions) the mean answer accuracy and the mean absolute error of every volunteer's "
            "estimated accuracy. Pseudo-counts are diagonal / off-diagonal.\n\n" + table + "\n"
        )
        with open(HERE / "RESULTS.md", "a", encoding="utf-8") as fh:
            fh.write(text)


if __name__ == "__main__":
    main()
