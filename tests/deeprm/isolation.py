"""Run code that could crash the interpreter (a kernel fed a bad state or file) in a fresh process,
so a segfault or a hang fails the test instead of killing the test run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_isolated(code: str, timeout: float = 120.0) -> str:
    """Run ``code`` with this interpreter from the repository root; return its stdout.

    Fails the calling test if the process is killed by a signal, exits non-zero or runs longer
    than ``timeout`` seconds.
    """
    try:
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                timeout=timeout, cwd=ROOT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"hung: still running after {timeout:g} s:\n{code}")
    if result.returncode < 0:
        pytest.fail(f"crashed with signal {-result.returncode}:\n{result.stderr[-3000:]}")
    if result.returncode != 0:
        pytest.fail(f"exited with status {result.returncode}:\n{result.stderr[-6000:]}")
    return result.stdout
