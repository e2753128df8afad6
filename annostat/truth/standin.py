r"""Stand-in galaxy renderer (JAX, jit and vmap): analytic galaxies whose Galaxy Zoo answers are exact by construction.

Each galaxy is a sum of components evaluated on the pixel grid, per band, then convolved with a Gaussian PSF (FFT)
and given Gaussian sky noise:

- **bulge**: Sersic profile :math:`I \propto \exp(-b_n[(r/r_e)^{1/n} - 1])`, :math:`b_n \approx 2n - 1/3`, with its
  own axis ratio :math:`q_b`;
- **disc**: exponential :math:`\exp(-R/h)` in the disc plane; seen at inclination :math:`i` its projected axis ratio
  is :math:`\sqrt{\cos^2 i + q_0^2 \sin^2 i}` (:math:`q_0 = 0.12`, the disc's thickness);
- **bar**: a Ferrers-like ellipse :math:`(1 - m^2)^2` (semi-axes :math:`L` and :math:`0.3 L`) in the disc plane,
  amplitude ``bar_strength`` times the disc's central brightness;
- **spiral arms**: the disc outside the bar multiplied by :math:`1 + A \cos(m[\phi - \ln(R/h) / \tan p])` (:math:`m`
  arms, amplitude :math:`A`, pitch angle :math:`p`);
- **star-forming clumps**: up to 8 Gaussian knots in the disc plane (blue);
- **tidal feature**: an arc (a shell or stream) at 2.5-4 disc scale lengths, amplitude ``tidal_amp``.

Parameters come from :func:`draw_parameters` (a documented prior, below), the answers from
:func:`annostat.truth.answers.answers_from` through the thresholds in :data:`annostat.truth.answers.THRESHOLDS`
(written to the truth set's manifest): a galaxy is featured when its disc
holds at least half the light, edge-on above 75 degrees, strongly barred when ``bar_strength`` >= 0.3, and so on.
Because the image is made from exactly these parameters, the answers are true by construction (whether a volunteer
*can* see them is what the simulated volunteers' image-dependent difficulty is for).

Prior (per galaxy): featured with probability 0.6 (disc fraction U(0.5, 0.97)) else smooth (U(0, 0.45));
:math:`\cos i \sim U(0, 1)`; position angle U(0, 180); bulge :math:`r_e` U(1, 4) arcsec, Sersic n U(1.5, 5),
:math:`q_b` U(0.3, 1); disc scale length U(1.5, 4) arcsec; featured face-on discs: a bar with probability 0.45
(strength U(0.1, 0.6), length U(1, 2.5) h), spiral arms with probability 0.7 (m from {1: 0.1, 2: 0.55, 3: 0.2,
4: 0.1, 5: 0.05}, amplitude U(0.15, 0.6), pitch U(8, 35) degrees), clumps with probability 0.3; tidal features with
probability 0.15 (amplitude U(0.05, 0.6)); total flux log-uniform over 1-30 (nanomaggies); redshift U(0.02, 0.12).

Example:
    >>> import numpy as np
    >>> from annostat.truth.standin import draw_parameters, render
    >>> from annostat.truth.answers import answers_from
    >>> params = draw_parameters(4, seed=1)
    >>> images = render(params, size=32, seed=1)
    >>> images.shape, bool(np.isfinite(images).all())
    ((4, 3, 32, 32), True)
    >>> sorted(answers_from(params.iloc[0]))[:2]
    ['bar', 'bulge-size']
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from annostat.truth.answers import DISC_THICKNESS, THRESHOLDS, answers_from, axis_ratio

if TYPE_CHECKING:
    from annostat.truth.truthset import TruthSet

BANDS = ("g", "r", "z")
#: relative brightness of each component in g, r, z (bulges red, discs bluer, clumps bluest)
COLOURS = {"bulge": (0.55, 1.0, 1.45), "disc": (0.85, 1.0, 1.1), "clumps": (1.6, 1.0, 0.6), "tidal": (0.8, 1.0, 1.1)}
PIXSCALE = 0.262  # arcsec per pixel (DECaLS)
PSF_FWHM = 1.3  # arcsec
MAX_CLUMPS = 8
PARAMETERS = (
    "flux",
    "disc_fraction",
    "inclination_deg",
    "pa_deg",
    "r_e_arcsec",
    "sersic_n",
    "bulge_axis_ratio",
    "h_arcsec",
    "bar_strength",
    "bar_length_arcsec",
    "bar_angle_deg",
    "spiral_m",
    "spiral_amp",
    "pitch_deg",
    "spiral_phase_deg",
    "n_clumps",
    "tidal_amp",
    "tidal_angle_deg",
    "redshift",
)


def draw_parameters(n: int, seed: int = 0) -> pd.DataFrame:
    """``n`` galaxies' parameters from the prior in the module docstring (one row each)."""
    rng = np.random.default_rng(seed)
    featured = rng.random(n) < 0.6
    disc_fraction = np.where(featured, rng.uniform(0.5, 0.97, n), rng.uniform(0.0, 0.45, n))
    inclination = np.degrees(np.arccos(rng.random(n)))
    face_on = featured & (inclination < THRESHOLDS["edge_on_inclination_deg"])
    barred = face_on & (rng.random(n) < 0.45)
    spiral = face_on & (rng.random(n) < 0.7)
    h = rng.uniform(1.5, 4.0, n)
    return pd.DataFrame(
        {
            "flux": np.exp(rng.uniform(np.log(1.0), np.log(30.0), n)),
            "disc_fraction": disc_fraction,
            "inclination_deg": inclination,
            "pa_deg": rng.uniform(0, 180, n),
            "r_e_arcsec": rng.uniform(1.0, 4.0, n),
            "sersic_n": rng.uniform(1.5, 5.0, n),
            "bulge_axis_ratio": rng.uniform(0.3, 1.0, n),
            "h_arcsec": h,
            "bar_strength": np.where(barred, rng.uniform(0.1, 0.6, n), 0.0),
            "bar_length_arcsec": np.where(barred, rng.uniform(1.0, 2.5, n) * h, 0.0),
            "bar_angle_deg": rng.uniform(0, 180, n),
            "spiral_m": np.where(spiral, rng.choice([1, 2, 3, 4, 5], n, p=[0.1, 0.55, 0.2, 0.1, 0.05]), 0),
            "spiral_amp": np.where(spiral, rng.uniform(0.15, 0.6, n), 0.0),
            "pitch_deg": np.where(spiral, rng.uniform(8, 35, n), 0.0),
            "spiral_phase_deg": rng.uniform(0, 360, n),
            "n_clumps": np.where(face_on & (rng.random(n) < 0.3), rng.integers(2, MAX_CLUMPS + 1, n), 0),
            "tidal_amp": np.where(rng.random(n) < 0.15, rng.uniform(0.05, 0.6, n), 0.0),
            "tidal_angle_deg": rng.uniform(0, 360, n),
            "redshift": rng.uniform(0.02, 0.12, n),
        }
    )


