"""crowd-kit drop-in: switch by changing an import.

    # from crowdkit.aggregation import DawidSkene, MajorityVote
    from annostat.compat.crowdkit import DawidSkene, MajorityVote

    ds = DawidSkene(n_iter=100, tol=1e-5)
    labels = ds.fit_predict(df)          # df has columns task, worker, label

Same inputs (a DataFrame with ``task``, ``worker``, ``label``), constructor arguments (``n_iter``, ``tol``), methods
(``fit``, ``fit_predict``, ``fit_predict_proba``) and attributes in crowd-kit's shapes: ``labels_`` (Series by task,
named ``agg_label``), ``probas_`` (task x label), ``priors_`` (Series by label, named ``prior``), ``errors_`` (rows
(worker, observed label) for the labels each worker used, columns the true label: p(observed | true)),
``loss_history_`` and, for majority vote, ``skills_``. Semantics follow crowd-kit: every row is a vote (duplicate
policy ``all``), Dawid-Skene is unsmoothed maximum likelihood with probabilities floored at 1e-10, and EM stops when
the objective gains less than ``tol`` per vote. The fit runs on annostat's JAX EM, and the full annostat fit is kept
as ``fit_`` (posteriors, volunteers, confusion tables; :class:`annostat.fit.Fit`).

Not supported: crowd-kit's ``true_labels`` (golden labels) and ``initial_error`` arguments.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from annostat import models
from annostat.data.votes import Votes
from annostat.fit import Fit

__all__ = ["DawidSkene", "MajorityVote"]


class _CrowdKitAggregator:
    _model: models.Model

    def _votes(self, data: pd.DataFrame) -> Votes:
        missing = {"task", "worker", "label"} - set(data.columns)
        if missing:
            raise ValueError(f"data must have columns task, worker, label; missing {', '.join(sorted(missing))}")
        return Votes.from_frame(
            data[["task", "worker", "label"]],
            subject="task",
            volunteer="worker",
            answer="label",
            question=None,
            time=None,
            duplicates="all",
            source="crowd-kit data",
        )

    def fit(self, data: pd.DataFrame, *args: Any, **kwargs: Any):
        if args or any(v is not None for v in kwargs.values()):
            raise NotImplementedError("annostat's crowd-kit drop-in does not take true_labels, skills or initial_error")
        fit = self._model.fit(self._votes(data))
        self.fit_ = fit
        probas = fit.table("posteriors").to_pandas().pivot(index="subject", columns="answer", values="p")
        # crowd-kit breaks ties by the label order pandas gives its vote-count table (first use under pandas 3,
        # sorted under pandas 2): take the order from the same pandas operation
        order = data[["task", "label"]].value_counts().unstack("label").columns
        probas = probas.astype(float)[[label for label in order if label in probas.columns]]
        probas.index.name, probas.columns.name = "task", "label"
        self.probas_ = probas
        self.labels_ = probas.idxmax(axis=1).rename("agg_label")
        self._set_extra(fit, data)
        return self

    def _set_extra(self, fit: Fit, data: pd.DataFrame) -> None:
        pass

    def fit_predict(self, data: pd.DataFrame, *args: Any, **kwargs: Any) -> pd.Series:
        return self.fit(data, *args, **kwargs).labels_

    def fit_predict_proba(self, data: pd.DataFrame, *args: Any, **kwargs: Any) -> pd.DataFrame:
        return self.fit(data, *args, **kwargs).probas_


class MajorityVote(_CrowdKitAggregator):
    """crowd-kit's ``MajorityVote``: vote fractions; ``skills_`` is each worker's agreement with the majority."""

    def __init__(self) -> None:
        self._model = models.MajorityVote()

    def _set_extra(self, fit: Fit, data: pd.DataFrame) -> None:
        # agreement with labels_ (whose ties follow crowd-kit's first-seen order), per worker, counting repeats of
        # one (task, worker, label) once, as crowd-kit does
        data = data.drop_duplicates(["task", "worker", "label"])
        agrees = data["label"].to_numpy() == self.labels_.reindex(data["task"]).to_numpy()
        self.skills_ = pd.Series(agrees, index=data["worker"]).groupby(level=0).mean().astype(float).rename("skill")
        self.skills_.index.name = "worker"


class DawidSkene(_CrowdKitAggregator):
    """crowd-kit's ``DawidSkene(n_iter, tol)`` on annostat's JAX EM (unsmoothed, as crowd-kit)."""

    def __init__(self, n_iter: int = 100, tol: float = 1e-5) -> None:
        self.n_iter = n_iter
        self.tol = tol
        self._model = models.DawidSkene(
            max_iter=n_iter,
            tol=0.0,
            atol_per_vote=tol,
            pseudo_diagonal=0.0,
            pseudo_off_diagonal=0.0,
            prior_pseudo_count=0.0,
            eps=1e-10,
            crowdkit_stopping=True,
        )

    def _set_extra(self, fit: Fit, data: pd.DataFrame) -> None:
        priors = fit.table("priors").to_pandas().set_index("answer")["p"].astype(float)
        priors.index.name = "label"
        self.priors_ = priors.rename("prior")
        confusion = fit.table("confusion").to_pandas()
        used = confusion.groupby(["volunteer", "answer"])["count"].transform("sum") > 0
        confusion = confusion[used]
        # crowd-kit normalises each worker's column over the labels the worker used
        confusion = confusion.assign(
            p=confusion["p"] / confusion.groupby(["volunteer", "true_answer"])["p"].transform("sum")
        )
        errors = confusion.pivot_table(
            index=["volunteer", "answer"], columns="true_answer", values="p", observed=True, sort=True
        ).astype(float)
        errors.index.names = ["worker", "label"]
        errors.columns.name = None
        self.errors_ = errors
        elbo = fit.questions[0].elbo if fit.questions else None
        elbo = np.zeros(0) if elbo is None else elbo
        self.loss_history_ = [float(x) / fit.votes.n_votes for x in elbo[1:]]
