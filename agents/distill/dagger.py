"""DAgger distillation of any teacher into a tree or rule student.

Iteration 0 rolls out the teacher; iteration i > 0 rolls out a mixture that takes the teacher's
action with probability beta_i and the previous student's otherwise. Every visited state is
labelled with the teacher's action (and, when the configuration needs them, action values),
added to the aggregate, and the student is refit on the aggregate — or only on its critical
states (IRL, arXiv 2403.16293), or with VIPER's weights and regrets (Bastani et al., NeurIPS 2018).
Each iterate is scored by its mean return on held-out seeds and the best one is returned (VIPER's
choice of iterate). DAgger: Ross, Gordon, Bagnell, "A Reduction of Imitation Learning and
Structured Prediction to No-Regret Online Learning", AISTATS 2011.

beta: a number p gives beta_i = p**i (p = 0, the default, is VIPER's and IRL's schedule: the
student drives from iteration 1 on; p = 0.5 is Ross et al.'s decay), a list gives beta_i directly
(its last value repeats). Iteration 0 always follows the teacher (there is no student yet).

Seeds: training episodes use seeds ``seed``, ``seed + 1``, ... in order of their start; held-out
episodes use ``eval_seed``, ``eval_seed + 1``, ... (keep the ranges apart).
"""

from __future__ import annotations

import itertools
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from gymnasium import spaces

from .critical import select_critical
from .envs import EnvMaker
from .features import action_names, feature_names, layout_size, observation_layout
from .policies import DistilledPolicy, policy_for
from .qvalues import simulate_q
from .rollouts import FAMILY_METRICS, collect, evaluate
from .samples import WEIGHTINGS, Samples, training_set
from .students import make_student
from .teachers import Teacher, check_spaces, resolve_teacher

Q_SOURCES = ("auto", "simulate", "teacher")


