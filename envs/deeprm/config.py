"""Configuration of the DeepRM family: kwargs validation, the BRACIS'21 scenarios, derived sizes."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np

from ..validate import choice, integer, number, probability
from .workload import MAX_JOB_LENGTH, SWFWorkload, TraceJobs, bimodal_ranges

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
    "protocol": ("drain", "bracis"),
}

# Valid ranges of the integer kwargs (inclusive); see the kwargs table of sysgym.envs.deeprm.
MAX_RESOURCES = 8
MAX_CAPACITY = 2**16
MAX_WINDOW = 1024
MAX_HORIZON = 4096
MAX_BACKLOG = 2**20
MAX_EPISODE_LENGTH = 10**7
MAX_TIME_LIMIT = 10**8
# The most state one sub-env may hold (usage profile, job records, queues, observation).
MAX_STATE_BYTES = 64 * 2**20
# Bytes per job record: length (4), sizes (4 per resource), submit and start (8 + 8), four
# submission features (32), its entry in the free list (4).
_JOB_BYTES = 56


@dataclass(frozen=True)
class DeepRMConfig:
    """Validated DeepRM settings; see :mod:`sysgym.envs.deeprm` for what each one means."""

    observation: str
    transitions: str
    reward_jobs: str
    reward_scale: str
    allocation: str
    protocol: str
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
    def queue_capacity(self) -> int:
        """Most jobs that can wait: the window and the backlog."""
        return self.window + self.backlog

    @property
    def job_slots(self) -> int:
        """Job records per sub-env: every job in the system waits or holds resources."""
        return self.queue_capacity + self.max_allocated_jobs

    @property
    def reward_divisor(self) -> float:
        """1 for raw rewards; for bounded, the most jobs the reward can count at once."""
        if self.reward_scale == "raw":
            return 1.0
        if self.reward_jobs == "window":
            return float(self.window)
        return float(self.max_allocated_jobs + self.window + self.backlog)

    @property
    def timeline(self) -> int:
        return self.horizon + self.max_job_length

    def state_bytes(self) -> dict[str, int]:
        """Bytes of state one sub-env holds, by part (the parts that grow with the kwargs)."""
        r = self.num_resources
        return {
            f"usage profile (num_resources={r} x (horizon={self.horizon} + max_job_length="
            f"{self.max_job_length}) slots)": 4 * r * self.timeline,
            f"job records (window={self.window} + backlog={self.backlog} + {self.max_allocated_jobs} "
            "allocated jobs)": self.job_slots * (_JOB_BYTES + 4 * r) + 4 * self.queue_capacity
            + 4 * self.max_allocated_jobs,
            f"{self.observation} observation {self.obs_shape}": 4 * math.prod(self.obs_shape),
        }


def build_config(*, observation: str = "compact", transitions: str = "dense", reward_jobs: str = "all",
                 reward_scale: str = "raw", allocation: str = "now", protocol: str = "drain",
                 scenario: int | None = None,
                 num_resources: int = 1, num_processors: int | None = None,
                 resource_capacity: tuple[int, ...] | None = None, max_job_length: int | None = None,
                 max_job_size: int | None = None, window: int = 10, horizon: int = 20, backlog: int = 60,
                 episode_length: int = 100, time_limit: int | None = None, workload: object = "deeprm",
                 new_job_rate: float = 0.3, small_job_chance: float = 0.8, smdp_gamma: float = 1.0,
                 trace_start: str | int = "random") -> DeepRMConfig:
    """Validate DeepRM kwargs into a :class:`DeepRMConfig` (raises ``ValueError`` on bad input)."""
    observation = choice("observation", observation, CHOICES["observation"])
    transitions = choice("transitions", transitions, CHOICES["transitions"])
    reward_jobs = choice("reward_jobs", reward_jobs, CHOICES["reward_jobs"])
    reward_scale = choice("reward_scale", reward_scale, CHOICES["reward_scale"])
    allocation = choice("allocation", allocation, CHOICES["allocation"])
    protocol = choice("protocol", protocol, CHOICES["protocol"])

    if scenario is not None:
        scenario = integer("scenario (BRACIS'21 Table 3)", scenario, 1, len(SCENARIOS))
        clash = [n for n, v in (("num_processors", num_processors), ("max_job_length", max_job_length),
                                ("max_job_size", max_job_size)) if v is not None]
        if clash:
            raise ValueError(f"scenario={scenario} sets {', '.join(clash)}; pass one or the other")
        num_processors, max_job_length, max_job_size = SCENARIOS[scenario]
    num_processors = integer("num_processors", 10 if num_processors is None else num_processors, 1, MAX_CAPACITY)
    num_resources = integer("num_resources", num_resources, 1, MAX_RESOURCES)
    if resource_capacity is None:
        capacity = (num_processors,) * num_resources
    else:
        if not isinstance(resource_capacity, (list, tuple, np.ndarray)):
            raise ValueError(f"resource_capacity must be a tuple of num_resources={num_resources} "
                             f"capacities, got {resource_capacity!r}")
        capacity = tuple(integer(f"resource_capacity[{i}]", c, 1, MAX_CAPACITY)
                         for i, c in enumerate(resource_capacity))
        if len(capacity) != num_resources or capacity[0] != num_processors:
            raise ValueError(f"resource_capacity must have num_resources={num_resources} entries starting "
                             f"with num_processors={num_processors}, got {resource_capacity!r}")
    window = integer("window", window, 1, MAX_WINDOW)
    horizon = integer("horizon", horizon, 1, MAX_HORIZON)
    backlog = integer("backlog", backlog, 0, MAX_BACKLOG)
    episode_length = integer("episode_length", episode_length, 1, MAX_EPISODE_LENGTH)
    time_limit = integer("time_limit", 10 * episode_length if time_limit is None else time_limit,
                         1, MAX_TIME_LIMIT)
    new_job_rate = probability("new_job_rate", new_job_rate)
    small_job_chance = probability("small_job_chance", small_job_chance)
    smdp_gamma = number("smdp_gamma", smdp_gamma, 0.0, 1.0, lo_open=True)
    if max_job_length is not None:
        max_job_length = integer("max_job_length", max_job_length, 1, MAX_JOB_LENGTH)
    if max_job_size is not None:
        max_job_size = integer("max_job_size", max_job_size, 1, MAX_CAPACITY)

    trace: TraceJobs | None = None
    longest = ""  # where the longest job comes from, for the memory-cap message
    if isinstance(workload, (str, os.PathLike)) and str(workload) != "deeprm":
        workload = SWFWorkload(workload)
    if isinstance(workload, SWFWorkload):
        if num_resources != 1:
            raise ValueError("SWF workloads describe processors only: use num_resources=1")
        trace = workload.load(num_processors)
        k = int(np.argmax(trace.length))
        if max_job_length is not None and int(trace.length[k]) > max_job_length:
            raise ValueError(f"{trace.where(k)}: a job lasts {int(trace.length[k])} steps > "
                             f"max_job_length={max_job_length}; set SWFWorkload(max_job_length=...) to clip")
        if max_job_length is None:
            max_job_length = int(trace.length[k])
            longest = f" (the longest job, {trace.where(k)}: field 4 run_time)"
        max_job_size = int(trace.size.max()) if max_job_size is None else max_job_size
        if int(trace.size.max()) > max_job_size:
            raise ValueError(f"{workload.path}: jobs ask for up to {int(trace.size.max())} processors > "
                             f"max_job_size={max_job_size}")
        if not (isinstance(trace_start, str) and trace_start in ("random", "first")):
            trace_start = integer("trace_start ('random', 'first' or a job index)", trace_start, 0, len(trace) - 1)
    elif not (isinstance(workload, str) and workload == "deeprm"):
        raise ValueError(f"workload must be 'deeprm', a path to an .swf file or an SWFWorkload, got {workload!r}")
    else:
        choice("trace_start (SWF workloads only)", trace_start, ("random",))

    max_job_length = 15 if max_job_length is None else max_job_length
    max_job_size = 10 if max_job_size is None else max_job_size
    if max_job_size > min(capacity):
        raise ValueError(f"max_job_size={max_job_size} exceeds the smallest resource capacity "
                         f"{min(capacity)}: such jobs could never run")

    config = DeepRMConfig(
        observation=observation, transitions=transitions, reward_jobs=reward_jobs,
        reward_scale=reward_scale, allocation=allocation, protocol=protocol, capacity=capacity,
        max_job_length=max_job_length, max_job_size=max_job_size, window=window, horizon=horizon,
        backlog=backlog, episode_length=episode_length, time_limit=time_limit,
        new_job_rate=new_job_rate, small_job_chance=small_job_chance, smdp_gamma=smdp_gamma,
        trace=trace, trace_start=trace_start, scenario=scenario,
    )
    parts = config.state_bytes()
    if sum(parts.values()) > MAX_STATE_BYTES:
        detail = "; ".join(f"{name}: {size / 2**20:.1f} MiB" for name, size in
                           sorted(parts.items(), key=lambda item: -item[1]))
        raise ValueError(f"this DeepRM configuration needs {sum(parts.values()) / 2**20:.1f} MiB of state per "
                         f"sub-env, more than the {MAX_STATE_BYTES // 2**20} MiB cap: {detail}{longest}")
    return config


def kernel_config(cfg: DeepRMConfig, num_envs: int) -> dict:
    """The flat dict of numbers the Cython kernel reads."""
    ranges = bimodal_ranges(cfg.max_job_length, cfg.max_job_size)
    return {
        "num_envs": num_envs, "num_resources": cfg.num_resources, "capacity": list(cfg.capacity),
        "horizon": cfg.horizon, "timeline": cfg.timeline, "window": cfg.window, "backlog": cfg.backlog,
        "max_job_length": cfg.max_job_length, "max_job_size": cfg.max_job_size,
        "image": int(cfg.observation == "image"), "sparse": int(cfg.transitions == "sparse"),
        "reserve": int(cfg.allocation == "reserve"), "fixed_horizon": int(cfg.protocol == "bracis"),
        "episode_length": cfg.episode_length,
        "time_limit": cfg.time_limit, "smdp_gamma": cfg.smdp_gamma, "reward_divisor": cfg.reward_divisor,
        "new_job_rate": cfg.new_job_rate, "small_job_chance": cfg.small_job_chance,
        "image_width": cfg.image_width, "backlog_columns": cfg.backlog_columns,
        "obs_dim": int(np.prod(cfg.obs_shape)), **ranges,
    }
