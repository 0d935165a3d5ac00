"""``sysgym benchmark`` keeps finished episodes: --out is checked before any work, every finished
unit is saved as it finishes, Ctrl-C / SIGTERM exit 130 with one line and stop the workers, and
--resume plays only what is missing and gives what an uninterrupted run gives."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Fast for the first unit each process builds, then slow (unless SLOW=0): a run is interrupted
# after it has saved something and before it is done, whatever the machine's speed.
POLICY = '''
import os, time
import numpy as np

BUILT = [0]

class Policy:
    def __init__(self, env, pause):
        self.pause = pause
    def act(self, obs, info):
        time.sleep(self.pause)
        return np.argmax(info["action_mask"], axis=-1)

def make(env):
    BUILT[0] += 1
    slow = os.environ.get("SLOW", "1") == "1" and BUILT[0] > 1
    if os.environ.get("MARK"):
        open(os.environ["MARK"], "a").write("built\\n")
    return Policy(env, 0.5 if slow else 0.0)
'''


def _policy(tmp_path):
    path = tmp_path / "policy.py"
    path.write_text(textwrap.dedent(POLICY))
    return f"{path}:make"


def _start(args, **env):
    return subprocess.Popen([sys.executable, "-m", "sysgym", "benchmark", *args, "--no-progress"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **env}, start_new_session=True)


def _wait_for(path, proc, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, f"ended before saving anything: {proc.communicate()}"
        assert time.monotonic() < deadline, "nothing saved in time"
        time.sleep(0.05)


def _children(pid):
    found = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found |= {int(c) for c in (task / "children").read_text().split()}
        except OSError:
            pass
    return found


def _alive(pid):
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _saved_episodes(out):
    data = json.loads((out / "episodes.json").read_text())
    assert data["format"] == "sysgym-benchmark-episodes/1"
    return sum(u["stop"] - u["start"] for u in data["units"]), data


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs /proc to find the workers")
def test_sigterm_saves_finished_episodes_exits_130_and_stops_its_workers(tmp_path):
    out = tmp_path / "out"
    proc = _start(["--policy", _policy(tmp_path), "--suite", "appointments", "--episodes", "100",
                   "--jobs", "2", "--out", str(out)])
    _wait_for(out / "episodes.json", proc)
    children = _children(proc.pid)
    assert children, "the workers should be running"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "interrupted" in lines[0] and "--resume" in lines[0], err
    deadline = time.monotonic() + 5.0
    while any(_alive(c) for c in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [c for c in children if _alive(c)], "a worker (or the resource tracker) outlived the benchmark by 5 s"
    episodes, data = _saved_episodes(out)
    assert episodes >= 50 and all(len(u["values"]["return"]) == u["stop"] - u["start"] for u in data["units"])
    assert not (out / "results.json").exists()


def test_ctrl_c_then_resume_gives_what_an_uninterrupted_run_gives(tmp_path, monkeypatch, capsys):
    from sysgym.benchmark.commands import main

    policy = _policy(tmp_path)
    out, fresh = tmp_path / "out", tmp_path / "fresh"
    args = ["--policy", policy, "--suite", "appointments", "--episodes", "60", "--no-progress"]
    proc = _start([*args, "--out", str(out)])
    _wait_for(out / "episodes.json", proc)
    os.killpg(proc.pid, signal.SIGINT)            # what a terminal's Ctrl-C does
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and len(err.strip().splitlines()) == 1, err
    saved, data = _saved_episodes(out)
    assert 0 < len(data["units"]) < 6

    mark = tmp_path / "built.txt"
    monkeypatch.setenv("SLOW", "0")
    monkeypatch.setenv("MARK", str(mark))
    assert main([*args, "--out", str(out), "--resume"]) == 0
    assert "resumed:" in capsys.readouterr().err
    assert len(mark.read_text().splitlines()) == 6 - len(data["units"]), "only the missing units are played"
    assert main([*args, "--out", str(fresh)]) == 0
    resumed = json.loads((out / "results.json").read_text())
    whole = json.loads((fresh / "results.json").read_text())
    assert [e["episode_values"] for e in resumed["envs"]] == [e["episode_values"] for e in whole["envs"]]


def test_resume_refuses_another_policys_episodes(tmp_path, capsys):
    from sysgym.benchmark.commands import main

    out = tmp_path / "out"
    assert main(["--policy", "heuristic:alternate", "--suite", "appointments", "--episodes", "2",
                 "--out", str(out), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["--policy", "heuristic:random", "--suite", "appointments", "--episodes", "2",
                 "--out", str(out), "--resume", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "saved by a run of policy 'heuristic:alternate'" in err[0]


@pytest.mark.parametrize("make_out, expected", [
    (lambda p: p / "full", "folder is not empty; pass --force"),
    (lambda p: p / "a_file", "exists and is not a folder"),
    (lambda p: p / "a_file" / "below", "cannot write there"),
])
def test_out_is_checked_before_any_episode(tmp_path, capsys, make_out, expected):
    from sysgym.benchmark.commands import main

    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("mine")
    (tmp_path / "a_file").write_text("mine")
    mark = tmp_path / "built.txt"
    os.environ["MARK"] = str(mark)
    try:
        code = main(["--policy", _policy(tmp_path), "--suite", "appointments", "--episodes", "2",
                     "--out", str(make_out(tmp_path)), "--no-progress"])
    finally:
        del os.environ["MARK"]
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expected in err[0], err
    assert not mark.exists(), "the policy was built: work started before --out was checked"
    assert (tmp_path / "full" / "notes.txt").read_text() == "mine"


def test_force_writes_into_a_non_empty_folder(tmp_path):
    from sysgym.benchmark.commands import main

    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert main(["--policy", "heuristic:alternate", "--suite", "appointments", "--episodes", "2",
                 "--out", str(out), "--force", "--no-progress"]) == 0
    assert (out / "results.json").is_file() and (out / "episodes.json").is_file()
