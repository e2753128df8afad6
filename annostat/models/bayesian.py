"""What the Bayesian volunteer models share: the per-question fit through ``annostat.infer.bayes`` and the summaries
(answer posteriors averaged over parameter draws, volunteer accuracy with 90% intervals, an ArviZ trace).

A subclass supplies a NumPyro ``numpyro_model(data, n_subjects, n_volunteers, n_answers, batch_size)``,
``log_theta_votes(params, part)`` (each vote's log-probability under every true answer, [B, M, K]) and
``confusion_draws(draws, data)`` ([D, V, K, K]: the confusion the volunteer tables report); optionally
``volunteer_extras`` (more volunteer columns). The pieces several models' maths share are here too: the confusion
from off-diagonal logits, the population prior, hierarchical volunteers' logits, and the observation of the votes.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np

from annostat.fit import QuestionFit
from annostat.models import likelihood
from annostat.models.base import Model, gold_positions, local_codes, vote_counts

#: a model's log-probabilities of each vote under each true answer, from its parameters and a batch of subjects
LogThetaVotes = Callable[[dict[str, jax.Array], dict[str, jax.Array]], jax.Array]

if TYPE_CHECKING:
    import polars as pl

    from annostat.data.priors import Evidence
    from annostat.data.votes import Votes
    from annostat.infer.bayes import SubjectVotes

LEVEL = 0.9  # credible intervals in the volunteer tables
#: prior mean of the population's diagonal advantage in logits (~80% right with three answers): fixes the labels
DIAGONAL_PRIOR_MEAN = 2.0


@partial(jax.jit, static_argnums=0)
def marginal_likelihood(
    log_theta_votes: LogThetaVotes, params: dict[str, jax.Array], data: dict[str, jax.Array], rows: jax.Array | slice
) -> jax.Array:
    """log p(votes of each subject in ``rows``), the true answer summed out: one compiled function, so that
    NumPyro's eager set-up runs of a model compile it once rather than op by op."""
    from annostat.infer.bayes import rows_of, subject_log_likelihood

    part = rows_of(data, rows)
    return subject_log_likelihood(log_theta_votes(params, part), part["mask"], subject_log_prior(params, part))[1]


def subject_log_prior(params: dict[str, jax.Array], part: dict[str, jax.Array]) -> jax.Array:
    """The log prior of each subject of ``part``: the answer priors, with a classifier's evidence when given
    (``likelihood.evidence_log_prior``; its weight sampled as ``prior_weight`` or fixed in the data), and a gold
    answer where one is known (``likelihood.known_answer_log_prior``)."""
    log_prior = jnp.log(params["priors"])
    if "log_evidence" in part:
        weight = params["prior_weight"] if "prior_weight" in params else part["prior_weight"][..., None]
        log_prior = likelihood.evidence_log_prior(log_prior, part["log_evidence"], weight)
    if "known_answer" in part:  # gold answers fix those subjects' answers
        log_prior = likelihood.known_answer_log_prior(log_prior, part["known_answer"])
    return log_prior


def with_prior_weight(params: dict[str, jax.Array], data: dict[str, jax.Array]) -> dict[str, jax.Array]:
    """``params`` and, where a classifier's evidence comes with a learned weight, that weight:
    ``prior_weight ~ Uniform(0, largest weight)``."""
    if "prior_weight_max" not in data:
        return params
    import numpyro
    import numpyro.distributions as dist

    return {**params, "prior_weight": numpyro.sample("prior_weight", dist.Uniform(0.0, data["prior_weight_max"][0]))}


def sample_population_logit(n_answers: int, groups: int = 1) -> jax.Array:
    """The population's off-diagonal logits [K, K-1] ~ Normal(-2, 1.5^2), favouring the diagonal; with ``groups``
    = 2 (volunteers and experts), one population a group, [2, K, K-1]."""
    import numpyro
    import numpyro.distributions as dist

    K = n_answers
    shape = [K, K - 1] if groups == 1 else [groups, K, K - 1]
    return numpyro.sample("population_logit", dist.Normal(-DIAGONAL_PRIOR_MEAN, 1.5).expand(shape).to_event(len(shape)))


def groups_of(data: dict[str, jax.Array]) -> int:
    """How many populations the volunteers form: 2 when some are experts (``volunteer_group`` in the data)."""
    return 2 if "volunteer_group" in data else 1


