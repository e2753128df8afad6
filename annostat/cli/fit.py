"""``annostat fit`` and ``annostat compare``: votes in, models fitted."""

from __future__ import annotations

import shutil
import time
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from annostat.cli.common import (
    DuplicatePolicy,
    InputFormat,
    ModelName,
    console,
    fail,
    fit_progress,
    given_on_command_line,
    input_errors,
    option_flags,
    output_file,
    positive,
    share,
    split_list,
    training_progress,
)
from annostat.errors import first_line
from annostat.infer.cache import use_compilation_cache
from annostat.models import REGISTRY, get_model, model_spec, models_that

if TYPE_CHECKING:
    from annostat.data.votes import Votes

#: which of ``fit``'s options each kind of fit uses (the rest, given, are refused in one line)
ALWAYS = {
    "votes",
    "model",
    "out",
    "format",
    "duplicates",
    "quiet",
    "coordinator",
    "num_processes",
    "process_id",
    "gold",
    "experts",
}
TABLE_OPTIONS = {"subject_col", "volunteer_col", "question_col", "answer_col", "time_col"}
EXPORT_OPTIONS = {"workflows", "workflow_id", "tree", "seen_before", "anonymous", "strict"}
PRIOR_OPTIONS = {"prior_weight", "fixed_prior_weight", "prior_id_col"}
JOINT_OPTIONS = {
    "method",
    "seed",
    "batch_size",
    "epochs",
    "rounds",
    "learning_rate",
    "missing_images",
    "resume",
    "pseudo_diagonal",
    "pseudo_off_diagonal",
    "devices",
}
IMAGE_OPTIONS = {"images", "width", "depth", "image_size", "image_fit"}
FEATURE_OPTIONS = {"features", "hidden", "features_id_col"}


def _refuse_unused(ctx: typer.Context, model: str, joint: str | None, export: bool, prior: bool) -> None:
    """One line for the first option given that this fit would not use (rather than accepting it silently)."""
    given = given_on_command_line(ctx)
    allowed = ALWAYS | (EXPORT_OPTIONS if export else TABLE_OPTIONS)
    if joint is None:
        allowed |= set(model_spec(model).options)
        if model_spec(model).can("subject_prior"):
            allowed |= {"prior"} | (PRIOR_OPTIONS if prior else set())
    else:
        allowed |= JOINT_OPTIONS | (IMAGE_OPTIONS if joint == "images" else FEATURE_OPTIONS)
    model_options = set().union(*(model_spec(m).options for m in REGISTRY))
    for name, flag in given.items():
        if name in allowed:
            continue
        if name in TABLE_OPTIONS | EXPORT_OPTIONS:
            fail(
                f"{flag}: an option for {'votes tables' if export else 'Panoptes exports'}, and VOTES is "
                f"{'a Panoptes export' if export else 'a votes table'}"
            )
        if name in PRIOR_OPTIONS:
            fail(f"{flag}: an option of --prior, which is not given")
        if name == "prior":
            fail(
                f"--prior: the {model} model does not take a per-subject prior; the models that do are "
                f"{', '.join(models_that('subject_prior'))}"
            )
        if joint is None and name in (JOINT_OPTIONS | IMAGE_OPTIONS | FEATURE_OPTIONS) - model_options:
            fail(f"{flag}: one of the options of the joint model, which needs --images or --features")
        what = f"the joint model ({joint})" if joint else f"the {model} model"
        uses = sorted(f for n, f in option_flags(ctx).items() if n in allowed - ALWAYS - TABLE_OPTIONS - EXPORT_OPTIONS)
        fail(f"{flag}: not an option of {what}, which takes {', '.join(uses) or 'no model options'}")


