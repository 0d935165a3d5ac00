# Appointment-scheduling kernel (Taub & Pianykh, PLoS ONE 17(3): e0264485, 2022): B days stepped
# in one nogil loop, plus the exact routines built on the same step function: the ranking of a
# day's cost among all orderings of that day (percentile efficacy), the oracle's per-action
# expected cost with an optimal continuation, and the labelling of every reachable state.
#
# The dynamics are specified in sysgym/envs/appointments/__init__.py (module docstring) and
# mirrored by tests/reference/appointments.py. All episode state lives in numpy arrays owned by
# the Python env; this module only holds typed views of them.
#
# Every enumeration is a depth-first walk over the distinct orderings of the remaining items
# (a multiset permutation tree, children in type order; with optional breaks a branch ends at
# its last task), at most N <= MAX_ITEMS deep, so every loop and every recursion here is bounded
# by the configuration, never by the data. Counts of completions come from a table built in
# config.py (Params.multi), which is what makes cutting a subtree cheap and sampling uniform.

from libc.stdint cimport uint64_t, int64_t, int8_t, uint8_t
from libc.math cimport INFINITY, nextafter
from libc.float cimport DBL_EPSILON
from libc.stdlib cimport calloc, free
from libc.string cimport memcpy, memset
from cpython.exc cimport PyErr_CheckSignals

from rng cimport rng_uniform, rng_integers, rng_seed_child
from kernel cimport check_batch, check_state, episode_outputs, zero_doubles

cdef enum:
    SHORT = 0
    LONG = 1
    BREAK = 2
    MAX_TYPES = 3
    MAX_ITEMS = 160          # n_short, n_long <= 64 and n_breaks <= 8 (config.py checks)

cdef enum:
    PERC_OFF = 0
    PERC_EXACT = 1
    PERC_SAMPLE = 2

cdef enum:
    BEST_TAIL = 0
    MEAN_TAIL = 1

ORACLE_BEST = BEST_TAIL          # oracle modes, for Python callers
ORACLE_AVERAGE = MEAN_TAIL

# Columns of the metrics array (config.py names them; the percentile ones only when it is on).
cdef enum:
    M_COST = 0
    M_MEAN_IDLE = 1
    M_MAX_LATENESS = 2
    M_TOTAL_IDLE = 3
    M_MAKESPAN = 4
    M_INVALID = 5
    M_PERCENTILE = 6
    M_BEST = 7
    M_ORDERINGS = 8

N_BASE_METRICS = 6
N_PERCENTILE_METRICS = 3

# Costs closer than this (minutes) are ties when orderings are ranked.
TIE_TOLERANCE = 1e-9

# Scratch space of the exact ranking's shared tails (see _rank_cut): hash slots for the distinct
# cut states of one day, the tails stored for them, and the list length past which a list is not
# deduplicated any further. When either fills up, the rest of the day is walked as before.
cdef enum:
    MEMO_SLOTS = 1 << 15
    MEMO_FILL = 1 << 14
    MEMO_TAILS = 1 << 17
    MEMO_DEDUPE = 256


cdef struct Params:
    double slot, buffer, elasticity, alpha, noise, tol
    double break_booked       # booked minutes of a break: its duration (paper) or one slot ("slot")
    double n_div              # the n of C_tardiness: tasks (paper) or all items ("slot")
    double dur[MAX_TYPES]
    int n[MAX_TYPES]
    int N, T, M               # items, action types (2 or 3), factor columns per task type
    int optional              # 1: breaks may be left unused, the day ends with its last task
    int s1, s2                # strides of the multinomial table: ((r0 * s1) + r1) * s2 + r2
    const double* multi       # multinomial coefficients of the remaining counts (Problem.multi)


cdef struct Day:
    double booked             # booked start of the next item
    double end                # end of the last item (minutes since the day's start)
    double late_max           # running maximum of the clients' lateness
    double idle               # server idle time so far
    int k                     # items placed = index of the next slot
    int prev, prev2           # types of the last two items (-1: none)
    int rem[MAX_TYPES]        # items left per type


cdef struct Placed:
    double start, finish, idle, wait, gain


cdef struct Rank:
    double worse, ties, total, best


cdef struct Tail:
    double idle               # idle added by a group of completions (summed from the cut state on)
    double late               # their largest wait
    double count              # how many completions share this (idle, late)


cdef struct Slot:
    double booked, end        # the cut state's key: these (bitwise), prev and the counts left
    int rem0, rem1, rem2, prev
    unsigned int stamp        # the ranking that filled it (0: never)
    int start, length         # its tails in Memo.tails
    double idle_lo, idle_hi, late_lo, late_hi


cdef struct Memo:
    Slot* slots
    Tail* tails
    int used, filled          # tails and slots used by the current ranking
    unsigned int stamp        # the current ranking
    int cut                   # states with at most `cut` tasks left are cut states (-1: off)
    double delta              # bound on |exact - approximate| cost of a completion


