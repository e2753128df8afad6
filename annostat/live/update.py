r"""Updates as classifications arrive: a fit warm-started from the last one instead of fitted again from nothing.

A live project's fit is never finished: new classifications arrive while the old ones stay. :func:`update` takes a
fit (a :class:`~annostat.fit.Fit`, or a fit folder read with :meth:`Fit.load <annostat.fit.Fit.load>`) and the new
votes and returns the fit of all of them: new subjects, new volunteers, new questions and new answers are welcome.

Dawid-Skene is updated by **incremental EM** (Neal & Hinton 1998). EM's state is the subjects' posteriors: the
expected counts :math:`C_v[k, l] = \sum_{n: v_n = v, l_n = l} T_{s_n k}` and the answer totals
:math:`\sum_s T_s` are sums over subjects, so when new votes arrive only the subjects they touch need new posteriors.
Starting from the last fit's posteriors (vote fractions for subjects it did not have):

1. the counts and totals of every subject's current posterior: a fit in memory carries its expected counts over (the
   new votes' part added, a pass over the new votes only); a fit folder's are summed again in one pass;
2. sweeps over the *touched* subjects only: the M-step from the counts (``annostat.infer.em``'s, with the fit's
   pseudo-counts), their posteriors from all their votes (the shared volunteer likelihood), and their change in the
   counts swapped in; until no touched posterior moves by more than ``tol`` (one compiled loop);
3. the change spreads: in rounds, the subjects of every volunteer whose confusion has moved by more than ``spread``
   (any entry) since those subjects' posteriors were last computed are swept too (``ROUND_SWEEPS`` sweeps a round),
   until no confusion moves by that much: volunteers whose other subjects the new votes did not touch follow the
   change;
4. one pass over every subject: its posterior and marginal log-likelihood under the final confusions (the trace of
   an updated question holds that pass; ``fit.json``'s ``update.sweeps`` gives the sweeps).

Each sweep costs the swept subjects' votes, not the whole table; only steps 1 (from a folder) and 4 read every vote.
The answers agree with a refit from nothing to EM's own tolerance (``benchmarks/update_speed.py``: 1M votes and 1%
new, the figures in ``benchmarks/RESULTS.md``).

The Bayesian models' SVI or MAP starts from the last fit's posterior means (a share of the steps); a joint fit's
networks are fine-tuned (EM rounds from them, not from scratch); majority vote and NUTS fits are fitted again.
``fit.json`` says which (``update.method``). Fits with a classifier's prior are refused: fit them again with it.

Reference: R. M. Neal and G. E. Hinton (1998), A view of the EM algorithm that justifies incremental, sparse, and
other variants, in Learning in Graphical Models, 355-368.

Example:
    >>> from annostat import DawidSkene, Votes
    >>> from annostat.truth.simulate import simulate_questions
    >>> sim = simulate_questions(300, 40, ("smooth-or-featured",), seed=3)
    >>> old, new = sim.votes.iloc[:2000], sim.votes.iloc[2000:]
    >>> fit = DawidSkene().fit(Votes.from_frame(old))
    >>> updated = fit.update(Votes.from_frame(new))
    >>> updated.votes.n_votes == len(sim.votes), updated.summary()["update"]["method"]
    (True, 'incremental EM')
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np
import polars as pl

from annostat.data.sorting import run_members, subject_runs
from annostat.data.votes import Votes, positions_in
from annostat.errors import InputError
from annostat.fit import Fit, QuestionFit, SavedFit, accuracy_from_confusion
from annostat.models import likelihood
from annostat.models.base import gold_positions, local_codes, sorted_positions, vote_counts, vote_fractions

if TYPE_CHECKING:
    from annostat.vision.inputs import Inputs


def update(
    fit: Fit,
    new_votes: Votes | Any,
    *,
    tol: float = 1e-4,
    max_sweeps: int = 100,
    spread: float = 0.002,
    warm_steps: float = 0.25,
    inputs: Inputs | None = None,
    joint_rounds: int = 2,
    progress: Callable[..., None] | None = None,  # (question, done, total); a joint fit's (epoch, total, record)
) -> Fit:
    """The fit of ``fit``'s votes and ``new_votes`` together (see the module docstring): incremental EM from the last
    fit for Dawid-Skene, the model fitted again otherwise.

    Args:
        fit: the last fit, in memory or read from its folder.
        new_votes: the new classifications (:class:`~annostat.data.votes.Votes`, or a DataFrame with the default
            column names).
        tol: Dawid-Skene: stop the sweeps when no touched subject's posterior moves by more than this.
        max_sweeps: Dawid-Skene: sweeps at most.
        spread: Dawid-Skene: the subjects of a volunteer whose confusion moves by more than this (any entry) are
            swept too.
        warm_steps: the Bayesian models (SVI, MAP): the share of the model's steps run from the last fit's posterior
            means.
        inputs: a joint fit: the subjects' inputs (:class:`~annostat.vision.inputs.Inputs`; a fit in memory has its
            own); its networks are fine-tuned for ``joint_rounds`` EM rounds.
        progress: ``progress(question, done, total)``, as a model's fit takes it.
    """
    start = time.perf_counter()
    _refuse(fit)
    if not isinstance(new_votes, Votes):
        new_votes = Votes.from_frame(new_votes)
    combined, row_offset = combine(fit, new_votes)
    n_previous = int(np.count_nonzero(combined.codes("row") < row_offset))
    info: dict[str, Any] = {
        "previous": str(fit.folder) if isinstance(fit, SavedFit) else None,
        "previous_votes": n_previous,
        "new_rows": new_votes.report.to_dict(),
        "new_votes_kept": combined.n_votes - n_previous,
        "new_subjects": int(combined.n_subjects - fit.votes.n_subjects),
        "new_volunteers": int(combined.n_volunteers - fit.votes.n_volunteers),
        "row_offset": row_offset,
    }
    if "joint" in fit.summary():  # a network on the subjects' inputs: fine-tuned
        result, how = _update_joint(fit, combined, inputs, joint_rounds, progress)
        info |= how
    elif fit.model == "ds":
        from annostat.models.dawid_skene import DawidSkene

        model = DawidSkene(**_options(DawidSkene, fit.settings))
        questions, sweeps = [], {}
        carried = {qf.question: qf for qf in fit.questions} if n_previous == fit.votes.n_votes else {}
        previous = None if carried else fit.table("posteriors")
        for q, subject, volunteer, answer in combined.iter_questions():
            label = combined.questions[q]
            step = (lambda done, total, label=label: progress(label, done, total)) if progress else None
            last = carried.get(q) if previous is None else previous.filter(pl.col("question") == label)
            qf, n = _update_question(
                model, combined, q, subject, volunteer, answer, row_offset, last, tol, max_sweeps, spread, step
            )
            questions.append(qf)
            sweeps[str(label)] = n
        result = Fit(combined, "ds", model.settings(), questions, 0.0)
        info |= {"method": "incremental EM", "tol": tol, "spread": spread, "sweeps": sweeps}
    else:
        from annostat.models import get_model
        from annostat.models.bayesian import BayesianModel
        from annostat.models.registry import model_spec

        cls = model_spec(fit.model).load()
        refit = get_model(fit.model, **_options(cls, fit.settings))
        warm = _warm_start(fit) if isinstance(refit, BayesianModel) and refit.inference != "nuts" else None
        if isinstance(refit, BayesianModel) and warm:
            refit.warm_start, refit.warm_steps = warm, warm_steps
            info |= {
                "method": "warm-started SVI" if refit.inference == "svi" else "warm-started MAP",
                "steps": max(1, round(refit.steps * warm_steps)),
                "questions_warm": sorted(warm),
            }
        else:
            info |= {"method": "refit"}
        result = refit.fit(combined, progress=progress)
    result.update_summary = info
    result.seconds = time.perf_counter() - start
    return result


def _warm_start(fit: Fit) -> dict[str, dict[str, Any]]:
    """Per question label: the last fit's posterior means of its sites and its volunteers' labels, from the fit in
    memory or the fit folder's ArviZ trace (``trace.nc``); empty when the fit has none."""
    from annostat.infer.trace import question_of

    start: dict[str, dict[str, Any]] = {}
    if not isinstance(fit, SavedFit):
        for qf in fit.questions:
            if qf.inference:
                start[str(qf.inference["question"])] = {
                    "values": {k: np.asarray(v).mean(axis=0) for k, v in qf.inference["draws"].items()},
                    "volunteers": fit.votes.volunteers.gather(qf.volunteers),
                }
        return start
    if not (fit.folder / "trace.nc").is_file():
        return start
    posterior = fit.inference_data()["posterior"]
    for name in posterior.data_vars:
        site, _, suffix = str(name).partition("[")
        question = question_of("[" + suffix)
        entry = start.setdefault(question, {"values": {}, "volunteers": None})
        entry["values"][site] = np.asarray(posterior[name].mean(dim=("chain", "draw")))
        coord = f"volunteer[{suffix}"
        if entry["volunteers"] is None and coord in posterior.coords:
            entry["volunteers"] = pl.Series("volunteer", [str(v) for v in posterior.coords[coord].values])
    for question, entry in list(start.items()):
        if entry["volunteers"] is None:
            del start[question]
        else:  # the fit's volunteer labels, typed as the votes' (the trace keeps them as text)
            entry["volunteers"] = entry["volunteers"].cast(fit.votes.volunteers.dtype, strict=False)
    return start


