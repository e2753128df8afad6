"""Truth sets: simulated galaxies whose true Galaxy Zoo answers are known (format version 1).

A truth set is a folder::

    <root>/
      manifest.json   schema_version, source ("fire2" | "standin"), tree (a preset of ``annostat.data.trees``), bands,
                      pixscale_arcsec, psf ({"kind", "fwhm_arcsec"}), units, seed, thresholds (the cuts that turned
                      raw truth quantities into answers, so they can be changed and the answers re-derived)
      truth.parquet   one row per image: image_id (unique), sim, snapshot, redshift, view, inclination_deg, pa_deg,
                      pixscale_arcsec, psf_fwhm_arcsec, sky_sigma, image (path of its FITS file, relative to root),
                      raw truth quantities (any further columns), and true_<question> for every question of the tree:
                      the true answer where the true path through the tree asks the question, null where it does not
      images/<sim>/snapshot_<NNN>/<image_id>.fits   one image HDU per band (EXTNAME = band), optional extra HDUs
      votes/          simulated volunteers' votes (written by ``annostat simulate``)

:func:`write_truth_set` writes one; :func:`load_truth_set` reads one and checks it, raising
:class:`~annostat.errors.InputError` with the file, the image id or row, the column and the reason in one line. The
checks: the manifest's keys, types and schema version; truth.parquet's columns and types; unique image ids; every
true answer one of its question's answers; a true answer exactly where the true path asks the question (a
``disk-edge-on`` answer only for featured galaxies, and so on); every image file present with every band.

Example:
    >>> import tempfile, numpy as np, pandas as pd
    >>> from annostat.truth.truthset import write_truth_set, load_truth_set, empty_truth_row
    >>> row = empty_truth_row("g0", "gz-decals-dr5") | {"true_smooth-or-featured": "smooth",
    ...        "true_how-rounded": "round", "true_merging": "none"}
    >>> root = tempfile.mkdtemp()
    >>> _ = write_truth_set(root, {"source": "standin", "tree": "gz-decals-dr5", "bands": ["r"], "seed": 0},
    ...                     pd.DataFrame([row]), {"g0": {"r": np.zeros((8, 8), np.float32)}})
    >>> load_truth_set(root).truth["true_how-rounded"].tolist()
    ['round']
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from annostat.data.subjects import Subjects
from annostat.data.trees import Tree, get_tree
from annostat.errors import InputError
from annostat.files import inside, read_json, safe_file_name
from annostat.truth.answers import true_path

SCHEMA_VERSION = 1
SOURCES = ("fire2", "standin")
#: manifest keys and the JSON types they take
MANIFEST_KEYS: dict[str, tuple[type, ...]] = {
    "schema_version": (int,),
    "source": (str,),
    "tree": (str,),
    "bands": (list,),
    "pixscale_arcsec": (int, float),
    "psf": (dict,),
    "units": (dict,),
    "seed": (int,),
    "thresholds": (dict,),
}
#: truth.parquet columns every truth set has, and their kind (string, number)
TRUTH_COLUMNS: dict[str, str] = {
    "image_id": "string",
    "sim": "string",
    "snapshot": "number",
    "redshift": "number",
    "view": "number",
    "inclination_deg": "number",
    "pa_deg": "number",
    "pixscale_arcsec": "number",
    "psf_fwhm_arcsec": "number",
    "sky_sigma": "number",
    "image": "string",
}


def true_column(question: str) -> str:
    return f"true_{question}"


def empty_truth_row(image_id: str, tree: str, **values: Any) -> dict[str, Any]:
    """A truth row with the required columns at neutral values and every true answer null; ``values`` override."""
    row: dict[str, Any] = {
        "image_id": image_id,
        "sim": "none",
        "snapshot": -1,
        "redshift": 0.0,
        "view": 0,
        "inclination_deg": float("nan"),
        "pa_deg": 0.0,
        "pixscale_arcsec": 0.262,
        "psf_fwhm_arcsec": 1.3,
        "sky_sigma": 0.0,
        "image": "",
    }
    row.update({true_column(q): None for q in get_tree(tree).questions})
    row.update(values)
    return row


@dataclass
class TruthSet:
    """A checked truth set: its folder, manifest, truth table (one row per image) and decision tree."""

    root: Path
    manifest: dict[str, Any]
    truth: pd.DataFrame
    tree: Tree

    @property
    def bands(self) -> list[str]:
        return list(self.manifest["bands"])

    @property
    def votes_dir(self) -> Path:
        return self.root / "votes"

    @functools.cached_property
    def _images(self) -> dict[str, str]:
        return dict(zip(self.truth["image_id"].astype(str), self.truth["image"].astype(str)))

    def has_image(self, image_id: str) -> bool:
        return str(image_id) in self._images

    def image_path(self, image_id: str) -> Path:
        """The FITS file of ``image_id`` (a dictionary lookup); a truth table naming a file outside the truth set is
        an :class:`~annostat.errors.InputError`."""
        try:
            name = self._images[str(image_id)]
        except KeyError:
            raise KeyError(f"{self.root}: no image {image_id!r}") from None
        path = inside(self.root, name)
        if path is None:
            raise InputError(f"{self.root}: the image {name!r} of {image_id!r} is not inside the truth set")
        return path

    def subjects(self) -> Subjects:
        """The truth set's galaxies as a subjects table: ``subject`` = ``image_id``, ``image`` its FITS file
        (relative to the root), and the numeric truth columns as metadata."""
        numeric = [c for c in self.truth.columns if pd.api.types.is_numeric_dtype(self.truth[c])]
        frame = self.truth[["image_id", "image", *numeric]].rename(columns={"image_id": "subject"})
        return Subjects.from_frame(frame, image="image", source=str(self.root))

    def read_image(self, image_id: str) -> dict[str, np.ndarray]:
        """The image's bands as float32 arrays, band -> [height, width]."""
        from astropy.io import fits

        with fits.open(self.image_path(image_id)) as hdus:
            return {band: np.asarray(hdus[band].data, np.float32) for band in self.bands}

    def true_answers(self) -> pd.DataFrame:
        """Long table of the true answers: subject (the image id), question, answer; unasked questions left out."""
        cols = [true_column(q) for q in self.tree.questions]
        long = self.truth[["image_id", *cols]].melt(id_vars="image_id", var_name="question", value_name="answer")
        long = long.dropna(subset=["answer"])
        long["question"] = long["question"].str[len("true_") :]
        return long.rename(columns={"image_id": "subject"}).reset_index(drop=True)


