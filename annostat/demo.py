"""The demo: simulate Galaxy-Zoo-shaped votes with known truth, fit majority vote and Dawid-Skene, compare.

Everything goes through the public path a user takes: the simulated votes are written to CSV, read back with
:meth:`annostat.votes.Votes.read`, fitted, and each fit folder is written with :meth:`annostat.fit.Fit.save`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from annostat.fit import Fit
from annostat.models import get_model
from annostat.models.base import Progress
from annostat.simulate import SimulatedVotes, simulate_votes
from annostat.votes import Votes


def score_against_truth(fit: Fit, sim: SimulatedVotes, min_votes: int = 20) -> pd.DataFrame:
    """Per question: accuracy of the most probable answers, and error of the volunteers' estimated accuracy.

    Answers are scored on subjects with a true answer and at least one vote on the question; volunteer accuracy on
    volunteers with at least ``min_votes`` votes on the question (mean absolute error and correlation).
    """
    answers = fit.answers.merge(sim.truth, on=["subject", "question"], suffixes=("", "_true"))
    answers["correct"] = answers["answer"] == answers["answer_true"]
    vols = fit.volunteers.merge(sim.volunteers, on=["volunteer", "question"], suffixes=("", "_true"))
    vols = vols[vols["n"] >= min_votes]
    rows = []
    for question, part in answers.groupby("question", sort=False):
        v = vols[vols["question"] == question]
        rows.append({
            "model": fit.model,
            "question": question,
            "subjects": len(part),
            "accuracy": part["correct"].mean(),
            "volunteers": len(v),
            "volunteer_accuracy_mae": (v["accuracy"] - v["accuracy_true"]).abs().mean(),
            "volunteer_accuracy_corr": np.corrcoef(v["accuracy"], v["accuracy_true"])[0, 1] if len(v) > 2 else np.nan,
        })
    return pd.DataFrame(rows)


def run_demo(
    out: str | Path = "annostat-demo",
    n_subjects: int = 3000,
    n_volunteers: int = 300,
    seed: int = 0,
    models: tuple[str, ...] = ("mv", "ds"),
    progress: Progress | None = None,
) -> pd.DataFrame:
    """Run the demo, write ``votes.csv``, ``truth.csv``, one fit folder per model and ``comparison.csv`` to ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    sim = simulate_votes(n_subjects=n_subjects, n_volunteers=n_volunteers, seed=seed)
    sim.votes.to_csv(out / "votes.csv", index=False)
    sim.truth.to_csv(out / "truth.csv", index=False)
    sim.volunteers.to_csv(out / "volunteers_truth.csv", index=False)
    votes = Votes.read(out / "votes.csv")
    scores = []
    for name in models:
        fit = get_model(name).fit(votes, progress=progress)
        fit.save(out / name)
        scores.append(score_against_truth(fit, sim))
    comparison = pd.concat(scores, ignore_index=True)
    comparison.to_csv(out / "comparison.csv", index=False)
    return comparison
