"""PPO training throughput: sysgym's reference PPO vs Stable-Baselines3 on the same env and settings.

Both sides train with the same number of sub-envs, ``n_steps``, minibatch size, epochs and
network (separate 2x64 tanh policy and value MLPs, SB3's ``net_arch=[64, 64]``), one torch
thread each. SB3 runs the way its users run it: ``make_vec_env`` (a ``DummyVecEnv`` of
``gymnasium.make`` envs), with sb3-contrib's ``MaskablePPO`` when the env has action masks and
``PPO`` otherwise. Ours steps the native vector env. SPS = env steps / wall-clock training time,
rollouts and updates included. Each side is also timed in CPU seconds of its own process
(``time.process_time``): on a shared machine that figure moves far less than wall-clock time, so
the speed-up is reported on both.
"""

from __future__ import annotations

import time

import gymnasium as gym
import torch

import sysgym  # noqa: F401  (registers the environments)
from sysgym.bench import format_table, human

CANDIDATES = ("sysgym/DeepRM-Compact-v0", "sysgym/ABR-v0")
NUM_ENVS = 8


def _settings(env_id: str) -> dict:
    from sysgym.agents.ppo import default_config

    cfg = default_config(env_id)
    return {"n_steps": cfg.n_steps, "batch_size": cfg.batch_size, "n_epochs": cfg.n_epochs,
            "lr": cfg.lr, "gamma": cfg.gamma, "gae_lambda": cfg.gae_lambda, "ent_coef": cfg.ent_coef}


def ours_sps(env_id: str, steps: int, manual_gradients: bool = True) -> tuple[float, float]:
    """(wall-clock SPS, SPS per CPU second) of sysgym's PPO."""
    from sysgym.agents.ppo import PPOTrainer, default_config

    s = _settings(env_id)
    cfg = default_config(env_id, num_envs=NUM_ENVS, total_steps=steps, shared_trunk=False,
                         hidden_sizes=(64, 64), activation="tanh", encoder="mlp", progress=False,
                         tensorboard=False, torch_threads=1, manual_gradients=manual_gradients)
    assert cfg.n_steps == s["n_steps"] and cfg.batch_size == s["batch_size"]
    trainer = PPOTrainer(env_id, cfg)
    try:
        cpu = time.process_time()
        result = trainer.train()
        cpu = time.process_time() - cpu
    finally:
        trainer.close()
    return result.sps, result.global_step / cpu


def sb3_sps(env_id: str, steps: int) -> tuple[float, float, str]:
    """(wall-clock SPS, SPS per CPU second, algorithm name) of Stable-Baselines3."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env

    s = _settings(env_id)
    torch.set_num_threads(1)
    probe = gym.make(env_id)
    masked = "action_mask" in probe.reset(seed=0)[1]
    probe.close()
    if masked:
        from sb3_contrib import MaskablePPO as algo
    else:
        algo = PPO
    venv = make_vec_env(env_id, n_envs=NUM_ENVS, seed=0)
    model = algo("MlpPolicy", venv, n_steps=s["n_steps"], batch_size=s["batch_size"], n_epochs=s["n_epochs"],
                 learning_rate=s["lr"], gamma=s["gamma"], gae_lambda=s["gae_lambda"], ent_coef=s["ent_coef"],
                 policy_kwargs={"net_arch": [64, 64], "activation_fn": torch.nn.Tanh}, device="cpu",
                 seed=0, verbose=0)
    start, cpu = time.perf_counter(), time.process_time()
    model.learn(total_timesteps=steps)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    venv.close()
    return model.num_timesteps / elapsed, model.num_timesteps / cpu, algo.__name__


def main(quick: bool = False) -> None:
    ids = [i for i in CANDIDATES if i in gym.registry]
    ours_steps, sb3_steps = (4_000, 2_000) if quick else (60_000, 20_000)
    rows = []
    for env_id in ids:
        s = _settings(env_id)
        ours, ours_cpu = ours_sps(env_id, ours_steps)
        theirs, theirs_cpu, algo = sb3_sps(env_id, sb3_steps)
        row = [env_id, NUM_ENVS, s["n_steps"], s["batch_size"], s["n_epochs"], human(ours), f"{human(theirs)} ({algo})",
               f"{ours / theirs:.1f}x", human(ours_cpu), human(theirs_cpu), f"{ours_cpu / theirs_cpu:.1f}x"]
        if not quick:
            row.append(human(ours_sps(env_id, ours_steps // 2, manual_gradients=False)[1]))
        rows.append(row)
    headers = ["env", "envs", "n_steps", "batch", "epochs", "sysgym PPO SPS", "SB3 SPS", "speed-up",
               "sysgym per CPU-s", "SB3 per CPU-s", "speed-up (CPU)"]
    if not quick:
        headers.append("sysgym autograd per CPU-s")
    print(format_table(rows, headers))
    print(f"\nnet: separate 2x64 tanh actor and critic on both sides; 1 torch thread; "
          f"{ours_steps} env steps (ours), {sb3_steps} (SB3). Target: >= 5x SB3.")


if __name__ == "__main__":
    main()
