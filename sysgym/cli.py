"""The ``sysgym`` command line: ``list``, ``bench``, ``train``, ``evaluate``, ``explain``, ``distill``, ``benchmark``.

Input errors (unknown IDs, bad settings, unreadable files) print one line and exit with status 2,
as argparse does; ``SYSGYM_DEBUG=1`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import os
import sys
from collections.abc import Sequence

import gymnasium as gym

import sysgym
from sysgym.agents.datasets import commands as dataset_commands  # argparse only: no minari, no env
from sysgym.agents.distill import commands as distill_commands  # argparse only: no torch, no env
from sysgym.bench import format_table, human, measure_single, measure_vector
from sysgym.benchmark import commands as benchmark_commands  # argparse only: no torch, no env
from sysgym.integrations import rllib  # cheap: ray is imported only when the rllib engine runs

INPUT_ERRORS = (ValueError, FileNotFoundError, gym.error.Error)


def resolve_env_id(name: str) -> str:
    """``name`` if it is a registered ID; otherwise a ValueError suggesting the closest one."""
    if name in gym.registry:
        return name
    ids = [e.id for e in sysgym.ENVIRONMENTS]
    if f"sysgym/{name}" in gym.registry:
        raise ValueError(f"unknown environment {name!r}; did you mean 'sysgym/{name}'?")
    close = difflib.get_close_matches(name, ids, n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]!r}?" if close else "; `sysgym list` shows every ID"
    raise ValueError(f"unknown environment {name!r}{hint}")


def _space(space: gym.Space) -> str:
    if isinstance(space, gym.spaces.Discrete):
        return f"Discrete({space.n})"
    if isinstance(space, gym.spaces.Box):
        return f"Box{tuple(space.shape)} {space.dtype}"
    if isinstance(space, gym.spaces.Dict):
        return "Dict(" + ", ".join(f"{k}: {_space(v)}" for k, v in space.spaces.items()) + ")"
    return str(space)


def cmd_list(args: argparse.Namespace) -> int:
    rows = []
    for entry in sysgym.ENVIRONMENTS:
        env = gym.make(entry.id)
        rows.append([entry.id, _space(env.observation_space), _space(env.action_space), entry.description])
        env.close()
    print(format_table(rows, ["id", "observation", "action", "description"]))
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    ids = [resolve_env_id(i) for i in args.env] if args.env else [e.id for e in sysgym.ENVIRONMENTS]
    single_steps, vector_calls = (2000, 20) if args.quick else (args.steps, args.calls)
    rows = []
    for env_id in ids:
        single = measure_single(env_id, steps=single_steps)
        vector = measure_vector(env_id, num_envs=args.num_envs, steps=vector_calls)
        rows.append([env_id, human(single.steps_per_second), human(vector.steps_per_second)])
        print(f"  measured {env_id}", file=sys.stderr)
    print(format_table(rows, ["id", "single env steps/s", f"native vector (B={args.num_envs}) steps/s"]))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sysgym", description=__doc__)
    parser.add_argument("--version", action="version", version=f"sysgym {sysgym.__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("list", help="registered environment IDs, their spaces and a description")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("bench", help="steps/s of every environment, single and native vector")
    p.add_argument("--env", action="append", help="environment ID (repeatable; default: all)")
    bounded, limits = sysgym.bench.bounded_int, sysgym.bench   # one-line argparse errors out of range
    p.add_argument("--steps", type=bounded(1, limits.MAX_STEPS), default=20000, help="single-env steps")
    p.add_argument("--calls", type=bounded(1, limits.MAX_CALLS), default=200, help="vector step calls")
    p.add_argument("--num-envs", type=bounded(1, limits.MAX_NUM_ENVS), default=256, help="native vector sub-envs")
    p.add_argument("--quick", action="store_true", help="a few seconds per env")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("train", help="train the reference PPO agent on an environment",
                       description="Train PPO. Extra key=value arguments set any PPO setting "
                                   "(e.g. lr=3e-4 hidden_sizes=128,128 normalize_reward=true) or, "
                                   "as env.KEY=value, an env kwarg (e.g. env.scenario=9).",
                       epilog=_settings_help(), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", default=None, help="environment ID, e.g. sysgym/DeepRM-Compact-v0 (required "
                   "unless --resume)")
    p.add_argument("--steps", type=int, default=None, help="environment steps to train for, in all (required "
                   "unless --resume; with --resume a larger total extends the run)")
    p.add_argument("--num-envs", type=int, default=None, help="parallel sub-envs (default: preset)")
    p.add_argument("--seed", type=int, default=None, help="seed (default 0)")
    p.add_argument("--out", default=None, help="output folder (default: runs/<env>_s<seed>); must be new or "
                   "empty unless --force")
    p.add_argument("--force", action="store_true", help="train into a non-empty --out, overwriting its files")
    p.add_argument("--resume", default=None, metavar="DIR",
                   help="continue the run saved in DIR (its checkpoint.pt, written every checkpoint_seconds "
                        "and on Ctrl-C / SIGTERM) with its own settings: the same result as an "
                        "uninterrupted run (--engine rllib: from its last RLlib checkpoint)")
    p.add_argument("overrides", nargs="*", metavar="key=value")
    p.add_argument("--engine", choices=("ppo", "rllib"), default="ppo",
                   help="ppo: the reference PPO; rllib: PPO on Ray RLlib, here or on a Ray cluster "
                        '(pip install "sysgym[rllib]"; key=value then sets RLlib AlgorithmConfig fields)')
    rllib.add_train_arguments(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="evaluate any policy next to the family's heuristics",
                       description="Evaluate a policy (any form of the README's policy table: heuristic:NAME, "
                                   "oracle, reference, a PPO checkpoint, sb3:PATH.zip, rllib:DIR, "
                                   "module:factory) on seeded episodes and print its episode "
                                   "metrics side by side with the env family's heuristics. "
                                   "env.KEY=value arguments change env kwargs (e.g. env.scenario=5).")
    p.add_argument("--policy", default=None, help="the policy to evaluate (a policy spec)")
    p.add_argument("--checkpoint", default=None, help="a PPO checkpoint file or training output folder "
                   "(the same as --policy PATH)")
    p.add_argument("--episodes", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--env", default=None, help="evaluate on another ID (default: the trained one; "
                   "required for policies that do not name their env)")
    p.add_argument("--mode", choices=("both", "sampled", "greedy"), default="both",
                   help="learned policies' rows: actions sampled from the policy, its most likely action, or both")
    p.add_argument("--no-heuristics", action="store_true", help="evaluate the policy only")
    p.add_argument("overrides", nargs="*", metavar="env.key=value")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("explain", help="CrystalBox: why a policy picks its actions (per-component future returns)",
                       description="Fit a CrystalBox explainer (Patel et al., AAAI 2024) on N episodes of a policy "
                                   "(or load one with --model), then explain states of a fresh episode: per action "
                                   "and reward component the predicted return over the next 5 decisions, 'why A and "
                                   "not B', a table and a bar chart per state. env.KEY=value arguments change env kwargs.")
    p.add_argument("--policy", required=True, help="any policy spec: a PPO checkpoint (file or training folder), "
                   "heuristic:NAME, oracle, reference, sb3:PATH.zip, rllib:DIR, module:factory")
    p.add_argument("--env", default=None, help="environment ID (default: the checkpoint's)")
    p.add_argument("--episodes", type=int, default=50, help="episodes rolled out to fit the explainer")
    p.add_argument("--states", type=int, default=4, help="states of a fresh episode to explain")
    p.add_argument("--model", default=None, help="load this explainer (crystalbox.pt) instead of fitting one")
    p.add_argument("--out", default=None, help="output folder (default: runs/explain_<env>)")
    p.add_argument("--force", action="store_true", help="write into a non-empty --out folder (its files are replaced)")
    p.add_argument("--hidden", type=int, choices=(64, 128, 256, 512), default=128, help="predictor width (the paper: 512)")
    p.add_argument("--epochs", type=int, default=200, help="most training epochs (early stopping)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("overrides", nargs="*", metavar="env.key=value")
    p.set_defaults(func=cmd_explain)

    p = sub.add_parser("distill", help="distil a teacher (any policy spec) into a small "
                       "tree or rule", description=distill_commands.DESCRIPTION)
    distill_commands.add_arguments(p)
    p.set_defaults(func=cmd_distill)

    p = sub.add_parser("benchmark", help="score a policy on the fixed evaluation suites against the baselines",
                       description=benchmark_commands.DESCRIPTION)
    benchmark_commands.add_arguments(p)
    p.set_defaults(func=cmd_benchmark)

    p = sub.add_parser("dataset", help="write a policy's episodes as an offline Minari dataset",
                       description=dataset_commands.DESCRIPTION)
    dataset_commands.add_arguments(p)
    p.set_defaults(func=cmd_dataset)
    return parser


def _settings_help() -> str:
    try:
        from sysgym.agents.ppo.config import FAMILY_PRESETS, PPOConfig
    except ModuleNotFoundError as error:  # torch missing: the settings live in the agents package
        return f'PPO settings need the agents extra ({error.name} is missing): pip install "sysgym[agents]"'

    rows = [f"  {f.name:<20} {_default(f)}" for f in dataclasses.fields(PPOConfig)
            if f.name not in ("env_kwargs", "train_env_kwargs")]
    presets = "; ".join(f"{family}: {', '.join(f'{k}={v}' for k, v in values.items())}"
                        for family, values in FAMILY_PRESETS.items())
    return ("PPO settings (key=value) and their defaults:\n" + "\n".join(rows) +
            f"\n\nFamily presets replace some defaults ({presets}); continuous-action envs use "
            "CleanRL's continuous-control values; Appointments-P3 trains with env.percentile=off (the "
            "metric's exact rank costs ~2 ms a day; evaluation keeps it) unless env.percentile is set. "
            "Booleans accept true/false, yes/no, 1/0.")


def _default(f: dataclasses.Field) -> object:
    if f.default is not dataclasses.MISSING:
        return f.default
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else ""


def _agents_module(name: str):
    """Import an agent command module; torch missing is a one-line install hint."""
    import importlib

    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as error:
        if error.name and error.name.split(".")[0] in ("torch", "sklearn", "matplotlib", "tensorboard", "pystreed"):
            raise ValueError(f"{error.name} is not installed; the agents need it: "
                             f'pip install "sysgym[agents]"') from None
        raise


def cmd_train(args: argparse.Namespace) -> int:
    if args.engine == "rllib":
        if args.resume is None and (args.env is None or args.steps is None):
            raise ValueError("--env and --steps are required (or --resume DIR to continue a saved run)")
        if args.env is not None and args.env != rllib.MULTI_FLOW_CC:
            args.env = resolve_env_id(args.env)
        return rllib.run_train(args)
    if args.env is None and args.resume is None:
        raise ValueError("--env is required (or --resume DIR to continue a saved run)")
    if args.env is not None:
        args.env = resolve_env_id(args.env)
    return _agents_module("sysgym.agents.ppo.commands").run_train(args)


def cmd_evaluate(args: argparse.Namespace) -> int:
    if args.env is not None:
        args.env = resolve_env_id(args.env)
    return _agents_module("sysgym.agents.ppo.commands").run_evaluate(args)


def cmd_explain(args: argparse.Namespace) -> int:
    if args.env is not None:
        args.env = resolve_env_id(args.env)
    return _agents_module("sysgym.agents.crystalbox.commands").run_explain(args)


def cmd_distill(args: argparse.Namespace) -> int:
    if args.env is not None:
        args.env = resolve_env_id(args.env)
    return _agents_module("sysgym.agents.distill.commands").run_distill(args)


def cmd_benchmark(args: argparse.Namespace) -> int:
    return _agents_module("sysgym.benchmark.commands").run_benchmark(args)


def cmd_dataset(args: argparse.Namespace) -> int:
    if args.env is not None:
        args.env = resolve_env_id(args.env)
    return _agents_module("sysgym.agents.datasets.commands").run_dataset(args)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except BrokenPipeError:
        # the reader went away (e.g. `sysgym list | head`): stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except INPUT_ERRORS as error:
        if os.environ.get("SYSGYM_DEBUG"):
            raise
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        print(f"sysgym {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