def observe_votes(
    log_theta_votes: LogThetaVotes,
    params: dict[str, jax.Array],
    data: dict[str, jax.Array],
    n_subjects: int,
    batch_size: int | None,
) -> None:
    """Add every subject's marginal log-likelihood (minibatches of ``batch_size`` subjects, scaled by the plate)."""
    import numpyro

    params = with_prior_weight(params, data)
    with numpyro.plate("subjects", n_subjects, subsample_size=batch_size) as rows:
        numpyro.factor("votes", marginal_likelihood(log_theta_votes, params, data, rows))


def volunteer_logits(params: dict[str, jax.Array], group: jax.Array | None = None) -> jax.Array:
    """Hierarchical volunteers' off-diagonal logits [V, K, K-1]: mu_kl + tau_k z_v,kl - sigma s_v, with
    mu and tau those of each volunteer's group when there are experts (``group`` [V]: 0 volunteers, 1 experts)."""
    mu, tau = params["population_logit"], params["population_scale"]
    if mu.ndim == 3:  # one population a group
        mu, tau = mu[group], tau[group]
    eta = mu + tau[..., None] * params["volunteer_offset"]
    return eta - (params["skill_scale"] * params["skill"])[:, None, None]


def log_confusion(eta: jax.Array) -> jax.Array:
    """[..., K, K-1] off-diagonal logits -> log theta [..., K, K], rows the true answer."""
    return jax.nn.log_softmax(off_diagonal_logits(eta), axis=-1)


def off_diagonal_logits(eta: jax.Array) -> jax.Array:
    """[..., K, K-1] off-diagonal logits -> [..., K, K] logits with 0 on the diagonal."""
    K = eta.shape[-2]
    rows = np.repeat(np.arange(K), K - 1)
    cols = np.array([l for k in range(K) for l in range(K) if l != k], dtype=np.int64)
    full = jnp.zeros(eta.shape[:-1] + (K,), eta.dtype)
    return full.at[..., rows, cols].set(eta.reshape(eta.shape[:-2] + (K * (K - 1),)))


