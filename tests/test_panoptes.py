import json
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from annostat import InputError
from annostat.cli import app
from annostat.compat.panoptes_aggregation import annostat_counts, same_counts
from annostat.data.io.load import load_votes
from annostat.data.io.panoptes import read_panoptes
from annostat.data.io.workflows import normalise_label, read_workflows
from annostat.data.trees import PANOPTES_TASKS, TREES, Tree
from annostat.models import get_model
from tests.conftest import SHARED

ZOO = SHARED / "data" / "zooniverse"
DECALS = ZOO / "gz-decals" / "classifications.csv"
DECALS_WF = ZOO / "gz-decals" / "workflow_versions.json"
SLSN = ZOO / "slsn" / "classifications.csv"
SLSN_WF = ZOO / "slsn" / "workflows.csv"
HERE = Path(__file__).resolve().parent

if not DECALS.exists():
    pytest.skip("shared Zooniverse data not found", allow_module_level=True)


@pytest.fixture(scope="module")
def decals_workflow():
    return read_workflows(DECALS_WF)["6122"]


def real_rows() -> pl.DataFrame:
    return pl.read_csv(DECALS, infer_schema=False)


def write(frame: pl.DataFrame, path: Path) -> Path:
    frame.write_csv(path)
    return path


# ------------------------------------------------------------------------------------------ workflows and trees
def test_label_normalisation():
    assert normalise_label("![feature_or_disk.png](https://x.org/a.png) Features or Disk") == "features or disk"
    assert normalise_label("  Star   or **Artefact** ") == "star or artefact"
    assert normalise_label("[link](http://a) text") == "link text"


def test_workflow_versions_and_float_mangled_version(decals_workflow):
    assert len(decals_workflow.versions) == 24
    assert decals_workflow.version("28.30").version == "28.30"
    assert decals_workflow.version("28.3").version == "28.30"  # a float-mangled 28.30
    assert decals_workflow.version("55.121").version == "55.121"
    assert decals_workflow.version("55.12") is None
    assert decals_workflow.version("99.1") is None
    slsn = read_workflows(SLSN_WF)
    assert set(slsn) == {"10"} and len(slsn["10"].versions) >= 1


def test_every_decals_version_maps_onto_zoobot_names_or_is_set_aside(decals_workflow):
    """One answer is one answer across all 24 versions: every single-answer label of a mapped task either maps to a
    Zoobot answer of one question (reworded labels alike), or the whole version's task is set aside."""
    candidates = PANOPTES_TASKS["gz-decals-dr5"]
    tree = TREES["gz-decals-dr5"]
    mapped_versions = {}
    for version in decals_workflow.versions.values():
        for task_id, options in candidates.items():
            task = version.tasks.get(task_id)
            if task is None or task.type != "single":
                continue
            labels = task.normalised
            for question, aliases in options:
                if all(label in aliases for label in labels):
                    answers = {aliases[label] for label in labels}
                    assert len(answers) == len(labels)  # no two answers of one version merge
                    mapped_versions.setdefault(task_id, set()).add(version.version)
                    if question in tree.questions:
                        assert answers == set(tree.answers(question))
                    break
    # the stable questions map in all 24 versions, reworded labels included
    for task_id in ("T0", "T1", "T2", "T3", "T4", "T5", "T6", "T7"):
        assert len(mapped_versions[task_id]) == 24, task_id
    assert "28.30" in mapped_versions["T8"] and "66.425" in mapped_versions["T8"]


def test_tree_presets():
    assert len(TREES["gz-decals-dr5"]) == 10 and len(TREES["gz-decals-dr5"].columns()) == 34
    assert len(TREES["gz2"]) == 10 and len(TREES["gz2"].columns()) == 30
    assert TREES["gz-desi"] is TREES["gz-decals-dr8"] is TREES["gz-decals-dr5"]
    for name in ("gz-euclid", "gz-jwst-ceers", "gz-cosmic-dawn"):
        assert {"clumps", "problem", "artifact"} <= set(TREES[name].questions)
    assert TREES["gz-decals-dr5"].questions["bar"].asked_after == (("disk-edge-on", "no"),)
    assert "smooth-or-featured_artifact" in TREES["gz-decals-dr5"].columns()


