r"""The benchmark harness: run aggregation pipelines on a truth set's simulated votes and score them against the truth.

``annostat benchmark TRUTHSET --pipelines mv,ds,ck-ds --out REPORT`` reads the truth set (``annostat.truth.truthset``) and
the votes ``annostat simulate`` wrote to ``TRUTHSET/votes/``: the Panoptes classification export and its workflow
when present (so the votes go through the same ingest path as real exports), else the long votes table. Each
pipeline (``annostat.evaluation.pipelines``) is fitted on the same votes and scored per question, on the subjects whose true
path asks the question and that have at least one vote on it:

- **accuracy** of the most probable answer, and **balanced accuracy** (mean recall over the true answers present);
- **expected calibration error** of the posteriors: :math:`\sum_b \frac{n_b}{N}|\mathrm{acc}_b - \mathrm{conf}_b|`
  over 10 equal-width bins of the top answer's probability, and the multi-class **Brier score**
  :math:`\frac1N\sum_s\sum_k (p_{sk} - [k = y_s])^2`, and the mean negative log-probability of the true answer;
- **volunteer recovery**: correlation and mean absolute error between each volunteer's estimated accuracy and their
  true expected accuracy on the votes they gave (volunteers with at least ``min_votes`` votes on the question), and
  the coverage of the 90% intervals where the pipeline gives them;
- **learning curves** (pipelines that estimate one): mean absolute error of the population curve against the true
  one, on questions every classification asks (there a volunteer's classifications and answers count alike);
- the **label-efficiency curve**: each subject's first *m* classifications only (as if retired after *m*), for *m*
  from 1 to 40 (up to the simulation's retirement limit), accuracy per question; the ``fast`` pipelines by default.

Output (``REPORT``): ``report.md`` (set-up, tables, figures), ``scores.parquet``, ``volunteers.parquet`` (per
volunteer: estimated vs true), ``efficiency.parquet``, ``calibration.parquet``, ``learning.parquet`` and the
figures ``efficiency.png``, ``calibration.png``, ``volunteers.png`` (and ``learning.png``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from annostat.data.votes import Votes
from annostat.errors import InputError
from annostat.evaluation.calibration import expected_calibration_error, reliability_bins
from annostat.evaluation.pipelines import Pipeline, PipelineOutput, get_pipeline
from annostat.evaluation.report import write_report
from annostat.files import read_json
from annostat.truth.truthset import TruthSet, load_truth_set

if TYPE_CHECKING:
    from annostat.evaluation.loop import LoopResult

EFFICIENCY_VOTES = (1, 2, 3, 5, 8, 10, 15, 20, 30, 40)


@dataclass
class BenchmarkResult:
    scores: pd.DataFrame  # pipeline, question, subjects, accuracy, balanced_accuracy, ece, brier, nll, volunteer_*, ...
    volunteers: pd.DataFrame  # pipeline, volunteer, question, n, accuracy, accuracy_true[, accuracy_lo, accuracy_hi]
    efficiency: pd.DataFrame  # pipeline, question, votes_per_subject, subjects, accuracy
    calibration: pd.DataFrame  # pipeline, question, bin, confidence, accuracy, n
    learning: pd.DataFrame  # pipeline, question, experience, accuracy, lo, hi, accuracy_true
    setup: dict
    report: Path | None = None
    loop: LoopResult | None = None  # when the loop was run


# --- inputs ----------------------------------------------------------------------------------------------------


def read_simulated_votes(truth_set: TruthSet, votes_dir: str | os.PathLike | None = None) -> tuple[Votes, Path, str]:
    """The simulated votes of a truth set: through the Panoptes export when there is one, else the long table."""
    from annostat.data.io.load import load_votes

    folder = Path(votes_dir) if votes_dir else truth_set.votes_dir
    if not (folder / "simulation.json").exists():
        raise InputError(
            f"{folder}: no simulated votes (simulation.json not found); run annostat simulate {truth_set.root} first"
        )
    settings = read_json(folder / "simulation.json", "a simulation's settings")
    if not isinstance(settings, dict):
        raise InputError(f"{folder / 'simulation.json'}: not a simulation's settings (a JSON object)")
    export = settings.get("export")
    if export and (folder / export["classifications"]).exists():
        votes, _ = load_votes(
            folder / export["classifications"],
            workflows=folder / export["workflows"],
            workflow_id=export["workflow_id"],
        )
        return votes, folder, "panoptes export"
    return Votes.read(folder / "votes.parquet"), folder, "votes table"


def true_answers(truth_set: TruthSet, folder: Path) -> pd.DataFrame:
    """The truth set's true answers keyed by the simulated (Panoptes) subject ids: subject, question, answer."""
    subjects = pd.read_parquet(folder / "subjects.parquet")[["subject", "image_id"]]
    long = truth_set.true_answers().rename(columns={"subject": "image_id"})
    return long.merge(subjects, on="image_id")[["subject", "question", "answer"]]


