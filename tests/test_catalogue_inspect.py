import json

import polars as pl
import pytest
from typer.testing import CliRunner

from annostat import DawidSkene
from annostat.catalogue import make_catalogue
from annostat.cli import app
from annostat.data.io.inspect import inspect_export
from tests.conftest import SHARED

runner = CliRunner()
ZOO = SHARED / "data" / "zooniverse"


@pytest.fixture(scope="module")
def table_fit(tmp_path_factory, small_votes):
    folder = tmp_path_factory.mktemp("fit")
    DawidSkene().fit(small_votes).save(folder)
    return folder


def test_catalogue_counts_fractions_posteriors(table_fit, small_sim):
    cat = make_catalogue(table_fit)
    votes = small_sim.votes
    assert cat.height == votes["subject"].nunique()
    q, answers = "smooth-or-featured", ["artifact", "featured-or-disk", "smooth"]
    expected = votes[votes["question"] == q].groupby(["subject", "answer"]).size().unstack(fill_value=0)
    row = cat.filter(pl.col("subject") == int(expected.index[0])).row(0, named=True)
    for a in answers:
        assert row[f"{q}_{a}"] == expected.loc[expected.index[0], a]
    assert row[f"{q}_total-votes"] == expected.loc[expected.index[0]].sum()
    # fractions sum to 1 where the question was asked and are 0, never blank, where it was not
    edge = "disk-edge-on"
    fractions = cat.select(
        pl.sum_horizontal(f"{edge}_yes_fraction", f"{edge}_no_fraction").alias("s"),
        pl.col(f"{edge}_total-votes").alias("n"),
    )
    assert fractions.filter(pl.col("n") > 0)["s"].round(6).eq(1.0).all()
    assert fractions.filter(pl.col("n") == 0)["s"].eq(0.0).all()
    assert cat.null_count().sum_horizontal().item() == 0
    posteriors = cat.select(pl.sum_horizontal(f"{edge}_yes_posterior", f"{edge}_no_posterior"))
    assert (posteriors.to_series() - 1).abs().max() < 1e-4


def test_catalogue_from_raw_export_in_tree_order(tmp_path):
    out = tmp_path / "fit"
    result = runner.invoke(
        app,
        [
            "fit",
            str(ZOO / "gz-decals" / "classifications.csv"),
            "--workflows",
            str(ZOO / "gz-decals" / "workflow_versions.json"),
            "--out",
            str(out),
            "-q",
        ],
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["catalogue", str(out)])
    assert result.exit_code == 0, result.output
    cat = pl.read_parquet(out / "catalogue.parquet")
    assert cat.columns[1:5] == [
        "smooth-or-featured_smooth",
        "smooth-or-featured_featured-or-disk",
        "smooth-or-featured_artifact",
        "smooth-or-featured_total-votes",
    ]
    assert pl.read_csv(out / "catalogue.csv").height == cat.height == 9


def test_catalogue_of_a_folder_that_is_not_a_fit(tmp_path):
    result = runner.invoke(app, ["catalogue", str(tmp_path)])
    assert result.exit_code == 2 and "not a fit folder" in result.output


def test_inspect_export():
    summary = inspect_export(ZOO / "slsn" / "classifications.csv", ZOO / "slsn" / "workflows.csv")
    assert summary["classifications"] == 7
    assert summary["anonymous_share"] == 1.0
    assert summary["workflows"] == [{"workflow_id": "10", "version": "16.55", "classifications": 7}]
    assert summary["fit_would_keep"]["used"] == 7
    result = runner.invoke(app, ["inspect", str(ZOO / "gz-decals" / "classifications.csv"), "--json"])
    assert result.exit_code == 0
    data = json.loads(result.output)
    assert data["subjects"] == 9 and data["fit_would_keep"]["tree"] is None
