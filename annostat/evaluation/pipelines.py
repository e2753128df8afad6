"""Aggregation pipelines the benchmark harness runs: one registry, so a new method joins with a few lines.

A pipeline takes :class:`~annostat.data.votes.Votes` and returns a :class:`PipelineOutput`: every subject's posterior over
every question's answers (long: ``subject, question, answer, p``), and where the method has them, each volunteer's
estimated accuracy (``volunteer, question, n, accuracy`` and optionally ``accuracy_lo``/``accuracy_hi``) and the
population's learning curve (``question, experience, accuracy, lo, hi``).

Registered here: every annostat model (``mv``, ``ds``, ``hds``, ``learning``, ``mace``, ``mn``, ``item``, ``lre``;
Bayesian ones with SVI) and, when crowd-kit is installed (the ``peers`` extra), crowd-kit's ``ck-mv``, ``ck-wawa``,
``ck-ds``, ``ck-ods`` (one-coin Dawid-Skene), ``ck-glad`` and ``ck-mace``, fitted question by question on the same
votes. ``cost`` says which pipelines are cheap enough to refit many times for the label-efficiency curve. annostat's
models take their options through the pipeline (``get_pipeline("hds")(votes, inference="map")``; the harness's
``pipeline_options``); a pipeline of one's own takes options when its function accepts ``**options``.

Adding one::

    from annostat.evaluation.pipelines import PipelineOutput, register_pipeline

    @register_pipeline("my-method", "My method")
    def my_method(votes):
        ...
        return PipelineOutput(posteriors=frame)
"""

from __future__ import annotations

import importlib.util
import inspect
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from annostat.data.votes import Votes
from annostat.fit import Fit
from annostat.models import REGISTRY, get_model, model_spec

if TYPE_CHECKING:
    from annostat.vision.inputs import Inputs


@dataclass
class PipelineOutput:
    posteriors: pd.DataFrame  # subject, question, answer, p (every answer of every question the subject has votes on)
    volunteers: pd.DataFrame | None = None  # volunteer, question, n, accuracy[, accuracy_lo, accuracy_hi]
    learning: pd.DataFrame | None = None  # question, experience, accuracy, lo, hi
    fit: Fit | None = None
    seconds: float = float("nan")
    accuracy_at: str = "votes"  # the volunteers' accuracy is over their votes ("votes") or at their last one ("last")


@dataclass(frozen=True)
class Pipeline:
    name: str
    title: str
    run: Callable[..., PipelineOutput]  # run(votes, **options), or run(votes, inputs, **options) for an image pipeline
    cost: str = "fast"  # "fast": refitted for the label-efficiency curve by default; "slow": fitted once
    needs: str | None = None  # an optional package the pipeline imports
    needs_images: bool = False  # run(votes, inputs): the harness hands it the truth set's images

    @property
    def available(self) -> bool:
        return self.needs is None or importlib.util.find_spec(self.needs) is not None

    def __call__(self, votes: Votes, inputs: Inputs | None = None, **options: Any) -> PipelineOutput:
        """Run on ``votes`` with the model's ``options`` (an annostat model's, e.g. ``inference="map"`` for
        ``hds``; the joint model's, ``epochs``, ``rounds``, ``width``, ..., for an image pipeline, which also reads
        ``inputs``, ``annostat.vision.inputs``). Peers' pipelines take no options."""
        start = time.perf_counter()
        if self.needs_images:
            if inputs is None:
                raise ValueError(f"pipeline {self.name} needs the subjects' images")
            out = self.run(votes, inputs, **options)
        elif options and not _takes_options(self.run):
            raise ValueError(f"pipeline {self.name} takes no options (given {', '.join(sorted(options))})")
        else:
            out = self.run(votes, **options)
        out.seconds = time.perf_counter() - start
        return out


def _takes_options(run: Callable[..., PipelineOutput]) -> bool:
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in inspect.signature(run).parameters.values())


