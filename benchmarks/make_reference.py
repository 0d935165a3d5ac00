"""The benchmark's reference rows: every suite case's random policy, classical baselines and
oracle or bound, on the suite's full episodes, written to ``sysgym/benchmark/reference.json``
(package data, so installed copies score against the same numbers).

    python -m benchmarks.make_reference                 # all suites -> sysgym/benchmark/reference.json
    python -m benchmarks.make_reference --jobs 2
    python -m benchmarks.make_reference --abr-data ../shared/data/abr   # also the FCC / Norway sets
    python -m benchmarks.make_reference --check         # recompute and compare with the shipped file
    python -m benchmarks.make_reference --suite cc      # one suite; the others' entries are kept

``tests/test_benchmark_reference.py`` recomputes a subset and requires exact equality, so the file
cannot drift from the code: rerun this script whenever a suite, an env or a baseline changes.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from sysgym.benchmark import baselines
from sysgym.benchmark.scorecard import reference_table
from sysgym.benchmark.suites import get_suites


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--abr-data", default=None, metavar="DIR")
    parser.add_argument("--suite", default="all")
    parser.add_argument("--check", action="store_true", help="compare with the shipped file instead of writing it")
    parser.add_argument("--out", default=str(baselines.FILE))
    args = parser.parse_args(argv)

    suites = get_suites(args.suite, args.abr_data)
    rows = {}
    for suite in suites:
        start = time.perf_counter()
        rows.update(baselines.compute([(suite, c) for c in suite.cases], jobs=args.jobs, progress=True))
        print(f"{suite.identity()}: {time.perf_counter() - start:.1f} s", file=sys.stderr)
    print(reference_table(suites, rows))
    if args.check:
        return _check(suites, rows)
    command = ("python -m benchmarks.make_reference" + (f" --suite {args.suite}" if args.suite != "all" else "")
               + (f" --abr-data {args.abr_data}" if args.abr_data else ""))
    data = baselines.to_data(suites, rows, command)
    if args.suite != "all":   # keep the other suites' entries (each names the command that made it)
        kept = baselines.load(args.out)
        kept["suites"].update(data["suites"])
        data["suites"] = kept["suites"]
        data["generated_by"] = kept.get("generated_by", command)
    print(f"wrote {baselines.write(data, args.out)}", file=sys.stderr)
    return 0


def _check(suites, rows) -> int:
    shipped = baselines.load()
    bad = 0
    for suite in suites:
        for case in suite.cases:
            mine = rows[(suite.name, case.name)]
            theirs = baselines.shipped_rows(shipped, suite, case, case.episodes)
            same = theirs is not None and all(np.array_equal(mine[k].values, theirs[k].values, equal_nan=True)
                                              for k in mine) and set(mine) == set(theirs)
            if not same:
                bad += 1
                print(f"differs: {suite.name}/{case.name}", file=sys.stderr)
    print("reference.json matches the code" if not bad else f"{bad} cases differ: rerun make_reference", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
