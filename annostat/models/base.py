"""What every model shares: the per-question loop over a votes table, and timing."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import polars as pl

from annostat.data.priors import Evidence, SubjectPrior
from annostat.data.votes import Votes
from annostat.fit import Fit, QuestionFit
from annostat.infer import hosts
from annostat.models import likelihood
from annostat.models.registry import ModelSpec, model_spec, models_that

if TYPE_CHECKING:
    from annostat.models.likelihood import AnyArray

#: progress(question label, iterations done, iterations at most); models call it between steps
Progress = Callable[[Any, int, int], None]


def vote_fractions(
    subject: np.ndarray, answer: np.ndarray, n_subjects: int, n_answers: int, dtype: type = np.float64
) -> np.ndarray:
    """[S, K] fraction of each subject's votes given to each answer (codes 0..S-1, 0..K-1), as ``dtype``. Votes
    sorted by subject (a question's votes in the table's order) are counted a few million at a time, each part over
    its own span of subjects: no int64 key of every vote."""
    S, K = int(n_subjects), int(n_answers)
    counts = np.zeros(S * K, np.int64)
    step = 1 << 22
    if len(subject) > step and bool((subject[1:] >= subject[:-1]).all()):
        for i in range(0, len(subject), step):
            part, low = subject[i : i + step], int(subject[i])
            key = part - low
            key *= K
            key += answer[i : i + step]
            span = np.bincount(key, minlength=(int(part[-1]) - low + 1) * K)
            counts[low * K : low * K + len(span)] += span
    else:
        counts += np.bincount(subject.astype(np.int64) * K + answer, minlength=S * K)
    fractions: np.ndarray = counts.reshape(S, K).astype(dtype)
    fractions /= fractions.sum(axis=1, keepdims=True)
    return fractions


def local_codes(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(unique codes, codes re-numbered 0..n-1): the subjects or volunteers that vote on one question."""
    if not len(codes):
        return np.zeros(0, codes.dtype), np.zeros(0, np.int32)
    top = int(codes.max()) + 1
    if top > 4 * len(codes) + 1_000_000:  # sparse codes: a sort
        unique, local = np.unique(codes, return_inverse=True)
        return unique, local.astype(np.int32)
    present = np.zeros(top, bool)  # a counting pass: which codes occur, numbered in order
    present[codes] = True
    if present.all():  # already dense: every code 0..max has votes
        return np.arange(top, dtype=np.int32), codes.astype(np.int32, copy=False)
    number = np.cumsum(present, dtype=np.int32)
    number -= 1
    return np.flatnonzero(present).astype(codes.dtype, copy=False), number[codes]


def vote_counts(cells: AnyArray, posteriors: AnyArray, n_volunteers: int, n_answers: int) -> np.ndarray:
    """[V, K, K] expected votes per (volunteer, true answer, answer): each vote's cell (``volunteer * K + answer``)
    weighted by its subject's posterior ``posteriors`` [N, K] (one row a vote), summed."""
    V, K = int(n_volunteers), int(n_answers)
    return (
        np.stack([np.bincount(cells, weights=posteriors[:, k], minlength=V * K) for k in range(K)], -1)
        .reshape(V, K, K)
        .swapaxes(1, 2)
    )


def sorted_positions(known: np.ndarray, codes: np.ndarray, missing: int = -1) -> np.ndarray:
    """Each code's position in the sorted ``known`` codes (int32); ``missing`` where it is not there."""
    if len(known) == 0:
        return np.full(len(codes), missing, np.int32)
    at = np.minimum(np.searchsorted(known, codes), len(known) - 1)
    return np.where((codes >= 0) & (known[at] == codes), at, missing).astype(np.int32)


def gold_positions(subjects: np.ndarray, gold_subjects: np.ndarray, gold_answers: np.ndarray) -> np.ndarray:
    """[S]: the gold answer's code of each of ``subjects`` (sorted codes), -1 where none is known."""
    known = np.full(len(subjects), -1, np.int64)
    at = sorted_positions(subjects, gold_subjects)
    known[at[at >= 0]] = gold_answers[at >= 0]
    return known


