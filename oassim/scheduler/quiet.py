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
beside data- and pipeline-parallel traffic that leaves it through the NICs.

Why: representative-mode replays of sweep points issue about a thousand such calls each.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

from oassim.scheduler.program import SEG

__all__ = ["quiet_calls"]


def quiet_calls(progs: list, opt_progs: list, meta: dict[int, Any],
                neighbours: Callable[[int], frozenset[int]]) -> Iterator[int]:
    """Keys (``id`` of the call) into ``meta`` of the quiet calls of a representative replay.

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
    steps: list[tuple[int, Any]] = []
    for s in range(len(progs)):
        for prog in (*(p for trip in progs[s] for p in trip), opt_progs[s]):
            for ins in prog.steps:
                if ins.kind == SEG:
                    continue
                call, cm = ins.call, meta[id(ins.call)]
                k = cm.info.index
                members.setdefault(k, set()).add(s)
                dims.setdefault(k, set()).add(call.dim)
                alone[k] = alone.get(k, True) and cm.issuers == 1 and not ins.tail_send
                blocking[k] = blocking.get(k, True) and not call.overlappable
                steps.append((s, call))

    def candidate(k: int) -> bool:
        if not (alone[k] and len(members[k]) == 1 and len(dims[k]) == 1):
            return False
        return all(members.get(j) == members[k] and (dims[j] == dims[k] or (blocking[j] and blocking[k]))
                   for j in neighbours(k))

    cand = {k: candidate(k) for k in members}
    mixed = {(s, d) for k, ok in cand.items() if not ok for s in members[k] for d in dims[k]}
    for s, call in steps:
        if cand[meta[id(call)].info.index] and (s, call.dim) not in mixed:
            yield id(call)
