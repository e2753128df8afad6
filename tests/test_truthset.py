"""Truth sets (format version 1): write, read back, and a clear one-line error for each way one can be wrong."""

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from annostat.data.trees import get_tree
from annostat.errors import InputError
from annostat.truth.answers import true_path
from annostat.truth.truthset import _check_truth, empty_truth_row, load_truth_set, true_column, write_truth_set

TREE = "gz-decals-dr5"
MANIFEST = {
    "source": "standin",
    "tree": TREE,
    "bands": ["g", "r", "z"],
    "seed": 3,
    "thresholds": {"bar_strong_a2": 0.3, "bar_weak_a2": 0.15},
}


def rows():
    """A smooth round galaxy, a barred face-on spiral, an edge-on disc: each with its true path filled in."""
    smooth = {"smooth-or-featured": "smooth", "how-rounded": "round", "merging": "none"}
    spiral = {
        "smooth-or-featured": "featured-or-disk",
        "disk-edge-on": "no",
        "has-spiral-arms": "yes",
        "bar": "strong",
        "spiral-winding": "medium",
        "spiral-arm-count": "2",
        "bulge-size": "small",
        "merging": "none",
    }
    edge_on = {
        "smooth-or-featured": "featured-or-disk",
        "disk-edge-on": "yes",
        "edge-on-bulge": "boxy",
        "merging": "minor-disturbance",
    }
    out = []
    for i, answers in enumerate((smooth, spiral, edge_on)):
        row = empty_truth_row(
            f"galaxy-{i}",
            TREE,
            sim="m12i",
            snapshot=600,
            inclination_deg=[0.0, 20.0, 88.0][i],
            a2_max=[0.0, 0.35, 0.1][i],
        )
        row.update({true_column(q): a for q, a in answers.items()})
        out.append(row)
    return pd.DataFrame(out)


def images(truth):
    rng = np.random.default_rng(0)
    return {i: {b: rng.normal(size=(16, 16)).astype(np.float32) for b in MANIFEST["bands"]} for i in truth["image_id"]}


@pytest.fixture()
def truth_set(tmp_path):
    truth = rows()
    return write_truth_set(tmp_path / "ts", MANIFEST, truth, images(truth))


def test_round_trip(truth_set):
    again = load_truth_set(truth_set.root)
    assert again.manifest["schema_version"] == 1 and again.bands == ["g", "r", "z"]
    assert again.manifest["thresholds"]["bar_strong_a2"] == 0.3
    assert again.truth["image"].str.startswith("images/m12i/snapshot_600/").all()
    image = again.read_image("galaxy-1")
    assert set(image) == {"g", "r", "z"} and image["r"].shape == (16, 16) and image["r"].dtype == np.float32
    answers = again.true_answers()
    assert len(answers) == 3 + 8 + 4  # only the questions each true path asks
    assert set(answers[answers["subject"] == "galaxy-2"]["question"]) == {
        "smooth-or-featured",
        "disk-edge-on",
        "edge-on-bulge",
        "merging",
    }
    assert (truth_set.root / "truth.parquet").exists() and truth_set.votes_dir == truth_set.root / "votes"
    subjects = again.subjects()  # image ids as subjects, each with its FITS file: looked up, not searched
    assert list(subjects.ids) == ["galaxy-0", "galaxy-1", "galaxy-2"] and "inclination_deg" in subjects.columns
    assert again.root / subjects.image_of("galaxy-1") == again.image_path("galaxy-1") and again.has_image("galaxy-2")
    with pytest.raises(KeyError, match="no image 'galaxy-9'"):
        again.image_path("galaxy-9")


