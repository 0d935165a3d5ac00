"""Time to a trained agent: each trainer from a fresh start until its policy reaches the family
heuristic's score, side by side on this machine.

    python -m benchmarks.time_to_target [--quick] [--cases deeprm,abr,cc] [--trainers ...]
        [--seeds 3] [--cap-s 300] [--horizon 2000000] [--actions sampled|greedy] [--out DIR] [--resume]

Cases (:mod:`benchmarks.targets`): DeepRM-CompactSparse scenario 3 against SJF's mean slowdown
(unfinished jobs counted), ABR-v0 against BufferBased's QoE on the held-out test traces (trained
on the training traces), CC-Discrete-v0 against AIMD's return. Targets and scores use the same
64 evaluation seeds (1,000,000 ... 1,000,063), disjoint from every training seed (all below
1,000), with actions sampled from the policy (``--actions sampled``, the default: DeepRM's greedy
policy strands jobs, see the scorecard's reference agent; seeded with the first evaluation seed,
the training RNG untouched) or its mode (``--actions greedy``).

Trainers, each run in its own subprocess (a fresh start; its peak RSS from ``wait4``):

* ``sysgym``: our PPO with ``default_config(env_id, encoder="mlp", anneal_lr=False)``: the
  settings every trainer below gets (constant learning rate: RLlib's PPO cannot anneal).
* ``sysgym-defaults``: ``default_config(env_id)`` as ``sysgym train --env ID --steps HORIZON``
  uses it (learning rate annealed over ``--horizon`` steps where the preset anneals; logging off);
  a row only where it differs from ``sysgym``'s settings.
* ``cleanrl``: :mod:`benchmarks.cleanrl_ppo`, a CleanRL-style single-file torch PPO.
* ``sb3``: Stable-Baselines3 PPO (sb3-contrib MaskablePPO on DeepRM) on SB3's ``make_vec_env``;
  ``sb3-vec``: the same on sysgym's ``SB3VecEnv`` adapter. SB3 2.x has no shared trunk (DeepRM's
  preset shares one): separate actor and critic MLPs of the same sizes. Observation and reward
  normalisation through ``VecNormalize`` where the preset turns them on.
* ``rllib``: RLlib PPO (new API stack, 2 env runners x 8 envs, :func:`ppo_defaults`: the same
  preset, without reward normalisation, which RLlib's PPO lacks), run in ``.venv-rllib``; skipped
  with a line when that venv is absent, and in ``--quick``.

Every trainer is scored every ``eval_every`` env steps of its case (the same cadence for all;
checked at the end of each PPO iteration, so a trainer with larger iterations is scored a little
later) and once more when the cap is hit. Time to target is the wall time from the start of
building the trainer (env, network, Ray for RLlib; imports excluded) to the first evaluation at or
beyond the target, scoring time excluded (reported apart). A run stops at the target, after
``--cap-s`` seconds of such time, or after ``--horizon`` env steps; one that never reaches the
target reports its best score. Runs are interleaved: seeds outermost, then cases, trainers in an
order rotated every seed. Results are written after each run to ``DIR/results.{json,md}`` (full
mode: ``benchmarks/results/time_to_target``; ``--quick``, which ``make bench`` runs: nowhere unless
``--out``); Ctrl-C keeps the finished runs and a valid table; ``--resume`` skips finished runs.
The load average is recorded before each run: the machine may be shared.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.targets import (
    CASES,
    EPISODES,
    EVAL_SEED,
    Case,
    StopRun,
    best_score,
    first_reach,
    reached,
    score,
    train_scored,
)
from sysgym.bench import bounded_int

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "time_to_target"
RLLIB_PYTHON = ROOT / ".venv-rllib" / "bin" / "python"
TRAINERS = ("sysgym", "sysgym-defaults", "cleanrl", "sb3", "sb3-vec", "rllib")
QUICK_TRAINERS = ("sysgym", "sysgym-defaults", "cleanrl", "sb3")
MAX_CAP_S = 86_400.0


# ---------------------------------------------------------------------------------- arguments
def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--cap-s must be a number of seconds, got {text!r}") from None
    if not 0 < value <= MAX_CAP_S:
        raise argparse.ArgumentTypeError(f"--cap-s must lie in (0, {MAX_CAP_S:g}], got {text!r}")
    return value


def _names(known: tuple[str, ...], flag: str) -> Callable[[str], list[str]]:
    def parse(text: str) -> list[str]:
        names = [n.strip() for n in text.split(",") if n.strip()]
        unknown = [n for n in names if n not in known]
        if unknown or not names:
            raise argparse.ArgumentTypeError(f"{flag}: unknown {unknown or text!r}; choose from {','.join(known)}")
        return list(dict.fromkeys(names))
    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.time_to_target",
                                     description="Time and env steps to the family heuristic's score, per trainer.")
    parser.add_argument("--quick", action="store_true",
                        help="1 seed, --cap-s 30, trainers " + ",".join(QUICK_TRAINERS) + "; writes nowhere unless --out")
    parser.add_argument("--cases", type=_names(tuple(CASES), "--cases"), default=None,
                        help="comma list of " + ",".join(CASES) + " (default: all)")
    parser.add_argument("--trainers", type=_names(TRAINERS, "--trainers"), default=None,
                        help="comma list of " + ",".join(TRAINERS) + " (default: all; --quick: " + ",".join(QUICK_TRAINERS) + ")")
    parser.add_argument("--seeds", type=bounded_int(1, 100), default=None, help="training seeds 0..N-1 (default 3; --quick 1)")
    parser.add_argument("--cap-s", type=_positive_seconds, default=None,
                        help="training seconds per run before giving up (default 300; --quick 30)")
    parser.add_argument("--horizon", type=bounded_int(1, 10**10), default=2_000_000,
                        help="env steps per run at most; also sysgym-defaults' --steps (its LR schedule)")
    parser.add_argument("--actions", choices=("sampled", "greedy"), default="sampled",
                        help="how the scored policy acts: sampled from its distribution (default) or its mode")
    parser.add_argument("--out", default=None, help="results folder ('' : nowhere; default " + str(RESULTS.relative_to(ROOT)) + ")")
    parser.add_argument("--resume", action="store_true",
                        help="keep DIR/results.json's finished runs and skip them (failed ones run again)")
    # internal: one trainer's run in this process, JSON lines on stdout
    parser.add_argument("--worker", choices=TRAINERS, help=argparse.SUPPRESS)
    parser.add_argument("--case", choices=tuple(CASES), help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--target", type=float, help=argparse.SUPPRESS)
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.worker is not None:
        if args.case is None or args.target is None or args.cap_s is None:
            parser.error("--worker needs --case, --target and --cap-s")
        return args
    quick = args.quick
    args.cases = args.cases or list(CASES)
    args.trainers = args.trainers or list(QUICK_TRAINERS if quick else TRAINERS)
    args.seeds = args.seeds or (1 if quick else 3)
    args.cap_s = args.cap_s or (30.0 if quick else 300.0)
    if args.out is None:
        args.out = "" if quick else str(RESULTS)
    if args.resume and not args.out:
        parser.error("--resume needs a results folder (--out DIR)")
    return args


# ---------------------------------------------------------------------------------- one run (worker)
def shared_config(case: Case, seed: int, horizon: int) -> Any:
    """The PPO settings every trainer gets: the family preset, MLP, constant learning rate."""
    from sysgym.agents.ppo.config import default_config

    return default_config(case.env_id, env_kwargs=dict(case.train_kwargs), seed=seed, total_steps=horizon,
                          encoder="mlp", anneal_lr=False, progress=False, tensorboard=False)


def cli_config(case: Case, seed: int, horizon: int) -> Any:
    """``sysgym train --env ID --steps HORIZON --seed SEED``'s settings (logging off)."""
    from sysgym.agents.ppo.config import default_config

    return default_config(case.env_id, env_kwargs=dict(case.train_kwargs), seed=seed, total_steps=horizon,
                          progress=False, tensorboard=False)