def image_relpath(sim: str, snapshot: int, image_id: str) -> str:
    """Where an image lives under the root: images/<sim>/snapshot_<NNN>/<image_id>.fits (names made safe)."""
    return f"images/{safe_file_name(sim)}/snapshot_{int(snapshot):03d}/{safe_file_name(image_id)}.fits"


def write_truth_set(
    root: str | os.PathLike,
    manifest: Mapping[str, Any],
    truth: pd.DataFrame,
    images: Mapping[str, Mapping[str, np.ndarray]],
) -> TruthSet:
    """Write a truth set: ``manifest`` (missing keys get defaults: schema version, pixel scale 0.262", a Gaussian
    PSF of 1.3", empty units and thresholds), ``truth`` (one row per image; ``image`` paths are filled in) and
    ``images`` (image id -> band -> 2-d array, one HDU per band). Checked by :func:`load_truth_set` on the way out."""
    from astropy.io import fits

    root = Path(root)
    if root.exists() and not root.is_dir():
        raise InputError(f"{root}: exists and is not a folder")
    full = {
        "schema_version": SCHEMA_VERSION,
        "pixscale_arcsec": 0.262,
        "psf": {"kind": "gaussian", "fwhm_arcsec": 1.3},
        "units": {"image": "nanomaggies"},
        "thresholds": {},
        "seed": 0,
        **dict(manifest),
    }
    truth = truth.copy()
    truth["image"] = [image_relpath(s, n, i) for s, n, i in zip(truth["sim"], truth["snapshot"], truth["image_id"])]
    for image_id, rel in zip(truth["image_id"], truth["image"]):
        if image_id not in images:
            raise InputError(f"{root}: no image given for image_id {image_id!r}")
        hdus = [fits.PrimaryHDU()]
        for band in full["bands"]:
            hdus.append(fits.ImageHDU(np.asarray(images[image_id][band], np.float32), name=band))
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        fits.HDUList(hdus).writeto(path, overwrite=True)
    root.mkdir(parents=True, exist_ok=True)
    (root / "manifest.json").write_text(json.dumps(full, indent=2) + "\n", encoding="utf-8")
    truth.to_parquet(root / "truth.parquet", index=False)
    return load_truth_set(root)


