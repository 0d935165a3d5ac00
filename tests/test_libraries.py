"""The README's "Using sysgym with ..." snippets, run as printed (a smaller training budget only).

Each snippet is executed with ``gymnasium as gym``, ``numpy as np`` and ``sysgym`` imported; a
snippet whose library is not installed is skipped. RLlib's snippets run in ``tests/integrations``.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
# library -> a smaller budget for the test run (the README shows realistic ones)
SNIPPETS = {
    "Stable-Baselines3": ("sb3_contrib", {"learn(20_000)": "learn(300)", "num_envs=16": "num_envs=4"}),
    "CleanRL-style": (None, {}),
    "TorchRL": ("torchrl", {}),
    "Tianshou": ("tianshou", {}),
    "PettingZoo": ("pettingzoo", {}),
}


def _snippet(heading: str) -> str:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Using sysgym with ...", 1)[1].split("\n## ", 1)[0]
    part = section.split(f"**{heading}", 1)[1]
    match = re.search(r"```python\n(.*?)```", part, re.S)
    assert match, f"no code block after **{heading}"
    return match.group(1)


@pytest.mark.parametrize("heading", list(SNIPPETS))
def test_readme_snippet_runs(heading):
    module, budget = SNIPPETS[heading]
    if module and importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed")
    code = _snippet(heading)
    for old, new in budget.items():
        assert old in code, f"the README snippet no longer contains {old!r}"
        code = code.replace(old, new)
    namespace: dict = {}
    exec("import gymnasium as gym\nimport numpy as np\nimport sysgym\n" + code, namespace)
    if heading == "CleanRL-style":
        assert np.all(np.isfinite(namespace["rewards"]))
    if heading == "TorchRL":
        assert namespace["rollout"]["next", "reward"].shape[0] > 0
    if heading == "Tianshou":
        assert namespace["stats"].n_collected_episodes == 4
    if heading == "PettingZoo":
        assert not namespace["env"].agents
