"""The real traces (FCC, Norway HSDPA) and Envivio chunk sizes load with our readers and run.

They live outside the repository (``../shared/data/abr`` or ``$SYSGYM_ABR_DATA``) and are never
committed; every test here skips cleanly when they are absent.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

from sysgym.envs.abr import AbrVectorEnv, load_video
from sysgym.envs.bandwidth import load_traces
from sysgym.envs.seeding import rng_state
from tests.reference.abr import AbrSession

DATA = Path(os.environ.get("SYSGYM_ABR_DATA", Path(__file__).resolve().parents[3] / "shared" / "data" / "abr"))
TRACE_SETS = {"fcc_train": 85, "norway_train": 115}


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"shared ABR data not present at {path}")
    return path


def test_envivio_video_has_the_documented_rates():
    sizes = load_video(_need(DATA / "video_envivio"))
    assert sizes.shape == (6, 49)
    kbps = sizes.mean(axis=1) * 8 / 4.0 / 1000     # 4-second chunks
    np.testing.assert_allclose(kbps, [302, 750, 1197, 1843, 2838, 4279], atol=1.0)


@pytest.mark.parametrize("name", sorted(TRACE_SETS))
def test_real_trace_sets_load_as_cooked_traces(name):
    traces = load_traces(_need(DATA / "traces" / name))
    assert len(traces) == TRACE_SETS[name]
    assert all(tr.time_s[0] >= 0 and tr.duration_s > 0 for tr in traces)
    assert 0.5 < np.mean([tr.mean_mbps for tr in traces]) < 3.0


@pytest.mark.parametrize("name", sorted(TRACE_SETS))
def test_kernel_matches_reference_on_real_traces_and_video(name):
    traces = load_traces(_need(DATA / "traces" / name))[::10]
    vec = AbrVectorEnv(4, autoreset_mode=AutoresetMode.DISABLED, pensieve_compatible=True, traces=traces,
                       video=_need(DATA / "video_envivio"))
    vec.reset(seed=99)
    sessions = [AbrSession(vec.config, rng_state(99 + i)) for i in range(4)]
    for s in sessions:
        s.reset()
    rng = np.random.default_rng(0)
    for _ in range(2):
        for _ in range(48):
            actions = rng.integers(0, 6, 4)
            obs, _, _, _, infos = vec.step(actions)
            for i, (s, a) in enumerate(zip(sessions, actions)):
                st = s.step(int(a))
                assert np.array_equal(obs[i], st.obs)
                assert list(infos["reward_components"][i]) == st.components
        obs, _ = vec.reset()
        for i, s in enumerate(sessions):
            assert np.array_equal(obs[i], s.reset())
