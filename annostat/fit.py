"""One fit object for every model: posteriors, answers, volunteers, confusion, priors, trace; the fit folder.

A model fits each question of a :class:`~annostat.data.votes.Votes` table and hands back one :class:`QuestionFit` per
question (numpy arrays on codes). :class:`Fit` turns those into tables with the original labels:

========================  ============================================================================
``fit.posteriors``        subject, question, answer, p: p(true answer | votes), every answer
``fit.answers``           subject, question, answer, p: the most probable answer (``tie`` for majority vote)
``fit.volunteers``        volunteer, question, n, accuracy (prior-weighted diagonal of the confusion)
``fit.confusion``         volunteer, question, true_answer, answer, p = p(answer | true answer), count
``fit.priors``            question, answer, p
``fit.trace``             question, iteration, log_likelihood, log_prior
``fit.convergence``       question, iterations, converged, log_likelihood
========================  ============================================================================

Tables are pandas DataFrames (``fit.table(name)`` gives polars). ``fit.save(folder)`` writes ``subjects.parquet``
(the most probable answers), ``posteriors.parquet``, ``volunteers.parquet``, ``confusion.parquet``,
``priors.parquet``, ``trace.parquet``, ``votes.parquet`` (the votes fitted, with their original labels) and
``fit.json``, each atomically.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from annostat.data.votes import Votes
from annostat.files import atomic_write


@dataclass
class QuestionFit:
    """One question's fit, on codes. ``subjects``/``volunteers`` list the codes that have votes on the question."""

    question: int
    subjects: np.ndarray  # [S] subject codes
    posteriors: np.ndarray  # [S, K]
    volunteers: np.ndarray  # [V] volunteer codes
    n_votes: np.ndarray  # [V] votes per volunteer on this question
    confusion: np.ndarray  # [V, K, K] p(answer | true answer); NaN rows where nothing is known
    counts: np.ndarray  # [V, K, K] (expected) votes per (true answer, answer)
    accuracy: np.ndarray  # [V]
    priors: np.ndarray  # [K]
    log_likelihood: np.ndarray  # per iteration (empty for non-iterative models)
    log_prior: np.ndarray
    converged: bool = True
    ties: np.ndarray | None = None  # [S] bool, for models that break ties
    elbo: np.ndarray | None = None  # per iteration, for EM models
    volunteer_extras: dict[str, np.ndarray] | None = None  # [V] more volunteer columns (intervals, learning)
    inference: dict[str, Any] | None = None  # Bayesian models: draws and diagnostics for the ArviZ trace
    final_log_likelihood: float | None = None  # models whose trace is not a log-likelihood: at the final fit


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


