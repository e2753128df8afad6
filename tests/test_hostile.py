"""Hostile and malformed input through the command line, in process: every run ends with exit status 0 or 2 (a one-line
error), never a traceback; the row accounting adds up; nothing is written outside the output folder.

The fuzz tests generate malformed votes tables, Panoptes exports (rows, annotations, metadata, subject_data, workflow
ids) and workflow definitions with hypothesis; the regression tests pin each case found by hand (issue 14).
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from annostat.cli import app

RUNNER = CliRunner()
FUZZ = settings(
    max_examples=int(os.environ.get("ANNOSTAT_FUZZ_EXAMPLES", "100")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
EXPORT_COLUMNS = [
    "classification_id",
    "user_name",
    "user_id",
    "user_ip",
    "workflow_id",
    "workflow_name",
    "workflow_version",
    "created_at",
    "gold_standard",
    "expert",
    "metadata",
    "annotations",
    "subject_data",
    "subject_ids",
]
WORKFLOW = {
    "links": {"workflow": "10"},
    "major_number": 1,
    "minor_number": 2,
    "first_task": "T0",
    "tasks": {
        "T0": {"type": "single", "question": "T0.q", "answers": [{"label": "T0.a0"}, {"label": "T0.a1"}]},
        "T1": {"type": "multiple", "question": "T1.q", "answers": [{"label": "T1.a0"}, {"label": "T1.a1"}]},
    },
    "strings": {"T0.q": "Smooth?", "T0.a0": "Yes", "T0.a1": "No", "T1.q": "Odd?", "T1.a0": "Ring", "T1.a1": "Lens"},
}


# ------------------------------------------------------------------------------------------------------- helpers
def files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")}


def invoke(args: list, root: Path, out: Path):
    """Run the CLI in process and check what every hostile run must satisfy: exit 0 or 2, no exception escaping, at
    most one error line, nothing new under ``root`` outside ``out``."""
    before = files_under(root)
    result = RUNNER.invoke(app, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        import traceback

        raise AssertionError("".join(traceback.format_exception(*result.exc_info))) from result.exception
    assert result.exit_code in (0, 2), result.output
    assert "Traceback" not in result.output
    if result.exit_code == 2:
        errors = [line for line in result.output.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and errors[0].strip() != "error:", result.output
    new = files_under(root) - before
    outside = [p for p in new if not (p == out or out in p.parents)]
    assert not outside, outside
    return result


def fit_accounting(out: Path) -> dict:
    info = json.loads((out / "fit.json").read_text(encoding="utf-8"))
    return info


def assert_export_adds_up(out: Path) -> None:
    export = fit_accounting(out)["export"]
    assert export["read"] == export["used"] + export["quarantined"] + export["skipped"], export
    assert sum(export["quarantined_by_reason"].values()) == export["quarantined"]
    assert all(reason and reason != "None" for reason in export["quarantined_by_reason"]), export
    quarantine = pl.read_csv(out / "quarantine.csv", infer_schema=False)
    assert quarantine.height == export["quarantined"]
    assert quarantine["reason"].null_count() == 0 and (quarantine["reason"].str.len_chars() > 0).all()


def assert_table_adds_up(out: Path) -> None:
    rows = fit_accounting(out)["rows"]
    assert rows["read"] == rows["kept"] + rows["dropped"], rows
    assert sum(rows["dropped_by_reason"].values()) == rows["dropped"]


# ------------------------------------------------------------------------------------------------- strategies
LABELS = st.one_of(
    st.sampled_from(
        [
            "a",
            "b",
            "yes",
            "no",
            "0012",
            "12",
            "1.5",
            "",
            " ",
            "NaN",
            "null",
            "../../x",
            "a/b",
            "a b",
            "total-votes",
            "é",
            "😀",
            "\t",
            '"',
            "'",
            ",",
            "\\",
            "x" * 300,
        ]
    ),
    st.text(min_size=0, max_size=8),
)
RAW_BYTES = st.sampled_from([b"\xff", b"\xfe\xfd", b"\x00", b"\r", b"\n", b'"', b",", b"\xef\xbb\xbf", b"\xc3"])


@st.composite
def votes_csv(draw) -> bytes:
    """A votes table as bytes: a header drawn from the usual columns (maybe repeated, missing or foreign), rows of
    labels with now and then too many or too few fields, stray quotes and bytes that are not UTF-8."""
    columns = draw(
        st.lists(
            st.sampled_from(["subject", "volunteer", "question", "answer", "created_at", "extra", "answer"]),
            min_size=1,
            max_size=6,
        )
    )
    if draw(st.booleans()):
        columns = list(dict.fromkeys(["subject", "volunteer", "answer", *columns]))
    n_rows = draw(st.integers(0, 25))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator=draw(st.sampled_from(["\n", "\r\n"])))
    writer.writerow(columns)
    for _ in range(n_rows):
        width = len(columns) + draw(st.sampled_from([0, 0, 0, 0, -1, 1, -len(columns)]))
        row = [
            draw(st.sampled_from(["2024-01-01 00:00:00 UTC", "yesterday", "5", ""]))
            if c == "created_at"
            else draw(LABELS)
            for c in columns
        ]
        writer.writerow((row + [draw(LABELS) for _ in range(max(0, width - len(row)))])[: max(width, 0)])
    data = buffer.getvalue().encode("utf-8", "surrogatepass")
    for _ in range(draw(st.integers(0, 2))):  # corrupt a few bytes
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(RAW_BYTES) + data[at:]
    return data


JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.floats(allow_nan=False), st.text(max_size=5)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=4), inner, max_size=3)),
    max_leaves=6,
)


@st.composite
def annotation_text(draw) -> str:
    good = [
        {"task": "T0", "value": draw(st.sampled_from(["Yes", "No", "Maybe", 0, 1, 7]))},
        {"task": "T1", "value": draw(st.sampled_from([["Ring"], ["Lens", "Ring"], [], [0], [9]]))},
    ]
    choice = draw(st.integers(0, 9))
    if choice < 5:
        return json.dumps(good[: draw(st.integers(1, 2))])
    if choice == 5:
        return json.dumps(
            [
                {
                    "task": draw(st.sampled_from(["T0", "T1", "T9", "T0/x", 5])),
                    "value": draw(st.one_of(JSON_VALUES, st.sampled_from(["Yes", ["A/B"], ["yes", "no"]]))),
                }
            ]
        )
    if choice == 6:
        return json.dumps(draw(JSON_VALUES))
    if choice == 7:
        return draw(st.sampled_from(["", "[", "{", "null", "[]", '[{"value": "Yes"}]', "not json"]))
    return json.dumps([{"task": "T0", "value": None}, *good[1:]])


@st.composite
def metadata_text(draw) -> str:
    choice = draw(st.integers(0, 6))
    if choice < 3:
        return json.dumps(
            {
                "started_at": "2024-01-01T00:00:00Z",
                "finished_at": "2024-01-01T00:00:04Z",
                "seen_before": draw(st.booleans()),
            }
        )
    if choice == 3:
        return json.dumps({"seen_before": draw(JSON_VALUES), "started_at": draw(JSON_VALUES)})
    if choice == 4:
        return json.dumps(draw(JSON_VALUES))
    return draw(st.sampled_from(["", "{", "[1, 2]", '"text"', "{}"]))


@st.composite
def export_csv(draw) -> bytes:
    """A Panoptes classification export as bytes: mostly sound rows of workflow 10, with malformed annotations,
    metadata and subject_data, empty or foreign workflow ids, missing volunteers, subjects and times, unknown versions,
    repeats, rows with the wrong number of fields, and bytes that are not UTF-8."""
    n_rows = draw(st.integers(1, 20))
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(EXPORT_COLUMNS)
    for i in range(n_rows):
        subject = draw(st.sampled_from(["100", "101", "102", "", "100,101", "../x", " 103 "]))
        row = [
            str(1000 + i),
            draw(st.sampled_from(["ann", "bob", "", "not-logged-in-abc"])),
            draw(st.sampled_from(["1", "2", ""])),
            draw(st.sampled_from(["ip1", ""])),
            draw(st.sampled_from(["10", "10", "10", "", "999"])),
            "wf",
            draw(st.sampled_from(["1.2", "1.2", "1.20", "9.9", "abc", ""])),
            draw(st.sampled_from(["2024-01-01 00:00:01 UTC", "2024-01-02T00:00:00Z", "soon", ""])),
            "",
            "",
            draw(metadata_text()),
            draw(annotation_text()),
            draw(
                st.one_of(
                    st.just(json.dumps({subject or "0": {"Filename": "x.png"}})),
                    st.sampled_from(["", "{", "[1]", '"s"']),
                )
            ),
            subject,
        ]
        width = draw(st.sampled_from([14] * 8 + [13, 15, 5]))
        writer.writerow((row + ["extra"] * max(0, width - 14))[:width])
    data = buffer.getvalue().encode("utf-8")
    if draw(st.integers(0, 4)) == 0:
        at = draw(st.integers(len(",".join(EXPORT_COLUMNS)) + 2, len(data)))
        data = data[:at] + draw(RAW_BYTES) + data[at:]
    return data


@st.composite
def workflow_json(draw) -> str:
    """Workflow definitions: the sound one, or one with a part of the wrong JSON shape."""
    version = json.loads(json.dumps(WORKFLOW))
    choice = draw(st.integers(0, 7))
    if choice == 0:
        return json.dumps(draw(JSON_VALUES))
    if choice == 1:
        version["tasks"] = draw(JSON_VALUES)
    elif choice == 2:
        version["strings"] = draw(JSON_VALUES)
    elif choice == 3:
        version["tasks"]["T0"] = draw(JSON_VALUES)
    elif choice == 4:
        version["tasks"]["T0"]["answers"] = draw(JSON_VALUES)
    elif choice == 5:
        version[draw(st.sampled_from(["major_number", "minor_number", "links", "first_task"]))] = draw(JSON_VALUES)
    return json.dumps(draw(st.sampled_from([[version], {"workflow_versions": [version]}, version])))


# --------------------------------------------------------------------------------------------------- fuzz tests
@FUZZ
@given(data=votes_csv(), model=st.sampled_from(["mv", "ds"]))
def test_fuzz_votes_tables(data, model):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        path = root / "votes.csv"
        path.write_bytes(data)
        out = root / "fit"
        result = invoke(["fit", path, "--model", model, "--out", out, "--quiet"], root, out)
        if result.exit_code == 0:
            assert_table_adds_up(out)


@FUZZ
@given(
    data=export_csv(),
    with_workflow=st.booleans(),
    policy=st.sampled_from([[], ["--workflow-id", "10"], ["--seen-before", "keep"]]),
)
def test_fuzz_panoptes_exports(data, with_workflow, policy):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        path = root / "classifications.csv"
        path.write_bytes(data)
        (root / "workflows.json").write_text(json.dumps([WORKFLOW]), encoding="utf-8")
        out = root / "fit"
        extra = ["--workflows", root / "workflows.json"] if with_workflow else []
        result = invoke(["fit", path, "--model", "mv", "--out", out, "--quiet", *extra, *policy], root, out)
        if result.exit_code == 0:
            assert_export_adds_up(out)
        invoke(["inspect", path, *extra], root, out)


@FUZZ
@given(definitions=workflow_json())
def test_fuzz_workflow_definitions(definitions):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        rows = [
            [
                "1",
                "ann",
                "1",
                "ip",
                "10",
                "wf",
                "1.2",
                "2024-01-01 00:00:01 UTC",
                "",
                "",
                "{}",
                json.dumps([{"task": "T0", "value": "Yes"}]),
                "{}",
                "100",
            ]
        ]
        buffer = io.StringIO()
        csv.writer(buffer).writerows([EXPORT_COLUMNS, *rows])
        (root / "classifications.csv").write_text(buffer.getvalue(), encoding="utf-8")
        (root / "workflows.json").write_text(definitions, encoding="utf-8")
        out = root / "fit"
        result = invoke(
            [
                "fit",
                root / "classifications.csv",
                "--workflows",
                root / "workflows.json",
                "--model",
                "mv",
                "--out",
                out,
                "--quiet",
            ],
            root,
            out,
        )
        if result.exit_code == 0:
            assert_export_adds_up(out)


# ---------------------------------------------------------------------------------------------- regression tests
def export_bytes(rows: list[list[str]]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer).writerows([EXPORT_COLUMNS, *rows])
    return buffer.getvalue().encode("utf-8")


def export_row(i: int, **changes) -> list[str]:
    row = dict(
        zip(
            EXPORT_COLUMNS,
            [
                str(1000 + i),
                f"vol{i % 4}",
                str(i % 4),
                "ip",
                "10",
                "wf",
                "1.2",
                f"2024-01-0{1 + i % 8} 00:00:00 UTC",
                "",
                "",
                json.dumps(
                    {"started_at": "2024-01-01T00:00:00Z", "finished_at": "2024-01-01T00:00:05Z", "seen_before": False}
                ),
                json.dumps([{"task": "T0", "value": ["Yes", "No"][i % 2]}, {"task": "T1", "value": ["Ring"]}]),
                json.dumps({str(100 + i % 5): {"Filename": f"{100 + i % 5}.png"}}),
                str(100 + i % 5),
            ],
        )
    )
    row.update(changes)
    return list(row.values())


@pytest.fixture(scope="module")
def workflow_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("wf") / "workflows.json"
    path.write_text(json.dumps([WORKFLOW]), encoding="utf-8")
    return path


def bad_export_row(case: str) -> bytes:
    rows = [export_row(i) for i in range(12)]
    data = None
    if case == "invalid utf-8":
        data = export_bytes(rows).replace(b"vol2", b"vo\xff2", 1)
    elif case == "extra field":
        rows[2] = rows[2] + ["surplus"]
    elif case == "missing fields":
        rows[2] = rows[2][:6]
    elif case == "metadata list":
        rows[2] = export_row(2, metadata="[1, 2]")
    elif case == "seen_before string":
        rows[2] = export_row(2, metadata=json.dumps({"seen_before": "yes"}))
    elif case == "metadata string":
        rows[2] = export_row(2, metadata='"text"')
    elif case == "empty workflow_id":
        rows[2] = export_row(2, workflow_id="")
    elif case == "answer of the wrong type":
        rows[2] = export_row(2, annotations=json.dumps([{"task": "T0", "value": 1.5}]))
    return data if data is not None else export_bytes(rows)


@pytest.mark.parametrize(
    "case, reason",
    [
        ("invalid utf-8", "malformed CSV row: bytes that are not UTF-8"),
        ("extra field", "malformed CSV row: 15 fields where the header has 14"),
        ("missing fields", "malformed CSV row: 6 fields where the header has 14"),
        ("metadata list", "metadata is not a JSON object"),
        ("seen_before string", "metadata seen_before not true or false: 'yes'"),
        ("metadata string", "metadata is not a JSON object"),
        ("empty workflow_id", "no workflow_id"),
        ("answer of the wrong type", "answer of the wrong type: T0's value is not text"),
    ],
)
@pytest.mark.parametrize("with_workflow", [True, False])
def test_export_rows_of_the_wrong_shape_are_quarantined(tmp_path, workflow_file, case, reason, with_workflow):
    if case == "answer of the wrong type" and not with_workflow:
        pytest.skip("without definitions a value's shape says the task type: a number is a skipped task")
    path = tmp_path / "classifications.csv"
    path.write_bytes(bad_export_row(case))
    out = tmp_path / "fit"
    extra = ["--workflows", workflow_file] if with_workflow else []
    invoke(["fit", path, "--model", "mv", "--out", out, "--quiet", *extra], tmp_path, out)
    assert_export_adds_up(out)
    quarantine = pl.read_csv(out / "quarantine.csv", infer_schema=False)
    assert quarantine["row"].to_list() == ["3"], quarantine
    assert quarantine["reason"][0].startswith(reason), quarantine["reason"][0]


@pytest.mark.parametrize(
    "definitions, message",
    [
        ('"hello"', "the JSON is a string"),
        ('["a"]', "workflow version 1: a JSON string, expected an object"),
        (json.dumps([{**WORKFLOW, "tasks": [1, 2]}]), "tasks is a JSON list, expected an object"),
        (json.dumps([{**WORKFLOW, "strings": [1]}]), "strings is a JSON list, expected an object"),
        (
            json.dumps([{**WORKFLOW, "tasks": {"T0": {"type": "single", "answers": {"a": 1}}}}]),
            "tasks.T0.answers is a JSON object, expected a list",
        ),
        (
            json.dumps([{**WORKFLOW, "tasks": {"T0": {"type": "single", "question": ["x"], "answers": []}}}]),
            "tasks.T0.question is a JSON list, expected text",
        ),
    ],
)
def test_workflow_definitions_of_the_wrong_shape_are_refused(tmp_path, definitions, message):
    (tmp_path / "classifications.csv").write_bytes(export_bytes([export_row(0)]))
    (tmp_path / "wf.json").write_text(definitions, encoding="utf-8")
    out = tmp_path / "fit"
    result = invoke(
        ["fit", tmp_path / "classifications.csv", "--workflows", tmp_path / "wf.json", "--out", out], tmp_path, out
    )
    assert result.exit_code == 2 and message in result.output and "wf.json" in result.output


@pytest.mark.parametrize(
    "tasks, strings, message",
    [
        ("[1, 2]", "{}", "row 1: tasks is a JSON list"),
        ('"abc"', "{}", "row 1: tasks is a JSON string"),
        (json.dumps(WORKFLOW["tasks"]), '"x"', "row 1: strings is a JSON string"),
    ],
)
def test_workflow_export_csv_of_the_wrong_shape_is_refused(tmp_path, tasks, strings, message):
    (tmp_path / "classifications.csv").write_bytes(export_bytes([export_row(0)]))
    pl.DataFrame(
        {"workflow_id": ["10"], "version": ["1"], "minor_version": ["2"], "tasks": [tasks], "strings": [strings]}
    ).write_csv(tmp_path / "workflows.csv")
    out = tmp_path / "fit"
    result = invoke(
        ["fit", tmp_path / "classifications.csv", "--workflows", tmp_path / "workflows.csv", "--out", out],
        tmp_path,
        out,
    )
    assert result.exit_code == 2 and message in result.output


VOTES = "subject,volunteer,question,answer\n" + "".join(f"s{i % 8},v{i % 5},q,{'ab'[i % 3 == 0]}\n" for i in range(40))


@pytest.mark.parametrize("kind", ["duration", "decimal", "list", "struct", "binary", "date"])
def test_label_columns_of_types_a_vote_cannot_have_are_refused(tmp_path, kind):
    import datetime
    import decimal

    import pyarrow as pa
    import pyarrow.parquet as pq

    values = {
        "duration": pa.array([datetime.timedelta(seconds=i) for i in range(4)]),
        "decimal": pa.array([decimal.Decimal(i) for i in range(4)], pa.decimal128(5, 1)),
        "list": pa.array([[i] for i in range(4)]),
        "struct": pa.array([{"x": i} for i in range(4)]),
        "binary": pa.array([b"x"] * 4),
        "date": pa.array([datetime.date(2020, 1, 1 + i) for i in range(4)]),
    }
    table = pa.table({"subject": ["a", "b", "c", "d"], "volunteer": ["v"] * 4, "answer": values[kind]})
    pq.write_table(table, tmp_path / "votes.parquet")
    out = tmp_path / "fit"
    result = invoke(["fit", tmp_path / "votes.parquet", "--out", out], tmp_path, out)
    assert result.exit_code == 2 and "column 'answer'" in result.output and not out.exists()


@pytest.mark.parametrize(
    "name, body, message",
    [
        ("repeated.csv", "subject,volunteer,answer,answer\ns,v,a,b\n", "names column(s) 'answer' more than once"),
        ("bytes.csv", VOTES + "s\xff,v,q,a\n", "row 41: bytes that are not UTF-8"),
        ("quote.csv", VOTES + 's1,"v1,q,a\ns2,v2,q,b\n', "row 41: a quoted field opened on line 42 is never closed"),
        ("long.csv", VOTES + "s1,v1,q,a,x\n", "row 41: 5 fields where the header has 4"),
        ("short.csv", VOTES + "s1,v1\n", "row 41: 2 fields where the header has 4"),
    ],
)
def test_malformed_csv_rows_are_named(tmp_path, name, body, message):
    path = tmp_path / name
    path.write_bytes(body.encode("utf-8", "surrogateescape").replace("\xff".encode(), b"\xff"))
    out = tmp_path / "fit"
    result = invoke(["fit", path, "--out", out], tmp_path, out)
    assert result.exit_code == 2 and message in result.output, result.output


def test_an_export_row_whose_extra_fields_the_reader_cannot_cut_is_named(tmp_path):
    """Found by the fuzzer: a quote closed early in the first row's metadata splits it into 16 fields, and polars'
    second read (which cuts extra fields) fails too; the row is named in one line, not a traceback."""
    rows = export_bytes([export_row(i) for i in range(1, 17)]).decode().splitlines()
    broken = export_bytes([export_row(0)]).decode().splitlines()[1].replace('00Z"",', '00Z""",', 1)
    path = tmp_path / "classifications.csv"
    path.write_text("\r\n".join([rows[0], broken, *rows[1:]]) + "\r\n", encoding="utf-8")
    out = tmp_path / "fit"
    result = invoke(["fit", path, "--model", "mv", "--workflow-id", "10", "--out", out], tmp_path, out)
    assert result.exit_code == 2 and "row 1: 16 fields where the header has 14" in result.output, result.output


