"""FIRE-2 star particles: a GIZMO-layout snapshot written here (a tilted, rotating, barred disc and a spheroid, whose
answers are known by construction) is read back in physical units, put in the host frame, and measured."""

import h5py
import numpy as np
import pytest

from annostat.errors import InputError
from annostat.fire import (
    G_KPC_KMS2_PER_MSUN,
    bar_strength,
    disc_fraction,
    host_frame,
    inclination,
    read_stars,
)

A, H = 0.9, 0.7  # scale factor and Hubble parameter of the fake snapshot


def disc(rng, n, barred):
    """A cold rotating exponential disc (scale length 3 kpc), optionally with 30% of its stars in a bar."""
    R = rng.gamma(2.0, 3.0 / 2.0, n)
    phi = rng.uniform(0, 2 * np.pi, n)
    x, y = R * np.cos(phi), R * np.sin(phi)
    if barred:
        k = int(0.3 * n)
        x[:k] = rng.uniform(-4, 4, k)
        y[:k] = rng.normal(0, 0.5, k)
    z = rng.normal(0, 0.2, n)
    pos = np.stack([x, y, z], 1)
    masses = np.full(n, 1e6)
    r = np.linalg.norm(pos, axis=1)
    enclosed = np.searchsorted(np.sort(r), r) * 1e6 + 1e6
    vc = np.sqrt(G_KPC_KMS2_PER_MSUN * enclosed / r)
    Rxy = np.hypot(x, y)
    vel = np.stack([-vc * y / Rxy, vc * x / Rxy, rng.normal(0, 5, n)], 1)
    return pos, vel, masses


def spheroid(rng, n):
    pos = rng.normal(0, 3.0, (n, 3))
    vel = rng.normal(0, 80.0, (n, 3))  # isotropic, about the dispersion that holds 2e10 Msun within ~3 kpc
    return pos, vel, np.full(n, 1e6)


def write_snapshot(path, pos, vel, masses):
    with h5py.File(path, "w") as f:
        header = f.create_group("Header")
        header.attrs["Time"], header.attrs["Redshift"], header.attrs["HubbleParam"] = A, 1 / A - 1, H
        stars = f.create_group("PartType4")
        stars["Coordinates"] = pos * H / A  # comoving kpc/h
        stars["Velocities"] = vel / np.sqrt(A)
        stars["Masses"] = masses * H / 1e10
        stars["ParticleIDs"] = np.arange(len(masses))


@pytest.fixture(scope="module")
def tilt():
    angle = np.radians(50.0)  # the disc's axis tilted 50 degrees about x
    return np.array([[1, 0, 0], [0, np.cos(angle), -np.sin(angle)], [0, np.sin(angle), np.cos(angle)]])


@pytest.mark.parametrize("barred", [True, False])
def test_rotating_disc_is_found_measured_and_its_bar_seen(tmp_path, tilt, barred):
    rng = np.random.default_rng(1)
    pos, vel, m = disc(rng, 20000, barred)
    offset = np.array([1000.0, 2000.0, 1500.0])
    path = tmp_path / "m12x" / "output" / "snapshot_600.hdf5"
    path.parent.mkdir(parents=True)
    write_snapshot(path, pos @ tilt.T + offset, vel @ tilt.T + 50.0, m)
    stars = read_stars(path)
    assert np.isclose(stars.masses.sum(), m.sum()) and np.isclose(stars.redshift, 1 / A - 1)
    p, v = host_frame(stars.positions, stars.velocities, stars.masses)
    assert np.std(p[:, 2]) < 0.3 and np.std(p[:, 0]) > 2  # the disc lies in the x-y plane again
    assert disc_fraction(p, v, stars.masses) > 0.9
    a2 = bar_strength(p, stars.masses)
    assert (a2 > 0.3) if barred else (a2 < 0.08)
    assert inclination([0.0, 0.0, -1.0]) == pytest.approx(0.0, abs=1e-6)  # looking down the axis: face-on
    assert inclination([0.0, np.sin(np.radians(50)), np.cos(np.radians(50))]) == pytest.approx(50.0)
    assert inclination([1.0, 0.0, 0.0]) == pytest.approx(90.0)


def test_spheroid_has_little_disc(tmp_path):
    rng = np.random.default_rng(2)
    path = tmp_path / "snapshot_600.hdf5"
    write_snapshot(path, *spheroid(rng, 20000))
    stars = read_stars(path)
    p, v = host_frame(stars.positions, stars.velocities, stars.masses)
    assert disc_fraction(p, v, stars.masses) < 0.3
    assert bar_strength(p, stars.masses) < 0.1


def test_bad_snapshots_are_named(tmp_path):
    with pytest.raises(InputError, match="nope.hdf5: file not found"):
        read_stars(tmp_path / "nope.hdf5")
    path = tmp_path / "gas_only.hdf5"
    with h5py.File(path, "w") as f:
        f.create_group("Header").attrs.update({"Time": 1.0, "Redshift": 0.0, "HubbleParam": 0.7})
    with pytest.raises(InputError, match="gas_only.hdf5: no PartType4 group"):
        read_stars(path)
    text = tmp_path / "text.hdf5"
    text.write_text("not hdf5")
    with pytest.raises(InputError, match="text.hdf5: not an HDF5 file"):
        read_stars(text)
