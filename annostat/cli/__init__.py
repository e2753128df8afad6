"""The ``annostat`` command: a thin typer layer over the Python API, one module per command group.

Bad input (a missing file, an unknown column, an empty or unreadable table) prints one line naming the file, column
or row and exits with status 2, without a traceback.
"""

from __future__ import annotations

import typer

from annostat.cli import data, evaluation, fit, guidance, live, outputs, truth
from annostat.cli.common import OneLineErrors

app = typer.Typer(
    add_completion=False,
    pretty_exceptions_enable=False,
    no_args_is_help=True,
    help="Probabilistic models of citizen-science volunteers.",
)
for command in (
    fit.fit,
    fit.compare,
    fit.predict,
    outputs.plot,
    outputs.catalogue,
    data.inspect,
    evaluation.demo,
    truth.simulate,
    evaluation.benchmark,
    guidance.advise,
    live.retire,
    live.select,
    live.update,
):
    app.command(cls=OneLineErrors)(command)
app.add_typer(truth.truth_app, name="truth")


def _print_version(value: bool) -> None:
    if value:
        from annostat import __version__

        typer.echo(f"annostat {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print annostat's version and exit."
    ),
) -> None:
    """Probabilistic models of citizen-science volunteers."""


def main() -> None:  # pragma: no cover - console entry point
    app(prog_name="annostat")


if __name__ == "__main__":  # pragma: no cover
    main()
