"""Model files hold plain data only: opening one made by someone else cannot run their code."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gymnasium import spaces

from sysgym.agents.ppo.checkpoint import FORMAT, load_checkpoint
from sysgym.agents.serialization import dumps, loads, space_from_data, space_to_data


class _Planted:
    """Unpickling this object creates a file: the proof that code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_checkpoint_with_a_pickled_object_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "code_ran"
    path = tmp_path / "checkpoint.pt"
    torch.save({"format": FORMAT, "config": "{}", "spaces": _Planted(marker)}, path)
    with pytest.raises(ValueError, match="refused to load"):
        load_checkpoint(path)
    assert not marker.exists()


def test_a_foreign_or_damaged_checkpoint_is_a_clear_error(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"format": "something-else"}, path)
    with pytest.raises(ValueError, match="not a sysgym PPO checkpoint"):
        load_checkpoint(path)
    torch.save({"format": FORMAT, "config": "{", "extra": {}, "spaces": "[]"}, path)
    with pytest.raises(ValueError, match="damaged"):
        load_checkpoint(path)
    path.write_bytes(b"\x00not a torch file")
    with pytest.raises(ValueError, match="not a readable"):
        load_checkpoint(path)
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.pt")


@pytest.mark.parametrize("space", [
    spaces.Box(-np.inf, np.inf, shape=(3,), dtype=np.float32),
    spaces.Box(np.array([0.0, -1.0]), np.array([1.0, 2.5]), dtype=np.float64),
    spaces.Box(0, 5, shape=(2, 3), dtype=np.int64),
    spaces.Discrete(7, start=1),
    spaces.MultiDiscrete([3, 4]),
    spaces.MultiBinary(5),
    spaces.Dict({"nodes": spaces.Box(0.0, 1.0, shape=(4, 2)), "mask": spaces.MultiBinary(16)}),
])
def test_spaces_round_trip_through_plain_data(space):
    assert space_from_data(space_to_data(space)) == space


def test_settings_round_trip_keeps_tuples_and_refuses_objects():
    value = {"hidden_sizes": (64, 64), "env_kwargs": {"num_nodes": (20, 40), "x": [1, 2.5, None]}}
    assert loads(dumps(value)) == value
    with pytest.raises(ValueError, match="cannot be stored"):
        dumps({"workload": object()})
    with pytest.raises(ValueError, match="not finite"):
        dumps({"lr": float("nan")})


# ---------------------------------------------------------------- hostile checkpoints through `evaluate`
# (issue #20: IDs from files, tracebacks, NaN weights, sizes that allocate gigabytes): exit status 2
# and one line on stderr. The module-import case runs in a fresh process (it would print there).

ENV = "sysgym/Appointments-P1-v0"


def _checkpoint(path, *, env_id=ENV, config=None, edit=None):
    """A real (untrained) checkpoint for ``env_id``'s spaces, then ``edit(payload)`` applied to its data."""
    import gymnasium as gym

    from sysgym.agents.ppo.checkpoint import save_checkpoint
    from sysgym.agents.ppo.config import default_config
    from sysgym.agents.ppo.networks import ActorCritic
    from sysgym.agents.ppo.observations import ObservationAdapter

    env = gym.make(ENV)
    cfg = default_config(ENV, **(config or {}))
    model = ActorCritic(env.observation_space, env.action_space, cfg)
    save_checkpoint(path, model, ObservationAdapter(env.observation_space), cfg, env.observation_space,
                    env.action_space, ENV)
    payload = torch.load(path, weights_only=True)
    payload["env_id"] = env_id
    if edit is not None:
        edit(payload)
    torch.save(payload, path)
    return path


class _Result:
    def __init__(self, returncode, stdout, stderr):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


def _evaluate(path, capsys=None):
    args = ["evaluate", "--checkpoint", str(path), "--episodes", "1", "--no-heuristics"]
    if capsys is not None:
        from sysgym.cli import main

        capsys.readouterr()
        code = main(args)
        out = capsys.readouterr()
        return _Result(code, out.out, out.err)
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "sysgym", *args], capture_output=True, text=True, timeout=120)


