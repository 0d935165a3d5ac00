"""``sysgym distill``: distil a teacher into a tree or rule, write it out and compare the two.

Writes ``<out>/tree.{txt,dot,png,json}`` (``rule.*`` for rules), ``iterations.csv`` (the DAgger
log), ``iterations/`` (every iterate's student) and ``report.md`` (the table also printed on
stdout): teacher vs student return and family metric on the test episodes, fidelity (agreement
with the teacher on held-out teacher states, overall and on the critical ones), model size,
masked fallbacks and decision latency (µs per ``act`` call on a single env).

Seeds: training episodes, the selection episodes that choose the iterate and the test episodes
that score it are pairwise disjoint (checked before any work; printed and written to the report
as ``selection episodes: seeds A-B`` / ``test episodes: seeds C-D``). ``--out`` is checked before
any work; each finished iteration is saved as it goes, and Ctrl-C or SIGTERM keeps them and exits
with status 130 and one line. Only :func:`add_arguments` is imported to build the parser;
everything heavy is imported by :func:`run_distill`.
"""

from __future__ import annotations

import argparse
import ast
from typing import Any

DESCRIPTION = """Distil a teacher policy into a small decision tree or Boolean rule (DAgger; IRL's critical
states; VIPER's weights; optimal trees by STreeD; exhaustive rules). The teacher is any policy
spec: a PPO checkpoint (file or training folder; its critic can close rollouts), heuristic:NAME (a
baseline of the env's family), oracle (the appointment oracle, with its exact action values),
reference, sb3:PATH.zip, rllib:DIR or module:factory (action values simulated). Extra env.KEY=value arguments set env kwargs (e.g. env.scenario=5)."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``sysgym distill`` (the CLI builds its subparser with this)."""
    p.add_argument("--teacher", default=None, help="any policy spec (README: policy forms): runs/X (PPO checkpoint), "
                   "heuristic:NAME, oracle, reference, sb3:PATH.zip, rllib:DIR, module:factory")
    p.add_argument("--dataset", default=None, metavar="DIR", help="instead of a teacher: behaviour cloning "
                   "from a Minari dataset written by sysgym dataset (DAgger options do not apply)")
    p.add_argument("--env", default=None, help="environment ID (default: a checkpoint's own)")
    p.add_argument("--student", choices=("cart", "optimal", "rules"), default="cart")
    p.add_argument("--max-depth", type=int, default=3, help="tree depth limit (cart, optimal)")
    p.add_argument("--max-leaves", type=int, default=None, help="leaf limit (cart)")
    p.add_argument("--max-nodes", type=int, default=None, help="test-node limit (optimal)")
    p.add_argument("--literals", type=int, default=3, help="most literals of a rule (rules)")
    p.add_argument("--form", choices=("dnf", "cnf"), default="dnf", help="how a rule is written (rules)")
    p.add_argument("--max-thresholds", type=int, default=None,
                   help="candidate thresholds per numeric feature (optimal: 16, rules: all)")
    p.add_argument("--time-limit", type=float, default=600.0, help="solver time limit in s (optimal)")
    p.add_argument("--critical", type=float, default=None, help="train on this top fraction of critical states")
    p.add_argument("--threshold", type=float, default=None, help="train on states with criticality above this")
    p.add_argument("--weighting", choices=("none", "viper"), default="none",
                   help="viper: weight states by criticality, cost actions by regret")
    p.add_argument("--q-source", choices=("auto", "simulate", "teacher"), default="auto",
                   help="action values: rollouts, or the teacher's own (oracle values, PPO critic)")
    p.add_argument("--horizon", type=int, default=10, help="decisions per simulated rollout")
    p.add_argument("--gamma", type=float, default=0.99, help="discount of simulated rollouts")
    p.add_argument("--rollouts", type=int, default=1, help="rollouts per state and action")
    p.add_argument("--iterations", type=int, default=10, help="DAgger iterations (1 = behaviour cloning)")
    p.add_argument("--samples", type=int, default=2000, help="states collected per iteration")
    p.add_argument("--beta", type=float, default=0.0, help="teacher share beta_i = beta**i (iteration 0: 1)")
    p.add_argument("--num-envs", type=int, default=16, help="sub-envs collecting states")
    p.add_argument("--selection-episodes", "--eval-episodes", dest="eval_episodes", type=int, default=8, metavar="N",
                   help="episodes scoring each iterate to choose the student")
    p.add_argument("--selection-seed", "--eval-seed", dest="eval_seed", type=int, default=1_000_000, metavar="SEED",
                   help="first seed of the selection episodes")
    p.add_argument("--test-episodes", type=int, default=16,
                   help="episodes scoring the chosen student and the teacher (none of them chose it)")
    p.add_argument("--test-seed", type=int, default=2_000_000,
                   help="first seed of the test episodes (fidelity states: the seeds after them)")
    p.add_argument("--fidelity-samples", type=int, default=2000, help="held-out teacher states for fidelity")
    p.add_argument("--latency-decisions", type=int, default=500, help="act calls timed per policy")
    p.add_argument("--seed", type=int, default=0, help="first training seed")
    p.add_argument("--out", default=None, help="output folder (default: runs/distill_<env>_<student>); "
                   "must be empty or new unless --force")
    p.add_argument("--force", action="store_true", help="write into a non-empty --out folder")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("overrides", nargs="*", metavar="env.key=value")


