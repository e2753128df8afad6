"""Dawid-Skene expectation-maximisation in JAX: one question, ragged long-format votes.

Data: for each vote n, a subject s_n (votes sorted by subject), a volunteer v_n and an answer l_n in 0..K-1.
Parameters: answer priors pi (K) and per-volunteer confusion theta_v (K true answers x K given answers).

- M-step: expected counts C[v, k, l] = sum over v's votes with answer l of T[s_n, k], by sums over the votes sorted
  by (volunteer, answer) (blocks of a few votes, then runs of at most ``PART`` votes, then the runs of each cell, so
  float32 keeps a prolific volunteer's counts accurate); theta_v[k, :] = max(C[v, k, :] + A[k, :], eps)
  normalised, with A the Dirichlet pseudo-counts (MAP under a Dirichlet(A + 1) prior on each row);
  pi = (sum_s T[s] + a0) normalised.
- E-step: log T[s, k] = log pi_k + sum over s's votes of log theta_{v_n}[k, l_n] (the shared volunteer likelihood,
  ``annostat.models.likelihood``: blocks of a few votes of one subject, then one sorted segment sum over the
  blocks), normalised in log space; the marginal log-likelihood of the votes is the sum over subjects of
  logsumexp_k.
- With a classifier's evidence (``log_evidence`` r [S, K], ``annostat.data.priors``) subject s's prior is
  log softmax(log pi + w r_s) (``likelihood.evidence_log_prior``) and the M-step for (pi, w) maximises
  sum_s sum_k T[s, k] log softmax(log pi + w r_s)_k + a0 sum_k log pi_k, a multinomial logistic regression with
  fixed offsets, concave, by a few Newton steps per iteration (warm-started; w kept in [0, w_max], or fixed at
  w_max): the votes say how far to trust the classifier, so an over-confident one is tempered and a wrong one
  ignored (w -> 0), as temperature scaling calibrates a network (Guo et al. 2017), here against the votes.

Both passes read the votes in **blocks** (:func:`blocked`): a subject's (or a cell's) votes split into blocks of
``b`` votes, the last padded with votes that count nothing, laid out slot by slot, so that a block's sum is ``b``
contiguous gathers added together and the scatter-add (sequential on a CPU) runs over blocks, not votes. ``b`` is
chosen per question from the numbers of votes (:func:`block_size`): 2-5 where subjects have ten votes or more,
1 (vote by vote) where padding would cost more than it saves, and below :data:`BLOCKED_FROM` votes. The kernel takes
each slot as an array of its own (:func:`slots`), so it copies no slice of the votes and compiles fewer loops.

What an iteration costs on a CPU is mostly its gathers: the rows gathered (the posteriors in the M-step, the log
confusions in the E-step) are padded to a power-of-two width while the table is small, one aligned load each; the
confusions are kept in the E-step's layout (rows (volunteer, answer) of K true answers, ``likelihood.confusion_rows``) from the M-step's counts
on, so no transposes run between the two; sums and maxima over a few answers go column by column
(``likelihood.sum_over_answers``); a large table of posteriors is read in ranges of subjects
(:func:`subject_ranges`). At 2M votes (ten a subject) on 2 CPU cores an iteration takes ~16 ms (profiled with
``jax.profiler``: ~7 ms of it the gathers, ~2.5 ms the scatter-adds), ~20 ms before those changes; at 10M votes
~65 ms (~100 ms before).

Everything runs in float32 inside jit-compiled ``lax.while_loop`` chunks of iterations, so arrays stay on the device
and Python is visited only every few iterations (for progress reports). Array sizes are padded up to a few fixed
"buckets" so that fits of similar size reuse one compiled kernel: padding blocks belong to a padded subject and a
padded volunteer that take no part in the priors or the log-likelihood. Scatter-adds on CPU are sequential, so results are
deterministic.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np

from annostat.data.sorting import run_boundaries, sorted_pairs
from annostat.models import likelihood
from annostat.models.likelihood import IN_BOUNDS

if TYPE_CHECKING:
    from annostat.models.likelihood import AnyArray

CHUNK = 10  # iterations per compiled call; progress is reported between chunks


def bucket(n: int, minimum: int = 16) -> int:
    """Round ``n`` up to the next of 16, 20, 24, 28, 32, 40, 48, 56, 64, ...: at most 25% padding."""
    n = max(int(n), minimum)
    e = max(int(np.floor(np.log2(n))) - 2, 0)
    step = 1 << e
    return int(-(-n // step) * step)


@dataclass
class EMResult:
    """What one EM fit of one question returns (numpy arrays, unpadded)."""

    posteriors: np.ndarray  # [S, K] p(true answer | votes)
    confusion: np.ndarray  # [V, K, K] p(answer | true answer)
    counts: np.ndarray  # [V, K, K] expected votes per (true answer, answer): confusion = normalised(counts + pseudo)
    priors: np.ndarray  # [K]
    log_likelihood: np.ndarray  # per iteration: marginal log-likelihood of the votes
    log_prior: np.ndarray  # per iteration: log density of the Dirichlet priors (up to a constant)
    elbo: np.ndarray  # per iteration, crowd-kit mode only: its evidence lower bound (-inf first; NaN otherwise)
    converged: bool
    prior_weight: float | None = None  # the weight given to a classifier's evidence (with evidence only)


def _single(x):
    """The sum over shards when there is one: itself."""
    return x


PART = 1024  # votes of one (volunteer, answer) cell summed at a time (float32 partial sums stay small)

#: votes a block may hold (:func:`block_size` picks one per layout)
BLOCK_SIZES = (1, 2, 3, 4, 5)
#: what a block's scatter-add costs, in votes gathered (measured at 2M votes on 2 CPU cores: a vote's gather ~1 ms a
#: million, a block's scatter-add ~2.5 ms a million)
BLOCK_COST = 2.5
#: fewer votes than this are read vote by vote: a small fit's iterations take microseconds, and one layout for every
#: size lets fits (and a tree's questions) of similar size share one compiled kernel
BLOCKED_FROM = 1 << 17


def block_size(run_lengths: np.ndarray) -> int:
    """The block size of :data:`BLOCK_SIZES` with the least cost for runs (a subject's or a cell's votes) of these
    lengths: blocks x (block size + :data:`BLOCK_COST`), padding included."""
    lengths = np.asarray(run_lengths, np.int64)
    lengths = lengths[lengths > 0]
    if not len(lengths):
        return 1
    return min(BLOCK_SIZES, key=lambda b: n_blocks(lengths, b) * (b + BLOCK_COST))


def blocks_per_run(run_lengths: np.ndarray, b: int) -> np.ndarray:
    """The blocks of ``b`` votes each run (a subject's or a cell's votes) of these lengths takes: ceil(length / b)."""
    return -(-np.asarray(run_lengths, np.int64) // b)


def n_blocks(run_lengths: np.ndarray, b: int) -> int:
    """How many blocks of ``b`` votes runs of these lengths take."""
    return int(blocks_per_run(run_lengths, b).sum())


def blocked(values: np.ndarray, lengths: np.ndarray, b: int, n_blocks_pad: int, fill: int) -> np.ndarray:
    """``values`` (one a vote, in runs of ``lengths``: a subject's or a cell's votes) in blocks of ``b``: each run
    split into blocks, the last of a run padded with ``fill``, and room for ``n_blocks_pad`` blocks (padding blocks
    all ``fill``). The flat layout [b * n_blocks_pad], slot by slot: slot j of every block, then slot j + 1
    (``reshape(b, -1)[j]`` is contiguous). The blocks follow the runs: run r's are the next
    ``ceil(lengths[r] / b)`` (:func:`block_owners`)."""
    n = len(values)
    flat = np.full(b * n_blocks_pad, fill, np.int32)
    if b == 1 or n == 0:
        flat[:n] = values
        return flat
    lengths = np.asarray(lengths, np.int64)
    per_run = blocks_per_run(lengths, b)
    pad = per_run * b - lengths
    where = np.repeat((np.cumsum(pad) - pad).astype(np.int32), lengths)  # int32: at 100M votes, 400 MB
    where += np.arange(n, dtype=np.int32)  # each value's place with every run padded to whole blocks
    real = int(per_run.sum())
    padded = np.full(real * b, fill, np.int32)
    padded[where] = values
    del where
    flat.reshape(b, n_blocks_pad)[:, :real] = padded.reshape(real, b).T
    return flat


def slots(flat: np.ndarray, b: int) -> tuple[np.ndarray, ...]:
    """The layout of :func:`blocked` as ``b`` arrays, slot j of every block in the j-th (views of ``flat``): the EM
    kernel takes them apart, so that it gathers each slot with no slice of the whole to copy or to compile."""
    return tuple(flat.reshape(b, -1))


def block_owners(lengths: np.ndarray, b: int) -> np.ndarray:
    """The run (int32) each block of :func:`blocked` belongs to."""
    return np.repeat(np.arange(len(lengths), dtype=np.int32), blocks_per_run(lengths, b))


def n_parts_pad(n_blocks_pad: int, n_runs_pad: int, b: int = 1) -> int:
    """Room for the partial sums of the M-step: one a run of a cell's votes (``n_runs_pad``, at least: a cell's votes
    in each range of subjects, :func:`subject_ranges`), plus one for every ``PART`` votes (blocks of ``b``)."""
    return n_runs_pad + n_blocks_pad // (PART // b) + 1


#: the M-step gathers each vote's posteriors from the table of them, [S, K]: a table larger than this (bytes) is read
#: in ranges of subjects of about this size, the M-step's votes in order of range first (then cell, then subject),
#: so that one range's gathers find more of its posteriors in the CPU's cache (at 10M votes, a million subjects'
#: posteriors take 12 MB: in two ranges the M-step's gathers take 20 ms instead of 39 ms on 2 CPU cores)
M_RANGE_BYTES = 6 << 20
#: ...but no more ranges than leave a cell's votes in runs of this many on average: each range splits the cells'
#: runs, so adds blocks, padding and partial sums
RUN_VOTES = 8


def subject_ranges(n_subjects: int, K: int, n_votes: int, n_cells: int) -> np.ndarray:
    """Boundaries (subject codes, int64) of the ranges of subjects the M-step reads the posteriors in: one range
    while the posteriors [S, K] take at most :data:`M_RANGE_BYTES` in float32, else ranges of about that size, at
    most one for every :data:`RUN_VOTES` votes of a cell (``n_votes / n_cells``)."""
    S = int(n_subjects)
    by_size = -(-(S * K * 4) // M_RANGE_BYTES)
    by_runs = int(n_votes) // (RUN_VOTES * max(int(n_cells), 1))
    n = max(1, min(by_size, by_runs))
    return np.minimum(np.arange(n + 1, dtype=np.int64) * -(-S // n), S)


def _counts(T, m_subjects, m_part, part_cell, n_vol_pad, K):
    """Expected counts C[v, l, k] (in the layout of ``likelihood.confusion_rows``: cells (v, l) of K true answers):
    sum of T[s_n, k] over volunteer v's votes with answer l, in three stages: blocks
    of a few votes of one cell (``m_subjects``, the slots of :func:`blocked`; padding slots point past the
    last subject and add nothing), runs of blocks of at most ``PART`` votes (``m_part``), then the runs of each cell
    (``part_cell``). One scatter-add of a prolific volunteer's million votes in float32 rounds every addition to a
    sum near 5e5 (to ~0.03): the count drifts by ~3e-6 of itself, and EM's iterations carry that into the
    volunteer's subjects (at 10M votes, fits whose sums were taken in another order, on two processes, differed by
    2.6e-4 in a confusion after 10 iterations; with the runs 1.1e-6, ``benchmarks/ds_hosts.py``). The runs keep
    every sum small: ~4e-7 at a million votes."""
    blocks = likelihood.blocked_row_sums(T, m_subjects)
    parts = jax.ops.segment_sum(blocks, m_part, num_segments=len(part_cell), indices_are_sorted=True, mode=IN_BOUNDS)
    counts = jax.ops.segment_sum(parts, part_cell, num_segments=n_vol_pad * K, indices_are_sorted=False, mode=IN_BOUNDS)
    return counts.reshape(n_vol_pad, K, K)


def log_confusion_rows_from_counts(counts: AnyArray, pseudo: AnyArray, eps: float | AnyArray) -> jax.Array:
    """The M-step of the confusions, in the layout the E-step reads: log theta [V, K (answer l), K (true answer k)]
    from expected counts and Dirichlet pseudo-counts in that layout: for each true answer k, max(counts + pseudo,
    eps) over the answers l normalised (MAP under Dirichlet(pseudo + 1))."""
    theta = jnp.maximum(counts + pseudo, eps)
    return jnp.log(theta) - jnp.log(likelihood.sum_over_answers(theta, axis=-2))[..., None, :]


def log_confusion_from_counts(counts: AnyArray, pseudo: AnyArray, eps: float | AnyArray) -> jax.Array:
    """The M-step of the confusions: log theta [V, K, K] from expected counts [V, K, K] (rows the true answer) and the
    Dirichlet pseudo-counts [K, K]: each row max(counts + pseudo, eps) normalised (MAP under Dirichlet(pseudo + 1));
    :func:`log_confusion_rows_from_counts` in the confusions' own layout."""
    pseudo = jnp.broadcast_to(jnp.asarray(pseudo), jnp.shape(counts))
    rows = log_confusion_rows_from_counts(jnp.swapaxes(counts, -1, -2), jnp.swapaxes(pseudo, -1, -2), eps)
    return jnp.swapaxes(rows, -1, -2)


