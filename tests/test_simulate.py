"""The volunteer simulator: walks follow the tree and the volunteer's own answers, retirement, heavy-tailed activity,
learning, image difficulty, spammers, true parameters that match what the volunteers did, and a Panoptes export that
reads back to exactly the same votes."""

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from annostat.cli import app
from annostat.data.io.load import load_votes
from annostat.data.trees import get_tree
from annostat.data.votes import Votes
from annostat.truth.answers import true_path
from annostat.truth.simulate import VolunteerPopulation, simulate, subtree, truth_table
from annostat.truth.truthset import write_truth_set

TREE = get_tree("gz-decals-dr5")


@pytest.fixture(scope="module")
def truth():
    return truth_table(1500, seed=4)


@pytest.fixture(scope="module")
def sim(truth):
    return simulate(truth, VolunteerPopulation(n_volunteers=200), retire_after=10, seed=4)


def walks(votes: pd.DataFrame) -> dict:
    """classification id -> {question: answer} of that walk."""
    out: dict = {}
    for cid, q, a in zip(votes["classification_id"], votes["question"].astype(str), votes["answer"].astype(str)):
        out.setdefault(cid, {})[q] = a
    return out


def test_truth_table_follows_the_tree(truth):
    for row in truth.head(300).to_dict("records"):
        answers = {q: row[f"true_{q}"] if pd.notna(row[f"true_{q}"]) else None for q in TREE.questions}
        for q, is_asked in true_path(TREE, answers).items():
            assert (answers[q] is not None) == is_asked


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), spam=st.floats(0, 0.5))
def test_every_walk_follows_the_volunteers_own_answers(seed, spam):
    truth = truth_table(40, seed=seed)
    sim = simulate(truth, VolunteerPopulation(n_volunteers=15, spammer_fraction=spam), retire_after=3, seed=seed)
    for answers in walks(sim.votes).values():
        path = true_path(TREE, {q: answers.get(q) for q in TREE.questions})
        assert {q for q, is_asked in path.items() if is_asked} == set(answers)


def test_retirement_and_distinct_volunteers(sim):
    c = sim.classifications
    assert (c.groupby("subject").size() == 10).all() and sim.settings["subjects_not_retired"] == 0
    assert not c.duplicated(["subject", "volunteer"]).any()
    assert sim.subjects["retired"].all() and len(sim.subjects) == 1500
    # every subject is asked the first question by each of its 10 volunteers
    assert (sim.votes[sim.votes["question"] == "smooth-or-featured"].groupby("subject").size() == 10).all()


