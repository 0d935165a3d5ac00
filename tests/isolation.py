"""Running test code in a fresh interpreter, so that a crash or a hang fails one test.

Cases that could crash the process (edited snapshots, hostile inputs to a kernel) run here: a
signal (segfault, abort), a non-zero exit or running past the timeout fails the calling test
instead of taking pytest down with it. ``PYTHONFAULTHANDLER`` makes a hang or crash print where
it happened, even inside a ``nogil`` loop.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_isolated(code: str, *args: str, timeout: float = 120.0) -> str:
    """Run ``code`` (dedented; ``sys.argv[1:]`` = ``args``) from the repository root; its stdout."""
    env = {**os.environ, "PYTHONFAULTHANDLER": "1"}
    try:
        done = subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"hung: still running after {timeout:g} s:\n{code}")
    if done.returncode < 0:
        pytest.fail(f"crashed with signal {-done.returncode}:\n{done.stderr[-3000:]}")
    if done.returncode != 0:
        pytest.fail(f"exited with status {done.returncode}:\n{done.stderr[-6000:]}")
    return done.stdout