def defaults_differ(case: Case) -> bool:
    """Whether ``sysgym train``'s defaults for ``case`` differ from the shared settings
    (``encoder="auto"`` is ``"mlp"`` on a flat Box observation)."""
    import gymnasium as gym

    shared, cli_values = shared_config(case, 0, 1).to_dict(), cli_config(case, 0, 1).to_dict()
    env = gym.make(case.env_id, **case.train_kwargs)
    flat = isinstance(env.observation_space, gym.spaces.Box) and len(env.observation_space.shape) <= 1
    env.close()
    if flat and cli_values["encoder"] == "auto":
        cli_values["encoder"] = "mlp"
    return shared != cli_values


class Scorer:
    """Evaluates at the cadence, keeps the training clock (scoring excluded), prints JSON lines."""

    def __init__(self, case: Case, target: float, cap_s: float, emit: Callable[[dict], None] = None):
        self.case, self.target, self.cap_s = case, target, cap_s
        self.emit = emit or (lambda event: print(json.dumps(event), flush=True))
        self.start = time.perf_counter()
        self.eval_s = 0.0
        self.next_eval = case.eval_every
        self.steps = 0
        self.done: str | None = None

    def train_s(self) -> float:
        return time.perf_counter() - self.start - self.eval_s

    def after_iteration(self, steps: int, evaluate: Callable[[], float]) -> bool:
        """Call after each update with the env steps so far; True when the run should stop."""
        self.steps = steps
        train_s = self.train_s()
        if steps < self.next_eval and train_s < self.cap_s:
            return False
        t0 = time.perf_counter()
        value = evaluate()
        spent = time.perf_counter() - t0
        self.eval_s += spent
        self.next_eval = (steps // self.case.eval_every + 1) * self.case.eval_every
        self.emit({"event": "eval", "steps": steps, "train_s": round(train_s, 3), "score": value,
                   "eval_s": round(spent, 3)})
        if reached(value, self.target, self.case.higher_is_better):
            self.done = "reached"
        elif train_s >= self.cap_s:
            self.done = "cap"
        return self.done is not None


def _fork_torch_rng(seed: int) -> Any:
    """A context in which torch's global RNG is seeded with ``seed`` and restored afterwards."""
    import contextlib

    import torch

    @contextlib.contextmanager
    def forked() -> Any:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            yield
    return forked()


def _run_sysgym(case: Case, seed: int, horizon: int, scorer: Scorer, defaults: bool, greedy: bool) -> None:
    from sysgym.agents.ppo.trainer import PPOTrainer

    config = (cli_config if defaults else shared_config)(case, seed, horizon)
    scorer.emit({"event": "settings", **config.to_dict()})
    trainer = PPOTrainer(case.env_id, config)

    def scored() -> bool:
        policy = trainer.policy(deterministic=greedy, seed=EVAL_SEED)
        act = lambda obs, mask: policy.act(obs, {} if mask is None else {"action_mask": mask})  # noqa: E731
        return scorer.after_iteration(trainer.global_step, lambda: score(case, act_batch=act))

    train_scored(trainer, horizon, scored)


def _run_cleanrl(case: Case, seed: int, horizon: int, scorer: Scorer, greedy: bool) -> None:
    import torch

    from benchmarks.cleanrl_ppo import train

    def on_iteration(steps: int, agent: Any) -> bool:
        generator = torch.Generator().manual_seed(EVAL_SEED)
        act = lambda obs, mask: agent.act(obs, mask, greedy, generator)  # noqa: E731
        return scorer.after_iteration(steps, lambda: score(case, act_batch=act))

    config = shared_config(case, seed, horizon)
    scorer.emit({"event": "settings", **config.to_dict()})
    train(case.env_id, config, horizon, on_iteration)


def sb3_settings(config: Any) -> dict[str, Any]:
    """SB3 PPO keyword arguments equal to a PPOConfig (constant learning rate)."""
    from torch import nn

    hidden = list(config.hidden_sizes)
    return {"n_steps": config.n_steps, "batch_size": config.batch_size, "n_epochs": config.n_epochs,
            "learning_rate": config.lr, "gamma": config.gamma, "gae_lambda": config.gae_lambda,
            "clip_range": config.clip_coef, "ent_coef": config.ent_coef, "vf_coef": config.vf_coef,
            "max_grad_norm": config.max_grad_norm, "normalize_advantage": config.norm_adv,
            "target_kl": config.target_kl, "seed": config.seed, "device": "cpu", "verbose": 0,
            "policy_kwargs": {"net_arch": {"pi": hidden, "vf": hidden},
                              "activation_fn": nn.Tanh if config.activation == "tanh" else nn.ReLU}}


def _run_sb3(case: Case, seed: int, horizon: int, scorer: Scorer, native: bool, greedy: bool) -> None:
    import numpy as np
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    config = shared_config(case, seed, horizon)
    scorer.emit({"event": "settings", **config.to_dict()})
    torch.set_num_threads(config.torch_threads)
    if native:
        from sysgym.integrations.sb3 import SB3VecEnv

        env = SB3VecEnv(case.env_id, num_envs=config.num_envs, **case.train_kwargs)
    else:
        env = make_vec_env(case.env_id, n_envs=config.num_envs, seed=seed * config.num_envs,
                           env_kwargs=dict(case.train_kwargs))
    if config.normalize_reward or config.normalize_obs:
        env = VecNormalize(env, norm_obs=config.normalize_obs, norm_reward=config.normalize_reward,
                           gamma=config.gamma, clip_obs=config.clip_obs, clip_reward=config.clip_reward)
    if case.env_id.startswith("sysgym/DeepRM"):
        from sb3_contrib import MaskablePPO as algo
    else:
        algo = PPO
    model = algo("MlpPolicy", env, **sb3_settings(config))
    masked = algo is not PPO

    def act(obs: Any, mask: Any) -> Any:
        kwargs = {"action_masks": mask} if masked and mask is not None else {}
        if config.normalize_obs:
            obs = env.normalize_obs(obs)      # the running stats as they are (no update)
        return np.asarray(model.predict(obs, deterministic=greedy, **kwargs)[0])

    def evaluate() -> float:
        with _fork_torch_rng(EVAL_SEED):
            return score(case, act_batch=act)

    class Scoring(BaseCallback):
        def _on_step(self) -> bool:
            return True

        def _on_rollout_start(self) -> None:   # after each update
            if self.num_timesteps and scorer.after_iteration(self.num_timesteps, evaluate):
                raise StopRun

    try:
        model.learn(total_timesteps=horizon, callback=Scoring())
        scorer.after_iteration(model.num_timesteps, evaluate)
    except StopRun:
        pass
    finally:
        env.close()


def _tree_rss_mib() -> float:
    """RSS of this process and all its descendants (Linux /proc), in MiB; NaN elsewhere."""
    try:
        parents: dict[int, int] = {}
        rss: dict[int, int] = {}
        page = os.sysconf("SC_PAGE_SIZE")
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
                parents[int(entry)] = int(fields[1])
                rss[int(entry)] = int(fields[21]) * page
            except (OSError, IndexError, ValueError):
                continue
    except OSError:
        return float("nan")
    tree, frontier = {os.getpid()}, [os.getpid()]
    while frontier:
        pid = frontier.pop()
        for child, parent in parents.items():
            if parent == pid and child not in tree:
                tree.add(child)
                frontier.append(child)
    return sum(rss.get(p, 0) for p in tree) / 2**20


def _run_rllib(case: Case, seed: int, horizon: int, scorer: Scorer, greedy: bool) -> None:
    import gymnasium as gym

    from sysgym.integrations.rllib import RLlibPolicy, ppo_config, ppo_defaults

    defaults = ppo_defaults(case.env_id, dict(case.train_kwargs))
    scorer.emit({"event": "settings", **defaults, "num_env_runners": 2, "num_envs_per_env_runner": 8})
    model = defaults.pop("model_config")
    config = (ppo_config(case.env_id, env_config=dict(case.train_kwargs), num_env_runners=2,
                         num_envs_per_env_runner=8, model_config=model)
              .update_from_dict(defaults).debugging(seed=seed))
    algo = config.build_algo()
    probe = gym.make(case.env_id, **case.train_kwargs)
    spaces = (probe.observation_space, probe.action_space)
    probe.close()
    peak = 0.0

    def act_batch(obs: Any, mask: Any) -> Any:
        """RLlibPolicy's action (mode or sample) for a batch of sub-envs, in one forward pass."""
        import numpy as np
        import torch
        from ray.rllib.core.columns import Columns

        policy = RLlibPolicy(algo.get_module(), *spaces)
        rows = [policy.adapter.single(obs[i], {} if mask is None else {"action_mask": mask[i]})
                for i in range(len(obs))]
        batch = ({k: torch.as_tensor(np.stack([r[k] for r in rows])) for k in rows[0]}
                 if isinstance(rows[0], dict) else torch.as_tensor(np.stack(rows)))
        with torch.no_grad():
            out = policy.module.forward_inference({Columns.OBS: batch})
            dist = policy.module.get_inference_action_dist_cls().from_logits(out[Columns.ACTION_DIST_INPUTS])
            return (dist.to_deterministic() if greedy else dist).sample().numpy()

    def evaluate() -> float:
        with _fork_torch_rng(EVAL_SEED):
            return score(case, act_batch=act_batch)

    try:
        while True:
            runners = algo.train().get("env_runners", {})
            steps = int(runners.get("num_env_steps_sampled_lifetime", 0))
            peak = max(peak, _tree_rss_mib())
            if scorer.after_iteration(steps, evaluate) or steps >= horizon:
                break
    finally:
        scorer.emit({"event": "tree_rss", "mib": round(peak, 1)})
        algo.stop()


def run_worker(args: argparse.Namespace) -> int:
    """One trainer on one case and seed; JSON lines on stdout (``eval`` ..., then ``end``)."""
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    t0 = time.perf_counter()
    import sysgym  # noqa: F401  (registers the environments)

    case = CASES[args.case]
    if args.worker in ("sysgym", "sysgym-defaults", "cleanrl", "sb3", "sb3-vec"):
        import torch  # noqa: F401  (import time is not training time)
    if args.worker.startswith("sb3"):
        import stable_baselines3  # noqa: F401
    if args.worker == "rllib":
        import ray.rllib  # noqa: F401
    import_s = time.perf_counter() - t0
    scorer = Scorer(case, args.target, args.cap_s)
    greedy = args.actions == "greedy"
    if args.worker in ("sysgym", "sysgym-defaults"):
        _run_sysgym(case, args.seed, args.horizon, scorer, args.worker == "sysgym-defaults", greedy)
    elif args.worker == "cleanrl":
        _run_cleanrl(case, args.seed, args.horizon, scorer, greedy)
    elif args.worker in ("sb3", "sb3-vec"):
        _run_sb3(case, args.seed, args.horizon, scorer, args.worker == "sb3-vec", greedy)
    else:
        _run_rllib(case, args.seed, args.horizon, scorer, greedy)
    scorer.emit({"event": "end", "steps": scorer.steps, "train_s": round(scorer.train_s(), 3),
                 "eval_s": round(scorer.eval_s, 3), "import_s": round(import_s, 3),
                 "stopped": scorer.done or "horizon"})
    return 0


# ---------------------------------------------------------------------------------- the driver
def run_key(run: dict[str, Any]) -> tuple[str, str, int]:
    return (run["case"], run["trainer"], int(run["seed"]))


def plan(cases: list[str], trainers: list[str], seeds: int) -> list[tuple[str, str, int]]:
    """(case, trainer, seed) in the interleaved order: seeds outermost, then cases; the trainers'
    order is rotated by one every seed so that none always runs first or last."""
    order = []
    for seed in range(seeds):
        turn = seed % len(trainers)
        rotated = trainers[turn:] + trainers[:turn]
        for case in cases:
            order += [(case, trainer, seed) for trainer in rotated]
    return order


def summarise(result: dict[str, Any]) -> dict[str, Any]:
    """Fold a worker's events into one run record (time / steps to target, best score, SPS)."""
    curve = result.get("curve", [])
    target, higher = result["target"], result["higher_is_better"]
    hit = first_reach(curve, target, higher)
    end = result.get("end") or {}
    steps, train_s = end.get("steps", 0), end.get("train_s", 0.0)
    result["reached"] = None if hit is None else {"steps": hit["steps"], "train_s": hit["train_s"]}
    result["best"] = best_score(curve, higher)
    result["sps"] = steps / train_s if train_s > 0 else None
    return result


def _median_range(values: list[float], fmt: Callable[[float], str]) -> str:
    if not values:
        return "-"
    middle = fmt(statistics.median(values))
    return middle if len(values) == 1 else f"{middle} [{fmt(min(values))}–{fmt(max(values))}]"


def _score_text(value: float | None) -> str:
    return "none" if value is None else f"{value:.4g}"


def table_rows(runs: list[dict[str, Any]]) -> list[list[str]]:
    """One row per (case, trainer): reached k/n, time and steps to target as median [range] over
    the seeds that reached it, SPS (median), peak RSS (max; RLlib's with its Ray processes);
    "not reached (best X)" when none did."""
    from sysgym.bench import human

    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for run in runs:
        groups.setdefault((run["case"], run["trainer"]), []).append(run)
    case_order = {c: i for i, c in enumerate(CASES)}
    trainer_order = {t: i for i, t in enumerate(TRAINERS)}
    rows = []
    for (_case, trainer), group in sorted(groups.items(), key=lambda kv: (case_order.get(kv[0][0], 99),
                                                                        trainer_order.get(kv[0][1], 99))):
        first = group[0]
        hits = [r["reached"] for r in group if r.get("reached")]
        label = f"{first['env'].split('/')[-1]} ({first['heuristic']} {first['target']:.4g})"
        if hits:
            seconds = _median_range([h["train_s"] for h in hits], lambda v: f"{v:.1f}")
            steps = _median_range([h["steps"] for h in hits], human)
        else:
            bests = [r["best"] for r in group if r.get("best") is not None]
            best = (max(bests) if first["higher_is_better"] else min(bests)) if bests else None
            seconds = f"not reached in {first['cap_s']:g} s (best {_score_text(best)})"
            steps = "-"
        sps = [r["sps"] for r in group if r.get("sps")]
        rss = [r.get("tree_rss_mib") or r["peak_rss_mib"] for r in group if r.get("peak_rss_mib")]
        rows.append([label, trainer, f"{len(hits)}/{len(group)}", seconds, steps,
                     human(statistics.median(sps)) if sps else "-", f"{max(rss):.0f}" if rss else "-"])
    return rows


HEADERS = ["env (target)", "trainer", "reached", "train s to target, median [range]",
           "env steps to target", "train env steps/s", "peak RSS MiB"]


def render_markdown(data: dict[str, Any]) -> str:
    from sysgym.bench import format_table

    meta = data["meta"]
    loads = [r["load_before"] for r in data["runs"] if r.get("load_before") is not None]
    load_text = (f"Load average (1 min) before the runs: {min(loads):.1f}–{max(loads):.1f} on this shared "
                 "machine: timings compare only within this table." if loads else "")
    lines = ["# Time to target", "",
             "Written by `" + "`, `".join(meta["commands"]) + "` "
             f"({meta['machine']}). Training seconds from building the trainer to the first "
             "evaluation at or beyond the target, scoring excluded; median [min–max] over the seeds "
             "that reached it. Scoring: "
             f"{EPISODES} episodes, seeds {EVAL_SEED:,}–{EVAL_SEED + EPISODES - 1:,}, actions "
             f"{'/'.join(sorted({r.get('actions', 'sampled') for r in data['runs']}))}; "
             "training seeds below 1,000. Env steps/s: all the run's steps over its training seconds. "
             "Peak RSS: the trainer's process (wait4); for RLlib the largest sum over its process tree "
             "(Ray's workers included) seen at an evaluation. " + load_text, "",
             format_table(table_rows(data["runs"]), HEADERS), ""]
    skipped = meta.get("skipped") or []
    if skipped:
        lines += ["Skipped: " + "; ".join(skipped), ""]
    failed = [r for r in data["runs"] if r.get("error")]
    for run in failed:
        lines += [f"Failed: {run['case']} {run['trainer']} seed {run['seed']}: {run['error']}", ""]
    return "\n".join(lines)


def write_results(out: Path, data: dict[str, Any]) -> None:
    """results.json and results.md, each replaced atomically."""
    from sysgym.bench import rounded

    out.mkdir(parents=True, exist_ok=True)
    for name, text in (("results.json", json.dumps(rounded(data), indent=1) + "\n"),
                       ("results.md", render_markdown(data))):
        tmp = out / (name + ".tmp")
        tmp.write_text(text)
        os.replace(tmp, out / name)


def load_finished(out: Path) -> list[dict[str, Any]]:
    """The runs of ``out/results.json`` (for --resume); a clear error when it is unreadable."""
    path = out / "results.json"
    if not path.exists():
        return []
    try:
        data = json.loads(path.read_text())
        runs = data["runs"]
        for run in runs:
            run_key(run)
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{path}: not a time-to-target results file ({error})") from None
    return runs


def _machine() -> str:
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{cpus} CPUs, Python {sys.version.split()[0]}"


def run_one(case: Case, trainer: str, seed: int, target: float, cap_s: float, horizon: int,
            on_event: Callable[[dict], None], actions: str = "sampled") -> dict[str, Any]:
    """Run one trainer in a subprocess; returns its record (peak RSS from ``wait4``)."""
    python = str(RLLIB_PYTHON) if trainer == "rllib" else sys.executable
    cmd = [python, "-m", "benchmarks.time_to_target", "--worker", trainer, "--case", case.name,
           "--seed", str(seed), "--target", repr(target), "--cap-s", repr(cap_s), "--horizon", str(horizon),
           "--actions", actions]
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "PYTHONPATH": str(ROOT)}
    record: dict[str, Any] = {"case": case.name, "env": case.env_id, "trainer": trainer, "seed": seed,
                              "heuristic": case.heuristic, "metric": case.metric,
                              "higher_is_better": case.higher_is_better, "target": target, "cap_s": cap_s,
                              "eval_every": case.eval_every, "actions": actions, "load_before": round(os.getloadavg()[0], 2),
                              "curve": [], "end": None}
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as errors:
        child = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=errors, text=True,
                                 start_new_session=True)
        try:
            for line in child.stdout:
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                if event.get("event") == "eval":
                    record["curve"].append({k: event[k] for k in ("steps", "train_s", "score", "eval_s")})
                elif event.get("event") == "end":
                    record["end"] = event
                elif event.get("event") == "settings":
                    record["settings"] = {k: v for k, v in event.items() if k != "event"}
                elif event.get("event") == "tree_rss":
                    record["tree_rss_mib"] = event["mib"]
                on_event(event)
            _, status, usage = os.wait4(child.pid, 0)
            child.returncode = os.waitstatus_to_exitcode(status)
        except BaseException:
            os.killpg(child.pid, signal.SIGTERM)
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
            raise
        record["peak_rss_mib"] = round(usage.ru_maxrss / 1024, 1)   # Linux: KiB
        record["wall_s"] = round(time.perf_counter() - start, 2)
        if child.returncode != 0 or record["end"] is None:
            errors.seek(0)
            tail = [line.strip() for line in errors.read().splitlines() if line.strip()]
            record["error"] = f"exit {child.returncode}: " + (tail[-1] if tail else "no output")
    return summarise(record)


