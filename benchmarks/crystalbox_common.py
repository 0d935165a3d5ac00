"""Shared set-up of the CrystalBox benchmarks: policies, held-out inputs, evaluation data.

Families with input traces (the paper's two): ABR (``sysgym/ABR-v0``; trained on the shipped
``traces="train"`` set) and CC (``sysgym/CC-v0`` over ``traces="synthetic"``; trained on
``link_set="train"``). Held out *for real*:

* ABR ``test``: the shipped test traces; ``fcc`` / ``norway``: Pensieve's FCC and Norway HSDPA
  folders when ``../shared/data/abr`` (or ``$SYSGYM_ABR_DATA``) is present. The evaluation env
  holds the held-out traces first and the training traces after them; episodes only ever play
  held-out traces (``reset(options={"trace": ...})``), while the sampling baselines draw their
  future inputs from the training traces only.
* CC ``test``: ``link_set="test"``: other links and the trace split's held-out traces; the
  samplers draw from the training split of the same table.

Policies: a PPO agent (a checkpoint, or trained here for ``ppo_steps`` steps) and the family's
heuristic (robustMPC for ABR, AIMD for CC).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sysgym.agents.crystalbox import (
    CrystalBox,
    DistributionAwareSampler,
    FutureInputs,
    NaiveSampler,
    collect,
)
from sysgym.agents.heuristics import heuristics_for

DATA = Path(os.environ.get("SYSGYM_ABR_DATA", Path(__file__).resolve().parents[2] / "shared" / "data" / "abr"))
RUNS = Path("runs") / "crystalbox"


@dataclass
class Family:
    name: str
    kind: str          # "abr" or "cc": held-out sets and alert thresholds
    env_id: str
    train_kwargs: dict[str, Any]
    heuristic: str
    ppo_overrides: dict[str, Any] = field(default_factory=dict)
    ppo_steps: int = 300_000


# PPO settings that learn ABR: with the defaults PPO settles on the lowest level within a few
# hundred thousand steps (a policy that always plays level 0 has returns that do not depend on
# the trace: every method is exact and every MSE is 0, as in the stale run this replaced); with
# these it beats robustMPC's QoE on the test traces at 300k steps (1.09 vs 1.04 per chunk, one seed).
ABR_PPO = {"normalize_reward": True, "normalize_obs": True, "ent_coef": 0.05, "lr": 1e-3, "gamma": 0.9}
# "cc-rates": CC whose observation adds the flow's absolute send and receive rates (scaled by
# max_rate) and loss rate to Aurora's three ratios, so that the absolute throughput is observable.
RATE_FEATURES = ("latency_gradient", "latency_ratio", "send_ratio", "send_rate", "recv_rate", "loss_rate")
FAMILIES = {
    "abr": Family("abr", "abr", "sysgym/ABR-v0", {"traces": "train"}, "robust_mpc", ABR_PPO),
    "cc": Family("cc", "cc", "sysgym/CC-v0", {"traces": "synthetic", "link_set": "train"}, "aimd", ppo_steps=150_000),
    "cc-rates": Family("cc-rates", "cc", "sysgym/CC-v0",
                       {"traces": "synthetic", "link_set": "train", "features": RATE_FEATURES}, "aimd",
                       ppo_steps=150_000),
}


@dataclass
class HeldOut:
    """An evaluation env (kwargs), how its episodes pick inputs, and the samplers' training pool."""

    name: str
    env_kwargs: dict[str, Any]
    reset_options: Any
    pool: np.ndarray | None
    ranges: str = ""   # which inputs train and which test, printed beside the results


def abr_train_traces() -> list[Any]:
    from sysgym.envs.bandwidth import load_traces
    from sysgym.traces import trace_path

    return list(load_traces(trace_path("abr", "train")))


def held_out_sets(family: Family, limit: int | None = None) -> list[HeldOut]:
    """The held-out input sets of a family (ABR: up to ``limit`` traces of each)."""
    if family.kind == "cc":
        return [HeldOut("test", {**family.train_kwargs, "link_set": "test"}, None, None, cc_ranges(family))]
    from sysgym.envs.bandwidth import load_traces
    from sysgym.traces import trace_path

    train = abr_train_traces()
    sets = [("test", list(load_traces(trace_path("abr", "test"))))]
    for name, folder in (("fcc", "fcc_train"), ("norway", "norway_train")):
        path = DATA / "traces" / folder
        if path.is_dir():
            files = sorted(path.iterdir())
            if name == "fcc":   # Pensieve's FCC folder also holds Norway logs; keep the FCC ones
                files = [f for f in files if f.name.startswith("trace_")]
            sets.append((name, list(load_traces(files[: limit or len(files)]))))
    out = []
    for name, held in sets:
        held = held[: limit or len(held)]
        n = len(held)
        shared = {_trace_key(t) for t in held} & {_trace_key(t) for t in train}
        if shared:
            raise ValueError(f"held-out set {name} shares {len(shared)} trace(s) with the training traces")
        ranges = (f"episodes play {n} held-out traces ({_where(held[0])} .. {held[-1].name}); the explainer, "
                  f"PPO and the samplers' pool use the {len(train)} training traces ({_where(train[0])} .. "
                  f"{train[-1].name}); no trace in common (compared by content)")
        out.append(HeldOut(name, {"traces": held + train},
                           lambda rng, num_envs, n=n: {"trace": rng.integers(0, n, size=num_envs)},
                           np.arange(n, n + len(train)), ranges))
    return out


