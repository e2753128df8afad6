import os
from pathlib import Path

import pandas as pd
import pytest

from annostat import Votes
from annostat.simulate import simulate_votes

os.environ["ANNOSTAT_CACHE_DIR"] = ""  # tests compile afresh and write nothing to the home folder

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
REAL = SHARED / "data" / "real"


def real_votes(name: str) -> tuple[Votes, pd.DataFrame]:
    path = REAL / name / "answer.csv"
    if not path.exists():
        pytest.skip(f"shared data not found at {path}")
    votes = Votes.read(path, subject="question", volunteer="worker")
    truth = pd.read_csv(REAL / name / "truth.csv").rename(columns={"question": "subject", "truth": "true"})
    return votes, truth


def accuracy(fit, truth: pd.DataFrame) -> float:
    answers = fit.answers.merge(truth, on="subject")
    assert len(answers) == len(truth)
    return float((answers["answer"] == answers["true"]).mean())


@pytest.fixture(scope="session")
def small_sim():
    return simulate_votes(n_subjects=600, n_volunteers=80, votes_per_subject=8, seed=3)


@pytest.fixture(scope="session")
def small_votes(small_sim):
    return Votes.from_frame(small_sim.votes)