def log_priors_from_totals(totals: AnyArray, prior_pseudo: AnyArray, eps: float | AnyArray) -> jax.Array:
    """The M-step of the answer prior: log pi [K] from the posteriors summed over subjects [K] and the pseudo-count."""
    pi = jnp.maximum(totals + prior_pseudo, eps)
    return jnp.log(pi) - jnp.log(pi.sum())


def answer_totals(T: AnyArray, smask: AnyArray) -> jax.Array:
    """[K]: the posteriors [S, K] of the subjects in ``smask`` summed, answer by answer (one reduction over the
    subjects a column: XLA's CPU reduction of [S, K] to [K] is several times slower)."""
    return jnp.stack([jnp.sum(T[:, k] * smask) for k in range(T.shape[1])])


def _m_step(T, m_subjects, m_part, part_cell, smask, n_vol_pad, K, pseudo, prior_pseudo, eps, total=_single):
    counts = total(_counts(T, m_subjects, m_part, part_cell, n_vol_pad, K))
    log_theta = log_confusion_rows_from_counts(counts, pseudo, eps)
    log_pi = log_priors_from_totals(total(answer_totals(T, smask)), prior_pseudo, eps)
    return log_pi, log_theta, counts


NEWTON_STEPS = 4  # Newton steps of the prior's M-step per EM iteration (warm-started from the last iteration)


