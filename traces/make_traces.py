"""Regenerate the shipped traces: ``python -m sysgym.traces.make_traces [family ...]``.

Every file under traces/ is produced here from a fixed seed by sysgym's own generators, so the
data can be audited and rebuilt; nothing is downloaded.
"""

from __future__ import annotations

import sys

from sysgym.traces import TRACES_DIR


def deeprm() -> None:
    """Synthetic SWF workloads (DeepRM bimodal jobs, Poisson arrivals, a few real-trace defects)."""
    from sysgym.envs.deeprm.workload import generate_swf

    generate_swf(TRACES_DIR / "deeprm" / "synthetic_64.swf", num_jobs=2000, num_processors=64,
                 max_job_size=32, max_job_length=15, mean_interarrival=120.0, seed=2024)
    generate_swf(TRACES_DIR / "deeprm" / "synthetic_10.swf", num_jobs=500, num_processors=10,
                 max_job_size=10, max_job_length=15, mean_interarrival=220.0, seed=2025)


def dag() -> None:
    """DOT task sets from the DAG-EGS generators (see traces/dag/README.md)."""
    from sysgym.traces.dag.make_tasksets import main as make_tasksets

    make_tasksets()


def abr() -> None:
    """Synthetic cooked bandwidth traces and a VBR video (see traces/abr/README.md)."""
    from sysgym.traces.abr.generate import write_all

    write_all()


FAMILIES = {"deeprm": deeprm, "dag": dag, "abr": abr}


def main(argv: list[str]) -> None:
    for name in argv or list(FAMILIES):
        if name not in FAMILIES:
            raise SystemExit(f"unknown family {name!r}; choose from {sorted(FAMILIES)}")
        FAMILIES[name]()


if __name__ == "__main__":
    main(sys.argv[1:])
