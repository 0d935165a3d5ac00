"""Throughput of this tree against an earlier revision, measured in the same run.

    python -m benchmarks.compare_revisions --baseline 4e255f3 [--ids sysgym/ABR-v0 ...] [--reps 5]
        [--env-kwargs '{"allocation": "reserve"}']

The baseline revision is checked out into a cache folder (``~/.cache/sysgym-revisions/<sha>``),
its kernels are built there with this interpreter, and an import root of symlinks maps its
folders into the ``sysgym`` namespace as setup.py does. Each measurement runs in a fresh
subprocess, alternating baseline and current, ``--reps`` times; the table reports the median of
the per-repetition ratios (current / baseline), so that load on a shared machine affects both
sides alike. What is timed: CPU seconds (``time.process_time``) of ``--steps`` calls of
``env.step`` through ``gymnasium.make`` (single: a masked random policy's actions are recorded in
a first pass, then the same episodes are replayed from the same seed and only the ``step`` and
``reset`` calls are timed; before 2026-12-08 the policy's draw was timed too, about a microsecond
for most envs but ~6 µs over DAG-EGS's 900-entry mask), or of the ``--calls`` calls of a native
vector env at B = ``--num-envs`` (vector: the ``step`` calls alone, timed one by one; the masked
random policy's draws over a B x actions mask are not the env's).
``--env-kwargs`` (a JSON object) is passed to every env built, on both sides.

``--mode profile`` splits one single-env step into where its CPU time goes, on both revisions:
the step through ``gymnasium.make``, the same step on ``env.unwrapped`` (the difference is
Gymnasium's wrappers), and the kernel call alone (writing the action and calling the B = 1
kernel: the rest of the unwrapped step is sysgym's Python layer: checks, copies, the info dict).

``--mode vector-profile`` does the same for one call of the native vector env at B = ``--num-envs``
(``gym.make_vec(..., vectorization_mode="vector_entry_point")``, NextStep autoreset, or SameStep
with ``--env-kwargs '{"autoreset_mode": "SameStep"}'``, as our PPO and ``SB3VecEnv`` run): ``--calls``
calls with a masked random policy are recorded once (actions, and which sub-envs each call
resets), then replayed from the same snapshot twice: through ``vec.step`` and as the bare family
kernel calls (writing the actions, ``_kernel_step`` on the stepped sub-envs, ``_kernel_reset`` on
the reset ones). The difference is sysgym's Python layer per vector call (action checks, autoreset
bookkeeping, reward sum, copies, the infos dict), the autoreset path included as often as it occurs
(it also holds what the kernel loses to caches the Python layer evicts, which the back-to-back
replay does not pay: noticeable for DAG's large state). The last column times the same calls with
the kernel replaced by a no-op (so no episode ends): the Python layer of a call where no sub-env
ends or resets. A run of 5 IDs at B = 8, 3000 calls, 5 reps takes about three minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import textwrap
from pathlib import Path

from sysgym.bench import format_table, human

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("SYSGYM_REVISIONS_CACHE", Path.home() / ".cache" / "sysgym-revisions"))
LAYOUT = {"envs": "envs", "agents": "agents", "cython_core": "cython_core", "traces": "traces"}

MEASURE = textwrap.dedent('''
    import json, sys, time
    import gymnasium as gym, numpy as np
    import sysgym
    env_id, mode, steps, num_envs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    kwargs = json.loads(sys.argv[5])
    rng = np.random.default_rng(0)
    if mode == "single":
        env = gym.make(env_id, **kwargs)
        obs, info = env.reset(seed=0)
        disc = isinstance(env.action_space, gym.spaces.Discrete)
        draws = rng.random(steps)
        box = None if disc else rng.uniform(env.action_space.low, env.action_space.high,
                                            size=(steps, *env.action_space.shape)).astype(env.action_space.dtype)
        step, reset = env.step, env.reset
        actions = []
        for k in range(steps):      # record the policy's actions ...
            if disc:
                valid = info["action_mask"].nonzero()[0]
                action = int(valid[int(draws[k] * len(valid))])
            else:
                action = box[k]
            actions.append(action)
            obs, reward, terminated, truncated, info = step(action)
            if terminated or truncated:
                obs, info = reset()
        env.reset(seed=0)           # ... and time the same episodes again without it
        start = time.process_time()
        for action in actions:
            obs, reward, terminated, truncated, info = step(action)
            if terminated or truncated:
                obs, info = reset()
        elapsed = time.process_time() - start
        print(steps / elapsed)
    else:
        vec = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point", **kwargs)
        obs, infos = vec.reset(seed=0)
        space = vec.single_action_space
        disc = isinstance(space, gym.spaces.Discrete)
        elapsed = 0.0
        for k in range(steps):
            if disc:
                scores = rng.random(infos["action_mask"].shape) * infos["action_mask"]
                actions = scores.argmax(axis=1)
            else:
                actions = rng.uniform(space.low, space.high, size=(num_envs, *space.shape)).astype(space.dtype)
            start = time.process_time()
            obs, rewards, terminated, truncated, infos = vec.step(actions)
            elapsed += time.process_time() - start
        print(steps * num_envs / elapsed)
''')


PROFILE = textwrap.dedent('''
    import json, sys, time
    import gymnasium as gym, numpy as np
    import sysgym
    env_id, steps = sys.argv[1], int(sys.argv[2])
    kwargs = json.loads(sys.argv[3])
    env = gym.make(env_id, **kwargs)
    u = env.unwrapped
    disc = isinstance(env.action_space, gym.spaces.Discrete)
    rng = np.random.default_rng(0)
    box = None if disc else rng.uniform(env.action_space.low, env.action_space.high,
                                        size=(steps, *env.action_space.shape)).astype(env.action_space.dtype)

    def run(layer):
        """CPU µs per iteration of a loop that draws a valid action and steps ``layer``."""
        obs, info = env.reset(seed=0)
        state, one = u._vec._state, np.ones(1, dtype=np.uint8)
        actions, kernel_step = state["actions"], u._vec._kernel_step
        draws = np.random.default_rng(1).random(steps)
        start = time.process_time()
        for k in range(steps):
            if disc:
                valid = state["action_mask"][0].nonzero()[0]
                action = int(valid[int(draws[k] * len(valid))])
            else:
                action = box[k]
            if layer == "none":
                continue
            if layer == "kernel":
                actions[0] = action
                kernel_step(one)
                ended = state["terminated"][0] or state["truncated"][0]
            else:
                obs, reward, terminated, truncated, info = (env if layer == "make" else u).step(action)
                ended = terminated or truncated
            if ended:
                env.reset()
        return (time.process_time() - start) / steps * 1e6

    # the action draws (the "none" loop) are subtracted from every layer
    none = run("none")
    print(json.dumps({layer: run(layer) - none for layer in ("make", "unwrapped", "kernel")}))
''')


VECTOR_PROFILE = textwrap.dedent('''
    import json, sys, time
    import gymnasium as gym, numpy as np
    import sysgym
    env_id, calls, num_envs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    kwargs = json.loads(sys.argv[4])
    vec = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point", **kwargs)
    u = vec.unwrapped
    space = vec.single_action_space
    disc = isinstance(space, gym.spaces.Discrete)
    obs, infos = vec.reset(seed=0)
    start_state = u.get_state()
    # record the calls once: the actions and the sub-envs each call resets (NextStep: those that ended
    # before, which do not step; SameStep: those that end in it, after every sub-env stepped)
    same_step = str(getattr(u.autoreset_mode, "value", u.autoreset_mode)) == "SameStep"
    rng = np.random.default_rng(0)
    acts, plans = [], []
    for k in range(calls):
        resetting = u._state["needs_reset"].astype(bool)
        if not same_step:
            plans.append(((~resetting).astype(np.uint8), resetting.astype(np.uint8)) if resetting.any() else None)
        if disc:
            actions = (rng.random(infos["action_mask"].shape) * infos["action_mask"]).argmax(axis=1)
        else:
            actions = rng.uniform(space.low, space.high, size=(num_envs, *space.shape)).astype(space.dtype)
        acts.append(actions)
        obs, rewards, terminated, truncated, infos = vec.step(actions)
        if same_step:
            done = terminated | truncated
            plans.append((np.ones(num_envs, dtype=np.uint8), done.astype(np.uint8)) if done.any() else None)

    def run(layer):
        """CPU µs per call of ``layer`` replaying the recorded calls from the start snapshot."""
        u.set_state(start_state)
        state = u._state
        buf, every = state["actions"], np.ones(num_envs, dtype=np.uint8)
        kernel_step, kernel_reset, step = u._kernel_step, u._kernel_reset, vec.step
        if layer == "stubbed":      # both names a revision's step may call the kernel through
            u._kernel_step = u._step_kernel = lambda active: None
        start = time.process_time()
        for k in range(calls):
            actions, plan = acts[k], plans[k]
            if layer == "none":
                continue
            if layer in ("step", "stubbed"):
                step(actions)
            else:
                buf[...] = actions
                if plan is None:
                    kernel_step(every)
                else:
                    kernel_step(plan[0])
                    kernel_reset(plan[1], None)
        return (time.process_time() - start) / calls * 1e6

    none = run("none")
    print(json.dumps({layer: run(layer) - none for layer in ("step", "kernel", "stubbed")}))
''')


def _run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed in {cwd}:\n{done.stderr[-3000:]}")
    return done.stdout


def baseline_root(revision: str) -> Path:
    """An import root for ``revision`` (checked out and built once, then cached)."""
    sha = _run(["git", "rev-parse", "--verify", f"{revision}^{{commit}}"], ROOT).strip()
    tree = CACHE / sha
    stamp = tree / ".built"
    if not stamp.exists():
        tree.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "archive", sha], cwd=ROOT, capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
        print(f"building the kernels of {sha[:10]} (once)...", file=sys.stderr)
        _run([sys.executable, "setup.py", "--quiet", "build_ext", "--inplace", "-j", "2"], tree)
        stamp.touch()
    site = tree / ".site"
    pkg = site / "sysgym"
    if not pkg.exists():
        pkg.mkdir(parents=True)
        for item in (tree / "sysgym").iterdir():
            (pkg / item.name).symlink_to(item)
        for name, folder in LAYOUT.items():
            (pkg / name).symlink_to(tree / folder)
    return site


def _in(site: Path | None, args: list[str]) -> str:
    """Run ``python -c args...`` importing sysgym from ``site`` (None: this tree); its stdout."""
    env = dict(os.environ)
    if site is not None:
        env["PYTHONPATH"] = f"{site}{os.pathsep}{env.get('PYTHONPATH', '')}"
    return _run([sys.executable, "-c", *args], ROOT if site is None else site, env)


def measure(site: Path | None, env_id: str, mode: str, steps: int, num_envs: int, kwargs: str = "{}") -> float:
    out = _in(site, [MEASURE, env_id, mode, str(steps), str(num_envs), kwargs])
    return float(out.strip().splitlines()[-1])


def profile(site: Path | None, env_id: str, steps: int, kwargs: str = "{}") -> dict[str, float]:
    """µs of CPU per single-env step: through gymnasium.make, on env.unwrapped, kernel alone."""
    return json.loads(_in(site, [PROFILE, env_id, str(steps), kwargs]).strip().splitlines()[-1])


def vector_profile(site: Path | None, env_id: str, calls: int, num_envs: int, kwargs: str = "{}") -> dict[str, float]:
    """µs of CPU per native vector env call: the whole ``step`` and the family's kernel calls alone."""
    return json.loads(_in(site, [VECTOR_PROFILE, env_id, str(calls), str(num_envs), kwargs]).strip().splitlines()[-1])


