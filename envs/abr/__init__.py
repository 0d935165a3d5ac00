"""Adaptive-bitrate (ABR) video streaming over replayed network bandwidth traces.

A video player downloads a video chunk by chunk; before each chunk the agent picks its bitrate
level, the chunk is delivered over a link whose throughput replays a recorded (or synthetic)
trace, and the player's buffer fills with video and drains while it plays.

References: H. Mao, R. Netravali, M. Alizadeh, "Neural Adaptive Video Streaming with Pensieve",
SIGCOMM 2017 (the simulator, its constants, state and QoE). X. Yin, A. Jindal, V. Sekar,
B. Sinopoli, "A Control-Theoretic Approach for Dynamic Adaptive Video Streaming over HTTP",
SIGCOMM 2015 (the linear QoE, robustMPC). S. Patel, et al., "CrystalBox: Future-Based
Explanations for Input-Driven Deep RL Systems", AAAI 2024 (the reward decomposition used here).
T.-Y. Huang et al., "A Buffer-Based Approach to Rate Adaptation", SIGCOMM 2014 (BB baseline).

IDs: ``sysgym/ABR-v0`` (every kwarg below) and ``sysgym/ABR-Pensieve-v0``
(``pensieve_compatible=True``).

Kwargs
------
pensieve_compatible  False | True: Pensieve's simulator constants (see below); those kwargs are then
                     fixed and passing one raises ValueError
traces          "train" | "test" (the synthetic sets shipped in ``sysgym.traces`` abr/), a directory,
                a file, or a list of files / ``BandwidthTrace`` objects (default "train")
trace_format    "auto" | "cooked" | "mahimahi" (cooked: ``time_s Mbps`` per line; Mahimahi: one
                ms timestamp per 1500-byte delivery opportunity, binned every ``mahimahi_bin_ms``)
trace_order     "random": each episode starts at a seeded random trace and offset (training);
                "sequential": episodes walk the traces in order from their start (evaluation)
video           None (a seeded synthetic VBR video for the ladder, ``video_seed``), a directory of
                ``video_size_<level>`` files (one byte count per line, level 0 lowest), or an
                array (levels, chunks) of byte counts
bitrates_kbps   the ladder, strictly increasing (default Pensieve's [300, 750, 1200, 1850, 2850, 4300])
chunk_s         4.0        num_chunks  None = every chunk of the video (Pensieve plays 48 of 49)
rtt_s           0.08       payload_portion 0.95 (share of the link rate that carries video bytes)
buffer_cap_s    60.0       sleep_step_s  0.5 (the player sleeps in these increments above the cap)
noise           None = on for "random", off for "sequential"; noise_range (0.9, 1.1)
qoe             "linear" (bitrate in Mbps), "log" (ln(bitrate / lowest)), "hd" (Pensieve's
                [1, 2, 3, 12, 15, 20]; 6 levels) or a sequence of per-level quality values
rebuffer_penalty  mu: default 4.3 (linear), 2.66 (log), 8 (hd); required for a custom qoe
smoothness_penalty  lambda: 1.0
initial_level   None: the first chunk pays no smoothness penalty; a level: the first chunk's switch
                is counted against it (Pensieve: 1, its DEFAULT_QUALITY)
startup_rebuffer  True: the first chunk's whole delay is a stall (Pensieve); False: it is reported
                as ``startup_delay_s`` but not penalised
rate_at         "start": a sample's bandwidth holds from its timestamp to the next (the cooked format
                of :mod:`sysgym.envs.bandwidth`); "end": it holds over the interval that ends at its
                timestamp (what Pensieve's simulator does)
history         8: past chunks kept in the observation (>= number of levels)

``pensieve_compatible=True`` fixes: the ladder above, chunk_s 4, num_chunks 48, buffer_cap_s 60,
sleep_step_s 0.5, payload_portion 0.95, rtt_s 0.08, noise_range (0.9, 1.1), the QoE constants of
``qoe``, initial_level 1, startup_rebuffer True, rate_at "end", history 8. Still free: traces,
trace_format, trace_order, noise, qoe, video (pass Pensieve's Envivio ``video_size_*`` directory to
reproduce its numbers; the default is a synthetic 49-chunk video for the same ladder).

Dynamics (the kernel ``cython_core/abr.pyx`` and ``tests/reference/abr.py`` implement exactly this)
-------------------------------------------------------------------------------------------------
*Traces.* Trace k has points tau_0 <= ... <= tau_n and n segments; segment i = [tau_i, tau_{i+1})
carries bandwidth beta_i = Mbps[i] ("start") or Mbps[i+1] ("end"), i.e. a link rate
rate_i = beta_i * 1e6 / 8 bytes/s, of which a fraction p = payload_portion is video. Time is
trace time; after the last segment the trace loops back to (segment 0, tau_0).

*State* of a session: trace k, position (segment i, time t in [tau_i, tau_{i+1}]), buffer b
(seconds of video), chunks played c, last level l (-1 = none).

*Reset.* b = 0, c = 0, l = initial_level (or -1). "random": k = integers(0, K-1) (unless given by
``reset(options={"trace_index": k})``), then i = integers(0, n_k - 1), t = tau_i.
"sequential": k = (episodes started) mod K unless given, i = 0, t = tau_0; the next episode then
takes k + 1. Draws use ``integers(lo, hi) = lo + floor(uniform * (hi - lo + 1))`` on the sub-env's
xoshiro256** stream (``cython_core/rng.pxd``).

*Step(a)*, chunk c at level a, S = size[a][c] bytes:

1. *Transfer.* rem = S, x = 0. Repeat: e = tau_{i+1}, dur = e - t, cap = rate_i * dur * p.
   If cap >= rem: x += rem / rate_i / p, t = min(t + rem / rate_i / p, e), stop. Otherwise
   rem -= cap, x += dur, t = e, i += 1 (looping back after the last segment).
2. *Noise.* nu = lo + (hi - lo) * uniform() if noise else 1 (one draw per chunk).
3. *Delay* d = (x + rtt) * nu. The trace clock advanced by x only: the RTT and the noise change
   what the player measures, not the trace position (as in Pensieve).
4. *Rebuffer* rho = max(d - b, 0) (for c = 0 and startup_rebuffer=False, rho counts as 0).
5. *Buffer* b = max(b - d, 0) + chunk_s.
6. *Sleep.* If b > buffer_cap_s: s = ceil((b - cap) / sleep_step) * sleep_step, b -= s, and the
   trace clock idles for s seconds: repeat e = tau_{i+1}, dur = e - t; if dur >= s: t = min(t + s, e),
   stop; else s -= dur, t = e, i += 1 (looping). Else s = 0.
7. *Reward components* ``("quality", "rebuffer", "smoothness")`` with weights (1, 1, 1), in the
   reward's own units: quality = q[a]; rebuffer = -(mu * rho); smoothness =
   -(lambda * |q[a] - q[l]|) if l >= 0 else 0. So reward = q - mu*rho - lambda*|dq|, the linear
   QoE of Yin et al. and Pensieve (q = Mbps: reward = bitrate_Mbps - 4.3 rebuffer_s - |dbitrate_Mbps|).
8. l = a, c += 1; terminated when c = num_chunks (never truncated).

*Observation* (float32, shape (6, H), H = history; Pensieve's state): rows 0-3 and 5 are
histories, shifted left by one column every step with the newest value in column H-1:
row 0 kbps[a] / kbps[top]; row 1 b / 10; row 2 S / d / 1e6 (MB/s); row 3 d / 10;
row 5 (num_chunks - c) / num_chunks. Row 4 holds the next chunk's size in MB, size[j][c] / 1e6 for
level j in column j (zeros after the last chunk and in columns >= levels; Pensieve's network reads
only those columns). At reset every history is 0 except row 5's last column (1), and row 4 shows
chunk 0.

*Info* each step: ``chunk_index`` (c), ``buffer_s``, ``delay_s``, ``rebuffer_s`` (as counted),
``sleep_s``, ``chunk_bytes``, ``throughput_mbps`` (8 S / d / 1e6), ``last_level``,
``trace_index``; ``action_mask`` is all ones (every level is always valid).

*Episode metrics* (``info["episode_metrics"]``): qoe_per_chunk (sum of the three component sums
/ num_chunks), quality_per_chunk, rebuffer_per_chunk, smoothness_per_chunk (the components'
means; the penalties are <= 0), rebuffer_time_s (total counted stall), switches (chunks whose level
differs from the previous chunk's), mean_bitrate_kbps, startup_delay_s (the first chunk's delay),
session_time_s (sum of delays and sleeps), trace_index.
"""

from .config import PENSIEVE_BITRATES_KBPS, AbrConfig, build_config
from .env import METRIC_NAMES, REWARD_COMPONENTS, AbrEnv, AbrVectorEnv
from .video import load_video, synthetic_video

__all__ = [
    "PENSIEVE_BITRATES_KBPS", "AbrConfig", "build_config", "METRIC_NAMES", "REWARD_COMPONENTS",
    "AbrEnv", "AbrVectorEnv", "load_video", "synthetic_video",
]