def load_truth_set(root: str | os.PathLike, check_images: bool = True) -> TruthSet:
    """Read and check the truth set in ``root`` (see the module docstring for what is checked)."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: not a folder")
    manifest = _read_manifest(root / "manifest.json")
    tree = get_tree(manifest["tree"])
    path = root / "truth.parquet"
    if not path.exists():
        raise InputError(f"{path}: file not found")
    try:
        truth = pd.read_parquet(path)
    except Exception as exc:  # noqa: BLE001 -- pyarrow raises several kinds
        raise InputError(f"{path}: not a readable Parquet file ({exc})") from None
    _check_truth(path, truth, tree)
    if check_images:
        _check_images(root, truth, manifest["bands"])
    return TruthSet(root, manifest, truth, tree)


def _read_manifest(path: Path) -> dict[str, Any]:
    manifest = read_json(path, "a truth set's manifest")
    if not isinstance(manifest, dict):
        raise InputError(f"{path}: the manifest must be a JSON object")
    for key, types in MANIFEST_KEYS.items():
        if key not in manifest:
            raise InputError(f"{path}: key {key!r} missing")
        if not isinstance(manifest[key], types) or isinstance(manifest[key], bool):
            raise InputError(
                f"{path}: key {key!r} must be {' or '.join(t.__name__ for t in types)}, "
                f"not {type(manifest[key]).__name__}"
            )
    if manifest["schema_version"] != SCHEMA_VERSION:
        raise InputError(
            f"{path}: schema_version {manifest['schema_version']} is not supported (this annostat reads "
            f"version {SCHEMA_VERSION})"
        )
    if manifest["source"] not in SOURCES:
        raise InputError(f"{path}: source {manifest['source']!r} is not one of {', '.join(SOURCES)}")
    try:
        get_tree(manifest["tree"])
    except KeyError as exc:
        raise InputError(f"{path}: key 'tree': {exc.args[0]}") from None
    bands = manifest["bands"]
    if not bands or not all(isinstance(b, str) and b for b in bands) or len(set(bands)) != len(bands):
        raise InputError(f"{path}: key 'bands' must be a non-empty list of distinct band names")
    return manifest


def _check_truth(path: Path, truth: pd.DataFrame, tree: Tree) -> None:
    needed = list(TRUTH_COLUMNS) + [true_column(q) for q in tree.questions]
    missing = [c for c in needed if c not in truth.columns]
    if missing:
        raise InputError(f"{path}: column(s) {', '.join(repr(c) for c in missing)} missing")
    for column, kind in TRUTH_COLUMNS.items():
        values = truth[column]
        if kind == "number" and not pd.api.types.is_numeric_dtype(values):
            raise InputError(f"{path}, column {column!r}: must be numeric, not {values.dtype}")
    ids = truth["image_id"]
    if ids.isna().any():
        row = int(np.flatnonzero(ids.isna().to_numpy())[0])
        raise InputError(f"{path}, row {row}, column 'image_id': empty")
    duplicated = ids[ids.duplicated()]
    if len(duplicated):
        raise InputError(f"{path}, column 'image_id': {str(duplicated.iloc[0])!r} appears more than once")
    truths = {q: truth[true_column(q)] for q in tree.questions}
    for q, values in truths.items():
        allowed = set(tree.answers(q))
        bad = values.notna() & ~values.isin(allowed)
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise InputError(
                f"{path}, image_id {ids.iloc[i]!r}, column {true_column(q)!r}: {values.iloc[i]!r} is not "
                f"an answer of {q} ({', '.join(tree.answers(q))})"
            )
    labels = {q: v.astype(object).where(v.notna(), None).to_numpy() for q, v in truths.items()}
    for q, is_asked in true_path(tree, labels).items():
        given = truths[q].notna().to_numpy()
        if (is_asked & ~given).any():
            i = int(np.flatnonzero(is_asked & ~given)[0])
            raise InputError(
                f"{path}, image_id {ids.iloc[i]!r}, column {true_column(q)!r}: null, but the true path asks {q}"
            )
        if (~is_asked & given).any():
            i = int(np.flatnonzero(~is_asked & given)[0])
            raise InputError(
                f"{path}, image_id {ids.iloc[i]!r}, column {true_column(q)!r}: {labels[q][i]!r}, but "
                f"the true path never asks {q} (it should be null)"
            )


def _check_images(root: Path, truth: pd.DataFrame, bands: list[str]) -> None:
    from astropy.io import fits

    for image_id, rel in zip(truth["image_id"], truth["image"]):
        path = inside(root, rel) if rel else None
        if path is None and rel:
            raise InputError(
                f"{root / 'truth.parquet'}, image_id {image_id!r}, column 'image': {rel!r} is not inside the truth set"
            )
        if not rel or path is None or not path.is_file():
            raise InputError(f"{root / 'truth.parquet'}, image_id {image_id!r}, column 'image': file {rel!r} not found")
        try:
            with fits.open(path) as hdus:
                names = {h.name.lower() for h in hdus}
        except OSError as exc:
            raise InputError(f"{path}: not a readable FITS file ({exc})") from None
        absent = [b for b in bands if b.lower() not in names]
        if absent:
            raise InputError(f"{path}: band(s) {', '.join(absent)} missing (image_id {image_id!r})")
