r"""The volunteer likelihood, written once: what every volunteer model, inference engine and check shares.

One question with :math:`K` answers. Vote :math:`n` is volunteer :math:`v_n`'s answer :math:`l_n` about subject
:math:`s_n`; under true answer :math:`k` it has log-probability :math:`\log\theta_{v_n}[k, l_n]` (a model's
confusion; models whose confusion depends on the vote, such as learning curves or subject difficulty, give these
per-vote values themselves). Votes are independent given the true answer, so for subject :math:`s` with log prior
:math:`\log\pi_{sk}` over its true answer

.. math::
    \text{joint}_{sk} = \log\pi_{sk} + \sum_{n \in s} \log\theta_{v_n}[k, l_n], \qquad
    \text{marginal}_s = \log\sum_k e^{\text{joint}_{sk}}, \qquad
    p(z_s = k \mid \text{votes}) = e^{\text{joint}_{sk} - \text{marginal}_s}.

The log prior is **per subject**, ``[S, K]``; a global prior ``[K]`` is the broadcast case. A per-subject prior can
come from the fitted global prior and a classifier's evidence (:func:`evidence_log_prior`, ``annostat fit --prior``),
or from a network that looks at the pixels. Two layouts of the votes:

- **ragged**: one entry per vote, sorted by subject; :func:`ragged_joint` sums by segments (the EM kernels, where
  memory must stay at a few bytes a vote);
- **padded**: ``[B, M, K]`` with a mask ``[B, M]``, row b holding subject b's votes (the NumPyro models, whose
  minibatches are rows).

Example:
    >>> import numpy as np
    >>> log_theta = np.log(np.array([[[0.8, 0.2], [0.3, 0.7]]]))  # one volunteer, 2 answers
    >>> votes = vote_log_likelihood(log_theta, cell_index(np.array([0, 0]), np.array([0, 0]), 2))  # two "0" votes
    >>> joint = ragged_joint(votes, np.array([0, 0]), 1, np.log(np.array([0.5, 0.5])))
    >>> np.asarray(posterior(joint), np.float64).round(3).tolist()
    [[0.877, 0.123]]
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeAlias

import jax
import jax.numpy as jnp

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    import numpy as np

#: what the likelihood's functions take: JAX arrays, or NumPy arrays (moved to the device as they are used)
AnyArray: TypeAlias = "jax.Array | np.ndarray"

IN_BOUNDS = "promise_in_bounds"  # codes are valid by construction: no bounds handling in the gathers

#: up to this many answers, sums and maxima over the answers are taken column by column: XLA's CPU reductions over
#: a short last axis cost ~3 ns an entry (at 2M votes, a tenth of a Dawid-Skene iteration), elementwise operations
#: on K columns a fraction of that
FEW_ANSWERS = 8


#: the largest table (bytes) :func:`blocked_row_sums` pads its rows in: half the last-level cache of a small CPU
PADDED_ROWS_UP_TO = 8 << 20


def _over_answers(x: AnyArray, pairwise: Callable, reduction: Callable, axis: int) -> jax.Array:
    """``x`` folded over its ``axis`` of answers: ``pairwise`` slice after slice for a few answers, else the
    ``reduction``."""
    K = x.shape[axis]
    if K > FEW_ANSWERS:
        return reduction(x, axis=axis)
    after: tuple[Any, ...] = (slice(None),) * (x.ndim - 1 - axis % x.ndim)  # the axes after ``axis``, whole

    def answer(k: int) -> AnyArray:  # x[..., k, :, ...]: answer k's slice
        index: tuple[Any, ...] = (Ellipsis, k, *after)
        return x[index]

    folded = jnp.asarray(answer(0))
    for k in range(1, K):
        folded = pairwise(folded, answer(k))
    return folded


def sum_over_answers(x: AnyArray, axis: int = -1) -> jax.Array:
    """``x`` summed over its ``axis`` of answers (the last by default), slice by slice for a few answers."""
    return _over_answers(x, jnp.add, jnp.sum, axis)


def max_over_answers(x: AnyArray, axis: int = -1) -> jax.Array:
    """The largest entry of ``x`` over its ``axis`` of answers (the last by default), slice by slice for a few
    answers."""
    return _over_answers(x, jnp.maximum, jnp.max, axis)


def cell_index(volunteer: AnyArray, answer: AnyArray, n_answers: int) -> AnyArray:
    """Each vote's row of :func:`confusion_rows`: ``volunteer * K + answer``."""
    return volunteer * n_answers + answer


def confusion_rows(log_confusion: AnyArray) -> jax.Array:
    """``log theta[v, k, l]`` [V, K, K] laid out as rows (v, l) of K true-answer entries, [V * K, K]: one gather
    then reads a vote's K values from contiguous memory."""
    K = log_confusion.shape[-1]
    return jnp.swapaxes(log_confusion, -1, -2).reshape(-1, K)


