"""The Cython kernel equals the pure-Python reference model step for step, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

from sysgym.envs.abr import METRIC_NAMES, AbrVectorEnv
from sysgym.envs.seeding import rng_state
from tests.reference.abr import AbrSession

from .conftest import random_kwargs

CONFIGS = 60       # random configurations ...
SUB_ENVS = 4       # ... x sub-envs (one seed each) = 240 seeded sessions on random traces
EPISODES = 3


def _compare(obs: np.ndarray, infos: dict, ref_obs: list, ref_info: list[dict]) -> None:
    for i in range(len(ref_obs)):
        assert np.array_equal(obs[i], ref_obs[i]), f"sub-env {i}: obs\n{obs[i]}\n!=\n{ref_obs[i]}"
        for key, value in ref_info[i].items():
            assert infos[key][i] == value, f"sub-env {i}: info[{key!r}] {infos[key][i]!r} != {value!r}"


@pytest.mark.parametrize("config_seed", range(CONFIGS))
def test_kernel_matches_reference(config_seed):
    kwargs = random_kwargs(config_seed)
    vec = AbrVectorEnv(SUB_ENVS, autoreset_mode=AutoresetMode.DISABLED, **kwargs)
    seed = 1000 * config_seed
    obs, infos = vec.reset(seed=seed)
    sessions = [AbrSession(vec.config, rng_state(seed + i)) for i in range(SUB_ENVS)]
    ref_obs = [s.reset() for s in sessions]
    ref_info = [{"chunk_index": 0, "buffer_s": 0.0, "trace_index": s.k} for s in sessions]
    _compare(obs, infos, ref_obs, ref_info)
    actions_rng = np.random.default_rng(config_seed)
    for episode in range(EPISODES):
        for _ in range(vec.config.num_chunks):
            actions = actions_rng.integers(0, vec.config.num_levels, SUB_ENVS)
            obs, rewards, terminated, truncated, infos = vec.step(actions)
            steps = [s.step(int(a)) for s, a in zip(sessions, actions)]
            _compare(obs, infos, [st.obs for st in steps], [st.info for st in steps])
            for i, st in enumerate(steps):
                assert list(infos["reward_components"][i]) == st.components
                assert bool(terminated[i]) == st.terminated and not truncated[i]
                if st.metrics is not None:
                    got = {k: infos["episode_metrics"][k][i] for k in METRIC_NAMES}
                    assert got == st.metrics
        assert terminated.all()
        if episode == 0:   # an explicit trace choice, then the default order again
            forced = np.arange(SUB_ENVS) % vec.config.num_traces
            obs, infos = vec.reset(options={"trace_index": forced})
            ref_obs = [s.reset(int(k)) for s, k in zip(sessions, forced)]
        else:
            obs, infos = vec.reset()
            ref_obs = [s.reset() for s in sessions]
        _compare(obs, infos, ref_obs, [{"trace_index": s.k} for s in sessions])
