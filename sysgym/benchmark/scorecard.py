"""The scorecard: per env the policy's raw metric with its interval, normalised score, gap to the
oracle and rank among the baselines; aggregates per family and over all envs; written as
markdown, CSV, JSON and a plot."""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import sysgym

from . import scores
from .baselines import Row
from .heldout import split_label
from .runner import CaseRun
from .suites import Case, Suite


@dataclass
class EnvResult:
    """One env (suite case) of the scorecard."""

    suite: Suite
    case: Case
    run: CaseRun
    rows: dict[str, Row] = field(default_factory=dict)
    mean: float = float("nan")
    ci: tuple[float, float] = (float("nan"), float("nan"))
    best: str = ""
    oracle: str = ""
    score: scores.EnvScore | None = None
    rank: int = 0
    ranked: int = 0
    trained_on: str = ""     # why the case is not held out for this policy (then in no aggregate)

    @property
    def key(self) -> str:
        return f"{self.suite.name}/{self.case.name}"

    def row_mean(self, name: str) -> float:
        return float(np.mean(self.rows[name].values)) if name else float("nan")


@dataclass
class Scorecard:
    policy: str
    envs: list[EnvResult]
    families: dict[str, dict[str, Any]]
    overall: dict[str, Any]
    played_here: list[str]

    # -------------------------------------------------------------- markdown
    def markdown(self) -> str:
        lines = [f"# sysgym benchmark: `{self.policy}`", "",
                 f"sysgym {sysgym.__version__}; suites: " +
                 "; ".join(f"`{s.identity()}`" for s in self.suites()) + ".",
                 f"Confidence intervals: {scores.BOOTSTRAP}. Score: 0 = random policy, 1 = best "
                 "classical baseline; gap: fraction of the best-baseline-to-oracle gap closed; "
                 "rank: among the random policy and the classical baselines (1 = best).", ""]
        if self.played_here:
            lines += [f"Reference rows played in this run (no shipped numbers for these cases): "
                      f"{', '.join(self.played_here)}.", ""]
        for suite in self.suites():
            envs = [e for e in self.envs if e.suite.name == suite.name]
            metric = suite.primary
            lines += [f"## {suite.title}: {metric.label} (`{metric.name}`, {metric.direction} is better)", "",
                      "| env | episodes | policy [95% CI] | random | best baseline | oracle / bound | "
                      "score [95% CI] | gap closed [95% CI] | rank |",
                      "|---|---|---|---|---|---|---|---|---|"]
            for e in envs:
                if e.run.skipped:
                    lines.append(f"| {e.case.name} | - | skipped: {e.run.skipped} | | | | | | |")
                    continue
                oracle = f"{_f(e.row_mean(e.oracle))} ({e.oracle})" if e.oracle else "-"
                gap = f"{_f(e.score.gap, 2)} {_ci(e.score.gap_ci, 2)}" if e.oracle else "-"
                lines.append(
                    f"| {_name(e)} | {e.run.episodes} | {_f(e.mean)} {_ci(e.ci)} | {_f(e.row_mean('random'))} | "
                    f"{_f(e.row_mean(e.best))} ({e.best}) | {oracle} | {_f(e.score.score, 2)} {_ci(e.score.score_ci, 2)} | "
                    f"{gap} | {e.rank} of {e.ranked} |")
            flagged = [e for e in envs if e.trained_on]
            if flagged:
                lines += ["", f"{NOT_HELD_OUT}: " + "; ".join(f"{e.case.name}, {e.trained_on}" for e in flagged) + "."]
            agg = self.families.get(suite.name)
            if agg:
                lines += ["", f"{suite.title}: mean score {_agg(agg['mean'])}, IQM {_agg(agg['iqm'])} "
                              f"over {agg['envs']} envs."]
            lines.append("")
        if self.overall.get("envs"):
            lines += [f"**All envs ({self.overall['envs']}): mean score {_agg(self.overall['mean'])}, "
                      f"IQM {_agg(self.overall['iqm'])}.**", ""]
        lines += ["## Every row (mean primary metric on the same episodes)", ""]
        for suite in self.suites():
            envs = [e for e in self.envs if e.suite.name == suite.name and e.rows]
            if not envs:
                continue
            names = _row_names([e.rows for e in envs])
            lines += [f"{suite.title} ({suite.primary.name}, {suite.primary.direction} is better):", "",
                      "| env | " + " | ".join(names) + f" | `{self.policy}` | score |",
                      "|---|" + "---|" * (len(names) + 2)]
            for e in envs:
                cells = [_f(e.row_mean(n)) if n in e.rows else "-" for n in names]
                mine = "skipped | -" if e.run.skipped else f"**{_f(e.mean)}** | {_f(e.score.score, 2)}"
                lines.append(f"| {_name(e)} | " + " | ".join(cells) + f" | {mine} |")
            lines.append("")
        return "\n".join(lines)

    def suites(self) -> list[Suite]:
        seen: dict[str, Suite] = {}
        for e in self.envs:
            seen.setdefault(e.suite.name, e.suite)
        return list(seen.values())

    # -------------------------------------------------------------- CSV / JSON
    def records(self) -> list[dict[str, Any]]:
        out = []
        for e in self.envs:
            rec: dict[str, Any] = {
                "suite": e.suite.name, "suite_identity": e.suite.identity(), "env": e.case.name,
                "env_id": e.case.env_id, "played_on": e.run.env_id, "mode": e.run.mode, "policy": self.policy,
                "metric": e.suite.primary.name, "direction": e.suite.primary.direction, "episodes": e.run.episodes,
                "skipped": e.run.skipped or "", "split": split_label(e.case), "trained_on": e.trained_on}
            if not e.run.skipped:
                rec.update({
                    "mean": e.mean, "ci_low": e.ci[0], "ci_high": e.ci[1],
                    "random": e.row_mean("random"), "best_baseline": e.best, "best": e.row_mean(e.best),
                    "oracle_name": e.oracle, "oracle": e.row_mean(e.oracle),
                    "score": e.score.score, "score_low": e.score.score_ci[0], "score_high": e.score.score_ci[1],
                    "gap": e.score.gap, "gap_low": e.score.gap_ci[0], "gap_high": e.score.gap_ci[1],
                    "rank": e.rank, "ranked": e.ranked})
                for k in e.suite.secondary:
                    if k in e.run.values:
                        rec[k] = float(np.mean(e.run.values[k]))
            out.append(rec)
        return out

    def csv(self) -> str:
        records = self.records()
        columns: list[str] = []
        for r in records:
            columns += [k for k in r if k not in columns]
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        for r in records:
            writer.writerow({k: ("" if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()})
        return buffer.getvalue()

    def to_json(self) -> dict[str, Any]:
        envs = []
        for e, rec in zip(self.envs, self.records()):
            rec = {k: _clean(v) for k, v in rec.items()}
            rec["references"] = {n: {"role": r.role, "policy": r.policy, "mean": _clean(e.row_mean(n))}
                                 for n, r in e.rows.items()}
            rec["episode_values"] = {k: [_clean(x) for x in np.asarray(v, dtype=float).tolist()]
                                     for k, v in e.run.values.items()}
            envs.append(rec)
        suites = [{"identity": s.identity(), "name": s.name, "version": s.version, "title": s.title,
                   "primary": s.primary.name, "direction": s.primary.direction, "notes": s.notes}
                  for s in self.suites()]
        return {"format": "sysgym-benchmark-results/1", "sysgym_version": sysgym.__version__, "policy": self.policy,
                "bootstrap": scores.BOOTSTRAP, "suites": suites, "envs": envs,
                "families": _clean(self.families), "overall": _clean(self.overall),
                "reference_rows_played_here": self.played_here}

    # -------------------------------------------------------------- plot
    def plot(self, path: str | Path) -> Path:
        """Normalised score per env (bars) with every reference row's score as a marker."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        envs = [e for e in self.envs if not e.run.skipped]
        fig, ax = plt.subplots(figsize=(max(6.0, 0.45 * len(envs) + 2), 4.5))
        x = np.arange(len(envs))
        values = np.array([e.score.score for e in envs], dtype=float)
        lows = np.array([e.score.score_ci[0] for e in envs], dtype=float)
        highs = np.array([e.score.score_ci[1] for e in envs], dtype=float)
        ax.bar(x, values, color="tab:blue", label=self.policy, zorder=2)
        # 95% bootstrap intervals (scores.BOOTSTRAP); an env without one draws no bar end
        ax.errorbar(x, values, yerr=[np.clip(values - lows, 0, None), np.clip(highs - values, 0, None)],
                    fmt="none", ecolor="black", elinewidth=1, capsize=3, zorder=4, label="95% CI")
        ax.axhline(0.0, color="grey", lw=1, ls="--", label="random (0)")
        ax.axhline(1.0, color="black", lw=1, ls="--", label="best baseline (1)")
        shown = set()
        for i, e in enumerate(envs):
            r, b = e.row_mean("random"), e.row_mean(e.best)
            for name, row in e.rows.items():
                if row.role == "random" or name == e.best:
                    continue
                s = scores.normalised_score(float(np.mean(row.values)), r, b)
                kind = "oracle / bound" if row.role == "oracle" else "other baselines"
                ax.plot(i, s, marker="*" if row.role == "oracle" else "_", ms=12, mew=2, ls="none",
                        color="tab:red" if row.role == "oracle" else "dimgrey", zorder=3,
                        label=None if kind in shown else kind)
                shown.add(kind)
        ax.set_xticks(x, [e.key + (" †" if e.trained_on else "") for e in envs], rotation=60, ha="right",
                      fontsize=8)
        ax.set_ylabel("normalised score")
        ax.set_title(f"sysgym benchmark: {self.policy}")
        ax.legend(fontsize=8, loc="best")
        fig.tight_layout()
        path = Path(path)
        fig.savefig(path, dpi=120, format="png")
        plt.close(fig)
        return path

    def plot_profile(self, path: str | Path, taus: np.ndarray | None = None) -> Path:
        """Performance profile (rliable's score distribution): the fraction of envs whose
        normalised score is above each threshold, with its 95% stratified-bootstrap band; envs the
        policy trained on (†) are left out, as from every aggregate."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        played = [e.score for e in self.envs if e.score is not None and not e.trained_on]
        finite = [v for s in played for v in (s.score, *s.score_ci) if np.isfinite(v)]
        top = max([1.5, *finite]) if finite else 1.5
        taus = np.linspace(min(0.0, *finite) if finite else 0.0, top, 101) if taus is None else taus
        profile = scores.performance_profile(played, taus)
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.plot(profile["tau"], profile["fraction"], color="tab:blue", label=self.policy, drawstyle="steps-post")
        ax.fill_between(profile["tau"], profile["low"], profile["high"], color="tab:blue", alpha=0.2,
                        step="post", label="95% CI")
        ax.axvline(1.0, color="black", lw=1, ls="--", label="best baseline (1)")
        ax.set_xlabel("normalised score τ")
        ax.set_ylabel("fraction of envs with score > τ")
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(f"performance profile: {self.policy} ({len(played)} envs)")
        ax.legend(fontsize=8, loc="best")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        path = Path(path)
        fig.savefig(path, dpi=120, format="png")
        plt.close(fig)
        return path

    def write(self, out: str | Path) -> list[Path]:
        """scorecard.md, results.csv, results.json, scores.png and profile.png (with matplotlib)."""
        from sysgym.agents.runs import atomic_replace, atomic_write_text

        out = Path(out)
        if out.exists() and not out.is_dir():
            raise ValueError(f"--out {out}: exists and is not a folder")
        out.mkdir(parents=True, exist_ok=True)
        written = [out / "scorecard.md", out / "results.csv", out / "results.json"]
        atomic_write_text(written[0], self.markdown() + "\n")
        atomic_write_text(written[1], self.csv())
        atomic_write_text(written[2], json.dumps(self.to_json(), indent=1, allow_nan=False) + "\n")
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            return written
        written.append(atomic_replace(out / "scores.png", lambda tmp: self.plot(tmp)))
        written.append(atomic_replace(out / "profile.png", lambda tmp: self.plot_profile(tmp)))
        return written


def reference_table(suites: list[Suite], rows: dict[tuple[str, str], dict[str, Row]]) -> str:
    """Markdown: every reference row's mean primary metric, one table per suite."""
    lines = []
    for suite in suites:
        cases = [c for c in suite.cases if (suite.name, c.name) in rows]
        if not cases:
            continue
        names = _row_names([rows[(suite.name, c.name)] for c in cases])
        metric = suite.primary
        lines += [f"{suite.title}: {metric.label} (`{metric.name}`, {metric.direction} is better); "
                  f"`{suite.identity()}`", "",
                  "| env | episodes | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(names)]
        for case in cases:
            r = rows[(suite.name, case.name)]
            n = len(next(iter(r.values())).values)
            lines.append(f"| {case.name} | {n} | " + " | ".join(_f(float(np.mean(r[k].values))) if k in r else "-" for k in names) + " |")
        lines.append("")
    return "\n".join(lines)


def build(runs: list[CaseRun], suites: list[Suite], rows: dict[tuple[str, str], dict[str, Row]],
          policy: str, played_here: list[str] | None = None,
          trained_on: dict[tuple[str, str], str] | None = None) -> Scorecard:
    """Score every run against its case's reference rows. ``trained_on`` maps (suite, case) to why
    the case is not held out for the policy: such cases are scored and shown, labelled, and left
    out of every aggregate."""
    by_name = {s.name: s for s in suites}
    envs = []
    for run in runs:
        suite = by_name[run.suite]
        case = suite.case(run.case)
        env = EnvResult(suite, case, run, rows.get((suite.name, case.name), {}),
                        trained_on=(trained_on or {}).get((suite.name, case.name), ""))
        envs.append(env)
        if run.skipped:
            continue
        metric = suite.primary
        values = run.values[metric.name]
        rng = scores.generator(env.key)
        env.mean, env.ci = float(np.mean(values)), scores.mean_ci(values, rng)
        baselines = {n: r for n, r in env.rows.items() if r.role == "baseline"}
        env.best = _best(baselines, metric)
        env.oracle = next((n for n, r in env.rows.items() if r.role == "oracle"), "")
        oracle = env.rows[env.oracle].values if env.oracle else None
        env.score = scores.EnvScore(values, env.rows["random"].values, env.rows[env.best].values, oracle, rng)
        ranked = [r for r in env.rows.values() if r.role in ("random", "baseline")]
        env.rank = 1 + sum(metric.better(float(np.mean(r.values)), env.mean) for r in ranked)
        env.ranked = len(ranked) + 1
    families = {}
    for suite in suites:
        done = [e.score for e in envs if e.suite.name == suite.name and e.score is not None and not e.trained_on]
        if done:
            families[suite.name] = {**scores.aggregate(done), "envs": len(done)}
    played = [e.score for e in envs if e.score is not None and not e.trained_on]
    overall = {**scores.aggregate(played), "envs": len(played)} if played else {"envs": 0}
    return Scorecard(policy, envs, families, overall, played_here or [])


NOT_HELD_OUT = "† not held out (the policy trained on this case's inputs; scored, left out of every aggregate)"


def _name(e: EnvResult) -> str:
    return f"{e.case.name} †" if e.trained_on else e.case.name


def _row_names(tables: list[dict[str, Row]]) -> list[str]:
    """Row names in first-seen order, the oracle rows last."""
    names: list[str] = []
    for rows in tables:
        names += [n for n in rows if n not in names]
    roles = {n: r.role for rows in tables for n, r in rows.items()}
    return [n for n in names if roles[n] != "oracle"] + [n for n in names if roles[n] == "oracle"]


def _best(baselines: dict[str, Row], metric: Any) -> str:
    best = ""
    for name, row in baselines.items():
        if not best or metric.better(float(np.mean(row.values)), float(np.mean(baselines[best].values))):
            best = name
    return best


def _f(x: float, digits: int | None = None) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    x = float(x) + 0.0          # no "-0.00"
    if digits is not None:
        return f"{x:.{digits}f}".replace("-0.00", "0.00") if round(x, digits) == 0 else f"{x:.{digits}f}"
    a = abs(x)
    return f"{x:.0f}" if a >= 1000 else f"{x:.1f}" if a >= 100 else f"{x:.2f}" if a >= 10 else f"{x:.3f}"


def _ci(ci: tuple[float, float], digits: int | None = None) -> str:
    return f"[{_f(ci[0], digits)}, {_f(ci[1], digits)}]"


def _agg(entry: tuple[float, tuple[float, float]]) -> str:
    return f"{_f(entry[0], 2)} {_ci(entry[1], 2)}"


def _clean(value: Any) -> Any:
    """JSON-safe: NaN -> None, tuples -> lists, numpy numbers -> Python numbers."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return None if math.isnan(float(value)) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value
