import json
import os
import subprocess
import sys

import pandas as pd
import pytest
from typer.testing import CliRunner

from annostat.cli import app
from tests.conftest import REAL

runner = CliRunner()


@pytest.fixture(scope="module")
def votes_csv(tmp_path_factory, small_sim):
    path = tmp_path_factory.mktemp("votes") / "votes.csv"
    small_sim.votes.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("model", ["mv", "ds"])
def test_fit_writes_the_fit_folder(tmp_path, votes_csv, small_sim, model):
    out = tmp_path / model
    result = runner.invoke(app, ["fit", str(votes_csv), "--model", model, "--out", str(out)])
    assert result.exit_code == 0, result.output
    for name in ("subjects", "posteriors", "volunteers", "confusion"):
        assert (out / f"{name}.parquet").exists()
    subjects = pd.read_parquet(out / "subjects.parquet")
    assert list(subjects.columns[:4]) == ["subject", "question", "answer", "p"]
    assert subjects["subject"].dtype.kind == "i"  # ids keep their original values and type
    assert set(subjects["subject"]) <= set(small_sim.votes["subject"])
    assert set(subjects["answer"]) <= {"smooth", "featured-or-disk", "artifact", "yes", "no"}
    assert list(pd.read_parquet(out / "posteriors.parquet").columns) == ["subject", "question", "answer", "p"]
    assert list(pd.read_parquet(out / "volunteers.parquet").columns) == ["volunteer", "question", "n", "accuracy"]
    assert {"volunteer", "question", "true_answer", "answer", "p", "count"} <= set(
        pd.read_parquet(out / "confusion.parquet").columns
    )
    info = json.loads((out / "fit.json").read_text())
    assert info["model"] == model
    rows = info["rows"]
    assert rows["read"] == len(small_sim.votes) == rows["kept"] + rows["dropped"]
    assert info["subjects"] == small_sim.votes["subject"].nunique()
    assert info["volunteers"] == small_sim.votes["volunteer"].nunique()
    assert {"iterations", "converged", "log_likelihood", "seconds", "settings"} <= set(info)
    if model == "ds":
        assert info["converged"] and info["iterations"] > 1


def test_fit_real_data_with_column_options(tmp_path):
    path = REAL / "duck" / "answer.csv"
    if not path.exists():
        pytest.skip("shared data missing")
    result = runner.invoke(
        app,
        ["fit", str(path), "--subject-col", "question", "--volunteer-col", "worker", "--out", str(tmp_path), "--quiet"],
    )
    assert result.exit_code == 0, result.output
    truth = pd.read_csv(REAL / "duck" / "truth.csv")
    answers = pd.read_parquet(tmp_path / "subjects.parquet").merge(truth, left_on="subject", right_on="question")
    assert (answers["answer"] == answers["truth"]).mean() >= 0.8889


def test_fit_reports_dropped_rows(tmp_path):
    path = tmp_path / "votes.csv"
    path.write_text("subject,volunteer,answer\n1,a,x\n1,a,y\n2,,x\n3,b,\n2,b,x\n")
    result = runner.invoke(app, ["fit", str(path), "--model", "mv", "--out", str(tmp_path / "fit")])
    assert result.exit_code == 0, result.output
    rows = json.loads((tmp_path / "fit" / "fit.json").read_text())["rows"]
    assert rows == {
        "source": str(path),
        "read": 5,
        "kept": 2,
        "dropped": 3,
        "dropped_by_reason": {"missing volunteer": 1, "missing answer": 1, "duplicate vote (policy first)": 1},
        "duplicate_policy": "first",
        "duplicates_found": 1,
        "missing_time": 0,
    }


def bad_inputs(tmp_path):
    (tmp_path / "empty.csv").write_text("subject,volunteer,answer\n")
    (tmp_path / "garbage.parquet").write_bytes(b"\x00\x01 not a parquet file")
    (tmp_path / "ok.csv").write_text("subject,volunteer,answer,created_at\n1,a,x,2020-01-01\n2,b,y,someday\n")
    (tmp_path / "ragged.csv").write_text('subject,volunteer,answer\n1,a,x\n2,"b,y\n')
    return {
        "missing file": ([str(tmp_path / "nope.csv")], "nope.csv: file not found"),
        "unknown column": ([str(tmp_path / "ok.csv"), "--answer-col", "label"], "no answer column 'label'"),
        "empty table": ([str(tmp_path / "empty.csv")], "empty.csv: the table has a header but no rows"),
        "unparsable file": ([str(tmp_path / "garbage.parquet")], "garbage.parquet: cannot be read as Parquet"),
        "unparsable csv": (
            [str(tmp_path / "ragged.csv")],
            "ragged.csv, row 2: a quoted field opened on line 3 is never closed",
        ),
        "bad time value": ([str(tmp_path / "ok.csv")], "ok.csv, row 2, column 'created_at': cannot read 'someday'"),
    }


@pytest.mark.parametrize(
    "case", ["missing file", "unknown column", "empty table", "unparsable file", "unparsable csv", "bad time value"]
)
def test_bad_input_is_one_clear_line_and_exit_2(tmp_path, case):
    args, message = bad_inputs(tmp_path)[case]
    result = runner.invoke(app, ["fit", *args, "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_console_script_has_no_traceback(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "annostat", "fit", str(tmp_path / "missing.csv"), "--out", str(tmp_path / "o")],
        check=False,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"error: {tmp_path / 'missing.csv'}: file not found"]
    assert proc.stdout == ""


def test_command_keeps_compiled_kernels_between_runs(tmp_path, votes_csv):
    cache = tmp_path / "xla"
    env = {**os.environ, "ANNOSTAT_CACHE_DIR": str(cache)}
    proc = subprocess.run(
        [sys.executable, "-m", "annostat", "fit", str(votes_csv), "--out", str(tmp_path / "fit"), "--quiet"],
        check=False,
        capture_output=True,
        text=True,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert any(p.name.startswith("jit__em_iterations") for p in cache.iterdir())


def test_help_texts_keep_their_square_brackets():
    """Rich reads "[default: 100]" as a markup tag and drops it unless escaped: every help text keeps its own."""
    result = runner.invoke(app, ["fit", "--help"], env={"COLUMNS": "250"})
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert "most EM iterations [default: 100]" in text
    assert "[default: Dawid-Skene every device JAX sees" in text


def test_version_is_the_package_version_and_the_changelog_names_it():
    from pathlib import Path

    import annostat

    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"annostat {annostat.__version__}"
    changelog = (Path(__file__).resolve().parents[1] / "CHANGELOG.md").read_text(encoding="utf-8")
    assert f"## {annostat.__version__} " in changelog  # every version says what changed