def test_tree_from_workflow_next_links(decals_workflow):
    tree = Tree.from_workflow(decals_workflow.version("66.425"))
    assert tree.questions["T0"].asked_after == ()
    assert ("T0", "smooth") in tree.questions["T1"].asked_after
    assert ("T2", "no - something else") in tree.questions["T4"].asked_after
    assert tree.answers("T10/ring") == ("yes", "no")


# ------------------------------------------------------------------------------------------ reading real exports
@pytest.mark.parametrize(
    "name,export,workflows,workflow_id", [("gz-decals", DECALS, DECALS_WF, "6122"), ("slsn", SLSN, SLSN_WF, "10")]
)
def test_vote_counts_match_panoptes_aggregation(name, export, workflows, workflow_id):
    reference = pl.read_csv(HERE / "data" / f"panoptes_aggregation_{name}.csv", infer_schema=False)
    assert not reference["label"].str.starts_with("?").any()
    assert same_counts(reference, annostat_counts(export, read_workflows(workflows)))


def test_live_panoptes_aggregation_when_installed(tmp_path):
    pytest.importorskip("panoptes_aggregation")
    from annostat.compat.panoptes_aggregation import reduce_questions, with_labels

    workflow = read_workflows(SLSN_WF)["10"]
    theirs = with_labels(reduce_questions(SLSN, 10, workflow.task_ids(), tmp_path), workflow)
    assert same_counts(theirs, annostat_counts(SLSN, {"10": workflow}))


def test_real_decals_export_with_zoobot_names():
    export = read_panoptes(DECALS, DECALS_WF)
    r = export.report
    assert r.rows_read == 9 == r.rows_used + r.rows_quarantined + r.rows_skipped
    assert r.tree == "gz-decals-dr5"
    questions = set(export.votes["question"])
    assert {"smooth-or-featured", "disk-edge-on", "bar", "has-spiral-arms", "T10/ring"} <= questions
    t0 = export.votes.filter(pl.col("question") == "smooth-or-featured")
    assert set(t0["answer"]) <= {"smooth", "featured-or-disk", "artifact"}
    assert "artifact" in set(t0["answer"])  # "Star or Artefact" (v46.73)
    assert export.votes["dwell_seconds"].min() > 0
    # version 44.73's bulge answers (no bulge, small, obvious, large, dominant) match no Zoobot question
    assert sum(r.votes_skipped.values()) == 3


def test_subject_data_becomes_the_subjects_table(tmp_path):
    """The export's subject_data is kept: metadata columns (numbers stay numbers), the image file name, and the
    fit carries it to its folder (subject_data.parquet) with each subject's votes."""
    votes, _ = load_votes(DECALS, workflows=DECALS_WF)
    table = votes.subject_table
    assert len(table) == votes.n_subjects and set(table.ids) == set(votes.subjects)
    assert {"ra", "dec", "redshift"} <= set(table.columns) and table.frame["ra"].dtype == pl.Float64
    assert abs(table.frame.filter(pl.col("subject") == 15715879)["ra"][0] - 319.1152) < 1e-3
    rows = real_rows().with_columns(
        pl.lit('{"1": {"#ra": 10.5, "!iauname": "J1", "Filename": "g 1.png"}}').alias("subject_data")
    )
    votes, _ = load_votes(write(rows, tmp_path / "export.csv"), workflows=DECALS_WF)
    frame = votes.subject_table.frame
    assert {"ra", "iauname", "image"} <= set(frame.columns) and set(frame["image"]) == {"g 1.png"}
    fit = get_model("ds").fit(votes)
    saved = pl.read_parquet(fit.save(tmp_path / "fit") / "subject_data.parquet")
    assert saved["n_votes"].sum() == votes.n_votes and set(saved["iauname"]) == {"J1"}


