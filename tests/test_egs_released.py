"""benchmarks.egs_released: the authors' EGS policy and EGS-PPO on the same task files.

The sign test against hand-worked binomial tails; the export in the tool's input format (read back
identical by sysgym, and readable by the tool's line rules); the checks on the tool's output; the
one-line errors for a missing or wrong checkout; and the whole path end to end with a stand-in for
the tool (a fake ``egs.py`` that plays greedy EGS and writes the tool's output format), since the
real one needs TensorFlow 2.13 in a venv of its own."""

from __future__ import annotations

import csv
import json
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from benchmarks import egs_released, paper_egs
from sysgym.envs.dag import load_tasks, make_task
from sysgym.traces import trace_path

CHECKPOINT = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "egs" / "policy.pt"


# ---------------------------------------------------------------- sign test, by hand
@pytest.mark.parametrize("a, b, expected", [
    ([1] * 8, [2] * 8, (8, 0, 0, 2 / 2**8)),                         # n = 8, k = 0: 2 * 1/256
    ([1] + [3] * 9, [2] * 10, (1, 0, 9, 2 * (1 + 10) / 2**10)),       # n = 10, k = 1: 2 * 11/1024
    ([1] * 6 + [5] * 3, [2] * 6 + [5] * 3, (6, 3, 0, 2 / 2**6)),        # ties dropped: n = 6
    ([1, 1, 3], [2, 2, 2], (2, 0, 1, 1.0)),                           # 2 * P(X <= 1 | n = 3) = 2 * 4/8
    ([1] * 5 + [3] * 5, [2] * 10, (5, 0, 5, 1.0)),
    ([4, 4], [4, 4], (0, 2, 0, 1.0)),                                 # all tied
    ([1] * 2 + [3] * 12, [2] * 14, (2, 0, 12, 2 * (1 + 14 + 91) / 2**14)),
])
def test_sign_test_hand_values(a, b, expected):
    r = egs_released.sign_test(a, b)
    assert (r["fewer"], r["ties"], r["more"]) == expected[:3]
    assert r["p"] == pytest.approx(expected[3], rel=1e-12)


def test_sign_test_is_symmetric_and_checks_shapes():
    a, b = [1, 2, 3, 3, 1], [2, 2, 1, 5, 0]
    assert egs_released.sign_test(a, b)["p"] == egs_released.sign_test(b, a)["p"]
    with pytest.raises(ValueError, match="one length"):
        egs_released.sign_test([1, 2], [1, 2, 3])


# ---------------------------------------------------------------- the tool's input format
def _tool_rules(text: str) -> tuple[list[int], list[tuple[int, int]], int]:
    """What the tool's line-based reader takes from a file (its README and data/ex1.dot): the period
    from the line holding 'T=', WCETs from the lines holding 'C=' in order, one edge per '->' line."""
    wcet, edges, period = [], [], None
    for line in text.splitlines():
        if "T=" in line:
            period = int(line.split("T=")[1].split(";")[0])
        elif "C=" in line:
            wcet.append(int(line.split("C=")[1].split('"')[0]))
        elif "->" in line:
            u, v = line.split("->")
            edges.append((int(u), int(v.split(";")[0])))
    return wcet, edges, period


def test_export_reads_back_identical_and_follows_the_tools_line_rules(tmp_path):
    tasks = load_tasks(trace_path("dag", "layered_n20.dot"))[:5]
    tasks.append(make_task([0, 5, 4, 3, 3, 1, 0], [(0, 1), (0, 2), (0, 3), (1, 4), (1, 5), (2, 5), (3, 5),
                                                    (4, 6), (5, 6)], 8))          # the tool's data/ex1.dot
    back = egs_released.export_tasks(tasks, tmp_path / "tasks")
    assert len(back) == len(tasks)
    for k, (a, b) in enumerate(zip(tasks, back)):
        assert (a.wcet, a.deadline, sorted(a.edges)) == (b.wcet, b.deadline, sorted(b.edges))
        wcet, edges, period = _tool_rules((tmp_path / "tasks" / f"task_{k:04d}.dot").read_text())
        assert (tuple(wcet), sorted(edges), period) == (a.wcet, sorted(a.edges), a.deadline)
    assert _tool_rules(egs_released.format_released(tasks[-1]))[2] == 8


def test_format_refuses_a_name_the_tools_reader_would_misread():
    task = make_task([1, 1], [(0, 1)], 4)
    with pytest.raises(ValueError, match="DOT identifier"):
        egs_released.format_released(task, 'T=3"')


# ---------------------------------------------------------------- checking the tool's output
EX1 = make_task([0, 5, 4, 3, 3, 1, 0], [(0, 1), (0, 2), (0, 3), (1, 4), (1, 5), (2, 5), (3, 5), (4, 6), (5, 6)], 8)
# The output the tool ships for data/ex1.dot (data/ex1_out.dot): edge 3 -> 2 added, two workers.
EX1_OUT = {"workers": [1, 1, 2, 2, 1, 2, 1],
           "edges": [(0, 1), (0, 3), (1, 4), (1, 5), (2, 5), (3, 2), (4, 6), (5, 6)]}


