"""Imports point one way (DESIGN rule 13): no module imports a module that imports it back, and
a renderer takes what it draws: it imports neither its env nor a kernel.

Every import counts, at module level or inside a function (a deferred import is still an arrow).
For cycles, those under ``if TYPE_CHECKING:`` (type hints only, never executed) do not; for
renderers they do (a type hint on the env is still a dependency on its internals).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# source folder -> package name, as setup.py maps them
PACKAGES = {"sysgym": "sysgym", "envs": "sysgym.envs", "agents": "sysgym.agents",
            "cython_core": "sysgym.cython_core", "traces": "sysgym.traces"}


def _modules() -> dict[str, Path]:
    found = {}
    for folder, package in PACKAGES.items():
        for path in (ROOT / folder).rglob("*.py"):
            parts = path.relative_to(ROOT / folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join((package, *parts))] = path
    return found


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def _imports(name: str, path: Path, known: set[str], type_checking: bool = False) -> set[str]:
    """The known modules ``name`` imports (with ``type_checking``, also those under TYPE_CHECKING)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = set() if type_checking else _type_checking_lines(tree)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        targets = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            targets = [base] + [f"{base}.{a.name}" for a in node.names]
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name and not name.startswith(target + "."):  # a parent package: not an arrow back
                out.add(target)
    return out


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index, low, on_stack, stack, found, counter = {}, {}, set(), [], [], [0]
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter[0]
                    counter[0] += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def test_the_cycle_finder_finds_a_ring_and_nothing_in_a_chain():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_ppo_agent_modules_import_one_way():
    modules = _modules()
    known = set(modules)
    graph = {name: _imports(name, path, known) & known for name, path in modules.items()}
    ppo = {n: {m for m in deps if m.startswith("sysgym.agents.ppo")} for n, deps in graph.items()
           if n.startswith("sysgym.agents.ppo")}
    assert _cycles(ppo) == []


def test_no_import_cycles_in_the_package():
    modules = _modules()
    known = set(modules)
    graph = {name: _imports(name, path, known) & known for name, path in modules.items()}
    assert _cycles(graph) == []


def test_renderers_import_neither_their_env_nor_a_kernel():
    """envs/<family>/render.py draws what it is given (arrays, the config, a small frame object):
    no import, even for type hints only, of a family module that uses the renderer (env.py,
    multiflow.py) or of any kernel, no private attribute read (``env._state``), no ``env`` or
    ``kernel`` parameter."""
    modules = _modules()
    known = set(modules)
    renderers = [n for n in modules if n.startswith("sysgym.envs.") and n.endswith(".render")]
    assert len(renderers) >= 5
    bad = {}
    for name in renderers:
        family = name.rsplit(".", 1)[0]
        users = {m for m, path in modules.items() if m.startswith(family + ".")
                 and name in _imports(m, path, known)}
        deps = _imports(name, modules[name], known, type_checking=True)
        wrong = {d for d in deps if d in users or d == f"{family}.env" or d.startswith("sysgym.cython_core")}
        tree = ast.parse(modules[name].read_text(encoding="utf-8"))
        wrong |= {f"reads .{node.attr}" for node in ast.walk(tree) if isinstance(node, ast.Attribute)
                  and node.attr.startswith("_") and not node.attr.startswith("__")}
        wrong |= {f"takes {arg.arg}" for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)
                  for arg in node.args.args if arg.arg in ("env", "kernel")}
        if wrong:
            bad[name] = sorted(wrong)
    assert not bad, f"renderers import their env or a kernel, or read private attributes: {bad}"
