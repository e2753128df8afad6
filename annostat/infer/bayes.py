"""Bayesian inference for NumPyro volunteer models: SVI with minibatches over subjects, MAP, NUTS.

A Bayesian volunteer model (``annostat.models.hierarchical``, ``annostat.models.learning``) is a plain NumPyro
function ``model(data, batch_size=None)`` over one question's votes laid out per subject (:class:`SubjectVotes`): it
draws its parameters, computes each vote's log-probability under every true answer, and adds the marginal
log-likelihood of each subject's votes, the true answer summed out analytically:

.. math::
    \\log p(\\text{votes of } s) = \\log \\sum_k \\pi_k \\prod_{n \\in s} \\theta_{v_n}(e_n)[k, l_n].

Inference is separate from the model, as in NumPyro:

- ``svi``: a mean-field normal guide (``AutoNormal``), Adam (optax) on the ELBO, subjects subsampled in minibatches
  (the likelihood is scaled by the plate), so memory and time per step do not grow with the number of subjects;
- ``map``: a point-mass guide (``AutoDelta``), the same optimiser: the posterior mode, fast;
- ``nuts``: NUTS over the full data, for small problems, with r_hat and effective sample sizes.

Afterwards, :func:`posterior_draws` gives draws of the parameters (from the guide or the chains), and
:func:`answer_posteriors` averages p(true answer | votes, parameters) over them, so answers carry the uncertainty
about the volunteers.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

INFERENCE = ("svi", "map", "nuts")


@dataclass
class SubjectVotes:
    """One question's votes laid out per subject: row s holds subject s's votes, padded to the longest."""

    volunteer: np.ndarray  # [S, M] int32 (padding: 0)
    answer: np.ndarray  # [S, M] int32 (padding: 0)
    experience: np.ndarray  # [S, M] float32: the volunteer's earlier responses when giving this vote
    mask: np.ndarray  # [S, M] bool: a real vote
    n_subjects: int
    n_volunteers: int
    n_answers: int

    @classmethod
    def build(cls, subject, volunteer, answer, experience, n_subjects, n_volunteers, n_answers) -> "SubjectVotes":
        """From votes sorted by subject (local codes 0..S-1, 0..V-1)."""
        counts = np.bincount(subject, minlength=n_subjects)
        width = max(int(counts.max()) if len(counts) else 1, 1)
        starts = np.cumsum(counts) - counts
        column = np.arange(len(subject)) - starts[subject]
        shape = (n_subjects, width)
        out = {name: np.zeros(shape, dtype) for name, dtype in
               (("volunteer", np.int32), ("answer", np.int32), ("experience", np.float32), ("mask", bool))}
        for name, values in (("volunteer", volunteer), ("answer", answer), ("experience", experience),
                             ("mask", True)):
            out[name][subject, column] = values
        return cls(**out, n_subjects=n_subjects, n_volunteers=n_volunteers, n_answers=n_answers)

    def device(self) -> dict[str, jax.Array]:
        """The arrays a model reads, plus ``subject`` (each row's subject, for subject-level parameters)."""
        arrays = {name: jnp.asarray(getattr(self, name)) for name in ("volunteer", "answer", "experience", "mask")}
        arrays["subject"] = jnp.arange(self.n_subjects, dtype=jnp.int32)
        return arrays

    @property
    def n_votes(self) -> int:
        return int(self.mask.sum())


def subject_log_likelihood(log_theta_votes: jax.Array, mask: jax.Array, log_pi: jax.Array):
    """Per subject: the joint log p(votes, true answer = k) [B, K] and the marginal log p(votes) [B].

    ``log_theta_votes[b, m, k]`` is the log-probability of vote m of subject b under true answer k."""
    joint = jnp.sum(jnp.where(mask[..., None], log_theta_votes, 0.0), axis=1) + log_pi
    return joint, jax.nn.logsumexp(joint, axis=-1)


@dataclass
class Inference:
    """What a fit by :func:`run` returns: draws of every parameter, and how the fit went."""

    method: str
    draws: dict[str, np.ndarray]  # name -> [D, ...]
    losses: np.ndarray  # SVI/MAP: loss (negative ELBO) per step; NUTS: empty
    seconds: float
    diagnostics: dict[str, Any] = field(default_factory=dict)  # NUTS: r_hat, ess; SVI: steps, final loss
    chains: int = 1
    sample_stats: dict[str, np.ndarray] | None = None


def run(
    model: Callable,
    data: SubjectVotes,
    *,
    method: str = "svi",
    seed: int = 0,
    steps: int = 2000,
    learning_rate: float = 0.02,
    batch_size: int | None = None,
    draws: int = 200,
    warmup: int = 500,
    chains: int = 2,
    init_scale: float = 0.1,
) -> Inference:
    """Fit ``model`` to one question's votes with ``method`` (svi, map, nuts); seeds make runs reproducible."""
    import numpyro
    import optax
    from numpyro.infer import MCMC, NUTS, SVI, Predictive, Trace_ELBO, init_to_mean, init_to_median
    from numpyro.infer.autoguide import AutoDelta, AutoNormal

    if method not in INFERENCE:
        raise ValueError(f"inference {method!r} is not one of {', '.join(INFERENCE)}")
    arrays = data.device()
    key = jax.random.PRNGKey(seed)
    start = time.perf_counter()
    if method == "nuts":
        kernel = NUTS(model, init_strategy=init_to_median, target_accept_prob=0.85)
        per_chain = max(draws // chains, 1)
        mcmc = MCMC(kernel, num_warmup=warmup, num_samples=per_chain, num_chains=chains,
                    chain_method="sequential", progress_bar=False)
        mcmc.run(key, arrays, data.n_subjects, data.n_volunteers, data.n_answers, None)
        samples = {k: np.asarray(v) for k, v in mcmc.get_samples(group_by_chain=True).items()}
        stats = {k: np.asarray(v) for k, v in mcmc.get_extra_fields(group_by_chain=True).items()}
        diagnostics = _mcmc_diagnostics(samples)
        flat = {k: v.reshape(-1, *v.shape[2:]) for k, v in samples.items()}
        return Inference("nuts", flat, np.zeros(0), time.perf_counter() - start, diagnostics, chains, stats)

    batch = None if batch_size is None or batch_size >= data.n_subjects else int(batch_size)
    # start at the prior medians: diagonal-favouring confusions, so optimisation starts in the labelled mode
    init = init_to_mean
    guide = (AutoDelta(model, init_loc_fn=init) if method == "map"
             else AutoNormal(model, init_loc_fn=init, init_scale=init_scale))
    schedule = optax.exponential_decay(learning_rate, transition_steps=max(steps, 1), decay_rate=0.1)
    svi = SVI(model, guide, optax.adam(schedule), Trace_ELBO())
    result = svi.run(key, steps, arrays, data.n_subjects, data.n_volunteers, data.n_answers, batch,
                     progress_bar=False)
    params, losses = result.params, np.asarray(result.losses)
    n_draws = 1 if method == "map" else draws
    sites = Predictive(guide, params=params, num_samples=n_draws)(
        jax.random.PRNGKey(seed + 1), arrays, data.n_subjects, data.n_volunteers, data.n_answers, batch)
    flat = {k: np.asarray(v) for k, v in sites.items() if not k.startswith("_")}
    tail = losses[-max(len(losses) // 10, 1):]
    diagnostics = {"steps": int(steps), "final_loss": float(np.mean(tail)), "batch_size": batch or data.n_subjects,
                   "loss_change_last_10pc": float((np.mean(tail) - np.mean(losses[-2 * len(tail):-len(tail)]))
                                                  / max(abs(np.mean(tail)), 1e-9)) if len(losses) >= 20 else None}
    return Inference(method, flat, losses, time.perf_counter() - start, diagnostics)


def _mcmc_diagnostics(samples: dict[str, np.ndarray]) -> dict[str, Any]:
    """Worst r_hat and smallest bulk ESS over every scalar of every parameter (chains first)."""
    import arviz as az

    out: dict[str, Any] = {}
    for name, value in samples.items():
        if value.shape[0] < 2 or value.shape[1] < 4:
            continue
        x = value.reshape(value.shape[0], value.shape[1], -1)
        rhat = az.rhat(az.convert_to_dataset({name: x}))[name].values
        ess = az.ess(az.convert_to_dataset({name: x}))[name].values
        out[name] = {"r_hat_max": float(np.nanmax(rhat)), "ess_bulk_min": float(np.nanmin(ess))}
    if out:
        out["r_hat_max"] = max(v["r_hat_max"] for v in out.values() if isinstance(v, dict))
        out["ess_bulk_min"] = min(v["ess_bulk_min"] for v in out.values() if isinstance(v, dict))
    return out


def answer_posteriors(
    log_theta_votes: Callable[[dict[str, jax.Array], dict[str, jax.Array]], jax.Array],
    log_pi: Callable[[dict[str, jax.Array]], jax.Array],
    draws: dict[str, np.ndarray],
    data: SubjectVotes,
    max_draws: int = 64,
    chunk_subjects: int = 65536,
) -> tuple[np.ndarray, float]:
    """p(true answer | votes) per subject [S, K], averaged over (up to ``max_draws``) parameter draws, and the
    marginal log-likelihood of the votes at the posterior-mean parameters."""
    n = next(iter(draws.values())).shape[0]
    pick = np.unique(np.linspace(0, n - 1, min(n, max_draws)).astype(int))
    chosen = {k: jnp.asarray(v[pick]) for k, v in draws.items()}
    mean = {k: jnp.asarray(v.mean(axis=0)) for k, v in draws.items()}
    arrays = data.device()

    @jax.jit
    def one_chunk(rows):
        part = {k: v[rows] for k, v in arrays.items()}

        def per_draw(params):
            joint, marginal = subject_log_likelihood(log_theta_votes(params, part), part["mask"], log_pi(params))
            return jnp.exp(joint - marginal[:, None])

        posterior = jax.lax.map(per_draw, chosen).mean(axis=0)
        _, at_mean = subject_log_likelihood(log_theta_votes(mean, part), part["mask"], log_pi(mean))
        return posterior, at_mean

    S = data.n_subjects
    size = min(chunk_subjects, S)
    out, total = np.zeros((S, data.n_answers), np.float32), 0.0
    for begin in range(0, S, size):
        rows = np.arange(begin, begin + size) % S  # a fixed chunk shape: one compilation; wrapped rows dropped
        posterior, at_mean = one_chunk(jnp.asarray(rows))
        keep = min(size, S - begin)
        out[begin:begin + keep] = np.asarray(posterior)[:keep]
        total += float(np.asarray(at_mean)[:keep].sum())
    return out, total


def interval(values: np.ndarray, level: float = 0.9) -> tuple[np.ndarray, np.ndarray]:
    """Equal-tailed ``level`` interval over the first axis (the draws)."""
    lo, hi = np.quantile(values, [(1 - level) / 2, (1 + level) / 2], axis=0)
    return lo, hi
