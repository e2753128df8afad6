import json

import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from annostat import DawidSkene, MajorityVote, Votes
from annostat.evaluation.harness import answer_scores, volunteer_scores
from annostat.infer.em import (
    BLOCK_SIZES,
    PART,
    _counts,
    _partial_sums,
    block_owners,
    block_size,
    blocked,
    bucket,
    n_blocks,
    n_parts_pad,
)
from annostat.models import likelihood
from tests.conftest import accuracy, real_votes


@pytest.fixture(scope="module")
def ds_fit(small_votes):
    return DawidSkene().fit(small_votes)


@pytest.fixture(scope="module")
def mv_fit(small_votes):
    return MajorityVote().fit(small_votes)


def test_bucket_pads_at_most_a_quarter():
    for n in [1, 15, 16, 17, 100, 1000, 12345, 2_000_000]:
        b = bucket(n)
        assert b >= n and (b <= 16 or b <= 1.25 * n)
    assert bucket(17) == bucket(20)


def test_partial_sums_split_each_cell_into_short_runs():
    rng = np.random.default_rng(0)
    cells = np.sort(
        np.concatenate(
            [np.zeros(3 * PART + 5, np.int32), rng.integers(1, 40, 2000).astype(np.int32), np.full(PART, 47, np.int32)]
        )
    )
    part, part_cell = _partial_sums(cells, n_parts_pad(len(cells), 16 * 3))
    assert np.all(np.diff(part) >= 0) and part[0] == 0  # runs follow the votes' order
    assert np.array_equal(part_cell[part], cells)  # every vote's run is of its cell
    assert np.bincount(part).max() <= PART
    assert np.count_nonzero(np.bincount(part, minlength=part.max() + 1)) == part.max() + 1  # no empty runs
    assert len(np.unique(part[cells == 0])) == 4  # 3 * PART + 5 votes: four runs
    assert np.all(np.diff(part_cell) >= 0)  # sorted, the padding the last cell


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 12), min_size=1, max_size=30), st.sampled_from(BLOCK_SIZES), st.integers(0, 3))
def test_blocked_layout_holds_every_vote_once_in_its_runs_blocks(lengths, b, spare):
    lengths = np.asarray(lengths)
    values = np.arange(1, lengths.sum() + 1, dtype=np.int32)  # distinct, 0 the padding
    n = n_blocks(lengths, b)
    flat = blocked(values, lengths, b, n + spare, 0)
    by_slot = flat.reshape(b, n + spare)
    owner = block_owners(lengths, b)
    assert len(owner) == n and np.all(np.diff(owner) >= 0)
    assert np.array_equal(np.sort(flat[flat > 0]), values)  # every vote once, the rest padding
    assert not by_slot[:, n:].any()  # padding blocks
    run = np.repeat(np.arange(len(lengths)), lengths)
    for j in range(b):  # each vote in a block of its own run, in order
        real = by_slot[j, :n] > 0
        assert np.array_equal(run[by_slot[j, :n][real] - 1], owner[real])
    assert np.array_equal(flat.reshape(b, -1).T[:n][flat.reshape(b, -1).T[:n] > 0], values)


@pytest.mark.parametrize("padded_up_to", [likelihood.PADDED_ROWS_UP_TO, 0])  # rows padded to 4 wide, or as they are
def test_blocked_row_sums_of_the_confusions_are_the_ragged_sum(padded_up_to, monkeypatch):
    monkeypatch.setattr(likelihood, "PADDED_ROWS_UP_TO", padded_up_to)
    rng = np.random.default_rng(2)
    V, K, S = 7, 3, 40
    lengths = rng.integers(0, 9, S)
    subject = np.repeat(np.arange(S), lengths)
    cell = (rng.integers(0, V, len(subject)) * K + rng.integers(0, K, len(subject))).astype(np.int32)
    log_theta = jnp.log(jnp.asarray(rng.dirichlet(np.ones(K), (V, K)), jnp.float32))
    ragged = likelihood.ragged_joint(likelihood.vote_log_likelihood(log_theta, cell), subject, S, jnp.zeros(K))
    for b in BLOCK_SIZES:
        flat = blocked(cell, lengths, b, n_blocks(lengths, b) + 2, V * K)
        per_block = likelihood.blocked_row_sums(likelihood.confusion_rows(log_theta), flat.reshape(b, -1))
        owner = np.append(block_owners(lengths, b), [S - 1, S - 1])  # padding blocks: any subject, they add 0
        joint = likelihood.ragged_joint(per_block, owner, S, jnp.zeros(K))
        assert np.allclose(joint, ragged, atol=1e-5)


