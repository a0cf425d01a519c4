"""SimPy processes replaying a compiled plan: one per simulated rank, with its streams.

What is modelled (docs/architecture.md decision 7, the replay contract of ``oassim.workload.plan``):

- A *member* is a simulated rank: one representative per pipeline stage (all data-parallel
  replicas behave alike), or every rank in full-rank mode. Its process is its compute stream
  (a generator runs its steps in program order, as a CUDA stream runs kernels); each parallel
  dimension (tp, cp, ep, dp, pp) has a communication stream, a capacity-1 FIFO resource
  (:class:`Stream`), so the calls of one dimension run one after the other (one NCCL
  communicator) while calls of different dimensions may overlap (and contend, see
  :mod:`oassim.scheduler.comm`).
- The process runs ``StagePlan.schedule`` in order: ``F mb c`` runs chunk ``c``'s forward,
  ``B mb c`` its backward (``backward_last`` for the last micro-batch), then the optimizer
  list. With ``vs = chunk * pp + stage``, F(vs, mb) first waits for the trailing
  ``send_recv`` of F(vs - 1, mb) and B(vs, mb) for that of B(vs + 1, mb): the pipeline
  schedule and its bubbles emerge from these waits, none is computed.
- A blocking call holds the compute stream until it completes; an overlappable one runs on its
  dimension's stream while compute continues, and an op naming it in ``after`` waits for it
  (the optimizer waits for every gradient reduction of the stage). A synchronous collective
  starts when every member that issues it has reached it (every rank of the group in
  full-rank mode; the two stages of a cross-stage call such as the tied-embedding gradient
  all-reduce in representative mode), so a straggler delays its peers.
- The compute stream's idle time is recorded as it happens: waiting for a pipeline neighbour
  is *bubble*; waiting for a call (blocking, at an ``after`` dependency, or at the end of the
  iteration for calls still in flight) is that call's *exposed* time.
- Overlappable calls issued by the optimizer list (ZeRO parameter all-gathers) are hidden
  behind the next iteration's forward: they only extend the iteration by what they outlast
  the time until the stage's first forward of the next iteration has run.
"""

from __future__ import annotations

from collections import deque
from heapq import heappush
from typing import Any, Callable, Iterator, Mapping

import numpy as np
import simpy
from simpy.events import NORMAL

from oassim.errors import SpecError
from oassim.scheduler.comm import Flight
from oassim.scheduler.context import SimContext
from oassim.scheduler.program import SEG, CallStep, Program, ProgramBuilder
from oassim.scheduler.quiet import check_early_phase, quiet_calls

__all__ = ["Replay", "Member", "Stream", "FULL_RANK_LIMIT"]

# Full-rank replay costs events in proportion to ranks x operations: 512 ranks of GPT-3 175B
# (tp8 pp8 dp8) take ~30 s; 3,072 ranks ran for over 10 minutes. Larger jobs use the
# representative mode.
FULL_RANK_LIMIT = 1024
_DIMS = ("tp", "cp", "ep", "dp", "pp")


class Stream:
    """A communication stream: a capacity-1 FIFO resource (``simpy.Resource`` semantics: the
    next waiting call gets it when the current one releases it, at the same instant) that
    hands itself over by callback instead of by event, because the replay issues up to
    millions of calls."""

    __slots__ = ("busy", "queue")

    def __init__(self) -> None:
        self.busy = False
        self.queue: deque[Callable[[], None]] = deque()

    def acquire(self, cb: Callable[[], None]) -> None:
        """Run ``cb`` once the stream is ours (now if it is free)."""
        if self.busy:
            self.queue.append(cb)
        else:
            self.busy = True
            cb()

    def release(self, _flight: Any = None) -> None:
        """Hand the stream to the next waiting call, or free it (usable as a flight callback)."""
        if self.queue:
            self.queue.popleft()()
        else:
            self.busy = False


class Member:
    """One simulated rank: its stage, rank, straggler factor, streams and pending calls."""

    __slots__ = ("idx", "stage", "rank", "factor", "dep_rank", "streams", "issued", "outstanding",
                 "trailing", "global_names", "first_start", "end", "own", "free", "early")

    def __init__(self, idx: int, stage: int, rank: int, factor: float, dep_rank: int | None,
                 global_names: frozenset[str]):
        self.idx, self.stage, self.rank, self.factor, self.dep_rank = idx, stage, rank, factor, dep_rank
        self.streams = {d: Stream() for d in _DIMS}
        self.issued: dict[str, list[tuple[Flight, list]]] = {}
        self.outstanding: list[tuple[Flight, list]] = []
        self.trailing: list[tuple[Flight, list]] = []
        self.global_names = global_names
        self.first_start: float | None = None
        self.end: float | None = None
        # the event being processed woke this member alone (its start, its own timeout, or
        # the end of a flight no other member waits for, whose completion callback runs
        # first): no other callback of it is left to run at the current time
        self.own = True
        self.free: dict[str, float] = {}  # dim -> when its stream is free (streams of quiet calls only)
        self.early = True  # before its first backward of the last micro-batch (quiet.py)


