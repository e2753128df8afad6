"""``annostat benchmark`` and ``annostat demo``: pipelines scored against simulated truth."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table

from annostat.cli.common import console, fail, given_on_command_line, input_errors, split_list
from annostat.infer.cache import use_compilation_cache

if TYPE_CHECKING:
    from annostat.evaluation.demo import DemoResult
    from annostat.evaluation.harness import BenchmarkResult
    from annostat.evaluation.loop import LoopResult


def print_scores(result: BenchmarkResult, title: str) -> None:
    """The benchmark's scores, one row per pipeline and question, as a rich table on stdout."""
    table = Table(title=title)
    columns = (
        ("question", "question", "{}"),
        ("pipeline", "pipeline", "{}"),
        ("accuracy", "acc.", "{:.3f}"),
        ("balanced_accuracy", "bal. acc.", "{:.3f}"),
        ("ece", "ECE", "{:.3f}"),
        ("brier", "Brier", "{:.3f}"),
        ("volunteer_mae", "vol. MAE", "{:.3f}"),
    )
    for _, header, _ in columns:
        table.add_column(
            header,
            justify="left" if header in ("question", "pipeline") else "right",
            overflow="fold",
            min_width=18 if header == "question" else None,
        )
    for row in result.scores.sort_values(["question", "pipeline"]).to_dict("records"):
        table.add_row(
            *[
                "" if row.get(key) is None or row.get(key) != row.get(key) else fmt.format(row[key])
                for key, _, fmt in columns
            ]
        )
    Console().print(table)


def print_loop(loop: LoopResult) -> None:
    """The live loop's figures as a rich table."""
    m = loop.setup["maximum"]
    table = Table(title=f"The live loop: classifications to reach the accuracy of {m} a galaxy")
    names = list(loop.targets)
    for header in ["strategy", *[f"to {n}@{m}" for n in names], "final acc.", "classifications"]:
        table.add_column(header, justify="left" if header == "strategy" else "right")
    for row in loop.summary.to_dict("records"):
        cells = [row["strategy"]]
        for n in names:
            share = row.get(f"share_{n}{m}")
            cells.append("not reached" if share is None or math.isnan(share) else f"{share:.1%}")
        cells += [f"{row['final_accuracy']:.4f}", f"{row['final_classifications']:,}"]
        table.add_row(*cells)
    Console().print(table)


def benchmark(
    ctx: typer.Context,
    truthset: Path = typer.Argument(..., help="A truth set with simulated votes (annostat simulate)."),
    pipelines: str = typer.Option("mv,ds", help="Comma-separated pipelines (annostat models; ck-* with crowd-kit)."),
    out: Path = typer.Option(..., "--out", "-o", file_okay=False, help="Folder for the report."),
    votes_dir: Path | None = typer.Option(None, help="Simulated votes folder (default TRUTHSET/votes)."),
    efficiency: str = typer.Option(
        ",".join(map(str, (1, 2, 3, 5, 8, 10, 15, 20, 30, 40))),
        help="Classifications per subject for the label-efficiency curve ('' for none).",
    ),
    efficiency_pipelines: str | None = typer.Option(
        None, help="Pipelines refitted for the label-efficiency curve (default: the fast ones chosen)."
    ),
    min_votes: int = typer.Option(10, min=1, help="Volunteers with at least this many votes are scored."),
    image_size: int = typer.Option(
        64, min=8, max=4096, help="Image pipelines (joint-ds, two-stage, ...): pixels a side."
    ),
    loop: str | None = typer.Option(
        None,
        help="The live loop's strategies (uniform, swap, swap+select, and with "
        "the joint model on the truth set's images swap+joint, "
        "swap+select+joint): "
        "classifications each needs to reach the accuracy of the fixed "
        "rule (--loop-max a galaxy), volunteers simulated on demand.",
    ),
    loop_max: int = typer.Option(
        40, min=1, help="Loop: the fixed rule's classifications a galaxy (and the most any galaxy gets)."
    ),
    loop_threshold: float = typer.Option(0.99, min=0.0, max=1.0, help="Loop: retire at this posterior on the path."),
    loop_min: int = typer.Option(3, min=1, help="Loop: classifications before a galaxy can retire."),
    loop_batch: int | None = typer.Option(
        None, min=1, help="Loop, swap+select: classifications a round \\[default: a fifth of the galaxies]."
    ),
) -> None:
    """Run aggregation pipelines on a truth set's simulated votes and score them against the truth.

    Image pipelines (joint-ds, joint-hds, two-stage, zoobot-style, crowdlayer) get the truth set's images, galaxies
    the simulation did not show included (answered and scored too)."""
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
    from annostat.evaluation.loop import JOINT_STRATEGIES

    joint_loop = loop is not None and any(x in JOINT_STRATEGIES for x in split_list(loop, "--loop"))
    if (
        "image_size" in given_on_command_line(ctx)
        and not joint_loop
        and not any(PIPELINES[n].needs_images for n in names + (eff_names or []))
    ):
        fail(
            "--image-size: none of the pipelines chosen uses images (the image pipelines: "
            f"{', '.join(n for n, p in PIPELINES.items() if p.needs_images)})"
        )
    from annostat.evaluation.loop import STRATEGIES

    strategies = split_list(loop, "--loop") if loop is not None else []
    if unknown := [x for x in strategies if x not in STRATEGIES]:
        fail(f"--loop: no strategy {unknown[0]!r}; the strategies are {', '.join(STRATEGIES)}")
    if not strategies and (given := [f for n, f in given_on_command_line(ctx).items() if n.startswith("loop_")]):
        fail(f"{', '.join(given)}: options of --loop, which is not given")
    use_compilation_cache()
    with input_errors():
        try:
            result = run_benchmark(
                truthset,
                names,
                out,
                votes_dir=votes_dir,
                efficiency=grid,
                efficiency_pipelines=eff_names,
                min_votes=min_votes,
                image_size=image_size,
                loop=strategies,
                loop_options={
                    "maximum": loop_max,
                    "threshold": loop_threshold,
                    "minimum": loop_min,
                    "batch": loop_batch,
                },
                log=lambda message: console.print(message, highlight=False),
            )
        except ValueError as exc:
            fail(str(exc))
    print_scores(result, "Pipelines against the simulated truth")
    if result.loop is not None:
        print_loop(result.loop)
    Console().print(f"Report written to {result.report}")


