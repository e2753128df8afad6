"""Simulated Galaxy-Zoo-shaped votes with known truth (for the demo, tests and benchmarks).

Two questions of the Galaxy Zoo DECaLS tree: ``smooth-or-featured`` (smooth, featured-or-disk, artifact), asked of
every subject, and ``disk-edge-on`` (yes, no), asked only when the volunteer answered featured-or-disk, exactly as the
real tree branches on the volunteer's own answer. Its true answer exists only for featured subjects.

Volunteers: heavy-tailed activity (Pareto weights: most give a few votes, a few give hundreds), a skill per volunteer
drawn around the population's per-answer accuracy on the logit scale, errors spread according to a population
pattern (smooth and featured confused with each other more than with artifact), and a share of spammers who answer
at random. Each subject gets about ``votes_per_subject`` votes from distinct volunteers.

:func:`simulate_votes` returns the votes (one row per vote: ``subject, volunteer, question, answer, created_at``), the
true answers and each volunteer's true confusion and accuracy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

QUESTIONS = {
    "smooth-or-featured": ["smooth", "featured-or-disk", "artifact"],
    "disk-edge-on": ["yes", "no"],
}
PRIORS = {"smooth-or-featured": [0.55, 0.38, 0.07], "disk-edge-on": [0.25, 0.75]}
#: population accuracy per true answer, and where errors go (rows: true answer; diagonal unused)
ACCURACY = {"smooth-or-featured": [0.85, 0.78, 0.65], "disk-edge-on": [0.80, 0.88]}
ERROR_PATTERN = {
    "smooth-or-featured": np.array([[0, 0.8, 0.2], [0.85, 0, 0.15], [0.5, 0.5, 0]]),
    "disk-edge-on": np.array([[0, 1.0], [1.0, 0]]),
}


@dataclass
class SimulatedVotes:
    votes: pd.DataFrame  # subject, volunteer, question, answer, created_at
    truth: pd.DataFrame  # subject, question, answer (true answers; disk-edge-on only for featured subjects)
    volunteers: pd.DataFrame  # volunteer, question, accuracy (true, prior-weighted), spammer
    confusion: dict[str, np.ndarray]  # question -> [V, K, K] true p(answer | true answer)


def _activity(rng, n_volunteers: int, tail: float) -> np.ndarray:
    """Heavy-tailed share of the votes per volunteer (Pareto weights)."""
    activity = rng.pareto(tail, n_volunteers) + 1.0
    return activity / activity.sum()


def _classifications(rng, n_each: np.ndarray, activity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(subject, volunteer) of each classification: ``n_each[s]`` draws of a volunteer by activity for subject s,
    one classification per (subject, volunteer) pair, sorted by subject."""
    n_volunteers = len(activity)
    subject = np.repeat(np.arange(len(n_each)), n_each)
    volunteer = rng.choice(n_volunteers, len(subject), p=activity)
    pair = np.unique(subject.astype(np.int64) * n_volunteers + volunteer)
    return pair // n_volunteers, pair % n_volunteers


def _confusions(rng, n_volunteers, question, skill, spammer) -> np.ndarray:
    acc = np.asarray(ACCURACY[question])
    K = len(acc)
    logit = np.log(acc / (1 - acc))[None, :] + skill[:, None] + rng.normal(0, 0.3, (n_volunteers, K))
    diag = 1 / (1 + np.exp(-logit))
    pattern = ERROR_PATTERN[question]
    conf = np.empty((n_volunteers, K, K))
    for k in range(K):
        errors = rng.dirichlet(5 * pattern[k][pattern[k] > 0] + 1e-3, size=n_volunteers)
        row = np.zeros((n_volunteers, K))
        row[:, pattern[k] > 0] = errors * (1 - diag[:, k])[:, None]
        row[:, k] = diag[:, k]
        conf[:, k] = row
    conf[spammer] = 1.0 / K
    return conf


def simulate_votes(
    n_subjects: int = 3000,
    n_volunteers: int = 300,
    votes_per_subject: float = 10.0,
    spammer_fraction: float = 0.05,
    skill_spread: float = 1.0,
    activity_tail: float = 1.1,
    seed: int = 0,
) -> SimulatedVotes:
    """Simulate a Galaxy-Zoo-shaped votes table with known truth (see the module docstring)."""
    rng = np.random.default_rng(seed)
    q0, q1 = QUESTIONS
    true0 = rng.choice(3, n_subjects, p=PRIORS[q0])
    true1 = rng.choice(2, n_subjects, p=PRIORS[q1])  # meaningful only where true0 == featured-or-disk

    activity = _activity(rng, n_volunteers, activity_tail)
    skill = rng.normal(0, skill_spread, n_volunteers)
    spammer = rng.random(n_volunteers) < spammer_fraction
    conf = {q: _confusions(rng, n_volunteers, q, skill, spammer) for q in QUESTIONS}

    n_each = np.clip(rng.poisson(votes_per_subject, n_subjects), 1, n_volunteers)
    subject, volunteer = _classifications(rng, n_each, activity)
    n = len(subject)

    def answer(question, true):
        cum = np.cumsum(conf[question][volunteer, true], axis=1)
        return np.minimum((rng.random(n)[:, None] > cum).sum(axis=1), cum.shape[1] - 1)

    a0 = answer(q0, true0[subject])
    apparent1 = np.where(true0[subject] == 1, true1[subject], rng.choice(2, n, p=[0.2, 0.8]))
    a1 = answer(q1, apparent1)
    asked1 = a0 == 1

    start = np.datetime64("2026-01-01T00:00:00")
    when = start + rng.integers(0, 30 * 24 * 3600, n).astype("timedelta64[s]")
    subject_ids = 20_000_000 + np.arange(n_subjects)
    names = np.array([f"volunteer-{i:04d}" for i in range(n_volunteers)])
    votes = pd.concat([
        pd.DataFrame({"subject": subject_ids[subject], "volunteer": names[volunteer], "question": q0,
                      "answer": np.array(QUESTIONS[q0])[a0], "created_at": when}),
        pd.DataFrame({"subject": subject_ids[subject[asked1]], "volunteer": names[volunteer[asked1]],
                      "question": q1, "answer": np.array(QUESTIONS[q1])[a1[asked1]], "created_at": when[asked1]}),
    ]).sort_values(["created_at", "subject", "question"], kind="stable").reset_index(drop=True)
    featured = true0 == 1
    truth = pd.concat([
        pd.DataFrame({"subject": subject_ids, "question": q0, "answer": np.array(QUESTIONS[q0])[true0]}),
        pd.DataFrame({"subject": subject_ids[featured], "question": q1,
                      "answer": np.array(QUESTIONS[q1])[true1[featured]]}),
    ], ignore_index=True)
    volunteers = pd.concat([
        pd.DataFrame({"volunteer": names, "question": q,
                      "accuracy": np.einsum("vkk,k->v", conf[q], np.asarray(PRIORS[q])), "spammer": spammer})
        for q in QUESTIONS
    ], ignore_index=True)
    return SimulatedVotes(votes=votes, truth=truth, volunteers=volunteers, confusion=conf)