def _prior_m_step(T, smask, r, log_pi, w, a0, w_max, learn, total=_single):
    """M-step of the answer prior with a classifier's evidence: (log pi, w) maximising
    sum_s T_s . log softmax(log pi + w r_s) + a0 sum log pi, by Newton steps on (log pi_1.., w) (log pi_0 fixed:
    softmax is unchanged by a shift); w stays in [0, w_max], or at w_max when not learned. ``total`` sums the
    subjects' terms over shards."""
    K = T.shape[1]
    Tm = T * smask[:, None]
    target, observed_w = total((Tm.sum(axis=0), (Tm * r).sum()))
    b = log_pi
    for _ in range(NEWTON_STEPS):
        P = jax.nn.softmax(b[None, :] + w * r, axis=1) * smask[:, None]
        q = jax.nn.softmax(b)
        pr = (P * r).sum(axis=1)
        P_sum, PP, Pr, PPr, g_w_part, H_ww_part = total(
            (
                P.sum(axis=0),
                P.T @ P,
                (P * r).sum(axis=0),
                (P * pr[:, None]).sum(axis=0),
                pr.sum(),
                (P * r * r).sum() - (pr**2).sum(),
            )
        )
        g_b = target - P_sum + a0 - jnp.sum(a0) * q
        g_w = jnp.where(learn, observed_w - g_w_part, 0.0)
        H_bb = -(jnp.diag(P_sum) - PP) - jnp.sum(a0) * (jnp.diag(q) - jnp.outer(q, q))
        H_bw = jnp.where(learn, -(Pr - PPr), 0.0)
        H_ww = jnp.where(learn, -H_ww_part, -1.0)
        H = jnp.block([[H_bb[1:, 1:], H_bw[1:, None]], [H_bw[None, 1:], H_ww[None, None]]])
        step = jnp.linalg.solve(H - 1e-6 * jnp.eye(K), -jnp.concatenate([g_b[1:], g_w[None]]))
        b = b.at[1:].add(step[:-1])
        w = jnp.where(learn, jnp.clip(w + step[-1], 0.0, w_max), w_max)
    return jax.nn.log_softmax(b), w


