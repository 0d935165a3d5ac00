"""DeepRM cluster job scheduling and the MDP variants of de Freitas Cunha & Chaimowicz (BRACIS 2021).

References: H. Mao, M. Alizadeh, I. Menache, S. Kandula, "Resource Management with Deep
Reinforcement Learning", HotNets 2016 (DeepRM). R. L. de Freitas Cunha, L. Chaimowicz, "On the
impact of MDP design for Reinforcement Learning agents in Resource Management", BRACIS 2021.

IDs: ``sysgym/DeepRM-Image-v0`` (image, dense, all jobs), ``DeepRM-Compact-v0`` (compact, dense,
all), ``DeepRM-CompactSparse-v0`` (compact, sparse, all), ``DeepRM-CompactSparseReduced-v0``
(compact, sparse, window jobs only) and the generic ``DeepRM-v0`` taking every kwarg below.

Kwargs (every numeric kwarg has a range, checked before anything reaches the kernel)
------------------------------------------------------------------------------------
==================  ==========================================  ==================================
kwarg               values (default)                            meaning
==================  ==========================================  ==================================
observation         "image" | "compact" ("compact")
transitions         "dense" | "sparse" ("dense")
reward_jobs         "all" | "window" ("all")
reward_scale        "raw" | "bounded" ("raw")
allocation          "now" | "reserve" ("now")
protocol            "drain" | "bracis" ("drain")                how an episode ends (*End* below)
scenario            1..10 or None                               BRACIS Table 3 (sets the next 3)
num_processors      [1, 65536] (10)                             capacity of resource 0
num_resources       [1, 8] (1)                                  R (2 = CPU + memory as in DeepRM)
resource_capacity   R capacities in [1, 65536], first =         all capacities
                    num_processors (all num_processors)
max_job_length      [1, 2^22] (15; SWF: the longest job)        d, in steps
max_job_size        [1, smallest capacity] (10; SWF: largest)   s
window              [1, 1024] (10)                              W
horizon             [1, 4096] (20)                              H
backlog             [0, 2^20] (60)                              backlog capacity
episode_length      [1, 10^7] (100)                             T: steps during which jobs arrive
time_limit          [1, 10^8] (10 T)                            truncate once the clock reaches it
new_job_rate        [0, 1] (0.3)                                generator only
small_job_chance    [0, 1] (0.8)                                generator only
smdp_gamma          (0, 1] (1.0)                                sparse only
workload            "deeprm" | ``.swf`` path | ``SWFWorkload``  bimodal generator or SWF replay
trace_start         "random" | "first" | job index in           SWF only (the generator takes
                    [0, jobs - 1] ("random")                    only "random")
==================  ==========================================  ==================================

``SWFWorkload(path, time_unit=60.0, offset=0, length=None, max_job_length=None)``: time_unit in
[1e-3, 1e9] s, offset in [0, 2^31 - 1], length None or in [1, 2^31 - 1], max_job_length None or
in [1, 2^22]; the file's fields and cleaning rules are in :mod:`sysgym.envs.deeprm.workload`.

*Memory cap.* One sub-env holds at most 64 MiB of state: the usage profile (4 R (H + d) bytes),
the job records ((W + backlog + most allocated jobs) x (60 + 4R) bytes; most allocated jobs =
min(capacity) x (H if reserve else 1)) and the observation. A configuration above the cap is a
``ValueError`` listing the parts and the kwargs (or the SWF line) behind them. The cap and the
ranges keep every kernel integer far from overflow, and every kernel loop has a bound set by the
kwargs alone: one time step costs O(W + backlog + most allocated jobs) plus the action mask,
O(W R) with allocation "now" and O(W R (H + d)) with "reserve"; a sparse decision skips at most
time_limit steps.

Dynamics (the kernel ``cython_core/cluster.pyx`` and ``tests/reference/deeprm.py`` implement exactly this)
---------------------------------------------------------------------------------------------------------
*State.* A clock ``now`` (integer steps). Per resource r a capacity ``cap[r]`` and a usage profile
``used[r][t]`` for t = now .. now+H+d-1. Waiting jobs form one FIFO queue in arrival order; its
first W jobs are the *window* (visible slots 0..W-1, slot 0 the oldest), the rest (at most
``backlog``) the *backlog*. *Allocated* jobs hold resources from their start to their end.

*Jobs* (generator): at each time t in [0, T) one uniform draw u; a job arrives if u < new_job_rate.
Then v = uniform; the job is small if v < small_job_chance, with length integers(1, d//5), else
large with length integers(2d//3, d). If R > 1 a dominant resource integers(0, R-1) is drawn; for
r = 0..R-1 in order the size is integers(s//2, s) for the dominant resource and integers(1, s//5)
for the others (each bound at least 1). ``integers(lo, hi) = lo + floor(uniform * (hi - lo + 1))``
on the sub-env's xoshiro256** stream (``cython_core/rng.pxd``). SWF traces replay instead the jobs
whose submit step falls in [start, start + T), start chosen by ``trace_start`` (the random start is
one ``integers(0, n_jobs - 1)`` draw at reset); several may arrive in one step, in file order.

*Submission.* When a job arrives at time now it records, before joining the queue: queue size,
queued work (sum of length x size[0] over waiting jobs), free units of resource 0 now, and the
remaining work of allocated jobs (sum of (end - max(start, now)) x size[0]). It joins the queue if
fewer than W + backlog jobs wait; otherwise it is *dropped* and counted in ``jobs_dropped``
(the backlog never loses a job silently). ``last_arrival`` = now either way (0 at reset).

*Fit.* allocation="now": a job fits if used[r][now] + size[r] <= cap[r] for every r; it starts
now (with no reservations the profile never rises, so it fits for its whole length).
allocation="reserve" (DeepRM's rule): the earliest offset o in [0, H-1] such that the job fits in
every step of [now+o, now+o+length); it is reserved to start at now+o.

*Step(action).* Actions 0..W-1 pick a window slot, W is *void*. If the slot holds a job that
fits, it is allocated: resources added over its run, it leaves the queue (later jobs move up one
slot, the backlog head enters the window), the clock does not move and the reward is 0.
Otherwise (void, empty slot, or a job that does not fit: an invalid choice acts as void and is
counted in ``invalid_actions``) time advances one step:

1. the step's reward components are computed over the jobs in the system during the step that
   now elapses, [now, now+1): ``running = -sum 1/length`` over allocated jobs (running or
   reserved), ``window = -sum 1/length`` over the window, ``backlog = -sum 1/length`` over the
   backlog, each divided by the reward divisor (summed in that order: allocation order, queue order);
2. resource-0 usage at ``now`` is added to the busy counter, the profile shifts by one, now += 1;
3. allocated jobs with end <= now finish (slowdown (end - submit) / length; bounded slowdown
   max((end - submit) / max(length, 10), 1); wait start - submit) and leave, keeping order;
4. jobs arriving at the new ``now`` are submitted as above.

A job submitted at a and finished at c is in the system for the c - a steps [a, c), so the
undiscounted return of a terminated "drain" episode is exactly minus the total slowdown of its
jobs (DeepRM's objective; Mao et al. count jobs after the clock moves, which misses each job's
first step); under "bracis" an unfinished job adds (T - a) / length, the slowdown it reached. ``reward_jobs`` only sets the weights: [1, 1, 1] for "all", [0, 1, 0] for
"window"; ``info["reward_components"] @ reward_weights == reward``.
``reward_scale="bounded"`` divides every component by the most jobs the reward can count at once
(the reward divisor): W for "window"; for "all", W + backlog + min(cap) x (H if reserve else 1)
(each allocated job holds at least one unit at some step of [now, now+H)). As every length is
>= 1, each time step's bounded reward lies in [-1, 0] (a sparse decision spanning k steps in
[-k, 0]) and they still sum to minus total slowdown / divisor.

*Transitions.* "dense": the agent decides at every step (DeepRM). "sparse" (semi-MDP, BRACIS):
after the action, while the episode goes on and no window job fits, time advances by itself; the
step's components accumulate sum_k gamma^k c_k (added in time order) over the k = 0, 1, ... time
steps that elapsed since the decision (``smdp_gamma`` = 1 by default, i.e. plain sums;
``info["elapsed"]`` gives the number of steps so an SMDP learner can discount by gamma^elapsed
itself). ``reset`` also skips ahead to the first decision in sparse mode (those steps hold no jobs:
a fresh cluster fits any job; they return no reward and ``info["elapsed"]`` is 0 after every
reset). If no job arrives before arrivals end, the skip stops there and the first step advances
once and terminates; the reset's skip stops at the latest one step before the time limit (and
before T under "bracis"), so the clock never passes it.

*End.* protocol="drain" (default): terminated once no job can arrive any more (generator:
now >= T-1; trace: window exhausted) and no job waits or holds resources, so every job is
scheduled and finishes. protocol="bracis": terminated when now reaches T, jobs arriving all along
(the steps [0, T) of the generator or of the trace window) and whatever still waits or runs left
unfinished (``jobs_left``): the fixed-horizon episodes of BRACIS'21, whose metric is the mean
slowdown of the finished jobs (``mean_slowdown``). Either way truncated when now >= time_limit,
unless that same step terminates (termination wins); under "bracis" a time_limit >= T never acts.

"bracis" follows the paper's simulator, sched-rl-gym (github.com/renatolfc/sched-rl-gym, read at
commit 44b7f14), in what an episode is, but not in three off-by-ones of its time-based step,
which sysgym does not copy (its time_limit corresponds to T here):

- submission stamped one step early: a job drawn while the clock moves from t to t+1 is submitted
  with the scheduler's clock still at t (``envs/simulator.py`` lines 193-198 submit before
  ``forward_time``; ``scheduler/scheduler.py`` line 413 stamps ``current_time``), while the agent
  first sees it at t+1; so each slowdown counts one step the agent could not act on (+1/length);
- resources released one step late: the event queue's clock lags the scheduler's by one
  (``scheduler/scheduler.py`` line 100, ``EventQueue(current_time - 1)``), so a job ending at e
  leaves the cluster only when the clock moves from e to e+1 (``scheduler/null_scheduler.py``
  lines 80-84), and at e ``NullScheduler.schedule`` still refuses a job that needs its units
  (``self.cluster.fits``, line 113) although the observation already shows them free (its
  slowdown does use e);
- episodes one step longer: ``done`` once ``current_time > time_limit`` (``envs/compact_env.py``
  line 89, ``envs/deeprm_env.py`` line 177), i.e. after time_limit + 1 steps, and the job drawn in
  the last step can never be scheduled; no job arrives at time 0.

Its event-based (sparse) step also zeroes the cost of the first elapsed step of every skip
(``rewards[0] = 0``, ``envs/compact_env.py`` line 94); sysgym's sparse rewards keep every step.
Here a job arriving at t is submitted at t and can be allocated at t, and one ending at e frees
its units for allocations at e.

``info["episode_metrics"]``: mean_slowdown, mean_bounded_slowdown, mean_wait (over finished jobs,
0 if none), utilisation (busy resource-0 unit-steps / (cap[0] x now)), makespan (last finish
time), jobs_finished, jobs_left (waiting + allocated at the end), jobs_dropped, invalid_actions,
episode_time, mean_slowdown_all (over finished and unfinished jobs, an unfinished job counting
(now - submit) / length: summed in finish order, then allocation order, then queue order; a policy
that strands jobs cannot hide them as mean_slowdown, which counts finished jobs only, can).

Observations
------------
*compact* (float32, size 2RH + W(7+R) + 3, independent of the cluster size): for r, for t in
0..H-1: used/cap[r], free/cap[r]; then per window slot [present, min(waited/T, 1), length/d,
size[r]/cap[r] for each r, queue-at-submission/(W + backlog), f(queued-work-at-submission),
free-at-submission/cap[0], f(remaining-work-at-submission)] (zeros for an empty slot) with
f(x) = y/(1+y), y = x/(cap[0] d); then backlog jobs/backlog (0 if backlog = 0),
min((now - last_arrival)/10, 1), max(T-1-now, 0)/T. (Table 1 of BRACIS'21; the submission time appears as time waited.)
*image* (float32, H x [sum_r (cap[r] + W s) + ceil(backlog/H) + 1]): per resource the cluster
block (cell (t, c) = 1 if c < used[r][now+t]: processors are fungible, so DeepRM's per-job
colours carry no extra state) followed by W job-slot blocks of s columns (length rows, clipped to
H, by size[r] columns); then the backlog block filled row by row, one cell per backlog job; then
one column with min((now - last_arrival)/10, 1) (DeepRM's "time since last new job").

Action masks: ``info["action_mask"][i] = 1`` iff slot i holds a job that fits; the void action is
always valid.

Feature names (``env.unwrapped.feature_names``, aligned with the flattened observation)
---------------------------------------------------------------------------------------
*compact*: ``used[r{r},t+{t}]``, ``free[r{r},t+{t}]`` (interleaved per t, resource by resource);
per slot i ``slot{i}.present``, ``.waited``, ``.length``, ``.size[r{r}]``, ``.queue_at_submit``,
``.queued_work_at_submit``, ``.free_at_submit``, ``.remaining_work_at_submit``; then
``backlog``, ``since_last_job``, ``time_left``. *image*: one name per cell, row t by row:
``cluster[r{r}][t{t},c{c}]``, ``slot{i}[r{r}][t{t},c{c}]``, ``backlog[t{t},c{c}]``,
``since_last_job[t{t}]``.

Future input (what CrystalBox's sampling baselines need)
--------------------------------------------------------
``set_future_input(trace, offset, index=None)`` on the vector env (sub-env ``index``, all if
None) and on the single env replaces the jobs arriving after the current clock and keeps
everything else: clock, waiting and allocated jobs, usage profile, accumulators, the current
observation and mask. With SWF replay the future stream becomes the episode stream of trace job
``trace`` (as ``trace_start`` would start it) with ``offset`` in [0, T] of its steps already
elapsed: a job whose submit step is k steps after job ``trace``'s, offset < k < T, arrives at
now + k - offset; jobs with k <= offset are in the past and never arrive; arrivals end with that
stream (T - offset steps from now). ``future_input()`` returns the current (trace, offset) pair,
and passing it back changes nothing. With the generator, ``trace`` is a seed and ``offset`` must
be 0: the future arrivals are drawn from the stream ``reset(seed=trace)`` would start (the same
stream for every targeted sub-env). Arguments out of range, or a sub-env whose episode has
ended, raise ``ValueError``.

Snapshots: ``set_state`` checks, besides the shared envelope, every count (queue, allocated
jobs, free job slots, arrivals = finished + dropped + waiting + allocated), that the wait list,
allocated list and free stack partition the job slots, each live job's length, sizes, submit and
start times and submission features against their ranges, the usage profile against the
allocated jobs (exactly) and the capacities, the clock (at most time_limit, and T under
"bracis"), ring head and accumulators, and the SWF stream pointers against the trace and the
clock. Job records live in a fixed pool of slots, so
memory does not grow with the episode length or with replaced inputs.
"""

from .config import SCENARIOS, DeepRMConfig, build_config
from .env import METRIC_NAMES, REWARD_COMPONENTS, DeepRMEnv, DeepRMVectorEnv
from .workload import SWFWorkload, TraceJobs, bimodal_ranges, generate_swf, parse_swf

__all__ = [
    "SCENARIOS", "DeepRMConfig", "build_config", "METRIC_NAMES", "REWARD_COMPONENTS", "DeepRMEnv",
    "DeepRMVectorEnv", "SWFWorkload", "TraceJobs", "bimodal_ranges", "generate_swf", "parse_swf",
]
