"""Updates as classifications arrive (``annostat.live.update``, ``annostat update``): incremental EM from the last
fit, against a fit of all the votes from nothing."""

import json

import numpy as np
import pandas as pd
import polars as pl
import pytest
from typer.testing import CliRunner

from annostat import DawidSkene, InputError, MajorityVote, Votes
from annostat.cli import app
from annostat.fit import Fit
from annostat.live.update import combine, update
from tests.conftest import SHARED, gz_simulation

runner = CliRunner()


@pytest.fixture(scope="module")
def split():
    """Simulated votes on two DECaLS questions in time order: the first 92% (the last fit) and the last 8% (new), and
    every vote of 40 galaxies and of 3 volunteers new too."""
    sim = gz_simulation(700, 90, retire_after=9, seed=11)
    votes = sim.votes.sort_values("created_at", kind="stable").astype({"volunteer": str, "answer": str})
    rng = np.random.default_rng(0)
    late = votes["subject"].isin(rng.choice(votes["subject"].unique(), 40, replace=False)) | votes["volunteer"].isin(
        rng.choice(votes["volunteer"].unique(), 3, replace=False)
    )
    late |= np.arange(len(votes)) >= int(len(votes) * 0.92)
    return sim, votes[~late].reset_index(drop=True), votes[late].reset_index(drop=True)


@pytest.fixture(scope="module")
def fits(split):
    _, old, new = split
    last = DawidSkene().fit(Votes.from_frame(old))
    updated = last.update(Votes.from_frame(new))
    refit = DawidSkene().fit(Votes.from_frame(pd.concat([old, new])))
    return last, updated, refit


def joined(a: Fit, b: Fit, table: str, on: list[str]) -> pl.DataFrame:
    return a.table(table).join(b.table(table), on=on, how="full", coalesce=True, suffix="_b")


def test_update_matches_a_refit(split, fits):
    _, old, new = split
    last, updated, refit = fits
    assert updated.votes.n_votes == refit.votes.n_votes == len(old) + len(new)
    answers = joined(updated, refit, "answers", ["subject", "question"])
    assert answers["answer"].null_count() == 0 and answers["answer_b"].null_count() == 0  # the same subjects
    assert (answers["answer"] == answers["answer_b"]).mean() >= 0.99
    assert (answers["p"] - answers["p_b"]).abs().max() < 0.1
    accuracy = joined(updated, refit, "volunteers", ["volunteer", "question"])
    assert accuracy["n"].to_list() == accuracy["n_b"].to_list()
    gap = (accuracy["accuracy"] - accuracy["accuracy_b"]).abs()
    # EM has more than one optimum of (almost) the same height: a subject whose answer flips between them moves the
    # accuracy of a volunteer with 43 votes by 1/43; the bulk agrees to 0.01
    assert (gap <= 0.01).mean() >= 0.98 and gap.max() < 0.05 and gap.median() < 1e-3
    # the posteriors are every subject's under the updated confusions: a full E-step gives them back
    for qf in updated.questions:
        assert np.allclose(qf.posteriors.sum(axis=1), 1.0, atol=1e-5)
    info = updated.summary()["update"]
    assert info["method"] == "incremental EM" and info["previous_votes"] == len(old)
    assert info["new_votes_kept"] == len(new) and info["new_subjects"] == 40 and info["new_volunteers"] >= 3
    assert info["new_subjects"] == updated.votes.n_subjects - last.votes.n_subjects
    assert info["new_volunteers"] == updated.votes.n_volunteers - last.votes.n_volunteers
    assert set(info["sweeps"]) == {"smooth-or-featured", "disk-edge-on"}


def test_an_update_of_small_questions_compiles_one_sweep_program_a_question(split):
    """A small question's sweeps are padded to its own size: every round's sweep one program, not one per size (a
    live loop's update of a tree of small questions spent seconds compiling them)."""
    import importlib

    module = importlib.import_module("annostat.live.update")
    _, old, new = split
    last = DawidSkene().fit(Votes.from_frame(old))
    module._sweeps.clear_cache()
    updated = update(last, Votes.from_frame(new))
    rounds = updated.summary()["update"]["sweeps"]
    assert sum(rounds.values()) > len(rounds)  # more than one sweep a question: several rounds, one program each
    assert module._sweeps._cache_size() <= len(rounds)


def test_update_is_closer_to_the_converged_fit_than_the_last_fit(split, fits):
    """The update moves the last fit's volunteers to where the converged fit of all the votes has them."""
    _, old, new = split
    last, updated, _ = fits
    converged = DawidSkene(tol=0, max_iter=300).fit(Votes.from_frame(pd.concat([old, new])))
    after = joined(updated, converged, "volunteers", ["volunteer", "question"]).drop_nulls()
    before = joined(last, converged, "volunteers", ["volunteer", "question"]).drop_nulls()
    assert (after["accuracy"] - after["accuracy_b"]).abs().mean() < (
        before["accuracy"] - before["accuracy_b"]
    ).abs().mean()