def _one_line_error(result, expected):
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr and expected in result.stderr, result.stderr


def test_a_checkpoint_naming_a_module_prefix_is_refused_before_the_module_is_imported(tmp_path):
    # gym.make("this:sysgym/...") would import the module `this`, which prints the Zen of Python
    path = _checkpoint(tmp_path / "c.pt", env_id="this:sysgym/Appointments-P1-v0")
    result = _evaluate(path)
    _one_line_error(result, "is not a registered sysgym environment")
    assert "Zen of Python" not in result.stdout + result.stderr


def test_an_integer_env_id_is_one_line(tmp_path, capsys):
    _one_line_error(_evaluate(_checkpoint(tmp_path / "c.pt", env_id=7), capsys), "env_id must be a string")


def test_a_text_file_as_checkpoint_is_one_line(tmp_path, capsys):
    notes = tmp_path / "notes.txt"
    notes.write_text("remember to train the agent\n")
    _one_line_error(_evaluate(notes, capsys), "not a readable sysgym PPO checkpoint")


def test_deeply_nested_json_in_the_config_is_one_line(tmp_path, capsys):
    def nest(payload):
        payload["config"] = "[" * 100_000 + "]" * 100_000

    _one_line_error(_evaluate(_checkpoint(tmp_path / "c.pt", edit=nest), capsys), "nested")


def test_nan_weights_are_refused_naming_the_file(tmp_path, capsys):
    def poison(payload):
        first = next(iter(payload["model"]))
        payload["model"][first][0] = float("nan")

    path = _checkpoint(tmp_path / "c.pt", edit=poison)
    result = _evaluate(path, capsys)
    _one_line_error(result, "non-finite")
    assert str(path) in result.stderr


def test_settings_describing_a_huge_network_are_refused_before_it_is_built(tmp_path, capsys):
    from sysgym.agents.ppo.checkpoint import load_checkpoint
    from sysgym.agents.serialization import dumps, loads

    def widen(payload):  # the weights stay small: only the settings claim 2 x 40000 x 40000 weights
        payload["config"] = dumps({**loads(payload["config"]), "hidden_sizes": (40000, 40000)})

    path = _checkpoint(tmp_path / "c.pt", edit=widen)
    with pytest.raises(ValueError, match="parameters"):  # in-process: nothing would be allocated here
        load_checkpoint(path)
    _one_line_error(_evaluate(path, capsys), "lower hidden_sizes")


def test_a_huge_discrete_action_space_is_refused_through_evaluate(tmp_path, capsys):
    import json

    def grow(payload):
        obs, act = json.loads(payload["spaces"])
        act["n"] = 2**48
        payload["spaces"] = json.dumps([obs, act])

    _one_line_error(_evaluate(_checkpoint(tmp_path / "c.pt", edit=grow), capsys), "Discrete(281474976710656)")


def test_settings_of_the_wrong_type_in_a_checkpoint_are_one_line(tmp_path, capsys):
    from sysgym.agents.serialization import dumps, loads

    def retype(payload):
        payload["config"] = dumps({**loads(payload["config"]), "num_envs": "many"})

    _one_line_error(_evaluate(_checkpoint(tmp_path / "c.pt", edit=retype), capsys),
                    "PPOConfig.num_envs must be int")


def test_a_network_with_nan_weights_is_never_saved(tmp_path):
    from sysgym.agents.ppo.checkpoint import save_checkpoint

    path = tmp_path / "c.pt"
    _checkpoint(path)
    before = path.read_bytes()
    import gymnasium as gym

    from sysgym.agents.ppo.config import default_config
    from sysgym.agents.ppo.networks import ActorCritic
    from sysgym.agents.ppo.observations import ObservationAdapter

    env = gym.make(ENV)
    cfg = default_config(ENV)
    model = ActorCritic(env.observation_space, env.action_space, cfg)
    with torch.no_grad():
        next(model.parameters())[0] = float("inf")
    with pytest.raises(ValueError, match="non-finite"):
        save_checkpoint(path, model, ObservationAdapter(env.observation_space), cfg, env.observation_space,
                        env.action_space, ENV)
    assert path.read_bytes() == before  # the earlier checkpoint is untouched
