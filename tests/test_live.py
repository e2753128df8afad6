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
    keep = {
        s: int(k) for s, k in zip(sim.truth["subject"].unique(), rng.integers(2, 9, sim.truth["subject"].nunique()))
    }
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
    featured = set(
        answers[(answers["question"] == "smooth-or-featured") & (answers["answer"] == "featured-or-disk")]["subject"]
    )
    for subject, path in consensus.select("subject_id", "path").iter_rows():
        assert ("disk-edge-on" in path.split("|")) == (subject in featured)
    assert next(q.name for q in tree.questions.values() if not q.asked_after) == "smooth-or-featured"
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
    result = runner.invoke(
        app, ["retire", str(folder), "--out", str(out), "--threshold", "0.95", "--tree", "gz-decals-dr5"]
    )
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


def test_information_gain_is_zero_when_sure_or_random_and_entropy_when_perfect():
    from annostat.live import information_gain

    T = np.array([[1.0, 0.0], [0.5, 0.5], [0.8, 0.2]])
    random = np.full((2, 2), 0.5)
    perfect = np.eye(2)
    assert np.allclose(information_gain(T, random), 0.0)
    entropy = -(T * np.log(np.clip(T, 1e-300, None))).sum(axis=1)
    assert np.allclose(information_gain(T, perfect), entropy)
    good = np.array([[0.9, 0.1], [0.1, 0.9]])
    both = information_gain(T, np.stack([random, good, perfect]))  # [subjects, volunteers]
    assert both.shape == (3, 3) and np.all(both[:, 0] <= both[:, 1] + 1e-12) and np.all(both[:, 1] <= both[:, 2])
    assert both[0].max() < 1e-9 and np.argmax(both[1]) == 2


def test_select_ranks_open_subjects_first_and_leaves_retired_out(fitted):
    from annostat.live import select

    _, fit, _ = fitted
    chosen = select(fit, 50, tree="gz-decals-dr5")
    assert len(chosen) == 50 and chosen["score"].is_sorted(descending=True)
    retired = set(retire(fit, tree="gz-decals-dr5")["subject_id"].to_list())
    assert not retired & set(chosen["subject"].to_list())
    everyone = select(fit, 10_000, tree="gz-decals-dr5", include_retired=True)
    counts = classifications(fit).join(everyone, on="subject")
    few = counts.filter(pl.col("classifications") <= 3)["score"].mean()
    many = counts.filter(pl.col("classifications") >= 7)["score"].mean()
    assert few > many  # fewer votes, more to learn
    top = fit.answers[
        fit.answers["subject"].isin(chosen["subject"].to_list()[:10])
        & (fit.answers["question"] == "smooth-or-featured")
    ]
    assert top["p"].mean() < fit.answers[fit.answers["question"] == "smooth-or-featured"]["p"].mean()


def test_select_routes_to_the_volunteer_who_tells_most(fitted):
    from annostat.live import select

    _, fit, _ = fitted
    vols = fit.volunteers[fit.volunteers["question"] == "smooth-or-featured"].sort_values("accuracy")
    worst, best = vols["volunteer"].iloc[0], vols["volunteer"].iloc[-1]
    routed = select(fit, 40, volunteers=[worst, best], tree="gz-decals-dr5")
    assert set(routed["volunteer"].to_list()) <= {worst, best}
    assert (routed["volunteer"] == best).mean() >= 0.8
    with pytest.raises(Exception, match="no volunteer"):
        select(fit, 5, volunteers=["nobody-at-all"])


def test_select_diverse_takes_each_kind_in_turn(fitted):
    from annostat.live import select

    _, fit, _ = fitted
    batch = select(fit, 20, tree="gz-decals-dr5", diverse=True)
    kinds = fit.answers[fit.answers["question"] == "smooth-or-featured"].set_index("subject")["answer"]
    first = kinds.loc[batch["subject"].to_list()[:6]]
    assert first.nunique() >= 2


def test_cli_select(fitted, tmp_path):
    _, fit, folder = fitted
    out = tmp_path / "selected.csv"
    result = runner.invoke(app, ["select", str(folder), "--n", "15", "--out", str(out), "--tree", "gz-decals-dr5"])
    assert result.exit_code == 0, result.output
    table = pl.read_csv(out)
    assert table.columns == ["subject", "score"] and len(table) == 15 and "15 subjects selected" in result.output
    vols = fit.volunteers["volunteer"].unique()[:2]
    result = runner.invoke(
        app, ["select", str(folder), "--n", "5", "--out", str(out), "--volunteers", ",".join(map(str, vols))]
    )
    assert result.exit_code == 0, result.output
    assert pl.read_csv(out).columns == ["subject", "score", "volunteer"]
    bad = runner.invoke(app, ["select", str(folder), "--n", "5", "--out", str(out), "--volunteers", "ghost"])
    assert bad.exit_code != 0 and "no volunteer" in bad.output and bad.output.count("\n") <= 2
