"""Seed ranges of a distillation run: training, selection and test episodes never share a seed.

DAgger trains on episodes started from the training seeds, picks its iterate on the selection
episodes and is scored on the test episodes (and on held-out teacher states for fidelity). A
score is honest only when those ranges are pairwise disjoint: :func:`check_disjoint` refuses
overlapping ranges before any work, and :func:`describe` prints them as ``seeds A-B``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

SeedRange = tuple[int, int]  # first and last seed, both included


def episode_range(first: int, episodes: int) -> SeedRange:
    """The seeds of ``episodes`` episodes started from ``first``, ``first + 1``, ..."""
    return (int(first), int(first) + int(episodes) - 1)


def collection_bound(first: int, samples: int, num_envs: int, calls: int = 1) -> SeedRange:
    """Every seed ``calls`` collections of ``samples`` states on ``num_envs`` sub-envs can use.

    A collection resets its ``num_envs`` sub-envs once and then at most every sub-env after each
    of its ``ceil(samples / num_envs)`` steps, so it starts at most
    ``num_envs * (1 + ceil(samples / num_envs))`` episodes, each from the next seed.
    """
    steps = -(-int(samples) // int(num_envs))
    return (int(first), int(first) + int(calls) * int(num_envs) * (1 + steps) - 1)


def check_disjoint(ranges: dict[str, SeedRange]) -> None:
    """A ValueError naming the first two ranges that share a seed."""
    named = sorted(ranges.items(), key=lambda kv: kv[1])
    for (a, (lo_a, hi_a)), (b, (lo_b, hi_b)) in itertools.combinations(named, 2):
        if lo_b <= hi_a and lo_a <= hi_b:
            raise ValueError(f"{a} (seeds {lo_a}-{hi_a}) and {b} (seeds {lo_b}-{hi_b}) overlap; "
                             "move one of them (e.g. --seed, --selection-seed, --test-seed)")


def describe(name: str, seeds: SeedRange) -> str:
    """``"<name>: seeds A-B"``."""
    return f"{name}: seeds {seeds[0]}-{seeds[1]}"


class SeedCounter:
    """``first``, ``first + 1``, ... like :func:`itertools.count`, remembering the last seed handed out."""

    def __init__(self, first: int):
        self.first = int(first)
        self.last = self.first - 1
        self._it: Iterator[int] = itertools.count(self.first)

    def __iter__(self) -> SeedCounter:
        return self

    def __next__(self) -> int:
        self.last = next(self._it)
        return self.last

    def used(self) -> SeedRange:
        """The seeds handed out so far (``(first, first - 1)`` when none)."""
        return (self.first, self.last)
