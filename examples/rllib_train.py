"""Train PPO with Ray RLlib on a sysgym env, then score it next to the env family's heuristics.

    pip install "sysgym[rllib]"          # or use make test's .venv-rllib
    python examples/rllib_train.py --env sysgym/DeepRM-CompactSparse-v0 --iterations 20
    RAY_ADDRESS=auto python examples/rllib_train.py ...   # on a node of a running Ray cluster

The same run from the command line, with a progress CSV: ``sysgym train --engine rllib --env ID
--steps N --num-env-runners 2`` (or ``python -m sysgym.integrations.rllib --env ID --steps N``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import gymnasium as gym
import ray

from sysgym.agents.evaluation import evaluate
from sysgym.agents.heuristics import heuristics_for
from sysgym.bench import format_table
from sysgym.integrations.rllib import METRICS_KEY, RLlibPolicy, ppo_config, ppo_defaults


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="sysgym/DeepRM-CompactSparse-v0")
    parser.add_argument("--iterations", type=int, default=10, help="PPO iterations (algo.train() calls)")
    parser.add_argument("--batch", type=int, default=None,
                        help="env steps per iteration (default: our PPO's rollout for the family)")
    parser.add_argument("--num-env-runners", type=int, default=2, help="sampling processes")
    parser.add_argument("--num-envs", type=int, default=16, help="sub-envs per runner (one native vector env)")
    parser.add_argument("--episodes", type=int, default=10, help="evaluation episodes per policy")
    parser.add_argument("--out", default="runs/rllib_example", help="checkpoint folder")
    parser.add_argument("--address", default=None,
                        help="Ray cluster address (default: $RAY_ADDRESS, else a new local instance)")
    args = parser.parse_args(argv)

    if not ray.is_initialized():
        ray.init(address=args.address)

    # Registers every sysgym env with RLlib, selects the native vector env, masks invalid actions
    # (Discrete envs), flattens 2-D / Dict observations and logs info["episode_metrics"].
    # ppo_defaults: our PPO's preset for the family (network, batch, minibatch, epochs, lr, ...),
    # not RLlib's [256, 256] network with 30 epochs over 4000 steps.
    settings = ppo_defaults(args.env)
    model = settings.pop("model_config")
    if args.batch is not None:
        settings["train_batch_size_per_learner"] = args.batch
        settings["minibatch_size"] = min(settings["minibatch_size"], args.batch)
    config = ppo_config(args.env, num_env_runners=args.num_env_runners,
                        num_envs_per_env_runner=args.num_envs, model_config=model).update_from_dict(settings)
    algo = config.build_algo()
    try:
        for i in range(args.iterations):
            runners = algo.train()["env_runners"]
            metrics = runners.get(METRICS_KEY, {})
            shown = ", ".join(f"{k} {v:.3g}" for k, v in list(metrics.items())[:3])
            print(f"iteration {i + 1}: {runners['num_env_steps_sampled_lifetime']:.0f} env steps, "
                  f"return {runners.get('episode_return_mean', float('nan')):.4g}; {shown}")
        checkpoint = algo.save_to_path(str(Path(args.out).resolve()))
    finally:
        algo.stop()

    # The checkpoint's RLModule acts with sysgym's act(obs, info) interface, like the heuristics.
    env = gym.make(args.env)
    policies = {"rllib ppo": RLlibPolicy.from_checkpoint(checkpoint, args.env), **heuristics_for(args.env)}
    scores = {name: evaluate(policy, env, episodes=args.episodes, seed=1000).mean()
              for name, policy in policies.items()}
    columns = list(next(iter(scores.values())))[:6]
    print(format_table([[name, *(f"{s[c]:.4g}" for c in columns)] for name, s in scores.items()],
                       ["policy", *columns]))
    print(f"checkpoint: {checkpoint} (Algorithm.from_checkpoint resumes training)")
    return scores


if __name__ == "__main__":
    main()