@dataclass
class SimulatedLearning:
    votes: pd.DataFrame  # subject, volunteer, question, answer, created_at
    truth: pd.DataFrame  # subject, question, answer
    volunteers: pd.DataFrame  # volunteer, question, start, plateau, halflife, n, accuracy (at their last vote)
    population: pd.DataFrame  # experience, accuracy: the population's mean accuracy curve


def simulate_learning_votes(
    n_subjects: int = 1500,
    n_volunteers: int = 120,
    votes_per_subject: int = 8,
    n_answers: int = 3,
    start: float = 0.55,
    plateau: float = 0.9,
    halflife: float = 15.0,
    spread: float = 0.4,
    learning: bool = True,
    seed: int = 0,
) -> SimulatedLearning:
    """One question whose volunteers improve with practice, with known truth.

    Volunteer v answers correctly with probability ``a_v(e) = p_v - (p_v - s_v) exp(-e / h_v)`` at experience e (their
    earlier votes), errors spread evenly; start ``s_v`` and plateau ``p_v`` vary around ``start`` and ``plateau`` on
    the logit scale (sd ``spread``), half-life ``h_v`` around ``halflife`` (log sd 0.3). ``learning=False`` keeps every
    volunteer at their plateau. Activity is heavy-tailed; votes are given in time order, volunteer by volunteer
    interleaved at random.
    """
    rng = np.random.default_rng(seed)
    K = n_answers
    labels = np.array([f"answer-{k}" for k in range(K)])
    truth = rng.integers(0, K, n_subjects)

    def around(p, size):
        return 1 / (1 + np.exp(-(np.log(p / (1 - p)) + rng.normal(0, spread, size))))

    s_v, p_v = around(start, n_volunteers), around(plateau, n_volunteers)
    s_v = np.minimum(s_v, p_v)
    h_v = halflife * np.exp(rng.normal(0, 0.3, n_volunteers))
    if not learning:
        s_v = p_v.copy()
    activity = _activity(rng, n_volunteers, 1.2)
    subject, volunteer = _classifications(rng, np.full(n_subjects, votes_per_subject), activity)
    order = rng.permutation(len(subject))  # time order
    subject, volunteer = subject[order], volunteer[order]
    experience = np.zeros(len(subject), np.int64)
    seen = np.zeros(n_volunteers, np.int64)
    for i, v in enumerate(volunteer):
        experience[i] = seen[v]
        seen[v] += 1
    accuracy = p_v[volunteer] - (p_v[volunteer] - s_v[volunteer]) * np.exp(-experience / h_v[volunteer])
    correct = rng.random(len(subject)) < accuracy
    wrong = (truth[subject] + rng.integers(1, K, len(subject))) % K
    answer = np.where(correct, truth[subject], wrong)
    when = np.datetime64("2026-01-01T00:00:00") + np.arange(len(subject)).astype("timedelta64[s]")
    names = np.array([f"volunteer-{i:04d}" for i in range(n_volunteers)])
    votes = pd.DataFrame({"subject": 30_000_000 + subject, "volunteer": names[volunteer], "question": "q",
                          "answer": labels[answer], "created_at": when})
    n = np.bincount(volunteer, minlength=n_volunteers)
    last = np.maximum(n - 1, 0)
    volunteers = pd.DataFrame({
        "volunteer": names, "question": "q", "start": s_v, "plateau": p_v, "halflife": h_v, "n": n,
        "accuracy": p_v - (p_v - s_v) * np.exp(-last / h_v),
    })
    grid = np.arange(0, 201, 5)
    population = pd.DataFrame({"experience": grid, "accuracy": [
        float(np.mean(p_v - (p_v - s_v) * np.exp(-e / h_v))) for e in grid]})
    truth_frame = pd.DataFrame({"subject": 30_000_000 + np.arange(n_subjects), "question": "q",
                                "answer": labels[truth]})
    return SimulatedLearning(votes, truth_frame, volunteers, population)
