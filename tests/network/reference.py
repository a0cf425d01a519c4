"""Plain numpy references of the network kernels (docs/architecture.md, conventions:
kernel == reference, by property test).

``maxmin_reference`` is the textbook progressive filling (Bertsekas & Gallager, *Data
Networks*, sec. 6.5.2), one round at a time: every link's fair share is its remaining
capacity over its unfrozen flows; the smallest share saturates its link(s); their flows freeze
at that share; repeat. Slow (a full rescan per round) and obviously right, which is the point.
"""

from __future__ import annotations

import numpy as np

__all__ = ["maxmin_reference", "flow_completion_reference"]


def maxmin_reference(ptr: np.ndarray, links: np.ndarray, cap: np.ndarray,
                     active: np.ndarray | None = None) -> np.ndarray:
    """Max-min rates of the flows of a path CSR (rate 0 for inactive flows, inf for empty paths)."""
    n = len(ptr) - 1
    active = np.ones(n, dtype=bool) if active is None else np.asarray(active, dtype=bool)
    hops = np.diff(ptr)
    flow_of = np.repeat(np.arange(n), hops)
    rates = np.zeros(n)
    frozen = ~active.copy()
    empty = active & (hops == 0)
    rates[empty] = np.inf
    frozen |= empty
    rem = np.asarray(cap, dtype=float).copy()
    while not frozen.all():
        live = ~frozen[flow_of]
        cnt = np.bincount(links[live], minlength=len(cap))
        with np.errstate(divide="ignore", invalid="ignore"):
            share = np.where(cnt > 0, np.maximum(rem, 0.0) / cnt, np.inf)
        s = share.min()
        saturated = share <= s * (1 + 1e-12)
        newly = np.unique(flow_of[live & saturated[links]])
        rates[newly] = s
        frozen[newly] = True
        occ = np.isin(flow_of, newly)
        rem -= np.bincount(links[occ], minlength=len(cap)) * s
    return rates


def flow_completion_reference(ptr: np.ndarray, links: np.ndarray, cap: np.ndarray, size: np.ndarray,
                              eps: float = 1e-9) -> tuple[np.ndarray, int]:
    """Completion times under max-min sharing re-solved at every finish (same event rule as
    the kernel: finishes within ``eps`` of the event time are one event); (finish, events)."""
    n = len(size)
    remaining = np.asarray(size, dtype=float).copy()
    active = np.ones(n, dtype=bool)
    finish = np.full(n, np.nan)
    t, events = 0.0, 0
    while active.any():
        r = maxmin_reference(ptr, links, cap, active)
        with np.errstate(divide="ignore", invalid="ignore"):
            d = np.where(active, remaining / r, np.inf)
        dt = d.min()
        events += 1
        t_new = t + dt
        done = active & (d <= dt + eps * t_new)
        finish[done] = t_new
        remaining = np.where(active & ~done, remaining - r * dt, 0.0)
        active &= ~done
        t = t_new
    return finish, events
