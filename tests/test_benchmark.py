"""The benchmark harness: its scores on hand-made posteriors, the label-efficiency subsets, the pipeline registry, and
whole runs on small truth sets (annostat and crowd-kit pipelines on the same votes, read from the Panoptes export)."""

import json
import re

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from annostat.cli import app
from annostat.data.votes import Votes
from annostat.evaluation.harness import (
    answer_scores,
    first_classifications,
    learning_scores,
    run_benchmark,
    volunteer_scores,
)
from annostat.evaluation.pipelines import PIPELINES, PipelineOutput, get_pipeline, register_pipeline
from annostat.evaluation.report import markdown_table
from annostat.truth.simulate import VolunteerPopulation, simulate, truth_table
from annostat.truth.truthset import write_truth_set

QUESTIONS = ("smooth-or-featured", "disk-edge-on", "bar", "merging")  # a few questions keep the fits quick


def make_truth_set(root, n, seed):
    """A truth set of ``n`` galaxies with answers drawn down the tree and blank 8x8 images (fast, no rendering)."""
    truth = truth_table(n, seed=seed)
    return write_truth_set(
        root,
        {"source": "standin", "tree": "gz-decals-dr5", "bands": ["r"], "seed": seed},
        truth,
        {i: {"r": np.zeros((8, 8), np.float32)} for i in truth["image_id"]},
    )


def test_answer_scores_on_hand_made_posteriors():
    post = pd.DataFrame(
        {"subject": np.repeat([1, 2, 3, 4], 2), "question": "q", "answer": ["a", "b"] * 4, "p": [0.8, 0.2] * 4}
    )
    truth = pd.DataFrame({"subject": [1, 2, 3, 4], "question": "q", "answer": ["a", "a", "a", "b"]})
    scores, bins = answer_scores(post, truth)
    row = scores.iloc[0]
    assert row["subjects"] == 4 and row["accuracy"] == pytest.approx(0.75)
    assert row["balanced_accuracy"] == pytest.approx(0.5)  # recall 1 on a, 0 on b
    assert row["ece"] == pytest.approx(0.05)  # one bin: confidence 0.8, share correct 0.75
    assert row["brier"] == pytest.approx((3 * 0.08 + 1.28) / 4)
    assert row["nll"] == pytest.approx(-(3 * np.log(0.8) + np.log(0.2)) / 4)
    assert bins["n"].sum() == 4
    perfect = post.assign(p=np.where(post["answer"] == post["subject"].map({1: "a", 2: "a", 3: "a", 4: "b"}), 1.0, 0.0))
    best = answer_scores(perfect, truth)[0].iloc[0]
    assert best["accuracy"] == 1 and best["ece"] == pytest.approx(0) and best["brier"] == pytest.approx(0)


def test_volunteer_and_learning_scores():
    est = pd.DataFrame(
        {
            "volunteer": ["u", "v", "w", "x"],
            "question": "q",
            "n": [50, 50, 50, 2],
            "accuracy": [0.9, 0.7, 0.5, 0.1],
            "accuracy_lo": [0.85, 0.5, 0.45, 0.0],
            "accuracy_hi": [0.95, 0.75, 0.55, 0.2],
        }
    )
    true = pd.DataFrame(
        {
            "volunteer": ["u", "v", "w", "x"],
            "question": "q",
            "accuracy": [0.8, 0.7, 0.6, 0.9],
            "accuracy_last": [0.9, 0.7, 0.5, 0.9],
        }
    )
    scores, _joined = volunteer_scores(est, true, min_votes=10)
    row = scores.iloc[0]
    assert row["volunteers_scored"] == 3 and row["volunteer_mae"] == pytest.approx(0.2 / 3)
    assert row["volunteer_coverage90"] == pytest.approx(1 / 3) and row["volunteer_corr"] == pytest.approx(1.0)
    assert volunteer_scores(est, true, 10, accuracy_at="last")[0].iloc[0]["volunteer_mae"] == pytest.approx(0)
    curve = pd.DataFrame({"question": "q", "experience": [0.0, 10.0], "accuracy": [0.6, 0.8], "lo": 0.5, "hi": 0.9})
    true_curve = pd.DataFrame({"question": "q", "experience": [0, 20], "accuracy": [0.6, 0.9]})
    lc, _ = learning_scores(curve, true_curve, ["q"])
    assert lc.iloc[0]["learning_curve_mae"] == pytest.approx(0.025)  # true at 10: 0.75
    assert learning_scores(curve, true_curve, ["other"])[0].empty


