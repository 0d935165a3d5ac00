"""Explanations: per action and reward component, the predicted return, and why one action over another.

For a state, :func:`explain` asks the fitted :class:`~.model.CrystalBox` about every valid action
(or the ones given) and returns an :class:`Explanation`: for each action and component the
predicted mean +- standard deviation of the discounted return over the next ``t_max`` decisions,
in reward units, and their total (the components sum to the reward; the total's deviation treats
the components as independent). :meth:`Explanation.contrast` answers "why A and not B": the
per-component differences of the predicted returns and the *dominant* component, the one that
moves the total difference most in its own direction (CrystalBox, Patel et al., AAAI 2024, Fig. 2
and section 7.2). :meth:`~Explanation.table` prints it; :meth:`~Explanation.plot` draws the
paper's grouped bar chart (components per action, the total last) as a PNG (matplotlib, imported
only there).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .model import CrystalBox

MAX_PLOTTED = 6


@dataclass
class Contrast:
    """Why ``a`` rather than ``b``: predicted return differences (a minus b) per component."""

    a: str
    b: str
    components: tuple[str, ...]
    difference: np.ndarray
    total: float
    dominant: str

    def sentence(self) -> str:
        parts = ", ".join(f"{c} {d:+.3g}" for c, d in zip(self.components, self.difference))
        verdict = "better" if self.total >= 0 else "worse"
        return (f"why {self.a} and not {self.b}: {self.a} is predicted {verdict} by {abs(self.total):.3g} "
                f"({parts}); mostly {self.dominant}")


@dataclass
class Explanation:
    """Predicted per-component returns of several actions in one state (reward units)."""

    components: tuple[str, ...]
    actions: np.ndarray
    labels: list[str]
    mean: np.ndarray
    std: np.ndarray
    chosen: int | None = None
    t_max: int = 5
    gamma: float = 0.95
    title: str = ""

    @property
    def total(self) -> np.ndarray:
        return self.mean.sum(axis=1)

    @property
    def total_std(self) -> np.ndarray:
        return np.sqrt((self.std ** 2).sum(axis=1))

    @property
    def best(self) -> int:
        """Index of the action with the largest predicted total."""
        return int(np.argmax(self.total))

    def position(self, action: Any) -> int:
        """Where ``action`` (an action as given to :func:`explain`, or its label) is in this explanation."""
        if isinstance(action, str):
            if action in self.labels:
                return self.labels.index(action)
        else:
            for i, a in enumerate(self.actions):
                if np.shape(a) == np.shape(action) and np.array_equal(a, action):
                    return i
        raise ValueError(f"action {action!r} is not among the explained actions {self.labels}")

    def contrast(self, a: Any, b: Any) -> Contrast:
        """Why ``a`` and not ``b`` (actions as given to :func:`explain`, or their labels)."""
        return self.contrast_at(self.position(a), self.position(b))

    def contrast_at(self, i: int, j: int) -> Contrast:
        """Why the ``i``-th explained action and not the ``j``-th."""
        diff = self.mean[i] - self.mean[j]
        total = float(diff.sum())
        dominant = self.components[int(np.argmax(diff if total >= 0 else -diff))]
        return Contrast(self.labels[i], self.labels[j], self.components, diff, total, dominant)

    def reference(self) -> int:
        """The action explained against the others: pi's choice if known, else the best."""
        return self.best if self.chosen is None else self.chosen

    def runner_up(self) -> int | None:
        """The best action other than :meth:`reference` (None with a single action)."""
        if len(self.labels) < 2:
            return None
        order = [int(k) for k in np.argsort(-self.total, kind="stable") if k != self.reference()]
        return order[0]

    def table(self) -> str:
        """Plain-text table: one row per action, mean +- std per component and the total."""
        header = ["action"] + list(self.components) + ["total"]
        rows = []
        for k, label in enumerate(self.labels):
            mark = " (pi)" if k == self.chosen else ""
            cells = [f"{m:+.3g} ± {s:.2g}" for m, s in zip(self.mean[k], self.std[k])]
            rows.append([label + mark] + cells + [f"{self.total[k]:+.3g} ± {self.total_std[k]:.2g}"])
        widths = [max(len(h), *(len(r[c]) for r in rows)) for c, h in enumerate(header)]
        line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
        out = [line(header), line(["-" * w for w in widths])] + [line(r) for r in rows]
        other = self.runner_up()
        if other is not None:
            out.append(self.contrast_at(self.reference(), other).sentence())
        head = f"{self.title}\n" if self.title else ""
        return head + f"predicted returns over {self.t_max} decisions (gamma {self.gamma:g}), reward units\n" + \
            "\n".join(out)

    def plotted(self) -> list[int]:
        """The actions a chart shows: all if few, else the reference and the best others."""
        if len(self.labels) <= MAX_PLOTTED:
            return list(range(len(self.labels)))
        ref = self.reference()
        rest = [int(k) for k in np.argsort(-self.total, kind="stable") if k != ref][:MAX_PLOTTED - 1]
        return [ref] + rest

    def plot(self, path: str | Path, title: str | None = None) -> Path:
        """Grouped bars (components, then the total) per action with +-1 std error bars, as a PNG."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        shown = self.plotted()
        groups = list(self.components) + ["total"]
        values = np.column_stack([self.mean, self.total])[shown]
        errors = np.column_stack([self.std, self.total_std])[shown]
        fig = Figure(figsize=(1.6 + 1.3 * len(groups), 3.6))
        FigureCanvasAgg(fig)
        ax = fig.add_subplot(1, 1, 1)
        width = 0.8 / len(shown)
        x = np.arange(len(groups))
        for n, k in enumerate(shown):
            label = f"action {self.labels[k]}" + (" (π)" if k == self.chosen else "")
            ax.bar(x - 0.4 + width * (n + 0.5), values[n], width, yerr=errors[n], capsize=2, label=label,
                   hatch="//" if k == self.chosen else None, edgecolor="black", linewidth=0.5)
        ax.axhline(0.0, color="black", linewidth=0.6)
        ax.axvline(len(groups) - 1.5, color="grey", linewidth=0.6, linestyle=":")
        ax.set_xticks(x, groups)
        ax.set_ylabel(f"return over {self.t_max} steps (reward units)")
        ax.set_title(title if title is not None else self.title, fontsize=9)
        ax.legend(fontsize=7, ncol=2 if len(shown) > 3 else 1)
        fig.tight_layout()
        from ..runs import atomic_replace

        return atomic_replace(Path(path), lambda tmp: fig.savefig(tmp, dpi=110, format="png"))

    def to_dict(self) -> dict[str, Any]:
        """Plain data (JSON-able)."""
        other = self.runner_up()
        return {"components": list(self.components), "actions": self.labels, "mean": self.mean.tolist(),
                "std": self.std.tolist(), "total": self.total.tolist(), "chosen": self.chosen,
                "why": None if other is None else self.contrast_at(self.reference(), other).sentence()}


def state_observation(state: Any, index: int = 0) -> tuple[Any, Any]:
    """(observation, action mask or None) of a snapshot (``get_state()``, sub-env ``index``) or of
    an ``(obs, info)`` pair."""
    if isinstance(state, dict) and "arrays" in state and "format" in state:
        arrays = state["arrays"]
        if not isinstance(arrays, dict):
            raise ValueError("snapshot 'arrays' must be a dict")
        n = int(state.get("num_envs", 1))
        if not 0 <= index < n:
            raise ValueError(f"index must lie in [0, {n - 1}] for this snapshot, got {index}")
        keys = [k for k in arrays if k == "obs" or k.startswith("obs:")]
        if not keys:
            raise ValueError("the snapshot holds no observation ('obs' array)")
        obs = arrays["obs"][index] if "obs" in arrays else {k[4:]: arrays[k][index] for k in keys}
        mask = arrays.get("action_mask")
        return obs, None if mask is None else np.asarray(mask[index])
    if isinstance(state, tuple) and len(state) == 2 and isinstance(state[1], dict):
        obs, info = state
        mask = info.get("action_mask")
        return obs, None if mask is None else np.asarray(mask)
    raise ValueError("state must be a snapshot from env.unwrapped.get_state() or an (obs, info) pair")


def explain(explainer: CrystalBox, state: Any, actions: Any = None, chosen: Any = None, index: int = 0,
            title: str = "") -> Explanation:
    """Explain a state with a fitted explainer.

    Args:
        explainer: the :class:`CrystalBox` fitted for the policy being explained.
        state: a snapshot (``env.unwrapped.get_state()``; sub-env ``index``) or ``(obs, info)``.
        actions: the actions to compare (default: every valid action, or the perturbation set for
            continuous actions).
        chosen: the policy's action here, if known (marked in the table and chart, and the one the
            others are contrasted with; added to ``actions`` if missing).
    """
    if not isinstance(explainer, CrystalBox):
        raise ValueError(f"explain needs a fitted CrystalBox explainer (CrystalBox.fit or .load), "
                         f"got {type(explainer).__name__}")
    obs, mask = state_observation(state, index)
    q = explainer.queries
    acts = q.every_action(mask) if actions is None else q.check(actions)
    if len(acts) == 0:
        raise ValueError("no action to explain (every action is masked)")
    pick = None
    if chosen is not None:
        c = q.check(chosen)[0]
        found = [i for i, a in enumerate(acts) if np.array_equal(a, c)]
        if not found:
            acts = np.concatenate([acts, c[None]])
            found = [len(acts) - 1]
        pick = found[0]
    mean, std = explainer.query(obs, acts)
    return Explanation(explainer.components, acts, [q.label(a) for a in acts], mean, std, pick,
                       explainer.t_max, explainer.gamma, title)
