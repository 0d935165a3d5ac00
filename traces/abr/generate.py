"""Regenerate the shipped ABR data: ``python -m sysgym.traces.abr.generate [directory]``.

* ``train/trace_XXX.txt`` (96) and ``test/trace_XXX.txt`` (64): cooked bandwidth traces from
  :func:`sysgym.envs.bandwidth.synthetic_trace` (Markov-modulated levels, log-uniform in
  [0.3, 5] Mbps, mean hold 60 s, 1 s samples, 10 % noise, 320 s), seeds 1000+ and 2000+;
* ``video/video_size_<level>``: the 49-chunk synthetic VBR video for Pensieve's ladder
  (:func:`sysgym.envs.abr.synthetic_video`, seed 0), i.e. the default video of ``ABR-v0``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from sysgym.envs.abr.config import PENSIEVE_BITRATES_KBPS, SYNTHETIC_VIDEO_CHUNKS
from sysgym.envs.abr.video import VIDEO_FILE_PREFIX, synthetic_video
from sysgym.envs.bandwidth import synthetic_trace, write_cooked

HERE = Path(__file__).resolve().parent
TRACE_SETS = {"train": (96, 1000), "test": (64, 2000)}   # name: (count, first seed)
TRACE_KWARGS = {"duration_s": 320.0, "min_mbps": 0.3, "max_mbps": 5.0, "mean_hold_s": 60.0,
                "step_s": 1.0, "noise": 0.1}


def write_all(directory: Path = HERE) -> None:
    for name, (count, first_seed) in TRACE_SETS.items():
        for k in range(count):
            trace = synthetic_trace(first_seed + k, name=f"trace_{k:03d}", **TRACE_KWARGS)
            write_cooked(trace, directory / name / f"trace_{k:03d}.txt")
    sizes = synthetic_video(PENSIEVE_BITRATES_KBPS, 4.0, SYNTHETIC_VIDEO_CHUNKS, seed=0)
    video = directory / "video"
    video.mkdir(parents=True, exist_ok=True)
    for level, row in enumerate(sizes):
        (video / f"{VIDEO_FILE_PREFIX}{level}").write_text("\n".join(str(int(v)) for v in row) + "\n")


if __name__ == "__main__":
    write_all(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE)
