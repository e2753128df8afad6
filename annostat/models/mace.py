r"""MACE-style spammers: each volunteer either answers truthfully or, with their own probability, at random.

Model (per question, :math:`K` answers, NumPyro; after Hovy et al.'s MACE, with the spamming probability pooled):

.. math::
    \text{logit}\, \epsilon_v = m + s\, z_v, \quad z_v \sim \mathcal{N}(0, 1), \quad
    m \sim \mathcal{N}(-2, 1.5^2), \; s \sim \mathrm{HalfNormal}(1) \\
    \xi_v \sim \mathrm{Dirichlet}(1) \qquad \theta_v[k, l] = (1 - \epsilon_v)\, [k = l] + \epsilon_v\, \xi_{v,l}

A volunteer who "spams" answers from their own favourite distribution :math:`\xi_v` (Galaxy Zoo's "artifact"
clickers put their mass on one answer); otherwise they give the true answer. :math:`1 - \epsilon_v` is reported as
``competence`` with a 90% interval. The true answer is summed out analytically. Strong where a few volunteers give
junk and the rest are good; weaker where honest volunteers have structured confusions (use ``hds`` there).

Reference: D. Hovy, T. Berg-Kirkpatrick, A. Vaswani, E. Hovy (2013), Learning whom to trust with MACE, NAACL-HLT;
E. Paun et al. (2018), Comparing Bayesian models of annotation, TACL 6.

Example:
    >>> from annostat import Votes
    >>> from annostat.models.mace import Mace
    >>> from annostat.truth.simulate import simulate_questions
    >>> votes = Votes.from_frame(simulate_questions(200, 30, questions=["smooth-or-featured"]).votes)
    >>> fit = Mace(inference="map", steps=200).fit(votes)
    >>> "competence" in fit.volunteers.columns
    True
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
import numpy as np

from annostat.models.bayesian import LEVEL, BayesianModel, observe_votes

if TYPE_CHECKING:
    from annostat.infer.bayes import SubjectVotes


def mace_model(
    data: dict[str, jax.Array], n_subjects: int, n_volunteers: int, n_answers: int, batch_size: int | None = None
) -> None:
    """NumPyro model: truthful-or-random volunteers with pooled spamming probabilities."""
    import numpyro
    import numpyro.distributions as dist

    K = n_answers
    params = {
        "spam_mean": numpyro.sample("spam_mean", dist.Normal(-2.0, 1.5)),
        "spam_scale": numpyro.sample("spam_scale", dist.HalfNormal(1.0)),
        "priors": numpyro.sample("priors", dist.Dirichlet(jnp.ones(K))),
    }
    with numpyro.plate("volunteers", n_volunteers):
        params["spam_offset"] = numpyro.sample("spam_offset", dist.Normal(0.0, 1.0))
        params["spam_answers"] = numpyro.sample("spam_answers", dist.Dirichlet(jnp.ones(K)))
    observe_votes(Mace.log_theta_votes, params, data, n_subjects, batch_size)


def _confusion(params):
    spam = jax.nn.sigmoid(params["spam_mean"] + params["spam_scale"] * params["spam_offset"])  # [V]
    K = params["spam_answers"].shape[-1]
    return (1 - spam)[:, None, None] * jnp.eye(K) + spam[:, None, None] * params["spam_answers"][:, None, :]


class Mace(BayesianModel):
    """Truthful-or-random volunteers (see the module docstring)."""

    name = "mace"
    numpyro_model = staticmethod(mace_model)

    @staticmethod
    def log_theta_votes(params: dict[str, jax.Array], part: dict[str, jax.Array]) -> jax.Array:
        log_theta = jnp.log(jnp.clip(_confusion(params), 1e-30))
        return log_theta[part["volunteer"], :, part["answer"]]

    def confusion_draws(self, draws: dict[str, np.ndarray], data: SubjectVotes) -> np.ndarray:
        return np.asarray(jax.vmap(_confusion)({k: jnp.asarray(v) for k, v in draws.items()}))

    def volunteer_extras(
        self, draws: dict[str, np.ndarray], data: SubjectVotes, v_local: np.ndarray
    ) -> dict[str, np.ndarray]:
        from annostat.infer.bayes import interval

        competence = 1 - np.asarray(
            jax.nn.sigmoid(draws["spam_mean"][:, None] + draws["spam_scale"][:, None] * draws["spam_offset"])
        )
        lo, hi = interval(competence, LEVEL)
        return {"competence": competence.mean(axis=0), "competence_lo": lo, "competence_hi": hi}
