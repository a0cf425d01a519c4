"""numba kernels of the network models: max-min fair rates and the flow-completion event loop.

STYLE.md: kernels are pure functions over arrays and scalars, fill preallocated outputs and
import nothing from the package. The plain numpy reference of the max-min solver lives in
``tests/network/reference.py``; hypothesis property tests hold the two together.

Inputs are a CSR of sub-flow paths (``path_ptr`` int64 (n_flows + 1,), ``path_links`` int64
(total_hops,) of directed link ids) and per-link payload capacities ``cap`` float64
(n_links,), bytes/s.

Max-min by progressive filling (Bertsekas & Gallager, *Data Networks*, 2nd ed., sec. 6.5.2):
all unfrozen flows rise at one common rate (the water level); a link saturates when its spare
capacity divided by its unfrozen flows equals the level; its flows freeze there. A link's
saturation level ``(cap - frozen_sum) / unfrozen_count`` never decreases while the level rises
(freezing a flow at the level ``t <= share`` leaves ``(n*share - t)/(n-1) >= share``), so a
link's initial level ``cap / count`` is a lower bound for ever: links are visited in the order
of these keys (radix-sorted once), each link's true level is recomputed from incremental sums
and counts when it comes up, and a link whose level has risen is requeued in a small binary
heap with its true level. Each path occurrence is decremented once, so one solve costs
O(H + L + R log R) for H path occurrences, L links and R requeues, with no per-round rescan
of links or flows.

Re-solving after completions (``flow_completion``) re-solves only a neighbourhood S of the
finished flows and proves the result exact. An allocation is max-min fair iff it is feasible
and every flow has a bottleneck: a saturated link on which no flow has a larger rate
(Bertsekas & Gallager, sec. 6.5.2). S starts as the flows crossing the finished flows' links
whose rate is >= r, the smallest finished rate. Flows below r provably keep their rates (the
filling below level r never involved the finished flows' links), and their bottleneck links
carry no flow >= r, so only flows >= r ever join S or need checking. S is solved max-min on
the capacity the other flows leave, then the certificate is checked for every flow >= r on a
link whose load changed (elsewhere nothing changed, and the previous allocation was max-min);
a flow that fails it joins S with every flow >= r sharing a link with it, and S is re-solved.
S only grows, so this terminates, at worst with the whole component re-solved. Projected completion times sit
in an indexed heap, so an event costs O(|S| and its links), not O(all flows).
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["maxmin_rates", "flow_completion"]


@njit(cache=True)
def _heap_push(hkey, hid, size, key, idx):
    """Push (key, idx) on the binary min-heap held in hkey/hid[:size]; return the new size."""
    i = size
    while i > 0:
        parent = (i - 1) >> 1
        if hkey[parent] <= key:
            break
        hkey[i] = hkey[parent]
        hid[i] = hid[parent]
        i = parent
    hkey[i] = key
    hid[i] = idx
    return size + 1


@njit(cache=True)
def _heap_pop(hkey, hid, size):
    """Pop the smallest entry; return (key, idx, new size). ``size`` must be > 0."""
    key = hkey[0]
    idx = hid[0]
    size -= 1
    if size > 0:
        lk = hkey[size]
        li = hid[size]
        i = 0
        while True:
            c = 2 * i + 1
            if c >= size:
                break
            if c + 1 < size and hkey[c + 1] < hkey[c]:
                c += 1
            if hkey[c] >= lk:
                break
            hkey[i] = hkey[c]
            hid[i] = hid[c]
            i = c
        hkey[i] = lk
        hid[i] = li
    return key, idx, size


_RADIX_BITS = 11
_RADIX = 1 << _RADIX_BITS


@njit(cache=True)
def _radix_sort(keys, ids, n, keys2, ids2, hist):
    """Sort ``keys[:n]`` (float64, >= 0) ascending, carrying ``ids``; result in keys/ids.

    LSD radix sort on the IEEE-754 bits (non-negative doubles order like their bit patterns),
    11 bits a pass, passes where every key has the same digit skipped: O(n), and free of the
    branch mispredictions that make a binary heap slow on random keys.
    """
    if n == 0:
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
        tot = 0
        for d in range(_RADIX):
            c = hist[d]
            hist[d] = tot
            tot += c
        for i in range(n):
            d = (bits[i] >> sh) & mask
            j = hist[d]
            hist[d] = j + 1
            dst_k[j] = src_k[i]
            dst_i[j] = src_i[i]
        src_k, dst_k = dst_k, src_k
        src_i, dst_i = dst_i, src_i
        flipped = not flipped
    if flipped:
        keys[:n] = keys2[:n]
        ids[:n] = ids2[:n]


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
        np.empty(n_links + n_flows),  # initial entry keys (sorted)
        np.empty(n_links + n_flows, dtype=np.int64),  # entries: link id, or n_links + flow id
        np.empty(n_links + n_flows),  # radix sort buffers
        np.empty(n_links + n_flows, dtype=np.int64),
        np.empty(_RADIX, dtype=np.int64),  # radix histogram
        np.empty(n_links),  # heap of requeued links: keys
        np.empty(n_links, dtype=np.int64),  # heap of requeued links: ids
    )


@njit(cache=True)
def _freeze(path_ptr, path_links, f, level, rates, frozen, frozen_sum, count):
    """Fix flow f's rate at the current water level and take it out of its links' counts."""
    frozen[f] = True
    rates[f] = level
    for k in range(path_ptr[f], path_ptr[f + 1]):
        m = path_links[k]
        frozen_sum[m] += level
        count[m] -= 1


@njit(cache=True)
def _maxmin_active(path_ptr, path_links, cap, act, n_act, rates, ws):
    """Max-min rates of the flows ``act[:n_act]`` on capacities ``cap``, into ``rates[act[i]]``.

    ``ws`` is a ``_workspace`` tuple. Only links crossed by these flows are read or written,
    so the cost is independent of the fabric size. A flow with an empty path gets +inf.

    Links crossed by one flow only (most host and many spine links under random traffic) get
    no entry of their own: such a link saturates exactly at its capacity, so a flow's private
    links collapse into one entry keyed by their smallest capacity.
    """
    count, frozen_sum, link_start, link_end, link_flows, touched, frozen, ekey, eid, ekey2, eid2, hist, hkey, hid = ws
    n_links = cap.shape[0]
    n_t = 0
    for a in range(n_act):
        f = act[a]
        for k in range(path_ptr[f], path_ptr[f + 1]):
            l = path_links[k]
            if count[l] == 0:
                touched[n_t] = l
                n_t += 1
            count[l] += 1
    m = 0  # initial entries
    pos = 0
    for i in range(n_t):
        l = touched[i]
        frozen_sum[l] = 0.0
        if count[l] >= 2:
            link_start[l] = pos
            link_end[l] = pos
            pos += count[l]
            ekey[m] = cap[l] / count[l]
            eid[m] = l
            m += 1
    for a in range(n_act):
        f = act[a]
        if path_ptr[f + 1] == path_ptr[f]:
            rates[f] = np.inf
            frozen[f] = True
            continue
        private = np.inf
        for k in range(path_ptr[f], path_ptr[f + 1]):
            l = path_links[k]
            if count[l] >= 2:
                link_flows[link_end[l]] = f
                link_end[l] += 1
            elif cap[l] < private:
                private = cap[l]
        if private < np.inf:
            ekey[m] = private
            eid[m] = n_links + f
            m += 1
    # Entries are consumed in key order from the sorted initial list, merged with a heap of
    # the (few) links requeued with a raised key.
    _radix_sort(ekey, eid, m, ekey2, eid2, hist)
    p = 0
    hsize = 0
    level = 0.0
    while True:
        if hsize > 0 and (p == m or hkey[0] < ekey[p]):
            key, x, hsize = _heap_pop(hkey, hid, hsize)
        elif p < m:
            key = ekey[p]
            x = eid[p]
            p += 1
        else:
            break
        if x >= n_links:  # a flow's private bound: exact, never stale
            f = x - n_links
            if not frozen[f]:
                if key > level:
                    level = key
                _freeze(path_ptr, path_links, f, level, rates, frozen, frozen_sum, count)
            continue
        if count[x] == 0:
            continue  # all its flows froze on other links
        cur = (cap[x] - frozen_sum[x]) / count[x]
        if cur > key:  # the key was a stale lower bound: requeue at the true level
            hsize = _heap_push(hkey, hid, hsize, cur, x)
            continue
        if cur > level:  # (cur < level only by rounding: the level never falls)
            level = cur
        for j in range(link_start[x], link_end[x]):
            f = link_flows[j]
            if not frozen[f]:
                _freeze(path_ptr, path_links, f, level, rates, frozen, frozen_sum, count)
    for a in range(n_act):
        frozen[act[a]] = False


@njit(cache=True)
def maxmin_rates(path_ptr, path_links, cap, active, rates):
    """Max-min fair rate of every active flow (progressive filling), bytes/s.

    Parameters
    ----------
    path_ptr : int64 (n_flows + 1,)
    path_links : int64 (total_hops,)
        Directed link ids of each flow's path (CSR). A link crossed twice counts twice.
    cap : float64 (n_links,)
        Link capacities, bytes/s (> 0).
    active : bool (n_flows,)
        Flows taking part; the others get rate 0.
    rates : float64 (n_flows,)
        Output. +inf for an active flow with an empty path.
    """
    n = path_ptr.shape[0] - 1
    act = np.empty(n, dtype=np.int64)
    n_act = 0
    for f in range(n):
        rates[f] = 0.0
        if active[f]:
            act[n_act] = f
            n_act += 1
    _maxmin_active(path_ptr, path_links, cap, act, n_act, rates, _workspace(cap.shape[0], n, path_links.shape[0]))


@njit(cache=True)
def _ih_sift_up(heap, pos, key, i):
    """Indexed min-heap of flow ids ordered by ``key[flow]``; ``pos[flow]`` its slot."""
    f = heap[i]
    k = key[f]
    while i > 0:
        p = (i - 1) >> 1
        g = heap[p]
        if key[g] <= k:
            break
        heap[i] = g
        pos[g] = i
        i = p
    heap[i] = f
    pos[f] = i


@njit(cache=True)
def _ih_sift_down(heap, pos, key, i, size):
    f = heap[i]
    k = key[f]
    while True:
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
def _add_on_path(path_ptr, path_links, resid, f, r):
    """Add r to the residual capacity of flow f's links (r = +-rate; skipped if not finite)."""
    if np.isfinite(r):
        for k in range(path_ptr[f], path_ptr[f + 1]):
            resid[path_links[k]] += r


