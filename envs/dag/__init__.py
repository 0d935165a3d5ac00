"""DAG task scheduling by edge generation (EGS), after Sun et al., IEEE Transactions on Computers 2024.

Reference: B. Sun, M. Theile, Z. Qin, D. Bernardini, D. Roy, A. Bastoni, M. Caccamo, "Edge
Generation Scheduling for DAG Tasks Using Deep Reinforcement Learning", IEEE Trans. Computers
73(4):1034-1047, 2024, doi:10.1109/TC.2024.3350243 (arXiv:2308.14647). Width by matching:
D. R. Fulkerson, "Note on Dilworth's decomposition theorem for partially ordered sets", Proc. AMS
7(4), 1956. Layer-by-layer generator after D. Cordeiro et al., "Random graph generation for
scheduling simulations", SIMUTools 2010; fork-join generator after A. Melani et al., "Response-Time
Analysis of Conditional DAG Tasks in Multiprocessor Systems", ECRTS 2015.

ID: ``sysgym/DAG-EGS-v0``.

The problem
-----------
A DAG task (G, D): nodes 0..n-1 with integer WCETs C_v >= 0, precedence edges u -> v, a deadline
D >= 1. L(G) is the critical-path length (the largest sum of WCETs along a path) and W(G) the
width (the most pairwise incomparable nodes, a maximum antichain). If L(G) <= D and W(G) <= M the
task is *trivially schedulable* on M processors: running every node as early as possible keeps at
most W nodes busy at once and ends by L. The agent adds edges to lower W while keeping L <= D.

Definitions (on the current graph: the task's edges plus those added so far)
---------------------------------------------------------------------------
* closure: u < v iff there is a path u ~> v (strict, u != v).
* EST_v = max over ancestors a of EST_a + C_a (0 without ancestors); EFT_v = EST_v + C_v;
  L = max_v EFT_v.  LFT_v = min over descendants d of LFT_d - C_d (D without descendants);
  LST_v = LFT_v - C_v.
* W = n - (size of a maximum matching of the bipartite graph with an edge (u_left, v_right)
  for every u < v) (Dilworth; Fulkerson 1956).
* lateral width of v: the width of the nodes incomparable to v (neither ancestor, descendant nor
  v itself), under the same order; 0 if there are none. v is *critical* iff its lateral width is
  W - 1, i.e. v lies in some maximum antichain.
* lower bound: lb = max(1, ceil(vol / D), ceil(C_crit / P)) with vol = sum of C_v, C_crit the sum
  of C over critical nodes and P = max LFT - min EST over critical nodes (that term is left out
  when P = 0). Always lb <= W.

Actions and masks
-----------------
Discrete(N * N) with N = ``max_nodes``: action a adds the edge i -> j, i = a // N, j = a % N.
It is valid iff i != j, both are real nodes (< n), there is no path i ~> j (the edge would be
implied) and no path j ~> i (a cycle), EFT_i <= LST_j (then the new longest path through the edge,
EFT_i + D - LST_j, stays <= D, so L <= D always holds) and both i and j are critical.
``info["action_mask"]`` (int8) and ``action_masks()`` mark the valid edges. When no edge is valid
(only at an episode's end) the mask marks action 0 alone, a placeholder that keeps masked samplers
defined; that action is never executed (the episode is over).

An invalid action is rejected. ``invalid_action="reject"`` (default): the edge is not added, the
state does not change, ``info["invalid_action"]`` is true and the step's components are
(0, 0, -1); it counts as a step (for ``max_steps``) and in the metric ``invalid_actions``; in the
native vector env only the offending sub-env is affected. ``invalid_action="raise"``: ``step``
raises ``ValueError`` saying why (path, cycle, deadline, criticality), before any sub-env moves.
(Rejecting rather than raising by default keeps Gymnasium's, SB3's and RLlib's env checkers,
which step with unmasked ``action_space.sample()``, working.) ``explain_action(a)`` gives the reason.

Step
----
The edge is added, the closure, times, W, lateral widths, critical set and lb are recomputed.
Reward components (``reward_components``, weights ``[1, slack_weight, invalid_weight]``):
``width`` = W_before - W_after (>= 0), ``slack`` = (L_before - L_after) / D (<= 0, the share of
the deadline the step used up) and ``invalid`` (-1 for a rejected action, else 0); the last two
weigh 0 unless set, so by default the reward is W_t - W_{t+1} and the undiscounted return is
W_initial - W_final.

*End.* Terminated when W <= lb, or W <= ``processors`` if given, or no edge is valid. Truncated
(if not terminated) once ``max_steps`` steps were taken (default N * N: each valid edge adds at
least one comparable pair, so valid actions alone end an episode within n(n-1)/2 steps).
``info["episode_metrics"]``: initial_width, final_width, cores_needed (the final width: the cores
the task is trivially schedulable on), width_lower_bound, initial_critical_path, critical_path,
deadline, slack (D - L), edges_added, invalid_actions, num_nodes, tasks_redrawn. Every step's info
also has ``width``, ``critical_path``, ``width_lower_bound``, ``deadline``, ``invalid_action``.

Reset
-----
*Generators* (``workload="layered"`` or ``"forkjoin"``) draw a task from the sub-env's xoshiro256**
stream (``cython_core/rng.pxd``; ``integers(lo, hi)`` inclusive, ``uniform()`` in [0, 1)). A task
that is already done (terminal by the rule above) is discarded and another drawn; the number
discarded is the metric ``tasks_redrawn`` (an error after 1000).

``layered`` (layer by layer): n = integers(n_lo, n_hi); then the layer sizes: while nodes remain,
the next layer takes min(integers(1, parallelism), nodes left) nodes; or, if ``layers`` is given,
K = min(n, integers(layers_lo, layers_hi)) layers of one node each, then each of the other n - K
nodes joins layer integers(0, K - 1). Nodes are numbered in layer order. Then the edges: for each node v of a layer after the first, in order, for each node u of the earlier
layers in order, an edge u -> v if uniform() < edge_probability; if v got no edge, one edge from
node first_of_previous_layer + integers(0, size_of_previous_layer - 1).

``forkjoin`` (nested fork-join, series-parallel): expand(depth, reserved) makes a block; it is a
single node unless depth < max_depth and uniform() >= term_probability; then if
uniform() < fork_probability: k = integers(2, max_branches) and the block is *parallel* if
made + reserved + k + 2 <= n_hi (else a single node); otherwise it is *series* if
made + reserved + 2 <= n_hi (else a single node). made counts the nodes created so far.
A single node is created (next number). Series: expand(depth+1, reserved+1), then
expand(depth+1, reserved), an edge from the first's exit to the second's entry. Parallel: a fork
node is created, then for branch b = 0..k-1 expand(depth+1, reserved + k - b), an edge from the
fork to the branch's entry; then a join node, with an edge from every branch's exit. The task is
expand(0, 0); if it has fewer than n_lo nodes it is discarded and drawn again.

Then, for either generator: C_v = integers(wcet_lo, wcet_hi) for v = 0..n-1 in order; with L and
vol of the drawn graph and L' = max(L, 1) (a deadline is positive even when every WCET is 0),
D = integers(L', max(L', floor(vol / utilisation_min))).

*Task sets* (``workload=`` a ``.dot`` file with one or more digraphs, a directory of ``.dot``
files, a :class:`DAGTask` or a list of them): tasks already done at the start are set aside when
the env is built (``skipped_tasks`` lists them with the reason); a reset picks
playable[integers(0, n_playable - 1)], or task k with ``reset(options={"task": k})``.

Observations
------------
``observation="dict"`` (default): ``nodes`` float32 (N, 5) rows [C/D, EFT/D, LST/D,
lateral width / n, 1] for real nodes and zeros for padding; ``closure`` int8 (N, N), [u, v] = 1
iff u < v; ``action_mask`` int8 (N*N,), the mask above. ``observation="flat"``: one float32 Box
of the three concatenated (nodes, closure, mask, each row-major), for MLP libraries.

``feature_names`` (on the env) names every entry of the flattened observation: ``node{v}.C/D``,
``node{v}.EFT/D``, ``node{v}.LST/D``, ``node{v}.lateral/n``, ``node{v}.present``, ``path[u->v]``
(closure) and ``edge[u->v]`` (mask). For ``"dict"`` they follow gymnasium's flatten order (the
Dict's keys: action_mask, closure, nodes); for ``"flat"`` the Box's own order.

Rendering: ``ansi`` a text summary; ``rgb_array`` a layered drawing on a canvas whose size depends
only on ``max_nodes`` (every frame of an env has the same shape, as video writers need).

Kwargs (ranges are checked when the env is built; anything outside is a ValueError naming the kwarg)
------
==================  =========================================  ==========================================
kwarg               valid values (default)                     meaning
==================  =========================================  ==========================================
workload            "layered" | "forkjoin" | .dot file or      seeded generators or a task set (at most
                    directory | DAGTask(s)  ("layered")        65536 tasks, packed size <= 256 MiB)
num_nodes           (lo, hi) or n, ints in [2, 256]  (20, 30)  nodes per generated task
max_nodes           int in [2, 256]  (largest task)            padded size N of the spaces
parallelism         int in [2, 256]  (8)                       layered: most nodes per layer
layers              (lo, hi) or K, ints in [1, 256]  (None)    layered: layer count instead of sizes
edge_probability    [0, 1]  (0.1)                              layered: chance of each forward edge
term_probability    [0, 1)  (0.2)                              forkjoin: a block is a single node
fork_probability    [0, 1]  (0.8)                              forkjoin: a block is parallel, not series
max_branches        int in [2, 256]  (5)                       forkjoin: branches of a parallel block
max_depth           int in [1, 256]  (4)                       forkjoin: nesting depth
wcet                (lo, hi) ints in [0, 2^53], hi >= 1        WCETs of generated tasks; also
                    (1, 10)                                    num_nodes_hi * wcet_hi <= 2^53
utilisation_min     (0, 1e12]  (2.0)                           D <= vol / utilisation_min where L
                                                               allows; num_nodes_hi * wcet_hi /
                                                               utilisation_min <= 2^53
processors          int in [1, 256] or None  (None)            M: also end once W <= M
max_steps           int in [1, 2^31 - 1]  (max_nodes ** 2)     truncate after this many steps
observation         "dict" | "flat"  ("dict")                  see Observations
invalid_action      "reject" | "raise"  ("reject")             see above
slack_weight        [-1e12, 1e12]  (0.0)                       weight of the slack component
invalid_weight      [-1e12, 1e12]  (0.0)                       weight of the invalid component
==================  =========================================  ==========================================

Tasks from any source (generated, DOT files, :class:`DAGTask` objects) obey the limits of
:mod:`sysgym.envs.dag.tasks`: at most 256 nodes, WCETs in [0, 2^53], deadlines in [1, 2^53] (exact
in float64; no int64 sum can overflow). Memory: one sub-env holds about 12 N^2 bytes (``"dict"``)
or 18 N^2 (``"flat"``) of state and buffers, mostly matchings, closure and mask: 0.75 / 1.1 MiB
at N = 256, 21 / 31 KiB at N = 40. A vector env holds at most 4 GiB in all (``num_envs`` x that),
else a ValueError naming num_envs and max_nodes.

Snapshots: ``set_state`` re-derives every quantity of each sub-env (closure, times, widths, mask,
observation) from its task, WCETs, deadline and edges, and refuses a snapshot that disagrees,
whose indices, counts or bitsets are out of range, or whose matchings are not matchings of the
right size (see :mod:`sysgym.envs.dag.state`).

Helpers on the env (``env.unwrapped``): ``node_table()``, ``task()``, ``added_edges()``,
``processor_assignment()`` (a minimum chain cover: W chains, one processor each),
``edge_outcomes()`` (width and L after each valid edge, for look-ahead policies), ``to_dot()``;
and ``analyse_task(task)`` gives W, L, the bound and the node table of any task outside an episode.
"""

from .config import DAGConfig, build_config
from .dot import format_dot, load_dot, load_tasks, parse_dot
from .env import METRIC_NAMES, NODE_FEATURES, REWARD_COMPONENTS, DAGEnv, DAGVectorEnv, analyse_task
from .generate import generate_tasks
from .tasks import DAGTask, make_task

__all__ = ["DAGConfig", "build_config", "format_dot", "load_dot", "load_tasks", "parse_dot",
           "METRIC_NAMES", "NODE_FEATURES", "REWARD_COMPONENTS", "DAGEnv", "DAGVectorEnv", "analyse_task",
           "generate_tasks", "DAGTask", "make_task"]
