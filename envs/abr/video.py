"""Videos for the ABR family: chunk sizes in bytes per (bitrate level, chunk).

Format on disk (Pensieve's): a directory with one file per level, ``video_size_0`` (lowest
bitrate) ... ``video_size_<L-1>``, each holding one integer byte count per line, chunk 0 first.
Blank lines and lines starting with ``#`` are skipped.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

VIDEO_FILE_PREFIX = "video_size_"


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
        while (path / f"{VIDEO_FILE_PREFIX}{num_levels}").is_file():
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
    if not file.is_file():
        raise FileNotFoundError(f"video chunk-size file not found: {file}")
    sizes = []
    with file.open("r", encoding="utf-8", errors="replace") as handle:
        for lineno, raw in enumerate(handle, start=1):
            text = raw.strip()
            if not text or text.startswith("#"):
                continue
            field = text.split()[0]
            try:
                value = int(field)
            except ValueError:
                raise ValueError(f"{file}:{lineno}: field chunk_bytes is not an integer: {field!r}") from None
            if value <= 0:
                raise ValueError(f"{file}:{lineno}: field chunk_bytes must be > 0, got {value}")
            sizes.append(value)
    if not sizes:
        raise ValueError(f"{file}: empty chunk-size file (no chunks)")
    return sizes


def validate_sizes(sizes: object, num_levels: int, source: str = "video") -> np.ndarray:
    """Check a (levels, chunks) array of positive byte counts; returns it as float64."""
    arr = np.asarray(sizes)
    if arr.ndim != 2 or arr.shape[0] != num_levels or arr.shape[1] < 1:
        raise ValueError(f"{source}: chunk sizes must have shape (levels={num_levels}, chunks), got {arr.shape}")
    if arr.dtype.kind not in "iuf" or not np.all(np.isfinite(arr)):
        raise ValueError(f"{source}: chunk sizes must be finite numbers")
    bad = np.argwhere(arr <= 0)
    if len(bad):
        level, chunk = bad[0]
        raise ValueError(f"{source}: chunk {chunk} of level {level} has size {arr[level, chunk]} (must be > 0)")
    return np.ascontiguousarray(arr, dtype=np.float64)


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
    if not (chunk_s > 0 and num_chunks >= 1 and scene_std >= 0 and encoder_std >= 0):
        raise ValueError("need chunk_s > 0, num_chunks >= 1 and non-negative stds")
    rng = np.random.default_rng(seed)
    scene = np.exp(rng.normal(0.0, scene_std, num_chunks))
    scene /= scene.mean()
    encoder = np.exp(rng.normal(0.0, encoder_std, (len(rates), num_chunks)))
    nominal = rates[:, None] * 1000.0 / 8.0 * chunk_s
    sizes = np.maximum(np.rint(nominal * scene[None, :] * encoder), 1).astype(np.int64)
    for level in range(1, len(rates)):
        sizes[level] = np.maximum(sizes[level], sizes[level - 1] + 1)
    return sizes
