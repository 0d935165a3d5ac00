"""PettingZoo ParallelEnv: N rate-controlled flows sharing one path, on the same kernel as CC-v0."""

from __future__ import annotations

import copy
import reprlib
import sys
from typing import Any

import numpy as np
from gymnasium import spaces
from pettingzoo import AECEnv, ParallelEnv
from pettingzoo.utils.conversions import parallel_to_aec_wrapper
from pettingzoo.utils.wrappers import OrderEnforcingWrapper

from sysgym.cython_core.cc import CCKernel

from .. import snapshot
from ..batched import RENDER_MODES, ExclusiveUse, KernelPickling, restore_arrays
from ..seeding import rng_state
from ..validate import check_kwargs, integer
from .config import CCConfig, build_config, kernel_config, kernel_tables
from .env import (
    FLOW_STAT_NAMES,
    METRIC_NAMES,
    REWARD_COMPONENTS,
    draw_frame,
    link_indices,
    spaces_for,
)
from .state import (
    FLOW_METRIC_NAMES,
    check_family_state,
    check_outputs,
    family_arrays,
    future_input_values,
)

PZ_RENDER_MODES = (*RENDER_MODES, "human")  # human: the ansi frame printed to stdout


class CCParallelEnv(KernelPickling, ParallelEnv):
    """``n_flows`` senders (agents ``flow_0`` ...) sharing the path; kwargs: see :mod:`sysgym.envs.cc`.

    Every agent has the observation and action space of the single-flow env and gets its own
    Aurora reward. Infos carry the reward components, the flow's monitor-interval statistics and,
    when the episode ends, ``episode_metrics``: the flow's throughput, latency and loss rate plus
    the shared ones (total throughput, utilisation, queueing delay, Jain's fairness index, ...).
    With ``n_flows=1`` it replays exactly the episodes of ``CC-v0`` for the same seed.

    ``max_cycles`` truncates every agent after that many cycles (steps of all flows) even before
    the episode's ``max_steps`` (then, as with Gymnasium's time limit, no ``episode_metrics``).
    Render modes: ``"ansi"``, ``"rgb_array"`` and ``"human"`` (prints the ansi frame).
    """

    metadata = {"render_modes": list(PZ_RENDER_MODES), "name": "sysgym_cc_v0", "is_parallelizable": True,
                "render_fps": 4}
    reward_components = REWARD_COMPONENTS
    metric_names = METRIC_NAMES

    def __init__(self, n_flows: int = 2, render_mode: str | None = None, max_cycles: int | None = None,
                 **kwargs: Any):
        if render_mode is not None and render_mode not in PZ_RENDER_MODES:
            raise ValueError(f"render_mode must be one of {PZ_RENDER_MODES} or None, got {render_mode!r}")
        check_kwargs("CC parallel env", build_config, kwargs)
        self.config: CCConfig = build_config(n_flows=n_flows, **kwargs)
        self.max_cycles = None if max_cycles is None else integer("max_cycles", max_cycles, 1, 2**62)
        self.render_mode = render_mode
        self.possible_agents = [f"flow_{i}" for i in range(self.config.n_flows)]
        self.agents: list[str] = []
        obs_space, act_space = spaces_for(self.config)
        # one space object per agent, so that seeding one agent's space leaves the others alone
        self.observation_spaces = {a: copy.deepcopy(obs_space) for a in self.possible_agents}
        self.action_spaces = {a: copy.deepcopy(act_space) for a in self.possible_agents}
        self.reward_weights = self.config.reward_weights()
        self._discrete = isinstance(act_space, spaces.Discrete)
        n = self.config.n_flows
        self._state = family_arrays(self.config, 1)
        self._state.update({
            "obs": np.tile(self.config.neutral_obs(), (1, n, 1)),
            "reward_components": np.zeros((1, n, len(REWARD_COMPONENTS))),
            "actions": np.zeros((1, n), dtype=np.int64 if self._discrete else np.float64),
            "terminated": np.zeros(1, dtype=np.uint8), "truncated": np.zeros(1, dtype=np.uint8),
            "metrics": np.zeros((1, len(METRIC_NAMES))), "rng": np.zeros((1, 4), dtype=np.uint64),
            "cycles": np.zeros(1, dtype=np.int64),
        })
        self._state["rng"][0] = rng_state(None)
        self._one = np.ones(1, dtype=np.uint8)
        self._config_id = snapshot.fingerprint(self.config)
        self._guard = ExclusiveUse(type(self).__name__)
        self._connect()

    def _connect(self) -> None:
        self._kernel = CCKernel(kernel_config(self.config, 1), self._state, kernel_tables(self.config))

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Names of each agent's observation entries (as in ``CC-v0``)."""
        return self.config.feature_names()

    def observation_space(self, agent: str) -> spaces.Box:
        return self.observation_spaces[agent]

    def action_space(self, agent: str) -> spaces.Space:
        return self.action_spaces[agent]

    # ------------------------------------------------------------------ PettingZoo API
    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None):
        """Start an episode; ``options={"link_index": i}`` runs entry i of the link set (other
        option keys are ignored, as PettingZoo's API test expects)."""
        with self._guard:
            index = link_indices(self.config, (options or {}).get("link_index"), 1)
            if seed is not None:
                self._state["rng"][0] = rng_state(seed)
            self._kernel.reset(self._one, index)
            self._state["cycles"][0] = 0
            self.agents = list(self.possible_agents)
            return self._observations(), {a: self._info(i, ended=False) for i, a in enumerate(self.agents)}

    def step(self, actions: dict[str, Any]):
        """One monitor interval for every flow; ``actions`` holds one action per live agent."""
        with self._guard:
            return self._step(actions)

    def _step(self, actions: dict[str, Any]):
        if not self.agents:
            raise RuntimeError("step() called after the episode ended (or before reset()); call reset()")
        if not isinstance(actions, dict):
            raise ValueError(f"actions must be a dict {{agent: action}}, got {type(actions).__name__}")
        unknown = [a for a in actions if a not in self.agents]
        if unknown:
            raise ValueError(f"actions for unknown or finished agents {unknown}; the live agents are {self.agents}")
        missing = [a for a in self.agents if a not in actions]
        if missing:
            raise ValueError(f"actions missing for live agents {missing}: every flow acts every step")
        buf = self._state["actions"][0]
        for i, agent in enumerate(self.possible_agents):
            buf[i] = self._check_action(agent, actions[agent])
        self._kernel.step(self._one)
        self._state["cycles"][0] += 1
        comps = self._state["reward_components"][0]
        ended = bool(self._state["truncated"][0])
        cut = self.max_cycles is not None and self._state["cycles"][0] >= self.max_cycles
        obs = self._observations()
        rewards = {a: float(comps[i] @ self.reward_weights) for i, a in enumerate(self.agents)}
        terminations = dict.fromkeys(self.agents, False)
        truncations = dict.fromkeys(self.agents, ended or cut)
        infos = {a: self._info(i, ended) for i, a in enumerate(self.agents)}
        if ended or cut:
            self.agents = []
        return obs, rewards, terminations, truncations, infos

    def _check_action(self, agent: str, action: Any) -> float | int:
        """``action`` as the int (discrete) or float (continuous) the kernel takes, or a ValueError.

        Only real numbers are actions: strings, bytes, bools, complex numbers, containers of them
        and ints too large for int64/uint64 are refused before any conversion (a cast would parse
        ``'0.5'``, turn ``True`` into 1 or drop an imaginary part)."""
        try:
            a = np.asarray(action)
        except (TypeError, ValueError, OverflowError):
            a = None
        if self._discrete:
            n = self.action_spaces[agent].n
            if a is None or a.ndim != 0 or a.dtype.kind not in "iu" or not 0 <= int(a) < n:
                raise ValueError(f"{agent}: action must be an int in [0, {n - 1}], got {_short(action)}")
            return int(a)
        if a is None or a.size != 1 or a.dtype.kind not in "iuf" or not np.isfinite(a.reshape(-1)[0]):
            raise ValueError(f"{agent}: action must be one finite number (shape (1,)), got {_short(action)}")
        return float(a.reshape(-1)[0])

    def _observations(self) -> dict[str, np.ndarray]:
        obs = self._state["obs"][0]
        return {a: obs[i].copy() for i, a in enumerate(self.possible_agents)}

    def _info(self, i: int, ended: bool) -> dict[str, Any]:
        s = self._state
        info: dict[str, Any] = {"reward_components": s["reward_components"][0, i].copy()}
        if self._discrete:
            info["action_mask"] = np.ones(len(self.config.rate_changes), dtype=np.int8)
        for k, name in enumerate(FLOW_STAT_NAMES):
            info[name] = float(s["flow_stats"][0, i, k])
        info["mi_duration"] = float(s["mi_duration"][0])
        info["time"] = float(s["now"][0])
        if ended:
            metrics = dict(zip(METRIC_NAMES, s["metrics"][0].tolist()))
            metrics["total_throughput"] = metrics.pop("throughput")
            metrics.update({f"flow_{name}": float(v) for name, v in zip(FLOW_METRIC_NAMES, s["flow_metrics"][0, i])})
            info["episode_metrics"] = metrics
        return info

    @property
    def state_space(self) -> spaces.Box:
        """The space of :meth:`state`: every flow's observation space, stacked (N, obs_size)."""
        single = self.observation_spaces[self.possible_agents[0]]
        n = len(self.possible_agents)
        return spaces.Box(np.tile(single.low, (n, 1)), np.tile(single.high, (n, 1)), dtype=single.dtype)

    def state(self) -> np.ndarray:
        """Global state: every flow's observation, stacked (N, obs_size)."""
        return self._state["obs"][0].copy()

    def render(self) -> Any:
        if self.render_mode is None:
            return None
        frame = draw_frame(self._state, self._kernel, self.config, 0,
                           "rgb_array" if self.render_mode == "rgb_array" else "ansi")
        if self.render_mode == "human":  # asked for explicitly: the only output an env writes
            sys.stdout.write(frame)
            return None
        return frame

    def close(self) -> None:
        pass

    # ------------------------------------------------------------------ helpers for agents and planners
    def sending_rates(self) -> np.ndarray:
        """Current sending rate of every flow (packets/s), shape (N,)."""
        return self._state["rate"][0].copy()

    def bottleneck_bandwidth(self) -> float:
        """Bandwidth of the narrowest link now (packets/s)."""
        return float(self._kernel.bottleneck_bandwidth(0))

    def bottleneck_queue(self) -> int:
        """Packets held now by the narrowest link."""
        return int(self._kernel.bottleneck_queue(0))

    def set_future_input(self, trace: int, offset_s: float) -> None:
        """From now on, link 0 follows trace ``trace`` of the env's trace table from ``offset_s``
        seconds into it; everything the senders have seen and done is kept (see
        :meth:`sysgym.envs.cc.CCVectorEnv.set_future_input`)."""
        trace, offset_s = future_input_values(self.config, trace, offset_s)
        with self._guard:
            if not self.agents:
                raise ValueError("no running episode (reset first): the next reset draws a new trace")
            self._state["trace_id"][0] = trace
            self._state["trace_pos"][0] = offset_s

    def future_input(self) -> tuple[int, float]:
        """The trace link 0 follows and the position in it now (seconds)."""
        if self.config.trace_table is None:
            raise ValueError("future_input needs an env that replays traces (traces=...)")
        return int(self._state["trace_id"][0]), float(self._state["trace_pos"][0])

    def get_state(self) -> dict[str, Any]:
        """A picklable snapshot of the simulation, the live agents and the configuration's identity
        (the same envelope as the Gymnasium envs, see :mod:`sysgym.envs.snapshot`); read under the
        thread guard, so it raises ``RuntimeError`` while another thread steps the env."""
        with self._guard:
            arrays = {k: v.copy() for k, v in self._state.items()}
            agents = list(self.agents)
        return {"format": snapshot.FORMAT, "class": type(self).__name__, "num_envs": 1,
                "config": self._config_id, "agents": agents, "arrays": arrays}

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore a snapshot from :meth:`get_state` taken on an env built with the same kwargs.

        Raises ``ValueError`` (leaving the env unchanged) for a snapshot of another class or
        configuration, or with any value the kernel cannot accept.
        """
        with self._guard:
            arrays = snapshot.check_envelope(state, type(self).__name__, 1, self._config_id)
            agents = state.get("agents")
            if not isinstance(agents, list) or agents not in ([], self.possible_agents):
                raise ValueError(f"snapshot 'agents' must be [] or {self.possible_agents}, got {agents!r}")
            snapshot.check_arrays_match(self._state, arrays)
            check_outputs(arrays, self.observation_spaces[self.possible_agents[0]],
                          len(self.config.rate_changes) if self._discrete else None)
            snapshot.check_range(arrays, "cycles", 0, 2**62)
            check_family_state(self.config, arrays)
            restore_arrays(self._state, arrays)
            self.agents = list(agents)


class CCAECEnv(parallel_to_aec_wrapper):
    """PettingZoo's AEC form of :class:`CCParallelEnv` that checks each action on its agent's turn.

    PettingZoo's own conversion stores actions unchecked until the cycle's last agent, so one bad
    action refused there kept every later step failing until ``reset``, and a dead agent stepped
    with an action failed a bare ``assert`` after half-updating the wrapper. Here a refused action
    (``ValueError``) leaves the turn with the same agent, which may then step with a valid one; a
    dead agent must be stepped with ``None`` (PettingZoo's AEC loop convention).
    """

    def step(self, action: Any) -> None:
        agent = self.agent_selection
        if self.terminations[agent] or self.truncations[agent]:
            if action is not None:
                raise ValueError(f"{agent} is done (its episode ended): step it with None, as PettingZoo's "
                                 f"AEC loop does, got {_short(action)}")
        else:
            action = self.env._check_action(agent, action)
        super().step(action)


def _short(value: Any) -> str:
    """``repr(value)`` cut to one readable line (a refused action may be anything, of any size)."""
    if isinstance(value, int) and not -10**40 < value < 10**40:
        return f"an int of {value.bit_length()} bits"
    try:
        text = " ".join(reprlib.repr(value).split())
    except Exception:  # a hostile __repr__, or an int past Python's str-conversion limit inside a container
        return f"a {type(value).__name__}"
    return text if len(text) <= 80 else text[:77] + "..."


def parallel_env(n_flows: int = 2, render_mode: str | None = None, max_cycles: int | None = None,
                 **kwargs: Any) -> CCParallelEnv:
    """The multi-flow congestion-control PettingZoo ParallelEnv (see :class:`CCParallelEnv`)."""
    return CCParallelEnv(n_flows=n_flows, render_mode=render_mode, max_cycles=max_cycles, **kwargs)


def raw_env(n_flows: int = 2, render_mode: str | None = None, max_cycles: int | None = None,
            **kwargs: Any) -> CCAECEnv:
    """The AEC form without PettingZoo's order-enforcing wrapper (PettingZoo's ``raw_env``)."""
    return CCAECEnv(parallel_env(n_flows=n_flows, render_mode=render_mode, max_cycles=max_cycles, **kwargs))


def env(n_flows: int = 2, render_mode: str | None = None, max_cycles: int | None = None,
        **kwargs: Any) -> AECEnv:
    """The same env in PettingZoo's agent-by-agent (AEC) form: the flows' actions are collected
    in turn and applied together, one monitor interval per cycle (PettingZoo's ``env()``)."""
    return OrderEnforcingWrapper(raw_env(n_flows=n_flows, render_mode=render_mode, max_cycles=max_cycles,
                                         **kwargs))


aec_env = env  # the name earlier releases documented