@dataclass
class DistillConfig:
    """DAgger settings (see the module docstring); ``horizon``, ``gamma``, ``rollouts`` and
    ``batch`` configure simulated action values (:func:`~sysgym.agents.distill.qvalues.simulate_q`).

    ``q_source``: ``"simulate"`` rollouts of the teacher; ``"teacher"`` the teacher's own values
    (the appointment oracle's) or, for a teacher with a critic, rollouts closed by the critic;
    ``"auto"`` the teacher's own values when it has them, else simulation. Action values are
    computed only when ``critical``, ``threshold`` or ``weighting="viper"`` needs them.
    """

    iterations: int = 10
    samples: int = 2000
    beta: float | Sequence[float] = 0.0
    num_envs: int = 16
    critical: float | None = None
    threshold: float | None = None
    weighting: str = "none"
    q_source: str = "auto"
    horizon: int = 10
    gamma: float = 0.99
    rollouts: int = 1
    batch: int = 4096
    eval_episodes: int = 8
    eval_seed: int = 1_000_000
    seed: int = 0

    def check(self) -> None:
        for name, lo in (("iterations", 1), ("samples", 1), ("num_envs", 1), ("horizon", 1), ("rollouts", 1),
                         ("batch", 1), ("eval_episodes", 1), ("seed", 0), ("eval_seed", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < lo:
                raise ValueError(f"{name} must be an int >= {lo}, got {value!r}")
        if not (isinstance(self.gamma, (int, float)) and 0.0 <= self.gamma <= 1.0):
            raise ValueError(f"gamma must be in [0, 1], got {self.gamma!r}")
        if self.weighting not in WEIGHTINGS:
            raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {self.weighting!r}")
        if self.q_source not in Q_SOURCES:
            raise ValueError(f"q_source must be one of {Q_SOURCES}, got {self.q_source!r}")
        select_critical(np.zeros(1), self.critical, self.threshold)  # validates both
        self.betas()

    def betas(self) -> list[float]:
        if isinstance(self.beta, (int, float)) and not isinstance(self.beta, bool):
            values = [float(self.beta) ** i for i in range(self.iterations)]
        elif isinstance(self.beta, (list, tuple)) and self.beta:
            values = [float(self.beta[min(i, len(self.beta) - 1)]) for i in range(self.iterations)]
        else:
            raise ValueError(f"beta must be a number or a non-empty list of numbers, got {self.beta!r}")
        if not all(0.0 <= b <= 1.0 for b in values):
            raise ValueError(f"beta values must lie in [0, 1], got {self.beta!r}")
        values[0] = 1.0
        return values

    @property
    def needs_values(self) -> bool:
        return self.critical is not None or self.threshold is not None or self.weighting == "viper"


@dataclass
class Iterate:
    """One DAgger iteration: its data, the student fitted on it and its held-out score."""

    iteration: int
    beta: float
    aggregate: int
    kept: int
    eval_return: float
    eval_metric: float
    size: dict[str, int]
    seconds: float
    policy: DistilledPolicy = field(repr=False)

    def row(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("policy")
        return out


@dataclass
class DistillResult:
    """The chosen student (``policy``, iterate ``best``), every iterate and the aggregate data."""

    policy: DistilledPolicy
    best: int
    iterates: list[Iterate]
    data: Samples
    metric: str | None
    log: list[str]


def plain(value: Any) -> Any:
    """``value`` as JSON-able data (other objects become their ``str``)."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, (np.integer, np.floating)):
        return plain(value.item())
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    return str(value)


def _value_source(config: DistillConfig, teacher: Teacher) -> str | None:
    if not config.needs_values:
        return None
    if config.q_source == "simulate":
        return "simulate"
    if teacher.values is not None:
        return "teacher"
    if config.q_source == "teacher":
        if teacher.state_value is None:
            raise ValueError(f"teacher {teacher.name} has no values of its own (q_source='teacher'); "
                             "use q_source='simulate'")
        return "bootstrap"
    return "simulate"


def distill(env_id: str, teacher: Any, student: Any = "cart", *, env_kwargs: dict[str, Any] | None = None,
            config: DistillConfig | None = None, progress: bool = False,
            log: Callable[[str], None] | None = None, **student_kwargs: Any) -> DistillResult:
    """Distil ``teacher`` (see :func:`~sysgym.agents.distill.teachers.resolve_teacher`) into
    ``student`` (a name for :func:`~sysgym.agents.distill.students.make_student` with
    ``student_kwargs``, or an object with ``fit``) on ``env_id``; see the module docstring."""
    config = config or DistillConfig()
    config.check()
    maker = EnvMaker(env_id, dict(env_kwargs or {}))
    teacher = resolve_teacher(teacher, env_id)
    if isinstance(student, str):
        student = make_student(student, **student_kwargs)
    elif student_kwargs:
        raise ValueError("student settings go to the student object, not to distill()")
    probe = maker.single()
    try:
        if not isinstance(probe.action_space, spaces.Discrete):
            raise ValueError(f"distillation needs a Discrete action space; {env_id} has {probe.action_space}")
        check_spaces(getattr(teacher, "spaces", None), probe, teacher.name)
        shape = observation_layout(probe.observation_space)
        names = feature_names(probe, layout_size(shape))
        actions = action_names(probe, int(probe.action_space.n))
    finally:
        probe.close()
    if hasattr(student, "check_actions"):
        student.check_actions(len(actions))
    source = _value_source(config, teacher)
    metric = FAMILY_METRICS.get(env_id.split("/")[-1].split("-")[0].lower(), (None, False))[0]
    lines: list[str] = []

    def say(text: str) -> None:
        lines.append(text)
        if log is not None:
            log(text)

    seeds = itertools.count(config.seed)
    rng = np.random.default_rng(config.seed)
    parts: list[Samples] = []
    iterates: list[Iterate] = []
    current: DistilledPolicy | None = None
    betas = config.betas()
    for i, beta in enumerate(betas):
        start = time.perf_counter()
        bar = _bar(progress, config.samples, f"DAgger {i + 1}/{len(betas)}")
        try:
            batch, bank = collect(maker, teacher, current, beta, config.samples, seeds, num_envs=config.num_envs,
                                  rng=rng, record_states=source in ("simulate", "bootstrap"),
                                  teacher_values=source == "teacher", iteration=i, progress=bar.update)
            if bank is not None:
                bar.set_postfix_str("simulating Q")
                batch.q = simulate_q(maker, bank, batch.mask, teacher, horizon=config.horizon, gamma=config.gamma,
                                     rollouts=config.rollouts, batch=config.batch, seed=config.seed + i,
                                     bootstrap=teacher.state_value if source == "bootstrap" else None)
            parts.append(batch)
            data = Samples.concat(parts)
            keep = select_critical(data.criticality(), config.critical, config.threshold) \
                if config.critical is not None or config.threshold is not None else np.ones(len(data), dtype=bool)
            bar.set_postfix_str("fitting")
            model = student.fit(training_set(data.subset(keep), config.weighting))
            meta = {"env_id": env_id, "env_kwargs": plain(maker.kwargs), "teacher": teacher.name,
                    "student": getattr(student, "name", type(student).__name__), "iteration": i,
                    "config": plain(asdict(config))}
            policy = policy_for(model, names, actions, shape, meta)
            bar.set_postfix_str("evaluating")
            result = evaluate(maker, lambda env, p=policy: p, config.eval_episodes, config.eval_seed)
        finally:
            bar.close()
        it = Iterate(i, beta, len(data), int(keep.sum()), result.mean_return(),
                     result.mean(metric) if metric else float("nan"), policy.size(),
                     time.perf_counter() - start, policy)
        iterates.append(it)
        current = policy
        say(f"iteration {i}: beta {beta:.3g}, {len(data)} states ({it.kept} kept), held-out return "
            f"{it.eval_return:.4g}" + (f", {metric} {it.eval_metric:.4g}" if metric else "") +
            f", size {it.size}, {it.seconds:.1f} s")
    best = max(range(len(iterates)), key=lambda k: (iterates[k].eval_return, -k))
    say(f"best iterate: {best} (held-out return {iterates[best].eval_return:.4g} over {config.eval_episodes} "
        f"episodes from seed {config.eval_seed})")
    chosen = iterates[best].policy
    chosen.meta["chosen_iterate"] = best
    return DistillResult(chosen, best, iterates, Samples.concat(parts), metric, lines)


class _NoBar:
    def update(self, n: int) -> None: ...
    def set_postfix_str(self, text: str) -> None: ...
    def close(self) -> None: ...


def _bar(show: bool, total: int, desc: str):
    """A tqdm bar on stderr, or a stand-in that shows nothing."""
    if not show:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="state", file=sys.stderr, dynamic_ncols=True, leave=True)
