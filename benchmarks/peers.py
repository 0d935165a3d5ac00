"""Side by side: env-steps/s of the public reference simulators and of sysgym, in one process on one core.

    python -m benchmarks.peers --deeprm PATH --sched-rl-gym PATH --pensieve PATH \\
        --pcc-rl PATH --egs PATH [--reps 5] [--seconds 1.0] [--batch 256] [--cpu 0]

or ``--peers-dir DIR`` for a folder holding the five clones under their default ``git clone``
names (deeprm, sched-rl-gym, pensieve, PCC-RL, egs). Environment variables do the same:
``SYSGYM_PEER_DEEPRM``, ``SYSGYM_PEER_SCHED_RL_GYM``, ``SYSGYM_PEER_PENSIEVE``,
``SYSGYM_PEER_PCC_RL``, ``SYSGYM_PEER_EGS``, ``SYSGYM_PEERS_DIR`` (flags win). A peer that is not
given is skipped with a line saying so. Nothing of the peers is part of sysgym: they are read from
the given folders at run time, never written to, and sysgym does not depend on them.

Getting the peers (the commits measured for the README's ratios)::

    git clone https://github.com/hongzimao/deeprm          # fa7841122d4c2993fa0a7ce1667ea1f171865d9d
    git clone https://github.com/renatolfc/sched-rl-gym    # 44b7f1471739bc239877e2da3b49c98056d23107
    git clone https://github.com/hongzimao/pensieve        # 1120bb173958dc9bc9f2ebff1a8fe688b6f4e93c
    git clone https://github.com/PCCproject/PCC-RL         # 64bea6eeee3a3e558449c35b6496cf596f5ded52
    git clone https://github.com/binqi-sun/egs             # 3d63b2f012d44b487e9a5f9adb362c834245b048

What each needs beyond sysgym's own numpy (install into a throwaway folder, not into sysgym's
dependencies, e.g. ``pip install --target /tmp/peer-site --no-deps gym==0.26.2 gym_notices
cloudpickle intervaltree==3.0.2 sortedcontainers parallelworkloads`` and run with
``PYTHONPATH=/tmp/peer-site``):

* deeprm: numpy only. Its Theano agent is not used: ``environment.py`` is driven directly.
* sched-rl-gym: ``gym`` (0.26.2 measured), ``intervaltree==3.0.2``, ``parallelworkloads``.
* pensieve: numpy only (``sim/env.py`` and ``sim/load_trace.py``; no TensorFlow).
* PCC-RL: ``gym`` (0.26.2 measured) for ``src/gym/network_sim.py``.
* egs: scipy (sysgym's dev install has it). Its TensorFlow state tensors are not built (see below).

How the Python-2-era peers run on Python 3 without editing their files (all at run time, in memory):

* deeprm ``environment.py``: compiled up to its unit-test section (the ``def test_*`` functions at
  the end hold Python 2 ``print`` statements and are not needed); ``xrange = range`` is put in its
  globals; stand-ins for ``theano`` (only ``theano.config.floatX``, Theano's default ``float64``)
  and ``matplotlib.pyplot`` (only used by ``plot_state``) are in ``sys.modules`` while it loads;
  the backlog counter is an int whose ``/`` floors, as Python 2's does (the image state slices
  with ``curr_size / backlog_width``). Its job distribution's divisions are exact at the default
  sizes, so Python 3's true division changes nothing there.
* pensieve ``sim/env.py``: compiled with tabs expanded to 8 columns (Python 2's rule; the file
  mixes tabs and spaces), ``xrange = range`` in its globals, ``VIDEO_SIZE_FILE`` pointed at the
  video used for both sides.
* sched-rl-gym, PCC-RL and egs's ``utils/dag.py`` are Python 3 and are imported as they are.
  sched-rl-gym imports ``parallelworkloads.lublin99`` and ``.tsafrir05``, which PyPI's
  parallelworkloads 0.1.3 does not ship; where they are missing, stand-ins that raise if used take
  their place (only its Lublin and trace workloads use them, not the DeepRM workload measured).

Workloads and actions (the same for a peer and the sysgym row it is compared with):

* DeepRM (both peers): 2 resources of 10 units, 5 window slots, backlog 60, horizon 20, jobs of
  length <= 15 and size <= 10 from DeepRM's bimodal distribution at arrival rate 0.7, episodes of
  200 time steps. Actions uniform over the valid ones: the void action and each window slot whose
  job the simulator's rule can place (sysgym's ``action_mask``; for the peers the same test made
  on their state outside the clock). hongzimao/deeprm allocates with its reservation rule
  (sysgym ``allocation="reserve"``); sched-rl-gym starts jobs now only (sysgym's default ``"now"``).
* ABR: sysgym's shipped 96 training traces and 6-level video (the same files for both sides),
  Pensieve's constants (``ABR-Pensieve-v0``); levels uniform. "with its state" adds what
  Pensieve's harness (``rl_no_training.py``) does after each chunk: the linear QoE and the rolled
  (6, 8) state; "bare" is ``get_video_chunk`` alone (no state, no reward), against which sysgym's
  row still builds its full observation, reward and info.
* CC: Aurora's link ranges (bandwidth 100-500 packets/s, delay 0.05-0.5 s, queue 2-3000
  log-uniform, loss 0-5 %), 400 monitor intervals per episode, ``aurora_compatible=True``; actions
  uniform in [-1, 1].
* DAG-EGS: the 50 shipped 40-node layered tasks (``traces/dag/layered_n40.dot``) for both sides;
  actions uniform over the valid edges (the action mask). The peer row is egs's ``DAG`` model
  (``utils/dag.py``: ``add_edge_and_update_attributes``, its action mask and end test), i.e. its
  env step without the TensorFlow tensors ``EGSEnv`` copies the state into, so the peer is if
  anything flattered.

Measurement: each row times only the simulator calls (``step``, and ``reset`` when an episode
ends; action selection is outside the clock), for ``--seconds`` of such wall time per repetition.
With ``--clock cpu`` (the default) that time is then scaled by the share of its core the process
got during the run (process CPU time / wall time), so that waiting for a core that other work
shares does not count against whichever subject was running; ``--clock wall`` keeps wall time.
The PCC-RL and EGS rows (peer and sysgym envs alike) get 3x ``--seconds``: a PCC-RL episode's
cost varies ~100x with the link it draws and an EGS step takes ~15 ms, so one second would hold
one or two of their episodes. Repetitions are interleaved (every subject once per repetition, in
a shuffled order) and each ratio is the median over repetitions of the ratio measured within one
repetition, so that load from other processes on a shared machine cancels as far as it can.
The process pins itself to one core (``--cpu``). sysgym "single" is ``gymnasium.make`` with
Gymnasium's default wrappers; "B=256" is ``make_vec(..., vectorization_mode="vector_entry_point")``,
counting 256 env-steps per call (Gymnasium's NextStep autoreset: a sub-env's reset step counts as
a step, as in ``make bench``).

``python -m benchmarks`` (``make bench``) picks this module up by its name and calls ``main(quick)``
without flags: there only the environment variables are read, and with none set it prints the
table of skipped rows without measuring anything.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import math
import os
import platform
import statistics
import sys
import tempfile
import time
import types
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

# --------------------------------------------------------------------------------- the peers

@dataclass(frozen=True)
class Peer:
    name: str          # command-line flag without "--"
    env_var: str
    clone_dir: str     # default folder name of ``git clone``
    url: str
    commit: str        # the commit measured for the README


PEERS: tuple[Peer, ...] = (
    Peer("deeprm", "SYSGYM_PEER_DEEPRM", "deeprm", "https://github.com/hongzimao/deeprm",
         "fa7841122d4c2993fa0a7ce1667ea1f171865d9d"),
    Peer("sched-rl-gym", "SYSGYM_PEER_SCHED_RL_GYM", "sched-rl-gym",
         "https://github.com/renatolfc/sched-rl-gym", "44b7f1471739bc239877e2da3b49c98056d23107"),
    Peer("pensieve", "SYSGYM_PEER_PENSIEVE", "pensieve", "https://github.com/hongzimao/pensieve",
         "1120bb173958dc9bc9f2ebff1a8fe688b6f4e93c"),
    Peer("pcc-rl", "SYSGYM_PEER_PCC_RL", "PCC-RL", "https://github.com/PCCproject/PCC-RL",
         "64bea6eeee3a3e558449c35b6496cf596f5ded52"),
    Peer("egs", "SYSGYM_PEER_EGS", "egs", "https://github.com/binqi-sun/egs",
         "3d63b2f012d44b487e9a5f9adb362c834245b048"),
)
PEERS_DIR_VAR = "SYSGYM_PEERS_DIR"


def _git_commit(path: Path) -> str | None:
    """The checked-out commit of a clone, read from its .git folder (no git needed); None if unknown."""
    git = path / ".git"
    try:
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref: "):
            return head
        ref = head[5:]
        loose = git / ref
        if loose.is_file():
            return loose.read_text().strip()
        for line in (git / "packed-refs").read_text().splitlines():
            if line.endswith(" " + ref):
                return line.split()[0]
    except OSError:
        pass
    return None


# ------------------------------------------------------------------------------- arguments

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.peers",
        description="env-steps/s of the public reference simulators beside sysgym's, one core, one run",
        epilog="Each peer may also come from its environment variable (" +
               ", ".join(p.env_var for p in PEERS) + f") or {PEERS_DIR_VAR}.")
    for peer in PEERS:
        parser.add_argument(f"--{peer.name}", metavar="PATH", type=Path, default=None,
                            help=f"a clone of {peer.url}")
    parser.add_argument("--peers-dir", metavar="DIR", type=Path, default=None,
                        help="a folder holding the clones under their default names (" +
                             ", ".join(p.clone_dir for p in PEERS) + ")")
    parser.add_argument("--reps", type=int, default=5, help="interleaved repetitions (default 5)")
    parser.add_argument("--seconds", type=float, default=1.0,
                        help="seconds of simulator time per subject and repetition (default 1.0)")
    parser.add_argument("--batch", type=int, default=256, help="sysgym native vector env size (default 256)")
    parser.add_argument("--cpu", type=int, default=0, help="core to pin to; -1 leaves the affinity alone")
    parser.add_argument("--only", action="append", choices=[p.name for p in PEERS],
                        help="measure only this peer's rows (repeatable)")
    parser.add_argument("--clock", choices=("cpu", "wall"), default="cpu",
                        help="cpu (default): time in step() scaled by the process's share of its core "
                             "during the run; wall: time in step() as it is")
    parser.add_argument("--seed", type=int, default=0)
    return parser


def parse_args(argv: Sequence[str] | None = None, environ: dict[str, str] | None = None) -> argparse.Namespace:
    """Parse flags, then fill each peer's path from its flag, its variable or the peers folder."""
    environ = os.environ if environ is None else environ
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.reps < 1 or args.seconds <= 0 or args.batch < 1:
        parser.error("--reps and --batch must be >= 1 and --seconds > 0")
    peers_dir = args.peers_dir or (Path(environ[PEERS_DIR_VAR]) if environ.get(PEERS_DIR_VAR) else None)
    paths: dict[str, Path | None] = {}
    for peer in PEERS:
        path = getattr(args, peer.name.replace("-", "_"))
        if path is None and environ.get(peer.env_var):
            path = Path(environ[peer.env_var])
        if path is None and peers_dir is not None and (peers_dir / peer.clone_dir).is_dir():
            path = peers_dir / peer.clone_dir
        paths[peer.name] = path.expanduser().resolve() if path is not None else None
    args.paths = paths
    return args


