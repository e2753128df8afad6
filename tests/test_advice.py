"""Volunteer advice: planted confusions are named and ordinary volunteers are not (the evidence), every model's fit
can be advised, examples and impact, privacy and safety of names, and the HTML cards in a real headless browser."""

import json
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from annostat import Fit, Votes
from annostat.cli import app
from annostat.files import safe_file_name
from annostat.guidance import FitTables, advise, pseudonym, write_advice
from annostat.models import get_model
from annostat.truth.simulate import VolunteerPopulation, simulate, simulate_questions, truth_table

PLANTED = [("bar", "weak", "no", 0.75, 0.1), ("smooth-or-featured", "featured-or-disk", "smooth", 0.6, 0.1)]
QUESTIONS = ("smooth-or-featured", "disk-edge-on", "has-spiral-arms", "bar")


def planted_simulation(n_subjects: int, per_subject: int, seed: int, planted=PLANTED):
    """500 volunteers with ordinary, evenly spread errors; 10% of them also call weak bars 'no' and 10% call
    featured galaxies smooth (at the rates of ``planted``); ``per_subject`` classifications a galaxy."""
    population = VolunteerPopulation(
        n_volunteers=500,
        planted=planted,
        spammer_fraction=0.0,
        learning_gap=0.0,
        error_concentration=50.0,
        question_sd=0.0,
        skill_sd=0.5,
        ordered_errors=False,
    )
    truth = truth_table(n_subjects, questions=QUESTIONS, frequencies={"bar": [0.2, 0.5, 0.3]}, seed=seed)
    return simulate(truth, population, questions=QUESTIONS, retire_after=per_subject, seed=seed)


def detection(sim, advice: pd.DataFrame, planted=PLANTED) -> pd.DataFrame:
    """Per planted question, among volunteers with >= 30 votes on it: how many have the confusion, the share of them
    it is named for (hit), and the share of the others named for any confusion (false alarm); and the false alarms
    on the other questions."""
    a = advice.merge(sim.volunteers[["volunteer", "question", "planted"]], on=["volunteer", "question"])
    rows = []
    for question, true_answer, given, _, _ in planted:
        part = a[(a["question"] == question) & (a["n"] >= 30)]
        has = part["planted"] == f"{true_answer}->{given}"
        named = (part["confusion_true"] == true_answer) & (part["confusion_answer"] == given)
        rows.append(
            {
                "question": question,
                "planted": int(has.sum()),
                "others": int((~has).sum()),
                "hit": named[has].mean(),
                "false_alarm": part["confusion_true"].notna()[~has].mean(),
            }
        )
    other = a[~a["question"].isin([p[0] for p in planted]) & (a["n"] >= 30)]
    rows.append(
        {
            "question": "other questions",
            "planted": 0,
            "others": len(other),
            "hit": np.nan,
            "false_alarm": other["confusion_true"].notna().mean(),
        }
    )
    return pd.DataFrame(rows).set_index("question")


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """6,000 galaxies, 15 classifications each; Dawid-Skene fit."""
    sim = planted_simulation(6000, 15, seed=2)
    folder = tmp_path_factory.mktemp("planted") / "fit"
    get_model("ds").fit(Votes.from_frame(sim.votes)).save(folder)
    return sim, folder, advise(FitTables.of(Fit.load(folder)))


def test_planted_confusions_are_named_and_ordinary_volunteers_are_not(planted):
    sim, _, tables = planted
    rates = detection(sim, tables["advice"])
    # measured (seed 2): smooth-or-featured 64/64 named, 3/436 false alarms; bar 25/25, 3/155; other questions 3/444
    # (seed 1: 44/46, 5/454; 16/16, 2/127; 3/360)
    assert (rates["planted"].iloc[:-1] >= 8).all() and (rates["others"] >= 40).all()
    assert (rates["hit"].iloc[:-1] >= 0.9).all(), rates
    assert (rates["false_alarm"] <= 0.05).all(), rates
    a = tables["advice"].merge(sim.volunteers[["volunteer", "question", "planted"]], on=["volunteer", "question"])
    named = a[a["recommendation"] == "review a confusion"]
    assert (named["confusion_rate"] > named["population_rate"]).all() and (named["accuracy_gain"] > 0).all()
    found = named[named["planted"] == named["confusion_true"] + "->" + named["confusion_answer"]]
    assert len(found) and (found["information_gain_bits"] > 0).all()  # fixing a planted mix-up informs
    sentence = named[named["question"] == "bar"]["advice"].iloc[0]
    assert "'bar'" in sentence and "'weak'" in sentence and "'no'" in sentence
    project = tables["project"]
    top_bar = project[project["question"] == "bar"].iloc[0]
    assert (top_bar["true_answer"], top_bar["answer"]) == ("weak", "no")  # the field guide's first fix


