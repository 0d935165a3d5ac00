"""DOT task files: the forms we accept, round trips, and errors that name file, line and field."""

from __future__ import annotations

import pytest

from sysgym.envs.dag import DAGTask, format_dot, load_dot, load_tasks, make_task, parse_dot

EGS_STYLE = """digraph DAG {
    fontname="Calibri";
    rankdir=TB;
    T=8;
    node [shape = circle, width = 2.5, height = 2.5, fixedsize = true];
    ranksep=2.0;  // distance between ranks
    0 [label="v1, C=0", style="dotted"]
    1 [label="v2, C=5", style="dotted"]
    2 [label="v3, C=4", style="dotted"]
    3 [label="v4, C=3", style="dotted"]
    4 [label="v5, C=3", style="dotted"]
    5 [label="v6, C=1", style="dotted"]
    6 [label="v7, C=0", style="dotted"]
    { rank = same; 4; 5; }
    0 -> 1
    0 -> 2
    0 -> 3
    1 -> 4
    1 -> 5
    2 -> 5
    3 -> 5
    4 -> 6
    5 -> 6
}
"""


def test_the_egs_tool_format_loads():
    (task,) = parse_dot(EGS_STYLE, "ex.dot")
    assert task.wcet == (0, 5, 4, 3, 3, 1, 0)
    assert task.deadline == 8                     # the period T: an implicit deadline
    assert sorted(task.edges) == [(0, 1), (0, 2), (0, 3), (1, 4), (1, 5), (2, 5), (3, 5), (4, 6), (5, 6)]
    assert task.critical_path() == 8              # 0-1-4-6 = 0+5+3+0


def test_names_comments_chains_subgraphs_and_graph_attributes():
    text = """/* a comment
       over two lines */
    strict digraph "two tasks" {
      graph [D=20, T=30];      // D wins over T
# a preprocessor-style line
      a [C=4]; "node b" [label="C = 2"]; c [label="x", C=1]
      a -> "node b" -> c [weight=3];
      a -> {c}
      a:port1 -> c:w;
    }
    digraph second { T=5; x [C=1]; y [C=2]; y -> x; }
    """
    first, second = parse_dot(text, "mem.dot")
    assert first.name == "two tasks" and first.node_names == ("a", "node b", "c")
    assert first.wcet == (4, 2, 1) and first.deadline == 20
    assert sorted(first.edges) == [(0, 1), (0, 2), (1, 2)]
    assert second.node_names == ("x", "y") and second.edges == ((1, 0),) and second.deadline == 5


def test_integer_names_are_node_numbers_whatever_their_order():
    (task,) = parse_dot('digraph g { D=9; 2 [C=3]; 0 [C=1]; 1 [C=2]; 0 -> 2; 1 -> 2; }')
    assert task.wcet == (1, 2, 3) and sorted(task.edges) == [(0, 2), (1, 2)]


def test_format_and_parse_round_trip():
    task = make_task([3, 0, 2, 5], [(0, 1), (0, 2), (2, 3), (1, 3)], 12, name="rt")
    (again,) = parse_dot(format_dot(task))
    assert again.wcet == task.wcet and set(again.edges) == set(task.edges) and again.deadline == 12
    marked = format_dot(task, added_edges=[(1, 2)], processors=[0, 1, 0, 0])
    assert '1 -> 2 [color=red, style=bold];' in marked and 'label="C=0, P=1"' in marked
    (with_added,) = parse_dot(marked)
    assert set(with_added.edges) == set(task.edges) | {(1, 2)}


def test_files_and_directories(tmp_path):
    (tmp_path / "a.dot").write_text(format_dot(make_task([1, 2], [(0, 1)], 5, name="a")))
    (tmp_path / "b.dot").write_text(EGS_STYLE)
    (tmp_path / "notes.txt").write_text("not a task")
    assert [t.name for t in load_tasks(tmp_path)] == ["a", "DAG"]
    assert load_dot(tmp_path / "a.dot")[0].wcet == (1, 2)
    with pytest.raises(FileNotFoundError, match="missing.dot"):
        load_tasks(tmp_path / "missing.dot")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no .dot files"):
        load_tasks(tmp_path / "empty")


@pytest.mark.parametrize("text, pattern", [
    ('digraph g {\n D=5;\n a [C=1];\n b [label="no wcet"];\n a -> b;\n}', r"t\.dot:4: node 'b' has no WCET"),
    ('digraph g {\n D=5;\n a [C=1];\n a -> b;\n}', r"t\.dot:4: node 'b' has no WCET"),
    ('digraph g {\n D=5;\n a [C=-2];\n}', r"t\.dot:3: WCET C of node 'a' must be an integer in \[0, 9007199254740992\], got '-2'"),
    ('digraph g {\n D=5;\n a [label="C=2.5"];\n}', r"t\.dot:3: WCET C of node 'a' must be an integer"),
    ('digraph g {\n a [C=1];\n}', r"t\.dot:1: graph 'g' has no deadline: add a graph attribute D="),
    ('digraph g {\n D=zero;\n a [C=1];\n}', r"t\.dot:2: deadline D must be an integer in \[1, 9007199254740992\], got 'zero'"),
    ('digraph g {\n T=0;\n a [C=1];\n}', r"t\.dot:2: period T must be an integer in \[1, 9007199254740992\], got 0"),
    ('digraph g {\n D=9;\n a [C=1]; b [C=1]; c [C=1];\n a -> b;\n b -> c;\n c -> a;\n}',
     r"t\.dot:6: graph 'g' has a cycle: a -> b -> c -> a \(edges on lines \[4, 5, 6\]\)"),
    ('digraph g {\n D=9;\n a [C=1];\n a -> a;\n}', r"t\.dot:4: self-loop a -> a"),
    ('graph g {\n D=9;\n}', r"t\.dot:1: 'graph' is undirected"),
    ('digraph g {\n D=9; a [C=1]; b [C=1];\n a -- b;\n}', r"t\.dot:3: undirected edge '--'"),
    ('digraph g {\n D=9;\n a [C=1]', r"t\.dot:3: unexpected end of file"),
    ('digraph g {\n D=9;\n a [label="C=1];\n}', r"t\.dot:3: unterminated string"),
    ('digraph g {\n D=3;\n a [C=2]; b [C=2];\n a -> b;\n}', r"critical path L=4 exceeds the deadline D=3"),
    ('digraph g {\n D=3;\n a [C=2] $\n}', r"t\.dot:3: unexpected character '\$'"),
    ('', r"t\.dot:1: no digraph found"),
])
def test_errors_name_file_line_and_field(text, pattern):
    with pytest.raises(ValueError, match=pattern):
        parse_dot(text, "t.dot")


def test_make_task_validates():
    with pytest.raises(ValueError, match="edge 0 -> 5 names a node outside 0..1"):
        make_task([1, 1], [(0, 5)], 3)
    with pytest.raises(ValueError, match="cycle: 0 -> 1 -> 0"):
        make_task([1, 1], [(0, 1), (1, 0)], 3)
    with pytest.raises(ValueError, match=r"deadline D must be an integer in \[1, 9007199254740992\], got 0"):
        make_task([1], [], 0)
    with pytest.raises(ValueError, match="at least one node"):
        make_task([], [], 3)
    task = make_task([1, 1], [(0, 1), (0, 1)], 3)
    assert isinstance(task, DAGTask) and task.edges == ((0, 1),)      # duplicates merged
