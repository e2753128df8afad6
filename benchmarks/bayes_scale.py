"""SVI at scale: hierarchical Dawid-Skene and learning curves on 1M and 10M simulated Galaxy-Zoo-shaped votes.

Not part of the test suite. Votes from ``annostat.truth.simulate`` (volunteers walk the first two questions of the DECaLS
tree: static volunteers, equally hard images, heavy-tailed activity, 5% spammers): 10 classifications per subject
(~13.6 votes), subjects = votes / 13.6, volunteers = votes / 150. Each fit
runs in a fresh process on the 2-core CPU machine: SVI with minibatches of 20,000 subjects, ``--steps`` steps
(default 2000), 64 posterior draws kept; the time covers building the votes table and the fit (JAX compilation, answer
posteriors and model checks included); peak RSS is the process's, the simulated votes frame included.

    python benchmarks/bayes_scale.py --votes 1000000 --model hds
    python benchmarks/bayes_scale.py --votes 10000000 --model learning
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np


def worker(model: str, n_votes: int, steps: int) -> None:
    from annostat import Votes
    from annostat.models import get_model
    from annostat.truth.simulate import VolunteerPopulation, simulate, truth_table

    questions = ("smooth-or-featured", "disk-edge-on")
    population = VolunteerPopulation(n_volunteers=max(n_votes // 150, 50), learning_gap=0.0, difficulty_weight=0.0,
                                     spammer_fraction=0.05)
    sim = simulate(truth_table(int(n_votes / 13.6), questions=questions), population, questions=questions,
                   retire_after=10, seed=0)
    start = time.perf_counter()
    votes = Votes.from_frame(sim.votes)
    fit = get_model(model, inference="svi", steps=steps, batch_size=20_000, draws=64).fit(votes)
    seconds = time.perf_counter() - start
    answers = fit.answers.merge(sim.truth, on=["subject", "question"], suffixes=("", "_true"))
    accuracy = float((answers["answer"] == answers["answer_true"]).mean())
    vols = fit.volunteers.merge(sim.volunteers, on=["volunteer", "question"], suffixes=("", "_true"))
    mae = float((vols["accuracy"] - vols["accuracy_true"]).abs().mean())
    print(json.dumps({"model": model, "votes": votes.n_votes, "subjects": votes.n_subjects,
                      "volunteers": votes.n_volunteers, "steps": steps, "seconds": seconds,
                      "answer_accuracy": accuracy, "volunteer_mae": mae, "converged": fit.converged,
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--votes", type=int, default=1_000_000)
    parser.add_argument("--model", default="hds")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--worker", action="store_true")
    args = parser.parse_args()
    if args.worker:
        worker(args.model, args.votes, args.steps)
        return
    out = subprocess.run([sys.executable, __file__, "--worker", "--votes", str(args.votes), "--model", args.model,
                          "--steps", str(args.steps)], capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(out.stderr[-3000:])
    print(out.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    main()