@pytest.mark.parametrize("K", [2, 3, 5, 12])  # column by column up to likelihood.FEW_ANSWERS, a reduction past it
def test_marginal_is_logsumexp_with_its_gradient(K):
    import jax

    rng = np.random.default_rng(K)
    joint = jnp.asarray(rng.normal(size=(50, K)) * 30, jnp.float32)
    joint = joint.at[0].set(-jnp.inf).at[1, 0].set(-jnp.inf)  # no answer possible; one answer ruled out
    ours, theirs = likelihood.marginal(joint), jax.nn.logsumexp(joint, axis=-1)
    assert ours[0] == -jnp.inf and np.allclose(ours[1:], theirs[1:], rtol=1e-6)
    grad = jax.grad(lambda j: likelihood.marginal(j)[1:].sum())(joint)
    assert np.allclose(grad[1:], jax.nn.softmax(joint[1:], axis=-1), atol=1e-6)
    x = joint[1:]
    assert np.allclose(likelihood.sum_over_answers(x), x.sum(axis=-1)) and np.array_equal(
        likelihood.max_over_answers(x), x.max(axis=-1)
    )


def test_confusion_m_step_in_rows_is_the_m_step_transposed():
    from annostat.infer.em import log_confusion_from_counts, log_confusion_rows_from_counts

    rng = np.random.default_rng(3)
    counts = jnp.asarray(rng.random((6, 3, 3)) * 10, jnp.float32)  # [V, true answer, answer]
    pseudo = jnp.asarray(rng.random((3, 3)), jnp.float32)
    theta = np.exp(log_confusion_from_counts(counts, pseudo, 1e-10))
    assert np.allclose(theta.sum(axis=-1), 1, atol=1e-6)
    expected = (counts + pseudo) / (counts + pseudo).sum(axis=-1, keepdims=True)
    assert np.allclose(theta, expected, rtol=1e-5)
    rows = log_confusion_rows_from_counts(jnp.swapaxes(counts, 1, 2), jnp.broadcast_to(pseudo.T, (6, 3, 3)), 1e-10)
    assert np.allclose(np.exp(rows), np.swapaxes(theta, 1, 2), rtol=1e-6)


def test_m_step_over_ranges_of_subjects_is_the_same_fit(monkeypatch):
    """A large table of posteriors is read in ranges of subjects (em.subject_ranges): the same expected counts,
    summed in another order."""
    from annostat.infer import em

    rng = np.random.default_rng(4)
    S, V, K, per = 3000, 60, 3, 8
    truth = rng.integers(0, K, S)
    volunteer = rng.integers(0, V, S * per)
    subject = np.repeat(np.arange(S), per)
    right = rng.random(S * per) < 0.75
    answer = np.where(right, truth[subject], rng.integers(0, K, S * per))
    frame = pd.DataFrame({"subject": subject, "volunteer": volunteer, "answer": answer})
    votes = Votes.from_frame(frame, subject="subject", volunteer="volunteer", answer="answer", question=None, time=None)
    whole = DawidSkene(max_iter=30, tol=0.0).fit(votes)
    monkeypatch.setattr(em, "M_RANGE_BYTES", 4096)  # 3000 subjects' posteriors: 36 kB, so ranges of 341 subjects
    monkeypatch.setattr(em, "RUN_VOTES", 1)
    assert len(em.subject_ranges(S, K, S * per, 61 * K)) - 1 == 9
    ranged = DawidSkene(max_iter=30, tol=0.0).fit(votes)
    assert np.allclose(ranged.posteriors["p"], whole.posteriors["p"], atol=1e-5)
    assert np.allclose(ranged.volunteers["accuracy"], whole.volunteers["accuracy"], atol=1e-5)


