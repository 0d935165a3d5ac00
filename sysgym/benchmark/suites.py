"""The fixed evaluation suites: per family the envs, held-out inputs, seeds, metrics and baselines.

A suite is data. Each of its *cases* (one row of the scorecard) names an env ID and kwargs, the
episodes it plays (episode ``i`` is reset with seed ``EVAL_SEED + i`` and, where the inputs are a
fixed set, with the reset option picking input ``i``), the reference rows it is scored against
(the family's random policy, its classical baselines and, where one exists, an oracle or bound)
and the files it reads. Nothing here runs an episode.

Seeds: every training code path in this repository seeds from 0 upwards (``sysgym train --seed``,
the PPO trainer's sub-envs ``seed + i``, the benchmarks' ``10_000+``), so evaluation uses
``[EVAL_SEED, EVAL_SEED + episodes)`` with ``EVAL_SEED = 10_000_000``; train below it.

Splits: a case whose episodes play a fixed input set names it as its ``split`` (ABR: the trace
folder); :mod:`sysgym.benchmark.heldout` compares those files' bytes with the data that trained a
policy, so a case that would score a policy on its own training data is flagged and left out of
the aggregates (seeded families are held out by their seeds).

Identity: ``suite.identity()`` is ``"<name> v<version> sha256:<12 hex>"``; the hash covers the
suite's definition (every field below, canonical JSON) and the bytes of every input file (shipped
files by their name under ``sysgym.traces``, user-given ones by their name under the folder the
user gave), so two runs with the same identity played the same episodes. ``version`` is bumped by
hand whenever a definition changes on purpose; the hash catches every other change.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, fields, is_dataclass
from pathlib import Path
from typing import Any

from sysgym.traces import trace_path

EVAL_SEED = 10_000_000
CHUNK = 50             # episodes per work unit: one native vector env, one task for a worker process
FAMILIES = ("deeprm", "dag", "abr", "cc", "appointments")


# ------------------------------------------------------------------------------ inputs
@dataclass(frozen=True)
class Shipped:
    """A file or folder shipped in ``sysgym.traces`` (``"dag/layered_n20.dot"``)."""

    name: str

    def path(self) -> Path:
        return trace_path(*self.name.split("/"))


@dataclass(frozen=True)
class External:
    """A file or folder the user gave (``root``), hashed by content and by ``name`` under it."""

    root: str
    name: str

    def path(self) -> Path:
        path = Path(self.root) / self.name
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such file or folder")
        return path


@dataclass(frozen=True)
class SWFWindow:
    """Jobs ``[offset, offset + length)`` of a shipped SWF trace, as a DeepRM ``workload``."""

    trace: Shipped
    offset: int
    length: int
    time_unit: float = 60.0

    def workload(self) -> Any:
        from sysgym.envs.deeprm import SWFWorkload

        return SWFWorkload(self.trace.path(), time_unit=self.time_unit, offset=self.offset, length=self.length)


def resolve(value: Any) -> Any:
    """An env kwarg as ``gymnasium.make`` takes it (inputs become paths or workloads)."""
    if isinstance(value, (Shipped, External)):
        return str(value.path())
    if isinstance(value, SWFWindow):
        return value.workload()
    return value


# ------------------------------------------------------------------------------ definitions
@dataclass(frozen=True)
class Metric:
    name: str           # a key of info["episode_metrics"], or "reward_per_mi" (return / steps / flows)
    direction: str      # "lower" or "higher" is better
    label: str

    def better(self, a: float, b: float) -> bool:
        return a < b if self.direction == "lower" else a > b


@dataclass(frozen=True)
class Reference:
    """A row every result is compared with. ``policy`` is a ``--policy`` spec, or ``input:NAME``
    for a number computed from each episode's input without playing it (DAG list scheduling and
    width lower bound)."""

    name: str
    role: str           # "random" (score 0), "baseline" (the best one scores 1) or "oracle"
    policy: str
    note: str = ""


@dataclass(frozen=True)
class Case:
    """One env of a suite: what is played and what it is compared with."""

    name: str
    env_id: str
    env_kwargs: tuple[tuple[str, Any], ...]
    episodes: int
    references: tuple[Reference, ...]
    reset_option: str | None = None            # reset option naming episode i's input ...
    option_values: tuple[int, ...] | None = None  # ... and its value per episode
    n_flows: int = 0                           # > 0: the PettingZoo multi-flow CC env
    inputs: tuple[Shipped | External, ...] = ()
    seed: int = EVAL_SEED
    split: Shipped | External | None = None    # the held-out input set the episodes play (ABR: traces)

    def kwargs(self) -> dict[str, Any]:
        return {k: resolve(v) for k, v in self.env_kwargs}

    def reset_options(self, start: int, stop: int) -> dict[str, Any]:
        """Reset options for episodes [start, stop) (a list per option; empty if none)."""
        if self.reset_option is None:
            return {}
        return {self.reset_option: list(self.option_values[start:stop])}


@dataclass(frozen=True)
class Suite:
    name: str
    version: int
    title: str
    primary: Metric
    secondary: tuple[str, ...]
    cases: tuple[Case, ...]
    variants: tuple[str, ...] = ()   # env IDs with the same dynamics and metrics as the cases' ID
    notes: str = ""

    def identity(self) -> str:
        return f"{self.name} v{self.version} sha256:{suite_hash(self)[:12]}"

    def case(self, name: str) -> Case:
        for c in self.cases:
            if c.name == name:
                return c
        raise ValueError(f"suite {self.name} has no case {name!r}; it has {[c.name for c in self.cases]}")


# ------------------------------------------------------------------------------ hashing
def _plain(value: Any) -> Any:
    """The definition as JSON data; user folders enter by name only (not where they live)."""
    if isinstance(value, External):
        return {"external": value.name}
    if isinstance(value, Shipped):
        return {"shipped": value.name}
    if is_dataclass(value):
        return {"type": type(value).__name__, **{f.name: _plain(getattr(value, f.name)) for f in fields(value)
                                                 if not (f.name in _LATER_FIELDS and getattr(value, f.name) is None)}}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


# Fields added after version 1 enter the definition (and the hash) only when set, so cases that
# do not set them keep their hash.
_LATER_FIELDS = ("split",)


def _files(item: Shipped | External) -> list[tuple[str, Path]]:
    path = item.path()
    if path.is_file():
        return [(item.name, path)]
    found = sorted(p for p in path.rglob("*") if p.is_file() and not any(part.startswith(".") for part in p.parts))
    return [(f"{item.name}/{p.relative_to(path).as_posix()}", p) for p in found]


def _inputs_of(case: Case) -> list[Shipped | External]:
    items = list(case.inputs)
    if case.split is not None and case.split not in items:
        items.append(case.split)
    for _, value in case.env_kwargs:
        if isinstance(value, SWFWindow):
            value = value.trace
        if isinstance(value, (Shipped, External)) and value not in items:
            items.append(value)
    return items


def case_hash(case: Case, primary: Metric) -> str:
    """sha256 of the case's definition, its primary metric and the bytes of its input files."""
    digest = hashlib.sha256()
    digest.update(json.dumps(_plain((case, primary)), sort_keys=True, allow_nan=False).encode())
    for name, path in sorted(f for item in _inputs_of(case) for f in _files(item)):
        digest.update(b"\0file\0" + name.encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


def suite_hash(suite: Suite) -> str:
    head = {f.name: _plain(getattr(suite, f.name)) for f in fields(suite) if f.name != "cases"}
    digest = hashlib.sha256(json.dumps(head, sort_keys=True, allow_nan=False).encode())
    for case in suite.cases:
        digest.update(case_hash(case, suite.primary).encode())
    return digest.hexdigest()


# ------------------------------------------------------------------------------ the suites
def _kw(**kwargs: Any) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted(kwargs.items()))


