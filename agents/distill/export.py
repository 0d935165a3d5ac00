"""Readable forms of a distilled model: indented if/else text, Graphviz DOT and a matplotlib figure.

A tree node ``x[f] <= t`` prints as ``if name <= t:`` (true branch first); a test on a 0/1
feature prints as ``if name:`` / ``else:`` with the branch where the flag is set first. A rule
prints as one ``if ... else ...`` over its literals (its CNF form when it was learnt as one).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .rules import Rule
from .tree import Tree

_COLOURS = ("#a6cee3", "#b2df8a", "#fb9a99", "#fdbf6f", "#cab2d6", "#ffff99", "#1f78b4", "#33a02c",
            "#e31a1c", "#ff7f00", "#6a3d9a", "#b15928")


def _num(t: float) -> str:
    return f"{t:.6g}"


def _leaf(tree: Tree, n: int, actions: Sequence[str]) -> str:
    return f"action {actions[tree.action[n]]}  (weight {tree.weight[n]:.6g})"


def tree_text(tree: Tree, features: Sequence[str], actions: Sequence[str]) -> str:
    """The tree as nested ``if`` / ``else`` blocks, four spaces per level."""
    lines: list[str] = []

    def walk(n: int, indent: str) -> None:
        if tree.feature[n] < 0:
            lines.append(indent + _leaf(tree, n, actions))
            return
        f = tree.feature[n]
        if tree.boolean[f] and tree.threshold[n] == 0.5:
            first, second, test = tree.right[n], tree.left[n], features[f]
        else:
            first, second, test = tree.left[n], tree.right[n], f"{features[f]} <= {_num(tree.threshold[n])}"
        lines.append(f"{indent}if {test}:")
        walk(first, indent + "    ")
        lines.append(f"{indent}else:")
        walk(second, indent + "    ")

    walk(0, "")
    return "\n".join(lines) + "\n"


def _literal(lit: tuple[int, float, bool], rule: Rule, features: Sequence[str], negate: bool = False) -> str:
    f, t, greater = lit
    greater = greater != negate
    if rule.boolean[f] and t == 0.5:
        return features[f] if greater else f"not {features[f]}"
    return f"{features[f]} {'>' if greater else '<='} {_num(t)}"


def rule_condition(rule: Rule, features: Sequence[str]) -> tuple[str, int, int]:
    """(condition, action where it holds, action elsewhere), in the rule's form."""
    if rule.form == "cnf":  # not (OR of ANDs) = AND of ORs of the negated literals
        clauses = ["(" + " or ".join(_literal(lit, rule, features, negate=True) for lit in term) + ")"
                   for term in rule.terms]
        return " and ".join(clauses) or "False", rule.else_action, rule.then_action
    terms = ["(" + " and ".join(_literal(lit, rule, features) for lit in term) + ")" for term in rule.terms]
    return " or ".join(terms) or "False", rule.then_action, rule.else_action


def rule_text(rule: Rule, features: Sequence[str], actions: Sequence[str]) -> str:
    condition, yes, no = rule_condition(rule, features)
    return f"if {condition}:\n    action {actions[yes]}\nelse:\n    action {actions[no]}\n"


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def tree_dot(tree: Tree, features: Sequence[str], actions: Sequence[str]) -> str:
    """Graphviz source: boxes for tests, coloured boxes for leaves, edges labelled true / false."""
    out = ["digraph tree {", '  node [shape=box, style="rounded,filled", fontname="helvetica"];']
    for n in range(tree.n_nodes):
        if tree.feature[n] < 0:
            label = f"{actions[tree.action[n]]}\nweight {tree.weight[n]:.6g}"
            colour = _COLOURS[tree.action[n] % len(_COLOURS)]
            out.append(f"  n{n} [label={_quote(label)}, fillcolor={_quote(colour)}];")
        else:
            label = f"{features[tree.feature[n]]} <= {_num(tree.threshold[n])}"
            out.append(f'  n{n} [label={_quote(label)}, fillcolor="#eeeeee"];')
            out.append(f'  n{n} -> n{tree.left[n]} [label="true"];')
            out.append(f'  n{n} -> n{tree.right[n]} [label="false"];')
    return "\n".join(out) + "\n}\n"


