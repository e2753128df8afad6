r"""Selection: which subjects to show next, by the information one more classification would give.

For a subject with posterior :math:`T_k = p(z = k \mid \text{votes})` on a question and a volunteer with confusion
:math:`\theta[k, l] = p(\text{answer } l \mid z = k)`, the information the next vote gives about the true answer is
the mutual information

.. math::
    I(z; l) = \sum_k \sum_l T_k \theta_{kl} \log \frac{\theta_{kl}}{\sum_j T_j \theta_{jl}},

zero for a subject the fit is sure of and for a volunteer who answers at random, largest for an open subject and a
skilled volunteer (the expected information gain of Bayesian active learning, e.g. Houlsby et al. 2011). Over the
tree, each question's gain is weighted by the probability that the path asks it (the product of the posteriors of the
answers that lead there); a question of the fit the subject has no votes on counts with the answer priors as its
posterior. ``volunteer=None`` scores for the typical volunteer (the vote-weighted mean confusion of each question);
given volunteers, each subject is scored for each of them and routed to the one whose answer carries most
information. Retired subjects (:func:`annostat.live.retire.retire`, same rules) are left out.

With a joint fit (a network on the images, ``annostat fit --images``), the subjects nobody has voted on are scored by
BALD instead (Houlsby et al. 2011; Walmsley et al. 2020 for Galaxy Zoo): the information the next vote gives about
the network, from the disagreement of its cross-fitted networks (:func:`bald`), so the galaxies the network is unsure
of come first; the output says which criterion scored each subject (``criterion``).

Example:
    >>> from annostat import DawidSkene, Votes
    >>> from annostat.truth.simulate import simulate_questions
    >>> sim = simulate_questions(200, 30, ("smooth-or-featured",), retire_after=4, seed=2)
    >>> fit = DawidSkene().fit(Votes.from_frame(sim.votes))
    >>> chosen = select(fit, 10)
    >>> len(chosen), list(chosen.columns)
    (10, ['subject', 'score'])
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from annostat.errors import InputError


def information_gain(posteriors: np.ndarray, confusion: np.ndarray) -> np.ndarray:
    """I(z; l) for each subject [S] (``confusion`` [K, K]) or each subject and volunteer [S, V] ([V, K, K])."""
    T = np.asarray(posteriors, np.float64)
    theta = np.clip(np.asarray(confusion, np.float64), 1e-12, 1.0)
    single = theta.ndim == 2
    theta = theta[None] if single else theta
    own = np.einsum("sk,vk->sv", T, (theta * np.log(theta)).sum(axis=2))  # sum_k T_k sum_l th log th
    p = np.einsum("sk,vkl->svl", T, theta)
    gain = own - (p * np.log(np.clip(p, 1e-300, None))).sum(axis=2)
    gain = np.maximum(gain, 0.0)
    return gain[:, 0] if single else gain


def bald(members: np.ndarray, confusion: np.ndarray) -> np.ndarray:
    """BALD (Houlsby et al. 2011) for the next vote: the information it gives about the network, for an ensemble's
    answers ``members`` [M, S, K] and a confusion [K, K] (or [V, K, K]): H[mean_m p_m(l)] - mean_m H[p_m(l)] with
    p_m(l) = sum_k p_m(k) theta[k, l]; [S] (or [S, V])."""
    theta = np.clip(np.asarray(confusion, np.float64), 1e-12, 1.0)
    single = theta.ndim == 2
    theta = theta[None] if single else theta
    votes = np.einsum("msk,vkl->msvl", np.asarray(members, np.float64), theta)  # [M, S, V, L]

    def entropy(p):
        return -(p * np.log(np.clip(p, 1e-300, None))).sum(axis=-1)

    gain = np.maximum(entropy(votes.mean(axis=0)) - entropy(votes).mean(axis=0), 0.0)
    return gain[:, 0] if single else gain


def select(
    fit: Any,
    n: int,
    volunteers: Sequence[Any] | None = None,
    tree: str | None = "auto",
    threshold: float = 0.9,
    minimum: int = 3,
    maximum: int | None = 40,
    include_retired: bool = False,
    diverse: bool = False,
) -> pl.DataFrame:
    """The ``n`` subjects one more classification would tell most about: ``subject``, ``score`` (nats), and with
    ``volunteers`` the ``volunteer`` to ask. ``diverse`` takes them in turn from each most probable answer of the
    tree's first question, so a batch is not all one kind of galaxy."""
    from annostat.fit import Fit
    from annostat.live.retire import _tree_of, retire

    if n < 1:
        raise InputError(f"--n {n}: at least 1")
    if isinstance(fit, (str, Path)):
        fit = Fit.load(fit)
    posteriors = fit.table("posteriors")
    questions = posteriors["question"].unique(maintain_order=True).to_list()
    subjects = posteriors["subject"].unique().sort()
    n_subjects = len(subjects)
    priors = _priors(fit, questions)
    matrices = {q: _matrix(posteriors, q, subjects, priors[q]) for q in questions}  # (T [S, K], answers)
    confusion, vol_labels = _confusions(fit, matrices, volunteers)
    preset = _tree_of(fit, tree)
    weights = _asked(matrices, n_subjects, preset)
    score = np.zeros((n_subjects, 1 if volunteers is None else len(vol_labels)))
    members = _members(fit)
    unvoted = (
        np.zeros(n_subjects, bool)
        if members is None
        else subjects.is_in(members["subject"].cast(subjects.dtype, strict=False).implode()).to_numpy()
    )
    for q in questions:
        gain = information_gain(matrices[q][0], confusion[q])
        gain = gain[:, None] if gain.ndim == 1 else gain
        if members is not None and unvoted.any():  # a joint fit's subjects nobody voted on: BALD over the networks
            ensemble = _ensemble(members, q, subjects.filter(pl.Series(unvoted)), matrices[q][1])
            b = bald(ensemble, confusion[q])
            gain[unvoted] = b[:, None] if b.ndim == 1 else b
        score += weights[q][:, None] * gain
    table = pl.DataFrame({"subject": subjects, "score": score.max(axis=1)})
    if members is not None:
        table = table.with_columns(pl.Series("criterion", np.where(unvoted, "bald", "information")))
    if volunteers is not None:
        table = table.with_columns(vol_labels.gather(score.argmax(axis=1)).alias("volunteer"))
    if not include_retired:
        retired = retire(fit, threshold=threshold, minimum=minimum, maximum=maximum, tree=tree)["subject_id"]
        table = table.filter(~pl.col("subject").cast(retired.dtype).is_in(retired.implode()))
    table = table.sort(["score", "subject"], descending=[True, False])
    if diverse:
        table = _in_turn(fit, table, questions, preset)
    return table.head(n)


