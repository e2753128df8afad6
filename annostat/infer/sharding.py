"""Data parallelism over devices: the subjects (with their votes) split over a one-axis device mesh.

Every fit annostat makes is a sum over subjects: Dawid-Skene's expected counts, the Bayesian models' evidence lower
bound, the joint model's loss. So the subjects are cut into contiguous blocks, one per device, each with its own
votes; everything per subject (posteriors, votes, a network's inputs) stays on its device, the parameters (the
volunteers' confusions, a guide's parameters, a network's weights) are the same on every device, and the sums are
taken across devices: explicitly with ``psum`` inside ``jax.shard_map`` for the EM kernel, by XLA's partitioner for
gradients of functions of arrays sharded with a :class:`jax.sharding.NamedSharding`.

The devices are those JAX sees: several GPUs, or CPU devices made with ``JAX_NUM_CPU_DEVICES=4`` (or the
``jax_num_cpu_devices`` option) before JAX starts. One device means no sharding at all (the single-device kernels).

Example:
    >>> from annostat.infer.sharding import device_mesh, subject_blocks
    >>> device_mesh(1) is None  # one device: the single-device path
    True
    >>> subject_blocks(np.array([0, 0, 0, 1, 2, 2, 3, 3]), 4, 2).tolist()  # subjects 0-1 and 2-3, 4 votes each
    [0, 2, 4]
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from functools import lru_cache, partial
from typing import TYPE_CHECKING, Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

if TYPE_CHECKING:
    import optax

AXIS = "subjects"  # the mesh's one axis: subjects (and their votes) are split along it


def device_mesh(devices: int | None = None) -> Mesh | None:
    """A one-axis mesh over the first ``devices`` devices (all of them when ``None``); ``None`` for one device.

    Raises ``ValueError`` when more devices are asked for than JAX sees."""
    available = jax.devices()
    n = len(available) if devices is None else int(devices)
    if n < 1 or n > len(available):
        raise ValueError(
            f"{n} devices asked for; JAX sees {len(available)} ({available[0].platform}); more CPU "
            "devices come from JAX_NUM_CPU_DEVICES=N set before JAX starts"
        )
    if jax.process_count() > 1 and n != len(available):  # every process's devices, or some would hold no shard
        raise ValueError(
            f"{n} devices asked for; a fit over {jax.process_count()} processes uses all "
            f"{len(available)} of their devices"
        )
    if n == 1:
        return None
    return Mesh(np.array(available[:n]), (AXIS,))


def subject_blocks(subject: np.ndarray, n_subjects: int, n_shards: int) -> np.ndarray:
    """Boundaries (``n_shards + 1`` subject codes) of contiguous blocks of subjects with about equal numbers of
    votes; ``subject`` holds each vote's subject code, sorted. Every block holds at least one subject while they
    last."""
    if n_subjects <= n_shards:  # a subject a block, then empty blocks
        return np.minimum(np.arange(n_shards + 1), n_subjects).astype(np.int64)
    cumulative = np.cumsum(np.bincount(subject, minlength=n_subjects))
    targets = np.arange(1, n_shards) * (cumulative[-1] / n_shards)
    first = np.searchsorted(cumulative, targets, side="left")  # the subject whose votes reach the target
    before = np.where(first > 0, cumulative[np.maximum(first - 1, 0)], 0)
    # end the block after that subject, or before it, whichever is nearer the target
    inner = np.where(cumulative[np.minimum(first, n_subjects - 1)] - targets <= targets - before, first + 1, first)
    bounds = np.concatenate([[0], inner, [n_subjects]]).astype(np.int64)
    for i in range(1, n_shards):  # in order, and at least one subject a block
        bounds[i] = min(max(bounds[i], bounds[i - 1] + 1), n_subjects - (n_shards - i))
    return bounds


def split(mesh: Mesh) -> NamedSharding:
    """The sharding of an array whose first axis runs over the subjects (or their votes), block by block."""
    return NamedSharding(mesh, PartitionSpec(AXIS))


def replicated(mesh: Mesh) -> NamedSharding:
    """The sharding of an array held whole on every device (parameters)."""
    return NamedSharding(mesh, PartitionSpec())


def total(x: jax.Array) -> jax.Array:
    """Sum over the devices of the mesh, inside ``shard_map``: the one collective the EM kernel needs."""
    return jax.lax.psum(x, AXIS)


@lru_cache(maxsize=32)
def _em_kernel(mesh: Mesh, layout: Any, elbo_mode: bool, evidence: bool):
    """``annostat.infer.em._em_iterations`` with the subjects split over ``mesh`` (compiled on first call), for
    shards of ``layout`` (``annostat.infer.em.Layout``)."""
    from annostat.infer.em import _em_iterations

    shard, whole = PartitionSpec(AXIS), PartitionSpec()
    state = (shard, whole, whole, whole, whole, whole) + ((whole,) if evidence else ())
    data = (shard, shard, shard, shard, shard, whole, shard, shard) + ((shard,) if evidence else ())
    settings = (whole,) * (7 if evidence else 5)
    body = partial(_em_iterations, **layout.static, elbo_mode=elbo_mode, total=total)
    return jax.jit(
        jax.shard_map(
            body, mesh=mesh, in_specs=(state, data, settings, whole), out_specs=(state, whole, whole, (whole,) * 3)
        )
    )


def local_devices(mesh: Mesh) -> list:
    """The devices of ``mesh`` this process drives, in the mesh's order (all of them with one process)."""
    me = jax.process_index()
    return [d for d in mesh.devices.flat if d.process_index == me]


