"""``sysgym benchmark``: score a policy on the fixed suites against the baselines.

    sysgym benchmark --policy heuristic:sjf --suite deeprm
    sysgym benchmark --policy runs/DeepRM-CompactSparse-v0_s0 --suite deeprm --jobs 2 --out bench_out
    sysgym benchmark --policy mypkg.agent:make --suite all --episodes 20
    sysgym benchmark --policy sb3:model.zip --suite appointments

Module imports stay light (argparse only) so the ``sysgym`` CLI can add these arguments without
loading the benchmark; ``python -m sysgym.benchmark`` runs it standalone.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

SUITE_CHOICES = ("deeprm", "dag", "abr", "cc", "appointments", "all")
DESCRIPTION = ("Score a policy on the fixed evaluation suites: per env its mean primary metric with a "
               "bootstrap interval, its normalised score (0 = random policy, 1 = best classical baseline), "
               "the fraction of the baseline-to-oracle gap it closes and its rank among the baselines. "
               "Prints a markdown scorecard; --out also writes CSV, JSON and a plot.")
POLICY_HELP = ("heuristic:NAME (a family baseline, e.g. heuristic:sjf), reference (the shipped reference "
               "agents), sb3:PATH.zip (Stable-Baselines3 / MaskablePPO), a PPO checkpoint or training "
               "folder (runs/X), or module:factory (factory(env) -> object with act(obs, info); a .py "
               "file path also works)")


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--policy", required=True, help=POLICY_HELP)
    parser.add_argument("--suite", default="all", choices=SUITE_CHOICES, help="family suite (default: all)")
    parser.add_argument("--episodes", type=int, default=None,
                        help="episodes per env, at most the suite's (default: the suite's)")
    parser.add_argument("--jobs", type=int, default=1, help="worker processes (results do not depend on it)")
    parser.add_argument("--out", default=None, help="folder for scorecard.md, results.csv, results.json, scores.png")
    parser.add_argument("--abr-data", default=None, metavar="DIR",
                        help="also score on DIR/traces/<set> (e.g. FCC, Norway) with DIR/video_envivio")
    parser.add_argument("--variant", default=None, metavar="ID",
                        help="play a suite on another ID with the same dynamics (DeepRM: Compact, "
                             "CompactSparseReduced, Image); checkpoints pick their own")
    parser.add_argument("--sample", action="store_true",
                        help="learned policies sample their actions (seeded) instead of the most likely one")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def build_parser() -> argparse.ArgumentParser:
    return add_arguments(argparse.ArgumentParser(prog="sysgym benchmark", description=DESCRIPTION))


def benchmark(policy, suite: str = "all", episodes: int | None = None, jobs: int = 1,
              abr_data: str | None = None, variant: str | None = None, sample: bool = False,
              progress: bool = False):
    """Score ``policy`` (a ``--policy`` string or a picklable ``factory(env)``) on a suite; returns
    a :class:`sysgym.benchmark.scorecard.Scorecard`."""
    from . import baselines, runner, scorecard
    from .policies import parse
    from .suites import get_suites

    spec = parse(policy, sample=sample) if isinstance(policy, str) else policy
    suites = get_suites(suite, abr_data)
    if variant is not None and not any(variant in (*s.variants, *(c.env_id for c in s.cases)) for s in suites):
        offered = sorted({v for s in suites for v in s.variants})
        raise ValueError(f"--variant {variant}: not a variant of the chosen suites "
                         f"({', '.join(offered) if offered else 'they have none'})")
    items = [(spec, s, case) for s in suites for case in s.cases]
    runs = runner.run(items, episodes, jobs, progress, variant=variant)
    if all(r.skipped for r in runs):
        raise ValueError(runs[0].skipped)
    by_name = {s.name: s for s in suites}
    pairs = [(by_name[r.suite], by_name[r.suite].case(r.case), r.episodes) for r in runs]   # skipped: for the tables
    rows, played = baselines.rows_for(pairs, jobs=jobs, progress=progress)
    return scorecard.build(runs, suites, rows, runs[0].policy, played)


def run_benchmark(args: argparse.Namespace) -> int:
    if args.out and os.path.exists(args.out) and not os.path.isdir(args.out):
        raise ValueError(f"--out {args.out}: exists and is not a folder")
    card = benchmark(args.policy, args.suite, args.episodes, args.jobs, args.abr_data, args.variant,
                     args.sample, progress=not args.no_progress)
    for suite in card.suites():
        print(f"suite {suite.identity()}", file=sys.stderr)
    print(card.markdown())
    if args.out:
        for path in card.write(args.out):
            print(f"wrote {path}", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Standalone entry point with the ``sysgym`` CLI's error convention (one line, exit 2)."""
    import gymnasium as gym

    args = build_parser().parse_args(argv)
    try:
        return run_benchmark(args)
    except (ValueError, FileNotFoundError, gym.error.Error) as error:
        if os.environ.get("SYSGYM_DEBUG"):
            raise
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        print(f"sysgym benchmark: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
