"""The live project (``annostat.live``): retirement by SWAP-style rules on a fit's posteriors."""

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from annostat import DawidSkene, Votes
from annostat.cli import app
from annostat.data.trees import get_tree
from annostat.live import retire
from annostat.live.retire import classifications
from tests.conftest import gz_simulation

runner = CliRunner()


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """600 simulated galaxies on the first two DECaLS questions, 2 to 8 classifications each, fitted and saved."""
    sim = gz_simulation(600, 80, retire_after=8, seed=5)
    rng = np.random.default_rng(0)
    keep = {s: int(k) for s, k in zip(sim.truth["subject"].unique(), rng.integers(2, 9, sim.truth["subject"].nunique()))}
    frame = sim.votes.copy()
    frame["rank"] = frame.groupby("subject")["volunteer"].transform(lambda v: v.astype("category").cat.codes)
    first = frame.drop_duplicates(["subject", "volunteer"]).copy()
    first["order"] = first.groupby("subject").cumcount()
    frame = frame.merge(first[["subject", "volunteer", "order"]], on=["subject", "volunteer"])
    frame = frame[frame["order"] < frame["subject"].map(keep)].drop(columns=["rank", "order"])
    fit = DawidSkene().fit(Votes.from_frame(frame))
    folder = tmp_path_factory.mktemp("live") / "fit"
    fit.save(folder)
    return sim, fit, folder


def test_classifications_count_volunteers_per_subject(fitted):
    _, fit, folder = fitted
    counts = classifications(fit).sort("subject")
    saved = classifications(__import__("annostat").fit.Fit.load(folder)).sort("subject")
    assert counts["classifications"].to_list() == saved["classifications"].to_list()
    assert counts["classifications"].min() >= 1 and counts["classifications"].max() <= 8


def test_consensus_and_count_rules(fitted):
    sim, fit, _ = fitted
    tree = get_tree("gz-decals-dr5")
    retired = retire(fit, threshold=0.95, minimum=3, maximum=7, tree="gz-decals-dr5")
    assert set(retired["reason"]) == {"consensus", "classification_count"}
    consensus = retired.filter(pl.col("reason") == "consensus")
    assert (consensus["confidence"] >= 0.95).all() and (consensus["classifications"] >= 3).all()
    assert (retired.filter(pl.col("reason") == "classification_count")["classifications"] >= 7).all()
    # every subject with 7+ classifications is retired; none with fewer than 3 by consensus
    counts = classifications(fit)
    many = set(counts.filter(pl.col("classifications") >= 7)["subject"].to_list())
    assert many <= set(retired["subject_id"].to_list())
    # the path follows the tree: disk-edge-on is judged only where featured is the most probable answer
    answers = fit.answers
    featured = set(answers[(answers["question"] == "smooth-or-featured") & (answers["answer"] == "featured-or-disk")]
                   ["subject"])
    for subject, path in consensus.select("subject_id", "path").iter_rows():
        assert ("disk-edge-on" in path.split("|")) == (subject in featured)
    assert [q.name for q in tree.questions.values() if not q.asked_after][0] == "smooth-or-featured"
    # consensus is right about the galaxies it retires (the fit is sure, and the fit is calibrated enough)
    truth = sim.truth[sim.truth["question"] == "smooth-or-featured"].set_index("subject")["answer"]
    best = answers[answers["question"] == "smooth-or-featured"].set_index("subject")["answer"]
    ids = consensus["subject_id"].to_list()
    assert (best.loc[ids] == truth.loc[ids]).mean() >= 0.97


def test_without_a_tree_every_answered_question_counts(fitted):
    _, fit, _ = fitted
    with_tree = retire(fit, threshold=0.9, minimum=3, maximum=None, tree="gz-decals-dr5")
    without = retire(fit, threshold=0.9, minimum=3, maximum=None, tree="none")
    assert set(without["subject_id"].to_list()) <= set(with_tree["subject_id"].to_list())  # more questions judged
    assert set(without["reason"]) == {"consensus"}


def test_per_question(fitted):
    _, fit, _ = fitted
    rows = retire(fit, threshold=0.9, minimum=2, maximum=None, per_question=True)
    assert set(rows.columns) >= {"subject_id", "question", "answer", "reason", "classifications", "confidence"}
    assert (rows["confidence"] >= 0.9).all()
    assert rows.select(pl.struct("subject_id", "question").is_unique().all()).item()


def test_cli_retire_writes_caesar_rows(fitted, tmp_path):
    _, _, folder = fitted
    out = tmp_path / "retired.csv"
    result = runner.invoke(app, ["retire", str(folder), "--out", str(out), "--threshold", "0.95", "--tree",
                                 "gz-decals-dr5"])
    assert result.exit_code == 0, result.output
    table = pl.read_csv(out)
    assert table.columns[:2] == ["subject_id", "reason"] and len(table) > 0
    assert "subjects to retire" in result.output
    bad = runner.invoke(app, ["retire", str(folder), "--out", str(out), "--threshold", "1.5"])
    assert bad.exit_code != 0 and "--threshold 1.5" in bad.output
    missing = runner.invoke(app, ["retire", str(tmp_path / "nothing"), "--out", str(out)])
    assert missing.exit_code != 0 and missing.output.count("\n") <= 2
    tree = runner.invoke(app, ["retire", str(folder), "--out", str(out), "--tree", "gz9"])
    assert tree.exit_code != 0 and "gz9" in tree.output