def test_activity_is_heavy_tailed_and_experience_counts_earlier_classifications(sim):
    per_volunteer = sim.classifications.groupby("volunteer").size().sort_values(ascending=False)
    top = per_volunteer.head(len(per_volunteer) // 10).sum() / per_volunteer.sum()
    assert top > 0.5  # the most active 10% give most classifications
    assert per_volunteer.median() < per_volunteer.mean() / 2  # the typical volunteer gives far fewer than the mean
    c = sim.classifications.sort_values("created_at")
    assert c["created_at"].is_unique
    assert (c.groupby("volunteer").cumcount().to_numpy() == c["experience"].to_numpy()).all()


def correct(sim) -> pd.DataFrame:
    v = sim.votes.astype({"question": str, "answer": str, "volunteer": str})
    m = v.merge(sim.truth, on=["subject", "question"], suffixes=("", "_true"))
    return m.assign(correct=m["answer"] == m["answer_true"])


def test_true_accuracy_is_what_the_volunteers_did(sim):
    m = correct(sim)
    q = m[m["question"] == "smooth-or-featured"]
    observed = q.groupby("volunteer")["correct"].agg(["mean", "size"])
    true = sim.volunteers[sim.volunteers["question"] == "smooth-or-featured"].set_index("volunteer")
    busy = observed[observed["size"] >= 100].index
    assert len(busy) >= 10
    gap = (observed.loc[busy, "mean"] - true.loc[busy, "accuracy"]).abs()
    assert gap.max() < 0.12 and gap.mean() < 0.04  # binomial noise on >= 100 votes
    assert (true["n_scored"] <= true["n"]).all()
    # the confusion table's rows are distributions; its diagonal is the plateau accuracy
    rows = sim.confusion.groupby(["volunteer", "question", "true_answer"])["p"].sum()
    assert np.allclose(rows, 1.0)


def test_learning_and_difficulty_lower_accuracy(truth):
    population = VolunteerPopulation(
        n_volunteers=200, learning_gap=1.5, halflife=10, spammer_fraction=0.0, difficulty_weight=1.5
    )
    sim = simulate(truth, population, retire_after=10, seed=1)
    m = correct(sim)
    m = m[m["question"] == "smooth-or-featured"]
    early, late = m[m["experience"] < 3]["correct"].mean(), m[m["experience"] >= 60]["correct"].mean()
    assert late > early + 0.1
    d = sim.subjects.set_index("subject")["difficulty"]
    hard = m["subject"].map(d)
    easy_acc = m[hard <= hard.quantile(0.25)]["correct"].mean()
    hard_acc = m[hard >= hard.quantile(0.75)]["correct"].mean()
    assert easy_acc > hard_acc + 0.05
    curve = sim.population[sim.population["question"] == "smooth-or-featured"]
    assert curve["accuracy"].is_monotonic_increasing and curve["accuracy"].iloc[-1] > curve["accuracy"].iloc[0]
    v = sim.volunteers[sim.volunteers["question"] == "smooth-or-featured"]
    assert (v["start"] <= v["accuracy_last"] + 1e-9).all() and (
        v["accuracy_last"] <= v["accuracy_plateau"] + 1e-9
    ).all()


def test_spammers_always_answer_artifact(truth):
    sim = simulate(truth, VolunteerPopulation(n_volunteers=100, spammer_fraction=0.3), retire_after=5, seed=2)
    spam = set(sim.volunteers.loc[sim.volunteers["spammer"], "volunteer"])
    assert spam
    votes = sim.votes.astype({"volunteer": str, "question": str, "answer": str})
    first = votes[(votes["question"] == "smooth-or-featured") & votes["volunteer"].isin(spam)]
    assert len(first) and (first["answer"] == "artifact").all()
    asked_more = votes[votes["volunteer"].isin(spam)]["question"].unique()
    assert set(asked_more) == {"smooth-or-featured", "merging"}  # artifact ends the walk (merging is always asked)


def test_subtree_needs_the_question_that_leads_there():
    assert list(subtree(TREE, ["smooth-or-featured", "disk-edge-on"]).questions) == [
        "smooth-or-featured",
        "disk-edge-on",
    ]
    with pytest.raises(ValueError, match="disk-edge-on"):
        subtree(TREE, ["smooth-or-featured", "bar"])
    with pytest.raises(ValueError, match="not in the"):
        subtree(TREE, ["nope"])


def test_panoptes_export_reads_back_to_the_same_votes(sim, tmp_path):
    sim.write(tmp_path)
    votes, export = load_votes(tmp_path / "classifications.csv", workflows=tmp_path / "workflows.json")
    assert export.report.tree == "gz-decals-dr5"
    counts = export.report.to_dict()
    assert counts["read"] == counts["used"] == sim.settings["classifications"]
    direct = Votes.from_frame(sim.votes)
    cols = ["subject", "volunteer", "question", "answer"]

    def frame(v):
        return v.to_frame().select(cols).to_pandas().astype(str).sort_values(cols).reset_index(drop=True)

    pd.testing.assert_frame_equal(frame(votes), frame(direct))
    # experience from the export's created_at order matches the simulator's (classification) order
    raw = pd.read_csv(tmp_path / "classifications.csv")
    assert raw["created_at"].str.endswith(" UTC").all() and raw["classification_id"].is_unique
    subjects = pd.read_parquet(tmp_path / "subjects.parquet")
    data = json.loads(raw["subject_data"].iloc[0])
    sid = str(raw["subject_ids"].iloc[0])
    assert data[sid]["image_id"] == subjects.set_index("subject").loc[int(sid), "image_id"]
    written = json.loads((tmp_path / "simulation.json").read_text())
    assert written["export"]["workflow_id"] == "6122" and written["votes"] == len(sim.votes)
    for name in ("volunteers", "confusion", "learning", "truth", "votes"):
        assert len(pd.read_parquet(tmp_path / f"{name}.parquet"))


def test_cli_simulate_writes_into_the_truth_set(tmp_path, truth):
    root = tmp_path / "ts"
    small = truth.head(60)
    write_truth_set(
        root,
        {"source": "standin", "tree": "gz-decals-dr5", "bands": ["r"], "seed": 0},
        small,
        {i: {"r": np.zeros((8, 8), np.float32)} for i in small["image_id"]},
    )
    result = CliRunner().invoke(app, ["simulate", str(root), "--volunteers", "30", "--retire-after", "4"])
    assert result.exit_code == 0, result.output
    assert (root / "votes" / "classifications.csv").exists() and (root / "votes" / "votes.parquet").exists()
    other = tmp_path / "elsewhere"
    result = CliRunner().invoke(app, ["simulate", str(root), "--out", str(other), "--seed", "3"])
    assert result.exit_code == 0 and (other / "workflows.json").exists()
    missing = CliRunner().invoke(app, ["simulate", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "not a folder" in missing.output and "Traceback" not in missing.output
    bad = CliRunner().invoke(app, ["simulate", str(root), "--spammers", "2"])
    assert bad.exit_code == 2 and "--spammers" in bad.output


def test_planted_confusions_show_in_the_votes_and_the_truth(truth):
    planted = [("bar", "weak", "no", 0.6, 0.5)]
    sim = simulate(
        truth, VolunteerPopulation(n_volunteers=60, spammer_fraction=0.0, planted=planted), retire_after=10, seed=6
    )
    v = sim.volunteers[sim.volunteers["question"] == "bar"].set_index("volunteer")
    has = v["planted"] == "weak->no"
    assert 0.3 < has.mean() < 0.7 and (v.loc[~has, "planted"] == "").all()
    m = correct(sim)
    weak = m[(m["question"] == "bar") & (m["answer_true"] == "weak")]
    said_no = weak.assign(no=weak["answer"] == "no").groupby(weak["volunteer"].map(has))["no"].mean()
    assert said_no[True] > 0.55 and said_no[False] < 0.3
    conf = sim.confusion[(sim.confusion["question"] == "bar") & (sim.confusion["true_answer"] == "weak")]
    cell = conf[conf["answer"] == "no"].set_index("volunteer")["p"]
    assert (cell[has[has].index] >= 0.6).all() and np.allclose(conf.groupby("volunteer")["p"].sum(), 1.0)
    with pytest.raises(ValueError, match="does not fit"):
        simulate(truth, VolunteerPopulation(n_volunteers=10, planted=[("bar", "weak", "weak", 0.5, 0.5)]))