class Fit:
    """The result of fitting a model to votes; see the module docstring for the tables."""

    TABLES = ("posteriors", "answers", "volunteers", "confusion", "priors", "trace", "convergence")

    def __init__(
        self, votes: Votes, model: str, settings: dict[str, Any], questions: list[QuestionFit], seconds: float
    ) -> None:
        self.votes = votes
        self.model = model
        self.settings = settings
        self.questions = questions
        self.seconds = seconds
        self._cache: dict[str, pl.DataFrame] = {}

    # ------------------------------------------------------------------ tables (pandas for users, polars inside)
    def table(self, name: str) -> pl.DataFrame:
        """One of :attr:`TABLES` as a polars DataFrame with the original labels."""
        if name not in self.TABLES:
            raise KeyError(f"no table {name!r}; the tables are {', '.join(self.TABLES)}")
        if name not in self._cache:
            self._cache[name] = getattr(self, f"_build_{name}")()
        return self._cache[name]

    posteriors = property(lambda self: self.table("posteriors").to_pandas(), doc="p(true answer) per subject")
    answers = property(lambda self: self.table("answers").to_pandas(), doc="most probable answer per subject")
    volunteers = property(lambda self: self.table("volunteers").to_pandas(), doc="accuracy per volunteer")
    confusion = property(lambda self: self.table("confusion").to_pandas(), doc="confusion matrices, long")
    priors = property(lambda self: self.table("priors").to_pandas(), doc="answer priors per question")
    trace = property(lambda self: self.table("trace").to_pandas(), doc="objective per iteration")
    convergence = property(lambda self: self.table("convergence").to_pandas(), doc="iterations and convergence")

    def _question_label(self, qf: QuestionFit, n: int) -> pl.Series:
        return self.votes.questions.gather(np.full(n, qf.question, np.int64))

    def _concat(self, parts: list[pl.DataFrame], schema: dict[str, Any]) -> pl.DataFrame:
        return pl.concat(parts) if parts else pl.DataFrame(schema=schema)

    def _build_posteriors(self) -> pl.DataFrame:
        parts = []
        for qf in self.questions:
            S, K = qf.posteriors.shape
            labels = self.votes.answers[qf.question]
            parts.append(pl.DataFrame({
                "subject": self.votes.subjects.gather(np.repeat(qf.subjects, K)),
                "question": self._question_label(qf, S * K),
                "answer": labels.gather(np.tile(np.arange(K), S)),
                "p": qf.posteriors.reshape(-1).astype(np.float32),
            }))
        return self._concat(parts, self._schema("subject", "question", "answer", p=pl.Float32))

    def _build_answers(self) -> pl.DataFrame:
        parts = []
        for qf in self.questions:
            best = np.argmax(qf.posteriors, axis=1)  # first maximum: the lowest answer code wins a tie
            S = len(best)
            cols = {
                "subject": self.votes.subjects.gather(qf.subjects),
                "question": self._question_label(qf, S),
                "answer": self.votes.answers[qf.question].gather(best),
                "p": qf.posteriors[np.arange(S), best].astype(np.float32),
            }
            if qf.ties is not None:
                cols["tie"] = qf.ties
            parts.append(pl.DataFrame(cols))
        return self._concat(parts, self._schema("subject", "question", "answer", p=pl.Float32))

    def _build_volunteers(self) -> pl.DataFrame:
        parts = [
            pl.DataFrame({
                "volunteer": self.votes.volunteers.gather(qf.volunteers),
                "question": self._question_label(qf, len(qf.volunteers)),
                "n": qf.n_votes.astype(np.int64),
                "accuracy": qf.accuracy.astype(np.float32),
                **{k: np.asarray(v, np.float32) for k, v in (qf.volunteer_extras or {}).items()},
            })
            for qf in self.questions
        ]
        return pl.concat(parts, how="diagonal") if parts else pl.DataFrame(
            schema=self._schema("volunteer", "question", n=pl.Int64, accuracy=pl.Float32))

    def _build_confusion(self) -> pl.DataFrame:
        parts = []
        for qf in self.questions:
            V, K, _ = qf.confusion.shape
            labels = self.votes.answers[qf.question]
            parts.append(pl.DataFrame({
                "volunteer": self.votes.volunteers.gather(np.repeat(qf.volunteers, K * K)),
                "question": self._question_label(qf, V * K * K),
                "true_answer": labels.gather(np.tile(np.repeat(np.arange(K), K), V)),
                "answer": labels.gather(np.tile(np.arange(K), V * K)),
                "p": qf.confusion.reshape(-1).astype(np.float32),
                "count": qf.counts.reshape(-1).astype(np.float32),
            }))
        return self._concat(
            parts, self._schema("volunteer", "question", "true_answer", "answer", p=pl.Float32, count=pl.Float32)
        )

    def _build_priors(self) -> pl.DataFrame:
        parts = [
            pl.DataFrame({
                "question": self._question_label(qf, len(qf.priors)),
                "answer": self.votes.answers[qf.question],
                "p": qf.priors.astype(np.float32),
            })
            for qf in self.questions
        ]
        return self._concat(parts, self._schema("question", "answer", p=pl.Float32))

    def _build_trace(self) -> pl.DataFrame:
        parts = [
            pl.DataFrame({
                "question": self._question_label(qf, len(qf.log_likelihood)),
                "iteration": np.arange(1, len(qf.log_likelihood) + 1, dtype=np.int64),
                "log_likelihood": qf.log_likelihood.astype(np.float64),
                "log_prior": qf.log_prior.astype(np.float64),
            })
            for qf in self.questions
        ]
        return self._concat(
            parts, self._schema("question", iteration=pl.Int64, log_likelihood=pl.Float64, log_prior=pl.Float64)
        )

    def _build_convergence(self) -> pl.DataFrame:
        rows = {
            "question": self.votes.questions.gather([qf.question for qf in self.questions]),
            "iterations": [len(qf.log_likelihood) for qf in self.questions],
            "converged": [bool(qf.converged) for qf in self.questions],
            "log_likelihood": [_final_log_likelihood(qf) for qf in self.questions],
        }
        return pl.DataFrame(rows, schema_overrides={"iterations": pl.Int64, "log_likelihood": pl.Float64})

    def _schema(self, *label_cols: str, **typed: Any) -> dict[str, Any]:
        sources = {
            "subject": self.votes.subjects.dtype,
            "volunteer": self.votes.volunteers.dtype,
            "question": self.votes.questions.dtype,
            "answer": self.votes.answers[0].dtype if self.votes.answers else pl.Utf8,
            "true_answer": self.votes.answers[0].dtype if self.votes.answers else pl.Utf8,
        }
        return {c: sources[c] for c in label_cols} | typed

    # ------------------------------------------------------------------ summaries
    @property
    def iterations(self) -> int:
        return max((len(qf.log_likelihood) for qf in self.questions), default=0)

    @property
    def converged(self) -> bool:
        return all(qf.converged for qf in self.questions)

    @property
    def log_likelihood(self) -> float | None:
        values = [v for v in map(_final_log_likelihood, self.questions) if v is not None]
        return float(np.sum(values)) if values else None

    def summary(self) -> dict[str, Any]:
        """What ``fit.json`` holds."""
        from annostat import __version__

        v = self.votes
        return _jsonable({
            "annostat_version": __version__,
            "model": self.model,
            "settings": self.settings,
            "columns": v.columns,
            "rows": v.report.to_dict(),
            **v.provenance,
            "votes": v.n_votes,
            "subjects": v.n_subjects,
            "volunteers": v.n_volunteers,
            "questions": [
                {
                    "question": v.questions[qf.question],
                    "answers": v.answers[qf.question].to_list(),
                    "votes": int(qf.n_votes.sum()),
                    "subjects": len(qf.subjects),
                    "volunteers": len(qf.volunteers),
                    "iterations": len(qf.log_likelihood),
                    "converged": bool(qf.converged),
                    "log_likelihood": _final_log_likelihood(qf),
                    **({"inference": _jsonable(qf.inference["diagnostics"]) | {
                        "method": qf.inference["method"], "seconds": round(qf.inference["seconds"], 3)}}
                       if qf.inference else {}),
                    **({"ties": int(qf.ties.sum())} if qf.ties is not None else {}),
                }
                for qf in self.questions
            ],
            "iterations": self.iterations,
            "converged": self.converged,
            "log_likelihood": self.log_likelihood,
            "seconds": round(self.seconds, 4),
        })

    def save(self, folder: str | Path) -> Path:
        """Write the fit folder (see the module docstring); returns the folder."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        files = {
            "subjects.parquet": "answers",
            "posteriors.parquet": "posteriors",
            "volunteers.parquet": "volunteers",
            "confusion.parquet": "confusion",
            "priors.parquet": "priors",
            "trace.parquet": "trace",
        }
        for filename, name in files.items():
            frame = self.table(name)
            atomic_write(folder / filename, frame.write_parquet)
        # the votes themselves (original labels), for catalogues and later analyses of the fit
        atomic_write(folder / "votes.parquet", self.votes.to_frame().write_parquet)
        if any(qf.inference for qf in self.questions):
            trace = self.inference_data()
            atomic_write(folder / "trace.nc", trace.to_netcdf)
        text = json.dumps(self.summary(), indent=2)
        atomic_write(folder / "fit.json", lambda tmp: Path(tmp).write_text(text + "\n", encoding="utf-8"))
        return folder

    def inference_data(self):
        """ArviZ ``InferenceData`` of a Bayesian fit: posterior draws of every parameter (one variable per question
        and parameter, named ``<parameter>[<question>]``), sample_stats (NUTS: its statistics; SVI/MAP: the loss per
        step), observed_data (each question's votes per subject, padded, with a mask, and each volunteer's
        ``agreement`` with the consensus), posterior_predictive (that agreement in votes replayed from the model, per
        draw) and log_likelihood (``votes[<question>]``: each subject's log-likelihood per draw, the unit of LOO and
        WAIC). The last two use up to 64 of the draws, as one chain."""
        import arviz as az

        posterior, stats, observed, predictive, pointwise, coords, dims = {}, {}, {}, {}, {}, {}, {}
        for qf in self.questions:
            if not qf.inference:
                continue
            inf, tag = qf.inference, f"[{qf.inference['question']}]"
            chains = inf["chains"]
            for name, value in inf["draws"].items():
                value = np.asarray(value)
                posterior[name + tag] = value.reshape(chains, -1, *value.shape[1:])
            if inf["sample_stats"]:
                for name, value in inf["sample_stats"].items():
                    stats[name + tag] = np.asarray(value)
            elif len(inf["losses"]):
                stats["loss" + tag] = np.asarray(inf["losses"])[None, :]
            for name, value in inf["observed"].items():
                observed[name + tag] = np.asarray(value, np.int32 if value.dtype == bool else value.dtype)
            volunteers = self.votes.volunteers.gather(qf.volunteers).cast(pl.Utf8).to_list()
            coords["volunteer" + tag] = volunteers
            dims["volunteer_offset" + tag] = ["volunteer" + tag]
            if inf.get("agreement") is not None:
                observed["agreement" + tag] = np.asarray(inf["agreement"])
                predictive["agreement" + tag] = np.asarray(inf["agreement_draws"])[None]
                dims["agreement" + tag] = ["volunteer" + tag]
            if inf.get("pointwise") is not None:
                pointwise["votes" + tag] = np.asarray(inf["pointwise"])[None]
                coords["subject" + tag] = self.votes.subjects.gather(qf.subjects).cast(pl.Utf8).to_list()
                dims["votes" + tag] = ["subject" + tag]
        return az.from_dict(posterior=posterior, sample_stats=stats or None, observed_data=observed or None,
                            posterior_predictive=predictive or None, log_likelihood=pointwise or None,
                            coords=coords or None, dims=dims or None)

    def __repr__(self) -> str:
        return (
            f"Fit(model={self.model!r}, {self.votes.n_votes:,} votes, {len(self.questions)} questions, "
            f"iterations={self.iterations}, converged={self.converged})"
        )


def _final_log_likelihood(qf: QuestionFit) -> float | None:
    if qf.final_log_likelihood is not None:
        return float(qf.final_log_likelihood)
    return float(qf.log_likelihood[-1]) if len(qf.log_likelihood) else None


def accuracy_from_confusion(confusion: np.ndarray, priors: np.ndarray) -> np.ndarray:
    """Prior-weighted diagonal: sum_k pi_k theta_v[k, k], the chance a volunteer answers a random subject right."""
    return np.einsum("vkk,k->v", confusion, priors)

