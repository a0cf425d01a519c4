"""Step lists of a plan turned into replay programs: compute segments and collective calls.

What is modelled: a plan's step list (one chunk's forward or backward for one micro-batch, or
a stage's optimizer list) as the sequence of things a rank's compute stream does. A
*segment* is a maximal run of compute ops that nothing can interleave with: it starts at a
compute op (the first after a collective call, or one that waits for an overlappable call
named in its ``after``) and ends before the next collective call or the next op with an
``after``. Ops inside a segment run back to back on the compute stream, so the replay
advances the clock once per segment (one SimPy timeout) and every op keeps its own record,
with start and end derived from the segment start and the cumulative durations. This is
exact: a compute stream is serial (a CUDA stream runs its kernels in order), and within a
segment no op waits for anything but its predecessor.

Why: event count, not fidelity, bounds the replay of a 10^4-10^5 accelerator job (docs/architecture.md
decision 7: one event per operation, never per chunk or packet). A layer's dozen kernels
between two collectives are one segment: the Megatron 1T model (512 micro-batches on 64
stages) replays in about a million events instead of five.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from oassim.workload.steps import CollectiveCall, ComputeOp, Step

__all__ = ["SEG", "CALL", "Segment", "CallStep", "Program", "OpTable", "ProgramBuilder", "short_name"]

SEG = 0
CALL = 1


def short_name(where: str) -> str:
    """Last component of a ``where`` path (``"s0/c0/L3/fwd/attn_out_all_reduce"`` ->
    ``"attn_out_all_reduce"``)."""
    return where.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Segment:
    """Compute ops ``first .. first + count - 1`` of the :class:`OpTable`, run back to back.

    Attributes
    ----------
    seg_id : int
        Index into the op table's segment arrays.
    duration_s : float
        Sum of the ops' durations, s (before any straggler factor).
    after : tuple of str
        ``where`` of the overlappable calls the first op waits for.
    """

    seg_id: int
    duration_s: float
    after: tuple[str, ...]
    kind: int = SEG


@dataclass(frozen=True, eq=False)
class CallStep:
    """One collective call of a program.

    Attributes
    ----------
    call : CollectiveCall
    tail_send : bool
        The trailing pipeline ``send_recv`` of a forward or backward list: its completion
        releases the next virtual stage's step (replay contract of ``oassim.workload.plan``).
    """

    call: CollectiveCall
    tail_send: bool
    kind: int = CALL


@dataclass(frozen=True, eq=False)
class Program:
    """A step list as replay instructions.

    Attributes
    ----------
    steps : tuple of (Segment | CallStep)
    optimizer : bool
        The stage's optimizer list (its overlappable calls trail into the next iteration).
    """

    steps: tuple[Segment | CallStep, ...]
    optimizer: bool


@dataclass(frozen=True)
class OpTable:
    """Every compute op of every program, as arrays (for expanding segment records).

    Attributes
    ----------
    name, kind : ndarray of int32, shape (n_ops,)
        Codes into ``names`` and ``kinds``.
    layer : ndarray of int32, shape (n_ops,)
    duration_s, offset_s : ndarray of float64, shape (n_ops,)
        Duration of each op and its start offset from its segment's start, s.
    seg_first, seg_count : ndarray of int64, shape (n_segments,)
        First op and op count of each segment.
    names, kinds : tuple of str
    """

    name: np.ndarray
    kind: np.ndarray
    layer: np.ndarray
    duration_s: np.ndarray
    offset_s: np.ndarray
    seg_first: np.ndarray
    seg_count: np.ndarray
    names: tuple[str, ...]
    kinds: tuple[str, ...]


class ProgramBuilder:
    """Compiles step lists into :class:`Program` objects sharing one :class:`OpTable`.

    The same list object (a chunk's ``backward`` that is also its ``backward_last``) is
    compiled once.
    """

    def __init__(self) -> None:
        self._names: dict[str, int] = {}
        self._kinds: dict[str, int] = {}
        self._ops: list[tuple[int, int, int, float, float]] = []
        self._segs: list[tuple[int, int]] = []
        self._cache: dict[int, tuple[Any, Program]] = {}

    def compile(self, steps: tuple[Step, ...], optimizer: bool = False) -> Program:
        """The program of ``steps`` (memoised by list identity)."""
        hit = self._cache.get(id(steps))
        if hit is not None and hit[0] is steps:
            return hit[1]
        out: list[Segment | CallStep] = []
        cur_first = -1
        cur_dur = 0.0
        cur_after: tuple[str, ...] = ()

        def close() -> None:
            nonlocal cur_first
            if cur_first >= 0:
                self._segs.append((cur_first, len(self._ops) - cur_first))
                out.append(Segment(len(self._segs) - 1, cur_dur, cur_after))
                cur_first = -1

        for i, x in enumerate(steps):
            if isinstance(x, ComputeOp):
                if cur_first < 0 or x.after:
                    close()
                    cur_first, cur_dur, cur_after = len(self._ops), 0.0, tuple(x.after)
                name = self._names.setdefault(x.name, len(self._names))
                kind = self._kinds.setdefault(x.kind, len(self._kinds))
                self._ops.append((name, kind, x.layer, float(x.duration_s), cur_dur))
                cur_dur += float(x.duration_s)
            elif isinstance(x, CollectiveCall):
                close()
                tail = x.dim == "pp" and x.op == "send_recv" and i == len(steps) - 1 and not optimizer
                out.append(CallStep(x, tail))
            else:  # pragma: no cover - plans hold only these two kinds
                raise TypeError(f"unknown step {type(x).__name__}")
        close()
        prog = Program(tuple(out), optimizer)
        self._cache[id(steps)] = (steps, prog)
        return prog

    def table(self) -> OpTable:
        """The op table of everything compiled so far."""
        ops = np.array(self._ops, dtype=np.float64).reshape(-1, 5)
        segs = np.array(self._segs, dtype=np.int64).reshape(-1, 2)
        return OpTable(
            name=ops[:, 0].astype(np.int32), kind=ops[:, 1].astype(np.int32), layer=ops[:, 2].astype(np.int32),
            duration_s=ops[:, 3].copy(), offset_s=ops[:, 4].copy(),
            seg_first=segs[:, 0].copy(), seg_count=segs[:, 1].copy(),
            names=tuple(self._names), kinds=tuple(self._kinds),
        )
