"""The Cython kernel equals the pure-Python reference model step for step, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

from sysgym.envs.abr import METRIC_NAMES, AbrVectorEnv
from sysgym.envs.seeding import rng_state
from tests.reference.abr import AbrSession
from tests.reference.rng import Rng

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
    cfg = vec.config
    seed = 1000 * config_seed
    obs, infos = vec.reset(seed=seed)
    sessions = [AbrSession(cfg, rng_state(seed + i)) for i in range(SUB_ENVS)]
    ref_obs = [s.reset(seeded=True) for s in sessions]
    ref_info = [{"chunk_index": 0, "buffer_s": 0.0, "trace_index": s.k} for s in sessions]
    _compare(obs, infos, ref_obs, ref_info)
    rng = np.random.default_rng(config_seed)
    capped = 0
    for episode in range(EPISODES):
        replace_at = int(rng.integers(0, cfg.num_chunks))     # one future-input replacement per episode
        for c in range(cfg.num_chunks):
            if c == replace_at and episode > 0:
                k = int(rng.integers(0, cfg.num_traces))
                tau = cfg.traces[k].time_s
                offset = float(rng.uniform(cfg.loop_start(cfg.traces[k]), tau[-1]))
                if rng.random() < 0.3:
                    offset = float(tau[rng.integers(0, len(tau))])     # exactly on a timestamp
                target = int(rng.integers(0, SUB_ENVS))
                vec.set_future_input(k, offset, target)
                sessions[target].replace_future(k, offset)
            actions = rng.integers(0, cfg.num_levels, SUB_ENVS)
            obs, rewards, terminated, truncated, infos = vec.step(actions)
            steps = [s.step(int(a)) for s, a in zip(sessions, actions)]
            _compare(obs, infos, [st.obs for st in steps], [st.info for st in steps])
            for i, st in enumerate(steps):
                assert list(infos["reward_components"][i]) == st.components
                assert bool(terminated[i]) == st.terminated and not truncated[i]
                if st.metrics is not None:
                    got = {k: infos["episode_metrics"][k][i] for k in METRIC_NAMES}
                    assert got == st.metrics
                    capped += st.metrics["capped_downloads"]
            for i, s in enumerate(sessions):
                assert vec.trace_position(i) == (s.k, s.i, s.t)
        assert terminated.all()
        if episode == 0:   # an explicit trace choice, then the default order, then a seeded restart
            forced = np.arange(SUB_ENVS) % cfg.num_traces
            obs, infos = vec.reset(options={"trace": forced})
            ref_obs = [s.reset(int(k)) for s, k in zip(sessions, forced)]
        elif episode == 1:
            obs, infos = vec.reset()
            ref_obs = [s.reset() for s in sessions]
        else:
            obs, infos = vec.reset(seed=seed + 7)
            for i, s in enumerate(sessions):
                s.rng = Rng(rng_state(seed + 7 + i))
            ref_obs = [s.reset(seeded=True) for s in sessions]
        _compare(obs, infos, ref_obs, [{"trace_index": s.k} for s in sessions])


def test_the_random_configurations_reach_every_branch():
    """The equivalence above covers capped downloads, whole-loop skips, both loop clocks and both
    observation layouts (else a branch could differ unnoticed)."""
    seen = {"capped": False, "skip": False, "zero": False, "first": False, "clean": False, "pensieve": False}
    for config_seed in range(CONFIGS):
        kwargs = random_kwargs(config_seed)
        seen[kwargs["loop_clock"]] = True
        seen[kwargs["observation"]] = True
        vec = AbrVectorEnv(SUB_ENVS, autoreset_mode=AutoresetMode.DISABLED, **kwargs)
        cfg = vec.config
        loops = [vec._kernel.loop(k) for k in range(cfg.num_traces)]
        if cfg.sizes[:, :cfg.num_chunks].max() > min(nbytes for _, _, nbytes in loops):
            seen["skip"] = True
        vec.reset(seed=config_seed)
        rng = np.random.default_rng(config_seed)
        for _ in range(cfg.num_chunks):
            _, _, terminated, _, infos = vec.step(rng.integers(0, cfg.num_levels, SUB_ENVS))
        if np.any(infos["episode_metrics"]["capped_downloads"] > 0):
            seen["capped"] = True
    assert all(seen.values()), seen