def test_block_size_pads_little():
    assert block_size(np.full(100, 10)) in (2, 5)  # ten votes a subject: whole blocks
    assert block_size(np.ones(100, int)) == 1  # one vote a subject: blocks would be all padding
    assert block_size(np.zeros(5, int)) == 1


def test_counts_of_a_prolific_volunteer_keep_float32_precision():
    """A million votes in one cell: one float32 scatter-add rounds each addition to a sum near 5e5 (the count ends
    ~3e-6 off); the runs keep it within 1e-6 of the float64 sum (~4e-7 here)."""
    n, K = 1 << 20, 2
    rng = np.random.default_rng(1)
    T = rng.random((n, K)).astype(np.float32)
    cells = np.zeros(n, np.int32)  # volunteer 0, answer 0
    part, part_cell = _partial_sums(cells, n_parts_pad(n, 2 * K))
    counts = np.asarray(_counts(jnp.asarray(T), (np.arange(n, dtype=np.int32),), part, part_cell, 2, K))
    exact = T.astype(np.float64).sum(axis=0)
    assert np.allclose(counts[0, 0, :], exact, rtol=1e-6, atol=0)  # [volunteer, answer, true answer]


def test_dawid_skene_beats_majority_vote_on_simulated_votes(small_sim, ds_fit, mv_fit):
    ds, _ = answer_scores(ds_fit.posteriors, small_sim.truth)
    mv, _ = answer_scores(mv_fit.posteriors, small_sim.truth)
    ds, mv = ds.set_index("question"), mv.set_index("question")
    # both near the ceiling with 8 votes (measured: DS 0.995 / 0.991, MV 0.992 / 0.996: one subject of 232 on
    # disk-edge-on), so accuracy may tie within a subject; the posteriors are much better calibrated
    assert (ds["accuracy"] >= mv["accuracy"] - 0.005).all()
    assert (ds["brier"] < mv["brier"]).all() and (ds["ece"] < mv["ece"]).all()
    assert ds.loc["smooth-or-featured", "accuracy"] > 0.93
    # volunteers with >= 20 votes: estimated accuracy tracks the truth (fewer votes on the branch question)
    vols, _ = volunteer_scores(ds_fit.volunteers, small_sim.volunteers, min_votes=20)
    vols = vols.set_index("question")
    assert vols.loc["smooth-or-featured", "volunteer_corr"] > 0.9
    assert vols.loc["disk-edge-on", "volunteer_corr"] > 0.7
    assert (vols["volunteer_mae"] < 0.08).all()


def test_fit_tables_are_consistent(small_votes, ds_fit):
    post = ds_fit.posteriors
    sums = post.groupby(["subject", "question"])["p"].sum()
    assert np.allclose(sums, 1, atol=1e-4)
    assert not post["p"].isna().any()
    answers = ds_fit.answers
    assert len(answers) == len(sums)
    best = post.loc[post.groupby(["subject", "question"])["p"].idxmax()]
    assert best["p"].to_numpy() == pytest.approx(answers.sort_values(["subject", "question"])["p"].to_numpy(), abs=1e-6)
    conf = ds_fit.confusion
    rows = conf.groupby(["volunteer", "question", "true_answer"])["p"].sum()
    assert np.allclose(rows, 1, atol=1e-4)
    counts = conf.groupby(["volunteer", "question"])["count"].sum()
    vols = ds_fit.volunteers.set_index(["volunteer", "question"])
    assert np.allclose(counts.loc[vols.index], vols["n"], rtol=1e-3)
    assert vols["n"].sum() == small_votes.n_votes
    priors = ds_fit.priors.groupby("question")["p"].sum()
    assert np.allclose(priors, 1, atol=1e-5)
    # accuracy is the prior-weighted diagonal
    diag = conf[conf["true_answer"] == conf["answer"]].merge(
        ds_fit.priors.rename(columns={"p": "prior"}),
        left_on=["question", "true_answer"],
        right_on=["question", "answer"],
    )
    acc = (diag["p"] * diag["prior"]).groupby([diag["volunteer"], diag["question"]]).sum()
    assert np.allclose(acc.loc[vols.index], vols["accuracy"], atol=1e-5)