def _confusions(fit, matrices, volunteers):
    """Per question the typical volunteer's confusion [K, K] (vote-weighted mean), or the given volunteers'
    [V, K, K], answers in the order of ``matrices``; and the volunteers' labels."""
    confusion = fit.table("confusion").select("volunteer", "question", "true_answer", "answer", "p")
    counts = fit.table("volunteers").select("volunteer", "question", "n")
    labels = None
    if volunteers is not None:
        labels = pl.Series("volunteer", list(volunteers)).cast(confusion["volunteer"].dtype, strict=False)
        unknown = set(labels.to_list()) - set(confusion["volunteer"].unique().to_list())
        if labels.null_count() or unknown:
            raise InputError(f"--volunteers: no volunteer {min(map(str, unknown)) if unknown else 'given'} in the fit")
    out = {}
    for q, (_, answers) in matrices.items():
        K = len(answers)
        code = {a: i for i, a in enumerate(answers)}
        part = confusion.filter(pl.col("question") == q).join(
            counts.filter(pl.col("question") == q), on=["volunteer", "question"]
        )
        part = part.filter(pl.col("p").is_not_nan())
        k = part["true_answer"].replace_strict(code, return_dtype=pl.Int64).to_numpy()
        l_ = part["answer"].replace_strict(code, return_dtype=pl.Int64).to_numpy()
        if volunteers is None:
            matrix = np.zeros((K, K))
            np.add.at(matrix, (k, l_), part["p"].to_numpy() * part["n"].to_numpy())
            out[q] = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1e-12)
        else:
            where = {v: i for i, v in enumerate(labels.to_list())}
            v = part["volunteer"].replace_strict(where, default=-1, return_dtype=pl.Int64).to_numpy()
            keep = v >= 0
            matrix = np.full((len(labels), K, K), 1.0 / K)  # a volunteer who never answered the question: no help
            matrix[v[keep], k[keep], l_[keep]] = part["p"].to_numpy()[keep]
            out[q] = matrix
    return out, labels


