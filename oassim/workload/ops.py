"""The operations of one transformer layer (and of the embedding and logits), per micro-batch.

What is modelled: every kernel of a Megatron-style layer on one rank, forward and backward,
with its FLOPs, HBM bytes and GEMM shape, and the collectives between them:

- tensor parallelism (Shoeybi et al. 2019, Fig. 3): without sequence parallelism the forward
  all-reduces after the attention output and FFN-down projections ("g") and the backward
  all-reduces the input gradient ("f"); with sequence parallelism (Korthikanti et al. 2022
  §4.2.2) these become all-gather / reduce-scatter pairs, and the backward re-gathers each
  sharded GEMM input for its weight gradient (Megatron's
  ``LinearWithGradAccumulationAndAsyncCommunication``);
- context parallelism (ring attention, Liu et al. 2023; Megatron-Core/TE): ``cp`` attention
  steps, each overlapping the send/recv of the next key/value block;
- expert parallelism: token dispatch and combine all-to-all around the expert GEMMs
  (Megatron-Core ``MoEAlltoAllTokenDispatcher``; expert-TP = tp with a TP all-gather /
  reduce-scatter of the routed tokens); tokens are assumed evenly spread over the experts
  (auxiliary-loss balancing); with ``ep_comm_overlap`` the all-to-alls run on the EP stream
  while the shared experts compute (forward: during the dispatch; backward: during the
  dispatch gradient), and the routed experts wait for their dispatch, the unpermute for its
  combine (data dependencies); cross-micro-batch overlap (DeepSeek-V3's DualPipe) is not
  modelled;
- attention as one fused flash-style kernel (Dao 2022/2023: HBM traffic O(s h), scores never
  stored; causal masking skips half the blocks; the backward executes 2.5x the forward
  FLOPs) or, for frameworks of 2021, the unfused sequence QK^T batched GEMM -> fused
  scale-mask-softmax -> dropout -> PV batched GEMM that moves the s x s scores through HBM;
- recomputation: ``full`` re-runs each layer's forward (its collectives included) right
  before its backward; ``selective`` re-runs the modules of ``recompute_modules``
  (Megatron-Core's names): ``core_attn`` the core attention (Megatron's
  ``_checkpointed_attention_forward``, Korthikanti et al. 2022 §5), and ``layernorm``,
  ``mla_up_proj``, ``mlp``, ``moe_act``, ``shared_experts`` each op of the module right
  before that op's backward (the same work as re-running the module as a block).

Why this granularity: the compute model costs each op by a roofline with shape-dependent
GEMM efficiency, and the scheduler needs the collectives in their true position to see what
overlaps. Backward GEMMs are split into the data-gradient and weight-gradient GEMMs (2 m n k
FLOPs each), so that the collectives Megatron overlaps with the weight gradient can be.

Bytes: activations and weights in 2-byte bf16; dropout masks 1 byte; cross-entropy in fp32.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Mapping

import numpy as np

from oassim.workload.model import ModelSpec
from oassim.workload.steps import CollectiveCall, ComputeOp, Step

__all__ = ["LayerContext", "layer_forward", "layer_backward", "embedding_steps", "logits_steps",
           "causal_fraction"]


def causal_fraction(s: int) -> float:
    """Fraction of the s x s score blocks a causal flash kernel computes: the lower triangle
    plus the diagonal blocks, ``1/2 + 1/(2 * blocks)`` with 128-token blocks (Dao 2023 §3.1.1)."""
    return 0.5 + 64.0 / max(s, 128)


_FLASH_BWD = 2.5  # FlashAttention backward executes 2.5x the forward FLOPs (Dao 2023 §4.1)
_B = 2  # bytes per bf16 element


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
class _Unit:
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


def _gemm_bytes(m: int, n: int, k: int) -> float:
    return float(m * k + k * n + m * n) * _B


class _Emitter:
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


def _tp_comm(e: _Emitter, u: _Unit, backward: bool) -> None:
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


def _attention_fwd(e: _Emitter) -> None:
    ctx, m = e.ctx, e.ctx.model
    hq = m.heads * m.d_head // ctx.tp
    hkv = m.n_kv_heads * m.d_head // ctx.tp
    sq = ctx.s // ctx.cp
    nominal = 4.0 * ctx.b * sq * ctx.s * hq  # QK^T and PV, full s x s (docs/architecture.md convention)
    if ctx.attention_kernel == "fused":
        io = (ctx.b * sq * (2 * hq) + ctx.b * ctx.s * 2 * hkv) * _B + ctx.b * sq * hq / m.d_head * 4
        exec_f = nominal * causal_fraction(ctx.s)
        if ctx.cp == 1:
            e.op("attn", "attention", nominal, exec_f, io)
            return
        kv_block = ctx.b * sq * 2 * hkv * _B
        for j in range(ctx.cp):  # ring: compute on block j while block j+1 travels
            if j < ctx.cp - 1:
                e.call("cp", "send_recv", kv_block, "cp_ring", f"attn_kv{j}", True, wait_next=False)
            prev = (e.where(f"attn_kv{j - 1}"),) if j > 0 else ()
            e.op(f"attn{j}", "attention", nominal / ctx.cp, exec_f / ctx.cp, io / ctx.cp, after=prev)
        return
    n_sc = ctx.b * (m.heads // ctx.tp) * sq * ctx.s
    inst = ctx.b * m.heads // ctx.tp
    d = m.d_head
    e.op("attn_scores", "gemm", 2.0 * n_sc * d, 2.0 * n_sc * d,
         (2 * ctx.b * sq * hq + n_sc) * _B, (sq, ctx.s, d), inst)
    e.op("attn_softmax", "elementwise", 0.0, 0.0, 2 * n_sc * _B)
    if m.has_dropout:
        e.op("attn_dropout", "elementwise", 0.0, 0.0, n_sc * (2 * _B + 1))
    e.op("attn_context", "gemm", 2.0 * n_sc * d, 2.0 * n_sc * d,
         (n_sc + 2 * ctx.b * sq * hq) * _B, (sq, d, ctx.s), inst)


def _attention_bwd(e: _Emitter) -> None:
    ctx, m = e.ctx, e.ctx.model
    hq = m.heads * m.d_head // ctx.tp
    hkv = m.n_kv_heads * m.d_head // ctx.tp
    sq = ctx.s // ctx.cp
    nominal = 8.0 * ctx.b * sq * ctx.s * hq
    if ctx.attention_kernel == "fused":
        io = 2.0 * ((ctx.b * sq * 3 * hq + ctx.b * ctx.s * 2 * hkv) * _B)
        exec_f = 0.5 * nominal * _FLASH_BWD * causal_fraction(ctx.s)
        if ctx.cp == 1:
            e.op("attn_bwd", "attention", nominal, exec_f, io)
            return
        block = 2 * ctx.b * sq * 2 * hkv * _B  # K, V and their gradients travel the ring
        for j in range(ctx.cp):
            if j < ctx.cp - 1:
                e.call("cp", "send_recv", block, "cp_ring", f"attn_dkv{j}", True, wait_next=False)
            prev = (e.where(f"attn_dkv{j - 1}"),) if j > 0 else ()
            e.op(f"attn_bwd{j}", "attention", nominal / ctx.cp, exec_f / ctx.cp, io / ctx.cp, after=prev)
        return
    n_sc = ctx.b * (m.heads // ctx.tp) * sq * ctx.s
    inst = ctx.b * m.heads // ctx.tp
    d = m.d_head
    f2 = 2.0 * n_sc * d
    e.op("attn_context_dgrad", "gemm", f2, f2, (n_sc + 2 * ctx.b * sq * hq) * _B, (sq, ctx.s, d), inst)
    e.op("attn_context_wgrad", "gemm", f2, f2, (n_sc + 2 * ctx.b * sq * hq) * _B, (ctx.s, d, sq), inst)
    if m.has_dropout:
        e.op("attn_dropout_bwd", "elementwise", 0.0, 0.0, n_sc * (2 * _B + 1))
    e.op("attn_softmax_bwd", "elementwise", 0.0, 0.0, 3 * n_sc * _B)
    e.op("attn_scores_dgrad", "gemm", f2, f2, (n_sc + 2 * ctx.b * sq * hq) * _B, (sq, d, ctx.s), inst)
    e.op("attn_scores_wgrad", "gemm", f2, f2, (n_sc + 2 * ctx.b * sq * hq) * _B, (ctx.s, d, sq), inst)


def _ffn_units(ctx: LayerContext, name: str, tokens: int, width: int, instances: int = 1,
               regather: bool = True) -> list[_Unit]:
    """One FFN (or ``instances`` experts) on ``tokens`` rows: up GEMM, activation, down GEMM."""
    m = ctx.model
    w = width // ctx.tp
    up_n = w * (1 if m.activation == "gelu" else 2)
    act_fwd = (2 * w if m.activation == "gelu" else 3 * w) * tokens * _B
    act_bwd = (3 * w if m.activation == "gelu" else 5 * w) * tokens * _B
    mt = tokens // instances
    mod = {"ffn": "mlp", "shared": "shared_experts"}.get(name, "")
    return [
        _Unit("gemm", f"{name}_up", (mt, up_n, m.hidden), instances, regather=regather and ctx.sp, module=mod),
        _Unit("ew", f"{name}_act", fwd_bytes=act_fwd, bwd_bytes=act_bwd, module=mod or "moe_act"),
        _Unit("gemm", f"{name}_down", (mt, m.hidden, w), instances, module=mod),
    ]


def _layer_units(ctx: LayerContext, layer: int) -> list[_Unit]:
    m, T, Tsp, h = ctx.model, ctx.T, ctx.T_sp, ctx.model.hidden
    hq = m.heads * m.d_head // ctx.tp
    hkv = m.n_kv_heads * m.d_head // ctx.tp
    act = T * h * _B
    norm = _Unit("ew", "", fwd_bytes=2 * Tsp * h * _B, bwd_bytes=3 * Tsp * h * _B, op_kind="norm",
                 module="layernorm")
    resid_f = Tsp * h * (3 * _B + (1 if m.has_dropout else 0))
    resid_b = Tsp * h * (2 * _B + 1) if m.has_dropout else 0.0
    units = [
        _Unit(**{**norm.__dict__, "name": "ln1"}),
        _Unit("tp_enter", "attn_in", size=act),
        _Unit("gemm", "qkv", (T, hq + 2 * hkv, h), regather=ctx.sp),
    ]
    if m.position_kind == "rope":
        rope = 2 * T * (hq + hkv) * _B
        units.append(_Unit("ew", "rope", fwd_bytes=rope, bwd_bytes=rope))
    units.append(_Unit("attn", "attn"))
    units += [
        _Unit("gemm", "attn_out", (T, h, hq)),
        _Unit("tp_exit", "attn_out", size=act),
        _Unit("ew", "attn_residual", fwd_bytes=resid_f, bwd_bytes=resid_b),
        _Unit(**{**norm.__dict__, "name": "ln2"}),
    ]
    if not m.is_moe_layer(layer):
        units += [_Unit("tp_enter", "mlp_in", size=act)]
        units += _ffn_units(ctx, "ffn", T, m.ffn_hidden)
        units += [_Unit("tp_exit", "mlp_out", size=act)]
    else:
        units += _moe_units(ctx)
    units.append(_Unit("ew", "mlp_residual", fwd_bytes=resid_f, bwd_bytes=resid_b))
    return units


def _moe_units(ctx: LayerContext) -> list[_Unit]:
    """Router, dispatch, routed experts, combine (and the shared experts) of one MoE layer.

    The shared experts come right after the dispatch is issued, so that with
    ``ep_overlap`` they run while the tokens travel (Megatron-Core
    ``moe_shared_expert_overlap``); the routed experts wait for the dispatch, the unpermute
    for the combine. The backward (the list reversed, shared experts moved before the
    dispatch) runs the shared experts' backward while the dispatch gradient travels.
    """
    m, T, Tsp, h = ctx.model, ctx.T, ctx.T_sp, ctx.model.hidden
    k, E = m.top_k, m.experts
    routed = Tsp * k * h * _B
    act = T * h * _B
    head = [
        _Unit("gemm", "router", (Tsp, E, h)),
        _Unit("ew", "router_topk", fwd_bytes=3 * Tsp * E * 4, bwd_bytes=3 * Tsp * E * 4),
        _Unit("ew", "permute", fwd_bytes=Tsp * h * _B + routed, bwd_bytes=Tsp * h * _B + routed,
              bwd_after_ep=True),
        _Unit("ep", "dispatch", size=routed),
    ]
    shared: list[_Unit] = []
    if m.shared_experts:
        shared = [_Unit("tp_enter", "shared_in", size=act)]
        shared += _ffn_units(ctx, "shared", T, m.shared_experts * m.expert_ffn)
        shared += [_Unit("tp_exit", "shared_out", size=act)]
    ex = _ffn_units(ctx, "expert", T * k, m.expert_ffn, instances=E // ctx.ep, regather=False)
    ex[0] = replace(ex[0], fwd_after_ep=True)
    ex[-1] = replace(ex[-1], bwd_after_ep=True)
    experts = [
        # its backward reduce-scatter feeds the dispatch all-to-all: blocking
        _Unit("tp_enter", "experts_in", size=T * k * h * _B, blocking=True, fwd_after_ep=True),
        *ex,
        _Unit("tp_exit", "experts_out", size=T * k * h * _B, bwd_after_ep=True),
        _Unit("ep", "combine", size=routed),
        _Unit("ew", "unpermute", fwd_bytes=Tsp * h * _B + routed, bwd_bytes=Tsp * h * _B + routed,
              fwd_after_ep=True),
    ]
    return head + shared + experts


def _backward_order(units: list[_Unit]) -> list[_Unit]:
    """Units in the order their backward runs reversed: a MoE layer's shared experts move
    before its dispatch, so their backward follows the dispatch gradient's all-to-all."""
    names = [u.name for u in units]
    if "dispatch" not in names or "shared_in" not in names:
        return units
    i, j, k = names.index("dispatch"), names.index("shared_in"), names.index("shared_out")
    return units[:i] + units[j:k + 1] + [units[i]] + units[k + 1:]


