"""`make bench` must not rot: every benchmark module runs in quick mode and prints its tables."""

import pkgutil
import subprocess
import sys

import benchmarks

MODULES = sorted(m.name for m in pkgutil.iter_modules(benchmarks.__path__) if m.name.startswith("bench_"))


def test_every_benchmark_runs_in_quick_mode():
    assert {"bench_deeprm", "bench_dag", "bench_abr", "bench_cc", "bench_appointments", "bench_ppo",
            "bench_memory"} <= set(MODULES)
    result = subprocess.run([sys.executable, "-m", "benchmarks", "--quick"], capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    for name in MODULES:
        section = out.split(f"## {name}\n", 1)[1].split("\n## ", 1)[0]
        assert "\n|-" in section, f"{name} printed no markdown table:\n{section[:500]}"


def test_rounded_keeps_six_significant_digits_through_nesting():
    from sysgym.bench import rounded

    assert rounded({"a": [1.23456789, 2, "x"], "b": (0.1 + 0.2, 123456789.0)}) == \
        {"a": [1.23457, 2, "x"], "b": [0.3, 123457000.0]}


def test_p3_ranking_bounds_counts_the_prefixes_that_straddle_a_cost():
    """One short and one long task, no break: the root, the two one-task prefixes and two orderings
    (short then long: no wait; long then short: the short waits 30 min), so the straddling prefixes
    are worked out by hand."""
    from benchmarks.p3_ranking_bounds import Tree
    from sysgym.envs.appointments import build_config
    from tests.reference.appointments import Spec

    spec = Spec.of(build_config(problem="P2", n_short=1, n_long=1))
    tree = Tree(spec, [[1.0], [1.0]])
    cheap, dear = sorted(tree.leaves)
    assert len(tree.leaves) == 2 and cheap < dear
    assert len(tree.nodes) == 3                        # the root and the two one-task prefixes
    assert tree.straddling(cheap) == 2                 # the root and the prefix above the cheap one
    assert tree.straddling(dear) == 2
    assert tree.straddling((cheap + dear) / 2) == 1    # only the root holds both sides
    assert tree.straddling(dear + 1.0) == 0
    assert len(tree.pairs) == 2
