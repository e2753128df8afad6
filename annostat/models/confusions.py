r"""The confusions of the volunteer models the joint model takes, as parameters a gradient or an M-step updates.

Each has ``init(confusion)`` (from a votes-only fit's confusion [V, K, K]), ``log_theta(params)`` (log theta
[V, K, K], rows the true answer, for the shared likelihood ``annostat.models.likelihood``), ``log_prior(params)``
(the model's prior on them) and ``m_step(params, counts)`` (the maximum of expected counts [V, K, K] plus the log
prior). :class:`DSConfusions` is Dawid-Skene's (:mod:`annostat.models.dawid_skene`), :class:`PooledConfusions`
hierarchical Dawid-Skene's (:mod:`annostat.models.hierarchical`) at its mode.

Example:
    >>> import numpy as np
    >>> ds = DSConfusions()
    >>> params = ds.m_step(ds.init(np.full((1, 2, 2), 0.5)), np.array([[[8.0, 2.0], [1.0, 9.0]]]))
    >>> np.exp(np.asarray(ds.log_theta(params), np.float64)).round(3).tolist()
    [[[0.816, 0.184], [0.102, 0.898]]]
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from annostat.models.bayesian import log_confusion as offdiag_log_confusion

VOLUNTEER_MODELS = ("ds", "hds")


class DSConfusions:
    """Dawid-Skene's confusions: free rows, Dirichlet(1 + A) pseudo-counts (:mod:`annostat.models.dawid_skene`)."""

    name = "ds"

    def __init__(self, pseudo_diagonal: float = 2.0, pseudo_off_diagonal: float = 0.25) -> None:
        self.pseudo = (pseudo_diagonal, pseudo_off_diagonal)

    def _A(self, K):
        a, b = self.pseudo
        return jnp.full((K, K), b, jnp.float32) + jnp.eye(K, dtype=jnp.float32) * (a - b)

    def init(self, confusion: np.ndarray) -> dict[str, jax.Array]:
        return {"logits": jnp.log(jnp.clip(jnp.asarray(confusion, jnp.float32), 1e-6, 1.0))}

    def log_theta(self, params: dict[str, jax.Array]) -> jax.Array:
        return jax.nn.log_softmax(params["logits"], axis=-1)

    def log_prior(self, params: dict[str, jax.Array]) -> jax.Array:
        K = params["logits"].shape[-1]
        return jnp.sum(self._A(K) * self.log_theta(params))

    def m_step(self, params: dict[str, jax.Array], counts: jax.Array) -> dict[str, jax.Array]:
        K = counts.shape[-1]
        rows = counts + self._A(K)
        return {"logits": jnp.log(rows / rows.sum(-1, keepdims=True))}


class PooledConfusions:
    """Hierarchical Dawid-Skene's pooling: off-diagonal logits eta_v ~ Normal(mu, tau_k), mu ~ Normal(-2, 1.5),
    tau ~ HalfNormal(1), at their joint mode (:mod:`annostat.models.hierarchical`). The spread is
    ``TAU_FLOOR + exp(log_tau)``: at a joint mode a free spread shrinks towards 0 and every volunteer towards the
    population (the known collapse of hierarchical MAP), which on LabelMe made each EM round worse than the last."""

    name = "hds"
    M_STEPS = 200
    TAU_FLOOR = 0.5

    def init(self, confusion: np.ndarray) -> dict[str, jax.Array]:
        log_c = np.log(np.clip(np.asarray(confusion, np.float64), 1e-6, 1.0))
        K = log_c.shape[-1]
        eta = np.stack([np.delete(log_c[:, k] - log_c[:, k, k : k + 1], k, axis=-1) for k in range(K)], axis=1)
        return {
            "eta": jnp.asarray(eta, jnp.float32),
            "mu": jnp.asarray(eta.mean(0), jnp.float32),
            "log_tau": jnp.log(jnp.asarray(np.maximum(eta.std(0).mean(-1) - self.TAU_FLOOR, 0.0) + 0.1, jnp.float32)),
        }

    def log_theta(self, params: dict[str, jax.Array]) -> jax.Array:
        return offdiag_log_confusion(params["eta"])

    def log_prior(self, params: dict[str, jax.Array]) -> jax.Array:
        t = self.TAU_FLOOR + jnp.exp(params["log_tau"])
        tau = t[None, :, None]
        z = (params["eta"] - params["mu"][None]) / tau
        volunteers = jnp.sum(-0.5 * z**2 - jnp.log(tau))
        mu = jnp.sum(-0.5 * ((params["mu"] + 2.0) / 1.5) ** 2)
        return volunteers + mu + jnp.sum(-0.5 * t**2 + params["log_tau"])  # HalfNormal(1), in log_tau

    def m_step(self, params: dict[str, jax.Array], counts: jax.Array) -> dict[str, jax.Array]:
        return _pooled_m_step(params, counts)


@jax.jit
def _pooled_m_step(params, counts):
    """:meth:`PooledConfusions.m_step`: Adam on the expected complete-data log-likelihood plus the log prior,
    compiled once per shape (not once per call)."""
    pooled = PooledConfusions()
    opt = optax.adam(0.05)

    def objective(p):
        return -(jnp.sum(counts * pooled.log_theta(p)) + pooled.log_prior(p))

    def step(carry, _):
        p, s = carry
        u, s = opt.update(jax.grad(objective)(p), s, p)
        return (optax.apply_updates(p, u), s), None

    (params, _), _ = jax.lax.scan(step, (params, opt.init(params)), None, length=PooledConfusions.M_STEPS)
    return params


def volunteer_part(
    name: str, pseudo_diagonal: float = 2.0, pseudo_off_diagonal: float = 0.25
) -> DSConfusions | PooledConfusions:
    """The confusions of volunteer model ``name`` (``ds`` with its pseudo-counts; ``hds``, which has none)."""
    if name == "ds":
        return DSConfusions(pseudo_diagonal, pseudo_off_diagonal)
    if name == "hds":
        return PooledConfusions()
    raise ValueError(f"the joint model takes the volunteer models {', '.join(VOLUNTEER_MODELS)}, not {name!r}")
