r"""Joint training: a network on the galaxy pixels (or features) fitted together with a volunteer model.

For each question :math:`q` of the tree, subject :math:`s` with input :math:`x_s` (its image or feature vector) has
a true answer with prior :math:`p_\phi(z_{sq} = k \mid x_s)` from the network (one softmax head per question,
``annostat.vision.networks``), and its votes are scored by the volunteers' confusions :math:`\theta` through the
shared likelihood (``annostat.models.likelihood``):

.. math::
    \mathcal{L}(\phi, \theta) = \sum_q \sum_s \log \sum_k p_\phi(z_{sq}=k \mid x_s)
        \prod_{n \in (s, q)} \theta_{v_n}[k, l_n] \;+\; \log p(\theta).

:math:`\log p(\theta)` is the volunteer model's prior on the confusions: for ``ds``, Dirichlet pseudo-counts on each
row (:mod:`annostat.models.dawid_skene`); for ``hds``, each volunteer's off-diagonal logits pooled around a population
mean with a spread per true answer (:mod:`annostat.models.hierarchical`, its skill term left out), the population
fitted with them. Both start from the votes-only Dawid-Skene fit.

Two ways to maximise it (``method``):

``marginal``
    stochastic gradient ascent on :math:`\mathcal{L}` over :math:`(\phi, \theta)` together, on minibatches of
    subjects with their votes (optax AdamW, linear warm-up and cosine decay, weight decay on the network only;
    augmentations on images). The network is first fitted to the votes-only posteriors (a warm start, a few epochs),
    so the confusions do not chase an untrained network.
``em``
    alternation as in Raykar et al. (2010): E-step, posteriors of the true answers given the network's prior and the
    votes; M-step, the confusions from the expected counts (closed form for ``ds``) and the network trained on the
    posteriors (soft cross-entropy), each round. With ``folds`` > 1 (default 5) the prior of each subject comes from a
    network trained on the other folds (cross-fitting), so a network that memorises a subject's posterior cannot
    feed it back to itself; subjects without votes get the mean of the fold networks.

Early stopping needs no truth: a share of the voted subjects (``holdout``, marginal) or every subject's out-of-fold
prediction (em with folds) gives the log-likelihood of votes the network did not train on, per vote; training keeps
the epoch (round) where it was highest and stops after ``patience`` epochs (rounds) without improvement. Galaxies
without votes get the network's answer. Everything is reproducible for a seed.

The same machinery trains the image baselines of the harness (``loss``): ``soft`` (a network on given posteriors:
Dawid-Skene then train, the two-stage pipeline), ``dirichlet`` (Zoobot's Dirichlet-multinomial loss on each
question's vote counts, every vote equal) and ``crowdlayer`` (Rodrigues & Pereira 2018: each vote's cross-entropy
through its volunteer's confusion, votes independent rather than joint per subject).

References: V. C. Raykar, S. Yu, L. H. Zhao, G. H. Valadez, C. Florin, L. Bogoni, L. Moy (2010), Learning from
crowds, JMLR 11, 1297-1322; F. Rodrigues, F. Pereira (2018), Deep learning from crowds, AAAI; M. Walmsley et al.
(2022), Galaxy Zoo DECaLS, MNRAS 509, 3966 (the Dirichlet-multinomial loss); V. Chernozhukov et al. (2018),
Double/debiased machine learning, Econometrics Journal 21 (cross-fitting).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from annostat.infer.training import (  # noqa: F401 - the API
    QuestionVotes,
    Trainer,
    TrainingProgress,
    dirichlet_multinomial,
    expected_counts,
    layout_votes,
    question_joint,
)
from annostat.models import likelihood
from annostat.models.confusions import VOLUNTEER_MODELS, volunteer_part

if TYPE_CHECKING:
    from annostat.vision.inputs import Inputs

METHODS = ("marginal", "em")
LOSSES = ("joint", "soft", "dirichlet", "crowdlayer")


# ---------------------------------------------------------------------------------------------------- settings
@dataclass
class JointSettings:
    """The joint model's settings (``annostat fit --images/--features``)."""

    volunteer_model: str = "ds"
    method: str = "em"
    loss: str = "joint"
    epochs: int = 30
    batch_size: int = 128
    learning_rate: float = 1e-3
    weight_decay: float = 0.05
    warmup: float = 0.05  # share of the steps with a linear warm-up
    holdout: float = 0.1
    patience: int = 5
    folds: int = 5
    rounds: int = 8
    epochs_per_round: int = 10
    min_steps: int = 300  # a network trained from scratch gets at least this many steps (small data: more epochs)
    first_epochs: int | None = None  # epochs of the first EM round (default 3 x epochs_per_round); later rounds
    #                                  continue from the previous round's networks
    restart: bool = False  # EM: train every round's networks from scratch instead
    warm_start_epochs: int = 5
    augment: bool = True
    seed: int = 0
    pseudo_diagonal: float = 2.0
    pseudo_off_diagonal: float = 0.25
    network: dict[str, Any] = field(default_factory=dict)
    devices: int | None = None  # data-parallel training over this many devices (None or 1: one)

    def __post_init__(self) -> None:
        if self.volunteer_model not in VOLUNTEER_MODELS:
            raise ValueError(
                f"the joint model takes --model {' or '.join(VOLUNTEER_MODELS)}, not {self.volunteer_model!r}"
            )
        if self.method not in METHODS or self.loss not in LOSSES:
            raise ValueError(f"method must be one of {METHODS} and loss one of {LOSSES}")
        for name in ("epochs", "batch_size", "patience", "folds", "rounds", "epochs_per_round"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name.replace('_', '-')} must be at least 1, not {getattr(self, name)}")
        if not (0.0 <= self.holdout < 0.9) or self.learning_rate <= 0 or self.weight_decay < 0:
            raise ValueError("holdout must be in [0, 0.9), the learning rate > 0 and the weight decay >= 0")
        if self.devices is not None:
            from annostat.infer.sharding import device_mesh

            device_mesh(int(self.devices))  # more devices than JAX sees: an error now