def _galaxy(p, clump_xy, clump_amp, x, y):
    """Noiseless, unconvolved image of one galaxy, [bands, H, W] (p: parameter vector in PARAMETERS order)."""
    (
        flux,
        disc_fraction,
        inc,
        pa,
        r_e,
        n,
        q_b,
        h,
        bar,
        bar_len,
        bar_angle,
        m,
        spiral_amp,
        pitch,
        phase,
        _n_clumps,
        tidal,
        tidal_angle,
        _z,
    ) = p
    inc, pa, bar_angle, pitch, phase, tidal_angle = (
        jnp.radians(a) for a in (inc, pa, bar_angle, pitch, phase, tidal_angle)
    )
    xr = x * jnp.cos(pa) + y * jnp.sin(pa)  # along the major axis
    yr = -x * jnp.sin(pa) + y * jnp.cos(pa)
    # bulge (Sersic)
    b_n = 2.0 * n - 1.0 / 3.0
    r_b = jnp.sqrt(xr**2 + (yr / q_b) ** 2) + 1e-3
    bulge = jnp.exp(-b_n * ((r_b / r_e) ** (1.0 / n) - 1.0))
    bulge = bulge / jnp.sum(bulge)
    # disc plane coordinates (deprojected); the projected disc is a thick ellipse
    q_d = jnp.sqrt(jnp.cos(inc) ** 2 + (DISC_THICKNESS * jnp.sin(inc)) ** 2)
    xd, yd = xr, yr / q_d
    R = jnp.sqrt(xd**2 + yd**2) + 1e-3
    phi = jnp.arctan2(yd, xd)
    disc = jnp.exp(-R / h)
    arms = 1.0 + spiral_amp * jnp.cos(m * (phi - phase - jnp.log(R / h) / jnp.tan(jnp.maximum(pitch, 1e-2))))
    outside_bar = jax.nn.sigmoid((R - jnp.maximum(bar_len, 0.5 * h)) / (0.3 * h))
    disc = disc * jnp.where(m > 0, 1.0 + (arms - 1.0) * outside_bar, 1.0)
    xb = xd * jnp.cos(bar_angle) + yd * jnp.sin(bar_angle)
    yb = -xd * jnp.sin(bar_angle) + yd * jnp.cos(bar_angle)
    ell = (xb / jnp.maximum(bar_len, 1e-3)) ** 2 + (yb / jnp.maximum(0.3 * bar_len, 1e-3)) ** 2
    disc = disc + bar * jnp.where(ell < 1.0, (1.0 - ell) ** 2, 0.0)
    disc = disc / jnp.sum(disc)
    # clumps (disc plane, projected)
    cx, cy = clump_xy[:, 0, None, None] * h, clump_xy[:, 1, None, None] * h
    knots = clump_amp[:, None, None] * jnp.exp(-((xd - cx) ** 2 + (yd - cy) ** 2) / (2 * (0.15 * h) ** 2))
    clumps = jnp.sum(knots, axis=0)
    clumps = 0.15 * clumps / jnp.maximum(jnp.sum(clumps), 1e-9)
    # tidal arc around the galaxy (sky plane)
    r_sky = jnp.sqrt(x**2 + y**2) + 1e-3
    theta = jnp.arctan2(y, x)
    arc = jnp.exp(-(((r_sky - 3.2 * h) / (0.35 * h)) ** 2)) * jnp.exp(
        -((jnp.angle(jnp.exp(1j * (theta - tidal_angle)))) ** 2) / (2 * 0.7**2)
    )
    arc = arc / jnp.maximum(jnp.sum(arc), 1e-9)
    parts = {
        "bulge": (1 - disc_fraction) * bulge,
        "disc": disc_fraction * disc,
        "clumps": disc_fraction * clumps,
        "tidal": 0.5 * tidal * arc,
    }
    return flux * jnp.stack([sum(COLOURS[k][b] * v for k, v in parts.items()) for b in range(len(BANDS))])