cdef inline Placed _place(const Params* p, Day* d, int a, double factor) noexcept nogil:
    """Place one item of type a in the next slot (factor: its duration multiplier)."""
    cdef Placed r
    cdef double booked = d.booked
    cdef double ready = d.end
    cdef double dur, old
    if a != BREAK and (d.prev == SHORT or d.prev == LONG) and d.prev != a:
        ready = ready + p.buffer
    if ready >= booked:
        r.start = ready
        r.idle = 0.0
        r.wait = ready - booked
    else:
        r.start = booked
        r.idle = booked - ready
        r.wait = 0.0
    if a == BREAK:
        dur = p.dur[BREAK] - (r.wait if r.wait < p.elasticity else p.elasticity)
    else:
        dur = p.dur[a] * factor
    r.finish = r.start + dur
    old = d.late_max
    if a != BREAK and r.wait > old:
        d.late_max = r.wait
    r.gain = d.late_max - old
    d.idle = d.idle + r.idle
    d.end = r.finish
    d.booked = booked + (p.break_booked if a == BREAK else p.slot)
    d.prev2 = d.prev
    d.prev = a
    d.rem[a] -= 1
    d.k += 1
    return r


cdef inline double _factor(const Params* p, const Day* d, const double* fac, int a) noexcept nogil:
    """Multiplier of the next item of type a: the j-th of its type uses column j of its row."""
    if a == BREAK:
        return 1.0
    return fac[a * p.M + (p.n[a] - d.rem[a])]


cdef inline double _cost(const Params* p, const Day* d) noexcept nogil:
    """C_alpha so far; it never decreases as items are added (a lower bound of every completion)."""
    return p.alpha * (d.idle / p.n_div) + (1.0 - p.alpha) * d.late_max


cdef inline bint _done(const Params* p, const Day* d) noexcept nogil:
    """The day is over: every item placed, or (optional breaks) every task placed."""
    if p.optional:
        return d.rem[SHORT] + d.rem[LONG] == 0
    return d.k >= p.N


cdef inline double _booked_of(const Params* p, const int* rem) noexcept nogil:
    """Booked start of the next item, from the counts placed (tasks one slot, breaks break_booked)."""
    return (p.n[SHORT] - rem[SHORT] + p.n[LONG] - rem[LONG]) * p.slot + (p.n[BREAK] - rem[BREAK]) * p.break_booked


cdef inline double _orderings(const Params* p, const Day* d) noexcept nogil:
    return p.multi[(d.rem[0] * p.s1 + d.rem[1]) * p.s2 + d.rem[2]]


cdef inline int _first_valid(const Params* p, const Day* d) noexcept nogil:
    cdef int a
    for a in range(p.T):
        if d.rem[a] > 0:
            return a
    return -1


# ---------------------------------------------------------------------- enumerations
cdef void _best_tail(const Params* p, const Day* d, const double* fac, double* best) noexcept nogil:
    """best[0] = min(best[0], the cheapest completion of d); subtrees that cannot beat it are cut."""
    cdef int a
    cdef Day c
    cdef double cost = _cost(p, d)
    if cost >= best[0]:
        return
    if _done(p, d):
        best[0] = cost
        return
    for a in range(p.T):
        if d.rem[a] > 0:
            c = d[0]
            _place(p, &c, a, _factor(p, &c, fac, a))
            _best_tail(p, &c, fac, best)


cdef void _sum_tail(const Params* p, const Day* d, const double* fac, double* total) noexcept nogil:
    """total[0] += the cost of every completion of d, in depth-first (type) order."""
    cdef int a
    cdef Day c
    if _done(p, d):
        total[0] += _cost(p, d)
        return
    for a in range(p.T):
        if d.rem[a] > 0:
            c = d[0]
            _place(p, &c, a, _factor(p, &c, fac, a))
            _sum_tail(p, &c, fac, total)


cdef void _rank_tail(const Params* p, const Day* d, const double* fac, double c, Rank* r) noexcept nogil:
    """Count the completions of d costing more than c, tying with it, and the cheapest."""
    cdef int a
    cdef Day ch
    cdef double cost = _cost(p, d)
    cdef double n
    if cost > c + p.tol:                       # every completion costs more: count, do not walk
        n = _orderings(p, d)
        r.worse += n
        r.total += n
        return
    if _done(p, d):
        r.total += 1.0
        if cost >= c - p.tol:
            r.ties += 1.0
        if cost < r.best:
            r.best = cost
        return
    for a in range(p.T):
        if d.rem[a] > 0:
            ch = d[0]
            _place(p, &ch, a, _factor(p, &ch, fac, a))
            _rank_tail(p, &ch, fac, c, r)


# ---------------------------------------------------------------------- shared tails
# The subtree below a state depends on its idle and lateness only through C_alpha's sum and max;
# what happens next depends on (booked, end, prev, counts left) alone. So states that agree on
# those (bitwise) share their completions: for each such *cut state* (at most Memo.cut tasks
# left) the distinct (idle added, largest wait) pairs of its completions are listed once per day,
# with counts, and every prefix reaching it is ranked by scanning that list. A pair's cost is the
# prefix's idle plus the pair's, summed in another order than the walk does, so it may differ from
# the walked cost by Memo.delta at most: a pair that close to a tie boundary sends that prefix
# back to the exact walk, so the counts stay exactly the walk's.

cdef inline uint64_t _bits(double x) noexcept nogil:
    cdef uint64_t u
    memcpy(&u, &x, sizeof(double))
    return u


cdef inline uint64_t _key_hash(const Day* d) noexcept nogil:
    cdef uint64_t h = _bits(d.end) * <uint64_t>0x9E3779B97F4A7C15
    h = (h ^ (h >> 29)) + _bits(d.booked) * <uint64_t>0xBF58476D1CE4E5B9
    h = (h ^ (h >> 32)) + <uint64_t>(d.rem[0] | (d.rem[1] << 8) | (d.rem[2] << 16) | ((d.prev + 1) << 24)) \
        * <uint64_t>0x94D049BB133111EB
    return h ^ (h >> 31)


