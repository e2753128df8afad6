"""The live loop in the harness (``annostat.evaluation.loop``): volunteers simulated on demand, strategies run round
by round with updates and retirement, and the classifications each needs to reach the fixed rule's accuracy."""

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from annostat.cli import app
from annostat.evaluation.loop import accuracy, run_loop
from annostat.truth.simulate import OnDemandVolunteers, VolunteerPopulation, simulate, truth_table
from annostat.truth.truthset import write_truth_set

QUESTIONS = ("smooth-or-featured", "disk-edge-on")
runner = CliRunner()


@pytest.fixture(scope="module")
def stream():
    truth = truth_table(200, questions=QUESTIONS, seed=4)
    rng = np.random.default_rng(4)  # faint and small galaxies: hard ones, which 12 classifications do not settle
    truth["flux"] = 10 ** rng.normal(1.0, 0.5, len(truth))
    truth["size_arcsec"] = rng.lognormal(np.log(3), 0.5, len(truth))
    return OnDemandVolunteers.simulate(
        truth, VolunteerPopulation(n_volunteers=150, difficulty_weight=2.5), most=12, seed=4, questions=QUESTIONS
    )


def test_on_demand_volunteers_hand_out_each_stream_in_order(stream):
    own = OnDemandVolunteers(stream.sim)
    some = own.subjects[:20]
    first = own.classify(some)
    assert set(first["subject"].unique().to_list()) == set(some.tolist())
    assert (own.taken(some) == 1).all()
    second = own.classify(some[:5], n=3)
    assert (own.taken(some[:5]) == 4).all() and (own.taken(some[5:]) == 1).all()
    # no classification twice, and each subject's in time order
    both = pd.concat([first.to_pandas(), second.to_pandas()])
    assert both["classification_id"].nunique() == both.groupby("subject")["classification_id"].nunique().sum()
    whole = own.classify(some[:1], n=100)  # asked past its stream: what is left
    assert own.left(some[:1])[0] == 0 and len(whole) > 0
    assert own.classify(some[:1]).height == 0


def test_strategies_spend_fewer_classifications_than_the_fixed_rule(stream):
    result = run_loop(stream, maximum=12, threshold=0.99, minimum=3, batch=40)
    summary = result.summary.set_index("strategy")
    assert set(summary.index) == {"fixed (mv)", "fixed (ds)", "uniform", "swap", "swap+select"}
    fixed = result.setup["fixed_classifications"]
    assert summary.loc["fixed (mv)", "share_mv12"] == 1.0
    assert summary.loc["uniform", "final_classifications"] == fixed  # uniform ends where the fixed rule is
    for name in ("swap", "swap+select"):
        assert summary.loc[name, "final_classifications"] < 0.6 * fixed
        assert summary.loc[name, "retired"] == len(stream.subjects)
    curves = result.curves
    for name in ("uniform", "swap", "swap+select"):
        spent = curves[curves["strategy"] == name]["classifications"].to_numpy()
        assert (np.diff(spent) > 0).all()  # every round classifies something
    # a share is the classifications spent when the target was first reached, over the fixed rule's
    row = summary.loc["uniform"]
    if row["to_mv12"] == row["to_mv12"]:
        assert row["share_mv12"] == pytest.approx(row["to_mv12"] / fixed)
        curve = curves[curves["strategy"] == "uniform"]
        assert curve[curve["classifications"] < row["to_mv12"]]["accuracy"].max() < result.targets["mv"]


def test_accuracy_counts_unanswered_questions_as_wrong(stream):
    from annostat import DawidSkene, Votes

    own = OnDemandVolunteers(stream.sim)
    votes = own.classify(own.subjects, 3).to_pandas()
    fit = DawidSkene().fit(Votes.from_frame(votes[votes["question"] == "smooth-or-featured"]))
    truth = stream.truth
    score = accuracy(fit, truth)
    root = truth[truth["question"] == "smooth-or-featured"]
    assert score < accuracy(fit, root) * len(root) / len(truth) + 1e-9


def test_benchmark_reports_the_loop(tmp_path):
    root = tmp_path / "truth"
    truth = truth_table(150, seed=5)
    truth_set = write_truth_set(
        root,
        {"source": "standin", "tree": "gz-decals-dr5", "bands": ["r"], "seed": 5},
        truth,
        {i: {"r": np.zeros((8, 8), np.float32)} for i in truth["image_id"]},
    )
    simulate(truth_set, VolunteerPopulation(n_volunteers=60), retire_after=5, seed=5, questions=QUESTIONS).write(
        truth_set.votes_dir
    )
    out = tmp_path / "report"
    result = runner.invoke(
        app,
        [
            "benchmark",
            str(root),
            "--pipelines",
            "ds",
            "--efficiency",
            "",
            "--out",
            str(out),
            "--loop",
            "uniform,swap+select",
            "--loop-max",
            "8",
            "--loop-batch",
            "40",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "The live loop" in result.output and "swap+select" in result.output
    report = (out / "report.md").read_text()
    assert "## The live loop" in report and "![loop](loop.png)" in report
    curves = pd.read_parquet(out / "loop.parquet")
    assert set(curves["strategy"]) == {"fixed (mv)", "fixed (ds)", "uniform", "swap+select"}
    bad = runner.invoke(app, ["benchmark", str(root), "--out", str(out), "--loop", "nope"])
    assert bad.exit_code == 2 and "no strategy 'nope'" in bad.output
    orphan = runner.invoke(app, ["benchmark", str(root), "--out", str(out), "--loop-max", "8"])
    assert orphan.exit_code == 2 and "options of --loop" in orphan.output


def test_the_joint_model_in_the_loop(stream):
    """Retirement and selection with the joint model: a network on features that tell the galaxies apart, fine-tuned
    each round."""
    from annostat.vision.inputs import Inputs

    truth = stream.truth
    rng = np.random.default_rng(0)
    root = truth[truth["question"] == "smooth-or-featured"].set_index("subject")["answer"]
    centres = {a: rng.normal(0, 2.0, 6) for a in root.unique()}
    x = np.stack([centres[root.get(s, "smooth")] + rng.normal(0, 0.8, 6) for s in stream.subjects]).astype(np.float32)
    inputs = Inputs("features", stream.subjects.tolist(), x)
    with pytest.raises(ValueError, match="needs the galaxies' images or features"):
        run_loop(stream, strategies=("swap+joint",), maximum=6)
    result = run_loop(
        stream,
        strategies=("swap+select+joint",),
        maximum=6,
        threshold=0.99,
        batch=60,
        inputs=inputs,
        joint_options={"rounds": 1, "epochs_per_round": 5, "folds": 2, "min_steps": 20},
        max_rounds=2,
    )
    curve = result.curves[result.curves["strategy"] == "swap+select+joint"]
    assert len(curve) >= 2 and (np.diff(curve["classifications"].to_numpy()) > 0).all()
    assert curve["accuracy"].iloc[-1] > 0.5
