"""``annostat demo --quick``: the whole product end to end, as a new user's first command runs it."""

import json

import pandas as pd
from typer.testing import CliRunner

from annostat.cli import app

runner = CliRunner()


def test_demo_quick(tmp_path):
    """The whole product, quick: render, simulate (through a Panoptes export, some galaxies left unclassified), fit
    the vote models and the joint model, benchmark, advise with cards, one round of the live loop, the table."""
    out = tmp_path / "demo"
    result = runner.invoke(app, ["demo", "--quick", "--out", str(out)])
    assert result.exit_code == 0, result.output
    fits = out / "report" / "fits"
    for model in ("mv", "ds", "hds", "joint-ds"):
        for name in ("subjects.parquet", "posteriors.parquet", "volunteers.parquet", "fit.json"):
            assert (fits / model / name).exists(), (model, name)
    assert (out / "truth" / "votes" / "classifications.csv").exists()
    setup = json.loads((out / "report" / "setup.json").read_text())
    assert setup["votes_from"] == "panoptes export" and setup["subjects"] == 80  # 100 rendered, 20% unclassified
    assert setup["retire_after"] == 3
    scores = pd.read_parquet(out / "report" / "scores.parquet")
    assert {"mv", "ds", "hds", "joint-ds"} <= set(scores["pipeline"])
    by = scores.set_index(["pipeline", "question"])
    assert by.loc[("ds", "smooth-or-featured"), "accuracy"] > 0.8
    assert by.loc[("joint-ds", "smooth-or-featured"), "subjects"] == 100  # the unclassified galaxies answered too
    joint = pd.read_parquet(fits / "joint-ds" / "posteriors.parquet")
    assert joint["subject"].nunique() == 100
    assert set(pd.read_parquet(out / "report" / "efficiency.parquet")["votes_per_subject"]) == {1, 2, 3}
    report = (out / "report" / "report.md").read_text()
    assert "## Label efficiency" in report and "![efficiency](efficiency.png)" in report
    index = (out / "advice" / "index.html").read_text()
    assert "Volunteer cards" in index and any((out / "advice" / "volunteers").iterdir())
    selected = pd.read_csv(out / "loop" / "selected.csv")
    new = pd.read_csv(out / "loop" / "new_classifications.csv")
    retired = pd.read_csv(out / "loop" / "retired.csv")
    assert 1 <= len(selected) <= 16 and set(new["subject"]) <= set(selected["subject"])
    assert not set(selected["subject"]) & set(retired["subject_id"])
    assert (out / "loop" / "fit" / "fit.json").exists()
    summary = json.loads((out / "demo.json").read_text())
    assert [row["model"] for row in summary["models"]][:2] == ["mv", "ds"]
    assert [row["model"] for row in summary["models"]][-2:] == ["joint-ds (classified)", "joint-ds (unclassified)"]
    assert summary["loop"]["classifications"] == new.drop_duplicates(["subject", "volunteer"]).shape[0]
    for text in ("accuracy", "joint-ds (unclassified)", "Live loop, one round", "index.html", "report.md", "Done in"):
        assert text in result.output, text
