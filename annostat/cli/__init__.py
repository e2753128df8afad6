"""The ``annostat`` command: a thin typer layer over the Python API.

Bad input (a missing file, an unknown column, an empty or unreadable table) prints one line naming the file, column
or row and exits with status 2, without a traceback.
"""

from __future__ import annotations

import os
import sys
import time
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Iterator, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from annostat.errors import InputError
from annostat.models import REGISTRY, get_model, model_spec, models_that

app = typer.Typer(
    add_completion=False,
    pretty_exceptions_enable=False,
    no_args_is_help=True,
    help="Probabilistic models of citizen-science volunteers.",
)
console = Console(stderr=True)
ModelName = Enum("ModelName", {name: name for name in REGISTRY}, type=str)
DuplicatePolicy = Enum("DuplicatePolicy", {p: p for p in ("first", "last", "all")}, type=str)
InputFormat = Enum("InputFormat", {f: f for f in ("auto", "table", "panoptes")}, type=str)


def use_compilation_cache() -> None:
    """Keep XLA's compiled EM kernels on disk between runs of the command (each run is a fresh process).

    ``ANNOSTAT_CACHE_DIR`` chooses the folder (default ``~/.cache/annostat/xla``); set it empty to switch off.
    """
    folder = os.environ.get("ANNOSTAT_CACHE_DIR", str(Path.home() / ".cache" / "annostat" / "xla"))
    if not folder:
        return
    import jax

    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
        jax.config.update("jax_compilation_cache_dir", folder)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)  # NumPyro set-up: hundreds of small ops
    except (OSError, AttributeError, ValueError):  # an unwritable home or an older JAX: compile as usual
        pass


def fail(message: str) -> None:
    console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code=2)


def split_list(text: str, option: str, kind: type = str, what: str = "values") -> list:
    """A comma-separated option as a list of ``kind`` (blanks skipped); a one-line error naming the option if not."""
    try:
        return [kind(item.strip()) for item in text.split(",") if item.strip()]
    except ValueError:
        fail(f"{option}: {text!r} is not a comma-separated list of {what}")


def report_truth_set(truth_set, out: Path, made: str) -> None:
    """One line: what was made, how many featured, where the truth set is."""
    featured = int((truth_set.truth["true_smooth-or-featured"] == "featured-or-disk").sum())
    console.print(f"{made} ({featured:,} featured); truth set written to {out}", highlight=False)


@contextmanager
def input_errors() -> Iterator[None]:
    """Turn input problems into one line and exit status 2."""
    try:
        yield
    except InputError as exc:
        fail(str(exc))
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError, FileExistsError, PermissionError) as exc:
        fail(f"{exc.filename}: {exc.strerror}")


@contextmanager
def fit_progress(enabled: bool):
    """A rich progress bar per question; yields the callback models take (or None)."""
    if not enabled:
        yield None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        tasks: dict = {}

        def update(question, done: int, total: int) -> None:
            if question not in tasks:
                tasks[question] = bar.add_task(f"fitting {question}", total=total)
            bar.update(tasks[question], completed=done, total=total)

        yield update


