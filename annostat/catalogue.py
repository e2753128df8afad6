"""Zoobot-compatible catalogues from a fit folder: one row per subject.

Columns, per question and answer (Zoobot / galaxy-datasets convention):

- ``{question}_{answer}``: the number of votes for the answer;
- ``{question}_total-votes``: the number of votes on the question;
- ``{question}_{answer}_fraction``: the vote fraction, 0 (never blank) when the question got no votes;
- ``{question}_{answer}_posterior``: the fitted model's probability of the answer; a subject with no votes on a
  question gets the question's prior.

Questions follow the tree order when the fit came from a Galaxy Zoo export with a tree preset, else the fit's order.

Names never collide: where two columns would get one name (question ``a`` with answer ``b_c`` and question ``a_b``
with answer ``c`` both make ``a_b_c``; an answer called ``total-votes``), the first keeps it in column order and each
later one gets ``~2``, ``~3``, ... appended; ``catalogue_columns.csv`` (written beside the catalogue) gives every
column's question, answer and kind.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from annostat.data.trees import TREES
from annostat.fit import Fit


def make_catalogue(fit: Fit | str | Path) -> pl.DataFrame:
    """The catalogue of a fit (a :class:`~annostat.fit.Fit` or its folder; see the module docstring): one row per
    subject the fit holds, voted or not."""
    return catalogue_with_columns(fit)[0]


def catalogue_with_columns(fit: Fit | str | Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The catalogue and what each of its columns is (column, question, answer, kind)."""
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
    # counts and posteriors keyed by position (question i, answer j), named only at the end
    keys = {(str(q), str(a)): f"{i}.{j}" for i, (q, answers) in enumerate(questions) for j, a in enumerate(answers)}
    key_table = pl.DataFrame(
        [(q, a, k) for (q, a), k in keys.items()], schema=["question", "answer", "column"], orient="row"
    )

    def keyed(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.with_columns(pl.col("question").cast(pl.Utf8), pl.col("answer").cast(pl.Utf8)).join(
            key_table, on=["question", "answer"], how="inner"
        )

    counts = keyed(votes.group_by("subject", "question", "answer").len("n")).pivot(
        on="column", index="subject", values="n"
    )
    posterior_wide = (
        keyed(posteriors).with_columns(pl.col("column") + "_posterior").pivot(on="column", index="subject", values="p")
    )
    table = subjects.join(counts, on="subject", how="left").join(posterior_wide, on="subject", how="left")
    columns, described = [pl.col("subject")], [("subject", None, None, "subject id")]
    for i, (question, answers) in enumerate(questions):
        names = [f"{i}.{j}" for j in range(len(answers))]
        count_cols = [
            pl.col(n).fill_null(0).cast(pl.Int64) if n in table.columns else pl.lit(0, pl.Int64) for n in names
        ]
        total = pl.sum_horizontal(count_cols)
        columns += count_cols
        described += [(f"{question}_{a}", question, a, "votes") for a in answers]
        columns.append(total)
        described.append((f"{question}_total-votes", question, None, "votes on the question"))
        columns += [pl.when(total > 0).then(c / total).otherwise(0.0) for c in count_cols]
        described += [(f"{question}_{a}_fraction", question, a, "vote fraction") for a in answers]
        prior = dict(
            priors.filter(pl.col("question").cast(pl.Utf8) == str(question))
            .select(pl.col("answer").cast(pl.Utf8), "p")
            .iter_rows()
        )
        for answer, n in zip(answers, names):
            column = f"{n}_posterior"
            fill = float(prior.get(str(answer), 0.0))
            columns.append(
                (pl.col(column).fill_null(fill) if column in table.columns else pl.lit(fill)).cast(pl.Float32)
            )
            described.append((f"{question}_{answer}_posterior", question, answer, "posterior"))
    unique = _unique_names([d[0] for d in described])
    catalogue = table.select(c.alias(name) for c, name in zip(columns, unique))
    return catalogue, pl.DataFrame(
        {
            "column": unique,
            "question": [d[1] for d in described],
            "answer": [d[2] for d in described],
            "kind": [d[3] for d in described],
        },
        schema={"column": pl.Utf8, "question": pl.Utf8, "answer": pl.Utf8, "kind": pl.Utf8},
    )


def _unique_names(names: list[str]) -> list[str]:
    """``names`` with each repeat after the first suffixed ``~2``, ``~3``, ... (never colliding with a name given)."""
    taken, out = set(names), []
    seen: dict[str, int] = {}
    for name in names:
        if name not in seen:
            seen[name] = 1
            out.append(name)
            continue
        k = seen[name]
        while True:
            k += 1
            candidate = f"{name}~{k}"
            if candidate not in taken:
                break
        seen[name] = k
        taken.add(candidate)
        out.append(candidate)
    return out


def write_catalogue(fit_dir: str | Path, out: str | Path | None = None) -> tuple[Path, Path]:
    """Write ``catalogue.parquet`` and ``catalogue.csv`` of the fit folder ``fit_dir`` (to ``out``, default the fit
    folder)."""
    catalogue, described = catalogue_with_columns(fit_dir)
    out = Path(out or fit_dir)
    out.mkdir(parents=True, exist_ok=True)
    parquet, csv = out / "catalogue.parquet", out / "catalogue.csv"
    catalogue.write_parquet(parquet)
    catalogue.write_csv(csv)
    described.write_csv(out / "catalogue_columns.csv")
    return parquet, csv