def _emit_fwd(e: _Emitter, units: list[_Unit]) -> None:
    for u in units:
        if u.kind == "gemm":
            mm, n, k = u.dims
            f = 2.0 * mm * n * k * u.instances
            e.op(u.name, "gemm", f, f, _gemm_bytes(mm, n, k) * u.instances, u.dims, u.instances,
                 after=e.ep_wait(u.fwd_after_ep))
        elif u.kind == "ew":
            if u.fwd_bytes:
                e.op(u.name, u.op_kind, 0.0, 0.0, u.fwd_bytes, after=e.ep_wait(u.fwd_after_ep))
        elif u.kind == "attn":
            _attention_fwd(e)
        elif u.kind in ("tp_enter", "tp_exit"):
            _tp_comm(e, u, backward=False)
        elif u.kind == "ep" and e.ctx.ep > 1:
            w = e.call("ep", "all_to_all", u.size, "ep", u.name, e.ctx.ep_overlap, wait_next=False)
            e.last_ep = w if e.ctx.ep_overlap else None


def _emit_bwd(e: _Emitter, units: list[_Unit], recompute_attention: bool) -> None:
    ctx = e.ctx
    rev = list(reversed(_backward_order(units)))
    i = 0
    while i < len(rev):
        u = rev[i]
        if u.module and u.module in ctx.recompute_modules and u.kind in ("gemm", "ew"):
            # selective recomputation: the module's forward op re-runs right before its backward
            rec = _Emitter(ctx, e.layer, "re", recompute=True)
            _emit_fwd(rec, [replace(u, fwd_after_ep=False)])
            e.out += rec.out
        if u.kind == "gemm":
            mm, n, k = u.dims
            f = 2.0 * mm * n * k * u.instances
            nb = _gemm_bytes(mm, n, k) * u.instances
            gather = None
            if u.regather and ctx.tp > 1:
                gather = e.call("tp", "all_gather", mm * k * _B * u.instances, "tp",
                                f"{u.name}_input_all_gather", ctx.tp_bwd_overlap, wait_next=False)
            e.op(f"{u.name}_dgrad", "gemm", f, f, nb, (mm, k, n), u.instances,
                 after=e.ep_wait(u.bwd_after_ep))
            # The conjugate collective of the input gradient overlaps the weight gradient.
            if i + 1 < len(rev) and rev[i + 1].kind == "tp_enter":
                _tp_comm(e, rev[i + 1], backward=True)
                i += 1
            pending, e.pending = e.pending, []
            e.op(f"{u.name}_wgrad", "gemm", f, f, nb, (k, n, mm), u.instances,
                 after=(gather,) if gather and ctx.tp_bwd_overlap else ())
            e.pending = pending
        elif u.kind == "ew":
            if u.bwd_bytes:
                e.op(f"{u.name}_bwd", u.op_kind, 0.0, 0.0, u.bwd_bytes, after=e.ep_wait(u.bwd_after_ep))
        elif u.kind == "attn":
            if recompute_attention:
                rec = _Emitter(ctx, e.layer, "re", recompute=True)
                _attention_fwd(rec)
                e.out += rec.out
            _attention_bwd(e)
        elif u.kind in ("tp_enter", "tp_exit"):
            _tp_comm(e, u, backward=True)
        elif u.kind == "ep" and ctx.ep > 1:
            w = e.call("ep", "all_to_all", u.size, "ep", f"{u.name}_bwd", ctx.ep_overlap, wait_next=False)
            e.last_ep = w if ctx.ep_overlap else None
        i += 1