def _output(path: Path, task, workers, edges, deadline=None) -> Path:
    lines = ["digraph DAG {", f"    T={deadline or task.deadline};"]
    lines += [f'    {v} [label="v{v + 1}, C={c}, Worker={w}", style="dotted"]'
              for v, (c, w) in enumerate(zip(task.wcet, workers))]
    lines += [f"\t{u} -> {v}" for u, v in edges] + ["}"]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_read_released_measures_the_tools_example(tmp_path):
    # by hand: chains 0-1-4-6 and 3-2-5 cover the 7 nodes, and 1 and 2 are unordered: width 2
    r = egs_released.read_released(EX1, _output(tmp_path / "ok.dot", EX1, **EX1_OUT))
    assert r == {"cores": 2, "workers": 2}


@pytest.mark.parametrize("change, message", [
    ({"edges": [(0, 1), (1, 4), (1, 5), (2, 5), (3, 2), (4, 6), (5, 6)]}, r"input edge 0 -> [23] is no longer ordered"),
    ({"edges": EX1_OUT["edges"] + [(4, 2)]}, "exceeds the deadline"),           # 0-1-4-2-5-6: 13 > 8
    ({"workers": [1, 1, 2, 1, 1, 2, 1]}, "share Worker=1 but are not ordered"),  # 3 and 1 unordered
    ({"deadline": 9}, "deadline differ"),
])
def test_read_released_refuses_an_unsound_or_altered_output(tmp_path, change, message):
    kwargs = {**EX1_OUT, **change}
    with pytest.raises(ValueError, match=message):
        egs_released.read_released(EX1, _output(tmp_path / "bad.dot", EX1, **kwargs))


def test_read_released_names_a_missing_output(tmp_path):
    with pytest.raises(FileNotFoundError, match="no output"):
        egs_released.read_released(EX1, tmp_path / "task_0000.dot")


# ---------------------------------------------------------------- errors before anything runs
def _fake_checkout(root: Path, body: str) -> Path:
    (root / "envs").mkdir(parents=True)
    (root / "envs" / "dag_sched_env.py").write_text("")
    (root / "models" / "pretrained").mkdir(parents=True)
    (root / "models" / "pretrained" / "saved_model.pb").write_text("")
    (root / "egs.py").write_text(textwrap.dedent(body))
    return root


@pytest.mark.parametrize("module", [egs_released, paper_egs])
def test_missing_or_wrong_checkout_is_a_one_line_error(tmp_path, capsys, monkeypatch, module):
    monkeypatch.delenv(egs_released.ENV_VAR, raising=False)
    cases = [(["--egs-dir", str(tmp_path / "absent")], "not a folder"),
             (["--egs-dir", str(tmp_path)], "no egs.py")]
    checkout = _fake_checkout(tmp_path / "egs", "")
    cases.append((["--egs-dir", str(checkout)], "no such interpreter"))
    if module is egs_released:
        cases.append(([], "no EGS checkout given"))
    for argv, message in cases:
        with pytest.raises(SystemExit) as exit_:
            module.main(argv + ["--out", str(tmp_path / "out")])
        assert exit_.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()[-1]
        assert message in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------- end to end with a stand-in tool
FAKE_EGS = '''
"""A stand-in for the tool's egs.py: greedy EGS from sysgym, written in the tool's output format."""
import os
import types

import gymnasium as gym

import sysgym  # noqa: F401
from sysgym.agents.heuristics.dag import GreedyWidth
from sysgym.envs.dag import load_tasks

tf = types.SimpleNamespace(saved_model=types.SimpleNamespace(load=lambda path: path))


class PpoAgent:
    def __init__(self, actor=None):
        self.actor = actor


class EGSEnv:
    def __init__(self, dag_path, workers=None, out_path=None):
        self.dag_path, self.out_path = dag_path, out_path


def egs(agent, env):
    if os.environ.get("FAKE_EGS") == "crash":
        raise RuntimeError("the stand-in was told to fail")
    task = load_tasks(env.dag_path)[0]
    game = gym.make("sysgym/DAG-EGS-v0", workload=task)
    obs, info = game.reset(seed=0)
    greedy = GreedyWidth(game)
    while True:
        obs, _, terminated, truncated, info = game.step(greedy.act(obs, info))
        if terminated or truncated:
            break
    workers = game.unwrapped.processor_assignment()
    edges = sorted(set(task.edges) | set(game.unwrapped.added_edges()))
    if os.environ.get("FAKE_EGS") == "drop":
        edges = edges[1:]
    lines = []
    for line in open(env.dag_path).read().splitlines():
        if "->" in line:
            break
        if "C=" in line:
            v = int(line.split("[")[0])
            line = line.replace('"];', ', Worker=%d"];' % (workers[v] + 1))
        lines.append(line)
    lines += ["\\t%d -> %d" % e for e in edges] + ["}"]
    open(env.out_path, "w").write("\\n".join(lines) + "\\n")
    print("EGS: input DAG is scheduled with %d workers." % len(set(workers.tolist())))
'''


