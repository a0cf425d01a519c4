"""Periodic replay: the steady state of a pipeline schedule replayed a few times, the rest accounted.

What is modelled. Both pipeline schedules (:mod:`oassim.workload.schedules`) repeat after their
warm-up: with ``P`` micro-batches per *period* (1 for 1F1B; ``pp`` for the interleaved
schedule, whose micro-batches go through the chunks in groups of ``pp``) and ``v`` chunks per
stage, forward step ``k`` of a stage serves period ``k // (v P)``, and the steps of a period
``j`` are the steps of period ``j - 1`` with every micro-batch index raised by ``P``. A period
is *steady* when each of its forward steps follows a backward step (not the warm-up) and
each of its backward steps precedes a forward step (not the cool-down), on every stage:
periods ``w .. n - 1 - w`` of ``n``, with ``w = ceil((warm-up + 1) / (v P))`` (the longest
warm-up, stage 0's, in forward steps).

The replay runs the same job with ``n' = 2 w + S`` periods (``S`` steady ones, first
:data:`STEADY_PERIODS`), then looks for the first steady period ``b`` that repeats: every
record of period ``b + 1`` (each op, call and wait of every simulated rank: the ``ops``,
``collectives`` and ``waits`` frames and the flights behind link utilisation) is the record of
period ``b`` with micro-batch ``+ P`` and every time ``+ Delta``, all other columns equal
(within :data:`TOLERANCE` of the iteration time). Then the iteration with ``n`` periods is
the replayed one with ``n - n'`` copies of period ``b`` inserted after it: records of periods
``<= b`` stay, the ``i``-th copy is period ``b`` shifted by ``i`` periods (``i Delta`` in
time), and later records (the cool-down, the optimizer, calls still in flight at the end)
move by ``(n - n') Delta``. The iteration time grows by ``(n - n') Delta``; link utilisation
windows, tier totals and the breakdown are computed from the expanded records exactly as
from a full replay. The expanded frames are built when first read
(:class:`~oassim.scheduler.results.Deferred`).

Why a check and not a proof: the replay is deterministic, so once one period's records repeat
with a constant shift, the state handed from one period to the next repeats too. What can
delay or break the repetition is found, not assumed: stages of unequal speed take a number
of micro-batches to fall into step (a transient that grows with the slack, e.g. ~30
micro-batches with ZeRO 3 on 4 stages), a straggler in full-rank mode, flow-level contention
whose pattern keeps drifting. When no steady pair repeats,
:func:`~oassim.scheduler.simulate.simulate` tries again with twice the periods
(:func:`attempts`, while that is at most half the job), and otherwise replays every
micro-batch, saying why in ``provenance["replay"]``. Idle intervals of a few ulps
(simultaneous events whose times were summed in another order) come and go between periods;
the periodic replay drops those shorter than :data:`TOLERANCE` of the iteration from ``waits``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from oassim.workload.schedules import SCHEDULES, warmup_steps

__all__ = ["Layout", "layout", "attempts", "period_shift", "expand_frame", "STEADY_PERIODS", "TOLERANCE",
           "TIME_COLUMNS"]

STEADY_PERIODS = 2
"""Steady periods replayed (consecutive ones are compared; 2 is one comparison)."""

TOLERANCE = 1e-9
"""Largest mismatch between two steady periods, as a fraction of the replayed iteration time."""

TIME_COLUMNS = {"ops": ("start_s", "end_s"), "collectives": ("start_s", "end_s"), "waits": ("start_s", "end_s"),
                "flights": ("start_s", "end_s")}
_LATE = np.iinfo(np.int64).max


@dataclass(frozen=True)
class Layout:
    """How a job's micro-batches split into periods, and the shorter job that is replayed.

    Attributes
    ----------
    period : int
        Micro-batches per period ``P``.
    periods : int
        Periods of the job ``n``.
    warm : int
        Periods of warm-up (and of cool-down) ``w``.
    replayed : int
        Periods replayed ``n'``.
    anchor : int
        The steady period ``b`` whose copies are inserted.
    schedule : tuple of (str, int, int)
        Schedule name, ``pp`` and ``vpp`` (:data:`oassim.workload.schedules.SCHEDULES`).
    """

    period: int
    periods: int
    warm: int
    replayed: int
    anchor: int
    schedule: tuple = ("1f1b", 1, 1)

    def schedules(self) -> tuple:
        """The replayed job's schedule per stage."""
        name, pp, vpp = self.schedule
        return tuple(SCHEDULES[name](pp, st, self.microbatches, vpp) for st in range(pp))

    @property
    def inserted(self) -> int:
        """Periods accounted without being replayed, ``n - n'``."""
        return self.periods - self.replayed

    @property
    def steady(self) -> range:
        """The steady periods of the replayed job."""
        return range(self.warm, self.replayed - self.warm)

    @property
    def microbatches(self) -> int:
        """Micro-batches replayed."""
        return self.replayed * self.period


