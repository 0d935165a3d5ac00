"""Snapshot seals and row banks: trusted forks stay cheap, anything edited is checked in full."""

from __future__ import annotations

import pickle

import gymnasium as gym
import numpy as np
import pytest

import sysgym  # noqa: F401
from sysgym.envs import snapshot
from sysgym.envs.snapshot import RowBank, take_rows
from tests.contract import assert_same, sample_actions


def _vec(n):
    return gym.make_vec("sysgym/DeepRM-Compact-v0", num_envs=n, vectorization_mode="vector_entry_point")


def test_rows_of_a_sealed_snapshot_fork_into_a_larger_env_and_stay_sealed(monkeypatch):
    source = _vec(3)
    _, infos = source.reset(seed=1)
    rng = np.random.default_rng(0)
    for _ in range(7):
        _, _, _, _, infos = source.step(sample_actions(source, infos, rng))
    state = source.unwrapped.get_state()
    forked = take_rows(state, [2, 2, 0, 1])
    assert snapshot.is_sealed(forked)
    target = _vec(4).unwrapped
    checked = []
    monkeypatch.setattr(type(target), "_check_state", lambda self, arrays: checked.append(1))
    target.set_state(forked)
    assert not checked  # the seal spared the checks
    for j, i in enumerate([2, 2, 0, 1]):
        for key, value in target.get_state()["arrays"].items():
            assert_same(value[j], state["arrays"][key][i])


def test_an_edited_or_foreign_row_is_not_sealed():
    source = _vec(2)
    source.reset(seed=0)
    state = source.unwrapped.get_state()
    edited = pickle.loads(pickle.dumps(state))
    edited["arrays"]["n_wait"][1] = 10**6
    bank = RowBank()
    bank.append(state)
    bank.append(edited, rows=[0])  # even an unchanged row of an edited snapshot is not trusted
    taken = bank.take([0, 2])
    assert "seal" not in taken
    forged = dict(state, seal="0" * 32)
    assert not snapshot.is_sealed(forged)
    target = _vec(2).unwrapped
    target.set_state(taken)  # valid rows: accepted after the full check
    with pytest.raises(ValueError, match="n_wait"):
        target.set_state(take_rows(edited, [1, 0]))


def test_a_bank_refuses_mixed_configurations_and_bad_indices():
    bank = RowBank()
    a = _vec(1)
    a.reset(seed=0)
    bank.append(a.unwrapped.get_state())
    b = gym.make_vec("sysgym/DeepRM-Compact-v0", num_envs=1, vectorization_mode="vector_entry_point", scenario=3)
    b.reset(seed=0)
    with pytest.raises(ValueError, match="one class and configuration"):
        bank.append(b.unwrapped.get_state())
    with pytest.raises(ValueError, match="state indices"):
        bank.take([1])
