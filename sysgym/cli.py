"""The ``sysgym`` command line: ``list``, ``bench`` (and the agent commands as they land)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import gymnasium as gym

import sysgym
from sysgym.bench import format_table, human, measure_single, measure_vector


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
    ids = args.env or [e.id for e in sysgym.ENVIRONMENTS]
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
    p.add_argument("--steps", type=int, default=20000, help="single-env steps")
    p.add_argument("--calls", type=int, default=200, help="vector step calls")
    p.add_argument("--num-envs", type=int, default=256)
    p.add_argument("--quick", action="store_true", help="a few seconds per env")
    p.set_defaults(func=cmd_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
