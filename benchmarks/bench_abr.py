"""ABR: chunk-steps/s (single env and native batch), robustMPC decisions/s, and the QoE of BB, RB,
robustMPC and the offline optimum on the shipped test traces and, when present, on the FCC and
Norway HSDPA traces with the Envivio video (``../shared/data/abr`` or ``$SYSGYM_ABR_DATA``).

Pensieve's own simulator, measured beside it on the same workload: ``python -m benchmarks.peers``.
"""

from __future__ import annotations

import os
import time
from functools import partial
from pathlib import Path

import gymnasium as gym
import numpy as np

from sysgym.agents.heuristics.abr import HEURISTICS, OfflineOptimal, RobustMPC, evaluate_on_traces
from sysgym.bench import format_table, human, measure_single, measure_vector, random_table_policy
from sysgym.envs.bandwidth import load_traces
from sysgym.traces import trace_path

ENV_ID = "sysgym/ABR-v0"
DATA = Path(os.environ.get("SYSGYM_ABR_DATA", Path(__file__).resolve().parents[2] / "shared" / "data" / "abr"))


def throughput(quick: bool) -> str:
    space = gym.make(ENV_ID).action_space
    single = measure_single(ENV_ID, steps=5_000 if quick else 50_000, policy=random_table_policy(space))
    rows = [["gymnasium.make (single env)", "1", human(single.steps_per_second)]]
    for b in (1024,) if quick else (256, 1024, 4096):
        policy = random_table_policy(gym.vector.utils.batch_space(space, b), 64)
        vector = measure_vector(ENV_ID, num_envs=b, steps=50 if quick else 400, policy=policy)
        rows.append(["make_vec(vector_entry_point)", str(b), human(vector.steps_per_second)])
    return format_table(rows, ["path", "B", "chunk-steps/s"])


def mpc_speed(quick: bool) -> str:
    seconds = 1.0 if quick else 5.0
    rows = []
    for b in (1, 256):
        env = (gym.make(ENV_ID) if b == 1
               else gym.make_vec(ENV_ID, num_envs=b, vectorization_mode="vector_entry_point"))
        policy = RobustMPC(env)
        obs, info = env.reset(seed=0)
        decisions, acting, start = 0, 0.0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            t0 = time.perf_counter()
            action = policy.act(obs, info)
            acting += time.perf_counter() - t0
            obs, _, terminated, _, info = env.step(action)
            decisions += b
            if b == 1 and terminated:
                obs, info = env.reset()
        total = time.perf_counter() - start
        rows.append(["single env" if b == 1 else "native batch", str(b), human(decisions / acting),
                     human(decisions / total)])
    return format_table(rows, ["robustMPC on", "B", "decisions/s (act)", "decisions/s (act + env step)"])


def qoe_table(label: str, traces: list, dt: float, **env_kwargs) -> str:
    policies = {**HEURISTICS, "offline optimal": partial(OfflineOptimal, dt=dt)}
    rows = []
    for name, make in policies.items():
        start = time.perf_counter()
        metrics = evaluate_on_traces(make, traces=traces, **env_kwargs)
        mean = {k: np.mean([m[k] for m in metrics]) for k in metrics[0]}
        rows.append([name, f"{mean['qoe_per_chunk']:.3f}", f"{mean['quality_per_chunk']:.3f}",
                     f"{mean['rebuffer_per_chunk']:.3f}", f"{mean['smoothness_per_chunk']:.3f}",
                     f"{mean['rebuffer_time_s']:.2f}", f"{mean['switches']:.1f}",
                     f"{time.perf_counter() - start:.1f}"])
    header = ["policy", "QoE/chunk", "quality", "rebuffer", "smoothness", "stall s/episode", "switches", "s"]
    return f"{label}: {len(traces)} traces, each played once from its start, noise off; offline optimum " \
           f"grid dt = {dt} s\n\n" + format_table(rows, header)


def main(quick: bool = False) -> None:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"ABR throughput (random levels; one core; load average {load:.1f})\n")
    print(throughput(quick))
    print()
    print(mpc_speed(quick))
    print("\nABR QoE per chunk (linear QoE: Mbps - 4.3 stall s - |switch Mbps|; higher is better)\n")
    test = load_traces(trace_path("abr", "test"))
    print(qoe_table("shipped synthetic test traces, ABR-v0 defaults (synthetic 49-chunk video)",
                    test[:12] if quick else test, dt=2.0 if quick else 1.0))
    video = DATA / "video_envivio"
    for name in ("fcc_train", "norway_train"):
        folder = DATA / "traces" / name
        if not (folder.is_dir() and video.is_dir()):
            print(f"\n({folder} or {video} not present: skipped)")
            continue
        traces = load_traces(folder)
        print()
        print(qoe_table(f"{name}, ABR-Pensieve-v0 with the Envivio video", traces[:8] if quick else traces,
                        dt=2.0 if quick else 1.0, pensieve_compatible=True, video=video))
    if not quick:
        print("\nOffline optimum vs grid size on the first 8 shipped test traces (QoE/chunk):\n")
        rows = []
        for dt in (4.0, 1.0, 0.25):
            start = time.perf_counter()
            metrics = evaluate_on_traces(partial(OfflineOptimal, dt=dt), traces=test[:8])
            rows.append([str(dt), f"{np.mean([m['qoe_per_chunk'] for m in metrics]):.4f}",
                         f"{time.perf_counter() - start:.1f}"])
        print(format_table(rows, ["dt (s)", "QoE/chunk", "s"]))


if __name__ == "__main__":
    import sys

    main(quick="--quick" in sys.argv)
