"""What every model shares: the per-question loop over a votes table, and timing."""

from __future__ import annotations

import time
from typing import Any, Callable, ClassVar

import numpy as np

from annostat.fit import Fit, QuestionFit
from annostat.models.registry import ModelSpec, model_spec
from annostat.data.votes import Votes

#: progress(question label, iterations done, iterations at most); models call it between steps
Progress = Callable[[Any, int, int], None]

def vote_fractions(subject: np.ndarray, answer: np.ndarray, n_subjects: int, n_answers: int) -> np.ndarray:
    """[S, K] fraction of each subject's votes given to each answer (codes 0..S-1, 0..K-1)."""
    counts = np.bincount(subject.astype(np.int64) * n_answers + answer, minlength=n_subjects * n_answers)
    counts = counts.reshape(n_subjects, n_answers).astype(np.float64)
    return counts / counts.sum(axis=1, keepdims=True)


def local_codes(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(unique codes, codes re-numbered 0..n-1): the subjects or volunteers that vote on one question."""
    if len(codes) and np.bincount(codes).all():  # already dense: every code 0..max has votes
        return np.arange(int(codes.max()) + 1, dtype=np.int32), codes.astype(np.int32, copy=False)
    unique, local = np.unique(codes, return_inverse=True)
    return unique, local.astype(np.int32)


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
        self, votes: Votes, question: int, subject: np.ndarray, volunteer: np.ndarray, answer: np.ndarray,
        progress: Callable[[int, int], None] | None,
    ) -> QuestionFit:
        raise NotImplementedError

    def fit(self, votes: Votes, progress: Progress | None = None) -> Fit:
        start = time.perf_counter()
        results = []
        for q, subject, volunteer, answer in votes.iter_questions():
            if len(subject) == 0:
                continue
            label = votes.questions[q]
            step = (lambda done, total, label=label: progress(label, done, total)) if progress else None
            results.append(self.fit_question(votes, q, subject, volunteer, answer, step))
        return Fit(votes, self.name, self.settings(), results, time.perf_counter() - start)
