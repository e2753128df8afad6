"""The demo: the whole product on a small default, through the same path a user takes.

1. render a few hundred stand-in galaxies into a truth set (:func:`annostat.truth.standin.standin_truth_set`);
2. simulated volunteers walk the Galaxy Zoo DECaLS tree on most of them with few classifications (3 a galaxy, as
   Galaxy Zoo JWST gets), written as a Panoptes classification export with its workflow into ``truth/votes/``; the
   rest stay unclassified (:func:`annostat.truth.simulate.simulate`);
3. the benchmark harness (:func:`annostat.evaluation.harness.run_benchmark`) reads the export back and fits majority
   vote, Dawid-Skene, hierarchical Dawid-Skene, the joint model (Dawid-Skene with a small CNN on the pixels,
   which answers the unclassified galaxies too) and crowd-kit's Dawid-Skene when installed; it scores each against
   the truth, with the label-efficiency curve, writes the report and each fit folder;
4. the advice and the volunteer cards (:func:`annostat.guidance.advise.write_advice`) from the hierarchical fit;
5. one round of the live loop: :func:`annostat.live.select.select` picks the galaxies one more classification tells
   most about, the same simulated volunteers classify them once more (on demand), and
   :func:`annostat.live.update.update` updates the Dawid-Skene fit; its accuracy is scored before and after.

:class:`DemoResult` holds the figures the terminal table shows (:func:`DemoResult.summary`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from annostat.evaluation.harness import (
    BenchmarkResult,
    answer_scores,
    run_benchmark,
    true_answers,
    unclassified_truth,
)
from annostat.evaluation.pipelines import PIPELINES
from annostat.truth.simulate import VolunteerPopulation, simulate

#: the joint model's settings in the demo: a small network, few EM rounds (about 40 s on 2 cores for 300 galaxies)
DEMO_JOINT = {"width": 16, "depth": 2, "folds": 2, "rounds": 2, "first_epochs": 15, "epochs_per_round": 5}
#: ``--quick``: fewer galaxies, two questions, a smaller network
QUICK: dict[str, Any] = {
    "n_galaxies": 100,
    "n_volunteers": 50,
    "questions": ("smooth-or-featured", "disk-edge-on"),
    "image_size": 16,
    "joint": {"width": 4, "depth": 1, "folds": 2, "rounds": 1, "first_epochs": 5, "epochs_per_round": 2},
    "min_steps": 60,
}
STAGES = ("render", "simulate", "fit and benchmark", "advice and cards", "live loop round")
Progress = Callable[[int, int, str], None]  # (stages done, stages in all, the stage now running)


@dataclass
class DemoResult:
    out: Path
    benchmark: BenchmarkResult
    unclassified: pd.DataFrame  # question, subjects, accuracy, ece, ...: the joint model on galaxies without votes
    joint_voted: pd.DataFrame  # the same, on the galaxies with votes
    advice: dict[str, Any]  # write_advice's summary
    loop: dict[str, Any]  # the live loop round's figures
    classifications_per_galaxy: float  # on the classified galaxies
    joint: str | None = None  # the joint model's pipeline, when it was fitted
    seconds: dict[str, float] = field(default_factory=dict)  # per stage

    def summary(self) -> pd.DataFrame:
        """One row per model (the joint model twice: galaxies with votes, galaxies without): galaxies, mean accuracy
        and mean ECE over questions, classifications per galaxy used."""
        scores = self.benchmark.scores
        per_galaxy = self.classifications_per_galaxy
        rows = []
        for name in self.benchmark.setup["pipelines"]:
            if name == self.joint:
                for label, part, votes in (
                    (f"{name} (classified)", self.joint_voted, per_galaxy),
                    (f"{name} (unclassified)", self.unclassified, 0.0),
                ):
                    if len(part):
                        rows.append(_row(label, part, votes))
                continue
            rows.append(_row(name, scores[scores["pipeline"] == name], per_galaxy))
        return pd.DataFrame(rows)


def _row(label: str, part: pd.DataFrame, votes: float) -> dict[str, Any]:
    return {
        "model": label,
        "galaxies": int(part["subjects"].max()),
        "accuracy": float(part["accuracy"].mean()),
        "ece": float(part["ece"].mean()),
        "classifications_per_galaxy": votes,
    }


def demo_pipelines(joint: bool = True) -> list[str]:
    """mv, ds, crowd-kit's Dawid-Skene (when crowd-kit is installed), hds and the joint model (when flax is)."""
    names = ["mv", "ds"] + (["ck-ds"] if PIPELINES["ck-ds"].available else []) + ["hds"]
    return names + (["joint-ds"] if joint and PIPELINES["joint-ds"].available else [])


