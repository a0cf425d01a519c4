"""numba kernels of the network models: max-min fair rates and the flow-completion event loop.

docs/architecture.md, conventions: pure functions over arrays that fill preallocated outputs and import nothing from
the package; the numpy references are in ``tests/network/reference.py``. Inputs: a CSR of
sub-flow paths (``path_ptr`` int64 (n_flows + 1,), ``path_links`` int64 (total_hops,) of link
ids) and per-link payload capacities ``cap`` float64 (n_links,), bytes/s.

Max-min by progressive filling (Bertsekas & Gallager, *Data Networks*, 2nd ed., sec. 6.5.2):
all unfrozen flows rise at one common rate (the water level); a link saturates when its spare
capacity over its unfrozen flows equals the level; its flows freeze there. That level
``(cap - frozen_sum) / unfrozen_count`` never falls as the water rises (freezing a flow at
``t <= share`` leaves ``(n*share - t)/(n-1) >= share``), so ``cap / count`` stays a lower
bound: links are visited in the order of these keys (radix-sorted once), each link's level is
recomputed from incremental sums and counts when it comes up, and one whose level rose is
requeued in a heap. Each path occurrence is decremented once: O(H + L + R log R) for H path
occurrences, L links and R requeues, with no per-round rescan of links or flows.

After completions (``flow_completion``) only a neighbourhood S of the finished flows is
re-solved, and the result is proved exact: an allocation is max-min fair iff it is feasible
and every flow has a bottleneck, a saturated link where no flow is faster (ibid.). With r
the smallest finished rate, flows below r keep their rates (the filling below level r never
involved the finished flows' links) and their bottlenecks carry no flow >= r, so only flows
>= r join S or need checking. S starts as those on the finished flows' links and is solved on
the capacity the others leave; then S and every flow >= r bottlenecked on a link whose load
changed are checked (elsewhere nothing changed since the last max-min allocation). Max-min
maximises the smallest rate and S's old rates stay feasible, so S never drops below r: a
failing member of S has a faster outsider on its bottleneck, which joins S; a failing
outsider joins itself. S only grows, so this ends, at worst with a whole component
re-solved. Completion times sit in an indexed heap: an event costs O(|S| and its links).
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["maxmin_rates", "flow_completion"]

_RADIX_BITS = 11
_RADIX = 1 << _RADIX_BITS
_TOL = 1e-10  # relative: "saturated" and "no larger rate" in the max-min certificate


@njit(cache=True)
def _ih_sift(heap, pos, key, i, size):
    """Restore the indexed min-heap (ids by ``key[id]``, ``pos[id]`` = slot) at slot i: up, then down."""
    f = heap[i]
    k = key[f]
    while i > 0:  # up
        p = (i - 1) >> 1
        g = heap[p]
        if key[g] <= k:
            break
        heap[i] = g
        pos[g] = i
        i = p
    while True:  # down
        c = 2 * i + 1
        if c >= size:
            break
        if c + 1 < size and key[heap[c + 1]] < key[heap[c]]:
            c += 1
        g = heap[c]
        if key[g] >= k:
            break
        heap[i] = g
        pos[g] = i
        i = c
    heap[i] = f
    pos[f] = i


@njit(cache=True)
def _radix_sort(keys, ids, n, keys2, ids2, hist):
    """Sort ``keys[:n]`` (float64, >= 0) ascending, carrying ``ids``; result in keys/ids.

    LSD radix sort on the IEEE-754 bits (non-negative doubles order like their bit patterns),
    11 bits a pass, skipping passes where all keys share the digit: O(n), and free of the
    branch mispredictions that make a binary heap slow on random keys.
    """
    if n < 1024:  # small: the histogram passes would dominate
        order = np.argsort(keys[:n])
        keys[:n], ids[:n] = keys[:n][order], ids[:n][order]
        return
    src_k, src_i, dst_k, dst_i = keys, ids, keys2, ids2
    flipped = False
    mask = np.uint64(_RADIX - 1)
    for shift in range(0, 64, _RADIX_BITS):
        sh = np.uint64(shift)
        bits = src_k[:n].view(np.uint64)
        hist[:] = 0
        for i in range(n):
            hist[(bits[i] >> sh) & mask] += 1
        if hist[(bits[0] >> sh) & mask] == n:
            continue
        hist[:] = np.cumsum(hist) - hist  # bucket starts
        for i in range(n):
            d = (bits[i] >> sh) & mask
            j = hist[d]
            hist[d], dst_k[j], dst_i[j] = j + 1, src_k[i], src_i[i]
        src_k, dst_k, src_i, dst_i, flipped = dst_k, src_k, dst_i, src_i, not flipped
    if flipped:
        keys[:n], ids[:n] = keys2[:n], ids2[:n]


@njit(cache=True)
def _workspace(n_links, n_flows, occ):
    """Scratch arrays of ``_maxmin_active``, allocated once per transfer."""
    return (
        np.zeros(n_links, dtype=np.int64),  # count: unfrozen occurrences per link (0 between calls)
        np.empty(n_links),  # frozen_sum: rate already frozen on each link
        np.empty(n_links, dtype=np.int64),  # link_start
        np.empty(n_links, dtype=np.int64),  # link_end
        np.empty(occ, dtype=np.int64),  # link_flows: flows crossing each shared link
        np.empty(n_links, dtype=np.int64),  # touched: links in first-touch order
        np.zeros(n_flows, dtype=np.bool_),  # frozen (False between calls)
        np.empty(n_flows, dtype=np.int64),  # private: a flow's tightest link used by it alone
        np.empty(n_links + n_flows),  # initial entry keys (sorted)
        np.empty(n_links + n_flows, dtype=np.int64),  # entries: link id, or n_links + flow id
        np.empty(n_links + n_flows),  # radix sort buffers
        np.empty(n_links + n_flows, dtype=np.int64),
        np.empty(_RADIX, dtype=np.int64),  # radix histogram
        np.empty(n_links),  # requeued links: their level (keys of an indexed heap)
        np.empty(n_links, dtype=np.int64),  # requeued links: the heap
        np.empty(n_links, dtype=np.int64),  # requeued links: slot in the heap
    )


@njit(cache=True)
def _freeze(path_ptr, path_links, f, level, link, rates, bneck, frozen, frozen_sum, count):
    """Fix flow f's rate at the water level (``link`` saturated) and uncount it on its links."""
    frozen[f], rates[f], bneck[f] = True, level, link
    for k in range(path_ptr[f], path_ptr[f + 1]):
        m = path_links[k]
        frozen_sum[m] += level
        count[m] -= 1


