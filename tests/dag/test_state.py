"""DAG snapshots, threads and kernel loop bounds: no edited snapshot, second thread or corrupted
array can crash or hang the process. Anything that could crash runs in a subprocess."""

from __future__ import annotations

import json
import pickle
import re
import textwrap

import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

from sysgym.envs.dag import DAGVectorEnv, make_task
from tests.contract import assert_same, sample_actions
from tests.isolation import run_isolated

FIXTURE = make_task([1, 3, 2, 2, 2, 2, 1], [(0, 1), (0, 2), (0, 3), (1, 4), (2, 5), (3, 5), (4, 6), (5, 6)], 8,
                    name="fixture")

# ---------------------------------------------------------------- valid snapshots are accepted
@pytest.mark.parametrize("kwargs", [
    {"num_nodes": (8, 14)},
    {"workload": "forkjoin", "num_nodes": (6, 20), "observation": "flat"},
    {"workload": [FIXTURE, make_task([1, 2, 3, 1], [(0, 1)], 9)], "processors": 2},
    {"num_nodes": (60, 70), "max_nodes": 130, "max_steps": 30},  # several 64-bit words per node set
], ids=["layered", "forkjoin-flat", "taskset", "multiword"])
def test_every_reachable_state_round_trips_and_forks_identically(kwargs):
    """Never-reset, running and ended (needs_reset) sub-envs all pass the checks, and a fork
    continues exactly as the original."""
    vec = DAGVectorEnv(4, **kwargs)
    vec.set_state(vec.get_state())                              # never reset: blank sub-envs
    partial = DAGVectorEnv(4, autoreset_mode=AutoresetMode.DISABLED, **kwargs)
    partial.reset(seed=0, options={"reset_mask": np.array([True, False, True, False])})
    partial.set_state(pickle.loads(pickle.dumps(partial.get_state())))
    rng = np.random.default_rng(0)
    _, infos = vec.reset(seed=1)
    ended = 0
    for step in range(80):
        _, _, terminated, truncated, infos = vec.step(sample_actions(vec, infos, rng))
        ended += int(np.sum(terminated | truncated))
        vec.set_state(pickle.loads(pickle.dumps(vec.get_state())))
        if step == 5:
            fork = vec.get_state()
            actions = [sample_actions(vec, infos, np.random.default_rng(1))]
            first = [vec.step(actions[0])]
            for _ in range(8):
                actions.append(sample_actions(vec, first[-1][4], rng))
                first.append(vec.step(actions[-1]))
            vec.set_state(fork)
            assert_same([vec.step(a) for a in actions], first)
            infos = first[-1][4]
    assert ended > 0