def layer_forward(ctx: LayerContext, layer: int) -> list[Step]:
    """Forward steps of global layer ``layer`` for one micro-batch."""
    e = _Emitter(ctx, layer, "fwd")
    _emit_fwd(e, _layer_units(ctx, layer))
    return e.out


def layer_backward(ctx: LayerContext, layer: int) -> list[Step]:
    """Backward steps of ``layer`` for one micro-batch, recomputation first when enabled."""
    units = _layer_units(ctx, layer)
    out: list[Step] = []
    if ctx.recompute == "full":
        r = _Emitter(ctx, layer, "re", recompute=True)
        _emit_fwd(r, units)
        out += r.out
    e = _Emitter(ctx, layer, "bwd")
    _emit_bwd(e, units, ctx.recompute == "selective" and "core_attn" in ctx.recompute_modules)
    return out + e.out


def embedding_steps(ctx: LayerContext, backward: bool) -> list[Step]:
    """Word (+ learned position) embedding: vocab-parallel lookup, then its TP reduction."""
    m, T, h = ctx.model, ctx.T, ctx.model.hidden
    e = _Emitter(ctx, -1, "bwd" if backward else "fwd")
    u = _Unit("tp_exit", "embedding", size=T * h * _B)
    pos = 2 if m.position_kind == "learned" else 0
    if not backward:
        e.op("embedding", "embedding", 0.0, 0.0, T * h * _B * (2 + pos) + ctx.T_sp * h * (1 if m.has_dropout else 0))
        _tp_comm(e, u, backward=False)
    else:
        _tp_comm(e, u, backward=True)
        e.op("embedding_bwd", "embedding", 0.0, 0.0, 3 * T * h * _B)
    return e.out