# ------------------------------------------------------------------------------------------ nothing lost
@pytest.fixture()
def broken_export(tmp_path):
    rows = real_rows()
    base = rows.row(0, named=True)
    good = dict(base)

    def variant(**changes):
        row = dict(good)
        row.update(changes)
        return row

    ann = json.loads(base["annotations"])
    unknown_task = json.dumps(ann + [{"task": "T99", "value": "Yes"}])
    bad_label = json.dumps([{"task": "T0", "value": "Definitely a galaxy"}])
    t0_unanswered = json.dumps([{"task": "T0", "value": None}])
    extra = [
        variant(classification_id="1001", annotations="[{not json"),
        variant(classification_id="1002", metadata="{broken"),
        variant(classification_id="1003", subject_data="{broken"),
        variant(classification_id="1004", annotations=unknown_task),
        variant(classification_id="1005", annotations=bad_label),
        variant(classification_id="1006", created_at="yesterday"),
        variant(classification_id="1007", subject_ids=None),
        variant(classification_id="1008", metadata=base["metadata"][:-1] + ',"seen_before":true}', subject_ids="999"),
        variant(classification_id="1009", created_at="2019-01-01 00:00:00 UTC"),  # repeat of row 1's subject
        variant(classification_id="1010", user_name="not-logged-in-abc123", user_id=None, subject_ids="998"),
        variant(classification_id="1011", workflow_id="1234"),
        variant(classification_id="1012", annotations=t0_unanswered, subject_ids="997"),
        variant(classification_id="1013", workflow_version="28.3", subject_ids="996"),
    ]
    frame = pl.concat([rows, pl.DataFrame(extra, schema=rows.schema)])
    return write(frame, tmp_path / "broken.csv")


def test_quarantine_and_policies_account_for_every_row(broken_export):
    export = read_panoptes(broken_export, DECALS_WF, workflow_id=6122)
    r = export.report
    assert r.rows_read == 22
    assert r.rows_read == r.rows_used + r.rows_quarantined + r.rows_skipped
    q = export.report.quarantine
    reasons = dict(zip(q["classification_id"], q["reason"]))
    assert reasons["1001"] == "malformed annotations JSON"
    assert reasons["1002"] == "malformed metadata JSON"
    assert reasons["1003"] == "malformed subject_data JSON"
    assert reasons["1004"].startswith("unknown task: T99")
    assert reasons["1005"].startswith("answer not in workflow: T0 'definitely a galaxy'")
    assert reasons["1006"] == "unparsable created_at"
    assert reasons["1007"] == "missing subject id"
    assert set(q["row"]) == {10, 11, 12, 13, 14, 15, 16}
    assert r.skipped["seen_before re-classification"] == 1
    assert r.skipped["repeat classification of a subject (kept the first)"] == 1
    assert r.skipped["other workflow"] == 1
    assert r.skipped["no answered question task"] == 1
    used = export.classifications
    assert "1013" in set(used["classification_id"])  # version "28.3" read as 28.30
    anon = used.filter(pl.col("classification_id") == "1010")
    assert anon["anonymous"].to_list() == [True] and anon["volunteer"].to_list() == ["not-logged-in-abc123"]
    assert "1009" not in set(used["classification_id"])  # the later repeat of subject 15715879


def test_other_task_types_are_skipped_and_counted(tmp_path):
    workflows = pl.read_csv(SLSN_WF, infer_schema=False)
    tasks = json.loads(workflows["tasks"][0])
    tasks["T2"] = {"type": "drawing", "tools": [{"type": "point", "label": "T2.tools.0.label"}]}
    tasks["T3"] = {"type": "text", "instruction": "T3.instruction"}
    workflows = workflows.with_columns(pl.lit(json.dumps(tasks)).alias("tasks"))
    rows = pl.read_csv(SLSN, infer_schema=False)
    extra = json.dumps(
        [
            {"task": "T0", "value": "No"},
            {"task": "T2", "value": [{"x": 1.0, "y": 2.0, "tool": 0}]},
            {"task": "T3", "value": "a note"},
        ]
    )
    drawing_only = json.dumps([{"task": "T2", "value": [{"x": 3.0, "y": 4.0, "tool": 0}]}])
    rows = pl.concat(
        [
            rows,
            rows.tail(2).with_columns(
                pl.Series("annotations", [extra, drawing_only]), pl.Series("subject_ids", ["1", "2"])
            ),
        ]
    )
    export = read_panoptes(write(rows, tmp_path / "c.csv"), write(workflows, tmp_path / "w.csv"))
    assert export.report.tasks_skipped_by_type == {"drawing": 2, "text": 1}
    assert export.report.tasks_skipped == {"T2 (drawing)": 2, "T3 (text)": 1}
    assert export.report.skipped_tasks()[0] == (
        "task T2 (drawing) skipped in 2 classifications: only single- and multiple-answer tasks are votes"
    )
    assert export.report.skipped["no answered question task"] == 1
    assert export.report.rows_used == 8


