r"""Worked examples for a named confusion, and their thumbnails.

**Worked examples**: for a named confusion, subjects whose consensus is confident (p >= 0.9) in the true answer and
that the volunteer answered otherwise (then volunteers with the same named confusion), spread over the range of
consensus confidence and, when a truth set's raw quantities are given, over those (farthest-point choice).

Thumbnails come from a folder of images (``<subject>.png/.jpg``, copied) or a truth set's FITS images (an
arcsinh-stretched g, r, z composite); file names are made safe (:func:`annostat.files.safe_file_name`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from annostat.figures import pyplot
from annostat.files import inside, safe_file_name
from annostat.guidance.evidence import FitTables

if TYPE_CHECKING:
    from annostat.truth.truthset import TruthSet


def worked_examples(
    fit: FitTables,
    advice: pd.DataFrame,
    per_confusion: int = 4,
    features: pd.DataFrame | None = None,
    min_confidence: float = 0.9,
) -> pd.DataFrame:
    """For each named confusion, up to ``per_confusion`` subjects with a confident consensus on the true answer that
    the volunteer (then volunteers with the same named confusion) answered otherwise; spread out by farthest-point
    choice over consensus confidence and ``features`` (numeric columns indexed by subject), when given."""
    named = advice[advice["recommendation"] == "review a confusion"]
    if named.empty:
        return pd.DataFrame(
            columns=[
                "volunteer",
                "question",
                "confusion_true",
                "confusion_answer",
                "subject",
                "consensus_p",
                "answered_by",
            ]
        )
    post = fit.posteriors
    votes = fit.votes
    rows = []
    for (question, k, j), group in named.groupby(["question", "confusion_true", "confusion_answer"]):
        confident = post[(post["question"] == question) & (post["answer"] == k) & (post["p"] >= min_confidence)]
        p_of = confident.set_index(confident["subject"].astype(str))["p"]
        wrong = votes[(votes["question"] == question) & (votes["answer"] == j)]
        wrong = wrong[wrong["subject"].astype(str).isin(p_of.index)]
        sharing = set(group["volunteer"])
        for volunteer in group["volunteer"]:
            own = list(dict.fromkeys(wrong.loc[wrong["volunteer"] == volunteer, "subject"].astype(str)))
            others = [
                s
                for s in dict.fromkeys(wrong.loc[wrong["volunteer"].isin(sharing - {volunteer}), "subject"].astype(str))
                if s not in own
            ]
            chosen = _spread(own, p_of, features, per_confusion)
            by = ["volunteer"] * len(chosen)
            if len(chosen) < per_confusion:
                extra = _spread(others, p_of, features, per_confusion - len(chosen))
                chosen += extra
                by += ["volunteers with the same confusion"] * len(extra)
            rows += [
                {
                    "volunteer": volunteer,
                    "question": question,
                    "confusion_true": k,
                    "confusion_answer": j,
                    "subject": s,
                    "consensus_p": float(p_of[s]),
                    "answered_by": b,
                }
                for s, b in zip(chosen, by)
            ]
    return pd.DataFrame(rows)


def _spread(subjects: list[str], p_of: pd.Series, features: pd.DataFrame | None, n: int) -> list[str]:
    """Farthest-point choice of ``n`` subjects over standardised (consensus p, features)."""
    if len(subjects) <= n:
        return list(subjects)
    x = p_of.loc[subjects].to_numpy(float)[:, None]
    if features is not None:
        f = features.reindex(subjects).to_numpy(float)
        x = np.concatenate([x, np.nan_to_num(f)], axis=1)
    x = (x - x.mean(axis=0)) / np.where(x.std(axis=0) > 0, x.std(axis=0), 1.0)
    chosen = [int(np.argmax(x[:, 0]))]  # start from the most confident consensus
    distance = np.linalg.norm(x - x[chosen[0]], axis=1)
    distance[chosen[0]] = -np.inf
    while len(chosen) < n:
        nxt = int(np.argmax(distance))
        chosen.append(nxt)
        distance = np.minimum(distance, np.linalg.norm(x - x[nxt], axis=1))
        distance[chosen] = -np.inf  # never the same subject twice (ties when features coincide)
    return [subjects[i] for i in chosen]


def image_ids(fit: FitTables, truth_set: TruthSet | None) -> dict[str, str]:
    """Subject id -> the truth set's image id: the fit's own subjects table (an export's ``image_id``), else the
    truth set's simulated votes (``votes/subjects.parquet``); subjects named by their image id need neither."""
    subjects = fit.fit.subjects.frame
    if "image_id" in subjects.columns:
        known = subjects.filter(subjects["image_id"].is_not_null())
        return dict(zip(known["subject"].cast(str).to_list(), known["image_id"].cast(str).to_list()))
    if truth_set is None:
        return {}
    table = truth_set.votes_dir / "subjects.parquet"
    if not table.exists():
        return {}
    frame = pd.read_parquet(table)
    return dict(zip(frame["subject"].astype(str), frame["image_id"].astype(str)))


def truth_features(truth_set: TruthSet, image_of: dict[str, str]) -> pd.DataFrame:
    """Numeric raw truth columns of a truth set, indexed by the subject id (or the image id)."""
    frame = truth_set.truth
    numeric = [
        c
        for c in frame.columns
        if pd.api.types.is_numeric_dtype(frame[c])
        and c not in ("snapshot", "view", "pixscale_arcsec", "psf_fwhm_arcsec", "sky_sigma")
    ]
    subject_of = {image: subject for subject, image in image_of.items()}
    return frame.set_index("image_id")[numeric].rename(index=subject_of)


def thumbnails(
    fit: FitTables,
    subjects: Sequence[Any],
    folder: Path,
    truth_set: TruthSet | None,
    images: Path | None,
    image_of: dict[str, str],
) -> dict[str, str]:
    """Thumbnail images of ``subjects`` (paths relative to ``folder``'s parent): from a local image folder (the
    subject's image in the fit's subjects table, else ``<subject>.png/.jpg``; copied, and only from inside that
    folder) or a truth set's FITS images (an arcsinh-stretched g, r, z composite)."""
    import shutil

    folder.mkdir(parents=True, exist_ok=True)
    root = Path(images) if images is not None else None
    out: dict[str, str] = {}
    for subject in subjects:
        subject = str(subject)
        target = folder / f"{safe_file_name(subject)}.png"
        if root is not None:
            named = fit.fit.subjects.image_of(_native(fit, subject))
            candidates = ([named] if named else []) + [f"{subject}{ext}" for ext in (".png", ".jpg", ".jpeg")]
            for name in candidates:
                source = inside(root, name)
                if source is not None and source.is_file():
                    target = target.with_suffix(source.suffix.lower() or ".png")
                    shutil.copyfile(source, target)
                    out[subject] = f"{folder.name}/{target.name}"
                    break
        if subject not in out and truth_set is not None:
            image_id = image_of.get(subject, subject)
            if truth_set.has_image(image_id):
                _fits_thumbnail(truth_set.read_image(image_id), target)
                out[subject] = f"{folder.name}/{target.name}"
    return out


def _native(fit: FitTables, subject: str):
    """A subject id as the fit's subjects table holds it (ids are text in the guidance's tables)."""
    ids = fit.fit.subjects.ids
    if ids.dtype.is_integer():
        try:
            return int(subject)
        except ValueError:
            return subject
    return subject


def _fits_thumbnail(bands: dict[str, np.ndarray], target: Path) -> None:
    layers = list(bands.values())
    rgb = (
        np.stack([layers[-1], layers[len(layers) // 2], layers[0]], axis=-1)
        if len(layers) >= 3
        else np.repeat(layers[0][..., None], 3, axis=-1)
    )
    scale = np.percentile(rgb, 99.5) or 1.0
    rgb = np.clip(np.arcsinh(rgb / (0.1 * scale)) / np.arcsinh(10.0), 0, 1)
    pyplot().imsave(target, rgb[::-1])
