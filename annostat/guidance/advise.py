"""``annostat advise FIT_DIR --out DIR``: the advice, its tables, examples and cards written for one fit folder."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from annostat.errors import InputError
from annostat.fit import Fit
from annostat.guidance.cards import write_cards
from annostat.guidance.evidence import FitTables
from annostat.guidance.examples import image_ids, thumbnails, truth_features, worked_examples
from annostat.guidance.privacy import name_maps, new_salt, write_private
from annostat.guidance.recommendations import ADVICE_COLUMNS, advise


def write_advice(
    fit_dir: str | os.PathLike,
    out: str | os.PathLike,
    keep_names: bool = False,
    salt: str | None = None,
    min_votes: int = 10,
    truth: str | os.PathLike | None = None,
    images: str | os.PathLike | None = None,
    examples: int = 4,
    max_pages: int = 500,
    seed: int = 0,
) -> dict[str, Any]:
    """Advise from a fit folder: ``advice.parquet``/``advice.csv``, ``examples.parquet``, ``impact.parquet``,
    ``project.parquet``/``project.csv``, thumbnails and the HTML cards (``index.html``, ``volunteers/*.html``) in
    ``out``; ``private/`` holds the salt and the name map. Returns the tables and counts."""
    fit = FitTables.of(Fit.load(Path(fit_dir)))
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a folder")
    tables = advise(fit, min_votes=min_votes, seed=seed)
    features, pictures, image_of, truth_set = None, {}, {}, None
    if truth is not None:
        from annostat.truth.truthset import load_truth_set

        truth_set = load_truth_set(truth, check_images=False)
        image_of = image_ids(fit, truth_set)
        features = truth_features(truth_set, image_of)
    example_table = worked_examples(fit, tables["advice"], per_confusion=examples, features=features)
    out.mkdir(parents=True, exist_ok=True)
    if len(example_table):
        pictures = thumbnails(
            fit,
            example_table["subject"].unique(),
            out / "thumbs",
            truth_set,
            Path(images) if images is not None else None,
            image_of,
        )
    example_table["thumbnail"] = example_table["subject"].map(pictures) if len(example_table) else []

    # names: pseudonyms unless kept
    salt = salt or new_salt()
    shown, files = name_maps(sorted(set(fit.volunteers["volunteer"])), keep_names, salt)
    write_private(out, shown, None if keep_names else salt)
    public = {}
    for key in ("advice", "impact"):
        frame = tables[key].copy()
        frame["volunteer"] = frame["volunteer"].map(shown)
        public[key] = frame
    example_public = example_table.copy()
    if len(example_public):
        example_public["volunteer"] = example_public["volunteer"].map(shown)
    advice_table = public["advice"][ADVICE_COLUMNS]
    advice_table.to_parquet(out / "advice.parquet", index=False)
    advice_table.to_csv(out / "advice.csv", index=False)
    public["impact"].to_parquet(out / "impact.parquet", index=False)
    tables["project"].to_parquet(out / "project.parquet", index=False)
    tables["project"].to_csv(out / "project.csv", index=False)
    example_public.to_parquet(out / "examples.parquet", index=False)
    pages = write_cards(
        out,
        fit,
        public["advice"],
        example_public,
        tables["project"],
        tables["evidence"],
        shown,
        files,
        max_pages=max_pages,
    )
    counts = public["advice"]["recommendation"].value_counts().to_dict()
    summary = {
        "fit": str(fit_dir),
        "model": fit.model,
        "rows": len(advice_table),
        "volunteers": int(public["advice"]["volunteer"].nunique()),
        "recommendations": counts,
        "named_confusions": int((public["advice"]["recommendation"] == "review a confusion").sum()),
        "examples": len(example_public),
        "pages": pages,
        "names": "kept" if keep_names else "pseudonyms",
        "questions_without_advice": {
            q: "a single answer: nothing to confuse" for q in tables.get("single_answer_questions", [])
        },
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return {"summary": summary, **public, "project": tables["project"], "examples": example_public}
