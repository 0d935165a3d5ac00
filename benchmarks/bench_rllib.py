"""Ray RLlib sampling throughput: env steps/s that RLlib's env runners sample from sysgym envs.

Run it where Ray RLlib is installed (``make bench-rllib``, or
``.venv-rllib/bin/python -m benchmarks.bench_rllib [--quick]``); under ``make bench`` (the main
venv, no Ray) it prints one row saying it was skipped.

What is measured: PPO's env runners (RLlib 2.60 new API stack, the default PPO network
[256, 256], exploration on) on a local Ray instance, each stepping ``B`` sub-envs, built either as
the native batched kernel (``gym_env_vectorize_mode="vector_entry_point"``) or as Gymnasium's
``SyncVectorEnv`` over ``B`` single envs (``"sync"``). After one warm-up call, every runner samples
``T`` env steps at once (``EnvRunner.sample(num_timesteps=T)``, in parallel across runners); the
wall rate is all runners' steps over the driver's wall time of that call, the CPU rate the same
steps over the CPU time the runner processes spent (what a runner costs, less disturbed by other
load on the machine); each the best of 3 calls. No learning happens in
between, so this is the sampling side alone: env, connectors, RLModule forward pass, episode
bookkeeping. The last column is the env alone (its native vector env stepped with random valid
actions in this process) for scale. A second table runs one env runner inside this process, the
two modes alternating, which compares them under the same load.

``--profile`` times where one RLlib PPO iteration's time goes (learner update vs sampling and
the rest) for two learner torch-thread settings. The engines' time to the heuristics' scores is
:mod:`benchmarks.time_to_target` (``--trainers sysgym,rllib``; ``make bench-rllib`` runs both).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import time
import warnings
from typing import Any

import gymnasium as gym
import numpy as np

from sysgym.bench import format_table, human

RESULTS = os.path.join(os.path.dirname(__file__), "results", "rllib")

CASES = (("sysgym/DeepRM-CompactSparse-v0", {}), ("sysgym/CC-v0", {}))
MODES = ("vector_entry_point", "sync")


def _have_ray() -> bool:
    return importlib.util.find_spec("ray") is not None and importlib.util.find_spec("torch") is not None


def env_alone(env_id: str, env_config: dict[str, Any], num_envs: int, calls: int) -> float:
    """Env steps/s of the native vector env alone, random valid actions drawn in the loop."""
    vec = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point", **env_config)
    rng = np.random.default_rng(0)
    _, infos = vec.reset(seed=0)
    discrete = isinstance(vec.single_action_space, gym.spaces.Discrete)
    start = time.perf_counter()
    for _ in range(calls):
        if discrete:
            masks = infos["action_mask"].astype(bool)
            # a random valid action per row: argmax of random scores over the valid entries
            actions = np.argmax(np.where(masks, rng.random(masks.shape), -1.0), axis=1)
        else:
            actions = rng.uniform(-1, 1, (num_envs, *vec.single_action_space.shape)).astype(np.float32)
        _, _, _, _, infos = vec.step(actions)
    elapsed = time.perf_counter() - start
    vec.close()
    return calls * num_envs / elapsed


def sampled_per_second(env_id: str, env_config: dict[str, Any], vectorize: str, runners: int,
                       num_envs: int, steps_per_runner: int, repeats: int = 3) -> tuple[float, float]:
    """(wall, CPU) sampled env steps/s, each the best of ``repeats`` timed calls.

    Wall: all runners' steps over the driver's wall time of the call. CPU: all runners' steps over
    the CPU time the runner processes spent in the call (less disturbed by other load).
    """
    from sysgym.integrations.rllib import ppo_config

    config = ppo_config(env_id, env_config=env_config, num_env_runners=runners,
                        num_envs_per_env_runner=num_envs, vectorize=vectorize).debugging(seed=0)
    algo = config.build_algo()
    try:
        group = algo.env_runner_group

        def sample(runner: Any, n: int = steps_per_runner) -> tuple[int, float]:
            cpu = time.process_time()
            steps = sum(len(episode) for episode in runner.sample(num_timesteps=n, explore=True))
            return steps, time.process_time() - cpu

        group.foreach_env_runner(lambda r: sample(r, max(steps_per_runner // 10, num_envs)),
                                 local_env_runner=False)  # warm-up: connectors, torch, first episodes
        wall_rates, cpu_rates = [], []
        for _ in range(repeats):
            start = time.perf_counter()
            results = group.foreach_env_runner(sample, local_env_runner=False)
            elapsed = time.perf_counter() - start
            steps = sum(r[0] for r in results)
            wall_rates.append(steps / elapsed)
            cpu_rates.append(steps / max(sum(r[1] for r in results), 1e-9))
    finally:
        algo.stop()
    return max(wall_rates), max(cpu_rates)


def in_process(env_id: str, env_config: dict[str, Any], num_envs: int, steps: int,
               rounds: int = 2) -> dict[str, float]:
    """Sampled env steps per CPU-second of one ``SingleAgentEnvRunner`` in this process, per mode;
    the modes alternate ``rounds`` times (so both see the same load) and the best round counts."""
    import torch
    from ray.rllib.env.single_agent_env_runner import SingleAgentEnvRunner

    from sysgym.integrations.rllib import ppo_config

    # RLlib registers its env wrapper with Gymnasium again for every runner made here
    warnings.filterwarnings("ignore", message=".*Overriding environment rllib-")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in a Ray env runner with one CPU
    best: dict[str, float] = {}
    try:
        for _ in range(rounds):
            for mode in MODES:
                config = ppo_config(env_id, env_config=env_config, num_env_runners=0,
                                    num_envs_per_env_runner=num_envs, vectorize=mode)
                runner = SingleAgentEnvRunner(config=config)
                runner.sample(num_timesteps=max(steps // 10, num_envs), explore=True)
                cpu = time.process_time()
                count = sum(len(e) for e in runner.sample(num_timesteps=steps, explore=True))
                rate = count / max(time.process_time() - cpu, 1e-9)
                best[mode] = max(best.get(mode, 0.0), rate)
                runner.stop()
    finally:
        torch.set_num_threads(threads)
    return best


def main(quick: bool = False) -> None:
    if not _have_ray():
        print(format_table([["skipped: Ray RLlib is not installed in this venv; run make bench-rllib "
                             "(.venv-rllib)"]], ["RLlib sampling throughput"]))
        return
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    num_envs = 8 if quick else 32
    steps = 400 if quick else 8000
    cases = CASES[:1] if quick else CASES
    runner_counts = (1, 2)
    started = not ray.is_initialized()
    if started:
        ray.init(address="local", num_cpus=max(4, os.cpu_count() or 1), include_dashboard=False,
                 log_to_driver=False)
    rows = []
    start = time.perf_counter()
    try:
        for env_id, env_config in cases:
            alone = env_alone(env_id, env_config, num_envs, 50 if quick else 2000)
            for mode in MODES:
                for runners in runner_counts:
                    wall, cpu = sampled_per_second(env_id, env_config, mode, runners, num_envs,
                                                   steps, repeats=1 if quick else 3)
                    rows.append([env_id.split("/")[1], mode, runners, num_envs, runners * steps,
                                 human(wall), human(cpu), human(alone)])
    finally:
        if started:
            ray.shutdown()
    print(format_table(rows, ["env", "gym_env_vectorize_mode", "env runners", "sub-envs per runner",
                              "env steps per timed call", "sampled steps/s (wall)",
                              "sampled steps per runner CPU-s", "env alone, steps/s"]))
    same = []
    for env_id, env_config in cases:
        rates = in_process(env_id, env_config, num_envs, steps, rounds=1 if quick else 2)
        same.append([env_id.split("/")[1], num_envs, human(rates["vector_entry_point"]),
                     human(rates["sync"]), f"{rates['vector_entry_point'] / rates['sync']:.2f}x"])
    print("\nOne env runner in this process, the two modes interleaved (steps per CPU-second):\n")
    print(format_table(same, ["env", "sub-envs", "vector_entry_point", "sync", "ratio"]))
    print(f"\n{os.cpu_count()} CPU cores, load average {os.getloadavg()[0]:.1f} at the end, "
          f"{time.perf_counter() - start:.0f} s; the env-alone rate is one process, B={num_envs}.")


# ---------------------------------------------------------------------------------- profile
#: (env, training kwargs) of each ``--profile`` case.
PROFILE_CASES = {
    "abr": ("sysgym/ABR-v0", {"traces": "train"}),
    "deeprm": ("sysgym/DeepRM-CompactSparse-v0", {"scenario": 3}),
}


class _RLlibEngine:
    """RLlib's PPO with :func:`ppo_defaults` (sysgym PPO's preset), ``runners`` env runners; the
    learner's torch threads as ``ppo_config``'s default (1) unless ``learner_torch_threads``."""

    def __init__(self, env_id: str, kwargs: dict[str, Any], seed: int, runners: int, num_envs: int,
                 **options: Any):
        from sysgym.integrations.rllib import ppo_config, ppo_defaults

        defaults = ppo_defaults(env_id, kwargs)
        model = defaults.pop("model_config")
        config = (ppo_config(env_id, env_config=dict(kwargs), num_env_runners=runners,
                             num_envs_per_env_runner=num_envs, model_config=model, **options)
                  .update_from_dict(defaults).debugging(seed=seed))
        self.algo = config.build_algo()

    def close(self) -> None:
        self.algo.stop()


def _timed_learner(algo: Any) -> list[float]:
    """Wrap ``algo.learner_group.update`` (this instance only) to record each call's seconds."""
    seconds: list[float] = []
    update = algo.learner_group.update

    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return update(*args, **kwargs)
        finally:
            seconds.append(time.perf_counter() - start)

    algo.learner_group.update = timed
    return seconds