cdef int _find(Memo* m, const Day* d) noexcept nogil:
    """The slot holding d's key in this ranking, or the empty slot where it goes (stamp differs);
    -1 when the table is too full to add one."""
    cdef uint64_t i = _key_hash(d) & <uint64_t>(MEMO_SLOTS - 1)
    cdef int probe
    cdef Slot* s
    for probe in range(MEMO_SLOTS):
        s = &m.slots[i]
        if s.stamp != m.stamp:
            return <int>i if m.filled < MEMO_FILL else -1
        if _bits(s.end) == _bits(d.end) and _bits(s.booked) == _bits(d.booked) and s.prev == d.prev \
                and s.rem0 == d.rem[0] and s.rem1 == d.rem[1] and s.rem2 == d.rem[2]:
            return <int>i
        i = (i + 1) & <uint64_t>(MEMO_SLOTS - 1)
    return -1


cdef inline bint _add_tail(Memo* m, int start, double idle, double late, double count) noexcept nogil:
    """Append (idle, late) to the list being built at start, or add count to an equal pair."""
    cdef int j
    if m.used - start <= MEMO_DEDUPE:
        for j in range(start, m.used):
            if m.tails[j].idle == idle and m.tails[j].late == late:
                m.tails[j].count += count
                return True
    if m.used >= MEMO_TAILS:
        return False
    m.tails[m.used].idle = idle
    m.tails[m.used].late = late
    m.tails[m.used].count = count
    m.used += 1
    return True


cdef Slot* _tails(const Params* p, Memo* m, const Day* d, const double* fac) noexcept nogil:
    """The list of the not-done state d (its idle and lateness ignored), built on first use from its
    children's; NULL when the scratch space is full."""
    cdef int i = _find(m, d), a, j, n = 0, start
    cdef int kids[MAX_TYPES]
    cdef Day ch[MAX_TYPES]
    cdef Slot* s
    cdef Slot* k
    if i < 0:
        return NULL
    if m.slots[i].stamp == m.stamp:
        return &m.slots[i]
    for a in range(p.T):                      # the children's lists first (they do not move)
        if d.rem[a] > 0:
            ch[n] = d[0]
            ch[n].idle = 0.0
            ch[n].late_max = 0.0
            _place(p, &ch[n], a, _factor(p, &ch[n], fac, a))
            kids[n] = -1
            if not _done(p, &ch[n]):
                k = _tails(p, m, &ch[n], fac)
                if k == NULL:
                    return NULL
                kids[n] = <int>(k - m.slots)
            n += 1
    i = _find(m, d)                           # children may have taken the slot found first
    if i < 0:
        return NULL
    start = m.used
    for j in range(n):
        if kids[j] < 0:
            if not _add_tail(m, start, ch[j].idle, ch[j].late_max, 1.0):
                m.used = start
                return NULL
        else:
            k = &m.slots[kids[j]]
            for a in range(k.start, k.start + k.length):
                if not _add_tail(m, start, ch[j].idle + m.tails[a].idle,
                                 ch[j].late_max if ch[j].late_max > m.tails[a].late else m.tails[a].late,
                                 m.tails[a].count):
                    m.used = start
                    return NULL
    s = &m.slots[i]
    s.booked = d.booked
    s.end = d.end
    s.prev = d.prev
    s.rem0 = d.rem[0]
    s.rem1 = d.rem[1]
    s.rem2 = d.rem[2]
    s.stamp = m.stamp
    s.start = start
    s.length = m.used - start
    s.idle_lo = INFINITY
    s.idle_hi = -INFINITY
    s.late_lo = INFINITY
    s.late_hi = -INFINITY
    for a in range(start, m.used):
        s.idle_lo = min(s.idle_lo, m.tails[a].idle)
        s.idle_hi = max(s.idle_hi, m.tails[a].idle)
        s.late_lo = min(s.late_lo, m.tails[a].late)
        s.late_hi = max(s.late_hi, m.tails[a].late)
    m.filled += 1
    return s


cdef inline double _cost_with(const Params* p, const Day* d, double idle, double late) noexcept nogil:
    """C_alpha of d followed by a tail adding `idle` with largest wait `late` (approximate)."""
    return p.alpha * ((d.idle + idle) / p.n_div) + (1.0 - p.alpha) * (d.late_max if d.late_max > late else late)


cdef bint _count_tails(const Params* p, Memo* m, const Day* d, const double* fac, double c, Rank* r) noexcept nogil:
    """Rank the completions of the cut state d from its list; False (nothing counted) when the
    list is unavailable or a pair lies within 2 delta of a tie boundary."""
    cdef Slot* s = _tails(p, m, d, fac)
    cdef double hi, lo, x, n, worse = 0.0, ties = 0.0, e = 2.0 * m.delta
    cdef int j
    if s == NULL:
        return False
    hi = c + p.tol
    lo = c - p.tol
    n = _orderings(p, d)
    if _cost_with(p, d, s.idle_lo, s.late_lo) > hi + e:          # all worse
        r.worse += n
        r.total += n
        return True
    if _cost_with(p, d, s.idle_hi, s.late_hi) < lo - e:          # all better
        r.total += n
        return True
    for j in range(s.start, s.start + s.length):
        x = _cost_with(p, d, m.tails[j].idle, m.tails[j].late)
        if x > hi + e:
            worse += m.tails[j].count
        elif x >= lo + e and x <= hi - e:
            ties += m.tails[j].count
        elif not x < lo - e:                                     # too close to call (or NaN)
            return False
    r.worse += worse
    r.ties += ties
    r.total += n
    return True


