r"""Galaxy images in: FITS, PNG/JPEG and NPY files decoded once into a packed, memory-mapped store.

A network reads every image every epoch. Decoding thousands of files per epoch would cost more than the network, so
:func:`image_store` decodes each image once, fits it to ``size`` x ``size`` pixels and writes all of them into one
array file (``[N, size, size, channels]``, float16, channels last as the network takes them), cached beside the images
in ``.annostat-cache/``. An epoch then reads contiguous memory; 10^5 images of 64 x 64 x 3 are 2.5 GB on disk and only
the pages a batch touches are in memory. The cache is keyed by the file names, sizes and modification times and the
decoding settings, so a changed image or setting decodes again.

Where an image is found, for a subject: the subjects table's ``image`` (a Panoptes export's ``subject_data`` file
name, or a truth set's FITS path), relative to the folder given; else ``<folder>/<subject id>.<suffix>`` for the
suffixes of :data:`SUFFIXES`. A name that would leave the folder (``../x``) is refused.

Decoding:

- **FITS** (``.fits``, ``.fit``, ``.fits.gz``, ``.fz``): one image HDU per band (all 2-d image HDUs, in file order,
  or the bands named), or one 3-d cube (bands first). Each band is stretched as galaxy images are shown:
  :math:`y = \operatorname{arcsinh}(x / \beta) / \operatorname{arcsinh}(x_{99.5} / \beta)` with :math:`\beta` three
  times the band's robust noise (median absolute deviation), so the faint outskirts and the bright core both show.
- **PNG/JPEG**: RGB (or grey) scaled to [0, 1].
- **NPY**: an array ``[H, W]``, ``[H, W, C]`` or ``[C, H, W]`` (C <= 16), used as it is.

Then each image is fitted to ``size`` (``fit="resize"``: bilinear resampling of the whole image; ``fit="cutout"``:
the central ``size`` x ``size`` pixels, padded with zeros when smaller). Images of one store must have one channel
count.

Augmentations (:func:`augment`) are the ones a galaxy allows, since its class does not depend on orientation: flips,
90-degree rotations and small shifts.

Example:
    >>> import tempfile, numpy as np, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> for name in ("a", "b"):
    ...     np.save(folder / f"{name}.npy", np.ones((10, 10, 3), np.float32))
    >>> store = image_store(folder, ["a", "b"], size=8)
    >>> store.images.shape, store.skipped
    ((2, 8, 8, 3), [])
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from annostat.errors import InputError, first_line
from annostat.files import atomic_write, inside

if TYPE_CHECKING:
    import jax

#: image suffixes looked for beside a subject id, in order
SUFFIXES = (".fits", ".fits.gz", ".fit", ".fz", ".png", ".jpg", ".jpeg", ".npy")
FITS_SUFFIXES = (".fits", ".fits.gz", ".fit", ".fz")
FITS_OPTIONS = ("resize", "cutout")
CACHE_FOLDER = ".annostat-cache"
STORE_VERSION = 1


@dataclass
class ImageStore:
    """Decoded images of some subjects: ``images`` [N, size, size, C] (float16, memory-mapped) in the order of
    ``subjects``; ``skipped`` lists (subject, reason) of the subjects whose image was missing or unreadable (with
    ``missing="skip"``)."""

    subjects: list[Any]
    images: np.ndarray
    files: list[str]
    skipped: list[tuple[Any, str]] = field(default_factory=list)
    cache: Path | None = None

    @property
    def channels(self) -> int:
        return int(self.images.shape[-1])

    @property
    def size(self) -> int:
        return int(self.images.shape[1])

    def __len__(self) -> int:
        return len(self.subjects)

    def batch(self, rows: np.ndarray) -> np.ndarray:
        """float32 images of ``rows`` (sorted reads are contiguous)."""
        return np.asarray(self.images[np.asarray(rows)], np.float32)


# ---------------------------------------------------------------------------------------------------- decoding
def _suffix(path: Path) -> str:
    name = path.name.lower()
    return ".fits.gz" if name.endswith(".fits.gz") else path.suffix.lower()


def arcsinh_stretch(band: np.ndarray) -> np.ndarray:
    """One band's arcsinh stretch (see the module docstring), finite values in about [-0.5, 1]."""
    x = np.nan_to_num(np.asarray(band, np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    centre = np.median(x)
    x = x - centre
    noise = 1.4826 * np.median(np.abs(x))
    beta = 3.0 * noise if noise > 0 else max(float(np.abs(x).max()) * 1e-3, 1e-12)
    top = np.arcsinh(max(float(np.percentile(x, 99.5)), beta) / beta)
    return (np.arcsinh(x / beta) / top).clip(-0.5, 1.5).astype(np.float32)


def read_fits(path: Path, bands: Sequence[str] | None = None) -> np.ndarray:
    """[H, W, C] stretched bands of a FITS file: the HDUs named ``bands`` (EXTNAME), else every 2-d image HDU, or a
    3-d cube (bands first)."""
    from astropy.io import fits

    with fits.open(path, memmap=False) as hdus:
        if bands:
            planes = []
            for band in bands:
                if band not in hdus:
                    raise ValueError(f"no HDU for band {band!r}")
                planes.append(np.asarray(hdus[band].data, np.float32))
        else:
            arrays = [
                np.asarray(h.data, np.float32)
                for h in hdus
                if getattr(h, "data", None) is not None and getattr(h, "is_image", False) and np.ndim(h.data) in (2, 3)
            ]
            if not arrays:
                raise ValueError("no image HDU")
            planes = list(arrays[0]) if arrays[0].ndim == 3 else [a for a in arrays if a.ndim == 2]
    if len({p.shape for p in planes}) != 1:
        raise ValueError(f"bands of different shapes {sorted({p.shape for p in planes})}")
    return np.stack([arcsinh_stretch(p) for p in planes], axis=-1)


def read_picture(path: Path) -> np.ndarray:
    """[H, W, C] of a PNG or JPEG in [0, 1] (RGB, or one channel for grey)."""
    from PIL import Image

    with Image.open(path) as opened:
        image = opened.convert("L" if opened.mode in ("L", "I", "I;16", "F", "1") else "RGB")
        array = np.asarray(image, np.float32) / 255.0
    return array[..., None] if array.ndim == 2 else array


def read_npy(path: Path) -> np.ndarray:
    array = np.load(path, allow_pickle=False)
    if array.ndim == 2:
        array = array[..., None]
    elif array.ndim == 3 and array.shape[0] <= 16 and array.shape[-1] > 16:
        array = np.moveaxis(array, 0, -1)
    if array.ndim != 3 or not np.issubdtype(array.dtype, np.number):
        raise ValueError(f"an array of shape {array.shape} and type {array.dtype} is no image")
    return np.nan_to_num(array.astype(np.float32))


def read_image(path: str | os.PathLike, bands: Sequence[str] | None = None) -> np.ndarray:
    """One image file as [H, W, C] float32 (see the module docstring); a ``ValueError`` saying why it cannot be read."""
    path = Path(path)
    suffix = _suffix(path)
    if suffix in FITS_SUFFIXES:
        return read_fits(path, bands)
    if suffix in (".png", ".jpg", ".jpeg"):
        return read_picture(path)
    if suffix == ".npy":
        return read_npy(path)
    raise ValueError(f"unknown image type {suffix or '(no suffix)'}; the types are {', '.join(SUFFIXES)}")


def fit_to_size(image: np.ndarray, size: int, fit: str = "resize") -> np.ndarray:
    """[size, size, C]: the image resampled (``resize``, bilinear) or its centre cut out (``cutout``)."""
    H, W, C = image.shape
    if (H, W) == (size, size):
        return image
    if fit == "cutout":
        out = np.zeros((size, size, C), np.float32)
        top, left = (H - size) // 2, (W - size) // 2
        src = image[max(top, 0) : max(top, 0) + size, max(left, 0) : max(left, 0) + size]
        dy, dx = max(-top, 0), max(-left, 0)
        out[dy : dy + src.shape[0], dx : dx + src.shape[1]] = src
        return out
    from PIL import Image

    planes = [
        np.asarray(
            Image.fromarray(np.ascontiguousarray(image[..., c]), mode="F").resize(
                (size, size), Image.Resampling.BILINEAR
            )
        )
        for c in range(C)
    ]
    return np.stack(planes, axis=-1).astype(np.float32)


# ---------------------------------------------------------------------------------------------------- the store
def locate(folder: Path, subject: Any, name: str | None) -> Path | None:
    """The image file of ``subject``: ``name`` (relative to ``folder``) or ``<subject>.<suffix>``; None if absent.
    A name that leaves the folder is an :class:`~annostat.errors.InputError`."""
    candidates = [name] if name else [f"{subject}{suffix}" for suffix in SUFFIXES]
    for candidate in candidates:
        path = inside(folder, candidate)
        if path is None:
            raise InputError(f"{folder}: the image name {candidate!r} of subject {subject!r} leaves the folder")
        if path.is_file():
            return path
    return None


def image_store(
    folder: str | os.PathLike,
    subjects: Iterable[Any],
    size: int = 64,
    *,
    names: Callable[[Any], Any] | None = None,
    fit: str = "resize",
    bands: Sequence[str] | None = None,
    missing: str = "error",
    cache_dir: str | os.PathLike | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ImageStore:
    """The images of ``subjects`` from ``folder``, decoded once into a cached memory-mapped store (module docstring).

    Args:
        names: subject -> image file name relative to ``folder`` (e.g. ``Subjects.image_of``); None or a missing
            name: look for ``<subject>.<suffix>``.
        fit: ``resize`` or ``cutout``.
        bands: FITS bands (EXTNAMEs) to read, in order; default every image HDU.
        missing: ``error`` (a missing or unreadable image is an :class:`~annostat.errors.InputError` naming the file)
            or ``skip`` (left out of the store and listed in ``skipped``).
        cache_dir: where the store is cached (default ``<folder>/.annostat-cache``, or no cache if not writable).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: not a folder of images")
    if size < 4:
        raise InputError(f"--image-size must be at least 4, not {size}")
    if fit not in FITS_OPTIONS or missing not in ("error", "skip"):
        raise ValueError(f"fit must be one of {FITS_OPTIONS} and missing 'error' or 'skip'")
    subjects = list(subjects)
    found: list[tuple[Any, Path]] = []
    skipped: list[tuple[Any, str]] = []
    for subject in subjects:
        name = names(subject) if names is not None else None
        path = locate(folder, subject, name)
        if path is None:
            wanted = folder / name if name else folder / f"{subject}.{{{','.join(s[1:] for s in SUFFIXES)}}}"
            if missing == "error":
                raise InputError(
                    f"{wanted}: image of subject {subject!r} not found (--missing-images skip skips "
                    "subjects without an image)"
                )
            skipped.append((subject, f"{wanted}: not found"))
            continue
        found.append((subject, path))
    key = _cache_key(found, size, fit, bands)
    cache = _cache_folder(folder, cache_dir)
    if cache is not None:
        hit = _read_cache(cache, key, found)
        if hit is not None:
            cached, images, bad = hit
            paths = dict(found)
            return ImageStore(cached, images, [str(paths[s]) for s in cached], skipped + bad, cache)
    unreadable: list[tuple[Any, str]] = []
    kept: list[Any] = []
    files: list[str] = []
    out: np.ndarray | np.memmap | None = None  # filled row by row: memory holds one image, not the whole store
    partial = None
    try:
        for i, (subject, path) in enumerate(found):
            try:
                image = fit_to_size(read_image(path, bands), size, fit)
            except Exception as exc:  # noqa: BLE001 - PIL, astropy and numpy raise many kinds for a broken file
                reason = first_line(exc)
                if missing == "error":
                    raise InputError(f"{path}: not a readable image of subject {subject!r} ({reason})") from None
                unreadable.append((subject, f"{path}: {reason}"))
                continue
            if out is None:
                shape = (len(found), *image.shape)
                if cache is not None:
                    partial = cache / f".{key}.partial.npy"
                    out = np.lib.format.open_memmap(partial, mode="w+", dtype=np.float16, shape=shape)
                else:
                    out = np.empty(shape, np.float16)
            elif image.shape != out.shape[1:]:
                raise InputError(
                    f"{path}: {image.shape[-1]} channel(s), but {files[0]} has {out.shape[-1]}; "
                    "the images of one fit need one channel count"
                )
            out[len(kept)] = image
            kept.append(subject)
            files.append(str(path))
            if progress is not None and (i % 256 == 0 or i == len(found) - 1):
                progress(i + 1, len(found))
        if out is None:
            raise InputError(f"{folder}: no readable image of the {len(subjects)} subject(s)")
        if partial is not None:
            assert isinstance(out, np.memmap) and cache is not None  # written to the cache folder
            out.flush()
            del out
            images = _commit_cache(cache, key, partial, kept, unreadable)
        else:
            images = out[: len(kept)]
    finally:
        if partial is not None and partial.exists():
            partial.unlink()
    return ImageStore(kept, images, files, skipped + unreadable, cache)


def _cache_key(found, size, fit, bands) -> str:
    h = hashlib.sha256(json.dumps([STORE_VERSION, size, fit, list(bands or [])]).encode())
    for subject, path in found:
        stat = path.stat()
        h.update(f"{subject!r}\0{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode("utf-8", "surrogatepass"))
    return h.hexdigest()[:20]


def _cache_folder(folder: Path, cache_dir) -> Path | None:
    cache = Path(cache_dir) if cache_dir is not None else folder / CACHE_FOLDER
    try:
        cache.mkdir(parents=True, exist_ok=True)
        probe = cache / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError:
        return None
    return cache


def _read_cache(cache: Path, key: str, found):
    index, array = cache / f"{key}.json", cache / f"{key}.npy"
    if not (index.is_file() and array.is_file()):
        return None
    try:
        info = json.loads(index.read_text(encoding="utf-8"))
        images = np.load(array, mmap_mode="r")
    except (ValueError, OSError):
        return None
    by_name = {repr(s): s for s, _ in found}
    kept = [by_name[k] for k in info["kept"] if k in by_name]
    if len(kept) != len(info["kept"]) or images.shape[0] < len(kept):
        return None
    return kept, images[: len(kept)], [(by_name.get(k, k), reason) for k, reason in info["skipped"]]


def _commit_cache(cache: Path, key: str, partial: Path, kept, bad) -> np.ndarray:
    """Move the filled store into place (rows past ``len(kept)``, left by unreadable images, are never read) and
    write its index."""
    os.replace(partial, cache / f"{key}.npy")
    text = json.dumps({"kept": [repr(s) for s in kept], "skipped": [[repr(s), r] for s, r in bad]})
    atomic_write(cache / f"{key}.json", lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    return np.load(cache / f"{key}.npy", mmap_mode="r")[: len(kept)]


# ---------------------------------------------------------------------------------------------------- augmentation
def augment(key: jax.Array, images: jax.Array, max_shift: int = 2) -> jax.Array:
    """Random flips, 90-degree rotations and shifts of up to ``max_shift`` pixels (zeros fill in) of a batch
    [B, H, W, C] of square images, in JAX (inside a compiled training step)."""
    import jax
    import jax.numpy as jnp

    B, H, W, _ = images.shape
    k_flip, k_rot, k_shift = jax.random.split(key, 3)
    flip = jax.random.bernoulli(k_flip, 0.5, (B,))
    images = jnp.where(flip[:, None, None, None], images[:, :, ::-1], images)
    turns = jax.random.randint(k_rot, (B,), 0, 4)
    rotated = [images, jnp.rot90(images, 1, (1, 2)), jnp.rot90(images, 2, (1, 2)), jnp.rot90(images, 3, (1, 2))]
    images = jnp.select([turns[:, None, None, None] == t for t in range(4)], rotated)
    if max_shift <= 0:
        return images
    shifts = jax.random.randint(k_shift, (B, 2), 0, 2 * max_shift + 1)
    padded = jnp.pad(images, ((0, 0), (max_shift, max_shift), (max_shift, max_shift), (0, 0)))
    return jax.vmap(lambda im, s: jax.lax.dynamic_slice(im, (s[0], s[1], 0), (H, W, im.shape[-1])))(padded, shifts)