def _update_joint(fit: Fit, combined: Votes, inputs, rounds: int, progress) -> tuple[Fit, dict[str, Any]]:
    """A joint fit updated: the same settings, its networks fine-tuned on all the votes for ``rounds`` EM rounds
    (each ``epochs_per_round``), the volunteer model started afresh from the votes."""
    from dataclasses import fields

    from annostat.infer.joint import JointSettings
    from annostat.models.joint import JointFit, JointModel

    if isinstance(fit, SavedFit):
        from annostat.vision.checkpoint import load_networks

        if inputs is None:
            raise InputError(
                f"{fit.folder}: a joint model's fit is updated with its inputs: give --images or "
                "--features (the fit folder keeps the network, not the images)"
            )
        config, networks = load_networks(fit.folder / "network")
        saved = dict(fit.settings)
    else:
        assert isinstance(fit, JointFit), "a joint model's fit in memory"
        inputs = fit.inputs if inputs is None else inputs
        config, networks = fit.config, fit.result.networks
        from dataclasses import asdict

        saved = asdict(fit.joint_settings)
    if (config["kind"] == "mlp") != (inputs.kind == "features"):
        raise InputError(f"the network reads {'features' if config['kind'] == 'mlp' else 'images'}; give those")
    known = {f.name for f in fields(JointSettings)}
    options = {k: v for k, v in saved.items() if k in known and k not in ("volunteer_model", "network")}
    options["rounds"] = int(rounds)
    model = JointModel(
        saved.get("volunteer_model", "ds"), missing="skip", **options, **dict(saved.get("network") or {})
    )
    result = model.fit(combined, inputs, progress=progress, start_networks=networks)
    return result, {"method": "fine-tuned network", "rounds": int(rounds), "networks": len(networks)}


