"""What ``sysgym explain`` does (its parser lives in :mod:`sysgym.cli`).

``sysgym explain --policy runs/X | heuristic:NAME --env ID --episodes N --out DIR`` fits a
CrystalBox explainer on N episodes of the policy (or loads one with ``--model``), then plays one
fresh episode (seed + 10,000) and explains ``--states`` of its states, evenly spaced after the
warm-up. It writes to DIR:

* ``crystalbox.pt`` — the explainer (plain data; ``CrystalBox.load``);
* ``explanations.txt`` — one table per explained state, with "why A and not B";
* ``state_<step>.png`` — the bar chart of each state;
* ``explanations.json`` — the same numbers as plain data.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from sysgym.agents.heuristics import heuristics_for
from sysgym.envs.validate import integer
from sysgym.overrides import split_overrides

from .collect import build_policy, owned_env
from .explain import explain
from .model import CrystalBox

WARMUP, EVERY = 5, 5


def resolve_policy(spec: str, env_id: str | None) -> tuple[Any, str, dict[str, Any]]:
    """(policy or factory, env ID, env kwargs) for ``heuristic:NAME`` or a PPO checkpoint path."""
    if spec.startswith("heuristic:"):
        name = spec.split(":", 1)[1]
        if env_id is None:
            raise ValueError("a heuristic policy needs --env")
        table = heuristics_for(env_id)
        if name not in table:
            raise ValueError(f"unknown heuristic {name!r} for {env_id}; this family has: "
                             f"{', '.join(sorted(table)) or 'none'}")
        return table[name], env_id, {}
    path = Path(spec)
    if not path.exists():
        raise ValueError(f"--policy {spec!r}: not a checkpoint file or folder, nor heuristic:NAME")
    from sysgym.agents.ppo.checkpoint import load_checkpoint, policy_from_checkpoint

    payload = load_checkpoint(path)
    env_id = env_id or payload.get("env_id")
    if env_id is None:
        raise ValueError(f"{payload['path']}: checkpoint has no env ID; pass --env")
    kwargs = dict(payload["config"].get("env_kwargs") or {})
    return policy_from_checkpoint(payload, deterministic=True), env_id, kwargs


def _env_overrides(items: list[str]) -> dict[str, Any]:
    wrong = [item for item in items if not item.startswith("env.")]
    if wrong:
        raise ValueError(f"explain takes only env.<kwarg>=value overrides, got {wrong}")
    return split_overrides(items)[1]


def run_explain(args: argparse.Namespace) -> int:
    episodes = integer("--episodes", args.episodes, 1, 10**7)
    count = integer("--states", args.states, 1, 10_000)
    policy, env_id, env_kwargs = resolve_policy(args.policy, args.env)
    env_kwargs = {**env_kwargs, **_env_overrides(list(args.overrides or []))}
    out = Path(args.out) if args.out else Path("runs") / f"explain_{env_id.split('/')[-1]}"

    if args.model:
        box = CrystalBox.load(args.model, policy=policy if hasattr(policy, "embed") else None)
        print(f"loaded {args.model}", file=sys.stderr)
    else:
        box, samples = CrystalBox.fit(policy, env_id, env_kwargs=env_kwargs, states=None, episodes=episodes,
                                      num_envs=min(episodes, 64), warmup=WARMUP, every=EVERY, seed=args.seed,
                                      predictor={"hidden": args.hidden, "epochs": args.epochs}, progress=True)
        box.meta["policy_name"] = args.policy
        print(f"trained on {samples.num_states} states ({len(samples)} queries) from {samples.info['episodes']} "
              f"episodes", file=sys.stderr)
    out.mkdir(parents=True, exist_ok=True)
    model_path = box.save(out / "crystalbox.pt")

    explained = _explain_episode(box, policy, env_id, env_kwargs, args.seed + 10_000, count)
    texts, records = [], []
    for step, explanation in explained:
        explanation.title = f"{env_id}, {args.policy}: step {step}"
        explanation.plot(out / f"state_{step:04d}.png")
        texts.append(explanation.table())
        records.append({"step": step, **explanation.to_dict()})
    (out / "explanations.txt").write_text("\n\n".join(texts) + "\n")
    (out / "explanations.json").write_text(json.dumps(records, indent=1) + "\n")
    print("\n\n".join(texts))
    print(f"\nexplainer: {model_path}\nexplanations: {out}/explanations.txt, {out}/explanations.json, "
          f"{len(records)} charts {out}/state_*.png", file=sys.stderr)
    return 0


def _explain_episode(box: CrystalBox, policy: Any, env_id: str, env_kwargs: dict[str, Any], seed: int,
                     count: int) -> list[tuple[int, Any]]:
    """Play one episode with the policy; explain ``count`` states spread over it after the warm-up."""
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
    return [(k, explain(box, visited[k][:2], chosen=visited[k][2])) for k in picks]
