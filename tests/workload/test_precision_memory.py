"""Weights kept in their quantized form, the precision-aware optimizer's state dtypes and the
optimizer's CPU offload: memory against closed forms, and the one-line refusals."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from oassim.errors import SpecError
from oassim.workload import compile_plan, resolve_model
from oassim.workload.memory import (QUANTIZED_WEIGHT_BYTES, optimizer_bytes, stage_linear_params, stage_memory,
                                    stage_params, weight_bytes)
from oassim.workload.parallelism import ParallelismSpec, TrainingSpec, check_job

ROOT = Path(__file__).resolve().parents[2]
LLAMA = dict(name="tiny-llama", layers=4, hidden=512, ffn_hidden=1536, heads=8, kv_heads=2, vocab=1024,
             seq_len=256, activation="swiglu")
PAR = ParallelismSpec(tp=2, sp=True, dp=4, pp=2, zero=1)


def _t(**kw) -> TrainingSpec:
    return TrainingSpec(global_batch=16, micro_batch=1, **kw)


def _mem(train: TrainingSpec, par: ParallelismSpec = PAR, stage: int = 0, transpose: bool = False):
    return stage_memory(resolve_model(LLAMA), par, train, stage, 80e9, fp8_transpose=transpose)


def test_quantized_weight_bytes_follow_the_formats():
    """Per linear weight: BF16 2 B; per-tensor FP8 1 B (a transposed second byte on Hopper);
    MXFP8 two copies of 1 B + one scale byte per 32; NVFP4 two of 0.5 B + one per 16. Without
    fp8/fp4_param_gather the BF16 weight is kept beside the quantized copy."""
    assert weight_bytes(_t()) == 2.0
    assert weight_bytes(_t(precision="fp8", fp8_param_gather=True)) == 1.0
    assert weight_bytes(_t(precision="fp8", fp8_param_gather=True), fp8_transpose=True) == 2.0
    assert weight_bytes(_t(precision="fp8")) == 3.0
    assert weight_bytes(_t(precision="mxfp8", fp8_param_gather=True)) == pytest.approx(2 + 2 / 32)
    assert weight_bytes(_t(precision="nvfp4")) == pytest.approx(2 + 1 + 2 / 16)
    assert weight_bytes(_t(precision="nvfp4", fp4_param_gather=True)) == QUANTIZED_WEIGHT_BYTES["nvfp4"]


def test_linear_weights_are_the_layers_without_norms():
    """A Llama layer's linear weights: Q and O (h x h each), K and V (h x kv d each) and the
    three SwiGLU matrices (h x f each), over tp; two layers per stage at pp 2."""
    h, f, kv_d, tp = 512, 1536, 2 * 64, 2
    per_layer = (2 * h * h + 2 * h * kv_d + 3 * h * f) / tp
    dense, expert = stage_linear_params(resolve_model(LLAMA), PAR, 0)
    assert dense == pytest.approx(2 * per_layer) and expert == 0.0


def test_fp8_param_gather_drops_the_bf16_copy_of_the_linear_weights():
    """Weights term: BF16 everywhere minus (2 - 1) B per linear weight with FP8-only weights;
    embeddings and norms stay BF16 (both stages checked)."""
    m = resolve_model(LLAMA)
    for stage in (0, 1):
        lin = stage_linear_params(m, PAR, stage)[0]
        dense = stage_params(m, PAR, stage, 256)[0]
        bf16 = _mem(_t(), stage=stage).weights
        fp8 = _mem(_t(precision="fp8", fp8_param_gather=True), stage=stage).weights
        assert bf16 == pytest.approx(2 * dense)
        assert bf16 - fp8 == pytest.approx(lin)
        assert _mem(_t(precision="fp8"), stage=stage).weights - bf16 == pytest.approx(lin)


def test_fsdp_shards_the_quantized_weights_too():
    """Under ZeRO-3 the FP8-only weights are sharded over dp like the BF16 ones: the saving
    is the linear weights / dp, plus 1 B per weight of the two gathered layers."""
    par = ParallelismSpec(tp=2, sp=True, dp=4, pp=2, zero=3)
    m = resolve_model(LLAMA)
    lin = stage_linear_params(m, par, 0)[0]
    per_layer = (m.layer_params(0)) / 2
    saving = _mem(_t(), par).weights - _mem(_t(precision="fp8", fp8_param_gather=True), par).weights
    assert saving == pytest.approx(lin / 4 + 2 * per_layer)


def test_optimizer_state_bytes():
    """Megatron's default Adam state is 12 B (fp32 master + two fp32 moments); the
    precision-aware optimizer with BF16 weights keeps 2-byte master remainders (10 B), BF16
    moments take 2 B each, and CPU offload moves the chosen fraction to host."""
    assert optimizer_bytes(_t()) == 12.0
    pa = dict(use_precision_aware_optimizer=True)
    assert optimizer_bytes(_t(**pa)) == 10.0
    assert optimizer_bytes(_t(**pa, store_param_remainders=False)) == 12.0
    assert optimizer_bytes(_t(**pa, exp_avg_dtype="bf16", exp_avg_sq_dtype="bf16")) == 6.0
    assert optimizer_bytes(_t(**pa, main_params_dtype="fp16", exp_avg_dtype="fp8")) == 2 + 1 + 4
    # an FP8 recipe keeps Megatron-Core managing fp32 master weights (no remainders)
    assert optimizer_bytes(_t(precision="fp8", fp8_param_gather=True, **pa)) == 12.0
    assert optimizer_bytes(_t(**pa, optimizer_cpu_offload=True, optimizer_offload_fraction=0.25)) \
        == pytest.approx(0.75 * 10.0)
    assert optimizer_bytes(_t(**pa, optimizer_cpu_offload=True)) == 0.0


def test_optimizer_term_scales_with_the_state_bytes_and_dp():
    """The optimizer term is the state bytes times the stage's parameters over dp (ZeRO-1)."""
    m = resolve_model(LLAMA)
    dense = stage_params(m, PAR, 0, 256)[0]
    for kw in ({}, dict(use_precision_aware_optimizer=True, exp_avg_dtype="bf16")):
        t = _t(**kw)
        assert _mem(t).optimizer == pytest.approx(optimizer_bytes(t) * dense / 4)


