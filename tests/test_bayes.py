"""Bayesian volunteer models (NumPyro): recovery on simulated votes with known truth, label switching, learning
curves, model checks and advice (NUTS, the real data, the CLI and the rest of the family: ``test_bayes_family.py``). Fits are module-scoped and small; the first NumPyro fit of a
process pays JAX's one-off compilation of NumPyro's set-up (~20-30 s on 2 cores)."""

import numpy as np
import pandas as pd
import pytest

from annostat import DawidSkene, Votes
from annostat.models import HierarchicalDawidSkene, LearningCurve
from annostat.truth.simulate import VolunteerPopulation, simulate, truth_table
from tests.conftest import assert_advisable, gz_simulation


def volunteer_errors(fit, truth: pd.DataFrame) -> pd.DataFrame:
    v = fit.volunteers.merge(truth, on=["volunteer", "question"], suffixes=("", "_true"))
    return v.assign(error=(v["accuracy"] - v["accuracy_true"]).abs())


def expected_calibration_error(fit, truth: pd.DataFrame, bins: int = 10) -> float:
    """Mean |confidence - accuracy| over equal-width confidence bins, weighted by subjects per bin."""
    a = fit.answers.merge(truth, on=["subject", "question"], suffixes=("", "_true"))
    correct = (a["answer"] == a["answer_true"]).to_numpy()
    p = a["p"].to_numpy()
    which = np.minimum((p * bins).astype(int), bins - 1)
    return float(
        sum(
            abs(p[which == b].mean() - correct[which == b].mean()) * (which == b).mean()
            for b in range(bins)
            if (which == b).any()
        )
    )


@pytest.fixture(scope="module")
def gz_sim():
    """Galaxy-Zoo-shaped votes: 3,000 subjects, 400 volunteers (long-tailed activity, 5% spammers)."""
    return gz_simulation(3000, 400, retire_after=8, seed=3)


@pytest.fixture(scope="module")
def gz_votes(gz_sim):
    return Votes.from_frame(gz_sim.votes)


@pytest.fixture(scope="module")
def hds_svi(gz_votes):
    return HierarchicalDawidSkene(inference="svi", steps=1500, seed=0).fit(gz_votes)


def test_hierarchical_and_learning_fits_can_be_advised(hds_svi, learning_fit, tmp_path):
    assert_advisable(hds_svi, tmp_path, bayesian=True)
    assert_advisable(learning_fit[1], tmp_path, bayesian=True, learning=True)


def test_hierarchical_recovers_volunteers_better_than_dawid_skene(gz_sim, gz_votes, hds_svi):
    ds = volunteer_errors(DawidSkene().fit(gz_votes), gz_sim.volunteers)
    hds = volunteer_errors(hds_svi, gz_sim.volunteers)
    few_ds, few_hds = (e[(e["n"] >= 5) & (e["n"] <= 30)]["error"].mean() for e in (ds, hds))
    assert few_hds < few_ds  # pooling helps most where a volunteer has 5-30 votes (0.0571 vs 0.0627 measured)
    assert hds["error"].mean() < ds["error"].mean()  # measured 0.0484 vs 0.0530
    many = hds[hds["n"] >= 50]  # measured: correlation 0.931 (DS 0.927) on 131 rows
    assert len(many) >= 50 and np.corrcoef(many["accuracy"], many["accuracy_true"])[0, 1] >= 0.9
    assert (hds["accuracy_lo"] <= hds["accuracy"]).all() and (hds["accuracy"] <= hds["accuracy_hi"]).all()
    covered = ((hds["accuracy_lo"] <= hds["accuracy_true"]) & (hds["accuracy_true"] <= hds["accuracy_hi"])).mean()
    assert 0.85 <= covered <= 0.95  # 90% intervals


def test_model_checks_tell_a_pooled_model_from_a_hierarchical_one(gz_votes, hds_svi):
    """PSIS-LOO/WAIC and the posterior predictive agreement check prefer the model that describes each volunteer."""
    from annostat.evaluation.checks import agreement_check, information_criteria
    from annostat.models import PooledMultinomial

    pooled = PooledMultinomial(inference="svi", steps=1000, seed=0).fit(gz_votes)
    ic_hds, ic_pooled = information_criteria(hds_svi), information_criteria(pooled)
    assert list(ic_hds["question"]) == list(ic_pooled["question"]) and len(ic_hds) == 2
    assert np.isfinite(ic_hds[["elpd_loo", "elpd_waic", "p_loo"]].to_numpy()).all()
    assert ic_hds["elpd_loo"].sum() > ic_pooled["elpd_loo"].sum()
    assert ic_hds["elpd_waic"].sum() > ic_pooled["elpd_waic"].sum()
    check_hds, check_pooled = agreement_check(hds_svi), agreement_check(pooled)
    extreme = lambda c: (c["too_low"].sum() + c["too_high"].sum()) / c["volunteers"].sum()
    assert extreme(check_hds) <= 0.15 < extreme(check_pooled)  # one shared confusion cannot describe everyone
    trace = hds_svi.inference_data()
    assert {"posterior", "posterior_predictive", "log_likelihood", "observed_data"} <= set(trace.groups())


