"""PPO training throughput: sysgym's reference PPO vs Stable-Baselines3 on the same env and settings.

Both sides train with the same number of sub-envs, ``n_steps``, minibatch size, epochs and
network (separate 2x64 tanh policy and value MLPs, SB3's ``net_arch=[64, 64]``), one torch
thread each; sb3-contrib's ``MaskablePPO`` when the env has action masks, ``PPO`` otherwise.
SB3 runs twice: the way its users run it (``make_vec_env``: a ``DummyVecEnv`` of
``gymnasium.make`` envs) and on the same native vector env as ours through
:class:`sysgym.integrations.sb3.SB3VecEnv`, which isolates the learner. Ours steps the native
vector env with the numpy fast path (and, in a last column, with torch autograd).

Measurement: on a shared machine wall-clock time mostly measures the neighbours, so the rates are
env steps per CPU second of this process while it trains (``time.process_time``, rollouts and
updates included; SPS = env steps / wall-clock time is printed too). Every configuration trains
``reps`` times; the repetitions are interleaved (the order rotates each round) so that load
changes hit every side alike. Rates are medians over the repetitions, speed-ups the median (and
min-max) of the ratios measured within one round. ``--baseline REV`` (without ``--bracis``) also
trains ours at an earlier revision in the same rounds (both revisions in fresh subprocesses) and
reports the speed-up against it::

    python -m benchmarks.bench_ppo --reps 3 --baseline b00a8f6

``--bracis --baseline REV`` times the BRACIS'21 preset (``BRACIS_PRESET``: separate 2x64 actor
and critic, 16 sub-envs, n_steps 50, minibatch 64, 10 epochs) against an earlier revision, in
fresh subprocesses alternating baseline and current (``benchmarks.compare_revisions``' cache):
CPU and wall seconds per 10,000 env steps after one untimed warm-up iteration, on DeepRM's image
state (scenario 10: 14,160 inputs, 1.82 M parameters; scenario 1: 2,280 inputs) and on the
compact Compact+Sparse+Reduced state (which must not slow down). Both sides train with the same
seed; the table also gives the largest difference between their weights after the warm-up
iteration and at the end (equal up to float rounding where the arithmetic order changed)::

    python -m benchmarks.bench_ppo --bracis --baseline 715e93d --reps 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import gymnasium as gym
import torch

import sysgym  # noqa: F401  (registers the environments)
from sysgym.bench import format_table, human

CANDIDATES = ("sysgym/DeepRM-Compact-v0", "sysgym/ABR-v0")
NUM_ENVS = 8
SIDES = ("ours", "sb3", "sb3-native")


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
                         tensorboard=False, torch_threads=1, manual_gradients=manual_gradients,
                         normalize_obs=False, normalize_reward=False)   # as SB3's PPO, without VecNormalize
    assert cfg.n_steps == s["n_steps"] and cfg.batch_size == s["batch_size"]
    trainer = PPOTrainer(env_id, cfg)
    try:
        cpu = time.process_time()
        result = trainer.train()
        cpu = time.process_time() - cpu
    finally:
        trainer.close()
    return result.sps, result.global_step / cpu


OURS_MEASURE = """
import json, sys
from benchmarks.bench_ppo import ours_sps
print(json.dumps(ours_sps(sys.argv[1], int(sys.argv[2]))))
"""


def ours_sps_at(site, env_id: str, steps: int) -> tuple[float, float]:
    """:func:`ours_sps` in a fresh subprocess importing sysgym from ``site`` (an earlier revision's
    import root, ``benchmarks.compare_revisions.baseline_root``; None: this tree)."""
    import json

    from benchmarks.compare_revisions import ROOT, _in

    code = f"import sys; sys.path.append({str(ROOT)!r})" + OURS_MEASURE  # this file's ours_sps; sysgym from site
    return tuple(json.loads(_in(site, [code, env_id, str(steps)]).strip().splitlines()[-1]))


def sb3_sps(env_id: str, steps: int, native: bool = False) -> tuple[float, float, str]:
    """(wall-clock SPS, SPS per CPU second, algorithm name) of Stable-Baselines3 on ``make_vec_env``
    or (``native``) on the native vector env through ``SB3VecEnv``."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env

    from sysgym.integrations.sb3 import SB3VecEnv

    s = _settings(env_id)
    torch.set_num_threads(1)
    probe = gym.make(env_id)
    masked = "action_mask" in probe.reset(seed=0)[1]
    probe.close()
    if masked:
        from sb3_contrib import MaskablePPO as algo
    else:
        algo = PPO
    venv = SB3VecEnv(env_id, num_envs=NUM_ENVS) if native else make_vec_env(env_id, n_envs=NUM_ENVS, seed=0)
    model = algo("MlpPolicy", venv, n_steps=s["n_steps"], batch_size=s["batch_size"], n_epochs=s["n_epochs"],
                 learning_rate=s["lr"], gamma=s["gamma"], gae_lambda=s["gae_lambda"], ent_coef=s["ent_coef"],
                 policy_kwargs={"net_arch": [64, 64], "activation_fn": torch.nn.Tanh}, device="cpu",
                 seed=0, verbose=0)
    start, cpu = time.perf_counter(), time.process_time()
    model.learn(total_timesteps=steps)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    venv.close()
    return model.num_timesteps / elapsed, model.num_timesteps / cpu, algo.__name__


