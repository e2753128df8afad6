r"""Learning curves: each volunteer's confusion changes with their experience, pooled hierarchically per question.

Model (per question, :math:`K` answers, NumPyro, non-centred). As in hierarchical Dawid-Skene
(``annostat.models.hierarchical``) each volunteer has off-diagonal confusion logits :math:`\eta_{v,kl}` (diagonal
fixed at 0) around a population :math:`\mu_{kl}`; these describe the volunteer when they start. With experience
:math:`e` (their count of earlier responses, to this question by default) every wrong answer becomes less likely by the
same amount, a skill gain that saturates:

.. math::
    g_v &= \gamma + \sigma_g u_v, \quad u_v \sim \mathcal{N}(0, 1) &\text{total gain (logits; negative: declining)} \\
    \log h_v &= \log h_0 + \sigma_h w_v, \quad w_v \sim \mathcal{N}(0, 1) &\text{votes to gain } 63\% \text{ of it} \\
    \eta_{v,kl}(e) &= \eta_{v,kl} - g_v \, (1 - e^{-e / h_v}) \\
    \gamma &\sim \mathcal{N}(1, 1), \; \sigma_g \sim \mathrm{HalfNormal}(1), \;
    \log h_0 \sim \mathcal{N}(\log 20, 1), \; \sigma_h \sim \mathrm{HalfNormal}(0.5)

so the volunteer's accuracy :math:`\sum_k \pi_k \theta_v(e)[k, k]` rises (or falls) from a *start* at :math:`e = 0`
to a *plateau* as :math:`e \to \infty` at *rate* :math:`1 / h_v` per response. The population curve takes the
population values (:math:`\eta = \mu`, :math:`g = \gamma`, :math:`h = h_0`). The true answers are summed out
analytically. The confusion and accuracy the volunteer tables report are the volunteer's at their latest experience
(what they would do now); ``start``, ``plateau`` and ``rate`` come with 90% intervals.

Where the curve comes from: the exponential approach to a plateau is the law of practice Heathcote, Brown and
Mewhort (2000) found for individual learners (it fitted better than the power law in every one of 40 unaveraged data
sets; a power law appears only when learners with different rates are averaged, which is why the rate here is each
volunteer's own); applied to a confusion's logits, so accuracy saturates below 1. The hierarchical confusion around a
population is Paun et al.'s (2018). Whether Galaxy Zoo volunteers' skill does follow it is an empirical question the
model answers for each fit (``start``, ``plateau``, ``rate`` with intervals; ``annostat plot``).

References: A. Heathcote, S. Brown, D. J. K. Mewhort (2000), The power law repealed: the case for an exponential law
of practice, Psychonomic Bulletin & Review 7(2), 185-207; E. Paun, B. Carpenter, J. Chamberlain, D. Hovy,
U. Kruschwitz, M. Poesio (2018), Comparing Bayesian models of annotation, TACL 6, 571-585.

Example:
    >>> from annostat import Votes
    >>> from annostat.models.learning import LearningCurve
    >>> from annostat.truth.simulate import simulate_questions
    >>> sim = simulate_questions(200, 30, questions=["smooth-or-featured"], seed=1)
    >>> fit = LearningCurve(inference="map", steps=300).fit(Votes.from_frame(sim.votes))
    >>> {"start", "plateau", "rate"} <= set(fit.volunteers.columns)
    True
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
import numpy as np

from annostat.models.bayesian import (
    LEVEL,
    BayesianModel,
    log_confusion,
    observe_votes,
    off_diagonal_logits,
    sample_population_logit,
)

if TYPE_CHECKING:
    from annostat.infer.bayes import SubjectVotes


def learning_model(
    data: dict[str, jax.Array], n_subjects: int, n_volunteers: int, n_answers: int, batch_size: int | None = None
) -> None:
    """NumPyro model: learning curves on one question's votes (``SubjectVotes.device()`` arrays)."""
    import numpyro
    import numpyro.distributions as dist

    K = n_answers
    params = {
        "population_logit": sample_population_logit(K),
        "population_scale": numpyro.sample("population_scale", dist.HalfNormal(1.0).expand([K]).to_event(1)),
        "gain_mean": numpyro.sample("gain_mean", dist.Normal(1.0, 1.0)),
        "gain_scale": numpyro.sample("gain_scale", dist.HalfNormal(1.0)),
        "log_halflife_mean": numpyro.sample("log_halflife_mean", dist.Normal(np.log(20.0), 1.0)),
        "log_halflife_scale": numpyro.sample("log_halflife_scale", dist.HalfNormal(0.5)),
        "priors": numpyro.sample("priors", dist.Dirichlet(jnp.ones(K))),
    }
    with numpyro.plate("volunteers", n_volunteers):
        params["volunteer_offset"] = numpyro.sample(
            "volunteer_offset", dist.Normal(0.0, 1.0).expand([K, K - 1]).to_event(2)
        )
        params["gain_offset"] = numpyro.sample("gain_offset", dist.Normal(0.0, 1.0))
        params["halflife_offset"] = numpyro.sample("halflife_offset", dist.Normal(0.0, 1.0))
    observe_votes(LearningCurve.log_theta_votes, params, data, n_subjects, batch_size)


def _volunteer_curve(params):
    """Per volunteer: starting off-diagonal logits [V, K, K-1], gain [V], half-life [V]."""
    eta = params["population_logit"] + params["population_scale"][:, None] * params["volunteer_offset"]
    gain = params["gain_mean"] + params["gain_scale"] * params["gain_offset"]
    halflife = jnp.exp(params["log_halflife_mean"] + params["log_halflife_scale"] * params["halflife_offset"])
    return eta, gain, halflife