def test_policies_can_be_changed(broken_export):
    keep = read_panoptes(
        broken_export, DECALS_WF, workflow_id=6122, seen_before="keep", repeats="all", anonymous="drop"
    )
    assert "seen_before re-classification" not in keep.report.skipped
    assert keep.report.skipped["not-logged-in volunteer"] == 1
    assert {"1008", "1009"} <= set(keep.classifications["classification_id"])


def test_strict_turns_quarantine_into_an_error(broken_export):
    with pytest.raises(InputError, match=r"broken.csv, row 10, classification 1001: malformed annotations JSON"):
        read_panoptes(broken_export, DECALS_WF, workflow_id=6122, strict=True)


def test_reduced_column_sets_and_index_column(tmp_path):
    rows = real_rows()
    reduced = rows.drop("user_name", "metadata", "subject_data", "user_ip", "gold_standard", "expert")
    reduced = reduced.with_row_index("").with_columns(pl.col("").cast(pl.Utf8))
    path = write(reduced, tmp_path / "reduced.csv")
    export = read_panoptes(path, DECALS_WF)
    assert export.report.rows_used == 9
    assert set(export.votes["volunteer"]) == {"user-290475", "user-108"}


def test_galaxy_zoos_reduced_export_needs_its_workflow_named(tmp_path):
    """The export Galaxy Zoo's reduction scripts use has no workflow_id column: the workflow is named instead, and the
    fit's summary on the terminal names every task it skipped."""
    reduced = real_rows().select(
        "classification_id", "user_id", "workflow_version", "created_at", "annotations", "subject_ids"
    )
    path = write(reduced, tmp_path / "reduced.csv")
    runner = CliRunner()
    refused = runner.invoke(app, ["fit", str(path), "--workflows", str(DECALS_WF), "--out", str(tmp_path / "no")])
    assert refused.exit_code == 2 and "no workflow_id column" in refused.output and "--workflow-id" in refused.output
    result = runner.invoke(
        app, ["fit", str(path), "--workflows", str(DECALS_WF), "--workflow-id", "6122", "--out", str(tmp_path / "fit")]
    )
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())
    assert "9 classifications read, 9 used" in output and "votes skipped in 1 classification: T8 v44.73" in output
    info = json.loads((tmp_path / "fit" / "fit.json").read_text())
    assert info["export"]["workflow_id"] == "6122" and "workflow_id_column" in info["export"]
    inspected = runner.invoke(app, ["inspect", str(path), "--json"])
    assert inspected.exit_code == 0 and "no workflow_id column" in inspected.output


def test_without_workflow_definitions_answers_are_read_as_written():
    export = read_panoptes(DECALS, None)
    assert export.report.tree is None
    t0 = export.votes.filter(pl.col("question") == "T0")
    assert set(t0["answer"]) == {"features or disk", "smooth", "star or artefact"}


@pytest.mark.parametrize(
    "content,message",
    [
        ("classification_id,user_name\n1,a\n", "not a Panoptes classification export"),
        ("", "cannot be read as CSV"),
    ],
)
def test_bad_exports(tmp_path, content, message):
    path = tmp_path / "export.csv"
    path.write_text(content)
    with pytest.raises(InputError, match=message):
        read_panoptes(path, DECALS_WF)


def test_nothing_usable_is_an_error(tmp_path):
    rows = real_rows().with_columns(pl.lit("{oops").alias("annotations"))
    with pytest.raises(InputError, match="nothing usable remains of 9 classifications"):
        read_panoptes(write(rows, tmp_path / "x.csv"), DECALS_WF)