def test_labels_do_not_switch_on_symmetric_data():
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 2, 300)
    subject = np.repeat(np.arange(300), 5)
    volunteer = rng.integers(0, 40, len(subject))
    correct = rng.random(len(subject)) < 0.75
    answer = np.where(correct, truth[subject], 1 - truth[subject])
    votes = Votes.from_frame(
        pd.DataFrame({"subject": subject, "volunteer": volunteer, "answer": answer}), duplicates="all"
    )
    fit = HierarchicalDawidSkene(inference="map", steps=400, seed=4).fit(votes)
    again = HierarchicalDawidSkene(inference="map", steps=400, seed=4).fit(votes)
    assert again.posteriors.equals(fit.posteriors)  # reproducible for a seed
    answers = fit.answers.sort_values("subject")["answer"].to_numpy()
    assert (answers == truth).mean() > 0.85
    assert fit.volunteers["accuracy"].mean() > 0.6


@pytest.fixture(scope="module")
def learning_sim():
    """One 3-answer question, equally common answers; volunteers start near 0.55 and learn to ~0.9 (half-life-like
    scale 15 classifications). 4 votes a subject: answers are uncertain enough for a static model's calibration to
    suffer."""
    question = ("smooth-or-featured",)
    truth = truth_table(1000, questions=question, frequencies={question[0]: [1, 1, 1]}, seed=2)
    population = VolunteerPopulation(
        n_volunteers=80,
        accuracy={question[0]: 0.9},
        skill_sd=0.4,
        question_sd=0.0,
        learning_gap=2.0,
        learning_gap_sd=0.4,
        halflife=15.0,
        halflife_sd=0.3,
        activity_tail=1.2,
        spammer_fraction=0.0,
        difficulty_weight=0.0,
    )
    return simulate(truth, population, questions=question, retire_after=4, seed=2)


@pytest.fixture(scope="module")
def learning_fit(learning_sim):
    model = LearningCurve(inference="svi", steps=1500, seed=0)
    return model, model.fit(Votes.from_frame(learning_sim.votes))


def test_learning_curve_recovers_the_population_curve(learning_sim, learning_fit):
    model, fit = learning_fit
    grid = np.array([10, 25, 50, 100, 200])
    curve = LearningCurve.population_curve(model.inference_results[0].draws, grid)
    true = learning_sim.population.set_index("experience").loc[grid, "accuracy"].to_numpy()  # one question
    inside = (curve["lo"] - 0.01 <= true) & (true <= curve["hi"] + 0.01)
    assert inside.sum() >= 4, (curve, true)  # measured: all 5 inside
    assert np.abs(curve["accuracy"] - true).max() < 0.04
    v = fit.volunteers
    assert {"start", "start_lo", "start_hi", "plateau", "rate", "rate_hi"} <= set(v.columns)
    assert (v["plateau"] > v["start"]).mean() > 0.9  # everyone learns in this simulation


def test_learning_curve_beats_static_dawid_skene(learning_sim, learning_fit):
    votes = Votes.from_frame(learning_sim.votes)
    truth = learning_sim.truth
    ds = DawidSkene().fit(votes)
    _, lc = learning_fit

    def answer_accuracy(fit):
        a = fit.answers.merge(truth, on=["subject", "question"], suffixes=("", "_true"))
        return (a["answer"] == a["answer_true"]).mean()

    assert answer_accuracy(lc) >= answer_accuracy(ds)
    # measured: ECE 0.008 vs 0.042, accuracy 0.939 vs 0.920, volunteer MAE 0.037 vs 0.079
    assert expected_calibration_error(lc, truth) < expected_calibration_error(ds, truth) / 2
    final = learning_sim.volunteers[["volunteer", "question", "accuracy_last"]].rename(
        columns={"accuracy_last": "accuracy"}
    )  # what each volunteer's accuracy has become by their last vote
    lc_errors = volunteer_errors(lc, final)
    ds_errors = volunteer_errors(ds, final)
    assert lc_errors["error"].mean() < ds_errors["error"].mean()


def test_learning_curve_plots_population_and_volunteer_curves(tmp_path, learning_fit):
    from annostat.evaluation.plots import plot_fit
    from annostat.models.learning import LearningCurve

    model, fit = learning_fit
    draws = model.inference_results[0].draws
    grid = np.array([0.0, 200.0])
    curves = LearningCurve.volunteer_curves(draws, np.array([0, 1]), grid)
    assert curves["accuracy"].shape == (2, 2) and (curves["lo"] <= curves["hi"]).all()
    v = fit.volunteers.iloc[:2]
    assert np.allclose(curves["accuracy"][:, 0], v["start"], atol=0.02)  # experience 0: the start of the curve
    fit.save(tmp_path / "fit")
    written = {p.name for p in plot_fit(tmp_path / "fit")}
    assert "learning_smooth-or-featured.png" in written
