"""Rendered frames: byte-identical to a recorded revision, and showing what the state holds.

The first test replays seeded episodes of every family (several IDs and kwargs, two sub-envs,
the PettingZoo CC env too) and compares the sha256 of each ``ansi`` and ``rgb_array`` frame with
``tests/render_frames.sha256``. That file is a *regression fixture*: it was written by the code
itself (the revision named in its header), so it proves only "no behaviour change" across a
refactor of the renderers (issue #26), not that a frame is right. Rewrite it after a deliberate
change of a picture with ``python tests/test_render_frames.py --write``. rgb frames carry text
drawn with Pillow's font, so their hashes are compared only under the Pillow version the file
names.

The other tests check by hand what a frame shows, from the actions taken and the observation.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Iterator
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import sysgym  # noqa: F401
from sysgym.envs.cc import parallel_env

FIXTURE = Path(__file__).with_name("render_frames.sha256")
NUM_ENVS = 2
STEPS = (1, 2, 5, 12, 30, 60)          # frames after reset, before it and after these many steps
CASES = {
    "deeprm-image": ("sysgym/DeepRM-Image-v0", {}),
    "deeprm-2res-busy": ("sysgym/DeepRM-v0", dict(num_resources=2, new_job_rate=0.8, backlog=6, window=4)),
    "abr": ("sysgym/ABR-v0", {}),
    "abr-pensieve-short": ("sysgym/ABR-Pensieve-v0", {}),
    "cc-continuous-2links": ("sysgym/CC-v0", dict(n_links=2)),
    "cc-discrete": ("sysgym/CC-Discrete-v0", {}),
    "appointments-p1": ("sysgym/Appointments-P1-v0", {}),
    "appointments-p2": ("sysgym/Appointments-P2-v0", {}),
    "appointments-p3-v1": ("sysgym/Appointments-P3-v1", {}),
    "dag": ("sysgym/DAG-EGS-v0", {}),
    "dag-forkjoin": ("sysgym/DAG-EGS-v0", dict(workload="forkjoin", num_nodes=12, max_nodes=24)),
}


def _pillow() -> str:
    try:
        import PIL
    except ImportError:
        return "none"
    return PIL.__version__


def _digest(frame: object) -> str:
    if isinstance(frame, str):
        return hashlib.sha256(frame.encode("utf-8")).hexdigest()
    assert isinstance(frame, np.ndarray) and frame.dtype == np.uint8
    head = f"{frame.shape}".encode()
    return hashlib.sha256(head + np.ascontiguousarray(frame).tobytes()).hexdigest()


def _actions(space: gym.Space, mask: np.ndarray | None, rng: np.random.Generator, n: int) -> np.ndarray:
    """Uniform valid actions (by the mask) for ``n`` sub-envs, or uniform in a Box."""
    if mask is None:
        low, high = space.low, space.high
        return rng.uniform(low, high, size=(n, *space.shape)).astype(space.dtype)
    return np.array([rng.choice(np.flatnonzero(m)) for m in mask])


def _vector_frames(name: str) -> Iterator[tuple[str, str]]:
    env_id, kwargs = CASES[name]
    vec = gym.make_vec(env_id, num_envs=NUM_ENVS, vectorization_mode="vector_entry_point", **kwargs)
    env = vec.unwrapped
    rng = np.random.default_rng(11)

    def shot(label: str) -> Iterator[tuple[str, str]]:
        for i in range(NUM_ENVS):
            for mode in ("ansi", "rgb_array"):
                yield f"{name} {label} env{i} {mode}", _digest(env.render_frame(i, mode))

    yield from shot("unreset")
    _, info = vec.reset(seed=5)
    yield from shot("step0")
    for t in range(1, max(STEPS) + 1):
        mask = info.get("action_mask")
        _, _, _, _, info = vec.step(_actions(env.single_action_space, mask, rng, NUM_ENVS))
        if t in STEPS:
            yield from shot(f"step{t}")
    vec.close()


def _parallel_frames(name: str) -> Iterator[tuple[str, str]]:
    n_flows = int(name.rsplit("-", 1)[1])
    for mode in ("ansi", "rgb_array"):
        par = parallel_env(n_flows=n_flows, render_mode=mode)
        rng = np.random.default_rng(3)
        par.reset(seed=2)
        yield f"{name} step0 {mode}", _digest(par.render())
        for t in range(1, 21):
            par.step({a: rng.uniform(-1.0, 1.0, size=1).astype(np.float32) for a in par.agents})
            if t in STEPS:
                yield f"{name} step{t} {mode}", _digest(par.render())


PARALLEL = ("cc-parallel-1", "cc-parallel-3")


def frames(name: str) -> Iterator[tuple[str, str]]:
    """(key, sha256) of every recorded frame of case ``name``, in a fixed order."""
    return _parallel_frames(name) if name in PARALLEL else _vector_frames(name)


def _read_fixture() -> tuple[str, dict[str, str]]:
    pillow, table = "", {}
    for line in FIXTURE.read_text(encoding="utf-8").splitlines():
        if line.startswith("# pillow "):
            pillow = line.split()[2]
        if not line.strip() or line.startswith("#"):
            continue
        key, digest = line.rsplit(" ", 1)
        table[key] = digest
    return pillow, table


@pytest.mark.parametrize("name", [*CASES, *PARALLEL])
def test_frames_are_byte_identical_to_the_recorded_revision(name):
    pillow, table = _read_fixture()
    expected = {k: v for k, v in table.items() if k.split()[0] == name}
    compare_rgb = pillow == _pillow()
    got = dict(frames(name))
    assert set(got) == set(expected), "the fixture lists other frames: rewrite it with --write"
    differ = [k for k in got if (compare_rgb or k.endswith("ansi")) and got[k] != expected[k]]
    assert not differ, f"{len(differ)} frames changed, first: {differ[:5]}"
    if not compare_rgb:
        pytest.skip(f"ansi frames match; rgb hashes were recorded under Pillow {pillow}, this is {_pillow()}")


# ------------------------------------------------------------------ what the frames show
def _rollout(env_id: str, actions: list[int], **kwargs):
    env = gym.make(env_id, **kwargs)
    env.reset(seed=4)
    for a in actions:
        env.step(a)
    return env


def test_deeprm_image_cells_have_their_column_colours():
    """Cluster columns are blue (52, 101, 164) where the image holds 1, the empty cells the
    background (250, 250, 250); one image cell is 6 x 6 px under a 2 x 16 px caption."""
    env = _rollout("sysgym/DeepRM-Image-v0", [], render_mode="rgb_array")
    for _ in range(3):                                   # schedule what fits: the cluster fills up
        mask = env.unwrapped.action_masks()
        env.step(int(np.flatnonzero(mask[:-1])[0]) if mask[:-1].any() else len(mask) - 1)
    image = env.unwrapped._vec._state["obs"][0]          # (horizon, width) in [0, 1]
    frame = env.render()
    capacity = env.unwrapped.config.capacity[0]
    rows, cols = np.nonzero(image[:, :capacity] == 1.0)
    assert len(rows), "nothing allocated after three steps"
    pixel = frame[32 + 6 * rows[0] + 3, 6 * cols[0] + 3]
    assert pixel.tolist() == [52, 101, 164]
    rows, cols = np.nonzero(image[:, :capacity] == 0.0)
    assert frame[32 + 6 * rows[0] + 3, 6 * cols[0] + 3].tolist() == [250, 250, 250]


def test_abr_text_lists_the_levels_chosen():
    chosen = [0, 5, 2, 2, 3, 1, 4]
    env = _rollout("sysgym/ABR-v0", chosen, render_mode="ansi")
    text = env.render()
    assert text.startswith(f"chunk {len(chosen)}/")
    assert "levels: 0522314\n" in text
    assert "last chunk: level 4 (" in text


def test_cc_text_counts_intervals_links_and_flows():
    env = _rollout("sysgym/CC-v0", [np.zeros(1, np.float32)] * 7, render_mode="ansi", n_links=3)
    lines = env.render().splitlines()
    assert " MI 7/400 " in lines[0]
    assert [line.split(":")[0] for line in lines[1:]] == ["link 0", "link 1", "link 2", "flow 0"]


def test_appointments_text_counts_what_is_left():
    """P1: 6 short and 6 long clients; after short, long, short two shorts and one long are placed."""
    env = _rollout("sysgym/Appointments-P1-v0", [0, 1, 0], render_mode="ansi")
    status = env.render().splitlines()[2]
    assert status.startswith("item 3/12  left short=4 long=5 ")


def test_dag_text_lists_the_added_edge():
    env = gym.make("sysgym/DAG-EGS-v0", render_mode="ansi")
    _, info = env.reset(seed=4)
    action = int(np.flatnonzero(info["action_mask"])[0])
    n = env.unwrapped.config.max_nodes                  # action = u * max_nodes + v
    env.step(action)
    assert f"added edges: {action // n}->{action % n}\n" in env.render()


if __name__ == "__main__" and sys.argv[1:] == ["--write"]:
    import subprocess
    revision = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).parent).stdout.strip()
    body = "\n".join(f"{key} {digest}" for name in [*CASES, *PARALLEL] for key, digest in frames(name))
    FIXTURE.write_text(
        "# Byte-identity regression fixture for the renderer refactor (issue #26): sha256 of each frame\n"
        f"# of tests/test_render_frames.py, produced by the code at revision {revision}.\n"
        "# Expected values from the implementation itself: they check only that a refactor changes\n"
        "# no frame. Rewrite with `python tests/test_render_frames.py --write` after a deliberate change.\n"
        f"# pillow {_pillow()}\n" + body + "\n", encoding="utf-8")
    print(f"wrote {FIXTURE}")
