r"""FIRE-2 star particles: from GIZMO snapshots to mock images and truth quantities (the FIRE adapter of truth sets).

FIRE-2 public snapshots are GIZMO HDF5 files (``<sim>/output/snapshot_NNN.hdf5`` or
``<sim>/output/snapdir_NNN/snapshot_NNN.K.hdf5``, pieces K = 0, 1, ...) whose ``PartType4`` group holds the star
particles: ``Coordinates`` (comoving kpc/h), ``Velocities`` (km/s, times sqrt(a) in GIZMO's convention), ``Masses``
(1e10 Msun/h) and ``StellarFormationTime`` (the scale factor at formation); the header gives ``Time`` (the scale
factor a), ``Redshift``, ``HubbleParam`` (h) and ``Omega0``. :func:`read_stars` reads every piece and converts to
physical kpc, km/s, Msun and ages in Gyr (flat Lambda-CDM from the header, astropy).

The host's frame comes from ``<sim>/track/host_coordinates.hdf5`` when it is there (``host.position``, comoving kpc,
and ``host.rotation``, rows the principal axes, per snapshot and host: :func:`host_track`), otherwise from the stars:
the centre by shrinking spheres and the rotation putting the stars' angular momentum on +z (:func:`host_frame`).

Truth quantities, in the host frame:

- :func:`bar_strength`: :math:`A_2 = |\sum_j m_j e^{2 i \phi_j}| / \sum_j m_j` over cylindrical annuli of the
  face-on disc, its peak over a run of at least three annuli whose m = 2 phase stays within 10 degrees (a bar is
  straight; a spiral's phase turns), and the bar's length, the run's outer edge (:func:`bar_profile`; FIRE-2 bars are
  weak, :math:`A_2 \sim 0.1-0.2`);
- :func:`disc_fraction`: the mass share of stars on near-circular orbits, circularity
  :math:`\epsilon = j_z / (R\, v_c(R)) > 0.7` with :math:`v_c^2 = G M(<r) / r` from the stars' enclosed mass (an
  approximation to :math:`j_z / j_{circ}(E)` that needs no potential);
- :func:`spiral_structure`: the strongest of the m = 2, 3, 4 Fourier modes of young stars (< 1 Gyr, when there are
  enough; all stars otherwise) in annuli outside the bar, its mean amplitude, and the pitch angle from the slope of
  the mode's phase against ln R (a logarithmic spiral has :math:`\phi_m = \ln R / \tan p` + const);
- :func:`lopsidedness`: :math:`A_1` of the stars between 2 and 4 half-mass radii, a proxy for a recent disturbance
  (a single snapshot has no merger tree; documented as the ``merging`` proxy);
- :func:`inclination`: the angle between the disc's axis and a line of sight.

Mock images (:func:`mock_image`): the stars are seen from a chosen inclination and position angle, placed at a chosen
redshift (angular scale and luminosity distance from the cosmology), each spread by a Gaussian whose width is the
distance to its 16th nearest neighbour (adaptive smoothing: particles are grouped by width and each group's map
blurred once), convolved with a Gaussian PSF, given sky noise, at the survey's pixel scale, in g, r and z. Light:
``weight="light"`` gives each star an r-band mass-to-light ratio of 3 at 10 Gyr falling as age^0.7 for younger stars
and g/r, z/r colours from blue (young) to red (old), a crude stellar population meant to make young discs and arms
bluer and brighter than old bulges; ``weight="mass"`` projects mass with old colours. Fluxes are in nanomaggies
(r-band absolute magnitude of the Sun 4.65).

:func:`fire_truth_set` turns snapshots into a truth set (``annostat.truth.truthset``), several views each, the answers
through :data:`FIRE_THRESHOLDS` (changeable; kept in the manifest). ``annostat truth fire SNAPSHOT... --out DIR``.

Example:
    >>> import numpy as np
    >>> from annostat.truth.fire import bar_strength
    >>> rng = np.random.default_rng(0)
    >>> phi = rng.uniform(0, 2 * np.pi, 20000); r = rng.exponential(3.0, 20000)
    >>> pos = np.stack([r * np.cos(phi), r * np.sin(phi), np.zeros_like(r)], 1)
    >>> bool(bar_strength(pos, np.ones(len(r))) < 0.08)  # an axisymmetric disc: only shot noise in the m = 2 mode
    True
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from annostat.errors import InputError
from annostat.truth.answers import THRESHOLDS, answers_from

if TYPE_CHECKING:
    from annostat.truth.truthset import TruthSet

G_KPC_KMS2_PER_MSUN = 4.30091e-6  # gravitational constant in kpc (km/s)^2 / Msun


@dataclass
class Stars:
    """Star particles in physical units: positions [N, 3] kpc, velocities [N, 3] km/s, masses [N] Msun, ages [N] Gyr
    (None when the snapshot has no formation times)."""

    positions: np.ndarray
    velocities: np.ndarray
    masses: np.ndarray
    redshift: float
    scale_factor: float
    ages: np.ndarray | None = None
    hubble: float = 0.7
    omega_matter: float = 0.272


_SNAPSHOT = re.compile(r"^snapshot_(\d+)(?:\.(\d+))?\.hdf5$")
_SNAPDIR = re.compile(r"^snapdir_(\d+)$")


def snapshot_files(path: str | Path) -> list[Path]:
    """The file(s) of one snapshot: the file itself, or every piece ``snapshot_NNN.K.hdf5`` of a ``snapdir_NNN``
    folder (given the folder or any of its pieces), in piece order."""
    path = Path(path)
    if path.is_dir():
        match = _SNAPDIR.match(path.name)
        pieces = sorted(path.glob("snapshot_*.hdf5"))
        if not match or not pieces:
            raise InputError(f"{path}: not a snapshot folder (expected snapdir_NNN holding snapshot_NNN.K.hdf5)")
    elif not path.exists():
        raise InputError(f"{path}: file not found")
    else:
        match = _SNAPSHOT.match(path.name)
        if not (match and match.group(2) is not None):
            return [path]
        pieces = list(path.parent.glob(f"snapshot_{match.group(1)}.*.hdf5"))
    order = [(int(m.group(2)), p) for p in pieces if (m := _SNAPSHOT.match(p.name)) and m.group(2) is not None]
    return [p for _, p in sorted(order)]


def snapshot_identity(path: str | Path, name: str | None = None) -> tuple[str, int]:
    """(simulation name, snapshot number) from the FIRE layout ``<sim>/output/snapshot_NNN.hdf5`` (or
    ``<sim>/output/snapdir_NNN/...``); ``name`` overrides the simulation's name."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: file not found")
    match = _SNAPDIR.match(path.name) if path.is_dir() else _SNAPSHOT.match(path.name)
    if not match:
        raise InputError(f"{path}: cannot tell the snapshot number (expected snapshot_NNN.hdf5 or snapdir_NNN)")
    folder = path.parent
    if not path.is_dir() and _SNAPDIR.match(folder.name):  # a piece inside snapdir_NNN
        folder = folder.parent
    if name:
        return name, int(match.group(1))
    if folder.name != "output":
        raise InputError(
            f"{path}: cannot tell the simulation's name (expected <sim>/output/snapshot_NNN.hdf5); give it with --name"
        )
    return folder.resolve().parent.name, int(match.group(1))


