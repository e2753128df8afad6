"""Per-subject answer priors from a classifier: the evidence that a good prior helps, a flat one changes nothing and a
wrong one does no harm; the table formats (annostat posteriors, Zoobot fractions and concentrations, wide tables),
names matched through the tree, ids through the subjects' metadata, subjects without votes, the command line."""

import json

import numpy as np
import pandas as pd
import polars as pl
import pytest
from typer.testing import CliRunner

from annostat import DawidSkene, InputError, Votes
from annostat.cli import app
from annostat.data.priors import read_prior
from annostat.evaluation.harness import answer_scores
from annostat.models import get_model
from annostat.truth.simulate import VolunteerPopulation, simulate, truth_table

QUESTIONS = ("smooth-or-featured", "disk-edge-on", "has-spiral-arms", "bar")


@pytest.fixture(scope="module")
def three_votes():
    """3,000 simulated galaxies with 3 classifications each (Galaxy Zoo JWST's rate), 300 volunteers, 4 questions of
    the DECaLS tree; the plain Dawid-Skene fit and the subjects it scores (voted, with a true answer)."""
    truth = truth_table(3000, questions=QUESTIONS, seed=5)
    sim = simulate(truth, VolunteerPopulation(n_volunteers=300), questions=QUESTIONS, retire_after=3, seed=5)
    votes = Votes.from_frame(sim.votes)
    plain = DawidSkene().fit(votes)
    scored = sim.truth.merge(
        plain.table("answers").select("subject", "question").to_pandas(), on=["subject", "question"]
    )
    return sim, votes, plain, scored


def classifier(sim, rng, accuracy=None, kind="calibrated") -> pd.DataFrame:
    """Predictions (subject, question, answer, p) for every subject the truth asks a question about.

    ``calibrated``: the exact Bayes posterior of a noisy look at the truth (a Gaussian signal around the true answer's
    one-hot vector, its noise set so the top answer is right ``accuracy`` of the time), so p is calibrated by
    construction; ``wrong``: 0.9 on a wrong answer chosen at random, every time."""
    rows = []
    for question, part in sim.truth.groupby("question"):
        answers = list(sim.tree.answers(question))
        K = len(answers)
        z = part["answer"].map({a: i for i, a in enumerate(answers)}).to_numpy()
        if kind == "calibrated":
            log_pi = np.log(np.maximum(np.bincount(z, minlength=K) / len(z), 1e-9))
            noise = rng.normal(size=(len(z), K))

            def posterior(sigma, log_pi=log_pi, K=K, z=z, noise=noise):
                logit = log_pi + (np.eye(K)[z] + sigma * noise) / sigma**2
                p = np.exp(logit - logit.max(axis=1, keepdims=True))
                return p / p.sum(axis=1, keepdims=True)

            lo, hi = 0.01, 20.0
            for _ in range(50):  # the noise that gives the chosen accuracy
                mid = (lo + hi) / 2
                lo, hi = (mid, hi) if (posterior(mid).argmax(axis=1) == z).mean() > accuracy else (lo, mid)
            p = posterior((lo + hi) / 2)
        else:
            p = np.full((len(z), K), 0.1 / (K - 1))
            p[np.arange(len(z)), (z + rng.integers(1, K, len(z))) % K] = 0.9
        rows += [
            pd.DataFrame({"subject": part["subject"].to_numpy(), "question": question, "answer": a, "p": p[:, k]})
            for k, a in enumerate(answers)
        ]
    return pd.concat(rows, ignore_index=True)


def pooled_accuracy(fit, scored) -> float:
    scores, _ = answer_scores(fit.posteriors, scored)
    return float((scores["accuracy"] * scores["subjects"]).sum() / scores["subjects"].sum())