def rule_dot(rule: Rule, features: Sequence[str], actions: Sequence[str]) -> str:
    """The DNF as a decision diagram: each term's literals in a chain; a failed literal moves on
    to the next term, the last one to the other action."""
    out = ["digraph rule {", '  node [shape=box, style="rounded,filled", fontname="helvetica"];',
           f"  yes [label={_quote(actions[rule.then_action])}, fillcolor={_quote(_COLOURS[rule.then_action % len(_COLOURS)])}];",
           f"  no [label={_quote(actions[rule.else_action])}, fillcolor={_quote(_COLOURS[rule.else_action % len(_COLOURS)])}];"]
    if not rule.terms:
        out.append("  start [shape=point];\n  start -> no;")
    for i, term in enumerate(rule.terms):
        for j, lit in enumerate(term):
            out.append(f'  t{i}l{j} [label={_quote(_literal(lit, rule, features))}, fillcolor="#eeeeee"];')
            true_to = f"t{i}l{j + 1}" if j + 1 < len(term) else "yes"
            false_to = f"t{i + 1}l0" if i + 1 < len(rule.terms) else "no"
            out.append(f'  t{i}l{j} -> {true_to} [label="true"];')
            out.append(f'  t{i}l{j} -> {false_to} [label="false"];')
    return "\n".join(out) + "\n}\n"


def tree_figure(tree: Tree, features: Sequence[str], actions: Sequence[str]):
    """A matplotlib Figure drawing the tree (no pyplot: safe in any backend)."""
    from matplotlib.figure import Figure

    x = np.zeros(tree.n_nodes)
    y = np.zeros(tree.n_nodes)
    leaves = iter(range(tree.n_leaves))

    def place(n: int, depth: int) -> float:
        y[n] = -depth
        if tree.feature[n] < 0:
            x[n] = next(leaves)
        else:
            x[n] = (place(tree.left[n], depth + 1) + place(tree.right[n], depth + 1)) / 2.0
        return x[n]

    place(0, 0)
    fig = Figure(figsize=(max(4.0, 2.2 * tree.n_leaves), max(2.5, 1.3 * (tree.depth + 1))))
    ax = fig.add_subplot()
    ax.set_axis_off()
    for n in range(tree.n_nodes):
        if tree.feature[n] >= 0:
            for child, word in ((tree.left[n], "true"), (tree.right[n], "false")):
                ax.plot([x[n], x[child]], [y[n], y[child]], color="#777777", linewidth=1, zorder=1)
                ax.text((x[n] + x[child]) / 2, (y[n] + y[child]) / 2, word, fontsize=7, ha="center",
                        color="#555555", zorder=2)
            text, colour = f"{features[tree.feature[n]]}\n<= {_num(tree.threshold[n])}", "#eeeeee"
        else:
            text = f"{actions[tree.action[n]]}\nweight {tree.weight[n]:.4g}"
            colour = _COLOURS[tree.action[n] % len(_COLOURS)]
        ax.text(x[n], y[n], text, ha="center", va="center", fontsize=8, zorder=3,
                bbox={"boxstyle": "round", "facecolor": colour, "edgecolor": "#333333"})
    ax.set_xlim(x.min() - 0.7, x.max() + 0.7)
    ax.set_ylim(y.min() - 0.6, 0.6)
    fig.tight_layout()
    return fig


def rule_figure(rule: Rule, features: Sequence[str], actions: Sequence[str]):
    """A matplotlib Figure showing the rule's text."""
    from matplotlib.figure import Figure

    text = rule_text(rule, features, actions).rstrip()
    width = max(len(line) for line in text.splitlines())
    fig = Figure(figsize=(max(3.0, 0.09 * width + 0.6), 1.6))
    ax = fig.add_subplot()
    ax.set_axis_off()
    ax.text(0.02, 0.5, text, family="monospace", fontsize=9, va="center", ha="left",
            bbox={"boxstyle": "round", "facecolor": "#f5f5f5", "edgecolor": "#333333"})
    return fig
