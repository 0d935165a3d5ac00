"""The exact percentile's shared tails (cython_core/appointments.pyx, ``_rank_day``) count exactly
what the plain walk of every ordering counts.

A big day (P3's 84,084 orderings) is ranked by listing, once per day, the distinct (idle added,
largest wait) pairs of the completions of each "cut state" (at most ``rank_cut`` tasks left) and
scanning that list for every prefix that reaches it; ``rank_cut = -1`` is the plain walk (the
algorithm before, kept as the kernel's path for small days). Here every cut of many small random
days (noise 0 with its many ties, noise up to 100%, non-dyadic durations, optional and mandatory
breaks) and of full-size P3 days must give the walk's (worse, ties, total, best) bit for bit, at
costs placed on and next to the tie boundaries, and the plain-Python reference's brute-force
enumeration (tests/reference/appointments.py) must agree; seeded episodes give identical metrics.
"""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest

import sysgym  # noqa: F401
from sysgym.cython_core.appointments import TIE_TOLERANCE, Problem
from sysgym.envs.appointments import build_config
from sysgym.envs.appointments.config import kernel_config
from tests.reference import appointments as ref

RNG_STATE = np.ones(4, dtype=np.uint64)


def random_kwargs(rng: np.random.Generator) -> dict:
    counts = [int(rng.integers(0, 4)), int(rng.integers(0, 4))]
    if sum(counts) == 0:
        counts[int(rng.integers(2))] = 1
    return {
        "problem": "P3", "n_short": counts[0], "n_long": counts[1], "n_breaks": int(rng.integers(0, 3)),
        "short_duration": float(rng.choice([30.0, 27.1, 20.0])),
        "long_duration": float(rng.choice([60.0, 71.3, 50.0])),
        "slot": float(rng.choice([45.0, 47.3, 40.0])),
        "buffer": float(rng.choice([0.0, 15.0, 10.1])),
        "break_elasticity": float(rng.choice([0.0, 15.0])),
        "noise": float(rng.choice([0.0, 0.0, 0.05, 0.3, 1.0])),
        "alpha": float(rng.choice([0.5, rng.uniform(0.05, 0.95)])),
        "break_model": str(rng.choice(["paper", "slot"])),
    }


def random_ordering(cfg, rng: np.random.Generator) -> np.ndarray:
    """A random ordering of the day, padded with -1 to num_items (unused optional breaks)."""
    seq = [0] * cfg.n_short + [1] * cfg.n_long
    rng.shuffle(seq)
    breaks = int(rng.integers(0, cfg.n_breaks + 1)) if cfg.optional_breaks else cfg.n_breaks
    for _ in range(breaks):     # optional breaks go before a task; mandatory ones anywhere
        seq.insert(int(rng.integers(0, len(seq) + (0 if cfg.optional_breaks else 1))), 2)
    return np.array(seq + [-1] * (cfg.num_items - len(seq)), dtype=np.int64)


def probe_costs(problem: Problem, cfg, fac: np.ndarray, rng: np.random.Generator) -> list[float]:
    """Costs of orderings of the day, and costs on and next to their tie boundaries."""
    own = [problem.cost_of(random_ordering(cfg, rng), fac) for _ in range(3)]
    tol = TIE_TOLERANCE
    return own + [own[0] - tol, own[0] + tol, own[1] - tol * (1 + 1e-6), own[1] + tol * (1 - 1e-6),
                  own[2] + 3 * tol, math.inf, 0.0]


def ranks(problem: Problem, cost: float, fac: np.ndarray, cuts) -> dict[int, tuple]:
    out = {}
    for cut in cuts:
        problem.rank_cut = cut
        out[cut] = problem.rank(cost, fac, 0, RNG_STATE)
    return out


def test_every_cut_of_small_days_matches_the_walk_and_the_reference():
    rng = np.random.default_rng(24)
    cut_days = fallbacks = 0
    for _ in range(60):
        cfg = build_config(**random_kwargs(rng))
        problem = Problem(kernel_config(cfg))
        spec = ref.Spec.of(cfg)
        fac = 1.0 + cfg.noise * (2.0 * rng.random((2, cfg.factor_columns)) - 1.0)
        for cost in probe_costs(problem, cfg, fac, rng):
            got = ranks(problem, cost, fac, range(-1, cfg.num_tasks + 1))
            walk = got[-1]
            for cut, result in got.items():
                assert result == walk, (cfg, cost, cut)
            worse, ties, total, best = walk
            assert total == cfg.orderings and 0 <= worse + ties <= total
            if math.isfinite(cost):
                expected = ref.percentile(spec, fac.tolist(), cost)
                assert 100.0 * (worse + 0.5 * ties) / total == pytest.approx(expected["percentile_efficacy"],
                                                                            rel=1e-12)
                assert total == expected["orderings"]
                if best != math.inf:      # the walk's best: the cheapest ordering within c + tol
                    assert best == pytest.approx(expected["best_cost"], rel=1e-12)
            cut_days += problem.rank_cut >= 0
        fallbacks += problem.rank_cut < 0
    assert cut_days > 0 and fallbacks == 0