def _ratio(nums: list[float], dens: list[float]) -> str:
    """Median (min-max) of the per-round ratios."""
    ratios = [a / b for a, b in zip(nums, dens)]
    text = f"{statistics.median(ratios):.1f}x"
    return text if len(ratios) == 1 else f"{text} ({min(ratios):.1f}-{max(ratios):.1f})"


def measure(env_id: str, ours_steps: int, sb3_steps: int, reps: int, site=None) -> tuple[dict, str]:
    """Per side: lists (one entry per round) of (wall SPS, CPU SPS); and SB3's algorithm name.
    With ``site`` (a baseline revision's import root) ours also runs at that revision ("ours-base"),
    and both revisions of ours run in fresh subprocesses."""
    sides = SIDES + (("ours-base",) if site is not None else ())
    runs: dict[str, list[tuple[float, float]]] = {side: [] for side in sides}
    algo = ""
    for rep in range(reps):
        for side in sides[rep % len(sides):] + sides[:rep % len(sides)]:
            if side == "ours-base":
                runs[side].append(ours_sps_at(site, env_id, ours_steps))
            elif side == "ours" and site is not None:
                runs[side].append(ours_sps_at(None, env_id, ours_steps))
            elif side == "ours":
                runs[side].append(ours_sps(env_id, ours_steps))
            else:
                wall, cpu, algo = sb3_sps(env_id, sb3_steps, native=side == "sb3-native")
                runs[side].append((wall, cpu))
    return runs, algo


BRACIS_RUNS = (  # (label, env ID, scenario, extra env kwargs)
    ("Image, scenario 10 (14,160 inputs)", "sysgym/DeepRM-Image-v0", 10, {}),
    ("Image, scenario 1 (2,280 inputs)", "sysgym/DeepRM-Image-v0", 1, {}),
    ("Compact+Sparse+Reduced, scenario 9", "sysgym/DeepRM-CompactSparseReduced-v0", 9, {"reward_scale": "bounded"}),
)

BRACIS_MEASURE = """
import json, sys, time
import numpy as np, torch
import sysgym
from sysgym.agents.ppo.config import BRACIS_PRESET, default_config
from sysgym.agents.ppo.trainer import PPOTrainer
env_id, scenario, steps, extra, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), json.loads(sys.argv[4]), sys.argv[5]
kwargs = {"scenario": scenario, "protocol": "bracis", "episode_length": 100, **extra}
cfg = default_config(env_id, **BRACIS_PRESET, seed=0, num_envs=16, encoder="mlp", progress=False,
                     tensorboard=False, env_kwargs=kwargs)
trainer = PPOTrainer(env_id, cfg)
def weights():  # parameter by parameter, row-major, whatever the flat layout
    return torch.cat([p.detach().reshape(-1) for p in trainer.params]).numpy()
trainer.train(cfg.rollout_size)
first = weights()
start_step, cpu, wall = trainer.global_step, time.process_time(), time.perf_counter()
trainer.train(steps)
cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
np.savez(out, first=first, last=weights())
print(json.dumps({"cpu": cpu, "wall": wall, "steps": trainer.global_step - start_step,
                  "params": int(trainer.flat_params.numel())}))
"""