def read_stars(path: str | Path) -> Stars:
    """The star particles of one GIZMO snapshot (a file, or every piece of a ``snapdir_NNN``) in physical units;
    names the file and dataset when something is absent."""
    import h5py

    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]] = []
    header: dict[str, float] | None = None
    for piece in snapshot_files(path):
        try:
            f = h5py.File(piece, "r")
        except OSError as exc:
            raise InputError(f"{piece}: not an HDF5 file ({exc})") from None
        with f:
            if "Header" not in f:
                raise InputError(f"{piece}: no Header group (not a GIZMO snapshot)")
            attrs = f["Header"].attrs
            for key in ("Time", "Redshift", "HubbleParam"):
                if key not in attrs:
                    raise InputError(f"{piece}: Header attribute {key!r} missing")
            header = header or {k: float(attrs[k]) for k in ("Time", "Redshift", "HubbleParam")} | {
                "Omega0": float(attrs.get("Omega0", 0.272))
            }
            if "PartType4" not in f:
                if "NumPart_ThisFile" in attrs and int(attrs["NumPart_ThisFile"][4]) == 0:
                    continue  # a piece of a multi-file snapshot without stars
                raise InputError(f"{piece}: no PartType4 group (no star particles)")
            stars = f["PartType4"]
            for name in ("Coordinates", "Velocities", "Masses"):
                if name not in stars:
                    raise InputError(f"{piece}: dataset PartType4/{name} missing")
            formed = np.asarray(stars["StellarFormationTime"], np.float64) if "StellarFormationTime" in stars else None
            parts.append(
                (
                    np.asarray(stars["Coordinates"], np.float64),
                    np.asarray(stars["Velocities"], np.float64),
                    np.asarray(stars["Masses"], np.float64),
                    formed,
                )
            )
    if not parts:
        raise InputError(f"{path}: no star particles in any piece of the snapshot")
    assert header is not None  # read with the first piece that has stars
    a, h = header["Time"], header["HubbleParam"]
    positions = np.concatenate([p[0] for p in parts]) * a / h
    velocities = np.concatenate([p[1] for p in parts]) * np.sqrt(a)
    masses = np.concatenate([p[2] for p in parts]) * 1e10 / h
    ages = None
    if all(p[3] is not None for p in parts):
        ages = stellar_ages(np.concatenate([p[3] for p in parts]), a, h, header["Omega0"])
    return Stars(positions, velocities, masses, header["Redshift"], a, ages, h, header["Omega0"])


