"""Sorting helpers shared by the votes table, the EM kernels and the update: sorts, and runs of sorted codes."""

from __future__ import annotations

import sys

import numpy as np
import polars as pl


def argsort_distinct(keys: np.ndarray) -> np.ndarray:
    """Argsort of distinct int64 keys: polars' multithreaded sort (stability is moot when keys are distinct).

    Make keys distinct, and the order deterministic, by folding in the row index: ``key * n + arange(n)``.
    """
    if len(keys) < 2 or bool((keys[1:] > keys[:-1]).all()):  # already in order (e.g. votes sorted by subject)
        return np.arange(len(keys), dtype=np.int64)
    return pl.Series(keys).arg_sort().to_numpy()


def first_of_each(keys: np.ndarray, last: bool = False) -> np.ndarray:
    """For each entry, whether it is the first (``last``: the last) entry with its key, in array order.

    By a stable multithreaded sort (polars) and a comparison of neighbours: at 10M int64 keys ~1.4 s on 2 cores,
    where a hash pass (``is_first_distinct``) takes ~2.4 s."""
    n = len(keys)
    if n == 0:
        return np.zeros(0, bool)
    order, ordered = stable_sort(keys)
    assert ordered is not None
    boundary = run_boundaries(ordered[::-1])[::-1] if last else run_boundaries(ordered)  # last: where runs end
    mark = np.empty(n, bool)
    mark[order] = boundary
    return mark


def stable_argsort(keys: np.ndarray) -> np.ndarray:
    """Stable argsort (ties in array order), as uint32 positions (fewer than 2**32 keys). Keys already in order
    (e.g. votes sorted by subject) are not sorted.

    Keys of at most 32 bits: each key and its position packed in one int64 (key in the high word, position in the
    low), and those sorted by NumPy's vectorised sort of plain numbers, ~2x polars' two-core sort of the keys with
    their row index (1.0 s against 1.8 s at 30M keys); the packed values are distinct, so the order is the stable one
    whatever the sort. Wider keys: polars' multithreaded sort with the row index."""
    return stable_sort(keys, keys_too=False)[0]


def sorted_pairs(high: np.ndarray, low: np.ndarray) -> np.ndarray:
    """The ``low`` values (non-negative, below 2**32) of the pairs (``high``, ``low``) sorted by ``high`` then
    ``low``, ``high`` being 32-bit: each pair packed in one int64 and those sorted (:func:`stable_argsort`'s sort),
    with no positions and no gather. Equal pairs are alike, so the order is the only one."""
    if sys.byteorder != "little" or high.dtype.itemsize > 4:
        key = high.astype(np.int64) * (1 << 32) + low.astype(np.int64)
        return low[stable_argsort(key)]
    return _packed_sort(high, low)[:, 0].astype(low.dtype)


def _packed_sort(high: np.ndarray, low: np.ndarray) -> np.ndarray:
    """Pairs of a signed 32-bit ``high`` and an unsigned 32-bit ``low`` packed one an int64 (high word, low word),
    sorted by NumPy's vectorised sort: the sorted [low word, high word] rows (little-endian only)."""
    packed = np.empty(len(high), np.int64)
    words = packed.view(np.uint32).reshape(-1, 2)  # [low word, high word] of each int64
    words[:, 0] = low
    words[:, 1] = high.astype(np.int32, copy=False).view(np.uint32)  # signed high word: negative keys first
    packed.sort()
    return words