# ------------------------------------------------------------------------------ subjects

class Subject:
    """Something that steps: ``next_action()`` (untimed) then ``step(action)`` (timed)."""

    key: str
    batch: int = 1
    scale: float = 1.0    # multiplies --seconds for this subject (slow peers with costly episodes)

    def next_action(self) -> Any:
        raise NotImplementedError

    def step(self, action: Any) -> None:
        raise NotImplementedError

    def run(self, seconds: float, clock: str = "cpu") -> tuple[int, float]:
        """Step until ``seconds`` of wall time were spent inside ``step``; returns (env-steps, seconds).

        ``clock="cpu"`` scales those seconds by the share of the core this process got over the
        run (process CPU time / wall time), so that time the process spent waiting for the core,
        on a machine shared with other work, is not counted; ``"wall"`` keeps them as they are.
        (A per-step CPU clock would cost ~2 us a call here, more than a sysgym step.)
        """
        now, act, step = time.perf_counter, self.next_action, self.step
        spent, calls = 0.0, 0
        wall0, cpu0 = now(), time.process_time()
        while spent < seconds:
            action = act()
            start = now()
            step(action)
            spent += now() - start
            calls += 1
        if clock == "cpu":
            share = (time.process_time() - cpu0) / max(now() - wall0, 1e-9)
            spent *= min(1.0, share)
        return calls * self.batch, spent


