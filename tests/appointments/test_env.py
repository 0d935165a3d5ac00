"""The appointment envs: kwargs, spaces and names, invalid actions, percentile modes, snapshots, renders."""

from __future__ import annotations

import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest

import sysgym  # noqa: F401
from sysgym.envs.appointments import AppointmentsEnv, AppointmentsVectorEnv, build_config
from tests.isolation import run_isolated

BAD_KWARGS = [
    ("n_short", -1), ("n_long", -2), ("n_breaks", -1), ("n_short", 65), ("n_breaks", 9), ("n_short", 2.5),
    ("n_long", True), ("slot", 0.0), ("slot", -45.0), ("slot", float("nan")), ("short_duration", 0.0),
    ("long_duration", -60.0), ("buffer", -1.0), ("break_duration", 0.0), ("break_elasticity", -1.0),
    ("break_elasticity", 61.0), ("noise", -0.1), ("noise", 1.5), ("alpha", 0.0), ("alpha", 1.0),
    ("alpha", 1.2), ("alpha", "half"), ("observation", "image"), ("invalid_action", "reject"),
    ("invalid_weight", -1.0), ("percentile", "always"), ("enumeration_limit", 0),
    ("percentile_samples", 0), ("problem", "P4"), ("enumeration_limit", 10**7 + 1),
    ("percentile_samples", 10**5 + 1), ("break_model", "lunch"),
]


@pytest.mark.parametrize("name, value", BAD_KWARGS)
def test_every_bad_kwarg_raises_naming_it(name, value):
    with pytest.raises(ValueError, match=name):
        AppointmentsEnv(**{name: value})


def test_no_task_at_all_and_a_misspelt_kwarg_are_refused():
    with pytest.raises(ValueError, match="n_short"):
        AppointmentsEnv(n_short=0, n_long=0)
    with pytest.raises(ValueError, match="alpha"):
        AppointmentsEnv(alpah=0.3)


def test_a_huge_day_is_refused_with_sampling_suggested():
    # 16 + 16 tasks: 601,080,390 orderings, beyond any exact enumeration we allow (10^7, well
    # under a second a day); the message points to sampling, not to a larger limit.
    with pytest.raises(ValueError, match="enumeration_limit"):
        AppointmentsEnv(n_short=16, n_long=16, enumeration_limit=10**9)
    with pytest.raises(ValueError, match="percentile='sample'") as refused:
        AppointmentsEnv(n_short=16, n_long=16, enumeration_limit=10**7)
    assert "raise enumeration_limit" not in str(refused.value)
    with pytest.raises(ValueError, match="percentile_samples"):
        AppointmentsEnv(n_short=16, n_long=16, percentile="sample", percentile_samples=10**7)


def test_ctrl_c_interrupts_the_percentile_of_a_batch_between_days():
    """SIGINT during the end-of-day ranking of 32 big days stops it after a day, not after all
    (the ranking runs one day at a time and checks for signals between days)."""
    code = """
        import signal, sys
        import numpy as np
        from sysgym.envs.appointments import AppointmentsVectorEnv
        # 11 + 11 tasks: 705,432 orderings a day, every one walked (short tasks first cost the
        # most, so no subtree is cut).
        vec = AppointmentsVectorEnv(num_envs=32, n_short=11, n_long=11, autoreset_mode="Disabled")
        vec.reset(seed=0)
        for a in [0] * 11 + [1] * 10:
            vec.step(np.full(32, a))
        signal.signal(signal.SIGALRM, lambda *_: signal.raise_signal(signal.SIGINT))
        signal.setitimer(signal.ITIMER_REAL, 0.05)
        try:
            vec.step(np.full(32, 1))
            print("finished")
        except KeyboardInterrupt:
            ranked = int((vec._state["metrics"][:, 8] > 0).sum())
            print("interrupted", ranked)
    """
    out = run_isolated(code, timeout=300).split()
    assert out[0] == "interrupted" and int(out[1]) < 32, out