# ---------------------------------------------------------------- edited snapshots are refused
EDITS = textwrap.dedent('''
    import json, pickle, sys
    import numpy as np
    from sysgym.envs.dag import DAGEnv, DAGVectorEnv, make_task

    FIXTURE = make_task([1, 3, 2, 2, 2, 2, 1],
                        [(0, 1), (0, 2), (0, 3), (1, 4), (2, 5), (3, 5), (4, 6), (5, 6)], 8)
    results = {}

    def bit(arr, b, u, v):
        arr[b, u, v // 64] |= np.uint64(1) << np.uint64(v % 64)

    def attempt(name, env, edit):
        state = pickle.loads(pickle.dumps(env.get_state()))
        before = pickle.dumps(env.get_state())
        edit(state["arrays"])
        try:
            env.set_state(state)
            results[name] = "accepted"
        except ValueError as err:
            results[name] = "ValueError: " + str(err)
        except Exception as err:
            results[name] = f"{type(err).__name__}: {err}"
        assert pickle.dumps(env.get_state()) == before, name + " changed the env"

    gen = DAGEnv(num_nodes=(10, 12), max_nodes=70)
    _, info = gen.reset(seed=4)
    gen.step(int(np.flatnonzero(info["action_mask"])[0]))
    n = int(gen.get_state()["arrays"]["n"][0])
    tasks = DAGEnv(workload=[FIXTURE, FIXTURE])
    tasks.reset(seed=0)
    N = 70

    def set_(key, value, index=(0,)):
        def edit(a):
            a[key][index] = value
        return edit

    def matched_left(a):
        u = int(np.flatnonzero(a["mate_l"][0] >= 0)[0])
        return u, int(a["mate_l"][0, u])

    def swap_mates(a):                      # u matched to r, but r's mate is someone else
        u, r = matched_left(a)
        a["mate_r"][0, r] = (u + 1) % n

    def cycle(a):                           # an added edge closing a cycle v -> u over u ~> v
        desc = np.unpackbits(a["desc"][0].view(np.uint8), axis=-1, bitorder="little")[:, :N]
        u, v = (int(x) for x in np.argwhere(desc)[0])
        bit(a["added"], 0, v, u)
        a["edges_added"][0] += 1
        a["steps"][0] += 1

    def redundant(a):                       # an added edge that is already a task edge
        adj = np.unpackbits(a["adj"][0].view(np.uint8), axis=-1, bitorder="little")[:, :N]
        u, v = (int(x) for x in np.argwhere(adj)[0])
        bit(a["added"], 0, u, v)
        a["edges_added"][0] += 1
        a["steps"][0] += 1

    def lateral_pair_outside(a):            # a pair in node k's matching with an end comparable to k
        desc = np.unpackbits(a["desc"][0].view(np.uint8), axis=-1, bitorder="little")[:, :N]
        u, v = (int(x) for x in np.argwhere(desc)[0])
        k = u
        a["lat_l"][0, k, u] = v
        a["lat_r"][0, k, v] = u

    def unmask_invalid(a):
        bad = int(np.flatnonzero(a["action_mask"][0] == 0)[1])
        a["action_mask"][0, bad] = 1
        a["obs:action_mask"][0, bad] = 1

    def obs_in_space_but_wrong(a):
        a["obs:nodes"][0, 0, 0] = 0.5 if a["obs:nodes"][0, 0, 0] != 0.5 else 0.25

    cases = {
        "n huge": set_("n", 10**6), "n negative": set_("n", -1), "n above max_nodes": set_("n", N + 1),
        "n other": set_("n", n + 1), "never reset but running": set_("n", 0),
        "deadline zero": set_("deadline", 0), "deadline huge": set_("deadline", 2**62),
        "wcet 2^58": set_("wcet", 2**58, (0, 0)), "wcet negative": set_("wcet", -3, (0, 1)),
        "wcet in padding": set_("wcet", 1, (0, n)), "task index": set_("task", 3),
        "desc bit beyond n": lambda a: bit(a["desc"], 0, 0, n),
        "desc bit beyond max_nodes": lambda a: bit(a["desc"], 0, 0, N + 3),
        "anc row beyond n": lambda a: bit(a["anc"], 0, n + 1, 0),
        "adj bit beyond n": lambda a: bit(a["adj"], 0, 1, n + 2),
        "crit bit beyond n": lambda a: a["crit"].__setitem__((0, 0), a["crit"][0, 0] | np.uint64(1 << n)),
        "added cycle": cycle, "added duplicate": redundant,
        "edges_added": set_("edges_added", 5), "steps negative": set_("steps", -1),
        "steps beyond max": set_("steps", N * N + 1), "invalid count": set_("invalid", 7),
        "redraws": set_("redraws", 10**6),
        "mate out of range": set_("mate_l", N + 5, (0, 0)), "mate huge": set_("mate_r", 2**31 - 1, (0, 1)),
        "mate beyond n": set_("mate_l", n, (0, 0)), "mate below -1": set_("mate_l", -2, (0, 0)),
        "mates not mutual": swap_mates, "lat out of range": set_("lat_l", N, (0, 1, 2)),
        "lat row beyond n": set_("lat_r", 0, (0, n, 1)), "lat pair outside its set": lateral_pair_outside,
        "est": set_("est", 1, (0, 0)), "lft": set_("lft", 10**6, (0, 0)), "width": set_("width", 1),
        "lateral": set_("lateral", 5, (0, 0)), "lower bound": set_("lower_bound", 1),
        "initial width": set_("initial_width", 0), "length": set_("length", 0),
        "mask opens an invalid edge": unmask_invalid, "observation": obs_in_space_but_wrong,
        "ended but running": set_("terminated", 1), "reward component": set_("reward_components", 5.0, (0, 1)),
    }
    for name, edit in cases.items():
        attempt(name, gen, edit)
    for name, edit in {"taskset task -5": set_("task", -5), "taskset task 9": set_("task", 9),
                       "taskset deadline": set_("deadline", 9), "taskset wcet": set_("wcet", 2, (0, 0)),
                       "taskset n": set_("n", 6)}.items():
        attempt(name, tasks, edit)
    other = DAGEnv(workload=[make_task([1, 3, 2, 2, 2, 2, 2], list(FIXTURE.edges), 9)] * 2)
    other.reset(seed=0)
    try:
        tasks.set_state(other.get_state())
        results["other task set, same shapes"] = "accepted"
    except ValueError as err:
        results["other task set, same shapes"] = "ValueError: " + str(err)
    _, info = gen.reset(seed=5)
    gen.step(int(np.flatnonzero(info["action_mask"])[0]))   # still works
    gen.set_state(gen.get_state())
    print(json.dumps(results))
''')

