"""True answers: the one place that turns galaxy parameters into Galaxy Zoo answers, and that says which questions
a path through a decision tree asks.

Two steps, each in one place:

1. :func:`galaxy_answers` gives the answer a galaxy's parameters imply for *every* question of the Galaxy Zoo
   DECaLS (DR5) tree, through documented cuts (:data:`THRESHOLDS`, kept in each truth set's manifest): featured when
   the disc holds at least half the light, edge-on above 75 degrees, a strong bar when ``bar_strength`` >= 0.3, ...
2. :func:`asks` and :func:`true_path` say which questions the path through the tree asks, given the answers so far:
   the tree's own links (:class:`~annostat.data.trees.Question` ``asked_after``) are the only authority. The truth
   sets' check, the stand-in renderer, the FIRE adapter and the volunteer simulator all use them.

:func:`answers_from` is the two together: the true answers of one galaxy, only for the questions its true path asks.

Example:
    >>> from annostat.data.trees import get_tree
    >>> answers_from({"disc_fraction": 0.2, "inclination_deg": 30.0, "bulge_axis_ratio": 0.9, "bar_strength": 0.0,
    ...               "spiral_amp": 0.0, "pitch_deg": 0.0, "spiral_m": 0, "tidal_amp": 0.0})
    {'smooth-or-featured': 'smooth', 'how-rounded': 'round', 'merging': 'none'}
    >>> tree = get_tree("gz-decals-dr5")
    >>> asks(tree, "disk-edge-on", {"smooth-or-featured": np.array([0, 1, -1])})  # smooth, featured, not asked
    array([False,  True, False])
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from annostat.data.trees import Tree, get_tree

#: the disc's intrinsic thickness (axis ratio seen edge-on), shared by the renderer's images and the answers
DISC_THICKNESS = 0.12
#: cuts from raw quantities to Galaxy Zoo DECaLS answers (written to the manifest)
THRESHOLDS: dict[str, Any] = {
    "featured_disc_fraction": 0.5,
    "edge_on_inclination_deg": 75.0,
    "round_axis_ratio": 0.8,
    "cigar_axis_ratio": 0.45,
    "edge_on_bulge_none_fraction": 0.1,
    "bar_strong": 0.3,
    "bar_weak": 0.15,
    "spiral_amplitude": 0.1,
    "winding_tight_pitch_deg": 15.0,
    "winding_loose_pitch_deg": 25.0,
    "bulge_dominant": 0.6,
    "bulge_large": 0.4,
    "bulge_moderate": 0.2,
    "bulge_small": 0.05,
    "merging_minor": 0.05,
    "merging_major": 0.2,
    "merging_merger": 0.4,
}


def axis_ratio(p: Mapping[str, Any]) -> float:
    """A galaxy's projected axis ratio from its parameters: the light-weighted mix of the bulge's and the inclined
    disc's (:data:`DISC_THICKNESS`)."""
    inc = np.radians(p["inclination_deg"])
    disc_q = np.sqrt(np.cos(inc) ** 2 + (DISC_THICKNESS * np.sin(inc)) ** 2)
    return float(p["disc_fraction"] * disc_q + (1 - p["disc_fraction"]) * p["bulge_axis_ratio"])


