"""Data parallelism (``annostat.infer.sharding``): Dawid-Skene on 2 and 4 (CPU) devices gives the one-device fit."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from annostat.infer.sharding import device_mesh, subject_blocks

WORKER = Path(__file__).with_name("sharding_worker.py")


@pytest.fixture(scope="module")
def four_devices(tmp_path_factory):
    """The worker's comparisons, run in a process with four CPU devices."""
    env = {**os.environ, "JAX_NUM_CPU_DEVICES": "4", "JAX_PLATFORMS": "cpu"}
    run = subprocess.run(
        [sys.executable, str(WORKER), str(tmp_path_factory.mktemp("sharded"))],
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("case", ["ds_2", "ds_4", "ds_blocked_4", "crowdkit_4", "tiny_4"])
def test_same_fit_on_several_devices(four_devices, case):
    assert four_devices["devices"] == 4
    d = four_devices[case]
    assert d["same_answers"] >= 0.999
    assert d["confusion"] <= 1e-4
    assert d["posterior"] <= 1e-4
    assert d["iterations"]  # the stopping rule sees the same objective


@pytest.mark.parametrize("devices", [2, 4])
def test_tolerance_stop_on_several_devices(four_devices, devices):
    """With EM's tolerance stop the fits may end an iteration apart (their float32 objectives, summed in another
    order, differ by about half the tolerance): the same answers still."""
    d = four_devices[f"ds_stopped_{devices}"]
    assert d["same_answers"] >= 0.999 and d["iterations_apart"] <= 1


def test_classifier_evidence_on_several_devices(four_devices):
    d = four_devices["evidence_4"]
    assert 0.0 < d["weight_one"] < 20.0  # learned, not at a bound
    assert abs(d["weight_one"] - d["weight_many"]) <= 1e-3
    assert d["confusion"] <= 1e-4 and d["posterior"] <= 1e-4


def test_svi_on_several_devices(four_devices):
    full = four_devices["svi_full_4"]  # every subject every step: the one-device fit, to float32 rounding
    assert full["devices"] == 4
    assert full["same_answers"] >= 0.999 and full["posterior"] <= 1e-4 and full["accuracy"] <= 1e-4  # 1.2e-7 measured
    mini = four_devices["svi_minibatch_4"]  # other minibatches: the same fit to SVI's noise
    assert mini["same_answers"] >= 0.98 and mini["accuracy"] <= 0.05


def test_joint_training_on_several_devices(four_devices):
    d = four_devices["joint_4"]  # minibatches split over 4 devices: the one-device fit (6.6e-7 measured)
    assert d["same_answers"] >= 0.999 and d["posterior"] <= 1e-4 and d["confusion"] <= 1e-4


def test_cli_devices(four_devices):
    assert four_devices["cli_posterior"] <= 1e-4
    code, output = four_devices["cli_too_many"]
    assert code != 0 and "5 devices asked for; JAX sees 4" in output and "\n" not in output


def test_one_device_is_no_mesh():
    assert device_mesh(1) is None
    assert device_mesh() is None  # the test process has one CPU device
    with pytest.raises(ValueError, match="JAX_NUM_CPU_DEVICES"):
        device_mesh(2)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 30), min_size=1, max_size=40), st.integers(1, 8))
def test_subject_blocks(votes_per_subject, n_shards):
    subject = np.repeat(np.arange(len(votes_per_subject)), votes_per_subject)
    bounds = subject_blocks(subject, len(votes_per_subject), n_shards)
    assert len(bounds) == n_shards + 1 and bounds[0] == 0 and bounds[-1] == len(votes_per_subject)
    assert (np.diff(bounds) >= 0).all()
    sizes = np.diff(bounds)
    assert (sizes[: min(n_shards, len(votes_per_subject))] >= 1).all()  # a subject a block while they last
    shard_votes = np.add.reduceat(np.r_[votes_per_subject, 0], bounds[:-1])[sizes > 0]
    # no block holds much more than its share: at most one subject's votes over it
    assert shard_votes.max() <= subject.size / n_shards + max(votes_per_subject) + 1e-9
