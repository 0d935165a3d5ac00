"""``sysgym distill --dataset DIR``: behaviour cloning of a Minari dataset into a tree or rule.

The teacher is the dataset: the student (``agents/distill/students.py``) is fit on the stored
states and actions of the dataset's first episodes (about 80 %); its last episodes (at least one)
are held out to measure fidelity (agreement with the stored actions, within the stored masks).
The student and the dataset's policy (rebuilt from the spec in its metadata, without the
dataset's --noise; ``-`` when it no longer builds) are then scored on fresh test episodes of the
recovered env, whose seeds must be disjoint from every seed the dataset used.
One fit, so no selection episodes. Writes ``tree.*`` (or ``rule.*``) and ``report.md`` to --out.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import numpy as np


def _episodes(dataset) -> list[tuple[int, Any]]:
    seeds = [int(m.get("seed", -1)) for m in dataset.storage.get_episode_metadata(dataset.episode_indices)]
    return list(zip(seeds, dataset.iterate_episodes()))


def samples_of(episodes: list[tuple[int, Any]], layout, n_actions: int):
    """The (state, mask, action) rows of ``episodes`` as distillation :class:`Samples`."""
    from sysgym.agents.distill.features import flatten
    from sysgym.agents.distill.samples import Samples

    X, masks, actions = [], [], []
    for _, ep in episodes:
        n = len(ep)
        obs = {k: np.asarray(v)[:n] for k, v in ep.observations.items()} if isinstance(ep.observations, dict) \
            else np.asarray(ep.observations)[:n]
        X.append(flatten(obs, layout)[0])
        mask = ep.infos.get("action_mask")
        masks.append(np.ones((n, n_actions), bool) if mask is None else np.asarray(mask)[:n] > 0)
        actions.append(np.asarray(ep.actions).reshape(n).astype(np.int64))
    return Samples(np.concatenate(X), np.concatenate(masks), np.concatenate(actions))


def _teacher_return(meta: dict, env_id: str, env_kwargs: dict, maker, episodes: int, seed: int) -> str:
    """The dataset's policy, rebuilt from its stored spec (without --noise), on the test episodes;
    ``"-"`` when the spec no longer builds (a checkpoint moved away, user code missing)."""
    from sysgym.agents import policy_specs
    from sysgym.agents.distill.rollouts import evaluate

    label = str(meta.get("policy", ""))
    sample = label.endswith(" (sampled)")
    try:
        spec = policy_specs.parse(label.removesuffix(" (sampled)"), sample=sample)
        factory = policy_specs.build(spec, env_id, env_kwargs)
    except (ValueError, FileNotFoundError, ImportError):
        return "-"
    return f"{evaluate(maker, factory, episodes, seed).mean_return():.4g}"


def run_from_dataset(args: argparse.Namespace) -> int:
    import gymnasium as gym

    from sysgym.agents.distill.envs import EnvMaker
    from sysgym.agents.distill.features import action_names, feature_names, observation_layout
    from sysgym.agents.distill.policies import policy_for
    from sysgym.agents.distill.rollouts import decision_latency, evaluate, fidelity
    from sysgym.agents.distill.samples import training_set
    from sysgym.agents.distill.seeds import check_disjoint, describe, episode_range
    from sysgym.agents.distill.students import make_student
    from sysgym.agents.runs import atomic_write_text, prepare_out_dir
    from sysgym.bench import format_table

    from .collect import load

    if args.teacher is not None:
        raise ValueError("--dataset is the teacher: drop --teacher")
    if args.overrides:
        raise ValueError("--dataset recovers its env from the dataset: env.key=value does not apply")
    if args.weighting != "none" or args.critical is not None or args.threshold is not None:
        raise ValueError("--dataset is behaviour cloning: no critical states or viper weights")
    if args.student == "optimal" and args.max_thresholds is None:
        args.max_thresholds = 16
    if not 1 <= args.test_episodes <= 100_000:
        raise ValueError(f"--test-episodes must be in [1, 100,000], got {args.test_episodes}")
    began = time.perf_counter()
    dataset = load(args.dataset)
    env = dataset.recover_environment()
    env_id, env_kwargs = env.spec.id, dict(env.spec.kwargs)
    if args.env is not None and args.env != env_id:
        raise ValueError(f"--env {args.env}: the dataset was collected on {env_id}")
    if not isinstance(env.action_space, gym.spaces.Discrete):
        raise ValueError(f"{env_id}: trees choose among discrete actions; this dataset's actions are "
                         f"{env.action_space}")
    n_actions = int(env.action_space.n)
    layout = observation_layout(env.observation_space)
    episodes = _episodes(dataset)
    if len(episodes) < 2:
        raise ValueError(f"{args.dataset}: behaviour cloning needs at least 2 episodes (one held out), "
                         f"found {len(episodes)}")
    held = max(1, len(episodes) // 5)
    train, hold = episodes[:-held], episodes[-held:]
    seeds = [s for s, _ in episodes]
    test = episode_range(args.test_seed, args.test_episodes)
    check_disjoint({"dataset episodes": (min(seeds), max(seeds)), "test episodes": test})
    student_kwargs: dict[str, Any] = {"cart": {"max_depth": args.max_depth, "max_leaf_nodes": args.max_leaves},
                                      "optimal": {"max_depth": args.max_depth, "max_nodes": args.max_nodes,
                                                  "max_thresholds": args.max_thresholds,
                                                  "time_limit": args.time_limit},
                                      "rules": {"max_literals": args.literals, "form": args.form,
                                                "max_thresholds": args.max_thresholds}}[args.student]
    student = make_student(args.student, **student_kwargs)
    out = prepare_out_dir(args.out or f"runs/distill_dataset_{env_id.split('/')[-1]}_{args.student}",
                          force=args.force)
    data = samples_of(train, layout, n_actions)
    if hasattr(student, "check_actions"):
        student.check_actions(n_actions)
    meta = dataset.storage.metadata.get("sysgym", {})
    source = f"dataset {dataset.spec.dataset_id} ({meta.get('policy', '?')}, noise {meta.get('noise', '?')})"
    model = student.fit(training_set(data))
    policy = policy_for(model, feature_names(env, data.X.shape[1]), action_names(env, n_actions), layout,
                        meta={"teacher": source, "env_id": env_id})
    maker = EnvMaker(env_id, env_kwargs)
    student_eval = evaluate(maker, lambda e: policy, args.test_episodes, args.test_seed)
    agree = fidelity(policy, samples_of(hold, layout, n_actions))
    lines = [describe(f"dataset episodes, training ({len(train)} episodes, {len(data)} states)",
                      (min(s for s, _ in train), max(s for s, _ in train))),
             describe(f"dataset episodes, fidelity ({len(hold)} held out)",
                      (min(s for s, _ in hold), max(s for s, _ in hold))),
             "selection episodes: none (behaviour cloning fits once)",
             describe("test episodes", test)]
    returns = [float(np.sum(ep.rewards)) for _, ep in episodes]
    teacher = _teacher_return(meta, env_id, env_kwargs, maker, args.test_episodes, args.test_seed)
    rows = [["mean return (dataset episodes)", f"{np.mean(returns):.4g}", "-"],
            [f"mean return ({args.test_episodes} test episodes)", teacher, f"{student_eval.mean_return():.4g}"],
            [f"fidelity, {len(hold)} held-out dataset episodes", "1", f"{agree['fidelity']:.3f}"],
            ["size", "-", ", ".join(f"{v} {k}" for k, v in policy.size().items())],
            ["decision latency (µs, median, single env)", "-",
             f"{decision_latency(maker, lambda e: policy, args.latency_decisions, args.test_seed):.1f}"]]
    table = format_table(rows, ["", "teacher (dataset)", "student"])
    head = f"{env_id}: {source} -> {args.student} (behaviour cloning)"
    paths = policy.save_all(out, "rule" if args.student == "rules" else "tree")
    atomic_write_text(out / "report.md", f"# {head}\n\n" + "\n".join(f"- {line}" for line in lines)
                      + f"\n\n{table}\n")
    print(policy.text())
    print(head + "\n")
    print("\n".join(lines) + "\n")
    print(table)
    print(f"\nwrote {', '.join(str(p) for p in paths.values())}, {out / 'report.md'} in "
          f"{time.perf_counter() - began:.0f} s", file=sys.stderr)
    return 0
