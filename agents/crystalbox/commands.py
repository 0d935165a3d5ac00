"""What ``sysgym explain`` does (its parser lives in :mod:`sysgym.cli`).

``sysgym explain --policy SPEC --env ID --episodes N --out DIR`` fits a CrystalBox explainer on N
episodes of the policy (any form of :mod:`sysgym.agents.policy_specs`: a PPO checkpoint,
heuristic:NAME, oracle, reference, sb3:PATH.zip, rllib:DIR, module:factory), or loads one with
``--model``, then plays one fresh episode (seed + 10,000) and explains ``--states`` of its states,
evenly spaced after the warm-up. DIR is checked before any work (a non-empty folder needs
``--force``); env IDs read from a checkpoint or a model file must be registered sysgym IDs. Ctrl-C or SIGTERM stops it with exit
status 130 and one line saying what was kept (the explainer once fitted, the explanations done).
It writes to DIR (each file atomically):

* ``crystalbox.pt`` — the explainer (plain data; ``CrystalBox.load``);
* ``explanations.txt`` — one table per explained state, with "why A and not B";
* ``state_<step>.png`` — the bar chart of each state;
* ``explanations.json`` — the same numbers as plain data.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from sysgym.envs.registry import registered_id
from sysgym.envs.validate import integer
from sysgym.overrides import split_overrides

from ..runs import (
    INTERRUPTED_EXIT,
    StopRequest,
    atomic_write_text,
    interrupted_message,
    prepare_out_dir,
    stop_signals,
)
from .collect import build_policy, owned_env
from .explain import explain
from .model import CrystalBox

WARMUP, EVERY = 5, 5


def resolve_policy(spec: str, env_id: str | None,
                   overrides: dict[str, Any] | None = None) -> tuple[Any, str, dict[str, Any]]:
    """(policy or factory, env ID, env kwargs) for any policy spec of
    :mod:`sysgym.agents.policy_specs`; ``overrides`` are the env kwargs given on the command line."""
    from sysgym.agents.policy_specs import build, fit_kwargs, parse, ppo_payload, trained_env

    parsed = parse(spec)
    trained_id, trained_kwargs, _ = trained_env(parsed)
    if env_id is None:
        if trained_id is None:
            raise ValueError(f"--policy {parsed.label} does not name its env; pass --env")
        env_id = registered_id(trained_id, parsed.target)
    kwargs = fit_kwargs(parsed, env_id, {**trained_kwargs, **(overrides or {})})   # a DAG policy's padding
    factory = build(parsed, env_id, kwargs)
    if parsed.kind == "checkpoint" and ppo_payload(parsed.target)["config"].get("encoder") != "graph":
        from sysgym.agents.ppo.checkpoint import policy_from_checkpoint

        # one object for every env: a fitted explainer can reuse its embedding (CrystalBox.load)
        return policy_from_checkpoint(ppo_payload(parsed.target), deterministic=True), env_id, kwargs
    return factory, env_id, kwargs


def _env_overrides(items: list[str]) -> dict[str, Any]:
    wrong = [item for item in items if not item.startswith("env.")]
    if wrong:
        raise ValueError(f"explain takes only env.<kwarg>=value overrides, got {wrong}")
    return split_overrides(items)[1]


def run_explain(args: argparse.Namespace) -> int:
    episodes = integer("--episodes", args.episodes, 1, 10**7)
    count = integer("--states", args.states, 1, 10_000)
    policy, env_id, env_kwargs = resolve_policy(args.policy, args.env, _env_overrides(list(args.overrides or [])))
    box = None
    if args.model:
        box = CrystalBox.load(args.model, policy=policy if hasattr(policy, "embed") else None)
        fitted_on = box.meta.get("env_id")
        if fitted_on is not None and fitted_on != env_id:
            raise ValueError(f"{args.model}: this explainer was fitted on {fitted_on}, not {env_id}")
    out = prepare_out_dir(args.out or Path("runs") / f"explain_{env_id.split('/')[-1]}",
                          force=getattr(args, "force", False))
    done = Done(out)
    with stop_signals() as stop:
        try:
            return _run(args, box, policy, env_id, env_kwargs, episodes, count, done, stop)
        except KeyboardInterrupt:
            print(interrupted_message("explain", done.kept()), file=sys.stderr)
            return INTERRUPTED_EXIT


class Done:
    """What ``sysgym explain`` has finished so far (for the line printed on an interrupt)."""

    def __init__(self, out: Path):
        self.out = out
        self.model: Path | None = None
        self.records: list[dict[str, Any]] = []
        self.texts: list[str] = []

    def write(self) -> None:
        """Write the explanations finished so far (atomically)."""
        atomic_write_text(self.out / "explanations.txt", "\n\n".join(self.texts) + "\n")
        atomic_write_text(self.out / "explanations.json", json.dumps(self.records, indent=1) + "\n")

    def kept(self) -> str:
        if self.model is None:
            return "nothing kept (the explainer was still being fitted)"
        if self.records:
            self.write()
        return (f"kept the explainer {self.model} and {len(self.records)} explained state(s) in "
                f"{self.out}/explanations.txt")


def _run(args: argparse.Namespace, box: CrystalBox | None, policy: Any, env_id: str, env_kwargs: dict[str, Any],
         episodes: int, count: int, done: Done, stop: StopRequest) -> int:
    out = done.out
    if box is not None:
        print(f"loaded {args.model}", file=sys.stderr)
    else:
        box, samples = CrystalBox.fit(policy, env_id, env_kwargs=env_kwargs, states=None, episodes=episodes,
                                      num_envs=min(episodes, 64), warmup=WARMUP, every=EVERY, seed=args.seed,
                                      predictor={"hidden": args.hidden, "epochs": args.epochs}, progress=True)
        box.meta["policy_name"] = args.policy
        print(f"trained on {samples.num_states} states ({len(samples)} queries) from {samples.info['episodes']} "
              f"episodes", file=sys.stderr)
    done.model = box.save(out / "crystalbox.pt")
    stop.check()  # a stop swallowed while fitting (e.g. inside a library callback) ends it here

    explained = _explain_episode(box, policy, env_id, env_kwargs, args.seed + 10_000, count)
    while True:
        # one state at a time: a first stop signal lets it finish (a KeyboardInterrupt raised inside
        # matplotlib's weakref callbacks is printed as a traceback and swallowed), then stops here
        with stop.deferred("sysgym explain: stop requested; finishing the state being explained "
                           "(signal again to stop now)"):
            item = next(explained, None)
            if item is None:
                break
            step, explanation = item
            explanation.title = f"{env_id}, {args.policy}: step {step}"
            explanation.plot(out / f"state_{step:04d}.png")
            done.texts.append(explanation.table())
            done.records.append({"step": step, **explanation.to_dict()})
        stop.check()
    done.write()
    print("\n\n".join(done.texts))
    print(f"\nexplainer: {done.model}\nexplanations: {out}/explanations.txt, {out}/explanations.json, "
          f"{len(done.records)} charts {out}/state_*.png", file=sys.stderr)
    return 0


def _explain_episode(box: CrystalBox, policy: Any, env_id: str, env_kwargs: dict[str, Any], seed: int,
                     count: int) -> Iterator[tuple[int, Any]]:
    """Play one episode with the policy; explain ``count`` states spread over it after the warm-up
    (one at a time, as they are asked for)."""
    with owned_env(env_id, 1, env_kwargs) as vec:
        pi = build_policy(policy, vec)
        if hasattr(pi, "reset"):
            pi.reset()
        obs, info = vec.reset(seed=seed)
        visited = []
        for _ in range(100_000):
            action = np.asarray(pi.act(obs, info))
            one_obs = {k: v[0] for k, v in obs.items()} if isinstance(obs, dict) else obs[0]
            one_info = {"action_mask": info["action_mask"][0]} if "action_mask" in info else {}
            visited.append((one_obs, one_info, action[0]))
            obs, _, terminated, truncated, info = vec.step(action)
            if terminated[0] or truncated[0]:
                break
    steps = list(range(min(WARMUP, len(visited) - 1), len(visited)))
    picks = sorted({steps[int(k)] for k in np.linspace(0, len(steps) - 1, min(count, len(steps)))})
    for k in picks:
        yield k, explain(box, visited[k][:2], chosen=visited[k][2])
