"""Every registered sysgym environment ID, in one list.

Entry points are strings, so ``import sysgym`` stays cheap: a family's kernel is imported only
when one of its environments is made. Families add their rows to ``ENVIRONMENTS``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym

NAMESPACE = "sysgym"


@dataclass(frozen=True)
class EnvEntry:
    """One registered ID: where its single and vector classes live and its default kwargs."""

    name: str
    entry_point: str
    vector_entry_point: str | None
    description: str
    kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{NAMESPACE}/{self.name}"


_DEEPRM = ("sysgym.envs.deeprm:DeepRMEnv", "sysgym.envs.deeprm:DeepRMVectorEnv")
_APPOINTMENTS = ("sysgym.envs.appointments:AppointmentsEnv", "sysgym.envs.appointments:AppointmentsVectorEnv")

ENVIRONMENTS: list[EnvEntry] = [
    EnvEntry("DeepRM-v0", *_DEEPRM,
             "DeepRM cluster scheduling, every MDP option as a kwarg (BRACIS'21)"),
    EnvEntry("DeepRM-Image-v0", *_DEEPRM,
             "DeepRM with the image state, dense steps, reward over all jobs (HotNets'16)",
             {"observation": "image", "transitions": "dense", "reward_jobs": "all"}),
    EnvEntry("DeepRM-Compact-v0", *_DEEPRM,
             "DeepRM with the compact job-feature state, dense steps, reward over all jobs",
             {"observation": "compact", "transitions": "dense", "reward_jobs": "all"}),
    EnvEntry("DeepRM-CompactSparse-v0", *_DEEPRM,
             "compact state, semi-MDP: the agent acts only when a window job fits",
             {"observation": "compact", "transitions": "sparse", "reward_jobs": "all"}),
    EnvEntry("DeepRM-CompactSparseReduced-v0", *_DEEPRM,
             "compact state, semi-MDP, reward counts only the window jobs",
             {"observation": "compact", "transitions": "sparse", "reward_jobs": "window"}),
    EnvEntry("ABR-v0", "sysgym.envs.abr:AbrEnv", "sysgym.envs.abr:AbrVectorEnv",
             "adaptive-bitrate video streaming over replayed bandwidth traces; QoE = quality + "
             "rebuffer + smoothness (Pensieve SIGCOMM'17, CrystalBox AAAI'24)"),
    EnvEntry("ABR-Pensieve-v0", "sysgym.envs.abr:AbrEnv", "sysgym.envs.abr:AbrVectorEnv",
             "ABR with the constants, state and linear QoE of Pensieve's simulator",
             {"pensieve_compatible": True}),
    EnvEntry("CC-v0", "sysgym.envs.cc:CCEnv", "sysgym.envs.cc:CCVectorEnv",
             "congestion control of one flow: continuous sending-rate change per monitor interval, "
             "packet-level links, Aurora reward (ICML'19, CrystalBox AAAI'24)",
             {"action": "continuous"}),
    EnvEntry("CC-Discrete-v0", "sysgym.envs.cc:CCEnv", "sysgym.envs.cc:CCVectorEnv",
             "congestion control with rate changes {-25%, -5%, 0, +5%, +25%}",
             {"action": "discrete"}),
    EnvEntry("Appointments-v0", *_APPOINTMENTS,
             "appointment scheduling, every option as a kwarg: pick the type of the next task of a day "
             "of uniform slots; cost C_alpha = alpha x mean idle + (1 - alpha) x max lateness (Taub & "
             "Pianykh, PLoS ONE 2022)"),
    EnvEntry("Appointments-P1-v0", *_APPOINTMENTS,
             "appointment scheduling P1: 6 short (30 min) and 6 long (60 min) tasks in 45-min slots",
             {"problem": "P1"}),
    EnvEntry("Appointments-P2-v0", *_APPOINTMENTS,
             "appointment scheduling P2: P1 plus a 15-min changeover buffer when the task type changes",
             {"problem": "P2"}),
    EnvEntry("Appointments-P3-v0", *_APPOINTMENTS,
             "appointment scheduling P3 as sysgym 0.1 modelled it (kept for reproducibility; -v1 follows "
             "the paper): two mandatory 60-min breaks booked like task slots", {"problem": "P3", "break_model": "slot"}),
    EnvEntry("Appointments-P3-v1", *_APPOINTMENTS,
             "appointment scheduling P3: P2 plus up to two optional 60-min breaks, each booked for its own "
             "hour and absorbing up to 15 min of delay (Taub & Pianykh 2022)", {"problem": "P3"}),
    EnvEntry("DAG-EGS-v0", "sysgym.envs.dag:DAGEnv", "sysgym.envs.dag:DAGVectorEnv",
             "DAG task scheduling by edge generation: add precedence edges to cut the width "
             "(cores needed) while the critical path stays within the deadline (Sun et al., IEEE TC 2024)"),
]


def register_all() -> None:
    """Register every entry with Gymnasium (idempotent)."""
    for entry in ENVIRONMENTS:
        if entry.id in gym.registry:
            continue
        # No PassiveEnvChecker/OrderEnforcing wrappers: every ID passes check_env and the passive
        # checker in the contract tests, and refuses step() before reset() itself; the two
        # wrappers would only add their per-step cost to the single-env path.
        gym.register(id=entry.id, entry_point=entry.entry_point,
                     vector_entry_point=entry.vector_entry_point, kwargs=dict(entry.kwargs),
                     disable_env_checker=True, order_enforce=False)


def entry(env_id: str) -> EnvEntry:
    """The entry for ``env_id`` (with or without the ``sysgym/`` namespace)."""
    name = env_id.split("/", 1)[1] if env_id.startswith(f"{NAMESPACE}/") else env_id
    for e in ENVIRONMENTS:
        if e.name == name:
            return e
    raise KeyError(f"unknown sysgym environment {env_id!r}; run `sysgym list`")


def registered_id(value: object, where: str) -> str:
    """``value`` if it is a registered ``sysgym/`` ID, else a ValueError naming ``where``.

    Every ID read from a file (checkpoint, tree export, explainer, results, dataset) goes through
    this before ``gymnasium.make``: Gymnasium imports the module named before a ``module:`` prefix,
    so an unchecked ID from a file could make sysgym import code.
    """
    if not isinstance(value, str):
        raise ValueError(f"{where}: env_id must be a string, got {type(value).__name__}")
    ids = {e.id for e in ENVIRONMENTS}
    if value not in ids:
        shown = value if len(value) <= 80 else value[:77] + "..."
        raise ValueError(f"{where}: env_id {shown!r} is not a registered sysgym environment "
                         "(`sysgym list` shows every ID)")
    return value
