"""``annostat retire``: the subjects a fit is sure of, for a Zooniverse project to retire."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from annostat.cli.common import console, input_errors, output_file


def retire(
    fit_dir: Path = typer.Argument(..., help="A fit folder written by annostat fit."),
    out: Path = typer.Option(..., "--out", "-o", dir_okay=False, help="CSV of the subjects to retire (subject_id, "
                                                                      "reason, ...)."),
    threshold: float = typer.Option(0.9, help="Retire when the most probable answer of every question on the "
                                              "subject's path has at least this probability."),
    minimum: int = typer.Option(3, "--min", min=0, help="Classifications a subject needs before consensus retires it."),
    maximum: Optional[int] = typer.Option(40, "--max", min=1, help="Retire at this many classifications whatever "
                                                                   "the posteriors (Galaxy Zoo's fixed rule)."),
    tree: str = typer.Option("auto", help="The decision tree whose path is judged: a preset, auto (the export's) or "
                                          "none (every question the fit answers)."),
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
            retired = retire_subjects(fit, threshold=threshold, minimum=minimum, maximum=maximum, tree=tree,
                                      per_question=per_question)
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
    volunteers: Optional[str] = typer.Option(None, help="Comma-separated volunteers to route the subjects to (each "
                                                        "to the one whose answer tells most); default: the typical "
                                                        "volunteer."),
    diverse: bool = typer.Option(False, "--diverse", help="Take the subjects in turn from each most probable answer "
                                                          "of the first question."),
    tree: str = typer.Option("auto", help="The decision tree (a preset, auto or none)."),
    threshold: float = typer.Option(0.9, help="Retirement: subjects retired by these rules are left out."),
    minimum: int = typer.Option(3, "--min", min=0, help="Retirement: classifications before consensus."),
    maximum: Optional[int] = typer.Option(40, "--max", min=1, help="Retirement: classifications at most."),
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
            table = select_subjects(fit, n, volunteers=chosen, tree=tree, threshold=threshold, minimum=minimum,
                                    maximum=maximum, diverse=diverse)
        except KeyError as exc:
            from annostat.errors import InputError

            raise InputError(f"--tree {tree}: {exc.args[0]}") from exc
        table.write_csv(out)
    console.print(f"{len(table):,} subjects selected (scores {table['score'].min():.3f}-{table['score'].max():.3f} "
                  f"nats) written to {out}" if len(table) else f"no subject left to select; {out} is empty",
                  highlight=False)
