"""The joint model on LabelMe (Rodrigues & Pereira 2018's split: 1,000 training images with 2,547 labels by 59
Mechanical Turk annotators, 500 validation images without labels, 8 scene classes, VGG16 features;
``shared/data/real/labelme``), beside the votes-only models and the network baselines on the same features:

- accuracy on the **validation** images (no votes: the network's answer) and of the **training**-set aggregation
  (the fit's answers for the voted images) against the gold labels;
- pipelines: majority vote and Dawid-Skene (votes only); Dawid-Skene then train (two-stage); Zoobot-style
  (Dirichlet-multinomial on vote counts); CrowdLayer; the joint model (em, cross-fitted; and marginal); and the
  network trained on the true labels (the ceiling); over 5 seeds (mean and range).

Not part of the test suite (about 4 minutes on 2 CPU cores).

    python benchmarks/joint_labelme.py [--seeds 5] [--images] [--write]

``--images`` also fits the CNN from the 128x128 JPEGs (resized to 64): the joint model on pixels (one seed by
default, ``--image-pipelines`` and ``--image-seeds`` for more; about 5 minutes a fit on 2 CPU cores).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
DATA = HERE.parents[1] / "shared" / "data" / "real" / "labelme"
PIPELINES = {
    "joint (em, cross-fitted)": {},
    "joint (marginal)": {"method": "marginal"},
    "joint, hds (em, cross-fitted)": {"model": "hds"},
    "Dawid-Skene then train": {"loss": "soft"},
    "Zoobot-style (Dirichlet)": {"loss": "dirichlet"},
    "CrowdLayer": {"loss": "crowdlayer"},
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--images", action="store_true")
    parser.add_argument(
        "--image-pipelines",
        default="joint (em, cross-fitted)",
        help="pipelines run on the images, separated by ; (slow on a CPU)",
    )
    parser.add_argument("--image-seeds", type=int, default=1)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()

    import polars as pl

    from annostat import DawidSkene, MajorityVote, Votes
    from annostat.models.joint import JointModel
    from annostat.vision.inputs import feature_inputs, image_inputs

    votes = Votes.from_frame(pd.read_csv(DATA / "votes.csv"))
    features = pl.concat(
        [pl.read_parquet(DATA / "features_train.parquet"), pl.read_parquet(DATA / "features_valid.parquet")]
    )
    inputs = {"features": feature_inputs(features)}
    if args.images:
        ids = [p.stem for p in sorted((DATA / "images").glob("*.jpg"))]
        inputs["images"] = image_inputs(DATA / "images", ids, 64, all_images=False)
    train = pd.read_csv(DATA / "truth_train.csv").set_index("subject")["truth"]
    valid = pd.read_csv(DATA / "truth_valid.csv").set_index("subject")["truth"]

    def scores(answers: pd.DataFrame) -> tuple[float, float]:
        a = answers.set_index("subject")["answer"]
        return float((a.reindex(train.index) == train).mean()), float((a.reindex(valid.index) == valid).mean())

    rows = []
    for name, model in (("majority vote", MajorityVote()), ("Dawid-Skene", DawidSkene())):
        t, _ = scores(model.fit(votes).answers)
        rows.append({"inputs": "-", "pipeline": name, "seed": 0, "train": t, "valid": np.nan, "seconds": 0.0})
    for kind, x in inputs.items():
        names = list(PIPELINES) if kind == "features" else args.image_pipelines.split(";")
        for name in names:
            options = PIPELINES[name]
            for seed in range(args.seeds if kind == "features" else args.image_seeds):
                start = time.perf_counter()
                fit = JointModel(seed=seed, **options).fit(votes, x)
                t, v = scores(fit.answers)
                rows.append(
                    {
                        "inputs": kind,
                        "pipeline": name,
                        "seed": seed,
                        "train": t,
                        "valid": v,
                        "seconds": time.perf_counter() - start,
                    }
                )
                print(rows[-1], flush=True)
        if kind == "features":
            rows.extend(ceiling(votes, x, train, valid, args.seeds, kind))
    table = pd.DataFrame(rows)
    summary = (
        table.groupby(["inputs", "pipeline"], sort=False)
        .agg(
            train=("train", "mean"),
            valid=("valid", "mean"),
            valid_min=("valid", "min"),
            valid_max=("valid", "max"),
            seconds=("seconds", "mean"),
        )
        .reset_index()
    )
    print(summary.round(3).to_string(index=False))
    if args.write:
        write(summary, args.seeds)


def ceiling(votes, inputs, train, valid, seeds: int, kind: str) -> list[dict]:
    """The same network trained on the true training labels (one-hot targets, the default number of epochs, no votes,
    no early stopping): what the inputs allow."""
    from annostat.infer.joint import JointSettings
    from annostat.infer.training import Trainer, layout_votes
    from annostat.models.joint import DEFAULTS
    from annostat.vision.networks import network_config

    answers = votes.answers[0].to_list()
    ids = [str(i) for i in inputs.ids]
    rows = np.array([ids.index(str(s)) for s in train.index])
    onehot = np.zeros((len(ids), len(answers)), np.float32)
    onehot[rows, [answers.index(a) for a in train.to_numpy()]] = 1.0
    questions = layout_votes(votes, np.full(votes.n_subjects, -1), len(ids))
    questions[0].mask[rows, 0] = True  # "has a label": the rows the loss uses
    defaults = DEFAULTS[inputs.kind]
    settings = JointSettings(**{k: defaults[k] for k in ("batch_size", "learning_rate", "weight_decay")})
    kind_name = "cnn" if inputs.kind == "images" else "mlp"
    out = []
    for seed in range(seeds):
        trainer = Trainer(inputs, questions, network_config(kind_name, inputs.shape, [len(answers)]), settings)
        params, _, _ = trainer.train(rows, defaults["epochs"], seed, targets=[onehot])
        predicted = np.asarray(answers, dtype=object)[trainer.predict(params)[0].argmax(axis=1)]
        a = pd.Series(predicted, index=ids)
        out.append(
            {
                "inputs": kind,
                "pipeline": "network on the true labels (ceiling)",
                "seed": seed,
                "train": np.nan,
                "valid": float((a.reindex(valid.index.astype(str)) == valid.to_numpy()).mean()),
                "seconds": 0.0,
            }
        )
    return out


def write(summary: pd.DataFrame, seeds: int) -> None:
    import flax
    import jax

    import annostat

    lines = [
        "",
        "## The joint model on LabelMe (`benchmarks/joint_labelme.py`)",
        "",
        (
            f"annostat {annostat.__version__}, jax {jax.__version__}, flax {flax.__version__}; {seeds} seeds (mean, "
            "and the range of the validation accuracy). Validation images have no votes: their answer is the "
            "network's. Train: the aggregation of the voted training images."
        ),
        "",
        "| inputs | pipeline | train | valid | valid range | seconds |",
        "|---|---|---|---|---|---|",
    ]
    for r in summary.itertuples():
        valid = "-" if np.isnan(r.valid) else f"{r.valid:.3f}"
        span = "-" if np.isnan(r.valid) else f"{r.valid_min:.3f}-{r.valid_max:.3f}"
        train = "-" if np.isnan(r.train) else f"{r.train:.3f}"
        lines.append(f"| {r.inputs} | {r.pipeline} | {train} | {valid} | {span} | {r.seconds:.1f} |")
    text = "\n".join(lines) + "\n"
    path = HERE / "RESULTS.md"
    path.write_text(path.read_text(encoding="utf-8") + text, encoding="utf-8")
    (HERE / "joint_labelme.json").write_text(json.dumps(summary.to_dict(orient="records"), indent=1) + "\n")


if __name__ == "__main__":
    main()
