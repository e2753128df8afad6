"""The rest of Paun et al.'s family (mn, mace, item, lre) beside majority vote, Dawid-Skene and hierarchical
Dawid-Skene on the real crowdsourcing data with gold truth (dog: 807 images, 109 workers, 4 classes; duck: 108
images, 39 workers, 2 classes; ``shared/data/real``). Answer accuracy against the gold labels and seconds per fit.

Not part of the test suite.

    python benchmarks/family_real.py [--write]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
REAL = HERE.parents[1] / "shared" / "data" / "real"
MODELS = {
    "mv": {},
    "ds": {},
    "hds": {"inference": "svi"},
    "mn": {"inference": "svi"},
    "mace": {"inference": "svi"},
    "item": {"inference": "svi"},
    "lre": {"inference": "svi"},
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()

    import annostat
    from annostat import Votes
    from annostat.evaluation.report import markdown_table
    from annostat.models import get_model

    rows = []
    for data in ("dog", "duck"):
        votes = Votes.read(REAL / data / "answer.csv", subject="question", volunteer="worker")
        truth = pd.read_csv(REAL / data / "truth.csv").rename(columns={"question": "subject", "truth": "true"})
        for name, options in MODELS.items():
            start = time.perf_counter()
            fit = get_model(name, **options).fit(votes)
            seconds = time.perf_counter() - start
            answers = fit.answers.merge(truth, on="subject")
            rows.append(
                {
                    "data": data,
                    "model": name,
                    "accuracy": float((answers["answer"] == answers["true"]).mean()),
                    "seconds": seconds,
                }
            )
            print(rows[-1], flush=True)
    table = pd.DataFrame(rows).pivot(index="model", columns="data", values="accuracy").reindex(list(MODELS))
    import jax
    import numpyro

    text = "\n".join(
        [
            "",
            "## Paun et al.'s family on real data (`benchmarks/family_real.py`)",
            "",
            (
                f"Answer accuracy against the gold labels (annostat {annostat.__version__}, jax {jax.__version__},"
                f" numpyro {numpyro.__version__}; Bayesian models by SVI, 2000 steps, seed 0):"
            ),
            "",
            markdown_table(table.reset_index(), digits=4),
            "",
        ]
    )
    print(text)
    if args.write:
        with open(HERE / "RESULTS.md", "a", encoding="utf-8") as f:
            f.write(text)


if __name__ == "__main__":
    main()
