"""Appointment scheduling: the strategy-learning problems P1-P3 of Taub & Pianykh (2022).

Reference: S. Taub, O. S. Pianykh, "An alternative to the black box: Strategy learning",
PLoS ONE 17(3): e0264485, 2022. A scheduler fills a day of uniform slots with tasks of a few types,
choosing at each step the type of the next task. Short tasks take less than a slot and long ones
more, so the order decides how long the server idles and how late clients wait.

IDs: ``sysgym/Appointments-P1-v0`` (short + long tasks), ``-P2-v0`` (plus a changeover buffer),
``-P3-v1`` (plus up to two optional breaks, the paper's model) and the generic ``Appointments-v0``
taking every kwarg below. ``-P3-v0`` keeps sysgym 0.1's P3 (``break_model="slot"``: both breaks
mandatory, booked like task slots) so results made with it can be reproduced; new work uses -v1.

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
enumeration_limit  most orderings enumerated exactly, 1..1e7 (1,000,000): a day's exact rank stays
                   well under a second; a bigger day needs percentile="sample" (or "auto")
percentile_samples orderings sampled, 1..1e5 (10,000)
break_model        "paper" (default) | "slot": how breaks are booked and whether they are optional

Dynamics (``cython_core/appointments.pyx`` and ``tests/reference/appointments.py`` implement exactly this)
------------------------------------------------------------------------------------------------------
*Items.* Type 0 = short (``short_duration``), 1 = long (``long_duration``), 2 = break
(``break_duration``; an action type only when ``n_breaks > 0``). A day has n = n_short + n_long
tasks and up to n_breaks breaks. Each item is booked right after the booked time of the one
before (the first at 0): a task books one ``slot``; a break books its own ``break_duration`` with
``break_model="paper"`` (Taub & Pianykh section 2: "up to two 60-minute breaks", e.g. mealtimes)
and one slot with ``"slot"`` (sysgym v0's reading). With "paper" breaks are optional: the day ends
once its last task is placed, so a break can only come before a task and unused breaks are
dropped (P3: the 924 orderings of the tasks times the C(14, 2) = 91 ways to put 0, 1 or 2 breaks
before tasks = 84,084 schedules). With "slot" every break must be placed (14!/(6! 6! 2!) = 84,084
orderings).

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

*Cost* (Taub & Pianykh's C_alpha, section 2.2). The paper writes its terms as d_j - t_j of
"expected duration" and "observed completion time", whose sign and reference are ambiguous in
print; we read ``C_tardiness`` ("the average idle time") as the server's idle time and ``C_late``
("the longest delay") as the largest client lateness (wait) defined above, and

    C_alpha = alpha * (total idle / n) + (1 - alpha) * max lateness      (minutes; lower is better)

with n = the tasks ("paper"; "n sequential tasks (or jobs)") or every item ("slot"). No client
starts before its booked time, so the lateness is never negative and clipping it at 0 changes
nothing. Buffers are neither idle nor lateness.

*Reward.* Each step pays ``idle = 0 - alpha * (idle_k / n)`` and ``lateness = 0 - (1 - alpha) *
(increase of the running maximum lateness)``, so the undiscounted return of a day is -C_alpha
(up to float rounding), and ``invalid`` (below). Weights ``[1, 1, invalid_weight]``;
``info["reward_components"] @ reward_weights == reward``.

*Invalid actions* (an exhausted type; ``info["action_mask"][a] = 0``): with ``"substitute"``
(DeepRM's convention: an invalid choice acts as a valid default) the first type in action order
with items left is placed instead, ``info["invalid_action"]`` is set, the ``invalid`` component is
-1 (weight ``invalid_weight``, default 0) and ``invalid_actions`` counts it; so a day always ends
complete (n to N steps with optional breaks, exactly N with "slot"). ``"raise"`` raises ``ValueError`` (as DAG's ``"raise"``).

*Infos.* ``info["invalid_action"]`` (bool) and ``info["delay"]`` (D below, minutes) every step.

*End.* Terminated after the last task ("paper") or the N-th item ("slot"). ``info["episode_metrics"]``: cost (C_alpha), mean_idle,
max_lateness, total_idle, makespan (end of the last item), invalid_actions and, unless
``percentile="off"``: percentile_efficacy, best_cost (cheapest ordering of the day) and
orderings (how many were compared).

*Percentile efficacy.* ``100 * (#orderings costing more + 0.5 * #orderings tying) / #orderings``
over all distinct orderings (schedules) of the day with the day's multipliers (costs within 1e-9
min tie): 100 = better than every other ordering; a uniformly random ordering scores 50 on
average (the mid-rank makes that exact, ties included). This is the per-day reading; the paper's
(section 3.1: the percentile of a strategy's *average* cost in the distribution of all
schedules' costs) is :func:`~sysgym.envs.appointments.oracle.percentile_of_mean` over many days.
Exact by depth-first enumeration in the kernel, cutting subtrees whose partial cost already
exceeds the episode's (C_alpha never decreases as items are added; those orderings are counted,
not walked). On big days (at least 10,000 orderings, e.g. P3) prefixes that reach the same state
(booked time, end, previous type, items left; at most 4 tasks left) share one list, built once
per day, of the distinct (idle added, largest wait) pairs of its completions with their counts;
a pair whose cost, summed in that other order, comes within a rounding bound of a tie boundary
sends the prefix back to the walk, so the counts are exactly the walk's. ``percentile="exact"`` refuses a day with more than ``enumeration_limit`` orderings;
``"auto"`` samples ``percentile_samples`` uniformly random orderings above the limit; ``"sample"``
always samples. A sample is drawn item by item: one uniform u on the sampling stream picks the
first type (in type order) whose running sum of the completions after it exceeds u times the
completions from the current state. Finished days are ranked one at a time after the batched step,
checking for Ctrl-C between days.

Observations
------------
*boolean* (MultiBinary, names in ``env.unwrapped.feature_names``; the paper's Table 1 and the
features its sections 2.5 and 3.1-3.3 name). With delay ``D = end - booked`` (how late the next
item would start before any buffer): more_than_25/50/75pct_scheduled ("more than 50% / 75% of
jobs scheduled": tasks placed > 25/50/75% of n; every item against N with "slot");
currently_delayed (D > 0); significantly_delayed ("the schedule will remain delayed for any choice
of the next step": for every valid next item at its nominal duration, the following one would
start late); less_time_spent_than_left (the time spent, ``end``, is less than the booked time of
what is left to place: remaining tasks x slot, plus remaining breaks with "slot");
prev_is_<type> and second_prev_is_<type> ("Previous job is ...", "Second-to-Previous job is ...",
one-hot, all 0 when absent; "is not a break" is the 0 branch); prev_longer_than_second_prev /
prev_shorter_than_second_prev / prev_equal_to_second_prev (nominal durations; 0 without two
items); break_available ("Is a break available", breaks only); short_left, long_left,
more_short_left, more_long_left (remaining counts).
*numeric* (Box float32): items left per type, step k, delay D, max lateness, total idle (minutes),
and the previous type one-hot.

Action masks: ``info["action_mask"][a] = 1`` iff an item of type a is left; once the day is
over, action 0 alone (as DAG-EGS does), so that a masked sampler always has a choice (the action
is ignored: the next step resets).

The oracle, state labelling and percentiles are in :mod:`sysgym.envs.appointments.oracle`; the
baselines (random order, alternation, the paper's published strategies, the oracle) in
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
    percentile_of_mean,
)

__all__ = [
    "PROBLEMS", "AppointmentsConfig", "build_config", "REWARD_COMPONENTS", "AppointmentsEnv",
    "AppointmentsVectorEnv", "DayState", "StateLabels", "label_states", "oracle_draws", "oracle_values",
    "ordering_percentile", "percentile_of_mean",
]
