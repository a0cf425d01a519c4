"""Quiet calls of a replay: calls whose flights no other flight can slow down.

What is modelled: nothing new. A quiet call's flight runs exactly as
:meth:`oassim.scheduler.comm.CommModel.start` would run it alone (it starts when its stream
is free and takes the engine's time alone, ``alone_s``), so the replay (:mod:`oassim.scheduler.replay`)
times it itself, without the contention model's bookkeeping and without an event per call; a
member waits for a quiet flight's end, known when it is issued, as it waits for a compute
segment's. ``tests/scheduler/test_quiet_calls.py`` holds the two to the same frames, row for row.

Which calls: a request is a *candidate* when one member alone issues it (no rendezvous with
another member), on one stream, never as the pipeline send that releases a neighbour, and
every request whose links meet its own is issued by that member alone, on the same stream
(the stream's FIFO order keeps the two apart in time) or, when both are blocking calls, on
any stream (the member's compute stream waits for each). A candidate is quiet when every
request on its stream is a candidate: then that stream's timeline is fixed by the member's
own issue times. Typical quiet calls: tensor-parallel collectives inside an NVLink domain
beside data- and pipeline-parallel traffic that leaves it through the NICs. Calls that meet
only the gradient reductions Megatron-Core overlaps with the last micro-batch's backward
(a data-parallel group sharing the node's NVLink) are quiet before that backward, the
member's *early phase*; the replay checks at the end of it that they are all over, and is run
again without them otherwise.

Why: representative-mode replays of sweep points issue about a thousand such calls each.
"""

from __future__ import annotations

from typing import Any, Callable

from oassim.scheduler.program import SEG

__all__ = ["quiet_calls", "check_early_phase", "EarlyQuietOverlap"]


def quiet_calls(progs: list, opt_progs: list, meta: dict[int, Any],
                neighbours: Callable[[int], frozenset[int]]) -> tuple[set[int], dict[int, tuple[int, str]]]:
    """Keys (``id`` of the call) into ``meta`` of the quiet calls of a representative replay,
    and those of the calls quiet while their member is in its *early phase*, each with its
    (stage, stream).

    The early phase of a member is its schedule before the first backward of the last
    micro-batch (its ``backward_last`` programs and the optimizer program are *late*). A
    request all of whose calls lie in late programs (the data-parallel gradient reductions
    of Megatron's overlapped backward, the optimizer's gathers) cannot be in flight before the
    member reaches its late phase, so a request that meets only such requests of its own
    member besides those the rule above allows is quiet in the early phase, provided every
    early request on its stream is too. The replay checks, when the member enters its late
    phase, that those quiet flights have all ended (:class:`EarlyQuietOverlap` otherwise).

    Parameters
    ----------
    progs, opt_progs : per stage, the (forward, backward, backward_last) programs of each chunk
        and the optimizer program (:class:`oassim.scheduler.program.Program`).
    meta : dict
        Per call id: ``info`` (its :class:`~oassim.scheduler.comm.CallInfo`) and ``issuers``
        (members that issue it together).
    neighbours : callable
        Request index -> indices of the requests whose links meet its own.
    """
    members: dict[int, set[int]] = {}  # request index -> stages issuing it
    dims: dict[int, set[str]] = {}
    alone: dict[int, bool] = {}  # every call of the request has a single issuer and no neighbour to release
    blocking: dict[int, bool] = {}
    late_only: dict[int, bool] = {}  # every call of the request is in a late program
    steps: list[tuple[int, Any, bool]] = []
    for s in range(len(progs)):
        programs = [(p, i == 2) for trip in progs[s] for i, p in enumerate(trip)] + [(opt_progs[s], True)]
        for prog, late in programs:
            for ins in prog.steps:
                if ins.kind == SEG:
                    continue
                call, cm = ins.call, meta[id(ins.call)]
                k = cm.info.index
                members.setdefault(k, set()).add(s)
                dims.setdefault(k, set()).add(call.dim)
                alone[k] = alone.get(k, True) and cm.issuers == 1 and not ins.tail_send
                blocking[k] = blocking.get(k, True) and not call.overlappable
                late_only[k] = late_only.get(k, True) and late
                steps.append((s, call, late))

    def allowed(k: int, j: int) -> bool:
        return members.get(j) == members[k] and (dims[j] == dims[k] or (blocking[j] and blocking[k]))

    def candidate(k: int, early: bool) -> bool:
        if not (alone[k] and len(members[k]) == 1 and len(dims[k]) == 1):
            return False
        return all(allowed(k, j) or (early and members.get(j) == members[k] and late_only[j])
                   for j in neighbours(k))

    cand = {k: candidate(k, False) for k in members}
    early = {k: ok or (not late_only[k] and candidate(k, True)) for k, ok in cand.items()}
    mixed = {(s, d) for k, ok in cand.items() if not ok for s in members[k] for d in dims[k]}
    mixed_early = {(s, d) for k, ok in early.items() if not ok and not late_only[k]
                   for s in members[k] for d in dims[k]}
    quiet: set[int] = set()
    quiet_early: dict[int, tuple[int, str]] = {}
    for s, call, late in steps:
        k = meta[id(call)].info.index
        if cand[k] and (s, call.dim) not in mixed:
            quiet.add(id(call))
        elif early[k] and not late and (s, call.dim) in mixed and (s, call.dim) not in mixed_early:
            quiet_early[id(call)] = (s, call.dim)
    return quiet, {key: sd for key, sd in quiet_early.items() if key not in quiet}


class EarlyQuietOverlap(RuntimeError):
    """A flight quiet in its member's early phase was still in flight when the member entered
    its late phase: the replay must be run again without early-phase quiet calls."""


def check_early_phase(stage: int, free: dict[str, float], dims: set[str], now: float) -> None:
    """A member of ``stage`` enters its late phase at ``now``: the streams ``dims`` of its
    early-phase quiet calls must be free by then (``free``: when each is); else
    :class:`EarlyQuietOverlap`."""
    for d in dims:
        if free.get(d, now) > now:
            raise EarlyQuietOverlap(f"stage {stage}: a {d} flight quiet in the early phase ends at "
                                    f"{free[d]:.9g} s, after the late phase began at {now:.9g} s")