@pytest.mark.parametrize("per_subject, n_subjects", [(3, 20000), (4, 16000)])
def test_confusions_are_named_at_the_votes_per_subject_galaxy_zoo_has(per_subject, n_subjects):
    """GZ JWST gives ~3 classifications a galaxy, GZ DECaLS ~5: each vote is judged against the consensus of the
    others, so planted mix-ups are found without confident many-vote subjects (here at rate 0.75, 10% of volunteers)."""
    planted = [(q, t, g, 0.75, share) for q, t, g, _, share in PLANTED]
    sim = planted_simulation(n_subjects, per_subject, seed=2, planted=planted)
    rates = detection(sim, advise(FitTables.of(get_model("ds").fit(Votes.from_frame(sim.votes))))["advice"], planted)
    # measured (seed 2): 3 votes: bar 12/12 named, 0/90 false alarms; smooth-or-featured 56/57, 3/418; other
    # questions 2/252. 4 votes: bar 13/14, 2/97; smooth-or-featured 60/61, 3/425; other 1/282. (Seed 1, 3 votes:
    # 10/10, 0/50; 27/28, 0/273; 3/155. 4 votes: 9/10, 0/66; 33/33, 2/325; 0/186.) Weaker mix-ups (rate 0.6) are
    # named for 77-93% at 3-4 votes (bar 10/13 and 12/14, smooth 50/57 and 57/61), false alarms alike.
    assert (rates["planted"].iloc[:-1] >= 8).all() and (rates["others"] >= 40).all()
    assert (rates["hit"].iloc[:-1] >= 0.9).all(), rates
    assert (rates["false_alarm"] <= 0.05).all(), rates


def test_examples_are_confident_and_answered_otherwise(planted, tmp_path):
    _sim, folder, _ = planted
    result = write_advice(folder, tmp_path / "advice", salt="s", max_pages=1)
    ex = result["examples"]
    assert len(ex) and (ex["consensus_p"] >= 0.9).all()
    fit = FitTables.of(Fit.load(folder))
    votes = fit.votes.assign(
        shown=fit.votes["volunteer"].map(lambda n: pseudonym(n, "s")), subject=fit.votes["subject"].astype(str)
    )
    own = ex[ex["answered_by"] == "volunteer"].merge(
        votes, left_on=["volunteer", "question", "subject"], right_on=["shown", "question", "subject"]
    )
    assert len(own) and (own["answer"] == own["confusion_answer"]).all()
    assert ex.groupby(["volunteer", "question"]).size().max() <= 4
    assert not ex.duplicated(["volunteer", "question", "subject"]).any()


@pytest.mark.parametrize("name", ["mv", "ds"])
def test_em_and_vote_fits_can_be_advised(small_sim, name, tmp_path):
    """The Bayesian models' fits are advised where test_bayes fits them (assert_advisable), not refitted here."""
    from tests.conftest import assert_advisable

    assert_advisable(get_model(name).fit(Votes.from_frame(small_sim.votes)), tmp_path, bayesian=False)


def test_names_are_pseudonymised_safe_and_escaped(tmp_path):
    sim = simulate_questions(200, 12, questions=("smooth-or-featured",), retire_after=6, seed=2)
    evil = {
        "sim-volunteer-00000": "../../etc/passwd",
        "sim-volunteer-00001": "<script>alert(1)</script>",
        "sim-volunteer-00002": "a/b",
        "sim-volunteer-00003": "a b",
        "sim-volunteer-00004": "Zoë O'Brien",
    }
    votes = sim.votes.assign(
        volunteer=sim.votes["volunteer"].astype(str).replace(evil), user_ip="10.0.0.1"
    )  # an IP column is never read or written
    folder = get_model("ds").fit(Votes.from_frame(votes)).save(tmp_path / "fit")
    out = tmp_path / "out"
    write_advice(folder, out, salt="pepper", max_pages=3)
    shared = [p for p in out.rglob("*") if p.is_file() and "private" not in p.parts]
    for path in shared:
        data = path.read_bytes()
        for name in [*evil.values(), "sim-volunteer-00005"]:
            assert name.encode() not in data, (path, name)
        assert b"10.0.0.1" not in data
    assert pseudonym("a/b", "pepper") in (out / "index.html").read_text()
    names = pd.read_csv(out / "private" / "names.csv")
    assert set(evil.values()) <= set(names["volunteer"])
    kept = tmp_path / "kept"
    write_advice(folder, kept, keep_names=True)
    pages = sorted(p.name for p in (kept / "volunteers").iterdir())
    assert all(p.parent == kept / "volunteers" for p in (kept / "volunteers").iterdir())
    assert len(pages) == len(set(pages)) == votes["volunteer"].nunique()  # one page each, no clashes
    assert safe_file_name("a/b") != safe_file_name("a b") and "/" not in safe_file_name("../../etc/passwd")
    index = (kept / "index.html").read_text()
    assert "<script>alert(1)</script>" not in index and "&lt;script&gt;alert(1)&lt;/script&gt;" in index
    assert not (tmp_path / "etc").exists() and not (kept / "private" / "salt.txt").exists()