@njit(cache=True)
def _maxmin_active(path_ptr, path_links, cap, act, n_act, rates, bneck, ws):
    """Max-min rates of the flows ``act[:n_act]`` on capacities ``cap``, into ``rates[act[i]]``,
    and the link each froze on into ``bneck`` (-1 for an empty path, which gets rate +inf).

    ``ws`` is a ``_workspace`` tuple. Only links crossed by these flows are read or written,
    so the cost does not depend on the fabric size. Links crossed by one flow only (most host
    and many spine links under random traffic) get no entry of their own: such a link
    saturates exactly at its capacity, so a flow's private links collapse into one entry.
    """
    (count, frozen_sum, link_start, link_end, link_flows, touched, frozen, private,
     ekey, eid, ekey2, eid2, hist, lkey, lheap, lpos) = ws
    n_links = cap.shape[0]
    n_t = 0
    for a in range(n_act):
        f = act[a]
        for k in range(path_ptr[f], path_ptr[f + 1]):
            lk = path_links[k]
            if count[lk] == 0:
                touched[n_t] = lk
                n_t += 1
            count[lk] += 1
    m = pos = 0  # initial entries; transposed CSR fill
    for i in range(n_t):
        lk = touched[i]
        frozen_sum[lk] = 0.0
        if count[lk] >= 2:
            link_start[lk] = link_end[lk] = pos
            pos += count[lk]
            ekey[m], eid[m], m = cap[lk] / count[lk], lk, m + 1
    for a in range(n_act):
        f = act[a]
        if path_ptr[f + 1] == path_ptr[f]:
            rates[f], bneck[f], frozen[f] = np.inf, -1, True
            continue
        best = np.inf
        for k in range(path_ptr[f], path_ptr[f + 1]):
            lk = path_links[k]
            if count[lk] >= 2:
                link_flows[link_end[lk]] = f
                link_end[lk] += 1
            elif cap[lk] < best:
                best, private[f] = cap[lk], lk
        if best < np.inf:
            ekey[m], eid[m], m = best, n_links + f, m + 1
    # entries in key order: the sorted initial list merged with the heap of requeued links
    _radix_sort(ekey, eid, m, ekey2, eid2, hist)
    p = hsize = 0
    level = 0.0
    while True:
        if hsize > 0 and (p == m or lkey[lheap[0]] < ekey[p]):
            x, hsize = lheap[0], hsize - 1
            key = lkey[x]
            if hsize > 0:
                lheap[0] = lheap[hsize]
                _ih_sift(lheap, lpos, lkey, 0, hsize)
        elif p < m:
            key, x, p = ekey[p], eid[p], p + 1
        else:
            break
        if x >= n_links:  # a flow's private bound: exact, never stale
            f = x - n_links
            if not frozen[f]:
                level = max(level, key)
                _freeze(path_ptr, path_links, f, level, private[f], rates, bneck, frozen, frozen_sum, count)
            continue
        if count[x] == 0:
            continue  # all its flows froze on other links
        cur = (cap[x] - frozen_sum[x]) / count[x]
        if cur > key:  # the key was a stale lower bound: requeue at the true level
            lkey[x], lheap[hsize], hsize = cur, x, hsize + 1
            _ih_sift(lheap, lpos, lkey, hsize - 1, hsize)
            continue
        level = max(level, cur)  # (cur < level only by rounding: the level never falls)
        for j in range(link_start[x], link_end[x]):
            f = link_flows[j]
            if not frozen[f]:
                _freeze(path_ptr, path_links, f, level, x, rates, bneck, frozen, frozen_sum, count)
    for a in range(n_act):
        frozen[act[a]] = False


