"""Gold answers and experts (``annostat.data.gold``): gold fixes subjects' answers in every model, experts are a
population of their own in hierarchical Dawid-Skene, and both travel with the votes into fit folders and updates."""

import json

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from annostat import DawidSkene, InputError, MajorityVote, Votes
from annostat.cli import app
from annostat.data.gold import Gold
from annostat.fit import Fit
from annostat.models.dawid_skene import pseudo_count_matrix
from annostat.models.hierarchical import HierarchicalDawidSkene
from tests.conftest import SHARED

runner = CliRunner()


def simulated(seed=0, S=400, V=50, E=4, per_subject=4):
    """Votes of V volunteers (accuracy ~ Beta(4, 2)) and E experts (0.97) on S subjects with three answers."""
    rng = np.random.default_rng(seed)
    truth = rng.choice(3, S, p=[0.5, 0.3, 0.2])
    accuracy = np.r_[np.full(E, 0.97), rng.beta(4, 2, V)]
    rows = []
    for s in range(S):
        for v in rng.choice(V + E, per_subject, replace=False):
            answer = truth[s] if rng.random() < accuracy[v] else (truth[s] + rng.integers(1, 3)) % 3
            rows.append((1000 + s, f"v{v:03d}", ["smooth", "featured", "artifact"][int(answer)]))
    frame = pl.DataFrame(rows, schema=["subject", "volunteer", "answer"], orient="row")
    labels = np.array(["smooth", "featured", "artifact"])[truth]
    return frame, pl.DataFrame({"subject": 1000 + np.arange(S), "answer": labels}), [f"v{v:03d}" for v in range(E)]


@pytest.fixture(scope="module")
def data():
    frame, truth, experts = simulated()
    gold = truth.sample(60, seed=1)
    return frame, truth, experts, gold


def with_gold(frame, gold):
    votes = Votes.from_frame(frame)
    votes.attach_gold(Gold.from_frame(gold))
    return votes


@pytest.mark.parametrize(
    "model", [MajorityVote(), DawidSkene(), HierarchicalDawidSkene(inference="map", steps=200)], ids=["mv", "ds", "hds"]
)
def test_gold_fixes_the_answers_in_every_model(data, model):
    frame, _, _, gold = data
    fit = model.fit(with_gold(frame, gold))
    got = fit.table("answers").join(gold, on="subject", suffix="_gold")
    assert got.height == gold.height
    assert (got["answer"] == got["answer_gold"]).all() and (got["p"] == 1.0).all()
    posteriors = fit.table("posteriors").join(gold, on="subject", suffix="_gold")
    assert ((posteriors["p"] == 1.0) == (posteriors["answer"] == posteriors["answer_gold"])).all()


def test_dawid_skene_with_gold_is_em_with_those_posteriors_held(data):
    """At convergence the confusions are the M-step of the final posteriors, gold subjects' one-hot ones included."""
    frame, _, _, gold = data
    model = DawidSkene(tol=0, max_iter=300)
    votes = with_gold(frame, gold)
    fit = model.fit(votes)
    qf = fit.questions[0]
    subject, volunteer, answer = votes.arrays(0)
    K = votes.n_answers[0]
    rows = np.searchsorted(qf.subjects, subject)
    counts = np.zeros((len(qf.volunteers), K, K))
    np.add.at(counts, (np.searchsorted(qf.volunteers, volunteer), slice(None), answer), qf.posteriors[rows])
    theta = counts + pseudo_count_matrix(K, model.pseudo_diagonal, model.pseudo_off_diagonal)
    theta /= theta.sum(axis=2, keepdims=True)
    assert np.abs(theta - qf.confusion).max() < 1e-4
    assert np.allclose(qf.counts, counts, atol=1e-3)
    # gold answers help the other subjects too (never much worse than without)
    truth = data[1]

    def accuracy(f):
        a = f.table("answers").join(truth, on="subject").filter(~pl.col("subject").is_in(gold["subject"].implode()))
        return (a["answer"] == a["answer_right"]).mean()

    assert accuracy(fit) >= accuracy(model.fit(Votes.from_frame(frame))) - 0.01


def test_gold_accounting_and_errors(data, tmp_path):
    frame, truth, _, _ = data
    votes = Votes.from_frame(frame)
    extra = pl.concat([truth.head(5), pl.DataFrame({"subject": [99], "answer": ["smooth"]})])
    summary = votes.attach_gold(Gold.from_frame(extra))
    assert summary["rows"] == 6 and summary["used"] == 5 and summary["not_used"] == {"subject without votes": 1}
    bad = tmp_path / "gold.csv"
    pl.DataFrame({"subject": [1000, 1001], "answer": ["smooth", "spiral"]}).write_csv(bad)
    with pytest.raises(InputError, match=r"gold.csv, row 2, column 'answer': 'spiral' is not an answer"):
        votes.attach_gold(Gold.read(bad))
    with pytest.raises(InputError, match="different gold answers"):
        Gold.from_frame(pl.DataFrame({"subject": [1, 1], "answer": ["a", "b"]}))
    with pytest.raises(InputError, match="no column"):
        Gold.from_frame(pl.DataFrame({"id": [1], "answer": ["a"]}))
    two = Votes.from_frame(
        frame.with_columns(pl.lit("q").alias("question")).vstack(frame.with_columns(pl.lit("r").alias("question")))
    )
    with pytest.raises(InputError, match="no question column"):
        two.attach_gold(Gold.from_frame(truth.head(3)))


