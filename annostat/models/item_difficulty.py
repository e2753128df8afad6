r"""Item difficulty and logistic random effects: some galaxies are hard for everyone.

Two models of Paun et al.'s family that add a difficulty per subject to the confusion logits (off-diagonal logits
rise for a hard subject, so every wrong answer becomes more likely):

.. math::
    \delta_s = \sigma_\delta\, d_s, \quad d_s \sim \mathcal{N}(0, 1), \quad \sigma_\delta \sim \mathrm{HalfNormal}(1)
    \qquad \theta_{v,s}[k, \cdot] = \mathrm{softmax}(0 \text{ at } k, \eta_{v,k\cdot} + \delta_s)

- ``item`` (*ItemDiff*): one pooled confusion for all volunteers, :math:`\eta_{v} = \mu`;
- ``lre`` (*LogRndEff*): volunteers partially pooled as in hierarchical Dawid-Skene,
  :math:`\eta_{v,kl} = \mu_{kl} + \tau_k z_{v,kl} - \sigma s_v`, plus the difficulty.

Priors as in ``annostat.models.hierarchical``. Measured weakness of ``item``: with one pooled confusion, disagreement
caused by poor or spamming volunteers can only be explained as difficulty, and the fit may settle where every subject
is hard (answer accuracy 0.72-0.78 against majority vote's 0.83 on simulated votes with 15% spammers; 0.97 with 5%).
Prefer ``lre``, which models both. The difficulty is a per-subject parameter, so these models fit all
subjects at every step (no minibatches), and their posterior mode is degenerate (a subject's own difficulty can explain
its votes away: measured 0.76 answer accuracy against 0.97 with SVI), so ``map`` is refused. ``subject_difficulty`` (posterior mean of :math:`\delta_s`) is kept on the
model after a fit, per question. The true answer is summed out analytically.

Reference: E. Paun, B. Carpenter, J. Chamberlain, D. Hovy, U. Kruschwitz, M. Poesio (2018), Comparing Bayesian models
of annotation, TACL 6, 571-585.

Example:
    >>> from annostat import Votes
    >>> from annostat.models.item_difficulty import ItemDifficulty
    >>> from annostat.truth.simulate import simulate_questions
    >>> votes = Votes.from_frame(simulate_questions(200, 30, questions=["smooth-or-featured"]).votes)
    >>> fit = ItemDifficulty(inference="svi", steps=200, draws=16).fit(votes)
    >>> fit.converged in (True, False)
    True
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from annostat.models.bayesian import (
    BayesianModel,
    log_confusion,
    marginal_likelihood,
    sample_population_logit,
    volunteer_logits,
    with_prior_weight,
)


def _difficulty_model(volunteers_pooled: bool):
    def model(data, n_subjects, n_volunteers, n_answers, batch_size=None):
        import numpyro
        import numpyro.distributions as dist

        K = n_answers
        params = {
            "population_logit": sample_population_logit(K),
            "difficulty_scale": numpyro.sample("difficulty_scale", dist.HalfNormal(1.0)),
            "priors": numpyro.sample("priors", dist.Dirichlet(jnp.ones(K))),
        }
        if volunteers_pooled:
            params["population_scale"] = numpyro.sample(
                "population_scale", dist.HalfNormal(1.0).expand([K]).to_event(1)
            )
            params["skill_scale"] = numpyro.sample("skill_scale", dist.HalfNormal(1.0))
            with numpyro.plate("volunteers", n_volunteers):
                params["volunteer_offset"] = numpyro.sample(
                    "volunteer_offset", dist.Normal(0.0, 1.0).expand([K, K - 1]).to_event(2)
                )
                params["skill"] = numpyro.sample("skill", dist.Normal(0.0, 1.0))
        params = with_prior_weight(params, data)
        with numpyro.plate("subjects", n_subjects):  # per-subject parameters: every subject at every step
            params["difficulty"] = numpyro.sample("difficulty", dist.Normal(0.0, 1.0))
            rows = jnp.arange(n_subjects)
            cls = RandomEffects if volunteers_pooled else ItemDifficulty
            numpyro.factor("votes", marginal_likelihood(cls.log_theta_votes, params, data, rows))

    return model


class _Difficulty(BayesianModel):
    parallel_svi = False  # a difficulty per subject: every subject at every step
    pooled_volunteers = False

    @classmethod
    def volunteer_logits(cls, params):
        """Off-diagonal logits [V or 1, K, K-1] before the subject's difficulty."""
        return volunteer_logits(params) if cls.pooled_volunteers else params["population_logit"][None]

    @classmethod
    def log_theta_votes(cls, params, part) -> jax.Array:
        eta = cls.volunteer_logits(params)
        volunteer = part["volunteer"] if cls.pooled_volunteers else jnp.zeros_like(part["volunteer"])
        delta = params["difficulty_scale"] * params["difficulty"][part["subject"]]  # [B]
        log_theta = log_confusion(eta[volunteer] + delta[:, None, None, None])  # [B, M, K, K]
        return jnp.take_along_axis(log_theta, part["answer"][..., None, None], axis=-1)[..., 0]

    def confusion_draws(self, draws, data) -> np.ndarray:
        """The confusion for a subject of average difficulty (delta = 0)."""

        def one(params):
            eta = self.volunteer_logits(params)
            return jnp.exp(log_confusion(eta))

        theta = np.asarray(jax.lax.map(one, {k: jnp.asarray(v) for k, v in draws.items()}))
        return np.broadcast_to(theta, (theta.shape[0], data.n_volunteers) + theta.shape[2:])

    def volunteer_extras(self, draws, data, v_local) -> dict[str, np.ndarray]:
        self.subject_difficulty = getattr(self, "subject_difficulty", {})
        self.subject_difficulty[len(self.subject_difficulty)] = (
            draws["difficulty_scale"][:, None] * draws["difficulty"]
        ).mean(axis=0)
        return {}


class ItemDifficulty(_Difficulty):
    """Pooled confusion plus a difficulty per subject (see the module docstring)."""

    name = "item"
    numpyro_model = staticmethod(_difficulty_model(False))


class RandomEffects(_Difficulty):
    """Partially pooled volunteers plus a difficulty per subject (see the module docstring)."""

    name = "lre"
    pooled_volunteers = True
    numpyro_model = staticmethod(_difficulty_model(True))
