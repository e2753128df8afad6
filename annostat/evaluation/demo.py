"""The demo: the whole loop on a small default, through the same path a user takes.

1. render a few hundred stand-in galaxies into a truth set (:func:`annostat.truth.standin.standin_truth_set`);
2. simulated volunteers walk the Galaxy Zoo DECaLS tree on them (:func:`annostat.truth.simulate.simulate`), written as a
   Panoptes classification export with its workflow definition into ``truth/votes/``;
3. the export is read back, majority vote and Dawid-Skene (and crowd-kit's Dawid-Skene when installed) are fitted,
   and each fit folder is written;
4. the benchmark harness (:func:`annostat.evaluation.harness.run_benchmark`) scores every pipeline against the truth, with the
   label-efficiency curve, and writes the report.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from annostat.evaluation.harness import BenchmarkResult, run_benchmark
from annostat.evaluation.pipelines import PIPELINES
from annostat.truth.simulate import VolunteerPopulation, simulate
from annostat.truth.standin import standin_truth_set

DEMO_EFFICIENCY = (1, 2, 3, 5, 10)


def demo_pipelines() -> list[str]:
    """mv and ds, plus crowd-kit's Dawid-Skene when crowd-kit is installed."""
    return ["mv", "ds"] + (["ck-ds"] if PIPELINES["ck-ds"].available else [])


def run_demo(
    out: str | Path = "annostat-demo",
    n_galaxies: int = 300,
    n_volunteers: int = 150,
    retire_after: int = 10,
    seed: int = 0,
    pipelines: Sequence[str] | None = None,
    efficiency: Sequence[int] = DEMO_EFFICIENCY,
    log: Callable[[str], None] | None = None,
) -> BenchmarkResult:
    """Run the demo into ``out``: ``truth/`` (the truth set, its votes in ``truth/votes/``), ``report/`` (the
    benchmark report) and ``report/fits/<pipeline>/`` (each annostat fit folder)."""
    say = log or (lambda message: None)
    out = Path(out)
    say(f"rendering {n_galaxies} stand-in galaxies")
    truth_set = standin_truth_set(out / "truth", n_galaxies, size=64, seed=seed)
    say(f"{n_volunteers} simulated volunteers classify them ({retire_after} classifications each)")
    sim = simulate(truth_set, VolunteerPopulation(n_volunteers=n_volunteers), retire_after=retire_after, seed=seed)
    sim.write(truth_set.votes_dir)
    return run_benchmark(
        truth_set.root,
        list(pipelines or demo_pipelines()),
        out / "report",
        efficiency=efficiency,
        save_fits=True,
        log=say,
    )
