"""``annostat retire``: the subjects a fit is sure of, for a Zooniverse project to retire."""

from __future__ import annotations

from pathlib import Path

import typer

from annostat.cli.common import console, input_errors, output_file


def retire(
    fit_dir: Path = typer.Argument(..., help="A fit folder written by annostat fit."),
    out: Path = typer.Option(
        ..., "--out", "-o", dir_okay=False, help="CSV of the subjects to retire (subject_id, reason, ...)."
    ),
    threshold: float = typer.Option(
        0.9,
        help="Retire when the most probable answer of every question on the "
        "subject's path has at least this probability.",
    ),
    minimum: int = typer.Option(3, "--min", min=0, help="Classifications a subject needs before consensus retires it."),
    maximum: int | None = typer.Option(
        40,
        "--max",
        min=1,
        help="Retire at this many classifications whatever the posteriors (Galaxy Zoo's fixed rule).",
    ),
    tree: str = typer.Option(
        "auto",
        help="The decision tree whose path is judged: a preset, auto (the export's) or "
        "none (every question the fit answers).",
    ),
    per_question: bool = typer.Option(False, "--per-question", help="Judge each (subject, question) alone."),
) -> None:
    """Write the subjects to retire with their reason (consensus or classification_count), as Caesar's
    retire_subject takes them: SWAP-style thresholds on the fit's posteriors, with a minimum and a maximum number of
    classifications."""
    from annostat.fit import Fit
    from annostat.live.retire import retire as retire_subjects

    output_file(out)
    with input_errors():
        fit = Fit.load(fit_dir)
        try:
            retired = retire_subjects(
                fit, threshold=threshold, minimum=minimum, maximum=maximum, tree=tree, per_question=per_question
            )
        except KeyError as exc:
            from annostat.errors import InputError

            raise InputError(f"--tree {tree}: {exc.args[0]}") from exc
        retired.write_csv(out)
    counts = retired["reason"].value_counts().sort("reason")
    what = ", ".join(f"{n:,} {r}" for r, n in counts.iter_rows()) or "none"
    unit = "subject-questions" if per_question else "subjects"
    console.print(f"{len(retired):,} {unit} to retire ({what}) written to {out}", highlight=False)


def select(
    fit_dir: Path = typer.Argument(..., help="A fit folder written by annostat fit."),
    n: int = typer.Option(..., "--n", min=1, help="How many subjects to select."),
    out: Path = typer.Option(..., "--out", "-o", dir_okay=False, help="CSV: subject, score[, volunteer]."),
    volunteers: str | None = typer.Option(
        None,
        help="Comma-separated volunteers to route the subjects to (each "
        "to the one whose answer tells most); default: the typical "
        "volunteer.",
    ),
    diverse: bool = typer.Option(
        False, "--diverse", help="Take the subjects in turn from each most probable answer of the first question."
    ),
    tree: str = typer.Option("auto", help="The decision tree (a preset, auto or none)."),
    threshold: float = typer.Option(0.9, help="Retirement: subjects retired by these rules are left out."),
    minimum: int = typer.Option(3, "--min", min=0, help="Retirement: classifications before consensus."),
    maximum: int | None = typer.Option(40, "--max", min=1, help="Retirement: classifications at most."),
) -> None:
    """Rank the subjects not retired by the information one more classification gives about their true answers
    (under the fitted volunteer model), and write the best N."""
    from annostat.cli.common import split_list
    from annostat.fit import Fit
    from annostat.live.select import select as select_subjects

    output_file(out)
    chosen = split_list(volunteers, "--volunteers", what="volunteers") if volunteers is not None else None
    with input_errors():
        fit = Fit.load(fit_dir)
        try:
            table = select_subjects(
                fit,
                n,
                volunteers=chosen,
                tree=tree,
                threshold=threshold,
                minimum=minimum,
                maximum=maximum,
                diverse=diverse,
            )
        except KeyError as exc:
            from annostat.errors import InputError

            raise InputError(f"--tree {tree}: {exc.args[0]}") from exc
        table.write_csv(out)
    console.print(
        f"{len(table):,} subjects selected (scores {table['score'].to_numpy().min():.3f}-"
        f"{table['score'].to_numpy().max():.3f} "
        f"nats) written to {out}"
        if len(table)
        else f"no subject left to select; {out} is empty",
        highlight=False,
    )


