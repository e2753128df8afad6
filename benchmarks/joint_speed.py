"""Training speed of the joint model's CNN, and the packed image store at 10^5 images.

1. Images a second through the training step at 64x64x3 for the default CNN (width 16, 3 stages; bfloat16 on a GPU),
   batches of 64 (256 on a GPU), compilation excluded: the CNN on plain labels (soft cross-entropy on one-hot
   targets) against the joint likelihood (10 questions of the DECaLS tree, 3 votes a subject scored through the
   volunteers' confusions). The ratio is measured in the same run.
2. The packed store: ``--store N`` PNG files of 64x64x3 decoded into the memory-mapped store; seconds, the process's
   peak resident memory, and after decoding its own (anonymous) memory beside the store's file-backed pages (images
   are written row by row into the mapped file: the kernel can write back and drop those pages at any time).

Not part of the test suite.

    python benchmarks/joint_speed.py [--steps 30] [--store 100000] [--write]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def training_rate(loss: str, steps: int, batch: int, size: int = 64) -> float:
    import jax

    from annostat.data.trees import get_tree
    from annostat.infer.joint import JointSettings
    from annostat.infer.training import QuestionVotes, Trainer
    from annostat.models.confusions import volunteer_part
    from annostat.vision.inputs import Inputs
    from annostat.vision.networks import network_config

    rng = np.random.default_rng(0)
    N = batch * 8
    inputs = Inputs("images", list(range(N)), rng.random((N, size, size, 3), dtype=np.float32).astype(np.float16))
    heads = [len(q.answers) for q in get_tree("gz-decals-dr5").questions.values()]
    V, M = 200, 3
    questions = []
    for q, K in enumerate(heads):
        cells = (rng.integers(0, V, (N, M)) * K + rng.integers(0, K, (N, M))).astype(np.int32)
        questions.append(
            QuestionVotes(
                q, K, np.arange(V, dtype=np.int32), cells, np.ones((N, M), bool), np.zeros((N, K), np.float32)
            )
        )
    settings = JointSettings(loss="joint", batch_size=batch, epochs=1)
    vol = volunteer_part("ds")
    trainer = Trainer(inputs, questions, network_config("cnn", inputs.shape, heads), settings, vol)
    targets = [np.eye(K, dtype=np.float32)[rng.integers(0, K, N)] for K in heads] if loss == "plain" else None
    vol_params = None if loss == "plain" else [vol.init(np.full((V, K, K), 1.0 / K)) for K in heads]
    step, tx = trainer._step_fn(train_vol=loss != "plain", soft=loss == "plain")
    params = trainer.new_params(0)
    opt_state = tx.init(params if loss == "plain" else (params, vol_params))
    key = jax.random.key(0)
    rows = np.arange(batch)

    def run(n: int):
        nonlocal params, vol_params, opt_state
        for i in range(n):
            batch_rows = (rows + (i % 8) * batch) % N
            x, cells, masks, tgt, counts = trainer._data(batch_rows, targets)
            params, vol_params, opt_state, value = step(
                params, vol_params, opt_state, x, cells, masks, tgt, counts, key, float(N), 1e-3, 1e-2
            )
        jax.block_until_ready(value)

    run(2)  # compile
    start = time.perf_counter()
    run(steps)
    return steps * batch / (time.perf_counter() - start)


def store_run(n: int, size: int = 64) -> dict:
    from PIL import Image

    from annostat.vision.images import image_store

    folder = Path(tempfile.mkdtemp(prefix="annostat-store-"))
    rng = np.random.default_rng(0)
    base = (rng.random((size, size, 3)) * 255).astype(np.uint8)
    for i in range(n):
        Image.fromarray(np.roll(base, i % size, axis=0)).save(folder / f"{i}.png")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    store = image_store(folder, list(range(n)), size)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    status = _memory_status()
    start = time.perf_counter()
    total = 0.0
    for lo in range(0, n, 4096):  # one pass over the store, as an epoch reads it
        total += float(store.batch(np.arange(lo, min(lo + 4096, n))).sum())
    epoch = time.perf_counter() - start
    return {
        "images": n,
        "store_gb": store.images.nbytes / 1e9,
        "decode_seconds": seconds,
        "read_pass_seconds": epoch,
        "peak_rss_mb": peak,
        "rss_before_mb": before,
        **status,
    }


def _memory_status() -> dict:
    """The process's own (anonymous) memory and its file-backed pages (the mapped store, reclaimable), MB (Linux)."""
    try:
        lines = Path("/proc/self/status").read_text().splitlines()
    except OSError:
        return {}
    fields = dict(line.split(":", 1) for line in lines if ":" in line)
    return {
        key: int(fields[name].split()[0]) / 1024
        for key, name in (("anon_mb", "RssAnon"), ("file_mb", "RssFile"))
        if name in fields
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--store", type=int, default=100_000)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()

    import flax
    import jax

    import annostat

    gpu = jax.default_backend() != "cpu"
    batch = 256 if gpu else 64
    plain = training_rate("plain", args.steps, batch)
    joint = training_rate("joint", args.steps, batch)
    print(
        f"{jax.default_backend()}: plain labels {plain:.0f} images/s, joint {joint:.0f} images/s ({joint / plain:.0%})",
        flush=True,
    )
    store = store_run(args.store) if args.store else None
    if store:
        print(store, flush=True)
    if args.write:
        device = f"{jax.devices()[0].device_kind}" if gpu else "2 CPU cores"
        lines = [
            "",
            "## Joint model: training speed and the packed store (`benchmarks/joint_speed.py`)",
            "",
            (
                f"annostat {annostat.__version__}, jax {jax.__version__}, flax {flax.__version__}; {device}; default "
                f"CNN (width 16, 3 stages, {'bfloat16' if gpu else 'float32'}), 64x64x3, batches of {batch}, "
                "compilation excluded."
            ),
            "",
            "| training step | images/s | vs plain labels |",
            "|---|---|---|",
            f"| CNN on plain labels | {plain:.0f} | 100% |",
            f"| joint likelihood (10 questions, 3 votes a subject) | {joint:.0f} | {joint / plain:.0%} |",
        ]
        if store:
            lines += [
                "",
                (
                    f"Packed store: {store['images']:,} PNGs of 64x64x3 decoded in {store['decode_seconds']:.0f} s "
                    f"into a {store['store_gb']:.2f} GB memory-mapped file; peak resident memory "
                    f"{store['peak_rss_mb']:.0f} MB, which counts the mapped file's pages while they are written "
                    "(file-backed: the kernel writes them back and drops them); after decoding, "
                    f"{store.get('anon_mb', 0):.0f} MB of the process's own memory (the training benchmark's "
                    f"included) and {store.get('file_mb', 0):.0f} MB of the store's pages are resident; one pass over "
                    f"the store {store['read_pass_seconds']:.1f} s."
                ),
            ]
        path = HERE / "RESULTS.md"
        path.write_text(path.read_text(encoding="utf-8") + "\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