def _e_step(log_prior, log_theta, e_cells, e_subject, smask, n_subj_pad, total=_single):
    """Posteriors [S, K], the marginal log-likelihood of the votes, and the joint [S, K]; ``log_prior`` is
    [K] or [S, K], ``e_cells`` the votes' cells (volunteer, answer) in blocks of a subject's votes, slot by slot
    (:func:`slots`), ``e_subject`` each block's subject."""
    block_ll = likelihood.blocked_row_sums(log_theta.reshape(-1, log_theta.shape[-1]), e_cells)
    joint = likelihood.ragged_joint(block_ll, e_subject, n_subj_pad, log_prior)
    norm = likelihood.marginal(joint)
    return likelihood.posterior(joint, norm), total(jnp.sum(norm * smask)), joint


def log_prior_density(
    log_pi: AnyArray, log_theta: AnyArray, vmask: AnyArray, pseudo: AnyArray, prior_pseudo: AnyArray
) -> jax.Array:
    """The log density of the Dirichlet priors (up to a constant), over the volunteers in ``vmask``."""
    return jnp.sum(vmask[:, None, None] * pseudo * log_theta) + jnp.sum(prior_pseudo * log_pi)


def _crowdkit_elbo(T, L, log_pi, extra_votes, smask, eps, total=_single):
    """crowd-kit's evidence lower bound: posteriors ``T`` against the joint log-probabilities ``L`` of the new
    parameters, with the log prior counted once per vote rather than once per subject (as crowd-kit 1.4.2 does)."""
    Tm = T * smask[:, None]
    return total(jnp.sum(Tm * (L + extra_votes[:, None] * log_pi)) - jnp.sum(Tm * jnp.log(jnp.maximum(T, eps))))