def test_a_good_prior_helps_a_flat_one_changes_nothing_a_wrong_one_does_no_harm(three_votes):
    sim, votes, plain, scored = three_votes
    rng = np.random.default_rng(5)
    base = pooled_accuracy(plain, scored)
    good = classifier(sim, rng, accuracy=0.85)
    top = good.loc[good.groupby(["subject", "question"])["p"].idxmax()].merge(sim.truth, on=["subject", "question"])
    assert abs((top["answer_x"] == top["answer_y"]).mean() - 0.85) < 0.005
    helped = DawidSkene().fit(votes, prior=read_prior(good, votes))
    # measured (seed 5): 0.8411 -> 0.9269 (+0.086; bar +0.25, has-spiral-arms +0.10); learned weights 0.9-1.0
    assert pooled_accuracy(helped, scored) >= base + 0.05
    weights = [q["prior_weight"] for q in helped.summary()["questions"]]
    assert min(weights) > 0.7 and max(weights) <= 1.0

    flat = good.assign(p=1.0)  # the same prediction for every subject carries no evidence
    same = DawidSkene().fit(votes, prior=read_prior(flat, votes))
    for name in ("confusion", "volunteers", "priors", "trace"):
        assert same.table(name).equals(plain.table(name)), name
    voted = same.table("posteriors").join(
        plain.table("posteriors").select("subject", "question"), on=["subject", "question"], how="semi"
    )
    assert voted.equals(plain.table("posteriors"))  # the rest: subjects answered without votes on a question

    wrong = classifier(sim, rng, kind="wrong")
    tempered = DawidSkene().fit(votes, prior=read_prior(wrong, votes, weight=0.3))
    # measured: 0.8358 (-0.005); the votes give the wrong classifier a weight of 0
    assert pooled_accuracy(tempered, scored) >= base - 0.01
    assert max(q["prior_weight"] for q in tempered.summary()["questions"]) < 0.05
    fixed = DawidSkene().fit(votes, prior=read_prior(wrong, votes, weight=0.3, learn_weight=False))
    assert {q["prior_weight"] for q in fixed.summary()["questions"]} == {0.3}
    assert pooled_accuracy(fixed, scored) < base - 0.02  # forcing trust in it costs (measured -0.10)


def test_zoobot_tables_and_names_through_the_tree(three_votes):
    _sim, votes, _plain, _ = three_votes
    subjects = votes.subjects.to_list()[:50]
    fractions = pd.DataFrame(
        {
            "id_str": subjects,
            "smooth-or-featured-dr8_smooth_fraction": 0.7,
            "smooth-or-featured-dr8_featured-or-disk_fraction": 0.2,
            "smooth-or-featured-dr8_artifact_fraction": 0.1,
            "ra": 1.0,
        }
    )
    prior = read_prior(fractions, votes)
    assert prior.format.startswith("Zoobot vote fractions") and prior.id_column == "id_str"
    p = prior.table.filter(pl.col("answer") == "smooth")["p"]
    assert p.len() == 50 and np.allclose(p.to_numpy(), 0.7)
    # Dirichlet concentrations, one per forward pass (lists, as Zoobot writes them): expected fractions, averaged
    concentrations = pd.DataFrame(
        {
            "subject": subjects[:2],
            "bar_strong": ["[1.0, 3.0]", "[2.0, 2.0]"],
            "bar_weak": ["[1.0, 1.0]", "[2.0, 2.0]"],
            "bar_no": ["[2.0, 0.0]", "[4.0, 4.0]"],
        }
    )
    table = read_prior(concentrations, votes).table.sort("subject", "answer")
    first = dict(table.filter(pl.col("subject") == subjects[0]).select("answer", "p").iter_rows())
    assert first == pytest.approx({"strong": (0.25 + 0.75) / 2, "weak": (0.25 + 0.25) / 2, "no": 0.25})
    with pytest.raises(InputError, match="'bar_medium': not an answer of bar"):
        read_prior(concentrations.assign(bar_medium=1.0), votes)
    with pytest.raises(InputError, match="'bars_no_fraction': names no question"):
        read_prior(fractions.assign(bars_no_fraction=1.0), votes)
    with pytest.raises(InputError, match="no id matches a subject of the votes"):
        read_prior(fractions.assign(id_str="J000"), votes)
    with pytest.raises(InputError, match="no id column"):
        read_prior(fractions.drop(columns="id_str"), votes)


