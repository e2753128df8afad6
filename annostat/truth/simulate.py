r"""Simulated volunteers who walk a Galaxy Zoo decision tree: the one simulator annostat's tests, demo and benchmarks use.

Subjects come from a truth set (``annostat.truth.truthset``: rendered or FIRE galaxies with true answers) or from
:func:`truth_table` (true answers drawn down the tree from answer frequencies, no images: fast, for tests and scale
benchmarks). Each classification is one volunteer's walk through the tree, following *their own* answers: a
volunteer who calls a smooth galaxy featured is then asked whether it is edge-on, exactly as on the Zooniverse site.

**Volunteers** (:class:`VolunteerPopulation`, the population prior). Volunteer :math:`v` answering question :math:`q`
about subject :math:`s` whose true answer is :math:`k`, at experience :math:`e` (their earlier classifications), is
right with probability

.. math:: p = \sigma\big(\ell_{vqk} - g_v e^{-e/h_v} - \beta d_s\big), \qquad
          \ell_{vqk} = \mathrm{logit}(a_q) + u_v + \epsilon_{vqk},

where :math:`a_q` is the population's plateau accuracy on the question (:data:`ACCURACY`), :math:`u_v \sim N(0,
\sigma_u)` a skill shared across questions, :math:`\epsilon_{vqk} \sim N(0, \sigma_q)` per question and true answer;
the learning gap :math:`g_v \ge 0` (logit) closes with half-life-like scale :math:`h_v` (log-normal); :math:`d_s \ge 0`
is the image's difficulty (below) with weight :math:`\beta`. A wrong answer goes to answer :math:`j` with the
volunteer's own error row :math:`r_{vqk} \sim \mathrm{Dirichlet}(c\, w_{kj})`: on ordered questions (bar strength,
bulge size, roundness, winding, arm count, merging) :math:`w_{kj} = e^{-|k-j|}`, so neighbours are confused most;
elsewhere evenly. Where the true path never asks the question (the volunteer took a wrong branch), the answer the
image suggests is drawn from the question's answer frequencies. Activity is heavy-tailed (Pareto weights; most
volunteers give a few classifications, a few give thousands). A share of volunteers are spammers: they answer
``spammer_answer`` wherever a question has it (e.g. always "artifact", which also ends their walk early) and at
random elsewhere; they are occasional visitors (activity capped at the population's median).

**Image difficulty** :math:`d_s`, from whatever columns the truth table has: faint (``flux``, or FIRE's ``flux_r``,
in nanomaggies: :math:`\max(0, \log_{10}(10 / F))`), small (``size_arcsec``, else ``h_arcsec``, ``r_e_arcsec`` or
FIRE's ``r50_kpc / kpc_per_arcsec``:
:math:`\max(0, (2 - R) / 2)`) and edge-on (``inclination_deg``: :math:`0.3 \sin^4 i`). Without those columns every
image is of difficulty 0.

**Retirement**: each subject is retired after ``retire_after`` classifications by distinct volunteers (fewer only
when there are fewer volunteers, reported). Classifications are spread over time in random order, one second apart
at least, and a volunteer's experience counts their earlier ones.

:func:`simulate` returns :class:`SimulatedVotes`: the long votes table (``subject, volunteer, question, answer,
created_at``), the true answers, the true volunteer parameters (``accuracy``: their expected accuracy on the votes
they gave where the true path asks the question, the quantity a static model estimates; ``accuracy_last`` at their
last classification, what a learning-curve model reports; ``accuracy_plateau``, ``start``, ``halflife``,
``spammer``, ``planted``: the planted confusions, ``true->given``; accuracies weight the true answers by their
frequencies and, except ``accuracy``, are for an image of difficulty 0), each volunteer's plateau confusion, the
population's learning curve and the subjects' difficulty. :meth:`SimulatedVotes.write` writes all of it, plus a
Zooniverse Panoptes classification export (``classifications.csv``) and its workflow definition (``workflows.json``),
so simulated votes go through the same ingest-and-fit path as real ones. ``annostat simulate TRUTHSET`` writes into
``TRUTHSET/votes/``.

**Planted confusions** (``VolunteerPopulation.planted``, for testing advice): a share of the honest volunteers give a
chosen wrong answer to a chosen true answer with a chosen rate (say, weak bars called "no bar" half the time), on top
of their ordinary errors.

Example:
    >>> from annostat.truth.simulate import simulate, truth_table, VolunteerPopulation
    >>> truth = truth_table(200, seed=1)
    >>> sim = simulate(truth, VolunteerPopulation(n_volunteers=40), retire_after=5, seed=1)
    >>> list(sim.votes.columns)
    ['classification_id', 'subject', 'volunteer', 'question', 'answer', 'created_at', 'experience']
    >>> bool(sim.votes.groupby("question")["subject"].nunique()["smooth-or-featured"] == 200)
    True
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from annostat.data.trees import Question, Tree, get_tree
from annostat.truth.answers import asks

if TYPE_CHECKING:  # pragma: no cover
    import polars as pl

    from annostat.truth.truthset import TruthSet

#: population plateau accuracy on a typical image (difficulty 0), per question; other questions by answer count
ACCURACY = {
    "smooth-or-featured": 0.85,
    "disk-edge-on": 0.9,
    "has-spiral-arms": 0.82,
    "bar": 0.7,
    "bulge-size": 0.6,
    "how-rounded": 0.75,
    "edge-on-bulge": 0.7,
    "spiral-winding": 0.62,
    "spiral-arm-count": 0.6,
    "merging": 0.8,
}
#: questions whose answers are ordered (errors go mostly to neighbouring answers)
ORDERED = {"bar", "bulge-size", "how-rounded", "spiral-winding", "spiral-arm-count", "merging"}
#: answer frequencies where the question is asked, for :func:`truth_table` (roughly Galaxy Zoo DECaLS's)
FREQUENCIES = {
    "smooth-or-featured": [0.55, 0.38, 0.07],
    "disk-edge-on": [0.25, 0.75],
    "has-spiral-arms": [0.6, 0.4],
    "bar": [0.15, 0.25, 0.6],
    "bulge-size": [0.05, 0.2, 0.4, 0.3, 0.05],
    "how-rounded": [0.4, 0.45, 0.15],
    "edge-on-bulge": [0.3, 0.3, 0.4],
    "spiral-winding": [0.3, 0.45, 0.25],
    "spiral-arm-count": [0.15, 0.5, 0.15, 0.05, 0.05, 0.1],
    "merging": [0.8, 0.12, 0.05, 0.03],
}
SUBJECT_BASE = 90_000_000  # simulated Panoptes subject ids are SUBJECT_BASE + row of the truth table


def _default_accuracy(question: Question) -> float:
    return ACCURACY.get(question.name, {2: 0.85, 3: 0.75}.get(len(question.answers), 0.65))


@dataclass
class VolunteerPopulation:
    """The population the simulated volunteers are drawn from (see the module docstring for the model)."""

    n_volunteers: int = 300
    accuracy: dict[str, float] = field(default_factory=dict)  # plateau accuracy per question (default ACCURACY)
    skill_sd: float = 0.8  # sd of the shared skill u_v (logit)
    question_sd: float = 0.3  # sd of the per-question, per-answer deviation (logit)
    error_concentration: float = 5.0  # c: how closely a volunteer's error row follows the population's
    learning_gap: float = 0.6  # mean logit gap between first vote and plateau (0: no learning)
    learning_gap_sd: float = 0.5
    halflife: float = 20.0  # median experience scale h_v (classifications)
    halflife_sd: float = 0.4  # log sd of h_v
    activity_tail: float = 1.1  # Pareto index of activity (smaller: heavier tail)
    spammer_fraction: float = 0.03
    spammer_answer: str | None = "artifact"  # what spammers answer where a question offers it (None: random)
    difficulty_weight: float = 0.6  # beta
    ordered_errors: bool = True  # errors on ordered questions go mostly to neighbouring answers (False: evenly)
    #: planted confusions: (question, true answer, answer given, rate, share of the honest volunteers who have it);
    #: such a volunteer gives that answer to that true answer with probability ``rate`` before anything else
    planted: list[tuple[str, str, str, float, float]] = field(default_factory=list)


@dataclass
class SimulatedVotes:
    """What :func:`simulate` made: votes and everything true about them (subject ids are Panoptes-style ints)."""

    votes: pd.DataFrame  # classification_id, subject, volunteer, question, answer, created_at, experience
    truth: pd.DataFrame  # subject, question, answer: the true answers (questions the true path asks)
    volunteers: pd.DataFrame  # volunteer, question, n, n_scored, accuracy, accuracy_plateau, accuracy_last, start,
    #                           halflife, gap, skill, spammer
    confusion: pd.DataFrame  # volunteer, question, true_answer, answer, p (plateau, difficulty 0)
    population: pd.DataFrame  # question, experience, accuracy: the population's mean learning curve
    subjects: pd.DataFrame  # subject, image_id, difficulty, classifications, retired
    classifications: pd.DataFrame  # classification_id, subject, volunteer, created_at, experience
    tree: Tree
    settings: dict[str, Any]

    def write(self, out: str | Path, export: bool = True) -> Path:
        """Write the votes and truths to ``out`` (see :func:`annostat.truth.export.write_simulation`)."""
        from annostat.truth.export import write_simulation

        return write_simulation(self, out, export=export)


def subtree(tree: Tree, questions: list[str] | tuple[str, ...] | None) -> Tree:
    """The tree restricted to ``questions`` (tree order kept); each question needs the question that leads to it."""
    if questions is None:
        return tree
    unknown = [q for q in questions if q not in tree.questions]
    if unknown:
        raise ValueError(f"question(s) {', '.join(unknown)} not in the {tree.name} tree")
    kept = {name: q for name, q in tree.questions.items() if name in questions}
    for q in kept.values():
        if q.asked_after and not any(parent in kept for parent, _ in q.asked_after):
            raise ValueError(f"question {q.name} is asked after {q.asked_after[0][0]}, which is not simulated")
    return Tree(tree.name, kept)


def truth_table(
    n_subjects: int,
    tree: str = "gz-decals-dr5",
    questions: list[str] | tuple[str, ...] | None = None,
    frequencies: dict[str, list[float]] | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """True answers for ``n_subjects`` galaxies without images, drawn down the tree from answer frequencies
    (:data:`FREQUENCIES`, overridable per question; other questions uniform). One row per subject in the truth-set
    layout (``image_id``, the observing columns, ``true_<question>``), with ``flux`` (log-uniform 1-30 nanomaggies),
    ``size_arcsec`` (uniform 1-4) and ``inclination_deg`` (edge-on discs 75-90 degrees, others isotropic below 75)
    for the volunteers' image difficulty."""
    from annostat.truth.truthset import empty_truth_row, true_column

    full = get_tree(tree)
    t = subtree(full, questions)
    rng = np.random.default_rng(seed)
    freq = {**FREQUENCIES, **(frequencies or {})}
    codes = {name: {a: i for i, a in enumerate(q.answers)} for name, q in t.questions.items()}
    answers: dict[str, np.ndarray] = {}
    for name, q in t.questions.items():
        p = np.asarray(freq.get(name, np.ones(len(q.answers))), float)
        if len(p) != len(q.answers):
            raise ValueError(f"frequencies for {name}: {len(p)} values for {len(q.answers)} answers")
        drawn = rng.choice(len(q.answers), n_subjects, p=p / p.sum())
        answers[name] = np.where(asks(t, name, answers, n_subjects), drawn, -1)
    edge_on = answers.get("disk-edge-on", np.full(n_subjects, -1)) == codes.get("disk-edge-on", {}).get("yes", -2)
    cos_i = np.where(
        edge_on, rng.uniform(0, np.cos(np.radians(75)), n_subjects), rng.uniform(np.cos(np.radians(75)), 1, n_subjects)
    )
    flux = np.exp(rng.uniform(np.log(1.0), np.log(30.0), n_subjects))
    size = rng.uniform(1.0, 4.0, n_subjects)
    base = empty_truth_row("", tree, sim="prior", snapshot=0)
    table = pd.DataFrame({column: [value] * n_subjects for column, value in base.items()})
    table["image_id"] = [f"galaxy-{i:06d}" for i in range(n_subjects)]
    table["inclination_deg"] = np.degrees(np.arccos(cos_i))
    table["flux"], table["size_arcsec"] = flux, size
    for name, q in t.questions.items():
        labels = np.array(list(q.answers) + [None], dtype=object)  # code -1 picks None
        table[true_column(name)] = labels[answers[name]]
    return table