EXPECTED = {
    "n huge": r"'n'\[0\] = .*1000000.* is outside \[0, 70\]", "n negative": r"'n'\[0\] = .*-1",
    "n above max_nodes": r"'n'\[0\] = .*71", "n other": "'wcet'|does not match", "never reset but running": "never reset",
    "deadline zero": "'deadline'", "deadline huge": "'deadline'", "wcet 2^58": "'wcet'", "wcet negative": "'wcet'",
    "wcet in padding": "'wcet'", "task index": "'task'", "desc bit beyond n": "'desc' of sub-env 0: row 0 has bits",
    "desc bit beyond max_nodes": "'desc'", "anc row beyond n": "'anc'", "adj bit beyond n": "'adj'",
    "crit bit beyond n": "'crit'", "added cycle": "form a cycle", "added duplicate": "also an edge of the task",
    "edges_added": "'edges_added'", "steps negative": "'steps'", "steps beyond max": "'steps'",
    "invalid count": "'invalid'|'steps'", "redraws": "'redraws'", "mate out of range": "'mate_l'",
    "mate huge": "'mate_r'", "mate beyond n": "'mate_l'", "mate below -1": "'mate_l'",
    "mates not mutual": "'mate_l'|'mate_r'", "lat out of range": "'lat_l'", "lat row beyond n": "'lat_r'",
    "lat pair outside its set": "'lat_l'", "est": "'est'", "lft": "'lft'", "width": "'width'",
    "lateral": "'lateral'", "lower bound": "'lower_bound'", "initial width": "'initial_width'",
    "length": "'length'", "mask opens an invalid edge": "'action_mask'|'obs:action_mask'",
    "observation": "'obs:nodes'", "ended but running": "'terminated'",
    "reward component": "'reward_components'", "taskset task -5": "'task'", "taskset task 9": "'task'",
    "taskset deadline": "'deadline'", "taskset wcet": "'wcet'", "taskset n": "'n'",
    "other task set, same shapes": "another configuration",
}


def test_edited_snapshots_are_refused_with_the_array_named():
    results = json.loads(run_isolated(EDITS).strip().splitlines()[-1])
    assert set(results) == set(EXPECTED)
    for name, pattern in EXPECTED.items():
        assert results[name].startswith("ValueError: snapshot"), (name, results[name])
        assert re.search(pattern, results[name]), (name, results[name])