def test_first_classifications_keeps_each_subjects_earliest_volunteers():
    sim = simulate(truth_table(200, seed=1), VolunteerPopulation(n_volunteers=40), retire_after=6, seed=1)
    votes = Votes.from_frame(sim.votes)
    two = first_classifications(votes, 2).to_frame().to_pandas()
    per_subject = two.groupby("subject")["volunteer"].nunique()
    assert per_subject.max() == 2 and len(per_subject) == 200
    c = sim.classifications.sort_values("created_at")
    earliest = c.groupby("subject").head(2)
    kept = two[["subject", "volunteer"]].drop_duplicates().astype(str)
    assert set(map(tuple, kept.to_numpy())) == set(
        map(tuple, earliest[["subject", "volunteer"]].astype(str).to_numpy())
    )
    assert first_classifications(votes, 2).n_answers == votes.n_answers  # answer sets kept
    assert first_classifications(votes, 6).n_votes == votes.n_votes


def test_markdown_table():
    text = markdown_table(pd.DataFrame({"name": ["a|b"], "x": [0.12345], "n": [1234], "gap": [np.nan]}))
    header, rule, row = text.splitlines()
    cells = lambda line: [c.strip() for c in line.strip("|").split(" | ")]
    assert cells(header) == ["name", "x", "n", "gap"] and cells(row) == ["a\\|b", "0.123", "1,234", ""]
    assert rule.startswith("|:-") and rule.count("|") == 5  # text left, numbers right


