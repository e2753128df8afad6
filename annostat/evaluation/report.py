"""The benchmark report: ``report.md`` (set-up, score tables, label efficiency, figures), the score tables as
Parquet, ``setup.json`` and the figures ``efficiency.png``, ``calibration.png``, ``volunteers.png`` (and
``learning.png``)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from annostat.errors import InputError
from annostat.figures import pyplot
from annostat.figures import save as save_figure

if TYPE_CHECKING:  # pragma: no cover
    from annostat.evaluation.harness import BenchmarkResult


def markdown_table(frame: pd.DataFrame, digits: int = 3) -> str:
    """A GitHub Markdown table through tabulate: numbers to ``digits`` decimals, whole numbers with thousands
    separators, NaN as a blank, ``|`` in text escaped."""
    cells = frame.astype(object).where(frame.notna(), None)
    for column in cells.columns:
        if not pd.api.types.is_numeric_dtype(frame[column]):
            cells[column] = cells[column].map(lambda v: None if v is None else str(v).replace("|", "\\|"))
    return cells.to_markdown(index=False, floatfmt=f".{digits}f", intfmt=",", missingval="")


def write_report(result: BenchmarkResult, out: str | os.PathLike) -> Path:
    """Write ``report.md``, the Parquet tables and the figures to ``out``."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    for name in ("scores", "volunteers", "efficiency", "calibration", "learning"):
        getattr(result, name).to_parquet(out / f"{name}.parquet", index=False)
    (out / "setup.json").write_text(json.dumps(result.setup, indent=2, default=str) + "\n", encoding="utf-8")
    figures = _figures(result, out)
    s = result.setup
    lines = [
        "# Benchmark against simulated truth",
        "",
        (
            f"Truth set `{s['truth_set']}` ({s['source']}, tree {s['tree']}); votes read from the {s['votes_from']}: "
            f"{s['votes']:,} votes on {s['subjects']:,} subjects by {s['volunteers']:,} simulated volunteers (retired "
            f"after {s['retire_after']} classifications; spammer share {s['spammer_fraction']}). Scores per question on "
            f"subjects whose true path asks it; volunteer recovery on volunteers with >= {s['min_votes']} votes on the "
            "question (true value: their expected accuracy on the votes they gave)."
        ),
        "",
    ]
    if options := s.get("pipeline_options"):
        given = "; ".join(
            f"{name}: " + ", ".join(f"{key}={value}" for key, value in o.items()) for name, o in options.items() if o
        )
        lines += [f"Model options: {given}.", ""]
    lines += ["## Scores", ""]
    columns = [
        "pipeline",
        "question",
        "subjects",
        "accuracy",
        "balanced_accuracy",
        "ece",
        "brier",
        "nll",
        "volunteers_scored",
        "volunteer_corr",
        "volunteer_mae",
        "volunteer_coverage90",
        "learning_curve_mae",
        "seconds",
    ]
    table = result.scores[[c for c in columns if c in result.scores]]
    lines += [markdown_table(table), ""]
    if len(result.scores):
        mean = result.scores.groupby("pipeline", sort=False)[["accuracy", "balanced_accuracy", "ece", "brier"]].mean()
        lines += ["Mean over questions:", "", markdown_table(mean.reset_index()), ""]
    if len(result.efficiency):
        wide = result.efficiency.pivot_table(
            index=["question", "pipeline"], columns="votes_per_subject", values="accuracy"
        ).reset_index()
        wide.columns = [str(c) if not isinstance(c, str) else c for c in wide.columns]
        lines += [
            "## Label efficiency",
            "",
            "Accuracy with each subject's first *m* classifications (columns: *m*).",
            "",
            markdown_table(wide),
            "",
        ]
    if result.loop is not None:
        from annostat.evaluation.loop import loop_markdown

        result.loop.curves.to_parquet(out / "loop.parquet", index=False)
        lines += loop_markdown(result.loop)
    lines += ["## Figures", ""] + [f"![{name}]({name}.png)" for name in figures] + [""]
    lines += [
        "Tables: `scores.parquet`, `volunteers.parquet`, `efficiency.parquet`, `calibration.parquet`, "
        "`learning.parquet`" + (", `loop.parquet`" if result.loop is not None else "") + "; set-up: `setup.json`.",
        "",
    ]
    (out / "report.md").write_text("\n".join(lines), encoding="utf-8")
    return out / "report.md"