# ---------------------------------------------------------------------------------------------------- the fit
@dataclass
class JointResult:
    """What :func:`fit_joint` hands back: each question's log prior from the network(s) [N, K], the volunteers'
    parameters and log confusions, the final posteriors, the networks' parameters, the training trace."""

    log_priors: list[np.ndarray]
    vol_params: list[Any]
    posteriors: list[np.ndarray]
    networks: list[Any]
    trace: list[dict[str, Any]]
    best: int
    heldout_log_likelihood: float | None
    seconds: float
    tempering: list[dict[str, Any]] | None = None  # per question: weight, log_base (see :func:`temper`)
    volunteers: Any = None  # the volunteer model's confusions (``annostat.models.confusions``): log_theta, ...


#: weights tried when the network's prior is tempered against the votes
TEMPER_GRID = np.linspace(0.0, 1.0, 21)


def temper(
    trainer: Trainer, lps: list[np.ndarray], vol_params: list[Any], rows: np.ndarray
) -> tuple[list[np.ndarray], list[dict[str, Any]]]:
    r"""The network's log priors tempered against the votes of ``rows`` (votes it did not train on), per question:
    :math:`\log\mathrm{softmax}(\log\pi + w(\log q_s - \log\bar q))`, with :math:`q_s` the network's prediction,
    :math:`\bar q` its mean over ``rows``, :math:`\pi` the base rate of the answers and :math:`w \in [0, 1]`
    (``likelihood.evidence_log_prior``: the form in which ``annostat fit --prior`` takes a classifier). :math:`w` is
    the point of :data:`TEMPER_GRID` whose priors give those votes the highest marginal likelihood, :math:`\pi` the
    answers' share under the resulting posteriors (a few fixed-point steps for each :math:`w`). A network that cannot
    yet tell the answers apart, or is over-confident out of sample, is trusted less (w < 1), and its own base rate
    never replaces the one the votes show. Returns (tempered log priors of every row, [{"weight", "log_base",
    "log_mean"}] per question)."""
    out, record = [], []
    for q, qv in enumerate(trainer.questions):
        lp = np.asarray(lps[q], np.float64)
        has = rows[qv.has[rows]]
        if not len(has):
            out.append(lps[q])
            record.append({"weight": 1.0, "log_base": None, "log_mean": None})
            continue
        log_mean = np.log(np.exp(lp[has]).mean(axis=0))
        ratio = jnp.asarray(lp - log_mean, jnp.float32)
        vll = likelihood.vote_log_likelihood(trainer.vol.log_theta(vol_params[q]), jnp.asarray(qv.cells[has]))
        best = _best_weight(vll, jnp.asarray(qv.mask[has]), ratio[has])
        w, log_pi = float(best[0]), best[1]
        out.append(np.asarray(likelihood.evidence_log_prior(log_pi, ratio, w), np.float32))
        record.append({"weight": w, "log_base": np.asarray(log_pi, np.float64).tolist(), "log_mean": log_mean.tolist()})
    return out, record


