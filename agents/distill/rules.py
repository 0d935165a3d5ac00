"""Boolean rules: the best DNF (or CNF) with at most k literals, found by exhaustive search.

Strategy learning's M2 (Taub & Pianykh, "An alternative to the black box: Strategy learning",
PLoS ONE 17(3): e0264485, 2022): for a two-action problem, "take action b if <formula>, else
action a", the formula a disjunction of conjunctions of literals over Boolean features (or
threshold tests ``x[f] > t`` / ``x[f] <= t`` on numeric ones, see
:class:`~sysgym.agents.distill.features.Predicates`). Every formula with at most ``max_literals``
literals and both choices of which action it names is scored and the cheapest kept (ties: fewer
literals, then enumeration order). The negation of a DNF is a CNF with the same literals negated,
so searching DNFs naming either action also finds the best CNF; ``form="cnf"`` only prints it so.

Evaluation is on bitsets: identical training rows are merged (their costs summed), each literal
becomes a packed bit row over the distinct rows, a conjunction is a bitwise AND and a disjunction
an OR; a formula's cost is read through per-byte lookup tables of the cost differences, so
weighted costs are exact.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from .features import Predicates
from .samples import TrainingSet

FORMS = ("dnf", "cnf")
Literal = tuple[int, float, bool]   # (feature, threshold, greater): x[f] > t if greater else x[f] <= t


@dataclass
class Rule:
    """``then_action`` where the DNF ``terms`` holds, ``else_action`` elsewhere."""

    terms: tuple[tuple[Literal, ...], ...]
    then_action: int
    else_action: int
    n_actions: int
    boolean: np.ndarray
    form: str = "dnf"
    cost: float = float("nan")

    @property
    def n_literals(self) -> int:
        return sum(len(t) for t in self.terms)

    def holds(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float32).astype(np.float64)
        out = np.zeros(len(X), dtype=bool)
        for term in self.terms:
            part = np.ones(len(X), dtype=bool)
            for f, t, greater in term:
                part &= (X[:, f] > t) if greater else (X[:, f] <= t)
            out |= part
        return out

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.where(self.holds(X), self.then_action, self.else_action)

    def preferences(self, X: np.ndarray) -> np.ndarray:
        """(n, A): the rule's action first, the other of the pair second, then the rest."""
        rest = [a for a in range(self.n_actions) if a not in (self.then_action, self.else_action)]
        yes = np.array([self.then_action, self.else_action, *rest], dtype=np.int64)
        no = np.array([self.else_action, self.then_action, *rest], dtype=np.int64)
        return np.where(self.holds(X)[:, None], yes[None, :], no[None, :])

    def size(self) -> dict[str, int]:
        return {"literals": self.n_literals, "terms": len(self.terms)}


def _structures(k: int) -> list[tuple[int, ...]]:
    """Term sizes of every DNF shape with 1..k literals, fewest literals first."""
    out = []
    for total in range(1, k + 1):
        def parts(n: int, largest: int) -> list[tuple[int, ...]]:
            if n == 0:
                return [()]
            return [(s, *rest) for s in range(min(n, largest), 0, -1) for rest in parts(n - s, s)]
        out += parts(total, total)
    return out