class _Table:
    """Cycles through pre-drawn actions."""

    def __init__(self, actions: Sequence[Any]):
        self.actions, self.i = list(actions), 0

    def __call__(self) -> Any:
        self.i = (self.i + 1) % len(self.actions)
        return self.actions[self.i]


def _uniform_table(rng: np.random.Generator, kind: str, n: int, batch: int | None, size: int = 4096) -> _Table:
    """``kind`` "discrete" (0..n-1) or "box" (uniform [-1, 1], shape (1,) float32); batched when ``batch``."""
    rows = size if batch is None else max(8, size // batch)
    shape = (rows,) if batch is None else (rows, batch)
    if kind == "discrete":
        values = rng.integers(0, n, size=shape)
        return _Table([int(v) for v in values] if batch is None else list(values))
    values = rng.uniform(-1.0, 1.0, size=shape + (1,)).astype(np.float32)
    return _Table(list(values))


class SysgymSingle(Subject):
    def __init__(self, key: str, env_id: str, kwargs: dict[str, Any], policy: str, seed: int,
                 scale: float = 1.0):
        import gymnasium as gym

        import sysgym  # noqa: F401

        self.key, self.batch, self.scale = key, 1, scale
        self.env = gym.make(env_id, **kwargs)
        self.obs, self.info = self.env.reset(seed=seed)
        self.rng = np.random.default_rng(seed)
        space = self.env.action_space
        if policy == "masked":
            self.next_action = self._masked
        else:
            self.next_action = _uniform_table(self.rng, policy, getattr(space, "n", 0), None)

    def _masked(self) -> int:
        valid = np.flatnonzero(self.info["action_mask"])
        return int(valid[self.rng.integers(len(valid))])

    def step(self, action: Any) -> None:
        self.obs, _, terminated, truncated, self.info = self.env.step(action)
        if terminated or truncated:
            self.obs, self.info = self.env.reset()


class SysgymVector(Subject):
    def __init__(self, key: str, env_id: str, kwargs: dict[str, Any], policy: str, seed: int, batch: int,
                 scale: float = 1.0):
        import gymnasium as gym

        import sysgym  # noqa: F401

        self.key, self.batch, self.scale = key, batch, scale
        self.env = gym.make_vec(env_id, num_envs=batch, vectorization_mode="vector_entry_point", **kwargs)
        self.obs, self.info = self.env.reset(seed=seed)
        self.rng = np.random.default_rng(seed)
        if policy == "masked":
            self.next_action = self._masked
        else:
            self.next_action = _uniform_table(self.rng, policy, getattr(self.env.single_action_space, "n", 0),
                                              batch)

    def _masked(self) -> np.ndarray:
        mask = self.info["action_mask"]
        return np.argmax(self.rng.random(mask.shape) * mask, axis=1)

    def step(self, action: Any) -> None:
        self.obs, _, _, _, self.info = self.env.step(action)


# ------------------------------------------------------------------- loading peers at run time

def _module_from_source(name: str, source: str, filename: Path, extra: dict[str, Any]) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__file__ = str(filename)
    module.__dict__.update(extra)
    exec(compile(source, str(filename), "exec"), module.__dict__)  # noqa: S102
    return module


def _load_file(name: str, path: Path) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def _on_path(*folders: Path, stubs: dict[str, types.ModuleType] | None = None):
    """Folders first on sys.path and stand-in modules in sys.modules, both undone afterwards."""
    saved_path, stubs = list(sys.path), stubs or {}
    saved_modules = {name: sys.modules.get(name) for name in stubs}
    sys.path[:0] = [str(f) for f in folders]
    sys.modules.update(stubs)
    try:
        yield
    finally:
        sys.path[:] = saved_path
        for name, module in saved_modules.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


class _Py2Int(int):
    """An int whose ``/`` floors and whose + and - stay _Py2Int: Python 2's int for one counter."""

    def __truediv__(self, other):
        return int(self) // other

    def __add__(self, other):
        return _Py2Int(int(self) + other)

    def __sub__(self, other):
        return _Py2Int(int(self) - other)

    __radd__ = __add__


class _NullWriter(io.TextIOBase):
    def write(self, s: str) -> int:
        return len(s)


_QUIET = _NullWriter()


DEEPRM_SIZES = {"num_resources": 2, "num_processors": 10, "max_job_length": 15, "max_job_size": 10,
                "window": 5, "backlog": 60, "horizon": 20, "new_job_rate": 0.7,
                "episode_length": 200, "time_limit": 200}


class DeepRMPeer(Subject):
    """hongzimao/deeprm ``environment.Env`` (image or compact state, its reservation rule)."""

    def __init__(self, key: str, path: Path, repre: str, seed: int):
        self.key = key
        source_file = path / "environment.py"
        source = source_file.read_text()
        cut = source.find("\ndef test_")
        source = source if cut < 0 else source[:cut + 1]
        theano = types.ModuleType("theano")
        theano.config = types.SimpleNamespace(floatX="float64")
        pyplot = types.ModuleType("matplotlib.pyplot")
        matplotlib = types.ModuleType("matplotlib")
        matplotlib.pyplot = pyplot
        stubs = {"theano": theano, "matplotlib": matplotlib, "matplotlib.pyplot": pyplot}
        with _on_path(path, stubs=stubs):
            saved = {n: sys.modules.pop(n, None) for n in ("parameters", "job_distribution")}
            try:
                parameters = importlib.import_module("parameters")
                env_module = _module_from_source("deeprm_environment", source, source_file, {"xrange": range})
            finally:
                for n, m in saved.items():
                    sys.modules.pop(n, None)
                    if m is not None:
                        sys.modules[n] = m
        original_init = env_module.JobBacklog.__init__

        def backlog_init(backlog, pa):
            original_init(backlog, pa)
            backlog.curr_size = _Py2Int(backlog.curr_size)

        env_module.JobBacklog.__init__ = backlog_init
        pa = parameters.Parameters()
        pa.simu_len, pa.num_ex = DEEPRM_SIZES["episode_length"], 10
        with contextlib.redirect_stdout(_QUIET):   # it prints the load of each resource
            self.env = env_module.Env(pa, seed=42 + seed, render=False, repre=repre, end="no_new_job")
        self.void, self.rng = pa.num_nw, np.random.default_rng(seed)

    def next_action(self) -> int:
        """Uniform over the void action and the slots whose job its reservation rule can place
        (``Machine.allocate_job``: some offset t < horizon - length where the job fits)."""
        machine, valid = self.env.machine, [self.void]
        for j, job in enumerate(self.env.job_slot.slot):
            if job is not None and any(np.all(machine.avbl_slot[t:t + job.len, :] >= job.res_vec)
                                       for t in range(machine.time_horizon - job.len)):
                valid.append(j)
        return valid[self.rng.integers(len(valid))]

    def step(self, action: int) -> None:
        self.env.step(action)    # resets itself at the end of an episode


def _parallelworkloads_stand_ins() -> dict[str, types.ModuleType]:
    """sched-rl-gym imports ``parallelworkloads.lublin99`` and ``.tsafrir05`` at load time but uses
    them only for its Lublin and trace workloads; PyPI's parallelworkloads 0.1.3 ships neither
    module. Where they are missing, stand-ins that refuse to be used take their place."""
    stubs: dict[str, types.ModuleType] = {}
    for name, cls in (("lublin99", "Lublin99"), ("tsafrir05", "Tsafrir05")):
        try:
            importlib.import_module(f"parallelworkloads.{name}")
        except ImportError:
            module = types.ModuleType(f"parallelworkloads.{name}")

            def refuse(*args, _name=cls, **kwargs):
                raise NotImplementedError(f"parallelworkloads.{_name} is not installed")

            setattr(module, cls, refuse)
            stubs[module.__name__] = module
    if stubs:
        try:
            importlib.import_module("parallelworkloads")
        except ImportError:
            package = types.ModuleType("parallelworkloads")
            package.__path__ = []
            stubs["parallelworkloads"] = package
    return stubs


class SchedRLGymPeer(Subject):
    """renatolfc/sched-rl-gym ``DeepRmEnv`` (image) or ``CompactRmEnv``, time- or event-based."""

    def __init__(self, key: str, path: Path, kind: str, simulation_type: str, seed: int):
        self.key = key
        with _on_path(path, stubs=_parallelworkloads_stand_ins()):
            if kind == "image":
                from schedgym.envs.deeprm_env import DeepRmEnv as cls
            else:
                from schedgym.envs.compact_env import CompactRmEnv as cls
        self.env = cls(simulation_type=simulation_type, time_limit=DEEPRM_SIZES["time_limit"])
        self.env.seed(seed)
        self.env.reset()
        self.void, self.rng = self.env.action_space.n - 1, np.random.default_rng(seed)

    def next_action(self) -> int:
        """Uniform over the void action and the window jobs that fit the cluster now (the test its
        scheduler applies, ``Cluster.fits``)."""
        scheduler = self.env.scheduler
        valid = [self.void] + [i for i, job in enumerate(scheduler.queue_admission[:self.env.job_slots])
                               if scheduler.cluster.fits(job)]
        return valid[self.rng.integers(len(valid))]

    def step(self, action: int) -> None:
        _, _, done, _ = self.env.step(action)
        if done:
            self.env.reset()


PENSIEVE_RATES = (300.0, 750.0, 1200.0, 1850.0, 2850.0, 4300.0)


def _pensieve_env(path: Path, traces: Path, video: Path, seed: int) -> Any:
    source_file = path / "sim" / "env.py"
    module = _module_from_source("pensieve_env", source_file.read_text().expandtabs(8), source_file,
                                 {"xrange": range})
    module.VIDEO_SIZE_FILE = str(video / "video_size_")
    load_trace = _load_file("pensieve_load_trace", path / "sim" / "load_trace.py")
    all_time, all_bw, _ = load_trace.load_trace(str(traces) + os.sep)
    return module.Environment(all_cooked_time=all_time, all_cooked_bw=all_bw, random_seed=42 + seed)


class PensievePeer(Subject):
    """hongzimao/pensieve ``sim/env.py``: bare ``get_video_chunk``, or with the QoE and state of
    Pensieve's harness (``rl_no_training.py``: the linear QoE, then the (6, 8) history rolled left
    and its last column rewritten)."""

    def __init__(self, key: str, path: Path, with_state: bool, traces: Path, video: Path, seed: int):
        self.key = key
        self.env = _pensieve_env(path, traces, video, seed)
        self.step = self._with_state if with_state else self._bare
        self.state, self.last = np.zeros((6, 8)), 1
        self.next_action = _uniform_table(np.random.default_rng(seed), "discrete", 6, None)

    def _bare(self, level: int) -> None:
        self.env.get_video_chunk(level)

    def _with_state(self, level: int) -> None:
        delay, _, buffer_s, rebuffer_s, size, next_sizes, end, remain = self.env.get_video_chunk(level)
        rate, last = PENSIEVE_RATES[level], PENSIEVE_RATES[self.last]
        self.reward = rate / 1000.0 - 4.3 * rebuffer_s - abs(rate - last) / 1000.0
        self.last = level
        state = np.roll(np.array(self.state, copy=True), -1, axis=1)
        state[0, -1] = rate / max(PENSIEVE_RATES)
        state[1, -1] = buffer_s / 10.0
        state[2, -1] = float(size) / float(delay) / 1000.0
        state[3, -1] = float(delay) / 1000.0 / 10.0
        state[4, :6] = np.array(next_sizes) / 1000.0 / 1000.0
        state[5, -1] = min(remain, 48.0) / 48.0
        self.state = state
        if end:
            self.state, self.last = np.zeros((6, 8)), 1


class PCCPeer(Subject):
    """PCCproject/PCC-RL ``src/gym/network_sim.py`` ``SimulatedNetworkEnv`` (Aurora)."""

    scale = 3.0   # an episode's cost varies ~100x with the link drawn: more episodes per repetition

    def __init__(self, key: str, path: Path, seed: int):
        import random

        self.key = key
        src = path / "src"
        with _on_path(src):
            saved = sys.modules.pop("common", None)
            try:
                module = _load_file("pcc_network_sim", src / "gym" / "network_sim.py")
            finally:
                sys.modules.pop("common", None)
                if saved is not None:
                    sys.modules["common"] = saved
        random.seed(seed)
        np.random.seed(seed)
        with contextlib.redirect_stdout(_QUIET):
            self.env = module.SimulatedNetworkEnv()
            self.env.reset()
        self.next_action = _uniform_table(np.random.default_rng(seed), "box", 1, None)

    def step(self, action: np.ndarray) -> None:
        _, _, done, _ = self.env.step(action)
        if done:
            with contextlib.redirect_stdout(_QUIET):   # reset prints the episode's reward
                self.env.reset()


class EGSPeer(Subject):
    """binqi-sun/egs ``utils/dag.py`` ``DAG``: one edge per step, with its mask and end test."""

    scale = 3.0   # ~15 ms a step: one second holds about one episode

    def __init__(self, key: str, path: Path, tasks: Sequence[Any], seed: int):
        self.key = key
        self.module = _load_file("egs_dag", path / "utils" / "dag.py")
        self.tasks = [(t.adjacency(), np.array(t.wcet, dtype=np.int32), int(t.deadline)) for t in tasks]
        self.rng = np.random.default_rng(seed)
        self.k = -1
        self._reset()

    def _reset(self) -> None:
        while True:
            self.k = (self.k + 1) % len(self.tasks)
            adj, wcet, deadline = self.tasks[self.k]
            self.dag = self.module.DAG(adj.copy(), wcet, deadline)
            self.dag.compute_and_set_attributes()
            if not self._ended():
                return

    def _ended(self) -> bool:
        return not np.any(self.dag.action_mask) or self.dag.width == self.dag.width_lb

    def next_action(self) -> tuple[int, int]:
        rows, cols = np.nonzero(self.dag.action_mask)
        k = self.rng.integers(len(rows))
        return int(rows[k]), int(cols[k])

    def step(self, edge: tuple[int, int]) -> None:
        self.dag.add_edge_and_update_attributes(*edge)
        if self._ended():
            self._reset()


# ------------------------------------------------------------------------ the comparisons

@dataclass(frozen=True)
class Comparison:
    peer: str             # Peer.name
    label: str            # the peer's subject, as the table names it
    peer_key: str
    sysgym_key: str       # rows comparing with the same sysgym env share its measurement
    sysgym_label: str
    workload: str         # key of WORKLOADS


@dataclass(frozen=True)
class SysgymSpec:
    env_id: str
    kwargs: dict[str, Any]
    policy: str           # "discrete" (uniform table), "box" (uniform in [-1, 1]) or "masked"
    scale: float = 1.0    # as its peer's Subject.scale


def sysgym_specs() -> dict[str, SysgymSpec]:
    from sysgym.traces import trace_path

    abr = {"traces": str(trace_path("abr", "train")), "video": str(trace_path("abr", "video"))}
    reserve = {**DEEPRM_SIZES, "allocation": "reserve"}
    return {
        "deeprm-image-reserve": SysgymSpec("sysgym/DeepRM-Image-v0", reserve, "masked"),
        "deeprm-compact-reserve": SysgymSpec("sysgym/DeepRM-Compact-v0", reserve, "masked"),
        "deeprm-image": SysgymSpec("sysgym/DeepRM-Image-v0", dict(DEEPRM_SIZES), "masked"),
        "deeprm-compact": SysgymSpec("sysgym/DeepRM-Compact-v0", dict(DEEPRM_SIZES), "masked"),
        "deeprm-sparse": SysgymSpec("sysgym/DeepRM-CompactSparse-v0", dict(DEEPRM_SIZES), "masked"),
        "abr-pensieve": SysgymSpec("sysgym/ABR-Pensieve-v0", abr, "discrete"),
        "cc-aurora": SysgymSpec("sysgym/CC-v0", {"aurora_compatible": True}, "box", PCCPeer.scale),
        "dag-40": SysgymSpec("sysgym/DAG-EGS-v0", {"workload": str(trace_path("dag", "layered_n40.dot"))},
                             "masked", EGSPeer.scale),
    }


_DEEPRM = ("2 resources x 10 units, 5 window slots, backlog 60, horizon 20, DeepRM's bimodal jobs "
           "(length <= 15, size <= 10) at rate 0.7, 200 time steps per episode; actions uniform over "
           "the valid ones (void, or a window job that fits)")
WORKLOADS = {
    "deeprm-reserve": _DEEPRM + "; DeepRM's reservation rule (the earliest offset in the horizon where "
                                "the job fits; sysgym allocation=\"reserve\")",
    "deeprm-now": _DEEPRM + "; jobs start now or not at all (sched-rl-gym's rule, sysgym's default)",
    "abr": "sysgym's shipped 96 training traces and 6-level video for both sides; Pensieve's constants "
           "(48 chunks, 80 ms RTT, noise 0.9-1.1, 60 s buffer); levels uniform",
    "cc": "Aurora's link ranges (100-500 packets/s, 0.05-0.5 s delay, queue 2-3000, loss 0-5 %), "
          "400 monitor intervals per episode; rate changes uniform in [-1, 1] (x 0.025)",
    "dag": "the 50 shipped 40-node layered tasks (traces/dag/layered_n40.dot) for both sides; edges "
           "uniform over the valid ones (action mask)",
}
COMPARISONS: tuple[Comparison, ...] = (
    Comparison("deeprm", "hongzimao/deeprm Env, image", "deeprm-image", "deeprm-image-reserve",
               "DeepRM-Image-v0, allocation=reserve", "deeprm-reserve"),
    Comparison("deeprm", "hongzimao/deeprm Env, compact", "deeprm-compact", "deeprm-compact-reserve",
               "DeepRM-Compact-v0, allocation=reserve", "deeprm-reserve"),
    Comparison("sched-rl-gym", "sched-rl-gym DeepRmEnv (image)", "sched-image", "deeprm-image",
               "DeepRM-Image-v0", "deeprm-now"),
    Comparison("sched-rl-gym", "sched-rl-gym CompactRmEnv", "sched-compact", "deeprm-compact",
               "DeepRM-Compact-v0", "deeprm-now"),
    Comparison("sched-rl-gym", "sched-rl-gym CompactRmEnv, event-based", "sched-event", "deeprm-sparse",
               "DeepRM-CompactSparse-v0", "deeprm-now"),
    Comparison("pensieve", "Pensieve env.py + its QoE and state", "pensieve-state", "abr-pensieve",
               "ABR-Pensieve-v0", "abr"),
    Comparison("pensieve", "Pensieve env.py, bare get_video_chunk", "pensieve-bare", "abr-pensieve",
               "ABR-Pensieve-v0", "abr"),
    Comparison("pcc-rl", "PCC-RL network_sim.py (Aurora)", "pcc", "cc-aurora",
               "CC-v0, aurora_compatible=True", "cc"),
    Comparison("egs", "egs DAG model, n=40 (no TF state)", "egs-40", "dag-40", "DAG-EGS-v0", "dag"),
)


def make_peer(key: str, path: Path, seed: int) -> Subject:
    from sysgym.envs.dag import load_tasks
    from sysgym.traces import trace_path

    if key in ("deeprm-image", "deeprm-compact"):
        return DeepRMPeer(key, path, key.split("-")[1], seed)
    if key in ("sched-image", "sched-compact", "sched-event"):
        kind = "image" if key == "sched-image" else "compact"
        return SchedRLGymPeer(key, path, kind, "event_based" if key == "sched-event" else "time_based", seed)
    if key in ("pensieve-state", "pensieve-bare"):
        return PensievePeer(key, path, key == "pensieve-state", trace_path("abr", "train"),
                            trace_path("abr", "video"), seed)
    if key == "pcc":
        return PCCPeer(key, path, seed)
    if key == "egs-40":
        return EGSPeer(key, path, load_tasks(trace_path("dag", "layered_n40.dot")), seed)
    raise KeyError(key)


# ----------------------------------------------------------------------------- the results

@dataclass
class Results:
    """Per subject, the steps/s of each repetition (repetition i of every subject ran in the same
    round), and the env-steps timed over all repetitions."""

    rates: dict[str, list[float]] = field(default_factory=dict)
    steps: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)       # peer name -> why
    failed: dict[str, str] = field(default_factory=dict)        # peer subject key -> why

    def add(self, key: str, steps: int, seconds: float) -> None:
        self.rates.setdefault(key, []).append(steps / seconds)
        self.steps[key] = self.steps.get(key, 0) + steps


