"""Read and write DAG tasks in Graphviz DOT, the format of the EGS reference tool (Sun et al.).

A task is a ``digraph``; a file may hold several (a task set). Per node the WCET is an integer
``C=`` either inside its ``label`` (``3 [label="v4, C=3"]``) or as an attribute (``3 [C=3]``);
the deadline is a graph attribute ``D=`` (or the period ``T=``, an implicit deadline; ``D`` wins
when both are given) given as a top-level statement (``D=8;``) or in ``graph [D=8]``. Edges may
chain (``a -> b -> c``) and use subgraphs (``a -> {b c}``); ``rank=same`` blocks, ports, comments
(``//``, ``/* */``, ``#``) and any other attributes are accepted and ignored.

Node numbering: if the node names are exactly the integers 0..n-1 (the EGS tool's convention)
node ``"k"`` is node k; otherwise nodes are numbered in order of first appearance.

Strict rules (each a ``ValueError`` naming the file, the line and the offending field):
UTF-8 text (a byte-order mark is skipped) of at most ``MAX_DOT_BYTES``; a deadline or a node's
WCET given twice (the last would otherwise win silently), or ``D=``/``T=`` inside a subgraph;
WCETs and deadlines that are not decimal integers in the ranges of :mod:`sysgym.envs.dag.tasks`
(WCET 0..2^53, deadline 1..2^53); more than ``MAX_NODES`` nodes in a digraph, more than
``MAX_TASKS`` digraphs in a file, subgraphs nested deeper than ``MAX_NESTING``, or more than
``MAX_EDGE_MENTIONS`` edge mentions in one digraph.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..textfile import existing_file, text_lines
from ..validate import integer
from .tasks import MAX_NODES, MAX_TASKS, MAX_TIME, DAGTask, find_cycle, make_task

MAX_DOT_BYTES = 16 * 2**20     # one .dot file (the shipped sets are ~0.1 MiB)
MAX_NESTING = 32               # subgraphs inside subgraphs
MAX_EDGE_MENTIONS = 2**20      # (u, v) pairs named by the edge statements of one digraph

_PUNCT = {"{", "}", "[", "]", ";", ",", "=", ":"}
_ID = re.compile(r"[A-Za-z_\x80-\uffff][A-Za-z_0-9\x80-\uffff]*|-?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)")
_ID_CHAR = re.compile(r"[A-Za-z_0-9\x80-\uffff.]")
_ID_RUN = re.compile(r"[-A-Za-z_0-9\x80-\uffff.]+")
_WCET_IN_LABEL = re.compile(r"(?<![A-Za-z0-9_])C\s*=\s*([^,;\s]+)")


@dataclass
class _Token:
    kind: str      # "id" (identifier, number or quoted string), "->", "--" or a punctuation mark
    text: str
    line: int


def _tokenize(text: str, source: str) -> Iterator[_Token]:
    i, line, n = 0, 1, len(text)
    at_line_start = True
    while i < n:
        ch = text[i]
        if ch == "\n":
            line += 1
            i += 1
            at_line_start = True
            continue
        if ch in " \t\r\f\v":
            i += 1
            continue
        if ch == "#" and at_line_start:                      # C-preprocessor style line
            while i < n and text[i] != "\n":
                i += 1
            continue
        at_line_start = False
        if text.startswith("//", i):
            while i < n and text[i] != "\n":
                i += 1
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            if end < 0:
                raise ValueError(f"{source}:{line}: unterminated /* comment")
            line += text.count("\n", i, end)
            i = end + 2
        elif text.startswith("->", i) or text.startswith("--", i):
            yield _Token(text[i:i + 2], text[i:i + 2], line)
            i += 2
        elif ch in _PUNCT:
            yield _Token(ch, ch, line)
            i += 1
        elif ch == '"':
            start_line, j, parts = line, i + 1, []
            while True:
                if j >= n:
                    raise ValueError(f"{source}:{start_line}: unterminated string")
                c = text[j]
                if c == "\\" and j + 1 < n:
                    nxt = text[j + 1]
                    if nxt == "\n":
                        line += 1
                    else:
                        parts.append(nxt if nxt == '"' else c + nxt)
                    j += 2
                    continue
                if c == '"':
                    break
                if c == "\n":
                    line += 1
                parts.append(c)
                j += 1
            yield _Token("id", "".join(parts), start_line)
            i = j + 1
        elif ch == "<":                                       # HTML-like label: keep it verbatim
            depth, j = 0, i
            while j < n:
                if text[j] == "<":
                    depth += 1
                elif text[j] == ">":
                    depth -= 1
                    if depth == 0:
                        break
                elif text[j] == "\n":
                    line += 1
                j += 1
            if j >= n:
                raise ValueError(f"{source}:{line}: unterminated <...> string")
            yield _Token("id", text[i + 1:j], line)
            i = j + 1
        else:
            m = _ID.match(text, i)
            if not m:
                raise ValueError(f"{source}:{line}: unexpected character {ch!r}")
            if m.group(0)[-1] in "0123456789." and _ID_CHAR.match(text, m.end()):
                # "1e3", "0x10", "1_000": Graphviz splits these into two tokens; refuse, not misread
                word = _ID_RUN.match(text, i).group(0)
                raise ValueError(f"{source}:{line}: badly delimited number {word[:40]!r} (quote it)")
            yield _Token("id", m.group(0), line)
            i = m.end()


_DEADLINE_KEYS = ("D", "T")


@dataclass
class _Graph:
    name: str
    line: int
    attrs: dict[str, tuple[str, int]] = field(default_factory=dict)   # D / T: value, line
    nodes: dict[str, int] = field(default_factory=dict)               # name -> first line
    wcet: dict[str, tuple[str, int]] = field(default_factory=dict)    # name -> C text, line
    edges: dict[tuple[str, str], int] = field(default_factory=dict)   # (u, v) -> first line
    edge_mentions: int = 0


class _Parser:
    """Recursive descent over a lazy token stream (two tokens of look-ahead)."""

    def __init__(self, tokens: Iterator[_Token], source: str):
        self.tokens, self.source = tokens, source
        self.ahead: list[_Token] = []
        self.last_line = 1
        self.depth = 0

    # -- token helpers
    def peek(self, offset: int = 0) -> _Token | None:
        while len(self.ahead) <= offset:
            tok = next(self.tokens, None)
            if tok is None:
                return None
            self.ahead.append(tok)
        return self.ahead[offset]

    def take(self) -> _Token:
        tok = self.peek()
        if tok is None:
            raise ValueError(f"{self.source}:{self.last_line}: unexpected end of file (missing '}}'?)")
        self.ahead.pop(0)
        self.last_line = tok.line
        return tok

    def expect(self, kind: str, what: str) -> _Token:
        tok = self.take()
        if tok.kind != kind:
            raise ValueError(f"{self.source}:{tok.line}: expected {what}, got {tok.text!r}")
        return tok

    def is_keyword(self, tok: _Token | None, word: str) -> bool:
        return tok is not None and tok.kind == "id" and tok.text.lower() == word

    # -- grammar
    def graphs(self) -> Iterator[_Graph]:
        count = 0
        while self.peek() is not None:
            count += 1
            if count > MAX_TASKS:
                raise ValueError(f"{self.source}:{self.peek().line}: more than {MAX_TASKS} digraphs in one file")
            yield self.graph()
        if count == 0:
            raise ValueError(f"{self.source}:1: no digraph found")

    def graph(self) -> _Graph:
        tok = self.take()
        if self.is_keyword(tok, "strict"):
            tok = self.take()
        if self.is_keyword(tok, "graph"):
            raise ValueError(f"{self.source}:{tok.line}: 'graph' is undirected; a DAG task must be a 'digraph'")
        if not self.is_keyword(tok, "digraph"):
            raise ValueError(f"{self.source}:{tok.line}: expected 'digraph', got {tok.text!r}")
        name = ""
        if self.peek() is not None and self.peek().kind == "id":
            name = self.take().text
        g = _Graph(name, tok.line)
        self.expect("{", "'{'")
        self.statements(g, top=True)
        self.expect("}", "'}'")
        return g

    def statements(self, g: _Graph, top: bool) -> list[str]:
        """Parse statements up to the closing brace; return the nodes mentioned (for subgraphs)."""
        mentioned: list[str] = []
        while True:
            tok = self.peek()
            if tok is None or tok.kind == "}":
                return mentioned
            if tok.kind in (";", ","):
                self.take()
                continue
            mentioned += self.statement(g, top)

    def graph_attribute(self, g: _Graph, key: str, value: str, line: int, top: bool) -> None:
        """Record a graph attribute; only the deadline keys matter, each at most once, at the top."""
        if key not in _DEADLINE_KEYS:
            return
        if not top:
            raise ValueError(f"{self.source}:{line}: graph attribute {key}= inside a subgraph; "
                             f"give the deadline at the top level of the digraph")
        if key in g.attrs:
            raise ValueError(f"{self.source}:{line}: {_DEADLINE_NAME[key]} {key} given twice "
                             f"(lines {g.attrs[key][1]} and {line})")
        g.attrs[key] = (value, line)

    def statement(self, g: _Graph, top: bool) -> list[str]:
        tok = self.peek()
        nxt = self.peek(1)
        if tok.kind == "id" and tok.text.lower() in ("graph", "node", "edge") and nxt is not None and nxt.kind == "[":
            self.take()
            attrs = self.attr_lists()
            if tok.text.lower() == "graph":
                for key, value, line in attrs:
                    self.graph_attribute(g, key, value, line, top)
            return []
        if tok.kind == "id" and nxt is not None and nxt.kind == "=":
            key = self.take()
            self.take()
            value = self.expect("id", f"a value for {key.text!r}")
            self.graph_attribute(g, key.text, value.text, value.line, top)
            return []
        operand, is_subgraph = self.operand(g)
        nodes = list(operand)
        had_edge = False
        while self.peek() is not None and self.peek().kind in ("->", "--"):
            arrow = self.take()
            if arrow.kind == "--":
                raise ValueError(f"{self.source}:{arrow.line}: undirected edge '--' in a digraph; use '->'")
            target, _ = self.operand(g)
            g.edge_mentions += len(operand) * len(target)
            if g.edge_mentions > MAX_EDGE_MENTIONS:
                raise ValueError(f"{self.source}:{arrow.line}: more than {MAX_EDGE_MENTIONS} edge mentions "
                                 f"in one digraph")
            for u in operand:
                for v in target:
                    g.edges.setdefault((u, v), arrow.line)
            nodes += target
            operand = target
            had_edge = True
        if self.peek() is not None and self.peek().kind == "[":
            attrs = self.attr_lists()
            if not had_edge and not is_subgraph:       # a node statement: its WCET, if given
                self.node_wcet(g, operand[0], attrs)
        return nodes

    def node_wcet(self, g: _Graph, name: str, attrs: list[tuple[str, str, int]]) -> None:
        """Record node ``name``'s WCET from ``C=`` or a label holding ``C=``; at most once."""
        for key, value, line in attrs:
            if key == "C":
                text = value
            elif key == "label":
                found = _WCET_IN_LABEL.findall(value)
                if not found:
                    continue
                if len(found) > 1:
                    raise ValueError(f"{self.source}:{line}: the label of node {name!r} gives C= {len(found)} times")
                text = found[0]
            else:
                continue
            if name in g.wcet:
                raise ValueError(f"{self.source}:{line}: WCET C of node {name!r} given twice "
                                 f"(lines {g.wcet[name][1]} and {line})")
            g.wcet[name] = (text, line)

    def operand(self, g: _Graph) -> tuple[list[str], bool]:
        """A node id (with an optional port, ignored) or a subgraph: the node names it stands for,
        and whether it was a subgraph."""
        tok = self.peek()
        if self.is_keyword(tok, "subgraph") or tok.kind == "{":
            if self.is_keyword(tok, "subgraph"):
                self.take()
                if self.peek() is not None and self.peek().kind == "id":
                    self.take()
            brace = self.expect("{", "'{'")
            if self.depth >= MAX_NESTING:
                raise ValueError(f"{self.source}:{brace.line}: subgraphs nested more than {MAX_NESTING} deep")
            self.depth += 1
            inner = self.statements(g, top=False)
            self.depth -= 1
            self.expect("}", "'}'")
            return list(dict.fromkeys(inner)), True
        name = self.expect("id", "a node name")
        if name.text not in g.nodes:
            if len(g.nodes) >= MAX_NODES:
                raise ValueError(f"{self.source}:{name.line}: more than {MAX_NODES} nodes in one digraph")
            g.nodes[name.text] = name.line
        while self.peek() is not None and self.peek().kind == ":":
            self.take()
            self.expect("id", "a port name")
        return [name.text], False

    def attr_lists(self) -> list[tuple[str, str, int]]:
        """``[k=v, ...][...]`` as (key, value, line) in order (a key alone means ``true``)."""
        attrs: list[tuple[str, str, int]] = []
        while self.peek() is not None and self.peek().kind == "[":
            self.take()
            while True:
                tok = self.take()
                if tok.kind == "]":
                    break
                if tok.kind in (";", ","):
                    continue
                if tok.kind != "id":
                    raise ValueError(f"{self.source}:{tok.line}: expected an attribute name, got {tok.text!r}")
                if self.peek() is not None and self.peek().kind == "=":
                    self.take()
                    value = self.expect("id", f"a value for attribute {tok.text!r}")
                    attrs.append((tok.text, value.text, value.line))
                else:
                    attrs.append((tok.text, "true", tok.line))
        return attrs