def stellar_ages(formed: np.ndarray, scale_factor: float, hubble: float, omega_matter: float) -> np.ndarray:
    """Ages in Gyr of stars formed at scale factors ``formed``, seen at ``scale_factor`` (flat Lambda-CDM)."""
    from astropy.cosmology import FlatLambdaCDM

    cosmo = FlatLambdaCDM(H0=100.0 * hubble, Om0=omega_matter)
    grid = np.linspace(1e-3, 1.0, 2000)  # age of the universe on a grid of scale factors, then interpolated
    t = cosmo.age(1.0 / grid - 1.0).value
    now = np.interp(scale_factor, grid, t)
    return np.clip(now - np.interp(np.clip(formed, 1e-3, 1.0), grid, t), 0.0, None)


def host_track(path: str | Path, snapshot: int, host: int = 0) -> tuple[np.ndarray, np.ndarray] | None:
    """The host's centre (comoving kpc) and rotation tensor at ``snapshot`` from ``<sim>/track/host_coordinates.hdf5``
    next to the snapshot's ``output`` folder; None when the file is not there."""
    import h5py

    path = Path(path).resolve()
    folder = path if path.is_dir() else path.parent
    while folder.name != "output" and folder != folder.parent:
        folder = folder.parent
    track = folder.parent / "track" / "host_coordinates.hdf5"
    if folder.name != "output" or not track.exists():
        return None
    try:
        f = h5py.File(track, "r")
    except OSError as exc:
        raise InputError(f"{track}: not an HDF5 file ({exc})") from None
    with f:
        for name in ("host.position", "host.rotation"):
            if name not in f:
                raise InputError(f"{track}: dataset {name!r} missing")
        rotation, position = f["host.rotation"], f["host.position"]
        if snapshot >= rotation.shape[0] or host >= rotation.shape[1]:
            raise InputError(f"{track}: no host {host} at snapshot {snapshot} (shape {rotation.shape})")
        centre, tensor = np.asarray(position[snapshot, host], float), np.asarray(rotation[snapshot, host], float)
    if not (np.isfinite(tensor).all() and np.isfinite(centre).all()):
        raise InputError(f"{track}: host {host} has no coordinates at snapshot {snapshot}")
    return centre, tensor