def _where(trace: Any) -> str:
    path = Path(str(trace.source))
    return f"{path.parent.parent.name}/{path.parent.name}/{path.name}" if path.name else trace.name


def _trace_key(trace: Any) -> tuple[bytes, bytes]:
    return np.asarray(trace.time_s).tobytes(), np.asarray(trace.mbps).tobytes()


def cc_ranges(family: Family) -> str:
    """Which synthetic traces and links CC trains and tests on (the env's own split)."""
    import gymnasium as gym

    splits = {}
    for split in ("train", "test"):
        env = gym.make(family.env_id, **{**family.train_kwargs, "link_set": split})
        splits[split] = sorted(int(k) for k in env.unwrapped.config.trace_table.choices)
        env.close()
    if set(splits["train"]) & set(splits["test"]):
        raise ValueError("the CC train and test trace splits overlap")
    return (f"episodes play the test link set on synthetic traces {splits['test']}; the explainer, PPO and "
            f"the samplers' pool use the train link set on traces {splits['train']} (disjoint)")


def ppo_policy(env_id: str, env_kwargs: dict[str, Any], overrides: dict[str, Any], steps: int, seed: int,
               log: Any = print) -> Any:
    """A PPO policy trained on ``env_id`` with ``env_kwargs`` (the training inputs only) for ``steps``
    steps, cached under ``runs/crystalbox/`` by its settings: a later run with the same settings
    loads it once its training has finished (``done.json``), waiting for one in progress elsewhere."""
    from sysgym.agents.ppo import load_policy, train

    key = json.dumps([env_id, env_kwargs, overrides, steps, seed], sort_keys=True, default=str)
    out = RUNS / f"ppo_{env_id.split('/')[-1]}_{steps}_s{seed}_{hashlib.sha1(key.encode()).hexdigest()[:8]}"
    done, busy = out / "done.json", out / "training.pid"
    while busy.is_file() and not done.is_file() and _alive(busy):
        time.sleep(10)   # another process is training this very agent
    if done.is_file():
        log(f"  PPO loaded from {out} ({steps} steps on {env_id} {env_kwargs})")
        return load_policy(out)
    out.mkdir(parents=True, exist_ok=True)
    busy.write_text(str(os.getpid()))
    start = time.perf_counter()
    policy, _ = train(env_id, steps=steps, out_dir=out, seed=seed, progress=False, tensorboard=False,
                      env_kwargs=dict(env_kwargs), **overrides)
    seconds = time.perf_counter() - start
    done.write_text(json.dumps({"steps": steps, "seconds": round(seconds)}) + "\n")
    busy.unlink(missing_ok=True)
    log(f"  PPO trained for {steps} steps on {env_id} {env_kwargs} in {seconds:.0f} s "
        f"(settings {overrides or 'default'}; {out})")
    return policy


def _alive(pid_file: Path) -> bool:
    try:
        os.kill(int(pid_file.read_text()), 0)
        return True
    except (ValueError, OSError):
        return False


def get_policy(family: Family, kind: str, ppo: str | None, ppo_steps: int | None, seed: int,
               log: Any = print) -> tuple[str, Any]:
    """(label, policy or factory): ``kind`` is "heuristic" or "ppo" (``ppo_steps`` None: the family's)."""
    if kind == "heuristic":
        return family.heuristic, heuristics_for(family.env_id)[family.heuristic]
    if kind != "ppo":
        raise ValueError(f"--policies takes heuristic and ppo, got {kind!r}")
    if ppo:
        from sysgym.agents.ppo import load_policy

        return "ppo", load_policy(ppo)
    return "ppo", ppo_policy(family.env_id, family.train_kwargs, family.ppo_overrides,
                             family.ppo_steps if ppo_steps is None else ppo_steps, seed, log)


def action_summary(samples: Any, discrete: bool) -> str:
    """How the policy acted at the sampled states: the share of each action (discrete) or the mean
    and spread of its action (continuous), flagged when one action takes over 95% of the states
    (then every method's returns are near-constant and fidelity says little)."""
    acts = np.asarray(samples.policy_action)
    if not discrete:
        flat = acts.reshape(len(acts), -1).astype(np.float64)
        return f"policy's action at these states: mean {flat.mean():+.3f}, std {flat.std():.3f}"
    values, counts = np.unique(acts.astype(np.int64), return_counts=True)
    share = counts / counts.sum()
    text = ", ".join(f"{v}: {s:.2f}" for v, s in zip(values, share))
    flag = " — DEGENERATE: one action at over 95% of the states" if share.max() > 0.95 else ""
    return f"policy's action shares at these states: {text}{flag}"


