"""DeepRM: kernel throughput per MDP variant and the heuristics' mean slowdown on all 10 scenarios.

For scale, on this machine the original DeepRM Python code runs ~12,000 steps/s and sched-rl-gym
~1,800 steps/s (numbers from the issue that commissioned this family).
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from sysgym.agents.evaluation import evaluate_batched
from sysgym.agents.heuristics.deeprm import HEURISTICS
from sysgym.bench import format_table, human, measure_single, measure_vector, random_table_policy
from sysgym.envs.deeprm import SCENARIOS

VARIANTS = ["sysgym/DeepRM-Image-v0", "sysgym/DeepRM-Compact-v0", "sysgym/DeepRM-CompactSparse-v0",
            "sysgym/DeepRM-CompactSparseReduced-v0"]


def throughput(quick: bool) -> str:
    single_steps, calls, b = (5_000, 20, 256) if quick else (100_000, 400, 256)
    rows = []
    for env_id in VARIANTS:
        space = gym.make(env_id).action_space
        # Random actions from a pre-drawn table: allocation attempts and voids (invalid = void).
        single = measure_single(env_id, steps=single_steps, policy=random_table_policy(space))
        batch_space = gym.vector.utils.batch_space(space, b)
        vector = measure_vector(env_id, num_envs=b, steps=calls, policy=random_table_policy(batch_space, 256))
        rows.append([env_id.split("/")[1], human(single.steps_per_second), human(vector.steps_per_second)])
    return format_table(rows, ["variant", "single env (gymnasium.make) steps/s", f"make_vec B={b} steps/s"])


def slowdown_table(quick: bool) -> str:
    episodes = 10 if quick else 100
    scenarios = [1, 3, 9] if quick else sorted(SCENARIOS)
    rows = []
    for k in scenarios:
        vec = gym.make_vec("sysgym/DeepRM-Compact-v0", num_envs=episodes,
                           vectorization_mode="vector_entry_point", scenario=k)
        row = [str(k), "{} / {} / {}".format(*SCENARIOS[k])]
        for cls in HEURISTICS.values():
            result = evaluate_batched(cls(vec, seed=0), vec, seed=10_000)
            row.append(f"{np.mean([m['mean_slowdown'] for m in result.metrics]):.2f}")
        rows.append(row)
    header = ["scenario", "procs / max len / max size", *HEURISTICS]
    return format_table(rows, header) + f"\n\n(mean slowdown over {episodes} episodes per cell, seeds 10000+)"


def main(quick: bool = False) -> None:
    print("DeepRM throughput (random actions; one core)\n")
    print(throughput(quick))
    print("\nDeepRM heuristics: mean slowdown (lower is better)\n")
    print(slowdown_table(quick))


if __name__ == "__main__":
    import sys

    main(quick="--quick" in sys.argv)
