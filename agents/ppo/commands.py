"""What ``sysgym train`` and ``sysgym evaluate`` do (the parsers live in :mod:`sysgym.cli`)."""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path
from typing import Any

import gymnasium as gym

from sysgym.agents.evaluation import EvaluationResult, evaluate
from sysgym.agents.heuristics import heuristics_for
from sysgym.bench import format_table
from sysgym.envs.registry import registered_id

from ..runs import INTERRUPTED_EXIT, interrupted_message, prepare_out_dir, stop_signals
from ..serialization import describe_space, same_layout
from .checkpoint import load_checkpoint
from .config import MAX_TOTAL_STEPS, default_config, parse_overrides
from .curves import plot_learning_curve
from .evaluation import evaluate_batched
from .trainer import PPOTrainer, TrainingInterrupted

MAX_EPISODES = 1_000_000


def default_out_dir(env_id: str, seed: int) -> Path:
    return Path("runs") / f"{env_id.split('/')[-1]}_s{seed}"


def _check_steps(steps: int | None) -> None:
    if steps is not None and not 1 <= steps <= MAX_TOTAL_STEPS:
        raise ValueError(f"--steps must lie in [1, {MAX_TOTAL_STEPS:.0e}], got {steps}")


def run_train(args: argparse.Namespace) -> int:
    """``sysgym train``: a new run (``--out`` checked before any work) or ``--resume DIR``."""
    if args.resume is not None:
        return _resume(args)
    if args.steps is None:
        raise ValueError("--steps is required (or --resume DIR to continue a saved run)")
    _check_steps(args.steps)
    seed = 0 if args.seed is None else args.seed
    settings, env_kwargs = parse_overrides(args.overrides)
    settings["total_steps"] = args.steps
    if args.num_envs is not None:
        settings["num_envs"] = args.num_envs
    settings["seed"] = seed
    settings["env_kwargs"] = {**settings.get("env_kwargs", {}), **env_kwargs}
    config = default_config(args.env, **settings)
    out = prepare_out_dir(args.out if args.out else default_out_dir(args.env, seed), force=args.force)
    with stop_signals():
        try:
            trainer = PPOTrainer(args.env, config, out)
        except KeyboardInterrupt:
            print(interrupted_message("train", "stopped before training started; nothing saved"), file=sys.stderr)
            return INTERRUPTED_EXIT
        return _train_and_report(trainer, out)


def _resume(args: argparse.Namespace) -> int:
    """Continue the run saved in ``args.resume`` with its own settings (``--steps`` may extend it)."""
    if args.out is not None or args.overrides or args.num_envs is not None:
        raise ValueError("--resume DIR continues the run saved in DIR with its own settings: "
                         "drop --out, --num-envs and key=value settings")
    _check_steps(args.steps)
    folder = Path(args.resume)
    if not folder.is_dir():
        raise ValueError(f"--resume {folder}: not a training output folder")
    payload = load_checkpoint(folder)
    env_id = registered_id(payload["env_id"], payload["path"])
    if args.env is not None and args.env != env_id:
        raise ValueError(f"--resume {folder}: the run trains {env_id}, not {args.env}")
    if args.seed is not None and args.seed != payload["config"].get("seed"):
        raise ValueError(f"--resume {folder}: the run has seed {payload['config'].get('seed')}, not {args.seed}")
    prepare_out_dir(folder, resume=True, flag="--resume")
    with stop_signals():
        try:
            trainer = PPOTrainer.resume(payload, env=env_id, total_steps=args.steps, out_dir=folder)
        except KeyboardInterrupt:
            print(interrupted_message("train", f"stopped before training resumed; {folder} is unchanged"),
                  file=sys.stderr)
            return INTERRUPTED_EXIT
        total = trainer.config.total_steps
        if trainer.global_step >= total:
            trainer.close()
            print(f"nothing to do: the run in {folder} is at step {trainer.global_step} of {total} "
                  "(a larger --steps extends it)", file=sys.stderr)
            return 0
        print(f"resuming {env_id} at step {trainer.global_step} of {total}", file=sys.stderr)
        return _train_and_report(trainer, folder)


