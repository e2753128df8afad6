"""Run by ``tests/test_sharding.py`` in a fresh process with ``JAX_NUM_CPU_DEVICES=4``: the same fits on one, two and
four devices, compared; prints one JSON line of the largest differences. Not a test module (JAX's devices are fixed
when it starts, so this needs its own process)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd


def differences(one, many) -> dict:
    """Share of subjects with the same answer, largest confusion and posterior differences of two fits."""
    a, b = one.posteriors, many.posteriors
    keys = ["question", "subject", "answer"]
    merged = a.merge(b, on=keys, suffixes=("_one", "_many"))
    assert len(merged) == len(a) == len(b)
    same = one.answers.merge(many.answers, on=["question", "subject"]).pipe(
        lambda m: float((m["answer_x"] == m["answer_y"]).mean())
    )
    confusion = max(float(np.abs(x.confusion - y.confusion).max()) for x, y in zip(one.questions, many.questions))
    return {
        "same_answers": same,
        "confusion": confusion,
        "posterior": float((merged["p_one"] - merged["p_many"]).abs().max()),
        "iterations": [len(x.log_likelihood) for x in one.questions] == [len(y.log_likelihood) for y in many.questions],
        "iterations_apart": max(
            abs(len(x.log_likelihood) - len(y.log_likelihood)) for x, y in zip(one.questions, many.questions)
        ),
    }


def main(folder: str) -> None:
    import jax

    from annostat import DawidSkene, Votes
    from annostat.infer import em, sharding
    from annostat.truth.simulate import simulate_questions

    out: dict = {"devices": jax.device_count()}
    sim = simulate_questions(700, 60, ("smooth-or-featured", "disk-edge-on"), retire_after=6, seed=4)
    votes = Votes.from_frame(sim.votes)
    # a fixed number of iterations: the same EM, to float32 rounding; with the tolerance stop, the objectives (sums
    # taken in another order over the devices, ~5e-7 of themselves apart, where the stop's tolerance is 1e-6) may
    # stop the fits an iteration apart
    one = DawidSkene(devices=1, tol=0.0, max_iter=30).fit(votes)
    one_stopped = DawidSkene(devices=1).fit(votes)
    for d in (2, 4):
        out[f"ds_{d}"] = differences(one, DawidSkene(devices=d, tol=0.0, max_iter=30).fit(votes))
        out[f"ds_stopped_{d}"] = differences(one_stopped, DawidSkene(devices=d).fit(votes))
    blocked_from, em.BLOCKED_FROM = em.BLOCKED_FROM, 0  # votes in blocks (large fits' layout), on 1 and 4 devices
    try:
        fixed = {"tol": 0.0, "max_iter": 30}
        out["ds_blocked_4"] = differences(
            DawidSkene(devices=1, **fixed).fit(votes), DawidSkene(devices=4, **fixed).fit(votes)
        )
        lengths = em.run_lengths(*votes.arrays(0), votes.n_subjects, votes.n_volunteers, votes.n_answers[0])
        out["ds_blocked_4"]["blocks"] = em.block_sizes([lengths])
    finally:
        em.BLOCKED_FROM = blocked_from
    crowdkit = {"crowdkit_stopping": True, "pseudo_diagonal": 0.0, "pseudo_off_diagonal": 0.0, "atol_per_vote": 1e-5}
    out["crowdkit_4"] = differences(
        DawidSkene(devices=1, **crowdkit).fit(votes), DawidSkene(devices=4, **crowdkit).fit(votes)
    )

    # a classifier's evidence: its learned weight and the confusions as on one device
    rng = np.random.default_rng(0)
    S, V, K, N = 900, 50, 3, 5000
    subject = np.sort(rng.integers(0, S, N)).astype(np.int32)
    volunteer = rng.integers(0, V, N).astype(np.int32)
    truth = rng.integers(0, K, S)
    answer = np.where(rng.random(N) < 0.7, truth[subject], rng.integers(0, K, N)).astype(np.int32)
    evidence = (2.0 * np.eye(K)[truth] + rng.normal(0, 1, (S, K))).astype(np.float32)
    runs = {
        d: em.dawid_skene_em(
            subject,
            volunteer,
            answer,
            S,
            V,
            K,
            np.full((S, K), 1 / K, np.float32),
            pseudo_counts=np.eye(K, dtype=np.float32) * 1.75 + 0.25,
            log_evidence=evidence,
            prior_weight=20.0,
            mesh=sharding.device_mesh(d),
        )
        for d in (1, 4)
    }
    out["evidence_4"] = {
        "weight_one": runs[1].prior_weight,
        "weight_many": runs[4].prior_weight,
        "confusion": float(np.abs(runs[1].confusion - runs[4].confusion).max()),
        "posterior": float(np.abs(runs[1].posteriors - runs[4].posteriors).max()),
    }
    # fewer subjects than devices: blocks of padding only
    tiny = Votes.from_frame(
        pd.DataFrame(
            {"subject": ["a", "a", "b", "c", "c"], "volunteer": [1, 2, 1, 2, 3], "answer": ["x", "x", "y", "x", "y"]}
        ),
        question=None,
        time=None,
    )
    out["tiny_4"] = differences(DawidSkene(devices=1).fit(tiny), DawidSkene(devices=4).fit(tiny))

    # SVI over devices: full batches give the one-device fit (the same gradients, averaged); minibatches drawn
    # from each device's own subjects give the same answers and volunteers to SVI's noise
    from annostat.models import HierarchicalDawidSkene

    def svi(devices, batch):
        return HierarchicalDawidSkene(
            inference="svi", steps=300, seed=0, draws=32, batch_size=batch, devices=devices
        ).fit(votes)

    def volunteers(one, many):
        a, b = (f.volunteers.set_index(["volunteer", "question"])["accuracy"] for f in (one, many))
        return float((a - b.loc[a.index]).abs().max())

    full_one, full_four = svi(1, None), svi(4, None)
    out["svi_full_4"] = {
        **differences(full_one, full_four),
        "accuracy": volunteers(full_one, full_four),
        "devices": full_four.questions[0].inference["diagnostics"].get("devices"),
    }
    mini_one, mini_four = svi(1, 240), svi(4, 240)
    out["svi_minibatch_4"] = {**differences(mini_one, mini_four), "accuracy": volunteers(mini_one, mini_four)}

    # the joint model's training over devices: each minibatch split over them, the gradients summed by XLA
    from annostat.models.joint import JointModel
    from annostat.vision.inputs import Inputs

    truth = sim.truth[sim.truth["question"] == "smooth-or-featured"].set_index("subject")["answer"]
    answers = sorted(set(truth))
    centres = np.random.default_rng(1).normal(0, 1.5, (len(answers), 8))
    features = (
        centres[[answers.index(a) for a in truth]] + np.random.default_rng(2).normal(0, 1.0, (len(truth), 8))
    ).astype(np.float32)
    inputs = Inputs("features", truth.index.tolist(), features)
    joint = {d: JointModel(rounds=2, epochs_per_round=5, devices=d).fit(votes, inputs) for d in (1, 4)}
    out["joint_4"] = differences(joint[1], joint[4])

    # the command line: --devices 4 writes the fit --devices 1 writes
    from typer.testing import CliRunner

    from annostat.cli import app

    path = Path(folder) / "votes.csv"
    sim.votes.to_csv(path, index=False)
    posteriors = {}
    for d in (1, 4):
        command = ["fit", str(path), "--devices", str(d), "--tol", "0", "--max-iter", "30", "--out", f"{folder}/fit{d}"]
        result = CliRunner().invoke(app, [*command, "-q"])
        assert result.exit_code == 0, result.output
        posteriors[d] = pd.read_parquet(f"{folder}/fit{d}/posteriors.parquet")
    out["cli_posterior"] = float((posteriors[1]["p"] - posteriors[4]["p"]).abs().max())
    result = CliRunner().invoke(app, ["fit", str(path), "--devices", "5", "--out", f"{folder}/fit5"])
    out["cli_too_many"] = [result.exit_code, result.output.strip()]
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1])