class _CallMeta:
    """Per-call data the replay needs at issue time."""

    __slots__ = ("info", "sync", "issuers", "rows", "send", "quiet", "quiet_early")

    def __init__(self, info: Any, sync: tuple, issuers: int, rows: np.ndarray | None, send: bool):
        self.info, self.sync, self.issuers, self.rows, self.send = info, sync, issuers, rows, send
        self.quiet = False  # see Replay._mark_quiet
        self.quiet_early = False  # quiet while its member is in its early phase


class Replay:
    """Builds the members and programs of a plan and runs them on ``ctx.env``.

    A compute segment whose completion would be the next event SimPy processes (strictly
    earlier than everything queued, with no other callback of the current event left to run)
    advances the clock itself instead of scheduling a timeout and being resumed by it: the
    same times in the same order, one event fewer (``inline = False`` schedules every one).
    A quiet call (:mod:`oassim.scheduler.quiet`: nothing can slow its flight down) is timed
    the same way, at its time alone, without the contention model (``quiet_calls = False``
    sends every call through it).

    Parameters
    ----------
    ctx : SimContext
    plan : Plan
    full_rank : bool
        Simulate every rank (at most :data:`FULL_RANK_LIMIT`) instead of one per stage.
    stragglers : mapping of int to float, optional
        Compute slowdown factor (> 0) per accelerator rank. In representative mode a stage
        takes the largest factor of its ranks (its slowest replica sets the pace of the
        synchronous job).
    schedules : sequence of schedules, optional
        One schedule per stage to run instead of ``StagePlan.schedule`` (the periodic replay
        runs the same job with fewer micro-batches, :mod:`oassim.scheduler.periodic`).
    n_microbatches : int, optional
        Micro-batches of ``schedules`` (its last one runs ``backward_last``).
    early_quiet : bool, optional
        Override :attr:`early_quiet` for this replay.
    """

    inline = True
    #: Run quiet calls (:meth:`_mark_quiet`) as timed steps of the compute stream, without
    #: the contention model's bookkeeping (False: every call through ``CommModel.start``).
    quiet_calls = True
    #: Treat the calls quiet only in their member's early phase as quiet there (False: only the
    #: calls quiet throughout; simulate falls back to that on ``quiet.EarlyQuietOverlap``).
    early_quiet = True

    def __init__(self, ctx: SimContext, plan: Any, full_rank: bool = False,
                 stragglers: Mapping[int, float] | None = None, schedules: Any = None,
                 n_microbatches: int | None = None, early_quiet: bool | None = None):
        self.ctx, self.env, self.rec, self.comm = ctx, ctx.env, ctx.recorder, ctx.comm
        if early_quiet is not None:
            self.early_quiet = bool(early_quiet)
        self.plan = plan
        self.full = bool(full_rank)
        par = plan.parallelism
        self.schedules = (tuple(schedules) if schedules is not None else tuple(st.schedule for st in plan.stages))
        n_mb = plan.n_microbatches if n_microbatches is None else int(n_microbatches)
        self.pp, self.n_vs, self.last_mb = par.pp, par.pp * par.vpp, n_mb - 1
        self.builder = ProgramBuilder()
        self.progs: list[list[tuple[Program, Program, Program]]] = []
        self.opt_progs: list[Program] = []
        for st in plan.stages:
            self.progs.append([(self.builder.compile(c.forward), self.builder.compile(c.backward),
                                self.builder.compile(c.backward_last)) for c in st.chunks])
            self.opt_progs.append(self.builder.compile(st.optimizer, optimizer=True))
        self.members = self._build_members(stragglers or {})
        self.meta: dict[int, _CallMeta] = {}
        self._build_meta()
        self.first_late = [next((i for i, st in enumerate(sch) if st.kind != "F" and st.microbatch == self.last_mb),
                                len(sch)) for sch in self.schedules]
        self.early_dims: list[set[str]] = [set() for _ in plan.stages]
        if self.quiet_calls and not self.full:
            self._mark_quiet()
        self.rec.members = [(m.stage, m.rank) for m in self.members]
        self.deps: dict[tuple, simpy.Event] = {}
        self.rv: dict[tuple, list] = {}
        self.shared: set[int] = set()  # ids of flights several members wait for

    # ------------------------------------------------------------------ set-up
    def _calls(self, stage: int) -> Iterator[Any]:
        for trip in self.progs[stage]:
            for prog in trip:
                for ins in prog.steps:
                    if ins.kind != SEG:
                        yield ins.call
        for ins in self.opt_progs[stage].steps:
            if ins.kind != SEG:
                yield ins.call

    def _build_meta(self) -> None:
        issuers: dict[tuple, set[int]] = {}
        found: list[tuple[Any, tuple]] = []
        rowmaps: dict[int, np.ndarray] = {}
        # accelerator ranks may exceed the job's count (ep_placement: domain leaves some idle)
        world = max(self.plan.n_accelerators, 1 + max(int(st.ranks.max()) for st in self.plan.stages))
        for s in range(len(self.plan.stages)):
            for call in self._calls(s):
                if id(call) in self.meta:
                    continue
                info = self.comm.info(call)
                prefix = f"s{s}/"
                role = call.where[len(prefix):] if call.where.startswith(prefix) else call.where
                sync = (role, info.index)
                issuers.setdefault(sync, set()).add(s)
                rows = None
                if self.full:
                    g = call.groups
                    rows = rowmaps.get(id(g))
                    if rows is None:
                        rows = np.full(world, -1, dtype=np.int64)
                        cols = g[:, :1] if call.op == "send_recv" else g
                        rows[cols.ravel()] = np.repeat(np.arange(g.shape[0]), cols.shape[1])
                        rowmaps[id(g)] = rows
                self.meta[id(call)] = _CallMeta(info, sync, 1, rows, call.op == "send_recv")
                found.append((call, sync))
        for call, sync in found:
            self.meta[id(call)].issuers = len(issuers[sync])

    def _mark_quiet(self) -> None:
        """Set ``quiet`` on the calls :func:`oassim.scheduler.quiet.quiet_calls` finds."""
        quiet, early = quiet_calls(self.progs, self.opt_progs, self.meta, self.comm._neighbours)
        for key in quiet:
            self.meta[key].quiet = True
        if not self.early_quiet:
            return
        for key, (s, d) in early.items():
            self.meta[key].quiet_early = True
            self.early_dims[s].add(d)

    def _leave_early(self, m: Member) -> None:
        """``m`` enters its late phase: every flight quiet in its early phase must be over."""
        m.early = False
        check_early_phase(m.stage, m.free, self.early_dims[m.stage], self.env.now)

    def _build_members(self, stragglers: Mapping[int, float]) -> list[Member]:
        world = self.plan.n_accelerators
        for r, f in stragglers.items():
            if not (0 <= int(r) < world):
                raise SpecError(f"straggler rank {r} is outside the job (ranks 0..{world - 1})", path="stragglers")
            if not (float(f) > 0 and np.isfinite(float(f))):
                raise SpecError(f"straggler factor of rank {r} must be a finite number > 0, got {f!r}",
                                path="stragglers")
        if self.full and world > FULL_RANK_LIMIT:
            raise SpecError(f"full-rank mode replays every rank; {world:,} ranks is beyond its limit of "
                            f"{FULL_RANK_LIMIT:,} (use the representative mode)", path="full_rank")
        out: list[Member] = []
        for st in self.plan.stages:
            names = frozenset(n for x in st.optimizer for n in getattr(x, "after", ()))
            ranks = [int(r) for r in st.ranks]
            if self.full:
                for r in ranks:
                    out.append(Member(len(out), st.stage, r, float(stragglers.get(r, 1.0)), r, names))
            else:
                f = max([float(stragglers[r]) for r in ranks if r in stragglers] or [1.0])
                out.append(Member(len(out), st.stage, ranks[0], f, None, names))
        return out

    # ------------------------------------------------------------------ run
    def run(self) -> float:
        """Run every member to the end of the iteration; returns the iteration time, s."""
        for m in self.members:
            self.env.process(self._member(m))
        self.env.run()
        stuck = [m for m in self.members if m.end is None]
        if stuck:
            m = stuck[0]
            raise RuntimeError(f"replay deadlocked: stage {m.stage} rank {m.rank} did not finish "
                               f"({len(stuck)} member(s) stuck at t = {self.env.now:.6g} s)")
        for m in self.members:
            self._trailing(m)
        for fl in self.rec.flights:  # what waiting on a flight needed: garbage once the run is over
            fl.done = None
            fl.callbacks = []
        return max(m.end for m in self.members)

    def _dep(self, key: tuple) -> simpy.Event:
        ev = self.deps.get(key)
        if ev is None:
            ev = self.deps[key] = self.env.event()
        return ev

    def _member(self, m: Member):
        env, rec, pp, n_vs = self.env, self.rec, self.pp, self.n_vs
        progs = self.progs[m.stage]
        first_late = self.first_late[m.stage]
        for i, st in enumerate(self.schedules[m.stage]):
            c, mb = st.chunk, st.microbatch
            vs = c * pp + m.stage
            fwd = st.kind == "F"
            if pp > 1 and ((fwd and vs > 0) or (not fwd and vs < n_vs - 1)):
                ev = self._dep((st.kind, vs, mb, m.dep_rank))
                if ev.callbacks is not None:  # not processed yet
                    t0 = env.now
                    yield ev
                    m.own = False
                    rec.wait(m.idx, 0, None, mb, c, t0, env.now)
            trip = progs[c]
            prog = trip[0] if fwd else (trip[2] if mb == self.last_mb else trip[1])
            if i == first_late:
                self._leave_early(m)
            yield from self._run(m, prog, st.kind, vs, mb, c)
        if m.early:
            self._leave_early(m)
        yield from self._run(m, self.opt_progs[m.stage], "O", -1, -1, -1)
        pend = [h for h in m.outstanding if self._pending(h[0])]
        if pend:
            yield from self._wait(m, pend, -1, -1)
        m.end = env.now

    def _run(self, m: Member, prog: Program, kind: str, vs: int, mb: int, c: int):
        env, segs, timeout, factor = self.env, self.rec.segments, self.env.timeout, m.factor
        queue, inline = env._queue, self.inline
        local: dict[str, tuple[Flight, list]] = {}
        for ins in prog.steps:
            if ins.kind == SEG:
                if ins.after:
                    hs: list[tuple[Flight, list]] = []
                    for n in ins.after:
                        h = local.get(n)
                        if h is not None:
                            hs.append(h)
                        else:
                            hs.extend(m.issued.get(n, ()))
                    pend = [h for h in hs if self._pending(h[0])]
                    if pend:
                        yield from self._wait(m, pend, mb, c)
                t0 = env.now
                if m.first_start is None:
                    m.first_start = t0
                delay = ins.duration_s * factor
                t1 = t0 + delay  # the time simpy's Timeout is scheduled at
                if inline and m.own and (not queue or queue[0][0] > t1):
                    env._now = t1  # its timeout would be the next event to process: no event needed
                else:
                    yield timeout(delay)
                    m.own = True
                segs.extend((ins.seg_id, t0, factor, m.idx, mb, c))
                continue
            call = ins.call
            cm = self.meta[id(call)]
            quiet = cm.quiet or (cm.quiet_early and m.early)
            h = self._quiet_issue(m, call, mb, c) if quiet else self._issue(m, ins, kind, vs, mb, c)
            if call.overlappable:
                if prog.optimizer:
                    m.trailing.append(h)
                    continue
                local[call.where] = h
                if call.where in m.global_names:
                    m.issued.setdefault(call.where, []).append(h)
                m.outstanding.append(h)
                if len(m.outstanding) > 256:
                    m.outstanding = [x for x in m.outstanding if self._pending(x[0])]
            elif self._pending(h[0]):
                t0 = env.now
                if quiet:
                    yield from self._until(m, h[0].end_s)
                else:
                    yield self.comm.event(h[0])
                    m.own = id(h[0]) not in self.shared
                self._account(m, h, t0, mb, c)

    def _wait(self, m: Member, pend: list[tuple[Flight, list]], mb: int, c: int):
        """Idle until every flight of ``pend`` is done; the wait is accounted to the last one."""
        t0 = self.env.now
        for fl, _ in pend:
            if fl.end_s is None:
                yield self.comm.event(fl)
                m.own = id(fl) not in self.shared
            elif fl.end_s > self.env.now:  # a quiet flight, its end known when it was issued
                yield from self._until(m, fl.end_s)
        self._account(m, max(pend, key=lambda h: h[0].end_s), t0, mb, c)

    def _pending(self, fl: Flight) -> bool:
        """``fl`` has not completed yet (a quiet flight knows its end before it comes)."""
        return fl.end_s is None or fl.end_s > self.env.now

    def _until(self, m: Member, t: float):
        """Idle the compute stream of ``m`` until time ``t`` exactly (a quiet flight's end)."""
        env = self.env
        queue = env._queue
        if self.inline and m.own and (not queue or queue[0][0] > t):
            env._now = t  # its completion would be the next event to process
            return
        ev = simpy.Event(env)
        ev._ok, ev._value = True, None
        heappush(queue, (t, NORMAL, next(env._eid), ev))  # at t itself: now + (t - now) may round
        yield ev
        m.own = True

    def _quiet_issue(self, m: Member, call: Any, mb: int, c: int) -> tuple[Flight, list]:
        """Issue a quiet call (:meth:`_mark_quiet`): it starts when its stream is free and takes
        its time alone, as ``CommModel.start`` would run it, without the contention bookkeeping."""
        info = self.meta[id(call)].info
        fl = Flight(info, call, m.stage, mb, c, -1)
        self.rec.flight(fl)
        now = self.env.now
        row = self.rec.comm(m.idx, fl, now)
        start = max(now, m.free.get(call.dim, now))
        row[4] = fl.start_s = fl.t_last = start
        fl.end_s = start + info.alone_s if info.alone_s > 0.0 else start
        fl.remaining = 0.0
        m.free[call.dim] = fl.end_s
        self.comm.stats["calls"] += 1
        return fl, row

    def _account(self, m: Member, h: tuple[Flight, list], t0: float, mb: int, c: int) -> None:
        """The compute stream of ``m`` waited from ``t0`` until now for flight ``h``: the part
        spent waiting for other ranks to reach it (after ``m`` had reached it) is *sync*, the
        rest (its stream busy, the transfer) is its exposed time."""
        fl, row = h
        now = self.env.now
        a = max(t0, row[4])
        sync = max(0.0, min(now, fl.start_s) - a)
        row[3] += (now - t0) - sync
        rec = self.rec
        if sync > 0:
            rec.wait(m.idx, 2, fl, mb, c, t0, a)
            rec.wait(m.idx, 1, fl, mb, c, a, a + sync)
            rec.wait(m.idx, 2, fl, mb, c, a + sync, now)
        else:
            rec.wait(m.idx, 2, fl, mb, c, t0, now)

    def _issue(self, m: Member, ins: CallStep, kind: str, vs: int, mb: int, c: int) -> tuple[Flight, list]:
        call = ins.call
        meta = self.meta[id(call)]
        if self.full:
            row = int(meta.rows[m.rank])
            need = 1 if meta.send else call.group_size
            skey: tuple = (meta.sync, mb, row)
        else:
            row, need, skey = -1, meta.issuers, (meta.sync, mb)
        rv = self.rv.get(skey) if need > 1 else None
        if rv is None:
            fl = Flight(meta.info, call, m.stage, mb, c, row)
            if self.full:  # the groups of one call instance share one rate (one costing)
                fl.unit = (meta.sync, mb)
            if ins.tail_send:
                nxt = vs + 1 if kind == "F" else vs - 1
                dst = int(call.groups[row, 1]) if self.full else None
                fl.callbacks.append(lambda _f, k=(kind, nxt, mb, dst): self._dep(k).succeed())
            self.rec.flight(fl)
            rv = [need, 0, fl, []]
            if need > 1:
                self.rv[skey] = rv
                self.shared.add(id(fl))
        fl = rv[2]
        row = self.rec.comm(m.idx, fl, self.env.now)
        stream = m.streams[call.dim]
        if stream.busy:
            stream.queue.append(lambda: self._arrive(rv, skey, stream, row))
        else:
            stream.busy = True
            self._arrive(rv, skey, stream, row)
        return fl, row

    def _arrive(self, rv: list, skey: tuple, stream: Stream, row: list) -> None:
        row[4] = self.env.now  # this rank reached the call (its stream is free)
        if rv[0] == 1:  # the common case: nobody else to wait for
            fl = rv[2]
            fl.callbacks.append(stream.release)
            self.comm.start(fl)
            return
        rv[3].append(stream)
        rv[1] += 1
        if rv[1] < rv[0]:
            return
        del self.rv[skey]
        fl, holders = rv[2], rv[3]
        fl.callbacks.append(lambda _f: [s.release() for s in holders])
        self.comm.start(fl)

    def _trailing(self, m: Member) -> None:
        """Calls the optimizer left in flight overlap the next iteration's first forward: they
        extend the iteration only by what they outlast it."""
        if not m.trailing:
            return
        fl, row = max(m.trailing, key=lambda h: h[0].end_s)
        st = self.plan.stages[m.stage]
        lead = (m.first_start or 0.0) + st.chunks[0].forward_s * m.factor
        excess = fl.end_s - (m.end + lead)
        if excess > 0:
            row[3] += excess
            self.rec.wait(m.idx, 2, fl, -1, -1, m.end, m.end + excess)
            m.end += excess
