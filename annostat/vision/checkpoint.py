"""A fitted network on disk (``network/`` of a joint fit): an orbax checkpoint of the parameters and its
configuration, and answers for new subjects from it (``annostat predict``).

``network/config.json`` holds what :func:`annostat.vision.networks.build_network` needs, how the inputs were
prepared (image size, features' standardisation) and how many networks there are (a cross-fitted fit keeps one per
fold and answers new subjects with their mean probability); ``network/checkpoint/`` is an orbax checkpoint of each
network's state as a plain dictionary (``nnx.to_pure_dict``), restored into a freshly built network
(``nnx.replace_by_pure_dict``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jax
import numpy as np
import polars as pl
from flax import nnx

from annostat.errors import InputError, first_line
from annostat.files import atomic_write, read_json
from annostat.vision.networks import answer_log_probs, build_network

if TYPE_CHECKING:
    from annostat.vision.inputs import Inputs

CHECKPOINT = "checkpoint"


def save_networks(folder: Path, config: dict[str, Any], networks: list[Any]) -> Path:
    """Write ``networks`` (nnx states of the network of ``config``) and the configuration into ``folder``."""
    import orbax.checkpoint as ocp

    folder = Path(folder).absolute()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / CHECKPOINT
    if target.exists():
        shutil.rmtree(target)
    tree = {f"net_{i}": nnx.to_pure_dict(state) for i, state in enumerate(networks)}
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(target, tree)
    checkpointer.wait_until_finished()
    text = json.dumps(config | {"networks": len(networks), "format": "orbax-pure-dict/1"}, indent=2)
    atomic_write(folder / "config.json", lambda tmp: Path(tmp).write_text(text + "\n", encoding="utf-8"))
    return folder


def load_networks(folder: Path) -> tuple[dict[str, Any], list[Any]]:
    """(configuration, network states) from a ``network/`` folder; errors name the file."""
    import orbax.checkpoint as ocp

    folder = Path(folder).absolute()
    path = folder / "config.json"
    config = read_json(path, "a joint model's network configuration", "fit one with --images or --features")
    try:
        n = int(config["networks"])
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{path}: not a network configuration written by annostat ({exc})") from None
    try:
        restored = ocp.StandardCheckpointer().restore(folder / CHECKPOINT)
    except Exception as exc:  # noqa: BLE001 - orbax raises several kinds for a damaged checkpoint
        raise InputError(f"{folder / CHECKPOINT}: not a readable checkpoint ({first_line(exc)})") from None
    states = []
    for i in range(n):
        _, state = nnx.split(build_network(config, 0))
        nnx.replace_by_pure_dict(state, restored[f"net_{i}"])
        states.append(state)
    return config, states


def network_log_probs(
    config: dict[str, Any], states: list[Any], data: np.ndarray, batch: int = 512
) -> list[np.ndarray]:
    """Each question's log p(answer | input) [N, K] from the mean probability of the networks ``states``."""
    graphdef, _ = nnx.split(build_network(config, 0))
    heads = config["heads"]

    @jax.jit
    def forward(state, x):
        return answer_log_probs(nnx.merge(graphdef, state)(x), heads, config.get("output", "softmax"))

    N = len(data)
    sums = [np.zeros((N, k), np.float64) for k in heads]
    for state in states:
        for start in range(0, N, batch):
            part = np.asarray(data[start : start + batch], np.float32)
            n = len(part)
            if n < batch and N > batch:
                part = np.concatenate([part, np.zeros((batch - n, *part.shape[1:]), np.float32)])
            for q, lp in enumerate(forward(state, part)):
                sums[q][start : start + n] += np.exp(np.asarray(lp, np.float64)[:n])
    out = [np.log(np.maximum(s / len(states), 1e-30)) for s in sums]
    return [_tempered(lp, t) for lp, t in zip(out, config.get("tempering") or [None] * len(out))]


def _tempered(log_probs: np.ndarray, tempering: dict[str, Any] | None) -> np.ndarray:
    """The network's prediction tempered as the fit tempered it (``annostat.infer.joint.temper``)."""
    if not tempering or tempering.get("log_base") is None:
        return log_probs
    from annostat.models import likelihood

    base = np.asarray(tempering["log_base"], np.float32)
    ratio = (log_probs - np.asarray(tempering["log_mean"], np.float64)).astype(np.float32)
    return np.asarray(likelihood.evidence_log_prior(base, ratio, np.float32(tempering["weight"])), np.float64)


def predict_table(
    config: dict[str, Any], states: list[Any], inputs: Inputs, questions: list[tuple[Any, list[Any]]]
) -> pl.DataFrame:
    """Posteriors-format table (subject, question, answer, p) of the network's answers for ``inputs``' rows;
    ``questions``: (question label, answer labels) in head order."""
    lps = network_log_probs(config, states, inputs.data)
    parts = []
    N = len(inputs)
    for (question, answers), lp in zip(questions, lps):
        K = len(answers)
        parts.append(
            pl.DataFrame(
                {
                    "subject": np.repeat(np.asarray(inputs.ids, dtype=object), K).tolist(),
                    "question": [question] * (N * K),
                    "answer": answers * N,
                    "p": np.exp(lp).reshape(-1).astype(np.float32),
                },
                strict=False,
            )
        )
    return pl.concat(parts) if parts else pl.DataFrame()