def _refs(random: str, baselines: tuple[str, ...], oracle: tuple[str, str, str] | None = None) -> tuple[Reference, ...]:
    rows = [Reference("random", "random", random)]
    rows += [Reference(b.split(":", 1)[1], "baseline", b) for b in baselines]
    if oracle is not None:
        rows.append(Reference(oracle[0], "oracle", oracle[1], oracle[2]))
    return tuple(rows)


DEEPRM_EPISODES = 200


def deeprm() -> Suite:
    refs = _refs("heuristic:random", ("heuristic:sjf", "heuristic:tetris", "heuristic:packer", "heuristic:fcfs"))
    env_id = "sysgym/DeepRM-CompactSparse-v0"
    cases = [Case(f"scenario-{k}", env_id, _kw(scenario=k), DEEPRM_EPISODES, refs) for k in range(1, 11)]
    window = SWFWindow(Shipped("deeprm/synthetic_64.swf"), offset=1500, length=500)
    cases.append(Case("swf-64", env_id, _kw(workload=window, num_processors=64), DEEPRM_EPISODES, refs))
    return Suite(
        "deeprm", 1, "DeepRM cluster scheduling",
        Metric("mean_slowdown_all", "lower", "mean slowdown incl. unfinished jobs"),
        ("mean_slowdown", "jobs_left", "mean_wait", "utilisation"), tuple(cases),
        variants=("sysgym/DeepRM-Compact-v0", "sysgym/DeepRM-CompactSparseReduced-v0", "sysgym/DeepRM-Image-v0"),
        notes="BRACIS'21 scenarios 1-10 (DeepRM generator) and a replay window of the shipped synthetic "
              "SWF trace (jobs 1500-1999 of synthetic_64.swf on 64 processors, seeded random start). "
              "random = a random fitting job (never idles while a job fits).")


