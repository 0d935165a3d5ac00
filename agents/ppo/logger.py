"""Training logs: CSV files, TensorBoard scalars and a progress bar, all optional.

``<out>/progress.csv``: one row per PPO iteration (global step, SPS, recent episodic return and
length, losses, approx-KL, clip fraction, explained variance, learning rate, mean episode metrics).
``<out>/episodes.csv``: one row per finished episode (global step, return, length, episode metrics).
TensorBoard event files go to ``<out>/tb`` (``tensorboard --logdir <out>``): the iteration's
statistics and the recent episodes' means, at most once every ``tensorboard_seconds`` (and for the
last iteration), so a long run's event files stay small; every episode is in ``episodes.csv``.
A resumed run appends to the files, first dropping rows logged after the checkpoint it resumes.
"""

from __future__ import annotations

import csv
import math
import sys
import time
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
        progress: show a tqdm progress bar on stderr (redrawn at most twice a second on a terminal,
            every 30 s into a file or pipe).
        window: number of recent episodes the "recent return" averages over.
        tensorboard_seconds: least time between two TensorBoard writes (0: every iteration).
        resume_step: continue the logs of a run resumed at this global step (None: a new run).
    """

    def __init__(self, out_dir: str | Path | None, total_steps: int, tensorboard: bool = True,
                 progress: bool = True, window: int = 20, tensorboard_seconds: float = 0.0,
                 resume_step: int | None = None):
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.tensorboard_seconds = tensorboard_seconds
        self._tb_last = -math.inf
        self._tb_pending: tuple[int, dict[str, float]] | None = None
        self._earlier_progress: list[dict[str, str]] = []
        self._resumed = resume_step is not None
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
            if self._resumed:
                self._earlier_progress = _rows_up_to(self.out_dir / "progress.csv", resume_step)
                episodes = _rows_up_to(self.out_dir / "episodes.csv", resume_step)
                header = _header(self.out_dir / "episodes.csv")
                if header:
                    self._open_episodes(header, episodes)
            if tensorboard:
                try:
                    from torch.utils.tensorboard import SummaryWriter
                except ImportError:  # tensorboard not installed: CSV logs only
                    SummaryWriter = None
                if SummaryWriter is not None:
                    self._tb = SummaryWriter(str(self.out_dir / "tb"), purge_step=resume_step)
        if progress:
            from tqdm import tqdm
            interactive = sys.stderr.isatty()
            self._bar = tqdm(total=total_steps, initial=resume_step or 0, unit="step", file=sys.stderr,
                             dynamic_ncols=True, smoothing=0.1, mininterval=0.5 if interactive else 30.0)

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
            self._open_episodes(list(row), [])
        self._episode_writer.writerow(row)

    def _open_episodes(self, fields: list[str], rows: list[dict[str, str]]) -> None:
        """Start episodes.csv with ``fields`` and the ``rows`` kept from before a resume."""
        self._episode_fields = fields
        self._episodes_csv = open(self.out_dir / "episodes.csv", "w", newline="")
        self._episode_writer = csv.DictWriter(self._episodes_csv, fields, extrasaction="ignore", restval="")
        self._episode_writer.writeheader()
        self._episode_writer.writerows(rows)

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
                fields = list(row)
                if self._earlier_progress:
                    fields = list(self._earlier_progress[0]) + [k for k in row if k not in self._earlier_progress[0]]
                self._progress_csv = open(self.out_dir / "progress.csv", "w", newline="")
                self._progress_writer = csv.DictWriter(self._progress_csv, fields, extrasaction="ignore",
                                                       restval="")
                self._progress_writer.writeheader()
                self._progress_writer.writerows(self._earlier_progress)
            elif set(row) - set(self._progress_writer.fieldnames):
                self._extend_progress_columns(row)
            self._progress_writer.writerow(row)
            self._progress_csv.flush()
            if self._episodes_csv is not None:
                self._episodes_csv.flush()
            if self._tb is not None:
                self._tb_pending = (step, row)
                now = time.monotonic()
                if now - self._tb_last >= self.tensorboard_seconds:
                    self._write_tensorboard()
                    self._tb_last = now
        return row

    def _write_tensorboard(self) -> None:
        """The pending iteration's statistics and recent-episode means as TensorBoard scalars."""
        step, row = self._tb_pending
        self._tb_pending = None
        for key, value in row.items():
            if key in ("global_step", "episodes") or not isinstance(value, (int, float)):
                continue
            if key in ("return_mean", "length_mean"):
                tag = f"charts/episodic_{key.split('_')[0]}"
            elif key.startswith("metric/"):
                tag = f"episode_metrics/{key[7:]}"
            else:
                tag = f"{'charts' if key in ('sps', 'lr', 'ent_coef') else 'losses'}/{key}"
            self._tb.add_scalar(tag, value, step)

    def state_dict(self) -> dict[str, Any]:
        """The recent-episode window and episode count (plain data), for a resumed run."""
        return {"episodes": self.episodes, "returns": list(self.recent_returns),
                "lengths": list(self.recent_lengths), "metrics": list(self.recent_metrics)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        try:
            episodes = int(state["episodes"])
            returns = [float(v) for v in state["returns"]]
            lengths = [float(v) for v in state["lengths"]]
            metrics = [{str(k): float(v) for k, v in m.items()} for m in state["metrics"]]
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise ValueError(f"damaged logger state: {error}") from None
        self.episodes = episodes
        self.recent_returns.extend(returns)
        self.recent_lengths.extend(lengths)
        self.recent_metrics.extend(metrics)

    def _extend_progress_columns(self, row: dict[str, Any]) -> None:
        """A metric appeared after the header was written (first episode ended late): rewrite."""
        self._progress_csv.close()
        fields = list(self._progress_writer.fieldnames) + [k for k in row if k not in self._progress_writer.fieldnames]
        self._progress_csv = open(self.out_dir / "progress.csv", "w", newline="")
        self._progress_writer = csv.DictWriter(self._progress_csv, fields, extrasaction="ignore", restval="")
        self._progress_writer.writeheader()
        self._progress_writer.writerows(self._earlier_progress)
        for old in self.history[:-1]:
            self._progress_writer.writerow(old)

    def close(self) -> None:
        for f in (self._progress_csv, self._episodes_csv):
            if f is not None:
                f.close()
        if self._tb is not None:
            if self._tb_pending is not None:
                self._write_tensorboard()
            self._tb.close()
        if self._bar is not None:
            self._bar.close()


def _header(path: Path) -> list[str]:
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return next(csv.reader(f), [])


def _rows_up_to(path: Path, step: int) -> list[dict[str, str]]:
    """The rows of a log CSV up to ``step`` (a resumed run drops what came after its checkpoint)."""
    if not path.exists():
        return []
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    kept = []
    for row in rows:
        try:
            if int(float(row.get("global_step") or "nan")) > step:
                break
        except ValueError:
            break
        kept.append(row)
    return kept