def bracis(baseline: str, reps: int, steps: int, runs: tuple = BRACIS_RUNS) -> str:
    """The ``--bracis`` table (see the module docstring) as text."""
    import json
    import tempfile
    from pathlib import Path

    import numpy as np

    from benchmarks.compare_revisions import _in, baseline_root

    site = baseline_root(baseline)
    load_before = os.getloadavg()[0]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, env_id, scenario, extra in runs:
            sides: dict[str, list[dict]] = {"baseline": [], "current": []}
            for rep in range(reps):
                order = ("baseline", "current") if rep % 2 == 0 else ("current", "baseline")
                for side in order:
                    out = str(Path(tmp) / f"{side}.npz")
                    text = _in(site if side == "baseline" else None,
                               [BRACIS_MEASURE, env_id, str(scenario), str(steps), json.dumps(extra), out])
                    result = json.loads(text.strip().splitlines()[-1])
                    result["weights"] = dict(np.load(out))
                    sides[side].append(result)
                    print(f"  {label}, {side}, rep {rep + 1}/{reps}: {result['cpu'] / result['steps'] * 1e4:.1f} "
                          f"CPU s per 10k steps", file=sys.stderr, flush=True)
            per10k = {side: [r["cpu"] / r["steps"] * 1e4 for r in results] for side, results in sides.items()}
            wall10k = {side: [r["wall"] / r["steps"] * 1e4 for r in results] for side, results in sides.items()}
            b, c = sides["baseline"][-1]["weights"], sides["current"][-1]["weights"]
            diff_first = float(np.abs(b["first"] - c["first"]).max())
            diff_last = float(np.abs(b["last"] - c["last"]).max())
            rows.append([label, f"{sides['current'][0]['params']:,}",
                         f"{statistics.median(per10k['baseline']):.1f}", f"{statistics.median(per10k['current']):.1f}",
                         _ratio(per10k["baseline"], per10k["current"]),
                         f"{statistics.median(wall10k['baseline']):.1f}", f"{statistics.median(wall10k['current']):.1f}",
                         _ratio(wall10k["baseline"], wall10k["current"]),
                         f"{diff_first:.1e}", f"{diff_last:.1e}"])
    table = format_table(rows, ["run", "parameters", "baseline CPU s / 10k", "current CPU s / 10k",
                                "speed-up (CPU)", "baseline wall s / 10k", "current wall s / 10k",
                                "speed-up (wall)", "max |dw| after 1 iteration", f"max |dw| after {steps:,} more steps"])
    return (table + f"\n\nBRACIS_PRESET (separate 2x64 tanh actor and critic, 16 sub-envs, n_steps 50, minibatch 64, "
            f"10 epochs, lr 1e-4), protocol 'bracis', seed 0, 1 torch / BLAS thread; {steps:,} timed env steps after "
            f"one untimed iteration of 800; {reps} repetitions alternating baseline ({baseline}) and current in fresh "
            f"subprocesses; medians, speed-ups the median (min-max) of the per-repetition ratios baseline / current. "
            f"max |dw|: largest difference between the two sides' weights (same seed) after the warm-up iteration "
            f"(130 updates) and at the end of the last repetition. Load average (1 min) {load_before:.1f} before, "
            f"{os.getloadavg()[0]:.1f} after, on {os.cpu_count()} CPUs.")