def test_a_path_is_exactly_the_file_named(tmp_path):
    (tmp_path / "votes*.csv").write_text(VOTES)
    (tmp_path / "votes-other.csv").write_text("subject,volunteer,question,answer\nzz,zz,q,c\n")
    (tmp_path / "votes[1].csv").write_text(VOTES)
    for name in ("votes*.csv", "votes[1].csv"):
        out = tmp_path / f"fit-{len(name)}"
        invoke(["fit", tmp_path / name, "--out", out, "--quiet"], tmp_path, out)
        assert fit_accounting(out)["rows"]["read"] == 40
    result = invoke(["fit", tmp_path, "--out", tmp_path / "x"], tmp_path, tmp_path / "x")
    assert result.exit_code == 2 and "is a folder" in result.output


@pytest.fixture(scope="module")
def colliding_fit(tmp_path_factory):
    root = tmp_path_factory.mktemp("collide")
    n = 120
    rows = {
        "subject": [f"s{i % 20}" for i in range(n)],
        "volunteer": [f"v{i % 7}" for i in range(n)],
        "question": [["a", "a_b", "z", "a b", "a/b"][i % 5] for i in range(n)],
        "answer": [
            [["b_c", "d"], ["c", "e"], ["total-votes", "k"], ["x", "y"], ["x", "y"]][i % 5][(i // 5) % 2]
            for i in range(n)
        ],
    }
    pl.DataFrame(rows).write_csv(root / "votes.csv")
    out = root / "fit"
    invoke(["fit", root / "votes.csv", "--model", "ds", "--out", out, "--quiet"], root, out)
    return root, out


def test_catalogue_columns_never_collide(colliding_fit):
    root, fit = colliding_fit
    invoke(["catalogue", fit, "--out", root / "cat"], root, root / "cat")
    catalogue = pl.read_parquet(root / "cat" / "catalogue.parquet")
    assert len(set(catalogue.columns)) == len(catalogue.columns)
    described = pl.read_csv(root / "cat" / "catalogue_columns.csv")
    assert described["column"].to_list() == catalogue.columns
    votes = described.filter((pl.col("kind") == "votes") & (pl.col("question") == "a_b") & (pl.col("answer") == "c"))
    assert votes["column"].to_list() == ["a_b_c~2"]  # a + b_c came first and keeps the Zoobot name
    assert catalogue["a_b_c"].sum() == catalogue["a_b_c~2"].sum() == 12  # each pair's own votes, counted once
    total = described.filter((pl.col("question") == "z") & (pl.col("kind") == "votes on the question"))["column"]
    assert total.to_list() == ["z_total-votes~2"]


def test_plot_names_every_question_apart(colliding_fit):
    root, fit = colliding_fit
    invoke(["plot", fit, "--out", root / "plots"], root, root / "plots")
    names = sorted(os.listdir(root / "plots"))
    confusion = [n for n in names if n.startswith("confusion_a-b")]
    assert len(confusion) == 2 and len(set(confusion)) == 2, names


def test_commands_after_the_fit_refuse_damaged_folders(colliding_fit, tmp_path):
    import shutil

    _, fit = colliding_fit
    for damage in ("missing", "truncated", "not json", "wrong shape"):
        folder = tmp_path / damage.replace(" ", "-")
        shutil.copytree(fit, folder)
        info = folder / "fit.json"
        if damage == "missing":
            info.unlink()
        elif damage == "truncated":
            info.write_text(info.read_text()[:50])
        elif damage == "not json":
            info.write_bytes(b"\xff\x00")
        else:
            info.write_text(json.dumps({"model": "ds", "questions": ["a"]}))
        for command in ("catalogue", "plot", "advise"):
            out = folder / "o"
            result = invoke([command, folder, "--out", out], tmp_path, out)
            assert result.exit_code == 2 and "fit" in result.output, (damage, command, result.output)
    folder = tmp_path / "parquet"
    shutil.copytree(fit, folder)
    (folder / "votes.parquet").write_bytes(b"PAR1 not really")
    result = invoke(["catalogue", folder, "--out", folder / "o"], tmp_path, folder / "o")
    assert result.exit_code == 2 and "votes.parquet" in result.output


def test_advise_on_one_answer_questions(tmp_path):
    rows = {
        "subject": [f"s{i % 20}" for i in range(80)],
        "volunteer": [f"v{i % 4}" for i in range(80)],
        "question": ["only"] * 80,
        "answer": ["yes"] * 80,
    }
    pl.DataFrame(rows).write_csv(tmp_path / "votes.csv")
    invoke(["fit", tmp_path / "votes.csv", "--out", tmp_path / "fit", "--quiet"], tmp_path, tmp_path / "fit")
    result = invoke(["advise", tmp_path / "fit", "--out", tmp_path / "adv"], tmp_path, tmp_path / "adv")
    assert result.exit_code == 2 and "single answer" in result.output


def test_compare_out_and_plot_truth_are_checked_first(colliding_fit, tmp_path):
    root, fit = colliding_fit
    (tmp_path / "folder").mkdir()
    for target, message in ((tmp_path / "folder", "is a folder"), (tmp_path / "no" / "x.csv", "does not exist")):
        result = invoke(["compare", root / "votes.csv", "--models", "mv,ds", "--out", target], tmp_path, target)
        assert result.exit_code == 2 and message in result.output and "rank" not in result.output
    for body in (b"", b"subject,question,answer\ns1,a,\xff\n"):
        (tmp_path / "truth.csv").write_bytes(body)
        result = invoke(
            ["plot", fit, "--truth", tmp_path / "truth.csv", "--out", tmp_path / "p"], tmp_path, tmp_path / "p"
        )
        assert result.exit_code == 2 and "truth.csv" in result.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["--model", "hds", "--batch-size", "0"], "'--batch-size'"),
        (["--model", "hds", "--batch-size", "-3"], "'--batch-size'"),
        (["--model", "ds", "--max-iter", "0"], "'--max-iter'"),
        (["--model", "ds", "--tol", "nan"], "'--tol'"),
        (["--model", "ds", "--steps", "5"], "--steps: not an option of the ds model"),
        (["--model", "mv", "--pseudo-diagonal", "2"], "--pseudo-diagonal: not an option of the mv model"),
        (["--model", "ds", "--workflows", "w.json"], "--workflows: an option for Panoptes exports"),
        (["--model", "ds", "--prior-weight", "0.5"], "--prior-weight: an option of --prior"),
        (["--model", "ds", "--epochs", "3"], "--epochs: one of the options of the joint model"),
        (["--model", "ds", "--learning-rate", "0"], "'--learning-rate'"),
    ],
)
def test_options_are_checked_for_every_model(colliding_fit, tmp_path, args, message):
    root, _ = colliding_fit
    out = tmp_path / "fit"
    result = invoke(["fit", root / "votes.csv", "--out", out, *args], tmp_path, out)
    assert result.exit_code == 2 and message in result.output and not out.exists(), result.output


