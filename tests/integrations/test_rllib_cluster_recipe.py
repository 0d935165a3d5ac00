"""docs/ray.md's "Train on a cluster" shell recipe, run as printed against a 2-node cluster here.

The three lines are read from the page's first code block under that heading (so a change to the
page changes what runs), and only these substitutions are made: the port (6379 -> a free one),
``HEAD_IP`` -> 127.0.0.1, and the training size (``--steps``, ``--num-env-runners``). The test
appends flags that a shared test machine needs and the recipe does not: per-node ports that
default to fixed numbers (dashboard, agent), small object stores, and the head's
``--num-cpus=0`` (no env runner fits there, so each must go to the other node); the train line
gets ``--num-envs``, ``--out`` and tiny PPO settings. Every Ray process runs in the test's own
``RAY_TMPDIR`` with ``RAY_AUTH_MODE=disabled`` (Ray 2.60 otherwise turns token authentication on
when a token file exists in the home folder, and a joining node must then present it).

``ray stop`` is not run: it ends every Ray process of the machine, other users' too. The test ends
the processes whose command line names its own temporary folder, and checks that none is left.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

pytest.importorskip("ray.rllib", reason="Ray RLlib is not installed here; its tests run in .venv-rllib")

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "ray.md"
HEADING = "## Train on a cluster"
RESOURCE = "sysgym_recipe_node"
COMMAND_TIMEOUT_S = 240


def recipe_commands(text: str) -> list[str]:
    """The command lines (comments dropped) of the first code block under :data:`HEADING`."""
    section = text.split(HEADING, 1)[1]
    block = re.search(r"^```[^\n]*\n(.*?)^```", section, flags=re.S | re.M)
    assert block, f"{DOC}: no code block under {HEADING!r}"
    lines = [line.split("#", 1)[0].strip() for line in block.group(1).splitlines()]
    return [line for line in lines if line]


def test_the_recipe_block_is_what_this_test_runs():
    head, worker, train = recipe_commands(DOC.read_text())
    assert head == "ray start --head --port=6379"
    assert worker == "ray start --address=HEAD_IP:6379"
    assert train.startswith("RAY_ADDRESS=auto sysgym train --engine rllib --env ")
    assert re.search(r"--steps \d+", train) and re.search(r"--num-env-runners \d+", train)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pids_under(folder: str) -> list[int]:
    """Processes whose command line names ``folder`` (the Ray processes of this test's cluster)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[-1].split()[0]
        except OSError:
            continue
        if folder in cmdline and state != "Z":
            pids.append(int(entry.name))
    return pids


def _end_processes(folder: str, wait_s: float = 10.0) -> list[int]:
    """SIGTERM, then SIGKILL, the processes under ``folder``; returns those still alive."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in _pids_under(folder):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + wait_s
        while _pids_under(folder) and time.monotonic() < deadline:
            time.sleep(0.2)
    return _pids_under(folder)


def _run(command: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    done = subprocess.run(command, shell=True, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=COMMAND_TIMEOUT_S, executable="/bin/bash")
    if done.returncode:  # the log lines, without the tracebacks' source lines
        lines = [line for line in done.stderr.splitlines() if line[:1] not in (" ", "^", "")]
        raise AssertionError(f"{command}\n-> exit {done.returncode}\n" + "\n".join(lines[-40:]))
    return done


RUNNER_NODES = """
import json, sys, ray
ray.init(address=sys.argv[1], log_to_driver=False)
nodes = {n["NodeID"]: n for n in ray.nodes()}
runners = [a for a in ray._private.state.actors().values() if "EnvRunner" in a["ActorClassName"]]
print(json.dumps([sorted(nodes[a["Address"]["NodeID"]]["Resources"]) for a in runners]))
"""


def test_train_on_a_cluster_recipe_runs_as_printed(tmp_path):
    head, worker, train = recipe_commands(DOC.read_text())
    port = _free_port()
    address = f"127.0.0.1:{port}"
    head = head.replace("6379", str(port)) + (
        f" --num-cpus=0 --object-store-memory=100000000 --include-dashboard=false"
        f" --dashboard-port={_free_port()} --dashboard-agent-listen-port={_free_port()}")
    worker = worker.replace("HEAD_IP", "127.0.0.1").replace("6379", str(port)) + (
        f" --num-cpus=2 --resources='{{\"{RESOURCE}\": 2}}' --object-store-memory=100000000"
        f" --dashboard-agent-listen-port={_free_port()}")
    out = tmp_path / "run"
    train = re.sub(r"--steps \d+", "--steps 128", train)
    train = re.sub(r"--num-env-runners \d+", "--num-env-runners 1", train) + (
        f" --num-envs 2 --out {out} train_batch_size_per_learner=64 minibatch_size=32 num_epochs=1"
        " fcnet_hiddens=16 env.num_nodes=5,7 env.max_nodes=7")
    assert "--env sysgym/DAG-EGS-v0" in train  # the env kwargs above are DAG-EGS's

    folder = tempfile.mkdtemp(prefix="sgrecipe", dir="/tmp")  # short: Ray's socket paths must fit
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env.update(PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}", RAY_TMPDIR=folder,
               RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="disabled", PYTHONUNBUFFERED="1")
    try:
        _run(head, env)
        _run(worker, env)
        done = _run(train, env)
        nodes = json.loads(_run(f"{sys.executable} -c '{RUNNER_NODES}' {address}", env).stdout.strip().splitlines()[-1])
    finally:
        alive = _end_processes(folder)
        shutil.rmtree(folder, ignore_errors=True)
    assert not alive, f"Ray processes of the recipe's cluster survived: {alive}"
    assert "checkpoint:" in done.stdout, done.stdout[-2000:]
    with open(out / "progress.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert int(rows[-1]["global_step"]) >= 128 and float(rows[-1]["metric/invalid_actions"]) == 0.0
    assert (out / "checkpoint").is_dir()
    # one env runner, on the node that has the resource (the head has no CPU for it)
    assert nodes and all(RESOURCE in resources for resources in nodes), nodes
