"""Attention of one layer: its projections (standard multi-head / grouped-query, or
multi-head latent attention) and the attention kernel, forward and backward.

What is modelled: the query/key/value projections as GEMMs (one fused QKV GEMM; for MLA,
DeepSeek-AI 2024, DeepSeek-V2 §2.1, arXiv:2405.04434, the down-projections to the query and
key-value latents, their RMSNorms and the up-projections, split over the heads by tensor
parallelism while the down-projections are replicated on each TP rank), rotary embedding,
and the kernel: one fused flash-style kernel (Dao 2022/2023: HBM traffic O(s h), scores never
stored, causal masking skips half the blocks, the backward executes 2.5x the forward FLOPs),
as ``cp`` ring steps with context parallelism, or the unfused chain of 2021 frameworks. The
query-key product runs over ``qk_head_dim`` per head (MLA: 128 + 64 rotary) and the
value product over ``v_dim`` (MLA: 128).
"""

from __future__ import annotations

from oassim.workload.emit import FLASH_BWD, B, Emitter, LayerContext, Unit, causal_fraction

__all__ = ["attention_fwd", "attention_bwd", "projection_units"]


def _widths(ctx: LayerContext) -> tuple[int, int, int, int]:
    """Per-rank widths of Q, O (heads x qk / v dims) and of K, V (kv heads)."""
    m, t = ctx.model, ctx.tp
    return (m.heads * m.qk_head_dim // t, m.heads * m.v_dim // t,
            m.n_kv_heads * m.qk_head_dim // t, m.n_kv_heads * m.v_dim // t)


def projection_units(ctx: LayerContext) -> list[Unit]:
    """The projections that produce Q, K, V (and the rotary embedding), after the TP
    all-gather of the layer input."""
    m, T, h = ctx.model, ctx.T, ctx.model.hidden
    hq, hv, hk, hkv_v = _widths(ctx)
    if not m.is_mla:
        units = [Unit("gemm", "qkv", (T, hq + hk + hkv_v, h), regather=ctx.sp)]
        if m.position_kind == "rope":
            rope = 2 * T * (hq + hk) * B
            units.append(Unit("ew", "rope", fwd_bytes=rope, bwd_bytes=rope))
        return units
    a, r, rope_d = m.heads // ctx.tp, int(m.kv_lora_rank), int(m.qk_rope_head_dim)  # type: ignore[arg-type]
    units: list[Unit] = []
    if m.q_lora_rank:
        q = m.q_lora_rank
        units += [Unit("gemm", "q_down", (T, q, h), regather=ctx.sp),
                  Unit("ew", "q_norm", fwd_bytes=2 * T * q * B, bwd_bytes=3 * T * q * B, op_kind="norm"),
                  Unit("gemm", "q_up", (T, hq, q), module="mla_up_proj")]
    else:
        units.append(Unit("gemm", "q_proj", (T, hq, h), regather=ctx.sp))
    units += [Unit("gemm", "kv_down", (T, r + rope_d, h), regather=ctx.sp),
              Unit("ew", "kv_norm", fwd_bytes=2 * T * r * B, bwd_bytes=3 * T * r * B, op_kind="norm"),
              Unit("gemm", "kv_up", (T, a * (int(m.qk_nope_head_dim) + m.v_dim), r),  # type: ignore[arg-type]
                   module="mla_up_proj")]
    rope = 2 * T * (a + 1) * rope_d * B  # the rotary parts of every query head and the shared key
    units.append(Unit("ew", "rope", fwd_bytes=rope, bwd_bytes=rope, module="mla_up_proj"))
    return units


def attention_fwd(e: Emitter) -> None:
    ctx, m = e.ctx, e.ctx.model
    hq, hv, hk, hkv_v = _widths(ctx)
    sq = ctx.s // ctx.cp
    # QK^T and PV, full s x s (docs/architecture.md convention: 4 b s^2 h for standard attention)
    nominal = 2.0 * ctx.b * sq * ctx.s * (hq + hv)
    if ctx.attention_kernel == "fused":
        io = (ctx.b * sq * (hq + hv) + ctx.b * ctx.s * (hk + hkv_v)) * B + ctx.b * sq * m.heads / ctx.tp * 4
        exec_f = nominal * causal_fraction(ctx.s)
        if ctx.cp == 1:
            e.op("attn", "attention", nominal, exec_f, io)
            return
        kv_block = ctx.b * sq * (hk + hkv_v) * B
        for j in range(ctx.cp):  # ring: compute on block j while block j+1 travels
            if j < ctx.cp - 1:
                e.call("cp", "send_recv", kv_block, "cp_ring", f"attn_kv{j}", True, wait_next=False)
            prev = (e.where(f"attn_kv{j - 1}"),) if j > 0 else ()
            e.op(f"attn{j}", "attention", nominal / ctx.cp, exec_f / ctx.cp, io / ctx.cp, after=prev)
        return
    hq = m.heads * m.d_head // ctx.tp  # unfused (2021 frameworks): standard attention
    n_sc = ctx.b * (m.heads // ctx.tp) * sq * ctx.s
    inst = ctx.b * m.heads // ctx.tp
    d = m.d_head
    e.op("attn_scores", "gemm", 2.0 * n_sc * d, 2.0 * n_sc * d,
         (2 * ctx.b * sq * hq + n_sc) * B, (sq, ctx.s, d), inst)
    e.op("attn_softmax", "elementwise", 0.0, 0.0, 2 * n_sc * B)
    if m.has_dropout:
        e.op("attn_dropout", "elementwise", 0.0, 0.0, n_sc * (2 * B + 1))
    e.op("attn_context", "gemm", 2.0 * n_sc * d, 2.0 * n_sc * d,
         (n_sc + 2 * ctx.b * sq * hq) * B, (sq, d, ctx.s), inst)


def attention_bwd(e: Emitter) -> None:
    ctx, m = e.ctx, e.ctx.model
    hq, hv, hk, hkv_v = _widths(ctx)
    sq = ctx.s // ctx.cp
    nominal = 4.0 * ctx.b * sq * ctx.s * (hq + hv)
    if ctx.attention_kernel == "fused":
        # read Q, O, dO, K, V; write dQ, dK, dV
        io = 2.0 * ((ctx.b * sq * (hq + 2 * hv) + ctx.b * ctx.s * (hk + hkv_v)) * B)
        exec_f = 0.5 * nominal * FLASH_BWD * causal_fraction(ctx.s)
        if ctx.cp == 1:
            e.op("attn_bwd", "attention", nominal, exec_f, io)
            return
        block = 2 * ctx.b * sq * (hk + hkv_v) * B  # K, V and their gradients travel the ring
        for j in range(ctx.cp):
            if j < ctx.cp - 1:
                e.call("cp", "send_recv", block, "cp_ring", f"attn_dkv{j}", True, wait_next=False)
            prev = (e.where(f"attn_dkv{j - 1}"),) if j > 0 else ()
            e.op(f"attn_bwd{j}", "attention", nominal / ctx.cp, exec_f / ctx.cp, io / ctx.cp, after=prev)
        return
    hq = m.heads * m.d_head // ctx.tp
    n_sc = ctx.b * (m.heads // ctx.tp) * sq * ctx.s
    inst = ctx.b * m.heads // ctx.tp
    d = m.d_head
    f2 = 2.0 * n_sc * d
    e.op("attn_context_dgrad", "gemm", f2, f2, (n_sc + 2 * ctx.b * sq * hq) * B, (sq, ctx.s, d), inst)
    e.op("attn_context_wgrad", "gemm", f2, f2, (n_sc + 2 * ctx.b * sq * hq) * B, (ctx.s, d, sq), inst)
    if m.has_dropout:
        e.op("attn_dropout_bwd", "elementwise", 0.0, 0.0, n_sc * (2 * B + 1))
    e.op("attn_softmax_bwd", "elementwise", 0.0, 0.0, 3 * n_sc * B)
    e.op("attn_scores_dgrad", "gemm", f2, f2, (n_sc + 2 * ctx.b * sq * hq) * B, (sq, d, ctx.s), inst)
    e.op("attn_scores_wgrad", "gemm", f2, f2, (n_sc + 2 * ctx.b * sq * hq) * B, (ctx.s, d, sq), inst)
