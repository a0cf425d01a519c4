"""Multi-head latent attention and multi-token prediction: parameters, FLOPs and memory
against the closed forms of the DeepSeek-V2/V3 papers."""

from __future__ import annotations

import pytest

from oassim.workload import compile_plan, resolve_model
from oassim.workload.memory import activation_bytes_per_layer
from oassim.workload.parallelism import ParallelismSpec, TrainingSpec
from oassim.workload.steps import ComputeOp
from tests.workload.conftest import TINY_MOE

TINY_MLA = {**TINY_MOE, "name": "tiny-mla", "kv_heads": None, "kv_lora_rank": 64, "q_lora_rank": 96,
            "qk_nope_head_dim": 32, "qk_rope_head_dim": 16, "v_head_dim": 32}
T = {"global_batch": 16, "micro_batch": 2}


def test_deepseek_v3_mla_and_mtp_parameters():
    """DeepSeek-V2 §2.1: per layer h d_cq + d_cq a (d_n + d_r) + h (d_c + d_r) + d_c a (d_n + d_v)
    + a d_v h (+ the two latent RMSNorms) = 187.1M for DeepSeek-V3; the model stays at 671B
    (37B active, §4.2) and the MTP module with the shared embedding and head is ~14B (§2.2, 5%)."""
    m = resolve_model("deepseek-v3")
    h, a, cq, c, n, r, v = 7168, 128, 1536, 512, 128, 64, 128
    attn = h * cq + cq * a * (n + r) + h * (c + r) + c * a * (n + v) + a * v * h + cq + c
    assert m.attention_params == attn
    assert attn / 1e6 == pytest.approx(187.1, abs=0.05)
    assert m.total_params() / 1e9 == pytest.approx(671.0, rel=0.002)
    assert (m.active_params + m.embedding_params()) / 1e9 == pytest.approx(37.0, rel=0.03)
    assert (m.mtp_params + m.embedding_params() + m.output_params) / 1e9 == pytest.approx(14.0, rel=0.05)


def test_mla_attention_kernel_flops_use_its_head_widths():
    """The fused kernel's forward is 2 b s^2 a (d_qk + d_v) (full s x s, the nominal count),
    with d_qk = 32 + 16 and d_v = 32 here; the projections are the five MLA GEMMs."""
    p = compile_plan(TINY_MLA, {"dp": 2}, "h100-sxm", None, training=T)
    ops = {x.name: x for x in p.stages[0].chunks[0].forward if isinstance(x, ComputeOp) and x.layer == 1}
    b, s, a = 2, 128, 8
    assert ops["attn"].flops == pytest.approx(2 * b * s * s * a * (48 + 32))
    assert {"q_down", "q_up", "kv_down", "kv_up"} <= set(ops) and "qkv" not in ops
    assert ops["kv_up"].gemm == (b * s, a * (32 + 32), 64)


def test_mla_up_projection_recompute_drops_q_k_v():
    """recompute_modules [mla_up_proj] frees Q, K, V (2 a (2 d_qk + d_v) bytes per token at
    tp 1): the latents they come from are kept anyway."""
    m = resolve_model(TINY_MLA)
    par = ParallelismSpec(dp=2)

    def act(**kw):
        return activation_bytes_per_layer(m, 1, par, TrainingSpec(**T, recompute="selective", **kw), "fused")

    tok, a = 2 * 128, 8
    assert act() - act(recompute_modules=["core_attn", "mla_up_proj"]) == pytest.approx(tok * 2 * a * (2 * 48 + 32))


def test_mtp_adds_one_layer_projection_and_head_on_the_last_stage_only():
    """mtp_layers 1: the executed matmul FLOPs grow by 6 x tokens x (the MTP layer's active
    matmul weights + the 2h x h projection + the h x V head) + the layer's attention products,
    all on the last pipeline stage; the model FLOPs (MFU numerator) do not change."""
    base = compile_plan(TINY_MLA, {"pp": 2, "dp": 4, "ep": 4}, "h100-sxm", None, training=T)
    mtp = compile_plan({**TINY_MLA, "mtp_layers": 1}, {"pp": 2, "dp": 4, "ep": 4}, "h100-sxm", None, training=T)
    m = resolve_model(TINY_MLA)
    h, V, s, tokens = m.hidden, m.vocab, 128, 16 * 128
    last = m.layers - 1
    matmul = (m.attention_params - 96 - 64) + m.router_params \
        + (m.top_k + m.shared_experts) * m.ffn_params(m.expert_ffn)
    attn = 3 * 2 * s * m.heads * (m.qk_head_dim + m.v_dim)  # fwd + bwd per token
    assert m.is_moe_layer(last)
    assert mtp.flops.megatron - base.flops.megatron == pytest.approx(
        tokens * (6 * (matmul + 2 * h * h + h * V) + attn), rel=1e-9)
    assert mtp.flops.model == base.flops.model
    assert mtp.stages[0].compute_s == pytest.approx(base.stages[0].compute_s)
    assert mtp.stages[1].memory.total > base.stages[1].memory.total
    assert mtp.stages[0].memory.total == pytest.approx(base.stages[0].memory.total)
