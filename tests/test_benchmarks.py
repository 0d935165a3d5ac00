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