def update(
    fit_dir: Path = typer.Argument(..., help="The last fit's folder (annostat fit or annostat update)."),
    new_votes: Path = typer.Argument(
        ..., help="The new classifications: a votes table (CSV/TSV/Parquet) or a Panoptes export of them."
    ),
    out: Path = typer.Option(..., "--out", "-o", file_okay=False, help="Folder for the updated fit (not FIT_DIR)."),
    subject_col: str = typer.Option("subject", help="Table: column with the subject id."),
    volunteer_col: str = typer.Option("volunteer", help="Table: column with the volunteer id."),
    question_col: str = typer.Option("question", help="Table: column with the question; absent: one question."),
    answer_col: str = typer.Option("answer", help="Table: column with the answer."),
    time_col: str = typer.Option("created_at", help="Table: column with the time of the vote; absent: file order."),
    workflows: Path | None = typer.Option(None, help="Export: workflow definitions (project CSV or API JSON)."),
    workflow_id: str | None = typer.Option(None, help="Export: the workflow to read \\[default: the last fit's]."),
    gold: Path | None = typer.Option(
        None, help="More gold answers (subject, question, answer), added to the last fit's."
    ),
    experts: str | None = typer.Option(None, help="More expert volunteers (a table or ids separated by commas)."),
    tol: float = typer.Option(1e-4, min=0.0, help="Dawid-Skene: stop when no updated posterior moves by more."),
    warm_steps: float = typer.Option(
        0.25,
        min=0.0,
        max=1.0,
        help="Bayesian models (SVI, MAP): the share of the fit's steps run from the last fit's posterior.",
    ),
    max_sweeps: int = typer.Option(100, min=1, help="Dawid-Skene: sweeps over the updated subjects at most."),
    spread: float = typer.Option(
        0.002,
        min=0.0,
        help="Dawid-Skene: also sweep the subjects of every volunteer whose confusion moves by more than this.",
    ),
    images: Path | None = typer.Option(None, help="A joint fit: the subjects' images (its network is fine-tuned)."),
    features: Path | None = typer.Option(None, help="A joint fit: the subjects' features table."),
    features_id_col: str | None = typer.Option(None, help="Features: the id column."),
    rounds: int = typer.Option(2, min=1, help="A joint fit: EM rounds of fine-tuning."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or summary."),
) -> None:
    """Fit the last fit's votes and the new ones together, warm-started from the last fit (Dawid-Skene: incremental
    EM over the subjects the new votes touch; the Bayesian models: SVI or MAP from the last fit's posterior, a share
    of the steps; majority vote and NUTS fitted again), and write the usual fit folder."""
    import time

    from annostat.cli.common import fail, fit_progress
    from annostat.data.io.load import detect_format, load_votes
    from annostat.fit import Fit
    from annostat.infer.cache import use_compilation_cache
    from annostat.live.update import update as update_fit

    use_compilation_cache()
    if out.resolve() == fit_dir.resolve():
        fail(f"--out {out}: the last fit's own folder; give a new folder (the last fit is read from FIT_DIR)")
    start = time.perf_counter()
    with input_errors():
        fit = Fit.load(fit_dir)
        export_info = fit.summary().get("export") or {}
        if detect_format(new_votes) == "panoptes":
            chosen = workflow_id if workflow_id is not None else export_info.get("workflow_id")
            table, export = load_votes(
                new_votes, "panoptes", workflows=workflows, workflow_id=chosen, tree=export_info.get("tree")
            )
        else:
            table, export = load_votes(
                new_votes,
                "table",
                subject=subject_col,
                volunteer=volunteer_col,
                question=question_col,
                answer=answer_col,
                time=time_col,
                duplicates=(fit.summary().get("rows") or {}).get("duplicate_policy", "first"),
            )
        from annostat.cli.fit import _gold_and_experts, attach_experts

        if experts is not None:  # given experts among the last fit's volunteers and the new ones
            attach_experts([fit.votes, table], experts)
        _gold_and_experts(table, gold, None)
        joint = "joint" in fit.summary()
        if (images is not None or features is not None) and not joint:
            fail(f"--{'images' if images is not None else 'features'}: {fit_dir} is not a joint fit (no network)")
        inputs = _joint_update_inputs(fit_dir, images, features, features_id_col) if joint else None
        from annostat.cli.common import training_progress

        with (training_progress if joint else fit_progress)(not quiet) as progress:
            result = update_fit(
                fit,
                table,
                tol=tol,
                max_sweeps=max_sweeps,
                spread=spread,
                warm_steps=warm_steps,
                inputs=inputs,
                joint_rounds=rounds,
                progress=progress,
            )
        result.seconds = time.perf_counter() - start
        result.save(out)
        if export is not None and export.report.quarantine is not None:
            export.report.quarantine.write_csv(out / "quarantine.csv")
    if not quiet:
        info = result.update_summary
        assert info is not None  # an update says how it was made
        console.print(f"{new_votes}: {(export.report if export else table.report).summary()}", highlight=False)
        console.print(
            f"{info['previous_votes']:,} votes of the last fit + {info['new_votes_kept']:,} new "
            f"({info['new_subjects']:,} new subjects, {info['new_volunteers']:,} new volunteers); "
            f"{result.votes.report.summary()}",
            highlight=False,
        )
        how = info["method"] + (
            f" ({max(info['sweeps'].values(), default=0)} sweeps at most)" if "sweeps" in info else ""
        )
        console.print(
            f"{result.model} fit updated by {how}, written to {out}/ in {result.seconds:.2f} s", highlight=False
        )


def _joint_update_inputs(fit_dir: Path, images, features, features_id_col):
    """The inputs a joint fit's network reads, prepared as it was trained on them."""
    from annostat.cli.common import fail
    from annostat.models.joint import read_config
    from annostat.vision.inputs import network_inputs

    if (images is None) == (features is None):
        fail(f"{fit_dir}: a joint fit; give its --images or --features (the fit folder keeps the network, not them)")
    return network_inputs(
        read_config(Path(fit_dir)), images=images, features=features, id_col=features_id_col, missing="skip"
    )
