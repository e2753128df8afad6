"""Model checking: held-out vote log-likelihood, LOO/WAIC, posterior predictive checks, and a comparison table.

Held-out votes: a random share of the votes is set aside, each model is fitted to the rest, and every held-out vote
is predicted from the fit: ``p(l_n) = sum_k p(true answer k | the subject's other votes) theta_v[k, l_n]`` (the
subject's answer posterior from the training votes; the prior where the subject has none left; the volunteers'
average confusion for a volunteer with no training votes on the question). The mean log-probability per held-out
vote says which model predicts new votes best, whatever its inference.

For the Bayesian models (``annostat.models.bayesian``) two more checks read the fit's ArviZ trace:

- :func:`information_criteria`: PSIS-LOO and WAIC through ArviZ, the unit left out being a subject with all its votes
  (the true answer is summed out, so subjects are independent given the parameters). They are valid for NUTS draws;
  with SVI the draws come from the variational approximation, so treat them as approximate and look at the Pareto
  k diagnostics (the share of subjects with k > 0.7 is reported). A MAP fit has one draw: no LOO or WAIC.
- :func:`agreement_check`: the posterior predictive check of each volunteer's agreement with the consensus answer
  (:func:`annostat.infer.bayes.answer_posteriors`); a volunteer whose observed agreement is in the outer 5% of its
  replications on either side is one the model does not describe. With a well-specified model about 10% of
  volunteers land there by chance (fewer with few votes, as their agreement is discrete).

Example:
    >>> from annostat import Votes
    >>> from annostat.evaluation.checks import compare
    >>> from annostat.truth.simulate import simulate_questions
    >>> table = compare(Votes.from_frame(simulate_questions(200, 30).votes), ["mv", "ds"], holdout=0.2)
    >>> list(table.columns)[:3]
    ['model', 'heldout_log_likelihood', 'heldout_votes']
"""

from __future__ import annotations

import time
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from annostat.data.votes import Votes
from annostat.infer.trace import question_of
from annostat.models import get_model, likelihood, model_spec
from annostat.models.base import sorted_positions

if TYPE_CHECKING:
    from annostat.fit import Fit


def split_votes(votes: Votes, holdout: float = 0.1, seed: int = 0) -> tuple[Votes, pd.DataFrame]:
    """(training votes with the same questions and answer sets, held-out votes as labels)."""
    if not 0 < holdout < 1:
        raise ValueError("holdout must be between 0 and 1")
    frame = votes.to_frame().to_pandas().sort_values("row", kind="stable").reset_index(drop=True)  # input order
    rng = np.random.default_rng(seed)
    held = rng.random(len(frame)) < holdout
    answers = {q: votes.answers[i].to_list() for i, q in enumerate(votes.questions.to_list())}
    has_time = frame["time"].notna().any()  # the parsed times, so experience keeps its time order
    train = Votes.from_frame(
        frame[~held].reset_index(drop=True), answers=answers, duplicates="all", time="time" if has_time else None
    )
    return train, frame[held].reset_index(drop=True)


def heldout_log_likelihood(fit: Fit, heldout: pd.DataFrame, floor: float = 1e-12) -> np.ndarray:
    """log p(vote) for each held-out vote (rows of ``heldout``: subject, volunteer, question, answer), through the
    shared volunteer likelihood: the subject's answer posterior from the fit (the answer priors for a subject the fit
    has no votes of) as the prior of one more vote, with the volunteer's confusion (the volunteers' average for a
    volunteer the fit does not know on the question). Votes the fit cannot score (a question it has no votes on, an
    answer outside the answer set) and probabilities below ``floor`` get ``log(floor)``."""
    out = np.full(len(heldout), np.log(floor))
    votes = fit.votes
    question = votes.codes_of("question", heldout["question"].tolist())
    subject = votes.codes_of("subject", heldout["subject"].tolist())
    volunteer = votes.codes_of("volunteer", heldout["volunteer"].tolist())
    for qf in fit.questions:
        rows = np.flatnonzero(question == qf.question)
        if not len(rows):
            continue
        answer = votes.codes_of("answer", heldout["answer"].iloc[rows].tolist(), qf.question)
        rows, answer = rows[answer >= 0], answer[answer >= 0]
        S, K = qf.posteriors.shape
        V = len(qf.volunteers)
        # the fit's subjects and volunteers of the question, plus a last row: the prior, the average volunteer
        log_posterior = np.log(np.concatenate([qf.posteriors, qf.priors[None]]).astype(np.float32))
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a cell no volunteer has: NaN, scored at the floor
            average = np.nanmean(qf.confusion, axis=0)
        confusion = np.concatenate([np.where(np.isnan(qf.confusion), average, qf.confusion), average[None]])
        s = sorted_positions(qf.subjects, subject[rows], S)
        v = sorted_positions(qf.volunteers, volunteer[rows], V)
        log_confusion = np.log(confusion.astype(np.float32))
        vote_ll = likelihood.vote_log_likelihood(log_confusion, likelihood.cell_index(v, answer, K))
        out[rows] = np.maximum(np.asarray(likelihood.marginal(log_posterior[s] + vote_ll)), np.log(floor))
    return out


