r"""Dawid-Skene: a full confusion matrix per volunteer, fitted by EM in JAX.

Model (per question, :math:`K` answers). Subject :math:`s` has a true answer :math:`z_s \sim \mathrm{Cat}(\pi)`.
Volunteer :math:`v` answering subject :math:`s` gives answer :math:`l` with probability :math:`\theta_v[z_s, l]`.
Votes are independent given the true answers, so

.. math::
    p(\text{votes}) = \prod_s \sum_k \pi_k \prod_{n \in s} \theta_{v_n}[k, l_n].

Priors (MAP): each confusion row :math:`\theta_v[k, \cdot] \sim \mathrm{Dirichlet}(1 + A_k)` with pseudo-counts
:math:`A_{kk} = a_\mathrm{diag}`, :math:`A_{kl} = a_\mathrm{off}` (:math:`l \ne k`), and
:math:`\pi \sim \mathrm{Dirichlet}(1 + a_0)`. The pseudo-counts keep volunteers with a handful of votes from getting
confusion rows of exact zeros and ones (the failure of unsmoothed Dawid-Skene on sparse data), and a diagonal that
outweighs the off-diagonal tells the model that volunteers are better than chance, which fixes the labelling of the
true answers. Default :math:`a_\mathrm{diag} = 2`, :math:`a_\mathrm{off} = 0.25`, :math:`a_0 = 1`: chosen on the
real dog and duck data and on simulated Galaxy Zoo votes (``benchmarks/ds_pseudo_counts.py``,
``models/dawid_skene.md``).

EM (``annostat.infer.em``): start from the vote fractions; M-step: expected counts plus pseudo-counts, normalised;
E-step: posteriors in log space; stop when the relative change of the objective (log-likelihood plus log prior) is
at most ``tol``, or after ``max_iter`` iterations. Float32, jit-compiled, deterministic.

Reference: A. P. Dawid and A. M. Skene (1979), Maximum likelihood estimation of observer error-rates using the EM
algorithm, Journal of the Royal Statistical Society C 28(1), 20-28.

Example:
    >>> from annostat import Votes, DawidSkene
    >>> from annostat.truth.simulate import simulate_questions
    >>> sim = simulate_questions(300, 40, seed=1)
    >>> fit = DawidSkene().fit(Votes.from_frame(sim.votes))
    >>> fit.converged
    True

Its confusions are parameters of the shared volunteer likelihood (:meth:`DawidSkene.parameters`,
:meth:`DawidSkene.log_theta_votes`), so whatever scores votes under a volunteer model (held-out checks, the joint
network's loss) takes Dawid-Skene's as it takes the NumPyro models'.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from annostat.fit import QuestionFit, accuracy_from_confusion
from annostat.infer import hosts
from annostat.infer.em import dawid_skene_em
from annostat.infer.sharding import device_mesh
from annostat.models import likelihood
from annostat.models.base import Model, gold_positions, local_codes, vote_fractions

if TYPE_CHECKING:
    import jax

    from annostat.data.priors import Evidence
    from annostat.data.votes import Votes


def pseudo_count_matrix(n_answers: int, diagonal: float, off_diagonal: float) -> np.ndarray:
    """K x K Dirichlet pseudo-counts: ``diagonal`` on the diagonal, ``off_diagonal`` elsewhere."""
    return np.full((n_answers, n_answers), off_diagonal, np.float32) + np.eye(n_answers, dtype=np.float32) * (
        diagonal - off_diagonal
    )


class DawidSkene(Model):
    """Dawid-Skene with Dirichlet pseudo-counts, fitted by EM in JAX (see the module docstring).

    Args:
        max_iter: most EM iterations per question.
        tol: stop when the objective changes by at most ``tol`` times its size (relative change); 0 never stops early.
        pseudo_diagonal, pseudo_off_diagonal: Dirichlet pseudo-counts on each confusion row.
        prior_pseudo_count: Dirichlet pseudo-count on each answer prior.
        atol_per_vote: also stop when the objective changes by at most this much per vote (crowd-kit's rule).
        eps: floor of a confusion or prior entry before normalising (only matters with zero pseudo-counts).
        crowdkit_stopping: stop as crowd-kit does (gain of the evidence lower bound per vote below
            ``atol_per_vote``), for the crowd-kit drop-in.
        devices: how many devices to split the subjects (and their votes) over, EM's expected counts summed across
            them (``annostat.infer.sharding``); ``None``: every device JAX sees (one CPU device unless
            ``JAX_NUM_CPU_DEVICES`` says more). The same fit as on one device, to float32 rounding.
    """

    name = "ds"

    def __init__(
        self,
        max_iter: int = 100,
        tol: float = 1e-6,
        pseudo_diagonal: float = 2.0,
        pseudo_off_diagonal: float = 0.25,
        prior_pseudo_count: float = 1.0,
        atol_per_vote: float = 0.0,
        eps: float = 1e-10,
        crowdkit_stopping: bool = False,
        devices: int | None = None,
    ) -> None:
        if max_iter < 1:
            raise ValueError("max_iter must be at least 1")
        if min(tol, pseudo_diagonal, pseudo_off_diagonal, prior_pseudo_count, atol_per_vote, eps) < 0:
            raise ValueError("tolerances and pseudo-counts must be non-negative")
        self.max_iter = int(max_iter)
        self.tol = float(tol)
        self.pseudo_diagonal = float(pseudo_diagonal)
        self.pseudo_off_diagonal = float(pseudo_off_diagonal)
        self.prior_pseudo_count = float(prior_pseudo_count)
        self.atol_per_vote = float(atol_per_vote)
        self.eps = float(eps)
        self.crowdkit_stopping = bool(crowdkit_stopping)
        self.devices = None if devices is None else int(devices)
        if self.devices is not None:
            device_mesh(self.devices)  # more devices than JAX sees: an error now, not at the first question

    def settings(self) -> dict[str, Any]:
        return {
            "max_iter": self.max_iter,
            "tol": self.tol,
            "pseudo_diagonal": self.pseudo_diagonal,
            "pseudo_off_diagonal": self.pseudo_off_diagonal,
            "prior_pseudo_count": self.prior_pseudo_count,
            "atol_per_vote": self.atol_per_vote,
            "eps": self.eps,
            **({"crowdkit_stopping": True} if self.crowdkit_stopping else {}),
            **({"devices": self.devices} if self.devices is not None else {}),
        }

    @staticmethod
    def parameters(qf: QuestionFit) -> dict[str, Any]:
        """One question's fitted parameters in the form the shared volunteer likelihood takes
        (``annostat.models.likelihood``): ``log_confusion`` [V, K, K] (rows the true answer; volunteers in the order
        of ``qf.volunteers``) and ``priors`` [K]."""
        return {
            "log_confusion": np.log(np.maximum(qf.confusion, 1e-30)).astype(np.float32),
            "priors": np.asarray(qf.priors, np.float32),
        }

    @staticmethod
    def log_theta_votes(params: dict[str, jax.Array], part: dict[str, jax.Array]) -> jax.Array:
        """Each vote's log-probability under every true answer [..., K], as the NumPyro models give it: ``part``
        holds the votes' ``volunteer`` (positions in ``qf.volunteers``) and ``answer`` codes."""
        K = params["log_confusion"].shape[-1]
        return likelihood.vote_log_likelihood(
            params["log_confusion"], likelihood.cell_index(part["volunteer"], part["answer"], K)
        )

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
        if hosts.count() == 1:
            volunteers, v_local = local_codes(volunteer)
        else:  # every share numbers the question's volunteers alike: those who answered it in any share
            volunteers = hosts.union_codes(volunteer)
            v_local = np.searchsorted(volunteers, volunteer).astype(np.int32)
        S, V = len(subjects), len(volunteers)
        gold_subjects, gold_answers = votes.gold_codes(question)
        known = gold_positions(subjects, gold_subjects, gold_answers)  # [S] the gold answer's code, or -1
        pseudo = pseudo_count_matrix(K, self.pseudo_diagonal, self.pseudo_off_diagonal)
        fixed_counts = fixed_totals = None
        if (known >= 0).any():  # gold subjects: fixed posteriors, their counts constant; EM on the others
            gold_vote = known[s_local] >= 0
            fixed_counts = np.zeros((V, K, K), np.float32)
            np.add.at(fixed_counts, (v_local[gold_vote], known[s_local[gold_vote]], answer[gold_vote]), 1.0)
            fixed_totals = np.bincount(known[known >= 0], minlength=K).astype(np.float32)
        free = np.flatnonzero(known < 0)
        if fixed_counts is not None:
            keep = known[s_local] < 0
            e_subject = np.searchsorted(free, s_local[keep]).astype(np.int32)
            e_volunteer, e_answer = v_local[keep], answer[keep]
        else:
            e_subject, e_volunteer, e_answer = s_local, v_local, answer
        if evidence is not None and fixed_counts is not None:
            evidence = evidence.subset(free)
        if len(free) == 0:  # every subject's answer is known: the M-step alone
            result = _known_answers_only(fixed_counts, fixed_totals, pseudo, self.prior_pseudo_count, self.eps)
        else:
            result = dawid_skene_em(
                e_subject,
                e_volunteer,
                e_answer,
                len(free),
                V,
                K,
                init=vote_fractions(e_subject, e_answer, len(free), K, np.float32),  # EM runs in float32
                pseudo_counts=pseudo,
                prior_pseudo_count=self.prior_pseudo_count,
                eps=self.eps,
                max_iter=self.max_iter,
                rtol=self.tol,
                atol=self.atol_per_vote * len(answer),
                elbo_mode=self.crowdkit_stopping,
                log_evidence=None if evidence is None else evidence.log_ratio,
                prior_weight=1.0 if evidence is None else evidence.weight,
                learn_prior_weight=True if evidence is None else evidence.learn,
                progress=progress,
                mesh=device_mesh(self.devices),
                fixed_counts=fixed_counts,
                fixed_totals=fixed_totals,
            )
        posteriors, counts = result.posteriors, result.counts
        if fixed_counts is not None:  # the gold subjects back in, with their answers
            posteriors = np.zeros((S, K), result.posteriors.dtype)
            posteriors[free] = result.posteriors
            posteriors[known >= 0, known[known >= 0]] = 1.0
            counts = counts + fixed_counts
        return QuestionFit(
            question=question,
            subjects=subjects,
            posteriors=posteriors,
            volunteers=volunteers,
            n_votes=np.bincount(v_local, minlength=V),
            confusion=result.confusion,
            counts=counts,
            accuracy=accuracy_from_confusion(result.confusion, result.priors),
            priors=result.priors,
            log_likelihood=result.log_likelihood,
            log_prior=result.log_prior,
            converged=result.converged,
            elbo=result.elbo,
            prior_weight=result.prior_weight,
        )


def _known_answers_only(counts, totals, pseudo, prior_pseudo, eps):
    """The fit when every subject's answer is known: the confusions and priors of the M-step."""
    from annostat.infer.em import EMResult, log_confusion_from_counts, log_priors_from_totals

    log_theta = np.asarray(log_confusion_from_counts(counts, pseudo, np.float32(eps)))
    log_pi = np.asarray(log_priors_from_totals(totals, np.float32(prior_pseudo), np.float32(eps)))
    empty = np.zeros(0)
    return EMResult(
        posteriors=np.zeros((0, counts.shape[-1]), np.float32),
        confusion=np.exp(log_theta),
        counts=np.zeros_like(counts),
        priors=np.exp(log_pi),
        log_likelihood=empty,
        log_prior=empty,
        elbo=empty,
        converged=True,
    )
