"""The ``annostat`` command: a thin typer layer over the Python API, one module per command group.

Bad input (a missing file, an unknown column, an empty or unreadable table) prints one line naming the file, column
or row and exits with status 2, without a traceback.
"""

from __future__ import annotations

import sys

import typer

from annostat.cli import data, evaluation, fit, guidance, outputs, truth

app = typer.Typer(
    add_completion=False,
    pretty_exceptions_enable=False,
    no_args_is_help=True,
    help="Probabilistic models of citizen-science volunteers.",
)
app.command()(fit.fit)
app.command()(fit.compare)
app.command()(fit.predict)
app.command()(outputs.plot)
app.command()(outputs.catalogue)
app.command()(data.inspect)
app.command()(evaluation.demo)
app.add_typer(truth.truth_app, name="truth")
app.command()(truth.simulate)
app.command()(evaluation.benchmark)
app.command()(guidance.advise)


def main() -> None:  # pragma: no cover - console entry point
    app(prog_name="annostat")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