def _members(fit) -> pl.DataFrame | None:
    """A joint fit's per-network answers for the subjects nobody voted on (``network/members.parquet``), or None."""
    from annostat.fit import SavedFit

    if isinstance(fit, SavedFit):
        path = fit.folder / "network" / "members.parquet"
        return pl.read_parquet(path) if path.is_file() else None
    return getattr(fit, "members", None)


def _ensemble(members: pl.DataFrame, q, subjects: pl.Series, answers: list[Any]) -> np.ndarray:
    """[M, S, K]: each network's answers to question ``q`` for ``subjects`` (answers in the order given)."""
    part = members.filter(pl.col("question") == q)
    M = int(part["member"].to_numpy().max()) + 1
    out = np.full((M, len(subjects), len(answers)), 1.0 / len(answers))
    order = pl.DataFrame({"subject": subjects, "row": np.arange(len(subjects))})
    code = {a: i for i, a in enumerate(answers)}
    joined = part.with_columns(pl.col("subject").cast(subjects.dtype, strict=False)).join(order, on="subject")
    a = joined["answer"].replace_strict(code, default=-1, return_dtype=pl.Int64).to_numpy()
    keep = a >= 0
    out[joined["member"].to_numpy()[keep], joined["row"].to_numpy()[keep], a[keep]] = joined["p"].to_numpy()[keep]
    return out / out.sum(axis=2, keepdims=True)


def _priors(fit, questions) -> dict[Any, dict[Any, float]]:
    table = fit.table("priors")
    return {q: dict(table.filter(pl.col("question") == q).select("answer", "p").iter_rows()) for q in questions}


def _matrix(posteriors, q, subjects, prior):
    """[S, K] posteriors of question ``q`` for every subject (the answer priors where it has no votes)."""
    part = posteriors.filter(pl.col("question") == q)
    answers = part["answer"].unique(maintain_order=True).to_list()
    wide = part.pivot(on="answer", index="subject", values="p")
    full = pl.DataFrame({"subject": subjects}).join(wide, on="subject", how="left", maintain_order="left")
    T = np.column_stack([full[a].fill_null(float(prior.get(a, 1.0 / len(answers)))).to_numpy() for a in answers])
    return T / T.sum(axis=1, keepdims=True), answers


def _asked(matrices, S: int, tree) -> dict[Any, np.ndarray]:
    """Per question, the probability the subject's path asks it [S] (1 for every question without a tree)."""
    questions = list(matrices)
    if tree is None:
        return {q: np.ones(S) for q in questions}
    fitted = set(questions)
    weights: dict[Any, np.ndarray] = {}
    order = [q.name for q in tree.questions.values() if q.name in fitted]
    for name in order:  # presets list parents before children
        links = [(p, a) for p, a in tree.questions[name].asked_after if p in fitted]
        if not tree.questions[name].asked_after:
            weights[name] = np.ones(S)
            continue
        w = np.zeros(S)
        for parent, answer in links:
            if parent not in weights:
                continue
            T, answers = matrices[parent]
            share = T[:, answers.index(answer)] if answer in answers else (1.0 if answer is None else 0.0)
            w = np.maximum(w, weights[parent] * share)
        weights[name] = w
    return {q: weights.get(q, np.ones(S)) for q in questions}


def _in_turn(fit, table, questions, tree):
    """The ranking taken in turn from each most probable answer of the first question (each group in score order)."""
    first = (
        next((q.name for q in tree.questions.values() if not q.asked_after and q.name in questions), None)
        if tree is not None
        else questions[0]
    )
    answers = (
        fit.table("answers").filter(pl.col("question") == first).select("subject", pl.col("answer").alias("_kind"))
    )
    ranked = table.join(
        answers.with_columns(pl.col("subject").cast(table["subject"].dtype)),
        on="subject",
        how="left",
        maintain_order="left",
    )
    ranked = ranked.with_columns(pl.col("_kind").fill_null("").cum_count().over("_kind").alias("_turn"))
    return ranked.sort(["_turn", "score"], descending=[False, True]).drop("_kind", "_turn")
