"""``sysgym dataset``: write a policy's episodes on an env as a local Minari dataset.

``--out`` is checked before any work (``--force`` writes into a non-empty folder); the dataset
lands in ``<out>/<dataset id>/`` (Minari's layout; load it with ``MINARI_DATASETS_PATH=<out>`` and
``minari.load_dataset(id)``, or :func:`sysgym.agents.datasets.load`). Ctrl-C or SIGTERM keeps the
finished episodes as a valid dataset and exits 130 with one line. Only :func:`add_arguments` is
imported to build the parser; minari is imported by :func:`run_dataset`.
"""

from __future__ import annotations

import argparse
import math
import sys

DESCRIPTION = """Collect N episodes of a policy on an environment and write them as a Farama Minari dataset
under --out (no hub): observations, actions, rewards, terminations, truncations, per step the
infos action_mask and reward_components, the env spec with its kwargs, the policy and the seeds
(episode k: seed + k) in the metadata. --noise EPS mixes in uniformly random valid actions.
Extra env.KEY=value arguments set env kwargs (e.g. env.scenario=3). Needs the datasets extra:
pip install "sysgym[datasets]"."""

MAX_EPISODES = 10_000_000
MAX_BATCH = 4096


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``sysgym dataset`` (the CLI builds its subparser with this)."""
    from sysgym.agents.policy_specs import HELP

    p.add_argument("--env", default=None, help="environment ID (default: a checkpoint's own)")
    p.add_argument("--policy", required=True, help=HELP)
    p.add_argument("--episodes", type=int, required=True, help="episodes to collect")
    p.add_argument("--out", required=True, help="folder the dataset is written under (must be empty or new "
                   "unless --force)")
    p.add_argument("--noise", type=float, default=0.0, metavar="EPS",
                   help="probability of a uniformly random valid action at each step (default 0)")
    p.add_argument("--seed", type=int, default=0, help="seed of the first episode (episode k: seed + k)")
    p.add_argument("--batch", type=int, default=16, help="episodes played at once on the native vector env")
    p.add_argument("--name", default=None, help="dataset id, namespace/name-vN "
                   "(default: sysgym/<Env>/<policy>[-noiseEPS]-v0)")
    p.add_argument("--sample", action="store_true", help="learned policies sample their actions (default: greedy)")
    p.add_argument("--force", action="store_true", help="write into a non-empty --out folder")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("overrides", nargs="*", metavar="env.key=value")


def run_dataset(args: argparse.Namespace) -> int:
    import signal

    from sysgym.agents import policy_specs
    from sysgym.agents.distill.commands import parse_env_overrides
    from sysgym.agents.runs import (
        INTERRUPTED_EXIT,
        interrupted_message,
        prepare_out_dir,
        stop_signals,
    )

    from .collect import _minari, collect, dataset_id_for

    if not 1 <= args.episodes <= MAX_EPISODES:
        raise ValueError(f"--episodes must be in [1, {MAX_EPISODES:,}], got {args.episodes}")
    if not 1 <= args.batch <= MAX_BATCH:
        raise ValueError(f"--batch must be in [1, {MAX_BATCH}], got {args.batch}")
    if not (math.isfinite(args.noise) and 0.0 <= args.noise <= 1.0):
        raise ValueError(f"--noise must be in [0, 1], got {args.noise}")
    if not 0 <= args.seed <= 2**62:
        raise ValueError(f"--seed must be in [0, 2**62], got {args.seed}")
    _minari()   # the extra is installed
    overrides = parse_env_overrides(args.overrides)
    spec = policy_specs.parse(args.policy, sample=args.sample)
    trained_id, trained_kwargs, _ = policy_specs.trained_env(spec)
    env_id = args.env or trained_id
    if env_id is None:
        raise ValueError("--env is required (the policy does not name its environment)")
    env_kwargs = policy_specs.fit_kwargs(spec, env_id, {**(trained_kwargs if not args.env else {}), **overrides})
    factory = policy_specs.build(spec, env_id, env_kwargs, seed=args.seed)
    dataset_id = args.name or dataset_id_for(env_id, spec.label, args.noise)
    _check_id(dataset_id)
    out = prepare_out_dir(args.out, force=args.force)
    if (out / dataset_id).exists():
        raise ValueError(f"--out {out}: dataset {dataset_id} already exists there; pick another --name or --out")

    print(f"{env_id} {env_kwargs or ''}: {spec.label}, episodes seeds {args.seed}-{args.seed + args.episodes - 1}",
          file=sys.stderr)
    bar = None
    if not args.no_progress:
        from tqdm import tqdm

        bar = tqdm(total=args.episodes, desc=dataset_id, unit="episode", file=sys.stderr, dynamic_ncols=True)

    def progress(done: int, total: int) -> None:
        if bar is not None:
            bar.update(done - bar.n)

    previous = signal.getsignal(signal.SIGINT)
    with stop_signals():
        summary = collect(env_id, factory, args.episodes, out, env_kwargs=env_kwargs, policy_label=spec.label,
                          noise=args.noise, seed=args.seed, batch=args.batch, dataset_id=dataset_id,
                          progress=progress)
    if bar is not None:
        bar.close()
    where = out / dataset_id
    line = (f"{summary['dataset_id']}: {summary['episodes']} episodes, {summary['steps']} steps, "
            f"mean return {summary['mean_return']:.4g}, {summary['episodes_per_s']:.3g} episodes/s "
            f"({summary['mode']}) in {where}")
    if summary["interrupted"]:
        signal.signal(signal.SIGINT, previous)
        print(interrupted_message("dataset", f"the {summary['episodes']} finished episodes are a valid dataset in "
                                  f"{where}"), file=sys.stderr)
        return INTERRUPTED_EXIT
    print(line)
    return 0


def _check_id(dataset_id: str) -> None:
    from minari.dataset.minari_dataset import parse_dataset_id

    try:
        parse_dataset_id(dataset_id)
    except Exception:  # noqa: BLE001 (minari raises several kinds)
        raise ValueError(f"--name {dataset_id!r}: not a Minari dataset id (namespace/name-vN)") from None
