r"""The live loop in the harness: how many classifications each way of running a project needs to reach the accuracy
Galaxy Zoo's fixed retirement (every galaxy classified ``maximum`` = 40 times) reaches.

Simulated volunteers answer on demand (:class:`~annostat.truth.simulate.OnDemandVolunteers`: each galaxy's stream of
classifications, handed out one at a time as a strategy asks for it). Every strategy starts from ``start``
classifications of every galaxy, fits the volunteer model, then goes round by round:

- ``uniform``: every galaxy gets one more classification a round, until it has ``maximum`` (the fixed rule, spread
  out over rounds);
- ``swap``: every galaxy not yet retired gets one more; after the update, galaxies are retired by
  :func:`annostat.live.retire.retire` (SWAP-style: the posterior of every question on the most probable path at least
  ``threshold`` once a galaxy has ``minimum`` classifications; ``maximum`` at most);
- ``swap+select``: each round ``batch`` classifications go to the galaxies not retired that one more classification
  tells most about (:func:`annostat.live.select.select`), then the update and retirement as above;
- ``swap+joint`` and ``swap+select+joint``: the same with the joint model (``annostat.models.joint``: Dawid-Skene
  fitted with a network on the galaxies' ``inputs``, images or features), its networks fine-tuned each round, so the
  image sharpens every galaxy's posterior and retirement comes sooner.

Each round the fit is brought up to date with the round's classifications (:func:`annostat.live.update.update`,
incremental EM for Dawid-Skene), so the loop is the live project's. After each round the accuracy is scored on every
(galaxy, question) the true path asks: the most probable answer against the truth, a question the fit does not answer
for the galaxy counting as wrong. The targets are the accuracies of ``maximum`` classifications of every galaxy,
aggregated as Galaxy Zoo does (vote fractions, ``mv``) and by the loop's model; a strategy's figure for a target is
the classifications it had spent in the first round its accuracy reached it, as a share of the fixed rule's.

Anchors from the literature: Space Warps needed 34% of the classifications it collected (Marshall et al. 2016);
Beck et al. (2018) retired galaxies 5x faster with SWAP; Walmsley et al. (2020) needed 35-60% fewer labelled galaxies
with BALD.

Example:
    >>> from annostat.truth.simulate import OnDemandVolunteers, VolunteerPopulation, truth_table
    >>> truth = truth_table(120, questions=("smooth-or-featured",), seed=3)
    >>> stream = OnDemandVolunteers.simulate(truth, VolunteerPopulation(n_volunteers=60), most=8, seed=3,
    ...                                      questions=("smooth-or-featured",))
    >>> result = run_loop(stream, strategies=("uniform", "swap"), maximum=8, tree="none")
    >>> sorted(result.summary["strategy"])
    ['fixed (ds)', 'fixed (mv)', 'swap', 'uniform']
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import polars as pl

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from annostat.fit import Fit
    from annostat.truth.simulate import OnDemandVolunteers
    from annostat.truth.truthset import TruthSet
    from annostat.vision.inputs import Inputs

STRATEGIES = ("uniform", "swap", "swap+select", "swap+joint", "swap+select+joint")
#: the strategies whose fit is the joint model (a network on the galaxies' images or features): they need inputs
JOINT_STRATEGIES = ("swap+joint", "swap+select+joint")


@dataclass
class LoopResult:
    """The loop's curves and figures."""

    curves: pd.DataFrame  # strategy, round, classifications, votes, accuracy, retired, seconds
    summary: pd.DataFrame  # strategy, final_*, rounds, retired, accuracy_at_quarter; to_<model><maximum>,
    #                        share_<model><maximum> per target
    targets: dict[str, float]  # the fixed rule's accuracy (`maximum` classifications of every galaxy), per model
    setup: dict[str, Any] = field(default_factory=dict)


def accuracy(fit: Fit, truth: pd.DataFrame) -> float:
    """The share of the true (galaxy, question) answers the fit's most probable answers get right; a pair the fit
    does not answer counts as wrong."""
    answers = fit.table("answers").select("subject", "question", pl.col("answer").alias("fitted"))
    t = pl.from_pandas(truth[["subject", "question", "answer"]]).with_columns(
        pl.col("question", "answer").cast(pl.String), pl.col("subject").cast(answers.schema["subject"])
    )
    joined = t.join(
        answers.with_columns(pl.col("question", "fitted").cast(pl.String)), on=["subject", "question"], how="left"
    )
    return float(np.mean((joined["answer"] == joined["fitted"]).fill_null(False).to_numpy()))