@jax.jit
def _best_weight(vll, mask, ratio):
    """(w, log pi) of :func:`temper` for one question's voted rows: every weight of the grid at once."""
    K = ratio.shape[-1]

    def score(w):
        def step(log_pi, _):
            joint = likelihood.padded_joint(vll, mask, likelihood.evidence_log_prior(log_pi, ratio, w))
            post = likelihood.posterior(joint)
            return jnp.log(jnp.clip(post.mean(axis=0), 1e-6, 1.0)), None

        log_pi, _ = jax.lax.scan(step, jnp.full((K,), -jnp.log(K)), None, length=20)
        joint = likelihood.padded_joint(vll, mask, likelihood.evidence_log_prior(log_pi, ratio, w))
        return jnp.sum(likelihood.marginal(joint)), log_pi

    totals, log_pis = jax.vmap(score)(jnp.asarray(TEMPER_GRID, jnp.float32))
    i = jnp.argmax(totals)
    return jnp.asarray(TEMPER_GRID, jnp.float32)[i], log_pis[i]


def posteriors_from(trainer: Trainer, log_priors: list[np.ndarray], vol_params: list[Any]) -> list[np.ndarray]:
    """Each question's p(true answer | input, votes) [N, K] for every row."""
    rows = np.arange(len(trainer.inputs))
    out = []
    for q in range(len(trainer.questions)):
        joint = trainer.joint(q, log_priors[q], vol_params[q], rows)
        out.append(np.asarray(likelihood.posterior(jnp.asarray(joint)), np.float64))
    return out


def fit_joint(
    inputs: Inputs,
    questions: list[QuestionVotes],
    config: dict[str, Any],
    settings: JointSettings,
    start_posteriors: list[np.ndarray],
    start_confusions: list[np.ndarray],
    progress: TrainingProgress | None = None,
    checkpoint: Path | None = None,
    start_networks: list | None = None,
) -> JointResult:
    """Fit the network(s) and the confusions (module docstring). ``start_posteriors`` [N, K] and
    ``start_confusions`` [V, K, K] per question come from the votes-only fit (rows without votes: any values).
    ``checkpoint``: a folder where EM saves its state after every round and from which an interrupted fit
    resumes. ``start_networks``: a previous fit's networks to fine-tune (an update): EM's folds start from them
    (one a fold, as many as there are folds) and every round trains ``epochs_per_round``; the marginal method starts
    from the first, with no warm-start epochs."""
    start = time.perf_counter()
    s = settings
    vol = volunteer_part(
        s.volunteer_model, pseudo_diagonal=s.pseudo_diagonal, pseudo_off_diagonal=s.pseudo_off_diagonal
    )
    trainer = Trainer(inputs, questions, config, s, vol, progress)
    voted = np.flatnonzero(np.any([qv.has for qv in questions], axis=0))
    vol_params = [vol.init(c) for c in start_confusions]
    T = [np.asarray(p, np.float32) for p in start_posteriors]
    if s.loss != "joint":
        return _fit_baseline(trainer, voted, T, vol_params, start)
    if s.method == "marginal":
        heldout, train_rows = _split(voted, s.holdout, s.seed)
        n_hold = len(heldout)
        params = (
            start_networks[0]
            if start_networks
            else trainer.train(train_rows, s.warm_start_epochs, s.seed, targets=T, label="warm start")[0]
        )
        params, vol_params, best = trainer.train(
            train_rows,
            _epochs(s.epochs, len(train_rows), s),
            s.seed + 1,
            vol_params=vol_params,
            train_vol=True,
            heldout=heldout,
            params=params,
            label="joint",
        )
        lps = trainer.predict(params)
        networks = [params]
        tempering = None
        if n_hold:
            lps, tempering = temper(trainer, lps, vol_params, heldout)
        held = trainer.vote_log_likelihood(lps, vol_params, heldout) if n_hold else None
        post = posteriors_from(trainer, lps, vol_params)
    else:
        lps, networks, best, held, post, vol_params, tempering = _fit_em(
            trainer, voted, T, vol_params, checkpoint, start_networks
        )
    return JointResult(
        lps, vol_params, post, networks, trainer.trace, best, held, time.perf_counter() - start, tempering, vol
    )