@partial(jax.jit, static_argnames=("size",))
def _render_batch(params, clump_xy, clump_amp, sky_sigma, key, size: int):
    half = (size - 1) / 2.0
    pix = (jnp.arange(size) - half) * PIXSCALE
    y, x = jnp.meshgrid(pix, pix, indexing="ij")
    clean = jax.vmap(_galaxy, in_axes=(0, 0, 0, None, None))(params, clump_xy, clump_amp, x, y)  # [N, B, H, W]
    # Gaussian PSF, applied in Fourier space (centred kernel, so the image does not move)
    sigma = PSF_FWHM / 2.3548 / PIXSCALE
    f = jnp.fft.fftfreq(size)
    fy, fx = jnp.meshgrid(f, f, indexing="ij")
    transfer = jnp.exp(-2 * (jnp.pi * sigma) ** 2 * (fx**2 + fy**2))
    blurred = jnp.real(jnp.fft.ifft2(jnp.fft.fft2(clean) * transfer))
    noise = jax.random.normal(key, blurred.shape) * sky_sigma
    return blurred + noise, blurred


def render(
    params: pd.DataFrame,
    size: int = 64,
    seed: int = 0,
    sky_sigma: float = 0.001,
    batch: int = 256,
    noiseless: bool = False,
) -> np.ndarray:
    """Images [N, bands (g, r, z), size, size] (float32, nanomaggies per pixel) of ``params``' galaxies, rendered in
    batches of ``batch`` (one compilation per batch shape); ``noiseless`` returns them before sky noise."""
    n = len(params)
    values = params[list(PARAMETERS)].to_numpy(np.float32)
    rng = np.random.default_rng(seed)
    counts = params["n_clumps"].to_numpy().astype(int)
    clump_xy = rng.uniform(-2.0, 2.0, (n, MAX_CLUMPS, 2)).astype(np.float32)
    clump_amp = (np.arange(MAX_CLUMPS)[None, :] < counts[:, None]) * rng.uniform(0.5, 1.5, (n, MAX_CLUMPS))
    out = np.empty((n, len(BANDS), size, size), np.float32)
    key = jax.random.PRNGKey(seed)
    size_batch = min(batch, max(n, 1))
    for i, begin in enumerate(range(0, n, size_batch)):
        rows = np.arange(begin, begin + size_batch) % max(n, 1)  # a fixed batch shape; wrapped rows dropped
        noisy, clean = _render_batch(
            jnp.asarray(values[rows]),
            jnp.asarray(clump_xy[rows]),
            jnp.asarray(clump_amp[rows], jnp.float32),
            jnp.float32(sky_sigma),
            jax.random.fold_in(key, i),
            size=size,
        )
        keep = min(size_batch, n - begin)
        out[begin : begin + keep] = np.asarray(clean if noiseless else noisy)[:keep]
    return out


