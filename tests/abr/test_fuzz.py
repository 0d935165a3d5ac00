"""Hypothesis over the readers and snapshots (``fuzz_cases.py``), each suite in a fresh
interpreter with a per-example watchdog: a crash or a hang fails the test, not the test run."""

from __future__ import annotations

from .conftest import run_isolated


def test_random_bytes_and_fields_into_the_readers_never_crash_hang_or_leave_the_space():
    out = run_isolated("from tests.abr.fuzz_cases import readers; readers(120)", timeout=240)
    assert out.endswith("ok\n")


def test_random_snapshots_are_refused_or_play_inside_the_space():
    out = run_isolated("from tests.abr.fuzz_cases import snapshots; snapshots(12)", timeout=240)
    assert out.endswith("ok\n")
    assert int(out.split("accepted ")[1].split()[0]) > 50     # the suite also exercised accepted states
