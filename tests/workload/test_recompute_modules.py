"""Selective recomputation of chosen modules, FP8 activation caching and offloading: memory
and recomputed work against closed forms."""

from __future__ import annotations

import pytest

from oassim.errors import SpecError
from oassim.workload import compile_plan, resolve_model
from oassim.workload.memory import activation_bytes_per_layer
from oassim.workload.parallelism import ParallelismSpec, TrainingSpec
from tests.workload.conftest import TINY_MOE

LLAMA = dict(name="tiny-llama", layers=4, hidden=512, ffn_hidden=1536, heads=8, kv_heads=2, vocab=1024,
             seq_len=256, activation="swiglu")
PAR = ParallelismSpec(tp=2, sp=True, dp=2)


def _act(model, layer=1, **train):
    t = TrainingSpec(global_batch=8, micro_batch=2, **train)
    return activation_bytes_per_layer(resolve_model(model), layer, PAR, t, "fused")


def test_each_module_frees_its_own_tensors():
    """Per token (b s tokens, tp 2 with SP): layernorm frees the two norm outputs,
    2 x 2h / tp; mlp the SwiGLU intermediates 6f / tp; on a MoE layer moe_act frees the
    routed activation outputs 2 k f_e / tp and shared_experts the shared intermediates."""
    tok, h, f, tp = 512, 512, 1536, 2
    base = _act(LLAMA, recompute="selective")
    assert base - _act(LLAMA, recompute="selective", recompute_modules=["core_attn", "layernorm"]) \
        == pytest.approx(tok * 4 * h / tp)
    assert base - _act(LLAMA, recompute="selective", recompute_modules=["core_attn", "mlp"]) \
        == pytest.approx(tok * 6 * f / tp)
    m = resolve_model(TINY_MOE)
    tok = 2 * m.seq_len
    base = _act(TINY_MOE, recompute="selective")
    assert base - _act(TINY_MOE, recompute="selective", recompute_modules=["core_attn", "moe_act"]) \
        == pytest.approx(tok * 2 * m.top_k * m.expert_ffn / tp)
    assert base - _act(TINY_MOE, recompute="selective", recompute_modules=["core_attn", "shared_experts"]) \
        == pytest.approx(tok * 6 * m.expert_ffn / tp)


def test_fp8_cache_halves_the_linear_inputs():
    """FP8 caching stores the QKV and FFN inputs (2h each, /tp with SP), the attention output
    (2 a d / tp) and the down projection's input (2f / tp) in one byte instead of two."""
    tok, h, f, tp = 512, 512, 1536, 2
    linear = 2 * 2 * h / tp + 2 * h / tp + 2 * f / tp
    assert _act(LLAMA) - _act(LLAMA, fp8_activation_cache=True) == pytest.approx(tok * linear / 2)
    assert _act(LLAMA, precision="fp8") == _act(LLAMA, fp8_activation_cache=True)  # the FP8 default


def test_recomputed_modules_add_exactly_their_forward_work():
    """recompute_modules [mlp] re-runs every dense FFN's forward: the recomputed FLOPs are
    2 x tokens x 3 h f per dense layer (SwiGLU), over every micro-batch and rank."""
    p = compile_plan(LLAMA, {"tp": 2, "sp": True, "dp": 2}, "h100-sxm", None,
                     training={"global_batch": 8, "micro_batch": 2, "recompute": "selective",
                               "recompute_modules": ["mlp"]})
    tokens = 8 * 256
    assert p.flops.recomputed == pytest.approx(4 * 2 * tokens * 3 * 512 * 1536)
    names = {x.name for c in p.stages[0].chunks for x in c.backward if getattr(x, "recompute", False)}
    assert names == {"ffn_up", "ffn_act", "ffn_down"}


def test_offloaded_layers_leave_hbm():
    """Offloading 2 of 4 equal layers on one stage: the stored activations drop by two layers
    per micro-batch in flight, less the two layers reloaded for the backward."""
    kw = dict(model=LLAMA, parallelism={"dp": 2}, accelerator="h100-sxm", fabric=None)
    t = {"global_batch": 8, "micro_batch": 2}
    a0 = compile_plan(**kw, training=t).memory
    a2 = compile_plan(**kw, training={**t, "offload_layers": 2}).memory
    per_layer = activation_bytes_per_layer(resolve_model(LLAMA), 1, ParallelismSpec(dp=2),
                                           TrainingSpec(**t), "fused")
    assert a0.activations - a2.activations == pytest.approx(2 * per_layer * a0.inflight - 2 * per_layer)


def test_recompute_modules_need_selective_and_mla_up_proj_needs_mla():
    with pytest.raises(SpecError, match="workload.recompute_modules.*needs recompute: selective"):
        compile_plan(LLAMA, {}, "h100-sxm", None,
                     training={"global_batch": 8, "recompute_modules": ["layernorm"]})
    with pytest.raises(SpecError, match="mla_up_proj needs an MLA model"):
        compile_plan(LLAMA, {}, "h100-sxm", None,
                     training={"global_batch": 8, "recompute": "selective", "recompute_modules": ["mla_up_proj"]})


def test_deepseek_v3_fits_on_80_gb_as_the_report_trains_it():
    """DeepSeek-V3 on 2,048 GPUs (PP 16, EP 64, ZeRO-1, FP8, micro-batch 1 of 4,096 tokens):
    Megatron's default selective recomputation (core attention only, which a fused kernel
    does not store anyway) needs more than 80 GB; recomputing the RMSNorms, the MLA
    up-projections and the experts' SwiGLU outputs with FP8 caching (DeepSeek-V3 §3.2.3,
    §3.3.2) fits, with the bf16 weights still held."""
    par = dict(pp=16, dp=128, ep=64, zero=1, first_stage_layers=4, last_stage_layers=1)
    train = dict(global_batch=15360, micro_batch=1, seq_len=4096, precision="fp8", recompute="selective")
    with pytest.raises(SpecError, match="needs 9[0-9].[0-9] GB per accelerator"):
        compile_plan("deepseek-v3", par, "h100-sxm", None, training=train, accelerators=2048)
    p = compile_plan("deepseek-v3", par, "h100-sxm", None, accelerators=2048,
                     training={**train, "recompute_modules": ["layernorm", "mla_up_proj", "moe_act"]})
    assert 0.5 * 80e9 < p.memory.total < 80e9
