"""Gymnasium front ends of the DAG edge-generation kernel: the native vector env and its single view."""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from sysgym.cython_core.dag import METRIC_NAMES, N_NODE_FEATURES, DAGKernel

from ..batched import BatchedKernelEnv, KernelEnv
from ..validate import integer
from . import render
from .config import DAGConfig, build_config, kernel_config, task_arrays
from .dot import format_dot
from .state import bits_to_bool, check_state, family_arrays, kernel_buffers, state_bytes
from .tasks import DAGTask, make_task

__all__ = ["METRIC_NAMES", "NODE_FEATURES", "REWARD_COMPONENTS", "DAGEnv", "DAGVectorEnv", "analyse_task"]

REWARD_COMPONENTS = ("width", "slack", "invalid")
NODE_FEATURES = ("wcet", "eft", "lst", "lateral_width", "present")
# How each node feature reads in feature_names (the values as the observation holds them).
NODE_FEATURE_LABELS = ("C/D", "EFT/D", "LST/D", "lateral/n", "present")
assert len(NODE_FEATURES) == len(NODE_FEATURE_LABELS) == N_NODE_FEATURES
MAX_STATE_BYTES = 4 * 2**30     # state and buffers of one vector env (num_envs x per-sub-env bytes)


class _Probe:
    """A one-env kernel over a task set, to analyse task k as an episode would start from it."""

    def __init__(self, cfg: DAGConfig, tasks: dict[str, np.ndarray]):
        self.state = kernel_buffers(cfg, 1)
        self.kernel = DAGKernel(kernel_config(cfg, 1), self.state, tasks)

    def load(self, k: int) -> dict[str, Any]:
        self.kernel.reset(np.ones(1, dtype=np.uint8), np.array([k], dtype=np.int64))
        s = self.state
        out = {"width": int(s["width"][0]), "critical_path": int(s["length"][0]),
               "lower_bound": int(s["lower_bound"][0]), "deadline": int(s["deadline"][0]),
               "done": bool(self.kernel.done(0))}
        out.update(_node_table(s, 0))
        return out


def analyse_task(task: DAGTask, processors: int | None = None) -> dict[str, Any]:
    """What the env computes for ``task`` before any edge is added: ``width``, ``critical_path``,
    ``lower_bound``, ``deadline``, ``done`` (an episode could not start: W at its bound or at
    ``processors``, or no valid edge) and the per-node arrays of :meth:`DAGVectorEnv.node_table`."""
    cfg = build_config(workload=task, processors=processors)
    return _Probe(cfg, task_arrays(cfg)).load(0)


def _node_table(s: dict[str, np.ndarray], index: int) -> dict[str, np.ndarray]:
    n = int(s["n"][index])
    wcet, est, lft = s["wcet"][index, :n].copy(), s["est"][index, :n].copy(), s["lft"][index, :n].copy()
    return {"wcet": wcet, "est": est, "eft": est + wcet, "lst": lft - wcet, "lft": lft,
            "lateral": s["lateral"][index, :n].copy(), "critical": bits_to_bool(s["crit"][index], n),
            "closure": bits_to_bool(s["desc"][index, :n], n)}


