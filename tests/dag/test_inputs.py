"""DAG inputs that used to crash, hang or be silently misread: DOT files, DAGTask objects, time
ranges. Every bad input is a ValueError/FileNotFoundError naming the file, line and field."""

from __future__ import annotations

import os
import re
import signal
from contextlib import contextmanager

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sysgym.envs.dag import DAGEnv, DAGTask, load_dot, load_tasks, make_task, parse_dot
from sysgym.envs.dag.dot import MAX_DOT_BYTES
from sysgym.envs.dag.tasks import MAX_TIME

TWO = 'digraph g {{\n  D="{d}";\n  a [C="{c}"];\n  b [label="C={c2}"];\n  a -> b;\n}}\n'


@contextmanager
def time_limit(seconds: float):
    """Fail (instead of hanging) if the body runs longer than ``seconds``."""
    def expire(*_):
        raise TimeoutError(f"took longer than {seconds} s")
    old = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


# ---------------------------------------------------------------- DOT: the named failures
@pytest.mark.parametrize("text, pattern", [
    ('digraph g {\n D=5;\n a [C=1];\n D=7;\n}', r"t\.dot:4: deadline D given twice \(lines 2 and 4\)"),
    ('digraph g {\n graph [D=5];\n a [C=1];\n D=5;\n}', r"t\.dot:4: deadline D given twice"),
    ('digraph g {\n graph [T=5, T=6];\n a [C=1];\n}', r"t\.dot:2: period T given twice"),
    ('digraph g {\n D=5;\n a [C=1];\n a [C=2];\n}', r"t\.dot:4: WCET C of node 'a' given twice \(lines 3 and 4\)"),
    ('digraph g {\n D=5;\n a [C=1, label="C=1"];\n}', r"t\.dot:3: WCET C of node 'a' given twice"),
    ('digraph g {\n D=5;\n a [label="C=1, C=2"];\n}', r"t\.dot:3: the label of node 'a' gives C= 2 times"),
    ('digraph g {\n a [C=1];\n subgraph s { D=5; }\n}', r"t\.dot:3: graph attribute D= inside a subgraph"),
    ('digraph g {\n D=9223372036854775808;\n a [C=1];\n}',
     r"t\.dot:2: deadline D must be an integer in \[1, 9007199254740992\], got 9223372036854775808"),
    ('digraph g {\n D=5;\n a [C=18446744073709551616];\n}', r"t\.dot:3: WCET C of node 'a' must be an integer in"),
    ('digraph g {\n D=5;\n a [C="1e300"];\n}', r"t\.dot:3: WCET C of node 'a' must be an integer in .* got '1e300'"),
    ('digraph g {\n D=5;\n a [C=1e3];\n}', r"t\.dot:3: badly delimited number '1e3' \(quote it\)"),
    ('digraph g {\n D=5;\n a [C=0x10];\n}', r"t\.dot:3: badly delimited number '0x10'"),
    ('digraph g {\n D=5;\n a [C=' + "9" * 5000 + '];\n}', r"t\.dot:3: WCET C of node 'a' must be an integer in .*\.\.\."),
    ('digraph g {\n D=5;\n a [C=\u0663];\n}', r"t\.dot:3: WCET C of node 'a' must be an integer"),   # Arabic 3
    ('digraph g {\n D=5;\n a [C="1_0"];\n}', r"t\.dot:3: WCET C of node 'a' must be an integer"),
    ('digraph g {\n D=5;\n' + '{' * 5000 + '\n}', r"t\.dot:3: subgraphs nested more than 32 deep"),
    ('digraph g {\n D=5000;\n' + ''.join(f' n{k} [C=1];' for k in range(300)) + '\n}',
     r"t\.dot:3: more than 256 nodes in one digraph"),
])
def test_dot_errors_are_clear(text, pattern):
    with time_limit(5), pytest.raises(ValueError, match=pattern):
        parse_dot(text, "t.dot")


def test_dot_times_at_the_limit_load_and_match_the_reference_arithmetic():
    (task,) = parse_dot(TWO.format(d=MAX_TIME, c=MAX_TIME - 1, c2=1), "t.dot")
    assert task.wcet == (MAX_TIME - 1, 1) and task.deadline == MAX_TIME
    env = DAGEnv(workload=[task, make_task([0, 0, 0], [], 1)])
    _, info = env.reset(options={"task": 1})
    assert info["deadline"] == 1 and info["width"] == 3


def test_non_utf8_bom_and_file_kinds(tmp_path):
    bad = tmp_path / "latin.dot"
    bad.write_bytes(b'digraph g {\n D=5;\n a [label="caf\xe9 C=1"];\n}\n')
    with pytest.raises(ValueError, match=r"latin\.dot:3: not UTF-8 text"):
        load_dot(bad)
    bom = tmp_path / "bom.dot"
    bom.write_bytes(b"\xef\xbb\xbf" + TWO.format(d=5, c=1, c2=2).encode())
    assert load_dot(bom)[0].wcet == (1, 2)
    dangling = tmp_path / "gone.dot"
    dangling.symlink_to(tmp_path / "nowhere.dot")
    with pytest.raises(FileNotFoundError, match="dangling symbolic link"):
        load_tasks(tmp_path)
    dangling.unlink()
    (tmp_path / "folder.dot").mkdir()
    with pytest.raises(ValueError, match="folder.dot is not a regular file"):
        load_tasks(tmp_path)
    os.rmdir(tmp_path / "folder.dot")
    (tmp_path / ".hidden.dot").write_text("not a digraph")                   # hidden: skipped
    bad.unlink()
    assert [t.wcet for t in load_tasks(tmp_path)] == [(1, 2)]
    huge = tmp_path / "huge.dot"
    with huge.open("wb") as handle:
        handle.truncate(MAX_DOT_BYTES + 1)
    with pytest.raises(ValueError, match=r"huge\.dot: DAG task file of .* bytes exceeds"):
        load_dot(huge)


