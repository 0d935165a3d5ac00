"""``sysgym benchmark``: score a policy on the fixed suites against the baselines.

    sysgym benchmark --policy heuristic:sjf --suite deeprm
    sysgym benchmark --policy runs/DeepRM-CompactSparse-v0_s0 --suite deeprm --jobs 2 --out bench_out
    sysgym benchmark --policy mypkg.agent:make --suite all --episodes 20
    sysgym benchmark --policy sb3:model.zip --suite appointments
    sysgym benchmark --policy runs/DAG-EGS-v0_s0 --suite dag     # fixed padding: larger tasks not applicable
    sysgym benchmark --policy reference --suite all --out bench_out --resume   # after Ctrl-C / kill

``--out`` is checked before any episode is played (a non-empty folder needs ``--force`` or
``--resume``); every finished unit of episodes is saved there as it finishes
(:mod:`~sysgym.benchmark.runlog`), so Ctrl-C or SIGTERM stops the run with exit status 130 and one
line, workers terminated, and ``--resume`` plays only what is missing.

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
POLICY_HELP = ("any policy spec (README: policy forms): heuristic:NAME (a family baseline, e.g. heuristic:sjf), "
               "oracle (appointments), reference (the shipped reference agents), a PPO checkpoint or training "
               "folder (runs/X), sb3:PATH.zip (Stable-Baselines3 / MaskablePPO), rllib:DIR (an RLlib checkpoint), "
               "or module:factory (factory(env) -> object with act(obs, info); a .py file path also works)")


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--policy", required=True, help=POLICY_HELP)
    parser.add_argument("--suite", default="all", choices=SUITE_CHOICES, help="family suite (default: all)")
    parser.add_argument("--episodes", type=int, default=None,
                        help="episodes per env, at most the suite's (default: the suite's)")
    parser.add_argument("--jobs", type=int, default=1, help="worker processes (results do not depend on it)")
    parser.add_argument("--out", default=None,
                        help="folder for scorecard.md, results.csv, results.json, scores.png and episodes.json "
                             "(every finished unit of episodes, saved as it finishes)")
    parser.add_argument("--force", action="store_true", help="write into a non-empty --out folder (replacing its files)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run saved in --out (its episodes.json): play only the missing episodes")
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
              progress: bool = False, log=None):
    """Score ``policy`` (a ``--policy`` string or a picklable ``factory(env)``) on a suite; returns
    a :class:`sysgym.benchmark.scorecard.Scorecard`. ``log`` (a :class:`~sysgym.benchmark.runlog.RunLog`)
    keeps every finished unit of episodes and supplies those it already holds."""
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
    runs = runner.run(items, episodes, jobs, progress, variant=variant, log=log)
    if all(r.skipped for r in runs):
        raise ValueError(runs[0].skipped)
    by_name = {s.name: s for s in suites}
    pairs = [(by_name[r.suite], by_name[r.suite].case(r.case), r.episodes) for r in runs]   # skipped: for the tables
    rows, played = baselines.rows_for(pairs, jobs=jobs, progress=progress, log=log)
    return scorecard.build(runs, suites, rows, runs[0].policy, played, trained_on=_trained_on(spec, runs, suites))


def _trained_on(spec, runs, suites) -> dict[tuple[str, str], str]:
    """(suite, case) -> why the case's inputs overlap the data that trained the policy."""
    from .heldout import overlap

    by_name = {s.name: s for s in suites}
    found = {}
    for r in runs:
        if r.skipped is None:
            why = overlap(spec, by_name[r.suite].case(r.case), r.env_id)
            if why:
                found[(r.suite, r.case)] = why
    return found


def run_benchmark(args: argparse.Namespace) -> int:
    from sysgym.agents.runs import (
        INTERRUPTED_EXIT,
        interrupted_message,
        prepare_out_dir,
        stop_signals,
    )

    from .policies import parse
    from .runlog import FILE_NAME, RunLog, fingerprint

    if args.resume and not args.out:
        raise ValueError("--resume continues the run saved in --out; give --out")
    out = prepare_out_dir(args.out, force=args.force, resume=args.resume) if args.out else None
    spec = parse(args.policy, sample=args.sample)
    log = RunLog(out / FILE_NAME if out else None, spec.label, fingerprint(spec), resume=args.resume)
    resumed = len(log)
    try:
        with stop_signals():
            card = benchmark(spec, args.suite, args.episodes, args.jobs, args.abr_data, args.variant,
                             args.sample, progress=not args.no_progress, log=log)
    except KeyboardInterrupt:
        kept = (f"{log.episodes} finished episodes kept in {out / FILE_NAME}; rerun with --resume to continue"
                if out is not None and len(log) else "no finished episodes kept" + ("" if out else " (no --out)"))
        print(interrupted_message("benchmark", kept), file=sys.stderr)
        return INTERRUPTED_EXIT
    if resumed:
        print(f"resumed: {resumed} units of episodes read from {out / FILE_NAME}", file=sys.stderr)
    for suite in card.suites():
        print(f"suite {suite.identity()}", file=sys.stderr)
    print(card.markdown())
    if out is not None:
        for path in card.write(out):
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
