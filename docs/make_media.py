"""Animated GIFs of one episode per family for the docs site, from each env's own rgb_array render.

A baseline heuristic acts; under every frame a line gives the step, the heuristic and the action
it took. Episodes are cut at ``MAX_FRAMES`` decisions and every ``STRIDE``-th frame is kept, so
the whole script runs in seconds and each GIF stays small. Writes ``docs/media/<family>.gif``
(ignored by git). ``python docs/make_media.py [--out DIR] [--only FAMILY ...]``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

# family -> (env ID, heuristic name, decisions shown, keep every k-th frame, seed, env kwargs)
EPISODES: dict[str, tuple[str, str, int, int, int, dict]] = {
    "deeprm": ("sysgym/DeepRM-Compact-v0", "sjf", 120, 2, 0, {"new_job_rate": 0.7}),
    "dag": ("sysgym/DAG-EGS-v0", "greedy", 30, 1, 0, {}),
    "abr": ("sysgym/ABR-v0", "robust_mpc", 48, 1, 0, {"traces": "test"}),
    "cc": ("sysgym/CC-Discrete-v0", "aimd", 128, 2, 0, {}),
    "appointments": ("sysgym/Appointments-P3-v1", "p3_paper_tree", 20, 1, 0, {}),
}
FRAME_MS = 250
FOOTER = 16  # pixels


def _action_text(action: object) -> str:
    a = np.asarray(action)
    if a.ndim == 0:
        return str(a.item()) if a.dtype.kind in "iub" else f"{float(a):.3g}"
    return "[" + ", ".join(f"{float(v):.3g}" for v in a.ravel()[:4]) + "]"


def _with_footer(frame: np.ndarray, text: str) -> np.ndarray:
    from sysgym.envs.frame_text import draw_text  # the renderers' own text helper

    band = np.full((FOOTER, frame.shape[1], 3), 255, dtype=np.uint8)
    out = np.ascontiguousarray(np.concatenate([frame, band], axis=0))
    draw_text(out, 4, frame.shape[0] + 2, text, colour=(0, 70, 140))
    return out


def episode_frames(family: str) -> list[np.ndarray]:
    """The frames of one episode of ``family``'s GIF (the first is the reset state)."""
    import gymnasium as gym

    import sysgym  # noqa: F401  (registers the IDs)
    from sysgym.agents.heuristics import heuristics_for

    env_id, name, decisions, stride, seed, kwargs = EPISODES[family]
    env = gym.make(env_id, render_mode="rgb_array", **kwargs)
    policy = heuristics_for(env_id)[name](env, seed=seed)
    obs, info = env.reset(seed=seed)
    policy.reset()
    frames = [_with_footer(env.render(), f"reset (seed {seed}); policy: {name}")]
    for step in range(1, decisions + 1):
        action = policy.act(obs, info)
        obs, _, terminated, truncated, info = env.step(action)
        if step % stride == 0 or terminated or truncated:
            frames.append(_with_footer(env.render(), f"step {step}: {name} chose action {_action_text(action)}"))
        if terminated or truncated:
            break
    env.close()
    return frames


def write_gif(frames: list[np.ndarray], path: Path) -> None:
    from PIL import Image

    images = [Image.fromarray(f).convert("P", palette=Image.Palette.ADAPTIVE, colors=64) for f in frames]
    durations = [FRAME_MS] * (len(images) - 1) + [4 * FRAME_MS]   # rest on the last frame
    images[0].save(path, save_all=True, append_images=images[1:], duration=durations, loop=0,
                   optimize=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "media")
    parser.add_argument("--only", nargs="+", choices=sorted(EPISODES), default=sorted(EPISODES))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for family in args.only:
        start = time.perf_counter()
        frames = episode_frames(family)
        path = args.out / f"{family}.gif"
        write_gif(frames, path)
        print(f"{path}: {len(frames)} frames {frames[0].shape[1]}x{frames[0].shape[0]}, "
              f"{path.stat().st_size // 1024} KiB, {time.perf_counter() - start:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
