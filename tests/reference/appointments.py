"""Pure-Python reference model of the appointment-scheduling family, for tests only.

Written from the specification in the docstring of :mod:`sysgym.envs.appointments` (Taub &
Pianykh, PLoS ONE 2022), independently of the Cython kernel: plain lists and floats, one day,
orderings enumerated with itertools (positions of each type chosen by ``combinations``), tails
simulated from scratch, no pruning. Slow on purpose; tests/appointments/test_reference.py holds
the kernel to it.

Breaks follow ``break_model``: "paper" (Taub & Pianykh section 2: "up to two 60-minute breaks")
-- a break is booked for its own duration, may be left unused, and the day ends with its last
task; "slot" -- every break must be placed and is booked for one slot like a task.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from .rng import Rng

MASK64 = (1 << 64) - 1
TIE = 1e-9
BREAK = 2


@dataclass
class Spec:
    """The numbers a day depends on (from an AppointmentsConfig)."""

    counts: tuple[int, int, int]
    durations: tuple[float, float, float]
    slot: float
    buffer: float
    elasticity: float
    noise: float
    alpha: float
    optional: bool = True                 # break_model "paper"

    @classmethod
    def of(cls, cfg) -> Spec:
        return cls(tuple(cfg.counts), tuple(cfg.durations), cfg.slot, cfg.buffer, cfg.break_elasticity,
                   cfg.noise, cfg.alpha, cfg.break_model == "paper")

    @property
    def n(self) -> int:
        return sum(self.counts)

    @property
    def tasks(self) -> int:
        return self.counts[0] + self.counts[1]

    @property
    def divisor(self) -> int:
        """n in C_tardiness = total idle / n: the tasks (paper), every item (slot)."""
        return self.tasks if self.optional else self.n

    def booked_length(self, t: int) -> float:
        return self.durations[2] if (t == BREAK and self.optional) else self.slot

    @property
    def types(self) -> int:
        return 3 if self.counts[2] > 0 else 2


@dataclass
class State:
    """A day in progress."""

    spec: Spec
    factors: list[list[float]]             # [type][occurrence] for short and long
    placed: list[int] = field(default_factory=list)
    end: float = 0.0
    late: float = 0.0
    idle: float = 0.0
    starts: list[float] = field(default_factory=list)
    finishes: list[float] = field(default_factory=list)

    def copy(self) -> State:
        return State(self.spec, self.factors, list(self.placed), self.end, self.late, self.idle,
                     list(self.starts), list(self.finishes))

    @property
    def k(self) -> int:
        return len(self.placed)

    def left(self, t: int) -> int:
        return self.spec.counts[t] - self.placed.count(t)

    def over(self) -> bool:
        if self.spec.optional:
            return self.left(0) + self.left(1) == 0
        return self.k == self.spec.n

    def valid(self) -> list[int]:
        if self.over():
            return []
        return [t for t in range(self.spec.types) if self.left(t) > 0]

    def booked(self) -> float:
        """Booked start of the next item: the booked lengths of the items placed, summed."""
        return sum(self.spec.booked_length(t) for t in self.placed)

    def prev(self, back: int = 1) -> int:
        return self.placed[-back] if len(self.placed) >= back else -1

    def cost(self) -> float:
        s = self.spec
        return s.alpha * (self.idle / s.divisor) + (1.0 - s.alpha) * self.late

    def place(self, t: int, factor: float | None = None) -> tuple[float, float]:
        """Place type t; returns the reward components (idle, lateness)."""
        s = self.spec
        booked = self.booked()
        prev = self.prev()
        ready = self.end
        if t in (0, 1) and prev in (0, 1) and prev != t:
            ready = ready + s.buffer
        idle = max(booked - ready, 0.0)
        wait = max(ready - booked, 0.0)
        start = max(booked, ready)
        if t == BREAK:
            duration = s.durations[2] - min(s.elasticity, wait)
        else:
            if factor is None:
                factor = self.factors[t][s.counts[t] - self.left(t)]
            duration = s.durations[t] * factor
        old = self.late
        if t != BREAK:
            self.late = max(self.late, wait)
        self.idle = self.idle + idle
        self.end = start + duration
        self.placed.append(t)
        self.starts.append(start)
        self.finishes.append(self.end)
        return 0.0 - s.alpha * (idle / s.divisor), 0.0 - (1.0 - s.alpha) * (self.late - old)

    # ---------------------------------------------------------------- observations
    def features(self) -> list[int]:
        s = self.spec
        # Progress: "more than 50% of jobs scheduled" counts tasks when breaks are optional.
        done, total = (s.tasks - self.left(0) - self.left(1), s.tasks) if s.optional else (self.k, s.n)
        delay = self.end - self.booked()
        out = [int(done / total > 0.25), int(done / total > 0.5), int(done / total > 0.75), int(delay > 0)]
        out.append(int(self.significantly_delayed()))
        # Less time spent (minutes elapsed) than left (booked minutes of what must still be placed).
        to_place = [0, 1] if s.optional else [0, 1, 2]
        out.append(int(self.end < sum(self.left(t) * s.booked_length(t) for t in to_place)))
        out += [int(self.prev() == t) for t in range(s.types)]
        out += [int(self.prev(2) == t) for t in range(s.types)]
        if self.prev() >= 0 and self.prev(2) >= 0:
            a, b = s.durations[self.prev()], s.durations[self.prev(2)]
            out += [int(a > b), int(a < b), int(a == b)]
        else:
            out += [0, 0, 0]
        if s.types == 3:
            out.append(int(self.left(2) > 0))
        short, long_ = self.left(0), self.left(1)
        out += [int(short > 0), int(long_ > 0), int(short > long_), int(long_ > short)]
        return out

    def significantly_delayed(self) -> bool:
        options = self.valid()
        if not options:
            return False
        for t in options:
            trial = self.copy()
            trial.place(t, factor=1.0)
            if not trial.end - trial.booked() > 0:
                return False
        return True

    def numeric(self) -> list[float]:
        s = self.spec
        out = [float(self.left(t)) for t in range(s.types)]
        out += [float(self.k), self.end - self.booked(), self.late, self.idle]
        out += [1.0 if self.prev() == t else 0.0 for t in range(s.types)]
        return out


def draw_day(spec: Spec, rng: Rng) -> tuple[list[list[float]], Rng]:
    """The reset draws: multipliers of every short then every long task, then the sampling seed."""
    factors = [[1.0 + spec.noise * (2.0 * rng.uniform() - 1.0) for _ in range(spec.counts[t])] for t in (0, 1)]
    seed = rng.next()
    words = []
    for _ in range(4):
        seed = (seed + 0x9E3779B97F4A7C15) & MASK64
        z = seed
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
        words.append(z ^ (z >> 31))
    if not any(words):
        words[0] = 1
    return factors, Rng(np.array(words, dtype=np.uint64))


def orderings(counts: tuple[int, ...], optional: bool = False) -> Iterator[tuple[int, ...]]:
    """Every distinct ordering of a multiset: positions of type 0, then of type 1 among the rest.
    ``optional``: every ordering of the tasks with 0..counts[2] breaks, each inserted just before
    a task (several may share a gap); no break after the last task."""
    if optional:
        for tasks in orderings((counts[0], counts[1], 0)):
            for j in range(counts[2] + 1):
                for gaps in itertools.combinations_with_replacement(range(len(tasks)), j):
                    seq = []
                    for i, t in enumerate(tasks):
                        seq += [BREAK] * gaps.count(i) + [t]
                    yield tuple(seq)
        return
    n = sum(counts)
    for first in itertools.combinations(range(n), counts[0]):
        rest = [i for i in range(n) if i not in first]
        for second in itertools.combinations(rest, counts[1]):
            seq = [2] * n
            for i in first:
                seq[i] = 0
            for i in second:
                seq[i] = 1
            yield tuple(seq)


def run(state: State, sequence) -> State:
    out = state.copy()
    for t in sequence:
        out.place(t)
    return out


def percentile(spec: Spec, factors, cost: float) -> dict[str, float]:
    """Rank ``cost`` among every ordering of the day (no cuts)."""
    worse = ties = total = 0
    best = math.inf
    for seq in orderings(spec.counts, spec.optional):
        c = run(State(spec, factors), seq).cost()
        total += 1
        if c > cost + TIE:
            worse += 1
        elif c >= cost - TIE:
            ties += 1
        best = min(best, c)
    return {"percentile_efficacy": 100.0 * (worse + 0.5 * ties) / total, "best_cost": best, "orderings": total}


def sampled_percentile(spec: Spec, factors, cost: float, rng: Rng, samples: int) -> dict[str, float]:
    worse = ties = 0
    best = math.inf
    # One ordering: item by item, u uniform, the first type (in type order) whose running sum of
    # the completions after it exceeds u * the completions from here; so all are equally likely.
    for _ in range(samples):
        state = State(spec, factors)
        while not state.over():
            rest = [state.left(x) for x in range(3)]
            u = rng.uniform() * count(spec, rest)
            acc, chosen = 0.0, None
            for t in state.valid():
                child = list(rest)
                child[t] -= 1
                acc += count(spec, child)
                if chosen is None and u < acc:
                    chosen = t
            state.place(state.valid()[-1] if chosen is None else chosen)
        c = state.cost()
        if c > cost + TIE:
            worse += 1
        elif c >= cost - TIE:
            ties += 1
        best = min(best, c)
    return {"percentile_efficacy": 100.0 * (worse + 0.5 * ties) / samples, "best_cost": best,
            "orderings": samples}


def count(spec: Spec, rest) -> int:
    """Completions with ``rest`` items left, by enumeration."""
    return sum(1 for _ in orderings(tuple(rest), spec.optional))


def oracle_values(state: State, draws: np.ndarray, average: bool = False) -> list[float]:
    """Per type: mean over the draw tables of (place it, then the best / mean completion)."""
    spec = state.spec
    out = []
    for t in range(spec.types):
        if t not in state.valid():
            out.append(math.inf)
            continue
        acc = 0.0
        for table in draws:
            trial = State(spec, [list(table[0]), list(table[1])], list(state.placed), state.end, state.late,
                          state.idle)
            trial.place(t)
            rest = tuple(trial.left(x) for x in range(3))
            costs = [run(trial, tail).cost() for tail in orderings(rest, spec.optional)]
            acc += min(costs) if not average else sum(costs) / len(costs)
        out.append(acc / len(draws))
    return out


def reachable_prefixes(spec: Spec) -> set[tuple[int, ...]]:
    """Every non-terminal prefix of every ordering."""
    out = set()
    for seq in orderings(spec.counts, spec.optional):
        for k in range(len(seq)):
            out.add(seq[:k])
    return out


class Episode:
    """One env episode: reset draws from ``rng_state``, then ``step(action)``."""

    def __init__(self, cfg, rng_state: np.ndarray):
        self.cfg = cfg
        self.spec = Spec.of(cfg)
        factors, self.sample_rng = draw_day(self.spec, Rng(rng_state))
        self.state = State(self.spec, factors)
        self.invalid = 0

    def mask(self) -> list[int]:
        if self.state.over():
            return [1] + [0] * (self.spec.types - 1)
        return [int(self.state.left(t) > 0) for t in range(self.spec.types)]

    def obs(self) -> np.ndarray:
        if self.cfg.observation == "boolean":
            return np.array(self.state.features(), dtype=np.int8)
        return np.array(self.state.numeric(), dtype=np.float32)

    def step(self, action: int) -> tuple[list[float], bool]:
        invalid = action not in self.state.valid()
        if invalid:
            self.invalid += 1
            action = self.state.valid()[0]
        idle, late = self.state.place(action)
        return [idle, late, -1.0 if invalid else 0.0], self.state.over()

    def metrics(self) -> dict[str, float]:
        s = self.state
        out = {"cost": s.cost(), "mean_idle": s.idle / self.spec.divisor, "max_lateness": s.late,
               "total_idle": s.idle, "makespan": s.end, "invalid_actions": float(self.invalid)}
        if self.cfg.percentile == "exact":
            out.update(percentile(self.spec, s.factors, s.cost()))
        elif self.cfg.percentile == "sample":
            out.update(sampled_percentile(self.spec, s.factors, s.cost(), self.sample_rng,
                                          self.cfg.percentile_samples))
        return out
