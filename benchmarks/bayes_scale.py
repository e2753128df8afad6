"""SVI at scale: hierarchical Dawid-Skene and learning curves on 1M and 10M simulated Galaxy-Zoo-shaped votes.

Not part of the test suite. Votes from ``annostat.truth.simulate`` (volunteers walk the first two questions of the DECaLS
tree: static volunteers, equally hard images, heavy-tailed activity, 5% spammers): 10 classifications per subject
(~13.6 votes), subjects = votes / 13.6, volunteers = votes / 150. Each fit
runs in a fresh process on the 2-core CPU machine: SVI with minibatches of 20,000 subjects, ``--steps`` steps
(default 2000), 64 posterior draws kept; the time covers building the votes table and the fit (JAX compilation, answer
posteriors and model checks included); peak RSS is the process's, the simulated votes frame included.

    python benchmarks/bayes_scale.py --votes 1000000 --model hds
    python benchmarks/bayes_scale.py --votes 10000000 --model learning
    python benchmarks/bayes_scale.py --votes 13300000 --models hds,learning --write   # append to RESULTS.md
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
    population = VolunteerPopulation(
        n_volunteers=max(n_votes // 150, 50), learning_gap=0.0, difficulty_weight=0.0, spammer_fraction=0.05
    )
    sim = simulate(
        truth_table(int(n_votes / 13.6), questions=questions), population, questions=questions, retire_after=10, seed=0
    )
    start = time.perf_counter()
    votes = Votes.from_frame(sim.votes)
    fit = get_model(model, inference="svi", steps=steps, batch_size=20_000, draws=64).fit(votes)
    seconds = time.perf_counter() - start
    answers = fit.answers.merge(sim.truth, on=["subject", "question"], suffixes=("", "_true"))
    accuracy = float((answers["answer"] == answers["answer_true"]).mean())
    vols = fit.volunteers.merge(sim.volunteers, on=["volunteer", "question"], suffixes=("", "_true"))
    mae = float((vols["accuracy"] - vols["accuracy_true"]).abs().mean())
    print(
        json.dumps(
            {
                "model": model,
                "votes": votes.n_votes,
                "subjects": votes.n_subjects,
                "volunteers": votes.n_volunteers,
                "steps": steps,
                "seconds": seconds,
                "answer_accuracy": accuracy,
                "volunteer_mae": mae,
                "converged": fit.converged,
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--votes", type=int, default=1_000_000)
    parser.add_argument("--model", default=None, help="one model (as --models MODEL)")
    parser.add_argument("--models", default="hds")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--worker", action="store_true")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    models = (args.model or args.models).split(",")
    if args.worker:
        worker(models[0], args.votes, args.steps)
        return
    rows = []
    for model in models:
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--worker",
                "--votes",
                str(args.votes),
                "--model",
                model,
                "--steps",
                str(args.steps),
            ],
            check=False,
            capture_output=True,
            text=True,
        )
        if out.returncode:
            raise SystemExit(out.stderr[-3000:])
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(rows[-1], flush=True)
    titles = {"hds": "hierarchical Dawid-Skene (`hds`)", "learning": "learning curves (`learning`)"}
    from environment import markdown_table  # beside this script

    columns = [
        ("model", "l"),
        *(
            (name, "r")
            for name in (
                "votes",
                "subjects",
                "volunteers",
                "seconds",
                "peak RSS",
                "answer accuracy",
                "volunteer accuracy MAE",
            )
        ),
        ("converged", "l"),
    ]
    text = markdown_table(
        columns,
        [
            [
                titles.get(r["model"], r["model"]),
                f"{r['votes']:,}",
                f"{r['subjects']:,}",
                f"{r['volunteers']:,}",
                f"{r['seconds']:.1f}",
                f"{r['peak_rss_mb'] / 1024:.1f} GB",
                f"{r['answer_accuracy']:.4f}",
                f"{r['volunteer_mae']:.3f}",
                "yes" if r["converged"] else "no",
            ]
            for r in rows
        ],
    )
    print(text)
    if args.write:
        from environment import record  # beside this script

        record(
            "Bayesian models at scale (`benchmarks/bayes_scale.py`)",
            f"SVI (mean-field normal guide, Adam, {args.steps} steps, minibatches of 20,000 subjects, 64 posterior "
            "draws kept) on votes from the current simulator (`annostat.truth.simulate`: two DECaLS questions, 10 "
            "classifications a subject, static volunteers with heavy-tailed activity, 5% spammers), each fit in a "
            "fresh process. Seconds: the votes table, both questions' fits (JAX compilation included), answer "
            "posteriors and model checks; peak RSS is the process's, the simulated votes frame included.",
            text,
        )


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    main()