PIPELINES: dict[str, Pipeline] = {}


def register_pipeline(
    name: str, title: str, cost: str = "fast", needs: str | None = None, needs_images: bool = False
) -> Callable[[Callable[..., PipelineOutput]], Callable[..., PipelineOutput]]:
    """Decorator: register ``run(votes) -> PipelineOutput`` (``run(votes, inputs)`` with ``needs_images``) under
    ``name``."""

    def wrap(run: Callable[..., PipelineOutput]) -> Callable[..., PipelineOutput]:
        PIPELINES[name] = Pipeline(name, title, run, cost, needs, needs_images)
        return run

    return wrap


def get_pipeline(name: str) -> Pipeline:
    try:
        pipeline = PIPELINES[name]
    except KeyError:
        raise KeyError(f"no pipeline {name!r}; the pipelines are {', '.join(PIPELINES)}") from None
    if not pipeline.available:
        raise KeyError(f"pipeline {name!r} needs {pipeline.needs}: pip install 'annostat[peers]'")
    return pipeline


# --- annostat's models -----------------------------------------------------------------------------------------


def _learning_curves(fit: Fit, grid: np.ndarray) -> pd.DataFrame | None:
    from annostat.models.learning import LearningCurve

    parts = []
    for qf in fit.questions:
        if not qf.inference or "gain_mean" not in qf.inference["draws"]:
            continue
        curve = LearningCurve.population_curve(qf.inference["draws"], grid)
        parts.append(
            pd.DataFrame(
                {
                    "question": qf.inference["question"],
                    "experience": grid,
                    "accuracy": curve["accuracy"],
                    "lo": curve["lo"],
                    "hi": curve["hi"],
                }
            )
        )
    return pd.concat(parts, ignore_index=True) if parts else None


def _model_pipeline(name: str) -> Callable[..., PipelineOutput]:
    def run(votes: Votes, **options: Any) -> PipelineOutput:
        fit = get_model(name, **options).fit(votes)
        volunteers = fit.volunteers
        keep = [c for c in ("volunteer", "question", "n", "accuracy", "accuracy_lo", "accuracy_hi") if c in volunteers]
        learns = model_spec(name).can("learning")
        learning = _learning_curves(fit, np.arange(0, 201, 5, dtype=float)) if learns else None
        return PipelineOutput(
            fit.posteriors, volunteers[keep], learning, fit, accuracy_at="last" if learns else "votes"
        )

    return run


for _spec in REGISTRY.values():
    register_pipeline(_spec.name, f"annostat {_spec.title}", cost=_spec.cost, needs=_spec.needs)(
        _model_pipeline(_spec.name)
    )


# --- networks on the images (annostat.models.joint) -------------------------------------------------------------

#: image pipelines: name -> (title, JointModel options)
IMAGE_PIPELINES = {
    "joint-ds": ("annostat joint model: Dawid-Skene + CNN", {"model": "ds"}),
    "joint-hds": ("annostat joint model: hierarchical Dawid-Skene + CNN", {"model": "hds"}),
    "two-stage": ("Dawid-Skene, then the CNN trained on its posteriors", {"loss": "soft"}),
    "zoobot-style": ("the CNN on vote counts (Dirichlet-multinomial, Zoobot's loss)", {"loss": "dirichlet"}),
    "crowdlayer": ("CrowdLayer: the CNN with a confusion layer per volunteer", {"loss": "crowdlayer"}),
}


def _image_pipeline(options: dict) -> Callable[..., PipelineOutput]:
    def run(votes: Votes, inputs, **more) -> PipelineOutput:
        from annostat.models.joint import JointModel

        fit = JointModel(missing="skip", **(options | more)).fit(votes, inputs)
        volunteers = fit.volunteers[["volunteer", "question", "n", "accuracy"]]
        return PipelineOutput(fit.posteriors, None if options.get("loss") == "dirichlet" else volunteers, None, fit)

    return run