def _em_iterations(state, data, settings, n_steps, *, K, n_subj_pad, n_vol_pad, elbo_mode, total=_single):
    """Up to ``n_steps`` EM iterations (M-step, then E-step), stopping early on convergence.

    ``state`` = (posteriors, log priors, log confusion and expected counts that produced them, previous objective,
    iterations done[, the classifier's weight, with evidence]); the confusions, their counts and the pseudo-counts
    of ``settings`` are in the E-step's layout [V, answer, true answer] (``likelihood.confusion_rows``).
    The objective is the log-likelihood plus log prior, or, in crowd-kit mode (``elbo_mode``), the evidence lower
    bound of the previous posteriors under the new parameters; crowd-kit mode also stops on any gain below the
    tolerance (losses included) and then keeps the previous posteriors, as crowd-kit does.

    ``total`` sums the subjects' and votes' terms over shards: the identity on one device, a ``psum`` when the
    subjects (and their votes) are split over devices (``annostat.infer.sharding``); everything per subject stays
    on its shard, the parameters are the same on every shard. The blocked layouts' slots (:func:`shard_arrays`) come
    as tuples of arrays, so their number is part of the arguments' shapes.
    """
    e_cells, e_subject, m_subjects, m_part, smask, vmask, extra_votes, part_cell = data[:8]
    log_evidence = data[8] if len(data) > 8 else None  # [S, K] a classifier's per-subject evidence, when given
    pseudo, prior_pseudo, eps, rtol, atol = settings[:5]
    w_max, learn = settings[5:] if log_evidence is not None else (None, None)

    def cond(c):
        i, done = c[0], c[1]
        return (i < n_steps) & (~done)

    def body(c):
        i, _, (T, last_log_pi, _, _, previous, it, *weight), traces = c
        log_pi, log_theta, counts = _m_step(
            T, m_subjects, m_part, part_cell, smask, n_vol_pad, K, pseudo, prior_pseudo, eps, total
        )
        if log_evidence is None:
            log_prior = log_pi
        else:
            log_pi, w = _prior_m_step(T, smask, log_evidence, last_log_pi, weight[0], prior_pseudo, w_max, learn, total)
            log_prior, weight = likelihood.evidence_log_prior(log_pi, log_evidence, w), [w]
        T_new, ll, L = _e_step(log_prior, log_theta, e_cells, e_subject, smask, n_subj_pad, total)
        lp = log_prior_density(log_pi, log_theta, vmask, pseudo, prior_pseudo)
        threshold = atol + rtol * jnp.abs(previous)
        if elbo_mode:  # crowd-kit: stop on a gain strictly below tol (losses included), keep the previous posteriors
            elbo = jnp.where(it == 0, -jnp.inf, _crowdkit_elbo(T, L, log_pi, extra_votes, smask, eps, total))
            objective = elbo
            done = jnp.isfinite(previous) & (objective - previous < threshold)
            T_new = jnp.where(done, T, T_new)
        else:  # annostat: stop on a small relative change; never early when tol is 0
            elbo = jnp.float32(jnp.nan)
            objective = ll + lp
            done = jnp.isfinite(previous) & (jnp.abs(objective - previous) <= threshold) & ((rtol > 0) | (atol > 0))
        traces = tuple(t.at[i].set(v) for t, v in zip(traces, (ll, lp, elbo)))
        return i + 1, done, (T_new, log_pi, log_theta, counts, objective, it + 1, *weight), traces

    nan = jnp.full((CHUNK,), jnp.nan, jnp.float32)
    i, done, state, traces = jax.lax.while_loop(cond, body, (jnp.int32(0), jnp.bool_(False), state, (nan,) * 3))
    return state, i, done, traces


_em_chunk = jax.jit(_em_iterations, static_argnames=("K", "n_subj_pad", "n_vol_pad", "elbo_mode"))


# Compilation runs ahead on a worker thread: XLA compiles (releasing the GIL) while numpy prepares the votes.
# Executables are kept per shape, so fits of similar size (and the questions of one fit) reuse them.
_COMPILER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="annostat-compile")
_EXECUTABLES: dict[tuple, Future] = {}
_EXECUTABLES_LOCK = threading.Lock()


@dataclass(frozen=True)
class Layout:
    """The padded sizes of one shard's arrays (:func:`shard_arrays`; every shard of a fit shares them, so one
    kernel is compiled): subjects, volunteers, answers, and the blocks of the E-step's layout (votes by subject) and
    the M-step's (votes by cell)."""

    n_subj_pad: int
    n_vol_pad: int
    K: int
    e_block: int  # votes a block, E-step
    e_blocks_pad: int
    m_block: int  # votes a block, M-step
    m_blocks_pad: int
    m_runs_pad: int  # runs of a cell's votes in one range of subjects (subject_ranges), at least

    @property
    def n_parts_pad(self) -> int:
        return n_parts_pad(self.m_blocks_pad, self.m_runs_pad, self.m_block)

    @property
    def static(self) -> dict[str, int]:
        """The kernel's static arguments."""
        return {
            "K": self.K,
            "n_subj_pad": self.n_subj_pad,
            "n_vol_pad": self.n_vol_pad,
        }


def run_lengths(
    subject: np.ndarray, volunteer: np.ndarray, answer: np.ndarray, n_subjects: int, n_vol_pad: int, K: int
) -> tuple[np.ndarray, np.ndarray]:
    """The votes of each subject (``subject`` sorted) and of each cell (volunteer, answer) in each range of subjects
    (:func:`subject_ranges`): [ranges, n_vol_pad * K], int32."""
    starts = np.flatnonzero(run_boundaries(subject))
    per_subject = np.zeros(n_subjects, np.int64)  # one pass over the sorted subjects: where each one's votes start
    per_subject[subject[starts]] = np.diff(np.append(starts, len(subject)))
    vote_bounds = np.searchsorted(subject, subject_ranges(n_subjects, K, len(subject), n_vol_pad * K))
    per_cell = np.zeros((len(vote_bounds) - 1, n_vol_pad * K), np.int32)
    step = 1 << 22  # a few million votes at a time: no int64 copy of every vote
    for r, (start, end) in enumerate(itertools.pairwise(vote_bounds)):
        for i in range(int(start), int(end), step):
            j = min(i + step, int(end))
            per_cell[r] += np.bincount(volunteer[i:j].astype(np.int64) * K + answer[i:j], minlength=n_vol_pad * K)
    return per_subject, per_cell


