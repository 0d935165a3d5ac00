"""Videos for the ABR family: chunk sizes in bytes per (bitrate level, chunk).

Format on disk (Pensieve's): a directory with one file per level, ``video_size_0`` (lowest
bitrate) ... ``video_size_<L-1>``, each holding exactly one whole byte count per line, chunk 0
first. Blank lines and lines starting with ``#`` are skipped (:mod:`sysgym.envs.textfile`).
Valid range: every size in [1, MAX_CHUNK_BYTES = 1e12] bytes, 1 to MAX_CHUNKS = 65,536 chunks,
the same number of chunks at every level.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..textfile import data_lines, existing_file, expect_fields, number_field

VIDEO_FILE_PREFIX = "video_size_"
MAX_CHUNK_BYTES = 1e12
MAX_CHUNKS = 65_536


def load_video(directory: str | os.PathLike, num_levels: int | None = None) -> np.ndarray:
    """Read ``video_size_<level>`` files into an int64 array (levels, chunks).

    ``num_levels`` (if given) is how many levels the ladder has: exactly those files are read and
    any missing one is an error. Otherwise every consecutive ``video_size_0, 1, ...`` is read.
    """
    path = Path(directory)
    if not path.is_dir():
        raise FileNotFoundError(f"video directory not found: {path}")
    if num_levels is None:
        num_levels = 0
        while num_levels < 32 and (path / f"{VIDEO_FILE_PREFIX}{num_levels}").is_file():
            num_levels += 1
        if num_levels == 0:
            raise FileNotFoundError(f"{path}: no {VIDEO_FILE_PREFIX}0 file (one file per bitrate level)")
    levels = [_read_sizes(path / f"{VIDEO_FILE_PREFIX}{level}") for level in range(num_levels)]
    counts = {len(sizes) for sizes in levels}
    if len(counts) != 1:
        detail = ", ".join(f"{VIDEO_FILE_PREFIX}{i}: {len(s)}" for i, s in enumerate(levels))
        raise ValueError(f"{path}: levels list different numbers of chunks ({detail})")
    return np.asarray(levels, dtype=np.int64)


def _read_sizes(file: Path) -> list[int]:
    file = existing_file(file, "video chunk-size file")
    sizes: list[int] = []
    for lineno, fields in data_lines(file):
        expect_fields(file, lineno, fields, ("chunk_bytes",))
        if len(sizes) == MAX_CHUNKS:
            raise ValueError(f"{file}:{lineno}: more than {MAX_CHUNKS} chunks (the limit per video)")
        sizes.append(number_field(file, lineno, 1, "chunk_bytes", fields[0], lo=1, hi=MAX_CHUNK_BYTES,
                                  integral=True))
    if not sizes:
        raise ValueError(f"{file}: empty chunk-size file (no chunks)")
    return sizes


def validate_sizes(sizes: object, num_levels: int, source: str = "video") -> np.ndarray:
    """Check a (levels, chunks) array of byte counts in [1, MAX_CHUNK_BYTES]; returns it as float64."""
    arr = np.asarray(sizes)
    if arr.ndim != 2 or arr.shape[0] != num_levels or not 1 <= arr.shape[1] <= MAX_CHUNKS:
        raise ValueError(f"{source}: chunk sizes must have shape (levels={num_levels}, chunks in "
                         f"[1, {MAX_CHUNKS}]), got {arr.shape}")
    if arr.dtype.kind not in "iuf":
        raise ValueError(f"{source}: chunk sizes must be numbers, got dtype {arr.dtype}")
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    bad = np.argwhere(~((arr >= 1) & (arr <= MAX_CHUNK_BYTES)))
    if len(bad):
        level, chunk = bad[0]
        raise ValueError(f"{source}: chunk {chunk} of level {level} has size {float(arr[level, chunk]):g} "
                         f"(must be in [1, {MAX_CHUNK_BYTES:g}] bytes)")
    return arr


def synthetic_video(bitrates_kbps: Sequence[float], chunk_s: float = 4.0, num_chunks: int = 49,
                    seed: int = 0, scene_std: float = 0.15, encoder_std: float = 0.03) -> np.ndarray:
    """A seeded variable-bitrate (VBR) video: int64 chunk sizes (levels, chunks).

    Chunk c of level j has ``bitrate_j * 1000 / 8 * chunk_s * z_c * e_{j,c}`` bytes: ``z_c`` is the
    scene complexity shared by all levels (log-normal, std ``scene_std``, normalised to mean 1 over
    the video) and ``e_{j,c}`` a small per-encoding factor (log-normal, std ``encoder_std``). Sizes
    are made strictly increasing across levels within every chunk, as an encoder ladder is.
    """
    rates = np.asarray(bitrates_kbps, dtype=np.float64)
    if rates.ndim != 1 or len(rates) < 1 or np.any(rates <= 0) or np.any(np.diff(rates) <= 0):
        raise ValueError(f"bitrates_kbps must be positive and strictly increasing, got {bitrates_kbps!r}")
    if not (chunk_s > 0 and 1 <= num_chunks <= MAX_CHUNKS and scene_std >= 0 and encoder_std >= 0):
        raise ValueError(f"need chunk_s > 0, num_chunks in [1, {MAX_CHUNKS}] and non-negative stds")
    rng = np.random.default_rng(seed)
    scene = np.exp(rng.normal(0.0, scene_std, num_chunks))
    scene /= scene.mean()
    encoder = np.exp(rng.normal(0.0, encoder_std, (len(rates), num_chunks)))
    nominal = rates[:, None] * 1000.0 / 8.0 * chunk_s
    sizes = np.maximum(np.rint(nominal * scene[None, :] * encoder), 1).astype(np.int64)
    for level in range(1, len(rates)):
        sizes[level] = np.maximum(sizes[level], sizes[level - 1] + 1)
    return sizes