def run_demo(
    out: str | Path = "annostat-demo",
    n_galaxies: int = 300,
    n_volunteers: int = 150,
    retire_after: int = 3,
    unclassified: float = 0.2,
    image_size: int = 32,
    seed: int = 0,
    pipelines: Sequence[str] | None = None,
    efficiency: Sequence[int] = (1, 2, 3),
    questions: Sequence[str] | None = None,
    joint_options: dict[str, Any] | None = None,
    loop_classifications: int | None = None,
    quick: bool = False,
    log: Callable[[str], None] | None = None,
    progress: Progress | None = None,
) -> DemoResult:
    """Run the demo into ``out``: ``truth/`` (the truth set; its votes in ``truth/votes/``), ``report/`` (the benchmark
    report; each fit folder in ``report/fits/<pipeline>/``), ``advice/`` (the advice tables and the cards,
    ``advice/index.html``) and ``loop/`` (the round's selection, new classifications and the updated fit).

    ``unclassified`` is the share of galaxies no volunteer sees; ``loop_classifications`` the classifications the
    loop round asks for (default: a fifth of the classified galaxies). ``quick`` takes :data:`QUICK`'s settings
    where the call gives none (about a minute on 2 cores)."""
    if quick:
        n_galaxies, n_volunteers = min(n_galaxies, QUICK["n_galaxies"]), min(n_volunteers, QUICK["n_volunteers"])
        questions = questions or QUICK["questions"]
        image_size = min(image_size, QUICK["image_size"])
        joint_options = joint_options or {**QUICK["joint"], "min_steps": QUICK["min_steps"]}
    if not 0 <= unclassified < 1:
        raise ValueError(f"unclassified share {unclassified}: between 0 and 1 (1 excluded)")
    say = log or (lambda message: None)
    tick = progress or (lambda done, total, stage: None)
    out = Path(out)
    seconds: dict[str, float] = {}
    clock = time.perf_counter()

    def stage(i: int) -> None:
        nonlocal clock
        if i:
            seconds[STAGES[i - 1]] = time.perf_counter() - clock
        clock = time.perf_counter()
        tick(i, len(STAGES), STAGES[i] if i < len(STAGES) else "done")

    from annostat.truth.standin import standin_truth_set

    stage(0)
    say(f"rendering {n_galaxies} stand-in galaxies ({image_size}x{image_size} pixels)")
    truth_set = standin_truth_set(out / "truth", n_galaxies, size=image_size, seed=seed)

    stage(1)
    n_shown = max(1, round(n_galaxies * (1 - unclassified)))
    population = VolunteerPopulation(n_volunteers=n_volunteers)
    tree = truth_set.manifest["tree"]
    shown = truth_set.truth.iloc[:n_shown]
    simulated = list(questions) if questions else None
    say(
        f"{n_volunteers} simulated volunteers classify {n_shown} of them, {retire_after} classifications each; "
        f"{n_galaxies - n_shown} stay unclassified"
    )
    sim = simulate(shown, population, tree=tree, questions=simulated, retire_after=retire_after, seed=seed)
    sim.write(truth_set.votes_dir)

    stage(2)
    names = list(pipelines or demo_pipelines())
    joint = next((n for n in names if PIPELINES[n].needs_images), None)
    joint_settings = dict(DEMO_JOINT if joint_options is None else joint_options)
    benchmark = run_benchmark(
        truth_set.root,
        names,
        out / "report",
        efficiency=[m for m in efficiency if m <= retire_after],
        efficiency_pipelines=[n for n in names if n in ("mv", "ds")],
        save_fits=True,
        image_size=image_size,
        image_options=joint_settings,
        log=say,
    )
    per_galaxy = float(sim.votes.groupby("subject")["classification_id"].nunique().mean())
    voted, unvoted = pd.DataFrame(), pd.DataFrame()
    if joint:  # its posteriors name the classified galaxies by Panoptes id, the others by image id
        posteriors = pd.read_parquet(out / "report" / "fits" / joint / "posteriors.parquet")
        voted = answer_scores(posteriors, true_answers(truth_set, truth_set.votes_dir))[0]
        unvoted = answer_scores(posteriors, unclassified_truth(truth_set, truth_set.votes_dir))[0]

    stage(3)
    from annostat.guidance.advise import write_advice

    advised = "hds" if "hds" in names else "ds"
    say(f"advice and volunteer cards from the {advised} fit")
    advice = write_advice(out / "report" / "fits" / advised, out / "advice", truth=truth_set.root, min_votes=5)

    stage(4)
    loop = _loop_round(out, shown, sim, population, tree, simulated, seed, retire_after, loop_classifications, say)
    stage(5)
    result = DemoResult(out, benchmark, unvoted, voted, advice["summary"], loop, per_galaxy, joint, seconds)
    summary = {
        "models": result.summary().to_dict("records"),
        "loop": loop,
        "advice": advice["summary"],
        "seconds": seconds,
        "settings": {
            "galaxies": n_galaxies,
            "classified": n_shown,
            "volunteers": n_volunteers,
            "retire_after": retire_after,
            "image_size": image_size,
            "questions": simulated or "the whole tree",
            "joint": joint_settings if joint else None,
            "seed": seed,
        },
    }
    (out / "demo.json").write_text(json.dumps(summary, indent=2, default=float) + "\n", encoding="utf-8")
    return result


