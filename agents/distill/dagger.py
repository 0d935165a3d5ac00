"""DAgger distillation of any teacher into a tree or rule student.

Iteration 0 rolls out the teacher; iteration i > 0 rolls out a mixture that takes the teacher's
action with probability beta_i and the previous student's otherwise. Every visited state is
labelled with the teacher's action (and, when the configuration needs them, action values),
added to the aggregate, and the student is refit on the aggregate — or only on its critical
states (IRL, arXiv 2403.16293), or with VIPER's weights and regrets (Bastani et al., NeurIPS 2018).
Each iterate is scored by its mean return on the selection seeds and the best one is returned (VIPER's
choice of iterate). DAgger: Ross, Gordon, Bagnell, "A Reduction of Imitation Learning and
Structured Prediction to No-Regret Online Learning", AISTATS 2011.

beta: a number p gives beta_i = p**i (p = 0, the default, is VIPER's and IRL's schedule: the
student drives from iteration 1 on; p = 0.5 is Ross et al.'s decay), a list gives beta_i directly
(its last value repeats). Iteration 0 always follows the teacher (there is no student yet).

Seeds: training episodes use seeds ``seed``, ``seed + 1``, ... in order of their start; the
selection episodes that pick the iterate use ``eval_seed``, ``eval_seed + 1``, ...; the two ranges
must be disjoint (checked before any work, :mod:`~sysgym.agents.distill.seeds`). The selection
score of the returned iterate is biased upwards (it won the selection): score it on other seeds
(``sysgym distill`` does, on its test episodes).

Every size setting is bounded before anything is allocated (``MAX_*`` below), so a setting such
as ``rollouts=10**9`` is a one-line ValueError, not gigabytes of index arrays.
"""

from __future__ import annotations

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
from .seeds import SeedCounter, SeedRange, check_disjoint, collection_bound, episode_range
from .students import make_student
from .teachers import Teacher, check_spaces, resolve_teacher

Q_SOURCES = ("auto", "simulate", "teacher")