cdef void _rank_cut(const Params* p, Memo* m, const Day* d, const double* fac, double c, Rank* r) noexcept nogil:
    """_rank_tail's counts (not its best), scanning the lists of the cut states it reaches."""
    cdef int a
    cdef Day ch
    cdef double n
    if _cost(p, d) > c + p.tol:
        n = _orderings(p, d)
        r.worse += n
        r.total += n
        return
    if _done(p, d) or d.rem[SHORT] + d.rem[LONG] <= m.cut:
        if _done(p, d) or not _count_tails(p, m, d, fac, c, r):
            _rank_tail(p, d, fac, c, r)
        return
    for a in range(p.T):
        if d.rem[a] > 0:
            ch = d[0]
            _place(p, &ch, a, _factor(p, &ch, fac, a))
            _rank_cut(p, m, &ch, fac, c, r)


cdef void _rank_day(const Params* p, Memo* m, const double* fac, double c, Rank* r) noexcept nogil:
    """Exact rank of c among the day's orderings: the same worse, ties, total and best as
    _rank_tail over the whole day. best is the cheapest ordering costing at most c + tol (what the
    walk sees), found by a separate branch and bound."""
    cdef Day d
    cdef double bound
    _start_day(p, &d)
    if m.cut >= 0 and m.slots == NULL:
        m.slots = <Slot*>calloc(MEMO_SLOTS, sizeof(Slot))
        m.tails = <Tail*>calloc(MEMO_TAILS, sizeof(Tail))
    if m.cut < 0 or m.slots == NULL or m.tails == NULL:
        _rank_tail(p, &d, fac, c, r)
        return
    m.stamp += 1
    if m.stamp == 0:                          # wrapped: forget every slot
        memset(m.slots, 0, MEMO_SLOTS * sizeof(Slot))
        m.stamp = 1
    m.used = 0
    m.filled = 0
    _rank_cut(p, m, &d, fac, c, r)
    bound = nextafter(c + p.tol, INFINITY)          # the walk's best: cheapest leaf <= c + tol
    if bound != bound:                              # c is NaN: the walk cuts nothing
        bound = INFINITY
    r.best = bound
    _best_tail(p, &d, fac, &r.best)
    if not r.best < bound:
        r.best = INFINITY


cdef inline void _start_day(const Params* p, Day* d) noexcept nogil:
    cdef int t
    d.booked = 0.0
    d.end = 0.0
    d.late_max = 0.0
    d.idle = 0.0
    d.k = 0
    d.prev = -1
    d.prev2 = -1
    for t in range(MAX_TYPES):
        d.rem[t] = p.n[t]


cdef void _rank_sampled(const Params* p, const double* fac, double c, int samples, uint64_t* rng,
                        Rank* r) noexcept nogil:
    """Rank c among `samples` uniformly random orderings, each drawn item by item: from a state,
    one uniform u picks the first type a (in type order) whose cumulative count of completions
    through a exceeds u times the state's completions (so every ordering is equally likely)."""
    cdef int s, a, t, chosen
    cdef Day d, c2
    cdef double cost, u, acc
    for s in range(samples):
        _start_day(p, &d)
        while not _done(p, &d):
            u = rng_uniform(rng) * _orderings(p, &d)
            acc = 0.0
            chosen = -1
            for t in range(p.T):
                if d.rem[t] > 0 and chosen < 0:
                    c2 = d
                    c2.rem[t] -= 1
                    acc += _orderings(p, &c2)
                    if u < acc:
                        chosen = t
            if chosen < 0:                     # rounding guard: the last type with items left
                for t in range(p.T):
                    if d.rem[t] > 0:
                        chosen = t
            a = chosen
            _place(p, &d, a, _factor(p, &d, fac, a))
        cost = _cost(p, &d)
        r.total += 1.0
        if cost > c + p.tol:
            r.worse += 1.0
        elif cost >= c - p.tol:
            r.ties += 1.0
        if cost < r.best:
            r.best = cost


cdef double _action_value(const Params* p, const Day* d, int a, const double* draws, int K,
                          int mode) noexcept nogil:
    """Mean over the K draw tables of the cost of placing a next and then the best completion
    (mode BEST) or the mean over all completions (mode AVERAGE)."""
    cdef int k
    cdef Day c
    cdef const double* fac
    cdef double acc = 0.0, tail
    for k in range(K):
        fac = draws + k * 2 * p.M
        c = d[0]
        _place(p, &c, a, _factor(p, &c, fac, a))
        if mode == BEST_TAIL:
            tail = INFINITY
            _best_tail(p, &c, fac, &tail)
        else:
            tail = 0.0
            _sum_tail(p, &c, fac, &tail)
            tail = tail / _orderings(p, &c)
        acc += tail
    return acc / K


cdef void _values(const Params* p, const Day* d, const double* draws, int K, int mode,
                  double* out) noexcept nogil:
    cdef int a
    for a in range(p.T):
        if d.rem[a] > 0 and not _done(p, d):
            out[a] = _action_value(p, d, a, draws, K, mode)
        else:
            out[a] = INFINITY


# ---------------------------------------------------------------------- observations
cdef bint _significantly_delayed(const Params* p, const Day* d) noexcept nogil:
    """Delayed whatever comes next: after any valid item at its nominal duration the next client
    would still wait."""
    cdef int a
    cdef Day c
    cdef bint any_valid = False
    if _done(p, d):
        return False
    for a in range(p.T):
        if d.rem[a] > 0:
            any_valid = True
            c = d[0]
            _place(p, &c, a, 1.0)
            if c.end - c.booked <= 0.0:
                return False
    return any_valid


