"""Many hosts (``annostat.infer.hosts``): ``annostat fit`` over two processes on this machine (CPU collectives over
localhost) writes the fit folder one process writes."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from annostat import Votes
from annostat.cli import app
from annostat.truth.simulate import simulate_questions
from tests.conftest import SHARED

SLSN = SHARED / "data" / "zooniverse" / "slsn" / "classifications.csv"

TABLES = ("votes", "subjects", "posteriors", "volunteers", "confusion", "priors", "trace")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


#: a fixed number of EM iterations: the stopping rule (a relative change of 1e-6, a few float32 roundings) may stop
#: one iteration apart when the sums are taken in another order, which moves confusions by up to ~1e-3
FIXED = ["--tol", "0", "--max-iter", "40"]


def _fit(
    votes: Path, out: Path, processes: int = 1, devices: int = 1, extra: tuple[str, ...] = ()
) -> list[subprocess.CompletedProcess]:
    """``annostat fit --model ds`` in ``processes`` processes (each with ``devices`` CPU devices), run together."""
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "JAX_NUM_CPU_DEVICES": str(devices), "ANNOSTAT_CACHE_DIR": ""}
    command = [sys.executable, "-m", "annostat", "fit", str(votes), "--model", "ds", "--out", str(out), *extra]
    if processes > 1:
        command += ["--coordinator", f"localhost:{_free_port()}", "--num-processes", str(processes)]
    runs = [
        subprocess.Popen(
            command + (["--process-id", str(i)] if processes > 1 else []),
            env=env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for i in range(processes)
    ]
    done = []
    for run in runs:
        output, _ = run.communicate(timeout=300)
        done.append(subprocess.CompletedProcess(run.args, run.returncode, output))
    for run in done:
        assert run.returncode == 0, run.stdout[-3000:]
    return done


@pytest.fixture(scope="module")
def fits(tmp_path_factory):
    """One simulated table (two questions, a missing answer, a repeated vote), as Parquet and CSV, fitted in one
    process, in two, and in two of two CPU devices each."""
    folder = tmp_path_factory.mktemp("hosts")
    sim = simulate_questions(500, 50, ("smooth-or-featured", "disk-edge-on"), retire_after=6, seed=11)
    frame = pl.from_pandas(sim.votes) if not isinstance(sim.votes, pl.DataFrame) else sim.votes
    frame = frame.with_columns(pl.col(pl.Categorical).cast(pl.String))
    frame = pl.concat(
        [
            frame,
            frame.head(1),  # a repeated vote (policy first drops it)
            frame.slice(1, 1).with_columns(pl.lit(None, pl.String).alias("answer")),
        ]
    )
    frame.write_parquet(folder / "votes.parquet")
    frame.write_csv(folder / "votes.csv")
    _fit(folder / "votes.parquet", folder / "one")
    _fit(folder / "votes.parquet", folder / "one_fixed", extra=FIXED)
    runs = {
        "two_fixed": _fit(folder / "votes.parquet", folder / "two_fixed", processes=2, extra=FIXED),
        "two_csv_four_devices": _fit(folder / "votes.csv", folder / "two_csv_four_devices", processes=2, devices=2),
    }
    return folder, runs


def _tables(path: Path) -> dict[str, pl.DataFrame]:
    return {name: pl.read_parquet(path / f"{name}.parquet") for name in TABLES}


def test_two_processes_write_the_one_process_fit(fits):
    """The same EM iterations over two processes: every table as one process writes it (floats to 1e-4)."""
    folder, _ = fits
    a, b = _tables(folder / "one_fixed"), _tables(folder / "two_fixed")
    for name in TABLES:
        x, y = a[name], b[name]
        assert x.columns == y.columns and x.shape == y.shape, name
        for column in x.columns:
            if x[column].dtype.is_float():
                scale = np.maximum(np.abs(x[column].to_numpy()), 1.0) if name == "trace" else 1.0
                assert np.all(np.abs(x[column].to_numpy() - y[column].to_numpy()) <= 1e-4 * scale), (name, column)
            else:
                assert (x[column] == y[column]).all(), (name, column)
    info_one, info_two = (json.loads((folder / case / "fit.json").read_text()) for case in ("one_fixed", "two_fixed"))
    assert info_two["processes"] == 2 and "processes" not in info_one
    assert info_two["rows"] == info_one["rows"]  # every row accounted for across the shares
    assert info_one["rows"]["dropped_by_reason"] == {"missing answer": 1, "duplicate vote (policy first)": 1}
    assert info_two["volunteers"] == info_one["volunteers"] and info_two["subjects"] == info_one["subjects"]


def test_two_processes_of_two_devices_from_csv(fits):
    """Four devices over two processes, the default stopping rule, a CSV read by each process: the same answers
    and votes, confusions as close as the stopping rule allows."""
    folder, _ = fits
    a, b = _tables(folder / "one"), _tables(folder / "two_csv_four_devices")
    assert a["subjects"]["subject"].equals(b["subjects"]["subject"])
    assert (a["subjects"]["answer"] == b["subjects"]["answer"]).mean() >= 0.999
    assert a["votes"].drop("time").equals(b["votes"].drop("time"))  # CSV times are text: the values agree
    assert a["volunteers"].drop("accuracy").equals(b["volunteers"].drop("accuracy"))
    assert np.abs(a["confusion"]["p"].to_numpy() - b["confusion"]["p"].to_numpy()).max() <= 5e-3
    assert (
        json.loads((folder / "two_csv_four_devices" / "fit.json").read_text())["settings"]
        == json.loads((folder / "one" / "fit.json").read_text())["settings"]
    )


def test_only_process_zero_writes_and_reports(fits):
    _, runs = fits
    first, second = runs["two_fixed"]
    assert "Dawid-Skene fit written to" in first.stdout
    assert "written to" not in second.stdout and "error" not in second.stdout.lower()


def test_shares_hold_every_row_once(fits):
    folder, _ = fits
    whole = Votes.read(folder / "votes.parquet")
    shares = [Votes.read(folder / "votes.parquet", share=(i, 3)) for i in range(3)]
    assert sum(s.report.rows_read for s in shares) == whole.report.rows_read
    assert sum(s.n_votes for s in shares) == whole.n_votes
    subjects = [set(s.subjects.to_list()) for s in shares]
    assert not (subjects[0] & subjects[1]) and not (subjects[1] & subjects[2]) and not (subjects[0] & subjects[2])
    assert set().union(*subjects) == set(whole.subjects.to_list())
    rows = np.sort(np.concatenate([s.codes("row") for s in shares]))
    assert np.array_equal(rows, np.sort(whole.codes("row")))  # row numbers of the whole file
    csv = [Votes.read(folder / "votes.csv", share=(i, 3)) for i in range(3)]
    assert [set(s.subjects.to_list()) for s in csv] == subjects  # one subject, one process, whatever the format
    one_row = pl.DataFrame({"subject": ["a"], "volunteer": ["v"], "answer": ["x"]})
    halves = [Votes.from_frame(one_row, share=(i, 2)) for i in range(2)]  # one of them gets no subject at all
    assert sorted(h.n_votes for h in halves) == [0, 1] and sum(h.report.rows_read for h in halves) == 1


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--num-processes", "2"], "go together"),
        (["--coordinator", "localhost:1", "--num-processes", "2", "--process-id", "2"], "runs from 0 to 1"),
        (["--coordinator", "localhost:1", "--num-processes", "2", "--process-id", "0", "--model", "hds"], "--model ds"),
    ],
)
def test_bad_process_flags_are_one_line(tmp_path, flags, message):
    votes = tmp_path / "v.csv"
    votes.write_text("subject,volunteer,answer\na,v,x\n")
    result = CliRunner().invoke(app, ["fit", str(votes), "--out", str(tmp_path / "out"), *flags])
    assert result.exit_code != 0
    assert message in result.output and result.output.count("\n") <= 2, result.output


def test_a_panoptes_export_is_refused_before_joining(tmp_path):
    export = SLSN
    if not export.exists():
        pytest.skip("the shared Zooniverse exports are not here")
    result = CliRunner().invoke(
        app,
        [
            "fit",
            str(export),
            "--out",
            str(tmp_path / "out"),
            "--coordinator",
            "localhost:1",
            "--num-processes",
            "2",
            "--process-id",
            "0",
        ],
    )
    assert result.exit_code != 0 and "a Panoptes export" in result.output
    assert not (tmp_path / "out").exists()


def test_a_coordinator_process_zero_cannot_listen_on_is_one_line(tmp_path):
    votes = tmp_path / "v.csv"
    votes.write_text("subject,volunteer,answer\na,v,x\n")
    with socket.socket() as taken:
        taken.bind(("localhost", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "annostat",
                "fit",
                str(votes),
                "--out",
                str(tmp_path / "out"),
                "--coordinator",
                f"localhost:{port}",
                "--num-processes",
                "2",
                "--process-id",
                "0",
            ],
            check=False,
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "JAX_PLATFORMS": "cpu"},
        )
    output = run.stdout + run.stderr
    assert run.returncode != 0 and "process 0 cannot listen there" in output and "Traceback" not in output
    assert output.strip().count("\n") == 0, output
