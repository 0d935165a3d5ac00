"""Scoring explainers against ground truth: fidelity and alerts (CrystalBox, AAAI 2024, section 7).

Ground truth at a sampled state is the return of each queried action on the input the episode
really plays from there (the forked rollout of :mod:`.collect` on held-out inputs: same trace,
same kernel RNG stream — one Monte-Carlo rollout, exact for that future). Methods are compared on
the same queries:

* **Fidelity** (the paper's Fig. 4): squared error between estimate and truth on the [0, 1]
  scale of the explainer's normaliser, both clipped to [0, 1] (as the public code's scaler
  does), per component, split into factual (pi's action) and counterfactual queries.
* **Alerts** (Figs. 7 and 9): an event fires when a component's return, divided by the
  normaliser's span (:meth:`~.normalise.Normaliser.signed`), falls below the paper's threshold.
  Recall = fired by the method among queries where the truth fires; false-positive rate = fired
  by the method among queries where the truth does not.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .normalise import Normaliser

# (component, threshold): an event when signed return < threshold. The paper's events: ABR low
# quality, quality change (the smoothness penalty) and stall (rebuffer); CC low throughput, high
# latency and loss.
PAPER_THRESHOLDS: dict[str, dict[str, float]] = {
    "abr": {"quality": 0.55, "smoothness": -0.1, "rebuffer": -0.25},
    "cc": {"throughput": 0.3, "latency": -0.075, "loss": -0.1},
}


def squared_errors(truth: np.ndarray, estimate: np.ndarray, normaliser: Normaliser) -> np.ndarray:
    """(R, C) squared errors on the clipped [0, 1] scale."""
    t = np.clip(normaliser.transform(truth), 0.0, 1.0)
    e = np.clip(normaliser.transform(estimate), 0.0, 1.0)
    return (e - t) ** 2


def fidelity_rows(truth: np.ndarray, estimates: dict[str, np.ndarray], factual: np.ndarray,
                  normaliser: Normaliser, components: tuple[str, ...]) -> list[list[str]]:
    """Table rows: method, queries, count, then mean squared error per component."""
    rows = []
    for name, est in estimates.items():
        err = squared_errors(truth, est, normaliser)
        for label, keep in (("factual", factual), ("counterfactual", ~factual)):
            if not keep.any():
                continue
            rows.append([name, label, str(int(keep.sum()))] + [f"{v:.4f}" for v in err[keep].mean(axis=0)])
    return rows


def fidelity_header(components: tuple[str, ...]) -> list[str]:
    return ["method", "queries", "n"] + [f"MSE {c}" for c in components]


def events(returns: np.ndarray, normaliser: Normaliser, components: tuple[str, ...],
           thresholds: dict[str, float]) -> dict[str, np.ndarray]:
    """Per event (component name), which queries fire: signed return < threshold."""
    signed = normaliser.signed(returns)
    out = {}
    for name, value in thresholds.items():
        if name not in components:
            raise ValueError(f"no reward component {name!r} (components: {components})")
        out[name] = signed[:, components.index(name)] < value
    return out


def alert_scores(truth: np.ndarray, estimate: np.ndarray, normaliser: Normaliser, components: tuple[str, ...],
                 thresholds: dict[str, float]) -> dict[str, dict[str, Any]]:
    """Per event: recall, false-positive rate and the counts behind them (NaN when undefined)."""
    real = events(truth, normaliser, components, thresholds)
    said = events(estimate, normaliser, components, thresholds)
    out = {}
    for name in thresholds:
        pos, neg = real[name], ~real[name]
        out[name] = {
            "positives": int(pos.sum()), "negatives": int(neg.sum()),
            "recall": float(said[name][pos].mean()) if pos.any() else float("nan"),
            "fpr": float(said[name][neg].mean()) if neg.any() else float("nan"),
        }
    return out
