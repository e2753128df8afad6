r"""Pooled multinomial: one confusion matrix shared by every volunteer (Paun et al.'s *MultiNom*).

Model (per question, :math:`K` answers, NumPyro): off-diagonal logits :math:`\mu_{kl} \sim \mathcal{N}(-2, 1.5^2)`
(diagonal fixed at 0), :math:`\theta[k, \cdot] = \mathrm{softmax}(0 \text{ at } k, \mu_{k\cdot})` for everyone,
:math:`\pi \sim \mathrm{Dirichlet}(1)`; the true answer is summed out analytically. The fully pooled end of the
family: every volunteer is the average volunteer. A baseline that tells how much individual modelling buys.

Reference: E. Paun et al. (2018), Comparing Bayesian models of annotation, TACL 6, 571-585.

Example:
    >>> from annostat import Votes
    >>> from annostat.models.pooled import PooledMultinomial
    >>> from annostat.truth.simulate import simulate_questions
    >>> votes = Votes.from_frame(simulate_questions(200, 30, questions=["smooth-or-featured"]).votes)
    >>> fit = PooledMultinomial(inference="map", steps=200).fit(votes)
    >>> bool(fit.volunteers.groupby("question")["accuracy"].std().max() < 1e-5)  # everyone the same
    True
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
import numpy as np

from annostat.models.bayesian import BayesianModel, log_confusion, observe_votes, sample_population_logit

if TYPE_CHECKING:
    from annostat.infer.bayes import SubjectVotes


def pooled_model(
    data: dict[str, jax.Array], n_subjects: int, n_volunteers: int, n_answers: int, batch_size: int | None = None
) -> None:
    """NumPyro model: one confusion matrix for all volunteers."""
    import numpyro
    import numpyro.distributions as dist

    K = n_answers
    params = {
        "population_logit": sample_population_logit(K),
        "priors": numpyro.sample("priors", dist.Dirichlet(jnp.ones(K))),
    }
    observe_votes(PooledMultinomial.log_theta_votes, params, data, n_subjects, batch_size)


class PooledMultinomial(BayesianModel):
    """One confusion matrix for every volunteer (see the module docstring)."""

    name = "mn"
    numpyro_model = staticmethod(pooled_model)

    @staticmethod
    def log_theta_votes(params: dict[str, jax.Array], part: dict[str, jax.Array]) -> jax.Array:
        log_theta = log_confusion(params["population_logit"])  # [K, K]
        return jnp.moveaxis(log_theta[:, part["answer"]], 0, -1)  # [B, M, K]

    def confusion_draws(self, draws: dict[str, np.ndarray], data: SubjectVotes) -> np.ndarray:
        theta = np.exp(np.asarray(log_confusion(jnp.asarray(draws["population_logit"]))))
        return np.broadcast_to(theta[:, None], (theta.shape[0], data.n_volunteers) + theta.shape[1:])