# ---------------------------------------------------------------- threads
THREADS = textwrap.dedent('''
    import sys, threading, time
    import numpy as np
    from sysgym.envs.dag import DAGEnv, DAGVectorEnv

    vec = DAGVectorEnv(48, num_nodes=(60, 60))
    _, infos = vec.reset(seed=0)
    masks = [infos["action_mask"]]
    errors, steps = [], [0, 0]
    start = threading.Barrier(2)

    def work(k):
        rng = np.random.default_rng(k)
        start.wait()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not errors:
            actions = np.argmax(rng.random(masks[0].shape) * masks[0], axis=1)
            try:
                _, _, _, _, info = vec.step(actions)
            except RuntimeError as err:
                errors.append(str(err))
                return
            masks[0] = info["action_mask"]
            steps[k] += 1

    threads = [threading.Thread(target=work, args=(k,), daemon=True) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not any(t.is_alive() for t in threads), "a thread is still running"
    assert errors and "another thread" in errors[0], errors
    vec.set_state(vec.get_state())          # the state was not corrupted by the attempt
    hold = threading.Event()
    original = DAGVectorEnv._kernel_step
    def slow_step(self, active):
        hold.set()
        time.sleep(0.3)
        original(self, active)
    # the single env binds what _single_kernel_step gives when it is built
    DAGVectorEnv._single_kernel_step = lambda self: (lambda active: slow_step(self, active))
    single = DAGEnv(num_nodes=(60, 60))
    _, info = single.reset(seed=0)
    first = threading.Thread(target=single.step, args=(int(np.flatnonzero(info["action_mask"])[0]),))
    first.start()
    hold.wait(10)
    try:
        single.unwrapped.edge_outcomes()
        sys.exit("edge_outcomes ran while another thread was stepping")
    except RuntimeError as err:
        assert "another thread" in str(err)
    first.join(10)
    print("ok", steps)
''')


def test_two_threads_stepping_one_env_get_a_runtime_error_not_a_hang():
    assert run_isolated(THREADS, timeout=90).startswith("ok")


# ---------------------------------------------------------------- kernel loops are bounded
KERNEL_GARBAGE = textwrap.dedent('''
    import sys
    import numpy as np
    from hypothesis import HealthCheck, given, settings, strategies as st
    from sysgym.cython_core.dag import DAGKernel
    from sysgym.envs.dag import DAGVectorEnv
    from sysgym.envs.dag.config import kernel_config
    from sysgym.envs.dag.state import kernel_buffers

    @settings(max_examples=int(sys.argv[1]), deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(seed=st.integers(0, 2**32 - 1), N=st.sampled_from([3, 9, 64, 70]), density=st.floats(0, 1))
    def garbage(seed, N, density):
        """Arrays the set_state checks would refuse but that respect the kernel's memory bounds
        (n <= N, node indices < N, no bits >= N, D >= 1): every call must return."""
        rng = np.random.default_rng(seed)
        env = DAGVectorEnv(1, num_nodes=(2, N) if N > 2 else 2, max_nodes=N)
        cfg = env.config
        b = 4
        s = kernel_buffers(cfg, b)
        w = cfg.words
        s["n"][:] = rng.integers(0, N + 1, size=b)
        s["deadline"][:] = rng.integers(1, 50, size=b)
        s["wcet"][:] = rng.integers(0, 20, size=(b, N))
        for key in ("adj", "added", "desc", "anc"):
            bits = rng.random((b, N, 64 * w)) < density
            bits[:, :, N:] = False
            s[key][:] = np.packbits(bits, axis=-1, bitorder="little").view(np.uint64)
        crit = rng.random((b, 64 * w)) < density
        crit[:, N:] = False
        s["crit"][:] = np.packbits(crit, axis=-1, bitorder="little").view(np.uint64)
        for key in ("mate_l", "mate_r", "lat_l", "lat_r"):
            s[key][:] = rng.integers(-1, N, size=s[key].shape)
        for key in ("width", "lateral", "lower_bound", "length", "steps", "est", "lft"):
            s[key][:] = rng.integers(-5, 2 * N, size=s[key].shape)
        s["actions"][:] = rng.integers(0, N * N, size=b)
        kernel = DAGKernel(kernel_config(cfg, b), s, None)
        kernel.step(np.ones(b, dtype=np.uint8))
        kernel.step(np.ones(b, dtype=np.uint8))
        for i in range(b):
            width = np.empty(N * N, dtype=np.int64)
            kernel.edge_outcomes(i, np.ones(N * N, dtype=np.int8), width, width.copy())
            kernel.processors_of(i, np.zeros(N, dtype=np.int64))
            kernel.done(i)

    garbage()
    print("ok")
''')