def standin_truth_set(out: str | Path, n: int, size: int = 64, seed: int = 0, sky_sigma: float = 0.001) -> TruthSet:
    """Render ``n`` stand-in galaxies and write them as a truth set (``annostat.truth.truthset``) in ``out``."""
    from annostat.truth.truthset import empty_truth_row, true_column, write_truth_set

    tree = "gz-decals-dr5"
    params = draw_parameters(n, seed)
    images = render(params, size=size, seed=seed, sky_sigma=sky_sigma)
    rows = []
    for i, p in params.iterrows():
        row = empty_truth_row(
            f"standin-{i:06d}",
            tree,
            sim="standin",
            snapshot=0,
            redshift=float(p["redshift"]),
            view=0,
            inclination_deg=float(p["inclination_deg"]),
            pa_deg=float(p["pa_deg"]),
            pixscale_arcsec=PIXSCALE,
            psf_fwhm_arcsec=PSF_FWHM,
            sky_sigma=sky_sigma,
        )
        row.update({k: float(p[k]) for k in PARAMETERS if k not in row})
        row["axis_ratio"] = axis_ratio(p)
        row["bulge_fraction"] = 1.0 - float(p["disc_fraction"])
        row.update({true_column(q): a for q, a in answers_from(p).items()})
        rows.append(row)
    truth = pd.DataFrame(rows)
    manifest = {
        "source": "standin",
        "tree": tree,
        "bands": list(BANDS),
        "pixscale_arcsec": PIXSCALE,
        "psf": {"kind": "gaussian", "fwhm_arcsec": PSF_FWHM},
        "seed": int(seed),
        "thresholds": THRESHOLDS,
        "units": {"image": "nanomaggies", "angles": "degrees", "lengths": "arcsec"},
        "renderer": {"name": "annostat.truth.standin", "size": size, "sky_sigma": sky_sigma},
    }
    images_by_id = {image_id: dict(zip(BANDS, images[i])) for i, image_id in enumerate(truth["image_id"])}
    return write_truth_set(out, manifest, truth, images_by_id)