def run_loop(
    stream: OnDemandVolunteers,
    strategies: Sequence[str] = STRATEGIES[:3],
    *,
    model: str = "ds",
    start: int = 2,
    maximum: int = 40,
    threshold: float = 0.99,
    minimum: int = 3,
    batch: int | None = None,
    tree: str | None = "gz-decals-dr5",
    max_rounds: int = 200,
    inputs: Inputs | None = None,
    joint_options: dict[str, Any] | None = None,
    joint_rounds: int = 1,
    log: Callable[[str], None] | None = None,
) -> LoopResult:
    """Run each strategy on ``stream`` (:class:`~annostat.truth.simulate.OnDemandVolunteers`), and the fixed rule
    (see the module docstring). ``batch``: classifications a round for ``swap+select`` (default a fifth of the
    galaxies); ``tree``: the decision tree whose path retirement and selection follow (``none``: every question).
    The joint strategies need ``inputs`` (:class:`~annostat.vision.inputs.Inputs` whose ids are the stream's
    subjects); ``joint_options`` are :class:`~annostat.models.joint.JointModel`'s, ``joint_rounds`` the EM rounds
    of fine-tuning a round."""
    import time

    from annostat.data.votes import Votes
    from annostat.live.retire import retire
    from annostat.live.select import select
    from annostat.models import get_model
    from annostat.truth.simulate import OnDemandVolunteers

    say = log or (lambda message: None)
    unknown = [s for s in strategies if s not in STRATEGIES]
    if unknown:
        raise ValueError(f"unknown strategy {', '.join(unknown)}; the strategies are {', '.join(STRATEGIES)}")
    if inputs is None and (joint := [s for s in strategies if s in JOINT_STRATEGIES]):
        raise ValueError(f"strategy {joint[0]} fits the joint model: it needs the galaxies' images or features")
    if not 1 <= start <= maximum <= stream.most:
        raise ValueError(
            f"need 1 <= start ({start}) <= maximum ({maximum}) <= the stream's {stream.most} classifications a galaxy"
        )
    truth, subjects = stream.truth, stream.subjects
    S = len(subjects)
    batch = max(1, S // 5) if batch is None else int(batch)

    def votes_of(frame: pl.DataFrame) -> Votes:
        return Votes.from_frame(frame.select("subject", "volunteer", "question", "answer", "created_at"))

    # the fixed rule: `maximum` classifications of every galaxy, aggregated as Galaxy Zoo does (vote fractions) and
    # by the loop's model
    fixed_stream = OnDemandVolunteers(stream.sim)
    fixed_votes = votes_of(fixed_stream.classify(subjects, maximum))
    fixed_classifications = int(fixed_stream.taken(subjects).sum())
    targets, rows = {}, []
    for name in dict.fromkeys(("mv", model)):
        fixed = get_model(name).fit(fixed_votes)
        targets[name] = accuracy(fixed, truth)
        rows.append(
            {
                "strategy": f"fixed ({name})",
                "round": 0,
                "classifications": fixed_classifications,
                "votes": int(fixed_votes.n_votes),
                "accuracy": targets[name],
                "retired": S,
                "seconds": fixed.seconds,
            }
        )
    say(
        f"fixed rule: {maximum} classifications a galaxy ({fixed_classifications:,} in all): accuracy "
        + ", ".join(f"{targets[n]:.4f} ({n})" for n in targets)
    )

    for strategy in strategies:
        own = OnDemandVolunteers(stream.sim)
        begin = time.perf_counter()
        joint = strategy in JOINT_STRATEGIES
        first = votes_of(own.classify(subjects, start))
        if joint:
            from annostat.models.joint import JointModel

            assert inputs is not None  # the joint strategies need the subjects' inputs (checked above)
            fit = JointModel(model, missing="skip", **(joint_options or {})).fit(first, inputs)
        else:
            fit = get_model(model).fit(first)
        n_votes, retired = fit.votes.n_votes, np.zeros(S, bool)
        for r in range(max_rounds + 1):
            if strategy != "uniform":
                out = retire(fit, threshold=threshold, minimum=minimum, maximum=maximum, tree=tree)
                retired = np.isin(subjects, out["subject_id"].cast(pl.Int64).to_numpy())
            spent = int(own.taken(subjects).sum())
            rows.append(
                {
                    "strategy": strategy,
                    "round": r,
                    "classifications": spent,
                    "votes": n_votes,
                    "accuracy": accuracy(fit, truth),
                    "retired": int(retired.sum()),
                    "seconds": time.perf_counter() - begin,
                }
            )
            open_ = ~retired & (own.taken(subjects) < maximum) & (own.left(subjects) > 0)
            if not open_.any() or r == max_rounds:
                break
            if "select" in strategy:
                # ranked without retiring again (this round's retirement, by the same rules, is `retired`)
                ranked = select(fit, S, tree=tree, include_retired=True)["subject"].cast(pl.Int64).to_numpy()
                chosen = ranked[~np.isin(ranked, subjects[retired])][:batch]
                asked = np.intersect1d(chosen, subjects[open_])
                if not len(asked):  # the fit has no open galaxy left to rank: the open ones in turn
                    asked = subjects[open_][:batch]
            else:
                asked = subjects[open_]
            new = own.classify(asked)
            if new.height == 0:
                break
            fit = (
                fit.update(votes_of(new), inputs=inputs, joint_rounds=joint_rounds)
                if joint
                else fit.update(votes_of(new))
            )
            n_votes += new.height
        say(
            f"{strategy}: {rows[-1]['classifications']:,} classifications in {rows[-1]['round']} rounds, accuracy "
            f"{rows[-1]['accuracy']:.4f}, {rows[-1]['retired']:,} galaxies retired"
        )
    curves = pd.DataFrame(rows)
    summary = []
    for strategy, curve in curves.groupby("strategy", sort=False):
        last = curve.iloc[-1]
        quarter = curve[curve["classifications"] <= fixed_classifications / 4]
        row = {
            "strategy": strategy,
            "final_classifications": int(last["classifications"]),
            "final_accuracy": float(last["accuracy"]),
            "rounds": int(last["round"]),
            "retired": int(last["retired"]),
            # the goal's budget: the best accuracy with at most a quarter of the fixed rule's classifications
            "accuracy_at_quarter": float(quarter["accuracy"].max()) if len(quarter) else None,
        }
        for name, target in targets.items():  # the classifications spent when each fixed rule's accuracy was reached
            reached = curve[curve["accuracy"] >= target - 1e-12]
            spent = int(reached["classifications"].iloc[0]) if len(reached) else None
            row[f"to_{name}{maximum}"] = spent
            row[f"share_{name}{maximum}"] = spent / fixed_classifications if spent is not None else None
        summary.append(row)
    setup = {
        "model": model,
        "galaxies": S,
        "start": start,
        "maximum": maximum,
        "threshold": threshold,
        "minimum": minimum,
        "batch": batch,
        "tree": tree,
        "strategies": list(strategies),
        "fixed_classifications": fixed_classifications,
    }
    return LoopResult(curves, pd.DataFrame(summary), targets, setup)


def loop_from_truth_set(truth_set: TruthSet, settings: dict[str, Any], maximum: int = 40) -> OnDemandVolunteers:
    """The on-demand volunteers of a truth set: its simulation's population, seed, tree and questions, every galaxy's
    stream ``maximum`` classifications long (``settings``: the simulation's ``simulation.json``)."""
    from annostat.truth.simulate import OnDemandVolunteers, VolunteerPopulation

    population = dict(settings.get("population") or {})
    population["planted"] = [tuple(p) for p in population.get("planted", [])]
    return OnDemandVolunteers.simulate(
        truth_set,
        VolunteerPopulation(**population),
        most=maximum,
        seed=int(settings.get("seed", 0)),
        tree=settings.get("tree"),
        questions=settings.get("questions"),
    )


def loop_markdown(result: LoopResult) -> list[str]:
    """The loop's section of a benchmark report."""
    from annostat.evaluation.report import markdown_table

    s = result.setup
    m = s["maximum"]
    targets = ", ".join(f"{acc:.4f} ({name})" for name, acc in result.targets.items())
    lines = [
        "## The live loop: classifications to reach the fixed rule's accuracy",
        "",
        (
            f"{s['galaxies']:,} galaxies, each first classified {s['start']} times; then round by round (module "
            f"`annostat.evaluation.loop`): uniform (one more for every galaxy), swap (one more for every galaxy not "
            f"retired; retired at posterior >= {s['threshold']} on its path after {s['minimum']} classifications, "
            f"or at {m}), swap+select ({s['batch']:,} a round to the galaxies one more classification tells most "
            f"about). The {s['model']} fit is updated each round. Galaxy Zoo's fixed rule, {m} classifications a "
            f"galaxy ({s['fixed_classifications']:,} in all), reaches accuracy {targets}."
        ),
        "",
    ]
    columns = (
        ["strategy"]
        + [c for c in result.summary.columns if c.startswith(("to_", "share_"))]
        + ["accuracy_at_quarter", "final_classifications", "final_accuracy", "rounds", "retired"]
    )
    lines += [markdown_table(result.summary[columns]), ""]
    return lines


def loop_figure(result: LoopResult, plt: ModuleType) -> Figure:
    """Accuracy against classifications spent, one line a strategy; the fixed rule's accuracies dashed."""
    fig, ax = plt.subplots(figsize=(5.2, 3.6))
    for name, curve in result.curves.groupby("strategy", sort=False):
        if name.startswith("fixed"):
            continue
        ax.plot(curve["classifications"], curve["accuracy"], marker="o", ms=2, label=name)
    for name, acc in result.targets.items():
        ax.axhline(
            acc,
            ls="--",
            lw=0.8,
            color="k" if name == "mv" else "grey",
            label=f"{result.setup['maximum']} a galaxy ({name})",
        )
    ax.set_xscale("log")
    ax.set_xlabel("classifications spent")
    ax.set_ylabel("accuracy")
    ax.set_title("The live loop", fontsize=9)
    ax.legend(fontsize=7)
    return fig