@pytest.fixture(scope="module")
def small_benchmark(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench") / "truth"
    truth_set = make_truth_set(root, 400, seed=2)
    sim = simulate(truth_set, VolunteerPopulation(n_volunteers=80), retire_after=8, seed=2, questions=QUESTIONS)
    sim.write(truth_set.votes_dir)

    @register_pipeline("test-first-answer", "always the first answer (a test pipeline)")
    def first_answer(votes):
        frame = votes.to_frame().select("subject", "question").unique().to_pandas()
        rows = [
            (s, q, a, float(i == 0))
            for s, q in zip(frame["subject"], frame["question"])
            for i, a in enumerate(votes.answers[votes.questions.to_list().index(q)].to_list())
        ]
        return PipelineOutput(pd.DataFrame(rows, columns=["subject", "question", "answer", "p"]))

    try:
        names = ["mv", "ds", "test-first-answer"] + (["ck-ds"] if PIPELINES["ck-ds"].available else [])
        result = run_benchmark(
            root, names, root.parent / "report", efficiency=(1, 4, 8, 20), efficiency_pipelines=["mv", "ds"]
        )
    finally:
        PIPELINES.pop("test-first-answer")
    return result, root.parent / "report"


def test_benchmark_scores_every_pipeline_on_every_question(small_benchmark):
    result, out = small_benchmark
    s = result.scores
    assert result.setup["votes_from"] == "panoptes export"
    assert set(s["pipeline"]) >= {"mv", "ds", "test-first-answer"}
    assert s.groupby("pipeline")["question"].nunique().min() == len(QUESTIONS)
    by = s.set_index(["pipeline", "question"])
    sof = "smooth-or-featured"
    assert by.loc[("ds", sof), "accuracy"] >= by.loc[("mv", sof), "accuracy"] - 0.01
    assert by.loc[("ds", sof), "accuracy"] > by.loc[("test-first-answer", sof), "accuracy"] + 0.2
    assert by.loc[("ds", sof), "brier"] < by.loc[("mv", sof), "brier"]
    assert by.loc[("ds", sof), "volunteer_corr"] > 0.7 and by.loc[("ds", sof), "volunteer_mae"] < 0.1
    assert np.isnan(by.loc[("test-first-answer", sof), "volunteer_mae"])  # no volunteer model, no score
    if "ck-ds" in set(s["pipeline"]):  # the peer on the same votes: a comparable answer accuracy
        assert by.loc[("ck-ds", sof), "accuracy"] > 0.8
    for name in (
        "report.md",
        "scores.parquet",
        "volunteers.parquet",
        "efficiency.parquet",
        "calibration.parquet",
        "efficiency.png",
        "calibration.png",
        "volunteers.png",
        "setup.json",
    ):
        assert (out / name).exists(), name
    report = (out / "report.md").read_text()
    assert re.search(r"\| ds +\| smooth-or-featured +\|", report) and "test-first-answer" in report


def test_label_efficiency_curve_rises_with_votes(small_benchmark):
    result, _ = small_benchmark
    e = result.efficiency
    assert set(e["votes_per_subject"]) == {1, 4, 8}  # 20 is beyond the retirement limit (8)
    assert set(e["pipeline"]) == {"mv", "ds"}
    sof = e[(e["question"] == "smooth-or-featured")].set_index(["pipeline", "votes_per_subject"])["accuracy"]
    for name in ("mv", "ds"):
        assert sof[(name, 1)] < sof[(name, 4)] < sof[(name, 8)] + 0.01
    assert sof[("ds", 8)] == pytest.approx(
        result.scores.set_index(["pipeline", "question"]).loc[("ds", "smooth-or-featured"), "accuracy"], abs=1e-9
    )  # all 8 classifications = the full fit


def test_learning_pipeline_is_scored_on_its_curve(tmp_path):
    root = tmp_path / "truth"
    truth_set = make_truth_set(root, 300, seed=5)
    population = VolunteerPopulation(n_volunteers=40, learning_gap=1.5, spammer_fraction=0.0, difficulty_weight=0.0)
    sim = simulate(truth_set, population, questions=["smooth-or-featured"], retire_after=5, seed=5)
    sim.write(truth_set.votes_dir)
    result = run_benchmark(root, ["learning"], tmp_path / "report", efficiency=())
    row = result.scores.iloc[0]
    assert row["question"] == "smooth-or-featured" and row["accuracy"] > 0.8
    assert row["learning_curve_mae"] < 0.08
    assert (tmp_path / "report" / "learning.png").exists()


def test_cli_benchmark_errors_are_one_line(tmp_path):
    root = tmp_path / "truth"
    make_truth_set(root, 20, seed=0)
    unknown = CliRunner().invoke(app, ["benchmark", str(root), "--pipelines", "mv,nope", "--out", str(tmp_path / "r")])
    assert unknown.exit_code == 2 and "no pipeline 'nope'" in unknown.output
    no_votes = CliRunner().invoke(app, ["benchmark", str(root), "--out", str(tmp_path / "r")])
    assert no_votes.exit_code == 2 and "no simulated votes" in no_votes.output and "Traceback" not in no_votes.output
    with pytest.raises(KeyError, match="no pipeline"):
        get_pipeline("nope")


def test_image_pipelines_run_in_the_harness_and_from_the_export(tmp_path):
    """The joint model and the image baselines get the truth set's images (tiny, blank: the machinery, not the
    accuracy); the CLI fits the raw Panoptes export with the truth set's images."""
    truth_set = make_truth_set(tmp_path / "truth", 60, seed=4)
    sim = simulate(truth_set, VolunteerPopulation(n_volunteers=20), retire_after=3, seed=4, questions=QUESTIONS[:2])
    sim.write(truth_set.votes_dir)
    root = truth_set.root
    small = {"epochs": 2, "rounds": 1, "first_epochs": 2, "width": 4, "depth": 1, "folds": 2}
    result = run_benchmark(
        root, ["ds", "joint-ds", "crowdlayer"], tmp_path / "report", efficiency=(), image_size=8, image_options=small
    )
    s = result.scores.set_index(["pipeline", "question"])
    assert {"joint-ds", "crowdlayer"} <= set(result.scores["pipeline"])
    assert s.loc[("joint-ds", "smooth-or-featured"), "subjects"] == 60
    export = root / "votes"
    out = tmp_path / "fit"
    run = CliRunner().invoke(
        app,
        [
            "fit",
            str(export / "classifications.csv"),
            "--workflows",
            str(export / "workflows.json"),
            "--images",
            str(root),
            "--image-size",
            "8",
            "--width",
            "4",
            "--depth",
            "1",
            "--rounds",
            "1",
            "--epochs",
            "2",
            "--out",
            str(out),
        ],
    )
    assert run.exit_code == 0, run.output
    answers = pd.read_parquet(out / "subjects.parquet")
    assert answers["subject"].nunique() == 60 and (out / "network" / "config.json").exists()


def test_pipeline_options_reach_the_model(tmp_path):
    """A pipeline's model options (hds by MAP) reach its fit and its label-efficiency refits, and the report says so;
    options for a pipeline not run, or for a peer's pipeline that takes none, are errors."""
    truth_set = make_truth_set(tmp_path / "truth", 150, seed=6)
    sim = simulate(truth_set, VolunteerPopulation(n_volunteers=25), questions=QUESTIONS[:1], retire_after=4, seed=6)
    sim.write(truth_set.votes_dir)
    result = run_benchmark(
        truth_set.root,
        ["hds"],
        tmp_path / "report",
        efficiency=(2,),
        efficiency_pipelines=["hds"],
        pipeline_options={"hds": {"inference": "map"}},
        save_fits=True,
    )
    info = json.loads((tmp_path / "report" / "fits" / "hds" / "fit.json").read_text())
    assert info["settings"]["inference"] == "map" and info["questions"][0]["inference"]["method"] == "map"
    assert result.setup["pipeline_options"] == {"hds": {"inference": "map"}}
    assert "Model options: hds: inference=map." in (tmp_path / "report" / "report.md").read_text()
    assert set(result.efficiency["pipeline"]) == {"hds"} and result.scores["accuracy"].iloc[0] > 0.8
    with pytest.raises(ValueError, match="pipeline_options: ds is not among the pipelines run"):
        run_benchmark(truth_set.root, ["mv"], efficiency=(), pipeline_options={"ds": {}})
    votes = Votes.from_frame(sim.votes)
    with pytest.raises(ValueError, match="inference 'gibbs' is not one of"):
        get_pipeline("hds")(votes, inference="gibbs")
    if PIPELINES["ck-ds"].available:
        with pytest.raises(ValueError, match="pipeline ck-ds takes no options"):
            get_pipeline("ck-ds")(votes, n_iter=5)
