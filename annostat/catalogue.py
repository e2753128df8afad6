"""Zoobot-compatible catalogues from a fit folder: one row per subject.

Columns, per question and answer (Zoobot / galaxy-datasets convention):

- ``{question}_{answer}``: the number of votes for the answer;
- ``{question}_total-votes``: the number of votes on the question;
- ``{question}_{answer}_fraction``: the vote fraction, 0 (never blank) when the question got no votes;
- ``{question}_{answer}_posterior``: the fitted model's probability of the answer; a subject with no votes on a
  question gets the question's prior.

Questions follow the tree order when the fit came from a Galaxy Zoo export with a tree preset, else the fit's order.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from annostat.errors import InputError
from annostat.data.trees import TREES


def _fit_files(fit_dir: Path) -> dict:
    info_path = fit_dir / "fit.json"
    if not info_path.exists():
        raise InputError(f"{fit_dir}: not a fit folder (no fit.json); make one with annostat fit")
    for name in ("votes.parquet", "posteriors.parquet", "priors.parquet"):
        if not (fit_dir / name).exists():
            raise InputError(f"{fit_dir}: the fit folder has no {name}; refit with this version of annostat")
    return json.loads(info_path.read_text(encoding="utf-8"))


def make_catalogue(fit_dir: str | Path) -> pl.DataFrame:
    """The catalogue of a fit folder (see the module docstring)."""
    fit_dir = Path(fit_dir)
    info = _fit_files(fit_dir)
    votes = pl.read_parquet(fit_dir / "votes.parquet", columns=["subject", "question", "answer"])
    posteriors = pl.read_parquet(fit_dir / "posteriors.parquet")
    priors = pl.read_parquet(fit_dir / "priors.parquet")
    questions = [(q["question"], q["answers"]) for q in info["questions"]]
    tree = (info.get("export") or {}).get("tree")
    if tree in TREES:
        rank = {name: i for i, name in enumerate(TREES[tree].questions)}
        questions.sort(key=lambda qa: rank.get(qa[0], len(rank)))

    subjects = votes.select(pl.col("subject").unique().sort())
    label = pl.col("question").cast(pl.Utf8) + "_" + pl.col("answer").cast(pl.Utf8)
    counts = (votes.group_by("subject", "question", "answer").len("n")
              .with_columns(label.alias("column")).pivot(on="column", index="subject", values="n"))
    posterior_wide = (posteriors.with_columns((label + "_posterior").alias("column"))
                      .pivot(on="column", index="subject", values="p"))
    table = subjects.join(counts, on="subject", how="left").join(posterior_wide, on="subject", how="left")

    columns = [pl.col("subject")]
    for question, answers in questions:
        names = [f"{question}_{answer}" for answer in answers]
        count_cols = [pl.col(n).fill_null(0).cast(pl.Int64) if n in table.columns else pl.lit(0, pl.Int64)
                      for n in names]
        total = pl.sum_horizontal(count_cols)
        columns += [c.alias(n) for c, n in zip(count_cols, names)]
        columns.append(total.alias(f"{question}_total-votes"))
        columns += [pl.when(total > 0).then(c / total).otherwise(0.0).alias(f"{n}_fraction")
                    for c, n in zip(count_cols, names)]
        prior = dict(priors.filter(pl.col("question").cast(pl.Utf8) == str(question))
                     .select(pl.col("answer").cast(pl.Utf8), "p").iter_rows())
        for answer, n in zip(answers, names):
            column = f"{n}_posterior"
            fill = float(prior.get(str(answer), 0.0))
            columns.append((pl.col(column).fill_null(fill) if column in table.columns else pl.lit(fill))
                           .cast(pl.Float32).alias(column))
    return table.select(columns)


def write_catalogue(fit_dir: str | Path, out: str | Path | None = None) -> tuple[Path, Path]:
    """Write ``catalogue.parquet`` and ``catalogue.csv`` (to ``out``, default the fit folder)."""
    catalogue = make_catalogue(fit_dir)
    out = Path(out or fit_dir)
    out.mkdir(parents=True, exist_ok=True)
    parquet, csv = out / "catalogue.parquet", out / "catalogue.csv"
    catalogue.write_parquet(parquet)
    catalogue.write_csv(csv)
    return parquet, csv