def _refuse(fit: Fit) -> None:
    summary = fit.summary()
    if summary.get("prior") is not None:
        raise InputError(
            "a fit with a classifier's --prior is updated by fitting it again with the prior and all "
            "the votes (annostat fit --prior)"
        )
    if summary.get("processes", 1) != 1:
        raise InputError("a fit over several processes is updated by fitting it again over the processes")


def _options(cls: type, settings: dict[str, Any]) -> dict[str, Any]:
    """The saved settings the model's constructor takes (fit.json also records what it does not, such as notes)."""
    accepted = set(inspect.signature(cls).parameters)
    return {k: v for k, v in settings.items() if k in accepted and k != "devices"}


def combine(fit: Fit, new_votes: Votes) -> tuple[Votes, int]:
    """The last fit's votes and the new ones in one :class:`~annostat.data.votes.Votes` table
    (:meth:`Votes.extended <annostat.data.votes.Votes.extended>`: the last fit's codes kept, the new votes merged in,
    repeats by the last fit's duplicate policy, the subjects' metadata of both), and the row offset from which the rows
    are the new votes'."""
    summary = fit.summary()
    policy = (summary.get("rows") or {}).get("duplicate_policy", "first")
    if fit.votes.columns.get("format") == "panoptes" and policy == "all":
        # an export's votes keep every vote of a classification (policy all), its reader having dropped a
        # volunteer's repeat classifications of a subject; across two exports a classification the last fit has is
        # such a repeat (a cumulative export holds every classification so far): the first is kept
        policy = "first"
    combined, row_offset = fit.votes.extended(
        new_votes, duplicates=policy, source=f"{_previous_name(fit)} + {new_votes.report.source}"
    )
    if not combined.provenance and "export" in summary:
        combined.provenance = {"export": summary["export"]}
    return combined, row_offset


def _previous_name(fit: Fit) -> str:
    return str(fit.folder / "votes.parquet") if isinstance(fit, SavedFit) else "previous votes"


