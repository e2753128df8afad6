"""Model checking: held-out vote log-likelihood and a comparison table over models.

Held-out votes: a random share of the votes is set aside, each model is fitted to the rest, and every held-out vote
is predicted from the fit: ``p(l_n) = sum_k p(true answer k | the subject's other votes) theta_v[k, l_n]`` (the
subject's answer posterior from the training votes; the prior where the subject has none left; the volunteers'
average confusion for a volunteer with no training votes on the question). The mean log-probability per held-out
vote says which model predicts new votes best, whatever its inference.

Example:
    >>> from annostat import Votes
    >>> from annostat.checking import compare
    >>> from annostat.simulate import simulate_votes
    >>> table = compare(Votes.from_frame(simulate_votes(200, 30).votes), ["mv", "ds"], holdout=0.2)
    >>> list(table.columns)[:3]
    ['model', 'heldout_log_likelihood', 'heldout_votes']
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

from annostat.models import get_model
from annostat.votes import Votes


def split_votes(votes: Votes, holdout: float = 0.1, seed: int = 0) -> tuple[Votes, pd.DataFrame]:
    """(training votes with the same questions and answer sets, held-out votes as labels)."""
    if not 0 < holdout < 1:
        raise ValueError("holdout must be between 0 and 1")
    frame = votes.to_frame().to_pandas().sort_values("row", kind="stable").reset_index(drop=True)  # input order
    rng = np.random.default_rng(seed)
    held = rng.random(len(frame)) < holdout
    answers = {q: votes.answers[i].to_list() for i, q in enumerate(votes.questions.to_list())}
    has_time = frame["time"].notna().any()  # the parsed times, so experience keeps its time order
    train = Votes.from_frame(frame[~held].reset_index(drop=True), answers=answers, duplicates="all",
                             time="time" if has_time else None)
    return train, frame[held].reset_index(drop=True)


def heldout_log_likelihood(fit, heldout: pd.DataFrame) -> np.ndarray:
    """log p(vote) for each held-out vote (rows of ``heldout``: subject, volunteer, question, answer)."""
    post = fit.posteriors.rename(columns={"answer": "true_answer", "p": "p_true"})
    conf = fit.confusion[["volunteer", "question", "true_answer", "answer", "p"]]
    average = conf.groupby(["question", "true_answer", "answer"], as_index=False)["p"].mean()
    priors = fit.priors.rename(columns={"answer": "true_answer", "p": "p_true"})
    votes = heldout[["subject", "volunteer", "question", "answer"]].reset_index().rename(columns={"index": "vote"})
    # p(true answer) per held-out vote: the subject's posterior, else the prior
    known = votes.merge(post, on=["subject", "question"], how="inner")
    unknown = votes[~votes["vote"].isin(known["vote"])].merge(priors, on="question", how="inner")
    truth = pd.concat([known, unknown], ignore_index=True)
    # p(answer | true answer) of the volunteer, else the volunteers' average
    mine = truth.merge(conf, on=["volunteer", "question", "true_answer", "answer"], how="left")
    mine = mine.merge(average.rename(columns={"p": "p_average"}), on=["question", "true_answer", "answer"], how="left")
    mine["p"] = mine["p"].fillna(mine["p_average"])
    prob = (mine["p_true"] * mine["p"]).groupby(mine["vote"]).sum()
    return np.log(np.clip(prob.reindex(votes["vote"]).fillna(0).to_numpy(), 1e-12, None))


def compare(votes: Votes, models: list[str], holdout: float = 0.1, seed: int = 0,
            options: dict[str, dict[str, Any]] | None = None) -> pd.DataFrame:
    """Fit each model to the same training votes and score it on the same held-out votes."""
    train, heldout = split_votes(votes, holdout, seed)
    rows = []
    for name in models:
        model = get_model(name, **(options or {}).get(name, {}))
        start = time.perf_counter()
        fit = model.fit(train)
        seconds = time.perf_counter() - start
        ll = heldout_log_likelihood(fit, heldout) if name != "mv" else np.full(len(heldout), np.nan)
        rows.append({"model": name, "heldout_log_likelihood": float(np.mean(ll)), "heldout_votes": len(heldout),
                     "training_votes": train.n_votes, "log_likelihood": fit.log_likelihood, "seconds": seconds})
    table = pd.DataFrame(rows)
    return table.sort_values("heldout_log_likelihood", ascending=False, na_position="last").reset_index(drop=True)