@njit(cache=True)
def maxmin_rates(path_ptr, path_links, cap, act, rates, bneck):
    """Max-min fair rates of the flows ``act`` (progressive filling), bytes/s.

    Parameters
    ----------
    path_ptr : int64 (n_flows + 1,)
    path_links : int64 (total_hops,)
        Directed link ids of each flow's path (CSR). A link crossed twice counts twice.
    cap : float64 (n_links,)
        Link capacities, bytes/s (> 0).
    act : int64 (n_act,)
        Distinct ids of the flows taking part; the entries of the others are left as they are.
    rates : float64 (n_flows,)
        Output. +inf for a flow with an empty path.
    bneck : int64 (n_flows,)
        Output: the link each flow froze on (saturated, and no flow on it is faster); -1 for
        an empty path.
    """
    _maxmin_active(path_ptr, path_links, cap, act, act.shape[0], rates, bneck,
                   _workspace(cap.shape[0], path_ptr.shape[0] - 1, path_links.shape[0]))


@njit(cache=True)
def _add_on_path(path_ptr, path_links, resid, f, r):
    """Add r to the residual capacity of flow f's links (r = +-rate; skipped if not finite)."""
    if np.isfinite(r):
        for k in range(path_ptr[f], path_ptr[f + 1]):
            resid[path_links[k]] += r