_DEADLINE_NAME = {"D": "deadline", "T": "period"}
_DECIMAL = re.compile(r"[0-9]{1,30}")


def _integer(text: str, source: str, line: int, field_name: str, minimum: int) -> int:
    """A decimal integer field in [minimum, MAX_TIME], checked in Python before any C cast."""
    stripped = text.strip()
    value: object = int(stripped) if _DECIMAL.fullmatch(stripped) else (text if len(text) <= 40 else text[:40] + "...")
    return integer(f"{source}:{line}: {field_name}", value, minimum, MAX_TIME)


def _task_from_graph(g: _Graph, source: str, index: int) -> DAGTask:
    where = f"graph {g.name!r}" if g.name else f"digraph #{index}"
    names = list(g.nodes)
    if not names:
        raise ValueError(f"{source}:{g.line}: {where} has no nodes")
    if all(re.fullmatch(r"[0-9]{1,9}", s) for s in names) and sorted(int(s) for s in names) == list(range(len(names))):
        names = sorted(names, key=int)
    index_of = {s: k for k, s in enumerate(names)}

    wcet = []
    for s in names:
        if s not in g.wcet:
            raise ValueError(f"{source}:{g.nodes[s]}: node {s!r} has no WCET: give it C=<integer> in its "
                             f"label (label=\"C=3\") or as an attribute (C=3)")
        text, line = g.wcet[s]
        wcet.append(_integer(text, source, line, f"WCET C of node {s!r}", 0))

    if "D" in g.attrs:
        text, line = g.attrs["D"]
        deadline = _integer(text, source, line, "deadline D", 1)
    elif "T" in g.attrs:
        text, line = g.attrs["T"]
        deadline = _integer(text, source, line, "period T", 1)
    else:
        raise ValueError(f"{source}:{g.line}: {where} has no deadline: add a graph attribute D=<integer> "
                         f"(or the period T=<integer>)")

    edges = []
    for (u, v), line in g.edges.items():
        if u == v:
            raise ValueError(f"{source}:{line}: self-loop {u} -> {v}")
        edges.append((index_of[u], index_of[v]))
    cycle = find_cycle(len(names), edges)
    if cycle:
        lines = [g.edges[(names[a], names[b])] for a, b in zip(cycle, cycle[1:])]
        raise ValueError(f"{source}:{max(lines)}: {where} has a cycle: "
                         + " -> ".join(names[v] for v in cycle) + f" (edges on lines {sorted(set(lines))})")
    return make_task(wcet, edges, deadline, name=g.name or f"{Path(source).stem}#{index}",
                     node_names=names, source=f"{source}:{g.line}: {where}")


