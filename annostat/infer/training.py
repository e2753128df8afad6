r"""Training a network on subjects' inputs with their votes: the votes laid out by input row, one compiled step
for every loss (the joint marginal likelihood, soft targets, Zoobot's Dirichlet-multinomial, CrowdLayer), held-out
vote log-likelihood for early stopping. :mod:`annostat.infer.joint` puts these together into the joint model's fit;
the maths of each loss is in its docstring.

The step is compiled once per kind of loss whatever the schedule (learning rates are arguments, not constants), so
the folds and rounds of a cross-fitted EM reuse it; predictions are padded to a few batch shapes for the same reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from annostat.models import likelihood
from annostat.vision.networks import answer_log_probs, build_network, concentrations, question_log_probs

if TYPE_CHECKING:  # pragma: no cover
    from annostat.data.votes import Votes
    from annostat.infer.joint import JointSettings
    from annostat.vision.inputs import Inputs

#: progress(epoch, epochs at most, {"stage", "loss", "heldout_log_likelihood"})
TrainingProgress = Callable[[int, int, dict[str, Any]], None]


@dataclass
class QuestionVotes:
    """One question's votes laid out by input row: ``cells`` [N, M] (``volunteer * K + answer``, local volunteer
    codes), ``mask`` [N, M]; rows without votes on the question are all masked."""

    question: int
    K: int
    volunteers: np.ndarray  # [V] the votes' volunteer codes, in local order
    cells: np.ndarray
    mask: np.ndarray
    counts: np.ndarray  # [N, K] votes per answer (the Dirichlet loss)
    known: np.ndarray | None = None  # [N] each row's gold answer (annostat.data.gold), -1 where unknown

    @property
    def has(self) -> np.ndarray:
        return np.asarray(self.mask.any(axis=1))

    def known_of(self, rows: np.ndarray) -> np.ndarray:
        """The gold answers of ``rows`` (-1 where unknown)."""
        return np.full(len(rows), -1, np.int32) if self.known is None else self.known[rows]


def layout_votes(votes: Votes, rows_of_subject: np.ndarray, n_rows: int) -> list[QuestionVotes]:
    """Each question's votes by input row; ``rows_of_subject`` [S] maps the votes' subject codes to rows (-1: the
    subject has no input, its votes are not used)."""
    out = []
    for q, subject, volunteer, answer in votes.iter_questions():
        K = votes.n_answers[q]
        row = rows_of_subject[subject]
        keep = row >= 0
        row, volunteer, answer = row[keep], volunteer[keep], answer[keep]
        volunteers, v_local = np.unique(volunteer, return_inverse=True)
        order = np.argsort(row, kind="stable")
        row, v_local, answer = row[order], v_local[order], answer[order]
        per_row = np.bincount(row, minlength=n_rows)
        M = max(int(per_row.max()) if len(row) else 0, 1)
        start = np.concatenate([[0], np.cumsum(per_row)[:-1]])
        slot = np.arange(len(row)) - start[row]
        cells = np.zeros((n_rows, M), np.int32)
        mask = np.zeros((n_rows, M), bool)
        cells[row, slot] = v_local * K + answer
        mask[row, slot] = True
        counts = np.zeros((n_rows, K), np.float32)
        np.add.at(counts, (row, answer), 1.0)
        known = None
        gold_subjects, gold_answers = votes.gold_codes(q)
        if len(gold_subjects):  # gold answers: the known answer of their rows
            known = np.full(n_rows, -1, np.int32)
            gold_rows = rows_of_subject[gold_subjects]
            known[gold_rows[gold_rows >= 0]] = gold_answers[gold_rows >= 0]
        out.append(QuestionVotes(q, K, volunteers.astype(np.int32), cells, mask, counts, known))
    return out


def expected_counts(qv: QuestionVotes, T: np.ndarray) -> np.ndarray:
    """[V, K, K] expected votes per (volunteer, true answer, answer) under posteriors ``T`` [N, K]."""
    from annostat.models.base import vote_counts

    rows, slots = np.nonzero(qv.mask)
    return vote_counts(qv.cells[rows, slots], np.asarray(T, np.float64)[rows], len(qv.volunteers), qv.K)


class Trainer:
    """Trains networks on one set of inputs and votes (see the module docstring)."""

    def __init__(
        self,
        inputs: Inputs,
        questions: list[QuestionVotes],
        config: dict[str, Any],
        settings: JointSettings,
        volunteers: Any = None,
        progress: TrainingProgress | None = None,
    ) -> None:
        self.inputs = inputs  # .batch(rows) -> float32 array; len(inputs) rows
        self.questions = questions
        self.heads = [qv.K for qv in questions]
        self.config = config
        self.s = settings
        self.vol = volunteers
        self.progress = progress
        self.is_image = config["kind"] == "cnn"
        self.trace: list[dict[str, Any]] = []
        graphdef, _ = nnx.split(build_network(config, settings.seed))
        self.graphdef = graphdef
        self._steps: dict[Any, Any] = {}  # compiled log-probabilities, and (training step, optimiser) pairs
        from annostat.infer.sharding import device_mesh

        # data-parallel training: each minibatch split over the devices (its arrays sharded along the batch), the
        # network's parameters replicated; XLA's partitioner sums the gradients across devices
        self.mesh = device_mesh(settings.devices) if settings.devices and settings.devices > 1 else None

    # ---- the network as a pure function
    def new_params(self, seed: int) -> Any:
        return nnx.split(build_network(self.config, seed))[1]

    def logits(self, params: Any, x: jax.Array, train: bool = False, key: jax.Array | None = None) -> jax.Array:
        net = nnx.merge(self.graphdef, params)
        if train and self.is_image and self.s.augment:
            from annostat.vision.images import augment

            assert key is not None  # training draws the augmentations
            key, k_aug = jax.random.split(key)
            x = augment(k_aug, x)
        return net(x, train=train, rngs=nnx.Rngs(dropout=key) if train and key is not None else None)

    def log_probs(
        self, params: Any, x: jax.Array, train: bool = False, key: jax.Array | None = None
    ) -> list[jax.Array]:
        """Each question's log p(true answer | input) [B, K_q]."""
        return answer_log_probs(
            self.logits(params, x, train, key), self.heads, "dirichlet" if self.s.loss == "dirichlet" else "softmax"
        )

    def predict(self, params: Any, rows: np.ndarray | None = None, batch: int = 1024) -> list[np.ndarray]:
        """Each question's log p(answer | input) [len(rows), K] under ``params`` (no dropout or augmentation)."""
        rows = np.arange(len(self.inputs)) if rows is None else np.asarray(rows)
        key = ("predict", batch)
        if key not in self._steps:
            self._steps[key] = jax.jit(lambda p, x: self.log_probs(p, x))
        out: list[list[np.ndarray]] = [[] for _ in self.heads]
        for start in range(0, len(rows), batch):
            part = rows[start : start + batch]
            size = min(batch, 1 << max(len(part) - 1, 0).bit_length())  # a few shapes: a few compilations
            padded = np.resize(part, size)
            lps = self._steps[key](params, self.inputs.batch(padded))
            for q, lp in enumerate(lps):
                out[q].append(np.asarray(lp)[: len(part)])
        return [np.concatenate(o) if o else np.zeros((0, k), np.float32) for o, k in zip(out, self.heads)]

    # ---- one loss for every kind of training
    def _batch_loss(self, params, vol_params, x, cells, masks, knowns, targets, counts, key, n_train):
        logits = self.logits(params, x, train=True, key=key)
        B = x.shape[0]
        total = 0.0
        if self.s.loss == "dirichlet" and targets is None:
            for q, alpha in enumerate(concentrations(logits, self.heads)):
                total = total + jnp.sum(jnp.where(masks[q].any(-1), dirichlet_multinomial(alpha, counts[q]), 0.0))
            return -total / B
        for q, lp in enumerate(question_log_probs(logits, self.heads)):
            mask = masks[q]
            has = mask.any(-1)
            if targets is not None:  # soft targets: the two-stage pipeline, and the network step of EM
                total = total + jnp.sum(jnp.where(has[:, None], targets[q] * lp, 0.0))
                continue
            vll = likelihood.vote_log_likelihood(self.vol.log_theta(vol_params[q]), cells[q])  # [B, M, K]
            if self.s.loss == "joint":  # a gold answer is the row's true answer: the network is told it directly
                lp = likelihood.known_answer_log_prior(lp, knowns[q])
                has = has | (knowns[q] >= 0)
            if self.s.loss == "crowdlayer":
                per_vote = likelihood.marginal(vll + lp[:, None, :])
                total = total + jnp.sum(jnp.where(mask, per_vote, 0.0))
            else:
                total = total + jnp.sum(
                    jnp.where(has, likelihood.marginal(likelihood.padded_joint(vll, mask, lp)), 0.0)
                )
        prior = 0.0
        if vol_params is not None and targets is None and self.s.loss in ("joint", "crowdlayer"):
            prior = sum(self.vol.log_prior(p) for p in vol_params) * (B / n_train)
        return -(total + prior) / B

    def _step_fn(self, train_vol: bool, soft: bool):
        """The compiled training step (one per kind, whatever the schedule: the learning rates are arguments)."""
        key = ("step", train_vol, soft)
        if key in self._steps:
            return self._steps[key]
        tx = self._transform(train_vol)

        def step(params, vol_params, opt_state, x, cells, masks, knowns, targets, counts, rng, n_train, lr_net, lr_vol):
            def loss_fn(trainable):
                p, vp = trainable if train_vol else (trainable, vol_params)
                return self._batch_loss(p, vp, x, cells, masks, knowns, targets, counts, rng, n_train)

            trainable = (params, vol_params) if train_vol else params
            loss, grads = jax.value_and_grad(loss_fn)(trainable)
            updates, opt_state = tx.update(grads, opt_state, trainable)
            if train_vol:
                updates = (
                    jax.tree.map(lambda u: -lr_net * u, updates[0]),
                    jax.tree.map(lambda u: -lr_vol * u, updates[1]),
                )
            else:
                updates = jax.tree.map(lambda u: -lr_net * u, updates)
            trainable = optax.apply_updates(trainable, updates)
            p, vp = trainable if train_vol else (trainable, vol_params)
            return p, vp, opt_state, loss

        self._steps[key] = (jax.jit(step), tx)
        return self._steps[key]

    def _transform(self, train_vol: bool):
        """AdamW without its learning rate (applied in the step, from the schedule): weight decay on the network
        only; plain Adam for the confusions."""
        net = optax.chain(optax.scale_by_adam(), optax.add_decayed_weights(self.s.weight_decay))
        if not train_vol:
            return net
        return optax.multi_transform({"net": net, "vol": optax.scale_by_adam()}, ("net", "vol"))

    def _schedule(self, n_steps: int):
        """Learning rates per step: the network's linear warm-up then cosine decay (to 1%), the confusions' cosine
        decay from 0.02."""
        net = optax.warmup_cosine_decay_schedule(
            0.0,
            self.s.learning_rate,
            max(int(self.s.warmup * n_steps), 1),
            max(n_steps, 2),
            end_value=self.s.learning_rate * 0.01,
        )
        vol = optax.cosine_decay_schedule(0.02, max(n_steps, 2), alpha=0.05)
        return net, vol

    def _batch_size(self, n_rows: int) -> int:
        """Subjects a minibatch: the setting, at most the rows; on a mesh a multiple of its devices."""
        B = min(self.s.batch_size, n_rows)
        if self.mesh is not None and n_rows >= self.mesh.size:
            B = max(B // self.mesh.size, 1) * self.mesh.size
        return B

    def _batches(self, rows: np.ndarray, rng: np.random.Generator):
        B = self._batch_size(len(rows))
        order = rng.permutation(rows)
        n = max(len(order) // B, 1)
        for i in range(n):
            yield np.sort(order[i * B : (i + 1) * B])

    def _data(self, rows, targets=None):
        if self.mesh is not None and len(rows) % self.mesh.size == 0:  # split along the batch, one part a device
            from annostat.infer.sharding import split

            where = split(self.mesh)

            def put(x):
                return jax.device_put(np.asarray(x), where)
        else:
            put = jnp.asarray
        cells = [put(qv.cells[rows]) for qv in self.questions]
        masks = [put(qv.mask[rows]) for qv in self.questions]
        tgt = [put(np.asarray(t[rows], np.float32)) for t in targets] if targets is not None else None
        counts = [put(qv.counts[rows]) for qv in self.questions]
        knowns = [put(qv.known_of(rows)) for qv in self.questions]
        return put(self.inputs.batch(rows)), cells, masks, knowns, tgt, counts

    def train(
        self,
        rows: np.ndarray,
        epochs: int,
        seed: int,
        targets: list[np.ndarray] | None = None,
        vol_params: list[Any] | None = None,
        train_vol: bool = False,
        heldout: np.ndarray | None = None,
        params: Any = None,
        label: str = "",
        bar: str | None = None,
    ) -> tuple[Any, Any, int]:
        """Train a network on ``rows`` for at most ``epochs`` (early stopping on ``heldout`` rows' votes when
        given); returns (network parameters, volunteer parameters, best epoch)."""
        rng = np.random.default_rng(seed)
        key = jax.random.key(seed)
        params = self.new_params(seed) if params is None else params
        if self.mesh is not None:  # the same parameters on every device
            from annostat.infer.sharding import replicated

            params, vol_params = jax.device_put((params, vol_params), replicated(self.mesh))
        B = self._batch_size(len(rows))
        per_epoch = max(len(rows) // B, 1)
        step, tx = self._step_fn(train_vol, targets is not None)
        lr_net, lr_vol = self._schedule(epochs * per_epoch)
        opt_state = tx.init((params, vol_params) if train_vol else params)
        n_step = 0
        best = (-np.inf, params, vol_params, 0)
        waited = 0
        for epoch in range(1, epochs + 1):
            losses = []
            for batch in self._batches(rows, rng):
                key, k = jax.random.split(key)
                x, cells, masks, knowns, tgt, counts = self._data(batch, targets)
                params, vol_params, opt_state, loss = step(
                    params,
                    vol_params,
                    opt_state,
                    x,
                    cells,
                    masks,
                    knowns,
                    tgt,
                    counts,
                    k,
                    float(len(rows)),
                    lr_net(n_step),
                    lr_vol(n_step),
                )
                n_step += 1
                losses.append(loss)
            loss = float(np.mean(jax.device_get(losses)))
            record: dict[str, Any] = {"stage": label, "epoch": epoch, "loss": loss}
            if heldout is not None and len(heldout) and vol_params is not None:
                ll = self.heldout_log_likelihood(params, vol_params, heldout)
                record["heldout_log_likelihood"] = ll
                if ll > best[0]:
                    best, waited = (ll, params, vol_params, epoch), 0
                else:
                    waited += 1
            self.trace.append(record)
            if self.progress is not None:
                self.progress(epoch, epochs, record | {"stage": bar or label})
            if heldout is not None and len(heldout) and waited >= self.s.patience and epoch >= epochs // 3:
                break  # (never before a third of the epochs: a network from scratch learns slowly at first)
        if heldout is not None and len(heldout):
            return best[1], best[2], best[3]
        return params, vol_params, epochs

    def heldout_log_likelihood(self, params: Any, vol_params: list[Any], rows: np.ndarray) -> float:
        """Log-likelihood per vote of ``rows``' votes under the network's prior and the confusions."""
        lps = self.predict(params, rows)
        return self.vote_log_likelihood(lps, vol_params, rows)

    def vote_log_likelihood(self, lps: list[np.ndarray], vol_params: list[Any], rows: np.ndarray) -> float:
        total, n = 0.0, 0
        for q, qv in enumerate(self.questions):
            joint = self.joint(q, lps[q], vol_params[q], rows)
            has = qv.has[rows]
            total += float(np.sum(np.asarray(likelihood.marginal(joint))[has]))
            n += int(qv.mask[rows].sum())
        return total / max(n, 1)

    def joint(self, q: int, log_prior: np.ndarray, vol_q: Any, rows: np.ndarray) -> np.ndarray:
        return question_joint(self.vol, self.questions[q], log_prior, vol_q, rows)


def question_joint(vol: Any, qv: QuestionVotes, log_prior: np.ndarray, vol_q: Any, rows: np.ndarray) -> np.ndarray:
    """[len(rows), K] joint log-likelihood of the rows' votes on one question and their true answer, under the
    network's log prior (of those rows, [len(rows), K], or of every row) and the confusions ``vol_q``."""
    rows = np.asarray(rows)
    log_prior = np.asarray(log_prior)
    if log_prior.shape[0] != len(rows):
        log_prior = log_prior[rows]
    vll = likelihood.vote_log_likelihood(vol.log_theta(vol_q), jnp.asarray(qv.cells[rows]))
    log_prior = jnp.asarray(log_prior)
    if qv.known is not None:  # gold answers fix their rows' answers
        log_prior = likelihood.known_answer_log_prior(log_prior, jnp.asarray(qv.known_of(rows)))
    return np.asarray(likelihood.padded_joint(vll, jnp.asarray(qv.mask[rows]), log_prior))


def dirichlet_multinomial(alpha: jax.Array, counts: jax.Array) -> jax.Array:
    """[B] log-likelihood of vote counts [B, K] under a Dirichlet-multinomial with concentrations ``alpha`` (the
    multinomial coefficient, constant in the network, left out)."""
    from jax.scipy.special import gammaln

    n = counts.sum(-1)
    a0 = alpha.sum(-1)
    return gammaln(a0) - gammaln(n + a0) + jnp.sum(gammaln(counts + alpha) - gammaln(alpha), axis=-1)