def _train_and_report(trainer: PPOTrainer, out: Path) -> int:
    """Train (an interrupt saves and exits with status 130 and one line), then print the summary."""
    config = trainer.config
    resume = f"continue with: sysgym train --resume {out}"
    try:
        result = trainer.train()
    except TrainingInterrupted as stop:
        trainer.close()
        _curve(out, trainer.env_id)
        print(interrupted_message("train", f"checkpoint at step {stop.global_step} saved to {stop.checkpoint}; "
                                  f"{resume}"), file=sys.stderr)
        return INTERRUPTED_EXIT
    except KeyboardInterrupt:
        saved = trainer.last_checkpoint
        kept = (f"stopped at once; the last checkpoint (step {saved[1]}) is {saved[0]}; {resume}" if saved
                else "stopped at once; no checkpoint was saved yet")
        print(interrupted_message("train", kept), file=sys.stderr)
        return INTERRUPTED_EXIT
    finally:
        trainer.close()
    curve = _curve(out, trainer.env_id)
    last = result.history[-1] if result.history else {}
    summary = [["env steps", result.global_step], ["seconds", f"{result.seconds:.1f}"],
               ["steps/s", f"{result.sps:.0f}"], ["episodes", last.get("episodes", 0)]]
    if "return_mean" in last:
        summary.append(["recent return", f"{last['return_mean']:.4g}"])
    summary += [[k.split("/", 1)[1], f"{v:.4g}"] for k, v in last.items() if k.startswith("metric/")]
    print(format_table(summary, ["", "final"]))
    print(f"checkpoint: {result.checkpoint}\nlogs: {out}/progress.csv, {out}/episodes.csv"
          + (f", {out}/tb" if config.tensorboard else "")
          + (f"\nlearning curve: {curve}" if curve else ""))
    return 0


def _curve(out: Path, env_id: str) -> Path | None:
    """``learning_curve.png`` of the run so far (None when no episode has finished yet)."""
    try:
        return plot_learning_curve(out, title=f"PPO on {env_id}")
    except ModuleNotFoundError:  # matplotlib is in the agents extra; the run's files stay usable
        return None


def compare_with_heuristics(policies: dict[str, Any], env_id: str, episodes: int, seed: int,
                            env_kwargs: dict[str, Any]) -> dict[str, EvaluationResult]:
    """Evaluate each policy (object or ``env -> policy`` factory) on the same seeded episodes."""
    results = {}
    batched = gym.spec(env_id).vector_entry_point is not None
    for name, policy in policies.items():
        if batched:
            try:
                results[name] = evaluate_batched(policy, env_id, episodes, seed=seed, **env_kwargs)
                continue
            except (TypeError, AttributeError, NotImplementedError, ValueError) as error:
                # a policy object of ours handles batches (a real bug); classes and factories may not
                if hasattr(policy, "act") and not isinstance(policy, type):
                    raise
                print(f"{name}: no batched mode ({error}); evaluating episode by episode", file=sys.stderr)
        env = gym.make(env_id, **env_kwargs)
        try:
            # a heuristic class is built on the env (evaluate() takes it as a factory)
            results[name] = evaluate(functools.partial(policy) if isinstance(policy, type) else policy,
                                     env, episodes, seed=seed)
        finally:
            env.close()
    return results


def results_table(results: dict[str, EvaluationResult]) -> str:
    """One row per policy: mean return, length and every episode metric."""
    means = {name: r.mean() for name, r in results.items()}
    columns: list[str] = []
    for m in means.values():
        columns += [k for k in m if k not in columns]
    rows = [[name] + [f"{m[c]:.4g}" if c in m else "" for c in columns] for name, m in means.items()]
    return format_table(rows, ["policy"] + columns)


