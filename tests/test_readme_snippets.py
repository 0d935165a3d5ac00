"""Every ```python block of README.md and of the docs pages runs as printed (issues #21, #22).

Blocks are read from the README and docs/ at test time (``benchmarks.readme_snippets.python_blocks``), never
copied. Each runs in a fresh namespace, in an empty folder, after the prelude the README states
(``import gymnasium as gym``, ``numpy as np``, ``sysgym``). The only edits are the smaller budgets
below, each of which must still be found in its block. Skipped: RLlib's blocks (they run in
``tests/integrations`` under ``.venv-rllib``) and blocks importing a library that is not installed.
"""

from __future__ import annotations

import ast
import importlib.util

import numpy as np
import pytest

from benchmarks.readme_snippets import PRELUDE, python_blocks

# block name -> {printed text: text for the test run}: smaller budgets (steps, episodes, episode
# lengths, env counts), nothing else
BUDGETS = {
    "Using sysgym with ... / Stable-Baselines3 / sb3-contrib": {"learn(20_000)": "learn(300)",
                                                              "num_envs=16": "num_envs=4"},
    "Using sysgym with ... / TorchRL": {"rollout(200,": "rollout(40,"},
    "Using sysgym with ... / Tianshou (2.x)": {'"sysgym/CC-Discrete-v0", num_envs=4)':
                                               '"sysgym/CC-Discrete-v0", num_envs=4, max_episode_steps=40)'},
    "DeepRM cluster scheduling #0": {"episodes=20": "episodes=1"},
    "Appointment scheduling: strategy learning problems P1–P3 #0": {"episodes=50": "episodes=2",
                                                                    "draws=32": "draws=2"},
    "Agents #0": {"steps=1_000_000": "steps=1_600"},
    "Agents #1": {"states=3000": "states=60"},
}


def _checks_tianshou(ns):
    assert ns["stats"].n_collected_episodes == 4


def _checks_torchrl(ns):
    rollout = ns["rollout"]
    mask, action = rollout["action_mask"], rollout["action"]
    assert rollout.batch_size[0] == 16 and rollout.batch_size[1] > 0
    assert mask.gather(-1, action.long().unsqueeze(-1)).all(), "TorchRL's ActionMask let a masked action through"


def _checks_abr(ns):
    state, fork = ns["env"].unwrapped.get_state()["arrays"], ns["fork"]["arrays"]
    assert all(np.array_equal(state[k], fork[k]) for k in fork), "set_state(fork) did not restore the fork"


# block name -> what must hold after it ran (beyond "it did not raise")
CHECKS = {
    "Using sysgym with ... / CleanRL-style loops": lambda ns: np.all(np.isfinite(ns["rewards"])),
    "Using sysgym with ... / TorchRL": _checks_torchrl,
    "Using sysgym with ... / Tianshou (2.x)": _checks_tianshou,
    "Using sysgym with ... / PettingZoo": lambda ns: not ns["env"].agents,
    "ABR: adaptive-bitrate video streaming over replayed traces #0": _checks_abr,
}

BLOCKS = python_blocks()


def _is_rllib(block) -> bool:
    return block.section.startswith("Scaling out with Ray") or "rllib" in block.code.lower()


def _missing_module(code: str) -> str | None:
    for node in ast.walk(ast.parse(code)):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
            [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else []
        for name in names:
            if importlib.util.find_spec(name.split(".")[0]) is None:
                return name
    return None


def test_every_budget_and_check_names_one_block():
    names = [b.name for b in BLOCKS]
    assert len(names) == len(set(names)), "two python blocks (README and docs) share a name"
    stale = sorted((set(BUDGETS) | set(CHECKS)) - set(names))
    assert not stale, f"python blocks renamed or removed: {stale}; blocks now: {names}"


@pytest.mark.parametrize("block", BLOCKS, ids=[b.name for b in BLOCKS])
def test_readme_block_runs_as_printed(block, tmp_path, monkeypatch):
    if _is_rllib(block):
        pytest.skip("RLlib blocks run in tests/integrations (.venv-rllib)")
    missing = _missing_module(block.code)
    if missing:
        pytest.skip(f"{missing} is not installed")
    code = block.code
    for printed, smaller in BUDGETS.get(block.name, {}).items():
        assert printed in code, f"{block.source} line {block.line}: the block no longer contains {printed!r}"
        code = code.replace(printed, smaller)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__readme__"}
    exec(compile(PRELUDE + code, f"{block.source}:{block.line}", "exec"), namespace)
    check = CHECKS.get(block.name)
    if check is not None:
        assert check(namespace) is not False, f"{block.source} line {block.line}: the block ran but its result is wrong"