def galaxy_answers(p: Mapping[str, Any], thresholds: Mapping[str, Any] | None = None) -> dict[str, str]:
    """The answer one galaxy's parameters imply for every question of the DECaLS DR5 tree (asked or not).

    Parameters: ``disc_fraction``, ``inclination_deg``, ``bar_strength``, ``spiral_amp``, ``pitch_deg``,
    ``spiral_m``, ``tidal_amp`` and either ``axis_ratio`` (measured, as FIRE's) or ``bulge_axis_ratio``."""
    t = {**THRESHOLDS, **(thresholds or {})}
    bulge = 1.0 - p["disc_fraction"]
    bar = p["bar_strength"]
    q = float(p["axis_ratio"]) if "axis_ratio" in p else axis_ratio(p)
    pitch, m, tidal = p["pitch_deg"], int(p["spiral_m"]), p["tidal_amp"]
    return {
        "smooth-or-featured": "featured-or-disk" if p["disc_fraction"] >= t["featured_disc_fraction"] else "smooth",
        "disk-edge-on": "yes" if p["inclination_deg"] >= t["edge_on_inclination_deg"] else "no",
        "has-spiral-arms": "yes" if p["spiral_amp"] >= t["spiral_amplitude"] else "no",
        "bar": "strong" if bar >= t["bar_strong"] else "weak" if bar >= t["bar_weak"] else "no",
        "bulge-size": (
            "dominant"
            if bulge >= t["bulge_dominant"]
            else "large"
            if bulge >= t["bulge_large"]
            else "moderate"
            if bulge >= t["bulge_moderate"]
            else "small"
            if bulge >= t["bulge_small"]
            else "none"
        ),
        "how-rounded": (
            "round" if q > t["round_axis_ratio"] else "cigar-shaped" if q < t["cigar_axis_ratio"] else "in-between"
        ),
        "edge-on-bulge": (
            "none" if bulge < t["edge_on_bulge_none_fraction"] else "boxy" if bar >= t["bar_weak"] else "rounded"
        ),
        "spiral-winding": (
            "tight"
            if pitch < t["winding_tight_pitch_deg"]
            else "loose"
            if pitch > t["winding_loose_pitch_deg"]
            else "medium"
        ),
        "spiral-arm-count": str(m) if m <= 4 else "more-than-4",
        "merging": (
            "merger"
            if tidal >= t["merging_merger"]
            else "major-disturbance"
            if tidal >= t["merging_major"]
            else "minor-disturbance"
            if tidal >= t["merging_minor"]
            else "none"
        ),
    }


def asks(tree: Tree, question: str, codes: Mapping[str, np.ndarray], n: int | None = None) -> np.ndarray:
    """Which of ``n`` paths reach ``question``, given each path's answers so far: ``codes[q]`` is the answer's index
    in ``tree.answers(q)``, -1 where ``q`` was not asked (questions missing from ``codes`` count as not asked)."""
    links = tree.questions[question].asked_after
    if n is None:
        n = len(next(iter(codes.values()))) if codes else 1
    if not links:
        return np.ones(n, bool)
    reached = np.zeros(n, bool)
    for parent, answer in links:
        if parent not in codes:
            continue
        given = np.asarray(codes[parent])
        reached |= given >= 0 if answer is None else given == tree.answers(parent).index(answer)
    return reached


def true_path(tree: Tree, answers: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """For each question of ``tree`` (in asking order), which of the paths ask it, given their answers (question ->
    array of answer labels, None where none; a single galaxy's answers may be given as plain labels)."""
    labels = {q: np.atleast_1d(np.asarray(answers.get(q), dtype=object)) for q in tree.questions}
    n = max((len(v) for v in labels.values()), default=0)
    codes: dict[str, np.ndarray] = {}
    asked: dict[str, np.ndarray] = {}
    for name in tree.questions:  # tree order: parents come first
        asked[name] = asks(tree, name, codes, n)
        index = {a: i for i, a in enumerate(tree.answers(name))}
        given = np.broadcast_to(labels[name], (n,))
        codes[name] = np.where(asked[name], [index.get(a, -1) for a in given], -1)
    return asked


def answers_from(
    p: Mapping[str, Any], thresholds: Mapping[str, Any] | None = None, tree: str = "gz-decals-dr5"
) -> dict[str, str]:
    """The true answers of one galaxy's parameters, for the questions its true path through ``tree`` asks."""
    answers = galaxy_answers(p, thresholds)
    asked = true_path(get_tree(tree), answers)
    return {q: answers[q] for q, on in asked.items() if on[0]}
