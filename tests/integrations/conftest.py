"""Shared set-up of the RLlib tests: one local Ray instance for the whole session.

These tests need Ray RLlib, which pins gymnasium 1.2.2, so they run in ``.venv-rllib``
(``make test`` creates it and runs them there after the main suite). Where Ray is not installed
(the main ``.venv``) each module is skipped; ``SYSGYM_REQUIRE_RAY=1`` (set by the Makefile for
``.venv-rllib``) turns a missing Ray into an error instead.
"""

from __future__ import annotations

import importlib.util
import os

import pytest

REQUIRED = os.environ.get("SYSGYM_REQUIRE_RAY", "") not in ("", "0")
MISSING = [m for m in ("ray", "torch") if importlib.util.find_spec(m) is None]
if MISSING and REQUIRED:
    raise ImportError(f"SYSGYM_REQUIRE_RAY is set but {', '.join(MISSING)} cannot be imported: "
                      'pip install "sysgym[rllib]" (make test does this in .venv-rllib)')


@pytest.fixture(scope="session")
def ray_session():
    """A local Ray instance (env runners are separate worker processes), shared by every test."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    from sysgym.integrations.rllib import register_all

    # address="local": a new instance, never a cluster another process left running on this machine
    ray.init(address="local", num_cpus=4, include_dashboard=False, log_to_driver=False,
             object_store_memory=256 * 2**20)
    register_all()
    yield ray
    ray.shutdown()
