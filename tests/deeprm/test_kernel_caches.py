"""The DeepRM kernel's caches never show: every step's image equals a full redraw of the state and
every mask bit equals a fresh earliest-fit search, and a restored snapshot continues exactly as it
does in a fresh env (whose kernel has no cache yet), whatever the env held before.

The kernel keeps what its image observation shows and each window job's fit offset from step to
step (cython_core/cluster.pyx, header); test_reference.py checks the outputs against the reference
model, this file checks the caches against the kernel's own from-scratch computations, in larger
and busier configurations, and across set_state.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import sysgym  # noqa: F401

CONFIGS = {
    "image-reserve": dict(observation="image", allocation="reserve"),
    "image-now": dict(observation="image", allocation="now"),
    "image-reserve-sparse": dict(observation="image", allocation="reserve", transitions="sparse"),
    "image-reserve-two-resources-busy": dict(observation="image", allocation="reserve", num_resources=2,
                                             window=5, backlog=60, new_job_rate=0.7, episode_length=60),
    "image-reserve-long-jobs": dict(observation="image", allocation="reserve", num_resources=3, horizon=6,
                                    max_job_length=20, max_job_size=4, num_processors=5, window=4,
                                    backlog=7, new_job_rate=0.9, episode_length=40),
    "image-no-backlog-bracis": dict(observation="image", allocation="reserve", backlog=0, protocol="bracis",
                                    episode_length=50),
    "compact-reserve-sparse": dict(observation="compact", allocation="reserve", transitions="sparse",
                                   num_resources=2, new_job_rate=0.6),
}
NUM_ENVS = 6


def make(kwargs: dict, num_envs: int = NUM_ENVS):
    return gym.make_vec("sysgym/DeepRM-v0", num_envs=num_envs, vectorization_mode="vector_entry_point",
                        **kwargs)


def actions(rng: np.random.Generator, mask: np.ndarray) -> np.ndarray:
    """Mostly valid picks, some void, some invalid (empty slots, jobs that do not fit)."""
    picks = np.argmax(rng.random(mask.shape) * mask, axis=1)
    wild = rng.integers(0, mask.shape[1], size=len(picks))
    return np.where(rng.random(len(picks)) < 0.8, picks, wild)


def assert_caches_invisible(vec, where: str) -> None:
    env = vec.unwrapped
    cfg, s = env.config, env._state
    for b in range(env.num_envs):
        if cfg.observation == "image":
            full = env.image(b)
            assert np.array_equal(s["obs"][b], full), \
                f"{where}: sub-env {b} image differs from a full redraw at {np.argwhere(s['obs'][b] != full)[:5]}"
        fresh = [env._kernel.fits_offset(b, i) >= 0 for i in range(cfg.window)]
        assert s["action_mask"][b, :cfg.window].astype(bool).tolist() == fresh, \
            f"{where}: sub-env {b} mask {s['action_mask'][b]} != fresh fit tests {fresh}"


@pytest.mark.parametrize("name", list(CONFIGS))
def test_image_and_mask_equal_fresh_computations_every_step(name):
    vec = make(CONFIGS[name])
    rng = np.random.default_rng(1)
    obs, info = vec.reset(seed=3)
    assert_caches_invisible(vec, f"{name} reset")
    for step in range(400):
        obs, _, _, _, info = vec.step(actions(rng, info["action_mask"]))
        assert_caches_invisible(vec, f"{name} step {step}")
        assert np.array_equal(obs, vec.unwrapped._state["obs"])


def rollout(vec, rng: np.random.Generator, steps: int) -> list:
    out = []
    info = {"action_mask": vec.unwrapped._state["action_mask"].copy()}
    for _ in range(steps):
        obs, reward, terminated, truncated, info = vec.step(actions(rng, info["action_mask"]))
        out.append((obs, reward, terminated, truncated, info["action_mask"]))
    return out


def assert_same_rollouts(a: list, b: list, where: str) -> None:
    for k, (x, y) in enumerate(zip(a, b, strict=True)):
        for part, (u, v) in enumerate(zip(x, y)):
            assert np.array_equal(u, v), f"{where}: step {k} output {part} differs"


@pytest.mark.parametrize("name", ["image-reserve", "image-reserve-two-resources-busy", "compact-reserve-sparse"])
def test_restored_snapshot_continues_as_in_a_fresh_env(name):
    kwargs = CONFIGS[name]
    source = make(kwargs)
    rng = np.random.default_rng(2)
    source.reset(seed=5)
    rollout(source, rng, 37)
    snapshot = source.unwrapped.get_state()
    rollout(source, rng, 23)            # the source moves on: its caches describe a later state
    later = source.unwrapped.get_state()

    fresh = make(kwargs)
    fresh.unwrapped.set_state(snapshot)
    expected = rollout(fresh, np.random.default_rng(9), 60)

    source.unwrapped.set_state(snapshot)   # back in time, into an env whose caches are warm
    assert_caches_invisible(source, f"{name} restored")
    assert_same_rollouts(rollout(source, np.random.default_rng(9), 60), expected, f"{name} back in time")

    other = make(kwargs)                # an env in another episode altogether
    other.reset(seed=77)
    rollout(other, np.random.default_rng(4), 50)
    other.unwrapped.set_state(snapshot)
    assert_same_rollouts(rollout(other, np.random.default_rng(9), 60), expected, f"{name} into another env")

    source.unwrapped.set_state(later)   # and forward again
    assert_caches_invisible(source, f"{name} forward")


def test_edited_observation_in_a_snapshot_is_redrawn_whole():
    """A snapshot's image is output only: cells edited in it (still in the space) never survive
    the next step, as before the kernel drew incrementally."""
    kwargs = CONFIGS["image-reserve"]
    vec = make(kwargs)
    rng = np.random.default_rng(3)
    vec.reset(seed=1)
    rollout(vec, rng, 30)
    state = vec.unwrapped.get_state()
    state["arrays"]["obs"] = np.ones_like(state["arrays"]["obs"])
    vec.unwrapped.set_state(state)
    vec.step(np.full(NUM_ENVS, vec.unwrapped.void_action))
    assert_caches_invisible(vec, "edited obs")


def test_single_env_restore_matches_fresh_env():
    env = gym.make("sysgym/DeepRM-Image-v0", allocation="reserve")
    env.reset(seed=4)
    rng = np.random.default_rng(0)
    for _ in range(40):
        mask = env.unwrapped._vec._state["action_mask"][0]
        env.step(int(rng.choice(np.flatnonzero(mask))))
    snapshot = env.unwrapped.get_state()
    void = env.action_space.n - 1
    for _ in range(15):
        env.step(void)
    env.unwrapped.set_state(snapshot)
    clone = gym.make("sysgym/DeepRM-Image-v0", allocation="reserve")
    clone.unwrapped.set_state(snapshot)
    for step in range(40):
        mask = clone.unwrapped._vec._state["action_mask"][0]
        action = int(rng.choice(np.flatnonzero(mask)))
        a, b = env.step(action), clone.step(action)
        assert np.array_equal(a[0], b[0]) and a[1:4] == b[1:4], f"step {step}"
        assert np.array_equal(a[4]["action_mask"], b[4]["action_mask"])
        if a[2] or a[3]:
            break


def test_caches_stay_invisible_across_a_replaced_future_input():
    """CrystalBox's "what if other jobs arrived from now on" keeps the state and swaps the stream;
    the caches must keep describing that state through the swap and the steps that follow."""
    vec = make(CONFIGS["image-reserve-two-resources-busy"])
    rng = np.random.default_rng(6)
    vec.reset(seed=2)
    rollout(vec, rng, 20)
    vec.unwrapped.set_future_input(1234, 0)
    assert_caches_invisible(vec, "after set_future_input")
    for step in range(30):
        vec.step(actions(rng, vec.unwrapped._state["action_mask"]))
        assert_caches_invisible(vec, f"replaced future, step {step}")