def information_criteria(fit: Fit) -> pd.DataFrame:
    """Per question of a Bayesian fit (with at least 2 draws): PSIS-LOO and WAIC (ArviZ, log scale, subjects as the
    unit) and the share of subjects whose Pareto k exceeds 0.7; one row per question."""

    import arviz as az

    trace = fit.inference_data()
    rows: list[dict[str, Any]] = []
    if "log_likelihood" not in trace.groups():
        return pd.DataFrame(
            rows,
            columns=[
                "question",
                "elpd_loo",
                "loo_se",
                "p_loo",
                "pareto_k_above_0.7",
                "elpd_waic",
                "p_waic",
                "subjects",
            ],
        )
    for name in map(str, trace["log_likelihood"].data_vars):
        if trace["log_likelihood"][name].sizes["draw"] < 2:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ArviZ warns on large k / p_waic; the numbers themselves say it
            loo = az.loo(trace, var_name=name, pointwise=True)
            waic = az.waic(trace, var_name=name)
        k = np.asarray(loo.pareto_k)
        rows.append(
            {
                "question": question_of(name[len("votes") :]),
                "elpd_loo": float(loo.elpd_loo),
                "loo_se": float(loo.se),
                "p_loo": float(loo.p_loo),
                "pareto_k_above_0.7": float((k > 0.7).mean()),
                "elpd_waic": float(waic.elpd_waic),
                "p_waic": float(waic.p_waic),
                "subjects": int(k.size),
            }
        )
    return pd.DataFrame(rows)


def agreement_check(fit: Fit, min_votes: int = 10, tail: float = 0.05) -> pd.DataFrame:
    """Per question: how many volunteers (with >= ``min_votes`` votes) agree with the consensus more or less often
    than the model's replications allow (posterior predictive p below ``tail`` or above 1 - ``tail``)."""
    v = fit.volunteers
    if "agreement_ppp" not in v.columns:
        return pd.DataFrame(columns=["question", "volunteers", "too_low", "too_high", "share_extreme"])
    v = v[v["n"] >= min_votes]
    out = v.groupby("question").agg(
        volunteers=("agreement_ppp", "size"),
        too_low=("agreement_ppp", lambda p: int((p < tail).sum())),
        too_high=("agreement_ppp", lambda p: int((p > 1 - tail).sum())),
    )
    out["share_extreme"] = (out["too_low"] + out["too_high"]) / out["volunteers"].clip(lower=1)
    return out.reset_index()


def compare(
    votes: Votes,
    models: list[str],
    holdout: float = 0.1,
    seed: int = 0,
    options: dict[str, dict[str, Any]] | None = None,
) -> pd.DataFrame:
    """Fit each model to the same training votes and score it on the same held-out votes; for Bayesian fits with
    draws, LOO and WAIC on the training votes (summed over questions) and the share of volunteers failing the
    agreement check too."""
    train, heldout = split_votes(votes, holdout, seed)
    rows = []
    for name in models:
        model = get_model(name, **(options or {}).get(name, {}))
        start = time.perf_counter()
        fit = model.fit(train)
        seconds = time.perf_counter() - start
        ll = (
            heldout_log_likelihood(fit, heldout)
            if model_spec(name).can("likelihood")
            else np.full(len(heldout), np.nan)
        )
        row = {
            "model": name,
            "heldout_log_likelihood": float(np.mean(ll)),
            "heldout_votes": len(heldout),
            "training_votes": train.n_votes,
            "log_likelihood": fit.log_likelihood,
            "seconds": seconds,
            "elpd_loo": np.nan,
            "elpd_waic": np.nan,
            "pareto_k_above_0.7": np.nan,
            "ppc_extreme": np.nan,
        }
        if any(q.inference for q in fit.questions):
            criteria = information_criteria(fit)
            if len(criteria):
                row.update(
                    {
                        "elpd_loo": criteria["elpd_loo"].sum(),
                        "elpd_waic": criteria["elpd_waic"].sum(),
                        "pareto_k_above_0.7": float(
                            np.average(criteria["pareto_k_above_0.7"], weights=criteria["subjects"])
                        ),
                    }
                )
            check = agreement_check(fit)
            if len(check):
                row["ppc_extreme"] = float(check["too_low"].sum() + check["too_high"].sum()) / max(
                    int(check["volunteers"].sum()), 1
                )
        rows.append(row)
    table = pd.DataFrame(rows)
    return table.sort_values("heldout_log_likelihood", ascending=False, na_position="last").reset_index(drop=True)