def test_experts_are_a_population_of_their_own(data):
    frame, _, experts, _ = data
    votes = Votes.from_frame(frame)
    assert votes.attach_experts(experts + ["nobody"]) == len(experts)
    fit = HierarchicalDawidSkene(inference="map", steps=600).fit(votes)
    mu = fit.questions[0].inference["draws"]["population_logit"].mean(axis=0)  # [2, K, K-1]
    assert mu.shape == (2, 3, 2)
    assert mu[1].mean() < mu[0].mean() - 0.3  # the experts' wrong answers less likely than the volunteers'
    table = fit.table("volunteers")
    assert set(table.filter(pl.col("expert"))["volunteer"]) == set(experts)
    assert table.filter(pl.col("expert"))["accuracy"].mean() > table.filter(~pl.col("expert"))["accuracy"].mean() + 0.2
    plain = DawidSkene().fit(votes)
    assert plain.table("volunteers")["expert"].sum() == len(experts)  # every model says who is an expert


def test_gold_and_experts_travel_through_fit_folders_and_updates(data, tmp_path):
    frame, _truth, experts, gold = data
    frame.head(1200).write_csv(tmp_path / "first.csv")
    frame.slice(1200).write_csv(tmp_path / "later.csv")
    gold.write_csv(tmp_path / "gold.csv")
    result = runner.invoke(
        app,
        [
            "fit",
            str(tmp_path / "first.csv"),
            "--gold",
            str(tmp_path / "gold.csv"),
            "--experts",
            ",".join(experts),
            "--out",
            str(tmp_path / "last"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "gold answers:" in result.output and f"experts: {len(experts)} volunteers" in result.output
    info = json.loads((tmp_path / "last" / "fit.json").read_text())
    assert info["gold"]["rows"] == gold.height and info["experts"] == len(experts)
    saved = Fit.load(tmp_path / "last")
    assert saved.votes.gold_summary["used"] == info["gold"]["used"]
    assert set(saved.votes.experts) == set(experts)
    updated = runner.invoke(
        app, ["update", str(tmp_path / "last"), str(tmp_path / "later.csv"), "--out", str(tmp_path / "now"), "-q"]
    )
    assert updated.exit_code == 0, updated.output
    now = Fit.load(tmp_path / "now")
    answers = now.table("answers").join(gold, on="subject", suffix="_gold")
    assert answers.height == gold.height and (answers["answer"] == answers["answer_gold"]).all()
    assert (answers["p"] == 1.0).all()
    assert now.table("volunteers").filter(pl.col("expert"))["volunteer"].n_unique() == len(experts)
    nobody = runner.invoke(
        app, ["fit", str(tmp_path / "first.csv"), "--experts", "nobody", "--out", str(tmp_path / "x")]
    )
    assert nobody.exit_code == 2 and "--experts: none of nobody" in nobody.output


@pytest.mark.skipif(not (SHARED / "data" / "zooniverse" / "gz-decals").exists(), reason="shared data not found")
def test_panoptes_gold_standard_and_expert_columns(tmp_path):
    from annostat.data.io.load import load_votes

    folder = SHARED / "data" / "zooniverse" / "gz-decals"
    rows = pl.read_csv(folder / "classifications.csv", infer_schema=False)
    # an expert's gold-standard classification of the first subject, and the volunteers' own
    expert = rows.head(1).with_columns(
        pl.lit("an-expert").alias("user_name"),
        pl.lit("999").alias("user_id"),
        pl.lit("true").alias("gold_standard"),
        pl.lit("TRUE").alias("expert"),
        pl.lit("1").alias("classification_id"),
    )
    # and the expert's own (not gold) classification of the second, made in expert mode
    own = rows.slice(1, 1).with_columns(
        pl.lit("an-expert").alias("user_name"),
        pl.lit("999").alias("user_id"),
        pl.lit("TRUE").alias("expert"),
        pl.lit("2").alias("classification_id"),
    )
    pl.concat([rows, expert, own]).write_csv(tmp_path / "export.csv")
    votes, _export = load_votes(tmp_path / "export.csv", workflows=folder / "workflow_versions.json")
    plain, _ = load_votes(folder / "classifications.csv", workflows=folder / "workflow_versions.json")
    gold = votes.gold_summary
    assert gold["used"] == gold["rows"] > 0  # every gold answer is on a subject the volunteers classified
    assert votes.n_votes > plain.n_votes  # the gold classification is not a vote; the expert's own are
    assert votes.report.dropped == {"gold_standard classification (a gold answer)": gold["rows"]}
    assert votes.report.rows_read == votes.report.rows_kept + votes.report.rows_dropped
    assert votes.experts.to_list() == ["an-expert"]
    fit = DawidSkene().fit(votes)
    fixed = fit.table("answers").join(votes.gold.frame.drop("row"), on=["subject", "question"], suffix="_gold")
    assert fixed.height == gold["used"] and (fixed["answer"] == fixed["answer_gold"]).all()