def parse_dot(text: str, source: str = "<string>") -> list[DAGTask]:
    """Every digraph in ``text`` as a validated :class:`DAGTask` (``source`` names it in errors)."""
    if not isinstance(text, str):
        raise ValueError(f"{source}: DOT text must be a str, got {type(text).__name__}")
    if len(text) > MAX_DOT_BYTES:
        raise ValueError(f"{source}: DOT text of {len(text)} characters exceeds the {MAX_DOT_BYTES} limit")
    parser = _Parser(_tokenize(text, source), source)
    return [_task_from_graph(g, source, k) for k, g in enumerate(parser.graphs())]


def load_dot(path: str | os.PathLike) -> list[DAGTask]:
    """The tasks of one ``.dot`` file (one per digraph)."""
    path = existing_file(path, "DAG task file")
    size = path.stat().st_size
    if size > MAX_DOT_BYTES:
        raise ValueError(f"{path}: DAG task file of {size} bytes exceeds the {MAX_DOT_BYTES} byte limit")
    return parse_dot("\n".join(line for _, line in text_lines(path)), str(path))


def load_tasks(path: str | os.PathLike) -> list[DAGTask]:
    """The tasks of a ``.dot`` file or of every ``*.dot`` file in a directory (sorted by name;
    hidden files skipped; each must be a regular file)."""
    path = Path(path)
    if path.is_dir():
        files = sorted(f for f in path.glob("*.dot") if not f.name.startswith("."))
        if not files:
            raise FileNotFoundError(f"no .dot files in directory {path}")
        tasks = [task for f in files for task in load_dot(f)]
        if len(tasks) > MAX_TASKS:
            raise ValueError(f"{path}: more than {MAX_TASKS} tasks in the directory's .dot files")
        return tasks
    return load_dot(path)