def demo(
    out: Path = typer.Option(
        Path("annostat-demo"), "--out", "-o", file_okay=False, help="Folder for the demo's outputs."
    ),
    galaxies: int = typer.Option(300, min=10, help="Stand-in galaxies to render."),
    volunteers: int = typer.Option(150, min=1, help="Simulated volunteers."),
    retire_after: int = typer.Option(3, min=1, help="Classifications per classified galaxy."),
    unclassified: float = typer.Option(0.2, min=0.0, max=0.9, help="Share of the galaxies nobody classifies."),
    image_size: int = typer.Option(32, min=8, max=256, help="Pixels a side of the rendered galaxies."),
    efficiency: str = typer.Option("1,2,3", help="Classifications per galaxy for the label-efficiency curve."),
    joint: bool = typer.Option(True, help="Fit the joint model (a CNN on the pixels with Dawid-Skene)."),
    quick: bool = typer.Option(False, help="About a minute: 100 galaxies, two questions, a smaller network."),
    seed: int = typer.Option(0, help="Random seed."),
) -> None:
    """The whole product on simulated galaxies: render them, let simulated volunteers classify most of them (3
    classifications each), fit majority vote, Dawid-Skene, hierarchical Dawid-Skene and the joint model, benchmark
    them against the truth, write the volunteers' advice and cards, and run one round of the live loop."""
    import time

    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from annostat.evaluation.demo import STAGES, demo_pipelines, run_demo

    grid = split_list(efficiency, "--efficiency", int, "whole numbers")
    use_compilation_cache()
    started = time.perf_counter()
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("stage {task.completed}/{task.total}"))
    with input_errors(), Progress(*columns, TimeElapsedColumn(), console=console, transient=True) as bar:
        task = bar.add_task("demo", total=len(STAGES))
        result = run_demo(
            out,
            n_galaxies=galaxies,
            n_volunteers=volunteers,
            retire_after=retire_after,
            unclassified=unclassified,
            image_size=image_size,
            seed=seed,
            efficiency=grid,
            pipelines=demo_pipelines(joint=joint),
            quick=quick,
            log=lambda message: console.print(message, highlight=False),
            progress=lambda done, total, stage: bar.update(task, completed=done, total=total, description=stage),
        )
    print_demo(result, time.perf_counter() - started)


def print_demo(result: DemoResult, seconds: float) -> None:
    """The demo's closing table and the paths to open."""
    table = Table(title="Simulated Galaxy Zoo: each model against the true answers (means over questions)")
    for header in ("model", "galaxies", "classif./galaxy", "accuracy", "ECE"):
        table.add_column(header, justify="left" if header == "model" else "right")
    for row in result.summary().to_dict("records"):
        table.add_row(
            row["model"],
            f"{row['galaxies']:,}",
            f"{row['classifications_per_galaxy']:.1f}",
            f"{row['accuracy']:.3f}",
            f"{row['ece']:.3f}",
        )
    out = Console()
    out.print(table)
    lines = []
    if result.joint and len(result.unclassified):
        lines.append(
            f"The joint model answered {int(result.unclassified['subjects'].max()):,} galaxies nobody classified, "
            f"from their pixels alone."
        )
    loop = result.loop
    lines.append(
        f"Live loop, one round: {loop['retired']} galaxies retired, {loop['selected']} of the rest selected, "
        f"{loop['classifications']} more classifications; Dawid-Skene updated in {loop['update_seconds']:.1f} s, "
        f"accuracy {loop['accuracy_before']:.3f} -> {loop['accuracy_after']:.3f} "
        f"(on the selected galaxies {loop['selected_accuracy_before']:.3f} -> "
        f"{loop['selected_accuracy_after']:.3f})."
    )
    a = result.advice
    lines.append(
        f"Advice for {a['volunteers']:,} volunteers ({a['model']} fit), {a['pages']:,} cards, "
        f"{a['named_confusions']} named confusions."
    )
    root = result.out
    lines += [
        "",
        f"Open: {root / 'report' / 'report.md'} (the benchmark, figures beside it)",
        f"      {root / 'advice' / 'index.html'} (the volunteer cards)",
        f"      {root / 'report' / 'fits'} (each fit folder), {root / 'loop'} (the loop round), {root / 'truth'}",
        f"Done in {seconds:.0f} s.",
    ]
    for line in lines:
        out.print(line, highlight=False, soft_wrap=True)
