"""Figures of a fit folder (matplotlib, written as PNG): they read the fit's tables, never refit.

- ``confusion_<question>.png``: the population's confusion (volunteers' matrices weighted by their votes) and those
  of the most active volunteers, rows the true answer;
- ``skill_<question>.png``: each volunteer's accuracy against their number of votes (log scale), with 90% intervals
  where the model gives them;
- ``learning_<question>.png`` (learning-curve fits): the population's accuracy against experience with its 90% band,
  and beside it the curves of the most active volunteers with theirs (each drawn up to the experience they reached,
  dashed beyond);
- ``reliability.png`` (given true answers): the probability of the chosen answer against how often it is right.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from annostat.data.io.tables import read_table
from annostat.errors import InputError
from annostat.evaluation.calibration import reliability_bins
from annostat.figures import pyplot, save
from annostat.files import safe_file_name
from annostat.fit import Fit
from annostat.models.registry import REGISTRY, model_spec


def plot_fit(
    fit_dir: str | Path, out: str | Path | None = None, truth: str | Path | None = None, n_volunteers: int = 3
) -> list[Path]:
    """Write the figures of the fit in ``fit_dir`` to ``out`` (default ``fit_dir/plots``); returns the paths."""
    plt = pyplot()
    fit = Fit.load(fit_dir)
    out = Path(out) if out is not None else Path(fit_dir) / "plots"
    out.mkdir(parents=True, exist_ok=True)
    confusion, volunteers = fit.table("confusion").to_pandas(), fit.table("volunteers").to_pandas()
    info = fit.summary()
    written = []
    for question, conf in confusion.groupby("question", sort=True):
        vols = volunteers[volunteers["question"] == question]
        answers = list(dict.fromkeys(conf["answer"]))
        K = len(answers)
        weights = vols.set_index("volunteer")["n"]
        conf = conf.assign(w=conf["volunteer"].map(weights).fillna(0))
        population = (
            conf.assign(pw=conf["p"] * conf["w"]).groupby(["true_answer", "answer"])["pw"].sum()
            / conf.groupby(["true_answer", "answer"])["w"].sum()
        )
        active = vols.sort_values("n", ascending=False)["volunteer"].head(n_volunteers).tolist()
        panels = [("population", population)] + [
            (f"{v} (n={int(weights[v])})", conf[conf["volunteer"] == v].set_index(["true_answer", "answer"])["p"])
            for v in active
        ]
        fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.2), squeeze=False)
        for ax, (title, values) in zip(axes[0], panels):
            matrix = np.array([[values.get((t, a), np.nan) for a in answers] for t in answers], dtype=float)
            ax.imshow(matrix, vmin=0, vmax=1, cmap="viridis")
            for i in range(K):
                for j in range(K):
                    ax.text(
                        j,
                        i,
                        f"{matrix[i, j]:.2f}",
                        ha="center",
                        va="center",
                        color="white" if matrix[i, j] < 0.5 else "black",
                        fontsize=8,
                    )
            ax.set_xticks(range(K), answers, rotation=45, ha="right", fontsize=7)
            ax.set_yticks(range(K), answers, fontsize=7)
            ax.set_title(title, fontsize=8)
        axes[0][0].set_ylabel("true answer")
        fig.suptitle(f"{question}: p(answer | true answer)", fontsize=9)
        written.append(save(fig, out / f"confusion_{safe_file_name(question)}.png"))

        fig, ax = plt.subplots(figsize=(5, 3.5))
        if {"accuracy_lo", "accuracy_hi"} <= set(vols.columns):
            ax.errorbar(
                vols["n"],
                vols["accuracy"],
                yerr=[vols["accuracy"] - vols["accuracy_lo"], vols["accuracy_hi"] - vols["accuracy"]],
                fmt="o",
                ms=3,
                alpha=0.5,
                elinewidth=0.6,
            )
        else:
            ax.plot(vols["n"], vols["accuracy"], "o", ms=3, alpha=0.5)
        ax.set_xscale("log")
        ax.set_xlabel("votes on the question")
        ax.set_ylabel("accuracy")
        ax.set_title(f"{question}: volunteer skill ({info.get('model', '?')})", fontsize=9)
        written.append(save(fig, out / f"skill_{safe_file_name(question)}.png"))

    learns = info.get("model") in REGISTRY and model_spec(info["model"]).can("learning")
    if learns and (fit.folder / "trace.nc").exists():
        written += _learning_curves(fit, out, plt, volunteers, n_volunteers)
    if truth is not None:
        written.append(_reliability(fit, Path(truth), out, plt))
    return written


def _learning_curves(fit: Fit, out: Path, plt, volunteers: pd.DataFrame, n_volunteers: int) -> list[Path]:
    from annostat.infer.trace import question_of
    from annostat.models.learning import LearningCurve

    trace = fit.inference_data()
    written = []
    for name in map(str, trace["posterior"].data_vars):
        if not name.startswith("gain_mean["):
            continue
        tag = name[len("gain_mean") :]
        question = question_of(tag)
        draws = {
            str(k)[: -len(tag)]: v.values.reshape(-1, *v.shape[2:])
            for k, v in trace["posterior"].data_vars.items()
            if str(k).endswith(tag)
        }
        vols = volunteers[volunteers["question"] == question].sort_values("n", ascending=False).head(n_volunteers)
        grid = np.linspace(0, max(50, int(vols["n"].max()) if len(vols) else 200), 81)
        curve = LearningCurve.population_curve(draws, grid)
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
        ax = axes[0]
        ax.fill_between(grid, curve["lo"], curve["hi"], alpha=0.3, label="90% band")
        ax.plot(grid, curve["accuracy"], label="population")
        ax.set_xlabel("experience (earlier responses)")
        ax.set_ylabel("accuracy")
        ax.legend(fontsize=8)
        ax.set_title(f"{question}: population learning curve", fontsize=9)
        names = [str(v) for v in trace["posterior"]["volunteer_offset" + tag].coords["volunteer" + tag].values]
        position = {v: i for i, v in enumerate(names)}
        chosen = [(str(v), position[str(v)], n) for v, n in zip(vols["volunteer"], vols["n"]) if str(v) in position]
        ax = axes[1]
        if chosen:
            mine = LearningCurve.volunteer_curves(draws, np.array([c[1] for c in chosen]), grid)
            for i, (label, _, n) in enumerate(chosen):
                reached = grid <= n  # (question experience: at most n - 1 earlier responses)
                (line,) = ax.plot(grid[reached], mine["accuracy"][i][reached], label=f"{label} (n={int(n)})")
                ax.plot(grid[~reached], mine["accuracy"][i][~reached], "--", color=line.get_color(), lw=0.8)
                ax.fill_between(grid, mine["lo"][i], mine["hi"][i], color=line.get_color(), alpha=0.15)
            ax.legend(fontsize=7)
        ax.set_xlabel("experience (earlier responses)")
        ax.set_title(f"{question}: most active volunteers", fontsize=9)
        written.append(save(fig, out / f"learning_{safe_file_name(question)}.png"))
    return written


def _reliability(fit: Fit, truth_path: Path, out: Path, plt) -> Path:
    truth = read_table(truth_path).to_pandas()
    missing = {"subject", "question", "answer"} - set(truth.columns)
    if missing:
        raise InputError(f"{truth_path}: no column(s) {', '.join(sorted(missing))}")
    truth = truth.astype({c: str for c in ("subject", "question", "answer")})
    chosen = fit.table("answers").to_pandas().astype({"subject": str, "question": str, "answer": str})
    both = chosen.merge(truth, on=["subject", "question"], suffixes=("", "_true"))
    if both.empty:
        raise InputError(f"{truth_path}: no subject and question in common with the fit")
    bins = reliability_bins(both["p"].to_numpy(), (both["answer"] == both["answer_true"]).to_numpy())
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.plot([0, 1], [0, 1], "k--", lw=0.8)
    ax.plot(bins["confidence"], bins["accuracy"], "o-")
    ax.set_xlabel("p of the chosen answer")
    ax.set_ylabel("fraction right")
    ax.set_title("reliability", fontsize=9)
    return save(fig, out / "reliability.png")
