"""Held-out scoring: which input files a case plays and which trained a policy.

A case names the input set its episodes play as its ``split`` (ABR: the trace folder). A policy's
training inputs are read from what it ships with: a reference agent's metadata
(``training_data``, written by ``benchmarks/train_reference.py``) or a PPO checkpoint's training
env kwargs (when those files are here). Files are compared by content (sha256), so a renamed or
copied training trace is still found. A case sharing any file with the policy's training data is
*flagged*: the scorecard shows it with a label and leaves it out of every aggregate, and
``train_reference`` does not record it as a score.

Families whose inputs are drawn from seeds (DeepRM, DAG generators, CC links, appointments) are
held out by their seeds (:data:`sysgym.benchmark.suites.EVAL_SEED`) and have no split.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import Any

from .suites import Case, External, Shipped, _files


@functools.lru_cache(maxsize=64)
def _digests(item: Shipped | External, stamp: tuple) -> frozenset[str]:
    return frozenset(hashlib.sha256(path.read_bytes()).hexdigest() for _, path in _files(item))


def file_digests(item: Shipped | External) -> frozenset[str]:
    """sha256 of every file of an input (a file or a folder, hidden files excluded)."""
    stamp = tuple((name, p.stat().st_size, p.stat().st_mtime_ns) for name, p in _files(item))
    return _digests(item, stamp)


def split_label(case: Case) -> str:
    """The name of the case's input set (``"abr/test"``, ``"traces/norway_train"``), or ''."""
    return "" if case.split is None else case.split.name


def training_inputs(env_id: str, env_kwargs: dict[str, Any]) -> Shipped | External | None:
    """The input files a policy trained with ``env_kwargs`` saw, when they are files here
    (ABR: its ``traces``, a shipped set name or a path); None when it trained on seeded inputs."""
    traces = env_kwargs.get("traces")
    if not (str(env_id).startswith("sysgym/ABR") and isinstance(traces, str)):
        return None
    from sysgym.envs.abr.config import SHIPPED_SETS

    if traces in SHIPPED_SETS:
        return Shipped(f"abr/{traces}")
    path = Path(traces)
    return External(str(path.parent), path.name) if path.exists() else None


def training_data(env_id: str, env_kwargs: dict[str, Any]) -> dict[str, Any]:
    """The ``training_data`` record of a reference agent: its input files' name, count and sha256s
    (``{"inputs": "seeded"}`` when it trained on generated inputs only)."""
    item = training_inputs(env_id, env_kwargs)
    if item is None:
        return {"inputs": "seeded"}
    digests = sorted(file_digests(item))
    return {"inputs": item.name, "files": len(digests), "sha256": digests}


def _policy_training_data(spec: Any, env_id: str) -> dict[str, Any] | None:
    kind = getattr(spec, "kind", "")
    if kind == "reference":
        from sysgym import reference

        try:
            meta = reference.metadata(env_id)
        except reference.NoReferenceAgent:
            return None
        if meta.get("training_data") is not None:
            return meta["training_data"]
        config = meta.get("training", {}).get("config") if isinstance(meta.get("training"), dict) else None
        kwargs = config.get("env_kwargs") if isinstance(config, dict) else None   # older metadata
        return training_data(meta["env_id"], kwargs) if isinstance(kwargs, dict) else None
    if kind == "checkpoint":
        from .policies import _ppo_payload

        payload = _ppo_payload(spec.target)
        kwargs = payload["config"].get("env_kwargs") or {}
        return training_data(payload["env_id"], kwargs) if isinstance(kwargs, dict) else None
    return None          # heuristics train on nothing; other policies do not say


def overlap(spec: Any, case: Case, env_id: str) -> str:
    """Why ``case`` is not held out for the policy ``spec`` playing it on ``env_id`` ('' if it is)."""
    if case.split is None:
        return ""
    data = _policy_training_data(spec, env_id)
    trained = set(data.get("sha256") or ()) if isinstance(data, dict) else set()
    common = file_digests(case.split) & trained
    if not common:
        return ""
    total = len(file_digests(case.split))
    return f"trained on {len(common)} of its {total} inputs ({data.get('inputs', '?')})"
