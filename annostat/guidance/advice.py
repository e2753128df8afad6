r"""Personalised guidance for each volunteer, from any fitted volunteer model (``annostat advise FIT_DIR --out DIR``).

For every volunteer and question the fit folder holds, the advice table gives the votes, the estimated accuracy with a
90% interval, the volunteer's rank among the volunteers with enough votes, their learning trend (learning-curve fits),
their most costly confusion when one stands out, a recommendation category and one or two plain sentences.

**Evidence, judged on posteriors.** Each row *k* of a volunteer's confusion (their answers when the true answer is
*k*) gets a Dirichlet posterior from their votes on subjects whose consensus is confident (the fit's posterior of
the most probable answer at least 0.9, from at least 5 votes on the question: a fit's expected counts would carry
the consensus's own mistakes on hard questions, and on branch questions that only a few volunteers reached, into
every volunteer's confusion) and a prior pulled toward the population (8 pseudo-votes),
:math:`\theta_{vk} \sim \mathrm{Dirichlet}(c\,\bar\theta_k + n_{vk})` with :math:`\bar\theta_k` the population's row
(the median over volunteers with at least 5 votes on the row, renormalised) and :math:`c = 8`. A confusion
*(k, j)* is named only when it stands out in draws from these posteriors: with probability at least 0.99 the
volunteer's rate exceeds both the population's rate for the cell and the rate their other errors predict for it (the
population's rate scaled by how much more often than the population they err on every other cell, never scaled
down), and on average by at least 0.15. A volunteer who errs more everywhere has no confusion that stands out; the
strict probability keeps chance patterns among a volunteer's K(K-1) cells from being named.
Of the cells that stand out, the one costing most accuracy (:math:`\pi_k(\hat\theta_{vkj} - \bar\theta_{kj})`, with
:math:`\pi` the answer priors) is named. A volunteer whose errors are spread evenly gets advice about overall accuracy.

**Accuracy intervals** come from the model where it has them (the Bayesian models' ``accuracy_lo``/``accuracy_hi``);
for Dawid-Skene and majority vote they are a Beta approximation, :math:`\mathrm{Beta}(1 + a n, 1 + (1 - a) n)` for
estimated accuracy *a* on *n* votes (as if they were independent right-or-wrong trials), labelled
``interval: "beta approximation"`` in the table.

**Recommendations**: ``too few votes to tell`` (fewer than ``min_votes`` on the question), ``possible low-effort
pattern`` (one answer for at least 90% of their votes where the population gives it under half the time, and an
accuracy credibly below the population's median), ``review a confusion`` (a confusion stands out), ``keep practising``
(accuracy credibly below the median, errors spread evenly), ``ready for harder subjects`` (accuracy credibly above the
population's 75th percentile), else ``doing well``.

**Impact**: for a named confusion, the gain in the volunteer's accuracy if the cell fell to the population's rate (the
difference moving to the right answer), and the gain in information per vote (the mutual information between the true
answer and their vote, bits). The project table ranks every cell of every question by the expected wrong votes it
causes across all volunteers and the information per vote the catalogue would gain if nobody made it: where the field
guide or tutorial should improve.

**Worked examples**: for a named confusion, subjects whose consensus is confident (p >= 0.9) in the true answer and
that the volunteer answered otherwise (then volunteers with the same named confusion), spread over the range of
consensus confidence and, when a truth set's raw quantities are given, over those (farthest-point choice).

**Privacy**: everything meant to be shared uses pseudonyms, ``v-`` and 12 hex digits of a salted SHA-256 of the name
(``keep_names`` opts out); the salt and the name map are written under ``private/`` only. File names are built from
pseudonyms (or, keeping names, a slug plus a hash), so no name can escape the folder or clash; HTML is escaped; IP
addresses are never read.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from annostat.errors import InputError
from annostat.figures import pyplot
from annostat.files import safe_file_name

LEVEL = 0.9
PRIOR_STRENGTH = 8.0
NAMED_PROBABILITY = 0.99
NAMED_EFFECT = 0.15
MIN_ROW_VOTES = 3.0
CONFIDENT = 0.9
MIN_SUBJECT_VOTES = 5
RECOMMENDATIONS = ("too few votes to tell", "possible low-effort pattern", "review a confusion", "keep practising",
                   "ready for harder subjects", "doing well")
ADVICE_COLUMNS = ["volunteer", "question", "n", "accuracy", "accuracy_lo", "accuracy_hi", "interval", "percentile",
                  "trend", "confusion_true", "confusion_answer", "confusion_rate", "confusion_rate_lo",
                  "population_rate", "recommendation", "advice", "accuracy_gain", "information_gain_bits"]


@dataclass
class FitFolder:
    """The tables of a fit folder that advice reads."""

    path: Path
    model: str
    volunteers: pd.DataFrame
    confusion: pd.DataFrame
    priors: pd.DataFrame
    posteriors: pd.DataFrame
    votes: pd.DataFrame


def read_fit_folder(path: str | os.PathLike) -> FitFolder:
    """Read a folder written by ``annostat fit`` (or :meth:`annostat.fit.Fit.save`); names what is missing."""
    path = Path(path)
    if not path.is_dir():
        raise InputError(f"{path}: not a folder (expected a fit folder written by annostat fit)")
    tables = {}
    for name in ("volunteers", "confusion", "priors", "posteriors", "votes"):
        file = path / f"{name}.parquet"
        if not file.exists():
            raise InputError(f"{file}: file not found (not a complete fit folder)")
        try:
            tables[name] = pd.read_parquet(file)
        except Exception as exc:  # pyarrow raises several kinds
            raise InputError(f"{file}: not a readable Parquet file ({exc})") from None
    needed = {"volunteers": {"volunteer", "question", "n", "accuracy"},
              "confusion": {"volunteer", "question", "true_answer", "answer", "p", "count"},
              "priors": {"question", "answer", "p"}, "posteriors": {"subject", "question", "answer", "p"},
              "votes": {"subject", "volunteer", "question", "answer"}}
    for name, columns in needed.items():
        missing = columns - set(tables[name].columns)
        if missing:
            raise InputError(f"{path / (name + '.parquet')}: column(s) {', '.join(sorted(missing))} missing")
    model = "unknown"
    if (path / "fit.json").exists():
        model = json.loads((path / "fit.json").read_text(encoding="utf-8")).get("model", "unknown")
    for frame in tables.values():  # labels as text: volunteers may be numbers in one table and text in another
        for column in ("volunteer", "question", "answer", "true_answer"):
            if column in frame:
                frame[column] = frame[column].astype(str)
    return FitFolder(path, model, **tables)


# --- names ---------------------------------------------------------------------------------------------------------

def pseudonym(name: str, salt: str) -> str:
    """``v-`` and 12 hex digits of SHA-256(salt, name): stable for a salt, not reversible without it."""
    return "v-" + hashlib.sha256(f"{salt}\x00{name}".encode()).hexdigest()[:12]


# --- the evidence ----------------------------------------------------------------------------------------------

def _population_rows(counts: np.ndarray) -> np.ndarray:
    """[K, K] population confusion: per row, the median over volunteers with >= 5 expected votes on it, renormalised
    (all volunteers' pooled counts where fewer than 3 volunteers qualify)."""
    K = counts.shape[1]
    rows = np.zeros((K, K))
    for k in range(K):
        n = counts[:, k].sum(axis=1)
        enough = n >= 5
        if enough.sum() >= 3:
            row = np.median(counts[enough, k] / n[enough, None], axis=0)
        else:
            row = counts[:, k].sum(axis=0) + 1e-3
        rows[k] = (row + 1e-4) / (row + 1e-4).sum()
    return rows


def _mutual_information(theta: np.ndarray, prior: np.ndarray) -> float:
    """I(true answer; vote) in bits for confusion ``theta`` [K, K] and answer prior ``prior`` [K]."""
    joint = prior[:, None] * theta
    vote = joint.sum(axis=0)
    ratio = np.where(joint > 0, joint / np.maximum(prior[:, None] * vote[None, :], 1e-300), 1.0)
    return float(np.sum(np.where(joint > 0, joint * np.log2(ratio), 0.0)))


@dataclass
class QuestionEvidence:
    question: str
    answers: list[str]
    prior: np.ndarray  # [K]
    population: np.ndarray  # [K, K]
    volunteers: list[str]
    counts: np.ndarray  # [V, K, K] expected votes
    named: list[tuple[int, int, float, float] | None]  # per volunteer: (k, j, rate mean, rate lower 5%) or None
    mean_confusion: np.ndarray  # [V, K, K] posterior means


def question_evidence(fit: FitFolder, question: str, draws: int = 2000, seed: int = 0) -> QuestionEvidence:
    """Dirichlet posteriors of every volunteer's confusion on ``question`` and the confusion that stands out."""
    priors = fit.priors[fit.priors["question"] == question]
    answers = list(priors["answer"])
    prior = priors["p"].to_numpy(float)
    prior = prior / prior.sum()
    K = len(answers)
    vols = sorted(fit.volunteers.loc[fit.volunteers["question"] == question, "volunteer"].unique())
    index = {a: i for i, a in enumerate(answers)}
    pos = {v: i for i, v in enumerate(vols)}
    # each volunteer's votes on subjects whose consensus is confident, by the consensus answer
    post = fit.posteriors[fit.posteriors["question"] == question]
    best = post.loc[post.groupby("subject")["p"].idxmax()]
    votes = fit.votes[fit.votes["question"] == question]
    per_subject = votes["subject"].astype(str).value_counts()
    best = best[(best["p"] >= CONFIDENT)
                & (best["subject"].astype(str).map(per_subject).fillna(0).to_numpy() >= MIN_SUBJECT_VOTES)]
    sure = pd.Series(best["answer"].to_numpy(), index=best["subject"].astype(str).to_numpy())
    votes = votes[votes["subject"].astype(str).isin(sure.index)]
    counts = np.zeros((len(vols), K, K))
    cells = pd.DataFrame({"v": votes["volunteer"].map(pos).to_numpy(),
                          "k": sure.loc[votes["subject"].astype(str)].map(index).to_numpy(),
                          "j": votes["answer"].map(index).to_numpy()}).dropna().astype(np.int64)
    np.add.at(counts, (cells["v"].to_numpy(), cells["k"].to_numpy(), cells["j"].to_numpy()), 1.0)
    population = _population_rows(counts)
    alpha = PRIOR_STRENGTH * population[None] + counts  # [V, K, K]
    mean = alpha / alpha.sum(axis=2, keepdims=True)
    rng = np.random.default_rng(seed)
    off = ~np.eye(K, dtype=bool)
    named: list[tuple[int, int, float, float] | None] = []
    for v in range(len(vols)):
        theta = rng.gamma(alpha[v][None], 1.0, (draws, K, K))
        theta /= theta.sum(axis=2, keepdims=True)  # [D, K, K] draws of the volunteer's confusion
        best, best_cost = None, 0.0
        weighted = theta * off * prior[None, :, None]  # [D, K, K] each error cell's share of their votes
        errors = weighted.sum(axis=(1, 2))
        population_cells = population * off * prior[:, None]
        for k in range(K):
            if counts[v, k].sum() < MIN_ROW_VOTES:
                continue
            for j in range(K):
                if j == k:
                    continue
                cell = theta[:, k, j]
                # what their other errors predict for this cell: the population's rate scaled by how much more (never
                # less) than the population they err elsewhere
                scale = (errors - weighted[:, k, j]) / max(population_cells.sum() - population_cells[k, j], 1e-12)
                expected = population[k, j] * np.maximum(scale, 1.0)
                stands_out = (np.mean(cell > population[k, j]) >= NAMED_PROBABILITY
                              and np.mean(cell > expected) >= NAMED_PROBABILITY
                              and np.mean(cell - expected) >= NAMED_EFFECT)
                cost = prior[k] * (mean[v, k, j] - population[k, j])
                if stands_out and cost > best_cost:
                    best, best_cost = (k, j, float(mean[v, k, j]), float(np.quantile(cell, 1 - LEVEL))), cost
        named.append(best)
    return QuestionEvidence(question, answers, prior, population, vols, counts, named, mean)


# --- the advice table ------------------------------------------------------------------------------------------

def _words(label: str) -> str:
    return str(label).replace("-", " ").replace("_", " ")


def _sentence(rec: str, question: str, answers: list[str], row: dict[str, Any]) -> str:
    q = _words(question)
    acc = row["accuracy"]
    if rec == "too few votes to tell":
        return f"You have answered '{q}' {row['n']} times; a few more answers will tell us how you are doing there."
    if rec == "possible low-effort pattern":
        return (f"On '{q}' you chose '{_words(row['top_answer'])}' for almost every galaxy. Take a moment over each "
                f"image; the field guide shows what each answer looks like.")
    if rec == "review a confusion":
        k, j = _words(row["confusion_true"]), _words(row["confusion_answer"])
        return (f"On '{q}', when a galaxy's answer is '{k}' you answered '{j}' about {row['confusion_rate']:.0%} of "
                f"the time (most volunteers: {row['population_rate']:.0%}). The examples below show '{k}' galaxies; "
                f"comparing them with the field guide should help.")
    if rec == "keep practising":
        return (f"Your estimated accuracy on '{q}' is about {acc:.0%}, a little below most volunteers, with no single "
                "mix-up standing out: the field guide's examples for every answer are worth a look.")
    if rec == "ready for harder subjects":
        return (f"Your answers to '{q}' are among the most reliable ({acc:.0%}, top quarter of volunteers). You are "
                "ready for the harder galaxies.")
    return f"Your answers to '{q}' are reliable (estimated accuracy about {acc:.0%}). Thank you, keep going!"


def _trend(row: pd.Series) -> str:
    needed = {"start_lo", "start_hi", "plateau", "plateau_lo", "plateau_hi"}
    if not needed <= set(row.index) or pd.isna(row["start_lo"]):
        return ""
    if row["plateau_hi"] < row["start_lo"]:
        return "declining"
    if row["plateau_lo"] > row["start_hi"] and row["accuracy"] < row["plateau"] - 0.02:
        return "improving"
    return "plateaued"


def advise(fit: FitFolder, min_votes: int = 10, draws: int = 2000, seed: int = 0) -> dict[str, pd.DataFrame]:
    """The advice, impact and project tables of a fit (volunteer names as in the fit; see :func:`write_advice`)."""
    rows, project = [], []
    evidence = {}
    for q_index, question in enumerate(sorted(fit.volunteers["question"].unique())):
        ev = question_evidence(fit, question, draws=draws, seed=seed + q_index)
        evidence[question] = ev
        K = len(ev.answers)
        vols = fit.volunteers[fit.volunteers["question"] == question].set_index("volunteer")
        qualified = vols[vols["n"] >= min_votes]["accuracy"]
        median = float(qualified.median()) if len(qualified) else float(vols["accuracy"].median())
        upper = float(qualified.quantile(0.75)) if len(qualified) else median
        votes = fit.votes[fit.votes["question"] == question]
        top = votes.groupby("volunteer")["answer"].agg(lambda a: a.value_counts().index[0])
        top_share = votes.groupby("volunteer")["answer"].agg(lambda a: a.value_counts(normalize=True).iloc[0])
        answer_share = votes["answer"].value_counts(normalize=True)
        info_now = np.array([_mutual_information(ev.mean_confusion[v], ev.prior) for v in range(len(ev.volunteers))])
        for v, name in enumerate(ev.volunteers):
            if name not in vols.index:
                continue
            r = vols.loc[name]
            n = int(r["n"])
            if {"accuracy_lo", "accuracy_hi"} <= set(r.index) and pd.notna(r["accuracy_lo"]):
                lo, hi, interval = float(r["accuracy_lo"]), float(r["accuracy_hi"]), "model posterior"
            else:  # Beta around the fit's estimate, as if its n votes were n independent right/wrong trials
                acc = float(r["accuracy"])
                lo, hi = _beta_interval(1 + acc * n, 1 + (1 - acc) * n)
                lo, hi = min(lo, acc), max(hi, acc)
                interval = "beta approximation"
            row: dict[str, Any] = {
                "volunteer": name, "question": question, "n": n, "accuracy": float(r["accuracy"]),
                "accuracy_lo": lo, "accuracy_hi": hi, "interval": interval,
                "percentile": float(100 * (qualified < r["accuracy"]).mean() + 50 * (qualified == r["accuracy"]).mean())
                if len(qualified) else np.nan,
                "trend": _trend(r), "confusion_true": None, "confusion_answer": None, "confusion_rate": np.nan,
                "confusion_rate_lo": np.nan, "population_rate": np.nan, "accuracy_gain": 0.0,
                "information_gain_bits": 0.0, "top_answer": top.get(name), "top_share": float(top_share.get(name, 0)),
            }
            named = ev.named[v]
            common = answer_share.get(row["top_answer"], 0.0)
            if n < min_votes:
                rec = "too few votes to tell"
            elif row["top_share"] >= 0.9 and common < 0.5 and hi < median:
                rec = "possible low-effort pattern"
            elif named is not None:
                k, j, rate, rate_lo = named
                fixed = ev.mean_confusion[v].copy()
                moved = rate - ev.population[k, j]
                fixed[k, j] -= moved
                fixed[k, k] += moved
                row.update(confusion_true=ev.answers[k], confusion_answer=ev.answers[j], confusion_rate=rate,
                           confusion_rate_lo=rate_lo, population_rate=float(ev.population[k, j]),
                           accuracy_gain=float(ev.prior[k] * moved),
                           information_gain_bits=_mutual_information(fixed, ev.prior) - info_now[v])
                rec = "review a confusion"
            elif hi < median:
                rec = "keep practising"
            elif lo > upper:
                rec = "ready for harder subjects"
            else:
                rec = "doing well"
            row["recommendation"] = rec
            row["advice"] = _sentence(rec, question, ev.answers, row)
            rows.append(row)
        # project level: every cell of the question
        total_votes = ev.counts.sum()
        wrong_total = (ev.counts * ~np.eye(K, dtype=bool)).sum()
        for k in range(K):
            for j in range(K):
                if j == k:
                    continue
                gain = 0.0
                for v in range(len(ev.volunteers)):
                    fixed = ev.mean_confusion[v].copy()
                    fixed[k, k] += fixed[k, j]
                    fixed[k, j] = 0.0
                    gain += ev.counts[v].sum() * (_mutual_information(fixed, ev.prior) - info_now[v])
                project.append({
                    "question": question, "true_answer": ev.answers[k], "answer": ev.answers[j],
                    "expected_wrong_votes": float(ev.counts[:, k, j].sum()),
                    "share_of_errors": float(ev.counts[:, k, j].sum() / max(wrong_total, 1e-12)),
                    "population_rate": float(ev.population[k, j]),
                    "volunteers_named": int(sum(1 for x in ev.named if x is not None and x[:2] == (k, j))),
                    "information_gain_bits_per_vote": float(gain / max(total_votes, 1e-12)),
                })
    advice = pd.DataFrame(rows)
    impact = advice[advice["recommendation"] == "review a confusion"][
        ["volunteer", "question", "confusion_true", "confusion_answer", "confusion_rate", "population_rate", "n",
         "accuracy_gain", "information_gain_bits"]].sort_values("accuracy_gain", ascending=False)
    project_table = pd.DataFrame(project).sort_values(["information_gain_bits_per_vote"], ascending=False)
    return {"advice": advice, "impact": impact.reset_index(drop=True),
            "project": project_table.reset_index(drop=True), "evidence": evidence}


def _beta_interval(a: float, b: float, level: float = LEVEL) -> tuple[float, float]:
    from scipy.stats import beta

    tail = (1 - level) / 2
    return float(beta.ppf(tail, a, b)), float(beta.ppf(1 - tail, a, b))


# --- worked examples -------------------------------------------------------------------------------------------

def worked_examples(fit: FitFolder, advice: pd.DataFrame, per_confusion: int = 4,
                    features: pd.DataFrame | None = None, min_confidence: float = 0.9) -> pd.DataFrame:
    """For each named confusion, up to ``per_confusion`` subjects with a confident consensus on the true answer that
    the volunteer (then volunteers with the same named confusion) answered otherwise; spread out by farthest-point
    choice over consensus confidence and ``features`` (numeric columns indexed by subject), when given."""
    named = advice[advice["recommendation"] == "review a confusion"]
    if named.empty:
        return pd.DataFrame(columns=["volunteer", "question", "confusion_true", "confusion_answer", "subject",
                                     "consensus_p", "answered_by"])
    post = fit.posteriors
    votes = fit.votes
    rows = []
    for (question, k, j), group in named.groupby(["question", "confusion_true", "confusion_answer"]):
        confident = post[(post["question"] == question) & (post["answer"] == k) & (post["p"] >= min_confidence)]
        p_of = confident.set_index(confident["subject"].astype(str))["p"]
        wrong = votes[(votes["question"] == question) & (votes["answer"] == j)]
        wrong = wrong[wrong["subject"].astype(str).isin(p_of.index)]
        sharing = set(group["volunteer"])
        for volunteer in group["volunteer"]:
            own = list(dict.fromkeys(wrong.loc[wrong["volunteer"] == volunteer, "subject"].astype(str)))
            others = [s for s in dict.fromkeys(wrong.loc[wrong["volunteer"].isin(sharing - {volunteer}),
                                                         "subject"].astype(str)) if s not in own]
            chosen = _spread(own, p_of, features, per_confusion)
            by = ["volunteer"] * len(chosen)
            if len(chosen) < per_confusion:
                extra = _spread(others, p_of, features, per_confusion - len(chosen))
                chosen += extra
                by += ["volunteers with the same confusion"] * len(extra)
            rows += [{"volunteer": volunteer, "question": question, "confusion_true": k, "confusion_answer": j,
                      "subject": s, "consensus_p": float(p_of[s]), "answered_by": b} for s, b in zip(chosen, by)]
    return pd.DataFrame(rows)


def _spread(subjects: list[str], p_of: pd.Series, features: pd.DataFrame | None, n: int) -> list[str]:
    """Farthest-point choice of ``n`` subjects over standardised (consensus p, features)."""
    if len(subjects) <= n:
        return list(subjects)
    x = p_of.loc[subjects].to_numpy(float)[:, None]
    if features is not None:
        f = features.reindex(subjects).to_numpy(float)
        x = np.concatenate([x, np.nan_to_num(f)], axis=1)
    x = (x - x.mean(axis=0)) / np.where(x.std(axis=0) > 0, x.std(axis=0), 1.0)
    chosen = [int(np.argmax(x[:, 0]))]  # start from the most confident consensus
    distance = np.linalg.norm(x - x[chosen[0]], axis=1)
    distance[chosen[0]] = -np.inf
    while len(chosen) < n:
        nxt = int(np.argmax(distance))
        chosen.append(nxt)
        distance = np.minimum(distance, np.linalg.norm(x - x[nxt], axis=1))
        distance[chosen] = -np.inf  # never the same subject twice (ties when features coincide)
    return [subjects[i] for i in chosen]


# --- writing ---------------------------------------------------------------------------------------------------

def write_advice(fit_dir: str | os.PathLike, out: str | os.PathLike, keep_names: bool = False,
                 salt: str | None = None, min_votes: int = 10, truth: str | os.PathLike | None = None,
                 images: str | os.PathLike | None = None, examples: int = 4, max_pages: int = 500,
                 seed: int = 0) -> dict[str, Any]:
    """Advise from a fit folder: ``advice.parquet``/``advice.csv``, ``examples.parquet``, ``impact.parquet``,
    ``project.parquet``/``project.csv``, thumbnails and the HTML cards (``index.html``, ``volunteers/*.html``) in
    ``out``; ``private/`` holds the salt and the name map. Returns the tables and counts."""
    from annostat.guidance.cards import write_cards

    fit = read_fit_folder(fit_dir)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a folder")
    tables = advise(fit, min_votes=min_votes, seed=seed)
    features, thumbnails, image_of = None, {}, {}
    truth_set = None
    if truth is not None:
        from annostat.truth.truthset import load_truth_set

        truth_set = load_truth_set(truth, check_images=False)
        image_of = _image_ids(truth_set)
        features = _truth_features(truth_set, image_of)
    example_table = worked_examples(fit, tables["advice"], per_confusion=examples, features=features)
    out.mkdir(parents=True, exist_ok=True)
    if len(example_table):
        thumbnails = _thumbnails(example_table["subject"].unique(), out / "thumbs", truth_set, images, image_of)
    example_table["thumbnail"] = example_table["subject"].map(thumbnails) if len(example_table) else []

    # names: pseudonyms unless kept
    salt = salt or secrets.token_hex(16)
    names = sorted(set(fit.volunteers["volunteer"]))
    shown = {n: n for n in names} if keep_names else {n: pseudonym(n, salt) for n in names}
    files = {n: (safe_file_name(n) if keep_names else shown[n]) for n in names}
    (out / "private").mkdir(exist_ok=True)
    (out / "private" / "README.txt").write_text(
        "Not for sharing: the salt of the pseudonyms and the map from pseudonym to volunteer name.\n", encoding="utf-8")
    if not keep_names:
        (out / "private" / "salt.txt").write_text(salt + "\n", encoding="utf-8")
    pd.DataFrame({"volunteer": names, "shown_as": [shown[n] for n in names]}).to_csv(out / "private" / "names.csv",
                                                                                     index=False)
    public = {}
    for key in ("advice", "impact"):
        frame = tables[key].copy()
        frame["volunteer"] = frame["volunteer"].map(shown)
        public[key] = frame
    example_public = example_table.copy()
    if len(example_public):
        example_public["volunteer"] = example_public["volunteer"].map(shown)
    advice_table = public["advice"][ADVICE_COLUMNS]
    advice_table.to_parquet(out / "advice.parquet", index=False)
    advice_table.to_csv(out / "advice.csv", index=False)
    public["impact"].to_parquet(out / "impact.parquet", index=False)
    tables["project"].to_parquet(out / "project.parquet", index=False)
    tables["project"].to_csv(out / "project.csv", index=False)
    example_public.to_parquet(out / "examples.parquet", index=False)
    pages = write_cards(out, fit, public["advice"], example_public, tables["project"], tables["evidence"], shown,
                        files, max_pages=max_pages)
    counts = public["advice"]["recommendation"].value_counts().to_dict()
    summary = {"fit": str(fit.path), "model": fit.model, "rows": len(advice_table),
               "volunteers": int(public["advice"]["volunteer"].nunique()), "recommendations": counts,
               "named_confusions": int((public["advice"]["recommendation"] == "review a confusion").sum()),
               "examples": int(len(example_public)), "pages": pages, "names": "kept" if keep_names else "pseudonyms"}
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return {"summary": summary, **public, "project": tables["project"], "examples": example_public}


def _image_ids(truth_set) -> dict[str, str]:
    """Simulated subject id -> image id, from the truth set's ``votes/subjects.parquet`` (empty without one)."""
    table = truth_set.votes_dir / "subjects.parquet"
    if not table.exists():
        return {}
    subjects = pd.read_parquet(table)
    return dict(zip(subjects["subject"].astype(str), subjects["image_id"].astype(str)))


def _truth_features(truth_set, image_of: dict[str, str]) -> pd.DataFrame:
    """Numeric raw truth columns of a truth set, indexed by the simulated subject id (or the image id)."""
    frame = truth_set.truth
    numeric = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])
               and c not in ("snapshot", "view", "pixscale_arcsec", "psf_fwhm_arcsec", "sky_sigma")]
    subject_of = {image: subject for subject, image in image_of.items()}
    return frame.set_index("image_id")[numeric].rename(index=subject_of)