def median_ratio(numerator: Sequence[float], denominator: Sequence[float]) -> tuple[float, float, float]:
    """Median, min and max over repetitions of numerator[i] / denominator[i]."""
    ratios = [a / b for a, b in zip(numerator, denominator) if b > 0]
    if not ratios:
        return math.nan, math.nan, math.nan
    return statistics.median(ratios), min(ratios), max(ratios)


def format_ratio(median: float, low: float, high: float) -> str:
    """'138× (121–150)'; below 10 with one decimal; a single repetition without its range."""
    if math.isnan(median):
        return "n/a"

    def fmt(x: float) -> str:
        return f"{x:,.1f}" if x < 10 else f"{x:,.0f}"

    return f"{fmt(median)}×" if low == high else f"{fmt(median)}× ({fmt(low)}–{fmt(high)})"


def _rate(values: Sequence[float]) -> str:
    from sysgym.bench import human

    return human(statistics.median(values)) if values else "n/a"


def report(results: Results, comparisons: Sequence[Comparison], batch: int) -> str:
    """The markdown table (one row per comparison: measured, not run or skipped) and, under it,
    each row's workload and the env-steps timed."""
    from sysgym.bench import format_table

    rows, notes, seen = [], [], {}
    for i, c in enumerate(comparisons, 1):
        single_key, vector_key = f"{c.sysgym_key}/single", f"{c.sysgym_key}/B{batch}"
        seen.setdefault(c.workload, []).append(i)
        why = results.skipped.get(c.peer) and f"skipped: {results.skipped[c.peer]}"
        why = why or (results.failed.get(c.peer_key) and f"not run: {results.failed[c.peer_key]}")
        if why:
            rows.append([str(i), c.label, c.sysgym_label, why, "—", "—", "—", "—"])
            continue
        peer, single = results.rates.get(c.peer_key, []), results.rates.get(single_key, [])
        vector = results.rates.get(vector_key, [])
        rows.append([str(i), c.label, c.sysgym_label, _rate(peer), _rate(single),
                     format_ratio(*median_ratio(single, peer)), _rate(vector),
                     format_ratio(*median_ratio(vector, peer))])
        notes.append(f"{i}: {results.steps.get(c.peer_key, 0):,} / {results.steps.get(single_key, 0):,} / "
                     f"{results.steps.get(vector_key, 0):,}")
    headers = ["#", "peer (its single env)", "sysgym env", "peer steps/s", "sysgym single steps/s",
               "single / peer", f"sysgym B={batch} steps/s", f"B={batch} / peer"]
    lines = [format_table(rows, headers), "", "Workloads and actions (the same for a peer and its sysgym row):"]
    for key, numbers in seen.items():
        lines.append(f"- row{'s' if len(numbers) > 1 else ''} {', '.join(map(str, numbers))}: {WORKLOADS[key]}.")
    if notes:
        lines.append(f"\nEnv-steps timed over all repetitions (peer / sysgym single / sysgym B={batch}): "
                     + "; ".join(notes) + ".")
    return "\n".join(lines)