def test_kernel_loops_end_on_any_in_bounds_garbage():
    """The matching's augmenting-path search, the chain walk, closure updates and mask scans are
    bounded by N whatever the arrays hold (a race or a bug cannot make them spin)."""
    assert run_isolated(KERNEL_GARBAGE, "150", timeout=120).strip().endswith("ok")


# ---------------------------------------------------------------- random snapshots
SNAPSHOT_FUZZ = textwrap.dedent('''
    import pickle, sys
    import numpy as np
    from hypothesis import HealthCheck, given, settings, strategies as st
    from sysgym.envs.dag import DAGEnv

    env = DAGEnv(num_nodes=(6, 12), max_nodes=66, observation=sys.argv[2])
    _, info = env.reset(seed=0)
    rng = np.random.default_rng(0)
    for _ in range(3):
        _, _, term, _, info = env.step(int(rng.choice(np.flatnonzero(info["action_mask"]))))
    base = env.get_state()
    n = int(base["arrays"]["n"][0])
    family = ["n", "deadline", "task", "width", "length", "lower_bound", "initial_width", "initial_length",
              "steps", "edges_added", "invalid", "redraws", "wcet", "est", "lft", "lateral", "adj", "added",
              "desc", "anc", "crit", "mate_l", "mate_r", "lat_l", "lat_r", "needs_reset", "terminated"]
    values = [0, 1, -1, 2, n - 1, n, n + 1, 65, 66, 67, 2**31 - 1, -2**31, 2**53, 2**53 + 1, 2**62, 2**63 - 1]

    @settings(max_examples=int(sys.argv[1]), deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(st.data())
    def fuzz(data):
        state = pickle.loads(pickle.dumps(base))
        for _ in range(data.draw(st.integers(1, 4))):
            name = data.draw(st.sampled_from(family))
            flat = state["arrays"][name].reshape(-1)
            k = data.draw(st.integers(0, flat.size - 1))
            if flat.dtype == np.uint64:                     # flip one bit of a bitset word
                flat[k] ^= np.uint64(1) << np.uint64(data.draw(st.integers(0, 63)))
            else:
                value = data.draw(st.sampled_from(values))
                info = np.iinfo(flat.dtype)
                if info.min <= value <= info.max:
                    flat[k] = value
        try:
            env.set_state(state)
        except ValueError:
            return
        arrays = env.get_state()["arrays"]
        env.set_state(env.get_state())
        if arrays["needs_reset"][0]:
            _, step_info = env.reset()
        else:
            step_info = {"action_mask": arrays["action_mask"][0]}
        for _ in range(30):
            action = int(rng.choice(np.flatnonzero(step_info["action_mask"])))
            obs, reward, term, trunc, step_info = env.step(action)
            assert np.isfinite(reward) and env.observation_space.contains(obs)
            if term or trunc:
                break

    fuzz()
    print("ok")
''')


@pytest.mark.parametrize("observation", ["dict", "flat"])
def test_random_snapshots_are_refused_or_valid(observation):
    assert run_isolated(SNAPSHOT_FUZZ, "120", observation, timeout=180).strip().endswith("ok")