def profile_iterations(case: str, iterations: int, runners: int, threads: list[int | None],
                       seed: int = 0) -> list[dict[str, Any]]:
    """Where one RLlib PPO iteration's time goes, for each learner torch-threads setting
    (``None``: torch's default), the settings' algorithms alternating iteration by iteration
    under the same load. Each iteration's wall time is split into the learner update (timed
    around ``learner_group.update``: the learner connectors, GAE and every minibatch step) and
    the rest (env-runner sampling with its connectors and forward passes, weight sync, metrics)."""
    import torch

    env_id, train_kw = PROFILE_CASES[case]
    default_threads = torch.get_num_threads()
    engines = {t: _RLlibEngine(env_id, train_kw, seed, runners, num_envs=8, learner_torch_threads=t)
               for t in threads}
    learner = {t: _timed_learner(engine.algo) for t, engine in engines.items()}
    rows: dict[int | None, list[dict[str, float]]] = {t: [] for t in threads}
    try:
        for _ in range(iterations):
            for t, engine in engines.items():
                torch.set_num_threads(t or default_threads)  # this process is every engine's learner
                done = len(learner[t])
                start = time.perf_counter()
                engine.algo.train()
                wall = time.perf_counter() - start
                update = sum(learner[t][done:])
                rows[t].append({"wall": wall, "learner": update, "rest": wall - update})
    finally:
        for engine in engines.values():
            engine.close()
        torch.set_num_threads(default_threads)
    config = engines[threads[0]].algo.config
    updates = -(-config.train_batch_size_per_learner // config.minibatch_size) * config.num_epochs
    out = []
    for t in threads:
        kept = rows[t][1:] or rows[t]  # the first iteration builds and warms up
        median = {k: float(np.median([r[k] for r in kept])) for k in kept[0]}
        out.append({"case": case, "learner_torch_threads": t if t else f"default ({default_threads})",
                    "iterations": len(kept), "env_steps_per_iteration": config.train_batch_size_per_learner,
                    "minibatch_updates_per_iteration": updates, **median,
                    "learner_s_per_minibatch": median["learner"] / updates,
                    "env_steps_per_s": config.train_batch_size_per_learner / median["wall"]})
    return out


def main_profile(cases: list[str], iterations: int, runners: int, out: str | None) -> None:
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    started = time.perf_counter()
    load_before = os.getloadavg()[0]
    # Ray CPUs are slots here, not cores: both settings' env runners must fit at once
    ray.init(address="local", num_cpus=2 * runners + 1, include_dashboard=False, log_to_driver=False)
    try:
        runs = [row for case in cases for row in profile_iterations(case, iterations, runners, [None, 1])]
    finally:
        ray.shutdown()
    header = ["case", "learner torch threads", "iterations", "env steps / iteration", "minibatch updates",
              "wall s", "learner update s", "sampling and rest s", "learner ms / minibatch", "env steps/s"]
    table = format_table([[r["case"], r["learner_torch_threads"], r["iterations"], r["env_steps_per_iteration"],
                           r["minibatch_updates_per_iteration"], f"{r['wall']:.2f}", f"{r['learner']:.2f}",
                           f"{r['rest']:.2f}", f"{1000 * r['learner_s_per_minibatch']:.1f}",
                           f"{r['env_steps_per_s']:.0f}"]
                          for r in runs], header)
    note = (f"Medians over the iterations after the first; the settings alternate iteration by iteration. "
            f"RLlib {runners} env runners x 8 sub-envs, ppo_defaults preset. {os.cpu_count()} CPU cores; "
            f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after; "
            f"{time.perf_counter() - started:.0f} s in all.")
    print(table)
    print(note)
    if out:
        os.makedirs(out, exist_ok=True)
        with open(os.path.join(out, "profile.json"), "w") as handle:
            json.dump({"runs": runs, "note": note}, handle, indent=1)
        with open(os.path.join(out, "profile.md"), "w") as handle:
            handle.write(table + "\n\n" + note + "\n")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--cases", default="deeprm", help="--profile cases: " + ",".join(PROFILE_CASES))
    parser.add_argument("--runners", type=int, default=2, help="RLlib env runners")
    parser.add_argument("--profile", action="store_true",
                        help="where an RLlib PPO iteration's time goes, learner torch threads default vs 1 "
                             "(writes benchmarks/results/rllib/profile.{md,json})")
    parser.add_argument("--iterations", type=int, default=6, help="--profile: iterations per setting")
    parser.add_argument("--out", default=RESULTS, help="where profile.{md,json} go ('' : nowhere)")
    args = parser.parse_args()
    if args.profile:
        cases = [c for c in args.cases.split(",") if c]
        unknown = sorted(set(cases) - set(PROFILE_CASES))
        if unknown or not cases:
            parser.error(f"--cases: unknown {unknown}; known: {', '.join(PROFILE_CASES)}")
        if args.iterations < 2:
            parser.error("--iterations must be >= 2 (the first one is left out)")
        main_profile(cases, args.iterations, args.runners, args.out or None)
    else:
        main(quick=args.quick)