def test_combined_votes_keep_codes_rows_and_account_for_repeats(split):
    _, old, new = split
    last = DawidSkene(max_iter=3).fit(Votes.from_frame(old))
    repeat = pd.concat([new, old.iloc[:25]])  # 25 votes the last fit has already: repeats, dropped (policy first)
    combined, row_offset = combine(last, Votes.from_frame(repeat))
    assert row_offset == len(old)
    assert combined.n_votes == len(old) + len(new)
    assert (
        combined.report.rows_read == len(old) + len(repeat) == combined.report.rows_kept + combined.report.rows_dropped
    )
    assert combined.report.dropped == {"duplicate vote (policy first)": 25}
    # the last fit's labels keep their codes; new ones come after
    assert combined.subjects[: last.votes.n_subjects].to_list() == last.votes.subjects.to_list()
    assert combined.volunteers[: last.votes.n_volunteers].to_list() == last.votes.volunteers.to_list()
    rows = combined.codes("row")
    assert np.array_equal(np.sort(rows[rows < row_offset]), np.arange(len(old)))
    assert np.array_equal(np.sort(rows[rows >= row_offset]) - row_offset, np.arange(len(new)))


def test_new_questions_and_answers_are_welcome():
    sim = gz_simulation(300, 40, retire_after=6, seed=4)
    votes = sim.votes.astype({"answer": str, "question": str})
    first = votes[votes["question"] == "smooth-or-featured"].iloc[:1200]
    later = pd.concat(
        [votes[votes["question"] == "smooth-or-featured"].iloc[1200:], votes[votes["question"] == "disk-edge-on"]]
    )
    later.loc[later.index[:3], "answer"] = "merger"  # an answer the last fit never saw
    updated = DawidSkene().fit(Votes.from_frame(first)).update(Votes.from_frame(later))
    assert updated.votes.questions.to_list() == ["smooth-or-featured", "disk-edge-on"]
    answers = {q: updated.votes.answers[i].to_list() for i, q in enumerate(updated.votes.questions)}
    assert "merger" in answers["smooth-or-featured"] and answers["smooth-or-featured"][:3] == [
        "artifact",
        "featured-or-disk",
        "smooth",
    ]
    assert updated.votes.n_votes == len(first) + len(later)
    assert set(updated.table("answers")["question"]) == {"smooth-or-featured", "disk-edge-on"}


def test_other_models_are_fitted_again():
    sim = gz_simulation(200, 30, retire_after=5, seed=6)
    votes = sim.votes
    last = MajorityVote().fit(Votes.from_frame(votes.iloc[:800]))
    updated = update(last, votes.iloc[800:])
    assert updated.summary()["update"]["method"] == "refit" and updated.model == "mv"
    assert updated.votes.n_votes == len(votes)


def test_cli_update_from_a_fit_folder(tmp_path, split, fits):
    _, old, new = split
    _, in_memory, _ = fits
    old.to_csv(tmp_path / "old.csv", index=False)
    new.to_csv(tmp_path / "new.csv", index=False)
    assert runner.invoke(app, ["fit", str(tmp_path / "old.csv"), "--out", str(tmp_path / "last"), "-q"]).exit_code == 0
    result = runner.invoke(
        app, ["update", str(tmp_path / "last"), str(tmp_path / "new.csv"), "--out", str(tmp_path / "now")]
    )
    assert result.exit_code == 0, result.output
    assert "updated by incremental EM" in result.output
    info = json.loads((tmp_path / "now" / "fit.json").read_text())
    assert info["votes"] == len(old) + len(new) and info["update"]["previous"] == str(tmp_path / "last")
    assert info["rows"]["read"] == info["rows"]["kept"] + info["rows"]["dropped"]
    saved = Fit.load(tmp_path / "now")
    both = saved.table("answers").join(in_memory.table("answers"), on=["subject", "question"])
    assert len(both) == saved.table("answers").height and (both["answer"] == both["answer_right"]).mean() >= 0.995
    # the updated folder is a fit folder: retire and update read it
    assert runner.invoke(app, ["retire", str(tmp_path / "now"), "--out", str(tmp_path / "r.csv")]).exit_code == 0
    again = runner.invoke(
        app, ["update", str(tmp_path / "now"), str(tmp_path / "new.csv"), "--out", str(tmp_path / "again"), "-q"]
    )
    assert again.exit_code == 0, again.output  # every vote a repeat: dropped and counted, nothing new
    info = json.loads((tmp_path / "again" / "fit.json").read_text())
    assert info["votes"] == len(old) + len(new) and info["update"]["new_votes_kept"] == 0
    assert info["rows"]["dropped_by_reason"] == {"duplicate vote (policy first)": len(new)}


