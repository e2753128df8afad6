"""The rest of the Bayesian family (mn, mace, item, lre), NUTS diagnostics, the real dog and duck data and the
Bayesian fit from the command line (trace, plots, compare). Split from ``test_bayes.py`` so the two files' NumPyro
compilations run on different test workers."""

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from annostat import DawidSkene, Votes
from annostat.cli import app
from annostat.models import HierarchicalDawidSkene
from tests.conftest import accuracy, assert_advisable, gz_simulation, real_votes


def test_nuts_reports_convergence_diagnostics():
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 2, 60)
    subject = np.repeat(np.arange(60), 4)
    volunteer = rng.integers(0, 8, len(subject))
    answer = np.where(rng.random(len(subject)) < 0.8, truth[subject], 1 - truth[subject])
    votes = Votes.from_frame(
        pd.DataFrame({"subject": subject, "volunteer": volunteer, "answer": answer}), duplicates="all"
    )
    fit = HierarchicalDawidSkene(inference="nuts", warmup=150, draws=100, chains=2).fit(votes)
    info = fit.summary()["questions"][0]["inference"]
    assert info["method"] == "nuts" and info["r_hat_max"] < 1.2 and info["ess_bulk_min"] > 10
    trace = fit.inference_data()
    assert trace.posterior.sizes["chain"] == 2 and "diverging[answer]" in trace.sample_stats


@pytest.mark.parametrize("name", ["dog", "duck"])
def test_real_data_hierarchical_at_least_dawid_skene(name):
    votes, truth = real_votes(name)
    ds = accuracy(DawidSkene().fit(votes), truth)
    hds = accuracy(HierarchicalDawidSkene(inference="map", steps=1500).fit(votes), truth)
    assert hds >= ds


def test_cli_fits_a_bayesian_model_and_writes_the_trace(tmp_path, small_sim):
    import arviz as az
    import polars as pl

    path = tmp_path / "votes.csv"
    small_sim.votes.to_csv(path, index=False)
    out = tmp_path / "fit"
    result = CliRunner().invoke(
        app, ["fit", str(path), "--model", "hds", "--inference", "map", "--steps", "200", "--out", str(out), "--quiet"]
    )
    assert result.exit_code == 0, result.output
    volunteers = pl.read_parquet(out / "volunteers.parquet")
    assert {"accuracy_lo", "accuracy_hi"} <= set(volunteers.columns)
    trace = az.from_netcdf(out / "trace.nc")
    assert any(name.startswith("population_logit") for name in trace.posterior.data_vars)
    bad = CliRunner().invoke(app, ["fit", str(path), "--model", "hds", "--inference", "gibbs", "--out", str(out)])
    assert bad.exit_code != 0 and "gibbs" in bad.output and "Traceback" not in bad.output
    truth = tmp_path / "truth.csv"
    small_sim.truth.to_csv(truth, index=False)
    plotted = CliRunner().invoke(app, ["plot", str(out), "--truth", str(truth)])
    assert plotted.exit_code == 0, plotted.output
    names = {p.name for p in (out / "plots").iterdir()}
    assert {"confusion_smooth-or-featured.png", "skill_disk-edge-on.png", "reliability.png"} <= names
    compared = CliRunner().invoke(app, ["compare", str(path), "--models", "ds,mn", "--steps", "200"])
    assert compared.exit_code == 0, compared.output
    assert "heldout_log_likelihood" in compared.output and " mn " in compared.output
    unknown = CliRunner().invoke(app, ["compare", str(path), "--models", "ds,nope"])
    assert unknown.exit_code != 0 and "nope" in unknown.output


@pytest.fixture(scope="module")
def family_sim():
    """300 subjects, 50 volunteers, 15% spammers who answer at random."""
    return gz_simulation(300, 50, retire_after=8, seed=5, spammer_fraction=0.15, spammer_answer=None)


@pytest.mark.parametrize("name, inference", [("mn", "map"), ("mace", "map"), ("item", "svi"), ("lre", "svi")])
def test_rest_of_the_family_fits_and_beats_majority_vote(family_sim, name, inference, tmp_path):
    from annostat import MajorityVote
    from annostat.models import get_model

    votes = Votes.from_frame(family_sim.votes)

    def answer_accuracy(fit):
        a = fit.answers.merge(family_sim.truth, on=["subject", "question"], suffixes=("", "_true"))
        return (a["answer"] == a["answer_true"]).mean()

    fit = get_model(name, inference=inference, steps=600).fit(votes)
    assert_advisable(fit, tmp_path, bayesian=True)
    if name != "item":  # item difficulty alone (pooled volunteers) falls into an "everything is hard" mode here
        assert answer_accuracy(fit) >= answer_accuracy(MajorityVote().fit(votes)) - 0.005
    v = fit.volunteers
    assert v["accuracy"].between(0, 1).all() and (v["accuracy_lo"] <= v["accuracy_hi"]).all()
    if name == "mace":  # planted spammers are found: lower competence than the honest volunteers
        spam = family_sim.volunteers.drop_duplicates("volunteer").set_index("volunteer")["spammer"]
        competence = v.groupby("volunteer")["competence"].mean()
        assert competence[spam[spam].index].mean() < competence[spam[~spam].index].mean() - 0.2


def test_map_is_refused_where_it_is_degenerate():
    from annostat.models import ItemDifficulty

    with pytest.raises(ValueError, match="ill-posed"):
        ItemDifficulty(inference="map")
