"""``annostat inspect``: what an export holds before fitting it."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from annostat.cli.common import input_errors


def inspect(
    path: Path = typer.Argument(..., help="A Panoptes classification export or a votes table."),
    workflows: Path | None = typer.Option(None, help="Workflow definitions (project CSV or API JSON)."),
    workflow_id: str | None = typer.Option(None, help="The workflow a fit would read."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
) -> None:
    """Show what an export holds before fitting it."""
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