def block_sizes(lengths: list[tuple[np.ndarray, np.ndarray]]) -> tuple[int, int]:
    """(E-step, M-step) block sizes for shards whose votes a subject and a cell are ``lengths``
    (:func:`run_lengths`); 1 below :data:`BLOCKED_FROM` votes."""
    if sum(int(s.sum()) for s, _ in lengths) < BLOCKED_FROM:
        return 1, 1
    return (
        block_size(np.concatenate([s for s, _ in lengths])),
        block_size(np.concatenate([c.ravel() for _, c in lengths])),
    )


def layout_of(
    lengths: list[tuple[np.ndarray, np.ndarray]],
    n_subj_pad: int,
    n_vol_pad: int,
    K: int,
    blocks: tuple[int, int] | None = None,
) -> Layout:
    """The :class:`Layout` of shards whose votes a subject and a cell are ``lengths`` (:func:`run_lengths`), with
    the block sizes ``blocks`` (default :func:`block_sizes`); block counts padded to :func:`bucket` sizes."""
    e_block, m_block = blocks or block_sizes(lengths)
    return Layout(
        n_subj_pad,
        n_vol_pad,
        K,
        e_block,
        bucket(max(n_blocks(s, e_block) for s, _ in lengths)),
        m_block,
        bucket(max(sum(n_blocks(r, m_block) for r in c) for _, c in lengths)),
        bucket(max(int(np.count_nonzero(c)) for _, c in lengths) + 1),
    )


def _chunk_signature(layout: Layout, evidence: bool = False) -> tuple[Any, ...]:
    """Abstract arguments of ``_em_chunk`` (state, data, settings, n_steps) for one padded problem size."""
    f32, i32 = jnp.float32, jnp.int32
    n_subj_pad, n_vol_pad, K = layout.n_subj_pad, layout.n_vol_pad, layout.K

    def a(shape, dtype):
        return jax.ShapeDtypeStruct(shape, dtype)

    state = (
        a((n_subj_pad, K), f32),
        a((K,), f32),
        a((n_vol_pad, K, K), f32),
        a((n_vol_pad, K, K), f32),
        a((), f32),
        a((), i32),
    )
    data = (
        (a((layout.e_blocks_pad,), i32),) * layout.e_block,
        a((layout.e_blocks_pad,), i32),
        (a((layout.m_blocks_pad,), i32),) * layout.m_block,
        a((layout.m_blocks_pad,), i32),
        a((n_subj_pad,), f32),
        a((n_vol_pad,), f32),
        a((n_subj_pad,), f32),
        a((layout.n_parts_pad,), i32),
    )
    settings = (a((n_vol_pad, K, K), f32), a((K,), f32), a((), f32), a((), f32), a((), f32))
    if evidence:  # the evidence, the classifier's weight (state), its largest value and whether it is learned
        data += (a((n_subj_pad, K), f32),)
        state += (a((), f32),)
        settings += (a((), f32), a((), jnp.bool_))
    return state, data, settings, a((), i32)


def compile_ahead(layout: Layout, elbo_mode: bool, evidence: bool = False) -> Future:
    """Start compiling the EM kernel for one padded size (at most once per size, with or without per-subject
    evidence); returns a future executable."""
    key = (layout, bool(elbo_mode), bool(evidence))
    with _EXECUTABLES_LOCK:
        future = _EXECUTABLES.get(key)
        if future is None:
            static = {**layout.static, "elbo_mode": bool(elbo_mode)}
            args = _chunk_signature(layout, evidence)
            future = _EXECUTABLES[key] = _COMPILER.submit(lambda: _em_chunk.lower(*args, **static).compile())
    return future


