"""Stand-in renderer: images are finite and reproducible, the structure each answer names is in the pixels, the
answers follow the documented thresholds, and the CLI writes a valid truth set."""

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from annostat.cli import app
from annostat.truth.answers import THRESHOLDS, answers_from
from annostat.truth.standin import PARAMETERS, draw_parameters, render
from annostat.truth.truthset import load_truth_set

SIZE = 48


def galaxy(**changes):
    base = {
        "flux": 10.0,
        "disc_fraction": 0.9,
        "inclination_deg": 10.0,
        "pa_deg": 30.0,
        "r_e_arcsec": 1.5,
        "sersic_n": 2.5,
        "bulge_axis_ratio": 0.9,
        "h_arcsec": 2.5,
        "bar_strength": 0.0,
        "bar_length_arcsec": 0.0,
        "bar_angle_deg": 0.0,
        "spiral_m": 0,
        "spiral_amp": 0.0,
        "pitch_deg": 0.0,
        "spiral_phase_deg": 0.0,
        "n_clumps": 0,
        "tidal_amp": 0.0,
        "tidal_angle_deg": 0.0,
        "redshift": 0.05,
    }
    return base | changes


@pytest.fixture(scope="module")
def clean():
    """Noiseless r-band images of hand-made galaxies, rendered in one batch."""
    rows = pd.DataFrame(
        [
            galaxy(),  # face-on disc
            galaxy(inclination_deg=85.0),  # edge-on disc
            galaxy(bar_strength=0.6, bar_length_arcsec=4.0),  # strong bar
            galaxy(spiral_m=2, spiral_amp=0.6, pitch_deg=20.0),  # two arms
        ],
        columns=list(PARAMETERS),
    )
    return render(rows, size=SIZE, noiseless=True)[:, 1]


def axis_ratio(image):
    y, x = np.indices(image.shape)
    w = np.clip(image, 0, None)
    w = w / w.sum()
    mx, my = (w * x).sum(), (w * y).sum()
    cov = np.cov(np.stack([x.ravel() - mx, y.ravel() - my]), aweights=w.ravel())
    ev = np.linalg.eigvalsh(cov)
    return float(np.sqrt(ev[0] / ev[1]))


def m2_amplitude(image, r_min, r_max):
    y, x = np.indices(image.shape) - (SIZE - 1) / 2
    r, phi = np.hypot(x, y), np.arctan2(y, x)
    ring = (r >= r_min) & (r < r_max)
    w = image[ring]
    return float(abs((w * np.exp(2j * phi[ring])).sum()) / w.sum())


def test_images_are_finite_and_reproducible():
    params = draw_parameters(10, seed=3)
    a, b = render(params, size=SIZE, seed=3), render(params, size=SIZE, seed=3)
    assert a.shape == (10, 3, SIZE, SIZE) and np.isfinite(a).all() and np.array_equal(a, b)
    assert not np.array_equal(a, render(params, size=SIZE, seed=4))  # the noise follows the seed


def test_the_structure_each_answer_names_is_in_the_pixels(clean):
    face_on, edge_on, barred, spiral = clean
    assert axis_ratio(face_on) > 0.85 and axis_ratio(edge_on) < 0.45  # disk-edge-on (0.99 vs 0.37 measured)
    # bar: an m = 2 mode inside (0.065 vs 0.006 measured); two arms: one outside
    assert m2_amplitude(barred, 2, 12) > max(0.04, 5 * m2_amplitude(face_on, 2, 12))
    assert m2_amplitude(spiral, 10, 20) > max(0.04, 5 * m2_amplitude(face_on, 10, 20))


def test_answers_follow_the_thresholds():
    t = THRESHOLDS
    assert answers_from(galaxy(disc_fraction=0.3, bulge_axis_ratio=0.95))["how-rounded"] == "round"
    assert answers_from(galaxy(inclination_deg=80.0)) == {
        "smooth-or-featured": "featured-or-disk",
        "disk-edge-on": "yes",
        "edge-on-bulge": "none",
        "merging": "none",
    }
    face = answers_from(galaxy(bar_strength=t["bar_strong"], spiral_m=7, spiral_amp=0.3, pitch_deg=30.0, tidal_amp=0.3))
    assert face["bar"] == "strong" and face["spiral-arm-count"] == "more-than-4" and face["spiral-winding"] == "loose"
    assert face["merging"] == "major-disturbance" and face["bulge-size"] == "small"
    assert answers_from(galaxy(bar_strength=0.2))["bar"] == "weak"
    assert "spiral-winding" not in answers_from(galaxy())  # no arms: never asked


def test_cli_writes_a_valid_truth_set(tmp_path):
    out = tmp_path / "standin"
    result = CliRunner().invoke(
        app, ["truth", "standin", "--n", "30", "--size", str(SIZE), "--seed", "2", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    ts = load_truth_set(out)  # validates manifest, answers against the tree, images and bands
    assert len(ts.truth) == 30 and ts.manifest["source"] == "standin" and ts.manifest["thresholds"] == THRESHOLDS
    assert ts.read_image(ts.truth["image_id"].iloc[0])["z"].shape == (SIZE, SIZE)
    for _, row in ts.truth.iterrows():  # the stored answers are exactly the thresholds applied to the raw columns
        expected = answers_from(row)
        stored = {c[len("true_") :]: v for c, v in row.items() if c.startswith("true_") and pd.notna(v)}
        assert stored == expected
    bad = CliRunner().invoke(app, ["truth", "standin", "--n", "0", "--out", str(out)])
    assert bad.exit_code == 2 and "Invalid value for '--n'" in bad.output
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    bad = CliRunner().invoke(app, ["truth", "standin", "--n", "2", "--size", "16", "--out", str(a_file)])
    assert bad.exit_code == 2 and "is a file" in bad.output and "Traceback" not in bad.output