# ---------------------------------------------------------------------------------------------------- Dawid-Skene
#: sweeps in each round over the subjects of volunteers whose confusion moved (partial E-steps: the next round and the
#: final pass over every subject follow; at 1M votes 1-3 give the same agreement with a refit, benchmarks/update_speed)
ROUND_SWEEPS = 2
#: the smallest sweep, in subjects and votes (powers of two), unless the question is smaller: one program a question
SWEEP_FLOOR = (4096, 16384)


def _update_question(
    model,
    votes: Votes,
    q: int,
    subject,
    volunteer,
    answer,
    row_offset: int,
    last,
    tol: float,
    max_sweeps: int,
    spread: float,
    progress,
) -> tuple[QuestionFit, int]:
    """One question's incremental EM (module docstring); returns the fit and the sweeps it took. ``last``: the last
    fit's :class:`QuestionFit` of the question (a fit in memory: its posteriors and expected counts carried over), or
    its rows of the posteriors table (a fit folder: the counts summed again)."""
    from annostat.infer.em import bucket
    from annostat.models.dawid_skene import pseudo_count_matrix

    K = votes.n_answers[q]
    subjects, s_local, starts = subject_runs(subject)  # a question's votes are sorted by subject
    ends = np.append(starts[1:], len(subject))
    volunteers, v_local = local_codes(volunteer)
    S, V = len(subjects), len(volunteers)
    cell = likelihood.cell_index(v_local, answer.astype(np.int32), K)
    new = np.flatnonzero(votes.codes("row")[votes.question_slice(q)] >= row_offset)
    known = gold_positions(subjects, *votes.gold_codes(q))  # gold answers: fixed posteriors, never swept
    gold = np.flatnonzero(known >= 0)
    counts = None
    if isinstance(last, QuestionFit):
        T, counts = _carried_start(last, subjects, volunteers, s_local, answer, new, cell, K)
    if counts is None:
        T = _starting_posteriors(
            votes, q, subjects, s_local, answer, last if isinstance(last, pl.DataFrame) else pl.DataFrame(), K
        )
    if len(gold):
        fixed = np.zeros((len(gold), K))
        fixed[np.arange(len(gold)), known[gold]] = 1.0
        change = fixed - T[gold]
        T[gold] = fixed
        if counts is not None:  # gold new since the last fit: its subjects' change in the counts
            members, place = run_members(starts, ends, gold)
            counts += vote_counts(cell[members], change[place], V, K)
    if counts is None:
        counts = vote_counts(cell, T[s_local], V, K)
    pseudo = pseudo_count_matrix(K, model.pseudo_diagonal, model.pseudo_off_diagonal)
    eps, a0 = np.float32(model.eps), np.float32(model.prior_pseudo_count)
    v_pad = bucket(V + 1)
    counts_pad = np.zeros((v_pad, K, K), np.float32)
    counts_pad[:V] = counts
    totals = T.sum(axis=0).astype(np.float32)
    T = T.astype(np.float32)

    def padded_votes(cells, subjects, m_pad: int, n_pad: int) -> tuple[np.ndarray, np.ndarray]:
        """Votes' cells and subjects padded to ``m_pad``: padding votes are the padded volunteer's, on the padded
        subject (row ``n_pad - 1``, masked)."""
        cells_pad = np.full(m_pad, (v_pad - 1) * K, np.int32)
        cells_pad[: len(cells)] = cells
        subjects_pad = np.full(m_pad, n_pad - 1, np.int32)
        subjects_pad[: len(subjects)] = subjects
        return cells_pad, subjects_pad

    def confusion(counts_pad) -> np.ndarray:
        return np.asarray(_confusion(counts_pad, pseudo, eps))[:V]

    def sweep(chosen: np.ndarray, budget: int) -> tuple[int, bool]:
        """Sweeps over the subjects ``chosen`` (one compiled loop); how many, and whether they settled. Sizes are
        padded to powers of two: few programs to compile, which a live loop's rounds of updates (each of new sizes)
        would otherwise spend most of their time on (4x the loop's time with 25% padding)."""
        nonlocal counts_pad, totals
        members, place = run_members(starts, ends, chosen)
        n_pad = max(_power_of_two(len(chosen) + 1), n_floor)
        m_pad = max(_power_of_two(len(members)), m_floor)
        cells, place_pad = padded_votes(cell[members], place, m_pad, n_pad)
        T_pad = np.zeros((n_pad, K), np.float32)
        T_pad[: len(chosen)] = T[chosen]
        smask = np.arange(n_pad) < len(chosen)
        T_pad, counts_pad, totals, n, done = _sweeps(
            T_pad,
            counts_pad,
            totals,
            smask,
            pseudo,
            a0,
            eps,
            cells,
            place_pad,
            np.float32(tol),
            np.int32(budget),
            n=n_pad,
        )
        T[chosen] = np.asarray(T_pad)[: len(chosen)]
        counts_pad, totals = np.asarray(counts_pad), np.asarray(totals)  # host arrays each call: one program
        return int(n), bool(done)

    # small sweeps are padded to the question's own size, up to SWEEP_FLOOR subjects and votes: each round's sweep would
    # otherwise be a program of its own (dozens of compilations for a tree of small questions, seconds each update)
    n_floor = min(_power_of_two(S + 1), SWEEP_FLOOR[0])
    m_floor = min(_power_of_two(len(cell)), SWEEP_FLOOR[1])

    # the subjects the new votes touch, swept until they settle; then, in rounds of ROUND_SWEEPS sweeps, the subjects
    # of every volunteer whose confusion has moved by more than ``spread`` since their posteriors were last computed
    reference = confusion(counts_pad).copy()
    free = known < 0
    chosen = np.unique(s_local[new])
    chosen = chosen[free[chosen]]
    sweeps, converged, rounds = 0, True, 0
    while len(chosen) and sweeps < max_sweeps:
        n, done = sweep(chosen, max_sweeps - sweeps if rounds == 0 else min(ROUND_SWEEPS, max_sweeps - sweeps))
        sweeps, converged, rounds = sweeps + n, converged and (done or rounds > 0), rounds + 1
        if progress is not None:
            progress(sweeps, max_sweeps)
        now = confusion(counts_pad)
        moved = np.abs(now - reference).max(axis=(1, 2)) > spread
        reference[moved] = now[moved]
        chosen = np.flatnonzero(np.logical_or.reduceat(moved[v_local], starts)) if moved.any() else chosen[:0]
        chosen = chosen[free[chosen]]
    # every subject's posterior once under the final confusions (the others' moved by less than ``spread``)
    vmask = np.zeros(v_pad, np.float32)
    vmask[:V] = 1.0
    n_pad, m_pad = bucket(S + 1), bucket(len(cell))
    cells, subjects_pad = padded_votes(cell, s_local, m_pad, n_pad)
    T_all, marginal, log_pi, log_theta, lp = _em_step(
        counts_pad, totals, pseudo, a0, eps, vmask, cells, subjects_pad, n_pad
    )
    posteriors = np.array(T_all[:S])
    if len(gold):
        posteriors[gold] = 0.0
        posteriors[gold, known[gold]] = 1.0
    confusion_ = np.exp(np.asarray(log_theta)[:V])
    priors = np.exp(np.asarray(log_pi))
    qf = QuestionFit(
        question=q,
        subjects=subjects,
        posteriors=posteriors,
        volunteers=volunteers,
        n_votes=np.bincount(v_local, minlength=V),
        confusion=confusion_,
        counts=counts_pad[:V].copy(),
        accuracy=accuracy_from_confusion(confusion_, priors),
        priors=priors,
        log_likelihood=np.array([float(np.asarray(marginal)[:S].sum())]),
        log_prior=np.array([float(lp)]),
        converged=converged,
        elbo=np.full(1, np.nan),
    )
    return qf, sweeps