@njit(cache=True)
def _mark_links(path_ptr, path_links, f, chg, chg_at, n_chg, stamp):
    """Append flow f's links not yet in ``chg`` (stamped ``stamp``); return the new length."""
    for k in range(path_ptr[f], path_ptr[f + 1]):
        lk = path_links[k]
        if chg_at[lk] != stamp:
            chg_at[lk], chg[n_chg], n_chg = stamp, lk, n_chg + 1
    return n_chg


@njit(cache=True)
def _join(g, flows_in, n_s, in_s, stamp):
    """Add flow g to S = ``flows_in[:n_s]`` unless it is in (``in_s[g] == stamp``); return |S|."""
    if in_s[g] != stamp:
        in_s[g], flows_in[n_s], n_s = stamp, g, n_s + 1
    return n_s


@njit(cache=True)
def _link_lists(path_ptr, path_links, n_links):
    """Flows on each link: ``(start, end, flows)``, link l's are ``flows[start[l]:end[l]]``."""
    start = np.zeros(n_links, dtype=np.int64)
    for k in range(path_links.shape[0]):
        start[path_links[k]] += 1
    start[:] = np.cumsum(start) - start
    end = start.copy()
    flows = np.empty(path_links.shape[0], dtype=np.int64)
    for f in range(path_ptr.shape[0] - 1):
        for k in range(path_ptr[f], path_ptr[f + 1]):
            flows[end[path_links[k]]] = f
            end[path_links[k]] += 1
    return start, end, flows


@njit(cache=True)
def _bl_move(f, old, new, bl):
    """Move flow f from the list of flows bottlenecked on link ``old`` to that of ``new`` (-1:
    none), recording ``new``. ``bl = (bneck, head, next, prev)``: a doubly linked list per link
    lets a change on a link find the flows whose certificate it may break."""
    bneck, head, nxt, prv = bl
    if old >= 0:
        p, x = prv[f], nxt[f]
        if p >= 0:
            nxt[p] = x
        else:
            head[old] = x
        if x >= 0:
            prv[x] = p
    bneck[f] = new
    if new >= 0:
        prv[f] = -1
        nxt[f] = head[new]
        if head[new] >= 0:
            prv[head[new]] = f
        head[new] = f


@njit(cache=True)
def _certify(h, path_ptr, path_links, lists, cap, resid, rate, bl, link_max, link_at, stamp):
    """Does flow h still have a bottleneck: a saturated link with no faster flow on it? Its
    recorded one is tried first; another that qualifies is recorded. Link maxima are cached
    per certificate round (``stamp``)."""
    start, end, flows = lists
    bneck = bl[0]
    for k in range(path_ptr[h] - 1, path_ptr[h + 1]):
        lk = bneck[h] if k < path_ptr[h] else path_links[k]
        if resid[lk] > _TOL * cap[lk]:
            continue
        if link_at[lk] != stamp:
            mx = 0.0
            for j in range(start[lk], end[lk]):
                mx = max(mx, rate[flows[j]])
            link_max[lk], link_at[lk] = mx, stamp
        if rate[h] >= link_max[lk] * (1.0 - _TOL):
            if lk != bneck[h]:
                _bl_move(h, bneck[h], lk, bl)
            return True
    return False


@njit(cache=True)
def _all_at_once(rate, size, eps, finish, first_rate, delivered):
    """True, with the outputs the event loop's one event would give, if every flow's projected
    completion at its first rate is within ``eps`` of the earliest (a phase of equal flows)."""
    n, t_ev, t_max = rate.shape[0], np.inf, 0.0
    for f in range(n):  # the loop's keys: rate 0 never finishes
        k = size[f] / rate[f] if rate[f] > 0.0 else np.inf
        t_ev, t_max = min(t_ev, k), max(t_max, k)
    if n == 0 or t_ev == np.inf or t_max > t_ev * (1.0 + eps):
        return False
    for f in range(n):
        finish[f], first_rate[f], delivered[f] = t_ev, rate[f], size[f] if rate[f] == np.inf else rate[f] * t_ev
    return True