def logits_steps(ctx: LayerContext, backward: bool) -> list[Step]:
    """Final norm, output projection (vocab-parallel) and fused cross-entropy."""
    m, T, h = ctx.model, ctx.T, ctx.model.hidden
    v = m.vocab // ctx.tp if m.vocab % ctx.tp == 0 else -(-m.vocab // ctx.tp)
    units = [
        _Unit("ew", "final_norm", fwd_bytes=2 * ctx.T_sp * h * _B, bwd_bytes=3 * ctx.T_sp * h * _B, op_kind="norm"),
        _Unit("tp_enter", "logits_in", size=T * h * _B),
        _Unit("gemm", "logits", (T, v, h), regather=ctx.sp),
    ]
    e = _Emitter(ctx, -1, "bwd" if backward else "fwd")
    if not backward:
        _emit_fwd(e, units)
        # fp32 logits: cast, max, exp-sum, loss (Megatron vocab_parallel_cross_entropy)
        e.op("cross_entropy", "elementwise", 0.0, 0.0, 16.0 * T * v)
        e.call("tp", "all_reduce", 3 * 4 * T, "tp", "cross_entropy_all_reduce", False)
    else:
        e.op("cross_entropy_bwd", "elementwise", 0.0, 0.0, 8.0 * T * v)
        _emit_bwd(e, units, False)
    return e.out
