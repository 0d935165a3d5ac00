"""The CrystalBox benchmark scripts' own rules: the paper's dominant component, the degenerate-policy
flag, and disjoint train / test inputs."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from benchmarks import crystalbox_common as common
from benchmarks.crystalbox_reward_design import dominant
from sysgym.agents.crystalbox import Samples


def test_dominant_is_the_largest_absolute_difference_as_in_the_paper():
    # a - b = (-3, +2, +1.5): the total is +0.5, but the largest change is quality's (-3); a rule
    # following the total's sign would say "rebuffer"
    assert dominant(np.array([1.0, -1.0, -0.5]), np.array([4.0, -3.0, -2.0])) == 0
    assert dominant(np.array([0.0, -9.0, 0.0]), np.array([0.0, -1.0, -5.0])) == 1
    assert dominant(np.array([2.0, 0.0, 0.0]), np.array([2.0, 0.0, 0.5])) == 2


def samples_with(actions) -> Samples:
    n = len(actions)
    return Samples(components=("a",), weights=np.ones(1), t_max=5, gamma=0.95, obs=np.zeros((n, 1)), features=None,
                   mask=None, throughput=None, episode_step=np.zeros(n, dtype=np.int64),
                   policy_action=np.asarray(actions), state=np.arange(n), action=np.asarray(actions),
                   factual=np.ones(n, dtype=bool), returns=np.zeros((n, 1)))


def test_a_policy_stuck_on_one_action_is_flagged():
    stuck = common.action_summary(samples_with([0] * 97 + [1, 2, 3]), discrete=True)
    assert "0: 0.97" in stuck and "DEGENERATE" in stuck
    varied = common.action_summary(samples_with([0, 1, 2, 3] * 25), discrete=True)
    assert "0: 0.25" in varied and "DEGENERATE" not in varied


def test_abr_held_out_sets_share_no_trace_with_training(monkeypatch):
    sets = common.held_out_sets(common.FAMILIES["abr"], limit=3)
    assert sets[0].name == "test" and "no trace in common" in sets[0].ranges
    train = common.abr_train_traces()
    monkeypatch.setattr(common, "abr_train_traces", lambda: train + sets[0].env_kwargs["traces"][:1])
    with pytest.raises(ValueError, match="shares 1 trace"):
        common.held_out_sets(common.FAMILIES["abr"], limit=3)


def test_cc_train_and_test_traces_are_disjoint():
    text = common.cc_ranges(common.FAMILIES["cc"])
    test, train = (json.loads(found) for found in re.findall(r"\[[\d, ]+\]", text))
    assert test and train and not set(test) & set(train)