def fit_explainer(family: Family, policy: Any, states: int, epochs: int, seed: int) -> tuple[CrystalBox, float]:
    start = time.perf_counter()
    box, _ = CrystalBox.fit(policy, family.env_id, env_kwargs=dict(family.train_kwargs), states=states,
                            num_envs=64, seed=seed, predictor={"epochs": epochs, "patience": 15,
                                                               "finetune_epochs": 10})
    return box, time.perf_counter() - start


def evaluation_samples(family: Family, policy: Any, held: HeldOut, states: int, rollouts: int, k: int,
                       seed: int) -> Any:
    """Ground truth and the two samplers' estimates at ``states`` held-out states (all queries)."""
    import gymnasium as gym

    vec = gym.make_vec(family.env_id, num_envs=64, vectorization_mode="vector_entry_point",
                       autoreset_mode="Disabled", **held.env_kwargs)
    inputs = FutureInputs.from_env(vec, traces=held.pool)
    estimators = {"naive": NaiveSampler(inputs, rollouts=rollouts, seed=seed),
                  "distribution-aware": DistributionAwareSampler(inputs, k=k, rollouts=rollouts, seed=seed)}
    return collect(policy, vec, states=states, estimators=estimators, seed=seed + 1000,
                   reset_options=held.reset_options)


def add_crystalbox(box: CrystalBox, samples: Any) -> dict[str, np.ndarray]:
    """Every method's estimates on ``samples``, CrystalBox first."""
    mean, _ = box.predict_samples(samples)
    return {"crystalbox": mean, **samples.estimates}


def add_arguments(parser: Any) -> None:
    parser.add_argument("--quick", action="store_true", help="tiny budgets (a minute or two)")
    parser.add_argument("--families", default="abr,cc", help="comma list of abr, cc, cc-rates")
    parser.add_argument("--policies", default="heuristic,ppo", help="comma list of heuristic, ppo")
    parser.add_argument("--ppo-abr", default=None, help="PPO checkpoint for ABR (default: train one)")
    parser.add_argument("--ppo-cc", default=None, help="PPO checkpoint for CC (default: train one)")
    parser.add_argument("--ppo-steps", type=int, default=None,
                        help="PPO training steps (default: the family's, ABR 300k, CC 150k)")
    parser.add_argument("--train-states", type=int, default=4000, help="states the explainer is fitted on")
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--test-states", type=int, default=300, help="held-out states evaluated")
    parser.add_argument("--rollouts", type=int, default=10, help="rollouts per sampler estimate")
    parser.add_argument("--k", type=int, default=4, help="clusters of the distribution-aware sampler")
    parser.add_argument("--trace-limit", type=int, default=40, help="held-out ABR traces per set")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(RUNS), help="figures go here")
    parser.add_argument("--results", default=None, help="also write everything printed to this file "
                        "(rewritten after each table, so an interrupted run keeps what it finished)")


class Report:
    """What a benchmark prints, also kept in ``path`` (rewritten atomically after each part)."""

    def __init__(self, path: str | None):
        self.path = Path(path) if path else None
        self.parts: list[str] = []

    def __call__(self, text: str = "") -> None:
        print(text, flush=True)
        self.parts.append(text)
        if self.path is not None:
            from sysgym.agents.runs import atomic_write_text

            atomic_write_text(self.path, "\n".join(self.parts) + "\n")


def quick(args: Any) -> Any:
    if args.quick:
        args.ppo_steps = min(args.ppo_steps or 20_000, 20_000)
        args.train_states = min(args.train_states, 400)
        args.epochs = min(args.epochs, 30)
        args.test_states = min(args.test_states, 40)
        args.rollouts = min(args.rollouts, 3)
        args.trace_limit = min(args.trace_limit, 8)
    return args


def runs(args: Any, log: Any = print):
    """Yield (family, policy label, policy, explainer, fit seconds) for every requested pair."""
    for name in args.families.split(","):
        if name.strip() not in FAMILIES:
            raise ValueError(f"--families takes {', '.join(FAMILIES)}, got {name!r}")
        family = FAMILIES[name.strip()]
        for kind in args.policies.split(","):
            ppo = getattr(args, f"ppo_{family.name.replace('-', '_')}", None)
            label, policy = get_policy(family, kind.strip(), ppo, args.ppo_steps, args.seed, log)
            box, seconds = fit_explainer(family, policy, args.train_states, args.epochs, args.seed)
            yield family, label, policy, box, seconds
