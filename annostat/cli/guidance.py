"""``annostat advise``: personalised advice and cards for every volunteer of a fit."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from annostat.cli.common import fail, input_errors


def advise(
    fit_dir: Path = typer.Argument(..., help="A fit folder (annostat fit --out)."),
    out: Path = typer.Option(
        ..., "--out", "-o", file_okay=False, help="Folder for the advice, tables and volunteer cards."
    ),
    keep_names: bool = typer.Option(False, "--keep-names", help="Show volunteer names instead of pseudonyms."),
    salt: str | None = typer.Option(None, help="Salt of the pseudonyms (default: random, kept in private/)."),
    min_votes: int = typer.Option(10, min=1, help="Votes on a question before advice is given."),
    truth: Path | None = typer.Option(None, help="A truth set: thumbnails and features for the examples."),
    images: Path | None = typer.Option(None, help="A folder of subject images (<subject>.png/.jpg)."),
    examples: int = typer.Option(4, min=0, help="Worked examples per named confusion."),
    max_pages: int = typer.Option(500, min=0, help="Volunteer pages for the most active volunteers."),
) -> None:
    """Personalised advice for each volunteer: what they do well, what they confuse, examples that would help."""
    from annostat.guidance import write_advice

    if images is not None and not images.is_dir():
        fail(f"{images}: not a folder")
    with input_errors():
        result = write_advice(
            fit_dir,
            out,
            keep_names=keep_names,
            salt=salt,
            min_votes=min_votes,
            truth=truth,
            images=images,
            examples=examples,
            max_pages=max_pages,
        )
    s = result["summary"]
    table = Table(title=f"Advice for {s['volunteers']:,} volunteers ({s['model']} fit)")
    table.add_column("recommendation")
    table.add_column("volunteer x question", justify="right")
    for rec, count in sorted(s["recommendations"].items(), key=lambda kv: -kv[1]):
        table.add_row(rec, f"{count:,}")
    Console().print(table)
    Console().print(
        f"{s['named_confusions']:,} named confusions, {s['examples']:,} worked examples; advice, "
        f"tables and {s['pages']:,} volunteer pages in {out} (open {out / 'index.html'})"
    )