def dag() -> Suite:
    from sysgym.envs.dag import DAGVectorEnv

    refs = _refs("heuristic:random", ("heuristic:greedy", "input:list_scheduling"),
                 ("lower bound", "input:width_lower_bound", "max(1, ceil(vol/D), ceil(C_crit/P)) of the task as given"))
    cases = []
    for n in (20, 40, 60):
        tasks = Shipped(f"dag/layered_n{n}.dot")
        env = DAGVectorEnv(1, workload=str(tasks.path()))
        playable = tuple(int(k) for k in env.playable_tasks)
        env.close()
        cases.append(Case(f"n{n}", "sysgym/DAG-EGS-v0", _kw(workload=tasks), len(playable), refs,
                          reset_option="task", option_values=playable))
    return Suite(
        "dag", 1, "DAG scheduling by edge generation",
        Metric("cores_needed", "lower", "cores needed to meet the deadline"),
        ("edges_added", "critical_path", "invalid_actions"), tuple(cases),
        notes="every playable task of the shipped test sets traces/dag/layered_n{20,40,60}.dot, once each; "
              "list_scheduling = fewest cores on which CP-first global list scheduling meets D.")


def abr(data: str | Path | None = None) -> Suite:
    from sysgym.envs.abr import build_config

    refs = _refs("heuristic:random", ("heuristic:bb", "heuristic:rb", "heuristic:robust_mpc"),
                 ("offline optimal", "heuristic:offline_optimal", "dynamic programming with the trace known, grid 1 s"))
    n = build_config(traces="test").num_traces
    cases = [Case("test", "sysgym/ABR-v0", _kw(traces="test", trace_order="sequential"), n, refs,
                  reset_option="trace", option_values=tuple(range(n)), inputs=(Shipped("abr/test"),),
                  split=Shipped("abr/test"))]
    if data is not None:
        root = Path(data).resolve()
        folder = root / "traces"
        if not (folder.is_dir() and (root / "video_envivio").is_dir()):
            raise FileNotFoundError(f"{root}: expected traces/<set>/ folders and video_envivio/ (as in shared/data/abr)")
        for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
            traces, video = External(str(root), f"traces/{sub.name}"), External(str(root), "video_envivio")
            k = build_config(traces=str(traces.path()), pensieve_compatible=True, video=str(video.path())).num_traces
            cases.append(Case(sub.name, "sysgym/ABR-Pensieve-v0", _kw(traces=traces, video=video, trace_order="sequential"),
                              k, refs, reset_option="trace", option_values=tuple(range(k)), split=traces))
    return Suite(
        "abr", 2, "ABR video streaming",
        Metric("qoe_per_chunk", "higher", "QoE per chunk"),
        ("quality_per_chunk", "rebuffer_per_chunk", "smoothness_per_chunk", "rebuffer_time_s", "switches"),
        tuple(cases),
        notes="each shipped test trace played once from its start, noise off (Pensieve's test protocol); "
              "with --abr-data DIR also every DIR/traces/<set> on ABR-Pensieve-v0 with DIR/video_envivio. "
              "Each case's split is its trace set: a policy trained on any of its traces is flagged on "
              "that case and the case left out of its aggregates. random = a uniformly random level.")


