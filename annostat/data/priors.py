r"""Per-subject answer priors from a machine-learning classifier (Zoobot's predictions, or any table of probabilities).

Galaxy Zoo scientists have a classifier's predictions for millions of galaxies. ``annostat fit VOTES --prior TABLE``
(or ``model.fit(votes, prior=read_prior(...))``) lets every model that can (``subject_prior`` in the registry) use
them. Formats, recognised by their columns:

- annostat's own ``posteriors.parquet`` (long: ``subject, question, answer, p``), e.g. another fit's answers;
- a Zoobot prediction table: ``{question}_{answer}_fraction`` columns (expected vote fractions), or Dirichlet
  concentrations ``{question}_{answer}`` / ``{question}_{answer}_concentration`` (a number, or a list of numbers, one
  per forward pass), turned into expected fractions (each concentration over the question's sum, averaged over the
  passes); question names may carry Zoobot's survey suffix (``smooth-or-featured-dr8_smooth``);
- any wide table of probabilities, ``{question}_{answer}`` (or, for votes with one question, ``{answer}``).

Each question's values are normalised over its answers. Names are matched through the votes' decision tree (the
export's tree preset, else the votes' own questions and answers): a column that names a question with an answer it
does not have, or a ``_fraction``/``_concentration`` column of no known question, is an error naming the column;
questions of the tree that the votes do not hold are ignored. The id column is ``--prior-id-col``, else the first of
``subject``, ``subject_id``, ``subject_ids``, ``id_str``, ``iauname``, ``id``; ids are matched to the votes'
subjects (ids that are no subject of the votes are galaxies without votes, answered from the prior), or, where
none match, to the subjects' metadata column of the same name (an export's ``iauname``; ids that name no subject are
left out and counted in fit.json).

**How a prior enters the model.** A classifier's prediction :math:`q_{sk}` is evidence about subject :math:`s` from
its image. It enters the subject's prior as its ratio to the classifier's average prediction :math:`\bar q_k` over
the subjects it predicts (the base rate it learned), with a weight :math:`w`:

.. math:: \log \pi_{sk} = \log \mathrm{softmax}_k\big(\log \pi_k + w\,(\log q_{sk} - \log \bar q_k)\big)

(:func:`annostat.models.likelihood.evidence_log_prior`), with :math:`\pi` the global answer prior, which the model
still fits. The weight is learned from the votes, between 0 and ``weight`` (``--prior-weight``, default 1), unless
``learn_weight=False`` (``--fixed-prior-weight``): EM maximises over :math:`(\pi, w)` in its M-step, the NumPyro
models give :math:`w` a uniform prior. So the votes say how far to trust the classifier. Where the project's answer
frequencies match the classifier's, a calibrated classifier's prediction is used as it is (:math:`w \approx 1`); an
over-confident one is tempered (:math:`w < 1`, temperature scaling against the votes); a wrong one is ignored
(:math:`w \to 0`); a flat or constant prediction carries no evidence (:math:`\log q_{sk} - \log \bar q_k = 0`) and
gives exactly the plain fit. Subjects without a prior get the fitted global one. Probabilities are floored at
:data:`FLOOR` (a classifier's exact 0 never overrules the votes). Subjects with a prior and no votes are answered
from it, the fitted global prior and the fitted weight (they do not inform the fit).

References: M. Saerens, P. Latinne, C. Decaestecker (2002), Adjusting the outputs of a classifier to new a priori
probabilities: a simple procedure, Neural Computation 14(1), 21-41 (the EM for a classifier's outputs under new
answer frequencies); C. Guo, G. Pleiss, Y. Sun, K. Q. Weinberger (2017), On calibration of modern neural networks,
ICML (temperature scaling).

Example:
    >>> import pandas as pd
    >>> from annostat import Votes
    >>> votes = Votes.from_frame(pd.DataFrame({"subject": [1, 1, 2], "volunteer": ["a", "b", "a"],
    ...                                        "answer": ["smooth", "featured", "smooth"]}))
    >>> prior = read_prior(pd.DataFrame({"subject": [1, 2, 3], "smooth": [0.9, 0.2, 0.5],
    ...                                  "featured": [0.1, 0.8, 0.5]}), votes)
    >>> prior.summary(votes)["subjects"], prior.summary(votes)["subjects_without_votes"]
    (3, 1)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from annostat.data.subjects import Subjects
from annostat.data.trees import TREES
from annostat.data.votes import Votes
from annostat.errors import InputError

#: id columns recognised, in order
ID_COLUMNS = ("subject", "subject_id", "subject_ids", "id_str", "iauname", "id")
#: probabilities are floored here before their logarithm
FLOOR = 1e-6
_SURVEY_SUFFIX = r"(?:-(?:gz2|desi|euclid|jwst|ceers|candels|hubble|[a-z]*\d+))?"  # Zoobot's -dr8, -dr12, -gz2
#: column endings and the kind of prediction they hold, in order of preference when a table has several
_KINDS = (("_posterior", "posterior"), ("_fraction", "fraction"), ("_concentration", "concentration"))
_DESCRIPTIONS = {
    "posterior": "catalogue posteriors ({question}_{answer}_posterior)",
    "fraction": "Zoobot vote fractions ({question}_{answer}_fraction)",
    "concentration": "Zoobot Dirichlet concentrations ({question}_{answer}_concentration)",
    "bare": "wide table ({question}_{answer}: probabilities or Dirichlet concentrations)",
}


@dataclass
class SubjectPrior:
    """A classifier's per-subject answer probabilities, matched to a votes table (see the module docstring).

    ``table`` is long: subject (a label of the votes' subjects, or a subject without votes), question, answer, p
    (normalised over each question's answers)."""

    table: pl.DataFrame
    weight: float
    source: str
    format: str
    id_column: str
    matched_by: str
    unmatched: int = 0  # ids left out: the subjects' metadata names no subject by them
    learn_weight: bool = True  # learn the weight from the votes, up to ``weight`` (False: use ``weight`` as it is)

    def __post_init__(self) -> None:
        if not np.isfinite(self.weight) or self.weight < 0:
            raise InputError(f"{self.source}: the prior weight must be a number >= 0, not {self.weight}")

    @property
    def subjects(self) -> pl.Series:
        return self.table["subject"].unique(maintain_order=True)

    def subjects_without_votes(self, votes: Votes) -> pl.Series:
        """The prior's subjects that have no vote at all, in the prior's order."""
        ids = self.subjects
        return ids.filter(votes.codes_of("subject", ids) < 0)

    def evidence(self, votes: Votes, question: int, labels: pl.Series) -> Evidence | None:
        """The classifier's evidence about the subjects ``labels`` on question code ``question``, with the weight
        to give it; None where it has none (no subject with a prior, weight 0, or the same prediction for every
        subject, which carries no evidence)."""
        ratio, has = self.log_evidence(votes, question, labels)
        if not has.any() or self.weight == 0 or not ratio.any():
            return None
        return Evidence(ratio, self.weight, self.learn_weight)

    def log_evidence(self, votes: Votes, question: int, labels: pl.Series) -> tuple[np.ndarray, np.ndarray]:
        """([S, K] float32 log-ratio, [S] bool has a prior) for the subjects ``labels`` on question code
        ``question``: ``log q - log q_mean`` (module docstring), 0 where a subject has no prior."""
        answers = votes.answers[question]
        K = len(answers)
        part = self.table.filter(pl.col("question") == votes.questions[question])
        out = np.zeros((len(labels), K), np.float32)
        has = np.zeros(len(labels), bool)
        if part.height == 0:
            return out, has
        wide = part.pivot(on="answer", index="subject", values="p", aggregate_function="first")
        q = np.stack(
            [
                wide[str(a)].to_numpy().astype(np.float32)
                if str(a) in wide.columns
                else np.zeros(wide.height, np.float32)
                for a in answers.cast(pl.Utf8)
            ],
            axis=1,
        )
        q = np.maximum(q, np.float32(FLOOR))
        q /= q.sum(axis=1, keepdims=True)
        # the classifier's base rate: its mean prediction over every subject it predicts (exact for equal rows)
        log_ratio = np.log(q) - np.log(q.astype(np.float64).mean(axis=0).astype(np.float32))
        at = (
            pl.DataFrame({"subject": labels})
            .with_row_index("position")
            .join(
                pl.DataFrame({"subject": wide["subject"].cast(labels.dtype, strict=False)}).with_row_index("row"),
                on="subject",
                how="inner",
            )
        )
        rows, positions = at["row"].to_numpy(), at["position"].to_numpy()
        out[positions] = log_ratio[rows]
        has[positions] = True
        return out, has

    def summary(self, votes: Votes | None = None) -> dict[str, Any]:
        """What fit.json records: where the prior came from and how many subjects had one."""
        out: dict[str, Any] = {
            "source": self.source,
            "format": self.format,
            "weight": self.weight,
            "weight_learned": self.learn_weight,
            "id_column": self.id_column,
            "matched_by": self.matched_by,
            "subjects": int(self.subjects.len()),
            "ids_not_matched": self.unmatched,
            "questions": sorted(self.table["question"].unique().to_list()),
        }
        if votes is not None:
            without = int(self.subjects_without_votes(votes).len())
            out.update(subjects_with_votes=out["subjects"] - without, subjects_without_votes=without)
        return out


@dataclass
class Evidence:
    """One question's classifier evidence for the subjects a model fits (in the order of their codes): the
    log-ratios ``log q - log q_mean`` [S, K], the weight to give them, and whether to learn it (up to ``weight``)."""

    log_ratio: np.ndarray
    weight: float = 1.0
    learn: bool = True

    def subset(self, rows: np.ndarray) -> Evidence:
        """The evidence of some of the subjects (positions in this one's order)."""
        return Evidence(self.log_ratio[rows], self.weight, self.learn)


def read_prior(
    table: str | Path | Any,
    votes: Votes,
    *,
    id_column: str | None = None,
    weight: float = 1.0,
    learn_weight: bool = True,
    subjects: Subjects | None = None,
    tree: str | None = None,
) -> SubjectPrior:
    """Read a prior table (a path, or a pandas/polars frame) and match it to ``votes`` (module docstring).

    ``subjects`` (default: the votes' own subjects table) lets ids such as ``iauname`` match through metadata;
    ``tree`` (default: the export's tree preset) names the questions and answers that columns may use."""
    from annostat.data.io.tables import read_table

    source = str(table) if isinstance(table, (str, Path)) else "<prior table>"
    frame = read_table(table) if isinstance(table, (str, Path)) else table
    if not isinstance(frame, pl.DataFrame):
        try:
            frame = pl.from_pandas(frame)
        except Exception as exc:  # noqa: BLE001 - pandas/pyarrow raise several kinds
            raise InputError(f"{source}: cannot read the prior table: {exc}") from None
    if frame.height == 0:
        raise InputError(f"{source}: the prior table has no rows")
    id_column = id_column or next((c for c in ID_COLUMNS if c in frame.columns), None)
    if id_column is None or id_column not in frame.columns:
        raise InputError(
            f"{source}: no id column {id_column or ''!r}; give one with --prior-id-col (columns: "
            f"{', '.join(frame.columns[:12])}{', ...' if frame.width > 12 else ''})"
        )
    if frame[id_column].null_count():
        raise InputError(f"{source}, column {id_column!r}: a row without an id")
    if {"question", "answer", "p"} <= set(frame.columns):
        long, kind = _long(frame, id_column, votes, source), "long (subject, question, answer, p): annostat posteriors"
    else:
        long, kind = _wide(frame, id_column, votes, tree or (votes.provenance.get("export") or {}).get("tree"), source)
    long, matched_by, unmatched = _match_ids(long, id_column, votes, subjects or votes.subject_table, source)
    return SubjectPrior(long, float(weight), source, kind, id_column, matched_by, unmatched, bool(learn_weight))


def _long(frame: pl.DataFrame, id_column: str, votes: Votes, source: str) -> pl.DataFrame:
    """annostat's posteriors format: every (question, answer) must be one of the votes'."""
    long = frame.select(
        pl.col(id_column).alias("subject"),
        pl.col("question").cast(pl.Utf8),
        pl.col("answer").cast(pl.Utf8),
        pl.col("p").cast(pl.Float64, strict=False),
    )
    known = {str(q): {str(a) for a in votes.answers[i]} for i, q in enumerate(votes.questions)}
    for question, answer in long.select("question", "answer").unique().iter_rows():
        if question not in known:
            continue  # a question these votes do not hold
        if answer not in known[question]:
            raise InputError(
                f"{source}, column 'answer': {answer!r} is not an answer of {question} "
                f"({', '.join(sorted(known[question]))})"
            )
    long = long.filter(pl.col("question").is_in(list(known)))
    return _normalised(long, source)


def _wide(frame: pl.DataFrame, id_column: str, votes: Votes, tree: str | None, source: str):
    """Zoobot's fractions or concentrations, or a wide table of probabilities -> long."""
    held = {str(q): [str(a) for a in votes.answers[i]] for i, q in enumerate(votes.questions)}
    named = dict(held)
    if tree in TREES:  # the tree's questions may appear too (ignored when the votes lack them)
        named = {**{q.name: list(q.answers) for q in TREES[tree].questions.values()}, **held}
    columns: list[tuple[str, str, str, str]] = []  # (column, question, answer, kind)
    for column in frame.columns:
        if column == id_column:
            continue
        found = _parse_column(column, named)
        if found is None:
            if column.endswith(tuple(tail for tail, _ in _KINDS)):
                raise InputError(
                    f"{source}, column {column!r}: names no question of the votes or the tree "
                    f"({', '.join(sorted(named))})"
                )
            continue  # ids, coordinates, counts: not a prediction
        question, answer, kind = found
        if answer is None:
            raise InputError(f"{source}, column {column!r}: not an answer of {question} ({', '.join(named[question])})")
        columns.append((column, question, answer, kind))
    columns = [c for c in columns if c[1] in held]
    if not columns:
        raise InputError(
            f"{source}: no column names a question and answer of the votes (expected "
            f"{{question}}_{{answer}}[_fraction|_concentration], e.g. "
            f"{next(iter(held))}_{held[next(iter(held))][0]}_fraction)"
        )
    kinds = {kind for *_, kind in columns}
    kind = next(name for name in ("posterior", "fraction", "concentration", "bare") if name in kinds)
    columns = [c for c in columns if c[3] == kind]
    parts = []
    for column, question, answer, _ in columns:
        value = frame[column]
        if value.dtype == pl.Utf8 and value.str.starts_with("[").any():  # Zoobot's per-pass lists, as text
            value = value.str.json_decode(pl.List(pl.Float64))
        parts.append(
            pl.DataFrame({"subject": frame[id_column], "question": question, "answer": answer, "value": value})
        )
    long = pl.concat(parts, how="diagonal_relaxed")
    if isinstance(long.schema["value"], pl.List):  # one concentration per pass: fractions per pass, averaged
        long = (
            long.with_row_index("i")
            .explode("value")
            .with_columns(pl.int_range(pl.len()).over("i").alias("pass"))
            .with_columns((pl.col("value") / pl.col("value").sum().over("subject", "question", "pass")).alias("value"))
            .group_by("subject", "question", "answer", maintain_order=True)
            .agg(pl.col("value").mean())
        )
    return _normalised(
        long.rename({"value": "p"}).with_columns(pl.col("p").cast(pl.Float64, strict=False)), source
    ), _DESCRIPTIONS[kind]


def _parse_column(column: str, named: dict[str, list[str]]) -> tuple[str, str | None, str] | None:
    """(question, answer, kind) of a prediction column; answer None when the column names a question but none of
    its answers; None for a column that is not a prediction (an id, coordinates, a vote count)."""
    kind, stem = "bare", column
    for tail, name in _KINDS:
        if column.endswith(tail):
            kind, stem = name, column[: -len(tail)]
            break
    if len(named) == 1 and stem in next(iter(named.values())):
        return next(iter(named)), stem, kind  # one question: answer names alone
    for question in sorted(named, key=len, reverse=True):  # longest first: "bulge-size-dr12" before "bulge-size"
        match = re.fullmatch(re.escape(question) + _SURVEY_SUFFIX + r"_(.+)", stem)
        if match:
            answer = match.group(1)
            if answer in named[question]:
                return question, answer, kind
            if kind == "bare" and answer == "total-votes":
                return None  # a catalogue's vote count
            return question, None, kind
    return None


def _normalised(long: pl.DataFrame, source: str) -> pl.DataFrame:
    """Probabilities over each subject's question, summing to 1; rows with no value or a zero sum dropped; a
    negative value is an error."""
    long = long.filter(pl.col("p").is_not_null() & pl.col("p").is_not_nan())
    if (long["p"] < 0).any():
        bad = long.filter(pl.col("p") < 0).row(0, named=True)
        raise InputError(
            f"{source}: subject {bad['subject']!r}, {bad['question']} {bad['answer']!r}: a negative "
            f"probability ({bad['p']})"
        )
    total = pl.col("p").sum().over("subject", "question")
    return long.filter(total > 0).with_columns((pl.col("p") / total).alias("p"))


def _match_ids(
    long: pl.DataFrame, id_column: str, votes: Votes, subjects: Subjects | None, source: str
) -> tuple[pl.DataFrame, str, int]:
    """The prior's ids as the votes' subject labels, and how they matched: directly (ids that are no subject of the
    votes are subjects without votes), else through the subjects' metadata column of the same name (an export's
    ``iauname``; ids it does not name are counted and left out: they are no subject of the project)."""
    ids = long["subject"]
    kind = votes.subjects.dtype
    direct = ids.cast(pl.Utf8).str.strip_chars().cast(kind, strict=False) if ids.dtype != kind else ids
    hits = (
        int((votes.codes_of("subject", direct.drop_nulls().unique()) >= 0).sum())
        if direct.null_count() < len(direct)
        else 0
    )
    if hits:
        if direct.null_count():
            raise InputError(
                f"{source}, column {id_column!r}: {ids.filter(direct.is_null())[0]!r} is not an id of "
                f"the votes' kind ({kind})"
            )
        return long.with_columns(subject=direct), "subject ids", 0
    if subjects is not None and id_column in subjects.columns:
        mapped = subjects.find(id_column, ids.to_list())
        if mapped.null_count() < len(mapped):
            kept = long.with_columns(subject=mapped).filter(pl.col("subject").is_not_null())
            lost = int(long["subject"].filter(mapped.is_null()).n_unique())
            return kept, f"the subjects' {id_column}", lost
    raise InputError(
        f"{source}, column {id_column!r}: no id matches a subject of the votes (e.g. {ids[0]!r}, against "
        f"{votes.subjects[0]!r}); choose the id column with --prior-id-col"
    )