def _epochs(epochs: int, n_rows: int, s: JointSettings, min_steps: int | None = None) -> int:
    """``epochs``, or more where they would be fewer than ``min_steps`` steps (small data sets)."""
    per_epoch = max(n_rows // min(s.batch_size, max(n_rows, 1)), 1)
    return max(epochs, math.ceil((s.min_steps if min_steps is None else min_steps) / per_epoch))


def _split(voted: np.ndarray, share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(held-out rows, training rows): ``share`` of the voted rows held out (none below 20 voted rows)."""
    n_hold = round(share * len(voted)) if len(voted) >= 20 else 0
    shuffled = np.random.default_rng(seed).permutation(voted)
    return np.sort(shuffled[:n_hold]), np.sort(shuffled[n_hold:])


def _fit_baseline(trainer: Trainer, voted, T, vol_params, start) -> JointResult:
    """The image baselines (module docstring): one network, early-stopped on held-out subjects' votes under the
    votes-only confusions (``soft``, ``dirichlet``) or its own (``crowdlayer``). Answers: the network's, except that
    the two-stage pipeline keeps the votes-only posteriors of the voted subjects (its network is for the others)."""
    s = trainer.s
    heldout, train_rows = _split(voted, s.holdout, s.seed)
    crowdlayer = s.loss == "crowdlayer"
    params, vol_params, best = trainer.train(
        train_rows,
        _epochs(s.epochs, len(train_rows), s),
        s.seed,
        targets=T if s.loss == "soft" else None,
        vol_params=vol_params,
        train_vol=crowdlayer,
        heldout=heldout,
        label=s.loss,
    )
    lps = trainer.predict(params)
    held = trainer.vote_log_likelihood(lps, vol_params, heldout) if len(heldout) else None
    post = [np.exp(lp.astype(np.float64)) for lp in lps]
    if s.loss == "soft":
        for q, qv in enumerate(trainer.questions):
            post[q][qv.has] = T[q][qv.has]
    return JointResult(
        lps, vol_params, post, [params], trainer.trace, best, held, time.perf_counter() - start, volunteers=trainer.vol
    )


def _fit_em(trainer: Trainer, voted: np.ndarray, T, vol_params, checkpoint=None, start_networks=None):
    """Raykar-style alternation, cross-fitted over folds of the voted subjects (module docstring). With
    ``checkpoint`` (a folder), the state after each round is saved there, and a fit whose folder holds one resumes
    from it."""
    s, vol, questions = trainer.s, trainer.vol, trainer.questions
    N = len(trainer.inputs)
    folds = min(s.folds, max(len(voted) // 10, 1))
    fold_of = np.full(N, -1)
    fold_of[np.random.default_rng(s.seed).permutation(voted)] = np.arange(len(voted)) % folds
    unvoted = np.flatnonzero(fold_of < 0)
    state = {
        "round": 0,
        "waited": 0,
        "nets": [None] * folds,
        "vol": vol_params,
        "T": T,
        "best": {"ll": -np.inf, "round": 0},
    }
    if start_networks is not None and len(start_networks) == folds:  # fine-tuning: the folds start from them
        state["nets"] = list(start_networks)
    if checkpoint is not None:
        state = _restore_round(trainer, checkpoint, state, folds)
    first = s.first_epochs or 3 * s.epochs_per_round
    for r in range(state["round"] + 1, s.rounds + 1):
        if state["waited"] >= s.patience:
            break
        lps = [np.zeros((N, qv.K), np.float32) for qv in questions]
        nets = []
        for f in range(folds):
            train_rows = voted if folds == 1 else np.flatnonzero((fold_of >= 0) & (fold_of != f))
            predict_rows = voted if folds == 1 else np.flatnonzero(fold_of == f)
            previous = None if s.restart else state["nets"][f]
            epochs = (
                _epochs(first, len(train_rows), s)
                if previous is None
                else _epochs(s.epochs_per_round, len(train_rows), s, s.min_steps // 4)
            )
            params, _, _ = trainer.train(
                train_rows,
                epochs,
                s.seed + 1000 * r + f,
                targets=state["T"],
                params=previous,
                label=f"round {r} fold {f + 1}",
                bar="network (each fold, each round)",
            )
            nets.append(params)
            for q, lp in enumerate(trainer.predict(params, predict_rows)):
                lps[q][predict_rows] = lp
        if len(unvoted):
            for q, lp in enumerate(_ensemble(trainer, nets, unvoted)):
                lps[q][unvoted] = lp
        vol_params = state["vol"]
        lps, tempering = temper(trainer, lps, vol_params, voted)  # out-of-fold: votes the networks never saw
        ll = trainer.vote_log_likelihood(lps, vol_params, voted)
        record = {
            "stage": "EM rounds",
            "epoch": r,
            "heldout_log_likelihood": ll,
            "prior_weights": [t["weight"] for t in tempering],
        }
        trainer.trace.append(record)
        if trainer.progress is not None:
            trainer.progress(r, s.rounds, record)
        if ll > state["best"]["ll"]:
            state["best"], state["waited"] = (
                {"ll": ll, "round": r, "lps": lps, "nets": nets, "vol": vol_params, "tempering": tempering},
                0,
            )
        else:
            state["waited"] += 1
        # E-step with this round's prior, then the M-step of the confusions from its posteriors
        post = posteriors_from(trainer, lps, vol_params)
        vol_params = [
            vol.m_step(vp, jnp.asarray(expected_counts(qv, p), jnp.float32))
            for vp, qv, p in zip(vol_params, questions, post)
        ]
        state |= {
            "round": r,
            "nets": nets,
            "vol": vol_params,
            "T": [p.astype(np.float32) for p in posteriors_from(trainer, lps, vol_params)],
        }
        if checkpoint is not None:
            _save_round(trainer, checkpoint, state)
    best = state["best"]
    lps, vol_params = best["lps"], best["vol"]
    post = posteriors_from(trainer, lps, vol_params)
    return lps, best["nets"], best["round"], best["ll"], post, vol_params, best.get("tempering")


def _save_round(trainer: Trainer, folder, state) -> None:
    """The EM state after a round (networks as plain dictionaries, an orbax checkpoint) and the trace so far."""
    import json
    import shutil
    from pathlib import Path

    import orbax.checkpoint as ocp

    folder = Path(folder).absolute()
    folder.mkdir(parents=True, exist_ok=True)
    best = state["best"]
    tree = {
        "nets": [nnx.to_pure_dict(n) for n in state["nets"]],
        "vol": state["vol"],
        "T": state["T"],
        "best_lps": best["lps"],
        "best_nets": [nnx.to_pure_dict(n) for n in best["nets"]],
        "best_vol": best["vol"],
    }
    tmp = folder / "round.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(tmp, tree)
    checkpointer.wait_until_finished()
    info = {
        "round": state["round"],
        "waited": state["waited"],
        "best_ll": best["ll"],
        "best_round": best["round"],
        "best_tempering": best.get("tempering"),
        "trace": trainer.trace,
        "settings": _fingerprint(trainer),
    }
    (tmp / "annostat_round.json").write_text(json.dumps(info), encoding="utf-8")
    target = folder / "round"
    if target.exists():
        shutil.rmtree(target)
    tmp.rename(target)


def _restore_round(trainer: Trainer, folder, state, folds: int):
    """The state saved by :func:`_save_round`, when the folder holds one from the same data and settings."""
    import json
    from pathlib import Path

    import orbax.checkpoint as ocp

    target = Path(folder).absolute() / "round"
    info_path = target / "annostat_round.json"
    if not info_path.is_file():
        return state
    info = json.loads(info_path.read_text(encoding="utf-8"))
    if info.get("settings") != _fingerprint(trainer):
        from annostat.errors import InputError

        raise InputError(
            f"{target}: saved by a fit with other votes, inputs or settings; remove it or fit without --resume"
        )
    tree = ocp.StandardCheckpointer().restore(target)

    def net(pure):
        template = trainer.new_params(0)
        nnx.replace_by_pure_dict(template, pure)
        return template

    trainer.trace[:] = info["trace"]
    return {
        "round": info["round"],
        "waited": info["waited"],
        "nets": [net(p) for p in tree["nets"]],
        "vol": [jax.tree.map(jnp.asarray, v) for v in tree["vol"]],
        "T": [np.asarray(t, np.float32) for t in tree["T"]],
        "best": {
            "ll": info["best_ll"],
            "round": info["best_round"],
            "lps": [np.asarray(x, np.float32) for x in tree["best_lps"]],
            "nets": [net(p) for p in tree["best_nets"]],
            "vol": [jax.tree.map(jnp.asarray, v) for v in tree["best_vol"]],
            "tempering": info.get("best_tempering"),
        },
    }


def _fingerprint(trainer: Trainer) -> dict[str, Any]:
    """What a saved round must share with the fit that resumes it: the settings, the network and the data's shape."""
    from dataclasses import asdict

    votes = [int(qv.mask.sum()) for qv in trainer.questions]
    return _json_safe(
        {"settings": asdict(trainer.s), "config": trainer.config, "rows": len(trainer.inputs), "votes": votes}
    )


def _json_safe(value):
    import json

    return json.loads(json.dumps(value, default=str))


def _ensemble(trainer: Trainer, nets, rows) -> list[np.ndarray]:
    """log of the mean probability of the networks ``nets`` on ``rows``."""
    per_net = [trainer.predict(p, rows) for p in nets]
    return [np.log(np.mean([np.exp(n[q]) for n in per_net], axis=0)) for q in range(len(trainer.heads))]
