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
