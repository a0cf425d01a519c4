"""Building blocks of the per-layer op lists: shapes, units and the emitter that turns them
into steps (:mod:`oassim.workload.ops` builds a layer from them, :mod:`oassim.workload.attention`
its attention).

A *unit* is one forward op (or collective) together with the rule for its backward; an
:class:`Emitter` appends the steps of one layer and pass, with the ``where`` names, the
``after`` dependencies on overlappable calls and the TP collectives of Megatron's f/g
operators (:func:`tp_comm`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from oassim.workload.model import ModelSpec
from oassim.workload.steps import CollectiveCall, ComputeOp, Step

__all__ = ["LayerContext", "Unit", "Emitter", "tp_comm", "gemm_bytes", "causal_fraction", "B", "FLASH_BWD"]


def causal_fraction(s: int) -> float:
    """Fraction of the s x s score blocks a causal flash kernel computes: the lower triangle
    plus the diagonal blocks, ``1/2 + 1/(2 * blocks)`` with 128-token blocks (Dao 2023 §3.1.1)."""
    return 0.5 + 64.0 / max(s, 128)


FLASH_BWD = 2.5  # FlashAttention backward executes 2.5x the forward FLOPs (Dao 2023 §4.1)
B = 2  # bytes per bf16 element


@dataclass(frozen=True)
class LayerContext:
    """Shapes, groups and switches shared by every layer of one model chunk.

    Attributes
    ----------
    model : ModelSpec
    b, s : int
        Micro-batch (sequences) and sequence length (tokens).
    tp, cp, ep : int
        Parallel sizes; ``sp`` sequence parallelism in effect.
    groups : mapping of str to ndarray
        This stage's concurrent groups: ``tp``, ``ep`` (shape (n_groups, size)) and
        ``cp_ring`` (ring-attention send/recv pairs, shape (n, 2)).
    attention_kernel : {"fused", "unfused"}
    recompute : {"none", "selective", "full"}
    recompute_modules : frozenset of str
        Modules a selective recomputation re-runs (``core_attn``, ``layernorm``, ...).
    dispatcher, ep_domains, moe_max_nodes, dispatch_fp8
        MoE token dispatch: ``alltoall`` or ``deepep``, scale-up domains per EP group,
        node-limited routing, FP8 dispatch (:mod:`oassim.workload.dispatch`).
    tp_overlap, tp_bwd_overlap, ep_overlap : bool
        Whether forward TP collectives, the backward input re-gather / gradient reduction,
        and EP all-to-alls are overlappable.
    prefix : str
        ``where`` prefix of this chunk, e.g. ``"c0"``.
    """

    model: ModelSpec
    b: int
    s: int
    tp: int
    cp: int
    ep: int
    sp: bool
    groups: Mapping[str, np.ndarray]
    attention_kernel: str
    recompute: str
    tp_overlap: bool
    tp_bwd_overlap: bool
    ep_overlap: bool
    prefix: str
    recompute_modules: frozenset[str] = frozenset({"core_attn"})
    dispatcher: str = "alltoall"
    ep_domains: int = 1
    moe_max_nodes: int | None = None
    dispatch_fp8: bool = False

    @property
    def T(self) -> int:
        """Tokens of this rank's sequence shard entering a tensor-parallel GEMM, ``b s / cp``."""
        return self.b * self.s // self.cp

    @property
    def T_sp(self) -> int:
        """Tokens per rank outside the tensor-parallel region (``T / tp`` with SP)."""
        return self.T // self.tp if self.sp else self.T


# A "unit" is one forward op (or collective) together with the rule for its backward. Units
# are built once per layer; forward and backward lists are read off them.

