"""Bayesian inference for NumPyro volunteer models: SVI with minibatches over subjects, MAP, NUTS.

A Bayesian volunteer model (``annostat.models.hierarchical``, ``annostat.models.learning``) is a plain NumPyro
function ``model(data, batch_size=None)`` over one question's votes laid out per subject (:class:`SubjectVotes`): it
draws its parameters, computes each vote's log-probability under every true answer, and adds the marginal
log-likelihood of each subject's votes, the true answer summed out analytically:

.. math::
    \\log p(\\text{votes of } s) = \\log \\sum_k \\pi_k \\prod_{n \\in s} \\theta_{v_n}(e_n)[k, l_n].

Inference is separate from the model, as in NumPyro:

- ``svi``: a mean-field normal guide (``AutoNormal``), Adam (optax) on the ELBO, subjects drawn in minibatches
  (uniformly, with replacement; the plate scales their likelihood), so memory and time per step do not grow with the
  number of subjects;
- ``map``: a point-mass guide (``AutoDelta``), the same optimiser: the posterior mode, fast;
- ``nuts``: NUTS over the full data, for small problems, with r_hat and effective sample sizes.

On a device mesh (``annostat.infer.sharding``; ``devices=N``) SVI and MAP are data-parallel: the subjects are split
into equal blocks, one a device (padded with subjects without votes, which add nothing), each device draws its share
of every minibatch from its own block, and the gradients are averaged across devices (``pmean``, the first link of the
optax chain) before Adam's update, so the parameters stay the same everywhere. Each device's plate scales its share
by the padded subjects over its own draws, so the average of the devices' ELBOs is the one-device minibatch ELBO: the
same estimator, its work split.

:func:`run` returns draws of the parameters (from the guide or the chains); :func:`answer_posteriors` averages
p(true answer | votes, parameters) over them, so answers carry the uncertainty about the volunteers, and in the same
pass computes what the model checks need (pointwise log-likelihood for LOO/WAIC, replayed volunteer agreement).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np

from annostat.models import likelihood

if TYPE_CHECKING:
    from annostat.data.priors import Evidence

INFERENCE = ("svi", "map", "nuts")


#: arrays of ``SubjectVotes.device()`` with one entry a volunteer: passed whole to every minibatch and device
VOLUNTEER_ARRAYS = ("volunteer_group",)


def rows_of(arrays: dict, rows: np.ndarray | jax.Array | slice) -> dict:
    """The subjects ``rows`` of the per-subject arrays, the per-volunteer ones whole."""
    return {k: v if k in VOLUNTEER_ARRAYS else v[rows] for k, v in arrays.items()}


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
    log_evidence: np.ndarray | None = None  # [S, K] a classifier's evidence about each subject (None: none)
    prior_weight: float = 1.0  # the weight of the evidence: its largest value when learned, else its value
    learn_prior_weight: bool = True
    known_answer: np.ndarray | None = None  # [S] int32: each subject's gold answer, -1 where unknown (None: none)
    volunteer_group: np.ndarray | None = None  # [V] int32: 1 for experts, 0 for the other volunteers (None: none)

    @classmethod
    def build(
        cls,
        subject: np.ndarray,
        volunteer: np.ndarray,
        answer: np.ndarray,
        experience: np.ndarray,
        n_subjects: int,
        n_volunteers: int,
        n_answers: int,
        evidence: Evidence | None = None,
        known_answer: np.ndarray | None = None,
        volunteer_group: np.ndarray | None = None,
    ) -> SubjectVotes:
        """From votes sorted by subject (local codes 0..S-1, 0..V-1); ``evidence`` (``annostat.data.priors``) and
        ``known_answer`` (gold answers' codes, -1 where unknown) are optional."""
        counts = np.bincount(subject, minlength=n_subjects)
        width = max(int(counts.max()) if len(counts) else 1, 1)
        starts = np.cumsum(counts) - counts
        column = np.arange(len(subject)) - starts[subject]
        shape = (n_subjects, width)
        out = {
            name: np.zeros(shape, dtype)
            for name, dtype in (
                ("volunteer", np.int32),
                ("answer", np.int32),
                ("experience", np.float32),
                ("mask", bool),
            )
        }
        for name, values in (("volunteer", volunteer), ("answer", answer), ("experience", experience), ("mask", True)):
            out[name][subject, column] = values
        return cls(
            volunteer=out["volunteer"],
            answer=out["answer"],
            experience=out["experience"],
            mask=out["mask"],
            n_subjects=n_subjects,
            n_volunteers=n_volunteers,
            n_answers=n_answers,
            log_evidence=None if evidence is None else np.asarray(evidence.log_ratio, np.float32),
            prior_weight=1.0 if evidence is None else float(evidence.weight),
            learn_prior_weight=True if evidence is None else bool(evidence.learn),
            known_answer=None if known_answer is None else np.asarray(known_answer, np.int32),
            volunteer_group=None if volunteer_group is None else np.asarray(volunteer_group, np.int32),
        )

    def device(self) -> dict[str, jax.Array]:
        """The arrays a model reads, plus ``subject`` (each row's subject, for subject-level parameters) and, with a
        classifier's evidence, ``log_evidence`` and its weight per subject (``prior_weight_max`` when the weight is
        learned, ``prior_weight`` when it is fixed; see ``annostat.models.bayesian.subject_log_prior``)."""
        arrays = {name: jnp.asarray(getattr(self, name)) for name in ("volunteer", "answer", "experience", "mask")}
        arrays["subject"] = jnp.arange(self.n_subjects, dtype=jnp.int32)
        if self.log_evidence is not None:
            arrays["log_evidence"] = jnp.asarray(self.log_evidence)
            weight = "prior_weight_max" if self.learn_prior_weight else "prior_weight"
            arrays[weight] = jnp.full(self.n_subjects, self.prior_weight, jnp.float32)
        if self.known_answer is not None:
            arrays["known_answer"] = jnp.asarray(self.known_answer)
        if self.volunteer_group is not None:  # one entry a volunteer, not a subject (VOLUNTEER_ARRAYS)
            arrays["volunteer_group"] = jnp.asarray(self.volunteer_group)
        return arrays

    @property
    def n_votes(self) -> int:
        return int(self.mask.sum())


def subject_log_likelihood(
    log_theta_votes: jax.Array, mask: jax.Array, log_prior: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """Per subject: the joint log p(votes, true answer = k) [B, K] and the marginal log p(votes) [B], through the
    shared volunteer likelihood (``annostat.models.likelihood``, padded form).

    ``log_theta_votes[b, m, k]`` is the log-probability of vote m of subject b under true answer k; ``log_prior`` is
    [K] or [B, K]."""
    joint = likelihood.padded_joint(log_theta_votes, mask, log_prior)
    return joint, likelihood.marginal(joint)


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
    progress: Callable[[int, int], None] | None = None,
    progress_chunks: int = 10,
    mesh: Any = None,
    init_values: dict[str, np.ndarray] | None = None,
) -> Inference:
    """Fit ``model`` to one question's votes with ``method`` (svi, map, nuts); seeds make runs reproducible.

    SVI/MAP run in up to ``progress_chunks`` equal chunks of steps, calling ``progress(done, steps)`` after each.
    With a device ``mesh`` (``annostat.infer.sharding.device_mesh``) SVI/MAP run data-parallel over its devices
    (module docstring). ``init_values`` (constrained values of some sites, e.g. a previous fit's posterior means)
    start the guide there instead of at the prior means: a warm start (``annostat.live.update``)."""
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
        mcmc = MCMC(
            kernel,
            num_warmup=warmup,
            num_samples=per_chain,
            num_chains=chains,
            chain_method="sequential",
            progress_bar=False,
        )
        mcmc.run(key, arrays, data.n_subjects, data.n_volunteers, data.n_answers, None)
        samples = {k: np.asarray(v) for k, v in mcmc.get_samples(group_by_chain=True).items()}
        stats = {k: np.asarray(v) for k, v in mcmc.get_extra_fields(group_by_chain=True).items()}
        diagnostics = _mcmc_diagnostics(samples)
        flat = {k: v.reshape(-1, *v.shape[2:]) for k, v in samples.items()}
        return Inference("nuts", flat, np.zeros(0), time.perf_counter() - start, diagnostics, chains, stats)

    batch = None if batch_size is None or batch_size >= data.n_subjects else int(batch_size)
    schedule = optax.exponential_decay(learning_rate, transition_steps=max(steps, 1), decay_rate=0.1)
    shape = (data.n_subjects, data.n_volunteers, data.n_answers, batch)
    parallel = mesh is not None and mesh.size > 1
    if parallel:
        from annostat.infer import sharding

        arrays, local, local_batch = sharding.svi_layout(mesh, arrays, batch)
        train_shape = (local * mesh.size, data.n_volunteers, data.n_answers, local_batch)
        optimiser = optax.chain(sharding.mean_over_devices(), optax.adam(schedule))
    else:
        train_shape, optimiser = shape, optax.adam(schedule)

    def new_guide(start=None):
        # start at the prior means: diagonal-favouring confusions, so optimisation starts in the labelled mode; or,
        # a warm start, at ``start`` (traced values: one program whatever they are) for the sites it holds
        init_loc = init_to_mean if start is None else partial(init_to_warm, values=start)
        return (
            AutoDelta(model, init_loc_fn=init_loc)
            if method == "map"
            else AutoNormal(model, init_loc_fn=init_loc, init_scale=init_scale)
        )

    def draw_rows(key):
        """A training minibatch; with a mesh, this device's share, drawn from its own block of subjects."""
        if not parallel:
            return _rows(key, shape[0], batch)
        if batch is None:  # all of its block: the full batch
            return jnp.arange(local, dtype=jnp.int32)
        return jax.random.randint(
            jax.random.fold_in(key, jax.lax.axis_index(sharding.AXIS)), (local_batch,), 0, local, dtype=jnp.int32
        )

    def new_svi(arrays, key, shape, rows, start=None):
        """An SVI object set up (guide prototype, transforms) and its initial state."""
        svi = SVI(_with_rows(model), _with_rows(new_guide(start)), optimiser, Trace_ELBO())
        return svi, svi.init(key, arrays, *shape, rows=rows)

    # Each stage is one compiled program with its own guide object, set up while tracing: NumPyro's eager set-up of
    # an autoguide (prototype trace, initial values, their gradient) would otherwise compile hundreds of small
    # operations one by one (~20 s a question on 2 CPU cores).
    def initialise_body(arrays, key, start):
        return new_svi(arrays, key, train_shape, draw_rows(key), start)[1]

    def optimise_body(state, arrays, keys, init_key):
        svi = new_svi(arrays, init_key, train_shape, draw_rows(init_key))[0]  # its initial state is compiled away

        def step(state, key):
            state, loss = svi.update(state, arrays, *train_shape, rows=draw_rows(key))
            return state, (jax.lax.pmean(loss, sharding.AXIS) if parallel else loss)

        return jax.lax.scan(step, state, keys)

    if parallel:
        initialise = sharding.data_parallel(mesh, initialise_body, data_args=(0,))
        optimise = sharding.data_parallel(mesh, optimise_body, data_args=(1,))
    else:
        initialise, optimise = jax.jit(initialise_body), jax.jit(optimise_body)

    n_draws = 1 if method == "map" else draws
    whole = data.device() if parallel else arrays  # draws from the guide on one device, from the whole votes

    @jax.jit
    def sample(state, arrays, key, init_key):
        params = new_svi(arrays, init_key, shape, _rows(init_key, shape[0], batch))[0].get_params(state)
        sites = Predictive(new_guide(), params=params, num_samples=n_draws)(key, arrays, *shape[:3], None)
        return {k: v for k, v in sites.items() if not k.startswith("_")}

    init_key, loop_key, draw_key = jax.random.split(key, 3)
    state = initialise(arrays, init_key, {k: np.asarray(v) for k, v in init_values.items()} if init_values else None)
    # equal chunks, so the loop compiles once
    n_chunks = max(d for d in range(1, min(progress_chunks, steps) + 1) if steps % d == 0)
    losses = []
    for i in range(n_chunks):
        state, chunk_losses = optimise(
            state, arrays, jax.random.split(jax.random.fold_in(loop_key, i), steps // n_chunks), init_key
        )
        losses.append(np.asarray(chunk_losses))
        if progress is not None:
            progress((i + 1) * (steps // n_chunks), steps)
    losses = np.concatenate(losses)
    if parallel:  # the parameters are the same on every device: one copy, for the draws
        state = jax.tree.map(lambda x: np.asarray(x.addressable_data(0)) if isinstance(x, jax.Array) else x, state)
    flat = {k: np.asarray(v) for k, v in sample(state, whole, draw_key, init_key).items()}
    tail = losses[-max(len(losses) // 10, 1) :]
    diagnostics = {
        "steps": int(steps),
        "final_loss": float(np.mean(tail)),
        "batch_size": batch or data.n_subjects,
        **({"devices": mesh.size} if parallel else {}),
        "loss_change_last_10pc": float(
            (np.mean(tail) - np.mean(losses[-2 * len(tail) : -len(tail)])) / max(abs(np.mean(tail)), 1e-9)
        )
        if len(losses) >= 20
        else None,
    }
    return Inference(method, flat, losses, time.perf_counter() - start, diagnostics)


def init_to_warm(site: dict[str, Any] | None = None, values: dict[str, Any] | None = None) -> Any:
    """NumPyro initialisation strategy: ``values`` for the sites it holds (a warm start), the prior mean elsewhere."""
    from numpyro.infer import init_to_mean

    if site is None:
        return partial(init_to_warm, values=values)
    if site["type"] == "sample" and not site["is_observed"] and site["name"] in (values or {}):
        return (values or {})[site["name"]]
    return init_to_mean(site)


def _rows(key, n_subjects: int, batch: int | None):
    """A minibatch of subjects, drawn uniformly with replacement (None: all subjects)."""
    return None if batch is None else jax.random.randint(key, (batch,), 0, n_subjects, dtype=jnp.int32)


def _with_rows(fn: Callable) -> Callable:
    """``fn`` (a model or guide) whose ``subjects`` plate takes the minibatch ``rows`` given to it.

    NumPyro's own subsampling draws the minibatch by a Fisher-Yates scan over every subject on CPU, which costs more
    than the rest of an SVI step at Galaxy Zoo sizes; sampling rows with replacement is as unbiased and nearly free.
    The plate still scales the minibatch's log-likelihood by subjects / batch."""
    from numpyro.handlers import substitute

    def with_rows(*args, rows=None, **kwargs):
        if rows is None:
            return fn(*args, **kwargs)
        with substitute(data={"subjects": rows}):
            return fn(*args, **kwargs)

    return with_rows


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


@dataclass
class PosteriorPass:
    """What :func:`answer_posteriors` computes over one question's subjects, from the parameter draws."""

    posteriors: np.ndarray  # [S, K] p(true answer | votes), averaged over the draws
    log_likelihood: float  # log p(votes) at the posterior-mean parameters
    pointwise: np.ndarray | None  # [D, S] log p(votes of subject s | draw d) (for LOO/WAIC), None when too large
    agreement: np.ndarray  # [V] observed: the share of each volunteer's votes that agree with the consensus answer
    agreement_draws: np.ndarray  # [D, V] the same share in votes replicated from the model, one row per draw


def answer_posteriors(
    log_theta_votes: Callable[[dict[str, jax.Array], dict[str, jax.Array]], jax.Array],
    log_prior: Callable[[dict[str, jax.Array], dict[str, jax.Array]], jax.Array],
    draws: dict[str, np.ndarray],
    data: SubjectVotes,
    max_draws: int = 64,
    draw_budget: int = 32_000_000,
    chunk_subjects: int = 65536,
    seed: int = 0,
    max_pointwise: int = 20_000_000,
) -> PosteriorPass:
    """Answer posteriors averaged over (up to ``max_draws``; fewer, at least 16, for questions with more than
    ``draw_budget / max_draws`` subjects) parameter draws, and the model checks that need the same pass over the votes.
    ``log_prior(params, part)`` is the log prior of the subjects of ``part`` ([K] or [B, K]).

    - ``pointwise``: each subject's marginal log-likelihood under each draw, the input of PSIS-LOO and WAIC (the unit
      left out is a subject with all its votes); kept while draws x subjects <= ``max_pointwise``.
    - Posterior predictive check of each volunteer's agreement with the consensus (the most probable answer at the
      posterior-mean parameters): for each draw, a true answer is drawn for every subject from
      p(true answer | votes, draw) and each of the volunteer's votes is replayed from their confusion row; the share
      of replayed votes that agree with the consensus, against the observed share, says whether the model describes
      that volunteer.
    """
    n = next(iter(draws.values())).shape[0]
    # up to max_draws, fewer (at least 16) where draws x subjects would pass draw_budget: the pass costs as much as
    # ~500 SVI steps on a million subjects with 64 draws
    wanted = min(max_draws, max(16, draw_budget // max(data.n_subjects, 1)))
    pick = np.unique(np.linspace(0, n - 1, min(n, wanted)).astype(int))
    chosen = {k: jnp.asarray(v[pick]) for k, v in draws.items()}
    mean = {k: jnp.asarray(v.mean(axis=0)) for k, v in draws.items()}
    arrays = data.device()
    S, V, D = data.n_subjects, data.n_volunteers, len(pick)
    keep_pointwise = D * S <= max_pointwise

    @jax.jit
    def one_chunk(rows, keep, key):
        part = rows_of(arrays, rows)
        joint_at_mean, at_mean = subject_log_likelihood(
            log_theta_votes(mean, part), part["mask"], log_prior(mean, part)
        )
        consensus = jnp.argmax(joint_at_mean, axis=-1).astype(jnp.int32)
        agree_part = dict(part, answer=jnp.broadcast_to(consensus[:, None], part["answer"].shape))
        weight = (part["mask"] & keep[:, None]).astype(jnp.float32)

        def per_draw(args):
            params, draw_key = args
            joint, marginal = subject_log_likelihood(
                log_theta_votes(params, part), part["mask"], log_prior(params, part)
            )
            truth_key, vote_key = jax.random.split(draw_key)
            truth = jax.random.categorical(truth_key, joint - marginal[:, None])  # [B]
            log_agree = log_theta_votes(params, agree_part)  # [B, M, K]: log p(answer = consensus | true k)
            p_agree = jnp.exp(jnp.take_along_axis(log_agree, truth[:, None, None], axis=-1)[..., 0])
            agree = (jax.random.uniform(vote_key, p_agree.shape) < p_agree) * weight
            replayed = jax.ops.segment_sum(agree.ravel(), part["volunteer"].ravel(), num_segments=V)
            return likelihood.posterior(joint, marginal), marginal, replayed

        posterior, marginal, replayed = jax.lax.map(per_draw, (chosen, jax.random.split(key, D)))
        return posterior.mean(axis=0), marginal, replayed, at_mean, consensus

    size = min(chunk_subjects, S)
    out, total = np.zeros((S, data.n_answers), np.float32), 0.0
    pointwise = np.zeros((D, S), np.float32) if keep_pointwise else None
    consensus = np.zeros(S, np.int32)
    replayed = np.zeros((D, V), np.float64)
    key = jax.random.PRNGKey(seed)
    for i, begin in enumerate(range(0, S, size)):
        rows = np.arange(begin, begin + size) % S  # a fixed chunk shape: one compilation; wrapped rows dropped
        keep = min(size, S - begin)
        posterior, marginal, replay, at_mean, chosen_answer = one_chunk(
            jnp.asarray(rows), jnp.asarray(np.arange(size) < keep), jax.random.fold_in(key, i)
        )
        out[begin : begin + keep] = np.asarray(posterior)[:keep]
        total += float(np.asarray(at_mean)[:keep].sum())
        consensus[begin : begin + keep] = np.asarray(chosen_answer)[:keep]
        replayed += np.asarray(replay)
        if pointwise is not None:
            pointwise[:, begin : begin + keep] = np.asarray(marginal)[:, :keep]
    n_votes = np.bincount(data.volunteer[data.mask], minlength=V).astype(np.float64)
    observed = np.bincount(
        data.volunteer[data.mask], minlength=V, weights=(data.answer == consensus[:, None])[data.mask]
    ).astype(np.float64)
    per_vote = np.maximum(n_votes, 1)
    return PosteriorPass(out, total, pointwise, observed / per_vote, replayed / per_vote)


def posterior_predictive_p(observed: np.ndarray, replicated: np.ndarray) -> np.ndarray:
    """Posterior predictive p-value per column: P(replicated > observed) + P(replicated = observed) / 2."""
    return (replicated > observed).mean(axis=0) + 0.5 * np.isclose(replicated, observed).mean(axis=0)


def interval(values: np.ndarray, level: float = 0.9) -> tuple[np.ndarray, np.ndarray]:
    """Equal-tailed ``level`` interval over the first axis (the draws)."""
    lo, hi = np.quantile(values, [(1 - level) / 2, (1 + level) / 2], axis=0)
    return lo, hi