class BayesianModel(Model):
    """Base of the NumPyro models.

    Args:
        inference: ``svi`` (default; minibatches over subjects), ``map`` (posterior mode) or ``nuts`` (small data).
        seed: random seed (fits are reproducible for a seed).
        steps: SVI/MAP optimisation steps.
        learning_rate: initial Adam learning rate (decays tenfold over the steps).
        batch_size: subjects per SVI step (default: all subjects up to 20,000, else 20,000).
        draws: posterior draws kept (SVI: from the guide; NUTS: after warm-up, over all chains).
        warmup, chains: NUTS settings.
        experience: ``question`` (responses to this question before) or ``overall`` (any question) for models of
            learning.
        devices: SVI/MAP data-parallel over this many devices (``annostat.infer.bayes``: each device draws its share
            of a minibatch from its own subjects, gradients averaged); ``None`` or 1: one device. Models with a
            parameter per subject (``item``, ``lre``) and NUTS run on one.
    """

    numpyro_model: Callable
    log_theta_votes: Callable
    #: SVI/MAP can split the subjects over devices: every parameter is global (no per-subject latent variables)
    parallel_svi: bool = True
    #: experts (``votes.experts``) get a population prior of their own
    expert_group: bool = False
    #: a warm start (``annostat.live.update``): per question label, a previous fit's posterior means of its sites and
    #: the labels of its volunteers (``{"values": {site: array}, "volunteers": labels}``); SVI/MAP then start there
    #: and run ``warm_steps`` of the steps
    warm_start: dict[str, dict[str, Any]] | None = None
    warm_steps: float = 0.25

    def __init__(
        self,
        inference: str = "svi",
        seed: int = 0,
        steps: int = 2000,
        learning_rate: float = 0.02,
        batch_size: int | None = None,
        draws: int = 200,
        warmup: int = 500,
        chains: int = 2,
        experience: str = "question",
        devices: int | None = None,
    ) -> None:
        from annostat.infer.bayes import INFERENCE

        if inference not in INFERENCE:
            raise ValueError(f"inference {inference!r} is not one of {', '.join(INFERENCE)}")
        if inference == "map" and not self.spec.can("map"):
            raise ValueError(
                f"inference 'map' is ill-posed for {self.title} (a subject's own difficulty can explain "
                "its votes away); use svi or nuts"
            )
        if experience not in ("question", "overall"):
            raise ValueError("experience must be 'question' or 'overall'")
        if min(steps, draws, warmup, chains) < 1:
            raise ValueError("steps, draws, warmup and chains must be at least 1")
        self.inference, self.seed, self.steps, self.learning_rate = inference, int(seed), int(steps), learning_rate
        self.batch_size, self.draws, self.warmup, self.chains = batch_size, int(draws), int(warmup), int(chains)
        self.experience = experience
        self.devices = None if devices is None else int(devices)
        if self.devices is not None and self.devices > 1:
            from annostat.infer.sharding import device_mesh

            if inference == "nuts" or not self.parallel_svi:
                raise ValueError(
                    f"devices={self.devices}: {self.title} with {inference} runs on one device "
                    "(SVI and MAP of the models without per-subject parameters run on several)"
                )
            device_mesh(self.devices)  # more devices than JAX sees: an error now, not at the first question
        self.inference_results: dict[int, Any] = {}

    def settings(self) -> dict[str, Any]:
        return {
            "inference": self.inference,
            "seed": self.seed,
            "steps": self.steps,
            "learning_rate": self.learning_rate,
            "batch_size": self.batch_size,
            "draws": self.draws,
            "warmup": self.warmup,
            "chains": self.chains,
            "experience": self.experience,
            **({"devices": self.devices} if self.devices is not None else {}),
            "objective": "negative ELBO per step (SVI/MAP); log-likelihood at the posterior mean",
        }

    # ------------------------------------------------------------------ per question
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
        from annostat.infer.bayes import SubjectVotes, answer_posteriors, interval, posterior_predictive_p, run

        K = votes.n_answers[question]
        subjects, s_local = local_codes(subject)
        volunteers, v_local = local_codes(volunteer)
        S, V = len(subjects), len(volunteers)
        part = votes.question_slice(question)
        column = "experience_question" if self.experience == "question" else "experience"
        experience = votes.table[column].to_numpy()[part].astype(np.float32)
        known = gold_positions(subjects, *votes.gold_codes(question))
        experts = votes.expert_mask(volunteers)
        data = SubjectVotes.build(
            s_local,
            v_local,
            answer,
            experience,
            S,
            V,
            K,
            evidence=evidence,
            known_answer=known if (known >= 0).any() else None,
            volunteer_group=experts.astype(np.int32) if experts.any() and self.expert_group else None,
        )
        n_votes = np.bincount(v_local, minlength=V)
        if K < 2:  # one possible answer: nothing to infer
            return QuestionFit(
                question,
                subjects,
                np.ones((S, 1)),
                volunteers,
                n_votes,
                np.ones((V, 1, 1)),
                n_votes[:, None, None].astype(float),
                np.ones(V),
                np.ones(1),
                np.zeros(0),
                np.zeros(0),
            )
        batch = self.batch_size if self.batch_size is not None else (None if S <= 20_000 else 20_000)
        start = self.warm_start.get(str(votes.questions[question])) if self.warm_start else None
        init_values = (
            None
            if start is None
            else warm_values(self.numpyro_model, data, start, votes.volunteers.gather(volunteers), batch)
        )
        steps = self.steps if init_values is None else max(1, round(self.steps * self.warm_steps))
        result = run(
            self.numpyro_model,
            data,
            method=self.inference,
            seed=self.seed + question,
            steps=steps,
            learning_rate=self.learning_rate,
            batch_size=batch,
            draws=self.draws,
            warmup=self.warmup,
            chains=self.chains,
            progress=progress,
            mesh=None if not self.devices or self.devices < 2 or self.inference == "nuts" else _mesh(self.devices),
            init_values=init_values,
        )
        if progress is not None and self.inference == "nuts":
            progress(1, 1)
        draws = result.draws
        checked = answer_posteriors(self.log_theta_votes, subject_log_prior, draws, data, seed=self.seed + question)
        posteriors, log_likelihood = checked.posteriors, checked.log_likelihood
        confusion_draws = self.confusion_draws(draws, data)  # [D, V, K, K]
        priors_draws = draws["priors"]  # [D, K]
        accuracy_draws = np.einsum("dvkk,dk->dv", confusion_draws, priors_draws)
        lo, hi = interval(accuracy_draws, LEVEL)
        confusion = confusion_draws.mean(axis=0)
        # expected votes per (true answer, answer) under the answer posteriors, as Dawid-Skene reports them
        counts = vote_counts(v_local.astype(np.int64) * K + answer, posteriors[s_local], V, K)
        extras = {
            "accuracy_lo": lo,
            "accuracy_hi": hi,
            **self.volunteer_extras(draws, data, v_local),
            "agreement": checked.agreement,
            "agreement_ppp": posterior_predictive_p(checked.agreement, checked.agreement_draws),
        }
        self.inference_results[question] = result
        objective = -result.losses if len(result.losses) else np.array([log_likelihood])
        return QuestionFit(
            question=question,
            subjects=subjects,
            posteriors=posteriors,
            volunteers=volunteers,
            n_votes=n_votes,
            confusion=confusion,
            counts=counts,
            accuracy=accuracy_draws.mean(axis=0),
            priors=priors_draws.mean(axis=0),
            log_likelihood=objective.astype(np.float64),
            log_prior=np.full(len(objective), np.nan),
            converged=_converged(result),
            volunteer_extras=extras,
            inference=_inference_record(result, data, votes, question, checked, subjects),
            final_log_likelihood=log_likelihood,
            prior_weight=None
            if evidence is None
            else float(np.mean(draws["prior_weight"]))
            if evidence.learn
            else evidence.weight,
        )

    def confusion_draws(self, draws: dict[str, np.ndarray], data: SubjectVotes) -> np.ndarray:
        raise NotImplementedError

    def volunteer_extras(
        self, draws: dict[str, np.ndarray], data: SubjectVotes, v_local: np.ndarray
    ) -> dict[str, np.ndarray]:
        return {}


