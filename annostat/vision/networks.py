r"""The networks of the joint model (Flax NNX): a small ResNet on the pixels, or an MLP on precomputed features.

Both end in one softmax head per question of the tree: the outputs are the logits of every question's answers laid
side by side (``[B, sum_q K_q]``); :func:`question_log_probs` splits them into each question's log-probabilities
:math:`\log p(z_{sq} = k \mid x_s)`, the per-subject prior of the volunteer likelihood
(``annostat.models.likelihood``).

:class:`GalaxyCNN`: a 3x3 stem convolution of stride 2, then ``depth`` stages of ``blocks`` residual blocks (two 3x3
convolutions with group normalisation and ReLU, He et al. 2016), the width doubling and the resolution halving from
one stage to the next, global average pooling, dropout and the heads. Default: width 16, 3 stages of 1 block
(~75,000 parameters), which trains at a few hundred 64x64 images a second on two CPU cores. Computation in
bfloat16 on a GPU or TPU (parameters in float32), float32 on the CPU.

:class:`FeatureMLP`: standardised features -> one hidden layer (ReLU, dropout) -> heads.

Networks are deterministic for a seed (``nnx.Rngs(seed)``) and are rebuilt from their :func:`network_config` by
:func:`build_network` (``annostat predict``).

Reference: K. He, X. Zhang, S. Ren, J. Sun (2016), Deep residual learning for image recognition, CVPR.

Example:
    >>> import numpy as np
    >>> net = build_network({"kind": "cnn", "in_channels": 3, "heads": [2, 3], "width": 4, "depth": 2}, seed=0)
    >>> logits = net(np.zeros((5, 16, 16, 3), np.float32))
    >>> [lp.shape for lp in question_log_probs(logits, [2, 3])]
    [(5, 2), (5, 3)]
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx


def compute_dtype() -> Any:
    """bfloat16 on an accelerator, float32 on the CPU."""
    return jnp.bfloat16 if jax.default_backend() in ("gpu", "tpu", "cuda", "rocm") else jnp.float32


def _groups(width: int) -> int:
    return next(g for g in (8, 4, 2, 1) if width % g == 0)


class ResidualBlock(nnx.Module):
    """conv-norm-relu-conv-norm plus the input (a strided 1x1 convolution where the shape changes), then ReLU."""

    def __init__(self, in_width: int, width: int, stride: int, *, dtype: Any, rngs: nnx.Rngs) -> None:
        self.conv1 = nnx.Conv(in_width, width, (3, 3), strides=stride, use_bias=False, dtype=dtype, rngs=rngs)
        self.norm1 = nnx.GroupNorm(width, num_groups=_groups(width), dtype=dtype, rngs=rngs)
        self.conv2 = nnx.Conv(width, width, (3, 3), use_bias=False, dtype=dtype, rngs=rngs)
        self.norm2 = nnx.GroupNorm(
            width, num_groups=_groups(width), dtype=dtype, rngs=rngs, scale_init=nnx.initializers.zeros
        )  # each block starts as the identity
        self.skip = (
            nnx.Conv(in_width, width, (1, 1), strides=stride, use_bias=False, dtype=dtype, rngs=rngs)
            if stride != 1 or in_width != width
            else None
        )

    def __call__(self, x: jax.Array) -> jax.Array:
        y = nnx.relu(self.norm1(self.conv1(x)))
        y = self.norm2(self.conv2(y))
        return nnx.relu(y + (x if self.skip is None else self.skip(x)))


class GalaxyCNN(nnx.Module):
    """A small ResNet with one softmax head per question (see the module docstring)."""

    def __init__(
        self,
        in_channels: int,
        heads: Sequence[int],
        width: int = 16,
        depth: int = 3,
        blocks: int = 1,
        dropout: float = 0.2,
        *,
        rngs: nnx.Rngs,
        dtype: Any = None,
    ) -> None:
        dtype = dtype or compute_dtype()
        self.stem = nnx.Conv(in_channels, width, (3, 3), strides=2, use_bias=False, dtype=dtype, rngs=rngs)
        self.stem_norm = nnx.GroupNorm(width, num_groups=_groups(width), dtype=dtype, rngs=rngs)
        stages, w_in = [], width
        for stage in range(depth):
            w = width * 2**stage
            for b in range(blocks):
                stages.append(ResidualBlock(w_in, w, 2 if (b == 0 and stage > 0) else 1, dtype=dtype, rngs=rngs))
                w_in = w
        self.blocks = nnx.List(stages)
        self.dropout = nnx.Dropout(dropout)  # its randomness is passed per call
        self.head = nnx.Linear(w_in, int(sum(heads)), dtype=jnp.float32, rngs=rngs)

    def __call__(self, x: jax.Array, *, train: bool = False, rngs: nnx.Rngs | None = None) -> jax.Array:
        x = nnx.relu(self.stem_norm(self.stem(jnp.asarray(x, self.stem.dtype))))
        for block in self.blocks:
            x = block(x)
        x = jnp.mean(x.astype(jnp.float32), axis=(1, 2))
        return self.head(self.dropout(x, deterministic=not train, rngs=rngs))


class FeatureMLP(nnx.Module):
    """Features -> Linear(hidden) -> ReLU -> dropout -> one softmax head per question."""

    def __init__(
        self, in_features: int, heads: Sequence[int], hidden: int = 128, dropout: float = 0.5, *, rngs: nnx.Rngs
    ) -> None:
        self.hidden = nnx.Linear(in_features, hidden, rngs=rngs)
        self.dropout = nnx.Dropout(dropout)  # its randomness is passed per call
        self.head = nnx.Linear(hidden, int(sum(heads)), rngs=rngs)

    def __call__(self, x: jax.Array, *, train: bool = False, rngs: nnx.Rngs | None = None) -> jax.Array:
        h = nnx.relu(self.hidden(jnp.asarray(x, jnp.float32)))
        return self.head(self.dropout(h, deterministic=not train, rngs=rngs))


def network_config(kind: str, in_shape: Sequence[int], heads: Sequence[int], **settings: Any) -> dict[str, Any]:
    """What :func:`build_network` needs (saved as ``network/config.json``)."""
    if kind == "cnn":
        return {
            "kind": "cnn",
            "in_channels": int(in_shape[-1]),
            "image_size": int(in_shape[0]),
            "heads": [int(k) for k in heads],
            "width": int(settings.get("width", 16)),
            "depth": int(settings.get("depth", 3)),
            "blocks": int(settings.get("blocks", 1)),
            "dropout": float(settings.get("dropout", 0.2)),
        }
    if kind == "mlp":
        return {
            "kind": "mlp",
            "in_features": int(in_shape[-1]),
            "heads": [int(k) for k in heads],
            "hidden": int(settings.get("hidden", 128)),
            "dropout": float(settings.get("dropout", 0.5)),
        }
    raise ValueError(f"unknown network kind {kind!r}; the kinds are cnn and mlp")


def build_network(config: dict[str, Any], seed: int = 0) -> nnx.Module:
    """The network of ``config`` (:func:`network_config`), initialised from ``seed``."""
    rngs = nnx.Rngs(seed)
    if config["kind"] == "cnn":
        return GalaxyCNN(
            config["in_channels"],
            config["heads"],
            width=config.get("width", 16),
            depth=config.get("depth", 3),
            blocks=config.get("blocks", 1),
            dropout=config.get("dropout", 0.2),
            rngs=rngs,
        )
    if config["kind"] == "mlp":
        return FeatureMLP(
            config["in_features"],
            config["heads"],
            hidden=config.get("hidden", 128),
            dropout=config.get("dropout", 0.5),
            rngs=rngs,
        )
    raise ValueError(f"unknown network kind {config['kind']!r}; the kinds are cnn and mlp")


def question_log_probs(logits: jax.Array, heads: Sequence[int]) -> list:
    """Each question's log-probabilities [B, K_q] from the side-by-side logits [B, sum K_q]."""
    edges = np.cumsum([0, *heads])
    return [jax.nn.log_softmax(logits[:, a:b].astype(jnp.float32), axis=-1) for a, b in itertools.pairwise(edges)]


def concentrations(logits: jax.Array, heads: Sequence[int]) -> list:
    """Zoobot's head: Dirichlet concentrations 1 + 99 sigmoid(logit) of each question's answers [B, K_q]."""
    edges = np.cumsum([0, *heads])
    return [1.0 + 99.0 * jax.nn.sigmoid(logits[:, a:b].astype(jnp.float32)) for a, b in itertools.pairwise(edges)]


def answer_log_probs(logits: jax.Array, heads: Sequence[int], output: str = "softmax") -> list:
    """Each question's log p(answer | input) [B, K_q]: the softmax heads, or (``output="dirichlet"``) the log of
    the mean of Zoobot-style concentrations."""
    if output == "dirichlet":
        return [jnp.log(a) - jnp.log(a.sum(-1, keepdims=True)) for a in concentrations(logits, heads)]
    return question_log_probs(logits, heads)


def count_parameters(network: nnx.Module) -> int:
    return int(sum(np.prod(x.shape) for x in jax.tree.leaves(nnx.state(network, nnx.Param))))