def difficulty(truth: pd.DataFrame) -> np.ndarray:
    """Each subject's image difficulty d_s (module docstring) from the columns the truth table has."""
    d = np.zeros(len(truth))
    flux_col = next((c for c in ("flux", "flux_r") if c in truth), None)
    if flux_col:
        d += np.maximum(0.0, np.log10(10.0 / np.clip(truth[flux_col].to_numpy(float), 1e-3, None)))
    size_col = next((c for c in ("size_arcsec", "h_arcsec", "r_e_arcsec") if c in truth), None)
    size = truth[size_col].to_numpy(float) if size_col else None
    if size is None and {"r50_kpc", "kpc_per_arcsec"} <= set(truth.columns):  # FIRE truth sets
        size = truth["r50_kpc"].to_numpy(float) / truth["kpc_per_arcsec"].to_numpy(float)
    if size is not None:
        d += np.maximum(0.0, (2.0 - size) / 2.0)
    if "inclination_deg" in truth:
        inc = np.nan_to_num(truth["inclination_deg"].to_numpy(float), nan=0.0)
        d += 0.3 * np.sin(np.radians(inc)) ** 4
    return d


def _assign(rng, n_subjects: int, per_subject: int, activity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(subject, volunteer) of each classification: ``per_subject`` distinct volunteers per subject, drawn by
    activity (repeats redrawn; what still repeats after 30 rounds is left out and shows as a subject not retired)."""
    n_volunteers = len(activity)
    k = min(per_subject, n_volunteers)
    subject = np.repeat(np.arange(n_subjects, dtype=np.int64), k)
    volunteer = rng.choice(n_volunteers, len(subject), p=activity)
    keep = np.ones(len(subject), bool)
    for _ in range(30):
        _, first = np.unique(subject * n_volunteers + volunteer, return_index=True)
        keep = np.zeros(len(subject), bool)
        keep[first] = True
        if keep.all():
            break
        volunteer[~keep] = rng.choice(n_volunteers, int((~keep).sum()), p=activity)
    else:
        _, first = np.unique(subject * n_volunteers + volunteer, return_index=True)
        keep = np.zeros(len(subject), bool)
        keep[first] = True
    return subject[keep], volunteer[keep]


def _error_weights(question: Question) -> np.ndarray:
    K = len(question.answers)
    idx = np.arange(K)
    w = np.exp(-np.abs(idx[:, None] - idx[None, :])) if question.name in ORDERED else np.ones((K, K))
    np.fill_diagonal(w, 0.0)
    return w


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def simulate(
    truth: TruthSet | pd.DataFrame,
    population: VolunteerPopulation | None = None,
    *,
    tree: str | None = None,
    questions: list[str] | tuple[str, ...] | None = None,
    retire_after: int = 10,
    seed: int = 0,
    start: str = "2026-01-01T00:00:00",
) -> SimulatedVotes:
    """Simulated volunteers classify the subjects of ``truth`` (a :class:`~annostat.truth.truthset.TruthSet` or a truth
    table such as :func:`truth_table`'s) until each is retired; see the module docstring for the model.

    Args:
        tree: the tree preset (default: the truth set's, else ``gz-decals-dr5``).
        questions: simulate only these questions of the tree (each with the question that leads to it).
        retire_after: classifications (distinct volunteers) per subject.
    """
    pop = population or VolunteerPopulation()
    frame = truth if isinstance(truth, pd.DataFrame) else truth.truth
    tree_name = tree or (truth.manifest["tree"] if not isinstance(truth, pd.DataFrame) else "gz-decals-dr5")
    t = subtree(get_tree(tree_name), questions)
    rng = np.random.default_rng(seed)
    n_subjects, V = len(frame), int(pop.n_volunteers)
    if n_subjects == 0 or V == 0 or retire_after < 1:
        raise ValueError("need at least one subject, one volunteer and retire_after >= 1")
    codes = {name: {a: i for i, a in enumerate(q.answers)} for name, q in t.questions.items()}
    true_codes = {}
    for name in t.questions:
        col = frame.get(f"true_{name}")
        values = col.astype(object).where(col.notna(), None) if col is not None else [None] * n_subjects
        true_codes[name] = np.array([codes[name][a] if a is not None else -1 for a in values], np.int64)
    d_s = difficulty(frame)

    # volunteers
    activity = rng.pareto(pop.activity_tail, V) + 1.0
    skill = rng.normal(0.0, pop.skill_sd, V)
    spammer = rng.random(V) < pop.spammer_fraction
    activity[spammer] = np.minimum(activity[spammer], np.median(activity))  # drive-by visitors, not regulars
    activity /= activity.sum()
    gap = np.maximum(0.0, rng.normal(pop.learning_gap, pop.learning_gap_sd, V)) if pop.learning_gap > 0 else np.zeros(V)
    halflife = pop.halflife * np.exp(rng.normal(0.0, pop.halflife_sd, V))
    plateau_logit, error_rows = {}, {}
    for name, q in t.questions.items():
        K = len(q.answers)
        a_q = pop.accuracy.get(name, _default_accuracy(q))
        plateau_logit[name] = np.log(a_q / (1 - a_q)) + skill[:, None] + rng.normal(0, pop.question_sd, (V, K))
        w = _error_weights(q) if pop.ordered_errors else 1.0 - np.eye(K)
        rows = np.zeros((V, K, K))
        for k in range(K):
            others = w[k] > 0
            rows[:, k, others] = rng.dirichlet(
                pop.error_concentration * w[k, others] / w[k, others].sum() * (K - 1), size=V
            )
        error_rows[name] = rows
    planted_rate = {name: np.zeros((V, len(q.answers))) for name, q in t.questions.items()}
    planted_answer = {name: np.full((V, len(q.answers)), -1) for name, q in t.questions.items()}
    planted_label = {name: np.full(V, "", dtype=object) for name in t.questions}
    for question, true_answer, given, rate, share in pop.planted:
        if (
            question not in t.questions
            or true_answer not in codes[question]
            or given not in codes[question]
            or true_answer == given
            or not 0 < rate <= 1
        ):
            raise ValueError(f"planted confusion {(question, true_answer, given, rate)} does not fit the tree")
        chosen = ~spammer & (rng.random(V) < share)
        k, j = codes[question][true_answer], codes[question][given]
        planted_rate[question][chosen, k], planted_answer[question][chosen, k] = rate, j
        planted_label[question][chosen] = [
            f"{label}; {true_answer}->{given}".lstrip("; ") for label in planted_label[question][chosen]
        ]

    # classifications: who, which subject, when
    c_subject, c_volunteer = _assign(rng, n_subjects, retire_after, activity)
    order = rng.permutation(len(c_subject))
    c_subject, c_volunteer = c_subject[order], c_volunteer[order]
    n_class = len(c_subject)
    step = max(1, (60 * 24 * 3600) // max(n_class, 1))
    when = np.datetime64(start, "s") + (np.arange(n_class, dtype=np.int64) * step).astype("timedelta64[s]")
    by_volunteer = np.argsort(c_volunteer, kind="stable")
    counts = np.bincount(c_volunteer, minlength=V)
    experience = np.empty(n_class, np.int64)
    experience[by_volunteer] = np.arange(n_class) - np.repeat(np.cumsum(counts) - counts, counts)

    # the walks, question by question in tree order
    answers: dict[str, np.ndarray] = {}
    p_right: dict[str, np.ndarray] = {}
    learning = np.exp(-experience / halflife[c_volunteer]) * gap[c_volunteer]
    hard = pop.difficulty_weight * d_s[c_subject]
    for name, q in t.questions.items():
        K = len(q.answers)
        asked_mask = asks(t, name, answers, n_class)
        true_k = true_codes[name][c_subject]
        known = true_k >= 0
        freq = np.bincount(true_codes[name][true_codes[name] >= 0], minlength=K) + 1.0
        seen = np.where(known, true_k, rng.choice(K, n_class, p=freq / freq.sum()))
        p = _sigmoid(plateau_logit[name][c_volunteer, seen] - learning - hard)
        right = rng.random(n_class) < p
        rows = error_rows[name][c_volunteer, seen]
        wrong = (rng.random(n_class)[:, None] > np.cumsum(rows, axis=1)).sum(axis=1).clip(0, K - 1)
        answer = np.where(right, seen, wrong)
        rate = planted_rate[name][c_volunteer, seen]
        if rate.any():  # planted confusions come first
            hit = rng.random(n_class) < rate
            answer = np.where(hit, planted_answer[name][c_volunteer, seen], answer)
            p = p * (1.0 - rate)
        spam = spammer[c_volunteer]
        if spam.any():
            target = codes[name].get(pop.spammer_answer) if pop.spammer_answer else None
            spam_answer = np.full(n_class, target) if target is not None else rng.integers(0, K, n_class)
            answer = np.where(spam, spam_answer, answer)
            p = np.where(spam, (true_k == target) if target is not None else 1.0 / K, p)
        answers[name] = np.where(asked_mask, answer, -1)
        p_right[name] = np.where(asked_mask & known, p, np.nan)

    # outputs
    subject_ids = SUBJECT_BASE + np.arange(n_subjects, dtype=np.int64)
    names = np.array([f"sim-volunteer-{i:05d}" for i in range(V)])
    class_ids = 700_000_000 + np.arange(n_class, dtype=np.int64)
    # one row per vote, in time order and tree order within a classification; labels as categoricals (a vote's
    # volunteer, question and answer are codes into the label lists, so millions of votes stay small)
    all_answers = list(dict.fromkeys(a for q in t.questions.values() for a in q.answers))
    answer_code = {name: np.array([all_answers.index(a) for a in q.answers]) for name, q in t.questions.items()}
    asked_q = np.stack([answers[name] >= 0 for name in t.questions], axis=1)  # [classifications, questions]
    row_c, row_q = np.nonzero(asked_q)  # row-major: classification by classification, questions in tree order
    q_names = list(t.questions)
    answer_codes = np.empty(len(row_c), np.int64)
    for j, name in enumerate(q_names):
        here = row_q == j
        answer_codes[here] = answer_code[name][answers[name][row_c[here]]]
    votes = pd.DataFrame(
        {
            "classification_id": class_ids[row_c],
            "subject": subject_ids[c_subject[row_c]],
            "volunteer": pd.Categorical.from_codes(c_volunteer[row_c], names),
            "question": pd.Categorical.from_codes(row_q, q_names),
            "answer": pd.Categorical.from_codes(answer_codes, all_answers),
            "created_at": when[row_c],
            "experience": experience[row_c],
        }
    )

    truth_long = pd.concat(
        [
            pd.DataFrame(
                {
                    "subject": subject_ids[true_codes[name] >= 0],
                    "question": name,
                    "answer": np.array(q.answers, dtype=object)[true_codes[name][true_codes[name] >= 0]],
                }
            )
            for name, q in t.questions.items()
        ],
        ignore_index=True,
    )

    vol_rows, conf_rows, curve_rows = [], [], []
    grid = np.unique(np.concatenate([np.arange(0, 201, 5), [int(experience.max()) if n_class else 0]]))
    for name, q in t.questions.items():
        K = len(q.answers)
        prior = np.bincount(true_codes[name][true_codes[name] >= 0], minlength=K).astype(float)
        prior = prior / prior.sum() if prior.sum() > 0 else np.full(K, 1.0 / K)
        keep = 1.0 - planted_rate[name]  # [V, K]
        diag_plateau = _sigmoid(plateau_logit[name]) * keep
        diag_start = _sigmoid(plateau_logit[name] - gap[:, None]) * keep
        target = codes[name].get(pop.spammer_answer) if pop.spammer_answer else None
        spam_acc = prior[target] if target is not None else 1.0 / K
        acc_plateau = np.where(spammer, spam_acc, diag_plateau @ prior)
        acc_start = np.where(spammer, spam_acc, diag_start @ prior)
        last = np.maximum(counts - 1, 0)[:, None]  # experience at the volunteer's last classification
        diag_last = _sigmoid(plateau_logit[name] - gap[:, None] * np.exp(-last / halflife[:, None])) * keep
        acc_last = np.where(spammer, spam_acc, diag_last @ prior)
        n = np.bincount(c_volunteer[answers[name] >= 0], minlength=V)
        valid = ~np.isnan(p_right[name])
        scored = np.bincount(c_volunteer[valid], minlength=V)
        expected = np.bincount(c_volunteer[valid], weights=p_right[name][valid], minlength=V)
        vol_rows.append(
            pd.DataFrame(
                {
                    "volunteer": names,
                    "question": name,
                    "n": n,
                    "n_scored": scored,
                    "accuracy": np.where(scored > 0, expected / np.maximum(scored, 1), acc_plateau),
                    "accuracy_plateau": acc_plateau,
                    "accuracy_last": acc_last,
                    "start": acc_start,
                    "halflife": halflife,
                    "gap": gap,
                    "skill": skill,
                    "spammer": spammer,
                    "planted": planted_label[name],
                }
            )
        )
        plain = _sigmoid(plateau_logit[name])
        conf = error_rows[name] * ((1 - plain) * keep)[:, :, None]
        conf[:, np.arange(K), np.arange(K)] = diag_plateau
        vv, kk = np.nonzero(planted_answer[name] >= 0)
        conf[vv, kk, planted_answer[name][vv, kk]] += planted_rate[name][vv, kk]
        if spammer.any():
            conf[spammer] = 0.0
            if target is not None:
                conf[spammer, :, target] = 1.0
            else:
                conf[spammer] = 1.0 / K
        vv, kk, jj = np.meshgrid(np.arange(V), np.arange(K), np.arange(K), indexing="ij")
        conf_rows.append(
            pd.DataFrame(
                {
                    "volunteer": names[vv.ravel()],
                    "question": name,
                    "true_answer": np.array(q.answers, dtype=object)[kk.ravel()],
                    "answer": np.array(q.answers, dtype=object)[jj.ravel()],
                    "p": conf.ravel(),
                }
            )
        )
        honest = ~spammer
        curve = [
            float(
                np.mean(
                    (
                        _sigmoid(plateau_logit[name][honest] - gap[honest, None] * np.exp(-e / halflife[honest, None]))
                        * keep[honest]
                    )
                    @ prior
                )
            )
            if honest.any()
            else np.nan
            for e in grid
        ]
        curve_rows.append(pd.DataFrame({"question": name, "experience": grid, "accuracy": curve}))
    got = np.bincount(c_subject, minlength=n_subjects)
    subjects = pd.DataFrame(
        {
            "subject": subject_ids,
            "image_id": frame["image_id"].astype(str).to_numpy(),
            "difficulty": d_s,
            "classifications": got,
            "retired": got >= retire_after,
        }
    )
    classifications = pd.DataFrame(
        {
            "classification_id": class_ids,
            "subject": subject_ids[c_subject],
            "volunteer": names[c_volunteer],
            "created_at": when,
            "experience": experience,
        }
    )
    settings = {
        "population": asdict(pop),
        "tree": tree_name,
        "questions": list(t.questions),
        "retire_after": int(retire_after),
        "seed": int(seed),
        "start": start,
        "subjects": int(n_subjects),
        "classifications": int(n_class),
        "votes": len(votes),
        "subjects_not_retired": int((got < retire_after).sum()),
    }
    return SimulatedVotes(
        votes=votes,
        truth=truth_long,
        volunteers=pd.concat(vol_rows, ignore_index=True),
        confusion=pd.concat(conf_rows, ignore_index=True),
        population=pd.concat(curve_rows, ignore_index=True),
        subjects=subjects,
        classifications=classifications,
        tree=t,
        settings=settings,
    )


def simulate_questions(
    n_subjects: int,
    n_volunteers: int,
    questions: list[str] | tuple[str, ...] = ("smooth-or-featured", "disk-edge-on"),
    retire_after: int = 10,
    seed: int = 0,
    **population: Any,
) -> SimulatedVotes:
    """:func:`simulate` on :func:`truth_table` galaxies, for some questions of the DECaLS tree (default: the first
    two): a small Galaxy-Zoo-shaped votes table with known truth in one call. ``population`` sets
    :class:`VolunteerPopulation` fields."""
    truth = truth_table(n_subjects, questions=questions, seed=seed)
    return simulate(
        truth,
        VolunteerPopulation(n_volunteers=n_volunteers, **population),
        questions=questions,
        retire_after=retire_after,
        seed=seed,
    )


class OnDemandVolunteers:
    """The simulator on demand: a live project asks for one more classification of chosen subjects, and gets it.

    Built on one simulation in which every subject is classified ``most`` times (its *stream*: those classifications
    in time order, each by a different volunteer drawn by activity, each a walk down the tree):
    :meth:`classify` hands out the next classification of each subject asked for, so a strategy that asks for some
    subjects more often than others gets their later classifications, and one that stops early never sees the rest.
    The volunteers' experience is that of the stream's time order (the simulated project's), whatever order a strategy
    asks in.

    Example:
        >>> stream = OnDemandVolunteers.simulate(truth_table(50, questions=("smooth-or-featured",), seed=1),
        ...                                      VolunteerPopulation(n_volunteers=30), most=5, seed=1)
        >>> first = stream.classify(stream.subjects[:10])
        >>> first["subject"].n_unique(), stream.taken(stream.subjects[:10]).tolist() == [1] * 10
        (10, True)
    """

    def __init__(self, sim: SimulatedVotes) -> None:
        import polars as pl

        votes = pl.from_pandas(sim.votes).with_columns(pl.col("volunteer", "question", "answer").cast(pl.String))
        turns = (
            votes.select("subject", "classification_id", "created_at")
            .unique("classification_id")
            .sort("created_at", "classification_id")
            .with_columns(pl.int_range(pl.len()).over("subject").alias("turn"))
        )
        self.votes = votes.join(turns.select("classification_id", "turn"), on="classification_id")
        self.sim = sim
        self.subjects = np.sort(sim.subjects["subject"].to_numpy())
        self.most = int(sim.settings["retire_after"])
        counts = turns.group_by("subject").len()
        self._available = dict(zip(counts["subject"].to_list(), counts["len"].to_list()))
        self._next: dict[int, int] = {}

    @classmethod
    def simulate(
        cls,
        truth: TruthSet | pd.DataFrame,
        population: VolunteerPopulation | None = None,
        most: int = 40,
        **options: Any,
    ) -> OnDemandVolunteers:
        """Simulate the streams: :func:`simulate` with every subject classified ``most`` times."""
        return cls(simulate(truth, population, retire_after=most, **options))

    @property
    def truth(self) -> pd.DataFrame:
        """subject, question, answer: the true answers."""
        return self.sim.truth

    def taken(self, subjects: Iterable[Any]) -> np.ndarray:
        """How many classifications of each subject have been handed out."""
        return np.array([self._next.get(int(s), 0) for s in subjects], np.int64)

    def left(self, subjects: Iterable[Any]) -> np.ndarray:
        """How many classifications of each subject are still to come."""
        return np.array([self._available.get(int(s), 0) - self._next.get(int(s), 0) for s in subjects], np.int64)

    def classify(self, subjects: Iterable[Any], n: int = 1) -> pl.DataFrame:
        """The votes (a polars table: subject, volunteer, question, answer, created_at) of the next ``n``
        classifications of each of ``subjects`` (fewer where a subject's stream has run out)."""
        import polars as pl

        wanted = []
        for s in np.unique(np.asarray(subjects, np.int64)):
            start = self._next.get(int(s), 0)
            stop = min(start + n, self._available.get(int(s), 0))
            if stop > start:
                wanted.append((int(s), start, stop))
                self._next[int(s)] = stop
        if not wanted:
            return self.votes.clear().drop("turn")
        asked = pl.DataFrame(wanted, schema={"subject": pl.Int64, "start": pl.Int64, "stop": pl.Int64}, orient="row")
        got = self.votes.join(asked, on="subject").filter(
            (pl.col("turn") >= pl.col("start")) & (pl.col("turn") < pl.col("stop"))
        )
        return got.sort("created_at", "classification_id").drop("turn", "start", "stop")
