import numpy as np
import pandas as pd
import pytest

from annostat.compat.crowdkit import DawidSkene, MajorityVote
from tests.conftest import REAL

crowdkit = pytest.importorskip("crowdkit.aggregation", reason="crowd-kit not installed (pip install annostat[peers])")


def datasets():
    rng = np.random.default_rng(0)
    n = 600
    synthetic = pd.DataFrame(
        {
            "task": rng.integers(0, 120, n),
            "worker": rng.choice(list("abcdefghij"), n),
            "label": rng.choice(["smooth", "featured", "artifact"], n, p=[0.6, 0.3, 0.1]),
        }
    )
    out = {"synthetic (with repeat votes)": synthetic}
    for name in ("dog", "duck"):
        path = REAL / name / "answer.csv"
        if path.exists():
            out[name] = pd.read_csv(path).rename(columns={"question": "task", "answer": "label"})
    return out


@pytest.mark.parametrize("name", list(datasets()))
def test_dawid_skene_matches_crowdkit(name):
    df = datasets()[name]
    theirs = crowdkit.DawidSkene().fit(df)
    ours = DawidSkene().fit(df)
    assert (ours.labels_.sort_index() == theirs.labels_.sort_index()).all()
    p_theirs = theirs.probas_.sort_index().sort_index(axis=1)
    p_ours = ours.probas_.loc[p_theirs.index, p_theirs.columns]
    assert np.abs(p_ours.to_numpy() - p_theirs.to_numpy()).max() < 1e-4
    assert np.allclose(ours.priors_.sort_index(), theirs.priors_.sort_index(), atol=1e-4)
    e_theirs = theirs.errors_.sort_index().sort_index(axis=1)
    assert ours.errors_.shape == e_theirs.shape
    e_ours = ours.errors_.loc[e_theirs.index, e_theirs.columns]
    assert np.abs(e_ours.to_numpy() - e_theirs.to_numpy()).max() < 1e-4
    assert len(ours.loss_history_) == len(theirs.loss_history_)
    assert np.allclose(ours.loss_history_, theirs.loss_history_, atol=1e-4)
    assert ours.labels_.name == "agg_label" and ours.priors_.name == "prior"
    assert ours.probas_.index.name == "task" and ours.errors_.index.names == ["worker", "label"]


@pytest.mark.parametrize("name", list(datasets()))
def test_majority_vote_matches_crowdkit(name):
    df = datasets()[name]
    theirs = crowdkit.MajorityVote().fit(df)
    ours = MajorityVote().fit(df)
    assert (ours.labels_.sort_index() == theirs.labels_.sort_index()).all()
    assert np.allclose(ours.probas_.sort_index().sort_index(axis=1), theirs.probas_.sort_index().sort_index(axis=1))
    assert np.allclose(ours.skills_.sort_index(), theirs.skills_.sort_index())


def test_n_iter_and_methods():
    df = datasets()["synthetic (with repeat votes)"]
    theirs = crowdkit.DawidSkene(n_iter=3, tol=0).fit_predict_proba(df)
    ours = DawidSkene(n_iter=3, tol=0).fit_predict_proba(df)
    assert (
        np.abs(
            ours.sort_index().sort_index(axis=1).to_numpy() - theirs.sort_index().sort_index(axis=1).to_numpy()
        ).max()
        < 1e-4
    )
    assert DawidSkene().fit_predict(df).index.name == "task"
    with pytest.raises(NotImplementedError):
        DawidSkene().fit(df, true_labels=pd.Series({0: "smooth"}))
