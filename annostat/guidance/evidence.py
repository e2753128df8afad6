r"""The evidence behind the advice: which of a volunteer's confusions stands out, judged on posteriors.

**Evidence, judged on posteriors.** Each of a volunteer's votes is set against its subject's consensus computed
*without that vote* (the leave-one-out posterior, :func:`leave_one_out_counts`), weighted by it: a vote on a subject
whose other votes agree counts almost wholly in that answer's row, a vote on a subject the others leave uncertain is
shared between rows. No minimum of votes per subject is needed, so advice works at the 3-5 votes a galaxy Galaxy Zoo
gets, and a volunteer is never judged against a consensus their own vote made. Each row *k* of the volunteer's
confusion (their answers when the true answer is *k*) gets a Dirichlet posterior from these counts and a prior
pulled toward the population (8 pseudo-votes),
:math:`\theta_{vk} \sim \mathrm{Dirichlet}(c\,\bar\theta_k + n_{vk})` with :math:`\bar\theta_k` the population's row
(the median over volunteers with at least 5 votes on the row, renormalised) and :math:`c = 8`. A confusion
*(k, j)* is named only when it stands out in draws from these posteriors: with probability at least 0.95 the
volunteer's rate exceeds both the population's rate for the cell and the rate their other errors predict for it (the
population's rate scaled by how much more often than the population they err on every other cell, never scaled
down), and on average by at least 0.2. A volunteer who errs more everywhere has no confusion that stands out; the
size of the excess asked for keeps chance patterns among a volunteer's K(K-1) cells from being named (measured on
simulated volunteers with planted confusions, ``tests/test_advice.py``: at 3, 4 and 15 votes a subject).
Of the cells that stand out, the one costing most accuracy (:math:`\pi_k(\hat\theta_{vkj} - \bar\theta_{kj})`, with
:math:`\pi` the answer priors) is named. A volunteer whose errors are spread evenly gets advice about overall accuracy.

The tables a fit gives, with labels as text (:class:`FitTables`), are what all of the guidance reads.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from annostat.fit import Fit
from annostat.models.registry import REGISTRY, model_spec

LEVEL = 0.9
PRIOR_STRENGTH = 8.0
NAMED_PROBABILITY = 0.95
NAMED_EFFECT = 0.2
MIN_ROW_VOTES = 3.0


@dataclass
class FitTables:
    """A fit's tables as the guidance reads them: pandas, with volunteer, question and answer labels as text
    (a volunteer may be a number in one table and text in another)."""

    fit: Fit
    model: str
    volunteers: pd.DataFrame
    confusion: pd.DataFrame
    priors: pd.DataFrame
    posteriors: pd.DataFrame
    votes: pd.DataFrame

    @classmethod
    def of(cls, fit: Fit) -> FitTables:
        tables = {name: fit.table(name).to_pandas() for name in ("volunteers", "confusion", "priors", "posteriors")}
        tables["votes"] = fit.vote_table().to_pandas()
        for frame in tables.values():
            for column in ("volunteer", "question", "answer", "true_answer"):
                if column in frame:
                    frame[column] = frame[column].astype(str)
        return cls(fit, fit.model, **tables)


def _population_rows(counts: np.ndarray) -> np.ndarray:
    """[K, K] population confusion: per row, the median over volunteers with >= 5 expected votes on it, renormalised
    (all volunteers' pooled counts where fewer than 3 volunteers qualify)."""
    K = counts.shape[1]
    rows = np.zeros((K, K))
    for k in range(K):
        n = counts[:, k].sum(axis=1)
        enough = n >= 5
        if enough.sum() >= 3:
            row = np.median(counts[enough, k] / n[enough, None], axis=0)
        else:
            row = counts[:, k].sum(axis=0) + 1e-3
        rows[k] = (row + 1e-4) / (row + 1e-4).sum()
    return rows


def mutual_information(theta: np.ndarray, prior: np.ndarray) -> float:
    """I(true answer; vote) in bits for confusion ``theta`` [K, K] and answer prior ``prior`` [K]."""
    joint = prior[:, None] * theta
    vote = joint.sum(axis=0)
    ratio = np.where(joint > 0, joint / np.maximum(prior[:, None] * vote[None, :], 1e-300), 1.0)
    return float(np.sum(np.where(joint > 0, joint * np.log2(ratio), 0.0)))


@dataclass
class QuestionEvidence:
    question: str
    answers: list[str]
    prior: np.ndarray  # [K]
    population: np.ndarray  # [K, K]
    volunteers: list[str]
    counts: np.ndarray  # [V, K, K] expected votes
    named: list[tuple[int, int, float, float] | None]  # per volunteer: (k, j, rate mean, rate lower 5%) or None
    mean_confusion: np.ndarray  # [V, K, K] posterior means


def leave_one_out_counts(fit: FitTables, question: str, answers: list[str], volunteers: list[str]) -> np.ndarray:
    r"""[V, K, K] each volunteer's votes on ``question`` set against their subject's consensus *without their own
    vote*: vote n (volunteer v, answer l) adds p(true answer = k | the subject's other votes) to row k, column l.

    The leave-one-out posterior divides the vote's own likelihood out of the fit's posterior,
    :math:`p_{-n}(k) \propto p(k \mid \text{votes}) / \theta_v[k, l]` (the volunteer's fitted confusion: exact for
    Dawid-Skene at its fitted parameters, the draws' mean confusion for the Bayesian models); for majority vote it is
    the other votes' fractions (a subject with no other vote gives no evidence)."""
    K = len(answers)
    index = {a: i for i, a in enumerate(answers)}
    votes = fit.votes[fit.votes["question"] == question]
    pos = {v: i for i, v in enumerate(volunteers)}
    v = votes["volunteer"].map(pos)
    l = votes["answer"].map(index)
    post = fit.posteriors[fit.posteriors["question"] == question]
    wide = post.pivot_table(index=post["subject"].astype(str), columns="answer", values="p", aggfunc="first")
    wide = wide.reindex(columns=answers).fillna(0.0)
    s = pd.Series(np.arange(len(wide)), index=wide.index).reindex(votes["subject"].astype(str))
    keep = (v.notna() & l.notna()).to_numpy() & s.notna().to_numpy()
    v, l, s = (
        v.to_numpy()[keep].astype(np.int64),
        l.to_numpy()[keep].astype(np.int64),
        s.to_numpy()[keep].astype(np.int64),
    )
    P = wide.to_numpy(float)
    if fit.model not in REGISTRY or model_spec(fit.model).can("likelihood"):
        conf = fit.confusion[fit.confusion["question"] == question]
        theta = np.full((len(volunteers), K, K), np.nan)
        cv = conf["volunteer"].map(pos).to_numpy()
        ck, cl = conf["true_answer"].map(index).to_numpy(), conf["answer"].map(index).to_numpy()
        ok = ~(pd.isna(cv) | pd.isna(ck) | pd.isna(cl))
        theta[cv[ok].astype(int), ck[ok].astype(int), cl[ok].astype(int)] = conf["p"].to_numpy(float)[ok]
        theta = np.where(np.isnan(theta), np.nanmean(theta, axis=0, keepdims=True), theta)
        log_loo = np.log(np.maximum(P[s], 1e-300)) - np.log(np.maximum(theta[v, :, l], 1e-6))
        log_loo -= log_loo.max(axis=1, keepdims=True)
        loo = np.exp(log_loo)
        loo /= loo.sum(axis=1, keepdims=True)
        valid = np.ones(len(v), bool)
    else:  # vote fractions without the vote
        n = np.zeros((len(wide), K))
        np.add.at(n, (s, l), 1.0)
        others = n[s] - np.eye(K)[l]
        total = others.sum(axis=1)
        valid = total > 0
        loo = others / np.maximum(total, 1)[:, None]
    weight = loo * valid[:, None]
    counts = np.zeros((len(volunteers), K, K))
    for k in range(K):
        np.add.at(counts[:, k, :], (v, l), weight[:, k])
    return counts


def question_evidence(fit: FitTables, question: str, draws: int = 2000, seed: int = 0) -> QuestionEvidence:
    """Dirichlet posteriors of every volunteer's confusion on ``question`` and the confusion that stands out."""
    priors = fit.priors[fit.priors["question"] == question]
    answers = list(priors["answer"])
    prior = priors["p"].to_numpy(float)
    prior = prior / prior.sum()
    K = len(answers)
    vols = sorted(fit.volunteers.loc[fit.volunteers["question"] == question, "volunteer"].unique())
    counts = leave_one_out_counts(fit, question, answers, vols)
    population = _population_rows(counts)
    alpha = PRIOR_STRENGTH * population[None] + counts  # [V, K, K]
    mean = alpha / alpha.sum(axis=2, keepdims=True)
    rng = np.random.default_rng(seed)
    off = ~np.eye(K, dtype=bool)
    named: list[tuple[int, int, float, float] | None] = []
    for v in range(len(vols)):
        theta = rng.gamma(alpha[v][None], 1.0, (draws, K, K))
        theta /= theta.sum(axis=2, keepdims=True)  # [D, K, K] draws of the volunteer's confusion
        best, best_cost = None, 0.0
        weighted = theta * off * prior[None, :, None]  # [D, K, K] each error cell's share of their votes
        errors = weighted.sum(axis=(1, 2))
        population_cells = population * off * prior[:, None]
        for k in range(K):
            if counts[v, k].sum() < MIN_ROW_VOTES:
                continue
            for j in range(K):
                if j == k:
                    continue
                cell = theta[:, k, j]
                # what their other errors predict for this cell: the population's rate scaled by how much more (never
                # less) than the population they err elsewhere
                scale = (errors - weighted[:, k, j]) / max(population_cells.sum() - population_cells[k, j], 1e-12)
                expected = population[k, j] * np.maximum(scale, 1.0)
                stands_out = (
                    np.mean(cell > population[k, j]) >= NAMED_PROBABILITY
                    and np.mean(cell > expected) >= NAMED_PROBABILITY
                    and np.mean(cell - expected) >= NAMED_EFFECT
                )
                cost = prior[k] * (mean[v, k, j] - population[k, j])
                if stands_out and cost > best_cost:
                    best, best_cost = (k, j, float(mean[v, k, j]), float(np.quantile(cell, 1 - LEVEL))), cost
        named.append(best)
    return QuestionEvidence(question, answers, prior, population, vols, counts, named, mean)