@njit(cache=True)
def flow_completion(path_ptr, path_links, cap, size, eps, finish, first_rate, delivered):
    """Transmission completion time of every flow under max-min sharing re-solved at each finish.

    All flows start at t = 0. Each event: advance to the earliest projected completion; every
    flow whose projected completion lies within ``eps`` (relative) of it finishes in the same
    event; the rates that can change (module docstring) are re-solved and re-projected.

    Parameters
    ----------
    path_ptr, path_links, cap
        As in :func:`maxmin_rates`.
    size : float64 (n_flows,)
        Bytes of each flow (>= 0; 0 finishes at the first event).
    eps : float
        Relative tolerance that batches near-simultaneous completions into one event.
    finish : float64 (n_flows,)
        Output: transmission completion time, s (+inf if a flow can never finish).
    first_rate : float64 (n_flows,)
        Output: each flow's max-min rate at t = 0, bytes/s.
    delivered : float64 (n_flows,)
        Output: bytes each flow delivered, the integral of its rate over time (equals ``size``
        to within ``eps`` relative; a conservation check).

    Returns
    -------
    int
        Number of completion events.
    """
    n, n_links = path_ptr.shape[0] - 1, cap.shape[0]
    ws = _workspace(n_links, n, path_links.shape[0])
    rate, key = np.zeros(n), np.empty(n)  # key: projected completion time
    bl = (np.full(n, -1, dtype=np.int64), np.full(n_links, -1, dtype=np.int64),
          np.empty(n, dtype=np.int64), np.empty(n, dtype=np.int64))
    bneck = bl[0]  # each live flow's certified bottleneck link
    _maxmin_active(path_ptr, path_links, cap, np.arange(n), n, rate, bneck, ws)
    if _all_at_once(rate, size, eps, finish, first_rate, delivered):
        return 1
    lists = start, end, flows = _link_lists(path_ptr, path_links, n_links)  # live flows per link
    resid = cap.copy()  # capacity left by the flows that are not being re-solved
    for f in range(n):
        _bl_move(f, -1, bneck[f], bl)
        first_rate[f] = rate[f]
        delivered[f] = 0.0
        _add_on_path(path_ptr, path_links, resid, f, -rate[f])
        key[f] = size[f] / rate[f] if rate[f] > 0.0 else np.inf
    in_lists, dead = path_links.shape[0], 0
    rem, tref = size.copy(), np.zeros(n)  # bytes left at time tref
    done = np.zeros(n, dtype=np.bool_)
    heap = np.argsort(key)  # a sorted array is a heap
    pos = np.empty(n, dtype=np.int64)
    pos[heap] = np.arange(n)
    hsize = n
    flows_in, viol = np.empty(n, dtype=np.int64), np.empty(n, dtype=np.int64)  # S; violators
    in_s, checked = np.full(n, -1, dtype=np.int64), np.full(n, -1, dtype=np.int64)  # stamps
    old_rate = np.empty(n)  # rate of flows_in[i] before this round's solve
    chg = np.empty(n_links, dtype=np.int64)  # links whose load changed in this round
    chg_at, link_at = np.full(n_links, -1, dtype=np.int64), np.full(n_links, -1, dtype=np.int64)
    link_max = np.empty(n_links)  # largest rate on a link, at round link_at
    events = rounds = 0
    while hsize > 0:
        t_ev = key[heap[0]]
        if t_ev == np.inf:  # nothing can move (a zero-capacity link): never finishes
            finish[heap[:hsize]] = np.inf
            break
        events += 1
        rounds += 1
        r_min = np.inf
        n_chg = 0
        while hsize > 0 and key[heap[0]] <= t_ev * (1.0 + eps):
            f = heap[0]
            hsize -= 1
            if hsize > 0:
                heap[0] = heap[hsize]
                _ih_sift(heap, pos, key, 0, hsize)
            done[f], finish[f] = True, t_ev
            # the integral of rate over time, not the remainder: tests compare it with size
            delivered[f] += rem[f] if rate[f] == np.inf else rate[f] * (t_ev - tref[f])
            _add_on_path(path_ptr, path_links, resid, f, rate[f])
            r_min = min(r_min, rate[f])
            rate[f] = 0.0  # gone: no longer the largest rate on any link
            _bl_move(f, bneck[f], -1, bl)
            dead += path_ptr[f + 1] - path_ptr[f]
            n_chg = _mark_links(path_ptr, path_links, f, chg, chg_at, n_chg, rounds)
        if hsize == 0:
            break
        if 2 * dead > in_lists:  # drop finished flows from the per-link lists
            for lk in range(n_links):
                w = start[lk]
                for j in range(start[lk], end[lk]):
                    if not done[flows[j]]:
                        flows[w], w = flows[j], w + 1
                end[lk] = w
            in_lists, dead = in_lists - dead, 0
        theta = r_min * (1.0 - 1e-9)  # the margin sends rounding-level ties to the re-solve
        n_s = 0
        for i in range(n_chg):
            for j in range(start[chg[i]], end[chg[i]]):
                if not done[flows[j]] and rate[flows[j]] >= theta:
                    n_s = _join(flows[j], flows_in, n_s, in_s, events)
        n_old = 0  # members of S whose bytes are advanced
        while n_s > n_old:
            for i in range(n_old, n_s):
                g = flows_in[i]
                sent = rate[g] * (t_ev - tref[g])
                rem[g], delivered[g], tref[g] = rem[g] - sent, delivered[g] + sent, t_ev
            n_old = n_s
            for i in range(n_s):
                g = flows_in[i]
                old_rate[i] = rate[g]
                _bl_move(g, bneck[g], -1, bl)
                _add_on_path(path_ptr, path_links, resid, g, rate[g])
                for k in range(path_ptr[g], path_ptr[g + 1]):
                    resid[path_links[k]] = max(resid[path_links[k]], 0.0)  # rounding only
            _maxmin_active(path_ptr, path_links, resid, flows_in, n_s, rate, bneck, ws)
            if n_chg < 0:  # not the event's first round: a fresh list of changed links
                rounds += 1
                n_chg = 0
            for i in range(n_s):
                g = flows_in[i]
                _bl_move(g, -1, bneck[g], bl)
                _add_on_path(path_ptr, path_links, resid, g, -rate[g])
                if rate[g] != old_rate[i]:
                    n_chg = _mark_links(path_ptr, path_links, g, chg, chg_at, n_chg, rounds)
            # certificate: every flow of S, and every flow >= theta bottlenecked on a changed link
            n_v = 0
            for i in range(n_s + n_chg):
                h = flows_in[i] if i < n_s else bl[1][chg[i - n_s]]
                while h >= 0:
                    nxt = bl[2][h] if i >= n_s else -1
                    if checked[h] != rounds and (i < n_s or rate[h] >= theta):
                        checked[h] = rounds
                        if not _certify(h, path_ptr, path_links, lists, cap, resid, rate, bl, link_max,
                                        link_at, rounds):
                            viol[n_v], n_v = h, n_v + 1
                    h = nxt
            n_chg = -1
            for i in range(n_v):  # who joins S (each violator adds someone: module docstring)
                h = viol[i]
                if in_s[h] != events:  # an outsider that lost its bottleneck joins itself
                    n_s = _join(h, flows_in, n_s, in_s, events)
                    continue
                for k in range(path_ptr[h], path_ptr[h + 1]):  # the faster flows beside h
                    lk = path_links[k]
                    if resid[lk] <= _TOL * cap[lk]:
                        for j in range(start[lk], end[lk]):
                            if not done[flows[j]] and rate[flows[j]] > rate[h]:
                                n_s = _join(flows[j], flows_in, n_s, in_s, events)
        for i in range(n_s):
            f = flows_in[i]
            key[f] = t_ev + (rem[f] / rate[f] if rate[f] > 0.0 else np.inf)
            _ih_sift(heap, pos, key, pos[f], hsize)
    return events