def stable_sort(keys: np.ndarray, keys_too: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """:func:`stable_argsort`'s positions, and the keys in that order (``keys_too``; else None): for 32-bit keys the
    high words of the sorted packed values, with no gather of the keys."""
    if len(keys) < 2 or bool((keys[1:] >= keys[:-1]).all()):
        return np.arange(len(keys), dtype=np.int64), keys if keys_too else None
    narrow = keys.dtype.kind == "i" and keys.dtype.itemsize <= 4
    if narrow and len(keys) < 2**32 and sys.byteorder == "little":
        words = _packed_sort(keys, np.arange(len(keys), dtype=np.uint32))
        in_order = words[:, 1].view(np.int32).astype(keys.dtype) if keys_too else None
        return words[:, 0].copy(), in_order
    order = pl.DataFrame({"key": keys}).with_row_index("at").sort("key", maintain_order=True)["at"].to_numpy()
    return order, keys[order] if keys_too else None


def run_boundaries(codes: np.ndarray) -> np.ndarray:
    """For codes sorted into runs (equal codes contiguous): whether each entry begins a run (one pass, no sort);
    ``np.flatnonzero`` of it gives where the runs start."""
    boundary = np.empty(len(codes), bool)
    if len(codes):
        boundary[0] = True
        np.not_equal(codes[1:], codes[:-1], out=boundary[1:])
    return boundary


def subject_runs(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For codes sorted into runs (a question's votes, sorted by subject): the run's codes, each code's run number
    (int32, as ``models.base.local_codes`` numbers them) and where each run starts; one pass, no sort."""
    boundary = run_boundaries(codes)
    starts = np.flatnonzero(boundary)
    number = np.cumsum(boundary, dtype=np.int32)
    number -= 1
    return codes[starts], number, starts


def run_members(starts: np.ndarray, ends: np.ndarray, chosen: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The positions of the members of the runs ``chosen`` (runs given by their ``starts`` and ``ends``), and each
    member's place among ``chosen``: the votes of some subjects, without a pass over every vote."""
    first = starts[chosen]
    lengths = ends[chosen] - first
    total = int(lengths.sum())
    place = np.repeat(np.arange(len(chosen), dtype=np.int32), lengths)
    shift = first - (np.cumsum(lengths) - lengths)  # a member's position: its place in the list plus its run's shift
    dtype = np.int64 if len(ends) and int(ends.max()) >= 2**31 else np.int32
    members = np.arange(total, dtype=dtype) + shift.astype(dtype)[place]
    return members, place


def repeats_in_runs(
    runs: np.ndarray, values: np.ndarray, rank: np.ndarray | None = None, last: bool = False, longest: int = 32
) -> np.ndarray:
    """For entries sorted into runs (``runs``: each entry's run key, equal keys contiguous), whether each is a
    repeat: an entry of its run whose value another entry of the run has too, and that comes later (``last``:
    earlier) in ``rank`` order (default: array order). Of each run's entries with one value, the first (``last``:
    the last) is not a repeat, so ``~repeats`` keeps one of each, as :func:`first_of_each` does.

    Runs of at most ``longest`` entries (a subject's votes on one question) are compared with their neighbours at
    distance 1, 2, ... within the run, with no sort: while most entries have a neighbour that far back in their run,
    by comparing the whole array with itself shifted (sequential reads), then only the entries that do. The entries
    of longer runs are sorted by (run, value, rank) and compared with their neighbours."""
    n = len(values)
    repeat = np.zeros(n, bool)
    if n < 2:
        return repeat
    starts = np.flatnonzero(run_boundaries(runs))
    lengths = np.diff(np.append(starts, n))
    index: type[np.signedinteger] = np.int32 if n < 2**31 else np.int64

    def mark(a: np.ndarray, b: np.ndarray) -> None:  # pairs of one value in one run, a before b in array order
        b_later = np.ones(len(b), bool) if rank is None else rank[b] > rank[a]
        repeat[np.where(b_later != last, b, a)] = True

    # entries with a neighbour d back in their (short) run, for each d
    per_length = np.bincount(np.minimum(lengths, longest + 1), minlength=longest + 2)[: longest + 1]
    behind = [int(sum((L - d) * int(per_length[L]) for L in range(d + 1, longest + 1))) for d in range(longest)]
    distance = 1
    if distance < longest and behind[distance] > n // 8:  # most entries: the array against itself shifted
        near = np.arange(n, dtype=index)  # each entry's place in its run, capped at 127 (longest <= 127 here)
        near -= np.repeat(starts.astype(index), lengths)
        np.minimum(near, 127, out=near)
        near = near.astype(np.int8)
        same, inside = np.empty(n - 1, bool), np.empty(n - 1, bool)  # reused: no fresh pages each distance
        while distance < min(longest, 127) and behind[distance] > n // 8:
            m = n - distance
            np.equal(values[distance:], values[:-distance], out=same[:m])
            np.greater_equal(near[distance:], distance, out=inside[:m])
            same[:m] &= inside[:m]
            earlier = np.flatnonzero(same[:m]).astype(index)
            if len(earlier):
                mark(earlier, earlier + distance)
            distance += 1
        del near, same, inside
    # the few entries left (those at least `distance` into a short run): by their positions, run by run
    left = np.flatnonzero((lengths > distance) & (lengths <= longest))
    first = starts[left]
    candidates, place = run_members(first + distance, first + lengths[left], np.arange(len(left)))
    place = (candidates - first[place]).astype(index)  # each candidate's place in its run
    candidates = candidates.astype(index)
    while len(candidates):
        earlier = candidates - distance
        same = values[candidates] == values[earlier]
        if same.any():
            mark(earlier[same], candidates[same])
        distance += 1
        further = place >= distance
        candidates, place = candidates[further], place[further]
    long_runs = np.flatnonzero(lengths > longest)
    if len(long_runs):
        entries, run = run_members(starts[long_runs], starts[long_runs] + lengths[long_runs], np.arange(len(long_runs)))
        repeat[entries] = _repeats_by_sort(run, values[entries], rank, entries, last)
    return repeat


def _repeats_by_sort(
    run: np.ndarray, values: np.ndarray, rank: np.ndarray | None, entries: np.ndarray, last: bool
) -> np.ndarray:
    """:func:`repeats_in_runs` for the ``entries`` of long runs (their run numbers and values): one stable sort by
    (run, value) of the entries in ``rank`` order, and a comparison of neighbours."""
    in_rank = np.arange(len(entries)) if rank is None else np.argsort(rank[entries], kind="stable")
    key = run.astype(np.int64)[in_rank]
    key *= int(values.max()) + 1
    key += values[in_rank]
    first = first_of_each(key, last=last)
    repeat = np.empty(len(entries), bool)
    repeat[in_rank] = ~first
    return repeat


def take_columns(columns: dict[str, np.ndarray], which: np.ndarray) -> dict[str, np.ndarray]:
    """Each column's entries ``column[which]``, ``which`` positions (a gather) or booleans (a filter): every column at
    once by polars, a column a thread (at 30M votes and five columns a gather ~2.5x numpy's, whose random reads run
    on one core)."""
    if len(which) < 1 << 16:
        return {name: values[which] for name, values in columns.items()}
    frame = pl.DataFrame(columns)
    if which.dtype == np.bool_:
        frame = frame.filter(pl.Series(which))
    else:
        frame = frame.select(pl.all().gather(which))
    return {name: frame[name].to_numpy() for name in columns}
