"""The ArviZ trace of a Bayesian fit (``trace.nc`` in the fit folder): draws, sample statistics, the observed votes,
replayed volunteer agreement and each subject's log-likelihood per draw, for ArviZ's summaries, LOO and WAIC."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

if TYPE_CHECKING:
    import arviz as az

    from annostat.fit import Fit

#: netCDF/HDF5 names cannot hold "/" (a group separator): a question's "/" (a multiple-answer task's ``T10/ring``)
#: is written as U+2215 DIVISION SLASH in variable names, and read back by :func:`question_of`
_SLASH = "\u2215"


def tag(question: Any) -> str:
    """The ``[<question>]`` suffix of a question's variables in the trace."""
    return f"[{str(question).replace('/', _SLASH)}]"


def question_of(suffix: str) -> str:
    """The question a ``[<question>]`` suffix names (inverse of :func:`tag`)."""
    return suffix[1:-1].replace(_SLASH, "/")


def inference_data(fit: Fit) -> az.InferenceData:
    """ArviZ ``InferenceData`` of a Bayesian fit: posterior draws of every parameter (one variable per question
    and parameter, named ``<parameter>[<question>]``), sample_stats (NUTS: its statistics; SVI/MAP: the loss per
    step), observed_data (each question's votes per subject, padded, with a mask, and each volunteer's
    ``agreement`` with the consensus), posterior_predictive (that agreement in votes replayed from the model, per
    draw) and log_likelihood (``votes[<question>]``: each subject's log-likelihood per draw, the unit of LOO and
    WAIC). The last two use up to 64 of the draws, as one chain."""
    import arviz as az

    posterior, stats, observed, predictive, pointwise, coords, dims = {}, {}, {}, {}, {}, {}, {}
    for qf in fit.questions:
        if not qf.inference:
            continue
        inf, suffix = qf.inference, tag(qf.inference["question"])
        chains = inf["chains"]
        for name, value in inf["draws"].items():
            value = np.asarray(value)
            posterior[name + suffix] = value.reshape(chains, -1, *value.shape[1:])
        if inf["sample_stats"]:
            for name, value in inf["sample_stats"].items():
                stats[name + suffix] = np.asarray(value)
        elif len(inf["losses"]):
            stats["loss" + suffix] = np.asarray(inf["losses"])[None, :]
        for name, value in inf["observed"].items():
            observed[name + suffix] = np.asarray(value, np.int32 if value.dtype == bool else value.dtype)
        volunteers = fit.votes.volunteers.gather(qf.volunteers).cast(pl.Utf8).to_list()
        coords["volunteer" + suffix] = volunteers
        dims["volunteer_offset" + suffix] = ["volunteer" + suffix]
        if inf.get("agreement") is not None:
            observed["agreement" + suffix] = np.asarray(inf["agreement"])
            predictive["agreement" + suffix] = np.asarray(inf["agreement_draws"])[None]
            dims["agreement" + suffix] = ["volunteer" + suffix]
        if inf.get("pointwise") is not None:
            pointwise["votes" + suffix] = np.asarray(inf["pointwise"])[None]
            coords["subject" + suffix] = (
                fit.subject_labels.gather(inf.get("subjects", qf.subjects)).cast(pl.Utf8).to_list()
            )
            dims["votes" + suffix] = ["subject" + suffix]
    return az.from_dict(
        posterior=posterior,
        sample_stats=stats or None,
        observed_data=observed or None,
        posterior_predictive=predictive or None,
        log_likelihood=pointwise or None,
        coords=coords or None,
        dims=dims or None,
    )