def test_cli_update_errors(tmp_path, split):
    _, old, _new = split
    old.to_csv(tmp_path / "old.csv", index=False)
    assert runner.invoke(app, ["fit", str(tmp_path / "old.csv"), "--out", str(tmp_path / "last"), "-q"]).exit_code == 0
    same = runner.invoke(
        app, ["update", str(tmp_path / "last"), str(tmp_path / "old.csv"), "--out", str(tmp_path / "last")]
    )
    assert same.exit_code == 2 and "the last fit's own folder" in same.output
    missing = runner.invoke(
        app, ["update", str(tmp_path / "nothing"), str(tmp_path / "old.csv"), "--out", str(tmp_path / "x")]
    )
    assert missing.exit_code == 2 and "not a folder" in missing.output
    bad = tmp_path / "bad.csv"
    pl.DataFrame(
        {"subject": ["not-a-number"], "volunteer": ["v"], "question": ["smooth-or-featured"], "answer": ["smooth"]}
    ).write_csv(bad)
    wrong = runner.invoke(app, ["update", str(tmp_path / "last"), str(bad), "--out", str(tmp_path / "y")])
    assert wrong.exit_code == 2 and "bad.csv" in wrong.output and "subject" in wrong.output
    assert "Traceback" not in wrong.output


def test_fits_with_a_network_or_a_prior_are_refused(split):
    _, old, _ = split
    fit = DawidSkene(max_iter=2).fit(Votes.from_frame(old))
    fit.prior_summary = {"format": "annostat"}
    with pytest.raises(InputError, match="--prior"):
        fit.update(Votes.from_frame(old.iloc[:10]))


@pytest.mark.skipif(not (SHARED / "data" / "zooniverse" / "gz-decals").exists(), reason="shared data not found")
def test_update_from_a_later_panoptes_export(tmp_path):
    """A real DECaLS export split by rows: the first rows fitted, the rest as the later export."""
    folder = SHARED / "data" / "zooniverse" / "gz-decals"
    rows = pl.read_csv(folder / "classifications.csv", infer_schema=False)
    rows.head(5).write_csv(tmp_path / "first.csv")
    rows.slice(5).write_csv(tmp_path / "later.csv")
    workflows = ["--workflows", str(folder / "workflow_versions.json"), "--workflow-id", "6122"]
    for name, path in (("last", "first.csv"), ("whole", None)):
        source = tmp_path / path if path else folder / "classifications.csv"
        assert runner.invoke(app, ["fit", str(source), *workflows, "--out", str(tmp_path / name), "-q"]).exit_code == 0
    result = runner.invoke(
        app,
        [
            "update",
            str(tmp_path / "last"),
            str(tmp_path / "later.csv"),
            "--workflows",
            str(folder / "workflow_versions.json"),
            "--out",
            str(tmp_path / "now"),
        ],
    )
    assert result.exit_code == 0, result.output
    now, whole = (json.loads((tmp_path / n / "fit.json").read_text()) for n in ("now", "whole"))
    assert now["votes"] == whole["votes"] and now["subjects"] == whole["subjects"]
    assert now["export"]["tree"] == whole["export"]["tree"]
    a = pl.read_parquet(tmp_path / "now" / "subjects.parquet").sort(["question", "subject"])
    b = pl.read_parquet(tmp_path / "whole" / "subjects.parquet").sort(["question", "subject"])
    assert a.select("subject", "question", "n_votes").equals(b.select("subject", "question", "n_votes"))
    # a cumulative export (every classification so far, the last fit's included): those are repeats, dropped
    cumulative = runner.invoke(
        app,
        [
            "update",
            str(tmp_path / "last"),
            str(folder / "classifications.csv"),
            "--workflows",
            str(folder / "workflow_versions.json"),
            "--out",
            str(tmp_path / "again"),
            "-q",
        ],
    )
    assert cumulative.exit_code == 0, cumulative.output
    again = json.loads((tmp_path / "again" / "fit.json").read_text())
    assert again["votes"] == whole["votes"] and again["update"]["new_votes_kept"] == now["update"]["new_votes_kept"]


def test_bayesian_models_start_from_the_last_fit(split, tmp_path):
    """MAP of hierarchical Dawid-Skene warm-started from the last fit (in memory and from its folder, new volunteers
    at the prior) lands where a fit from nothing does."""
    from annostat.models.hierarchical import HierarchicalDawidSkene

    _, old, new = split
    last = HierarchicalDawidSkene(inference="map", steps=400).fit(Votes.from_frame(old))
    updated = last.update(Votes.from_frame(new))
    info = updated.summary()["update"]
    assert info["method"] == "warm-started MAP" and info["steps"] == 100
    assert set(info["questions_warm"]) == {"smooth-or-featured", "disk-edge-on"}
    refit = HierarchicalDawidSkene(inference="map", steps=400).fit(Votes.from_frame(pd.concat([old, new])))
    answers = joined(updated, refit, "answers", ["subject", "question"])
    assert (answers["answer"] == answers["answer_b"]).mean() >= 0.98
    gap = (
        joined(updated, refit, "volunteers", ["volunteer", "question"]).select(
            (pl.col("accuracy") - pl.col("accuracy_b")).abs()
        )
    ).to_series()
    assert gap.median() < 0.01 and gap.max() < 0.1
    last.save(tmp_path / "last")
    from_folder = Fit.load(tmp_path / "last").update(Votes.from_frame(new))
    same = joined(from_folder, updated, "answers", ["subject", "question"])
    assert (same["answer"] == same["answer_b"]).mean() >= 0.99