def test_several_workflows_need_a_choice(tmp_path):
    rows = real_rows()
    rows = pl.concat([rows, rows.head(1).with_columns(pl.lit("77").alias("workflow_id"))])
    with pytest.raises(InputError, match="holds 2 workflows"):
        read_panoptes(write(rows, tmp_path / "x.csv"), DECALS_WF)


def test_unknown_workflow_version_is_quarantined(tmp_path):
    rows = real_rows().with_columns(pl.lit("12.7").alias("workflow_version"))
    with pytest.raises(InputError, match="nothing usable remains"):
        read_panoptes(write(rows, tmp_path / "x.csv"), DECALS_WF)


# ------------------------------------------------------------------------------------------ from export to fit
def test_cli_fits_a_raw_export(tmp_path, broken_export):
    runner = CliRunner()
    out = tmp_path / "fit"
    result = runner.invoke(
        app,
        [
            "fit",
            str(broken_export),
            "--workflows",
            str(DECALS_WF),
            "--workflow-id",
            "6122",
            "--model",
            "ds",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    info = json.loads((out / "fit.json").read_text())
    rows = info["export"]
    assert rows["read"] == rows["used"] + rows["quarantined"] + rows["skipped"] == 22
    quarantine = pl.read_csv(out / "quarantine.csv")
    assert quarantine.columns == ["row", "classification_id", "reason"] and quarantine.height == 7
    subjects = pl.read_parquet(out / "subjects.parquet")
    assert "smooth-or-featured" in set(subjects["question"])
    strict = runner.invoke(
        app,
        [
            "fit",
            str(broken_export),
            "--workflows",
            str(DECALS_WF),
            "--workflow-id",
            "6122",
            "--out",
            str(tmp_path / "strict"),
            "--strict",
        ],
    )
    assert strict.exit_code == 2 and "malformed annotations JSON (--strict)" in strict.output


def test_load_votes_gives_tree_answer_sets():
    votes, _export = load_votes(DECALS, workflows=DECALS_WF)
    q = votes.question_code("bar")
    assert votes.answers[q].to_list() == ["strong", "weak", "no"]
    assert votes.provenance["export"]["used"] == 9


@pytest.mark.parametrize("workflows", [DECALS_WF, None])
def test_batches_do_not_change_the_result(broken_export, workflows):
    whole = read_panoptes(broken_export, workflows, workflow_id=6122)
    batched = read_panoptes(broken_export, workflows, workflow_id=6122, batch_rows=3)
    key = ["row", "question"]
    assert batched.votes.sort(key).equals(whole.votes.sort(key))
    assert batched.report.to_dict() == whole.report.to_dict()
    assert batched.report.quarantine.equals(whole.report.quarantine)


@pytest.mark.parametrize("repeats", ["first", "all"])
def test_export_votes_are_built_as_the_general_path_builds_them(broken_export, repeats):
    # the export path orders 100M votes without sorting them; it must give what the general (sorting) path gives
    import numpy as np

    from annostat import Votes

    votes, _ = load_votes(broken_export, workflows=DECALS_WF, workflow_id=6122, repeats=repeats)
    c = votes._codes
    shuffled = np.random.default_rng(0).permutation(votes.n_votes)
    perm = shuffled[np.argsort(c["row"][shuffled], kind="stable")]  # export row order, votes within a row shuffled
    again = Votes.from_codes(
        subject=c["subject"][perm],
        volunteer=c["volunteer"][perm],
        question=c["question"][perm],
        answer=c["answer"][perm],
        row=c["row"][perm],
        time=votes._time.gather(perm),
        subjects=votes.subjects,
        volunteers=votes.volunteers,
        questions=votes.questions,
        answers=votes.answers,
        duplicates="all",
    )
    for name in ("subject", "volunteer", "question", "answer", "row"):
        assert np.array_equal(again._codes[name], c[name]), name
    assert again.report.duplicates == votes.report.duplicates
    assert again.table.equals(votes.table)  # experience included
    assert votes.report.duplicates == (0 if repeats == "first" else votes.report.duplicates)