def parse_env_overrides(items: list[str]) -> dict[str, Any]:
    """``["env.scenario=5", "env.workload=traces/x.swf"]`` -> kwargs (values as Python literals
    where they parse as one, else strings)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.startswith("env.") or len(key) == 4:
            raise ValueError(f"expected env.key=value, got {item!r}")
        try:
            value: Any = ast.literal_eval(text.strip())
        except (ValueError, SyntaxError):
            value = {"true": True, "false": False, "none": None}.get(text.strip().lower(), text.strip())
        out[key[4:]] = value
    return out


def run_distill(args: argparse.Namespace) -> int:
    import signal
    import sys
    import time

    from sysgym.agents.policy_specs import fit_kwargs, parse, trained_env
    from sysgym.agents.runs import (
        INTERRUPTED_EXIT,
        interrupted_message,
        prepare_out_dir,
        stop_signals,
    )
    from sysgym.bench import format_table

    from .dagger import (
        MAX_EPISODES,
        MAX_SAMPLES,
        MAX_SEED,
        DistillConfig,
        distill,
        remaining_seconds,
    )
    from .envs import EnvMaker
    from .outputs import RunFiles
    from .seeds import check_disjoint, collection_bound, describe, episode_range
    from .students import make_student
    from .teachers import resolve_teacher

    if args.dataset is not None:
        from sysgym.agents.datasets.clone import run_from_dataset

        return run_from_dataset(args)
    if args.teacher is None:
        raise ValueError("--teacher is required (or --dataset DIR)")
    overrides = parse_env_overrides(args.overrides)
    for name, lo, hi in (("fidelity_samples", 1, MAX_SAMPLES), ("latency_decisions", 1, MAX_LATENCY_DECISIONS),
                         ("test_episodes", 1, MAX_EPISODES), ("test_seed", 0, MAX_SEED)):
        value = getattr(args, name)
        if not lo <= value <= hi:
            raise ValueError(f"--{name.replace('_', '-')} must be in [{lo}, {hi:,}], got {value}")
    if not 0 < args.time_limit <= MAX_TIME_LIMIT:  # NaN fails too
        raise ValueError(f"--time-limit must be in (0, {MAX_TIME_LIMIT:g}] seconds, got {args.time_limit}")
    config = DistillConfig(iterations=args.iterations, samples=args.samples, beta=args.beta,
                           num_envs=args.num_envs, critical=args.critical, threshold=args.threshold,
                           weighting=args.weighting, q_source=args.q_source, horizon=args.horizon,
                           gamma=args.gamma, rollouts=args.rollouts, eval_episodes=args.eval_episodes,
                           eval_seed=args.eval_seed, seed=args.seed)
    config.check()
    test = episode_range(args.test_seed, args.test_episodes)
    fidelity_first = args.test_seed + args.test_episodes
    check_disjoint({"training episodes": config.training_seeds(), "selection episodes": config.selection_seeds(),
                    "test episodes": test,
                    "fidelity states": collection_bound(fidelity_first, args.fidelity_samples, args.num_envs)})
    student_kwargs: dict[str, Any] = {"cart": {"max_depth": args.max_depth, "max_leaf_nodes": args.max_leaves},
                                      "optimal": {"max_depth": args.max_depth, "max_nodes": args.max_nodes,
                                                  "max_thresholds": args.max_thresholds or 16,
                                                  "time_limit": args.time_limit},
                                      "rules": {"max_literals": args.literals, "form": args.form,
                                                "max_thresholds": args.max_thresholds}}[args.student]
    student = make_student(args.student, **student_kwargs)
    spec = parse(args.teacher)
    trained_id, trained_kwargs, _ = trained_env(spec)
    env_id = args.env or trained_id
    if env_id is None:
        raise ValueError("--env is required (the teacher does not name its environment)")
    env_kwargs = fit_kwargs(spec, env_id, {**trained_kwargs, **overrides})   # a DAG policy's padding
    teacher = resolve_teacher(args.teacher, env_id, env_kwargs=env_kwargs)
    out = prepare_out_dir(args.out or f"runs/distill_{env_id.split('/')[-1]}_{args.student}", force=args.force)
    head = f"{env_id}: {teacher.name} -> {args.student}"
    files = RunFiles(out, head, [describe("training episodes (at most)", config.training_seeds()),
                                 describe("selection episodes", config.selection_seeds()),
                                 describe("test episodes", test)], config.iterations)
    log = lambda line: print(line, file=sys.stderr)  # noqa: E731
    began = time.perf_counter()

    def on_iterate(it, finished) -> None:
        files.iterate(it, finished)
        # the comparison after DAgger: teacher and student on the test episodes, fidelity states
        per_episode = sum(i.phases["select"] for i in finished) / len(finished) / config.eval_episodes
        first = finished[0].phases
        tail = 2 * args.test_episodes * per_episode + \
            (first["collect"] + first["label"]) * args.fidelity_samples / config.samples
        left = remaining_seconds([i.seconds for i in finished], config.iterations) + tail
        log(f"DAgger {len(finished)}/{config.iterations} done after {_clock(time.perf_counter() - began)}; "
            f"whole run: about {_clock(left)} left")

    previous_sigint = signal.getsignal(signal.SIGINT)
    try:
        with stop_signals() as stop:
            def on_iterate_then_stop(it, finished) -> None:
                on_iterate(it, finished)
                stop.check()      # a stop that arrived during the iteration ends the run here
            # A first stop signal during DAgger lets the iteration finish (raised inside sklearn or
            # a weakref callback, a KeyboardInterrupt can be swallowed); a second stops at once.
            with stop.deferred("sysgym distill: stop requested; finishing this DAgger iteration, then "
                               "keeping the finished ones (send it again to stop now)"):
                result = distill(env_id, teacher, student, env_kwargs=env_kwargs, config=config,
                                 progress=not args.no_progress, log=log, on_iterate=on_iterate_then_stop)
            stop.check()
            report, fidelity_seeds = compare(EnvMaker(env_id, env_kwargs), teacher, result, config,
                                             args.fidelity_samples, args.latency_decisions, args.test_seed,
                                             args.test_episodes)
            used = {"training episodes": result.training_seeds, "selection episodes": result.selection_seeds,
                    "test episodes": test, "fidelity states": fidelity_seeds}
            check_disjoint(used)  # the bounds checked before the work hold these
            files.seeds = seeds = [describe(name, r) for name, r in used.items()]
            files.head = (f"{head} (iterate {result.best} of {len(result.iterates)}, chosen on the selection "
                          "episodes; scores on the test episodes)")
            table = format_table(report, ["", "teacher", "student"])
            paths = files.finish(result, table)
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the saving short
        try:
            print(interrupted_message("distill", files.interrupted()), file=sys.stderr)
        finally:
            signal.signal(signal.SIGINT, previous_sigint)
        return INTERRUPTED_EXIT
    print(result.policy.text())
    print(files.head + "\n")
    print("\n".join(seeds) + "\n")
    print(table)
    print(f"\nwrote {', '.join(str(p) for p in paths.values())}, {out / 'iterations.csv'}, {out / 'report.md'}, "
          f"{out / 'iterations'}/ (every iterate) in {_clock(time.perf_counter() - began)}", file=sys.stderr)
    return 0


MAX_LATENCY_DECISIONS = 1_000_000
MAX_TIME_LIMIT = 7 * 86400.0


def _clock(seconds: float) -> str:
    """``"42 s"``, ``"3 min 05 s"``, ``"2 h 07 min"``."""
    s = int(round(max(seconds, 0.0)))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def compare(maker, teacher, result, config, fidelity_samples: int, latency_decisions: int, test_seed: int,
            test_episodes: int) -> tuple[list[list[str]], tuple[int, int]]:
    """Rows of the teacher-vs-student table (see the module docstring), scored on the test episodes
    ``test_seed`` .. ``test_seed + test_episodes - 1`` and on teacher states from the seeds after
    them; also the seeds those states came from."""
    import numpy as np

    from .critical import select_critical
    from .qvalues import simulate_q
    from .rollouts import collect, decision_latency, evaluate, fidelity
    from .seeds import SeedCounter

    policy = result.policy
    teacher_eval = evaluate(maker, teacher.build, test_episodes, test_seed)
    policy.decisions = policy.fallbacks = 0
    student_eval = evaluate(maker, lambda env: policy, test_episodes, test_seed)
    fallbacks = f"{policy.fallbacks} of {policy.decisions}"
    held = SeedCounter(test_seed + test_episodes)  # teacher states past the test episodes
    values = teacher.values is not None
    data, bank = collect(maker, teacher, None, 1.0, fidelity_samples, held, num_envs=config.num_envs,
                         rng=np.random.default_rng(test_seed), record_states=not values, teacher_values=values)
    note = ""
    critical = None
    try:
        if bank is not None:
            data.q = simulate_q(maker, bank, data.mask, teacher, horizon=config.horizon, gamma=config.gamma,
                                rollouts=config.rollouts, batch=config.batch, seed=test_seed)
        fraction = config.critical if config.critical is not None or config.threshold is not None else 0.3
        critical = select_critical(data.criticality(), fraction, config.threshold)
        note = f" ({int(critical.sum())} states)"
    except ValueError as error:  # an env that cannot fork states yet
        note = f" (n/a: {str(error).splitlines()[0][:60]})"
    agree = fidelity(policy, data, critical)
    size = policy.size()
    metric = result.metric
    rows = [[f"mean return ({test_episodes} test episodes)", f"{teacher_eval.mean_return():.4g}",
             f"{student_eval.mean_return():.4g}"]]
    if metric:
        rows.append([f"mean {metric}", f"{teacher_eval.mean(metric):.4g}", f"{student_eval.mean(metric):.4g}"])
    rows += [
        [f"fidelity, {len(data)} held-out states", "1", f"{agree['fidelity']:.3f}"],
        [f"fidelity, critical states{note}", "1", f"{agree.get('fidelity_critical', float('nan')):.3f}"],
        ["size", "-", ", ".join(f"{v} {k}" for k, v in size.items())],
        ["masked fallbacks (test episodes)", "-", fallbacks],
        ["decision latency (µs, median, single env)",
         f"{decision_latency(maker, teacher.build, latency_decisions, test_seed):.1f}",
         f"{decision_latency(maker, lambda env: policy, latency_decisions, test_seed):.1f}"],
    ]
    return rows, held.used()