def shard_arrays(
    subject: np.ndarray,
    volunteer: np.ndarray,
    answer: np.ndarray,
    init: np.ndarray,
    log_evidence: np.ndarray | None,
    layout: Layout,
    lengths: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, tuple[Any, ...]]:
    """One shard's padded arrays: the starting posteriors [n_subj_pad, K] and the data of ``_em_iterations``
    but the volunteer mask: the E-step's layout (the votes' cells in blocks of one subject, :func:`blocked`, as a
    tuple of :func:`slots`, and each block's subject), the M-step's (the votes' subjects in blocks of one cell, as
    slots, and each block's partial sum),
    the subject mask, the extra votes, each partial sum's cell[, evidence].

    ``subject`` holds the shard's own codes 0..S-1 (sorted), ``volunteer`` the global codes; padding blocks belong
    to the last (padded) subject and to the last (padded) volunteer's cell, and padding slots point one past the
    last cell (E-step) or subject (M-step), where they count nothing. ``lengths``: :func:`run_lengths` of these
    votes, when known."""
    L, K, S = layout, layout.K, len(init)
    per_subject, per_cell = lengths or run_lengths(subject, volunteer, answer, S, L.n_vol_pad, K)
    key = volunteer.astype(np.int32) * K
    key += answer.astype(np.int32)
    e_cells = slots(blocked(key, per_subject, L.e_block, L.e_blocks_pad, L.n_vol_pad * K), L.e_block)
    owner = block_owners(per_subject, L.e_block)
    e_subject = np.full(L.e_blocks_pad, L.n_subj_pad - 1, np.int32)
    e_subject[: len(owner)] = owner
    m_subjects, block_cell = _m_layout(key, np.asarray(subject, np.int32), per_cell, L)
    del key
    part, part_cell = _partial_sums(block_cell, L.n_parts_pad, PART // L.m_block, (L.n_vol_pad - 1) * K)
    m_part = np.full(L.m_blocks_pad, L.n_parts_pad - 1, np.int32)  # padding blocks: the last sum (they add 0)
    m_part[: len(part)] = part
    smask = np.zeros(L.n_subj_pad, np.float32)
    smask[:S] = 1.0
    T0 = np.full((L.n_subj_pad, K), 1.0 / K, np.float32)
    T0[:S] = init
    extra_votes = np.zeros(L.n_subj_pad, np.float32)
    extra_votes[:S] = np.maximum(per_subject - 1, 0)
    data = (e_cells, e_subject, m_subjects, m_part, smask, extra_votes, part_cell)
    if log_evidence is not None:
        evidence = np.zeros((L.n_subj_pad, K), np.float32)
        evidence[:S] = log_evidence
        data += (evidence,)
    return T0, data


def _m_layout(key: np.ndarray, subject: np.ndarray, per_cell: np.ndarray, L: Layout) -> tuple[tuple, np.ndarray]:
    """The M-step's layout: the votes' subjects in blocks of one cell (:func:`slots`), range of subjects by range
    (:func:`subject_ranges`; ``per_cell`` [ranges, cells] their votes a cell), each range's by (volunteer, answer)
    and a cell's by subject; and each block's cell."""
    if len(per_cell) == 1:
        by_cell = sorted_pairs(key, subject)  # by (volunteer, answer), a cell's votes by subject
        flat = blocked(by_cell, per_cell[0], L.m_block, L.m_blocks_pad, L.n_subj_pad)
        return slots(flat, L.m_block), block_owners(per_cell[0], L.m_block)
    flat = np.full(L.m_block * L.m_blocks_pad, L.n_subj_pad, np.int32)
    by_slot, owners, done, start = flat.reshape(L.m_block, -1), [], 0, 0
    for lengths in per_cell:  # the votes are sorted by subject: a range's are the next sum(lengths)
        end = start + int(lengths.sum())
        n = n_blocks(lengths, L.m_block)
        by_cell = sorted_pairs(key[start:end], subject[start:end])
        by_slot[:, done : done + n] = blocked(by_cell, lengths, L.m_block, n, L.n_subj_pad).reshape(L.m_block, n)
        owners.append(block_owners(lengths, L.m_block))
        done, start = done + n, end
    return slots(flat, L.m_block), np.concatenate(owners)


def _partial_sums(
    cells: np.ndarray, n_parts: int, part_size: int = PART, fill: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """For votes (or blocks of votes) sorted by cell: each one's partial sum (a run of at most ``part_size`` of one
    cell) and each partial sum's cell (padded to ``n_parts`` with ``fill``, by default the last cell)."""
    n = len(cells)
    if n == 0:
        return np.zeros(0, np.int32), np.full(n_parts, 0 if fill is None else fill, np.int32)
    position = np.arange(n, dtype=np.int32)  # int32 and in place: at 100M votes, two arrays of 400 MB
    new_cell = run_boundaries(cells)
    cell_start = np.where(new_cell, position, 0).astype(np.int32, copy=False)
    np.maximum.accumulate(cell_start, out=cell_start)
    position -= cell_start
    del cell_start
    position %= part_size
    new_part = position == 0
    del position
    new_part |= new_cell
    part = np.cumsum(new_part, dtype=np.int32)
    part -= 1
    part_cell = np.full(n_parts, cells[-1] if fill is None else fill, np.int32)
    starts = cells[new_part]
    part_cell[: len(starts)] = starts
    return part, part_cell


def dawid_skene_em(
    subject: np.ndarray,
    volunteer: np.ndarray,
    answer: np.ndarray,
    n_subjects: int,
    n_volunteers: int,
    n_answers: int,
    init: np.ndarray,
    *,
    pseudo_counts: np.ndarray,
    prior_pseudo_count: float = 1.0,
    eps: float = 1e-10,
    max_iter: int = 100,
    rtol: float = 1e-6,
    atol: float = 0.0,
    elbo_mode: bool = False,
    log_evidence: np.ndarray | None = None,
    prior_weight: float = 1.0,
    learn_prior_weight: bool = True,
    progress: Callable[[int, int], None] | None = None,
    mesh: Any = None,
    fixed_counts: np.ndarray | None = None,
    fixed_totals: np.ndarray | None = None,
) -> EMResult:
    """Fit Dawid-Skene to one question's votes by EM.

    ``subject`` must be sorted (ascending); codes are 0..n-1. ``init`` holds the starting posteriors [S, K]
    (vote fractions). The loop stops when the change of the objective (log-likelihood + log prior) is at most
    ``atol + rtol * |previous|``, or after ``max_iter`` iterations (``elbo_mode``: crowd-kit's rule, see
    ``_em_chunk``). ``log_evidence`` [S, K] is a classifier's evidence, weighted by ``prior_weight`` (learned up to
    that value from the votes when ``learn_prior_weight``; module docstring).
    ``progress(done, max_iter)`` is called between compiled chunks. With a device ``mesh`` of more than one
    device (``annostat.infer.sharding.device_mesh``) the subjects and their votes are split over the devices and
    the expected counts summed across them: the same fit, data-parallel. ``fixed_counts`` [V, K, K] and
    ``fixed_totals`` [K] are the counts and answer totals of subjects whose answers are known (gold answers, left
    out of ``subject``): added to the pseudo-counts, they make the fit the one with those posteriors held fixed (the
    log prior of the trace then holds their votes' log-likelihood given their answers).
    """
    K = int(n_answers)
    N = len(subject)
    S, V = int(n_subjects), int(n_volunteers)
    several = mesh is not None and mesh.is_multi_process
    if N == 0 and not several:  # with several processes a share may hold none of a question's votes
        raise ValueError("no votes to fit")
    if np.any(np.diff(subject) < 0):
        raise ValueError("votes must be sorted by subject")
    if log_evidence is not None and (elbo_mode or np.shape(log_evidence) != (S, K)):
        raise ValueError(f"log_evidence must be [subjects, answers] = [{S}, {K}], and not in crowd-kit mode")
    n_vol_pad = bucket(V + 1)
    vmask = np.zeros(n_vol_pad, np.float32)
    vmask[:V] = 1.0
    if mesh is None or mesh.size == 1:
        lengths = run_lengths(subject, volunteer, answer, S, n_vol_pad, K)
        layout = layout_of([lengths], bucket(S + 1), n_vol_pad, K)
        em_chunk = compile_ahead(layout, elbo_mode, log_evidence is not None)
        T0, data = shard_arrays(subject, volunteer, answer, init, log_evidence, layout, lengths)
        data = jax.device_put(data[:5] + (vmask,) + data[5:])  # numpy in, device_put once: no eager jnp operations
        blocks = [(0, S)]
        em_chunk = em_chunk.result()
    else:
        from annostat.infer import sharding

        blocks, _, (T0, data), em_chunk = sharding.em_layout(
            mesh, subject, volunteer, answer, init, log_evidence, vmask, K, elbo_mode
        )
    # the Dirichlet pseudo-counts, per volunteer, plus the counts of subjects whose answers are known (gold): their
    # posteriors are fixed, so their expected counts are constant and EM runs on the other subjects
    pseudo = np.broadcast_to(np.asarray(pseudo_counts, np.float32), (n_vol_pad, K, K)).copy()
    prior_pseudo = np.full(K, prior_pseudo_count, np.float32)
    if fixed_counts is not None:
        pseudo[:V] += np.asarray(fixed_counts, np.float32)
        prior_pseudo += np.asarray(fixed_totals, np.float32)
    pseudo = np.ascontiguousarray(np.swapaxes(pseudo, 1, 2))  # the kernel's layout: [V, answer, true answer]
    settings = (pseudo, prior_pseudo, *map(np.float32, (eps, rtol, atol)))
    zeros = np.zeros((n_vol_pad, K, K), np.float32)
    state: tuple[Any, ...] = (T0, np.zeros(K, np.float32), zeros, zeros, np.float32(-np.inf), np.int32(0))
    if log_evidence is not None:  # a learned weight starts at 0 (the votes alone), a fixed one at its value
        settings += (np.float32(prior_weight), np.bool_(learn_prior_weight))
        state += (np.float32(0.0 if learn_prior_weight else prior_weight),)
    traces, done, n_done = [], False, 0
    while n_done < max_iter and not done:
        steps = min(CHUNK, max_iter - n_done)
        state, i, done_flag, chunk_traces = em_chunk(state, data, settings, np.int32(steps))
        i, done = int(i), bool(done_flag)
        traces.append(np.stack([np.asarray(t)[:i] for t in chunk_traces]))
        n_done += i
        if progress is not None:
            progress(n_done, max_iter)
    T, log_pi, log_theta, counts, *_ = state
    ll, lp, elbo = np.concatenate(traces, axis=1)
    local = (
        [np.asarray(shard.data) for shard in sorted(T.addressable_shards, key=lambda x: x.index[0].start or 0)]
        if isinstance(T, jax.Array)
        else [np.asarray(T)]
    )  # this process's blocks of subjects, in order
    return EMResult(
        posteriors=np.concatenate([block[: b - a] for block, (a, b) in zip(local, blocks)]).reshape(-1, K),
        confusion=np.exp(np.swapaxes(np.asarray(log_theta)[:V], 1, 2)),
        counts=np.ascontiguousarray(np.swapaxes(np.asarray(counts)[:V], 1, 2)),
        priors=np.exp(np.asarray(log_pi)),
        log_likelihood=ll,
        log_prior=lp,
        elbo=elbo,
        converged=done,
        prior_weight=None if log_evidence is None else float(state[6]) if learn_prior_weight else float(prior_weight),
    )