def test_em_converges_monotonically_and_deterministically(small_votes, ds_fit):
    assert ds_fit.converged
    trace = ds_fit.trace
    for _, part in trace.groupby("question"):
        objective = (part["log_likelihood"] + part["log_prior"]).to_numpy()
        assert np.all(np.diff(objective) >= -1e-4 * np.abs(objective[1:]))  # EM never loses (float32 noise aside)
    again = DawidSkene().fit(small_votes)
    assert again.posteriors.equals(ds_fit.posteriors)
    assert again.confusion.equals(ds_fit.confusion)


def test_em_kernel_is_compiled_once_per_padded_size(small_votes, ds_fit):
    from annostat.infer import em

    before = dict(em._EXECUTABLES)
    DawidSkene().fit(small_votes)  # same sizes as ds_fit: every executable is reused, none compiled
    assert em._EXECUTABLES == before


def test_argsort_distinct_sorted_and_unsorted_keys():
    from annostat.data.sorting import argsort_distinct

    rng = np.random.default_rng(3)
    for keys in (
        np.arange(50, dtype=np.int64) * 3,
        rng.permutation(1000).astype(np.int64),
        np.array([7], np.int64),
        np.array([2, 2, 1], np.int64)[[0, 2]],
    ):
        assert np.array_equal(argsort_distinct(keys), np.argsort(keys, kind="stable"))


def test_tol_zero_runs_every_iteration(small_votes):
    fit = DawidSkene(max_iter=23, tol=0).fit(small_votes)
    assert fit.iterations == 23 and not fit.converged
    assert (fit.convergence["iterations"] == 23).all()


def test_sparse_edge_cases_work():
    # volunteer with one vote, subject with one vote, an answer one volunteer never used, an answer nobody used
    df = pd.DataFrame(
        {
            "subject": [1, 1, 1, 2, 2, 2, 3, 4],
            "volunteer": ["a", "b", "c", "a", "b", "c", "a", "lonely"],
            "answer": ["x", "x", "y", "y", "y", "y", "x", "z"],
        }
    )
    votes = Votes.from_frame(df, answers=["x", "y", "z", "w"])
    fit = DawidSkene().fit(votes)
    post = fit.posteriors
    assert len(post) == 4 * 4 and not post["p"].isna().any()
    assert np.isfinite(fit.confusion["p"]).all() and np.isfinite(fit.volunteers["accuracy"]).all()
    lonely = fit.volunteers.set_index("volunteer").loc["lonely"]
    assert lonely["n"] == 1 and 0 < lonely["accuracy"] < 1
    assert fit.answers.set_index("subject").loc[2, "answer"] == "y"


def test_majority_vote_ties_are_deterministic_and_reported():
    df = pd.DataFrame(
        {
            "subject": [1, 1, 2, 2, 2],
            "volunteer": ["a", "b", "a", "b", "c"],
            "answer": ["smooth", "featured", "smooth", "smooth", "featured"],
        }
    )
    fit = MajorityVote().fit(Votes.from_frame(df))
    answers = fit.answers.set_index("subject")
    assert answers.loc[1, "answer"] == "featured" and answers.loc[1, "tie"]  # tie: the first answer in sort order
    assert answers.loc[2, "answer"] == "smooth" and not answers.loc[2, "tie"]
    assert fit.summary()["questions"][0]["ties"] == 1
    vols = fit.volunteers.set_index("volunteer")
    assert vols.loc["c", "accuracy"] == 0.0 and vols.loc["b", "accuracy"] == 1.0


