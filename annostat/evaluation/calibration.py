r"""Calibration of answer posteriors: the one reliability binning that the benchmark scores, the model checks and
the figures share.

The top answer's probability (its *confidence*) is put in ``n_bins`` equal-width bins; in each bin the mean
confidence is set against the share of those answers that are right. The expected calibration error is
:math:`\sum_b \frac{n_b}{N} |\mathrm{acc}_b - \mathrm{conf}_b|`.

    >>> import numpy as np
    >>> bins = reliability_bins(np.array([0.95, 0.95, 0.55, 0.55]), np.array([True, True, True, False]))
    >>> bins[["bin", "confidence", "accuracy", "n"]].values.tolist()
    [[5.0, 0.55, 0.5, 2.0], [9.0, 0.95, 1.0, 2.0]]
    >>> round(expected_calibration_error(bins), 3)
    0.05
"""

from __future__ import annotations

import numpy as np
import pandas as pd

N_BINS = 10


def reliability_bins(confidence: np.ndarray, correct: np.ndarray, n_bins: int = N_BINS) -> pd.DataFrame:
    """One row per non-empty bin of ``confidence``: bin, confidence (mean), accuracy (share of ``correct``), n."""
    confidence = np.asarray(confidence, float)
    correct = np.asarray(correct, float)
    which = np.clip((confidence * n_bins).astype(int), 0, n_bins - 1)
    frame = pd.DataFrame({"bin": which, "confidence": confidence, "accuracy": correct})
    bins = frame.groupby("bin", sort=True).agg(
        confidence=("confidence", "mean"), accuracy=("accuracy", "mean"), n=("accuracy", "size")
    )
    return bins.reset_index()


def expected_calibration_error(bins: pd.DataFrame) -> float:
    """The expected calibration error of :func:`reliability_bins`' table."""
    total = bins["n"].sum()
    return float((bins["n"] / max(total, 1) * (bins["accuracy"] - bins["confidence"]).abs()).sum())