cdef int _features(const Params* p, const Day* d, int8_t* o) noexcept nogil:
    """The Boolean features (config.feature_names order); returns how many were written."""
    cdef int i, t, placed, total
    cdef double delay = d.end - d.booked
    cdef double left = (d.rem[SHORT] + d.rem[LONG]) * p.slot
    if p.optional:                     # progress counts tasks (breaks may stay unused)
        total = p.n[SHORT] + p.n[LONG]
        placed = total - d.rem[SHORT] - d.rem[LONG]
    else:
        total = p.N
        placed = d.k
        left = left + d.rem[BREAK] * p.break_booked
    o[0] = 4 * placed > total
    o[1] = 2 * placed > total
    o[2] = 4 * placed > 3 * total
    o[3] = delay > 0.0
    o[4] = _significantly_delayed(p, d)
    o[5] = d.end < left
    i = 6
    for t in range(p.T):
        o[i + t] = d.prev == t
    i += p.T
    for t in range(p.T):
        o[i + t] = d.prev2 == t
    i += p.T
    if d.prev >= 0 and d.prev2 >= 0:
        o[i] = p.dur[d.prev] > p.dur[d.prev2]
        o[i + 1] = p.dur[d.prev] < p.dur[d.prev2]
        o[i + 2] = p.dur[d.prev] == p.dur[d.prev2]
    else:
        o[i] = 0
        o[i + 1] = 0
        o[i + 2] = 0
    i += 3
    if p.T == 3:
        o[i] = d.rem[BREAK] > 0
        i += 1
    o[i] = d.rem[SHORT] > 0
    o[i + 1] = d.rem[LONG] > 0
    o[i + 2] = d.rem[SHORT] > d.rem[LONG]
    o[i + 3] = d.rem[LONG] > d.rem[SHORT]
    return i + 4


cdef int _numeric(const Params* p, const Day* d, float* o) noexcept nogil:
    """The numeric observation (config.numeric_names order); returns how many were written."""
    cdef int t, T = p.T
    for t in range(T):
        o[t] = <float>d.rem[t]
    o[T] = <float>d.k
    o[T + 1] = <float>(d.end - d.booked)
    o[T + 2] = <float>d.late_max
    o[T + 3] = <float>d.idle
    for t in range(T):
        o[T + 4 + t] = 1.0 if d.prev == t else 0.0
    return 2 * T + 4


# ---------------------------------------------------------------------- labelling
cdef struct LabelOut:
    const double* draws
    int K, mode
    Py_ssize_t rows, row
    int8_t* features
    Py_ssize_t nf
    float* numeric
    Py_ssize_t nn
    double* values
    int8_t* prefix
    int8_t* path


cdef void _label(const Params* p, Day d, LabelOut* ctx) noexcept nogil:
    cdef int a, i
    cdef Day c
    cdef Py_ssize_t r
    if _done(p, &d) or ctx.row >= ctx.rows:
        return
    r = ctx.row
    ctx.row += 1
    _features(p, &d, ctx.features + r * ctx.nf)
    _numeric(p, &d, ctx.numeric + r * ctx.nn)
    _values(p, &d, ctx.draws, ctx.K, ctx.mode, ctx.values + r * p.T)
    for i in range(p.N):
        ctx.prefix[r * p.N + i] = ctx.path[i] if i < d.k else -1
    for a in range(p.T):
        if d.rem[a] > 0:
            c = d
            _place(p, &c, a, 1.0)
            ctx.path[d.k] = <int8_t>a
            _label(p, c, ctx)


