"""Pure-Python xoshiro256** matching cython_core/rng.pxd draw for draw."""

import math

import numpy as np

MASK = (1 << 64) - 1


def _rotl(x: int, k: int) -> int:
    return ((x << k) | (x >> (64 - k))) & MASK


class Rng:
    """One sub-environment's stream; `state` is the kernel's 4-word row."""

    def __init__(self, state):
        self.s = [int(w) for w in np.asarray(state, dtype=np.uint64)]

    def next(self) -> int:
        s = self.s
        result = (_rotl((s[1] * 5) & MASK, 7) * 9) & MASK
        t = (s[1] << 17) & MASK
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = _rotl(s[3], 45)
        return result

    def uniform(self) -> float:
        return float(self.next() >> 11) * (1.0 / 9007199254740992.0)

    def integers(self, lo: int, hi: int) -> int:
        return lo + int(self.uniform() * float(hi - lo + 1))

    def exponential(self, mean: float) -> float:
        return -mean * math.log(1.0 - self.uniform())

    def normal(self, mu: float, sigma: float) -> float:
        u1 = self.uniform()
        u2 = self.uniform()
        return mu + sigma * math.sqrt(-2.0 * math.log(1.0 - u1)) * math.cos(2.0 * math.pi * u2)

    def state(self) -> np.ndarray:
        return np.array(self.s, dtype=np.uint64)
