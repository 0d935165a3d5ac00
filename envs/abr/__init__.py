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

Kwargs (every numeric one has the valid range shown; outside it: ``ValueError`` naming the kwarg)
------
pensieve_compatible  False | True: Pensieve's simulator constants (see below); those kwargs are then
                     fixed and passing one raises ValueError
traces          "train" | "test" (the synthetic sets shipped in ``sysgym.traces`` abr/), a directory,
                a file, or a list of files / ``BandwidthTrace`` objects (default "train"); read by
                :mod:`sysgym.envs.bandwidth` (time_s in [0, 1e7], Mbps in [0, 1e6], at most 2**22
                points per trace and 2**24 points over all traces)
trace_format    "auto" | "cooked" | "mahimahi" (cooked: ``time_s Mbps`` per line; Mahimahi: one
                ms timestamp per 1500-byte delivery opportunity, binned every ``mahimahi_bin_ms``,
                in [1, 60000], default 500)
trace_order     "random": each episode starts at a seeded random trace and offset (training);
                "sequential": episodes walk the traces in order from their start (evaluation)
video           None (a seeded synthetic VBR video for the ladder, ``video_seed`` in [0, 2**63-1]),
                a directory of ``video_size_<level>`` files (one byte count per line, level 0
                lowest), or an array (levels, chunks); sizes in [1, 1e12] bytes, 1 to 65,536 chunks
bitrates_kbps   the ladder, 1 to 32 levels in [0.001, 1e7], strictly increasing (default Pensieve's
                [300, 750, 1200, 1850, 2850, 4300])
chunk_s         4.0, in [0.001, 3600]
num_chunks      None = every chunk of the video (Pensieve plays 48 of 49); else in [1, video chunks]
rtt_s           0.08, in [0, 60]
payload_portion 0.95, in [0.01, 1] (share of the link rate that carries video bytes)
buffer_cap_s    60.0, in [chunk_s, 86400]
sleep_step_s    0.5, in [0.001, min(3600, buffer_cap_s)] (the player sleeps in these increments
                above the cap)
max_transfer_s  3600.0, in [0.001, 1e6]: a download still running after this much trace time is cut
                there (see step 1); counted in the metric ``capped_downloads``
noise           None = on for "random", off for "sequential"; noise_range (0.9, 1.1), each factor
                in [0.01, 100], low <= high
qoe             "linear" (bitrate in Mbps), "log" (ln(bitrate / lowest)), "hd" (Pensieve's
                [1, 2, 3, 12, 15, 20]; 6 levels) or a sequence of per-level quality values in
                [-1e6, 1e6]
rebuffer_penalty  mu in [0, 1e6]: default 4.3 (linear), 2.66 (log), 8 (hd); required for a custom qoe
smoothness_penalty  lambda in [0, 1e6]: 1.0
initial_level   None: the first chunk pays no smoothness penalty; a level: the first chunk's switch
                is counted against it (Pensieve: 1, its DEFAULT_QUALITY)
first_chunk     "agent" (default of ABR-v0): the agent picks chunk 0's level; "initial" (default when
                pensieve_compatible=True): chunk 0 is played at initial_level whatever the action, as
                Pensieve's test harness downloads it at DEFAULT_QUALITY before its agent acts (the
                action mask at reset allows only that level); needs an initial_level
startup_rebuffer  True: the first chunk's whole delay is a stall (Pensieve); False: it is reported
                as ``startup_delay_s`` but not penalised
