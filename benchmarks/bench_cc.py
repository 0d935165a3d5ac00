"""Congestion control (CC): kernel throughput in MI-steps/s and the baselines on the test links.

Throughput: ``CC-v0`` with the default link ranges (bandwidth 100-500 packets/s, delay 0.05-0.5 s,
queue 2-3000 packets, loss 0-5%) and uniformly random actions, through the public API
(``gymnasium.make`` and the native vector env). Wall-clock steps/s depend on what else runs on the
machine; the CPU column divides by the CPU time of the stepping thread instead.

Baselines: each heuristic runs one 400-MI episode on every link of the test set (``link_set="test"``,
reset option ``link_index``), alone (``CC-v0``) and as 2 or 4 identical flows sharing the link
(``sysgym.envs.cc.parallel_env``). Reward and components are means per monitor interval and flow,
in the reward's units: throughput packets/s, latency s, loss fraction; reward = 10 thr - 1000 lat
- 2000 loss (Aurora, Jay et al. ICML'19).
"""

from __future__ import annotations

import time

import gymnasium as gym
import numpy as np

from sysgym.agents.heuristics.cc import HEURISTICS
from sysgym.bench import format_table, human
from sysgym.envs.cc import CCVectorEnv, parallel_env

ENV_ID = "sysgym/CC-v0"
ORDER = ("fixed", "aimd", "delay", "oracle")


def _steps_per_second(num_envs: int, calls: int) -> tuple[float, float]:
    """(wall, CPU) MI-steps/s of ``calls`` steps with pre-drawn random actions; B=0 is gym.make."""
    if num_envs == 0:
        env = gym.make(ENV_ID)
        env.reset(seed=0)
        actions = np.random.default_rng(0).uniform(-1, 1, (calls, 1)).astype(np.float32)
        step, per_call = env.step, 1
    else:
        env = gym.make_vec(ENV_ID, num_envs=num_envs, vectorization_mode="vector_entry_point")
        env.reset(seed=0)
        actions = np.random.default_rng(0).uniform(-1, 1, (calls, num_envs, 1)).astype(np.float32)
        step, per_call = env.step, num_envs
    wall, cpu = time.perf_counter(), time.thread_time()
    for a in actions:  # single env: truncated episodes simply restart below
        out = step(a)
        if num_envs == 0 and out[3]:
            env.reset()
    wall, cpu = time.perf_counter() - wall, time.thread_time() - cpu
    env.close()
    return calls * per_call / wall, calls * per_call / cpu


def throughput(quick: bool) -> None:
    rows = []
    for label, num_envs, calls in (("gym.make (single)", 0, 2000 if quick else 20000),
                                   ("native vector, B=64", 64, 40 if quick else 400),
                                   ("native vector, B=256", 256, 12 if quick else 120)):
        wall, cpu = _steps_per_second(num_envs, calls)
        rows.append([label, max(num_envs, 1), calls * max(num_envs, 1), human(wall), human(cpu)])
    print(format_table(rows, ["CC-v0, random actions", "envs", "MI-steps", "MI-steps/s (wall)",
                              "MI-steps/s (CPU)"]))
    print("\n(one core; CPU = time of the stepping thread, so other load on the machine does not count. "
          "PCC-RL's Aurora simulator on the same links: python -m benchmarks.peers)\n")


def _single_flow(name: str, links: int) -> dict[str, float]:
    """One episode per test link, all links as one native vector env."""
    vec = CCVectorEnv(links, autoreset_mode="Disabled", link_set="test")
    policy = HEURISTICS[name](vec)
    obs, info = vec.reset(seed=0, options={"link_index": np.arange(links)})
    rewards, comps = [], []
    while True:
        obs, reward, _, truncated, info = vec.step(policy.act(obs, info))
        rewards.append(reward)
        comps.append(info["reward_components"])
        if truncated.all():
            break
    metrics = info["episode_metrics"]
    return {"reward": float(np.mean(rewards)), **_components(np.asarray(comps)),
            "jain": float(np.mean(metrics["jain_index"])), "utilisation": float(np.mean(metrics["utilisation"]))}


def _multi_flow(name: str, links: int, n_flows: int) -> dict[str, float]:
    env = parallel_env(n_flows=n_flows, link_set="test")
    rewards, comps, jain, util = [], [], [], []
    for index in range(links):
        policy = HEURISTICS[name](env)
        obs, infos = env.reset(seed=index, options={"link_index": index})
        while env.agents:
            obs, reward, _, _, infos = env.step(policy.act(obs, infos))
            rewards.extend(reward.values())
            comps.extend(i["reward_components"] for i in infos.values())
        metrics = infos["flow_0"]["episode_metrics"]
        jain.append(metrics["jain_index"])
        util.append(metrics["utilisation"])
    return {"reward": float(np.mean(rewards)), **_components(np.asarray(comps)),
            "jain": float(np.mean(jain)), "utilisation": float(np.mean(util))}


def _components(comps: np.ndarray) -> dict[str, float]:
    flat = comps.reshape(-1, 3)
    return {"throughput": float(flat[:, 0].mean()), "latency": float(flat[:, 1].mean()),
            "loss": float(flat[:, 2].mean())}


def baselines(quick: bool) -> None:
    links = 8 if quick else 100
    rows = []
    for n_flows in (1, 2, 4):
        for name in ORDER:
            r = _single_flow(name, links) if n_flows == 1 else _multi_flow(name, links, n_flows)
            rows.append([n_flows, name, f"{r['reward']:.0f}", f"{r['throughput']:.1f}",
                         f"{r['latency'] * 1e3:.0f}", f"{r['loss'] * 100:.2f}", f"{r['jain']:.3f}",
                         f"{r['utilisation']:.3f}"])
    print(format_table(rows, ["flows", "baseline", "reward / MI", "throughput (pkt/s)", "latency (ms)",
                              "loss (%)", "Jain", "utilisation"]))
    print(f"\n(test link set, {links} links x one 400-MI episode each; per flow and MI)")


def main(quick: bool = False) -> None:
    throughput(quick)
    baselines(quick)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    main(parser.parse_args().quick)