def format_dot(task: DAGTask, name: str | None = None, added_edges: Iterable[tuple[int, int]] = (),
               processors: Sequence[int] | None = None) -> str:
    """DOT text of ``task``; ``added_edges`` are drawn red and bold, ``processors`` (one per node)
    adds ``P=<k>`` to each label, as the EGS tool's ``Worker=`` annotation."""
    title = name if name is not None else (task.name or "dag")
    quoted = '"' + title.replace('"', '\\"') + '"'
    out = [f"digraph {quoted} {{", f"  D={task.deadline};"]
    for v in range(task.num_nodes):
        label = f"C={task.wcet[v]}" + (f", P={processors[v]}" if processors is not None else "")
        out.append(f"  {_quote(task.label(v))} [label=\"{label}\"];")
    succ: dict[int, list[int]] = {}
    for u, v in task.edges:
        succ.setdefault(u, []).append(v)
    for u in sorted(succ):
        targets = sorted(succ[u])
        rhs = _quote(task.label(targets[0])) if len(targets) == 1 else \
            "{" + " ".join(_quote(task.label(v)) for v in targets) + "}"
        out.append(f"  {_quote(task.label(u))} -> {rhs};")
    for u, v in added_edges:
        out.append(f"  {_quote(task.label(u))} -> {_quote(task.label(v))} [color=red, style=bold];")
    out.append("}")
    return "\n".join(out) + "\n"


def _quote(name: str) -> str:
    return name if re.fullmatch(r"[A-Za-z_][A-Za-z_0-9]*|[0-9]+", name) else '"' + name.replace('"', '\\"') + '"'