def _log_confusion_at(eta, gain, halflife, experience):
    """log theta at ``experience`` (broadcast over leading axes of eta[..., K, K-1])."""
    skill = gain * (1.0 - jnp.exp(-experience / halflife))
    return log_confusion(eta - skill[..., None, None])


def _accuracy(log_theta, priors):
    return jnp.einsum("...kk,k->...", jnp.exp(log_theta), priors)


class LearningCurve(BayesianModel):
    """Confusion that changes with experience, pooled hierarchically (see the module docstring).

    Args: as :class:`~annostat.models.bayesian.BayesianModel`; ``experience`` chooses the experience count
    (``question``: this question's earlier responses; ``overall``: any question's).
    """

    name = "learning"
    numpyro_model = staticmethod(learning_model)

    @staticmethod
    def log_theta_votes(params: dict[str, jax.Array], part: dict[str, jax.Array]) -> jax.Array:
        """log theta_v(e)[k, l] of each vote under every true answer k, [B, M, K], without building the [K, K]
        matrix per vote: every off-diagonal logit drops by the same skill(e), so row k's normaliser is
        log(1 + exp(-skill) sum_{l != k} exp(eta_kl)) = softplus(LSE_k - skill)."""
        eta, gain, halflife = _volunteer_curve(params)
        full = off_diagonal_logits(eta)  # [V, K, K], 0 on the diagonal
        row_lse = jax.nn.logsumexp(eta, axis=-1)  # [V, K]: over the off-diagonal logits of each row
        v, e, l = part["volunteer"], part["experience"], part["answer"]
        skill = (gain[v] * (1.0 - jnp.exp(-e / halflife[v])))[..., None]  # [B, M, 1]
        K = eta.shape[-2]
        logit = jnp.where(jnp.arange(K) == l[..., None], 0.0, full[v, :, l] - skill)  # [B, M, K]
        return logit - jax.nn.softplus(row_lse[v] - skill)

    def confusion_draws(self, draws: dict[str, np.ndarray], data: SubjectVotes) -> np.ndarray:
        latest = np.zeros(data.n_volunteers, np.float32)
        np.maximum.at(latest, data.volunteer[data.mask], data.experience[data.mask])

        def one(params):
            eta, gain, halflife = _volunteer_curve(params)
            return jnp.exp(_log_confusion_at(eta, gain, halflife, jnp.asarray(latest)))

        return np.asarray(jax.lax.map(one, {k: jnp.asarray(v) for k, v in draws.items()}))

    def volunteer_extras(
        self, draws: dict[str, np.ndarray], data: SubjectVotes, v_local: np.ndarray
    ) -> dict[str, np.ndarray]:
        from annostat.infer.bayes import interval

        def one(params):
            eta, gain, halflife = _volunteer_curve(params)
            start = _accuracy(log_confusion(eta), params["priors"])
            plateau = _accuracy(log_confusion(eta - gain[:, None, None]), params["priors"])
            return jnp.stack([start, plateau, 1.0 / halflife])

        values = np.asarray(jax.lax.map(one, {k: jnp.asarray(v) for k, v in draws.items()}))  # [D, 3, V]
        out = {}
        for i, name in enumerate(("start", "plateau", "rate")):
            lo, hi = interval(values[:, i], LEVEL)
            out.update({name: values[:, i].mean(axis=0), f"{name}_lo": lo, f"{name}_hi": hi})
        return out

    @staticmethod
    def volunteer_curves(
        draws: dict[str, np.ndarray], volunteers: np.ndarray, experience: np.ndarray, level: float = LEVEL
    ) -> dict[str, np.ndarray]:
        """Accuracy of each of ``volunteers`` (positions in the fit's volunteer order) at each ``experience``:
        mean and ``level`` interval over the draws, each [len(volunteers), len(experience)]."""
        from annostat.infer.bayes import interval

        e = jnp.asarray(experience, jnp.float32)
        chosen = np.asarray(volunteers)
        keys = (
            "population_logit",
            "population_scale",
            "gain_mean",
            "gain_scale",
            "log_halflife_mean",
            "log_halflife_scale",
            "priors",
            "volunteer_offset",
            "gain_offset",
            "halflife_offset",
        )

        def one(params):
            eta, gain, halflife = _volunteer_curve(params)
            log_theta = _log_confusion_at(eta[chosen, None], gain[chosen, None], halflife[chosen, None], e[None, :])
            return _accuracy(log_theta, params["priors"])  # [C, E]

        values = np.asarray(jax.lax.map(one, {k: jnp.asarray(draws[k]) for k in keys}))
        lo, hi = interval(values, level)
        return {"experience": np.asarray(experience), "accuracy": values.mean(axis=0), "lo": lo, "hi": hi}

    @staticmethod
    def population_curve(
        draws: dict[str, np.ndarray], experience: np.ndarray, level: float = LEVEL
    ) -> dict[str, np.ndarray]:
        """The population's accuracy at each ``experience``: mean and ``level`` interval over the draws."""
        from annostat.infer.bayes import interval

        e = jnp.asarray(experience, jnp.float32)

        def one(params):
            log_theta = _log_confusion_at(
                params["population_logit"], params["gain_mean"], jnp.exp(params["log_halflife_mean"]), e
            )
            return _accuracy(log_theta, params["priors"])

        keys = ("population_logit", "gain_mean", "log_halflife_mean", "priors")
        values = np.asarray(jax.lax.map(one, {k: jnp.asarray(draws[k]) for k in keys}))
        lo, hi = interval(values, level)
        return {"experience": np.asarray(experience), "accuracy": values.mean(axis=0), "lo": lo, "hi": hi}
