"""What the joint model's network reads for each subject: its image (a packed store) or its feature vector.

:func:`image_inputs` finds the images of a fit's subjects: every subject of the votes plus, with ``all_images``,
every other image in the folder (galaxies nobody classified), named by subject id or by the subjects table's image
names (a Panoptes export's ``subject_data``, a truth set's FITS paths). A truth set's root is recognised by its
``manifest.json``. :func:`feature_inputs` takes a features table's rows (every row: subjects without votes are
answered too).

Example:
    >>> import numpy as np
    >>> inputs = Inputs("features", [1, 2], np.zeros((2, 3), np.float32))
    >>> inputs.batch(np.array([1])).shape, inputs.shape
    ((1, 3), (3,))
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from annostat.errors import InputError
from annostat.vision.features import FeatureTable, read_features
from annostat.vision.images import SUFFIXES, image_store

if TYPE_CHECKING:
    from annostat.data.subjects import Subjects


@dataclass
class Inputs:
    """Rows the network reads: ``ids`` (subject labels), ``data`` [N, ...] (images [N, H, W, C], features [N, D]);
    ``norm`` how features were standardised; ``skipped`` (subject, reason) left out."""

    kind: str  # "images" or "features"
    ids: list[Any]
    data: np.ndarray
    norm: dict[str, Any] = field(default_factory=dict)
    skipped: list[tuple[Any, str]] = field(default_factory=list)
    source: str = ""

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.data.shape[1:])

    def batch(self, rows: np.ndarray) -> np.ndarray:
        return np.asarray(self.data[np.asarray(rows)], np.float32)

    def summary(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "source": self.source,
            "subjects": len(self.ids),
            "shape": list(self.shape),
            "skipped": len(self.skipped),
            **({"skipped_examples": [f"{s}: {r}" for s, r in self.skipped[:5]]} if self.skipped else {}),
        }


def _truth_set_names(folder: Path):
    """subject -> image path of a truth set's root (else None)."""
    if not (folder / "manifest.json").is_file() or not (folder / "truth.parquet").is_file():
        return None
    from annostat.truth.truthset import load_truth_set

    truth = load_truth_set(folder, check_images=False)
    return dict(zip(truth.truth["image_id"].astype(str), truth.truth["image"].astype(str)))


def image_inputs(
    folder: str | Path,
    subjects: list[Any],
    size: int = 64,
    *,
    subject_table: Subjects | None = None,
    all_images: bool = True,
    fit: str = "resize",
    missing: str = "error",
    cache_dir: str | Path | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Inputs:
    """The images of ``subjects`` (and, with ``all_images``, of every other image the folder or truth set has, as
    subjects without votes). ``subject_table`` (:class:`~annostat.data.subjects.Subjects`, e.g. ``votes.subject_table``)
    gives image names (its ``image`` column) and, for a truth set, each subject's ``image_id``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: not a folder of images")
    wanted = list(subjects)
    table = subject_table.frame if subject_table is not None else None
    truth_names = _truth_set_names(folder)
    if truth_names is not None:
        image_id = {}
        if table is not None and "image_id" in table.columns:
            image_id = dict(zip(table["subject"].to_list(), table["image_id"].cast(str).to_list()))
        names = lambda s: truth_names.get(image_id.get(s, str(s)))
        used = {image_id.get(s, str(s)) for s in wanted}
        extra = [i for i in truth_names if i not in used] if all_images else []
    else:
        names = None
        if subject_table is not None and table is not None and table["image"].null_count() < table.height:
            names = subject_table.image_of
        extra = []
        if all_images:
            known = {str(s) for s in wanted}
            used = {str(names(x)) for x in wanted if names is not None and names(x)}
            for path in sorted(folder.iterdir()):
                name = path.name
                suffix = next((x for x in SUFFIXES if name.lower().endswith(x)), None)
                if suffix and path.is_file() and not name.startswith(".") and name not in used:
                    stem = name[: -len(suffix)]
                    if stem not in known:
                        extra.append(stem)
                        known.add(stem)
    if (
        truth_names is None
        and extra
        and all(isinstance(x, (int, np.integer)) for x in wanted)
        and all(_is_int(x) for x in extra)
    ):
        extra = [int(x) for x in extra]  # files named by numeric ids, like the votes' (Panoptes) subject ids
    lookup = names
    if names is not None and extra:
        extra_set = set(extra)
        lookup = (
            (lambda s: truth_names.get(s) if s in extra_set else names(s))
            if truth_names is not None
            else (lambda s: None if s in extra_set else names(s))
        )
    store = image_store(
        folder, wanted + extra, size, names=lookup, fit=fit, missing=missing, cache_dir=cache_dir, progress=progress
    )
    return Inputs("images", store.subjects, store.images, {"image_size": size, "fit": fit}, store.skipped, str(folder))


def _is_int(text: str) -> bool:
    return text.isdigit() and (text == "0" or not text.startswith("0"))


def feature_inputs(table: Any, id_col: str | None = None, norm: dict[str, Any] | None = None) -> Inputs:
    """A features table's rows, standardised (with ``norm``, as the training table was)."""
    features: FeatureTable = read_features(table, id_col)
    if norm is not None:
        mean, scale = np.asarray(norm["mean"], np.float32), np.asarray(norm["scale"], np.float32)
        if len(mean) != features.values.shape[1]:
            raise InputError(
                f"{features.source}: {features.values.shape[1]} feature columns, but the network was "
                f"trained on {len(mean)}"
            )
        values, _, _ = features.standardised(mean, scale)
    else:
        values, mean, scale = features.standardised()
    return Inputs(
        "features",
        features.ids,
        values,
        {"mean": mean.tolist(), "scale": scale.tolist(), "columns": features.columns},
        [],
        features.source,
    )


def network_inputs(
    config: dict[str, Any],
    *,
    images: str | Path | None = None,
    features: Any = None,
    id_col: str | None = None,
    missing: str = "error",
) -> Inputs:
    """The inputs a fitted network reads (``config``: its ``network/config.json``), prepared as it was trained on
    them: features standardised with the training table's mean and scale, images at its size and fit."""
    settings = config.get("inputs", {})
    if features is not None:
        return feature_inputs(features, id_col, norm=settings)
    if images is None:
        raise ValueError("network_inputs needs the subjects' images or features")
    return image_inputs(
        images,
        [],
        int(settings.get("image_size", config.get("image_size", 64))),
        fit=settings.get("fit", "resize"),
        missing=missing,
    )