@njit(cache=True)
def _transpose(path_ptr, path_links, n_links):
    """Flows crossing each link: (ptr (n_links + 1,), flows (occurrences,)) CSR."""
    ptr = np.zeros(n_links + 1, dtype=np.int64)
    for k in range(path_links.shape[0]):
        ptr[path_links[k] + 1] += 1
    for l in range(n_links):
        ptr[l + 1] += ptr[l]
    fill = ptr[:-1].copy()
    flows = np.empty(path_links.shape[0], dtype=np.int64)
    for f in range(path_ptr.shape[0] - 1):
        for k in range(path_ptr[f], path_ptr[f + 1]):
            l = path_links[k]
            flows[fill[l]] = f
            fill[l] += 1
    return ptr, flows


@njit(cache=True)
def _mark_links(path_ptr, path_links, f, chg, chg_at, n_chg, stamp):
    """Append flow f's links not yet in ``chg`` (stamped ``stamp``); return the new length."""
    for k in range(path_ptr[f], path_ptr[f + 1]):
        l = path_links[k]
        if chg_at[l] != stamp:
            chg_at[l] = stamp
            chg[n_chg] = l
            n_chg += 1
    return n_chg


@njit(cache=True)
def _has_bottleneck(path_ptr, path_links, lf_ptr, lf_flows, cap, resid, rate, done, link_max, link_at, stamp, h):
    """Max-min certificate of flow h: a saturated link (residual <= 1e-10 of capacity) on its
    path where no live flow has a larger rate (1e-10 relative). Link maxima cached per stamp."""
    for k in range(path_ptr[h], path_ptr[h + 1]):
        l = path_links[k]
        if resid[l] > 1e-10 * cap[l]:
            continue
        if link_at[l] != stamp:
            mx = 0.0
            for j in range(lf_ptr[l], lf_ptr[l + 1]):
                g = lf_flows[j]
                if not done[g] and rate[g] > mx:
                    mx = rate[g]
            link_max[l] = mx
            link_at[l] = stamp
        if rate[h] >= link_max[l] * (1.0 - 1e-10):
            return True
    return False