def describe_run(args: argparse.Namespace, pinned: str) -> str:
    import gymnasium

    lines = [
        f"Python {platform.python_version()} ({platform.python_implementation()}), numpy {np.__version__}, "
        f"gymnasium {gymnasium.__version__}, {platform.machine()} {platform.system()}; {pinned}"
        + (f"; load average {os.getloadavg()[0]:.1f} at the start." if hasattr(os, "getloadavg") else "."),
        f"{args.reps} interleaved repetitions of {args.seconds:g} s of simulator time per subject "
        f"({args.seconds * PCCPeer.scale:g} s for the PCC-RL and EGS rows and their sysgym envs, whose "
        "episodes are few per second and vary in cost; every subject once per repetition, in a shuffled "
        "order); steps/s are medians over repetitions, ratios "
        "the median (min–max) of the ratios measured within one repetition. Only step() and, at episode "
        "ends, reset() are timed; actions are pre-drawn or drawn outside the clock"
        + ("; that time is scaled by the share of the core the process got during the subject's run "
           "(process CPU time / wall time), so waits for a core shared with other work do not count"
           if args.clock == "cpu" else "; wall time as it is") + ". sysgym single = "
        f"gymnasium.make (default wrappers); B={args.batch} = make_vec(vectorization_mode="
        f"\"vector_entry_point\"), {args.batch} env-steps per call.",
    ]
    for peer in PEERS:
        path = args.paths.get(peer.name)
        if path is not None and (not args.only or peer.name in args.only):
            commit = _git_commit(path)
            lines.append(f"- {peer.name}: {path}, commit {commit or 'unknown (not a git clone)'} "
                         f"(README figures: {peer.commit[:12]})")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------- running

