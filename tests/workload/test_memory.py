"""Memory model against hand-computed cases (Korthikanti et al. 2022 Table 2, ZeRO §3.1)."""

from __future__ import annotations

import pytest

from oassim.errors import SpecError
from oassim.workload import ParallelismSpec, TrainingSpec, compile_plan, resolve_model
from oassim.workload.memory import activation_bytes_per_layer, stage_memory, stage_params

# GPT: h 512, a 8, f 4h, s 256, b 2 -> sbh = 262,144 and 5as/h = 20
GPT = resolve_model(dict(name="g", layers=8, hidden=512, ffn_hidden=2048, heads=8, vocab=1024,
                         seq_len=256, activation="gelu"))
SBH = 256 * 2 * 512


def _act(recompute, kernel="unfused", **par):
    return activation_bytes_per_layer(GPT, 0, ParallelismSpec(**par),
                                      TrainingSpec(global_batch=2, micro_batch=2, recompute=recompute), kernel)


def test_korthikanti_table2_cases():
    """Per-layer activations: sbh(34 + 5as/h); TP: sbh(10 + 24/t + 5as/ht); TP+SP: sbh(34/t +
    5as/ht); selective drops the 5as/h term; full keeps the 2sbh (/t with SP) input."""
    assert _act("none") == SBH * (34 + 20)
    assert _act("none", tp=4) == SBH * (10 + 24 / 4 + 20 / 4)
    assert _act("none", tp=4, sp=True) == SBH * (34 / 4 + 20 / 4)
    assert _act("selective", tp=4, sp=True) == SBH * 34 / 4
    assert _act("selective", tp=4) == SBH * (10 + 24 / 4)
    assert _act("full", tp=4, sp=True) == 2 * SBH / 4
    assert _act("full") == 2 * SBH


def test_flash_attention_never_stores_scores():
    """A fused (flash) kernel stores no s x s matrices: 'none' equals 'selective' in memory."""
    assert _act("none", "fused", tp=2, sp=True) == _act("selective", "unfused", tp=2, sp=True)


def test_swiglu_gqa_no_dropout_generalisation():
    """Llama-style layer: outside 8h (no dropout masks), inside 2(2hq + 2hkv)/t + 6f/t per token."""
    m = resolve_model("llama3-8b")
    par = ParallelismSpec(tp=8, sp=True)
    t = TrainingSpec(global_batch=1, seq_len=8192, recompute="none")
    per_token = 8 * 4096 / 8 + 2 * (2 * 4096 + 2 * 1024) / 8 + 6 * 14336 / 8
    assert activation_bytes_per_layer(m, 0, par, t, "fused") == pytest.approx(per_token * 8192)


def test_weights_grads_optimizer_16_bytes_per_param_and_zero_sharding():
    """Mixed-precision Adam: 2 + 2 + 12 bytes/param; ZeRO 1/2/3 shard optimizer, grads, weights."""
    t = TrainingSpec(global_batch=8, micro_batch=2)
    p = GPT.total_params()
    m0 = stage_memory(GPT, ParallelismSpec(dp=4), t, 0, 80e9)
    assert (m0.weights, m0.gradients, m0.optimizer) == (2 * p, 2 * p, 12 * p)
    m1 = stage_memory(GPT, ParallelismSpec(dp=4, zero=1), t, 0, 80e9)
    assert (m1.weights, m1.gradients, m1.optimizer) == (2 * p, 2 * p, 3 * p)
    m2 = stage_memory(GPT, ParallelismSpec(dp=4, zero=2), t, 0, 80e9)
    assert (m2.gradients, m2.optimizer) == (p / 2, 3 * p)
    m3 = stage_memory(GPT, ParallelismSpec(dp=4, zero="fsdp"), t, 0, 80e9)
    assert m3.weights == pytest.approx(p / 2 + 2 * 2 * GPT.layer_params(0))  # shard + 2 gathered layers
    m32 = stage_memory(GPT, ParallelismSpec(dp=4), t.model_copy(update={"grad_precision": "fp32"}), 0, 80e9)
    assert m32.gradients == 4 * p


def test_pipeline_stage_params_embedding_first_tied_copy_last():
    """pp 2: stage 0 holds the embedding (V h/t + s h), the last stage a tied copy (V h/t)."""
    par = ParallelismSpec(pp=2, tp=2)
    d0, _ = stage_params(GPT, par, 0, 256)
    d1, _ = stage_params(GPT, par, 1, 256)
    layer = GPT.layer_params(0) / 2
    assert d0 == pytest.approx(4 * layer + 1024 * 512 / 2 + 256 * 512)
    assert d1 == pytest.approx(4 * layer + 1024 * 512 / 2 + GPT.norm_params)


def test_inflight_microbatches_1f1b_and_interleaved():
    """1F1B: stage i holds min(pp - i, m) micro-batches; interleaved first stage holds
    pp(1 + (pp-1)/(pp v)) layer-stacks, i.e. 2(pp-1) + (v-1)pp + 1 chunk-micro-batches."""
    t = TrainingSpec(global_batch=8, micro_batch=1)
    for stage in range(4):
        m = stage_memory(GPT, ParallelismSpec(pp=4), t, stage, 80e9)
        assert m.inflight == min(4 - stage, 8)
    m = stage_memory(GPT, ParallelismSpec(pp=4, vpp=2), t, 0, 80e9)
    assert m.inflight == 2 * 3 + 1 * 4 + 1 == 4 * (1 + 3 / 8) * 2


def test_full_recompute_adds_one_layer_working_set():
    """Full recomputation stores 2sbh per layer per in-flight micro-batch plus one full layer."""
    par = ParallelismSpec()
    t = TrainingSpec(global_batch=2, micro_batch=2, recompute="full")
    m = stage_memory(GPT, par, t, 0, 80e9, "unfused")
    logits = 4 * 512 * 512 + 4 * 512 * 1024  # final norm/output input (4 B/elt) + fp32 logits
    emb_mask = 512 * 512
    assert m.activations == 8 * 2 * SBH + logits + emb_mask + SBH * (34 + 20)


def test_out_of_memory_is_one_sentence_with_breakdown():
    """A job that does not fit names its total and breakdown in GB against the capacity."""
    with pytest.raises(SpecError) as err:
        compile_plan("llama3-8b", {}, "a100-sxm", training={"global_batch": 1, "seq_len": 4096})
    msg = err.value.message
    assert msg.startswith("needs ") and "GB per accelerator on pipeline stage 0 (weights 16.1, grads 16.1, " \
        "optimizer 96.4, activations" in msg and msg.endswith("but a100-sxm has 80 GB")
    assert err.value.path == "parallelism"
