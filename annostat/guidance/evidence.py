r"""The evidence behind the advice: which of a volunteer's confusions stands out, judged on posteriors.

**Evidence, judged on posteriors.** Each row *k* of a volunteer's confusion (their answers when the true answer is
*k*) gets a Dirichlet posterior from their votes on subjects whose consensus is confident (the fit's posterior of
the most probable answer at least 0.9, from at least 5 votes on the question: a fit's expected counts would carry
the consensus's own mistakes on hard questions, and on branch questions that only a few volunteers reached, into
every volunteer's confusion) and a prior pulled toward the population (8 pseudo-votes),
:math:`\theta_{vk} \sim \mathrm{Dirichlet}(c\,\bar\theta_k + n_{vk})` with :math:`\bar\theta_k` the population's row
(the median over volunteers with at least 5 votes on the row, renormalised) and :math:`c = 8`. A confusion
*(k, j)* is named only when it stands out in draws from these posteriors: with probability at least 0.99 the
volunteer's rate exceeds both the population's rate for the cell and the rate their other errors predict for it (the
population's rate scaled by how much more often than the population they err on every other cell, never scaled
down), and on average by at least 0.15. A volunteer who errs more everywhere has no confusion that stands out; the
strict probability keeps chance patterns among a volunteer's K(K-1) cells from being named.
Of the cells that stand out, the one costing most accuracy (:math:`\pi_k(\hat\theta_{vkj} - \bar\theta_{kj})`, with
:math:`\pi` the answer priors) is named. A volunteer whose errors are spread evenly gets advice about overall accuracy.

The tables a fit gives, with labels as text (:class:`FitTables`), are what all of the guidance reads.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from annostat.fit import Fit

LEVEL = 0.9
PRIOR_STRENGTH = 8.0
NAMED_PROBABILITY = 0.99
NAMED_EFFECT = 0.15
MIN_ROW_VOTES = 3.0
CONFIDENT = 0.9
MIN_SUBJECT_VOTES = 5


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
    def of(cls, fit: Fit) -> "FitTables":
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


def question_evidence(fit: FitTables, question: str, draws: int = 2000, seed: int = 0) -> QuestionEvidence:
    """Dirichlet posteriors of every volunteer's confusion on ``question`` and the confusion that stands out."""
    priors = fit.priors[fit.priors["question"] == question]
    answers = list(priors["answer"])
    prior = priors["p"].to_numpy(float)
    prior = prior / prior.sum()
    K = len(answers)
    vols = sorted(fit.volunteers.loc[fit.volunteers["question"] == question, "volunteer"].unique())
    index = {a: i for i, a in enumerate(answers)}
    pos = {v: i for i, v in enumerate(vols)}
    # each volunteer's votes on subjects whose consensus is confident, by the consensus answer
    post = fit.posteriors[fit.posteriors["question"] == question]
    best = post.loc[post.groupby("subject")["p"].idxmax()]
    votes = fit.votes[fit.votes["question"] == question]
    per_subject = votes["subject"].astype(str).value_counts()
    best = best[(best["p"] >= CONFIDENT)
                & (best["subject"].astype(str).map(per_subject).fillna(0).to_numpy() >= MIN_SUBJECT_VOTES)]
    sure = pd.Series(best["answer"].to_numpy(), index=best["subject"].astype(str).to_numpy())
    votes = votes[votes["subject"].astype(str).isin(sure.index)]
    counts = np.zeros((len(vols), K, K))
    cells = pd.DataFrame({"v": votes["volunteer"].map(pos).to_numpy(),
                          "k": sure.loc[votes["subject"].astype(str)].map(index).to_numpy(),
                          "j": votes["answer"].map(index).to_numpy()}).dropna().astype(np.int64)
    np.add.at(counts, (cells["v"].to_numpy(), cells["k"].to_numpy(), cells["j"].to_numpy()), 1.0)
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
                stands_out = (np.mean(cell > population[k, j]) >= NAMED_PROBABILITY
                              and np.mean(cell > expected) >= NAMED_PROBABILITY
                              and np.mean(cell - expected) >= NAMED_EFFECT)
                cost = prior[k] * (mean[v, k, j] - population[k, j])
                if stands_out and cost > best_cost:
                    best, best_cost = (k, j, float(mean[v, k, j]), float(np.quantile(cell, 1 - LEVEL))), cost
        named.append(best)
    return QuestionEvidence(question, answers, prior, population, vols, counts, named, mean)