def fit(
    ctx: typer.Context,
    votes: Path = typer.Argument(..., help="Votes table (CSV/TSV/Parquet, one row per vote) or Panoptes export."),
    model: ModelName = typer.Option("ds", "--model", "-m", help="Model to fit."),
    out: Path = typer.Option(..., "--out", "-o", file_okay=False, help="Folder for the fit (created if needed)."),
    format: InputFormat = typer.Option("auto", "--format", help="auto: a Panoptes export is known by its columns."),
    subject_col: str = typer.Option("subject", help="Table: column with the subject id."),
    volunteer_col: str = typer.Option("volunteer", help="Table: column with the volunteer id."),
    question_col: str = typer.Option("question", help="Table: column with the question; absent: one question."),
    answer_col: str = typer.Option("answer", help="Table: column with the answer."),
    time_col: str = typer.Option("created_at", help="Table: column with the time of the vote; absent: file order."),
    duplicates: DuplicatePolicy = typer.Option(
        "first", help="Repeat votes (table) or repeat classifications (export) by one volunteer of one subject."
    ),
    workflows: Path | None = typer.Option(None, help="Export: workflow definitions (project CSV or API JSON)."),
    workflow_id: str | None = typer.Option(None, help="Export: the workflow to read."),
    tree: str = typer.Option("auto", help="Export: tree preset for Zoobot names (auto, none, or a preset)."),
    seen_before: str = typer.Option("drop", help="Export: drop or keep seen_before re-classifications."),
    anonymous: str = typer.Option("keep", help="Export: keep or drop not-logged-in volunteers."),
    strict: bool = typer.Option(False, "--strict", help="Export: any row that would be quarantined is an error."),
    max_iter: int | None = typer.Option(None, min=1, help="Dawid-Skene: most EM iterations \\[default: 100]."),
    tol: float | None = typer.Option(
        None, min=0.0, help="Dawid-Skene: relative change that stops EM \\[default: 1e-6]."
    ),
    pseudo_diagonal: float | None = typer.Option(
        None, min=0.0, help="Dawid-Skene: Dirichlet pseudo-count on the diagonal."
    ),
    pseudo_off_diagonal: float | None = typer.Option(None, min=0.0, help="Dawid-Skene: pseudo-count off the diagonal."),
    devices: int | None = typer.Option(
        None,
        min=1,
        help="Dawid-Skene, SVI/MAP of hds, learning, mace and mn, "
        "and the joint model's training: devices to split the subjects over "
        "\\[default: Dawid-Skene every device JAX sees, the others one; CPU "
        "devices: JAX_NUM_CPU_DEVICES=N].",
    ),
    inference: str = typer.Option(
        "svi", help=f"Bayesian models ({', '.join(models_that('bayesian'))}): svi, map or nuts."
    ),
    seed: int = typer.Option(0, help="Bayesian models: random seed (runs are reproducible for a seed)."),
    steps: int | None = typer.Option(
        None, min=1, help="Bayesian models: SVI/MAP optimisation steps \\[default: 2000]."
    ),
    draws: int | None = typer.Option(None, min=1, help="Bayesian models: posterior draws kept \\[default: 200]."),
    batch_size: int | None = typer.Option(None, min=1, help="Bayesian models: subjects per SVI step."),
    prior: Path | None = typer.Option(
        None,
        help="Per-subject answer priors from a classifier: annostat "
        "posteriors, a Zoobot prediction table or a wide table.",
    ),
    prior_weight: float = typer.Option(
        1.0,
        min=0.0,
        help="Prior: the largest weight of the classifier's evidence; the votes "
        "choose the weight up to it (below 1 tempers an over-confident "
        "classifier; 0 ignores it).",
    ),
    fixed_prior_weight: bool = typer.Option(
        False, "--fixed-prior-weight", help="Prior: use --prior-weight as it is instead of learning it."
    ),
    prior_id_col: str | None = typer.Option(
        None, help="Prior: the id column \\[default: subject, subject_id, id_str or iauname]."
    ),
    images: Path | None = typer.Option(
        None,
        help="Joint model: a folder of the subjects' images (FITS, PNG/JPEG, "
        "NPY named by subject id or by the export's subject_data), or a "
        "truth set; a CNN is fitted with the volunteer model (ds or hds).",
    ),
    features: Path | None = typer.Option(
        None,
        help="Joint model: a table of precomputed features per subject "
        "(Zoobot's, a VGG's); an MLP head is fitted with ds or hds.",
    ),
    features_id_col: str | None = typer.Option(None, help="Features: the id column \\[default: subject, ...]."),
    image_size: int = typer.Option(64, min=8, max=4096, help="Images: pixels a side the network sees (resized)."),
    image_fit: str = typer.Option("resize", help="Images: resize the whole image, or cutout its centre."),
    missing_images: str = typer.Option(
        "error", help="Images/features: error, or skip voted subjects without one (counted in fit.json)."
    ),
    method: str = typer.Option(
        "em", help="Joint model: em (cross-fitted alternation) or marginal (SGD on the marginal likelihood)."
    ),
    epochs: int | None = typer.Option(None, min=1, help="Joint model: epochs per EM round, or in all (marginal)."),
    rounds: int | None = typer.Option(None, min=1, help="Joint model, em: most rounds \\[default: 8]."),
    width: int | None = typer.Option(None, min=1, help="Joint model, images: the CNN's first width \\[default: 16]."),
    depth: int | None = typer.Option(None, min=1, help="Joint model, images: the CNN's stages \\[default: 3]."),
    hidden: int | None = typer.Option(
        None, min=1, help="Joint model, features: the MLP's hidden units \\[default: 128]."
    ),
    learning_rate: float | None = typer.Option(
        None, callback=positive, help="Joint model: the network's peak learning rate."
    ),
    resume: bool = typer.Option(
        False,
        "--resume",
        help="Joint model (em): go on from the last finished round of an interrupted fit into the same --out.",
    ),
    gold: Path | None = typer.Option(
        None,
        help="Gold answers (subject, question, answer; no question column for "
        "one question): those subjects' answers are fixed in the fit "
        "(a Panoptes export's gold_standard classifications are read as "
        "gold answers too).",
    ),
    experts: str | None = typer.Option(
        None,
        help="Expert volunteers: a table with a volunteer column, or ids "
        "separated by commas (hds: a population of their own; "
        "volunteers.parquet marks them).",
    ),
    coordinator: str | None = typer.Option(
        None,
        help="Many hosts: HOST:PORT of process 0; each process reads "
        "its share of the subjects (Dawid-Skene, votes tables).",
    ),
    num_processes: int | None = typer.Option(None, min=1, help="Many hosts: how many processes in all."),
    process_id: int | None = typer.Option(
        None, min=0, help="Many hosts: this process's number (0 writes the fit folder)."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or summary."),
) -> None:
    """Fit a model to votes and write subjects, posteriors, volunteers, confusion, votes and fit.json.

    With --images or --features, the volunteer model (ds or hds) is fitted jointly with a network on the subjects'
    inputs: every subject with an input is answered, voted or not, and the fit folder also holds network/ (an orbax
    checkpoint, for annostat predict) and training.parquet."""
    from annostat.data.io.load import detect_format, load_votes
    from annostat.data.priors import read_prior
    from annostat.fit import uses_experience, votes_ahead
    from annostat.infer import hosts

    use_compilation_cache()
    joint = images is not None or features is not None
    try:
        asked = hosts.requested(coordinator, num_processes, process_id)
    except ValueError as exc:
        fail(str(exc))
    if asked > 1:  # refused before joining: a process that fails alone would leave the others waiting
        if joint or prior is not None or model.value != "ds" or gold is not None or experts is not None:
            fail(
                "--num-processes: a fit over several processes takes --model ds on a votes table (no --images, "
                "--features, --prior, --gold or --experts yet)"
            )
        with input_errors():
            if format.value == "panoptes" or (format.value == "auto" and detect_format(votes) == "panoptes"):
                fail(
                    f"{votes}: a Panoptes export; a fit over several processes reads a votes table (CSV or "
                    "Parquet): fit it in one process, or give its fit's votes.parquet"
                )
    try:  # before anything else touches JAX: the processes' devices make one mesh
        processes = hosts.start(coordinator, num_processes, process_id)
    except (RuntimeError, OSError) as exc:  # a port process 0 cannot listen on, or JAX's own join failing
        reason = first_line(exc)
        fail(
            f"--coordinator {coordinator}: {reason if 'listen' in reason else 'the processes could not join: ' + reason}"
        )
    if processes > 1:
        quiet = quiet or hosts.index() != 0  # process 0 reports
    if joint:
        if images is not None and features is not None:
            fail("--images and --features: give one of them")
        if model.value not in ("ds", "hds"):
            fail(
                f"--{'images' if images is not None else 'features'}: the joint model takes --model ds or hds, "
                f"not {model.value}"
            )
        if prior is not None:
            fail("--prior: the joint model's network is the per-subject prior; give --prior or --images/--features")
        if (
            missing_images not in ("error", "skip")
            or image_fit not in ("resize", "cutout")
            or method not in ("em", "marginal")
        ):
            fail("--missing-images takes error or skip, --image-fit resize or cutout, --method em or marginal")
    given = {
        "max_iter": max_iter,
        "tol": tol,
        "pseudo_diagonal": pseudo_diagonal,
        "pseudo_off_diagonal": pseudo_off_diagonal,
        "devices": devices,
        "inference": inference,
        "seed": seed,
        "steps": steps,
        "draws": draws,
        "batch_size": batch_size,
    }
    options = {k: given[k] for k in model_spec(model.value).options if given[k] is not None}
    with input_errors():
        try:
            if joint:
                from annostat.models.joint import JointModel

                chosen = {
                    "method": method,
                    "seed": seed,
                    "batch_size": batch_size,
                    "epochs_per_round": epochs if method == "em" else None,
                    "epochs": epochs if method == "marginal" else None,
                    "rounds": rounds,
                    "width": width,
                    "depth": depth,
                    "hidden": hidden,
                    "learning_rate": learning_rate,
                    "pseudo_diagonal": pseudo_diagonal,
                    "pseudo_off_diagonal": pseudo_off_diagonal,
                    "devices": devices,
                }
                joint_model = JointModel(
                    model.value, missing=missing_images, **{k: v for k, v in chosen.items() if v is not None}
                )
            else:
                estimator = get_model(model.value, **options)
        except ValueError as exc:
            fail(str(exc))
        start = time.perf_counter()
        is_export = format.value == "panoptes" or (format.value == "auto" and detect_format(votes) == "panoptes")
        _refuse_unused(
            ctx,
            model.value,
            None if not joint else "images" if images is not None else "features",
            is_export,
            prior is not None,
        )
        if is_export:
            reader = {
                "workflows": workflows,
                "workflow_id": workflow_id,
                "tree": None if tree == "none" else tree,
                "seen_before": seen_before,
                "repeats": duplicates.value,
                "anonymous": anonymous,
                "strict": strict,
            }
            table, export = load_votes(votes, "panoptes", **reader)
        else:
            table, export = load_votes(
                votes,
                "table",
                subject=subject_col,
                volunteer=volunteer_col,
                question=question_col,
                answer=answer_col,
                time=time_col,
                duplicates=duplicates.value,
                **({"share": (hosts.index(), processes)} if processes > 1 else {}),
            )
            table = hosts.agree(table)
        gold_summary = _gold_and_experts(table, gold, experts)
        subject_prior = None
        if prior is not None:
            subject_prior = read_prior(
                prior, table, id_column=prior_id_col, weight=prior_weight, learn_weight=not fixed_prior_weight
            )
        with ExitStack() as written:
            if joint:
                inputs = _joint_inputs(
                    table, images, features, features_id_col, image_size, image_fit, missing_images, quiet
                )
                rounds_dir = out / "network" / "progress"
                if rounds_dir.exists() and not resume:
                    shutil.rmtree(rounds_dir)
                with training_progress(not quiet) as progress:
                    result = joint_model.fit(table, inputs, progress=progress, checkpoint=rounds_dir)
                ahead = None
            else:
                # one process: the votes' file is written while the model fits (the votes are what was read); not for
                # a model of learning, whose fit and file would both build the votes' experience columns at once
                early = processes == 1 and not uses_experience(model.value)
                ahead = written.enter_context(votes_ahead(table, out, model.value)) if early else None
                with fit_progress(not quiet) as progress:
                    result = estimator.fit(table, progress=progress, prior=subject_prior)
                result = hosts.gather(result)  # several processes: process 0 holds the whole fit, the others None
                if result is None:
                    return
                table = result.votes
            result.seconds = time.perf_counter() - start
            result.save(out, ahead)
        if joint:
            shutil.rmtree(out / "network" / "progress", ignore_errors=True)  # finished: nothing to resume
        if export is not None and export.report.quarantine is not None:
            export.report.quarantine.write_csv(out / "quarantine.csv")
    if not quiet:
        console.print(f"{votes}: {(export.report if export else table.report).summary()}", highlight=False)
        if export is not None and export.report.rows_quarantined:
            console.print(f"quarantined rows and reasons: {out / 'quarantine.csv'}", highlight=False)
        for line in export.report.skipped_tasks() if export is not None else []:
            console.print(line, highlight=False)
        if gold_summary:
            console.print(gold_summary, highlight=False)
        if subject_prior is not None:
            p = result.prior_summary
            assert p is not None  # a fit with a prior summarises it
            weights = [q["prior_weight"] for q in result.summary()["questions"] if "prior_weight" in q]
            span = (
                f"{min(weights):.2f}" + (f"-{max(weights):.2f}" if max(weights) - min(weights) >= 0.005 else "")
                if weights
                else ""
            )
            used = (f"weight {span}" if weights else "no evidence") + (
                f" (learned, at most {p['weight']:g})" if p["weight_learned"] else " (fixed)"
            )
            console.print(
                f"prior ({p['format']}, {used}): {p['subjects']:,} subjects, "
                f"{p['subjects_with_votes']:,} with votes, {p['subjects_without_votes']:,} answered without "
                f"votes"
                + (f", {p['ids_not_matched']:,} ids matching no subject left out" if p["ids_not_matched"] else ""),
                highlight=False,
            )
        if joint:
            _report_joint(result)
        else:
            console.print(result.convergence.to_string(index=False), highlight=False)
        title = f"{model_spec(model.value).title} with a network" if joint else estimator.title
        console.print(f"{title} fit written to {out}/ in {result.seconds:.2f} s", highlight=False)


def _gold_and_experts(table, gold, experts) -> str:
    """Attach ``--gold`` and ``--experts`` to the votes; one line saying what was used (empty when neither)."""
    from annostat.data.gold import Gold

    if gold is not None:
        given = Gold.read(gold)
        table.attach_gold(given if table.gold is None else table.gold.merge(given))
    if experts is not None:
        attach_experts([table], experts)
    parts = []
    if table.gold_summary is not None:
        g = table.gold_summary
        unused = ", ".join(f"{n:,} {why}" for why, n in g["not_used"].items())
        parts.append(f"gold answers: {g['used']:,} of {g['rows']:,} used" + (f" ({unused})" if unused else ""))
    if table.experts is not None:
        parts.append(f"experts: {len(table.experts):,} volunteers")
    return "; ".join(parts)


def attach_experts(tables: Sequence[Votes], experts: str) -> None:
    """Mark ``--experts`` as experts in each votes table, beside the experts it knows already (an export's expert
    column); none of them with votes in any table is an error."""
    from annostat.data.gold import read_experts

    wanted = read_experts(experts).to_list()
    if sum(t.attach_experts((t.experts.to_list() if t.experts is not None else []) + wanted) for t in tables) == 0:
        fail(f"--experts: none of {', '.join(map(str, wanted[:5]))} has votes here")


def _joint_inputs(table, images, features, features_id_col, image_size, image_fit, missing, quiet):
    """The network's inputs for a votes table: its subjects' images (and the folder's other images), or a features
    table's rows."""
    from annostat.vision.inputs import feature_inputs, image_inputs

    if features is not None:
        return feature_inputs(features, features_id_col)
    with fit_progress(not quiet) as progress:
        step = (lambda done, total: progress("decoding images", done, total)) if progress else None
        return image_inputs(
            images,
            table.subjects.to_list(),
            image_size,
            subject_table=table.subject_table,
            fit=image_fit,
            missing=missing,
            progress=step,
        )


def _report_joint(result) -> None:
    info = result.summary()["joint"]
    inputs = info["inputs"]
    held = info["heldout_log_likelihood_per_vote"]
    console.print(
        f"network ({info['network']['kind']}) on {inputs['subjects']:,} {inputs['kind']}: "
        f"{info['subjects_without_votes']:,} subjects answered without votes"
        + (f", {inputs['skipped']:,} skipped without an input" if inputs["skipped"] else "")
        + (
            f"; held-out vote log-likelihood {held:.4f}/vote at {'round' if result.joint_settings.method == 'em' else 'epoch'} {info['best']}"
            if held is not None
            else ""
        ),
        highlight=False,
    )


def compare(
    ctx: typer.Context,
    votes: Path = typer.Argument(..., help="Votes table (CSV/TSV/Parquet) or Panoptes export."),
    models: str = typer.Option("ds,hds", help="Comma-separated models to compare."),
    holdout: float = typer.Option(0.1, callback=share, help="Share of the votes held out for scoring."),
    seed: int = typer.Option(0, help="Seed of the split and of the Bayesian fits."),
    inference: str = typer.Option("map", help="Bayesian models: svi, map or nuts (map: fast)."),
    steps: int = typer.Option(1000, min=1, help="Bayesian models: SVI/MAP steps."),
    workflows: Path | None = typer.Option(None, help="Export: workflow definitions."),
    workflow_id: str | None = typer.Option(None, help="Export: the workflow to read."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Write the table as CSV here too."),
) -> None:
    """Fit several models to the same votes and rank them by held-out vote log-likelihood.

    With --inference svi or nuts the Bayesian models also get PSIS-LOO and WAIC (elpd, summed over questions; subjects
    are the unit left out), the share of subjects with Pareto k > 0.7, and ppc_extreme: the share of volunteers (with
    10+ votes) whose agreement with the consensus falls outside the model's 5-95% predictive range."""
    from annostat.data.io.load import detect_format, load_votes
    from annostat.evaluation.checks import compare as compare_models

    use_compilation_cache()
    names = split_list(models, "--models")
    output_file(out)
    bayesian = [m for m in names if m in REGISTRY and model_spec(m).can("bayesian")]
    if not bayesian and (given := [f for n, f in given_on_command_line(ctx).items() if n in ("inference", "steps")]):
        fail(f"{', '.join(given)}: options of the Bayesian models, and none is in --models {models}")
    with input_errors():
        unknown = [m for m in names if m not in REGISTRY]
        if unknown or not names:
            fail(f"unknown model(s) {', '.join(unknown) or '(none given)'}; the models are {', '.join(REGISTRY)}")
        options = {}
        for m in names:
            spec = model_spec(m)
            if spec.can("bayesian"):
                chosen = inference if (inference != "map" or spec.can("map")) else "svi"
                options[m] = {"inference": chosen, "steps": steps, "seed": seed}
        try:
            if detect_format(votes) == "panoptes":
                table, _ = load_votes(votes, "panoptes", workflows=workflows, workflow_id=workflow_id)
            else:
                table, _ = load_votes(votes, "table")
            result = compare_models(table, names, holdout=holdout, seed=seed, options=options)
        except ValueError as exc:
            fail(str(exc))
    console.print(result.to_string(index=False), highlight=False)
    if out is not None:
        result.to_csv(out, index=False)


def predict(
    fit_dir: Path = typer.Argument(..., help="A joint model's fit folder (annostat fit --images or --features)."),
    out: Path = typer.Option(..., "--out", "-o", file_okay=False, help="Folder for the answers (created if needed)."),
    images: Path | None = typer.Option(None, help="A folder of the new subjects' images (or a truth set)."),
    features: Path | None = typer.Option(None, help="A features table of the new subjects."),
    features_id_col: str | None = typer.Option(None, help="Features: the id column."),
    missing_images: str = typer.Option("error", help="error, or skip unreadable images (counted)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No summary."),
) -> None:
    """Answer new subjects with a joint fit's network: posteriors.parquet and subjects.parquet (the fit's formats,
    n_votes 0) and predict.json."""
    import json

    import polars as pl

    from annostat.files import atomic_write
    from annostat.fit import Fit
    from annostat.vision.checkpoint import load_networks, predict_table
    from annostat.vision.inputs import network_inputs

    if (images is None) == (features is None):
        fail("predict: give --images DIR or --features TABLE")
    if missing_images not in ("error", "skip"):
        fail("--missing-images takes error or skip")
    with input_errors():
        fit = Fit.load(fit_dir)
        config, states = load_networks(Path(fit_dir) / "network")
        kind = "features" if config["kind"] == "mlp" else "images"
        if (features is not None) != (kind == "features"):
            fail(f"{fit_dir}: the network reads {kind}; give --{kind}")
        inputs = network_inputs(
            config, images=images, features=features, id_col=features_id_col, missing=missing_images
        )
        if images is not None and inputs.shape[-1] != config["in_channels"]:
            fail(
                f"{images}: images of {inputs.shape[-1]} channel(s), but the network was trained on "
                f"{config['in_channels']}"
            )
        questions = [(q["question"], q["answers"]) for q in fit.summary()["questions"]]
        posteriors = predict_table(config, states, inputs, questions)
        answers = (
            posteriors.sort("p", descending=True, maintain_order=True)
            .group_by(["subject", "question"], maintain_order=True)
            .first()
            .with_columns(pl.lit(0, pl.Int64).alias("n_votes"))
            .sort(["question", "subject"], maintain_order=True)
        )
        out.mkdir(parents=True, exist_ok=True)
        atomic_write(out / "posteriors.parquet", posteriors.write_parquet)
        atomic_write(out / "subjects.parquet", answers.write_parquet)
        info = {
            "fit": str(fit_dir),
            "model": fit.model,
            "inputs": inputs.summary(),
            "subjects": len(inputs),
            "networks": len(states),
        }
        text = json.dumps(info, indent=2)
        atomic_write(out / "predict.json", lambda tmp: Path(tmp).write_text(text + "\n", encoding="utf-8"))
    if not quiet:
        console.print(
            f"{len(inputs):,} subjects answered by {fit_dir}/network ({len(states)} network(s))"
            + (f", {len(inputs.skipped):,} skipped" if inputs.skipped else "")
            + f": {out}/",
            highlight=False,
        )