def _pin(cpu: int) -> str:
    if cpu < 0 or not hasattr(os, "sched_setaffinity"):
        return "not pinned to a core"
    try:
        os.sched_setaffinity(0, {cpu})
    except OSError as exc:
        return f"not pinned to a core ({exc})"
    return f"pinned to core {cpu}"


def selected(args: argparse.Namespace) -> list[Comparison]:
    return [c for c in COMPARISONS if not args.only or c.peer in args.only]


def run(args: argparse.Namespace, out: Callable[[str], None] = print) -> Results:
    """Load what was given, then measure every subject in interleaved repetitions."""
    results = Results()
    for peer in PEERS:
        path = args.paths.get(peer.name)
        if path is None:
            results.skipped[peer.name] = f"no path given (--{peer.name} or {peer.env_var})"
        elif not path.is_dir():
            results.skipped[peer.name] = f"{path} is not a folder"
    active = [c for c in selected(args) if c.peer not in results.skipped]
    if not active:
        return results

    out(describe_run(args, _pin(args.cpu)) + "\n")
    specs = sysgym_specs()
    subjects: dict[str, Subject] = {}
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="bench_peers_") as scratch:
        os.chdir(scratch)    # PCC-RL writes a JSON log every 100 episodes into the working folder
        try:
            for c in active:
                if c.peer_key not in subjects and c.peer_key not in results.failed:
                    try:
                        with warnings.catch_warnings(), contextlib.redirect_stdout(_QUIET):
                            warnings.simplefilter("ignore")
                            subjects[c.peer_key] = make_peer(c.peer_key, args.paths[c.peer], args.seed)
                    except Exception as exc:   # a peer that does not run here is reported, not fatal
                        results.failed[c.peer_key] = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
                        out(f"{c.peer_key}: could not load ({results.failed[c.peer_key]})")
                        continue
                if c.peer_key in results.failed:
                    continue
                spec = specs[c.sysgym_key]
                single, vector = f"{c.sysgym_key}/single", f"{c.sysgym_key}/B{args.batch}"
                if single not in subjects:
                    subjects[single] = SysgymSingle(single, spec.env_id, spec.kwargs, spec.policy, args.seed,
                                                    spec.scale)
                if vector not in subjects:
                    subjects[vector] = SysgymVector(vector, spec.env_id, spec.kwargs, spec.policy, args.seed,
                                                    args.batch, spec.scale)
            order = list(subjects)
            rng = np.random.default_rng(args.seed)
            with contextlib.redirect_stdout(_QUIET), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                for key in order:                          # warm-up, not recorded
                    subjects[key].run(min(0.2, args.seconds), args.clock)
            for rep in range(args.reps):
                rng.shuffle(order)
                with contextlib.redirect_stdout(_QUIET), warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    for key in order:
                        subject = subjects[key]
                        results.add(key, *subject.run(args.seconds * subject.scale, args.clock))
                out(f"repetition {rep + 1}/{args.reps} done")
        finally:
            os.chdir(cwd)
    return results


def main(quick: bool = False, argv: Sequence[str] | None = None) -> None:
    """``python -m benchmarks`` calls ``main(quick=...)``: environment variables only, no flags."""
    args = parse_args([] if argv is None else argv)
    if quick:
        args.reps, args.seconds = 1, min(args.seconds, 0.3)
    results = run(args)
    print(f"\nsysgym beside the public reference simulators (env-steps/s, one core, one run; "
          f"Python {platform.python_version()})\n")
    print(report(results, selected(args), args.batch))


if __name__ == "__main__":
    main(argv=sys.argv[1:])