def learn_rule(data: TrainingSet, max_literals: int = 3, form: str = "dnf", max_thresholds: int | None = None,
               max_candidates: int = 5_000_000) -> Rule:
    """The cheapest rule over ``data`` (exactly two actions) with at most ``max_literals`` literals."""
    if form not in FORMS:
        raise ValueError(f"form must be one of {FORMS}, got {form!r}")
    if not (isinstance(max_literals, int) and 0 <= max_literals <= 6):
        raise ValueError(f"max_literals must be an int in [0, 6], got {max_literals!r}")
    if data.n_actions != 2:
        raise ValueError(f"Boolean rules choose between two actions; this problem has {data.n_actions} "
                         "(use a tree student)")
    preds = Predicates.fit(data.X, max_thresholds)
    if len(preds) == 0:  # every feature constant: the best constant rule
        c0, c1 = data.costs.sum(axis=0)
        constant = 1 if c1 < c0 else 0   # an empty DNF never holds: the else action is taken
        return Rule((), 1 - constant, constant, 2, preds.boolean, form, float(min(c0, c1)))
    truth = preds.evaluate(data.X)                                   # (n, P): x <= t
    rows, inverse = np.unique(truth, axis=0, return_inverse=True)     # distinct rows
    inverse = inverse.reshape(-1)
    c = np.zeros((len(rows), 2))
    np.add.at(c, inverse, data.costs)
    literals = [(int(f), float(t), True) for f, t in zip(preds.feature, preds.threshold)] + \
               [(int(f), float(t), False) for f, t in zip(preds.feature, preds.threshold)]
    bits = np.concatenate([~rows.T, rows.T])
    # drop literals true or false everywhere and repeats of an earlier literal's pattern
    useful = bits.any(axis=1) & ~bits.all(axis=1)
    _, first = np.unique(bits, axis=0, return_index=True)
    keep = np.zeros(len(bits), dtype=bool)
    keep[first] = True
    keep &= useful
    literals = [lit for lit, k in zip(literals, keep) if k]
    packed = np.packbits(bits[keep], axis=1)                         # (L, nb)
    table = _lookup(c[:, 1] - c[:, 0], packed.shape[1])
    base0, base1 = c[:, 0].sum(), c[:, 1].sum()

    best = {"cost": min(base0, base1), "terms": (), "then": 0 if base1 < base0 else 1}  # empty: else always
    tol = 1e-9 * max(1.0, abs(base0) + abs(base1))
    structures = _structures(max_literals)
    n_terms = {s: math.comb(len(packed), s) for s in range(1, max_literals + 1)}
    total = sum(_count(shape, n_terms) for shape in structures)
    if total > max_candidates:
        raise ValueError(f"{total:,} candidate rules exceed max_candidates={max_candidates:,}: lower "
                         f"max_literals ({max_literals}) or max_thresholds ({max_thresholds}), or use "
                         "Boolean features")
    terms_by_size = {s: _terms(packed, s) for s in range(1, max_literals + 1)}

    def consider(ors: np.ndarray, prefix: tuple, last: np.ndarray, size: int) -> None:
        gain = table[np.arange(ors.shape[1])[None, :], ors].sum(axis=1) if ors.shape[1] else np.zeros(len(ors))
        for then, cost in ((1, base0 + gain), (0, base1 - gain)):
            i = int(np.argmin(cost))
            if cost[i] < best["cost"] - tol:
                best.update(cost=float(cost[i]), terms=(*prefix, (size, int(last[i]))), then=then)

    for shape in structures:
        _search(shape, terms_by_size, None, (), -1, consider)
    chosen = tuple(tuple(literals[j] for j in terms_by_size[s][1][t]) for s, t in best["terms"])
    return Rule(terms=chosen, then_action=best["then"], else_action=1 - best["then"], n_actions=2,
                boolean=preds.boolean, form=form, cost=best["cost"])


def _lookup(delta: np.ndarray, n_bytes: int) -> np.ndarray:
    """(n_bytes, 256): the sum of ``delta`` over the rows whose bits are set in each byte value
    (numpy's big-endian packbits order)."""
    padded = np.zeros(n_bytes * 8)
    padded[:len(delta)] = delta
    bits = np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1).astype(np.float64)  # (256, 8)
    return padded.reshape(n_bytes, 8) @ bits.T


def _terms(packed: np.ndarray, size: int) -> tuple[np.ndarray, list[tuple[int, ...]]]:
    """Every conjunction of ``size`` distinct literals: packed bits (m, nb) and literal indices."""
    combos = list(itertools.combinations(range(len(packed)), size))
    if not combos:
        return np.zeros((0, packed.shape[1]), dtype=np.uint8), []
    idx = np.array(combos, dtype=np.int64)
    return np.bitwise_and.reduce(packed[idx], axis=1), combos


def _count(shape: tuple[int, ...], n_terms: dict[int, int]) -> int:
    total = 1
    for size in set(shape):
        total *= math.comb(n_terms[size], shape.count(size))
    return total


def _search(shape, terms_by_size, ors, prefix, start, consider) -> None:
    """Every set of terms with sizes ``shape`` (equal sizes in increasing index order): the last
    position is vectorised, the others iterate."""
    size = shape[0]
    bits = terms_by_size[size][0]
    lo = start + 1 if prefix and prefix[-1][0] == size else 0
    if len(shape) == 1:
        idx = np.arange(lo, len(bits))
        if len(idx):
            cand = bits[idx] if ors is None else bits[idx] | ors[None, :]
            consider(cand, prefix, idx, size)
        return
    for t in range(lo, len(bits)):
        merged = bits[t] if ors is None else bits[t] | ors
        _search(shape[1:], terms_by_size, merged, (*prefix, (size, t)), t, consider)
