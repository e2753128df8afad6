"""What every command shares: the console, one-line errors with exit status 2, option parsing, progress bars."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from typer.core import TyperCommand

from annostat.errors import InputError
from annostat.models import REGISTRY

if TYPE_CHECKING:
    from annostat.truth.truthset import TruthSet

console = Console(stderr=True)
#: --model's choices: the registry's names (a model registered before the CLI is built is offered too)
ModelName = Enum("ModelName", {name: name for name in REGISTRY}, type=str)  # type: ignore[misc]


class DuplicatePolicy(str, Enum):
    first = "first"
    last = "last"
    all = "all"


class InputFormat(str, Enum):
    auto = "auto"
    table = "table"
    panoptes = "panoptes"


#: click's UsageError, the base of every command-line usage error (typer ships its own copy of click)
UsageError: Any = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")


class OneLineErrors(TyperCommand):
    """A command whose usage errors (an option out of range, an unknown option, a missing argument) are one line and
    exit status 2, like every other input error, instead of click's usage box."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except UsageError as exc:
            fail(f"{exc.format_message()} (see: annostat {ctx.command_path.partition(' ')[2]} --help)")


def fail(message: str) -> NoReturn:
    console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code=2)


def positive(value: float | None) -> float | None:
    """A typer callback: the option must be above 0."""
    if value is not None and not value > 0:
        raise typer.BadParameter(f"{value} is not above 0")
    return value


def share(value: float | None) -> float | None:
    """A typer callback: the option must lie strictly between 0 and 1."""
    if value is not None and not 0 < value < 1:
        raise typer.BadParameter(f"{value} is not between 0 and 1")
    return value


def option_flags(ctx: typer.Context) -> dict[str, str]:
    """The command's parameters: name -> its flag as written in --help."""
    return {p.name: p.opts[0] for p in ctx.command.params if p.opts}


def given_on_command_line(ctx: typer.Context) -> dict[str, str]:
    """The options the user gave (not left at their defaults), as :func:`option_flags`."""

    def given(name: str) -> bool:
        source = ctx.get_parameter_source(name)
        return source is not None and source.name in ("COMMANDLINE", "ENVIRONMENT")

    return {name: flag for name, flag in option_flags(ctx).items() if given(name)}


def output_file(path: Path | None, option: str = "--out") -> None:
    """Refuse, before any work, an output file that cannot be written: a folder, or in a folder that is missing."""
    if path is None:
        return
    if path.is_dir():
        fail(f"{option} {path}: is a folder; give a file name (e.g. {path / 'table.csv'})")
    if not path.parent.is_dir():
        fail(f"{option} {path}: the folder {path.parent} does not exist")


def split_list(text: str, option: str, kind: type = str, what: str = "values") -> list:
    """A comma-separated option as a list of ``kind`` (blanks skipped); a one-line error naming the option if not."""
    try:
        return [kind(item.strip()) for item in text.split(",") if item.strip()]
    except ValueError:
        fail(f"{option}: {text!r} is not a comma-separated list of {what}")


def report_truth_set(truth_set: TruthSet, out: Path, made: str) -> None:
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
def fit_progress(enabled: bool) -> Iterator[Callable[[Any, int, int], None] | None]:
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


@contextmanager
def training_progress(enabled: bool) -> Iterator[Callable[[int, int, dict[str, Any]], None] | None]:
    """A rich progress bar per training stage (epochs), showing the loss and the held-out vote log-likelihood;
    yields the callback the joint model takes (or None)."""
    if not enabled:
        yield None
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as bar:
        tasks: dict = {}

        def update(epoch: int, total: int, record: dict) -> None:
            stage = record.get("stage") or "training"
            if stage not in tasks:
                tasks[stage] = bar.add_task(f"{stage}", total=total, info="")
            info = []
            if record.get("loss") is not None:
                info.append(f"loss {record['loss']:.4f}")
            if record.get("heldout_log_likelihood") is not None:
                info.append(f"held-out {record['heldout_log_likelihood']:.4f}/vote")
            bar.update(tasks[stage], completed=epoch, total=total, info=", ".join(info))

        yield update