class DAGVectorEnv(BatchedKernelEnv):
    """B DAG tasks stepped in one Cython call. Kwargs: see :mod:`sysgym.envs.dag`.

    Invalid actions (``info["action_mask"]`` entry 0) are handled per sub-env as in the single env:
    with ``invalid_action="reject"`` that sub-env's edge is not added (``info["invalid_action"]``,
    reward component ``invalid`` = -1) while the others step normally; with ``"raise"`` a
    ``ValueError`` naming the first offending sub-env is raised before any sub-env moves.
    """

    metric_names = METRIC_NAMES
    reward_components = REWARD_COMPONENTS
    config_builder = staticmethod(build_config)
    _connected = ("_invalid_one", "_extra_views", "_invalid_source")

    def _build(self, **kwargs: Any) -> dict[str, np.ndarray]:
        self.config: DAGConfig = build_config(**kwargs)
        cfg = self.config
        n = cfg.max_nodes
        need = self.num_envs * state_bytes(cfg)
        if need > MAX_STATE_BYTES:
            raise ValueError(f"num_envs={self.num_envs} sub-envs with max_nodes={n} need {need} bytes of state, "
                             f"more than the {MAX_STATE_BYTES} byte limit: use fewer sub-envs or smaller tasks")
        self._feature_names: tuple[str, ...] | None = None
        if cfg.observation == "dict":
            self.single_observation_space = spaces.Dict({
                "nodes": spaces.Box(0.0, 1.0, shape=(n, N_NODE_FEATURES), dtype=np.float32),
                "closure": spaces.Box(0, 1, shape=(n, n), dtype=np.int8),
                "action_mask": spaces.Box(0, 1, shape=(n * n,), dtype=np.int8),
            })
        else:
            self.single_observation_space = spaces.Box(0.0, 1.0, shape=(n * N_NODE_FEATURES + 2 * n * n,),
                                                       dtype=np.float32)
        self.single_action_space = spaces.Discrete(n * n)
        self.reward_weights = np.array([1.0, cfg.slack_weight, cfg.invalid_weight])
        self._tasks: dict[str, np.ndarray] | None = None
        self.skipped_tasks: list[tuple[int, str, str]] = []
        if cfg.workload == "tasks":
            self._tasks = task_arrays(cfg)
            self._classify_tasks()
        return family_arrays(cfg, self.num_envs)

    def _classify_tasks(self) -> None:
        """Set aside the tasks an episode could not start on (already at the width bound or target,
        or with no valid edge); they are listed in ``skipped_tasks`` as (index, name, reason)."""
        cfg = self.config
        probe = _Probe(cfg, self._tasks)
        playable = []
        for k, task in enumerate(cfg.tasks):
            start = probe.load(k)
            if not start["done"]:
                playable.append(k)
                continue
            w, lb = start["width"], start["lower_bound"]
            if w <= lb:
                reason = f"width {w} already equals its lower bound"
            elif cfg.processors is not None and w <= cfg.processors:
                reason = f"width {w} <= processors={cfg.processors} already"
            else:
                reason = f"no edge can be added (width {w}, lower bound {lb})"
            self.skipped_tasks.append((k, task.name, reason))
        if not playable:
            first = "; ".join(f"{name or k}: {why}" for k, name, why in self.skipped_tasks[:3])
            raise ValueError(f"every task of {cfg.source} is done before the first step ({first}...)")
        self._tasks["playable"] = np.asarray(playable, dtype=np.int64)
        self.playable_tasks = tuple(playable)

    def _connect(self) -> None:
        self._kernel = DAGKernel(kernel_config(self.config, self.num_envs), self._state, self._tasks)
        s = self._state
        # one dict of views over the state (set_state copies into the arrays, never rebinds them),
        # the same object every step: the single env then reads its scalars through memoryviews
        self._extra_views = {"width": s["width"], "critical_path": s["length"],
                             "width_lower_bound": s["lower_bound"], "deadline": s["deadline"],
                             "invalid_action": np.zeros(self.num_envs, dtype=bool)}
        self._draw_tasks = np.full(self.num_envs, -1, dtype=np.int64)
        self._draw_tasks.flags.writeable = False
        # B = 1 (the single env): the flag through memoryviews, a tenth of a one-element ufunc call
        self._invalid_one = (memoryview(self._extra_views["invalid_action"]), memoryview(s["reward_components"])) \
            if self.num_envs == 1 else None
        self._invalid_source = s["reward_components"][:, 2]

    def _kernel_reset(self, mask: np.ndarray, options: dict[str, Any] | None) -> None:
        choice = self._draw_tasks         # -1: every sub-env draws its task
        if options:
            options = dict(options)
            if "task" in options:
                choice = self._task_choice(options.pop("task"))
            if options:
                raise ValueError(f"DAG reset takes only the options 'task' and 'reset_mask', got {sorted(options)}")
        failed = self._kernel.reset(mask, choice)
        if failed >= 0:
            cfg = self.config
            hint = ("raise parallelism" if cfg.workload == "layered"
                    else "lower term_probability, raise max_branches / max_depth")
            raise RuntimeError(
                f"sub-env {failed}: the {cfg.workload} generator drew 1000 tasks that were too small or "
                f"already done (width at its lower bound or no valid edge); widen num_nodes, {hint}, "
                f"or lower utilisation_min")

    def _task_choice(self, task: Any) -> np.ndarray:
        cfg = self.config
        if cfg.workload != "tasks":
            raise ValueError("options={'task': k} needs a task-set workload (a .dot file or DAGTasks)")
        values = np.broadcast_to(np.asarray(task), (self.num_envs,))
        for k in values:
            if isinstance(k, (bool, np.bool_)) or not isinstance(k.item(), int) or not 0 <= k < len(cfg.tasks):
                raise ValueError(f"options['task'] must be a task index in [0, {len(cfg.tasks) - 1}], got {k!r}")
            if int(k) not in self.playable_tasks:
                why = next(r for i, _, r in self.skipped_tasks if i == int(k))
                raise ValueError(f"task {int(k)} ({cfg.tasks[int(k)].name}) cannot start an episode: {why}")
        return values.astype(np.int64)

    def _single_kernel_step(self) -> Any:
        # "reject" (the default): nothing to check before the kernel call
        return self._kernel_step if self.config.invalid_action == "raise" else self._kernel.step

    def _kernel_step(self, active: np.ndarray) -> None:
        if self.config.invalid_action == "raise" and (b := self._first_masked_action(active)) is not None:
            prefix = f"sub-env {b}: " if self.num_envs > 1 else ""
            raise ValueError(prefix + self.explain_action(int(self._state["actions"][b]), b))
        self._kernel.step(active)

    def explain_action(self, action: int, index: int = 0) -> str | None:
        """Why ``action`` is not a valid edge of sub-env ``index`` now (None if it is valid)."""
        s, n_max = self._state, self.config.max_nodes
        index = self._sub_env(index)
        action = integer("action", action, None, None)
        i, j = divmod(action, n_max)
        n = int(s["n"][index])
        head = f"action {action} (edge {i} -> {j}) is not valid now: "
        if not 0 <= action < n_max * n_max or i >= n or j >= n:
            return head + f"the task has nodes 0..{n - 1} (the rest is padding up to max_nodes={n_max})"
        if i == j:
            return head + "a node cannot precede itself"
        table = self.node_table(index)
        closure = table["closure"]
        if closure[i, j]:
            return head + f"{j} is already reachable from {i}"
        if closure[j, i]:
            return head + f"{i} is reachable from {j}, so the edge would close a cycle"
        if table["eft"][i] > table["lst"][j]:
            return head + (f"EFT_{i}={table['eft'][i]} > LST_{j}={table['lst'][j]}: the critical path "
                           f"would exceed the deadline D={int(s['deadline'][index])}")
        not_critical = [v for v in (i, j) if not table["critical"][v]]
        if not_critical:
            return head + (f"node(s) {not_critical} are not critical (in no maximum antichain), "
                           f"so the edge cannot lower the width")
        return None

    def _extra_infos(self) -> dict[str, np.ndarray]:
        if self._invalid_one is not None:
            flag, comps = self._invalid_one
            flag[0] = comps[0, 2] < 0
        else:
            np.less(self._invalid_source, 0, out=self._extra_views["invalid_action"])
        return self._extra_views

    def _check_state(self, arrays: dict[str, np.ndarray]) -> None:
        check_state(self.config, self._tasks, arrays)

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Names of the flattened observation's entries: ``node{v}.C/D``, ``.EFT/D``, ``.LST/D``,
        ``.lateral/n``, ``.present``; ``path[u->v]`` (closure) and ``edge[u->v]`` (action mask)."""
        if self._feature_names is None:
            n = self.config.max_nodes
            parts = {"nodes": [f"node{v}.{f}" for v in range(n) for f in NODE_FEATURE_LABELS],
                     "closure": [f"path[{u}->{v}]" for u in range(n) for v in range(n)],
                     "action_mask": [f"edge[{u}->{v}]" for u in range(n) for v in range(n)]}
            # flat: the kernel's concatenation; dict: gymnasium's flatten order (the Dict's keys)
            order = ("nodes", "closure", "action_mask") if self.config.observation == "flat" \
                else tuple(self.single_observation_space.spaces)
            self._feature_names = tuple(name for key in order for name in parts[key])
        return self._feature_names

    # ------------------------------------------------------------------ read-only views for agents
    def _sub_env(self, index: Any) -> int:
        """``index`` checked as a sub-env number, so the error names the argument (the kernel's own check raises IndexError)."""
        return integer("index", index, 0, self.num_envs - 1)

    def _started(self, index: Any) -> int:
        index = self._sub_env(index)
        if self._state["n"][index] == 0:
            raise RuntimeError(f"sub-env {index} has not been reset yet: call reset() first")
        return index

    def node_table(self, index: int = 0) -> dict[str, np.ndarray]:
        """Sub-env ``index`` now, over its n nodes: ``wcet``, ``est``, ``eft``, ``lst``, ``lft``,
        ``lateral`` (lateral width), ``critical`` (bool), ``closure`` ((n, n) bool, [u, v]: a path u ~> v)."""
        return _node_table(self._state, self._sub_env(index))

    def task(self, index: int = 0) -> DAGTask:
        """The task sub-env ``index`` started from (original edges only)."""
        s, cfg = self._state, self.config
        index = self._started(index)
        k = int(s["task"][index])
        if k >= 0:
            return cfg.tasks[k]
        n = int(s["n"][index])
        adj = bits_to_bool(s["adj"][index, :n], n)
        edges = [(int(u), int(v)) for u, v in zip(*np.nonzero(adj))]
        return make_task(s["wcet"][index, :n].tolist(), edges, int(s["deadline"][index]), name="generated")

    def added_edges(self, index: int = 0) -> list[tuple[int, int]]:
        """The edges the agent added in this episode (in node order, not in the order added)."""
        index = self._sub_env(index)
        n = int(self._state["n"][index])
        added = bits_to_bool(self._state["added"][index, :n], n)
        return [(int(u), int(v)) for u, v in zip(*np.nonzero(added))]

    def processor_assignment(self, index: int = 0) -> np.ndarray:
        """Processor of each node: the chains of a minimum chain cover (W chains, numbered by their
        first node). Running every node at its EST on its chain's processor meets D on W cores."""
        index = self._sub_env(index)
        out = np.zeros(self.config.max_nodes, dtype=np.int64)
        with self._guard:
            self._kernel.processors_of(index, out)
        return out[:int(self._state["n"][index])]

    def edge_outcomes(self, index: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """For each action: the width and critical-path length after adding that edge, -1 where
        the edge is not valid now (the state is not changed)."""
        index = self._sub_env(index)
        a = self.config.num_actions
        width, length = np.empty(a, dtype=np.int64), np.empty(a, dtype=np.int64)
        with self._guard:       # the kernel's scratch buffers serve one call at a time
            self._kernel.edge_outcomes(index, self._state["action_mask"][index], width, length)
        return width, length

    def to_dot(self, index: int = 0) -> str:
        """The task with the added edges (red) and each node's processor (``P=``) as DOT text."""
        index = self._started(index)
        return format_dot(self.task(index), added_edges=self.added_edges(index),
                          processors=self.processor_assignment(index).tolist())

    def render_frame(self, index: int, mode: str) -> Any:
        s, frame = self._state, None
        if s["n"][index] > 0:                     # else never reset: the renderer draws an empty canvas
            table = self.node_table(index)
            frame = render.DAGFrame(
                wcet=table["wcet"], critical=table["critical"], closure=table["closure"],
                task_edges=list(self.task(index).edges), added_edges=self.added_edges(index),
                processors=self.processor_assignment(index), width=int(s["width"][index]),
                initial_width=int(s["initial_width"][index]), lower_bound=int(s["lower_bound"][index]),
                length=int(s["length"][index]), deadline=int(s["deadline"][index]), steps=int(s["steps"][index]),
                action_mask=s["action_mask"][index].copy())
        return render.ansi(frame, self.config) if mode == "ansi" else render.rgb(frame, self.config)


class DAGEnv(KernelEnv):
    """DAG edge-generation scheduling (single env). Kwargs: see :mod:`sysgym.envs.dag`.

    An action that is not a valid edge now is rejected: by default the edge is not added and
    ``info["invalid_action"]`` is set; with ``invalid_action="raise"`` ``step`` raises ``ValueError``
    saying why (:meth:`explain_action` gives the same reason).
    """

    vector_class = DAGVectorEnv

    @property
    def config(self) -> DAGConfig:
        return self._vec.config

    @property
    def skipped_tasks(self) -> list[tuple[int, str, str]]:
        return self._vec.skipped_tasks

    def node_table(self) -> dict[str, np.ndarray]:
        return self._vec.node_table(0)

    def explain_action(self, action: int) -> str | None:
        return self._vec.explain_action(action, 0)

    def task(self) -> DAGTask:
        return self._vec.task(0)

    def added_edges(self) -> list[tuple[int, int]]:
        return self._vec.added_edges(0)

    def processor_assignment(self) -> np.ndarray:
        return self._vec.processor_assignment(0)

    def edge_outcomes(self) -> tuple[np.ndarray, np.ndarray]:
        return self._vec.edge_outcomes(0)

    def to_dot(self) -> str:
        return self._vec.to_dot(0)
