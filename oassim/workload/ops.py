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
- expert parallelism: token dispatch and combine all-to-alls around the expert GEMMs (one
  per direction for Megatron-Core's ``MoEAlltoAllTokenDispatcher``, two hops for a DeepEP
  style dispatch; bytes, FP8 dispatch and node-limited routing in
  :mod:`oassim.workload.dispatch`; expert-TP = tp with a TP all-gather / reduce-scatter of
  the routed tokens); tokens are assumed evenly spread over the experts
  (auxiliary-loss balancing); with ``ep_comm_overlap`` the all-to-alls run on the EP stream
  while the shared experts compute (forward: during the dispatch; backward: during the
  dispatch gradient), and the routed experts wait for their dispatch, the unpermute for its
  combine (data dependencies); cross-micro-batch overlap (DeepSeek-V3's DualPipe) is not
  modelled;
- attention (:mod:`oassim.workload.attention`: QKV or MLA projections) as one fused
  flash-style kernel (Dao 2022/2023: HBM traffic O(s h), scores never stored; causal
  masking skips half the blocks; the backward executes 2.5x the forward FLOPs) or, for
  frameworks of 2021, the unfused sequence QK^T batched GEMM -> fused scale-mask-softmax ->
  dropout -> PV batched GEMM that moves the s x s scores through HBM;
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

from dataclasses import replace

from oassim.workload.attention import attention_bwd, attention_fwd, projection_units
from oassim.workload.dispatch import dispatch_hops
from oassim.workload.emit import B, Emitter, LayerContext, Unit, causal_fraction, gemm_bytes, tp_comm
from oassim.workload.steps import ComputeOp, Step, copied

__all__ = ["LayerContext", "layer_forward", "layer_backward", "layer_steps", "embedding_steps", "logits_steps",
           "mtp_steps", "causal_fraction"]


def _ffn_units(ctx: LayerContext, name: str, tokens: int, width: int, instances: int = 1,
               regather: bool = True) -> list[Unit]:
    """One FFN (or ``instances`` experts) on ``tokens`` rows: up GEMM, activation, down GEMM."""
    m = ctx.model
    w = width // ctx.tp
    up_n = w * (1 if m.activation == "gelu" else 2)
    act_fwd = (2 * w if m.activation == "gelu" else 3 * w) * tokens * B
    act_bwd = (3 * w if m.activation == "gelu" else 5 * w) * tokens * B
    mt = tokens // instances
    mod = {"ffn": "mlp", "shared": "shared_experts"}.get(name, "")
    return [
        Unit("gemm", f"{name}_up", (mt, up_n, m.hidden), instances, regather=regather and ctx.sp, module=mod),
        Unit("ew", f"{name}_act", fwd_bytes=act_fwd, bwd_bytes=act_bwd, module=mod or "moe_act"),
        Unit("gemm", f"{name}_down", (mt, m.hidden, w), instances, module=mod),
    ]


def _layer_units(ctx: LayerContext, layer: int) -> list[Unit]:
    m, T, Tsp, h = ctx.model, ctx.T, ctx.T_sp, ctx.model.hidden
    hv = m.heads * m.v_dim // ctx.tp
    act = T * h * B
    norm = Unit("ew", "", fwd_bytes=2 * Tsp * h * B, bwd_bytes=3 * Tsp * h * B, op_kind="norm",
                module="layernorm")
    resid_f = Tsp * h * (3 * B + (1 if m.has_dropout else 0))
    resid_b = Tsp * h * (2 * B + 1) if m.has_dropout else 0.0
    units = [
        Unit(**{**norm.__dict__, "name": "ln1"}),
        Unit("tp_enter", "attn_in", size=act),
        *projection_units(ctx),
        Unit("attn", "attn"),
        Unit("gemm", "attn_out", (T, h, hv)),
        Unit("tp_exit", "attn_out", size=act),
        Unit("ew", "attn_residual", fwd_bytes=resid_f, bwd_bytes=resid_b),
        Unit(**{**norm.__dict__, "name": "ln2"}),
    ]
    if not m.is_moe_layer(layer):
        units += [Unit("tp_enter", "mlp_in", size=act)]
        units += _ffn_units(ctx, "ffn", T, m.ffn_hidden)
        units += [Unit("tp_exit", "mlp_out", size=act)]
    else:
        units += _moe_units(ctx)
    units.append(Unit("ew", "mlp_residual", fwd_bytes=resid_f, bwd_bytes=resid_b))
    return units


def _moe_units(ctx: LayerContext) -> list[Unit]:
    """Router, dispatch, routed experts, combine (and the shared experts) of one MoE layer.

    The shared experts come right after the dispatch is issued, so that with
    ``ep_overlap`` they run while the tokens travel (Megatron-Core
    ``moe_shared_expert_overlap``); the routed experts wait for the dispatch, the unpermute
    for the combine. The backward (the list reversed, shared experts moved before the
    dispatch) runs the shared experts' backward while the dispatch gradient travels.
    """
    m, T, Tsp, h = ctx.model, ctx.T, ctx.T_sp, ctx.model.hidden
    k, E = m.top_k, m.experts
    routed = Tsp * k * h * B
    act = T * h * B
    head = [
        Unit("gemm", "router", (Tsp, E, h)),
        Unit("ew", "router_topk", fwd_bytes=3 * Tsp * E * 4, bwd_bytes=3 * Tsp * E * 4),
        Unit("ew", "permute", fwd_bytes=Tsp * h * B + routed, bwd_bytes=Tsp * h * B + routed,
             bwd_after_ep=True),
    ]
    disp, comb = dispatch_hops(ctx.dispatcher, Tsp, h, k, E, ctx.ep_domains, ctx.moe_max_nodes, ctx.dispatch_fp8)
    head += [Unit("ep", n, size=f, bwd_size=b, group=g) for n, g, f, b in disp]
    shared: list[Unit] = []
    if m.shared_experts:
        shared = [Unit("tp_enter", "shared_in", size=act)]
        shared += _ffn_units(ctx, "shared", T, m.shared_experts * m.expert_ffn)
        shared += [Unit("tp_exit", "shared_out", size=act)]
    ex = _ffn_units(ctx, "expert", T * k, m.expert_ffn, instances=E // ctx.ep, regather=False)
    ex[0] = replace(ex[0], fwd_after_ep=True)
    ex[-1] = replace(ex[-1], bwd_after_ep=True)
    experts = [
        # its backward reduce-scatter feeds the dispatch all-to-all: blocking
        Unit("tp_enter", "experts_in", size=T * k * h * B, blocking=True, fwd_after_ep=True),
        *ex,
        Unit("tp_exit", "experts_out", size=T * k * h * B, bwd_after_ep=True),
        *[Unit("ep", n, size=f, bwd_size=b, group=g) for n, g, f, b in comb],
        Unit("ew", "unpermute", fwd_bytes=Tsp * h * B + routed, bwd_bytes=Tsp * h * B + routed,
             fwd_after_ep=True),
    ]
    return head + shared + experts


def _backward_order(units: list[Unit]) -> list[Unit]:
    """Units in the order their backward runs reversed: a MoE layer's shared experts move
    before its dispatch, so their backward follows the dispatch gradient's all-to-all."""
    names = [u.name for u in units]
    if "shared_in" not in names or not any(u.kind == "ep" for u in units):
        return units
    i = next(n for n, u in enumerate(units) if u.kind == "ep")
    j, k = names.index("shared_in"), names.index("shared_out")
    return units[:i] + units[j:k + 1] + units[i:j] + units[k + 1:]


def _emit_fwd(e: Emitter, units: list[Unit]) -> None:
    for u in units:
        if u.kind == "gemm":
            mm, n, k = u.dims
            f = 2.0 * mm * n * k * u.instances
            e.op(u.name, "gemm", f, f, gemm_bytes(mm, n, k) * u.instances, u.dims, u.instances,
                 after=e.ep_wait(u.fwd_after_ep))
        elif u.kind == "ew":
            if u.fwd_bytes:
                e.op(u.name, u.op_kind, 0.0, 0.0, u.fwd_bytes, after=e.ep_wait(u.fwd_after_ep))
        elif u.kind == "attn":
            attention_fwd(e)
        elif u.kind in ("tp_enter", "tp_exit"):
            tp_comm(e, u, backward=False)
        elif u.kind == "ep" and e.ctx.ep > 1:
            w = e.call("ep", "all_to_all", u.size, u.group, u.name, e.ctx.ep_overlap, wait_next=False)
            e.last_ep = w if e.ctx.ep_overlap else None


def _emit_bwd(e: Emitter, units: list[Unit], recompute_attention: bool) -> None:
    ctx = e.ctx
    rev = list(reversed(_backward_order(units)))
    i = 0
    while i < len(rev):
        u = rev[i]
        if u.module and u.module in ctx.recompute_modules and u.kind in ("gemm", "ew"):
            # selective recomputation: the module's forward op re-runs right before its backward
            rec = Emitter(ctx, e.layer, "re", recompute=True)
            _emit_fwd(rec, [replace(u, fwd_after_ep=False)])
            e.out += rec.out
        if u.kind == "gemm":
            mm, n, k = u.dims
            f = 2.0 * mm * n * k * u.instances
            nb = gemm_bytes(mm, n, k) * u.instances
            gather = None
            if u.regather and ctx.tp > 1:
                gather = e.call("tp", "all_gather", mm * k * B * u.instances, "tp",
                                f"{u.name}_input_all_gather", ctx.tp_bwd_overlap, wait_next=False)
            e.op(f"{u.name}_dgrad", "gemm", f, f, nb, (mm, k, n), u.instances,
                 after=e.ep_wait(u.bwd_after_ep))
            # The conjugate collective of the input gradient overlaps the weight gradient.
            if i + 1 < len(rev) and rev[i + 1].kind == "tp_enter":
                tp_comm(e, rev[i + 1], backward=True)
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
                rec = Emitter(ctx, e.layer, "re", recompute=True)
                attention_fwd(rec)
                e.out += rec.out
            attention_bwd(e)
        elif u.kind in ("tp_enter", "tp_exit"):
            tp_comm(e, u, backward=True)
        elif u.kind == "ep" and ctx.ep > 1:
            size = u.size if u.bwd_size < 0 else u.bwd_size
            w = e.call("ep", "all_to_all", size, u.group, f"{u.name}_bwd", ctx.ep_overlap, wait_next=False)
            e.last_ep = w if ctx.ep_overlap else None
        i += 1


def layer_forward(ctx: LayerContext, layer: int) -> list[Step]:
    """Forward steps of global layer ``layer`` for one micro-batch."""
    e = Emitter(ctx, layer, "fwd")
    _emit_fwd(e, _layer_units(ctx, layer))
    return e.out


def layer_backward(ctx: LayerContext, layer: int) -> list[Step]:
    """Backward steps of ``layer`` for one micro-batch, recomputation first when enabled."""
    units = _layer_units(ctx, layer)
    out: list[Step] = []
    if ctx.recompute == "full":
        r = Emitter(ctx, layer, "re", recompute=True)
        _emit_fwd(r, units)
        out += r.out
    e = Emitter(ctx, layer, "bwd")
    _emit_bwd(e, units, ctx.recompute == "selective" and "core_attn" in ctx.recompute_modules)
    return out + e.out


def layer_steps(ctx: LayerContext, layer: int, backward: bool, memo: dict) -> list[Step]:
    """``layer_backward(ctx, layer)`` (or ``layer_forward``) from ``memo``: a chunk's layers of
    one kind (dense or MoE: the only way a layer's index enters its ops besides its names)
    have the same steps but for ``layer`` and the ``where`` names (``.../L<layer>/...``, the
    ``after`` names too, which point into the same layer), so the first one's are emitted and
    the others relabelled from them. ``memo``: one dict per ``ctx``."""
    key = (backward, ctx.model.is_moe_layer(layer))
    hit = memo.get(key)
    if hit is None:
        steps = layer_backward(ctx, layer) if backward else layer_forward(ctx, layer)
        memo[key] = (layer, steps)
        return steps
    first, steps = hit
    return [_relabel(x, f"/L{first}/", f"/L{layer}/", layer) for x in steps]


def _relabel(x: Step, old: str, new: str, layer: int) -> Step:
    """``x`` of another layer: the same fields, ``where`` and ``after`` names renamed."""
    where = x.where.replace(old, new, 1)
    if not isinstance(x, ComputeOp):  # a collective call has no layer and waits for nothing
        return copied(x, where=where)
    return copied(x, where=where, layer=layer, after=tuple(a.replace(old, new, 1) for a in x.after))


def embedding_steps(ctx: LayerContext, backward: bool, layer: int = -1) -> list[Step]:
    """Word (+ learned position) embedding: vocab-parallel lookup, then its TP reduction
    (``layer``: the MTP module that looks up the shifted tokens, -1 for the model's input)."""
    m, T, h = ctx.model, ctx.T, ctx.model.hidden
    e = Emitter(ctx, layer, "bwd" if backward else "fwd")
    u = Unit("tp_exit", "embedding", size=T * h * B)
    pos = 2 if m.position_kind == "learned" else 0
    if not backward:
        e.op("embedding", "embedding", 0.0, 0.0, T * h * B * (2 + pos) + ctx.T_sp * h * (1 if m.has_dropout else 0))
        tp_comm(e, u, backward=False)
    else:
        tp_comm(e, u, backward=True)
        e.op("embedding_bwd", "embedding", 0.0, 0.0, 3 * T * h * B)
    return e.out


def logits_steps(ctx: LayerContext, backward: bool, layer: int = -1) -> list[Step]:
    """Final norm, output projection (vocab-parallel) and fused cross-entropy (``layer``: the
    MTP module's own head, -1 for the model's)."""
    m, T, h = ctx.model, ctx.T, ctx.model.hidden
    v = m.vocab // ctx.tp if m.vocab % ctx.tp == 0 else -(-m.vocab // ctx.tp)
    units = [
        Unit("ew", "final_norm", fwd_bytes=2 * ctx.T_sp * h * B, bwd_bytes=3 * ctx.T_sp * h * B, op_kind="norm"),
        Unit("tp_enter", "logits_in", size=T * h * B),
        Unit("gemm", "logits", (T, v, h), regather=ctx.sp),
    ]
    e = Emitter(ctx, layer, "bwd" if backward else "fwd")
    if not backward:
        _emit_fwd(e, units)
        # fp32 logits: cast, max, exp-sum, loss (Megatron vocab_parallel_cross_entropy)
        e.op("cross_entropy", "elementwise", 0.0, 0.0, 16.0 * T * v)
        e.call("tp", "all_reduce", 3 * 4 * T, "tp", "cross_entropy_all_reduce", False)
    else:
        e.op("cross_entropy_bwd", "elementwise", 0.0, 0.0, 8.0 * T * v)
        _emit_bwd(e, units, False)
    return e.out


def mtp_steps(ctx: LayerContext, depth: int, backward: bool) -> list[Step]:
    """Multi-token prediction module ``depth`` (0-based; DeepSeek-V3 §2.2, Megatron-Core's
    MTP on the last pipeline stage), forward or backward: the embedding of the tokens shifted
    by ``depth + 1``, RMSNorms of it and of the previous hidden state, the projection
    ``M`` of their concatenation (row-parallel over TP: 2h/tp inputs per rank, then the TP
    reduction), one transformer layer like the model's last, and its own output head and
    cross-entropy. Its ``where`` names use layer index ``layers + depth``."""
    m, T, Tsp, h = ctx.model, ctx.T, ctx.T_sp, ctx.model.hidden
    L = m.layers + depth
    norm = dict(fwd_bytes=2 * Tsp * h * B, bwd_bytes=3 * Tsp * h * B, op_kind="norm")
    units = [Unit("ew", "mtp_norm_hidden", **norm), Unit("ew", "mtp_norm_embedding", **norm),  # type: ignore[arg-type]
             Unit("tp_enter", "mtp_in", size=2 * T * h * B),
             Unit("gemm", "mtp_proj", (T, h, 2 * h // ctx.tp)),
             Unit("tp_exit", "mtp_out", size=T * h * B)]
    if not backward:
        e = Emitter(ctx, L, "fwd")
        _emit_fwd(e, units)
        return embedding_steps(ctx, False, L) + e.out + layer_forward(ctx, L) + logits_steps(ctx, False, L)
    e = Emitter(ctx, L, "bwd")
    _emit_bwd(e, units, False)
    return logits_steps(ctx, True, L) + layer_backward(ctx, L) + e.out + embedding_steps(ctx, True, L)