def vote_log_likelihood(log_confusion: AnyArray, cell: AnyArray) -> jax.Array:
    """[..., K]: log p(vote | true answer k) of each vote, from a per-volunteer confusion ``log theta`` [V, K, K]
    (rows the true answer) and the votes' :func:`cell_index` (any shape)."""
    return confusion_rows(log_confusion).at[cell].get(mode=IN_BOUNDS)


def blocked_row_sums(rows: AnyArray, index_by_slot: AnyArray | Sequence[AnyArray]) -> jax.Array:
    """[B, K]: for each block, the sum of the rows of ``rows`` [R, K] its slots name, from ``index_by_slot`` [b, B]
    (slot j of every block; or a sequence of b arrays [B]); an index of ``R`` (one past the last row) is padding and
    adds zero. ``b`` contiguous
    gathers added together: a block's sum costs no scatter (``annostat.infer.em``'s layout of the votes).

    A table that stays small when padded (:data:`PADDED_ROWS_UP_TO`) is gathered with its rows padded to a
    power-of-two width (3 answers: 4), one aligned load each: on a CPU at 2M votes this takes a fifth to a third
    off each gather. A larger table is gathered as it is: its reads come from memory rather than the cache, and
    the padding would only add to them (at 10M votes, a million subjects' posteriors, 46% slower padded)."""
    K = rows.shape[-1]
    width = 1 << (K - 1).bit_length()
    if (rows.shape[0] + 1) * width * rows.dtype.itemsize > PADDED_ROWS_UP_TO:
        width = K
    padded = jnp.pad(rows, ((0, 1), (0, width - K)))
    first, *others = index_by_slot
    total = padded.at[first].get(mode=IN_BOUNDS)
    for index in others:
        total = total + padded.at[index].get(mode=IN_BOUNDS)
    return total[:, :K]


def ragged_joint(vote_ll: AnyArray, subject: AnyArray, n_subjects: int, log_prior: AnyArray) -> jax.Array:
    """[S, K] joint log-likelihood of each subject's votes and true answer: ``vote_ll`` [N, K] of votes sorted by
    ``subject`` [N] (codes 0..S-1), plus ``log_prior`` [K] or [S, K]."""
    return (
        jax.ops.segment_sum(vote_ll, subject, num_segments=n_subjects, indices_are_sorted=True, mode=IN_BOUNDS)
        + log_prior
    )


def padded_joint(vote_ll: AnyArray, mask: AnyArray, log_prior: AnyArray) -> jax.Array:
    """[B, K] joint log-likelihood of each row's votes and true answer: ``vote_ll`` [B, M, K] with ``mask`` [B, M]
    (True: a real vote), plus ``log_prior`` [K] or [B, K]."""
    return jnp.sum(jnp.where(mask[..., None], vote_ll, 0.0), axis=-2) + log_prior


def marginal(joint: AnyArray) -> jax.Array:
    """[...]: the marginal log-likelihood, the true answer summed out (log-sum-exp over the last axis, shifted by
    its largest entry, which carries no gradient, as ``jax.nn.logsumexp`` does)."""
    top = max_over_answers(joint)
    shift = jax.lax.stop_gradient(jnp.where(jnp.isfinite(top), top, 0.0))
    return shift + jnp.log(sum_over_answers(jnp.exp(joint - shift[..., None])))


def posterior(joint: AnyArray, marginal_ll: AnyArray | None = None) -> jax.Array:
    """[..., K]: p(true answer | votes) from the joint (and its marginal, when already computed)."""
    if marginal_ll is None:
        marginal_ll = marginal(joint)
    return jnp.exp(joint - marginal_ll[..., None])


def evidence_log_prior(log_pi: AnyArray, log_evidence: AnyArray, weight: float | np.floating | AnyArray) -> jax.Array:
    r"""[S, K] per-subject log prior from the global answer prior and each subject's evidence from a classifier:
    :math:`\log \mathrm{softmax}(\log\pi + w\,r_s)`, with :math:`r_{sk}` the classifier's log-ratio of its prediction
    to its average prediction (``annostat.data.priors``) and :math:`w` the weight given to it (0: the global prior;
    1: a calibrated classifier's prediction, where the project's answer frequencies are the classifier's)."""
    return jax.nn.log_softmax(log_pi + weight * log_evidence, axis=-1)


KNOWN = -1e9  # the log prior of the answers a subject with a known (gold) answer does not have: exp() is exactly 0


def known_answer_log_prior(log_prior: AnyArray, known: AnyArray) -> jax.Array:
    """[S, K]: ``log_prior`` ([K] or [S, K]) with each subject whose true answer is known (``known`` [S], the
    answer's code; -1 where unknown) given that answer alone, so its posterior is the known answer and its votes
    measure their volunteers against it (gold answers, ``annostat.data.gold``)."""
    K = log_prior.shape[-1]
    other = (known[:, None] >= 0) & (jnp.arange(K)[None, :] != known[:, None])
    return jnp.asarray(log_prior) + jnp.where(other, KNOWN, 0.0)