def host_frame(
    positions: np.ndarray,
    velocities: np.ndarray,
    masses: np.ndarray,
    radius: float = 15.0,
    rotation: np.ndarray | None = None,
    centre: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Positions and velocities in the host's frame: centred (on ``centre``, physical kpc, or by shrinking spheres),
    at rest (central stars' mean velocity) and rotated so that the stars' angular momentum within ``radius`` kpc
    points along +z (or by the given 3x3 ``rotation``, rows the new axes)."""
    if centre is None:
        centre = np.average(positions, axis=0, weights=masses)
        r_search = np.max(np.linalg.norm(positions - centre, axis=1))
        while r_search > 1.0:  # shrink by 30% a step, recentring on the stars inside
            inside = np.linalg.norm(positions - centre, axis=1) < r_search
            if inside.sum() < 100:
                break
            centre = np.average(positions[inside], axis=0, weights=masses[inside])
            r_search *= 0.7
    pos = positions - centre
    central = np.linalg.norm(pos, axis=1) < radius
    vel = velocities - np.average(velocities[central], axis=0, weights=masses[central])
    if rotation is None:
        spin = np.sum(masses[central, None] * np.cross(pos[central], vel[central]), axis=0)
        rotation = _rotation_to_z(spin)
    return pos @ rotation.T, vel @ rotation.T


def _rotation_to_z(vector: np.ndarray) -> np.ndarray:
    """A rotation matrix (rows: new x, y, z axes) whose z axis is ``vector``'s direction."""
    z = vector / np.linalg.norm(vector)
    helper = np.array([1.0, 0.0, 0.0]) if abs(z[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    x = np.cross(helper, z)
    x /= np.linalg.norm(x)
    return np.stack([x, np.cross(z, x), z])


def bar_profile(
    positions: np.ndarray, masses: np.ndarray, r_max: float = 10.0, n_bins: int = 20, min_particles: int = 500
) -> dict[str, Any]:
    """The m = 2 Fourier amplitude and phase over cylindrical annuli (face-on, host frame) out to ``r_max`` kpc;
    ``a2_max``, the largest amplitude anywhere, and the bar: the run of annuli around the largest amplitude whose
    phase stays within 10 degrees of the peak's. Three or more annuli make a bar (``a2_bar`` its peak amplitude,
    ``r_bar_kpc`` the run's outer edge); a spiral's phase turns with radius, so its m = 2 peak makes no such run
    (``a2_bar`` = ``r_bar_kpc`` = 0).

    Annuli with fewer than ``min_particles`` stars are skipped: with N particles an axisymmetric ring shows
    A2 ~ sqrt(pi / 4N) from shot noise alone (0.04 for 500)."""
    R = np.hypot(positions[:, 0], positions[:, 1])
    phi = np.arctan2(positions[:, 1], positions[:, 0])
    edges = np.linspace(0.0, r_max, n_bins + 1)
    which = np.digitize(R, edges) - 1
    amp, phase = np.full(n_bins, np.nan), np.full(n_bins, np.nan)
    for b in range(n_bins):
        ring = which == b
        if ring.sum() < min_particles:
            continue
        mode = np.sum(masses[ring] * np.exp(2j * phi[ring])) / np.sum(masses[ring])
        amp[b], phase[b] = np.abs(mode), np.angle(mode) / 2
    out = {"radius": edges[1:], "a2": amp, "phase": phase, "a2_max": 0.0, "a2_bar": 0.0, "r_bar_kpc": 0.0}
    if np.all(np.isnan(amp)):
        return out
    peak = int(np.nanargmax(amp))
    out["a2_max"] = float(amp[peak])

    def aligned(b: int) -> bool:
        return (
            0 <= b < n_bins
            and not np.isnan(phase[b])
            and abs(np.angle(np.exp(2j * (phase[b] - phase[peak])))) / 2 < np.radians(10)
        )

    start, end = peak, peak
    while aligned(start - 1):
        start -= 1
    while aligned(end + 1):
        end += 1
    if end - start + 1 >= 3 and amp[peak] > 2 * np.sqrt(np.pi / (4 * min_particles)):
        out.update(a2_bar=float(amp[peak]), r_bar_kpc=float(edges[end + 1]))
    return out


def bar_strength(
    positions: np.ndarray, masses: np.ndarray, r_max: float = 10.0, n_bins: int = 20, min_particles: int = 500
) -> float:
    """The bar's A2: the peak m = 2 amplitude of a phase-aligned run of annuli (see :func:`bar_profile`)."""
    return bar_profile(positions, masses, r_max, n_bins, min_particles)["a2_bar"]


def spiral_structure(
    positions: np.ndarray, masses: np.ndarray, r_min: float, r_max: float, n_bins: int = 10, min_particles: int = 300
) -> dict[str, float]:
    """The strongest spiral mode between ``r_min`` and ``r_max`` kpc (face-on, host frame): ``spiral_m`` (2, 3 or 4),
    ``spiral_amp`` (its mean amplitude over the annuli) and ``pitch_deg`` (from the slope of its phase against
    ln R: :math:`\\tan p = 1 / |d\\phi_m / d\\ln R|`). Zeros when fewer than three annuli hold enough stars."""
    R = np.hypot(positions[:, 0], positions[:, 1])
    phi = np.arctan2(positions[:, 1], positions[:, 0])
    edges = np.geomspace(max(r_min, 0.1), max(r_max, r_min * 1.5, 0.2), n_bins + 1)
    which = np.digitize(R, edges) - 1
    centres, modes = [], []
    for b in range(n_bins):
        ring = which == b
        if ring.sum() < min_particles:
            continue
        w = masses[ring] / masses[ring].sum()
        centres.append(np.sqrt(edges[b] * edges[b + 1]))
        modes.append([np.sum(w * np.exp(1j * m * phi[ring])) for m in (2, 3, 4)])
    if len(centres) < 3:
        return {"spiral_m": 0, "spiral_amp": 0.0, "pitch_deg": 0.0}
    modes = np.array(modes)  # [annuli, 3]
    amps = np.abs(modes).mean(axis=0)
    k = int(np.argmax(amps))
    m = (2, 3, 4)[k]
    phase = np.unwrap(np.angle(modes[:, k])) / m
    slope = np.polyfit(np.log(centres), phase, 1)[0]
    pitch = float(np.degrees(np.arctan(1.0 / abs(slope)))) if slope != 0 else 90.0
    return {"spiral_m": m, "spiral_amp": float(amps[k]), "pitch_deg": pitch}


def lopsidedness(positions: np.ndarray, masses: np.ndarray, r50: float) -> float:
    r"""The lopsidedness :math:`A_1 = |\sum m\,e^{i\phi}| / \sum m` of the stars between 2 and 4 half-mass radii,
    face-on (a disturbance proxy)."""
    r = np.linalg.norm(positions, axis=1)
    ring = (r > 2 * r50) & (r < 4 * r50)
    if ring.sum() < 100:
        return 0.0
    phi = np.arctan2(positions[ring, 1], positions[ring, 0])
    return float(np.abs(np.sum(masses[ring] * np.exp(1j * phi))) / masses[ring].sum())


def half_mass_radius(positions: np.ndarray, masses: np.ndarray, r_max: float = 30.0) -> tuple[float, float]:
    """(stellar mass within ``r_max`` kpc, the 3-d radius holding half of it)."""
    r = np.linalg.norm(positions, axis=1)
    inside = r < r_max
    order = np.argsort(r[inside])
    cumulative = np.cumsum(masses[inside][order])
    total = float(cumulative[-1]) if len(cumulative) else 0.0
    if total == 0:
        return 0.0, 0.0
    return total, float(r[inside][order][np.searchsorted(cumulative, 0.5 * total)])


def disc_fraction(
    positions: np.ndarray, velocities: np.ndarray, masses: np.ndarray, r_max: float = 20.0, threshold: float = 0.7
) -> float:
    """Mass share of stars within ``r_max`` kpc whose circularity j_z / (R v_c(R)) exceeds ``threshold``."""
    r = np.linalg.norm(positions, axis=1)
    order = np.argsort(r)
    enclosed = np.empty_like(r)
    enclosed[order] = np.cumsum(masses[order])
    inside = (r < r_max) & (r > 0)
    R = np.hypot(positions[:, 0], positions[:, 1])
    jz = positions[:, 0] * velocities[:, 1] - positions[:, 1] * velocities[:, 0]
    v_circ = np.sqrt(G_KPC_KMS2_PER_MSUN * enclosed / np.maximum(r, 1e-6))
    circularity = jz / np.maximum(R * v_circ, 1e-9)
    return float(masses[inside & (circularity > threshold)].sum() / masses[inside].sum())


def inclination(line_of_sight: np.ndarray) -> float:
    """Degrees between the disc's axis (+z of the host frame) and ``line_of_sight`` (0: face-on, 90: edge-on),
    folded to 0-90."""
    los = np.asarray(line_of_sight, float)
    cos = abs(los[2]) / np.linalg.norm(los)
    return float(np.degrees(np.arccos(np.clip(cos, 0.0, 1.0))))


# --- mock images ---------------------------------------------------------------------------------------------------

BANDS = ("g", "r", "z")
SUN_ABS_MAG_R = 4.65
#: thresholds from FIRE truth quantities to Galaxy Zoo DECaLS answers (the stand-in's, with bar and merging cuts for
#: particle measurements: A2 >= 0.25 strong, >= 0.15 weak; outer lopsidedness A1 as the merging proxy)
FIRE_THRESHOLDS: dict[str, Any] = {
    **THRESHOLDS,
    "bar_strong": 0.25,
    "bar_weak": 0.15,
    "spiral_amplitude": 0.1,
    "merging_minor": 0.1,
    "merging_major": 0.25,
    "merging_merger": 0.45,
}


def band_light(masses: np.ndarray, ages: np.ndarray | None, weight: str = "light") -> np.ndarray:
    """Each star's g, r, z luminosity in r-band solar units [N, 3] (module docstring: a crude population)."""
    if weight not in ("light", "mass"):
        raise ValueError(f"weight {weight!r} is not 'light' or 'mass'")
    if weight == "mass" or ages is None:
        r = masses / 3.0
        log_age = np.full(len(masses), 1.0)
    else:
        age = np.clip(ages, 0.01, 13.8)
        r = masses / 3.0 * (age / 10.0) ** -0.7
        log_age = np.log10(age)
    g = r * np.interp(log_age, [-1.0, 0.7], [1.3, 0.55])
    z = r * np.interp(log_age, [-1.0, 0.7], [0.8, 1.45])
    return np.stack([g, r, z], axis=1)


def smoothing_lengths(positions: np.ndarray, neighbours: int = 16) -> np.ndarray:
    """Each star's distance (kpc) to its ``neighbours``-th nearest neighbour in 3-d."""
    from scipy.spatial import cKDTree

    k = min(neighbours, len(positions) - 1)
    if k < 1:
        return np.full(len(positions), 0.1)
    distance, _ = cKDTree(positions).query(positions, k=k + 1, workers=-1)
    return distance[:, -1]


def view_rotation(inclination_deg: float, pa_deg: float) -> np.ndarray:
    """Rotation (rows: sky x, sky y, line of sight) that tilts the disc's axis by the inclination (about x) and turns
    the sky by the position angle."""
    i, p = np.radians(inclination_deg), np.radians(pa_deg)
    tilt = np.array([[1, 0, 0], [0, np.cos(i), -np.sin(i)], [0, np.sin(i), np.cos(i)]])
    turn = np.array([[np.cos(p), -np.sin(p), 0], [np.sin(p), np.cos(p), 0], [0, 0, 1]])
    return turn @ tilt


def projected_axis_ratio(sky: np.ndarray, weights: np.ndarray, r_max: float) -> float:
    """sqrt(minor / major eigenvalue) of the weighted second moments of projected positions within ``r_max``."""
    inside = np.hypot(sky[:, 0], sky[:, 1]) < r_max
    if inside.sum() < 10:
        return 1.0
    eig = np.linalg.eigvalsh(np.cov(sky[inside, :2].T, aweights=weights[inside]))
    return float(np.sqrt(max(eig[0], 0.0) / max(eig[1], 1e-12)))


def mock_image(
    sky: np.ndarray,
    light: np.ndarray,
    smoothing: np.ndarray,
    size: int,
    kpc_per_pixel: float,
    flux_per_light: float,
    psf_fwhm_pixels: float,
    sky_sigma: float,
    rng: np.random.Generator,
    n_groups: int = 8,
) -> tuple[np.ndarray, np.ndarray]:
    """(noisy, noiseless) images [bands, size, size] in nanomaggies: stars at sky positions (kpc, centre at the
    image centre) with ``light`` [N, bands], each spread by a Gaussian of sigma = half its smoothing length (stars
    grouped into ``n_groups`` widths, each group's map blurred once), then the Gaussian PSF and sky noise."""
    from scipy.ndimage import gaussian_filter

    pix = sky[:, :2] / kpc_per_pixel + size / 2.0
    on = (pix >= 0).all(axis=1) & (pix < size).all(axis=1)
    sigma = np.clip(0.5 * smoothing[on] / kpc_per_pixel, 0.3, size / 4)
    edges = np.geomspace(sigma.min(), sigma.max() * 1.0001, n_groups + 1) if on.any() else np.array([0.3, 0.31])
    group = np.clip(np.digitize(sigma, edges) - 1, 0, n_groups - 1)
    bins = np.arange(size + 1)
    clean = np.zeros((light.shape[1], size, size))
    for g in range(n_groups):
        chosen = group == g
        if not chosen.any():
            continue
        width = float(np.sqrt(edges[g] * edges[g + 1]))
        for b in range(light.shape[1]):
            hist, _, _ = np.histogram2d(
                pix[on][chosen, 1], pix[on][chosen, 0], bins=(bins, bins), weights=light[on][chosen, b]
            )
            clean[b] += gaussian_filter(hist, width, mode="constant")
    clean *= flux_per_light
    psf_sigma = psf_fwhm_pixels / (2 * np.sqrt(2 * np.log(2)))
    clean = np.stack([gaussian_filter(band, psf_sigma, mode="constant") for band in clean])
    noisy = clean + rng.normal(0.0, sky_sigma, clean.shape)
    return noisy.astype(np.float32), clean.astype(np.float32)


@dataclass
class SnapshotTruth:
    """What one snapshot's stars give, view-independent: the host-frame stars, their light and smoothing lengths,
    and the truth quantities."""

    sim: str
    snapshot: int
    redshift: float
    positions: np.ndarray
    light: np.ndarray
    smoothing: np.ndarray
    quantities: dict[str, float]
    frame: str  # "host_coordinates" or "stars"


def measure_snapshot(
    path: str | Path, name: str | None = None, weight: str = "light", r_max: float = 30.0
) -> SnapshotTruth:
    """Read a snapshot, put its stars in the host frame (the track's rotation when there is one) and measure the
    truth quantities: mstar, r50_kpc, disc_fraction, bulge_fraction, a2_max, a2_bar, r_bar_kpc, spiral_m,
    spiral_amp, pitch_deg, a1_outer."""
    sim, snapshot = snapshot_identity(path, name)
    stars = read_stars(path)
    track = host_track(path, snapshot)
    if track is not None:
        centre, rotation = track
        pos, vel = host_frame(
            stars.positions, stars.velocities, stars.masses, rotation=rotation, centre=centre * stars.scale_factor
        )
    else:
        pos, vel = host_frame(stars.positions, stars.velocities, stars.masses)
    keep = np.linalg.norm(pos, axis=1) < r_max
    pos, vel, masses = pos[keep], vel[keep], stars.masses[keep]
    ages = stars.ages[keep] if stars.ages is not None else None
    mstar, r50 = half_mass_radius(pos, masses, r_max)
    bar = bar_profile(pos, masses, r_max=min(r_max, 4 * max(r50, 1.0)))
    young = (ages < 1.0) if ages is not None else np.zeros(len(masses), bool)
    tracer = young if young.sum() >= 2000 else np.ones(len(masses), bool)
    r_in = max(1.2 * bar["r_bar_kpc"], 0.5 * r50)
    spiral = spiral_structure(pos[tracer], masses[tracer], r_in, max(3 * r50, r_in * 2))
    fraction = disc_fraction(pos, vel, masses, r_max=r_max)
    quantities = {
        "mstar": mstar,
        "r50_kpc": r50,
        "disc_fraction": fraction,
        "bulge_fraction": 1.0 - fraction,
        "a2_max": bar["a2_max"],
        "a2_bar": bar["a2_bar"],
        "r_bar_kpc": bar["r_bar_kpc"],
        **spiral,
        "a1_outer": lopsidedness(pos, masses, r50),
        "n_stars": len(masses),
        "young_tracer": bool(tracer is young),
    }
    return SnapshotTruth(
        sim,
        snapshot,
        stars.redshift,
        pos,
        band_light(masses, ages, weight),
        smoothing_lengths(pos),
        quantities,
        "host_coordinates" if track is not None else "stars",
    )


def fire_answers(
    quantities: dict[str, float], inclination_deg: float, axis_ratio: float, thresholds: dict[str, Any] | None = None
) -> dict[str, str]:
    """The true Galaxy Zoo DECaLS answers of one view, through the answer rules (:mod:`annostat.truth.answers`) with
    FIRE's quantities: disc fraction, inclination, the bar's A2 as bar strength, the spiral mode, and the outer A1
    as the merging proxy."""
    p = {
        "disc_fraction": quantities["disc_fraction"],
        "inclination_deg": inclination_deg,
        "bar_strength": quantities["a2_bar"],
        "spiral_amp": quantities["spiral_amp"],
        "pitch_deg": quantities["pitch_deg"],
        "spiral_m": quantities["spiral_m"],
        "tidal_amp": quantities["a1_outer"],
        "axis_ratio": axis_ratio,
    }
    return answers_from(p, {**FIRE_THRESHOLDS, **(thresholds or {})})


def fire_truth_set(
    snapshots: Sequence[str | Path],
    out: str | Path,
    views: int = 4,
    size: int = 128,
    redshift: float = 0.05,
    pixscale: float = 0.262,
    psf_fwhm: float = 1.3,
    sky_sigma: float = 0.002,
    seed: int = 0,
    name: str | None = None,
    weight: str = "light",
    thresholds: dict[str, Any] | None = None,
    inclinations: Sequence[float] | None = None,
) -> TruthSet:
    """Mock images and truth of FIRE-2 snapshots, placed at ``redshift``, written as a truth set in ``out`` (see the
    module docstring). Orientations: the given ``inclinations`` (degrees; one view each), else ``views`` random ones
    (isotropic); position angles uniform at random."""
    from astropy.cosmology import FlatLambdaCDM

    from annostat.truth.truthset import empty_truth_row, true_column, write_truth_set

    if inclinations is not None:
        if not len(inclinations) or not all(0 <= i <= 90 for i in inclinations):
            raise InputError("inclinations must be one or more angles from 0 to 90 degrees")
        views = len(inclinations)
    if views < 1 or size < 16:
        raise InputError("need at least one view and images of at least 16 pixels")
    rng = np.random.default_rng(seed)
    rows, images = [], {}
    cosmo = FlatLambdaCDM(H0=70.0, Om0=0.3)  # where the galaxies are placed: the same for every snapshot
    kpc_per_arcsec = float(cosmo.kpc_proper_per_arcmin(redshift).value) / 60.0
    d_l_pc = float(cosmo.luminosity_distance(redshift).to("pc").value)
    flux_per_light = 10 ** ((22.5 - SUN_ABS_MAG_R - 5 * np.log10(d_l_pc / 10.0)) / 2.5)
    for path in snapshots:
        truth = measure_snapshot(path, name, weight)
        for view in range(views):
            inc = float(inclinations[view]) if inclinations is not None else float(np.degrees(np.arccos(rng.random())))
            pa = float(rng.uniform(0, 180))
            sky = truth.positions @ view_rotation(inc, pa).T
            q = projected_axis_ratio(sky, truth.light[:, 1], 2 * max(truth.quantities["r50_kpc"], 0.5))
            noisy, _ = mock_image(
                sky,
                truth.light,
                truth.smoothing,
                size,
                kpc_per_arcsec * pixscale,
                flux_per_light,
                psf_fwhm / pixscale,
                sky_sigma,
                rng,
            )
            image_id = f"{truth.sim}-{truth.snapshot:03d}-v{view:02d}"
            row = empty_truth_row(
                image_id,
                "gz-decals-dr5",
                sim=truth.sim,
                snapshot=truth.snapshot,
                redshift=redshift,
                view=view,
                inclination_deg=inc,
                pa_deg=pa,
                pixscale_arcsec=pixscale,
                psf_fwhm_arcsec=psf_fwhm,
                sky_sigma=sky_sigma,
            )
            row.update(truth.quantities)
            row.update(
                snapshot_redshift=truth.redshift,
                axis_ratio=q,
                kpc_per_arcsec=kpc_per_arcsec,
                frame=truth.frame,
                flux_r=float(noisy[1].sum()),
            )
            row.update(
                {
                    true_column(question): answer
                    for question, answer in fire_answers(truth.quantities, inc, q, thresholds).items()
                }
            )
            rows.append(row)
            images[image_id] = dict(zip(BANDS, noisy))
    manifest = {
        "source": "fire2",
        "tree": "gz-decals-dr5",
        "bands": list(BANDS),
        "pixscale_arcsec": pixscale,
        "psf": {"kind": "gaussian", "fwhm_arcsec": psf_fwhm},
        "seed": int(seed),
        "thresholds": {**FIRE_THRESHOLDS, **(thresholds or {})},
        "units": {"image": "nanomaggies", "angles": "degrees", "lengths": "kpc", "mstar": "Msun"},
        "renderer": {
            "name": "annostat.truth.fire",
            "size": size,
            "placed_at_redshift": redshift,
            "weight": weight,
            "sky_sigma": sky_sigma,
            "smoothing_neighbours": 16,
            "cosmology": "flat LCDM H0=70 Om0=0.3 (placement)",
        },
    }
    return write_truth_set(out, manifest, pd.DataFrame(rows), images)