def unclassified_truth(truth_set: TruthSet, folder: Path) -> pd.DataFrame:
    """True answers of the truth set's galaxies that the simulation did not show (keyed by image id, as the image
    pipelines name them)."""
    shown = set(pd.read_parquet(folder / "subjects.parquet")["image_id"].astype(str))
    long = truth_set.true_answers()
    return long[~long["subject"].astype(str).isin(shown)][["subject", "question", "answer"]]


# --- scores ----------------------------------------------------------------------------------------------------


def answer_scores(posteriors: pd.DataFrame, truth: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per question: accuracy, balanced accuracy, ECE, Brier score and NLL of the posteriors against the truth;
    and the reliability bins. Scored on subjects with a true answer and a posterior (ids compared as text where the
    two tables type them differently)."""
    if posteriors["subject"].dtype != truth["subject"].dtype:
        posteriors = posteriors.assign(subject=posteriors["subject"].astype(str))
        truth = truth.assign(subject=truth["subject"].astype(str))
    rows, bins = [], []
    for question, post in posteriors.groupby("question", sort=True):
        wide = post.pivot_table(index="subject", columns="answer", values="p", aggfunc="first").fillna(0.0)
        t = truth[truth["question"] == question].set_index("subject")["answer"]
        common = wide.index.intersection(t.index)
        if len(common) == 0:
            continue
        p = wide.loc[common].to_numpy(float)
        p = p / np.clip(p.sum(axis=1, keepdims=True), 1e-12, None)
        answers = np.asarray(wide.columns, dtype=object)
        y = t.loc[common].to_numpy(dtype=object)
        onehot = answers[None, :] == y[:, None]
        top = p.argmax(axis=1)
        correct = answers[top] == y
        confidence = p.max(axis=1)
        recalls = [correct[y == k].mean() for k in np.unique(y)]
        reliability = reliability_bins(confidence, correct)
        ece = expected_calibration_error(reliability)
        bins.append(reliability.assign(question=question))
        p_true = np.where(onehot.any(axis=1), (p * onehot).sum(axis=1), 0.0)
        rows.append(
            {
                "question": question,
                "subjects": len(common),
                "accuracy": correct.mean(),
                "balanced_accuracy": float(np.mean(recalls)),
                "ece": ece,
                "brier": float(((p - onehot) ** 2).sum(axis=1).mean()),
                "nll": float(-np.log(np.clip(p_true, 1e-6, None)).mean()),
            }
        )
    columns = ["question", "bin", "confidence", "accuracy", "n"]
    return pd.DataFrame(rows), (pd.concat(bins, ignore_index=True)[columns] if bins else pd.DataFrame(columns=columns))


def volunteer_scores(
    estimated: pd.DataFrame | None, true_volunteers: pd.DataFrame, min_votes: int, accuracy_at: str = "votes"
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per question: correlation, MAE and interval coverage of the volunteers' estimated accuracy against their
    true accuracy (volunteers with >= ``min_votes`` votes on the question); and the joined table. The true value is
    the expected accuracy on the votes they gave (``accuracy_at="votes"``) or at their last classification
    (``"last"``, for learning-curve models)."""
    if estimated is None or estimated.empty:
        return pd.DataFrame(columns=["question"]), pd.DataFrame()
    column = {"votes": "accuracy", "last": "accuracy_last"}[accuracy_at]
    truth = true_volunteers[["volunteer", "question", column]].rename(columns={column: "accuracy_true"})
    est = estimated.assign(volunteer=estimated["volunteer"].astype(str))
    joined = est.merge(truth, on=["volunteer", "question"], how="inner")
    rows = []
    for question, part in joined.groupby("question", sort=True):
        part = part[part["n"] >= min_votes]
        row = {"question": question, "volunteers_scored": len(part)}
        if len(part) >= 3:
            row["volunteer_corr"] = float(np.corrcoef(part["accuracy"], part["accuracy_true"])[0, 1])
            row["volunteer_mae"] = float((part["accuracy"] - part["accuracy_true"]).abs().mean())
            if {"accuracy_lo", "accuracy_hi"} <= set(part):
                inside = (part["accuracy_lo"] <= part["accuracy_true"]) & (part["accuracy_true"] <= part["accuracy_hi"])
                row["volunteer_coverage90"] = float(inside.mean())
        rows.append(row)
    return pd.DataFrame(rows), joined


def learning_scores(
    curves: pd.DataFrame | None, true_curve: pd.DataFrame, questions: Sequence[str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """MAE of the estimated population learning curve against the true one, on ``questions``."""
    if curves is None or curves.empty:
        return pd.DataFrame(columns=["question"]), pd.DataFrame()
    rows, joined = [], []
    for question, part in curves.groupby("question", sort=True):
        if question not in questions:
            continue
        t = true_curve[true_curve["question"] == question].sort_values("experience")
        part = part.assign(accuracy_true=np.interp(part["experience"], t["experience"], t["accuracy"]))
        joined.append(part)
        rows.append(
            {"question": question, "learning_curve_mae": float((part["accuracy"] - part["accuracy_true"]).abs().mean())}
        )
    return pd.DataFrame(rows), (pd.concat(joined, ignore_index=True) if joined else pd.DataFrame())


def first_classifications(votes: Votes, m: int) -> Votes:
    """Each subject's first ``m`` classifications (a volunteer's votes on a subject are one classification), in time
    order (the table's order where times are missing): the votes a project that retired subjects after ``m`` would
    have had. Answer sets are kept."""
    frame = votes.to_frame().select("subject", "volunteer", "question", "answer", "time").to_pandas()
    first = frame.groupby(["subject", "volunteer"], sort=False, observed=True)["time"].transform("min")
    pairs = frame.assign(first=first).drop_duplicates(["subject", "volunteer"])
    pairs = pairs.sort_values("first", kind="stable", na_position="last")  # no time: the table's order
    rank = pairs.groupby("subject", sort=False, observed=True).cumcount()
    kept = pairs.loc[rank < m, ["subject", "volunteer"]]
    part = frame.merge(kept, on=["subject", "volunteer"])
    answers = {q: list(a.to_list()) for q, a in zip(votes.questions.to_list(), votes.answers)}
    return Votes.from_frame(part, time="time", answers=answers, source=f"first {m} classifications")


# --- the run ---------------------------------------------------------------------------------------------------


def run_benchmark(
    truthset: str | os.PathLike,
    pipelines: Sequence[str] = ("mv", "ds"),
    out: str | os.PathLike | None = None,
    votes_dir: str | os.PathLike | None = None,
    efficiency: Sequence[int] = EFFICIENCY_VOTES,
    efficiency_pipelines: Sequence[str] | None = None,
    min_votes: int = 10,
    save_fits: bool = False,
    log: Callable[[str], None] | None = None,
    image_size: int = 64,
    image_options: dict | None = None,
    loop: Sequence[str] = (),
    loop_options: dict | None = None,
    pipeline_options: dict[str, dict[str, Any]] | None = None,
) -> BenchmarkResult:
    """Run ``pipelines`` on the truth set's simulated votes, score them, and write the report to ``out`` (with
    ``save_fits``, each annostat fit folder to ``out/fits/<pipeline>``). Pipelines that need images get the truth
    set's (decoded once, ``image_size`` pixels a side), including galaxies nobody classified, and
    ``image_options`` (the joint model's options: ``epochs``, ``rounds``, ``width``, ...). ``loop`` names the live
    loop's strategies to run (``annostat.evaluation.loop``; ``loop_options`` its settings: ``maximum``,
    ``threshold``, ``minimum``, ``batch``, ``start``), on volunteers simulated on demand from the same population.
    ``pipeline_options`` gives a pipeline its model's options by name (``{"hds": {"inference": "map"}}``), for its
    fit and its label-efficiency refits; an image pipeline's are laid over ``image_options``."""
    say = log or (lambda message: None)
    unknown = sorted(set(pipeline_options or {}) - set(pipelines) - set(efficiency_pipelines or ()))
    if unknown:
        raise ValueError(f"pipeline_options: {', '.join(unknown)} is not among the pipelines run")

    def options_of(pipeline: Pipeline) -> dict[str, Any]:
        own = dict((pipeline_options or {}).get(pipeline.name, {}))
        return (dict(image_options or {}) | own) if pipeline.needs_images else own

    truth_set = load_truth_set(truthset, check_images=False)
    chosen = [get_pipeline(name) for name in pipelines]
    votes, folder, source = read_simulated_votes(truth_set, votes_dir)
    truth = true_answers(truth_set, folder)
    settings = read_json(folder / "simulation.json", "a simulation's settings")
    true_volunteers = pd.read_parquet(folder / "volunteers.parquet")
    true_curve = pd.read_parquet(folder / "learning.parquet")
    root_questions = [q.name for q in truth_set.tree.questions.values() if not q.asked_after]
    inputs = None
    if any(p.needs_images for p in chosen) or any(get_pipeline(n).needs_images for n in efficiency_pipelines or ()):
        from annostat.vision.inputs import image_inputs

        say(f"decoding the truth set's images at {image_size}x{image_size}")
        inputs = image_inputs(truth_set.root, votes.subjects.to_list(), image_size, subject_table=votes.subject_table)
        truth = pd.concat([truth, unclassified_truth(truth_set, folder)], ignore_index=True)

    scores: list[pd.DataFrame] = []
    vols: list[pd.DataFrame] = []
    calib: list[pd.DataFrame] = []
    learn: list[pd.DataFrame] = []
    full_scores: dict[str, pd.DataFrame] = {}
    for pipeline in chosen:
        say(f"fitting {pipeline.name} on {votes.n_votes:,} votes")
        result: PipelineOutput = pipeline(votes, inputs, **options_of(pipeline))
        if save_fits and out is not None and result.fit is not None:
            result.fit.save(Path(out) / "fits" / pipeline.name)
        a, bins = answer_scores(result.posteriors, truth)
        full_scores[pipeline.name] = a
        v, joined = volunteer_scores(result.volunteers, true_volunteers, min_votes, result.accuracy_at)
        lc, curves = learning_scores(result.learning, true_curve, root_questions)
        table = a.merge(v, on="question", how="left").merge(lc, on="question", how="left")
        table.insert(0, "pipeline", pipeline.name)
        table["seconds"] = result.seconds
        scores.append(table)
        for part, into in ((joined, vols), (bins, calib), (curves, learn)):
            if len(part):
                into.append(part.assign(pipeline=pipeline.name))

    max_m = int(settings.get("retire_after") or max(efficiency, default=0))
    grid = [m for m in efficiency if 1 <= m <= max_m]
    if len(efficiency) and not grid:
        raise InputError(
            f"label efficiency: none of {', '.join(map(str, efficiency))} classifications per subject is "
            f"between 1 and the {max_m} the simulation gave each subject (give '' for no curve)"
        )
    if dropped := [m for m in efficiency if m not in grid]:
        say(
            f"label efficiency: {', '.join(map(str, dropped))} left out (outside 1-{max_m} classifications per subject)"
        )
    eff_names = (
        list(efficiency_pipelines) if efficiency_pipelines is not None else [p.name for p in chosen if p.cost == "fast"]
    )
    eff = []
    # with m at least every subject's classifications the subset is all the votes: the fit above, not refitted
    pairs = votes.to_frame().select("subject", "volunteer").unique().group_by("subject").len()
    most = int(pairs["len"].to_numpy().max()) if len(pairs) else 0
    for m in grid:
        subset = first_classifications(votes, m) if m < most else None
        for name in eff_names:
            if subset is None and name in full_scores:
                a = full_scores[name]
            else:
                say(f"label efficiency: {name} with {m} classification(s) per subject")
                chosen_pipeline = get_pipeline(name)
                result = chosen_pipeline(votes if subset is None else subset, inputs, **options_of(chosen_pipeline))
                a, _ = answer_scores(result.posteriors, truth)
            eff.append(a[["question", "subjects", "accuracy"]].assign(pipeline=name, votes_per_subject=m))

    def frame(parts, columns):
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)

    setup = {
        "truth_set": str(truth_set.root),
        "source": truth_set.manifest["source"],
        "tree": truth_set.manifest["tree"],
        "votes_from": source,
        "votes": int(votes.n_votes),
        "subjects": int(votes.n_subjects),
        "volunteers": int(votes.n_volunteers),
        "retire_after": settings.get("retire_after"),
        "spammer_fraction": settings.get("population", {}).get("spammer_fraction"),
        "min_votes": min_votes,
        "pipelines": [p.name for p in chosen],
        "efficiency_pipelines": eff_names,
        "efficiency_votes": grid,
        "pipeline_options": {name: dict(o) for name, o in (pipeline_options or {}).items()},
    }
    looped = None
    if loop:
        from annostat.evaluation.loop import JOINT_STRATEGIES, loop_from_truth_set, run_loop

        options = dict(loop_options or {})
        stream = loop_from_truth_set(truth_set, settings, int(options.get("maximum", 40)))
        if any(x in JOINT_STRATEGIES for x in loop):  # the joint model reads the truth set's images
            import polars as pl

            from annostat.data.subjects import Subjects
            from annostat.vision.inputs import image_inputs

            say(f"live loop: decoding the truth set's images at {image_size}x{image_size}")
            table = Subjects(
                pl.from_pandas(stream.sim.subjects[["subject", "image_id"]]).with_columns(
                    pl.col("image_id").cast(pl.String)
                ),
                "simulated subjects",
            )
            options["inputs"] = image_inputs(
                truth_set.root, stream.subjects.tolist(), image_size, subject_table=table, all_images=False
            )
            options["joint_options"] = dict(image_options or {})
        say(f"live loop: {', '.join(loop)} on {len(stream.subjects):,} galaxies")
        looped = run_loop(stream, loop, tree=truth_set.manifest["tree"], log=say, **options)
    benchmark = BenchmarkResult(
        scores=frame(scores, ["pipeline", "question"]),
        volunteers=frame(vols, ["pipeline"]),
        efficiency=frame(eff, ["pipeline", "question", "votes_per_subject", "subjects", "accuracy"]),
        calibration=frame(calib, ["pipeline"]),
        learning=frame(learn, ["pipeline"]),
        setup=setup,
        loop=looped,
    )
    if out is not None:
        benchmark.report = write_report(benchmark, out)
    return benchmark