def test_more_orderings_than_the_limit_need_sampling():
    with pytest.raises(ValueError, match="enumeration_limit"):
        AppointmentsEnv(n_short=16, n_long=16)                 # 601,080,390 orderings
    with pytest.raises(ValueError, match="enumeration_limit"):
        AppointmentsEnv(problem="P3", enumeration_limit=84_083)
    env = AppointmentsEnv(n_short=16, n_long=16, percentile="auto", percentile_samples=500)
    assert env.config.percentile == "sample"
    assert AppointmentsEnv(problem="P3", percentile="auto").config.percentile == "exact"
    obs, info = env.reset(seed=0)
    while True:
        obs, _, terminated, _, info = env.step(int(np.argmax(info["action_mask"])))
        if terminated:
            break
    metrics = info["episode_metrics"]
    assert metrics["orderings"] == 500 and 0.0 <= metrics["percentile_efficacy"] <= 100.0
    off = AppointmentsEnv(percentile="off")
    assert "percentile_efficacy" not in off.metric_names and "cost" in off.metric_names


def test_presets_and_overrides():
    assert build_config(problem="P1").buffer == 0.0 and build_config(problem="P1").n_breaks == 0
    assert build_config(problem="P2").buffer == 15.0
    p3 = build_config(problem="P3")
    assert (p3.n_breaks, p3.num_types, p3.orderings) == (2, 3, 84_084)
    assert build_config(problem="P3", buffer=0.0, n_breaks=1).counts == (6, 6, 1)


@pytest.mark.parametrize("problem", ["P1", "P3"])
@pytest.mark.parametrize("observation", ["boolean", "numeric"])
def test_feature_names_match_the_observation(problem, observation):
    env = gym.make(f"sysgym/Appointments-{problem}-v0", observation=observation)
    obs, _ = env.reset(seed=0)
    names = env.unwrapped.feature_names
    assert len(names) == obs.shape[0] == len(set(names))
    vec = gym.make_vec(f"sysgym/Appointments-{problem}-v0", num_envs=2, vectorization_mode="vector_entry_point",
                       observation=observation)
    assert vec.unwrapped.feature_names == names
    if observation == "boolean":
        assert isinstance(env.observation_space, gym.spaces.MultiBinary)
        assert ("break_available" in names) == (problem == "P3")
    else:
        assert names[:2] == ("short_left", "long_left") and "delay" in names


def test_numeric_observation_stays_in_its_box_at_full_noise():
    env = AppointmentsEnv(problem="P3", observation="numeric", noise=1.0)
    rng = np.random.default_rng(0)
    for seed in range(30):
        obs, info = env.reset(seed=seed)
        while True:
            assert env.observation_space.contains(obs)
            obs, _, terminated, _, info = env.step(int(rng.choice(np.flatnonzero(info["action_mask"]))))
            if terminated:
                assert env.observation_space.contains(obs)
                break


def test_invalid_actions_are_substituted_and_counted_or_raise():
    env = AppointmentsEnv(n_short=1, n_long=2, invalid_weight=2.0)
    env.reset(seed=0)
    _, reward, _, _, info = env.step(0)
    assert not info["invalid_action"] and info["action_mask"].tolist() == [0, 1]
    _, reward, _, _, info = env.step(0)                   # no short left: a long is placed
    assert info["invalid_action"] and info["reward_components"][2] == -1.0
    assert reward == pytest.approx(info["reward_components"][:2].sum() - 2.0)
    assert env.schedule()["type"].tolist() == [0, 1]
    _, _, terminated, _, info = env.step(1)
    assert terminated and info["episode_metrics"]["invalid_actions"] == 1.0
    strict = AppointmentsEnv(n_short=1, n_long=2, invalid_action="raise")
    strict.reset(seed=0)
    strict.step(0)
    snapshot = strict.get_state()
    with pytest.raises(ValueError, match="no short item is left"):
        strict.step(0)
    assert strict.get_state()["arrays"]["k"][0] == snapshot["arrays"]["k"][0] == 1


def test_vector_oracle_and_features_match_the_single_env():
    vec = AppointmentsVectorEnv(3, problem="P2")
    vec.reset(seed=10)
    vec.step(np.array([0, 1, 1]))
    singles = []
    for i, first in enumerate([0, 1, 1]):
        env = AppointmentsEnv(problem="P2")
        env.reset(seed=10 + i)
        env.step(first)
        singles.append(env)
    values = vec.oracle_values(draws=4)
    features = vec.boolean_features()
    for i, env in enumerate(singles):
        np.testing.assert_array_equal(values[i], env.oracle_values(draws=4))
        np.testing.assert_array_equal(features[i], env.boolean_features())
        assert vec.day_state(i) == env.day_state()