class Model:
    """Base of all models: ``fit(votes)`` fits every question and returns a :class:`~annostat.fit.Fit`."""

    name: ClassVar[str] = ""  # the name it is registered under (annostat.models.registry)

    @property
    def spec(self) -> ModelSpec:
        """What the registry knows of this model: title, capabilities, options."""
        return model_spec(self.name)

    @property
    def title(self) -> str:
        return self.spec.title

    def settings(self) -> dict[str, Any]:
        return {}

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
        """Fit one question's votes (sorted by subject). ``evidence`` is a classifier's evidence about the voting
        subjects (in the order of the question's sorted subject codes), for models that take one."""
        raise NotImplementedError

    def fit(self, votes: Votes, progress: Progress | None = None, prior: SubjectPrior | None = None) -> Fit:
        """Fit every question of ``votes``; ``prior`` (:func:`annostat.data.priors.read_prior`) gives subjects a
        classifier's evidence (models with the ``subject_prior`` capability), and its subjects without votes get
        answers from it."""
        if prior is not None and not self.spec.can("subject_prior"):
            raise ValueError(
                f"{self.title} does not take a per-subject prior; the models that do are "
                f"{', '.join(models_that('subject_prior'))}"
            )
        start = time.perf_counter()
        extra = prior.subjects_without_votes(votes) if prior is not None else None
        labels = votes.subjects if extra is None else pl.concat([votes.subjects, extra.cast(votes.subjects.dtype)])
        results = []
        # with several processes (annostat.infer.hosts) each holds a share of the subjects: a question is fitted
        # (by all of them together) when any share has votes on it
        voted = hosts.sum_over_processes(
            np.array([len(votes.arrays(q)[0]) for q in range(votes.n_questions)], np.int64)
        )
        for q, subject, volunteer, answer in votes.iter_questions():
            if voted[q] == 0:
                continue
            label = votes.questions[q]
            step = (lambda done, total, label=label: progress(label, done, total)) if progress else None
            evidence = (
                None if prior is None else prior.evidence(votes, q, votes.subjects.gather(local_codes(subject)[0]))
            )
            result = self.fit_question(votes, q, subject, volunteer, answer, step, evidence=evidence)
            results.append(result if prior is None else _with_prior_only_subjects(result, prior, votes, labels))
        return Fit(
            votes,
            self.name,
            self.settings(),
            results,
            time.perf_counter() - start,
            extra_subjects=extra,
            prior_summary=prior.summary(votes) if prior is not None else None,
        )


def _with_prior_only_subjects(qf: QuestionFit, prior: SubjectPrior, votes: Votes, labels: pl.Series) -> QuestionFit:
    """``qf`` with the subjects that have a prior on the question but no votes on it: each answered by its evidence
    and the fitted answer priors (the shared likelihood of no votes). Subjects stay sorted by code."""
    ratio, has = prior.log_evidence(votes, qf.question, labels)
    has[qf.subjects] = False
    codes = np.flatnonzero(has).astype(qf.subjects.dtype)
    if not len(codes):
        return qf
    weight = qf.prior_weight if qf.prior_weight is not None else 0.0  # None: the prior carried no evidence
    log_prior = likelihood.evidence_log_prior(
        np.log(np.maximum(qf.priors, 1e-30)).astype(np.float32), ratio[codes], np.float32(weight)
    )
    posteriors = np.asarray(likelihood.posterior(log_prior), np.float64).astype(qf.posteriors.dtype)
    subjects = np.concatenate([qf.subjects, codes])
    order = np.argsort(subjects, kind="stable")
    qf.subjects, qf.posteriors = subjects[order], np.concatenate([qf.posteriors, posteriors])[order]
    return qf