def test_thumbnails_from_a_truth_set(tmp_path):
    from annostat.truth.standin import standin_truth_set

    truth_set = standin_truth_set(tmp_path / "truth", 150, size=32, seed=3)
    planted = [("smooth-or-featured", "featured-or-disk", "smooth", 0.8, 0.3)]
    sim = simulate(
        truth_set, VolunteerPopulation(n_volunteers=20, planted=planted, spammer_fraction=0.0), retire_after=8, seed=3
    )
    sim.write(truth_set.votes_dir, export=False)
    folder = get_model("ds").fit(Votes.from_frame(sim.votes)).save(tmp_path / "fit")
    result = write_advice(folder, tmp_path / "out", truth=truth_set.root, min_votes=5, max_pages=1)
    ex = result["examples"]
    assert len(ex) and ex["thumbnail"].notna().all()
    assert all((tmp_path / "out" / t).exists() for t in ex["thumbnail"])


def test_cli_errors_are_one_line(tmp_path):
    missing = CliRunner().invoke(app, ["advise", str(tmp_path / "nope"), "--out", str(tmp_path / "o")])
    assert missing.exit_code == 2 and "not a folder" in missing.output and "Traceback" not in missing.output
    (tmp_path / "half").mkdir()
    no_info = CliRunner().invoke(app, ["advise", str(tmp_path / "half"), "--out", str(tmp_path / "o")])
    assert no_info.exit_code == 2 and "not a fit folder (no fit.json)" in no_info.output
    (tmp_path / "half" / "fit.json").write_text('{"model": "ds", "questions": []}')
    (tmp_path / "half" / "volunteers.parquet").write_bytes(b"")
    half = CliRunner().invoke(app, ["advise", str(tmp_path / "half"), "--out", str(tmp_path / "o")])
    assert half.exit_code == 2 and "volunteers.parquet: not a readable Parquet file" in half.output
    (tmp_path / "half" / "fit.json").write_text('{"model": "ds", "questions"')
    broken = CliRunner().invoke(app, ["advise", str(tmp_path / "half"), "--out", str(tmp_path / "o")])
    assert broken.exit_code == 2 and "fit.json: not valid JSON" in broken.output


@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Debian's chromium package (apt install chromium)")
def test_cards_render_in_headless_chromium(planted, tmp_path):
    _, folder, _ = planted
    out = tmp_path / "cards"
    write_advice(folder, out, max_pages=3)
    index = out / "index.html"
    shot = tmp_path / "index.png"
    common = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--allow-file-access-from-files"]
    subprocess.run(
        [*common, f"--screenshot={shot}", "--window-size=1200,900", index.as_uri()],
        check=True,
        capture_output=True,
        timeout=120,
    )
    assert shot.exists() and shot.stat().st_size > 10_000
    dom = subprocess.run(
        [*common, "--dump-dom", index.as_uri()], check=True, capture_output=True, text=True, timeout=120
    ).stdout
    assert dom.count('<tr><td><a href="volunteers/') == 3 and "Volunteer cards" in dom
    page = next((out / "volunteers").iterdir())
    dom = subprocess.run(
        [*common, "--dump-dom", page.as_uri()], check=True, capture_output=True, text=True, timeout=120
    ).stdout
    assert "all volunteers" in dom and "<svg" in dom
    summary = json.loads((out / "summary.json").read_text())
    assert summary["pages"] == 3 and np.isfinite(summary["volunteers"])