def _loop_round(
    out: Path,
    shown: pd.DataFrame,
    sim: Any,
    population: VolunteerPopulation,
    tree: str,
    questions: list[str] | None,
    seed: int,
    retire_after: int,
    n: int | None,
    say: Callable[[str], None],
) -> dict[str, Any]:
    """Select from the Dawid-Skene fit, let the same volunteers classify the chosen galaxies (``shown``, the truth
    table the export was simulated from) once more, update."""
    import polars as pl

    from annostat.data.votes import Votes
    from annostat.fit import Fit
    from annostat.live.retire import retire
    from annostat.live.select import select
    from annostat.live.update import update
    from annostat.truth.simulate import OnDemandVolunteers

    fit = Fit.load(out / "report" / "fits" / "ds")
    n = n or max(1, len(sim.subjects) // 5)
    folder = out / "loop"
    folder.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    retired = retire(fit, tree=tree)
    retired.write_csv(folder / "retired.csv")
    chosen = select(fit, n, tree=tree)
    chosen.write_csv(folder / "selected.csv")
    say(f"live loop: {len(retired)} galaxies retired; {len(chosen)} of the rest selected for one more classification")
    # the same population and seed: the same volunteers and subject ids; a few extra classifications each so that a
    # volunteer who already classified a galaxy is not asked it again
    volunteers = OnDemandVolunteers.simulate(
        shown,
        population,
        most=retire_after + 3,
        tree=tree,
        questions=questions,
        seed=seed,
    )
    subjects = chosen["subject"].to_list()
    candidates = volunteers.classify(subjects, retire_after + 3)
    seen = pl.from_pandas(sim.votes[["subject", "volunteer"]].astype({"volunteer": str})).unique()
    fresh = candidates.with_columns(pl.col("volunteer").cast(pl.String)).join(
        seen, on=["subject", "volunteer"], how="anti"
    )
    first = fresh.group_by("subject").agg(pl.col("volunteer").sort_by("created_at").first())
    new = fresh.join(first, on=["subject", "volunteer"]).sort(["created_at", "subject"])
    new.write_csv(folder / "new_classifications.csv")
    new_votes = Votes.from_frame(new.select("subject", "volunteer", "question", "answer", "created_at"))
    updating = time.perf_counter()
    updated = update(fit, new_votes)
    update_seconds = time.perf_counter() - updating
    updated.save(folder / "fit")
    seconds = time.perf_counter() - start
    truth = sim.truth
    before = answer_scores(fit.posteriors, truth)[0]
    after = answer_scores(updated.posteriors, truth)[0]
    on_chosen = truth[truth["subject"].isin(subjects)]
    return {
        "retired": len(retired),
        "selected": len(chosen),
        "classifications": int(new["subject"].n_unique()),
        "votes": len(new),
        "accuracy_before": float(before["accuracy"].mean()),
        "accuracy_after": float(after["accuracy"].mean()),
        "selected_accuracy_before": float(answer_scores(fit.posteriors, on_chosen)[0]["accuracy"].mean()),
        "selected_accuracy_after": float(answer_scores(updated.posteriors, on_chosen)[0]["accuracy"].mean()),
        "seconds": seconds,
        "update_seconds": update_seconds,
    }