def _rewrite_manifest(ts, **changes):
    manifest = json.loads((ts.root / "manifest.json").read_text())
    manifest.update(changes)
    for key in [k for k, v in changes.items() if v is ...]:
        del manifest[key]
    (ts.root / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"schema_version": 2}, "schema_version 2 is not supported"),
        ({"source": "illustris"}, "source 'illustris' is not one of fire2, standin"),
        ({"tree": "gz-nope"}, "key 'tree': no tree preset 'gz-nope'"),
        ({"bands": []}, "key 'bands' must be a non-empty list"),
        ({"seed": "zero"}, "key 'seed' must be int, not str"),
        ({"psf": ...}, "key 'psf' missing"),
    ],
)
def test_bad_manifests_are_named(truth_set, changes, message):
    _rewrite_manifest(truth_set, **changes)
    with pytest.raises(InputError, match="manifest.json: " + message.replace("(", r"\(")):
        load_truth_set(truth_set.root)


def test_unreadable_manifest(truth_set):
    (truth_set.root / "manifest.json").write_text("{not json")
    with pytest.raises(InputError, match=r"manifest.json: not valid JSON"):
        load_truth_set(truth_set.root)
    (truth_set.root / "manifest.json").unlink()
    with pytest.raises(InputError, match=r"manifest.json: file not found"):
        load_truth_set(truth_set.root)


def _rewrite_truth(ts, change):
    truth = pd.read_parquet(ts.root / "truth.parquet")
    truth = change(truth)
    truth.to_parquet(ts.root / "truth.parquet", index=False)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda t: t.drop(columns=["true_bar"]), r"column\(s\) 'true_bar' missing"),
        (lambda t: t.assign(image_id=["a", "b", "a"]), r"column 'image_id': 'a' appears more than once"),
        (lambda t: t.assign(redshift=["low"] * 3), r"column 'redshift': must be numeric"),
        (
            lambda t: t.assign(true_bar=[None, "very", None]),
            r"image_id 'galaxy-1', column 'true_bar': 'very' is not an answer of bar \(strong, weak, no\)",
        ),
        (
            lambda t: t.assign(true_bar=["weak", "strong", None]),
            r"image_id 'galaxy-0', column 'true_bar': 'weak', but the true path never asks bar",
        ),
        (
            lambda t: t.assign(**{"true_edge-on-bulge": [None, None, None]}),
            r"image_id 'galaxy-2', column 'true_edge-on-bulge': null, but the true path asks edge-on-bulge",
        ),
    ],
)
def test_bad_truth_tables_are_named(truth_set, change, message):
    _rewrite_truth(truth_set, change)
    with pytest.raises(InputError, match=r"truth.parquet[,:] " + message):
        load_truth_set(truth_set.root)


def test_missing_images_and_bands_are_named(truth_set):
    from astropy.io import fits

    path = truth_set.image_path("galaxy-1")
    with fits.open(path) as hdus:
        fits.HDUList([hdus[0], hdus["g"].copy()]).writeto(path, overwrite=True)
    with pytest.raises(InputError, match=r"galaxy-1.fits: band\(s\) r, z missing \(image_id 'galaxy-1'\)"):
        load_truth_set(truth_set.root)
    path.unlink()
    with pytest.raises(InputError, match=r"image_id 'galaxy-1', column 'image': file .* not found"):
        load_truth_set(truth_set.root)
    assert len(load_truth_set(truth_set.root, check_images=False).truth) == 3


def walk(tree, choices):
    """The true answers of a walk through ``tree`` that picks answers by ``choices`` (question -> index)."""
    answers = {}
    for q in tree.questions:  # tree order: a question's parents are answered before it
        if true_path(tree, answers)[q][0]:
            options = tree.answers(q)
            answers[q] = options[choices.get(q, 0) % len(options)]
    return answers


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.sampled_from(list(get_tree(TREE).questions)), st.integers(0, 5)))
def test_any_walk_through_the_tree_is_a_valid_truth_row(choices):
    tree = get_tree(TREE)
    answers = walk(tree, choices)
    row = empty_truth_row("g", TREE) | {true_column(q): a for q, a in answers.items()}
    _check_truth("truth.parquet", pd.DataFrame([row]), tree)  # raises if the path and the nulls disagree
    assert answers["smooth-or-featured"] and answers["merging"]
