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

from pathlib import Path

import polars as pl

from annostat.data.trees import TREES
from annostat.fit import Fit


def make_catalogue(fit: Fit | str | Path) -> pl.DataFrame:
    """The catalogue of a fit (a :class:`~annostat.fit.Fit` or its folder; see the module docstring): one row per
    subject the fit holds, voted or not."""
    fit = fit if isinstance(fit, Fit) else Fit.load(fit)
    info = fit.summary()
    votes = fit.vote_table().select("subject", "question", "answer")
    posteriors = fit.table("posteriors")
    priors = fit.table("priors")
    questions = [(q["question"], q["answers"]) for q in info["questions"]]
    tree = (info.get("export") or {}).get("tree")
    if tree in TREES:
        rank = {name: i for i, name in enumerate(TREES[tree].questions)}
        questions.sort(key=lambda qa: rank.get(qa[0], len(rank)))

    subjects = pl.DataFrame({"subject": fit.subjects.ids}).unique().sort("subject")
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
    """Write ``catalogue.parquet`` and ``catalogue.csv`` of the fit folder ``fit_dir`` (to ``out``, default the fit
    folder)."""
    catalogue = make_catalogue(fit_dir)
    out = Path(out or fit_dir)
    out.mkdir(parents=True, exist_ok=True)
    parquet, csv = out / "catalogue.parquet", out / "catalogue.csv"
    catalogue.write_parquet(parquet)
    catalogue.write_csv(csv)
    return parquet, csv