for _name, (_title, _options) in IMAGE_PIPELINES.items():
    register_pipeline(_name, _title, cost="slow", needs="flax", needs_images=True)(_image_pipeline(_options))


# --- crowd-kit -------------------------------------------------------------------------------------------------


def _crowdkit_pipeline(factory: Callable[[], Any], volunteer_accuracy: str | None) -> Callable[[Votes], PipelineOutput]:
    """Fit a crowd-kit aggregator per question on (task, worker, label) frames of the same votes."""

    def run(votes: Votes) -> PipelineOutput:
        frame = votes.to_frame().select("subject", "volunteer", "question", "answer").to_pandas()
        posteriors, volunteers = [], []
        for q_index, question in enumerate(votes.questions):
            part = frame[frame["question"] == question]
            if part.empty:
                continue
            answers = [str(a) for a in votes.answers[q_index]]
            data = pd.DataFrame(
                {
                    "task": part["subject"].to_numpy(),
                    "worker": part["volunteer"].astype(str).to_numpy(),
                    "label": part["answer"].astype(str).to_numpy(),
                }
            )
            model = factory()
            proba = model.fit_predict_proba(data) if hasattr(model, "fit_predict_proba") else None
            if proba is None:  # label-only aggregators: the chosen answer gets probability 1
                labels = model.fit_predict(data)
                proba = pd.get_dummies(labels).astype(float)
            proba = proba.reindex(columns=answers, fill_value=0.0).fillna(0.0)
            long = proba.rename_axis("subject").reset_index().melt(id_vars="subject", var_name="answer", value_name="p")
            long.insert(1, "question", question)
            posteriors.append(long)
            n = data.groupby("worker").size()
            if volunteer_accuracy == "errors":  # Dawid-Skene: prior-weighted diagonal of the confusion
                errors, priors = model.errors_, model.priors_.reindex(answers, fill_value=0.0)
                acc = {}
                for worker, matrix in errors.groupby(level=0):
                    m = matrix.droplevel(0).reindex(index=answers, columns=answers, fill_value=0.0)
                    acc[worker] = float(np.sum(np.diag(m.to_numpy()) * priors.to_numpy()))
                accuracy = pd.Series(acc)
            elif volunteer_accuracy == "skills":
                accuracy = model.skills_
            else:
                accuracy = None
            if accuracy is not None:
                volunteers.append(
                    pd.DataFrame(
                        {
                            "volunteer": accuracy.index.astype(str),
                            "question": question,
                            "n": n.reindex(accuracy.index).fillna(0).astype(int).to_numpy(),
                            "accuracy": accuracy.to_numpy(float),
                        }
                    )
                )
        vols = pd.concat(volunteers, ignore_index=True) if volunteers else None
        return PipelineOutput(pd.concat(posteriors, ignore_index=True), vols)

    return run


def _register_crowdkit() -> None:
    def agg(name: str, **kwargs):
        def make():
            from crowdkit import aggregation

            return getattr(aggregation, name)(**kwargs)

        return make

    for key, cls, kwargs, accuracy, cost in (
        ("ck-mv", "MajorityVote", {}, "skills", "fast"),
        ("ck-wawa", "Wawa", {}, "skills", "fast"),
        ("ck-ds", "DawidSkene", {"n_iter": 100}, "errors", "fast"),
        ("ck-ods", "OneCoinDawidSkene", {"n_iter": 100}, "skills", "fast"),
        ("ck-glad", "GLAD", {"n_iter": 100, "silent": True}, None, "slow"),
        ("ck-mace", "MACE", {"n_iter": 100}, None, "slow"),
    ):
        register_pipeline(key, f"crowd-kit {cls}", cost=cost, needs="crowdkit")(
            _crowdkit_pipeline(agg(cls, **kwargs), accuracy)
        )


_register_crowdkit()
