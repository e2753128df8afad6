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
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from annostat.data.subjects import Subjects
from annostat.data.votes import Votes
from annostat.errors import InputError, first_line
from annostat.files import WriteAhead, atomic_write, read_json, remove_stale

if TYPE_CHECKING:
    import arviz as az


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
    prior_weight: float | None = None  # the weight given to a classifier's evidence (fits with a prior)


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

    #: the tables :meth:`table` gives, by name
    TABLES = ("posteriors", "answers", "volunteers", "confusion", "priors", "trace", "convergence")

    def __init__(
        self,
        votes: Votes,
        model: str,
        settings: dict[str, Any],
        questions: list[QuestionFit],
        seconds: float,
        extra_subjects: pl.Series | None = None,
        prior_summary: dict[str, Any] | None = None,
    ) -> None:
        """``questions`` index subjects by code: the votes' subjects, then ``extra_subjects`` (subjects the fit answers
        without votes, e.g. from a prior), in that order."""
        self.votes = votes
        self.model = model
        self.settings = settings
        self.questions = questions
        self.seconds = seconds
        self.extra_subjects = extra_subjects
        self.prior_summary = prior_summary
        self.update_summary: dict[str, Any] | None = None  # an update's record (annostat.live.update)
        self._cache: dict[str, pl.DataFrame] = {}
        self._subjects: Subjects | None = None

    @property
    def subject_labels(self) -> pl.Series:
        """The label of every subject code the fit uses: the votes' subjects, then the subjects without votes."""
        labels = self.votes.subjects
        if self.extra_subjects is not None and len(self.extra_subjects):
            labels = pl.concat([labels, self.extra_subjects.cast(labels.dtype).rename(labels.name)])
        return labels

    @property
    def subjects(self) -> Subjects:
        """The fit's subjects (:class:`~annostat.data.subjects.Subjects`): every subject code, in code order, with
        ``n_votes`` (votes on any question) and the metadata and images the reader had (``votes.subject_table``)."""
        if self._subjects is None:
            labels = self.subject_labels
            counts = np.bincount(self.votes.codes("subject"), minlength=len(labels))
            table = Subjects(pl.DataFrame({"subject": labels, "n_votes": counts.astype(np.int64)}), "fit")
            if self.votes.subject_table is not None:
                table = table.merge(self.votes.subject_table.subset(labels))
            self._subjects = table
        return self._subjects

    # ------------------------------------------------------------------ tables (pandas for users, polars inside)
    def table(self, name: str) -> pl.DataFrame:
        """One of :attr:`~annostat.fit.Fit.TABLES` as a polars DataFrame with the original labels."""
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
            parts.append(
                pl.DataFrame(
                    {
                        "subject": self.subject_labels.gather(np.repeat(qf.subjects, K)),
                        "question": self._question_label(qf, S * K),
                        "answer": labels.gather(np.tile(np.arange(K), S)),
                        "p": qf.posteriors.reshape(-1).astype(np.float32),
                    }
                )
            )
        return self._concat(parts, self._schema("subject", "question", "answer", p=pl.Float32))

    def _build_answers(self) -> pl.DataFrame:
        parts = []
        for qf in self.questions:
            best = np.argmax(qf.posteriors, axis=1)  # first maximum: the lowest answer code wins a tie
            S = len(best)
            cols = {
                "subject": self.subject_labels.gather(qf.subjects),
                "question": self._question_label(qf, S),
                "answer": self.votes.answers[qf.question].gather(best),
                "p": qf.posteriors[np.arange(S), best].astype(np.float32),
                "n_votes": self._votes_per_subject(qf),
            }
            if qf.ties is not None:
                cols["tie"] = qf.ties
            parts.append(pl.DataFrame(cols))
        return self._concat(parts, self._schema("subject", "question", "answer", p=pl.Float32, n_votes=pl.Int64))

    def _votes_per_subject(self, qf: QuestionFit) -> np.ndarray:
        """Votes on the question of each of ``qf``'s subjects (0 for subjects answered without votes)."""
        counts = np.bincount(self.votes.arrays(qf.question)[0], minlength=len(self.subject_labels))
        return counts[qf.subjects].astype(np.int64)

    def _build_volunteers(self) -> pl.DataFrame:
        experts = self.votes.experts is not None
        parts = [
            pl.DataFrame(
                {
                    "volunteer": self.votes.volunteers.gather(qf.volunteers),
                    "question": self._question_label(qf, len(qf.volunteers)),
                    "n": qf.n_votes.astype(np.int64),
                    "accuracy": qf.accuracy.astype(np.float32),
                    **({"expert": self.votes.expert_mask(qf.volunteers)} if experts else {}),
                    **{k: np.asarray(v, np.float32) for k, v in (qf.volunteer_extras or {}).items()},
                }
            )
            for qf in self.questions
        ]
        return (
            pl.concat(parts, how="diagonal")
            if parts
            else pl.DataFrame(schema=self._schema("volunteer", "question", n=pl.Int64, accuracy=pl.Float32))
        )

    def _build_confusion(self) -> pl.DataFrame:
        parts = []
        for qf in self.questions:
            V, K, _ = qf.confusion.shape
            labels = self.votes.answers[qf.question]
            parts.append(
                pl.DataFrame(
                    {
                        "volunteer": self.votes.volunteers.gather(np.repeat(qf.volunteers, K * K)),
                        "question": self._question_label(qf, V * K * K),
                        "true_answer": labels.gather(np.tile(np.repeat(np.arange(K), K), V)),
                        "answer": labels.gather(np.tile(np.arange(K), V * K)),
                        "p": qf.confusion.reshape(-1).astype(np.float32),
                        "count": qf.counts.reshape(-1).astype(np.float32),
                    }
                )
            )
        return self._concat(
            parts, self._schema("volunteer", "question", "true_answer", "answer", p=pl.Float32, count=pl.Float32)
        )

    def _build_priors(self) -> pl.DataFrame:
        parts = [
            pl.DataFrame(
                {
                    "question": self._question_label(qf, len(qf.priors)),
                    "answer": self.votes.answers[qf.question],
                    "p": qf.priors.astype(np.float32),
                }
            )
            for qf in self.questions
        ]
        return self._concat(parts, self._schema("question", "answer", p=pl.Float32))

    def _build_trace(self) -> pl.DataFrame:
        parts = [
            pl.DataFrame(
                {
                    "question": self._question_label(qf, len(qf.log_likelihood)),
                    "iteration": np.arange(1, len(qf.log_likelihood) + 1, dtype=np.int64),
                    "log_likelihood": qf.log_likelihood.astype(np.float64),
                    "log_prior": qf.log_prior.astype(np.float64),
                }
            )
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
        return _jsonable(
            {
                "annostat_version": __version__,
                "model": self.model,
                "settings": self.settings,
                "columns": v.columns,
                "rows": v.report.to_dict(),
                **v.provenance,
                "votes": v.n_votes,
                "subjects": v.n_subjects,
                **({"subjects_without_votes": len(self.extra_subjects)} if self.extra_subjects is not None else {}),
                "volunteers": v.n_volunteers,
                **({"prior": self.prior_summary} if self.prior_summary is not None else {}),
                **({"gold": v.gold_summary} if v.gold_summary is not None else {}),
                **({"experts": len(v.experts)} if v.experts is not None else {}),
                "questions": [
                    {
                        "question": v.questions[qf.question],
                        "answers": v.answers[qf.question].to_list(),
                        "votes": int(qf.n_votes.sum()),
                        "subjects": len(qf.subjects),
                        **(
                            {"subjects_with_votes": int((self._votes_per_subject(qf) > 0).sum())}
                            if self.prior_summary is not None
                            else {}
                        ),
                        "volunteers": len(qf.volunteers),
                        "iterations": len(qf.log_likelihood),
                        "converged": bool(qf.converged),
                        "log_likelihood": _final_log_likelihood(qf),
                        **(
                            {
                                "inference": _jsonable(qf.inference["diagnostics"])
                                | {"method": qf.inference["method"], "seconds": round(qf.inference["seconds"], 3)}
                            }
                            if qf.inference
                            else {}
                        ),
                        **({"ties": int(qf.ties.sum())} if qf.ties is not None else {}),
                        **({"prior_weight": qf.prior_weight} if qf.prior_weight is not None else {}),
                    }
                    for qf in self.questions
                ],
                **({"update": self.update_summary} if self.update_summary is not None else {}),
                "iterations": self.iterations,
                "converged": self.converged,
                "log_likelihood": self.log_likelihood,
                "seconds": round(self.seconds, 4),
            }
        )

    def save(self, folder: str | Path, votes_ahead: WriteAhead | None = None) -> Path:
        """Write the fit folder (see the module docstring); returns the folder. ``votes_ahead``: ``votes.parquet``
        started by :func:`~annostat.fit.votes_ahead` before the fit, used if it holds these votes."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        if (folder / "fit.json").is_file():  # re-fitting into a fit folder: nothing of the last fit may linger
            remove_stale(folder, FIT_FOLDER_ENTRIES, self.entries_written())
        for name, filename in FILES.items():
            atomic_write(folder / filename, self.table(name).write_parquet)
        # the votes themselves (original labels), for catalogues and later analyses of the fit; the subjects
        if (
            votes_ahead is not None
            and votes_ahead.path == folder / "votes.parquet"
            and votes_ahead.holds
            == (
                id(self.votes),
                self._uses_experience(),
            )
        ):
            votes_ahead.place()  # written while the model fitted
        else:
            atomic_write(folder / "votes.parquet", lambda tmp: write_votes(self.votes, tmp, self._uses_experience()))
        atomic_write(folder / "subject_data.parquet", self.subjects.frame.write_parquet)
        if self.votes.gold is not None:  # the gold answers the fit used, so later commands use them too
            atomic_write(folder / "gold.parquet", self.votes.gold.frame.drop("row").write_parquet)
        if any(qf.inference for qf in self.questions):
            trace = self.inference_data()
            atomic_write(folder / "trace.nc", trace.to_netcdf)
        text = json.dumps(self.summary(), indent=2)
        atomic_write(folder / "fit.json", lambda tmp: Path(tmp).write_text(text + "\n", encoding="utf-8"))
        return folder

    def entries_written(self) -> set[str]:
        """The entries of the fit folder :meth:`save` writes (the rest of :data:`~annostat.fit.FIT_FOLDER_ENTRIES` is
        removed)."""
        written = {*FILES.values(), "votes.parquet", "subject_data.parquet", "fit.json"}
        written |= {"gold.parquet"} if self.votes.gold is not None else set()
        return written | ({"trace.nc"} if any(qf.inference for qf in self.questions) else set())

    def vote_table(self) -> pl.DataFrame:
        """The votes fitted, with their original labels (``votes.parquet``): subject, volunteer, question, answer,
        row, time, and for a model of learning (one that reads them) experience, experience_question (a fit folder
        read back recomputes them from the times)."""
        return self.votes.to_frame(experience=self._uses_experience())

    def _uses_experience(self) -> bool:
        return uses_experience(self.model)

    def update(self, new_votes: Any, **options: Any) -> Fit:
        """The fit of these votes and ``new_votes`` together, warm-started from this one
        (:func:`annostat.live.update.update`: incremental EM for Dawid-Skene)."""
        from annostat.live.update import update

        return update(self, new_votes, **options)

    @classmethod
    def load(cls, folder: str | Path) -> SavedFit:
        """Read a fit folder written by :meth:`save` (or ``annostat fit``): the same tables, fit.json as
        :meth:`summary`, the votes from ``votes.parquet`` and the ArviZ trace from ``trace.nc``. A folder that is
        not a fit, or whose files are missing, truncated or unreadable, is an :class:`~annostat.errors.InputError`
        naming the file."""
        return SavedFit(folder)

    def inference_data(self) -> az.InferenceData:
        """ArviZ ``InferenceData`` of a Bayesian fit (:func:`annostat.infer.trace.inference_data`)."""
        from annostat.infer.trace import inference_data

        return inference_data(self)

    def __repr__(self) -> str:
        return (
            f"Fit(model={self.model!r}, {self.votes.n_votes:,} votes, {len(self.questions)} questions, "
            f"iterations={self.iterations}, converged={self.converged})"
        )


def uses_experience(model: str) -> bool:
    """Whether a fit folder of ``model`` keeps the votes' experience columns (a model of learning reads them)."""
    from annostat.models.registry import REGISTRY

    spec = REGISTRY.get(model)
    return spec is None or spec.can("learning")


def write_votes(votes: Votes, path: str | Path, experience: bool) -> None:
    """``votes.parquet``: :meth:`~annostat.data.votes.Votes.to_frame` made a part at a time and streamed to the file by polars (one row
    group a part, encoded on every core), so that at Galaxy Zoo's size the labelled table (text labels of 100M votes)
    is never in memory whole."""
    from polars.io.plugins import register_io_source

    def parts(*_: Any) -> Iterator[pl.DataFrame]:
        for start in range(0, max(votes.n_votes, 1), VOTES_PART):
            yield votes.to_frame(experience, slice(start, start + VOTES_PART))

    schema = votes.to_frame(experience, slice(0, 0)).schema
    register_io_source(parts, schema=schema).sink_parquet(path, compression="zstd", row_group_size=VOTES_PART)


def votes_ahead(votes: Votes, folder: str | Path, model: str) -> WriteAhead:
    """Start writing the fit folder's ``votes.parquet`` for a fit of ``model`` to ``votes`` on a worker thread, for
    :meth:`~annostat.fit.Fit.save` to place once the model has fitted (``with votes_ahead(...) as ahead: ...
    fit.save(folder, ahead)``; leaving the block unplaced removes it)."""
    experience = uses_experience(model)
    return WriteAhead(
        Path(folder) / "votes.parquet", lambda tmp: write_votes(votes, tmp, experience), holds=(id(votes), experience)
    )


#: the fit folder's tables and their files
FILES = {
    "answers": "subjects.parquet",
    "posteriors": "posteriors.parquet",
    "volunteers": "volunteers.parquet",
    "confusion": "confusion.parquet",
    "priors": "priors.parquet",
    "trace": "trace.parquet",
}
VOTES_PART = 4_000_000  # votes a row group of votes.parquet when written in parts

#: every entry annostat writes in a fit folder: the fit's own (``fit``, the joint model's ``network/``,
#: ``training.parquet`` and ``figures/``, the export's ``quarantine.csv``) and what later commands write there by
#: default (``catalogue``, ``plot``); a re-fit removes those it does not write, so no file of an earlier fit survives
FIT_FOLDER_ENTRIES = (
    *FILES.values(),
    "votes.parquet",
    "subject_data.parquet",
    "fit.json",
    "gold.parquet",
    "trace.nc",
    "network",
    "training.parquet",
    "figures",
    "quarantine.csv",
    "catalogue.parquet",
    "catalogue.csv",
    "catalogue_columns.csv",
    "plots",
)
#: the columns each file of a fit folder must have
NEEDED = {
    "answers": {"subject", "question", "answer", "p"},
    "posteriors": {"subject", "question", "answer", "p"},
    "volunteers": {"volunteer", "question", "n", "accuracy"},
    "confusion": {"volunteer", "question", "true_answer", "answer", "p", "count"},
    "priors": {"question", "answer", "p"},
    "trace": {"question", "iteration", "log_likelihood"},
    "votes": {"subject", "volunteer", "question", "answer"},
    "gold": {"subject", "question", "answer"},
}


class SavedFit(Fit):
    """A fit read back from its folder (:meth:`Fit.load`): the tables, the summary and the trace, read when asked for;
    the model's per-question arrays are not kept in the folder, so ``questions`` is empty."""

    def __init__(self, folder: str | Path) -> None:
        folder = Path(folder)
        if not folder.is_dir():
            raise InputError(f"{folder}: not a folder (expected a fit folder written by annostat fit)")
        info_path = folder / "fit.json"
        if not info_path.is_file():
            raise InputError(f"{folder}: not a fit folder (no fit.json); make one with annostat fit")
        info = read_json(info_path, "a fit.json written by annostat fit")
        if not isinstance(info, dict) or not isinstance(info.get("questions"), list) or "model" not in info:
            raise InputError(f"{info_path}: not a fit.json written by annostat (no model or questions)")
        for i, q in enumerate(info["questions"]):
            if not (
                isinstance(q, dict)
                and isinstance(q.get("question"), (str, int))
                and isinstance(q.get("answers"), list)
                and q["answers"]
            ):
                raise InputError(f"{info_path}: questions[{i}] is not a question with its answers (a damaged fit.json)")
        self.folder, self.info = folder, info
        self.model, self.settings = str(info["model"]), info.get("settings") or {}
        self.questions, self.seconds = [], float(info.get("seconds") or 0.0)
        self.extra_subjects, self.prior_summary, self.update_summary = None, info.get("prior"), info.get("update")
        self._cache: dict[str, pl.DataFrame] = {}
        self._subjects: Subjects | None = None
        self._votes: Votes | None = None
        self._vote_table: pl.DataFrame | None = None

    def _read(self, name: str, filename: str) -> pl.DataFrame:
        path = self.folder / filename
        if not path.is_file():
            raise InputError(f"{path}: file not found (not a complete fit folder)")
        try:
            frame = pl.read_parquet(path)
        except Exception as exc:  # noqa: BLE001 - pyarrow and polars raise several kinds
            reason = first_line(exc)
            raise InputError(f"{path}: not a readable Parquet file ({reason})") from None
        missing = NEEDED.get(name, set()) - set(frame.columns)
        if missing:
            raise InputError(f"{path}: column(s) {', '.join(sorted(missing))} missing")
        return frame

    def table(self, name: str) -> pl.DataFrame:
        if name not in self.TABLES:
            raise KeyError(f"no table {name!r}; the tables are {', '.join(self.TABLES)}")
        if name not in self._cache:
            if name == "convergence":
                rows = [
                    {
                        "question": q.get("question"),
                        "iterations": q.get("iterations"),
                        "converged": q.get("converged"),
                        "log_likelihood": q.get("log_likelihood"),
                    }
                    for q in self.info["questions"]
                ]
                self._cache[name] = pl.DataFrame(
                    rows, schema_overrides={"iterations": pl.Int64, "log_likelihood": pl.Float64}
                )
            else:
                self._cache[name] = self._read(name, FILES[name])
        return self._cache[name]

    def vote_table(self) -> pl.DataFrame:
        if self._vote_table is None:
            self._vote_table = self._read("votes", "votes.parquet")
        return self._vote_table

    @property
    def votes(self) -> Votes:
        """The votes fitted, rebuilt from ``votes.parquet`` with the fit's answer sets (codes as in the fit), with
        what they were read from, the subjects' metadata (``subject_data.parquet``), gold answers and experts."""
        if self._votes is None:
            frame = self.vote_table()
            answers = {q["question"]: q["answers"] for q in self.info["questions"] if "answers" in q}
            has_time = "time" in frame.columns and frame["time"].null_count() < frame.height
            self._votes = Votes.from_frame(
                frame.sort("row") if "row" in frame.columns else frame,
                answers=answers,
                duplicates="all",
                time="time" if has_time else None,
                source=str(self.folder / "votes.parquet"),
            )
            if isinstance(self.info.get("columns"), dict) and self.info["columns"]:
                self._votes.columns = dict(self.info["columns"])  # what the votes were read from (an export)
            if (self.folder / "subject_data.parquet").is_file():  # the subjects' metadata and images, as read
                self._votes.subject_table = self.subjects
            gold = self.folder / "gold.parquet"
            if gold.is_file():
                from annostat.data.gold import Gold

                self._votes.attach_gold(Gold(self._read("gold", "gold.parquet"), str(gold)))
            volunteers = self.table("volunteers")
            if "expert" in volunteers.columns:
                self._votes.attach_experts(volunteers.filter(pl.col("expert"))["volunteer"].unique())
        return self._votes

    @votes.setter
    def votes(self, votes: Votes) -> None:
        self._votes = votes

    @property
    def subjects(self) -> Subjects:
        if self._subjects is None:
            path = self.folder / "subject_data.parquet"
            if path.is_file():
                self._subjects = Subjects(self._read("subjects", "subject_data.parquet"), str(path))
            else:  # folders written before the subjects table: the subjects the votes name
                self._subjects = Subjects.from_ids(self.vote_table()["subject"].unique(maintain_order=True))
        return self._subjects

    @property
    def subject_labels(self) -> pl.Series:
        return self.subjects.ids

    @property
    def iterations(self) -> int:
        return int(self.info.get("iterations") or 0)

    @property
    def converged(self) -> bool:
        return bool(self.info.get("converged", True))

    @property
    def log_likelihood(self) -> float | None:
        return self.info.get("log_likelihood")

    def summary(self) -> dict[str, Any]:
        return self.info

    def inference_data(self) -> az.InferenceData:
        """The ArviZ trace saved as ``trace.nc`` (a Bayesian fit's)."""
        import arviz as az

        path = self.folder / "trace.nc"
        if not path.is_file():
            raise InputError(f"{path}: file not found (only Bayesian fits write a trace)")
        try:
            return az.from_netcdf(path)
        except Exception as exc:  # noqa: BLE001 - netCDF/HDF5 readers raise several kinds
            raise InputError(f"{path}: not a readable netCDF trace ({first_line(exc)})") from None

    def save(self, folder: str | Path, votes_ahead: WriteAhead | None = None) -> Path:
        raise NotImplementedError("a fit read from its folder is saved already; copy the folder instead")

    def __repr__(self) -> str:
        return f"Fit(model={self.model!r}, read from {self.folder}, {len(self.info['questions'])} questions)"


def _final_log_likelihood(qf: QuestionFit) -> float | None:
    if qf.final_log_likelihood is not None:
        return float(qf.final_log_likelihood)
    return float(qf.log_likelihood[-1]) if len(qf.log_likelihood) else None


def accuracy_from_confusion(confusion: np.ndarray, priors: np.ndarray) -> np.ndarray:
    """Prior-weighted diagonal: sum_k pi_k theta_v[k, k], the chance a volunteer answers a random subject right."""
    return np.einsum("vkk,k->v", confusion, priors)