def place(mesh: Mesh, local: np.ndarray) -> jax.Array:
    """A subjects-split array from this process's part (its devices' blocks, in order): with one process the
    whole array, with several (``annostat.infer.hosts``) each process's share of the subjects."""
    return jax.make_array_from_process_local_data(split(mesh), local)


def em_layout(
    mesh: Mesh,
    subject: np.ndarray,
    volunteer: np.ndarray,
    answer: np.ndarray,
    init: np.ndarray,
    log_evidence: np.ndarray | None,
    vmask: np.ndarray,
    K: int,
    elbo_mode: bool,
) -> tuple[list[tuple[int, int]], int, tuple[Any, tuple], Any]:
    """The subjects' blocks, the padded subjects a shard, the starting posteriors and data placed on the devices,
    and the EM kernel, for :func:`annostat.infer.em.dawid_skene_em` on a mesh.

    Each of this process's devices gets a block of its subjects with about an equal share of its votes, padded to a
    size shared by all shards of all processes (one compiled kernel); volunteers keep their global codes (their
    confusions are summed over shards), and ``vmask`` (which of the padded volunteers are real) is held whole on
    every device. With several processes the subjects are this process's share (``annostat.infer.hosts``)."""
    from dataclasses import replace

    from annostat.infer import hosts
    from annostat.infer.em import block_sizes, bucket, layout_of, run_lengths, shard_arrays

    S, n_vol_pad = len(init), len(vmask)
    n_local = len(local_devices(mesh))
    bounds = subject_blocks(subject, S, n_local)
    vote_bounds = np.searchsorted(subject, bounds, side="left")
    blocks = [(int(a), int(b)) for a, b in itertools.pairwise(bounds)]
    vote_slices = [slice(int(va), int(vb)) for va, vb in itertools.pairwise(vote_bounds)]
    lengths = [
        run_lengths(subject[p] - a, volunteer[p], answer[p], b - a, n_vol_pad, K)
        for (a, b), p in zip(blocks, vote_slices)
    ]
    # every shard of every process the same layout: block sizes agreed first (the largest: any is exact), then sizes
    e_block, m_block = hosts.agree_max(*block_sizes(lengths))
    mine = layout_of(lengths, bucket(max(b - a for a, b in blocks) + 1), n_vol_pad, K, (e_block, m_block))
    n_subj_pad, e_blocks_pad, m_blocks_pad, m_runs_pad = hosts.agree_max(
        mine.n_subj_pad, mine.e_blocks_pad, mine.m_blocks_pad, mine.m_runs_pad
    )
    layout = replace(
        mine, n_subj_pad=n_subj_pad, e_blocks_pad=e_blocks_pad, m_blocks_pad=m_blocks_pad, m_runs_pad=m_runs_pad
    )
    shards = []
    for (a, b), p, shard_lengths in zip(blocks, vote_slices, lengths):
        shards.append(
            shard_arrays(
                subject[p] - a,
                volunteer[p],
                answer[p],
                init[a:b],
                None if log_evidence is None else log_evidence[a:b],
                layout,
                shard_lengths,
            )
        )
    T0 = np.concatenate([t for t, _ in shards])

    def joined(parts):  # the shards' parts of one column, one after another (each slot of a blocked column apart)
        if isinstance(parts[0], tuple):
            return tuple(place(mesh, np.concatenate(slot)) for slot in zip(*parts))
        return place(mesh, np.concatenate(parts))

    columns = [joined(parts) for parts in zip(*(d for _, d in shards))]
    data = tuple(columns[:5]) + (vmask,) + tuple(columns[5:])
    kernel = _em_kernel(mesh, layout, bool(elbo_mode), log_evidence is not None)
    return blocks, n_subj_pad, (place(mesh, T0), data), kernel