@pytest.mark.skipif(not CHECKPOINT.is_file(), reason="the shipped EGS-PPO checkpoint is absent")
def test_end_to_end_with_a_stand_in_tool(tmp_path, capsys, monkeypatch):
    checkout = _fake_checkout(tmp_path / "egs", FAKE_EGS)
    out = tmp_path / "out"
    argv = ["--egs-dir", str(checkout), "--egs-python", sys.executable, "--sets", "shipped",
            "--sizes", "20", "--limit", "2", "--checkpoint", str(CHECKPOINT), "--out", str(out)]
    assert egs_released.main(argv) == 0
    # a second run on the other set keeps the first set's results
    assert egs_released.main(argv[:4] + ["--sets", "generated", "--sizes", "20", "--limit", "1",
                                         "--checkpoint", str(CHECKPOINT), "--out", str(out)]) == 0
    results = json.loads((out / "released.json").read_text())["results"]
    assert set(results) == {"layered_n20.dot", "generated n = 20"}
    assert len(results["generated n = 20"]["released"]) == 1
    shipped = results["layered_n20.dot"]
    assert shipped["tasks"] == [t.name for t in load_tasks(trace_path("dag", "layered_n20.dot"))[:2]]
    for r in results.values():
        # the stand-in plays greedy EGS on the files it was given; the script plays greedy EGS on the
        # tasks it read back from them: equal per task iff both sides saw the same tasks
        assert r["released"] == r["greedy EGS"] == r["released printed"] == r["released workers"]
        assert all(lb <= c for lb, c in zip(r["lower bound"], r["EGS-PPO"]))
    rows = list(csv.DictReader((out / "released_tasks.csv").open()))
    assert len(rows) == 3 and {row["task set"] for row in rows} == set(results)
    text = (out / "released.md").read_text()
    assert "--egs-dir EGS_DIR --sets shipped --sizes 20" in text and "--sets generated" in text
    assert "sign test p" in text and str(checkout) not in text   # the user's path stays out of the results
    capsys.readouterr()

    once = argv[:4] + ["--sets", "shipped", "--sizes", "20", "--limit", "1", "--checkpoint", str(CHECKPOINT), "--out", str(tmp_path / "failed")]
    monkeypatch.setenv("FAKE_EGS", "drop")               # an output that lost an input edge
    with pytest.raises(SystemExit) as exit_:
        egs_released.main(once)
    assert exit_.value.code == 2 and "is no longer ordered" in capsys.readouterr().err
    monkeypatch.setenv("FAKE_EGS", "crash")              # the tool itself fails
    with pytest.raises(SystemExit):
        egs_released.main(once)
    assert "told to fail" in capsys.readouterr().err.strip().splitlines()[-1]


def test_sign_test_p_values_are_probabilities():
    rng = np.random.default_rng(0)
    for _ in range(50):
        a, b = rng.integers(0, 4, 12), rng.integers(0, 4, 12)
        assert 0.0 < egs_released.sign_test(a, b)["p"] <= 1.0


def _saved_run(folder: Path, label: str, released: list[int], checkpoint: str = "policy.pt") -> Path:
    ours = [3] * len(released)
    result = {"tasks": [f"t{i}" for i in range(len(released))], "nodes": [20] * len(released), "EGS-PPO": ours,
              "released": released, "released printed": released, "released workers": released,
              "greedy EGS": released, "lower bound": [2] * len(released), "released seconds": 1.0}
    meta = {"commands": {label: f"cmd {label}"}, "egs_commit": "abc", "egs_python_version": "3.11",
            "checkpoint": checkpoint, "machine": "m", "generated": egs_released.GENERATED}
    folder.mkdir(parents=True)
    (folder / "released.json").write_text(json.dumps({"meta": meta, "results": {label: result}}))
    return folder


def test_combine_merges_runs_and_refuses_another_checkpoint(tmp_path, capsys):
    a = _saved_run(tmp_path / "a", "layered_n20.dot", [4] * 8)          # EGS-PPO 3 < 4 on all 8: p = 2/256
    b = _saved_run(tmp_path / "b", "generated n = 20", [3, 3, 4, 2])    # 1 fewer, 2 ties, 1 more: p = 1
    assert egs_released.main(["--combine", str(a), str(b), "--out", str(tmp_path / "out")]) == 0
    saved = json.loads((tmp_path / "out" / "released.json").read_text())
    assert set(saved["results"]) == {"layered_n20.dot", "generated n = 20"}
    assert saved["meta"]["commands"] == {"layered_n20.dot": "cmd layered_n20.dot",
                                         "generated n = 20": "cmd generated n = 20"}
    text = (tmp_path / "out" / "released.md").read_text()
    assert "| 8 / 0 / 0 " in text and "0.00781" in text and "| 1 / 2 / 1 " in text
    c = _saved_run(tmp_path / "c", "layered_n40.dot", [4], checkpoint="other.pt")
    with pytest.raises(SystemExit) as exit_:
        egs_released.main(["--combine", str(a), str(c), "--out", str(tmp_path / "out2")])
    assert exit_.value.code == 2 and "another tool commit or checkpoint" in capsys.readouterr().err