def test_a_one_node_task_is_refused_naming_its_file_or_set_aside(tmp_path):
    """A one-node digraph has no edge to add: alone it is a one-line error naming the file (it was
    "max_nodes ... got 1" without it); beside a playable task it is listed in skipped_tasks."""
    one = tmp_path / "one.dot"
    one.write_text('digraph g {\n D=5;\n a [C=1];\n}\n')
    with pytest.raises(ValueError, match=rf"^every task of {re.escape(str(one))} is done before the first step "
                                         r"\(g: width 1 already equals its lower bound"):
        DAGEnv(workload=one)
    with pytest.raises(ValueError, match=r"^every task of a DAGTask is done before the first step"):
        DAGEnv(workload=make_task([3], [], 4))
    (tmp_path / "two.dot").write_text('digraph t {\n D=9;\n a [C=1];\n b [C=2];\n c [C=1];\n a -> c;\n}\n')
    env = DAGEnv(workload=tmp_path)
    assert env.skipped_tasks == [(0, "g", "width 1 already equals its lower bound")]
    _, info = env.reset(seed=0)
    assert info["width"] == 2          # {a, b} and {b, c} run in parallel: the three-node task plays


def test_dagtask_objects_are_validated_like_files():
    with pytest.raises(ValueError, match=r"workload task 0 \('big'\): node 0: WCET C must be an integer in"):
        DAGEnv(workload=DAGTask((2**58, 1), ((0, 1),), 2**60, name="big"))
    with pytest.raises(ValueError, match=r"workload task 1: deadline D must be an integer in \[1, 9007199254740992\]"):
        DAGEnv(workload=[make_task([1, 1], [], 2), DAGTask((1, 1), (), 0)])
    with pytest.raises(ValueError, match="critical path L=5 exceeds the deadline D=2"):
        DAGEnv(workload=DAGTask((2, 3), ((0, 1),), 2))
    with pytest.raises(ValueError, match="edge must be a \\(u, v\\) pair"):
        make_task([1, 1], [(0, 1, 2)], 3)
    with pytest.raises(ValueError, match="at most 256 nodes"):
        make_task([1] * 257, [], 3)
    with pytest.raises(ValueError, match="WCET C must be an integer"):
        make_task([float("nan")], [], 3)


def test_largest_sums_do_not_overflow():
    """256 nodes of WCET 2^53 / 256 in one layer: vol = 2^53, the lower bound is exact."""
    c = MAX_TIME // 256
    task = make_task([c] * 256, [], MAX_TIME)
    env = DAGEnv(workload=[task], max_nodes=256)
    _, info = env.reset(seed=0)
    assert info["width"] == 256 and info["width_lower_bound"] == 1 and info["critical_path"] == c
    wide = make_task([MAX_TIME // 2, MAX_TIME // 2, MAX_TIME, 0], [], MAX_TIME)
    _, info = DAGEnv(workload=wide).reset(seed=0)
    assert info["width_lower_bound"] == 2          # ceil((2 * 2^52 + 2^53) / 2^53), exactly


# ---------------------------------------------------------------- DOT: hypothesis
@settings(max_examples=300, deadline=2000, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=400) | st.builds(
    lambda a, b, c: (a + b + c).encode("utf-8", "surrogatepass")[:2000],
    st.sampled_from(["digraph g {", "strict digraph {", "digraph \"x\" { D=", "digraph{ subgraph {", ""]),
    st.text(alphabet=st.sampled_from(list('{}[];,=-> "\\/*#<>\n abC0123456789DT.eE+-_\u00e9\u0663')), max_size=200),
    st.sampled_from(["}", "}}", "", "} digraph {", "\n"])))
def test_random_bytes_are_tasks_or_clear_errors(tmp_path, data):
    path = tmp_path / "fuzz.dot"
    path.write_bytes(data)
    try:
        with time_limit(5):
            tasks = load_dot(path)
    except ValueError as err:
        assert str(err).startswith(str(path)), err
        return
    for task in tasks:
        assert 1 <= task.num_nodes <= 256 and 1 <= task.deadline <= MAX_TIME
        assert all(0 <= c <= MAX_TIME for c in task.wcet) and task.critical_path() <= task.deadline


NUMBERS = st.one_of(st.integers(-2**70, 2**70).map(str), st.floats(allow_nan=True).map(repr),
                    st.sampled_from(["", "x", "0x10", "1_000", "\u0663", "+3", " 7", "1e3", "2.0", "-0"]),
                    st.text(max_size=8)).filter(lambda s: '"' not in s and "\\" not in s)


@settings(max_examples=150, deadline=2000)
@given(d=NUMBERS, c=NUMBERS, c2=NUMBERS.filter(lambda s: not any(ch in s for ch in ",; \t\n\r\f\v")))
def test_random_numeric_fields_are_read_exactly_or_refused(d, c, c2):
    """Quoted C / D values and a label's C=: an integer in range is read exactly, anything else
    (floats, signs, other digits, overflow) is refused with file:line."""
    text = TWO.format(d=d, c=c, c2=c2)
    try:
        with time_limit(5):
            (task,) = parse_dot(text, "n.dot")
    except ValueError as err:
        assert str(err).startswith("n.dot:"), err
        return
    assert task.deadline == int(d.strip()) and task.wcet == (int(c.strip()), int(c2))   # nothing rounded
    assert 0 <= min(task.wcet) and max(task.wcet) <= task.deadline <= MAX_TIME
