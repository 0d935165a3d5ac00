"""Training logs: CSV files, TensorBoard scalars and a progress bar, all optional.

``<out>/progress.csv``: one row per PPO iteration (global step, SPS, recent episodic return and
length, losses, approx-KL, clip fraction, explained variance, learning rate, mean episode metrics).
``<out>/episodes.csv``: one row per finished episode (global step, return, length, episode metrics).
TensorBoard event files go to ``<out>/tb`` (``tensorboard --logdir <out>``).
"""

from __future__ import annotations

import csv
import sys
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np


class TrainingLogger:
    """Collects episode results and per-iteration statistics; writes them where asked.

    Args:
        out_dir: folder for CSV / TensorBoard files, or None to keep everything in memory only.
        total_steps: for the progress bar.
        tensorboard: write TensorBoard event files (needs the ``tensorboard`` package).
        progress: show a tqdm progress bar on stderr.
        window: number of recent episodes the "recent return" averages over.
    """

    def __init__(self, out_dir: str | Path | None, total_steps: int, tensorboard: bool = True,
                 progress: bool = True, window: int = 20):
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.recent_returns: deque[float] = deque(maxlen=window)
        self.recent_lengths: deque[float] = deque(maxlen=window)
        self.recent_metrics: deque[dict[str, float]] = deque(maxlen=window)
        self.history: list[dict[str, float]] = []
        self.episodes = 0
        self._progress_csv = self._episodes_csv = None
        self._progress_writer = self._episode_writer = None
        self._episode_fields: list[str] | None = None
        self._tb = None
        self._bar = None
        if self.out_dir is not None:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            if tensorboard:
                try:
                    from torch.utils.tensorboard import SummaryWriter
                except ImportError:  # tensorboard not installed: CSV logs only
                    SummaryWriter = None
                if SummaryWriter is not None:
                    self._tb = SummaryWriter(str(self.out_dir / "tb"))
        if progress:
            from tqdm import tqdm
            interactive = sys.stderr.isatty()
            self._bar = tqdm(total=total_steps, unit="step", file=sys.stderr, dynamic_ncols=True,
                             smoothing=0.1, mininterval=0.2 if interactive else 30.0)

    # ------------------------------------------------------------------ episodes
    def episode(self, step: int, ret: float, length: int, metrics: dict[str, float]) -> None:
        self.episodes += 1
        self.recent_returns.append(ret)
        self.recent_lengths.append(length)
        self.recent_metrics.append(metrics)
        if self.out_dir is None:
            return
        row = {"global_step": step, "return": ret, "length": length, **metrics}
        if self._episode_writer is None:
            self._episode_fields = list(row)
            self._episodes_csv = open(self.out_dir / "episodes.csv", "w", newline="")
            self._episode_writer = csv.DictWriter(self._episodes_csv, self._episode_fields,
                                                  extrasaction="ignore")
            self._episode_writer.writeheader()
        self._episode_writer.writerow(row)
        if self._tb is not None:
            self._tb.add_scalar("charts/episodic_return", ret, step)
            self._tb.add_scalar("charts/episodic_length", length, step)
            for key, value in metrics.items():
                self._tb.add_scalar(f"episode_metrics/{key}", value, step)

    def recent(self) -> dict[str, float]:
        """Mean return, length and episode metrics over the last ``window`` episodes."""
        if not self.recent_returns:
            return {}
        out = {"return_mean": float(np.mean(self.recent_returns)),
               "length_mean": float(np.mean(self.recent_lengths))}
        keys = set().union(*self.recent_metrics) if self.recent_metrics else set()
        for key in sorted(keys):
            values = [m[key] for m in self.recent_metrics if key in m]
            out[f"metric/{key}"] = float(np.mean(values))
        return out

    # ------------------------------------------------------------------ iterations
    def iteration(self, step: int, stats: dict[str, float], advance: int) -> dict[str, float]:
        row = {"global_step": step, "episodes": self.episodes, **self.recent(), **stats}
        self.history.append(row)
        if self._bar is not None:
            self._bar.update(advance)
            post = {"sps": f"{stats.get('sps', 0):.0f}"}
            if "return_mean" in row:
                post["return"] = f"{row['return_mean']:.3g}"
            self._bar.set_postfix(post, refresh=False)
        if self.out_dir is not None:
            if self._progress_writer is None:
                self._progress_csv = open(self.out_dir / "progress.csv", "w", newline="")
                self._progress_writer = csv.DictWriter(self._progress_csv, list(row), extrasaction="ignore",
                                                       restval="")
                self._progress_writer.writeheader()
            elif set(row) - set(self._progress_writer.fieldnames):
                self._extend_progress_columns(row)
            self._progress_writer.writerow(row)
            self._progress_csv.flush()
            if self._episodes_csv is not None:
                self._episodes_csv.flush()
            if self._tb is not None:
                for key, value in stats.items():
                    group = "charts" if key in ("sps", "lr") else "losses"
                    self._tb.add_scalar(f"{group}/{key}", value, step)
        return row

    def _extend_progress_columns(self, row: dict[str, Any]) -> None:
        """A metric appeared after the header was written (first episode ended late): rewrite."""
        self._progress_csv.close()
        fields = list(self._progress_writer.fieldnames) + [k for k in row if k not in self._progress_writer.fieldnames]
        self._progress_csv = open(self.out_dir / "progress.csv", "w", newline="")
        self._progress_writer = csv.DictWriter(self._progress_csv, fields, extrasaction="ignore", restval="")
        self._progress_writer.writeheader()
        for old in self.history[:-1]:
            self._progress_writer.writerow(old)

    def close(self) -> None:
        for f in (self._progress_csv, self._episodes_csv):
            if f is not None:
                f.close()
        if self._tb is not None:
            self._tb.close()
        if self._bar is not None:
            self._bar.close()