@pytest.mark.parametrize("name,crowdkit_ds", [("dog", 0.8426), ("duck", 0.8889)])
def test_real_data_dawid_skene_at_least_crowdkit_and_above_majority_vote(name, crowdkit_ds):
    votes, truth = real_votes(name)
    ds = accuracy(DawidSkene().fit(votes), truth)
    mv = accuracy(MajorityVote().fit(votes), truth)
    assert ds >= crowdkit_ds - 1e-4
    assert ds > mv


def test_registry_knows_each_model_without_importing_it():
    import subprocess
    import sys

    from annostat.models import REGISTRY, get_model, model_spec, models_that
    from annostat.models.bayesian import BayesianModel

    code = (
        "import sys; from annostat.models import model_spec; model_spec('hds').can('bayesian'); "
        "print('annostat.models.hierarchical' in sys.modules, 'numpyro' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True).stdout.split() == [
        "False",
        "False",
    ]
    for name, spec in REGISTRY.items():
        cls = spec.load()
        assert cls.name == name and get_model(name).title == spec.title
        assert spec.can("bayesian") == issubclass(cls, BayesianModel)
    assert models_that("learning") == ["learning"] and "mv" not in models_that("likelihood")
    with pytest.raises(KeyError, match="the models are"):
        model_spec("nope")
    with pytest.raises(ValueError, match="ill-posed"):
        get_model("item", inference="map")


def test_a_saved_fit_loads_back_to_the_same_tables(small_votes, ds_fit, tmp_path):
    import polars.testing

    from annostat import Fit

    loaded = Fit.load(ds_fit.save(tmp_path / "fit"))
    for name in ds_fit.TABLES:
        polars.testing.assert_frame_equal(loaded.table(name), ds_fit.table(name))
    assert loaded.summary() == json.loads((tmp_path / "fit" / "fit.json").read_text())
    assert loaded.model == "ds" and loaded.iterations == ds_fit.iterations and loaded.converged == ds_fit.converged
    assert (
        loaded.votes.n_votes == small_votes.n_votes
        and loaded.votes.answers[0].to_list() == small_votes.answers[0].to_list()
    )
    polars.testing.assert_frame_equal(loaded.subjects.frame, ds_fit.subjects.frame)
    assert (loaded.subjects.frame["n_votes"] > 0).all()


def test_dawid_skene_confusions_are_parameters_of_the_shared_likelihood(small_votes, ds_fit):
    """Each subject's posterior is the shared likelihood's, from the fit's own parameters (as the E-step made it)."""
    from annostat.models import likelihood

    qf = ds_fit.questions[0]
    params = DawidSkene.parameters(qf)
    subject, volunteer, answer = small_votes.arrays(qf.question)
    local_subject = np.searchsorted(qf.subjects, subject)
    local_volunteer = np.searchsorted(qf.volunteers, volunteer)
    votes_ll = DawidSkene.log_theta_votes(params, {"volunteer": local_volunteer, "answer": answer})
    joint = likelihood.ragged_joint(votes_ll, local_subject, len(qf.subjects), np.log(params["priors"]))
    assert np.allclose(np.asarray(likelihood.posterior(joint)), qf.posteriors, atol=1e-4)


def test_votes_are_written_in_parts_as_in_one(ds_fit, tmp_path, monkeypatch):
    """At Galaxy Zoo's size votes.parquet is written a part at a time: the same table as written whole, without
    the experience columns a model that does not learn never reads."""
    import polars as pl
    import polars.testing

    import annostat.fit

    whole = pl.read_parquet(ds_fit.save(tmp_path / "whole") / "votes.parquet")
    monkeypatch.setattr(annostat.fit, "VOTES_PART", 97)
    parts = pl.read_parquet(ds_fit.save(tmp_path / "parts") / "votes.parquet")
    polars.testing.assert_frame_equal(parts, whole)
    assert len(whole) == ds_fit.votes.n_votes and "experience" not in whole.columns
    polars.testing.assert_frame_equal(whole, ds_fit.votes.to_frame(experience=False))
    experienced = ds_fit.votes.to_frame()
    polars.testing.assert_frame_equal(experienced.drop("experience", "experience_question"), whole)
