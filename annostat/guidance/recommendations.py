r"""Recommendations for each volunteer and question, and what fixing a confusion would gain.

**Accuracy intervals** come from the model where it has them (the Bayesian models' ``accuracy_lo``/``accuracy_hi``);
for Dawid-Skene and majority vote they are a Beta approximation, :math:`\mathrm{Beta}(1 + a n, 1 + (1 - a) n)` for
estimated accuracy *a* on *n* votes (as if they were independent right-or-wrong trials), labelled
``interval: "beta approximation"`` in the table.

**Recommendations**: ``too few votes to tell`` (fewer than ``min_votes`` on the question), ``possible low-effort
pattern`` (one answer for at least 90% of their votes where the population gives it under half the time, and an
accuracy credibly below the population's median), ``review a confusion`` (a confusion stands out), ``keep practising``
(accuracy credibly below the median, errors spread evenly), ``ready for harder subjects`` (accuracy credibly above the
population's 75th percentile), else ``doing well``.

**Impact**: for a named confusion, the gain in the volunteer's accuracy if the cell fell to the population's rate (the
difference moving to the right answer), and the gain in information per vote (the mutual information between the true
answer and their vote, bits). The project table ranks every cell of every question by the expected wrong votes it
causes across all volunteers and the information per vote the catalogue would gain if nobody made it: where the field
guide or tutorial should improve.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from annostat.errors import InputError
from annostat.guidance.evidence import LEVEL, FitTables, mutual_information, question_evidence
from annostat.guidance.wording import sentence

RECOMMENDATIONS = (
    "too few votes to tell",
    "possible low-effort pattern",
    "review a confusion",
    "keep practising",
    "ready for harder subjects",
    "doing well",
)
ADVICE_COLUMNS = [
    "volunteer",
    "question",
    "n",
    "accuracy",
    "accuracy_lo",
    "accuracy_hi",
    "interval",
    "percentile",
    "trend",
    "confusion_true",
    "confusion_answer",
    "confusion_rate",
    "confusion_rate_lo",
    "population_rate",
    "recommendation",
    "advice",
    "accuracy_gain",
    "information_gain_bits",
]


PROJECT_COLUMNS = [
    "question",
    "true_answer",
    "answer",
    "expected_wrong_votes",
    "share_of_errors",
    "population_rate",
    "volunteers_named",
    "information_gain_bits_per_vote",
]


def _trend(row: pd.Series) -> str:
    needed = {"start_lo", "start_hi", "plateau", "plateau_lo", "plateau_hi"}
    if not needed <= set(row.index) or pd.isna(row["start_lo"]):
        return ""
    if row["plateau_hi"] < row["start_lo"]:
        return "declining"
    if row["plateau_lo"] > row["start_hi"] and row["accuracy"] < row["plateau"] - 0.02:
        return "improving"
    return "plateaued"


def advise(fit: FitTables, min_votes: int = 10, draws: int = 2000, seed: int = 0) -> dict[str, pd.DataFrame]:
    """The advice, impact and project tables of a fit (volunteer names as in the fit; see
    :func:`~annostat.guidance.advise.write_advice`)."""
    rows, project = [], []
    evidence = {}
    questions = sorted(fit.volunteers["question"].unique())
    for q_index, question in enumerate(questions):
        ev = question_evidence(fit, question, draws=draws, seed=seed + q_index)
        K = len(ev.answers)
        if K < 2:  # one answer: every vote is right, there is nothing to confuse or advise
            continue
        evidence[question] = ev
        vols = fit.volunteers[fit.volunteers["question"] == question].set_index("volunteer")
        qualified = vols[vols["n"] >= min_votes]["accuracy"]
        median = float(qualified.median()) if len(qualified) else float(vols["accuracy"].median())
        upper = float(qualified.quantile(0.75)) if len(qualified) else median
        votes = fit.votes[fit.votes["question"] == question]
        top = votes.groupby("volunteer")["answer"].agg(lambda a: a.value_counts().index[0])
        top_share = votes.groupby("volunteer")["answer"].agg(lambda a: a.value_counts(normalize=True).iloc[0])
        answer_share = votes["answer"].value_counts(normalize=True)
        info_now = np.array([mutual_information(ev.mean_confusion[v], ev.prior) for v in range(len(ev.volunteers))])
        for v, name in enumerate(ev.volunteers):
            if name not in vols.index:
                continue
            r = vols.loc[name]
            n = int(r["n"])
            if {"accuracy_lo", "accuracy_hi"} <= set(r.index) and pd.notna(r["accuracy_lo"]):
                lo, hi, interval = float(r["accuracy_lo"]), float(r["accuracy_hi"]), "model posterior"
            else:  # Beta around the fit's estimate, as if its n votes were n independent right/wrong trials
                acc = float(r["accuracy"])
                lo, hi = _beta_interval(1 + acc * n, 1 + (1 - acc) * n)
                lo, hi = min(lo, acc), max(hi, acc)
                interval = "beta approximation"
            row: dict[str, Any] = {
                "volunteer": name,
                "question": question,
                "n": n,
                "accuracy": float(r["accuracy"]),
                "accuracy_lo": lo,
                "accuracy_hi": hi,
                "interval": interval,
                "percentile": float(100 * (qualified < r["accuracy"]).mean() + 50 * (qualified == r["accuracy"]).mean())
                if len(qualified)
                else np.nan,
                "trend": _trend(r),
                "confusion_true": None,
                "confusion_answer": None,
                "confusion_rate": np.nan,
                "confusion_rate_lo": np.nan,
                "population_rate": np.nan,
                "accuracy_gain": 0.0,
                "information_gain_bits": 0.0,
                "top_answer": top.get(name),
                "top_share": float(top_share.get(name, 0)),
            }
            named = ev.named[v]
            common = answer_share.get(row["top_answer"], 0.0)
            if n < min_votes:
                rec = "too few votes to tell"
            elif row["top_share"] >= 0.9 and common < 0.5 and hi < median:
                rec = "possible low-effort pattern"
            elif named is not None:
                k, j, rate, rate_lo = named
                fixed = ev.mean_confusion[v].copy()
                moved = rate - ev.population[k, j]
                fixed[k, j] -= moved
                fixed[k, k] += moved
                row.update(
                    confusion_true=ev.answers[k],
                    confusion_answer=ev.answers[j],
                    confusion_rate=rate,
                    confusion_rate_lo=rate_lo,
                    population_rate=float(ev.population[k, j]),
                    accuracy_gain=float(ev.prior[k] * moved),
                    information_gain_bits=mutual_information(fixed, ev.prior) - info_now[v],
                )
                rec = "review a confusion"
            elif hi < median:
                rec = "keep practising"
            elif lo > upper:
                rec = "ready for harder subjects"
            else:
                rec = "doing well"
            row["recommendation"] = rec
            row["advice"] = sentence(rec, question, ev.answers, row)
            rows.append(row)
        # project level: every cell of the question
        total_votes = ev.counts.sum()
        wrong_total = (ev.counts * ~np.eye(K, dtype=bool)).sum()
        for k in range(K):
            for j in range(K):
                if j == k:
                    continue
                gain = 0.0
                for v in range(len(ev.volunteers)):
                    fixed = ev.mean_confusion[v].copy()
                    fixed[k, k] += fixed[k, j]
                    fixed[k, j] = 0.0
                    gain += ev.counts[v].sum() * (mutual_information(fixed, ev.prior) - info_now[v])
                project.append(
                    {
                        "question": question,
                        "true_answer": ev.answers[k],
                        "answer": ev.answers[j],
                        "expected_wrong_votes": float(ev.counts[:, k, j].sum()),
                        "share_of_errors": float(ev.counts[:, k, j].sum() / max(wrong_total, 1e-12)),
                        "population_rate": float(ev.population[k, j]),
                        "volunteers_named": int(sum(1 for x in ev.named if x is not None and x[:2] == (k, j))),
                        "information_gain_bits_per_vote": float(gain / max(total_votes, 1e-12)),
                    }
                )
    if not evidence:
        raise InputError(
            f"every question of the fit ({', '.join(map(str, questions)) or 'none'}) has a single answer: "
            "there is no confusion to advise on"
        )
    advice = pd.DataFrame(rows, columns=[*ADVICE_COLUMNS, "top_answer", "top_share"] if not rows else None)
    impact = advice[advice["recommendation"] == "review a confusion"][
        [
            "volunteer",
            "question",
            "confusion_true",
            "confusion_answer",
            "confusion_rate",
            "population_rate",
            "n",
            "accuracy_gain",
            "information_gain_bits",
        ]
    ].sort_values("accuracy_gain", ascending=False)
    project_table = pd.DataFrame(project, columns=PROJECT_COLUMNS).sort_values(
        ["information_gain_bits_per_vote"], ascending=False
    )
    return {
        "advice": advice,
        "impact": impact.reset_index(drop=True),
        "single_answer_questions": [str(q) for q in questions if q not in evidence],
        "project": project_table.reset_index(drop=True),
        "evidence": evidence,
    }


def _beta_interval(a: float, b: float, level: float = LEVEL) -> tuple[float, float]:
    from scipy.stats import beta

    tail = (1 - level) / 2
    return float(beta.ppf(tail, a, b)), float(beta.ppf(1 - tail, a, b))
