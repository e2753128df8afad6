"""The ArviZ trace of a Bayesian fit (``trace.nc`` in the fit folder): draws, sample statistics, the observed votes,
replayed volunteer agreement and each subject's log-likelihood per draw, for ArviZ's summaries, LOO and WAIC."""

from __future__ import annotations

import numpy as np
import polars as pl


def inference_data(fit):
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
        inf, tag = qf.inference, f"[{qf.inference['question']}]"
        chains = inf["chains"]
        for name, value in inf["draws"].items():
            value = np.asarray(value)
            posterior[name + tag] = value.reshape(chains, -1, *value.shape[1:])
        if inf["sample_stats"]:
            for name, value in inf["sample_stats"].items():
                stats[name + tag] = np.asarray(value)
        elif len(inf["losses"]):
            stats["loss" + tag] = np.asarray(inf["losses"])[None, :]
        for name, value in inf["observed"].items():
            observed[name + tag] = np.asarray(value, np.int32 if value.dtype == bool else value.dtype)
        volunteers = fit.votes.volunteers.gather(qf.volunteers).cast(pl.Utf8).to_list()
        coords["volunteer" + tag] = volunteers
        dims["volunteer_offset" + tag] = ["volunteer" + tag]
        if inf.get("agreement") is not None:
            observed["agreement" + tag] = np.asarray(inf["agreement"])
            predictive["agreement" + tag] = np.asarray(inf["agreement_draws"])[None]
            dims["agreement" + tag] = ["volunteer" + tag]
        if inf.get("pointwise") is not None:
            pointwise["votes" + tag] = np.asarray(inf["pointwise"])[None]
            coords["subject" + tag] = fit.subject_labels.gather(inf.get("subjects", qf.subjects)).cast(pl.Utf8).to_list()
            dims["votes" + tag] = ["subject" + tag]
    return az.from_dict(posterior=posterior, sample_stats=stats or None, observed_data=observed or None,
                        posterior_predictive=predictive or None, log_likelihood=pointwise or None,
                        coords=coords or None, dims=dims or None)