def test_ids_through_metadata_and_subjects_without_votes(tmp_path, three_votes):
    """An export's iauname matches a Zoobot table's; a galaxy nobody classified gets its answers from the prior."""
    _, votes, _, _ = three_votes
    from annostat.data.subjects import Subjects

    names = Subjects.from_frame(
        pl.DataFrame({"subject": votes.subjects, "iauname": [f"J{i:05d}" for i in range(votes.n_subjects)]})
    )
    zoobot = pd.DataFrame(
        {
            "iauname": ["J00000", "J00001", "J99999"],
            "smooth-or-featured_smooth_fraction": 0.9,
            "smooth-or-featured_featured-or-disk_fraction": 0.05,
            "smooth-or-featured_artifact_fraction": 0.05,
        }
    )
    prior = read_prior(zoobot, votes, subjects=names)
    assert prior.matched_by == "the subjects' iauname" and prior.unmatched == 1
    assert set(prior.table["subject"]) == set(votes.subjects[:2])
    new = pd.DataFrame(
        {
            "subject": [1, 2],
            "smooth-or-featured_smooth": [0.98, 0.01],
            "smooth-or-featured_featured-or-disk": [0.01, 0.98],
            "smooth-or-featured_artifact": 0.01,
        }
    )
    known = classifier(three_votes[0], np.random.default_rng(1), accuracy=0.9)
    wide = known.pivot_table(index="subject", columns=["question", "answer"], values="p")
    wide.columns = [f"{q}_{a}" for q, a in wide.columns]
    wide = pd.concat([wide.reset_index(), new], ignore_index=True)
    fit = DawidSkene().fit(votes, prior=read_prior(wide, votes))
    answers = fit.table("answers").filter(
        pl.col("subject").is_in([1, 2]) & (pl.col("question") == "smooth-or-featured")
    )
    assert dict(answers.select("subject", "answer").iter_rows()) == {1: "smooth", 2: "featured-or-disk"}
    assert (answers["n_votes"] == 0).all()
    info = fit.summary()
    assert info["subjects_without_votes"] == 2 and info["prior"]["subjects_without_votes"] == 2
    assert info["prior"]["subjects_with_votes"] == votes.n_subjects
    folder = fit.save(tmp_path / "fit")
    assert {1, 2} <= set(pl.read_parquet(folder / "subject_data.parquet")["subject"])
    from annostat.catalogue import make_catalogue

    catalogue = make_catalogue(folder)
    row = catalogue.filter(pl.col("subject") == 2)
    assert (
        row["smooth-or-featured_total-votes"][0] == 0 and row["smooth-or-featured_featured-or-disk_posterior"][0] > 0.5
    )


def test_bayesian_models_take_the_prior_in_their_factor(three_votes):
    sim, _votes, _, _ = three_votes
    small = Votes.from_frame(sim.votes[sim.votes["question"] == "smooth-or-featured"].head(2000))
    good = classifier(sim, np.random.default_rng(2), accuracy=0.9)
    fit = get_model("hds", inference="map", steps=150).fit(small, prior=read_prior(good, small))
    (question,) = fit.summary()["questions"]
    assert 0 < question["prior_weight"] <= 1 and "prior_weight[smooth-or-featured]" in fit.inference_data().posterior
    fixed = get_model("item", inference="svi", steps=100, draws=8).fit(
        small, prior=read_prior(good, small, weight=0.5, learn_weight=False)
    )  # a model with its own factor
    assert fixed.summary()["questions"][0]["prior_weight"] == 0.5


def test_cli_prior(tmp_path, three_votes):
    sim, _votes, _, _ = three_votes
    sim.votes.to_csv(tmp_path / "votes.csv", index=False)
    classifier(sim, np.random.default_rng(3), accuracy=0.85).to_parquet(tmp_path / "prior.parquet")
    runner = CliRunner()
    result = runner.invoke(
        app,
        [
            "fit",
            str(tmp_path / "votes.csv"),
            "--prior",
            str(tmp_path / "prior.parquet"),
            "--prior-weight",
            "0.8",
            "--out",
            str(tmp_path / "fit"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "prior (long (subject, question, answer, p)" in result.output and "learned, at most 0.8" in result.output
    info = json.loads((tmp_path / "fit" / "fit.json").read_text())
    assert info["prior"]["subjects"] == 3000 and info["prior"]["weight"] == 0.8
    refused = runner.invoke(
        app,
        [
            "fit",
            str(tmp_path / "votes.csv"),
            "--model",
            "mv",
            "--prior",
            str(tmp_path / "prior.parquet"),
            "--out",
            str(tmp_path / "mv"),
        ],
    )
    assert refused.exit_code == 2 and "does not take a per-subject prior" in refused.output
    bad = runner.invoke(
        app,
        [
            "fit",
            str(tmp_path / "votes.csv"),
            "--prior",
            str(tmp_path / "votes.csv"),
            "--prior-id-col",
            "nope",
            "--out",
            str(tmp_path / "bad"),
        ],
    )
    assert bad.exit_code == 2 and "no id column 'nope'" in bad.output and "Traceback" not in bad.output