rate_at         "start": a sample's bandwidth holds from its timestamp to the next (the cooked format
                of :mod:`sysgym.envs.bandwidth`); "end": it holds over the interval that ends at its
                timestamp (what Pensieve's simulator does)
loop_clock      "first": after its last segment a trace resumes at its first timestamp; "zero": at
                time 0 (Pensieve's simulator), so segment 0 then spans [0, tau_1]
observation     "clean" (default of ABR-v0) | "pensieve" (default when pensieve_compatible=True):
                the layout of row 4 and of the reset observation, see *Observation*
history         8: past chunks kept in the observation, in [number of levels, 1024]

``pensieve_compatible=True`` fixes: the ladder above, chunk_s 4, num_chunks 48, buffer_cap_s 60,
sleep_step_s 0.5, payload_portion 0.95, rtt_s 0.08, noise_range (0.9, 1.1), the QoE constants of
``qoe``, initial_level 1, startup_rebuffer True, rate_at "end", loop_clock "zero", history 8. Still
free: traces, trace_format, trace_order, noise, qoe, observation (default "pensieve": cell for cell
the state Pensieve's test harness builds), max_transfer_s, video (pass Pensieve's Envivio
``video_size_*`` directory to reproduce its numbers; the default is a synthetic 49-chunk video for
the same ladder).

Memory: at most 32 bytes per chunk and 24 bytes per history column of state per sub-env (2.1 MiB
at the limits), plus the trace bank shared by all sub-envs (16 bytes per point, 256 MiB at most).

Dynamics (the kernel ``cython_core/abr.pyx`` and ``tests/reference/abr.py`` implement exactly this)
-------------------------------------------------------------------------------------------------
*Traces.* Trace k has points tau_0 <= ... <= tau_n and n segments; segment i = [tau_i, tau_{i+1})
carries bandwidth beta_i = Mbps[i] ("start") or Mbps[i+1] ("end"), i.e. a link rate
r_i = beta_i * 1e6 / 8 bytes/s, of which a fraction p = payload_portion is video. Time is trace
time; after the last segment the trace loops back to (segment 0, lambda), lambda = tau_0
(loop_clock "first") or 0 ("zero"); segment 0 then starts at lambda. One whole *loop* from
(0, lambda) lasts D = tau_n - lambda seconds and delivers L = sum_i (r_i * dur_i) * p bytes,
dur_0 = tau_1 - lambda and dur_i = tau_{i+1} - tau_i, summed left to right in float64.

*State* of a session: trace k, position (segment i, time t), buffer b (seconds of video), chunks
played c, last level l (-1 = none).

*Reset.* b = 0, c = 0, l = initial_level (or -1). "random": k = integers(0, K-1) (unless given by
``reset(options={"trace": k})``), then i = integers(0, n_k - 1), t = tau_i.
"sequential": k = (episodes started) mod K unless given, i = 0, t = tau_0; the next episode then
takes k + 1; a reset with a seed restarts the count at 0. Draws use
``integers(lo, hi) = lo + floor(uniform * (hi - lo + 1))`` on the sub-env's xoshiro256** stream
(``cython_core/rng.pxd``).

*Step(a)*, chunk c at level a, S = size[a][c] bytes, T = max_transfer_s:

1. *Transfer.* rem = S, x = 0. Repeat:
   a. at the loop start (i = 0, t = lambda) with rem > L, skip whole loops at once:
      m = min(floor(rem / L), floor((T - x) / D)); if m > 0: x += m D, rem -= m L, and if then
      rem <= 0 the transfer is done (position unchanged);
   b. e = tau_{i+1}, dur = e - t; if x + dur > T the cap falls in this segment: dur = max(T - x, 0);
   c. cap = (r_i * dur) * p. If cap >= rem: x += rem / r_i / p, t = min(t + rem / r_i / p, e), done;
   d. else if the cap fell here: rem -= cap, x = T, t += dur: the download is cut (*capped*);
   e. else rem -= cap, x += dur, t = e, i += 1 (looping back to (0, lambda) after the last segment).
   Delivered bytes G = S - rem (S unless capped). The player receives the chunk either way: a
   capped download is a chunk whose delay ends at T (its stall is counted in step 4).
2. *Noise.* nu = lo + (hi - lo) * uniform() if noise else 1 (one draw per chunk).
3. *Delay* d = (x + rtt) * nu. The trace clock advanced by x only: the RTT and the noise change
   what the player measures, not the trace position (as in Pensieve).
4. *Rebuffer* rho = max(d - b, 0) (for c = 0 and startup_rebuffer=False, rho counts as 0).
5. *Buffer* b = max(b - d, 0) + chunk_s.
6. *Sleep.* If b > buffer_cap_s: s = ceil((b - cap) / sleep_step) * sleep_step, b = max(b - s, 0)
   (the max only catches rounding: sleep_step <= cap keeps b - s > 0), and the
   trace clock idles for s seconds: rem = s; repeat: at (0, lambda) with rem > D, rem -= floor(rem / D) D
   (then max(rem, 0)); e = tau_{i+1}, dur = e - t; if dur >= rem: t = min(t + rem, e), stop; else
   rem -= dur, t = e, i += 1 (looping). Else s = 0.
7. *Reward components* ``("quality", "rebuffer", "smoothness")`` with weights (1, 1, 1), in the
   reward's own units: quality = q[a]; rebuffer = -(mu * rho); smoothness =
   -(lambda * |q[a] - q[l]|) if l >= 0 else 0. So reward = q - mu*rho - lambda*|dq|, the linear
   QoE of Yin et al. and Pensieve (q = Mbps: reward = bitrate_Mbps - 4.3 rebuffer_s - |dbitrate_Mbps|).
8. l = a, c += 1; terminated when c = num_chunks (never truncated).

Every walk also stops after 8 n + 16 segment steps (a download stopped there counts as capped): a
safety bound that the whole-loop skip keeps any walk from reaching, so that no input, whatever
its rates, sizes or rounding, makes a step loop without a bound.

*Observation* (float32, shape (6, H), H = history; Pensieve's state): rows 0-3 and 5 are
histories, shifted left by one column every step with the newest value in column H-1:
row 0 kbps[a] / kbps[top]; row 1 b / 10; row 2 G / d / 1e6 (MB/s); row 3 d / 10;
row 5 (num_chunks - c) / num_chunks. Row 4 column j < levels holds the next chunk's size in MB,
size[j][c] / 1e6. ``feature_names`` names every cell (``bitrate_frac[t-7]`` ... ``[t]``,
``buffer_10s``, ``throughput_MBps``, ``delay_10s``, ``next_size_MB[j]``, ``chunks_left_frac``).

* "clean": at reset every history is 0 except row 5's last column (1), and row 4 shows chunk 0;
  row 4 is 0 in columns >= levels and after the last chunk.
* "pensieve" (what Pensieve's test harness, ``test/rl_no_training.py``, builds): the reset
  observation is the zero matrix; each step rolls the *whole* matrix one column left (column 0
  wraps to column H-1) before writing the new values, so row 4's columns >= levels hold level-0
  sizes of earlier chunks (column H-m: size[0][c-m] / 1e6 if c - m >= 1, else 0; a Pensieve
  network reads column H-1); after the last chunk row 4 shows chunk 0's sizes.

*Info* each step: ``chunk_index`` (c), ``buffer_s``, ``delay_s``, ``rebuffer_s`` (as counted),
``sleep_s``, ``chunk_bytes`` (S), ``throughput_mbps`` (8 G / d / 1e6), ``last_level``,
``trace_index``; ``action_mask`` is all ones (every level is always valid).

*Episode metrics* (``info["episode_metrics"]``): qoe_per_chunk (sum of the three component sums
/ num_chunks), quality_per_chunk, rebuffer_per_chunk, smoothness_per_chunk (the components'
means; the penalties are <= 0), rebuffer_time_s (total counted stall), switches (chunks whose level
differs from the previous chunk's), mean_bitrate_kbps, startup_delay_s (the first chunk's delay),
session_time_s (sum of delays and sleeps), trace_index, capped_downloads (downloads cut at
max_transfer_s).

*Replacing the future input* (CrystalBox): ``set_future_input(trace, offset_s)`` on the single env
(``index=`` a sub-env, or all, on the vector env) moves a session in progress to (trace, the last
segment starting at or before ``offset_s`` on that trace's clock, t = offset_s) and keeps
everything else: buffer, c, l, observation, accumulators, RNG.

*Snapshots.* ``set_state`` checks the configuration fingerprint, then every index and value a
step relies on: trace < K, segment < that trace's n, t within the segment (from lambda for
segment 0), c in [0, num_chunks] (num_chunks only while waiting for a reset), l consistent with
the last played chunk, buffer in [0, cap], delays within what T allows, accumulators within what c
chunks can sum, played history rows valid.
"""

from .config import PENSIEVE_BITRATES_KBPS, AbrConfig, build_config
from .env import METRIC_NAMES, REWARD_COMPONENTS, AbrEnv, AbrVectorEnv
from .video import load_video, synthetic_video

__all__ = [
    "PENSIEVE_BITRATES_KBPS", "AbrConfig", "build_config", "METRIC_NAMES", "REWARD_COMPONENTS",
    "AbrEnv", "AbrVectorEnv", "load_video", "synthetic_video",
]
