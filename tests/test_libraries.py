"""Library adapters and conventions (issue #21); the library snippets of docs/libraries.md run in
``tests/test_readme_snippets.py``.

* ``TianshouVectorEnv`` collects exactly what Tianshou's ``DummyVectorEnv`` of ``gym.make`` envs
  collects for the same seeds and actions (Tianshou's ``Collector`` could not take the native
  vector env: ``has no len()``), and refuses what it cannot honour with a clear error.
* ``import sysgym`` imports no training library.
* ``python -m sysgym.agents.ppo.sb3 --help`` prints its usage (it printed a traceback).
"""

from __future__ import annotations

import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest

import sysgym  # noqa: F401


def test_import_sysgym_imports_no_training_library():
    code = ("import sys, sysgym, sysgym.integrations\n"
            "loaded = [m for m in ('tianshou', 'stable_baselines3', 'torchrl', 'ray', 'torch') if m in sys.modules]\n"
            "assert not loaded, loaded\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def _collect(envs, seed):
    from tianshou.algorithm.algorithm_base import RandomActionPolicy
    from tianshou.data import Collector, VectorReplayBuffer

    envs.seed(seed)
    buffer = VectorReplayBuffer(4000, len(envs))
    collector = Collector(RandomActionPolicy(envs.action_space[0]), envs, buffer)
    collector.reset()
    np.random.seed(seed)   # Tianshou's random discrete actions come from numpy's global generator
    steps = collector.collect(n_step=60)
    episodes = collector.collect(n_episode=5)   # ends with envs left out of some steps (surplus)
    return buffer, steps, episodes


@pytest.mark.parametrize("env_id", ["sysgym/DeepRM-Compact-v0", "sysgym/CC-v0"])
def test_tianshou_adapter_collects_what_dummy_vector_env_collects(env_id):
    pytest.importorskip("tianshou")
    from tianshou.env import DummyVectorEnv

    from sysgym.integrations import TianshouVectorEnv

    kwargs = {"max_episode_steps": 30}
    native = TianshouVectorEnv(env_id, num_envs=3, **kwargs)
    assert len(native) == 3 and native.env_num == 3
    dummy = DummyVectorEnv([lambda: gym.make(env_id, **kwargs) for _ in range(3)])
    ours, ours_steps, ours_eps = _collect(native, seed=4)
    theirs, theirs_steps, theirs_eps = _collect(dummy, seed=4)
    assert ours_steps.n_collected_steps == theirs_steps.n_collected_steps == 60
    assert ours_eps.n_collected_episodes == theirs_eps.n_collected_episodes == 5
    assert len(ours) == len(theirs) > 60
    for key in ("obs", "act", "rew", "terminated", "truncated", "obs_next"):
        assert np.array_equal(getattr(ours, key), getattr(theirs, key)), key
    comps = "reward_components"
    assert np.array_equal(ours.info[comps], theirs.info[comps])


def test_tianshou_adapter_refuses_what_it_cannot_honour():
    pytest.importorskip("tianshou")
    from sysgym.integrations.tianshou import TianshouVectorEnv

    next_step = gym.make_vec("sysgym/CC-v0", num_envs=2, vectorization_mode="vector_entry_point")
    with pytest.raises(ValueError, match="autoreset_mode='Disabled'"):
        TianshouVectorEnv(next_step)
    with pytest.raises(TypeError, match="native vector env"):
        TianshouVectorEnv(gym.make_vec("sysgym/CC-v0", num_envs=2, vectorization_mode="sync"))
    disabled = gym.make_vec("sysgym/CC-v0", num_envs=2, vectorization_mode="vector_entry_point",
                            autoreset_mode="Disabled")
    with pytest.raises(ValueError, match="only when env is an ID"):
        TianshouVectorEnv(disabled, link_set="test")
    envs = TianshouVectorEnv(disabled)
    envs.reset()
    with pytest.raises(ValueError, match="without env_id"):
        envs.reset(env_id=[1], seed=3)
    with pytest.raises(ValueError, match=r"env ids must lie in \[0, 2\)"):
        envs.step(np.zeros((1, 1)), id=[2])
    with pytest.raises(ValueError, match="2 seeds for"):
        TianshouVectorEnv("sysgym/CC-v0", num_envs=3).seed([1, 2])


def test_sb3_example_help_and_bad_arguments():
    pytest.importorskip("stable_baselines3")
    module = [sys.executable, "-m", "sysgym.agents.ppo.sb3"]
    shown = subprocess.run(module + ["--help"], capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0 and "usage:" in shown.stdout and "Traceback" not in shown.stderr
    bad = subprocess.run(module + ["sysgym/NoSuchEnv-v0", "100"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert "not a registered sysgym environment" in bad.stderr.strip().splitlines()[-1]


def test_torchrl_limits_the_readme_states_still_hold():
    """docs/libraries.md, TorchRL: what does not work with torchrl 0.14.1; when one starts working, say so there."""
    pytest.importorskip("torchrl")
    from torchrl.envs import GymWrapper

    def native(env_id, mode):
        return gym.make_vec(env_id, num_envs=2, vectorization_mode="vector_entry_point", autoreset_mode=mode)

    with pytest.raises(RuntimeError, match="SAME_STEP or DISABLED"):   # Gymnasium's default NextStep
        GymWrapper(native("sysgym/CC-v0", "NextStep"))
    with pytest.raises(AssertionError, match="spec check failed"):
        GymWrapper(native("sysgym/CC-v0", "SameStep"))   # zero-filled final observation out of CC's bounds