def _carried_start(last: QuestionFit, subjects, volunteers, s_local, answer, new, cell, K: int):
    """[S, K] posteriors and [V, K, K] expected counts to start from, carried over from the last fit's question: its
    posteriors (vote fractions for new subjects) and its counts, with the new votes' part added; ``(None, None)``
    where the last fit's subjects or volunteers are not all here (votes of the last fit dropped). The counts are those
    that gave the last fit's confusions: its final posteriors' own differ by EM's last step, within its tolerance."""
    subject_at = sorted_positions(subjects, np.asarray(last.subjects))
    volunteer_at = sorted_positions(volunteers, np.asarray(last.volunteers))
    if (subject_at < 0).any() or (volunteer_at < 0).any() or last.counts.shape[1:] != (K, K):
        return None, None
    with np.errstate(invalid="ignore"):  # a subject new here has only new votes; the others' 0/0 rows are replaced
        T = vote_fractions(s_local[new], answer[new], len(subjects), K)
    T[subject_at] = last.posteriors
    counts = np.zeros((len(volunteers), K, K))
    counts[volunteer_at] = last.counts
    counts += vote_counts(cell[new], T[s_local[new]], len(volunteers), K)
    return T, counts


def _power_of_two(n: int) -> int:
    return max(16, 1 << (int(n) - 1).bit_length())