def warm_values(
    model: Callable, data: SubjectVotes, start: dict[str, Any], volunteers: pl.Series, batch: int | None
) -> dict[str, np.ndarray]:
    """The starting values of a warm start on ``data``: each site of ``model`` the previous fit has, its volunteers'
    rows moved to where those volunteers are now (a site in the ``volunteers`` plate; volunteers new to the question
    start at the prior mean) and the other sites as they were; sites whose shape changed (a new answer) are left to
    start at the prior."""
    import numpyro
    from numpyro import handlers

    arrays = data.device()
    with handlers.block(), handlers.seed(rng_seed=0):
        trace = handlers.trace(model).get_trace(arrays, data.n_subjects, data.n_volunteers, data.n_answers, batch)
    from annostat.data.votes import positions_in

    previous = positions_in(volunteers, start["volunteers"])  # each volunteer's row in the previous fit, or -1
    values = {}
    for name, site in trace.items():
        if site["type"] != "sample" or site.get("is_observed") or name not in start["values"]:
            continue
        old = np.asarray(start["values"][name])
        shape = tuple(site["value"].shape)
        plates = {frame.name for frame in site["cond_indep_stack"]}
        if "volunteers" in plates and old.shape[1:] == shape[1:]:
            try:  # the prior mean, for volunteers new to it (not the trace's draw: the site's value is cleared)
                value = np.broadcast_to(np.asarray(numpyro.infer.init_to_mean(dict(site, value=None))), shape).copy()
            except (ValueError, TypeError, NotImplementedError):
                value = np.zeros(shape, old.dtype)
            seen = previous >= 0
            value[seen] = old[previous[seen]]
            values[name] = value
        elif old.shape == shape and not plates:
            values[name] = old
    return values


def _mesh(devices: int):
    from annostat.infer.sharding import device_mesh

    return device_mesh(devices)


def _converged(result) -> bool:
    if result.method == "nuts":
        return bool(result.diagnostics.get("r_hat_max", 1.0) < 1.05)
    change = result.diagnostics.get("loss_change_last_10pc")
    return change is None or abs(change) < 1e-3


def _inference_record(result, data, votes, question, checked, subjects) -> dict[str, Any]:
    """What the ArviZ trace of one question holds (see :meth:`annostat.fit.Fit.inference_data`)."""
    return {
        "method": result.method,
        "draws": result.draws,
        "chains": result.chains,
        "losses": result.losses,
        "sample_stats": result.sample_stats,
        "diagnostics": result.diagnostics,
        "seconds": result.seconds,
        "observed": {"volunteer": data.volunteer, "answer": data.answer, "mask": data.mask},
        "question": votes.questions[question],
        "subjects": subjects,  # the codes of the subjects with votes
        # model checks: pointwise log-likelihood per subject (LOO/WAIC) and replicated volunteer agreement
        "pointwise": checked.pointwise,
        "agreement": checked.agreement,
        "agreement_draws": checked.agreement_draws,
    }
