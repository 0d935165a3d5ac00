"""Distilled students as policies (``act(obs, info)``, single or batched) and their JSON files.

The action mask is always respected: when the model's choice is masked, the policy takes the
next action in the node's (or rule's) order of preference that the mask allows, and counts it in
``fallbacks`` (out of ``decisions``). A model file is JSON text only (format ``sysgym-distill/1``):
the structure, names, observation shape and metadata; :func:`load_student` checks every field and
index and raises ``ValueError`` naming the file and the field, so no file can crash a policy.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from sysgym.agents.runs import atomic_replace, atomic_write_text
from sysgym.agents.serialization import check_file_size, load_json_text
from sysgym.envs.registry import registered_id

from . import export
from .features import Layout, as_layout, flatten, layout_size
from .rules import FORMS, Rule
from .tree import Tree

FORMAT = "sysgym-distill/1"


class DistilledPolicy:
    """Common plumbing of :class:`TreePolicy` and :class:`RulePolicy`."""

    kind: ClassVar[str]

    def __init__(self, model: Tree | Rule, feature_names: Any, action_names: Any,
                 observation: Layout | tuple[int, ...], meta: dict[str, Any] | None = None):
        self.model = model
        self.feature_names = tuple(str(f) for f in feature_names)
        self.action_names = tuple(str(a) for a in action_names)
        self.observation: Layout = as_layout(observation)
        self.meta = dict(meta or {})
        if layout_size(self.observation) != len(self.feature_names):
            raise ValueError(f"{len(self.feature_names)} feature names for observations of layout "
                             f"{self.observation}")
        if len(self.action_names) != self.n_actions:
            raise ValueError(f"{len(self.action_names)} action names for {self.n_actions} actions")
        self.decisions = 0
        self.fallbacks = 0

    @property
    def n_actions(self) -> int:
        return self.model.n_actions

    def act(self, obs: Any, info: dict[str, Any] | None = None) -> int | np.ndarray:
        """The model's action for ``obs`` (or one per row of a batch), within ``info["action_mask"]``."""
        X, batched = flatten(obs, self.observation)
        return self._choose(X, info, batched)

    def act_flat(self, X: np.ndarray, info: dict[str, Any] | None = None) -> np.ndarray:
        """Actions for flat feature rows ``X`` (n, F), within ``info["action_mask"]`` (n, A)."""
        return self._choose(np.asarray(X, dtype=np.float32).reshape(len(X), -1), info, True)

    def _choose(self, X: np.ndarray, info: dict[str, Any] | None, batched: bool) -> int | np.ndarray:
        mask = None if not info or info.get("action_mask") is None else np.asarray(info["action_mask"]).astype(bool)
        if mask is not None and mask.size != len(X) * self.n_actions:
            raise ValueError(f"action_mask does not match {len(X)} observation(s) of {self.n_actions} actions")
        if not batched:  # one decision: plain Python is faster than numpy here
            order = self._order_one(X[0].tolist())  # float32 -> exact Python floats
            action = order[0] if mask is None else next((a for a in order if mask.flat[a]), order[0])
            self.fallbacks += int(action != order[0])
            self.decisions += 1
            return int(action)
        order = self.model.preferences(X)
        if mask is None:
            actions = order[:, 0]
        else:
            mask = mask.reshape(len(X), -1)
            allowed = np.take_along_axis(mask, order, axis=1)
            first = np.argmax(allowed, axis=1)   # 0 when nothing is allowed: keep the model's choice
            actions = order[np.arange(len(X)), first]
            self.fallbacks += int(np.count_nonzero(first))
        self.decisions += len(X)
        return actions

    __call__ = act

    def reset(self) -> None:
        """Stateless between episodes."""

    def _order_one(self, x: list[float]) -> list[int]:
        return self.model.preferences(np.asarray([x]))[0].tolist()

    def predict(self, X: np.ndarray) -> np.ndarray:
        """The model's unmasked choice for flat feature rows ``X`` (n, F)."""
        return self.model.predict(X)

    # ------------------------------------------------------------------ exports
    def text(self) -> str:
        raise NotImplementedError

    def dot(self) -> str:
        raise NotImplementedError

    def figure(self):
        raise NotImplementedError

    def save(self, path: str | Path) -> Path:
        """Write the JSON model file atomically (loads back with :func:`load_student`)."""
        data = {"format": FORMAT, "kind": self.kind, "feature_names": list(self.feature_names),
                "action_names": list(self.action_names),
                "observation": [[k, list(shape)] for k, shape in self.observation],
                "model": self._model_data(), "meta": self.meta}
        return atomic_write_text(path, json.dumps(data, indent=1, allow_nan=False) + "\n")

    @staticmethod
    def load(path: str | Path) -> DistilledPolicy:
        """Read a model file (:func:`load_student`)."""
        return load_student(path)

    def save_all(self, out_dir: str | Path, stem: str | None = None) -> dict[str, Path]:
        """``<stem>.txt``, ``.dot``, ``.png`` and ``.json`` in ``out_dir`` (stem: tree / rule), each
        written atomically."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        stem = stem or self.kind
        paths = {"txt": out / f"{stem}.txt", "dot": out / f"{stem}.dot", "png": out / f"{stem}.png",
                 "json": out / f"{stem}.json"}
        atomic_write_text(paths["txt"], self.text())
        atomic_write_text(paths["dot"], self.dot())
        figure = self.figure()
        atomic_replace(paths["png"], lambda tmp: figure.savefig(tmp, format="png", dpi=120))
        self.save(paths["json"])
        return paths

    def _model_data(self) -> dict[str, Any]:
        raise NotImplementedError

    def size(self) -> dict[str, int]:
        return self.model.size()


class TreePolicy(DistilledPolicy):
    """A decision tree acting as a policy."""

    kind = "tree"

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        t = self.model
        self._walk = (t.feature.tolist(), t.threshold.tolist(), t.left.tolist(), t.right.tolist(), t.order.tolist())

    def _order_one(self, x: list[float]) -> list[int]:
        feature, threshold, left, right, order = self._walk
        n = 0
        while feature[n] >= 0:
            n = left[n] if x[feature[n]] <= threshold[n] else right[n]
        return order[n]

    def text(self) -> str:
        return export.tree_text(self.model, self.feature_names, self.action_names)

    def dot(self) -> str:
        return export.tree_dot(self.model, self.feature_names, self.action_names)

    def figure(self):
        return export.tree_figure(self.model, self.feature_names, self.action_names)

    def _model_data(self) -> dict[str, Any]:
        t = self.model
        return {"feature": t.feature.tolist(), "threshold": t.threshold.tolist(), "left": t.left.tolist(),
                "right": t.right.tolist(), "action": t.action.tolist(), "order": t.order.tolist(),
                "cost": t.cost.tolist(), "weight": t.weight.tolist(), "boolean": t.boolean.tolist()}


class RulePolicy(DistilledPolicy):
    """A Boolean rule acting as a policy."""

    kind = "rule"

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        r = self.model
        rest = [a for a in range(r.n_actions) if a not in (r.then_action, r.else_action)]
        self._orders = ([r.then_action, r.else_action, *rest], [r.else_action, r.then_action, *rest])

    def _order_one(self, x: list[float]) -> list[int]:
        holds = any(all((x[f] > t) if greater else (x[f] <= t) for f, t, greater in term) for term in self.model.terms)
        return self._orders[0] if holds else self._orders[1]

    def text(self) -> str:
        return export.rule_text(self.model, self.feature_names, self.action_names)

    def dot(self) -> str:
        return export.rule_dot(self.model, self.feature_names, self.action_names)

    def figure(self):
        return export.rule_figure(self.model, self.feature_names, self.action_names)

    def _model_data(self) -> dict[str, Any]:
        r = self.model
        return {"terms": [[[f, t, g] for f, t, g in term] for term in r.terms], "then_action": r.then_action,
                "else_action": r.else_action, "n_actions": r.n_actions, "form": r.form,
                "boolean": r.boolean.tolist(), "cost": r.cost if math.isfinite(r.cost) else None}


def policy_for(model: Tree | Rule, feature_names: Any, action_names: Any, observation: Any,
               meta: dict[str, Any] | None = None) -> DistilledPolicy:
    """The policy class that runs ``model`` (``observation``: a layout or a plain shape)."""
    cls = TreePolicy if isinstance(model, Tree) else RulePolicy
    return cls(model, feature_names, action_names, observation, meta)


# ---------------------------------------------------------------------- loading
class _Reader:
    """Field access that raises ``ValueError("<file>: <field>: ...")``."""

    def __init__(self, path: Path):
        self.path = path

    def fail(self, field: str, why: str) -> ValueError:
        return ValueError(f"{self.path}: {field}: {why}")

    def get(self, data: Any, key: str, field: str) -> Any:
        if not isinstance(data, dict) or key not in data:
            raise self.fail(field, "missing")
        return data[key]

    def ints(self, value: Any, field: str, lo: int, hi: int, shape: tuple[int, ...] | None = None) -> np.ndarray:
        arr = self.array(value, field, shape)
        if arr.size and (arr.dtype.kind not in "iu" or arr.min() < lo or arr.max() > hi):
            raise self.fail(field, f"must hold integers in [{lo}, {hi}]")
        return arr.astype(np.int64)

    def floats(self, value: Any, field: str, shape: tuple[int, ...] | None = None) -> np.ndarray:
        arr = self.array(value, field, shape)
        if arr.size and (arr.dtype.kind not in "iuf" or not np.all(np.isfinite(arr))):
            raise self.fail(field, "must hold finite numbers")
        return arr.astype(np.float64)

    def bools(self, value: Any, field: str, n: int) -> np.ndarray:
        if not isinstance(value, list) or len(value) != n or not all(isinstance(v, bool) for v in value):
            raise self.fail(field, f"must be a list of {n} booleans")
        return np.array(value, dtype=bool)

    def array(self, value: Any, field: str, shape: tuple[int, ...] | None) -> np.ndarray:
        try:
            arr = np.array(value)
        except (ValueError, TypeError):
            raise self.fail(field, "not a regular array") from None
        if arr.dtype == object or arr.dtype.kind in "bUS" or (shape is not None and arr.shape != shape):
            raise self.fail(field, f"must be a numeric array of shape {shape}, got {arr.shape} {arr.dtype}")
        return arr


def load_student(path: str | Path) -> TreePolicy | RulePolicy:
    """Read a model file written by :meth:`DistilledPolicy.save` (every field checked)."""
    path = Path(path)
    if path.is_dir():
        found = [p for p in (path / "tree.json", path / "rule.json") if p.is_file()]
        if not found:
            raise FileNotFoundError(f"{path}: no tree.json or rule.json in this folder")
        path = found[0]
    if not path.is_file():
        raise FileNotFoundError(f"distilled model not found: {path}")
    check_file_size(path, "distilled model file")
    data = load_json_text(path.read_bytes(), f"{path}: not a JSON model file")
    r = _Reader(path)
    if r.get(data, "format", "format") != FORMAT:
        raise r.fail("format", f"expected {FORMAT!r}, got {data.get('format')!r}")
    kind = r.get(data, "kind", "kind")
    features = r.get(data, "feature_names", "feature_names")
    actions = r.get(data, "action_names", "action_names")
    for field, names in (("feature_names", features), ("action_names", actions)):
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            raise r.fail(field, "must be a non-empty list of strings")
    layout = _read_layout(r, r.get(data, "observation", "observation"))
    if layout_size(layout) != len(features):
        raise r.fail("observation", f"{layout} does not hold {len(features)} features")
    meta = data.get("meta", {})
    if not isinstance(meta, dict):
        raise r.fail("meta", "must be an object")
    if meta.get("env_id") is not None:  # whoever makes this env from the file must not import code
        registered_id(meta["env_id"], f"{path}: meta.env_id")
    model = r.get(data, "model", "model")
    f, a = len(features), len(actions)
    if kind == "tree":
        tree = _read_tree(r, model, f, a)
        return TreePolicy(tree, features, actions, layout, meta)
    if kind == "rule":
        return RulePolicy(_read_rule(r, model, f, a), features, actions, layout, meta)
    raise r.fail("kind", f"must be 'tree' or 'rule', got {kind!r}")


def _read_layout(r: _Reader, value: Any) -> Layout:
    entries = value if isinstance(value, list) and value else None
    out = []
    for i, entry in enumerate(entries or [None]):
        ok = isinstance(entry, list) and len(entry) == 2 and (entry[0] is None or isinstance(entry[0], str)) \
            and isinstance(entry[1], list) and all(isinstance(d, int) and not isinstance(d, bool) and 1 <= d <= 2**31
                                                   for d in entry[1])
        if not ok or (entry[0] is None) != (len(entries) == 1 and entries[0][0] is None):
            raise r.fail(f"observation[{i}]", "must be [null, shape] alone, or [key, shape] per dict entry")
        out.append((entry[0], tuple(entry[1])))
    return tuple(out)


def _read_tree(r: _Reader, m: Any, f: int, a: int) -> Tree:
    feature = r.ints(r.get(m, "feature", "model.feature"), "model.feature", -1, f - 1)
    n = len(feature) if feature.ndim == 1 else 0
    if n == 0:
        raise r.fail("model.feature", "must be a non-empty list")
    get = lambda key: r.get(m, key, f"model.{key}")  # noqa: E731
    left = r.ints(get("left"), "model.left", -1, n - 1, (n,))
    right = r.ints(get("right"), "model.right", -1, n - 1, (n,))
    threshold = r.floats(get("threshold"), "model.threshold", (n,))
    action = r.ints(get("action"), "model.action", 0, a - 1, (n,))
    order = r.ints(get("order"), "model.order", 0, a - 1, (n, a))
    cost = r.floats(get("cost"), "model.cost", (n, a))
    weight = r.floats(get("weight"), "model.weight", (n,))
    boolean = r.bools(get("boolean"), "model.boolean", f)
    inner = feature >= 0
    idx = np.arange(n)
    if np.any(inner & ((left <= idx) | (right <= idx))) or np.any(~inner & ((left != -1) | (right != -1))):
        raise r.fail("model.left/right", "an internal node's children must come after it; leaves have -1")
    children = np.concatenate([left[inner], right[inner]])
    if len(children) != n - 1 or len(np.unique(children)) != n - 1 or 0 in children:
        raise r.fail("model.left/right", "every node but the root must have exactly one parent")
    if np.any(np.sort(order, axis=1) != np.arange(a)[None, :]) or np.any(order[:, 0] != action):
        raise r.fail("model.order", "each row must be a permutation of the actions starting with the node's action")
    return Tree(feature, threshold, left, right, action, order, cost, weight, boolean)


def _read_rule(r: _Reader, m: Any, f: int, a: int) -> Rule:
    terms = r.get(m, "terms", "model.terms")
    out = []
    if not isinstance(terms, list):
        raise r.fail("model.terms", "must be a list of terms")
    for i, term in enumerate(terms):
        if not isinstance(term, list) or not term:
            raise r.fail(f"model.terms[{i}]", "must be a non-empty list of literals")
        lits = []
        for j, lit in enumerate(term):
            ok = isinstance(lit, list) and len(lit) == 3 and isinstance(lit[0], int) and not isinstance(lit[0], bool) \
                and 0 <= lit[0] < f and isinstance(lit[1], (int, float)) and not isinstance(lit[1], bool) \
                and math.isfinite(lit[1]) and isinstance(lit[2], bool)
            if not ok:
                raise r.fail(f"model.terms[{i}][{j}]", f"must be [feature in [0, {f - 1}], finite threshold, bool]")
            lits.append((lit[0], float(lit[1]), lit[2]))
        out.append(tuple(lits))
    n_actions = int(r.ints(r.get(m, "n_actions", "model.n_actions"), "model.n_actions", a, a))
    then = int(r.ints(r.get(m, "then_action", "model.then_action"), "model.then_action", 0, a - 1))
    other = int(r.ints(r.get(m, "else_action", "model.else_action"), "model.else_action", 0, a - 1))
    if then == other:
        raise r.fail("model.else_action", "must differ from then_action")
    form = r.get(m, "form", "model.form")
    if form not in FORMS:
        raise r.fail("model.form", f"must be one of {FORMS}")
    cost = m.get("cost")
    cost = float(cost) if isinstance(cost, (int, float)) and not isinstance(cost, bool) else float("nan")
    boolean = r.bools(r.get(m, "boolean", "model.boolean"), "model.boolean", f)
    return Rule(tuple(out), then, other, n_actions, boolean, form, cost)