CC_LINKS = 100


def cc() -> Suite:
    refs = _refs("heuristic:random", ("heuristic:fixed", "heuristic:aimd", "heuristic:delay"),
                 ("oracle", "heuristic:oracle", "sends at the true bottleneck bandwidth (reads the link state); a reference, not an optimum"))
    links = tuple(range(CC_LINKS))
    cases = [Case("1-flow", "sysgym/CC-v0", _kw(link_set="test"), CC_LINKS, refs, "link_index", links)]
    for n in (2, 4):
        cases.append(Case(f"{n}-flows", "sysgym/CC-v0", _kw(link_set="test"), CC_LINKS, refs, "link_index", links, n_flows=n))
    return Suite(
        "cc", 1, "Congestion control",
        Metric("reward_per_mi", "higher", "Aurora reward per monitor interval and flow"),
        ("throughput", "latency", "loss_rate", "utilisation", "jain_index"), tuple(cases),
        notes="one 400-MI episode per link of the test link set; 2 and 4 flows share the link in the "
              "PettingZoo env, one policy acting for every flow. random = uniform rate changes in [-1, 1].")


APPOINTMENT_DAYS = 500
# v2 of the suite plays P3-v1 (the paper's optional breaks); v1 played P3-v0
APPOINTMENT_IDS = {"P1": "sysgym/Appointments-P1-v0", "P2": "sysgym/Appointments-P2-v0",
                   "P3": "sysgym/Appointments-P3-v1"}


def appointments() -> Suite:
    from sysgym.agents.heuristics.appointments import PAPER_RULES

    cases = []
    for problem in ("P1", "P2", "P3"):
        rules = ("heuristic:alternate", *(f"heuristic:{r}" for r in PAPER_RULES[problem]))
        refs = _refs("heuristic:random", rules, ("oracle", "heuristic:oracle", "expected cost with an optimal continuation, 32 noise draws"))
        cases.append(Case(problem, APPOINTMENT_IDS[problem], (), APPOINTMENT_DAYS, refs))
    return Suite(
        "appointments", 2, "Appointment scheduling (Taub & Pianykh 2022)",
        Metric("percentile_efficacy", "higher", "percentile efficacy"),
        ("cost", "mean_idle", "max_lateness"), tuple(cases),
        notes="seeded days (noise 5%, alpha 0.5); percentile: mid-rank of the day's cost among every "
              "ordering of the same day. random = a uniformly random ordering.")


BUILDERS = {"deeprm": deeprm, "dag": dag, "abr": abr, "cc": cc, "appointments": appointments}


def get_suites(name: str, abr_data: str | Path | None = None) -> list[Suite]:
    """The suite ``name`` (a family) or all of them for ``"all"``."""
    if name not in (*FAMILIES, "all"):
        raise ValueError(f"unknown suite {name!r}; choose from {', '.join((*FAMILIES, 'all'))}")
    if abr_data is not None and name not in ("abr", "all"):
        raise ValueError("--abr-data adds cases to the abr suite; use it with --suite abr or all")
    names = FAMILIES if name == "all" else (name,)
    return [abr(abr_data) if n == "abr" else BUILDERS[n]() for n in names]


def describe(suite: Suite) -> dict[str, Any]:
    """The suite as JSON data (for results files)."""
    return {"identity": suite.identity(), **_plain(suite)}


__all__ = ["CHUNK", "EVAL_SEED", "FAMILIES", "Case", "External", "Metric", "Reference", "SWFWindow",
           "Shipped", "Suite", "case_hash", "describe", "get_suites", "resolve", "suite_hash"]

