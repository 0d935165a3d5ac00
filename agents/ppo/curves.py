"""The learning curve of a training run, drawn from its ``episodes.csv`` (matplotlib's Agg, no window).

``sysgym train`` calls :func:`plot_learning_curve` when a run ends (or is interrupted), so every
output folder holds ``learning_curve.png``: each finished episode's return against the env step
at which it ended, and the mean of the last ``window`` episodes.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from ..runs import atomic_replace

WINDOW = 20


def read_episode_returns(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(env steps, returns) of the finished episodes in an ``episodes.csv``; empty if it has none.

    Rows whose step or return is not a finite number are refused with a ValueError naming the line.
    """
    path = Path(path)
    steps, returns = [], []
    with path.open(newline="") as f:
        for line, row in enumerate(csv.DictReader(f), start=2):
            try:
                step, ret = float(row["global_step"]), float(row["return"])
            except (KeyError, TypeError, ValueError):
                raise ValueError(f"{path}:{line}: global_step and return must be numbers") from None
            if not (math.isfinite(step) and math.isfinite(ret)):
                raise ValueError(f"{path}:{line}: global_step and return must be finite")
            steps.append(step)
            returns.append(ret)
    return np.asarray(steps), np.asarray(returns)


def rolling_mean(values: np.ndarray, window: int = WINDOW) -> np.ndarray:
    """Mean of the last ``window`` values at each position (fewer at the start)."""
    sums = np.cumsum(np.concatenate([[0.0], values]))
    ends = np.arange(1, values.size + 1)
    starts = np.maximum(ends - window, 0)
    return (sums[ends] - sums[starts]) / (ends - starts)


def plot_learning_curve(out_dir: str | Path, title: str = "", window: int = WINDOW) -> Path | None:
    """Write ``<out_dir>/learning_curve.png``; returns its path, or None when no episode finished."""
    out_dir = Path(out_dir)
    episodes = out_dir / "episodes.csv"
    if not episodes.is_file():
        return None
    steps, returns = read_episode_returns(episodes)
    if steps.size == 0:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    ax.scatter(steps, returns, s=4, alpha=0.25, color="tab:blue", label="episode return")
    ax.plot(steps, rolling_mean(returns, window), color="tab:blue", label=f"mean of the last {window}")
    ax.set_xlabel("env steps")
    ax.set_ylabel("episodic return")
    ax.set_title(title or out_dir.name)
    ax.grid(alpha=0.3)
    ax.legend(loc="best")
    fig.tight_layout()
    path = out_dir / "learning_curve.png"
    atomic_replace(path, lambda tmp: fig.savefig(tmp, dpi=100, format="png"))
    plt.close(fig)
    return path
