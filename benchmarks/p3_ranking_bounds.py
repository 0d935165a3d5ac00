"""How much work an exact P3 percentile needs, whatever the algorithm (issue #24, item 2).

A P3 day ends by ranking its cost among all 84,084 orderings of that day. The issue asks for
>= 50 k env steps/s with that exact rank on: with 14 steps a day, about 280 µs per day for
stepping and ranking together. This script walks the whole ordering tree of a few days with the
plain-Python reference model (tests/reference/appointments.py, independent of the kernel) and
counts, per day, what two families of exact methods cannot avoid:

* **Branch and bound on prefixes.** Even with *exact* bounds (each prefix knows the cheapest and
  the dearest ordering below it, which the kernel can only approximate), every prefix whose
  subtree holds orderings on both sides of the ranked cost must be expanded. Counted for the
  costs at the 10th, 50th and 90th percentile of the day's orderings (what an agent with
  percentile efficacy 90, 50 or 10 hands in).
* **Merging states.** The future of a prefix depends only on (end, previous type, items left);
  methods that share work across prefixes (the kernel's shared tails, a forward DP) keep one
  entry per distinct (state, idle, lateness) reached, and the day itself has some thousands of
  distinct (idle, lateness) pairs over its orderings, each to be compared with the cost.

Either count is several times the ~10-20 k node visits that fit in 280 µs at 10-30 ns each, which
is why the kernel's exact rank (about 2 ms per day) cannot reach the target by pruning or
sharing alone (docs/throughput.md, "The remaining slow paths").

    python -m benchmarks.p3_ranking_bounds [--days 3] [--out FILE]

Takes about 10 s per day here (pure Python). Tie tolerance 1e-9 as in the kernel.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from sysgym.bench import format_table
from sysgym.envs.appointments import build_config
from tests.reference.appointments import Spec, State

QUANTILES = (0.1, 0.5, 0.9)
TIE = 1e-9
DAY_SEED = 20_000      # the day seeds of benchmarks.bench_appointments' speed rows


class Tree:
    """The ordering tree of one day: per prefix, its tasks left and its subtree's cost range."""

    def __init__(self, spec: Spec, factors: list[list[float]]):
        self.spec = spec
        self.nodes: list[tuple[float, float]] = []          # (cheapest, dearest) below each prefix
        self.leaves: list[float] = []
        self.pairs: set[tuple[float, float]] = set()        # distinct (idle, lateness) of orderings
        self.states: set[tuple] = set()                     # distinct (end, prev, left, idle, late)
        self._walk(State(spec, factors))

    def _walk(self, state: State) -> tuple[float, float]:
        if state.over():
            cost = state.cost()
            self.leaves.append(cost)
            self.pairs.add((state.idle, state.late))
            return cost, cost
        left = tuple(state.left(t) for t in range(3))
        self.states.add((state.end, state.prev(), left, state.idle, state.late))
        lo, hi = np.inf, -np.inf
        for t in state.valid():
            child = state.copy()
            child.place(t)
            a, b = self._walk(child)
            lo, hi = min(lo, a), max(hi, b)
        self.nodes.append((lo, hi))
        return lo, hi

    def straddling(self, cost: float) -> int:
        """Prefixes with orderings both within the tie band of ``cost`` or below and at or above it."""
        return sum(1 for lo, hi in self.nodes if lo <= cost + TIE and hi >= cost - TIE)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    if not 1 <= args.days <= 50:
        raise ValueError(f"--days must be in 1..50, got {args.days}")
    cfg = build_config(problem="P3")
    spec = Spec.of(cfg)
    rng = np.random.default_rng(DAY_SEED)
    rows, start = [], time.perf_counter()
    for day in range(args.days):
        factors = [[1.0 + cfg.noise * (2.0 * rng.random() - 1.0) for _ in range(spec.counts[t])] for t in (0, 1)]
        tree = Tree(spec, factors)
        costs = np.sort(np.array(tree.leaves))
        row = [str(day), f"{len(costs):,}", f"{len(tree.nodes):,}"]
        row += [f"{tree.straddling(float(np.quantile(costs, q))):,}" for q in QUANTILES]
        row += [f"{len(tree.states):,}", f"{len(tree.pairs):,}"]
        rows.append(row)
        done = day + 1
        eta = (time.perf_counter() - start) / done * (args.days - done)
        print(f"day {done}/{args.days} done, ETA {eta:.0f} s", file=sys.stderr, flush=True)
    headers = ["day", "orderings", "prefixes (tree nodes)"]
    headers += [f"prefixes to expand, efficacy {round(100 * (1 - q))}" for q in QUANTILES]
    headers += ["distinct (state, idle, lateness)", "distinct (idle, lateness) of orderings"]
    text = (f"# python -m benchmarks.p3_ranking_bounds --days {args.days}\n"
            f"P3-v1 defaults (noise {cfg.noise}, alpha {cfg.alpha}); day multipliers from "
            f"numpy default_rng({DAY_SEED}); exact subtree bounds, tie tolerance {TIE}\n\n"
            + format_table(rows, headers) + "\n")
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
