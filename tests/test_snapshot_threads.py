"""Snapshots taken while another thread steps the env (issue #20, item 4).

``get_state`` reads the same arrays a ``nogil`` kernel writes. Called while another thread is
inside ``step`` it must raise the guard's error, never return a torn mixture of two steps, and a
snapshot it returns (and seals) must be a state the env really was in between two steps.
"""

from __future__ import annotations

import pickle

import gymnasium as gym
import pytest

import sysgym
from tests.contract import assert_same
from tests.isolation import run_isolated

IDS = [e.id for e in sysgym.ENVIRONMENTS]

TORN = '''
    import hashlib, threading, time
    import numpy as np
    from sysgym.envs import snapshot
    from sysgym.envs.dag import DAGVectorEnv

    B, T, PAUSE_EVERY = 64, 120, 15

    def digest(arrays):
        h = hashlib.sha256()
        for key in sorted(arrays):
            h.update(key.encode())
            h.update(np.ascontiguousarray(arrays[key]).tobytes())
        return h.hexdigest()

    def policy(infos):
        return np.argmax(infos["action_mask"], axis=1)   # first valid edge: a deterministic run

    # the quiet run: the state between every two steps, in order
    quiet_env = DAGVectorEnv(B)
    _, infos = quiet_env.reset(seed=0)
    quiet = []
    for _ in range(T + 1):
        quiet.append(digest(quiet_env.get_state()["arrays"]))
        _, _, _, _, infos = quiet_env.step(policy(infos))
    position = {d: t for t, d in enumerate(quiet)}
    assert len(position) == len(quiet), "two step boundaries with one state: the check would be blind"

    # the same run stepped by a second thread while this one calls get_state
    env = DAGVectorEnv(B)
    _, first_infos = env.reset(seed=0)
    pause, resume, done = threading.Event(), threading.Event(), threading.Event()

    def stepper():
        infos = first_infos
        for t in range(T):
            if t % PAUSE_EVERY == 0:         # a window in which a snapshot must succeed
                pause.set()
                resume.wait(10)
                resume.clear()
            while True:
                try:
                    _, _, _, _, infos = env.step(policy(infos))
                    break
                except RuntimeError as err:  # get_state held the env: the step did not happen
                    assert "another thread" in str(err), err
        done.set()

    thread = threading.Thread(target=stepper, daemon=True)
    thread.start()
    taken, refused = [], 0
    deadline = time.monotonic() + 60
    while not done.is_set() and time.monotonic() < deadline:
        if pause.is_set():
            taken.append(env.get_state())
            pause.clear()
            resume.set()
            continue
        try:
            taken.append(env.get_state())
        except RuntimeError as err:
            assert "another thread" in str(err), err
            refused += 1
    thread.join(10)
    assert not thread.is_alive(), "the stepping thread did not finish"

    torn = [s for s in taken if digest(s["arrays"]) not in position]
    sealed_torn = sum(snapshot.is_sealed(s) for s in torn)
    assert not torn, (f"{len(torn)} of {len(taken)} snapshots are no state the env was in between two steps, "
                      f"{sealed_torn} of them sealed (so set_state would trust them unchecked)")
    assert all(snapshot.is_sealed(s) for s in taken)

    # a snapshot taken under fire restores (fully checked, without its seal) and continues as the quiet run
    for state in taken[:: max(1, len(taken) // 3)][:3]:
        t = position[digest(state["arrays"])]
        if t + 3 > T:
            continue
        fresh = DAGVectorEnv(B)
        fresh.set_state({k: v for k, v in state.items() if k != "seal"})
        infos = {"action_mask": state["arrays"]["action_mask"]}
        for k in range(1, 4):
            _, _, _, _, infos = fresh.step(policy(infos))
            assert digest(fresh.get_state()["arrays"]) == quiet[t + k], (t, k)
    print("ok", len(taken), refused)
'''


def test_get_state_while_another_thread_steps_is_refused_or_whole():
    """DAG, B=64: every snapshot taken while a second thread steps is either the guard's
    RuntimeError or exactly a state of the same run taken quietly (and then it restores and
    continues identically); no torn snapshot carries a seal. In a subprocess: threads."""
    out = run_isolated(TORN, timeout=120)
    assert out.startswith("ok"), out


@pytest.fixture(params=IDS)
def env_id(request):
    return request.param


def test_get_state_inside_another_threads_step_raises(env_id):
    """As if another thread were inside ``step``: the single and the vector env refuse to read
    their state, for a snapshot or for a pickle (which unpickling would trust unchecked)."""
    env = gym.make(env_id).unwrapped
    env.reset(seed=0)
    vec = gym.make_vec(env_id, num_envs=2, vectorization_mode="vector_entry_point").unwrapped
    vec.reset(seed=0)
    for target, guard in ((env, env.batched._guard), (vec, vec._guard)):
        with guard:
            with pytest.raises(RuntimeError, match="another thread"):
                target.get_state()
            with pytest.raises(RuntimeError, match="another thread"):
                pickle.dumps(target)
        target.set_state(target.get_state())  # released again
        assert_same(pickle.loads(pickle.dumps(target)).get_state()["arrays"], target.get_state()["arrays"])


def test_pettingzoo_get_state_inside_another_threads_step_raises():
    from sysgym.envs.cc import parallel_env

    env = parallel_env(n_flows=2)
    env.reset(seed=0)
    with env._guard:
        with pytest.raises(RuntimeError, match="another thread"):
            env.get_state()
        with pytest.raises(RuntimeError, match="another thread"):
            pickle.dumps(env)
    env.set_state(env.get_state())
    assert_same(pickle.loads(pickle.dumps(env)).get_state()["arrays"], env.get_state()["arrays"])
