"""The sorting helpers behind the votes table and EM's layout, and the fast paths of reading a table at scale:
repeats found within each subject's votes without a sort, packed sorts, categorical labels coded from their few
distinct values, and a file written ahead on a worker thread."""

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from annostat import Votes
from annostat.data.sorting import repeats_in_runs, sorted_pairs, stable_argsort, stable_sort
from annostat.files import WriteAhead


def reference_repeats(runs, values, rank, last):
    """Every entry but the first (last) in ``rank`` order of each (run, value): by a dictionary."""
    order = np.arange(len(runs)) if rank is None else rank
    keep = {}
    for i, key in enumerate(zip(runs.tolist(), values.tolist())):
        if key not in keep or (order[i] > order[keep[key]]) == last:
            keep[key] = i
    repeat = np.ones(len(runs), bool)
    repeat[list(keep.values())] = False
    return repeat


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 12), st.integers(0, 5)), min_size=1, max_size=300),
    st.booleans(),
    st.booleans(),
    st.integers(1, 40),
    st.randoms(use_true_random=False),
)
def test_repeats_in_runs_keep_one_of_each_value_in_each_run(pairs, timed, last, longest, rnd):
    """Short runs (neighbours compared at each distance, first shifted arrays then positions) and long ones (by a
    sort) find the same repeats as a dictionary does, whichever of each value's entries the rank keeps."""
    pairs.sort(key=lambda p: p[0])  # runs contiguous, values in any order within them
    runs = np.array([p[0] for p in pairs], np.int64)
    values = np.array([p[1] for p in pairs], np.int32)
    rank = None
    if timed:
        rank = np.arange(len(runs))
        rnd.shuffle(rank)
    got = repeats_in_runs(runs, values, rank, last=last, longest=longest)
    assert np.array_equal(got, reference_repeats(runs, values, rank, last))


def test_repeats_in_runs_at_size_with_few_repeats():
    """Many runs of ~10 (the dense passes, then the sparse ones): the repeats planted, and only those."""
    rng = np.random.default_rng(0)
    runs = np.repeat(np.arange(30_000), 10)
    values = (np.arange(len(runs)) % 10 + 10 * rng.integers(0, 1000, len(runs))).astype(np.int32)  # distinct in a run
    planted = rng.choice(30_000, 500, replace=False) * 10 + rng.integers(1, 10, 500)  # one in each of 500 runs
    values[planted] = values[planted - 1]  # each a repeat of its neighbour
    assert np.array_equal(np.flatnonzero(repeats_in_runs(runs, values)), np.sort(planted))


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int32, np.int64, np.uint32])
def test_stable_sort_is_numpys_stable_sort(dtype):
    rng = np.random.default_rng(1)
    keys = rng.integers(0 if dtype == np.uint32 else -40, 40, 50_000).astype(dtype)
    order, in_order = stable_sort(keys)
    assert np.array_equal(order, np.argsort(keys, kind="stable"))
    assert np.array_equal(stable_argsort(keys), order)
    assert in_order is not None and in_order.dtype == keys.dtype and np.array_equal(in_order, np.sort(keys))


def test_sorted_pairs_orders_by_the_first_then_the_second():
    rng = np.random.default_rng(2)
    high = rng.integers(0, 300, 40_000).astype(np.int32)
    low = np.sort(rng.integers(0, 2**31 - 1, 40_000)).astype(np.int32)
    assert np.array_equal(sorted_pairs(high, low), low[np.lexsort((low, high))])


def test_categorical_labels_code_as_their_text():
    """A Parquet dictionary column (polars Categorical) or a pandas category codes as the same labels as text: codes,
    sort order, blank labels read as missing and the row report."""
    text = pl.DataFrame(
        {
            "subject": ["g2", "g1", "g1", "g3", "g3", "g2"],
            "volunteer": ["b", "a", "b", " ", "a", "b"],
            "answer": ["spiral", "smooth", "smooth", "spiral", "edge", "spiral"],
        }
    )
    plain = Votes.from_frame(text)
    for categorical in (text.with_columns(pl.all().cast(pl.Categorical)), text.to_pandas().astype("category")):
        votes = Votes.from_frame(categorical)
        assert votes.report == plain.report  # the blank volunteer missing, the repeat of (b, g2) dropped
        for role in ("subject", "volunteer", "answer", "row"):
            assert np.array_equal(votes.codes(role), plain.codes(role)), role
        assert votes.subjects.to_list() == plain.subjects.to_list() and votes.subjects.dtype == pl.String
        assert votes.answers[0].to_list() == ["edge", "smooth", "spiral"]


def test_write_ahead_places_the_file_or_leaves_nothing(tmp_path):
    target = tmp_path / "fit" / "votes.parquet"
    with WriteAhead(target, lambda tmp: pl.DataFrame({"x": [1, 2]}).write_parquet(tmp)) as ahead:
        assert ahead.place() == target
    assert pl.read_parquet(target)["x"].to_list() == [1, 2]
    assert sorted(p.name for p in target.parent.iterdir()) == ["votes.parquet"]  # no temporary file left

    other = tmp_path / "never" / "votes.parquet"
    with (
        pytest.raises(RuntimeError, match="the fit failed"),
        WriteAhead(other, lambda tmp: pl.DataFrame({"x": [1]}).write_parquet(tmp)),
    ):
        raise RuntimeError("the fit failed")
    assert not other.parent.exists()  # the folder it made goes too

    def broken(tmp):
        raise OSError("disk full")

    with WriteAhead(tmp_path / "fit" / "other.parquet", broken) as failing, pytest.raises(OSError, match="disk full"):
        failing.place()
    assert sorted(p.name for p in target.parent.iterdir()) == ["votes.parquet"]
