"""FIRE-2 star particles: a GIZMO-layout snapshot written here (a tilted, rotating, barred disc and a spheroid, whose
answers are known by construction) is read back in physical units, put in the host frame, and measured."""

import h5py
import numpy as np
import pandas as pd
import pytest

from annostat.errors import InputError
from annostat.truth.fire import (
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


def spiral_disc(rng, n, m=2, pitch_deg=20.0, amplitude=0.6):
    """A cold rotating disc whose density follows an m-armed logarithmic spiral (rejection sampling)."""
    R = rng.gamma(2.0, 1.5, 4 * n)
    phi = rng.uniform(0, 2 * np.pi, 4 * n)
    density = 1 + amplitude * np.cos(m * (phi - np.log(R) / np.tan(np.radians(pitch_deg))))
    keep = rng.random(4 * n) < density / (1 + amplitude)
    R, phi = R[keep][:n], phi[keep][:n]
    pos = np.stack([R * np.cos(phi), R * np.sin(phi), rng.normal(0, 0.2, len(R))], 1)
    vc = 200.0
    vel = np.stack([-vc * np.sin(phi), vc * np.cos(phi), rng.normal(0, 5, len(R))], 1)
    return pos, vel, np.full(len(R), 1e6)


def test_spiral_arms_are_measured_from_young_stars(tmp_path):
    from annostat.truth.fire import measure_snapshot

    rng = np.random.default_rng(3)
    pos, vel, m = spiral_disc(rng, 30000, m=2, pitch_deg=20.0)
    path = tmp_path / "m12s" / "output" / "snapshot_600.hdf5"
    path.parent.mkdir(parents=True)
    write_snapshot(path, pos, vel, m)
    with h5py.File(path, "a") as f:  # all stars formed recently: ages well under 1 Gyr
        f["PartType4"]["StellarFormationTime"] = np.full(len(m), A - 0.02)
    truth = measure_snapshot(path)
    q = truth.quantities
    assert q["young_tracer"] and q["spiral_m"] == 2 and q["spiral_amp"] > 0.15
    assert abs(q["pitch_deg"] - 20.0) < 5.0
    plain = tmp_path / "m12p" / "output" / "snapshot_600.hdf5"
    plain.parent.mkdir(parents=True)
    write_snapshot(plain, *disc(np.random.default_rng(4), 30000, barred=False))
    assert measure_snapshot(plain).quantities["spiral_amp"] < 0.1


def test_snapdir_pieces_are_read_together(tmp_path):
    from annostat.truth.fire import snapshot_files, snapshot_identity

    rng = np.random.default_rng(5)
    pos, vel, m = disc(rng, 9000, barred=False)
    whole = tmp_path / "whole.hdf5"
    write_snapshot(whole, pos, vel, m)
    folder = tmp_path / "m12y" / "output" / "snapdir_600"
    folder.mkdir(parents=True)
    for k, part in enumerate(np.array_split(np.arange(9000), 3)):
        write_snapshot(folder / f"snapshot_600.{k}.hdf5", pos[part], vel[part], m[part])
    assert [p.name for p in snapshot_files(folder)] == [f"snapshot_600.{k}.hdf5" for k in range(3)]
    a, b = read_stars(whole), read_stars(folder / "snapshot_600.1.hdf5")
    assert np.allclose(a.positions, b.positions) and np.allclose(a.masses, b.masses)
    assert snapshot_identity(folder) == ("m12y", 600) == snapshot_identity(folder / "snapshot_600.2.hdf5")
    renamed = whole.rename(tmp_path / "snapshot_012.hdf5")
    assert snapshot_identity(renamed, name="mine") == ("mine", 12)
    with pytest.raises(InputError, match="--name"):  # not in the <sim>/output/ layout
        snapshot_identity(renamed)


def test_host_rotation_comes_from_the_track_file(tmp_path, tilt):
    from annostat.truth.fire import measure_snapshot

    rng = np.random.default_rng(6)
    pos, vel, m = disc(rng, 20000, barred=True)
    offset = np.array([500.0, 800.0, 300.0])
    sim = tmp_path / "m12t"
    path = sim / "output" / "snapshot_600.hdf5"
    path.parent.mkdir(parents=True)
    write_snapshot(path, pos @ tilt.T + offset, vel @ tilt.T, m)
    (sim / "track").mkdir()
    with h5py.File(sim / "track" / "host_coordinates.hdf5", "w") as f:
        rotation = np.full((601, 1, 3, 3), np.nan)
        rotation[600, 0] = tilt.T  # rows: the disc's axes in the simulation's frame
        position = np.full((601, 1, 3), np.nan)
        position[600, 0] = offset / A  # comoving kpc
        f["host.rotation"], f["host.position"] = rotation, position
    truth = measure_snapshot(path)
    assert truth.frame == "host_coordinates"
    assert np.std(truth.positions[:, 2]) < 0.3 and truth.quantities["a2_max"] > 0.3
    assert truth.quantities["disc_fraction"] > 0.9


@pytest.fixture(scope="module")
def fire_sims(tmp_path_factory):
    root = tmp_path_factory.mktemp("fire")
    rng = np.random.default_rng(7)
    paths = []
    for sim, (pos, vel, m) in (("m12bar", disc(rng, 30000, True)), ("m12sph", spheroid(rng, 30000))):
        path = root / sim / "output" / "snapshot_600.hdf5"
        path.parent.mkdir(parents=True)
        write_snapshot(path, pos, vel, m)
        paths.append(path)
    return root, paths


def test_cli_builds_a_fire_truth_set_whose_answers_match_construction(fire_sims, tmp_path):
    from typer.testing import CliRunner

    from annostat.cli import app
    from annostat.truth.truthset import load_truth_set

    root, paths = fire_sims
    out = tmp_path / "truth"
    result = CliRunner().invoke(
        app, ["truth", "fire", *map(str, paths), "--out", str(out), "--views", "6", "--size", "64", "--seed", "2"]
    )
    assert result.exit_code == 0, result.output
    ts = load_truth_set(out)
    t = ts.truth.set_index("image_id")
    assert ts.manifest["source"] == "fire2" and set(t["sim"]) == {"m12bar", "m12sph"} and len(t) == 12
    bar, sph = t[t["sim"] == "m12bar"], t[t["sim"] == "m12sph"]
    assert (bar["true_smooth-or-featured"] == "featured-or-disk").all()
    assert (sph["true_smooth-or-featured"] == "smooth").all() and (sph["true_how-rounded"] == "round").all()
    edge_on = bar["inclination_deg"] >= 75
    assert (bar.loc[edge_on, "true_disk-edge-on"] == "yes").all()
    assert (bar.loc[~edge_on, "true_disk-edge-on"] == "no").all() and (bar.loc[~edge_on, "true_bar"] == "strong").all()
    for image_id, row in bar.iterrows():  # the pixels: an edge-on disc is thin, a face-on one round
        r = ts.read_image(image_id)["r"]
        y, x = np.mgrid[: r.shape[0], : r.shape[1]]
        w = np.clip(r, 0, None)
        cov = np.cov(np.stack([x.ravel(), y.ravel()]), aweights=w.ravel())
        ratio = np.sqrt(np.linalg.eigvalsh(cov)[0] / np.linalg.eigvalsh(cov)[1])
        if row["inclination_deg"] > 80:
            assert ratio < 0.45
    assert np.isclose(t["flux_r"], t["flux_r"].iloc[0], rtol=0.05).all()  # same mass, same distance
    simulated = CliRunner().invoke(app, ["simulate", str(out), "--volunteers", "20", "--retire-after", "5"])
    assert simulated.exit_code == 0, simulated.output  # FIRE galaxies go through the same volunteer simulator
    subjects = pd.read_parquet(out / "votes" / "subjects.parquet").set_index("image_id")
    assert set(subjects.index) == set(t.index)
    by_inclination = subjects["difficulty"].groupby(t["inclination_deg"] > 75).mean()
    assert by_inclination[True] > by_inclination[False]  # edge-on views are harder to read
    named = CliRunner().invoke(
        app,
        [
            "truth",
            "fire",
            str(paths[0]),
            "--out",
            str(tmp_path / "n"),
            "--views",
            "1",
            "--size",
            "32",
            "--name",
            "my-run",
        ],
    )
    assert named.exit_code == 0 and load_truth_set(tmp_path / "n").truth["sim"].tolist() == ["my-run"]
    chosen = CliRunner().invoke(
        app, ["truth", "fire", str(paths[0]), "--out", str(tmp_path / "c"), "--size", "32", "--inclinations", "0,88"]
    )
    assert chosen.exit_code == 0, chosen.output
    views = load_truth_set(tmp_path / "c").truth
    assert views["inclination_deg"].tolist() == [0.0, 88.0] and views["true_disk-edge-on"].tolist() == ["no", "yes"]
    bad = CliRunner().invoke(
        app, ["truth", "fire", str(paths[0]), "--out", str(tmp_path / "b"), "--inclinations", "120"]
    )
    assert bad.exit_code == 2 and "inclinations" in bad.output
    missing = CliRunner().invoke(app, ["truth", "fire", str(root / "nope.hdf5"), "--out", str(tmp_path / "x")])
    assert missing.exit_code == 2 and "file not found" in missing.output and "Traceback" not in missing.output