# ---------------------------------------------------------------------- problem
cdef class Problem:
    """One configuration's constants (config.kernel_config) and multinomial table."""

    cdef Params p
    cdef Memo memo
    cdef double[::1] multi_view
    cdef object multi_array

    def __cinit__(self):
        self.memo.slots = NULL
        self.memo.tails = NULL
        self.memo.cut = -1

    def __dealloc__(self):
        free(self.memo.slots)
        free(self.memo.tails)

    def __init__(self, dict cfg):
        cdef int t
        import numpy as np
        self.p.slot = cfg["slot"]
        self.p.buffer = cfg["buffer"]
        self.p.elasticity = cfg["elasticity"]
        self.p.alpha = cfg["alpha"]
        self.p.noise = cfg["noise"]
        self.p.break_booked = cfg["break_booked"]
        self.p.n_div = cfg["n_div"]
        self.p.optional = cfg["optional_breaks"]
        self.p.tol = TIE_TOLERANCE
        counts = cfg["counts"]
        durations = cfg["durations"]
        for t in range(MAX_TYPES):
            self.p.n[t] = counts[t]
            self.p.dur[t] = durations[t]
        self.p.N = counts[0] + counts[1] + counts[2]
        self.p.T = cfg["num_types"]
        self.p.M = cfg["factor_columns"]
        if self.p.N > MAX_ITEMS or self.p.N < 1:
            raise ValueError(f"a day holds 1..{MAX_ITEMS} items, got {self.p.N}")
        self.p.s1 = counts[1] + 1
        self.p.s2 = counts[2] + 1
        self.multi_array = np.ascontiguousarray(cfg["multinomials"], dtype=np.float64).ravel()
        if self.multi_array.shape[0] != (counts[0] + 1) * self.p.s1 * self.p.s2:
            raise ValueError("multinomial table has the wrong size")
        self.multi_view = self.multi_array
        self.p.multi = &self.multi_view[0]
        # A completion's cost from a list sums the same non-negative idle times (each at most the
        # horizon) in another order: |difference| <= (N + 4) eps horizon; delta doubles that.
        self.memo.delta = 2.0 * (self.p.N + 4) * DBL_EPSILON * (float(cfg["horizon"]) + 1.0)
        self.rank_cut = cfg["rank_cut"]           # config.RANK_CUT on big days, else -1

    @property
    def rank_cut(self):
        """Exact ranking shares the tails of states with at most this many tasks left (-1: the
        plain walk of every ordering; also -1 where delta would not be well below the tie tolerance)."""
        return self.memo.cut

    @rank_cut.setter
    def rank_cut(self, int cut):
        if cut >= 0 and self.memo.delta <= self.p.tol / 8.0:
            self.memo.cut = cut                 # scratch space allocated by the first ranking
        else:
            self.memo.cut = -1

    @property
    def num_types(self):
        return self.p.T

    @property
    def num_items(self):
        return self.p.N

    cdef bint _load_day(self, tuple state, Day* d) except False:
        """A Day from (step, end, max_lateness, total_idle, prev, prev2, remaining...)."""
        cdef int t, left = 0
        d.k = state[0]
        d.end = state[1]
        d.late_max = state[2]
        d.idle = state[3]
        d.prev = state[4]
        d.prev2 = state[5]
        for t in range(MAX_TYPES):
            d.rem[t] = state[6][t] if t < len(state[6]) else 0
            if d.rem[t] < 0 or d.rem[t] > self.p.n[t]:
                raise ValueError(f"remaining[{t}] = {d.rem[t]} is outside [0, {self.p.n[t]}]")
            left += d.rem[t]
        if d.k != self.p.N - left or d.prev < -1 or d.prev >= self.p.T or d.prev2 < -1 or d.prev2 >= self.p.T:
            raise ValueError(f"inconsistent day state {state}")
        d.booked = _booked_of(&self.p, d.rem)
        return True

    def values(self, tuple state, const double[:, :, ::1] draws, int mode, double[::1] out):
        """Oracle values of every action from the compact state (see oracle.py); out[a] = inf
        where type a has no item left. draws: (K, 2, M) duration multipliers."""
        cdef Day d
        cdef int K = draws.shape[0]
        self._check_draws(draws)
        self._load_day(state, &d)
        with nogil:
            _values(&self.p, &d, &draws[0, 0, 0], K, mode, &out[0])

    def rank(self, double cost, const double[:, ::1] fac, int samples, uint64_t[::1] rng):
        """(worse, ties, total, best) of `cost` among the orderings of the day with multipliers
        fac (2, M): all of them if samples == 0, else `samples` random ones drawn from rng (a
        4-word xoshiro256** state, advanced in place; checked even when unused). `best` is the
        cheapest ordering not worse than `cost` (within the tie tolerance): inf when `cost` lies
        below every ordering, which a schedule's own cost never does (it is one of them)."""
        cdef Rank r
        cdef Day d
        if fac.shape[0] != 2 or fac.shape[1] != self.p.M:
            raise ValueError(f"factors must have shape (2, {self.p.M})")
        if rng.shape[0] != 4:
            raise ValueError(f"rng must be a 4-word xoshiro256** state, got {rng.shape[0]} words")
        if samples < 0:
            raise ValueError(f"samples must be >= 0 (0: every ordering), got {samples}")
        r.worse = 0.0
        r.ties = 0.0
        r.total = 0.0
        r.best = INFINITY
        if samples == 0:
            with nogil:
                _rank_day(&self.p, &self.memo, &fac[0, 0], cost, &r)
        else:
            with nogil:
                _rank_sampled(&self.p, &fac[0, 0], cost, samples, &rng[0], &r)
        return r.worse, r.ties, r.total, r.best

    def cost_of(self, const int64_t[::1] seq, const double[:, ::1] fac):
        """C_alpha of the ordering seq (one type per item) with multipliers fac (2, M)."""
        cdef Day d
        cdef int i, a
        if seq.shape[0] != self.p.N or fac.shape[0] != 2 or fac.shape[1] != self.p.M:
            raise ValueError("seq must have one entry per item and fac the shape (2, M)")
        _start_day(&self.p, &d)
        for i in range(self.p.N):
            a = <int>seq[i]
            if a == -1 and _done(&self.p, &d):      # unused breaks: the rest of seq is -1
                continue
            if a < 0 or a >= self.p.T or d.rem[a] <= 0 or _done(&self.p, &d):
                raise ValueError(f"seq[{i}] = {a} is not a type with items left")
            _place(&self.p, &d, a, _factor(&self.p, &d, &fac[0, 0], a))
        if not _done(&self.p, &d):
            raise ValueError("seq must place every task")
        return _cost(&self.p, &d)

    def features(self, tuple state, int8_t[::1] out):
        cdef Day d
        self._load_day(state, &d)
        return _features(&self.p, &d, &out[0])

    def label(self, const double[:, :, ::1] draws, int mode, int8_t[:, ::1] features,
              float[:, ::1] numeric, double[:, ::1] values, int8_t[:, ::1] prefix):
        """Every non-terminal prefix of the day, realised at nominal durations, in depth-first
        (type) order: its features, numeric state, oracle values and the prefix itself.
        Returns the number of rows written (the caller sizes the outputs to the prefix count)."""
        cdef LabelOut ctx
        cdef Day d
        cdef int8_t path[MAX_ITEMS]
        self._check_draws(draws)
        ctx.draws = &draws[0, 0, 0]
        ctx.K = draws.shape[0]
        ctx.mode = mode
        ctx.rows = features.shape[0]
        ctx.row = 0
        ctx.features = &features[0, 0]
        ctx.nf = features.shape[1]
        ctx.numeric = &numeric[0, 0]
        ctx.nn = numeric.shape[1]
        ctx.values = &values[0, 0]
        ctx.prefix = &prefix[0, 0]
        ctx.path = path
        if values.shape[0] != ctx.rows or numeric.shape[0] != ctx.rows or prefix.shape[0] != ctx.rows:
            raise ValueError("label outputs must have the same number of rows")
        if values.shape[1] != self.p.T or prefix.shape[1] != self.p.N or ctx.nn != 2 * self.p.T + 4:
            raise ValueError("label outputs have the wrong widths")
        _start_day(&self.p, &d)
        with nogil:
            _label(&self.p, d, &ctx)
        return ctx.row

    cdef void _check_draws(self, const double[:, :, ::1] draws) except *:
        if draws.shape[0] < 1 or draws.shape[1] != 2 or draws.shape[2] != self.p.M:
            raise ValueError(f"draws must have shape (K >= 1, 2, {self.p.M})")


