r"""The joint model: a volunteer model (Dawid-Skene or hierarchical Dawid-Skene) fitted together with a network that
looks at each galaxy (a small ResNet on its pixels, or an MLP on precomputed features).

The network's output is each subject's prior over its true answers, :math:`p_\phi(z_{sq} = k \mid x_s)`, one softmax
head per question; the volunteers' confusions score the votes through the shared likelihood
(:mod:`annostat.models.likelihood`); network and confusions maximise the marginal likelihood of all the votes
together (:mod:`annostat.infer.joint`, where the maths, the two ways of fitting and the early stopping are). Every
subject with an input is answered, voted or not: a galaxy nobody classified gets the network's answer; a classified
one combines the network's prior with its votes, weighted by each voter's confusion.

Example (features that tell smooth from featured, three votes a galaxy):
    >>> import numpy as np
    >>> from annostat import Votes
    >>> from annostat.vision.inputs import Inputs
    >>> from annostat.truth.simulate import simulate_questions
    >>> sim = simulate_questions(60, 10, questions=["smooth-or-featured"], retire_after=3, seed=1)
    >>> votes = Votes.from_frame(sim.votes)
    >>> truth = sim.truth.set_index("subject")["answer"]
    >>> answers = sorted(set(truth))
    >>> x = np.stack([np.eye(len(answers))[answers.index(truth[s])] for s in votes.subjects])
    >>> inputs = Inputs("features", votes.subjects.to_list(), x.astype(np.float32))
    >>> fit = JointModel(rounds=2, epochs_per_round=20, folds=2).fit(votes, inputs)
    >>> fit.model, len(fit.answers)
    ('joint-ds', 60)
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from annostat.data.votes import Votes
from annostat.errors import InputError
from annostat.files import WriteAhead, atomic_write, read_json
from annostat.fit import Fit, QuestionFit, accuracy_from_confusion
from annostat.infer.joint import JointResult, JointSettings, fit_joint
from annostat.infer.training import expected_counts, layout_votes, question_joint
from annostat.models import likelihood
from annostat.vision.inputs import Inputs
from annostat.vision.networks import network_config

if TYPE_CHECKING:
    from annostat.infer.training import QuestionVotes, TrainingProgress

#: network settings the command line passes, by network kind
NETWORK_OPTIONS = {"cnn": ("width", "depth", "blocks", "dropout"), "mlp": ("hidden", "dropout")}
#: defaults that differ by input: features train faster, in bigger batches, with stronger regularisation
DEFAULTS = {
    "images": {
        "batch_size": 64,
        "learning_rate": 2e-3,
        "weight_decay": 0.05,
        "epochs": 40,
        "epochs_per_round": 8,
        "first_epochs": 30,
        "folds": 3,
        "rounds": 4,
    },
    "features": {
        "batch_size": 256,
        "learning_rate": 1e-3,
        "weight_decay": 0.1,
        "epochs": 200,
        "epochs_per_round": 60,
        "patience": 20,
    },
}


class JointModel:
    """Dawid-Skene (``model="ds"``) or hierarchical Dawid-Skene (``"hds"``) fitted jointly with a network on the
    subjects' inputs (see the module docstring and :class:`~annostat.infer.joint.JointSettings` for the options:
    ``method`` (``em`` with cross-fitted folds, or ``marginal``), ``epochs``, ``batch_size``, ``learning_rate``,
    ``seed``, ...); network options ``width``, ``depth``, ``blocks`` (CNN), ``hidden`` (MLP), ``dropout``."""

    name = "joint"

    def __init__(self, model: str = "ds", missing: str = "error", **options: Any) -> None:
        self.model = model
        self.missing = missing
        network: dict[str, Any] = {
            k: options.pop(k) for k in ("width", "depth", "blocks", "hidden", "dropout") if k in options
        }
        unknown = set(options) - set(JointSettings.__dataclass_fields__)
        if unknown:
            raise TypeError(f"unknown option(s) of the joint model: {', '.join(sorted(unknown))}")
        self.options, self.network = options, network
        JointSettings(volunteer_model=model, **options)  # check the options now

    def settings_for(self, inputs: Inputs) -> JointSettings:
        return JointSettings(volunteer_model=self.model, network=self.network, **(DEFAULTS[inputs.kind] | self.options))

    def fit(
        self,
        votes: Votes,
        inputs: Inputs,
        progress: TrainingProgress | None = None,
        checkpoint: Path | None = None,
        start_networks: list[Any] | None = None,
    ) -> JointFit:
        """Fit to ``votes`` with the network reading ``inputs`` (:mod:`annostat.vision.inputs`). ``checkpoint``: a
        folder for the state after each EM round, from which an interrupted fit resumes (``annostat fit --resume``
        uses ``OUT/network/progress``). ``start_networks``: a previous fit's networks, fine-tuned instead of trained
        from scratch (``annostat.live.update``)."""
        from annostat.models.dawid_skene import DawidSkene

        start = time.perf_counter()
        settings = self.settings_for(inputs)
        codes = votes.codes_of("subject", id_series(inputs.ids))
        S = votes.n_subjects
        rows_of_subject = np.full(S, -1, np.int64)
        rows_of_subject[codes[codes >= 0]] = np.flatnonzero(codes >= 0)
        without_input = np.flatnonzero(rows_of_subject < 0)
        if len(without_input) and self.missing == "error":
            first = votes.subjects[int(without_input[0])]
            raise InputError(
                f"{inputs.source}: no {'image' if inputs.kind == 'images' else 'features'} for subject "
                f"{first!r} ({len(without_input)} voted subject(s) without; --missing-images skip fits "
                "the others)"
            )
        questions = layout_votes(votes, rows_of_subject, len(inputs))
        start_fit = DawidSkene(
            pseudo_diagonal=settings.pseudo_diagonal, pseudo_off_diagonal=settings.pseudo_off_diagonal
        ).fit(votes)
        by_q = {qf.question: qf for qf in start_fit.questions}
        T0, C0 = [], []
        for qv in questions:
            T = np.full((len(inputs), qv.K), 1.0 / qv.K, np.float32)
            qf = by_q.get(qv.question)
            if qf is not None:
                rows = rows_of_subject[qf.subjects]
                T[rows[rows >= 0]] = qf.posteriors[rows >= 0]
                C0.append(qf.confusion[np.searchsorted(qf.volunteers, qv.volunteers)])
            else:
                C0.append(np.full((len(qv.volunteers), qv.K, qv.K), 1.0 / qv.K, np.float32))
            T0.append(T)
        kind = "cnn" if inputs.kind == "images" else "mlp"
        config = network_config(kind, inputs.shape, [qv.K for qv in questions], **settings.network)
        config["output"] = "dirichlet" if settings.loss == "dirichlet" else "softmax"
        config["inputs"] = {k: v for k, v in inputs.norm.items() if k != "columns"}
        result = fit_joint(
            inputs,
            questions,
            config,
            settings,
            T0,
            C0,
            progress=progress,
            checkpoint=checkpoint,
            start_networks=start_networks,
        )
        if result.tempering is not None:
            config["tempering"] = result.tempering  # annostat predict tempers new subjects' priors the same way
        return JointFit.build(
            votes, inputs, codes, questions, rows_of_subject, settings, config, result, time.perf_counter() - start
        )


class JointFit(Fit):
    """A joint model's fit: the usual tables for every subject with an input, plus the network(s)
    (``network/``: an orbax checkpoint and ``config.json``) and ``training.parquet``."""

    inputs: Inputs  # the images or features the network read, one row per subject
    config: dict[str, Any]  # the network's configuration (``network/config.json``)
    result: JointResult
    joint_settings: JointSettings
    unvoted_rows: np.ndarray  # input rows of the subjects without votes
    skipped_votes: int  # votes on subjects without an input
    skipped_subjects: int

    @classmethod
    def build(
        cls,
        votes: Votes,
        inputs: Inputs,
        codes: np.ndarray,
        questions: list[QuestionVotes],
        rows_of_subject: np.ndarray,
        settings: JointSettings,
        config: dict[str, Any],
        result: JointResult,
        seconds: float,
    ) -> JointFit:
        """The fit of ``result``; ``codes``: each input row's subject code in the votes (-1: no votes)."""
        unvoted = np.flatnonzero(codes < 0)
        fit_code = codes.copy()
        fit_code[unvoted] = votes.n_subjects + np.arange(len(unvoted))
        any_votes = np.any([qv.has for qv in questions], axis=0)
        vol = result.volunteers
        qfits = []
        heldout = np.array(
            [r.get("heldout_log_likelihood", np.nan) for r in result.trace if "heldout_log_likelihood" in r], np.float64
        )
        for q, qv in enumerate(questions):
            rows = np.flatnonzero(qv.has | ~any_votes)
            order = np.argsort(fit_code[rows], kind="stable")
            rows = rows[order]
            post = result.posteriors[q][rows]
            confusion = np.exp(np.asarray(vol.log_theta(result.vol_params[q]), np.float64))
            counts = expected_counts(qv, result.posteriors[q])
            voted_rows = np.flatnonzero(qv.has)
            priors = (
                result.posteriors[q][voted_rows].mean(axis=0)
                if len(voted_rows)
                else np.exp(result.log_priors[q]).mean(axis=0)
            )
            n_votes = np.bincount(qv.cells[qv.mask] // qv.K, minlength=len(qv.volunteers))
            joint = np.asarray(question_joint(vol, qv, result.log_priors[q], result.vol_params[q], voted_rows))
            final_ll = float(np.sum(np.asarray(likelihood.marginal(joint))))
            qfits.append(
                QuestionFit(
                    question=qv.question,
                    subjects=fit_code[rows].astype(np.int64),
                    posteriors=post,
                    volunteers=qv.volunteers,
                    n_votes=n_votes,
                    confusion=confusion,
                    counts=counts,
                    accuracy=accuracy_from_confusion(confusion, priors),
                    priors=priors,
                    log_likelihood=heldout,
                    log_prior=np.zeros_like(heldout),
                    converged=True,
                    final_log_likelihood=final_ll,
                    prior_weight=None if result.tempering is None else result.tempering[q]["weight"],
                )
            )
        extra = id_series([inputs.ids[i] for i in unvoted]) if len(unvoted) else None
        fit = cls(
            votes, f"joint-{settings.volunteer_model}", _settings_record(settings), qfits, seconds, extra_subjects=extra
        )
        fit.inputs, fit.config, fit.result, fit.joint_settings = inputs, config, result, settings
        fit.unvoted_rows = unvoted
        fit.skipped_votes = int((rows_of_subject[votes.codes("subject")] < 0).sum())
        fit.skipped_subjects = int((rows_of_subject < 0).sum())
        return fit

    @property
    def subject_labels(self) -> pl.Series:
        """The votes' subjects, then the subjects answered without votes; all as text where the two kinds of id
        differ in type (Panoptes' numbers and a truth set's image ids)."""
        labels, extra = self.votes.subjects, self.extra_subjects
        if extra is None or not len(extra):
            return labels
        if extra.dtype != labels.dtype:
            cast = extra.cast(labels.dtype, strict=False)
            if cast.null_count():
                return pl.concat([labels.cast(pl.Utf8), extra.cast(pl.Utf8).rename(labels.name)])
            extra = cast
        return pl.concat([labels, extra.rename(labels.name)])

    @property
    def training(self) -> pl.DataFrame:
        """Loss and held-out vote log-likelihood per epoch (and per round of EM): ``training.parquet``."""
        rows = [
            {
                "stage": r.get("stage", ""),
                "epoch": int(r["epoch"]),
                "loss": r.get("loss"),
                "heldout_log_likelihood": r.get("heldout_log_likelihood"),
            }
            for r in self.result.trace
        ]
        return pl.DataFrame(
            rows, schema={"stage": pl.Utf8, "epoch": pl.Int64, "loss": pl.Float64, "heldout_log_likelihood": pl.Float64}
        )

    def summary(self) -> dict[str, Any]:
        info = super().summary()
        info["joint"] = {
            "inputs": self.inputs.summary(),
            "subjects_without_votes": 0 if self.extra_subjects is None else len(self.extra_subjects),
            "voted_subjects_without_input": self.skipped_subjects,
            "votes_of_subjects_without_input": self.skipped_votes,
            "network": {k: v for k, v in self.config.items() if k != "inputs"},
            "best": int(self.result.best),
            "heldout_log_likelihood_per_vote": self.result.heldout_log_likelihood,
            "networks": len(self.result.networks),
            "training_seconds": round(self.result.seconds, 3),
        }
        return info

    def entries_written(self) -> set[str]:
        return super().entries_written() | {"network", "training.parquet", "figures"}

    @property
    def members(self) -> pl.DataFrame | None:
        """Each network's answers for the subjects nobody voted on (subject, question, answer, member, p): the
        ensemble's disagreement there is the network's own uncertainty, which selection's BALD scores
        (``annostat.live.select``); ``None`` with one network or no such subject. ``network/members.parquet``."""
        if getattr(self, "_members", None) is None and len(self.result.networks) > 1 and len(self.unvoted_rows):
            rows = self.unvoted_rows
            unvoted = Inputs(
                self.inputs.kind,
                [self.inputs.ids[i] for i in rows],
                self.inputs.batch(rows),
                self.inputs.norm,
                source=self.inputs.source,
            )
            self._members = pl.concat(
                [
                    self.predict(unvoted, [state]).with_columns(pl.lit(m, pl.Int32).alias("member"))
                    for m, state in enumerate(self.result.networks)
                ]
            )
        return getattr(self, "_members", None)

    def save(self, folder: str | Path, votes_ahead: WriteAhead | None = None) -> Path:
        folder = super().save(folder, votes_ahead)
        from annostat.vision.checkpoint import save_networks

        save_networks(folder / "network", self.config, self.result.networks)
        if self.members is not None:
            atomic_write(folder / "network" / "members.parquet", self.members.write_parquet)
        atomic_write(folder / "training.parquet", self.training.write_parquet)
        _training_figure(self.training, folder / "figures")
        return folder

    def predict(self, inputs: Inputs, networks: list | None = None) -> pl.DataFrame:
        """p(true answer | input) of every row of ``inputs`` (posteriors format), from the fitted network(s) (or
        some of them, ``networks``)."""
        from annostat.vision.checkpoint import predict_table

        questions = [
            (self.votes.questions[qf.question], self.votes.answers[qf.question].to_list()) for qf in self.questions
        ]
        return predict_table(self.config, self.result.networks if networks is None else networks, inputs, questions)


def id_series(ids: list[Any]) -> pl.Series:
    """Subject ids as a polars Series: their own type, or text where they mix types."""
    try:
        return pl.Series("subject", ids)
    except (TypeError, pl.exceptions.PolarsError):
        return pl.Series("subject", [str(i) for i in ids], dtype=pl.Utf8)


def _settings_record(settings: JointSettings) -> dict[str, Any]:
    from dataclasses import asdict

    return {k: v for k, v in asdict(settings).items()}


def _training_figure(training: pl.DataFrame, folder: Path) -> None:
    """figures/training.png: the held-out vote log-likelihood (and loss) through training."""
    from annostat.figures import pyplot

    plt = pyplot()
    folder.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    held = training.filter(pl.col("heldout_log_likelihood").is_not_null())
    if held.height:
        ax.plot(np.arange(1, held.height + 1), held["heldout_log_likelihood"].to_numpy(), marker="o")
    ax.set_xlabel("epoch (marginal) / round (em)")
    ax.set_ylabel("held-out log-likelihood per vote")
    ax.set_title("Joint model: votes the network did not train on")
    fig.tight_layout()
    atomic_write(folder / "training.png", lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    plt.close(fig)


def read_config(folder: Path) -> dict[str, Any]:
    path = folder / "network" / "config.json"
    config = read_json(path, "a joint model's network configuration", "fit one with --images or --features")
    if not isinstance(config, dict):
        raise InputError(f"{path}: not a network configuration written by annostat (a JSON object)")
    return config
