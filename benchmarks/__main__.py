"""Run every benchmark module: ``python -m benchmarks [--quick] [--only NAME ...]``."""

import argparse
import importlib
import pkgutil
import time

import benchmarks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small budgets (seconds per module)")
    parser.add_argument("--only", action="append", help="module name, e.g. bench_deeprm (repeatable)")
    args = parser.parse_args()
    names = sorted(m.name for m in pkgutil.iter_modules(benchmarks.__path__) if m.name.startswith("bench_"))
    names.append("time_to_target")   # its make-bench entry is always its quick mode (minutes)
    for name in names:
        if args.only and name not in args.only:
            continue
        start = time.perf_counter()
        print(f"\n## {name}\n", flush=True)
        importlib.import_module(f"benchmarks.{name}").main(quick=args.quick)
        print(f"\n({name}: {time.perf_counter() - start:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
