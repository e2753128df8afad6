"""The joint model: a network on each subject's input fitted with the volunteer model (features and images)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import polars as pl
import pytest
from typer.testing import CliRunner

from annostat import DawidSkene, Votes
from annostat.cli import app
from annostat.models.joint import JointModel
from annostat.vision.inputs import Inputs
from tests.conftest import gz_simulation

runner = CliRunner()
N_VOTED, N_UNVOTED = 400, 100


def informative_features(labels, answers, rng, noise=1.0, dim=8):
    """A feature vector per subject that tells its true answer apart about as well as a decent classifier."""
    centres = rng.normal(0, 1.5, (len(answers), dim))
    return np.stack([centres[answers.index(a)] + rng.normal(0, noise, dim) for a in labels]).astype(np.float32)


@pytest.fixture(scope="module")
def sim():
    """400 galaxies with 3 classifications each and 100 more nobody classified; features of all 500."""
    everything = gz_simulation(
        N_VOTED + N_UNVOTED, 80, retire_after=3, seed=3, accuracy={"smooth-or-featured": 0.7, "disk-edge-on": 0.75}
    )
    truth = everything.truth[everything.truth["question"] == "smooth-or-featured"].set_index("subject")["answer"]
    ids = truth.index.to_numpy()
    unvoted = set(ids[N_VOTED:])
    votes = everything.votes[~everything.votes["subject"].isin(unvoted)]
    rng = np.random.default_rng(0)
    answers = sorted(set(truth))
    x = informative_features(truth.to_numpy(), answers, rng)
    return {
        "votes": Votes.from_frame(votes),
        "frame": votes,
        "truth": everything.truth,
        "ids": ids,
        "x": x,
        "unvoted": unvoted,
    }


@pytest.fixture(scope="module")
def joint_fit(sim):
    inputs = Inputs("features", sim["ids"].tolist(), sim["x"])
    return JointModel(rounds=3, epochs_per_round=30).fit(sim["votes"], inputs)


def accuracy(posteriors: pd.DataFrame, truth: pd.DataFrame, subjects=None) -> float:
    answers = posteriors.sort_values("p").groupby(["subject", "question"]).tail(1)
    merged = answers.merge(truth, on=["subject", "question"], suffixes=("", "_true"))
    if subjects is not None:
        merged = merged[merged["subject"].isin(subjects)]
    return float((merged["answer"] == merged["answer_true"]).mean())


def test_joint_beats_votes_alone_and_answers_unvoted(sim, joint_fit):
    truth = sim["truth"][sim["truth"]["question"] == "smooth-or-featured"]
    votes_only = accuracy(DawidSkene().fit(sim["votes"]).posteriors, truth)
    post = joint_fit.posteriors
    voted = accuracy(post, truth, set(sim["ids"][:N_VOTED]))
    unvoted = accuracy(post, truth, sim["unvoted"])
    assert voted >= votes_only + 0.03, (voted, votes_only)
    assert unvoted >= 0.8  # answered from the features alone
    answers = joint_fit.answers
    assert set(answers.loc[answers["n_votes"] == 0, "subject"]) >= sim["unvoted"]
    info = joint_fit.summary()["joint"]
    assert info["subjects_without_votes"] == N_UNVOTED and info["networks"] == 5
    assert joint_fit.training["heldout_log_likelihood"].drop_nulls().len() >= 1


def test_joint_is_reproducible_for_a_seed(sim, joint_fit):
    again = JointModel(rounds=3, epochs_per_round=30).fit(
        sim["votes"], Inputs("features", sim["ids"].tolist(), sim["x"])
    )
    np.testing.assert_allclose(again.posteriors["p"].to_numpy(), joint_fit.posteriors["p"].to_numpy(), atol=1e-5)


@pytest.mark.parametrize("options", [{"method": "marginal", "epochs": 20}, {"model": "hds", "rounds": 2}])
def test_other_methods_and_volunteer_models(sim, options):
    truth = sim["truth"][sim["truth"]["question"] == "smooth-or-featured"]
    fit = JointModel(epochs_per_round=20, **options).fit(
        sim["votes"], Inputs("features", sim["ids"].tolist(), sim["x"])
    )
    assert accuracy(fit.posteriors, truth) >= accuracy(DawidSkene().fit(sim["votes"]).posteriors, truth) - 0.01
    assert fit.model == f"joint-{options.get('model', 'ds')}"


@pytest.fixture(scope="module")
def feature_files(tmp_path_factory, sim):
    root = tmp_path_factory.mktemp("joint-cli")
    sim["frame"].to_csv(root / "votes.csv", index=False)
    frame = pd.DataFrame(sim["x"], columns=[f"f{i}" for i in range(sim["x"].shape[1])])
    frame.insert(0, "subject", sim["ids"])
    frame.to_parquet(root / "features.parquet")
    frame.iloc[N_VOTED:].to_csv(root / "new.csv", index=False)
    return root


def test_cli_fit_with_features_then_predict(feature_files):
    out = feature_files / "fit"
    result = runner.invoke(
        app,
        [
            "fit",
            str(feature_files / "votes.csv"),
            "--features",
            str(feature_files / "features.parquet"),
            "--rounds",
            "2",
            "--epochs",
            "20",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "answered without votes" in result.output
    for name in (
        "subjects.parquet",
        "posteriors.parquet",
        "training.parquet",
        "network/config.json",
        "figures/training.png",
    ):
        assert (out / name).exists(), name
    info = json.loads((out / "fit.json").read_text())
    assert info["model"] == "joint-ds" and info["joint"]["subjects_without_votes"] == N_UNVOTED
    pred = feature_files / "pred"
    result = runner.invoke(app, ["predict", str(out), "--features", str(feature_files / "new.csv"), "--out", str(pred)])
    assert result.exit_code == 0, result.output
    new = pd.read_parquet(pred / "posteriors.parquet")
    fitted = pd.read_parquet(out / "posteriors.parquet")
    both = new.merge(fitted, on=["subject", "question", "answer"], suffixes=("_new", "_fit"))
    assert len(both) == len(new) > 0  # the unvoted subjects: the network's answer either way
    np.testing.assert_allclose(both["p_new"], both["p_fit"], atol=1e-4)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--model", "mv"], "takes --model ds or hds"),
        (["--epochs", "3", "--no-features"], "options of the joint model"),
        (["--batch-size", "0"], "Invalid value for '--batch-size'"),
    ],
)
def test_cli_refuses_joint_misuse(feature_files, args, message):
    base = ["fit", str(feature_files / "votes.csv"), "--out", str(feature_files / "bad")]
    if "--no-features" in args:
        args = [a for a in args if a != "--no-features"]
    else:
        base += ["--features", str(feature_files / "features.parquet")]
    result = runner.invoke(app, base + args)
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output, result.output


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory, sim):
    """Tiny NPY images: a bright blob whose place says the true answer."""
    root = tmp_path_factory.mktemp("joint-images")
    truth = sim["truth"][sim["truth"]["question"] == "smooth-or-featured"].set_index("subject")["answer"]
    answers = sorted(set(truth))
    rng = np.random.default_rng(1)
    for subject, answer in truth.items():
        image = rng.normal(0, 0.1, (16, 16, 1)).astype(np.float32)
        k = answers.index(answer)
        image[2 + 4 * k : 6 + 4 * k, 5:11] += 1.0
        np.save(root / f"{subject}.npy", image)
    sim["frame"].to_csv(root.parent / "image-votes.csv", index=False)
    return root


def test_cli_fit_with_images_then_predict(image_folder, tmp_path):
    votes = image_folder.parent / "image-votes.csv"
    out = tmp_path / "fit"
    result = runner.invoke(
        app,
        [
            "fit",
            str(votes),
            "--images",
            str(image_folder),
            "--image-size",
            "16",
            "--width",
            "4",
            "--depth",
            "2",
            "--rounds",
            "1",
            "--epochs",
            "2",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    info = json.loads((out / "fit.json").read_text())
    assert info["joint"]["inputs"]["kind"] == "images" and info["joint"]["subjects_without_votes"] == N_UNVOTED
    config = json.loads((out / "network" / "config.json").read_text())
    assert config["kind"] == "cnn" and config["image_size"] == 16
    result = runner.invoke(app, ["predict", str(out), "--images", str(image_folder), "--out", str(tmp_path / "p")])
    assert result.exit_code == 0, result.output
    assert pd.read_parquet(tmp_path / "p" / "subjects.parquet")["subject"].nunique() == N_VOTED + N_UNVOTED


def test_cli_missing_image_is_one_line(image_folder, tmp_path):
    votes = pd.read_csv(image_folder.parent / "image-votes.csv")
    votes.loc[0, "subject"] = 1  # a subject with no image
    path = tmp_path / "votes.csv"
    votes.to_csv(path, index=False)
    result = runner.invoke(app, ["fit", str(path), "--images", str(image_folder), "--out", str(tmp_path / "f")])
    assert result.exit_code == 2 and "image of subject 1 not found" in result.output, result.output


def test_interrupted_fit_resumes_where_it_stopped(sim, tmp_path):
    """A fit killed after its second round goes on from there and ends as the uninterrupted fit does."""
    inputs = Inputs("features", sim["ids"].tolist(), sim["x"])
    whole = JointModel(rounds=3, epochs_per_round=10, folds=2).fit(sim["votes"], inputs)

    def stop_after_round_two(epoch, total, record):
        if record["stage"] == "EM rounds" and epoch == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        JointModel(rounds=3, epochs_per_round=10, folds=2).fit(
            sim["votes"], inputs, progress=stop_after_round_two, checkpoint=tmp_path / "progress"
        )
    assert (tmp_path / "progress" / "round" / "annostat_round.json").exists()  # round 1 was saved
    resumed = JointModel(rounds=3, epochs_per_round=10, folds=2).fit(
        sim["votes"], inputs, checkpoint=tmp_path / "progress"
    )
    rounds = resumed.training.filter(resumed.training["stage"] == "EM rounds")
    assert rounds["epoch"].to_list() == [1, 2, 3]
    np.testing.assert_allclose(resumed.posteriors["p"].to_numpy(), whole.posteriors["p"].to_numpy(), atol=1e-4)


def test_cli_fits_a_real_panoptes_export_with_its_images(tmp_path):
    """The Galaxy Zoo DECaLS export in shared/data (9 galaxies, 21 questions), with a PNG per subject id."""
    from PIL import Image

    from tests.conftest import SHARED

    export = SHARED / "data" / "zooniverse" / "gz-decals"
    if not export.exists():
        pytest.skip(f"shared data not found at {export}")
    from annostat.data.io.load import load_votes

    votes, _ = load_votes(export / "classifications.csv", workflows=export / "workflow_versions.json")
    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    for subject in votes.subjects.to_list() + [99999999]:  # and one galaxy nobody classified
        Image.fromarray((rng.random((24, 24, 3)) * 255).astype(np.uint8)).save(images / f"{subject}.png")
    out = tmp_path / "fit"
    result = runner.invoke(
        app,
        [
            "fit",
            str(export / "classifications.csv"),
            "--workflows",
            str(export / "workflow_versions.json"),
            "--images",
            str(images),
            "--image-size",
            "8",
            "--width",
            "4",
            "--depth",
            "1",
            "--rounds",
            "1",
            "--epochs",
            "1",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    answers = pd.read_parquet(out / "subjects.parquet")
    assert set(answers["subject"]) == set(votes.subjects.to_list()) | {99999999}
    assert (answers.loc[answers["subject"] == 99999999, "n_votes"] == 0).all()


def test_selection_scores_unvoted_galaxies_by_bald(sim, joint_fit, tmp_path):
    """The subjects nobody voted on are ranked by the disagreement of the cross-fitted networks (BALD), from the fit
    in memory and from its folder alike."""
    from annostat.fit import Fit
    from annostat.live.select import bald, select

    same = np.tile(np.array([[[0.7, 0.3]]]), (4, 3, 1))
    assert np.allclose(bald(same, np.eye(2)), 0.0)  # networks that agree: nothing to learn about them
    split = np.array([[[0.9, 0.1]], [[0.1, 0.9]]])
    assert bald(split, np.eye(2))[0] > bald(split, np.full((2, 2), 0.5))[0] + 0.3  # a vote tells only if informative
    members = joint_fit.members
    assert members["member"].n_unique() == 5 and set(members["subject"]) == set(sim["unvoted"])
    chosen = select(joint_fit, 500, tree="none", include_retired=True)
    kinds = dict(zip(chosen["subject"].to_list(), chosen["criterion"].to_list()))
    assert {s for s, k in kinds.items() if k == "bald"} == set(sim["unvoted"])
    assert (chosen["score"] >= 0).all()
    joint_fit.save(tmp_path / "fit")
    assert (tmp_path / "fit" / "network" / "members.parquet").is_file()
    again = select(Fit.load(tmp_path / "fit"), 500, tree="none", include_retired=True)
    merged = chosen.join(again.with_columns(pl.col("subject").cast(chosen["subject"].dtype)), on="subject")
    assert len(merged) == len(chosen) and np.allclose(merged["score"], merged["score_right"], atol=1e-5)


def test_gold_answers_fix_the_joint_models_answers(sim):
    from annostat.data.gold import Gold

    truth = sim["truth"][sim["truth"]["question"] == "smooth-or-featured"]
    gold = truth[truth["subject"].isin(sim["ids"][:60])]
    votes = Votes.from_frame(sim["frame"])
    assert votes.attach_gold(Gold.from_frame(gold))["used"] == 60
    fit = JointModel(rounds=2, epochs_per_round=20).fit(votes, Inputs("features", sim["ids"].tolist(), sim["x"]))
    answers = fit.answers.merge(gold, on=["subject", "question"], suffixes=("", "_gold"))
    assert len(answers) == 60 and (answers["answer"] == answers["answer_gold"]).all() and (answers["p"] > 0.999).all()
    others = accuracy(fit.posteriors, truth, set(sim["ids"][60:]))
    assert others >= accuracy(DawidSkene().fit(sim["votes"]).posteriors, truth, set(sim["ids"][60:])) - 0.01


def test_update_fine_tunes_the_network(sim, tmp_path):
    """A joint fit updated with new votes: its networks fine-tuned for two rounds, from memory or from its folder
    (with the inputs given again)."""
    from annostat.errors import InputError
    from annostat.fit import Fit

    frame = sim["frame"].sort_values("created_at", kind="stable")
    cut = int(len(frame) * 0.9)
    old, new = frame.iloc[:cut], frame.iloc[cut:]
    inputs = Inputs("features", sim["ids"].tolist(), sim["x"])
    last = JointModel(rounds=2, epochs_per_round=10).fit(Votes.from_frame(old), inputs)
    updated = last.update(Votes.from_frame(new))
    info = updated.summary()["update"]
    assert info["method"] == "fine-tuned network" and info["rounds"] == 2 and info["networks"] == 5
    assert updated.votes.n_votes == len(frame) and updated.summary()["joint"]["subjects_without_votes"] == N_UNVOTED
    truth = sim["truth"][sim["truth"]["question"] == "smooth-or-featured"]
    assert accuracy(updated.posteriors, truth) >= accuracy(last.posteriors, truth) - 0.02
    last.save(tmp_path / "last")
    with pytest.raises(InputError, match="give --images or --features"):
        Fit.load(tmp_path / "last").update(Votes.from_frame(new))
    again = Fit.load(tmp_path / "last").update(Votes.from_frame(new), inputs=inputs)
    assert again.summary()["update"]["method"] == "fine-tuned network"
    assert accuracy(again.posteriors, truth) >= accuracy(last.posteriors, truth) - 0.02