@njit(cache=True)
def flow_completion(path_ptr, path_links, cap, size, eps, finish, first_rate, delivered):
    """Transmission completion time of every flow under max-min sharing re-solved at each finish.

    All flows start at t = 0. Each event: advance to the earliest projected completion; every
    flow whose projected completion lies within ``eps`` (relative) of it finishes in the same
    event; the rates of the remaining flows that can change (module docstring) are re-solved
    and their completions re-projected.

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
    n = path_ptr.shape[0] - 1
    n_links = cap.shape[0]
    ws = _workspace(n_links, n, path_links.shape[0])
    lf_ptr, lf_flows = _transpose(path_ptr, path_links, n_links)
    rate = np.zeros(n)
    rem = size.copy()
    tref = np.zeros(n)  # time at which rem was last brought up to date
    done = np.zeros(n, dtype=np.bool_)
    all_flows = np.arange(n)
    _maxmin_active(path_ptr, path_links, cap, all_flows, n, rate, ws)
    resid = cap.copy()  # capacity left by the flows that are not being re-solved
    key = np.empty(n)  # projected completion time
    heap = np.empty(n, dtype=np.int64)
    pos = np.empty(n, dtype=np.int64)
    for f in range(n):
        first_rate[f] = rate[f]
        delivered[f] = 0.0
        _add_on_path(path_ptr, path_links, resid, f, -rate[f])
        key[f] = rem[f] / rate[f] if rate[f] > 0.0 else np.inf
        heap[f] = f
        pos[f] = f
    hsize = n
    for i in range(n // 2 - 1, -1, -1):
        _ih_sift_down(heap, pos, key, i, hsize)
    flows_in = np.empty(n, dtype=np.int64)  # S: the flows re-solved in this event
    in_s = np.full(n, -1, dtype=np.int64)  # event stamp
    chg = np.empty(n_links, dtype=np.int64)  # links whose load changed in this event
    chg_at = np.full(n_links, -1, dtype=np.int64)  # event stamp
    checked = np.full(n, -1, dtype=np.int64)  # certificate round stamp, per flow
    link_max = np.empty(n_links)  # largest rate on a link, per certificate round
    link_at = np.full(n_links, -1, dtype=np.int64)
    viol = np.empty(n, dtype=np.int64)
    events = 0
    rounds = 0
    while hsize > 0:
        t_ev = key[heap[0]]
        if t_ev == np.inf:  # nothing can move (a zero-capacity link): never finishes
            for i in range(hsize):
                finish[heap[i]] = np.inf
            break
        events += 1
        thr = t_ev * (1.0 + eps)
        r_min = np.inf
        n_chg = 0
        while hsize > 0 and key[heap[0]] <= thr:
            f = heap[0]
            hsize -= 1
            if hsize > 0:
                heap[0] = heap[hsize]
                pos[heap[0]] = 0
                _ih_sift_down(heap, pos, key, 0, hsize)
            done[f] = True
            finish[f] = t_ev
            # the integral of rate over time, not the remainder: tests compare it with size
            delivered[f] += rem[f] if rate[f] == np.inf else rate[f] * (t_ev - tref[f])
            _add_on_path(path_ptr, path_links, resid, f, rate[f])
            r_min = min(r_min, rate[f])
            n_chg = _mark_links(path_ptr, path_links, f, chg, chg_at, n_chg, events)
        if hsize == 0:
            break
        # Seed S with the flows >= theta on the finished flows' links (below theta nothing
        # changes; the margin sends rounding-level ties in), then grow S until the max-min
        # certificate holds on every link whose load changed.
        theta = r_min * (1.0 - 1e-9)
        n_s = 0
        for i in range(n_chg):
            l = chg[i]
            for j in range(lf_ptr[l], lf_ptr[l + 1]):
                g = lf_flows[j]
                if not done[g] and in_s[g] != events and rate[g] >= theta:
                    in_s[g] = events
                    flows_in[n_s] = g
                    n_s += 1
        n_old = 0  # S members whose links are marked and bytes advanced
        while n_s > 0:
            for i in range(n_old, n_s):
                g = flows_in[i]
                sent = rate[g] * (t_ev - tref[g])
                rem[g] -= sent
                delivered[g] += sent
                tref[g] = t_ev
                n_chg = _mark_links(path_ptr, path_links, g, chg, chg_at, n_chg, events)
            n_old = n_s
            for i in range(n_s):
                _add_on_path(path_ptr, path_links, resid, flows_in[i], rate[flows_in[i]])
            for i in range(n_s):
                g = flows_in[i]
                for k in range(path_ptr[g], path_ptr[g + 1]):
                    if resid[path_links[k]] < 0.0:  # rounding only
                        resid[path_links[k]] = 0.0
            _maxmin_active(path_ptr, path_links, resid, flows_in, n_s, rate, ws)
            for i in range(n_s):
                _add_on_path(path_ptr, path_links, resid, flows_in[i], -rate[flows_in[i]])
            rounds += 1
            n_v = 0
            for i in range(n_chg):
                l = chg[i]
                for j in range(lf_ptr[l], lf_ptr[l + 1]):
                    h = lf_flows[j]
                    if done[h] or checked[h] == rounds or (in_s[h] != events and rate[h] < theta):
                        continue  # below theta: its bottleneck is a link no flow of S crosses
                    checked[h] = rounds
                    if not _has_bottleneck(path_ptr, path_links, lf_ptr, lf_flows, cap, resid, rate, done,
                                           link_max, link_at, rounds, h):
                        viol[n_v] = h
                        n_v += 1
            for i in range(n_v):  # a violator and every flow >= theta sharing a link with it join S
                h = viol[i]
                for k in range(path_ptr[h], path_ptr[h + 1]):
                    l = path_links[k]
                    for j in range(lf_ptr[l], lf_ptr[l + 1]):
                        g = lf_flows[j]
                        if not done[g] and in_s[g] != events and rate[g] >= theta:
                            in_s[g] = events
                            flows_in[n_s] = g
                            n_s += 1
            if n_s == n_old:  # certified (or nothing left to add)
                break
        for i in range(n_s):
            f = flows_in[i]
            key[f] = t_ev + (rem[f] / rate[f] if rate[f] > 0.0 else np.inf)
            _ih_sift_up(heap, pos, key, pos[f])
            _ih_sift_down(heap, pos, key, pos[f], hsize)
    return events