def test_same_seed_same_day_noise_and_noise_free_days_are_all_alike():
    a, b = AppointmentsEnv(), AppointmentsEnv()
    a.reset(seed=4)
    b.reset(seed=4)
    assert np.array_equal(a.get_state()["arrays"]["fac"], b.get_state()["arrays"]["fac"])
    factors = a.get_state()["arrays"]["fac"][0]
    assert np.all(np.abs(factors - 1.0) <= 0.05) and len(np.unique(factors)) == 6 + 6
    exact = AppointmentsEnv(noise=0.0)
    for seed in (0, 1):
        exact.reset(seed=seed)
        assert np.all(exact.get_state()["arrays"]["fac"] == 1.0)


def test_renders_draw_the_day():
    env = AppointmentsEnv(problem="P3", render_mode="ansi")
    env.reset(seed=1)
    for a in (1, 0, 2, 1):
        env.step(a)
    text = env.render()
    assert "LLL" in text and "S" in text and "B" in text and "~" in text and "item 4/14" in text
    pictures = []
    for kwargs in ({"problem": "P3"}, {"n_short": 2, "n_long": 1}):
        env = AppointmentsEnv(render_mode="rgb_array", **kwargs)
        env.reset(seed=0)
        blank = env.render()
        env.step(1)
        frame = env.render()
        assert frame.shape == (160 + 2 * 16, 640, 3) and frame.dtype == np.uint8  # chart + 2 caption lines
        assert not np.array_equal(frame, blank)
        assert (frame == np.array([237, 125, 49], dtype=np.uint8)).all(axis=2).any()    # a long task
        pictures.append(frame)


EDITS = [
    ("k", "arrays['k'][0] = 99", "'k'"),
    ("k-", "arrays['k'][0] = -1", "'k'"),
    ("rem", "arrays['rem'][0, 0] = 7", "'rem'"),
    ("rem-sum", "arrays['rem'][0, 0] = 4", "'rem'"),
    ("seq", "arrays['seq'][0, 1] = 5", "'seq'"),
    ("seq-gap", "arrays['seq'][0, 3] = 1", "'seq'"),
    ("prev", "arrays['prev'][0] = 7", "'prev'"),
    ("prev-mismatch", "arrays['prev'][0] = 1 - arrays['prev'][0]", "'prev'"),
    ("fac", "arrays['fac'][0, 0, 2] = 5.0", "'fac'"),
    ("end-nan", "arrays['end'][0] = float('nan')", "'end'"),
    ("idle", "arrays['idle'][0] = -3.0", "'idle'"),
    ("perc-rng", "arrays['perc_rng'][0] = 0", "'perc_rng'"),
    ("obs", "arrays['obs'][0, 0] = 3", "'obs'"),
    ("mask", "arrays['action_mask'][0, 1] = 2", "'action_mask'"),
]


def test_edited_snapshots_are_refused_in_a_subprocess():
    """Each edit must raise a ValueError naming the array (run apart: a crash fails, not aborts)."""
    cases = repr([(name, edit) for name, edit, _ in EDITS])
    code = (
        "import numpy as np\n"
        "from sysgym.envs.appointments import AppointmentsEnv\n"
        f"for name, edit in {cases}:\n"
        "    env = AppointmentsEnv(problem='P3')\n"
        "    env.reset(seed=0)\n"
        "    env.step(0); env.step(1)\n"
        "    state = env.get_state(); arrays = state['arrays']\n"
        "    exec(edit)\n"
        "    try:\n"
        "        env.set_state(state)\n"
        "        print(name, 'ACCEPTED')\n"
        "    except ValueError as e:\n"
        "        print(name, 'REFUSED', str(e).replace(chr(10), ' '))\n"
        "    env.step(0)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = dict(line.split(" ", 1) for line in out.stdout.strip().splitlines())
    for name, _, word in EDITS:
        assert lines[name].startswith("REFUSED") and word in lines[name], (name, lines[name])


def test_a_restored_snapshot_replays_the_day():
    env = AppointmentsEnv(problem="P3")
    env.reset(seed=2)
    env.step(1)
    snapshot = env.get_state()
    first = [env.step(a)[1] for a in (0, 2, 1, 0)]
    env.set_state(snapshot)
    assert [env.step(a)[1] for a in (0, 2, 1, 0)] == first
