"""CrystalBox latency (the paper's section 7.3: < 10 ms per explanation vs 50-250 ms for sampling)
and the cost of collecting its training data.

* **Predictor**: one explanation query = the predicted returns of every action of one state
  (``explain(box, (obs, info))``: features, one forward pass, the Explanation), median and 95th
  percentile over ``--queries`` states (wall clock, and the thread's CPU time, which a busy
  machine does not inflate), torch on one thread; and batched, per state, for 256 states at once
  (``CrystalBox.predict``).
* **Samplers**: one query = every action of one state, ``--rollouts`` forked rollouts each with a
  replaced future input, in a one-sub-env vector env; batched = 64 states in one vector env, per
  state.
* **Collection**: 10,000 factual + counterfactual samples (queries) on ABR with a 256-sub-env
  vector env (target: < 60 s).

``python -m benchmarks.crystalbox_latency [--quick] [--queries N] [--rollouts N] [--samples N]``
"""

from __future__ import annotations

import argparse
import math
import time

import gymnasium as gym
import numpy as np
import torch

import sysgym  # noqa: F401
from sysgym.agents.crystalbox import (
    ActionQueries,
    CrystalBox,
    DistributionAwareSampler,
    FutureInputs,
    NaiveSampler,
    collect,
    explain,
)
from sysgym.agents.crystalbox.forking import Forker
from sysgym.agents.heuristics import heuristics_for
from sysgym.bench import format_table

SETUPS = [("sysgym/ABR-v0", {"traces": "train"}, "robust_mpc"), ("sysgym/ABR-v0", {"traces": "train"}, "ppo"),
          ("sysgym/CC-v0", {"traces": "synthetic", "link_set": "train"}, "aimd")]


def ppo_policy(env_id: str) -> object:
    """An untrained PPO policy (latency does not depend on the weights)."""
    from sysgym.agents.ppo import ActorCritic, PPOPolicy, default_config
    from sysgym.agents.ppo.observations import ObservationAdapter

    env = gym.make(env_id)
    return PPOPolicy(ActorCritic(env.observation_space, env.action_space, default_config(env_id)),
                     ObservationAdapter(env.observation_space))


def policy_for(env_id: str, name: str) -> object:
    return ppo_policy(env_id) if name == "ppo" else heuristics_for(env_id)[name]


def visited_states(env_id: str, kwargs: dict, policy: object, count: int) -> list[tuple]:
    """``count`` (obs, info) pairs of one sub-env playing the policy."""
    vec = gym.make_vec(env_id, num_envs=1, vectorization_mode="vector_entry_point", autoreset_mode="Disabled",
                       **kwargs)
    pi = policy(vec) if isinstance(policy, type) else policy
    obs, info = vec.reset(seed=1)
    out = []
    while len(out) < count:
        out.append((obs[0], {k: v[0] for k, v in info.items() if k == "action_mask"}))
        obs, _, terminated, truncated, info = vec.step(pi.act(obs, info))
        if terminated[0] or truncated[0]:
            obs, info = vec.reset(options={"reset_mask": terminated | truncated})
    return out


def predictor_latency(env_id: str, kwargs: dict, name: str, queries: int) -> list[str]:
    policy = policy_for(env_id, name)
    box, _ = CrystalBox.fit(policy, env_id, env_kwargs=kwargs, states=64, num_envs=16, predictor={"epochs": 1})
    states = visited_states(env_id, kwargs, policy, queries)
    for state in states[:20]:            # warm up
        explain(box, state)
    times, cpu = [], []
    for state in states:
        start, start_cpu = time.perf_counter(), time.thread_time()
        explain(box, state)
        times.append(time.perf_counter() - start)
        cpu.append(time.thread_time() - start_cpu)
    actions = box.queries.every_action(None)
    x = np.concatenate([box.inputs(s[0], batched=False) for s in states[:256]])
    rows = np.repeat(x, len(actions), axis=0)
    acts = np.tile(actions, (len(x),) + (1,) * (actions.ndim - 1))
    start = time.perf_counter()
    for _ in range(5):
        box.predict(rows, acts)
    batched = (time.perf_counter() - start) / 5 / len(x)
    ms, cpu_ms = np.array(times) * 1e3, np.array(cpu) * 1e3
    return [f"{env_id} {name}", "CrystalBox", str(len(actions)), f"{np.median(ms):.2f}", f"{np.percentile(ms, 95):.2f}",
            f"{np.percentile(cpu_ms, 95):.2f}", f"{batched * 1e3:.3f}"]


