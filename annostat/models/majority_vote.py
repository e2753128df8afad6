r"""Majority vote: each subject's answer is the one most of its volunteers gave.

Posteriors are the vote fractions :math:`p(z_s = k) = n_{sk} / n_s`, where :math:`n_{sk}` counts the votes for answer
:math:`k` on subject :math:`s`. A tie between answers goes to the answer that sorts first (the lowest answer code);
ties are flagged in the ``tie`` column of the answers table and counted in ``fit.json``.

Volunteers are scored against the consensus: ``accuracy`` is the share of a volunteer's votes that agree with the
majority answer, and the confusion matrix is the volunteer's answers tabulated against the majority answers
(rows with no votes are NaN). These are agreement rates, not skills: a volunteer who agrees with a wrong crowd scores
well. Use :class:`~annostat.models.dawid_skene.DawidSkene` for calibrated skills.

Example:
    >>> from annostat import Votes, MajorityVote
    >>> import pandas as pd
    >>> votes = Votes.from_frame(pd.DataFrame({"subject": [1, 1, 1, 2], "volunteer": ["a", "b", "c", "a"],
    ...                                        "answer": ["smooth", "smooth", "featured", "featured"]}))
    >>> MajorityVote().fit(votes).answers[["subject", "answer", "p"]].to_dict("records")
    [{'subject': 1, 'answer': 'smooth', 'p': 0.6666666865348816}, {'subject': 2, 'answer': 'featured', 'p': 1.0}]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from annostat.fit import QuestionFit
from annostat.models.base import Model, gold_positions, local_codes, vote_fractions

if TYPE_CHECKING:
    from annostat.data.priors import Evidence
    from annostat.data.votes import Votes


class MajorityVote(Model):
    """Vote fractions per subject and question; ties go to the lowest answer code and are reported."""

    name = "mv"

    def fit_question(
        self,
        votes: Votes,
        question: int,
        subject: np.ndarray,
        volunteer: np.ndarray,
        answer: np.ndarray,
        progress: Callable[[int, int], None] | None,
        evidence: Evidence | None = None,
    ) -> QuestionFit:
        K = votes.n_answers[question]
        subjects, s_local = local_codes(subject)
        volunteers, v_local = local_codes(volunteer)
        S, V = len(subjects), len(volunteers)
        fractions = vote_fractions(s_local, answer, S, K)
        known = gold_positions(subjects, *votes.gold_codes(question))
        if (known >= 0).any():  # gold answers are the answers of their subjects
            fractions[known >= 0] = 0.0
            fractions[known >= 0, known[known >= 0]] = 1.0
        best = np.argmax(fractions, axis=1)
        ties = (fractions == fractions.max(axis=1, keepdims=True)).sum(axis=1) > 1
        consensus = best[s_local]
        counts = np.zeros((V, K, K))
        np.add.at(counts, (v_local, consensus, answer), 1.0)
        n_votes = counts.sum(axis=(1, 2))
        with np.errstate(invalid="ignore", divide="ignore"):
            confusion = counts / counts.sum(axis=2, keepdims=True)
        accuracy = np.einsum("vkk->v", counts) / n_votes
        if progress:
            progress(1, 1)
        return QuestionFit(
            question=question,
            subjects=subjects,
            posteriors=fractions,
            volunteers=volunteers,
            n_votes=n_votes,
            confusion=confusion,
            counts=counts,
            accuracy=accuracy,
            priors=fractions.mean(axis=0),
            log_likelihood=np.zeros(0),
            log_prior=np.zeros(0),
            converged=True,
            ties=ties,
        )
