"""CrystalBox on every family: fit on a heuristic's rollouts, score on held-out states, time a query.

Per environment: fit an explainer (``--states`` sampled states, every valid action forked — or 4
alternatives for DAG-EGS's N^2 edges — t_max = 5, gamma = 0.95), then sample held-out states
(other seeds; ABR's test traces, CC's test link set) and report the mean squared error of the
predicted returns on the [0, 1] scale per component (factual / counterfactual queries), the
share of states where the predicted best action is the truly best one, and the median time of
one prediction for all valid actions of a state (from its stored input, one torch thread). Components with a zero weight (DAG-EGS's slack and invalid: the
default reward counts width only) are constant 0 in reward units and trivially exact.

``python -m benchmarks.crystalbox_families [--quick] [--states N] [--test-states N] [--epochs N]``
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

import sysgym  # noqa: F401
from sysgym.agents.crystalbox import CrystalBox, collect, explain
from sysgym.agents.crystalbox.evaluation import squared_errors
from sysgym.agents.heuristics import heuristics_for
from sysgym.bench import format_table

SETUPS = [
    ("sysgym/DeepRM-Compact-v0", "sjf", {}, {}),
    ("sysgym/DAG-EGS-v0", "greedy", {}, {}),
    ("sysgym/ABR-v0", "robust_mpc", {"traces": "train"}, {"traces": "test"}),
    ("sysgym/CC-v0", "aimd", {"traces": "synthetic", "link_set": "train"}, {"traces": "synthetic", "link_set": "test"}),
    ("sysgym/CC-Discrete-v0", "aimd", {"traces": "synthetic", "link_set": "train"},
     {"traces": "synthetic", "link_set": "test"}),
    ("sysgym/Appointments-P1-v0", "p1_rule", {}, {}),
    ("sysgym/Appointments-P2-v0", "p2_rule", {}, {}),
    ("sysgym/Appointments-P3-v1", "p3_rule", {}, {}),
]


def best_agreement(samples, predicted: np.ndarray) -> float:
    """Share of states whose predicted best action (by total) is also the truly best one."""
    hits, n = 0, 0
    for s in range(samples.num_states):
        rows = np.flatnonzero(samples.state == s)
        if len(rows) < 2:
            continue
        truth = samples.returns[rows].sum(axis=1)
        guess = predicted[rows].sum(axis=1)
        hits += truth[np.argmax(guess)] >= truth.max() - 1e-9
        n += 1
    return hits / n if n else float("nan")


def _per_component(components: tuple[str, ...], errors: np.ndarray) -> str:
    return " / ".join(f"{c}={v:.4f}" for c, v in zip(components, errors.mean(axis=0)))


def main(quick_mode: bool = False, argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--states", type=int, default=3000)
    parser.add_argument("--test-states", type=int, default=500)
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv if argv is not None else (["--quick"] if quick_mode else None))
    if args.quick:
        args.states, args.test_states, args.epochs = 200, 50, 10
    torch.set_num_threads(1)
    rows = []
    for env_id, name, train_kwargs, test_kwargs in SETUPS:
        policy = heuristics_for(env_id)[name]
        start = time.perf_counter()
        box, train = CrystalBox.fit(policy, env_id, env_kwargs=train_kwargs, states=args.states, num_envs=64,
                                    seed=args.seed, predictor={"epochs": args.epochs, "finetune_epochs": 10})
        fit_s = time.perf_counter() - start
        test = collect(policy, env_id, env_kwargs=test_kwargs, states=args.test_states, num_envs=64,
                       seed=args.seed + 10_000, queries=box.queries)
        mean, _ = box.predict_samples(test)
        err = squared_errors(test.returns, mean, box.normaliser)
        times = []
        inputs = test.inputs(box.features)
        for s in range(min(test.num_states, 200)):
            actions = box.queries.every_action(None if test.mask is None else test.mask[s])
            start = time.perf_counter()
            box.predict(inputs[s:s + 1], actions)
            times.append(time.perf_counter() - start)
        rows.append([env_id, name, f"{train.num_states} ({len(train)})", f"{fit_s:.0f}",
                     _per_component(box.components, err[test.factual]), _per_component(box.components, err[~test.factual]),
                     f"{best_agreement(test, mean):.2f}", f"{np.median(times) * 1e3:.2f}"])
        print(f"  {env_id}: done", flush=True)
    print(format_table(rows, ["env", "policy", "train states (queries)", "fit s", "MSE factual",
                              "MSE counterfactual", "best action right", "query ms"]))
    env_id, name, kwargs, _ = SETUPS[2]
    box, _ = CrystalBox.fit(heuristics_for(env_id)[name], env_id, env_kwargs=kwargs, states=args.states // 4,
                            num_envs=64, predictor={"epochs": args.epochs})
    import gymnasium as gym

    env = gym.make(env_id, traces="test")
    policy = heuristics_for(env_id)[name](env)
    obs, info = env.reset(seed=1)
    for _ in range(12):
        obs, _, _, _, info = env.step(policy.act(obs, info))
    print("\nExample (ABR, robustMPC on a test trace, chunk 12; (pi) = robustMPC's choice):\n")
    print(explain(box, (obs, info), chosen=policy.act(obs, info)).table())


if __name__ == "__main__":
    main()