@dataclass(frozen=True)
class Unit:
    kind: str  # gemm | ew | attn | tp_enter | tp_exit | ep
    name: str
    dims: tuple[int, int, int] = (0, 0, 0)  # gemm (m, n, k)
    instances: int = 1
    fwd_bytes: float = 0.0
    bwd_bytes: float = 0.0
    size: float = 0.0  # collective bytes
    regather: bool = False  # gemm input is sequence-parallel: re-gather it for wgrad
    blocking: bool = False  # backward collective feeds another collective: never async
    op_kind: str = "elementwise"
    module: str = ""  # recompute_modules name the op belongs to
    fwd_after_ep: bool = False  # forward op consumes the last EP all-to-all (dispatch/combine)
    bwd_after_ep: bool = False  # its backward consumes the last backward EP all-to-all
    group: str = "ep"  # EP all-to-all: its group (ep, ep_intra, ep_inter)
    bwd_size: float = -1.0  # EP all-to-all: backward bytes (default: ``size``)


def gemm_bytes(m: int, n: int, k: int) -> float:
    return float(m * k + k * n + m * n) * B


class Emitter:
    """Turns units into steps for one layer, one pass."""

    def __init__(self, ctx: LayerContext, layer: int, tag: str, recompute: bool = False):
        self.ctx, self.layer, self.tag, self.recompute = ctx, layer, tag, recompute
        self.out: list[Step] = []
        self.pending: list[str] = []  # async calls the next compute op must wait for
        self.last_ep: str | None = None  # the latest overlappable EP all-to-all

    def ep_wait(self, needed: bool) -> tuple[str, ...]:
        """``after`` of an op that consumes the latest overlapped EP all-to-all."""
        if needed and self.last_ep is not None:
            w, self.last_ep = self.last_ep, None
            return (w,)
        return ()

    def where(self, name: str) -> str:
        lay = f"L{self.layer}" if self.layer >= 0 else "E"
        return f"{self.ctx.prefix}/{lay}/{self.tag}/{name}"

    def op(self, name: str, kind: str, flops: float, exec_flops: float, nbytes: float,
           gemm: tuple[int, int, int] | None = None, instances: int = 1,
           after: tuple[str, ...] = ()) -> None:
        waits = tuple(self.pending) + after
        self.pending = []
        self.out.append(ComputeOp(name=name, kind=kind, layer=self.layer, where=self.where(name),
                                  flops=flops, exec_flops=exec_flops, bytes=nbytes, gemm=gemm,
                                  instances=instances, recompute=self.recompute, after=waits))

    def call(self, dim: str, op: str, size: float, group: str, name: str,
             overlappable: bool, wait_next: bool = True) -> str | None:
        groups = self.ctx.groups.get(group)
        if groups is None or groups.shape[1] < 2 or size <= 0:
            return None
        c = CollectiveCall(dim=dim, op=op, size_bytes=float(size), groups=groups,  # type: ignore[arg-type]
                           overlappable=overlappable, where=self.where(name))
        self.out.append(c)
        if overlappable and wait_next:
            self.pending.append(c.where)
        return c.where


def tp_comm(e: Emitter, u: Unit, backward: bool) -> None:
    """The conjugate TP collectives: enter = f/g of Megatron, exit = its dual."""
    ctx = e.ctx
    if ctx.tp == 1:
        return
    enter = u.kind == "tp_enter"
    if ctx.sp:
        op = ("reduce_scatter" if backward else "all_gather") if enter else \
             ("all_gather" if backward else "reduce_scatter")
    else:
        if enter != backward:  # forward of enter / backward of exit: identity
            return
        op = "all_reduce"
    ovl = ctx.tp_bwd_overlap if (backward and enter) else ctx.tp_overlap
    ovl = ovl and not (backward and u.blocking)
    if e.last_ep is not None and (u.bwd_after_ep if backward else u.fwd_after_ep):
        # the collective consumes an overlapped all-to-all: the stream waits for it first
        e.op(f"{u.name}_ep_wait", "elementwise", 0.0, 0.0, 0.0, after=e.ep_wait(True))
    # A forward collective overlapped (TE userbuffers) is pipelined with its GEMM: no wait.
    e.call("tp", op, u.size, "tp", f"{u.name}_{op}", ovl, wait_next=backward)
