r"""FIRE-2 star particles: reading GIZMO snapshots and the truth quantities particles give (first part of the adapter).

FIRE-2 public snapshots are GIZMO HDF5 files (``<sim>/output/snapshot_NNN.hdf5`` or ``snapdir_NNN/snapshot_NNN.K.hdf5``)
whose ``PartType4`` group holds the star particles: ``Coordinates`` (comoving kpc/h), ``Velocities`` (km/s, times
sqrt(a) in GIZMO's convention), ``Masses`` (1e10 Msun/h); the header gives ``Time`` (the scale factor a),
``Redshift`` and ``HubbleParam`` (h). :func:`read_stars` converts to physical kpc, km/s and Msun.

Truth quantities (all from the stars, in the host's frame, whose z axis is the stars' angular momentum unless a
rotation is given, e.g. from ``track/host_coordinates.hdf5``):

- :func:`host_frame`: the centre by shrinking spheres, the bulk velocity of the central stars, and the rotation
  that puts the total angular momentum of the stars within ``radius`` on +z;
- :func:`bar_strength`: :math:`A_2 = \max_R |\sum_j m_j e^{2 i \phi_j}| / \sum_j m_j` over cylindrical annuli of
  the face-on disc (FIRE-2 bars are weak, :math:`A_2 \sim 0.1-0.2`);
- :func:`disc_fraction`: the mass share of stars on near-circular orbits, circularity
  :math:`\epsilon = j_z / (R\, v_c(R)) > 0.7` with :math:`v_c^2 = G M(<r) / r` from the stars' enclosed mass (an
  approximation to :math:`j_z / j_{circ}(E)` that needs no potential);
- :func:`inclination`: the angle between the disc's axis and a line of sight.

Example:
    >>> import numpy as np
    >>> from annostat.fire import bar_strength
    >>> rng = np.random.default_rng(0)
    >>> phi = rng.uniform(0, 2 * np.pi, 20000); r = rng.exponential(3.0, 20000)
    >>> pos = np.stack([r * np.cos(phi), r * np.sin(phi), np.zeros_like(r)], 1)
    >>> bool(bar_strength(pos, np.ones(len(r))) < 0.08)  # an axisymmetric disc: only shot noise in the m = 2 mode
    True
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from annostat.errors import InputError

G_KPC_KMS2_PER_MSUN = 4.30091e-6  # gravitational constant in kpc (km/s)^2 / Msun


@dataclass
class Stars:
    """Star particles in physical units: positions [N, 3] kpc, velocities [N, 3] km/s, masses [N] Msun."""

    positions: np.ndarray
    velocities: np.ndarray
    masses: np.ndarray
    redshift: float
    scale_factor: float


def read_stars(path: str | Path) -> Stars:
    """The star particles of one GIZMO HDF5 snapshot file (physical units); names the file and dataset if absent."""
    import h5py

    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: file not found")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise InputError(f"{path}: not an HDF5 file ({exc})") from None
    with f:
        if "Header" not in f:
            raise InputError(f"{path}: no Header group (not a GIZMO snapshot)")
        attrs = f["Header"].attrs
        for key in ("Time", "Redshift", "HubbleParam"):
            if key not in attrs:
                raise InputError(f"{path}: Header attribute {key!r} missing")
        a, h = float(attrs["Time"]), float(attrs["HubbleParam"])
        if "PartType4" not in f:
            raise InputError(f"{path}: no PartType4 group (no star particles)")
        stars = f["PartType4"]
        for name in ("Coordinates", "Velocities", "Masses"):
            if name not in stars:
                raise InputError(f"{path}: dataset PartType4/{name} missing")
        positions = np.asarray(stars["Coordinates"], np.float64) * a / h
        velocities = np.asarray(stars["Velocities"], np.float64) * np.sqrt(a)
        masses = np.asarray(stars["Masses"], np.float64) * 1e10 / h
        return Stars(positions, velocities, masses, float(attrs["Redshift"]), a)


def host_frame(positions: np.ndarray, velocities: np.ndarray, masses: np.ndarray, radius: float = 15.0,
               rotation: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Positions and velocities in the host's frame: centred (shrinking spheres), at rest (central stars' mean
    velocity) and rotated so that the stars' angular momentum within ``radius`` kpc points along +z (or by the
    given 3x3 ``rotation``, rows the new axes)."""
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


def bar_strength(positions: np.ndarray, masses: np.ndarray, r_max: float = 10.0, n_bins: int = 20,
                 min_particles: int = 500) -> float:
    """A2: the largest m = 2 Fourier amplitude over cylindrical annuli (face-on, host frame) out to ``r_max`` kpc.

    Annuli with fewer than ``min_particles`` stars are skipped: with N particles an axisymmetric ring shows
    A2 ~ sqrt(pi / 4N) from shot noise alone (0.04 for 500)."""
    R = np.hypot(positions[:, 0], positions[:, 1])
    phi = np.arctan2(positions[:, 1], positions[:, 0])
    edges = np.linspace(0.0, r_max, n_bins + 1)
    which = np.digitize(R, edges) - 1
    best = 0.0
    for b in range(n_bins):
        ring = which == b
        if ring.sum() < min_particles:
            continue
        m = masses[ring]
        best = max(best, float(np.abs(np.sum(m * np.exp(2j * phi[ring]))) / np.sum(m)))
    return best


def disc_fraction(positions: np.ndarray, velocities: np.ndarray, masses: np.ndarray, r_max: float = 20.0,
                  threshold: float = 0.7) -> float:
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