@jax.jit
def _confusion(counts, pseudo, eps):
    """p(answer | true answer) [V, K, K]: the M-step of the confusions from expected counts (one compiled call)."""
    from annostat.infer.em import log_confusion_from_counts

    return jnp.exp(log_confusion_from_counts(counts, pseudo, eps))


def _joint_from_counts(counts, totals, pseudo, a0, eps, cell, subject, n):
    """The M-step of Dawid-Skene (``annostat.infer.em``) from expected counts [V, K, K] and answer totals [K], then
    the joint log-likelihood [n, K] of ``n`` subjects' votes (sorted by subject) by the shared volunteer likelihood;
    with the log priors and log confusions."""
    from annostat.infer.em import log_confusion_from_counts, log_priors_from_totals

    log_pi = log_priors_from_totals(totals, a0, eps)
    log_theta = log_confusion_from_counts(counts, pseudo, eps)
    joint = likelihood.ragged_joint(likelihood.vote_log_likelihood(log_theta, cell), subject, n, log_pi)
    return joint, log_pi, log_theta


@partial(jax.jit, static_argnames="n")
def _sweeps(T, counts, totals, smask, pseudo, a0, eps, cell, subject, tol, budget, n):
    """Sweeps of incremental EM over ``n`` subjects (rows of ``T`` [n, K], their current posteriors; ``smask`` the
    real rows): the M-step from the expected counts [V, K, K] and answer totals [K], the subjects' posteriors from
    their votes (``cell``, ``subject``: sorted by subject), and their change swapped into the counts and totals;
    until no posterior moves by more than ``tol`` or ``budget`` sweeps. Returns (T, counts, totals, sweeps, settled)."""
    V, K = counts.shape[0], counts.shape[-1]

    def body(c):
        i, _, T, counts, totals = c
        joint, _, _ = _joint_from_counts(counts, totals, pseudo, a0, eps, cell, subject, n)
        fresh = jnp.where(smask[:, None], likelihood.posterior(joint), 0.0)
        change = fresh - T
        moved = jax.ops.segment_sum(change[subject], cell, num_segments=V * K)  # [(v, l), k]
        counts = counts + jnp.swapaxes(moved.reshape(V, K, K), 1, 2)
        return i + 1, jnp.abs(change).max() <= tol, fresh, counts, totals + change.sum(axis=0)

    i, done, T, counts, totals = jax.lax.while_loop(
        lambda c: (c[0] < budget) & ~c[1], body, (jnp.int32(0), jnp.bool_(False), T, counts, totals)
    )
    return T, counts, totals, i, done


@partial(jax.jit, static_argnames="n")
def _em_step(counts, totals, pseudo, a0, eps, vmask, cell, subject, n):
    """One EM step on some subjects (:func:`_joint_from_counts`): p(true answer | votes) and the marginal
    log-likelihood of ``n`` subjects, the log priors and confusions, and the log density of the priors."""
    from annostat.infer.em import log_prior_density

    joint, log_pi, log_theta = _joint_from_counts(counts, totals, pseudo, a0, eps, cell, subject, n)
    marginal = likelihood.marginal(joint)
    lp = log_prior_density(log_pi, log_theta, vmask, pseudo, a0)
    return likelihood.posterior(joint, marginal), marginal, log_pi, log_theta, lp


def _starting_posteriors(
    votes: Votes, q: int, subjects: np.ndarray, s_local: np.ndarray, answer: np.ndarray, previous: pl.DataFrame, K: int
) -> np.ndarray:
    """[S, K] float64: the last fit's posteriors for the subjects it had (its answers by label), vote fractions for
    the others."""
    T = vote_fractions(s_local, answer, len(subjects), K)
    if previous.height == 0:
        return T
    code = positions_in(previous["subject"].cast(votes.subjects.dtype, strict=False), votes.subjects)
    position = sorted_positions(subjects, code)
    answers = positions_in(previous["answer"].cast(votes.answers[q].dtype, strict=False), votes.answers[q])
    known = (position >= 0) & (answers >= 0)
    had = np.zeros(len(subjects), bool)
    had[position[known]] = True
    T[had] = 0.0
    np.add.at(T, (position[known], answers[known]), previous["p"].to_numpy()[known].astype(np.float64))
    total = T[had].sum(axis=1, keepdims=True)
    T[had] = np.where(total > 0, T[had] / np.where(total > 0, total, 1.0), 1.0 / K)
    return T