def _thumbnails(subjects, folder: Path, truth_set, images, image_of: dict[str, str]) -> dict[str, str]:
    """Thumbnail PNGs of ``subjects`` (relative paths): from a local image folder (``<subject>.png/.jpg``, copied) or
    a truth set's FITS images (an arcsinh-stretched g, r, z composite)."""
    import shutil

    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, str] = {}
    for subject in subjects:
        subject = str(subject)
        target = folder / f"{safe_file_name(subject)}.png"
        if images is not None:
            for ext in (".png", ".jpg", ".jpeg"):
                source = Path(images) / f"{subject}{ext}"
                if source.is_file():
                    target = target.with_suffix(ext)
                    shutil.copyfile(source, target)
                    out[subject] = f"thumbs/{target.name}"
                    break
        if subject not in out and truth_set is not None:
            image_id = image_of.get(subject, subject)
            if (truth_set.truth["image_id"] == image_id).any():
                _fits_thumbnail(truth_set.read_image(image_id), target)
                out[subject] = f"thumbs/{target.name}"
    return out


def _fits_thumbnail(bands: dict[str, np.ndarray], target: Path) -> None:
    layers = list(bands.values())
    rgb = np.stack([layers[-1], layers[len(layers) // 2], layers[0]], axis=-1) if len(layers) >= 3 else \
        np.repeat(layers[0][..., None], 3, axis=-1)
    scale = np.percentile(rgb, 99.5) or 1.0
    rgb = np.clip(np.arcsinh(rgb / (0.1 * scale)) / np.arcsinh(10.0), 0, 1)
    pyplot().imsave(target, rgb[::-1])