def vector_profile_table(site: Path, ids: list[str], calls: int, num_envs: int, reps: int,
                         kwargs: str) -> list[list[str]]:
    """Per env and revision: medians over ``reps`` alternating runs of the vector step's µs split."""
    rows = []
    for env_id in ids:
        try:
            vector_profile(site, env_id, 10, num_envs, kwargs)
        except RuntimeError:
            rows.append([env_id, "absent at baseline", "", "", "", ""])
            continue
        runs: dict[str, list[dict[str, float]]] = {"baseline": [], "current": []}
        for _ in range(reps):
            runs["baseline"].append(vector_profile(site, env_id, calls, num_envs, kwargs))
            runs["current"].append(vector_profile(None, env_id, calls, num_envs, kwargs))
        for side, results in runs.items():
            step = statistics.median(r["step"] for r in results)
            kernel = statistics.median(r["kernel"] for r in results)
            layer = statistics.median(r["step"] - r["kernel"] for r in results)
            plain = statistics.median(r["stubbed"] for r in results)
            rows.append([env_id, side, f"{step:.1f}", f"{kernel:.1f}", f"{layer:.1f}", f"{plain:.1f}"])
        print(f"  profiled {env_id}", file=sys.stderr)
    return rows


def profile_table(site: Path, ids: list[str], steps: int, reps: int, kwargs: str) -> list[list[str]]:
    """Per env and revision: the medians over ``reps`` alternating runs of each layer's µs."""
    rows = []
    for env_id in ids:
        try:
            profile(site, env_id, 10, kwargs)
        except RuntimeError:
            rows.append([env_id, "absent at baseline", "", "", "", ""])
            continue
        runs: dict[str, list[dict[str, float]]] = {"baseline": [], "current": []}
        for _ in range(reps):
            runs["baseline"].append(profile(site, env_id, steps, kwargs))
            runs["current"].append(profile(None, env_id, steps, kwargs))
        for side, results in runs.items():
            med = {k: statistics.median(r[k] for r in results) for k in results[0]}
            rows.append([env_id, side, f"{med['make']:.2f}", f"{med['make'] - med['unwrapped']:.2f}",
                         f"{med['unwrapped'] - med['kernel']:.2f}", f"{med['kernel']:.2f}"])
        print(f"  profiled {env_id}", file=sys.stderr)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.compare_revisions", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", required=True, help="git revision to compare against")
    parser.add_argument("--ids", nargs="*", default=None, help="env IDs (default: every ID both have)")
    parser.add_argument("--mode", choices=("single", "vector", "both", "profile", "vector-profile"), default="single")
    parser.add_argument("--steps", type=int, default=20000, help="single-env steps per measurement")
    parser.add_argument("--calls", type=int, default=100, help="vector step calls per measurement")
    parser.add_argument("--num-envs", type=int, default=256)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--env-kwargs", default="{}", metavar="JSON",
                        help='kwargs for every env, as a JSON object (e.g. \'{"allocation": "reserve"}\')')
    args = parser.parse_args(argv)
    try:
        env_kwargs = json.loads(args.env_kwargs)
    except json.JSONDecodeError as err:
        parser.error(f"--env-kwargs is not JSON: {err}")
    if not isinstance(env_kwargs, dict):
        parser.error("--env-kwargs must be a JSON object")
    kwargs = json.dumps(env_kwargs)

    import sysgym

    site = baseline_root(args.baseline)
    ids = args.ids or [e.id for e in sysgym.ENVIRONMENTS]
    extra = f"; env kwargs {kwargs}" if env_kwargs else ""
    if args.mode == "profile":
        rows = profile_table(site, ids, args.steps, args.reps, kwargs)
        print(f"baseline {args.baseline}; CPU µs per single-env step, median of {args.reps} alternating runs "
              f"of {args.steps} steps{extra}")
        print(format_table(rows, ["id", "revision", "gymnasium.make step", "Gymnasium wrappers",
                                  "sysgym Python layer", "kernel call"]))
        return 0
    if args.mode == "vector-profile":
        rows = vector_profile_table(site, ids, args.calls, args.num_envs, args.reps, kwargs)
        mode = env_kwargs.get("autoreset_mode", "NextStep")
        print(f"baseline {args.baseline}; CPU µs per native vector env call at B = {args.num_envs} ({mode} "
              f"autoreset), median of {args.reps} alternating runs of {args.calls} calls{extra}")
        print(format_table(rows, ["id", "revision", "vector step", "kernel calls", "sysgym Python layer",
                                  "Python layer, no end or reset"]))
        return 0
    modes = ("single", "vector") if args.mode == "both" else (args.mode,)
    rows = []
    for env_id in ids:
        for mode in modes:
            n = args.steps if mode == "single" else args.calls
            try:
                measure(site, env_id, mode, 10, args.num_envs, kwargs)
            except RuntimeError:
                rows.append([env_id, mode, "absent at baseline", "", "", ""])
                continue
            base, new, ratios = [], [], []
            for _ in range(args.reps):
                b = measure(site, env_id, mode, n, args.num_envs, kwargs)
                c = measure(None, env_id, mode, n, args.num_envs, kwargs)
                base.append(b)
                new.append(c)
                ratios.append(c / b)
            rows.append([env_id, mode, human(statistics.median(base)), human(statistics.median(new)),
                         f"{statistics.median(ratios):.2f}x", f"{min(ratios):.2f}-{max(ratios):.2f}"])
            print(f"  measured {env_id} {mode}", file=sys.stderr)
    print(f"baseline {args.baseline}; CPU-time steps/s, median of {args.reps} alternating repetitions{extra}")
    print(format_table(rows, ["id", "mode", "baseline steps/s", "current steps/s", "ratio", "range"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