def main(quick: bool = False, reps: int | None = None, baseline: str | None = None) -> None:
    site = None
    if baseline is not None:
        from benchmarks.compare_revisions import baseline_root

        site = baseline_root(baseline)
    ids = [i for i in CANDIDATES if i in gym.registry]
    ours_steps, sb3_steps = (4_000, 2_000) if quick else (60_000, 12_000)
    reps = reps or (1 if quick else 3)
    load_before = os.getloadavg()[0]
    rows = []
    for env_id in ids:
        s = _settings(env_id)
        runs, algo = measure(env_id, ours_steps, sb3_steps, reps, site)
        wall = {side: [r[0] for r in found] for side, found in runs.items()}
        cpu = {side: [r[1] for r in found] for side, found in runs.items()}
        med = {side: human(statistics.median(found)) for side, found in cpu.items()}
        row = [env_id, NUM_ENVS, s["n_steps"], s["batch_size"], s["n_epochs"],
               med["ours"], f"{med['sb3']} ({algo})", _ratio(cpu["ours"], cpu["sb3"]),
               med["sb3-native"], _ratio(cpu["ours"], cpu["sb3-native"]),
               human(statistics.median(wall["ours"])), human(statistics.median(wall["sb3"])),
               _ratio(wall["ours"], wall["sb3"])]
        if site is not None:
            row += [med["ours-base"], _ratio(cpu["ours"], cpu["ours-base"])]
        if not quick:
            row.append(human(ours_sps(env_id, ours_steps // 2, manual_gradients=False)[1]))
        rows.append(row)
    headers = ["env", "envs", "n_steps", "batch", "epochs", "sysgym PPO per CPU-s", "SB3 per CPU-s",
               "speed-up (CPU)", "SB3 on SB3VecEnv per CPU-s", "speed-up vs SB3VecEnv (CPU)",
               "sysgym SPS (wall)", "SB3 SPS (wall)", "speed-up (wall)"]
    if site is not None:
        headers += [f"sysgym PPO at {baseline} per CPU-s", f"speed-up vs {baseline} (CPU)"]
    if not quick:
        headers.append("sysgym autograd per CPU-s")
    print(format_table(rows, headers))
    print(f"\nnet: separate 2x64 tanh actor and critic on both sides; 1 torch thread; {ours_steps} env "
          f"steps per run (ours), {sb3_steps} (SB3); {reps} interleaved rounds, medians (speed-ups: "
          f"median and min-max of the per-round ratios). SB3 = make_vec_env (DummyVecEnv of gymnasium.make "
          f"envs); SB3VecEnv = SB3 on the native vector env. Target: >= 10x SB3. Load average (1 min) "
          f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after, on {os.cpu_count()} CPUs."
          + ("" if site is None else f" sysgym PPO at {baseline}: the same run of ours at that revision; with "
             "--baseline both revisions of ours run in fresh subprocesses, alternating with the SB3 runs."))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--reps", type=int, default=None, help="interleaved rounds (default 3; 1 with --quick)")
    parser.add_argument("--bracis", action="store_true", help="BRACIS preset against --baseline (see the docstring)")
    parser.add_argument("--baseline", default=None,
                        help="git revision: --bracis times against it; otherwise ours also runs at it")
    parser.add_argument("--steps", type=int, default=10_000, help="timed env steps per run with --bracis")
    parser.add_argument("--only", type=int, default=None, help="with --bracis: only the run of this index (0-2)")
    args = parser.parse_args()
    if args.bracis:
        if args.baseline is None:
            parser.error("--bracis needs --baseline REV")
        if args.steps < 1:
            parser.error("--steps must be >= 1")
        if args.only is not None and not 0 <= args.only < len(BRACIS_RUNS):
            parser.error(f"--only must lie in [0, {len(BRACIS_RUNS)})")
        chosen = BRACIS_RUNS if args.only is None else (BRACIS_RUNS[args.only],)
        print(bracis(args.baseline, args.reps or 3, args.steps, chosen))
    else:
        main(quick=args.quick, reps=args.reps, baseline=args.baseline)