# ---------------------------------------------------------------------------------------------- SVI over devices
def svi_layout(mesh: Mesh, arrays: dict, batch: int | None) -> tuple[dict, int, int]:
    """``SubjectVotes.device`` arrays split over ``mesh`` in equal blocks of subjects (padded with subjects without
    votes: mask all false, so they add nothing to the likelihood), with the subjects a block and the subjects each
    device draws a step (its share of ``batch``; its whole block when ``batch`` is ``None``)."""
    n = mesh.size
    S = len(arrays["subject"])
    local = -(-S // n)
    pad = local * n - S

    def padded(name, x):
        x = np.asarray(x)
        if not pad:
            return x
        if name == "subject":
            extra = np.arange(S, S + pad, dtype=x.dtype)
        elif name == "prior_weight_max":
            extra = np.full(pad, x[0], x.dtype)
        elif name == "known_answer":  # padded subjects have no known answer (a known one would add its log prior)
            extra = np.full(pad, -1, x.dtype)
        else:
            extra = np.zeros((pad,) + x.shape[1:], x.dtype)
        return np.concatenate([x, extra])

    from annostat.infer.bayes import VOLUNTEER_ARRAYS

    placed = {
        k: jax.device_put(np.asarray(v), replicated(mesh))
        if k in VOLUNTEER_ARRAYS
        else jax.device_put(padded(k, v), split(mesh))
        for k, v in arrays.items()
    }
    local_batch = local if batch is None else max(-(-int(batch) // n), 1)
    return placed, local, local_batch


def mean_over_devices() -> optax.GradientTransformation:
    """An optax transformation that averages the gradients over the mesh's devices (inside ``shard_map``): put first
    in the chain, every device then applies the same update to the same parameters."""
    import optax

    def update(updates, state, params=None):
        return jax.tree.map(lambda g: jax.lax.pmean(g, AXIS), updates), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


def data_parallel(mesh: Mesh, fn: Callable[..., Any], data_args: tuple[int, ...]) -> Callable[..., Any]:
    """``fn`` compiled to run on every device of ``mesh`` at once: the arguments at ``data_args`` split by subjects
    (every leaf's first axis), the others and the results the same on every device."""
    import inspect

    n_args = len(inspect.signature(fn).parameters)
    specs = tuple(PartitionSpec(AXIS) if i in data_args else PartitionSpec() for i in range(n_args))
    # the results (parameters, optimiser state, averaged losses) are the same on every device by construction:
    # pmean'd gradients applied to equal parameters; JAX cannot prove it through NumPyro's code, so it is not checked
    return jax.jit(jax.shard_map(fn, mesh=mesh, in_specs=specs, out_specs=PartitionSpec(), check_vma=False))