# Bounds of the size settings (checked before any work).
MAX_ITERATIONS = 1000
MAX_SAMPLES = 1_000_000            # states collected per iteration
MAX_AGGREGATE = 10_000_000         # states over all iterations
MAX_AGGREGATE_BYTES = 4 * 2**30    # their features, float32
MAX_NUM_ENVS = 4096
MAX_HORIZON = 10_000
MAX_ROLLOUTS = 1000
MAX_BATCH = 65_536
MAX_EPISODES = 100_000
MAX_FORKS = 20_000_000             # (state, action, rollout) forks labelled in one call
MAX_SEED = 2**62


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
        for name, lo, hi in (("iterations", 1, MAX_ITERATIONS), ("samples", 1, MAX_SAMPLES),
                             ("num_envs", 1, MAX_NUM_ENVS), ("horizon", 1, MAX_HORIZON),
                             ("rollouts", 1, MAX_ROLLOUTS), ("batch", 1, MAX_BATCH),
                             ("eval_episodes", 1, MAX_EPISODES), ("seed", 0, MAX_SEED), ("eval_seed", 0, MAX_SEED)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not lo <= value <= hi:
                raise ValueError(f"{name} must be an int in [{lo}, {hi:,}], got {value!r}")
        if self.iterations * self.samples > MAX_AGGREGATE:
            raise ValueError(f"iterations x samples = {self.iterations * self.samples:,} states; at most "
                             f"{MAX_AGGREGATE:,} (lower iterations or samples)")
        if self.samples * self.rollouts > MAX_FORKS:
            raise ValueError(f"samples x rollouts = {self.samples * self.rollouts:,} forks per action; at most "
                             f"{MAX_FORKS:,} (lower rollouts or samples)")
        if not (isinstance(self.gamma, (int, float)) and 0.0 <= self.gamma <= 1.0):
            raise ValueError(f"gamma must be in [0, 1], got {self.gamma!r}")
        if self.weighting not in WEIGHTINGS:
            raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {self.weighting!r}")
        if self.q_source not in Q_SOURCES:
            raise ValueError(f"q_source must be one of {Q_SOURCES}, got {self.q_source!r}")
        select_critical(np.zeros(1), self.critical, self.threshold)  # validates both
        self.betas()
        check_disjoint({"training episodes": self.training_seeds(), "selection episodes": self.selection_seeds()})

    def training_seeds(self) -> SeedRange:
        """Every seed the training episodes may use (the run reports the ones it used)."""
        return collection_bound(self.seed, self.samples, self.num_envs, self.iterations)

    def selection_seeds(self) -> SeedRange:
        """The seeds of the episodes that choose the iterate."""
        return episode_range(self.eval_seed, self.eval_episodes)

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
    """One DAgger iteration: its data, the student fitted on it and its selection score."""

    iteration: int
    beta: float
    aggregate: int
    kept: int
    eval_return: float
    eval_metric: float
    size: dict[str, int]
    seconds: float
    policy: DistilledPolicy = field(repr=False)
    phases: dict[str, float] = field(default_factory=dict)  # seconds: collect, label, fit, select

    def row(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("policy")
        return out


def remaining_seconds(durations: Sequence[float], total: int) -> float:
    """Predicted seconds of iterations ``len(durations)`` .. ``total - 1``.

    Iterations grow (the aggregate a student is fit on grows by the same amount each time), so
    the prediction follows the least-squares line through the finished iterations' durations,
    never sloping down; with one finished iteration, every later one is predicted to take as long.
    """
    done = len(durations)
    if done == 0 or total <= done:
        return 0.0
    y = np.asarray(durations, dtype=np.float64)
    x = np.arange(done, dtype=np.float64)
    slope = 0.0
    if done >= 2:
        slope = max(0.0, float(np.sum((x - x.mean()) * (y - y.mean())) / np.sum((x - x.mean()) ** 2)))
    ahead = np.arange(done, total, dtype=np.float64)
    return float(np.sum(np.maximum(y.mean() + slope * (ahead - x.mean()), 0.0)))


@dataclass
class DistillResult:
    """The chosen student (``policy``, iterate ``best``), every iterate and the aggregate data."""

    policy: DistilledPolicy
    best: int
    iterates: list[Iterate]
    data: Samples
    metric: str | None
    log: list[str]
    training_seeds: SeedRange = (0, -1)   # the seeds the training episodes used
    selection_seeds: SeedRange = (0, -1)  # the seeds of the episodes that chose ``best``


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
            log: Callable[[str], None] | None = None,
            on_iterate: Callable[[Iterate, list[Iterate]], None] | None = None,
            **student_kwargs: Any) -> DistillResult:
    """Distil ``teacher`` (see :func:`~sysgym.agents.distill.teachers.resolve_teacher`) into
    ``student`` (a name for :func:`~sysgym.agents.distill.students.make_student` with
    ``student_kwargs``, or an object with ``fit``) on ``env_id``; see the module docstring.

    ``on_iterate(iterate, finished)`` is called after every iteration (e.g. to save it, so an
    interrupted run keeps its finished iterations)."""
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
    _check_sizes(config, len(names), len(actions))
    if hasattr(student, "check_actions"):
        student.check_actions(len(actions))
    source = _value_source(config, teacher)
    metric = FAMILY_METRICS.get(env_id.split("/")[-1].split("-")[0].lower(), (None, False))[0]
    lines: list[str] = []

    def say(text: str) -> None:
        lines.append(text)
        if log is not None:
            log(text)

    seeds = SeedCounter(config.seed)
    rng = np.random.default_rng(config.seed)
    parts: list[Samples] = []
    iterates: list[Iterate] = []
    current: DistilledPolicy | None = None
    betas = config.betas()
    for i, beta in enumerate(betas):
        start = time.perf_counter()
        phases: dict[str, float] = {}
        bar = _bar(progress, config.samples, f"DAgger {i + 1}/{len(betas)}")
        try:
            batch, bank = collect(maker, teacher, current, beta, config.samples, seeds, num_envs=config.num_envs,
                                  rng=rng, record_states=source in ("simulate", "bootstrap"),
                                  teacher_values=source == "teacher", iteration=i, progress=bar.update)
            phases["collect"] = time.perf_counter() - start
            if bank is not None:
                bar.set_postfix_str("simulating Q")
                batch.q = simulate_q(maker, bank, batch.mask, teacher, horizon=config.horizon, gamma=config.gamma,
                                     rollouts=config.rollouts, batch=config.batch, seed=config.seed + i,
                                     bootstrap=teacher.state_value if source == "bootstrap" else None)
            phases["label"] = time.perf_counter() - start - phases["collect"]
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
            mark = time.perf_counter()
            phases["fit"] = mark - start - phases["collect"] - phases["label"]
            result = evaluate(maker, lambda env, p=policy: p, config.eval_episodes, config.eval_seed)
            phases["select"] = time.perf_counter() - mark
        finally:
            bar.close()
        it = Iterate(i, beta, len(data), int(keep.sum()), result.mean_return(),
                     result.mean(metric) if metric else float("nan"), policy.size(),
                     time.perf_counter() - start, policy, phases)
        iterates.append(it)
        current = policy
        say(f"iteration {i}: beta {beta:.3g}, {len(data)} states ({it.kept} kept), selection return "
            f"{it.eval_return:.4g}" + (f", {metric} {it.eval_metric:.4g}" if metric else "") +
            f", size {it.size}, {it.seconds:.1f} s")
        if on_iterate is not None:
            on_iterate(it, list(iterates))
    best = best_iterate(iterates)
    selection = config.selection_seeds()
    say(f"best iterate: {best} (selection return {iterates[best].eval_return:.4g} over {config.eval_episodes} "
        f"episodes, seeds {selection[0]}-{selection[1]})")
    chosen = iterates[best].policy
    chosen.meta["chosen_iterate"] = best
    return DistillResult(chosen, best, iterates, Samples.concat(parts), metric, lines, seeds.used(), selection)


def best_iterate(iterates: Sequence[Iterate]) -> int:
    """The iterate with the highest selection return (the earliest among equals)."""
    if not iterates:
        raise ValueError("no finished iterate to choose from")
    return max(range(len(iterates)), key=lambda k: (iterates[k].eval_return, -k))


def _check_sizes(config: DistillConfig, features: int, actions: int) -> None:
    """The bounds that need the env's feature and action counts."""
    size = config.iterations * config.samples * features * 4
    if size > MAX_AGGREGATE_BYTES:
        raise ValueError(f"{config.iterations} iterations x {config.samples:,} states x {features} features "
                         f"would take {size / 2**30:.1f} GiB (at most {MAX_AGGREGATE_BYTES / 2**30:.0f} GiB); "
                         "lower iterations or samples")
    forks = config.samples * config.rollouts * actions
    if config.needs_values and forks > MAX_FORKS:
        raise ValueError(f"samples x rollouts x {actions} actions = {forks:,} forks per iteration (at most "
                         f"{MAX_FORKS:,}); lower rollouts or samples")


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
