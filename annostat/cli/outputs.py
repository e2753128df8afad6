"""``annostat catalogue`` and ``annostat plot``: tables and figures of a fit folder."""

from __future__ import annotations

from pathlib import Path

import typer

from annostat.cli.common import console, input_errors


def plot(
    fit_dir: Path = typer.Argument(..., help="A fit folder written by annostat fit."),
    out: Path | None = typer.Option(
        None, "--out", "-o", file_okay=False, help="Folder for the figures \\[default: FIT_DIR/plots]."
    ),
    truth: Path | None = typer.Option(
        None, help="CSV of true answers (subject, question, answer): adds a reliability diagram."
    ),
    volunteers: int = typer.Option(3, min=0, help="Confusion heatmaps for this many of the most active volunteers."),
) -> None:
    """Write figures of a fit: confusion heatmaps, skill against votes, learning curves, reliability diagram."""
    from annostat.evaluation.plots import plot_fit

    with input_errors():
        written = plot_fit(fit_dir, out, truth=truth, n_volunteers=volunteers)
    for path in written:
        console.print(str(path), highlight=False)


def catalogue(
    fit_dir: Path = typer.Argument(..., help="A fit folder written by annostat fit."),
    out: Path | None = typer.Option(
        None, "--out", "-o", file_okay=False, help="Folder for the catalogue \\[default: FIT_DIR]."
    ),
) -> None:
    """Write a Zoobot-compatible catalogue: vote counts, totals, fractions and posteriors per subject."""
    from annostat.catalogue import write_catalogue

    with input_errors():
        parquet, csv = write_catalogue(fit_dir, out)
    console.print(f"catalogue written to {parquet} and {csv}", highlight=False)