def check_spaces_fit(payload: dict[str, Any], env_id: str, env_kwargs: dict[str, Any]) -> None:
    """Refuse to run a checkpoint on an env whose spaces differ from the ones it was trained on."""
    obs_space, act_space = payload["spaces"]
    env = gym.make(env_id, **env_kwargs)
    try:
        for what, trained, here in (("observation", obs_space, env.observation_space),
                                    ("action", act_space, env.action_space)):
            if not same_layout(trained, here):
                raise ValueError(f"{payload['path']} was trained on {what} space {describe_space(trained)}, "
                                 f"but {env_id} with these kwargs has {describe_space(here)}")
    finally:
        env.close()


def run_evaluate(args: argparse.Namespace) -> int:
    """``sysgym evaluate --policy SPEC`` (any form of :mod:`sysgym.agents.policy_specs`) or
    ``--checkpoint PATH`` (a PPO checkpoint), next to the env family's heuristics."""
    from sysgym.agents.policy_specs import build, fit_kwargs, parse, trained_env

    if not 1 <= args.episodes <= MAX_EPISODES:
        raise ValueError(f"--episodes must lie in [1, {MAX_EPISODES:,}], got {args.episodes}")
    settings, env_kwargs = parse_overrides(args.overrides)
    if settings:
        raise ValueError(f"evaluate takes only env.<kwarg>=value overrides, got {sorted(settings)}")
    text = getattr(args, "policy", None)
    if (text is None) == (args.checkpoint is None):
        raise ValueError("evaluate takes --policy SPEC or --checkpoint PATH (one of them)")
    spec = parse(text if text is not None else args.checkpoint)
    if text is None and spec.kind != "checkpoint":
        raise ValueError(f"--checkpoint {args.checkpoint}: not a PPO checkpoint file or folder (use --policy)")
    trained_id, trained_kwargs, _ = trained_env(spec)
    if args.env is not None:
        env_id = args.env
    elif trained_id is None:
        raise ValueError(f"--policy {spec.label} does not name its env; pass --env")
    else:  # an ID from a file: registered sysgym IDs only (gym.make imports a 'module:' prefix)
        env_id = registered_id(trained_id, spec.target)
    env_kwargs = fit_kwargs(spec, env_id, {**trained_kwargs, **env_kwargs})
    policies: dict[str, Any] = {}
    if spec.kind == "checkpoint":
        payload = load_checkpoint(spec.target)
        if payload["config"].get("encoder") != "graph":
            check_spaces_fit(payload, env_id, env_kwargs)
        modes = {"sampled": False, "greedy": True}
        for mode in ("sampled", "greedy"):
            if args.mode in ("both", mode):
                policies[f"ppo ({mode})"] = build(type(spec)(spec.kind, spec.target, not modes[mode]),
                                                  env_id, env_kwargs, seed=args.seed)
        where = f"checkpoint at step {payload['global_step']}"
    elif spec.kind in ("heuristic", "oracle", "factory"):
        policies[spec.label] = build(spec, env_id, env_kwargs, seed=args.seed)
        where = spec.label
    else:   # learned: reference, sb3, rllib
        for mode in ("sampled", "greedy"):
            if args.mode in ("both", mode):
                policies[f"{spec.label} ({mode})"] = build(type(spec)(spec.kind, spec.target, mode == "sampled"),
                                                           env_id, env_kwargs, seed=args.seed)
        where = spec.label
    if not args.no_heuristics:
        same = spec.target if spec.kind == "heuristic" else None      # its row is already there
        policies.update((name, cls) for name, cls in heuristics_for(env_id).items() if name != same)
    results = compare_with_heuristics(policies, env_id, args.episodes, args.seed, env_kwargs)
    kw = ", ".join(f"{k}={v!r}" for k, v in env_kwargs.items())
    print(f"{env_id}{f' ({kw})' if kw else ''}: {args.episodes} episodes, seed {args.seed}, {where}",
          file=sys.stderr)
    print(results_table(results))
    return 0
