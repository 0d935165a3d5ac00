"""Configuration of the DeepRM family: kwargs validation, the BRACIS'21 scenarios, derived sizes."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np

from .workload import SWFWorkload, TraceJobs, bimodal_ranges

# de Freitas Cunha & Chaimowicz, BRACIS 2021, Table 3: (processors, max job length, max job size).
SCENARIOS: dict[int, tuple[int, int, int]] = {
    1: (10, 15, 10), 2: (10, 48, 10), 3: (38, 15, 32), 4: (38, 33, 32), 5: (38, 48, 32),
    6: (64, 15, 64), 7: (64, 33, 32), 8: (64, 33, 64), 9: (64, 48, 32), 10: (64, 48, 64),
}

CHOICES = {
    "observation": ("image", "compact"),
    "transitions": ("dense", "sparse"),
    "reward_jobs": ("all", "window"),
    "reward_scale": ("raw", "bounded"),
    "allocation": ("now", "reserve"),
}


def _choice(name: str, value: str) -> str:
    if value not in CHOICES[name]:
        raise ValueError(f"{name} must be one of {CHOICES[name]}, got {value!r}")
    return value


def _positive_int(name: str, value: int, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def _probability(name: str, value: float) -> float:
    if not isinstance(value, (int, float, np.floating)) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1], got {value!r}")
    return float(value)


@dataclass(frozen=True)
class DeepRMConfig:
    """Validated DeepRM settings; see :mod:`sysgym.envs.deeprm` for what each one means."""

    observation: str
    transitions: str
    reward_jobs: str
    reward_scale: str
    allocation: str
    capacity: tuple[int, ...]
    max_job_length: int
    max_job_size: int
    window: int
    horizon: int
    backlog: int
    episode_length: int
    time_limit: int
    new_job_rate: float
    small_job_chance: float
    smdp_gamma: float
    trace: TraceJobs | None
    trace_start: str | int
    scenario: int | None

    @property
    def num_resources(self) -> int:
        return len(self.capacity)

    @property
    def num_processors(self) -> int:
        return self.capacity[0]

    @property
    def backlog_columns(self) -> int:
        return math.ceil(self.backlog / self.horizon)

    @property
    def image_width(self) -> int:
        return sum(self.capacity) + self.num_resources * self.window * self.max_job_size + self.backlog_columns + 1

    @property
    def job_features(self) -> int:
        return 7 + self.num_resources

    @property
    def compact_size(self) -> int:
        return 2 * self.num_resources * self.horizon + self.window * self.job_features + 3

    @property
    def obs_shape(self) -> tuple[int, ...]:
        if self.observation == "image":
            return (self.horizon, self.image_width)
        return (self.compact_size,)

    @property
    def max_allocated_jobs(self) -> int:
        """Upper bound on jobs holding resources: each uses >= 1 unit at a slot in [now, now+H)."""
        per_slot = min(self.capacity)
        return per_slot * (self.horizon if self.allocation == "reserve" else 1)

    @property
    def reward_divisor(self) -> float:
        """1 for raw rewards; for bounded, the most jobs the reward can count at once."""
        if self.reward_scale == "raw":
            return 1.0
        if self.reward_jobs == "window":
            return float(self.window)
        return float(self.max_allocated_jobs + self.window + self.backlog)

    @property
    def max_jobs_per_episode(self) -> int:
        if self.trace is None:
            return self.episode_length
        ends = np.searchsorted(self.trace.submit, self.trace.submit + self.episode_length, side="left")
        return int(np.max(ends - np.arange(len(self.trace))))

    @property
    def timeline(self) -> int:
        return self.horizon + self.max_job_length


def build_config(*, observation: str = "compact", transitions: str = "dense", reward_jobs: str = "all",
                 reward_scale: str = "raw", allocation: str = "now", scenario: int | None = None,
                 num_resources: int = 1, num_processors: int | None = None,
                 resource_capacity: tuple[int, ...] | None = None, max_job_length: int | None = None,
                 max_job_size: int | None = None, window: int = 10, horizon: int = 20, backlog: int = 60,
                 episode_length: int = 100, time_limit: int | None = None, workload: object = "deeprm",
                 new_job_rate: float = 0.3, small_job_chance: float = 0.8, smdp_gamma: float = 1.0,
                 trace_start: str | int = "random") -> DeepRMConfig:
    """Validate DeepRM kwargs into a :class:`DeepRMConfig` (raises ``ValueError`` on bad input)."""
    observation = _choice("observation", observation)
    transitions = _choice("transitions", transitions)
    reward_jobs = _choice("reward_jobs", reward_jobs)
    reward_scale = _choice("reward_scale", reward_scale)
    allocation = _choice("allocation", allocation)

    if scenario is not None:
        if scenario not in SCENARIOS:
            raise ValueError(f"scenario must be one of 1..10 (BRACIS'21 Table 3), got {scenario!r}")
        clash = [n for n, v in (("num_processors", num_processors), ("max_job_length", max_job_length),
                                ("max_job_size", max_job_size)) if v is not None]
        if clash:
            raise ValueError(f"scenario={scenario} sets {', '.join(clash)}; pass one or the other")
        num_processors, max_job_length, max_job_size = SCENARIOS[scenario]
    num_processors = _positive_int("num_processors", 10 if num_processors is None else num_processors)
    num_resources = _positive_int("num_resources", num_resources)
    if num_resources > 8:
        raise ValueError(f"num_resources must be <= 8, got {num_resources}")
    if resource_capacity is None:
        capacity = (num_processors,) * num_resources
    else:
        capacity = tuple(_positive_int("resource_capacity[i]", c) for c in resource_capacity)
        if len(capacity) != num_resources or capacity[0] != num_processors:
            raise ValueError(f"resource_capacity must have num_resources={num_resources} entries starting "
                             f"with num_processors={num_processors}, got {resource_capacity!r}")
    window = _positive_int("window", window)
    horizon = _positive_int("horizon", horizon)
    backlog = _positive_int("backlog", backlog, minimum=0)
    episode_length = _positive_int("episode_length", episode_length)
    time_limit = _positive_int("time_limit", 10 * episode_length if time_limit is None else time_limit)
    new_job_rate = _probability("new_job_rate", new_job_rate)
    small_job_chance = _probability("small_job_chance", small_job_chance)
    if not isinstance(smdp_gamma, (int, float)) or not 0.0 < smdp_gamma <= 1.0:
        raise ValueError(f"smdp_gamma must be in (0, 1], got {smdp_gamma!r}")

    trace: TraceJobs | None = None
    if isinstance(workload, (str, os.PathLike)) and str(workload) != "deeprm":
        workload = SWFWorkload(workload)
    if isinstance(workload, SWFWorkload):
        if num_resources != 1:
            raise ValueError("SWF workloads describe processors only: use num_resources=1")
        trace = workload.load(num_processors)
        if max_job_length is not None and int(trace.length.max()) > max_job_length:
            raise ValueError(f"{workload.path}: jobs last up to {int(trace.length.max())} steps > "
                             f"max_job_length={max_job_length}; set SWFWorkload(max_job_length=...) to clip")
        max_job_length = int(trace.length.max()) if max_job_length is None else max_job_length
        max_job_size = int(trace.size.max()) if max_job_size is None else max_job_size
        if int(trace.size.max()) > max_job_size:
            raise ValueError(f"{workload.path}: jobs ask for up to {int(trace.size.max())} processors > "
                             f"max_job_size={max_job_size}")
        if trace_start not in ("random", "first") and not (
                isinstance(trace_start, (int, np.integer)) and 0 <= trace_start < len(trace)):
            raise ValueError(f"trace_start must be 'random', 'first' or a job index in "
                             f"[0, {len(trace) - 1}], got {trace_start!r}")
    elif workload != "deeprm":
        raise ValueError(f"workload must be 'deeprm', a path to an .swf file or an SWFWorkload, got {workload!r}")

    max_job_length = _positive_int("max_job_length", 15 if max_job_length is None else max_job_length)
    max_job_size = _positive_int("max_job_size", 10 if max_job_size is None else max_job_size)
    if max_job_size > min(capacity):
        raise ValueError(f"max_job_size={max_job_size} exceeds the smallest resource capacity "
                         f"{min(capacity)}: such jobs could never run")

    return DeepRMConfig(
        observation=observation, transitions=transitions, reward_jobs=reward_jobs,
        reward_scale=reward_scale, allocation=allocation, capacity=capacity,
        max_job_length=max_job_length, max_job_size=max_job_size, window=window, horizon=horizon,
        backlog=backlog, episode_length=episode_length, time_limit=time_limit,
        new_job_rate=new_job_rate, small_job_chance=small_job_chance, smdp_gamma=float(smdp_gamma),
        trace=trace, trace_start=trace_start, scenario=scenario,
    )


def kernel_config(cfg: DeepRMConfig, num_envs: int) -> dict:
    """The flat dict of numbers the Cython kernel reads."""
    ranges = bimodal_ranges(cfg.max_job_length, cfg.max_job_size)
    return {
        "num_envs": num_envs, "num_resources": cfg.num_resources, "capacity": list(cfg.capacity),
        "horizon": cfg.horizon, "timeline": cfg.timeline, "window": cfg.window, "backlog": cfg.backlog,
        "max_job_length": cfg.max_job_length, "max_job_size": cfg.max_job_size,
        "image": int(cfg.observation == "image"), "sparse": int(cfg.transitions == "sparse"),
        "reserve": int(cfg.allocation == "reserve"), "episode_length": cfg.episode_length,
        "time_limit": cfg.time_limit, "smdp_gamma": cfg.smdp_gamma, "reward_divisor": cfg.reward_divisor,
        "new_job_rate": cfg.new_job_rate, "small_job_chance": cfg.small_job_chance,
        "image_width": cfg.image_width, "backlog_columns": cfg.backlog_columns,
        "obs_dim": int(np.prod(cfg.obs_shape)), **ranges,
    }