# ---------------------------------------------------------------------- the batched env
cdef class AppointmentsKernel:
    cdef readonly Problem problem
    cdef Params p
    cdef Memo* memo
    cdef int B, boolean, perc_mode, samples, n_obs
    # per-env state
    cdef int64_t[::1] k, prev, prev2, invalid
    cdef int64_t[:, ::1] rem, seq
    cdef double[::1] end, late_max, idle
    cdef double[:, ::1] start, finish
    cdef double[:, :, ::1] fac
    cdef uint64_t[:, ::1] rng, perc_rng
    # outputs
    cdef int8_t[:, ::1] obs_bool
    cdef float[:, ::1] obs_num
    cdef double[:, ::1] comps, metrics
    cdef uint8_t[::1] terminated, truncated
    cdef int8_t[:, ::1] mask
    cdef int64_t[::1] actions

    def __init__(self, dict cfg, dict state):
        import numpy as np
        self.problem = Problem(cfg)
        self.p = self.problem.p
        self.memo = &self.problem.memo
        self.B = cfg["num_envs"]
        self.boolean = cfg["boolean"]
        self.perc_mode = cfg["percentile_mode"]
        self.samples = cfg["percentile_samples"]
        check_state(state, self.B)
        n_metrics = N_BASE_METRICS + (N_PERCENTILE_METRICS if self.perc_mode != PERC_OFF else 0)
        for key, row in (("rem", (MAX_TYPES,)), ("seq", (self.p.N,)), ("start", (self.p.N,)),
                         ("finish", (self.p.N,)), ("fac", (2, self.p.M)), ("perc_rng", (4,)),
                         ("reward_components", (3,)), ("metrics", (n_metrics,)),
                         ("action_mask", (self.p.T,))):
            if state[key].shape[1:] != row:          # the nogil loops index these rows unchecked
                raise ValueError(f"state array {key!r} must have rows of shape {row}, "
                                 f"got shape {state[key].shape}")
        self.k = state["k"]
        self.prev = state["prev"]
        self.prev2 = state["prev2"]
        self.invalid = state["invalid"]
        self.rem = state["rem"]
        self.seq = state["seq"]
        self.end = state["end"]
        self.late_max = state["late_max"]
        self.idle = state["idle"]
        self.start = state["start"]
        self.finish = state["finish"]
        self.fac = state["fac"]
        self.rng = state["rng"]
        self.perc_rng = state["perc_rng"]
        if self.boolean:
            self.obs_bool = state["obs"]
            self.n_obs = self.obs_bool.shape[1]
        else:
            self.obs_num = state["obs"]
            self.n_obs = self.obs_num.shape[1]
        self.comps, self.metrics, self.terminated, self.truncated = episode_outputs(state)
        self.mask = state["action_mask"]
        self.actions = state["actions"]

    # ------------------------------------------------------------------ entry points
    def reset(self, const uint8_t[::1] which):
        cdef int b
        check_batch(which.shape[0], self.B, "which")
        with nogil:
            for b in range(self.B):
                if which[b]:
                    self._reset_one(b)

    def step(self, const uint8_t[::1] active):
        """Step the active sub-envs; then rank each finished day (one day at a time, checking for
        Ctrl-C between days, so that a long percentile pass stays interruptible)."""
        cdef int b
        check_batch(active.shape[0], self.B, "active")
        with nogil:
            for b in range(self.B):
                if active[b]:
                    self._step_one(b)
        if self.perc_mode == PERC_OFF:
            return
        for b in range(self.B):
            if active[b] and self.terminated[b]:
                with nogil:
                    self._write_percentile(b)
                PyErr_CheckSignals()

    def oracle(self, const uint8_t[::1] which, const double[:, :, ::1] draws, int mode, double[:, ::1] out):
        """Oracle values (B, T) of the sub-envs in `which` from their current states."""
        cdef int b
        cdef Day d
        cdef int K = draws.shape[0]
        check_batch(which.shape[0], self.B, "which")
        self.problem._check_draws(draws)
        if out.shape[0] != self.B or out.shape[1] != self.p.T:
            raise ValueError(f"out must have shape ({self.B}, {self.p.T})")
        with nogil:
            for b in range(self.B):
                if which[b]:
                    self._load(b, &d)
                    _values(&self.p, &d, &draws[0, 0, 0], K, mode, &out[b, 0])

    def write_features(self, int8_t[:, ::1] out):
        """The Boolean features of every sub-env now, whatever the observation mode."""
        cdef int b
        cdef Day d
        check_batch(out.shape[0], self.B, "out")
        with nogil:
            for b in range(self.B):
                self._load(b, &d)
                _features(&self.p, &d, &out[b, 0])

    # ------------------------------------------------------------------ episode
    cdef void _load(self, int b, Day* d) noexcept nogil:
        cdef int t
        d.k = <int>self.k[b]
        d.end = self.end[b]
        d.late_max = self.late_max[b]
        d.idle = self.idle[b]
        d.prev = <int>self.prev[b]
        d.prev2 = <int>self.prev2[b]
        for t in range(MAX_TYPES):
            d.rem[t] = <int>self.rem[b, t]
        d.booked = _booked_of(&self.p, d.rem)

    cdef void _store(self, int b, const Day* d) noexcept nogil:
        cdef int t
        self.k[b] = d.k
        self.end[b] = d.end
        self.late_max[b] = d.late_max
        self.idle[b] = d.idle
        self.prev[b] = d.prev
        self.prev2[b] = d.prev2
        for t in range(MAX_TYPES):
            self.rem[b, t] = d.rem[t]

    cdef void _reset_one(self, int b) noexcept nogil:
        cdef uint64_t* s = &self.rng[b, 0]
        cdef int t, j
        cdef Day d
        for t in range(2):
            for j in range(self.p.M):
                if j < self.p.n[t]:
                    self.fac[b, t, j] = 1.0 + self.p.noise * (2.0 * rng_uniform(s) - 1.0)
                else:
                    self.fac[b, t, j] = 1.0
        rng_seed_child(s, &self.perc_rng[b, 0])
        _start_day(&self.p, &d)
        self._store(b, &d)
        self.invalid[b] = 0
        for j in range(self.p.N):
            self.seq[b, j] = -1
            self.start[b, j] = 0.0
            self.finish[b, j] = 0.0
        zero_doubles(&self.comps[b, 0], self.comps.shape[1])
        self.terminated[b] = 0
        self.truncated[b] = 0
        self._write_outputs(b, &d)

    cdef void _step_one(self, int b) noexcept nogil:
        cdef int64_t a = self.actions[b]
        cdef Day d
        cdef Placed r
        zero_doubles(&self.comps[b, 0], self.comps.shape[1])
        self._load(b, &d)
        if _done(&self.p, &d):               # nothing left to place (only via an edited snapshot)
            self.terminated[b] = 1
            self._write_outputs(b, &d)
            self._write_metrics(b, &d)
            return
        if a < 0 or a >= self.p.T or d.rem[a] <= 0:
            self.invalid[b] += 1
            self.comps[b, 2] = -1.0
            a = _first_valid(&self.p, &d)
        r = _place(&self.p, &d, <int>a, _factor(&self.p, &d, &self.fac[b, 0, 0], <int>a))
        self.seq[b, d.k - 1] = a
        self.start[b, d.k - 1] = r.start
        self.finish[b, d.k - 1] = r.finish
        self._store(b, &d)
        self.comps[b, 0] = 0.0 - self.p.alpha * (r.idle / self.p.n_div)
        self.comps[b, 1] = 0.0 - (1.0 - self.p.alpha) * r.gain
        self.terminated[b] = _done(&self.p, &d)
        self.truncated[b] = 0
        self._write_outputs(b, &d)
        if self.terminated[b]:
            self._write_metrics(b, &d)

    cdef void _write_outputs(self, int b, const Day* d) noexcept nogil:
        cdef int a
        for a in range(self.p.T):
            self.mask[b, a] = d.rem[a] > 0
        if _done(&self.p, d):        # day over: action 0 alone, so a masked sampler has a choice
            for a in range(self.p.T):
                self.mask[b, a] = 0
            self.mask[b, 0] = 1
        if self.boolean:
            _features(&self.p, d, &self.obs_bool[b, 0])
        else:
            _numeric(&self.p, d, &self.obs_num[b, 0])

    cdef void _write_metrics(self, int b, const Day* d) noexcept nogil:
        cdef double cost = _cost(&self.p, d)
        self.metrics[b, M_COST] = cost
        self.metrics[b, M_MEAN_IDLE] = d.idle / self.p.n_div
        self.metrics[b, M_MAX_LATENESS] = d.late_max
        self.metrics[b, M_TOTAL_IDLE] = d.idle
        self.metrics[b, M_MAKESPAN] = d.end
        self.metrics[b, M_INVALID] = self.invalid[b]

    cdef void _write_percentile(self, int b) noexcept nogil:
        """Rank the finished day's cost among the orderings of that day (exact or sampled)."""
        cdef double cost = self.metrics[b, M_COST]
        cdef Rank r
        r.worse = 0.0
        r.ties = 0.0
        r.total = 0.0
        r.best = INFINITY
        if self.perc_mode == PERC_EXACT:
            _rank_day(&self.p, self.memo, &self.fac[b, 0, 0], cost, &r)
        else:
            _rank_sampled(&self.p, &self.fac[b, 0, 0], cost, self.samples, &self.perc_rng[b, 0], &r)
        self.metrics[b, M_PERCENTILE] = 100.0 * (r.worse + 0.5 * r.ties) / r.total
        self.metrics[b, M_BEST] = r.best
        self.metrics[b, M_ORDERINGS] = r.total