def _figures(result: BenchmarkResult, out: Path) -> list[str]:
    plt = pyplot()
    written = []

    def save(fig, name: str) -> None:
        save_figure(fig, out / f"{name}.png")
        written.append(name)

    questions = sorted(result.scores["question"].unique()) if len(result.scores) else []
    if len(result.efficiency):
        n = len(questions)
        cols = min(n, 5)
        rows_ = int(np.ceil(n / cols))
        fig, axes = plt.subplots(rows_, cols, figsize=(3.2 * cols, 2.6 * rows_), squeeze=False, sharex=True)
        for ax, question in zip(axes.ravel(), questions):
            part = result.efficiency[result.efficiency["question"] == question]
            for name, line in part.groupby("pipeline", sort=False):
                line = line.sort_values("votes_per_subject")
                ax.plot(line["votes_per_subject"], line["accuracy"], marker="o", ms=3, label=name)
            ax.set_title(question, fontsize=8)
            ax.set_xscale("log")
        for ax in axes.ravel()[n:]:
            ax.axis("off")
        axes[0, 0].legend(fontsize=7)
        fig.supxlabel("classifications per subject")
        fig.supylabel("accuracy")
        save(fig, "efficiency")
    if len(result.calibration):
        fig, ax = plt.subplots(figsize=(4.2, 4))
        ax.plot([0, 1], [0, 1], "k:", lw=0.8)
        for name, part in result.calibration.groupby("pipeline", sort=False):
            pooled = (
                part.assign(c=part["confidence"] * part["n"], a=part["accuracy"] * part["n"])
                .groupby("bin")[["c", "a", "n"]]
                .sum()
            )
            ax.plot(pooled["c"] / pooled["n"], pooled["a"] / pooled["n"], marker="o", ms=3, label=name)
        ax.set_xlabel("top answer's probability")
        ax.set_ylabel("share correct")
        ax.set_title("Reliability (all questions)", fontsize=9)
        ax.legend(fontsize=7)
        save(fig, "calibration")
    if len(result.volunteers):
        names = list(result.volunteers["pipeline"].unique())
        fig, axes = plt.subplots(1, len(names), figsize=(3.4 * len(names), 3.3), squeeze=False)
        min_votes = result.setup["min_votes"]
        for ax, name in zip(axes[0], names):
            part = result.volunteers[(result.volunteers["pipeline"] == name) & (result.volunteers["n"] >= min_votes)]
            ax.scatter(part["accuracy_true"], part["accuracy"], s=6, alpha=0.5)
            ax.plot([0, 1], [0, 1], "k:", lw=0.8)
            ax.set_title(name, fontsize=9)
            ax.set_xlabel("true accuracy")
        axes[0, 0].set_ylabel("estimated accuracy")
        save(fig, "volunteers")
    if result.loop is not None:
        from annostat.evaluation.loop import loop_figure

        save(loop_figure(result.loop, plt), "loop")
    if len(result.learning):
        fig, ax = plt.subplots(figsize=(4.6, 3.4))
        for (name, question), part in result.learning.groupby(["pipeline", "question"], sort=False):
            (line,) = ax.plot(part["experience"], part["accuracy"], label=f"{name}: {question}")
            ax.fill_between(part["experience"], part["lo"], part["hi"], color=line.get_color(), alpha=0.2)
            ax.plot(part["experience"], part["accuracy_true"], "--", color=line.get_color(), lw=1)
        ax.set_xlabel("experience (classifications)")
        ax.set_ylabel("population accuracy")
        ax.set_title("Learning curves (dashed: true)", fontsize=9)
        ax.legend(fontsize=7)
        save(fig, "learning")
    return written
