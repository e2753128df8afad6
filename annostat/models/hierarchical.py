r"""Hierarchical Dawid-Skene: per-volunteer confusion matrices partially pooled around a population confusion.

Model (per question, :math:`K` answers, NumPyro, non-centred). Confusion rows are softmaxes of logits whose diagonal
is fixed at 0, so the :math:`K(K-1)` off-diagonal logits say how much less likely each wrong answer is than the right
one:

.. math::
    \mu_{kl} &\sim \mathcal{N}(-2, 1.5^2) \quad (l \ne k) &\text{population off-diagonal logits} \\
    \tau_k &\sim \mathrm{HalfNormal}(1) &\text{spread of volunteers around it, per true answer} \\
    \sigma &\sim \mathrm{HalfNormal}(1), \quad s_v \sim \mathcal{N}(0, 1) &\text{a skill shared by all rows} \\
    z_{v,kl} &\sim \mathcal{N}(0, 1), \quad \eta_{v,kl} = \mu_{kl} + \tau_k z_{v,kl} - \sigma s_v
        &\text{volunteer } v \\
    \theta_v[k, \cdot] &= \mathrm{softmax}(0 \text{ at } k, \eta_{v,k\cdot}) \\
    \pi &\sim \mathrm{Dirichlet}(1), \quad z_s \sim \mathrm{Cat}(\pi), \quad l_n \sim \mathrm{Cat}(\theta_{v_n}[z_s, \cdot])

The true answers are summed out analytically (``annostat.infer.bayes``). A volunteer with three votes is pulled to the
population; one with three thousand is described by their own votes. The shared skill :math:`s_v` lets the few
votes of a sparse volunteer inform every row of their matrix at once (a volunteer good at one answer tends to be good
at all), which is where pooling helps most. The prior mean of -2 (a volunteer picks the right
answer ~80% of the time with three answers) favours the diagonal, which fixes which true answer is which: the labels
cannot switch even on symmetric data.

Reference: E. Paun, B. Carpenter, J. Chamberlain, D. Hovy, U. Kruschwitz, M. Poesio (2018), Comparing Bayesian models
of annotation, TACL 6, 571-585 (the hierarchical Dawid-Skene of their family); A. P. Dawid and A. M. Skene (1979).

Example:
    >>> from annostat import Votes
    >>> from annostat.models.hierarchical import HierarchicalDawidSkene
    >>> from annostat.truth.simulate import simulate_questions
    >>> sim = simulate_questions(200, 30, questions=["smooth-or-featured"], seed=1)
    >>> fit = HierarchicalDawidSkene(inference="map", steps=300).fit(Votes.from_frame(sim.votes))
    >>> sorted(fit.volunteers.columns)[:3]
    ['accuracy', 'accuracy_hi', 'accuracy_lo']
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
import numpy as np

from annostat.models.bayesian import (
    DIAGONAL_PRIOR_MEAN,  # noqa: F401 - documented here, where the prior is explained
    BayesianModel,
    groups_of,
    log_confusion,
    observe_votes,
    sample_population_logit,
    volunteer_logits,
)

if TYPE_CHECKING:
    from annostat.infer.bayes import SubjectVotes


def hierarchical_model(
    data: dict[str, jax.Array], n_subjects: int, n_volunteers: int, n_answers: int, batch_size: int | None = None
) -> None:
    """NumPyro model: hierarchical Dawid-Skene on one question's votes (``SubjectVotes.device()`` arrays)."""
    import numpyro
    import numpyro.distributions as dist

    K, G = n_answers, groups_of(data)
    mu = sample_population_logit(K, G)
    tau = numpyro.sample(
        "population_scale", dist.HalfNormal(1.0).expand([K] if G == 1 else [G, K]).to_event(1 if G == 1 else 2)
    )
    sigma = numpyro.sample("skill_scale", dist.HalfNormal(1.0))
    pi = numpyro.sample("priors", dist.Dirichlet(jnp.ones(K)))
    with numpyro.plate("volunteers", n_volunteers):
        z = numpyro.sample("volunteer_offset", dist.Normal(0.0, 1.0).expand([K, K - 1]).to_event(2))
        skill = numpyro.sample("skill", dist.Normal(0.0, 1.0))
    params = {
        "population_logit": mu,
        "population_scale": tau,
        "volunteer_offset": z,
        "priors": pi,
        "skill_scale": sigma,
        "skill": skill,
    }
    observe_votes(HierarchicalDawidSkene.log_theta_votes, params, data, n_subjects, batch_size)


class HierarchicalDawidSkene(BayesianModel):
    """Dawid-Skene with confusion matrices pooled across volunteers (see the module docstring).

    Args: as :class:`~annostat.models.bayesian.BayesianModel` (``inference``: svi, map or nuts; ``seed``, ``steps``,
    ``learning_rate``, ``batch_size``, ``draws``).
    """

    name = "hds"
    numpyro_model = staticmethod(hierarchical_model)

    expert_group = True

    @staticmethod
    def log_confusion(params: dict[str, jax.Array], group: jax.Array | None = None) -> jax.Array:
        """log theta [V, K, K] of one draw (``group`` [V]: each volunteer's group, with experts)."""
        return log_confusion(volunteer_logits(params, group))

    @classmethod
    def log_theta_votes(cls, params: dict[str, jax.Array], part: dict[str, jax.Array]) -> jax.Array:
        log_theta = cls.log_confusion(params, part.get("volunteer_group"))
        return log_theta[part["volunteer"], :, part["answer"]]

    def confusion_draws(self, draws: dict[str, np.ndarray], data: SubjectVotes) -> np.ndarray:
        group = None if data.volunteer_group is None else jnp.asarray(data.volunteer_group)
        return np.exp(
            np.asarray(jax.vmap(lambda p: self.log_confusion(p, group))({k: jnp.asarray(v) for k, v in draws.items()}))
        )
