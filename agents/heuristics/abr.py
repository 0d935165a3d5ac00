"""ABR baselines: buffer-based (BB), rate-based (RB), robustMPC, and the offline optimum.

Each reads what a player knows after every chunk (``info``: buffer, last chunk's size and delay,
chunk index, last level) and the video manifest (chunk sizes, ladder, the env's QoE), so it works
on any observation layout. They take a single env (returning an int) or a native vector env
(returning one level per sub-env). Call ``act`` once per step: RB and robustMPC remember the
throughputs they were shown. On the first chunk (no throughput measured yet) every rule plays the
env's ``initial_level`` (Pensieve's DEFAULT_QUALITY = 1 in Pensieve mode), or level 0.

References: T.-Y. Huang, R. Johari, N. McKeown, M. Trunnell, M. Watson, "A Buffer-Based Approach
to Rate Adaptation", SIGCOMM 2014 (BB; reservoir/cushion as in Pensieve's bb.py). J. Jiang,
V. Sekar, H. Zhang, "Improving Fairness, Efficiency, and Stability in HTTP-based Adaptive Video
Streaming with FESTIVE", CoNEXT 2012 (harmonic-mean rate estimate). X. Yin, A. Jindal, V. Sekar,
B. Sinopoli, "A Control-Theoretic Approach for Dynamic Adaptive Video Streaming over HTTP",
SIGCOMM 2015 (robustMPC). H. Mao et al., SIGCOMM 2017 (Pensieve: these baselines and the offline
optimal by dynamic programming).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode

from sysgym.cython_core.abr import plan_offline
from sysgym.cython_core.abr_mpc import mpc_search, robust_mpc_act
from sysgym.envs.abr import AbrVectorEnv, build_config

from .base import Heuristic, native_env

_INFO_KEYS = ("chunk_index", "buffer_s", "chunk_bytes", "delay_s", "last_level")


class AbrHeuristic(Heuristic):
    """Common plumbing: the batched env behind a single or vector env, batched info arrays."""

    def __init__(self, env: gym.Env | gym.vector.VectorEnv, seed: int | None = None):
        super().__init__(env, seed)
        self._env, self._single = native_env(env, AbrVectorEnv, type(self).__name__)
        self.config = self._env.config
        level = self.config.initial_level
        self.first_level = 0 if level is None else level

    def _info(self, info: dict[str, Any]) -> dict[str, np.ndarray]:
        dtypes = {"chunk_index": np.int64, "last_level": np.int64}
        return {k: np.ascontiguousarray(np.atleast_1d(info[k]), dtype=dtypes.get(k, np.float64))
                for k in _INFO_KEYS}

    def _out(self, levels: np.ndarray) -> int | np.ndarray:
        return int(levels[0]) if self._single else levels.astype(np.int64)


class BufferBased(AbrHeuristic):
    """BB: level 0 below ``reservoir_s`` of buffer, the top level above reservoir + cushion, and
    in between the level index linear in the buffer, floor((L-1) (b - reservoir) / cushion)."""

    name = "bb"

    def __init__(self, env, seed: int | None = None, reservoir_s: float = 5.0, cushion_s: float = 10.0):
        super().__init__(env, seed)
        if not (reservoir_s >= 0 and cushion_s > 0):
            raise ValueError(f"need reservoir_s >= 0 and cushion_s > 0, got {reservoir_s}, {cushion_s}")
        self.reservoir_s, self.cushion_s = reservoir_s, cushion_s

    def act(self, obs: Any, info: dict[str, Any]) -> int | np.ndarray:
        inf = self._info(info)
        top = self.config.num_levels - 1
        span = np.clip((inf["buffer_s"] - self.reservoir_s) / self.cushion_s, 0.0, 1.0)
        levels = np.floor(top * span).astype(np.int64)
        levels = np.where(inf["chunk_index"] == 0, self.first_level, levels)
        return self._out(levels)


class RateBased(AbrHeuristic):
    """RB: the highest level whose bitrate is at most the harmonic mean of the last ``window``
    measured throughputs (chunk bytes over chunk delay); level 0 if none is."""

    name = "rb"

    def __init__(self, env, seed: int | None = None, window: int = 5):
        super().__init__(env, seed)
        if window < 1:
            raise ValueError(f"window must be >= 1, got {window}")
        self.window = window
        self.reset()

    def reset(self) -> None:
        n = self._env.num_envs
        self._thr = np.ones((n, self.window))     # bits/s, newest last
        self._count = np.zeros(n, dtype=np.int64)

    def act(self, obs: Any, info: dict[str, Any]) -> int | np.ndarray:
        inf = self._info(info)
        fresh = inf["chunk_index"] == 0
        self._count[fresh] = 0
        measured = ~fresh
        self._thr[measured] = np.roll(self._thr[measured], -1, axis=1)
        self._thr[measured, -1] = inf["chunk_bytes"][measured] * 8.0 / inf["delay_s"][measured]
        self._count[measured] = np.minimum(self._count[measured] + 1, self.window)
        recent = np.arange(self.window)[None, :] >= (self.window - self._count)[:, None]
        inverse_sum = np.where(recent, 1.0 / self._thr, 0.0).sum(axis=1)
        estimate = np.divide(self._count, inverse_sum, out=np.zeros(len(fresh)), where=self._count > 0)
        bps = np.asarray(self.config.bitrates_kbps) * 1000.0
        levels = np.maximum((bps[None, :] <= estimate[:, None]).sum(axis=1) - 1, 0)
        levels = np.where(fresh, self.first_level, levels)
        return self._out(levels)


class RobustMPC(AbrHeuristic):
    """robustMPC (Yin et al. 2015, as in Pensieve's mpc.py), with the search in Cython.

    After each chunk it measures the throughput S / d (bytes/s), records the relative error
    |estimate - measured| / measured of its previous estimate (0 the first time), and predicts
    C = harmonic mean of the last ``window`` throughputs / (1 + max of the last ``window`` errors).
    It then tries every plan of levels for the next min(``horizon``, chunks left) chunks (6^5 =
    7,776 plans with Pensieve's ladder), simulating each chunk as: download = size / C; rebuffer =
    max(download - b, 0); b = max(b - download, 0) + chunk_s, minus the env's cap sleeps; reward =
    q[l] - mu * rebuffer - lambda * |q[l] - q[previous]| with the env's own QoE. It plays the first
    level of the plan with the largest summed reward (ties: the last plan in lexicographic order).
    Unlike Pensieve's mpc.py it looks at the sizes of the chunks it will actually download
    (mpc.py's index is one chunk ahead) and models the buffer cap.
    """

    name = "robust_mpc"

    def __init__(self, env, seed: int | None = None, horizon: int = 5, window: int = 5):
        super().__init__(env, seed)
        if window < 1:
            raise ValueError(f"window must be >= 1, got {window}")
        cfg = self.config
        self.horizon, self.window = horizon, window
        self._model = {"horizon": horizon, "num_chunks": cfg.num_chunks, "chunk_s": cfg.chunk_s,
                       "buffer_cap_s": cfg.buffer_cap_s, "sleep_step_s": cfg.sleep_step_s,
                       "rebuffer_penalty": cfg.rebuffer_penalty, "smoothness_penalty": cfg.smoothness_penalty,
                       "first_level": self.first_level}
        self._sizes = np.ascontiguousarray(cfg.sizes)
        self._quality = np.asarray(cfg.quality, dtype=np.float64)
        mpc_search(self._model, self._sizes, self._quality, 0.0, -1, 0, 1.0)  # validates horizon and ladder
        self.reset()

    def reset(self) -> None:
        n = self._env.num_envs
        self._thr = np.ones((n, self.window))
        self._err = np.zeros((n, self.window))
        self._count = np.zeros(n, dtype=np.int64)
        self._estimate = np.zeros(n)
        self.predicted_bandwidth = np.zeros(n)   # bytes/s used by the last decision, per sub-env
        self._levels = np.zeros(n, dtype=np.int64)

    def act(self, obs: Any, info: dict[str, Any]) -> int | np.ndarray:
        inf = self._info(info)
        robust_mpc_act(self._model, self._sizes, self._quality, inf["chunk_index"], inf["chunk_bytes"],
                       inf["delay_s"], inf["buffer_s"], inf["last_level"], self._thr, self._err, self._count,
                       self._estimate, self.predicted_bandwidth, self._levels)
        return self._out(self._levels.copy())


HEURISTICS: dict[str, type[AbrHeuristic]] = {"bb": BufferBased, "rb": RateBased, "robust_mpc": RobustMPC}


# ---------------------------------------------------------------------------- offline optimum
def offline_optimal_plan(env: gym.Env | gym.vector.VectorEnv, index: int = 0, dt: float = 0.25,
                         refine: int = 3) -> tuple[np.ndarray, float]:
    """The best level sequence for sub-env ``index``'s episode, planned at its start with full
    knowledge of the trace (the env must be noise-free and at chunk 0).

    Dynamic programming over chunks (as Pensieve's offline optimal): the states after each chunk
    are merged into cells of (level, trace time // g, buffer // g), each cell keeping its
    best-scoring state exactly, so the plan is feasible and its return is what the env pays.
    ``refine`` passes run with g = dt * 4**(refine-1), ..., dt * 4, dt; each pass drops the states
    that cannot beat the best plan found so far even at top quality for every later chunk, and
    the best plan of all passes is returned as (levels, planned return). Smaller ``dt`` -> closer
    to the true optimum (on the shipped test traces dt = 1 s is within ~1 % of dt = 0.1 s).
    """
    vec, _ = native_env(env, AbrVectorEnv, "offline_optimal_plan")
    cfg = vec.config
    if cfg.noise:
        raise ValueError("the offline optimum needs a deterministic env: make it with noise=False")
    if int(vec._state["chunk"][index]) != 0:
        raise ValueError("plan at the start of an episode (chunk_index 0)")
    if not (dt > 0 and refine >= 1):
        raise ValueError(f"need dt > 0 and refine >= 1, got {dt}, {refine}")
    k, seg, t = vec.trace_position(index)
    bank = vec._bank
    lo, hi = int(bank["first"][k]), int(bank["first"][k + 1])
    args = (cfg.kernel_config(1), bank["tau"][lo:hi], bank["rate"][lo:hi], seg, t, bank["sizes"], bank["quality"])
    best_plan, best_value = None, -np.inf
    for p in range(refine - 1, -1, -1):
        plan, value, _ = plan_offline(*args, float(dt * 4**p), best_value)
        if plan is not None and value > best_value:
            best_plan, best_value = plan, value
    return best_plan, float(best_value)


class OfflineOptimal(AbrHeuristic):
    """Plays :func:`offline_optimal_plan`, planned for each sub-env when its episode starts.

    Not an online policy (it reads the whole trace): the upper bound baselines are compared with.
    """

    name = "offline_optimal"

    def __init__(self, env, seed: int | None = None, dt: float = 0.25, refine: int = 3):
        super().__init__(env, seed)
        if self.config.noise:
            raise ValueError("OfflineOptimal needs a deterministic env: make it with noise=False")
        self.dt, self.refine = dt, refine
        self._plans: list[np.ndarray | None] = [None] * self._env.num_envs
        self.planned_returns = np.zeros(self._env.num_envs)

    def act(self, obs: Any, info: dict[str, Any]) -> int | np.ndarray:
        chunk = self._info(info)["chunk_index"]
        levels = np.empty(len(chunk), dtype=np.int64)
        for i, c in enumerate(chunk):
            if c == 0:
                self._plans[i], self.planned_returns[i] = offline_optimal_plan(self._env, i, self.dt, self.refine)
            levels[i] = self._plans[i][c]
        return self._out(levels)


def evaluate_on_traces(make_policy: Any, traces: Any = "test", **env_kwargs: Any) -> list[dict[str, float]]:
    """Each trace played once from its start, noise-free (Pensieve's test protocol), all traces in
    one native vector env; returns each episode's ``episode_metrics`` in trace order.

    ``make_policy(vec_env)`` builds the policy (e.g. a class from :data:`HEURISTICS`).
    """
    kwargs = {"trace_order": "sequential", "noise": False, **env_kwargs}
    n = build_config(traces=traces, **kwargs).num_traces
    vec = AbrVectorEnv(n, autoreset_mode=AutoresetMode.DISABLED, traces=traces, **kwargs)
    policy = make_policy(vec)
    obs, info = vec.reset(options={"trace_index": np.arange(n)})
    while True:
        obs, _, terminated, _, info = vec.step(policy.act(obs, info))
        if terminated.all():
            break
    metrics = info["episode_metrics"]
    return [{k: float(metrics[k][i]) for k in vec.metric_names} for i in range(n)]