def _progress(done: int, total: int, started: float, text: str) -> None:
    elapsed = time.perf_counter() - started
    eta = elapsed / done * (total - done) if done else float("nan")
    eta_text = f"{eta / 60:.0f} min" if eta == eta else "?"
    print(f"[{done}/{total}] {text} | elapsed {elapsed / 60:.1f} min, ETA {eta_text}", flush=True)


def run_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    out = Path(args.out) if args.out else None
    # a failed run is run again on --resume
    runs = [r for r in load_finished(out) if not r.get("error")] if (out is not None and args.resume) else []
    finished = {run_key(r) for r in runs}
    command = "python -m benchmarks.time_to_target " + " ".join(args.argv)
    data = {"meta": {"commands": [command.strip()], "machine": _machine(), "skipped": [],
                     "eval_seeds": [EVAL_SEED, EVAL_SEED + EPISODES - 1], "horizon": args.horizon},
            "runs": runs}
    if out is not None and args.resume and (out / "results.json").exists():
        old = json.loads((out / "results.json").read_text())["meta"]
        data["meta"]["commands"] = old.get("commands", []) + data["meta"]["commands"]
    trainers = list(args.trainers)
    if "rllib" in trainers and (args.quick or not RLLIB_PYTHON.exists()):
        trainers.remove("rllib")
        why = "--quick" if args.quick else f"{RLLIB_PYTHON.relative_to(ROOT)} is absent"
        data["meta"]["skipped"].append(f"rllib ({why}; make test sets that venv up)")
        print(f"rllib skipped: {why}", flush=True)
    targets: dict[str, float] = {}
    for name in args.cases:
        case = CASES[name]
        targets[name] = score_target(case)
        print(f"{name}: {case.env_id} {case.train_kwargs} -> target {case.heuristic} {case.metric} "
              f"{targets[name]:.4g} on eval seeds {EVAL_SEED}..{EVAL_SEED + EPISODES - 1} {case.eval_kwargs}", flush=True)
    order = [(c, t, s) for c, t, s in plan(args.cases, trainers, args.seeds)
             if not (t == "sysgym-defaults" and not defaults_differ(CASES[c]))]
    if "sysgym-defaults" in trainers and len(order) < len(plan(args.cases, trainers, args.seeds)):
        same = [c for c in args.cases if not defaults_differ(CASES[c])]
        data["meta"]["skipped"].append(f"sysgym-defaults on {','.join(same)} (same settings as sysgym)")
    todo = [key for key in order if key not in finished]
    print(f"{len(todo)} runs ({len(order) - len(todo)} already done), cap {args.cap_s:g} s each, "
          f"training seeds 0..{args.seeds - 1}", flush=True)
    started = time.perf_counter()
    for done, (name, trainer, seed) in enumerate(todo):
        case = CASES[name]

        def on_event(event: dict, case: Case = case) -> None:
            if event.get("event") == "eval":
                print(f"    {event['steps']:>9,} steps  {event['train_s']:7.1f} s  score {event['score']:.4g} "
                      f"(target {targets[case.name]:.4g})", flush=True)

        print(f"{name} / {trainer} / seed {seed}", flush=True)
        record = run_one(case, trainer, seed, targets[name], args.cap_s, args.horizon, on_event, args.actions)
        data["runs"].append(record)
        if out is not None:
            write_results(out, data)
        hit = record["reached"]
        text = (f"reached in {hit['train_s']:.1f} s, {hit['steps']:,} steps" if hit else
                record.get("error") or f"not reached (best {_score_text(record['best'])})")
        _progress(done + 1, len(todo), started, f"{name} / {trainer} / seed {seed}: {text}")
    return data


def score_target(case: Case) -> float:
    from benchmarks.targets import target_score

    return target_score(case)


def cli(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker is not None:
        return run_worker(args)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    try:
        data = run_benchmark(args)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: the finished runs are kept" + (f" in {args.out}" if args.out else ""), file=sys.stderr)
        return 130
    print()
    print(render_markdown(data))
    return 0


def main(quick: bool = False) -> None:
    """``python -m benchmarks``'s entry (``make bench``): the ``--quick`` mode, a few minutes (the full
    run takes hours; run it on its own). ``python -m benchmarks --quick`` (a test in ``make test``)
    gets a smoke run instead: DeepRM, three trainers, 3 s each."""
    smoke = ["--cases", "deeprm", "--trainers", "sysgym,cleanrl,sb3", "--cap-s", "3"] if quick else []
    status = cli(["--quick", *smoke])
    if status:
        raise SystemExit(status)


if __name__ == "__main__":
    sys.exit(cli())
