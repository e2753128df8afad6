import os
from pathlib import Path

import pandas as pd
import pytest

from annostat import Votes
from annostat.truth.simulate import simulate_questions

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


GZ_QUESTIONS = ("smooth-or-featured", "disk-edge-on")


def gz_simulation(n_subjects: int, n_volunteers: int, retire_after: int, seed: int, **population):
    """Simulated volunteers on the first two questions of the Galaxy Zoo DECaLS tree (``smooth-or-featured``, then
    ``disk-edge-on`` for whoever answers featured). Static volunteers on equally hard images unless ``population``
    says otherwise (the static models' own assumptions), 5% spammers who always answer artifact."""
    settings = {"learning_gap": 0.0, "difficulty_weight": 0.0, "spammer_fraction": 0.05, **population}
    return simulate_questions(n_subjects, n_volunteers, GZ_QUESTIONS, retire_after=retire_after, seed=seed, **settings)


@pytest.fixture(scope="session")
def small_sim():
    return gz_simulation(600, 80, retire_after=8, seed=3)


@pytest.fixture(scope="session")
def small_votes(small_sim):
    return Votes.from_frame(small_sim.votes)


def assert_advisable(fit, tmp_path, bayesian: bool, learning: bool = False) -> None:
    """``annostat advise`` works on this fit's folder: one advice row per volunteer and question, intervals that hold
    the estimate (from the model, or the labelled approximation), a trend for learning fits, the HTML cards."""
    from typer.testing import CliRunner

    from annostat.cli import app

    folder = fit.save(tmp_path / f"fit-{fit.model}")
    out = tmp_path / f"advice-{fit.model}"
    result = CliRunner().invoke(app, ["advise", str(folder), "--out", str(out), "--max-pages", "1", "--min-votes", "5"])
    assert result.exit_code == 0, result.output
    table = pd.read_parquet(out / "advice.parquet")
    assert len(table) == len(fit.volunteers)
    assert table["recommendation"].notna().all() and table["advice"].str.len().gt(20).all()
    assert (table["accuracy_lo"] <= table["accuracy"] + 1e-6).all()
    assert (table["accuracy"] <= table["accuracy_hi"] + 1e-6).all()
    assert set(table["interval"]) == {"model posterior" if bayesian else "beta approximation"}
    if learning:
        assert table.loc[table["n"] >= 5, "trend"].isin(["improving", "plateaued", "declining"]).all()
        page = next((out / "volunteers").iterdir()).read_text()
        assert "learning curve on" in page
    assert (out / "index.html").exists() and len(list((out / "volunteers").iterdir())) == 1