def layout(plan: Any, steady_periods: int = STEADY_PERIODS, max_replayed: int | None = None) -> Layout | str:
    """The periodic layout of ``plan`` with ``steady_periods`` steady periods replayed, or why it
    has none worth using (a sentence): the replayed periods must be fewer than the job's, and
    at most ``max_replayed`` when given."""
    par = plan.parallelism
    name = par.schedule_name
    if name not in SCHEDULES:
        return f"schedule {name!r} is not known to repeat"
    pp, vpp, m = par.pp, par.vpp, plan.n_microbatches
    period = pp if name == "interleaved" else 1
    if m % period:
        return f"{m} micro-batches are not whole periods of {period}"
    n = m // period
    warm_steps = max(warmup_steps(name, pp, s, 10**9, vpp) for s in range(pp))
    # the first steady forward follows a backward, not the last warm-up forward
    w = math.ceil((warm_steps + 1) / (vpp * period))
    s = max(int(steady_periods), 2)
    replayed = 2 * w + s
    if n <= replayed or (max_replayed is not None and replayed > max_replayed):
        return (f"{m} micro-batches are {n} period(s) of {period}; the periodic replay needs more than "
                f"{replayed if n <= replayed else 2 * replayed} ({w} of warm-up, {s} steady, {w} of cool-down)")
    return Layout(period, n, w, replayed, w, (name, pp, vpp))


def attempts(plan: Any) -> list[Layout] | str:
    """The layouts to try in turn: ``2 w + 2`` periods, then twice as many each time while that
    is at most half the job (a transient that outlasts one attempt may end inside the next);
    or why there is none (a sentence)."""
    first = layout(plan)
    if isinstance(first, str):
        return first
    out = [first]
    while True:
        nxt = layout(plan, 2 * out[-1].replayed - 2 * first.warm, max_replayed=first.periods // 2)
        if isinstance(nxt, str):
            return out
        out.append(nxt)


def _sortable(col: pd.Series) -> np.ndarray:
    if isinstance(col.dtype, pd.CategoricalDtype):
        return col.cat.codes.to_numpy()
    return col.to_numpy()


def period_shift(df: pd.DataFrame, times: tuple[str, ...], lay: Layout, j: int,
                 scale_s: float) -> float | str | None:
    """``Delta``, the time shift from period ``j`` to period ``j + 1`` of ``df``'s records, or
    why period ``j + 1`` is not period ``j`` shifted (a sentence), or None when neither period
    holds a record of ``df`` (the frame says nothing of the period). ``scale_s``: the replayed
    iteration time (the tolerance's scale)."""
    mb = df["microbatch"].to_numpy().astype(np.int64)
    blk = np.where(mb >= 0, mb // lay.period, -1)
    tol = TOLERANCE * max(scale_s, 1e-12)
    approx = [c for c in df.columns if c not in times and pd.api.types.is_float_dtype(df[c].dtype)]
    exact = [c for c in df.columns if c not in times and c != "microbatch" and c not in approx]
    a, b = np.flatnonzero(blk == j), np.flatnonzero(blk == j + 1)
    if len(a) != len(b):
        return f"period {j + 1} has {len(b)} records, period {j} {len(a)}"
    if not len(a):  # (a data-parallel job's collectives all come after the last micro-batch)
        return None  # neither period has a record of this kind: nothing to compare, nothing to insert
    parts = []
    columns = [_sortable(df[c]) for c in exact]  # (codes of a categorical: the same order as its rows')
    t0 = df[times[0]].to_numpy()
    for idx in (a, b):
        keys = [col[idx] for col in columns] + [mb[idx] % lay.period]
        order = np.lexsort([t0[idx], *reversed(keys)])
        parts.append((idx[order], [k[order] for k in keys]))
    (ia, ka), (ib, kb) = parts
    if any(not np.array_equal(x, y) for x, y in zip(ka, kb)):
        return f"the records of period {j + 1} differ from those of period {j}"
    d = [df[c].to_numpy()[ib] - df[c].to_numpy()[ia] for c in times]
    delta = float(np.median(d[0]))
    for x in d:
        if not np.nanmax(np.abs(x - delta)) <= tol:
            return f"period {j + 1} is not period {j} shifted in time (mismatch {np.nanmax(np.abs(x - delta)):.3g} s)"
    for c in approx:
        x, y = df[c].to_numpy()[ia], df[c].to_numpy()[ib]
        if not np.allclose(x, y, rtol=1e-9, atol=max(tol, 0.0), equal_nan=True):
            return f"column {c} of period {j + 1} differs from period {j}"
    return delta


def expand_frame(df: pd.DataFrame, times: tuple[str, ...], lay: Layout, delta: float,
                 group: str | None = None) -> pd.DataFrame:
    """The records of the whole job from those of the replayed one (module docstring): periods
    ``<= anchor`` kept, ``inserted`` copies of the anchor period, later records shifted. Rows
    are grouped by ``group`` (ascending codes), not sorted by time."""
    k = lay.inserted
    mb = df["microbatch"].to_numpy().astype(np.int64)
    blk = np.where(mb >= 0, mb // lay.period, _LATE)
    pre, anchor, post = np.flatnonzero(blk <= lay.anchor), np.flatnonzero(blk == lay.anchor), np.flatnonzero(
        blk > lay.anchor)
    idx = np.concatenate([pre, np.tile(anchor, k), post])
    shift = np.concatenate([np.zeros(len(pre), np.int64), np.repeat(np.arange(1, k + 1), len(anchor)),
                            np.full(len(post), k, np.int64)])
    if group is not None:  # e.g. compute rows before collective rows, as in a full replay
        order = np.argsort(_sortable(df[group])[idx], kind="stable")
        idx, shift = idx[order], shift[order]
    out = df.take(idx).reset_index(drop=True)
    m = out["microbatch"].to_numpy()
    out["microbatch"] = np.where(m >= 0, m + shift * lay.period, m).astype(df["microbatch"].dtype)
    for c in times:
        out[c] = out[c].to_numpy() + shift * delta
    return out
