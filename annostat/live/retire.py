r"""Retirement: SWAP-style rules on a fit's posteriors, in the form a Zooniverse project applies.

A subject is retired when the fit is sure enough of it: for the whole tree, when the most probable answer of every
question its most probable path asks has posterior probability at least ``threshold`` (Space Warps' rule on
p(lens | votes), Marshall et al. 2016, on each question a galaxy's path through the decision tree takes), once it
has at least ``minimum`` classifications; and, whatever the posteriors, when it reaches ``maximum`` classifications
(Galaxy Zoo's fixed retirement). Per question (``per_question=True``), each (subject, question) is judged alone.

The path: the tree's first questions, then the questions asked after the most probable answer of each question on
it (``annostat.data.trees``: a question's ``asked_after`` links), among the questions the fit has; without a tree
every question the fit answers for the subject is on its path. A path question the fit has but not for this subject
(nobody answered it yet) keeps the subject live.

Reasons are Panoptes' retirement reasons, as Caesar's ``retire_subject`` effect takes them: ``consensus`` (the
threshold) and ``classification_count`` (the maximum).

Example:
    >>> from annostat import DawidSkene, Votes
    >>> from annostat.truth.simulate import simulate_questions
    >>> sim = simulate_questions(200, 30, ("smooth-or-featured",), retire_after=6, seed=2)
    >>> fit = DawidSkene().fit(Votes.from_frame(sim.votes))
    >>> retired = retire(fit, threshold=0.95, minimum=3)
    >>> set(retired["reason"]) <= {"consensus", "classification_count"}
    True
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from annostat.errors import InputError

RETIREMENT_REASONS = ("consensus", "classification_count")


def classifications(fit: Any) -> pl.DataFrame:
    """subject, classifications: the volunteers who classified each subject (one classification each), from the
    fit's votes."""
    from annostat.fit import SavedFit

    if isinstance(fit, SavedFit):
        votes = pl.scan_parquet(fit.folder / "votes.parquet").select("subject", "volunteer")
        return votes.group_by("subject").agg(pl.col("volunteer").n_unique().alias("classifications")).collect()
    subject, volunteer = fit.votes.codes("subject"), fit.votes.codes("volunteer")
    pairs = np.unique(subject.astype(np.int64) * max(fit.votes.n_volunteers, 1) + volunteer)
    counts = np.bincount(pairs // max(fit.votes.n_volunteers, 1), minlength=fit.votes.n_subjects)
    return pl.DataFrame({"subject": fit.votes.subjects, "classifications": counts.astype(np.int64)})


def _tree_of(fit: Any, tree: str | None):
    from annostat.data.trees import get_tree

    if tree == "none" or tree is None:
        return None
    if tree == "auto":
        name = (fit.summary().get("export") or {}).get("tree")
        return get_tree(name) if name else None
    return get_tree(tree)


def retire(
    fit: Any,
    threshold: float = 0.9,
    minimum: int = 3,
    maximum: int | None = 40,
    tree: str | None = "auto",
    per_question: bool = False,
) -> pl.DataFrame:
    """The subjects to retire: ``subject_id``, ``reason`` (``consensus`` or ``classification_count``),
    ``classifications``, ``confidence`` (the lowest top-answer probability on the path) and ``path`` (its
    questions, ``|``-joined); per question, one row per (subject, question) with its ``question`` and ``answer``.

    ``fit`` is a :class:`~annostat.fit.Fit` or a fit folder; ``tree``: a preset name, ``auto`` (the one the export
    was read with, if any) or ``none``."""
    from annostat.fit import Fit

    if not 0.0 < threshold <= 1.0:
        raise InputError(f"--threshold {threshold}: a probability in (0, 1]")
    if minimum < 0 or (maximum is not None and maximum < max(minimum, 1)):
        raise InputError(f"--min {minimum} and --max {maximum}: need 0 <= min <= max and max >= 1")
    if isinstance(fit, (str, Path)):
        fit = Fit.load(fit)
    answers = fit.table("answers").select("subject", "question", "answer", "p")
    counts = classifications(fit)
    answers = answers.with_columns(pl.col("subject").cast(counts["subject"].dtype))
    if per_question:
        judged = answers.join(counts, on="subject", how="left").with_columns(pl.col("classifications").fill_null(0))
        return _decide(judged, threshold, minimum, maximum, ["subject", "question"]).select(
            pl.col("subject").alias("subject_id"),
            "question",
            "answer",
            "reason",
            "classifications",
            pl.col("p").alias("confidence"),
        )
    preset = _tree_of(fit, tree)
    path = _path_confidence(answers, preset)
    judged = counts.join(path, on="subject", how="left")
    judged = judged.with_columns(pl.col("p").fill_null(0.0), pl.col("path").fill_null(""))
    return _decide(judged, threshold, minimum, maximum, ["subject"]).select(
        pl.col("subject").alias("subject_id"), "reason", "classifications", pl.col("p").alias("confidence"), "path"
    )


def _decide(judged: pl.DataFrame, threshold, minimum, maximum, keys) -> pl.DataFrame:
    consensus = (pl.col("p") >= threshold) & (pl.col("classifications") >= minimum)
    at_most = pl.lit(False) if maximum is None else pl.col("classifications") >= maximum
    reason = pl.when(consensus).then(pl.lit("consensus")).when(at_most).then(pl.lit("classification_count"))
    return judged.with_columns(reason.otherwise(None).alias("reason")).filter(pl.col("reason").is_not_null()).sort(keys)


def _path_confidence(answers: pl.DataFrame, tree) -> pl.DataFrame:
    """subject, p (the lowest top-answer probability over the questions its most probable path asks; 0 when a path
    question has no answer yet), path."""
    if tree is None:
        return answers.group_by("subject").agg(pl.col("p").min(), pl.col("question").sort().str.join("|").alias("path"))
    best = {(s, q): (a, p) for s, q, a, p in answers.iter_rows()}
    subjects = answers["subject"].unique(maintain_order=True).to_list()
    fitted = set(answers["question"].unique().to_list())  # the tree's other questions are not the fit's to judge
    roots = [q.name for q in tree.questions.values() if not q.asked_after and q.name in fitted]
    children: dict[tuple[str, str | None], list[str]] = {}
    for q in tree.questions.values():
        for parent, answer in q.asked_after:
            children.setdefault((parent, answer), []).append(q.name)
    rows = []
    for s in subjects:
        todo, seen, lowest = list(roots), [], 1.0
        while todo:
            q = todo.pop(0)
            if q in seen:
                continue
            seen.append(q)
            if (s, q) not in best:  # asked on the path, not answered yet: not sure of the subject
                lowest = 0.0
                continue
            a, p = best[(s, q)]
            lowest = min(lowest, p)
            todo += [c for c in children.get((q, a), []) + children.get((q, None), []) if c in fitted]
        rows.append((s, lowest, "|".join(seen)))
    return pl.DataFrame(
        rows, schema={"subject": answers.schema["subject"], "p": pl.Float64, "path": pl.String}, orient="row"
    )
