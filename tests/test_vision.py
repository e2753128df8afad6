"""Images and features in: the packed store, decoding, cache, missing images, augmentations, features tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from annostat.errors import InputError
from annostat.vision.features import read_features
from annostat.vision.images import arcsinh_stretch, augment, fit_to_size, image_store, read_image


def test_flax_nnx_imports():
    from flax import nnx  # the pinned flax has NNX, with what the networks use

    assert hasattr(nnx, "Conv") and hasattr(nnx, "replace_by_pure_dict")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    from astropy.io import fits
    from PIL import Image

    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    np.save(root / "a.npy", rng.random((12, 12, 3)).astype(np.float32))
    Image.fromarray((rng.random((20, 16, 3)) * 255).astype(np.uint8)).save(root / "b.png")
    Image.fromarray((rng.random((10, 10, 3)) * 255).astype(np.uint8)).save(root / "c.jpg")
    bands = [fits.PrimaryHDU()] + [fits.ImageHDU(rng.normal(0, 1, (16, 16)).astype(np.float32), name=b) for b in "grz"]
    fits.HDUList(bands).writeto(root / "d.fits")
    fits.PrimaryHDU(rng.normal(0, 1, (3, 16, 16)).astype(np.float32)).writeto(root / "e.fits")
    (root / "broken.png").write_bytes(b"not a png")
    return root


def test_every_kind_decodes_to_one_store(folder):
    store = image_store(folder, ["a", "b", "c", "d", "e"], size=8, cache_dir=folder / "cache1")
    assert store.images.shape == (5, 8, 8, 3) and store.images.dtype == np.float16
    assert np.isfinite(store.batch(np.arange(5))).all()
    assert read_image(folder / "d.fits").shape == (16, 16, 3)  # one HDU per band
    assert read_image(folder / "e.fits").shape == (16, 16, 3)  # a cube, bands first


def test_store_is_cached_and_memory_mapped(folder):
    first = image_store(folder, ["a", "b"], size=8, cache_dir=folder / "cache2")
    again = image_store(folder, ["a", "b"], size=8, cache_dir=folder / "cache2")
    assert isinstance(again.images, np.memmap) or isinstance(getattr(again.images, "base", None), np.memmap)
    np.testing.assert_array_equal(np.asarray(first.images), np.asarray(again.images))
    assert len(list((folder / "cache2").glob("*.npy"))) == 1
    image_store(folder, ["a", "b"], size=6, cache_dir=folder / "cache2")  # another size: another entry
    assert len(list((folder / "cache2").glob("*.npy"))) == 2


def test_missing_and_unreadable_images(folder):
    with pytest.raises(InputError, match="image of subject 'zz' not found"):
        image_store(folder, ["a", "zz"], size=8, cache_dir=folder / "cache3")
    with pytest.raises(InputError, match="broken.png: not a readable image of subject 'broken'"):
        image_store(folder, ["a", "broken"], size=8, cache_dir=folder / "cache3")
    store = image_store(folder, ["a", "zz", "broken"], size=8, missing="skip", cache_dir=folder / "cache3")
    assert store.subjects == ["a"] and [s for s, _ in store.skipped] == ["zz", "broken"]
    with pytest.raises(InputError, match="leaves the folder"):
        image_store(folder, ["a"], size=8, names=lambda s: "../../etc/passwd", cache_dir=folder / "cache3")


def test_fit_to_size_and_stretch():
    image = np.arange(36, dtype=np.float32).reshape(6, 6, 1)
    assert fit_to_size(image, 4, "cutout")[..., 0].tolist()[0] == [7, 8, 9, 10]
    assert fit_to_size(image, 8, "cutout")[0, 0, 0] == 0 and fit_to_size(image, 3).shape == (3, 3, 1)
    band = np.random.default_rng(1).normal(0, 1, (32, 32))
    band[16, 16] = 1e4  # a bright core does not flatten the rest
    y = arcsinh_stretch(band)
    assert y.max() <= 1.5 and np.std(y[:8, :8]) > 0.01


def test_augmentations_keep_the_galaxy():
    import jax

    x = np.zeros((4, 8, 8, 1), np.float32)
    x[:, 3:5, 3:5] = 1.0
    out = np.asarray(augment(jax.random.key(0), x, max_shift=0))
    assert out.shape == x.shape and np.allclose(out.sum(axis=(1, 2, 3)), 4.0)  # flips and turns move no flux
    shifted = np.asarray(augment(jax.random.key(1), x, max_shift=2))
    assert np.allclose(shifted.sum(axis=(1, 2, 3)), 4.0)  # the centre stays inside


def test_features_tables(tmp_path):
    table = read_features(pd.DataFrame({"subject_id": ["x", "y"], "f": [1.0, 2.0], "g": [0, 1]}))
    assert table.values.shape == (2, 2) and table.ids == ["x", "y"]
    vectors = read_features(pd.DataFrame({"subject": [1, 2], "emb": [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]}))
    assert vectors.values.shape == (2, 3)
    with pytest.raises(InputError, match="column 'f': not numeric"):
        read_features(pd.DataFrame({"subject": [1], "f": ["a"]}))
    with pytest.raises(InputError, match="subject 1 has more than one row"):
        read_features(pd.DataFrame({"subject": [1, 1], "f": [1.0, 2.0]}))
    with pytest.raises(InputError, match="row 2, column 'f': not a finite number"):
        read_features(pd.DataFrame({"subject": [1, 2], "f": [1.0, np.nan]}))
    with pytest.raises(InputError, match="features table not found"):
        read_features(tmp_path / "nope.parquet")