def sampler_latency(env_id: str, kwargs: dict, name: str, rollouts: int, queries: int) -> list[list[str]]:
    policy = policy_for(env_id, name)
    rows = []
    for label in ("naive", "distribution-aware"):
        timings = {}
        for b in (1, 64):
            vec = gym.make_vec(env_id, num_envs=b, vectorization_mode="vector_entry_point",
                               autoreset_mode="Disabled", **kwargs)
            pi = policy(vec) if isinstance(policy, type) else policy
            inputs = FutureInputs.from_env(vec)
            sampler = (NaiveSampler(inputs, rollouts=rollouts) if label == "naive"
                       else DistributionAwareSampler(inputs, rollouts=rollouts))
            queries_ = ActionQueries(vec.single_action_space)
            forker = Forker(vec, 5, 0.95)
            obs, info = vec.reset(seed=2)
            history = np.full((b, 8), 1.0)
            spent, done = 0.0, 0
            for q in range(queries if b == 1 else max(2, queries // 10)):
                for _ in range(3):
                    action = np.asarray(pi.act(obs, info))
                    obs, _, terminated, truncated, info = vec.step(action)
                    if (terminated | truncated).any():
                        obs, info = vec.reset(options={"reset_mask": terminated | truncated})
                action = np.asarray(pi.act(obs, info))
                rounds = queries_.rounds(action, info.get("action_mask"), np.random.default_rng(q))
                snapshot = vec.get_state()
                start = time.perf_counter()
                sampler.estimate(forker, snapshot, pi, [a for a, _ in rounds], np.ones(b, dtype=bool), history)
                spent += time.perf_counter() - start
                done += b
                forker.restore(snapshot)
            timings[b] = spent / done * 1e3
        n_actions = len(ActionQueries(vec.single_action_space).every_action(None))
        rows.append([f"{env_id} {name}", f"{label} ({rollouts} rollouts)", str(n_actions),
                     f"{timings[1]:.1f}", "", "", f"{timings[64]:.2f}"])
    return rows


def collection_speed(samples: int) -> list[list[str]]:
    rows = []
    for name in ("bb", "robust_mpc", "ppo"):
        policy = policy_for("sysgym/ABR-v0", name)
        states = math.ceil(samples / 6)
        start = time.perf_counter()
        s = collect(policy, "sysgym/ABR-v0", states=states, num_envs=256, seed=0)
        seconds = time.perf_counter() - start
        rows.append([name, str(len(s)), str(s.num_states), f"{seconds:.1f}", f"{len(s) / seconds:,.0f}",
                     f"{s.info['fork_steps'] / seconds:,.0f}"])
    return rows


def main(quick_mode: bool = False, argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--queries", type=int, default=500, help="single queries timed per method")
    parser.add_argument("--rollouts", type=int, default=10, help="rollouts per sampler estimate")
    parser.add_argument("--samples", type=int, default=10_000, help="queries collected for the speed test")
    args = parser.parse_args(argv if argv is not None else (["--quick"] if quick_mode else None))
    if args.quick:
        args.queries, args.rollouts, args.samples = 50, 3, 1000
    torch.set_num_threads(1)
    rows = []
    for env_id, kwargs, name in SETUPS:
        rows.append(predictor_latency(env_id, kwargs, name, args.queries))
        rows += sampler_latency(env_id, kwargs, name, args.rollouts, max(5, args.queries // 25))
    print(format_table(rows, ["env, policy", "method", "actions", "one query: median ms", "p95 ms",
                              "p95 CPU ms", "batched: ms per state"]))
    print()
    print(format_table(collection_speed(args.samples),
                       ["ABR policy", "queries (factual + counterfactual)", "states", "seconds", "queries/s",
                        "fork env-steps/s"]))


if __name__ == "__main__":
    main()