def boundary_costs(x: float) -> list[float]:
    """Costs c whose tie boundary falls exactly on x: fl(c + tol) == x and fl(c - tol) == x."""
    out = []
    for sign in (-1.0, 1.0):
        c = x + sign * TIE_TOLERANCE
        for _ in range(64):
            edge = c - sign * TIE_TOLERANCE
            if edge == x:
                out.append(c)
                break
            c = math.nextafter(c, -math.inf if edge > x else math.inf)
    return out


def test_costs_on_a_tie_boundary_match_the_walk():
    """For every ordering's cost x of noisy days with non-dyadic durations, the costs c that put x
    exactly on a tie boundary: a list's cost, summed in another order, may differ from the walk's
    by an ulp there, so only the margin around the boundaries keeps these counts exact."""
    rng = np.random.default_rng(5)
    probed = 0
    for _ in range(12):
        kwargs = random_kwargs(rng) | {"noise": 0.3, "short_duration": 27.1, "slot": 47.3, "buffer": 10.1,
                                       "n_short": 3, "n_long": 2}
        cfg = build_config(**kwargs)
        problem = Problem(kernel_config(cfg))
        fac = 1.0 + cfg.noise * (2.0 * rng.random((2, cfg.factor_columns)) - 1.0)
        spec = ref.Spec.of(cfg)
        leaves = set()
        for seq in ref.orderings(cfg.counts, spec.optional):
            padded = np.array(list(seq) + [-1] * (cfg.num_items - len(seq)), dtype=np.int64)
            leaves.add(problem.cost_of(padded, fac))
        for x in sorted(leaves):
            for cost in boundary_costs(x):
                got = ranks(problem, cost, fac, range(-1, cfg.num_tasks + 1))
                assert all(result == got[-1] for result in got.values()), (kwargs, x, cost)
                probed += 1
    assert probed > 500


@pytest.mark.parametrize("kwargs", [
    {"problem": "P3"},
    {"problem": "P3", "break_model": "slot"},
    {"problem": "P3", "noise": 0.0},
    {"problem": "P3", "noise": 1.0, "alpha": 0.9, "break_elasticity": 0.0},
    {"problem": "P3", "n_short": 5, "n_long": 7, "slot": 47.3, "short_duration": 27.1, "noise": 0.0},
])
def test_full_size_days_match_the_walk(kwargs):
    rng = np.random.default_rng(7)
    cfg = build_config(**kwargs)
    problem = Problem(kernel_config(cfg))
    assert problem.rank_cut >= 0          # P3-sized days use the shared tails by default
    for _ in range(4):
        fac = 1.0 + cfg.noise * (2.0 * rng.random((2, cfg.factor_columns)) - 1.0)
        for cost in probe_costs(problem, cfg, fac, rng)[:5]:
            got = ranks(problem, cost, fac, (-1, 2, 4, 6))
            assert got[2] == got[-1] and got[4] == got[-1] and got[6] == got[-1], (kwargs, cost)
            assert got[-1][2] == cfg.orderings


@pytest.mark.parametrize("env_id, kwargs", [
    ("sysgym/Appointments-P1-v0", {}),
    ("sysgym/Appointments-P2-v0", {"noise": 0.0}),
    pytest.param("sysgym/Appointments-P3-v0", {}, marks=pytest.mark.filterwarnings("ignore:.*out of date")),
    ("sysgym/Appointments-P3-v1", {}),
    ("sysgym/Appointments-v0", {"problem": "P3", "noise": 0.0, "alpha": 0.3}),
    ("sysgym/Appointments-v0", {"problem": "P3", "n_breaks": 1, "noise": 0.2, "alpha": 0.7}),
])
def test_episode_metrics_equal_the_walks(env_id, kwargs):
    """Seeded days played with random actions: the same episode metrics with and without the cut."""
    envs = [gym.make(env_id, **kwargs) for _ in range(2)]
    envs[1].unwrapped._vec._kernel.problem.rank_cut = -1
    rng = np.random.default_rng(3)
    for day in range(12):
        infos = [env.reset(seed=100 + day)[1] for env in envs]
        done = False
        while not done:
            action = int(rng.choice(np.flatnonzero(infos[0]["action_mask"])))
            steps = [env.step(action) for env in envs]
            infos = [s[4] for s in steps]
            done = steps[0][2]
        assert infos[0]["episode_metrics"] == infos[1]["episode_metrics"]
        assert infos[0]["episode_metrics"]["orderings"] == envs[0].unwrapped.config.orderings
    for env in envs:
        env.close()
