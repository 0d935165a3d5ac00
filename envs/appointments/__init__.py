"""Appointment scheduling: the strategy-learning problems P1-P3 of Taub & Pianykh (2022).

Reference: S. Taub, O. S. Pianykh, "An alternative to the black box: Strategy learning",
PLoS ONE 17(3): e0264485, 2022. A scheduler fills a day of uniform slots with tasks of a few types,
choosing at each step the type of the next task. Short tasks take less than a slot and long ones
more, so the order decides how long the server idles and how late clients wait.

IDs: ``sysgym/Appointments-P1-v0`` (short + long tasks), ``-P2-v0`` (plus a changeover buffer),
``-P3-v0`` (plus breaks) and the generic ``Appointments-v0`` taking every kwarg below.

Kwargs (valid ranges are checked before anything reaches the kernel)
-------------------------------------------------------------------
problem            "P1" | "P2" | "P3" (default "P1"): the defaults of buffer and n_breaks below
n_short, n_long    tasks per type, 0..64 each, at least one task (6, 6)
n_breaks           breaks, 0..8 (P3: 2, else 0)
short_duration     nominal minutes, (0, 1440] (30)      long_duration  (0, 1440] (60)
slot               minutes per booked slot, (0, 1440] (45)
buffer             changeover minutes, [0, 1440] (P2, P3: 15; P1: 0)
break_duration     (0, 1440] (60)                       break_elasticity  [0, break_duration] (15)
noise              duration noise half-width, [0, 1] (0.05)
alpha              weight of idle time in C_alpha, (0, 1) open (0.5)
observation        "boolean" (Table 1 features) | "numeric"
invalid_action     "substitute" (default) | "raise"     invalid_weight  [0, 1e6] (0)
percentile         "exact" (default) | "auto" | "sample" | "off"
enumeration_limit  most orderings enumerated exactly, 1..1e9 (1,000,000)
percentile_samples orderings sampled above it, 1..1e7 (10,000)

Dynamics (``cython_core/appointments.pyx`` and ``tests/reference/appointments.py`` implement exactly this)
------------------------------------------------------------------------------------------------------
*Items.* Type 0 = short (``short_duration``), 1 = long (``long_duration``), 2 = break
(``break_duration``; an action type only when ``n_breaks > 0``). A day has N = n_short + n_long +
n_breaks items; the k-th item placed (k = 0..N-1) is booked at ``B_k = k * slot``. Breaks are
placed like tasks (P3: "up to two breaks" is read as n_breaks = 2 breaks that must all be placed,
so that the day has 14!/(6! 6! 2!) = 84,084 orderings).

*Noise* (drawn at reset, from the sub-env's xoshiro256** stream, in this order): for each short
task j = 0..n_short-1, then each long task j = 0..n_long-1, one uniform u and the multiplier
``f = 1 + noise * (2u - 1)``: uniform on [1 - noise, 1 + noise]. The j-th short task *placed*
lasts ``short_duration * f_short[j]`` (likewise long). A uniform keeps durations non-negative over
the whole [0, 1] range of the paper's noise axis and has mean 1; ``noise=0`` gives f = 1 exactly.
Breaks are not noisy. Since the multipliers belong to (type, occurrence), every ordering of the
same day sees the same draws, which is what the percentile compares. One more 64-bit draw seeds
(splitmix64) the stream used only to sample orderings.

*Step(action a).* Let ``end`` be the end of the previous item (0 before the first) and ``prev``
its type. The changeover buffer applies when a and prev are both tasks of different types (P2: an
MRI coil change); a break in between absorbs it. ``ready = end + buffer (if it applies)``; the
item starts at ``start = max(B_k, ready)``. The server's *idle* time before it is
``max(B_k - ready, 0)`` and its *wait* is ``max(ready - B_k, 0)`` (exactly one is positive, or
both are 0). A task lasts its nominal duration times its multiplier and its client's *lateness*
is its wait. A break has no client; it lasts ``break_duration - min(break_elasticity, wait)``
(elasticity: up to 15 min of the overrun before it is absorbed). ``end = start + duration``.

*Cost* (Taub & Pianykh's C_alpha). The paper writes its idle-time and lateness terms as
differences of times whose sign is ambiguous in print; we read them as the non-negative parts
above: ``C_tardiness`` = server idle, ``C_late`` = the largest client lateness, and

    C_alpha = alpha * (total idle / N) + (1 - alpha) * max lateness      (minutes; lower is better)

with the mean idle taken per item (slot), breaks included. Buffers are neither idle nor lateness.

*Reward.* Each step pays ``idle = 0 - alpha * (idle_k / N)`` and ``lateness = 0 - (1 - alpha) *
(increase of the running maximum lateness)``, so the undiscounted return of a day is -C_alpha
(up to float rounding), and ``invalid`` (below). Weights ``[1, 1, invalid_weight]``;
``info["reward_components"] @ reward_weights == reward``.

*Invalid actions* (an exhausted type; ``info["action_mask"][a] = 0``): with ``"substitute"``
(DeepRM's convention: an invalid choice acts as a valid default) the first type in action order
with items left is placed instead, ``info["invalid_action"]`` is set, the ``invalid`` component is
-1 (weight ``invalid_weight``, default 0) and ``invalid_actions`` counts it; so a day always takes
exactly N steps and ends complete. ``"raise"`` raises ``ValueError`` (as DAG's ``"raise"``).

*Infos.* ``info["invalid_action"]`` (bool) and ``info["delay"]`` (D below, minutes) every step.

*End.* Terminated after the N-th item. ``info["episode_metrics"]``: cost (C_alpha), mean_idle,
max_lateness, total_idle, makespan (end of the last item), invalid_actions and, unless
``percentile="off"``: percentile_efficacy, best_cost (cheapest ordering of the day) and
orderings (how many were compared).

*Percentile efficacy.* ``100 * (#orderings costing more + 0.5 * #orderings tying) / #orderings``
over all distinct orderings of the day's items with the day's multipliers (costs within 1e-9 min
tie): 100 = better than every other ordering; a uniformly random ordering scores 50 on average
(the mid-rank makes that exact, ties included). Exact by depth-first enumeration in the kernel,
cutting subtrees whose partial cost already exceeds the episode's (C_alpha never decreases as
items are added; those orderings are counted, not walked). ``percentile="exact"`` refuses a day
with more than ``enumeration_limit`` orderings; ``"auto"`` samples ``percentile_samples`` uniformly
random orderings (Fisher-Yates with ``integers(0, i)``, i = N-1..1, on the sampling stream) above
the limit; ``"sample"`` always samples.

Observations
------------
*boolean* (MultiBinary, names in ``env.unwrapped.feature_names``; our reading of the paper's
Table 1). With delay ``D = end - k * slot`` (how late the next slot would start before any buffer):
progress_gt_25/50/75 (more than 25/50/75% of the items placed: 4k > N, 2k > N, 4k > 3N);
delayed (D > 0); significantly_delayed (delayed whatever comes next: for every type with items left,
placing it at its nominal duration would leave the following slot late); spent_lt_left (less time
spent than left: end < (N - k) * slot); prev_<type> and prev2_<type> (types of the last two items,
one-hot, all 0 when absent); prev_longer / prev_shorter / prev_equal (nominal duration of the last
item against the one before; 0 without two items); break_available (breaks only); short_left,
long_left, more_short_left, more_long_left (remaining counts).
*numeric* (Box float32): items left per type, step k, delay D, max lateness, total idle (minutes),
and the previous type one-hot.

Action masks: ``info["action_mask"][a] = 1`` iff an item of type a is left; once the day is
over, action 0 alone (as DAG-EGS does), so that a masked sampler always has a choice (the action
is ignored: the next step resets).

The oracle, state labelling and percentile are in :mod:`sysgym.envs.appointments.oracle`; the
baselines (random order, alternation, the paper's rules, the oracle) in
:mod:`sysgym.agents.heuristics.appointments`.
"""

from .config import PROBLEMS, AppointmentsConfig, build_config
from .env import REWARD_COMPONENTS, AppointmentsEnv, AppointmentsVectorEnv
from .oracle import (
    DayState,
    StateLabels,
    label_states,
    oracle_draws,
    oracle_values,
    ordering_percentile,
)

__all__ = [
    "PROBLEMS", "AppointmentsConfig", "build_config", "REWARD_COMPONENTS", "AppointmentsEnv",
    "AppointmentsVectorEnv", "DayState", "StateLabels", "label_states", "oracle_draws", "oracle_values",
    "ordering_percentile",
]