@app.command()
def fit(
    votes: Path = typer.Argument(..., help="Votes table (CSV/TSV/Parquet, one row per vote) or Panoptes export."),
    model: ModelName = typer.Option("ds", "--model", "-m", help="Model to fit."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for the fit (created if needed)."),
    format: InputFormat = typer.Option("auto", "--format", help="auto: a Panoptes export is known by its columns."),
    subject_col: str = typer.Option("subject", help="Table: column with the subject id."),
    volunteer_col: str = typer.Option("volunteer", help="Table: column with the volunteer id."),
    question_col: str = typer.Option("question", help="Table: column with the question; absent: one question."),
    answer_col: str = typer.Option("answer", help="Table: column with the answer."),
    time_col: str = typer.Option("created_at", help="Table: column with the time of the vote; absent: file order."),
    duplicates: DuplicatePolicy = typer.Option(
        "first", help="Repeat votes (table) or repeat classifications (export) by one volunteer of one subject."),
    workflows: Optional[Path] = typer.Option(None, help="Export: workflow definitions (project CSV or API JSON)."),
    workflow_id: Optional[str] = typer.Option(None, help="Export: the workflow to read."),
    tree: str = typer.Option("auto", help="Export: tree preset for Zoobot names (auto, none, or a preset)."),
    seen_before: str = typer.Option("drop", help="Export: drop or keep seen_before re-classifications."),
    anonymous: str = typer.Option("keep", help="Export: keep or drop not-logged-in volunteers."),
    strict: bool = typer.Option(False, "--strict", help="Export: any row that would be quarantined is an error."),
    max_iter: Optional[int] = typer.Option(None, help="Dawid-Skene: most EM iterations [default: 100]."),
    tol: Optional[float] = typer.Option(None, help="Dawid-Skene: relative change that stops EM [default: 1e-6]."),
    pseudo_diagonal: Optional[float] = typer.Option(None, help="Dawid-Skene: Dirichlet pseudo-count on the diagonal."),
    pseudo_off_diagonal: Optional[float] = typer.Option(None, help="Dawid-Skene: pseudo-count off the diagonal."),
    inference: str = typer.Option("svi", help="Bayesian models (hds, learning, item, lre, mace, mn): svi, map or nuts."),
    seed: int = typer.Option(0, help="Bayesian models: random seed (runs are reproducible for a seed)."),
    steps: Optional[int] = typer.Option(None, help="Bayesian models: SVI/MAP optimisation steps [default: 2000]."),
    draws: Optional[int] = typer.Option(None, help="Bayesian models: posterior draws kept [default: 200]."),
    batch_size: Optional[int] = typer.Option(None, help="Bayesian models: subjects per SVI step."),
    prior: Optional[Path] = typer.Option(None, help="Per-subject answer priors from a classifier: annostat "
                                                    "posteriors, a Zoobot prediction table or a wide table."),
    prior_weight: float = typer.Option(1.0, help="Prior: the largest weight of the classifier's evidence; the votes "
                                                 "choose the weight up to it (below 1 tempers an over-confident "
                                                 "classifier; 0 ignores it)."),
    fixed_prior_weight: bool = typer.Option(False, "--fixed-prior-weight",
                                            help="Prior: use --prior-weight as it is instead of learning it."),
    prior_id_col: Optional[str] = typer.Option(None, help="Prior: the id column [default: subject, subject_id, "
                                                          "id_str or iauname]."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or summary."),
) -> None:
    """Fit a model to votes and write subjects, posteriors, volunteers, confusion, votes and fit.json."""
    from annostat.data.io.load import load_votes
    from annostat.data.priors import read_prior

    use_compilation_cache()
    given = dict(max_iter=max_iter, tol=tol, pseudo_diagonal=pseudo_diagonal, pseudo_off_diagonal=pseudo_off_diagonal,
                 inference=inference, seed=seed, steps=steps, draws=draws, batch_size=batch_size)
    options = {k: given[k] for k in model_spec(model.value).options if given[k] is not None}
    with input_errors():
        try:
            estimator = get_model(model.value, **options)
        except ValueError as exc:
            fail(str(exc))
        start = time.perf_counter()
        if format.value == "panoptes" or (format.value == "auto" and _is_export(votes)):
            reader = dict(workflows=workflows, workflow_id=workflow_id, tree=None if tree == "none" else tree,
                          seen_before=seen_before, repeats=duplicates.value, anonymous=anonymous, strict=strict)
            table, export = load_votes(votes, "panoptes", **reader)
        else:
            table, export = load_votes(
                votes, "table", subject=subject_col, volunteer=volunteer_col, question=question_col,
                answer=answer_col, time=time_col, duplicates=duplicates.value,
            )
        subject_prior = None
        if prior is not None:
            if not model_spec(model.value).can("subject_prior"):
                fail(f"--prior: the {model.value} model does not take a per-subject prior; the models that do are "
                     f"{', '.join(models_that('subject_prior'))}")
            if prior_weight < 0:
                fail("--prior-weight must be at least 0")
            subject_prior = read_prior(prior, table, id_column=prior_id_col, weight=prior_weight,
                                       learn_weight=not fixed_prior_weight)
        with fit_progress(not quiet) as progress:
            result = estimator.fit(table, progress=progress, prior=subject_prior)
        result.seconds = time.perf_counter() - start
        result.save(out)
        if export is not None:
            export.report.quarantine.write_csv(out / "quarantine.csv")
    if not quiet:
        console.print(f"{votes}: {(export.report if export else table.report).summary()}", highlight=False)
        if export is not None and export.report.rows_quarantined:
            console.print(f"quarantined rows and reasons: {out / 'quarantine.csv'}", highlight=False)
        for line in export.report.skipped_tasks() if export is not None else []:
            console.print(line, highlight=False)
        if subject_prior is not None:
            p = result.prior_summary
            weights = [q["prior_weight"] for q in result.summary()["questions"] if "prior_weight" in q]
            span = f"{min(weights):.2f}" + (f"-{max(weights):.2f}" if max(weights) - min(weights) >= 0.005 else "") \
                if weights else ""
            used = (f"weight {span}" if weights else "no evidence") + \
                (f" (learned, at most {p['weight']:g})" if p["weight_learned"] else " (fixed)")
            console.print(f"prior ({p['format']}, {used}): {p['subjects']:,} subjects, "
                          f"{p['subjects_with_votes']:,} with votes, {p['subjects_without_votes']:,} answered without "
                          f"votes" + (f", {p['ids_not_matched']:,} ids matching no subject left out"
                                      if p["ids_not_matched"] else ""), highlight=False)
        console.print(result.convergence.to_string(index=False), highlight=False)
        console.print(f"{estimator.title} fit written to {out}/ in {result.seconds:.2f} s", highlight=False)


def _is_export(path: Path) -> bool:
    from annostat.data.io.load import detect_format

    return detect_format(path) == "panoptes"


@app.command()
def compare(
    votes: Path = typer.Argument(..., help="Votes table (CSV/TSV/Parquet) or Panoptes export."),
    models: str = typer.Option("ds,hds", help="Comma-separated models to compare."),
    holdout: float = typer.Option(0.1, help="Share of the votes held out for scoring."),
    seed: int = typer.Option(0, help="Seed of the split and of the Bayesian fits."),
    inference: str = typer.Option("map", help="Bayesian models: svi, map or nuts (map: fast)."),
    steps: int = typer.Option(1000, help="Bayesian models: SVI/MAP steps."),
    workflows: Optional[Path] = typer.Option(None, help="Export: workflow definitions."),
    workflow_id: Optional[str] = typer.Option(None, help="Export: the workflow to read."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Write the table as CSV here too."),
) -> None:
    """Fit several models to the same votes and rank them by held-out vote log-likelihood.

    With --inference svi or nuts the Bayesian models also get PSIS-LOO and WAIC (elpd, summed over questions; subjects
    are the unit left out), the share of subjects with Pareto k > 0.7, and ppc_extreme: the share of volunteers (with
    10+ votes) whose agreement with the consensus falls outside the model's 5-95% predictive range."""
    from annostat.evaluation.checks import compare as compare_models
    from annostat.data.io.load import load_votes

    use_compilation_cache()
    names = split_list(models, "--models")
    with input_errors():
        unknown = [m for m in names if m not in REGISTRY]
        if unknown or not names:
            fail(f"unknown model(s) {', '.join(unknown) or '(none given)'}; the models are {', '.join(REGISTRY)}")
        options = {}
        for m in names:
            spec = model_spec(m)
            if spec.can("bayesian"):
                chosen = inference if (inference != "map" or spec.can("map")) else "svi"
                options[m] = dict(inference=chosen, steps=steps, seed=seed)
        try:
            if _is_export(votes):
                table, _ = load_votes(votes, "panoptes", workflows=workflows, workflow_id=workflow_id)
            else:
                table, _ = load_votes(votes, "table")
            result = compare_models(table, names, holdout=holdout, seed=seed, options=options)
        except ValueError as exc:
            fail(str(exc))
    console.print(result.to_string(index=False), highlight=False)
    if out is not None:
        result.to_csv(out, index=False)


@app.command()
def plot(
    fit_dir: Path = typer.Argument(..., help="A fit folder written by annostat fit."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Folder for the figures [default: FIT_DIR/plots]."),
    truth: Optional[Path] = typer.Option(None, help="CSV of true answers (subject, question, answer): adds a "
                                                     "reliability diagram."),
    volunteers: int = typer.Option(3, help="Confusion heatmaps for this many of the most active volunteers."),
) -> None:
    """Write figures of a fit: confusion heatmaps, skill against votes, learning curves, reliability diagram."""
    from annostat.evaluation.plots import plot_fit

    with input_errors():
        written = plot_fit(fit_dir, out, truth=truth, n_volunteers=volunteers)
    for path in written:
        console.print(str(path), highlight=False)


@app.command()
def catalogue(
    fit_dir: Path = typer.Argument(..., help="A fit folder written by annostat fit."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Folder for the catalogue [default: FIT_DIR]."),
) -> None:
    """Write a Zoobot-compatible catalogue: vote counts, totals, fractions and posteriors per subject."""
    from annostat.catalogue import write_catalogue

    with input_errors():
        parquet, csv = write_catalogue(fit_dir, out)
    console.print(f"catalogue written to {parquet} and {csv}", highlight=False)


@app.command()
def inspect(
    path: Path = typer.Argument(..., help="A Panoptes classification export or a votes table."),
    workflows: Optional[Path] = typer.Option(None, help="Workflow definitions (project CSV or API JSON)."),
    workflow_id: Optional[str] = typer.Option(None, help="The workflow a fit would read."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
) -> None:
    """Show what an export holds before fitting it."""
    import json

    from annostat.data.io.inspect import inspect_path

    with input_errors():
        summary = inspect_path(path, workflows=workflows, workflow_id=workflow_id)
    if as_json:
        print(json.dumps(summary, indent=2, default=str))
        return
    table = Table(title=str(path), show_header=False)
    for key, value in summary.items():
        table.add_row(key.replace("_", " "), _describe(value))
    Console().print(table)


def _describe(value) -> str:
    """A readable cell for inspect: one line per item of a list or dict."""
    if isinstance(value, dict):
        return "\n".join(f"{k}: {_describe(v)}" for k, v in value.items()) or "-"
    if isinstance(value, list):
        if value and all(isinstance(v, dict) for v in value):
            return "\n".join(" ".join(str(x) for x in v.values()) for v in value)
        return ", ".join(map(str, value))
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)


def print_scores(result, title: str) -> None:
    """The benchmark's scores, one row per pipeline and question, as a rich table on stdout."""
    table = Table(title=title)
    columns = (("question", "question", "{}"), ("pipeline", "pipeline", "{}"), ("accuracy", "acc.", "{:.3f}"),
               ("balanced_accuracy", "bal. acc.", "{:.3f}"), ("ece", "ECE", "{:.3f}"),
               ("brier", "Brier", "{:.3f}"), ("volunteer_mae", "vol. MAE", "{:.3f}"))
    for _, header, _ in columns:
        table.add_column(header, justify="left" if header in ("question", "pipeline") else "right",
                         overflow="fold", min_width=18 if header == "question" else None)
    for row in result.scores.sort_values(["question", "pipeline"]).to_dict("records"):
        table.add_row(*["" if row.get(key) is None or row.get(key) != row.get(key) else fmt.format(row[key])
                        for key, _, fmt in columns])
    Console().print(table)


@app.command()
def demo(
    out: Path = typer.Option(Path("annostat-demo"), "--out", "-o", help="Folder for the demo's outputs."),
    galaxies: int = typer.Option(300, help="Stand-in galaxies to render."),
    volunteers: int = typer.Option(150, help="Simulated volunteers."),
    retire_after: int = typer.Option(10, help="Classifications per galaxy."),
    efficiency: str = typer.Option("1,2,3,5,10", help="Classifications per galaxy for the label-efficiency curve."),
    seed: int = typer.Option(0, help="Random seed."),
) -> None:
    """The whole loop: render galaxies, simulate volunteers, fit, benchmark against the truth, write the report."""
    from annostat.evaluation.demo import run_demo

    if galaxies < 1 or volunteers < 1 or retire_after < 1:
        fail("--galaxies, --volunteers and --retire-after must be at least 1")
    grid = split_list(efficiency, "--efficiency", int, "whole numbers")
    use_compilation_cache()
    with input_errors():
        result = run_demo(out, n_galaxies=galaxies, n_volunteers=volunteers, retire_after=retire_after, seed=seed,
                          efficiency=grid, log=lambda message: console.print(message, highlight=False))
    print_scores(result, "Simulated Galaxy Zoo votes: pipelines against the truth")
    Console().print(f"Truth set and votes in {out}/truth; report in {result.report}; fits in {out}/report/fits")


truth_app = typer.Typer(help="Build truth sets: simulated galaxies whose true Galaxy Zoo answers are known.",
                        no_args_is_help=True)
app.add_typer(truth_app, name="truth")


@truth_app.command("standin")
def truth_standin(
    out: Path = typer.Option(..., "--out", "-o", help="Folder for the truth set."),
    n: int = typer.Option(500, "--n", help="Galaxies to render."),
    size: int = typer.Option(64, help="Image size in pixels (0.262 arcsec each)."),
    seed: int = typer.Option(0, help="Random seed of the parameters and the noise."),
    sky_sigma: float = typer.Option(0.001, help="Sky noise per pixel (nanomaggies)."),
) -> None:
    """Render stand-in galaxies (bulge, disc, bar, spiral arms, clumps, tidal arcs; JAX) into a truth set."""
    from annostat.truth.standin import standin_truth_set

    if n < 1:
        fail("--n must be at least 1")
    if size < 16:
        fail("--size must be at least 16 pixels")
    with input_errors():
        truth_set = standin_truth_set(out, n, size=size, seed=seed, sky_sigma=sky_sigma)
    report_truth_set(truth_set, out, f"{n:,} galaxies rendered at {size}x{size} in {', '.join(truth_set.bands)}")


@truth_app.command("fire")
def truth_fire(
    snapshots: list[Path] = typer.Argument(..., help="FIRE-2 snapshots: <sim>/output/snapshot_NNN.hdf5 files or "
                                                       "snapdir_NNN folders."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for the truth set."),
    name: Optional[str] = typer.Option(None, help="Simulation name (default: from the <sim>/output/ layout)."),
    views: int = typer.Option(4, help="Random orientations per snapshot."),
    inclinations: Optional[str] = typer.Option(None, help="Chosen inclinations in degrees, e.g. '0,45,85' (one "
                                                          "view each, instead of --views random ones)."),
    size: int = typer.Option(128, help="Image size in pixels."),
    redshift: float = typer.Option(0.05, help="Redshift the galaxy is placed at (angular scale, flux)."),
    sky_sigma: float = typer.Option(0.002, help="Sky noise per pixel (nanomaggies)."),
    weight: str = typer.Option("light", help="Project 'light' (age-dependent mass-to-light) or 'mass'."),
    seed: int = typer.Option(0, help="Random seed of the views and the noise."),
) -> None:
    """Mock images and truth (inclination, bar A2, disc fraction, spirals) of FIRE-2 star particles as a truth set."""
    from annostat.truth.fire import fire_truth_set

    if views < 1:
        fail("--views must be at least 1")
    if size < 16:
        fail("--size must be at least 16 pixels")
    if weight not in ("light", "mass"):
        fail(f"--weight: {weight!r} is not 'light' or 'mass'")
    if redshift <= 0:
        fail("--redshift must be above 0")
    angles = None
    if inclinations is not None:
        angles = split_list(inclinations, "--inclinations", float, "angles")
        views = len(angles)
    with input_errors():
        truth_set = fire_truth_set(snapshots, out, views=views, size=size, redshift=redshift, sky_sigma=sky_sigma,
                                   seed=seed, name=name, weight=weight, inclinations=angles)
    report_truth_set(truth_set, out, f"{len(snapshots)} snapshot(s) x {views} views = {len(truth_set.truth):,} "
                                     f"images at {size}x{size}")


@app.command()
def simulate(
    truthset: Path = typer.Argument(..., help="A truth set folder (annostat truth standin / fire)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Folder for the votes (default TRUTHSET/votes)."),
    volunteers: int = typer.Option(300, help="Simulated volunteers."),
    retire_after: int = typer.Option(10, help="Classifications (distinct volunteers) per subject."),
    spammers: float = typer.Option(0.03, help="Share of volunteers who always answer 'artifact'."),
    learning_gap: float = typer.Option(0.6, help="Mean logit gap between a volunteer's first vote and plateau."),
    difficulty: float = typer.Option(0.6, help="Weight of image difficulty (faint, small, edge-on) on the logit."),
    seed: int = typer.Option(0, help="Random seed."),
) -> None:
    """Simulated volunteers walk the Galaxy Zoo tree on a truth set's galaxies: votes, a Panoptes export and its
    workflow, and the true volunteer parameters."""
    from annostat.truth.simulate import VolunteerPopulation, simulate as run
    from annostat.truth.truthset import load_truth_set

    if volunteers < 1 or retire_after < 1:
        fail("--volunteers and --retire-after must be at least 1")
    if not 0 <= spammers <= 1:
        fail("--spammers must be between 0 and 1")
    with input_errors():
        truth_set = load_truth_set(truthset, check_images=False)
        target = out or truth_set.votes_dir
        if target.exists() and not target.is_dir():
            raise InputError(f"{target}: exists and is not a folder")
    population = VolunteerPopulation(n_volunteers=volunteers, spammer_fraction=spammers, learning_gap=learning_gap,
                                     difficulty_weight=difficulty)
    sim = run(truth_set, population, retire_after=retire_after, seed=seed)
    sim.write(target)
    s = sim.settings
    console.print(f"{s['classifications']:,} classifications ({s['votes']:,} votes) by {volunteers:,} volunteers on "
                  f"{s['subjects']:,} subjects ({s['subjects_not_retired']:,} not retired); written to {target}",
                  highlight=False)



@app.command()
def benchmark(
    truthset: Path = typer.Argument(..., help="A truth set with simulated votes (annostat simulate)."),
    pipelines: str = typer.Option("mv,ds", help="Comma-separated pipelines (annostat models; ck-* with crowd-kit)."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for the report."),
    votes_dir: Optional[Path] = typer.Option(None, help="Simulated votes folder (default TRUTHSET/votes)."),
    efficiency: str = typer.Option(",".join(map(str, (1, 2, 3, 5, 8, 10, 15, 20, 30, 40))),
                                   help="Classifications per subject for the label-efficiency curve ('' for none)."),
    efficiency_pipelines: Optional[str] = typer.Option(None, help="Pipelines refitted for the label-efficiency "
                                                                  "curve (default: the fast ones chosen)."),
    min_votes: int = typer.Option(10, help="Volunteers with at least this many votes are scored."),
) -> None:
    """Run aggregation pipelines on a truth set's simulated votes and score them against the truth."""
    from annostat.evaluation.harness import run_benchmark
    from annostat.evaluation.pipelines import PIPELINES

    names = split_list(pipelines, "--pipelines")
    eff_names = None if efficiency_pipelines is None else split_list(efficiency_pipelines, "--efficiency-pipelines")
    for name in names + (eff_names or []):
        if name not in PIPELINES:
            fail(f"--pipelines: no pipeline {name!r}; the pipelines are {', '.join(PIPELINES)}")
        if not PIPELINES[name].available:
            fail(f"--pipelines: {name} needs {PIPELINES[name].needs} (pip install 'annostat[peers]')")
    grid = split_list(efficiency, "--efficiency", int, "whole numbers")
    use_compilation_cache()
    with input_errors():
        result = run_benchmark(truthset, names, out, votes_dir=votes_dir, efficiency=grid,
                               efficiency_pipelines=eff_names, min_votes=min_votes,
                               log=lambda message: console.print(message, highlight=False))
    print_scores(result, "Pipelines against the simulated truth")
    Console().print(f"Report written to {result.report}")



@app.command()
def advise(
    fit_dir: Path = typer.Argument(..., help="A fit folder (annostat fit --out)."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for the advice, tables and volunteer cards."),
    keep_names: bool = typer.Option(False, "--keep-names", help="Show volunteer names instead of pseudonyms."),
    salt: Optional[str] = typer.Option(None, help="Salt of the pseudonyms (default: random, kept in private/)."),
    min_votes: int = typer.Option(10, help="Votes on a question before advice is given."),
    truth: Optional[Path] = typer.Option(None, help="A truth set: thumbnails and features for the examples."),
    images: Optional[Path] = typer.Option(None, help="A folder of subject images (<subject>.png/.jpg)."),
    examples: int = typer.Option(4, help="Worked examples per named confusion."),
    max_pages: int = typer.Option(500, help="Volunteer pages for the most active volunteers."),
) -> None:
    """Personalised advice for each volunteer: what they do well, what they confuse, examples that would help."""
    from annostat.guidance import write_advice

    if min_votes < 1 or examples < 0 or max_pages < 0:
        fail("--min-votes must be at least 1; --examples and --max-pages at least 0")
    if images is not None and not images.is_dir():
        fail(f"{images}: not a folder")
    with input_errors():
        result = write_advice(fit_dir, out, keep_names=keep_names, salt=salt, min_votes=min_votes, truth=truth,
                              images=images, examples=examples, max_pages=max_pages)
    s = result["summary"]
    table = Table(title=f"Advice for {s['volunteers']:,} volunteers ({s['model']} fit)")
    table.add_column("recommendation")
    table.add_column("volunteer x question", justify="right")
    for rec, count in sorted(s["recommendations"].items(), key=lambda kv: -kv[1]):
        table.add_row(rec, f"{count:,}")
    Console().print(table)
    Console().print(f"{s['named_confusions']:,} named confusions, {s['examples']:,} worked examples; advice, tables and "
                    f"{s['pages']:,} volunteer pages in {out} (open {out / 'index.html'})")


def main() -> None:  # pragma: no cover - console entry point
    app(prog_name="annostat")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