def test_main_grads_dtype_is_megatrons_name_for_grad_precision():
    assert _t(main_grads_dtype="fp32").grad_precision == "fp32"
    assert _mem(_t(main_grads_dtype="fp32")).gradients == pytest.approx(2 * _mem(_t()).gradients)


@pytest.mark.parametrize("train, par, key", [
    (dict(fp8_param_gather=True), {}, "workload.fp8_param_gather"),
    (dict(precision="nvfp4", fp8_param_gather=True), {}, "workload.fp8_param_gather"),
    (dict(precision="fp8", fp4_param_gather=True), {}, "workload.fp4_param_gather"),
    (dict(precision="fp8", fp8_param_gather=True), dict(zero=0), "workload.fp8_param_gather"),
    (dict(exp_avg_dtype="bf16"), {}, "workload.exp_avg_dtype"),
    (dict(main_params_dtype="fp16"), {}, "workload.main_params_dtype"),
    (dict(optimizer_cpu_offload=True), {}, "workload.optimizer_cpu_offload"),
    (dict(use_precision_aware_optimizer=True, optimizer_offload_fraction=0.5), {},
     "workload.optimizer_offload_fraction"),
    (dict(use_precision_aware_optimizer=True), dict(zero="fsdp"), "workload.use_precision_aware_optimizer"),
])
def test_combinations_megatron_refuses_are_refused(train, par, key):
    m = resolve_model(LLAMA)
    p = ParallelismSpec(**{**dict(tp=2, sp=True, dp=4, pp=2, zero=1), **par})
    with pytest.raises(SpecError) as e:
        check_job(m, p, _t(**train))
    assert e.value.path == key and "\n" not in str(e.value)


def test_bad_value_is_one_line_and_exit_2(tmp_path):
    """Through the console entry point: an unknown moment dtype and an optimizer offload
    without the precision-aware optimizer each stop with one stderr line and status 2."""
    base = {"name": "t", "cluster": {"preset": "dgx-h100-superpod", "accelerators": 16},
            "workload": {"model": LLAMA, "global_batch": 16, "precision": "fp8"},
            "parallelism": {"tp": 2, "pp": 2, "dp": 4, "sp": True, "zero": 1}}
    for extra, words in (({"exp_avg_dtype": "fp4"}, "exp_avg_dtype"),
                         ({"optimizer_cpu_offload": True}, "use_precision_aware_optimizer"),
                         ({"optimizer_offload_fraction": 1.5}, "optimizer_offload_fraction")):
        d = yaml.safe_load(yaml.safe_dump(base))
        d["workload"].update(extra)
        p = tmp_path / "s.yaml"
        p.write_text(yaml.safe_dump(d))
        proc = subprocess.run([sys.executable, "-m", "oassim.cli", "run", str(p)], capture_output=True,
                              text=True, cwd=ROOT)
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.count("\n") == 1 and words in proc.stderr and "Traceback" not in proc.stderr


def test_a_plan_with_fp8_only_weights_needs_less_memory():
    """End to end through the plan compiler on H100 (FP8 transpose kept): FP8 weights with
    param gather cost 2 B per linear weight there, as much as BF16; 3 B without it."""
    kw = dict(global_batch=16, seq_len=256, precision="fp8")
    par = dict(tp=2, pp=2, dp=4, sp=True, zero=1)
    gather = compile_plan(LLAMA, par, "h100-sxm", None, training=dict(kw, fp8_param_gather=True), accelerators=16)
    cached = compile_plan(LLAMA, par, "h100-sxm", None, training=kw, accelerators=16)
    bf16 = compile_plan(LLAMA, par, "h100-sxm", None, training=dict(kw, precision="bf16"), accelerators=16)
    for g, c, b in zip(gather.stages, cached.stages, bf16.stages):
        lin = stage_linear_params(resolve_model(LLAMA), ParallelismSpec(**par), g.memory.stage)[0]
        assert g.memory.weights == pytest.approx(b.memory.weights)
        assert c.memory.weights - g.memory.weights == pytest.approx(2 * lin)