def test_advise_never_copies_an_image_from_outside_its_folder(tmp_path):
    images = tmp_path / "shared" / "images"
    images.mkdir(parents=True)
    (tmp_path / "secret.png").write_bytes(b"\x89PNG secret")
    (images / "link.png").symlink_to(tmp_path / "secret.png")
    rows = {
        "subject": [["../../secret", "link", "s2"][i % 3] for i in range(90)],
        "volunteer": [f"v{i % 3}" for i in range(90)],
        "answer": [["a", "b"][(i // 3) % 2 if i % 9 else 0] for i in range(90)],
    }
    pl.DataFrame(rows).write_csv(tmp_path / "votes.csv")
    invoke(["fit", tmp_path / "votes.csv", "--out", tmp_path / "fit", "--quiet"], tmp_path, tmp_path / "fit")
    out = tmp_path / "adv"
    invoke(["advise", tmp_path / "fit", "--out", out, "--images", images, "--min-votes", "2"], tmp_path, out)
    copied = [p for p in out.rglob("*") if p.is_file() and p.read_bytes() == b"\x89PNG secret"]
    assert not copied


def test_refit_leaves_nothing_of_the_last_fit_and_permissions_are_consistent(colliding_fit, tmp_path):
    root, _ = colliding_fit
    out = tmp_path / "fit"
    invoke(["fit", root / "votes.csv", "--model", "ds", "--out", out, "--quiet"], tmp_path, out)
    (out / "trace.nc").write_bytes(b"an earlier Bayesian fit's trace")  # what hds, then ds into one folder, left
    (out / "network").mkdir()
    (out / "network" / "config.json").write_text("{}")
    invoke(["catalogue", out], tmp_path, out)
    (out / "notes.txt").write_text("mine")
    invoke(["fit", root / "votes.csv", "--model", "mv", "--out", out, "--quiet"], tmp_path, out)
    names = set(os.listdir(out))
    assert not names & {"trace.nc", "network", "catalogue.csv", "catalogue.parquet"} and "notes.txt" in names
    modes = {oct(os.stat(out / n).st_mode & 0o777) for n in names}
    assert len(modes) == 1, modes


def test_benchmark_efficiency_with_nothing_valid_is_an_error(tmp_path):
    truth = tmp_path / "truth"
    invoke(["truth", "standin", "--n", "20", "--size", "16", "--out", truth], tmp_path, truth)
    invoke(["simulate", truth, "--volunteers", "10", "--retire-after", "3"], tmp_path, truth)
    out = tmp_path / "report"
    result = invoke(["benchmark", truth, "--pipelines", "mv", "--efficiency", "0,50", "--out", out], tmp_path, out)
    assert result.exit_code == 2 and "none of 0, 50 classifications per subject" in result.output


def test_compare_refuses_options_no_model_chosen_uses(colliding_fit, tmp_path):
    root, _ = colliding_fit
    result = invoke(["compare", root / "votes.csv", "--models", "mv,ds", "--steps", "10"], tmp_path, tmp_path)
    assert result.exit_code == 2 and "--steps: options of the Bayesian models" in result.output


def test_damaged_truth_sets_and_output_folders_that_are_files(tmp_path):
    (tmp_path / "file.txt").write_text("x")
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "manifest.json").write_bytes(b"\xff")
    for args, message in (
        (["simulate", fake], "not UTF-8 text"),
        (["benchmark", fake, "--out", tmp_path / "b"], "not UTF-8 text"),
        (["truth", "standin", "--n", "5", "--out", tmp_path / "file.txt"], "is a file"),
        (["demo", "--out", tmp_path / "file.txt"], "is a file"),
    ):
        result = invoke(args, tmp_path, tmp_path / "b")
        assert result.exit_code == 2 and message in result.output, result.output
