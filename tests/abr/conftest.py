"""Shared helpers of the ABR tests: small random configurations for the equivalence tests, and
a runner for cases that could crash or hang the interpreter."""

from __future__ import annotations

import numpy as np

from sysgym.envs.bandwidth import BandwidthTrace


def random_trace(rng: np.random.Generator, name: str, rate_at: str) -> BandwidthTrace:
    """A short trace with repeated timestamps, zero-bandwidth samples and a non-zero start time;
    sometimes a tiny one (a chunk spans many whole loops) or a very slow one (downloads get cut
    at max_transfer_s)."""
    kind = rng.random()
    while True:
        n = int(rng.integers(2, 30))
        gaps = np.where(rng.random(n - 1) < 0.15, 0.0, np.round(rng.exponential(1.5, n - 1), 3))
        if kind < 0.15:
            gaps = np.round(rng.uniform(0, 0.01, n - 1), 5)
        start = 0.0 if rng.random() < 0.7 else float(np.round(rng.uniform(0, 3), 3))
        times = start + np.concatenate([[0.0], np.cumsum(gaps)])
        mbps = np.where(rng.random(n) < 0.2, 0.0, np.round(rng.uniform(0.05, 8.0, n), 4))
        if 0.15 <= kind < 0.25:
            mbps = mbps * 1e-5
        rates = mbps[:-1] if rate_at == "start" else mbps[1:]
        if times[-1] > times[0] and np.any(rates * np.diff(times) > 0):
            return BandwidthTrace(name, times, mbps)


def random_kwargs(seed: int) -> dict:
    """Kwargs of a small random ABR configuration that exercises every branch of the dynamics."""
    rng = np.random.default_rng(seed)
    levels = int(rng.integers(1, 7))
    ladder = np.sort(rng.choice(np.arange(100, 6000, 50), size=levels, replace=False)).astype(float)
    video_chunks = int(rng.integers(2, 16))
    sizes = rng.integers(1_000, 3_000_000, size=(levels, video_chunks))
    rate_at = str(rng.choice(["start", "end"]))
    chunk_s = float(rng.choice([1.0, 2.0, 4.0]))
    qoe = str(rng.choice(["linear", "log", "custom"]))
    kwargs = {
        "traces": [random_trace(rng, f"t{k}", rate_at) for k in range(int(rng.integers(1, 4)))],
        "video": sizes, "bitrates_kbps": list(ladder), "num_chunks": int(rng.integers(1, video_chunks + 1)),
        "chunk_s": chunk_s, "buffer_cap_s": float(chunk_s * rng.uniform(1.0, 4.0)),
        "sleep_step_s": float(rng.choice([0.25, 0.5, 1.0])), "rtt_s": float(rng.choice([0.0, 0.08])),
        "payload_portion": float(rng.choice([0.95, 1.0])), "noise": bool(rng.random() < 0.5),
        "noise_range": (0.9, 1.1) if rng.random() < 0.7 else (0.5, 1.5),
        "trace_order": str(rng.choice(["random", "sequential"])), "rate_at": rate_at,
        "startup_rebuffer": bool(rng.random() < 0.6),
        "initial_level": None if rng.random() < 0.5 else int(rng.integers(0, levels)),
        "history": levels + int(rng.integers(0, 4)),
        "smoothness_penalty": float(rng.choice([0.0, 1.0, 2.5])),
        "loop_clock": str(rng.choice(["first", "zero"])),
        "observation": str(rng.choice(["clean", "pensieve"])),
        "max_transfer_s": float(rng.choice([3600.0, 20.0, 1.5])),
    }
    if qoe == "custom":
        kwargs["qoe"] = list(np.round(rng.uniform(0, 10, levels), 3))
        kwargs["rebuffer_penalty"] = float(rng.uniform(0, 10))
    else:
        kwargs["qoe"] = qoe
    if kwargs["initial_level"] is not None and rng.random() < 0.5:
        kwargs["first_chunk"] = "initial"   # chunk 0 at initial_level, whatever the action
    return kwargs


from tests.isolation import run_isolated  # noqa: E402,F401  (the family's tests import it from here)
