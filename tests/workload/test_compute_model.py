"""Compute model: roofline golden cases, shape-dependent GEMM efficiency, flash attention, FP8."""

from __future__ import annotations

import math

import pytest

from oassim.hardware import load_catalog
from oassim.workload import ComputeModel, compile_plan, gemm_efficiency, load_efficiency
from oassim.workload.steps import ComputeOp
from tests.workload.conftest import TINY_GPT

EFF = load_efficiency()


def _cm(acc: str = "a100-sxm", precision: str = "bf16", framework: str = "megatron-core") -> ComputeModel:
    e, _ = EFF.for_accelerator(acc)
    return ComputeModel(load_catalog().accelerator(acc), e, EFF.framework(framework), precision)


def test_gemm_efficiency_golden_wave_quantisation():
    """One full wave of 108 128x128 tiles runs at e_max k/(k+k0); 109 tiles need two waves."""
    e = EFF.accelerators["a100-sxm"]
    full = gemm_efficiency(128 * 12, 128 * 9, 4096, 1, e)  # 108 tiles = 1 wave
    assert full == pytest.approx(e.gemm_e_max * 4096 / (4096 + e.gemm_k0))
    over = gemm_efficiency(128 * 109, 128, 4096, 1, e)  # 109 tiles = 2 waves
    assert over == pytest.approx(full * 109 / 216)
    padded = gemm_efficiency(100, 128 * 108, 4096, 1, e)  # 100 rows pad to one 128 tile
    assert padded == pytest.approx(full * 100 / 128)
    batched = gemm_efficiency(128, 128, 4096, 108, e)  # instances share waves
    assert batched == pytest.approx(full)


def test_small_hidden_and_thin_microbatch_run_below_large_gemm():
    """GEMM efficiency depends on the shapes: a small split hidden size or a thin micro-batch
    is slower per FLOP than a large GEMM (docs/architecture.md modelling notes)."""
    e = EFF.accelerators["a100-sxm"]
    big = gemm_efficiency(8192, 12288, 12288, 1, e)
    small_hidden = gemm_efficiency(8192, 2304 // 8, 2304, 1, e)
    thin = gemm_efficiency(200, 12288, 12288, 1, e)
    assert big > 0.95 * e.gemm_e_max
    assert small_hidden < 0.8 * big and thin < 0.8 * big


def test_roofline_compute_and_memory_bound():
    """time = max(flops / (peak eff), bytes / (bw mem_eff)) + overhead, both branches."""
    cm = _cm()
    e = cm.efficiency
    peak, bw = 312e12, 2.039e12
    g = ComputeOp("ffn_up", "gemm", 0, "x", 0, 2.0 * 8192 * 12288 * 12288, 1e6, (8192, 12288, 12288))
    assert cm.op_time(g) == pytest.approx(g.exec_flops / (peak * gemm_efficiency(8192, 12288, 12288, 1, e))
                                          + e.kernel_overhead_us * 1e-6)
    ew = ComputeOp("ln1", "norm", 0, "y", 0, 0, 1e9)
    assert cm.op_time(ew) == pytest.approx(1e9 / (bw * e.memory_efficiency) + e.kernel_overhead_us * 1e-6)


_CORE = {"attn", "attn_scores", "attn_softmax", "attn_dropout", "attn_context"}


def _attention_bytes(plan):
    """HBM bytes of layer 0's core attention (fused kernel, or the unfused kernels)."""
    c = plan.stages[0].chunks[0]
    return sum(x.bytes for x in c.forward if isinstance(x, ComputeOp) and x.layer == 0 and x.name in _CORE)


@pytest.mark.parametrize("s", [1024, 4096])
def test_fused_attention_traffic_linear_in_seq_len(s):
    """Flash-style attention moves O(s h) bytes: 4x the sequence, 4x the bytes (not 16x); the
    unfused 2021 kernel moves the s x s scores, growing ~s^2."""
    train = {"global_batch": 1}
    m = {**TINY_GPT, "seq_len": s}
    kw = dict(memory_check=False)
    fused = compile_plan(m, {}, "a100-sxm", training={**train, "seq_len": s}, **kw)
    fused4 = compile_plan({**m, "seq_len": 4 * s}, {}, "a100-sxm", training={**train, "seq_len": 4 * s}, **kw)
    assert _attention_bytes(fused4) / _attention_bytes(fused) == pytest.approx(4.0, rel=0.01)
    unf = compile_plan(m, {}, "a100-sxm", training={**train, "seq_len": s, "framework": "megatron-lm-2021"}, **kw)
    unf4 = compile_plan({**m, "seq_len": 4 * s}, {}, "a100-sxm",
                        training={**train, "seq_len": 4 * s, "framework": "megatron-lm-2021"}, **kw)
    assert _attention_bytes(unf4) / _attention_bytes(unf) > 12


def test_fp8_speeds_up_gemms_only():
    """FP8 speeds the layer GEMMs on H100 but leaves norms, attention and the optimizer alone,
    and its quantisation kernels cost HBM traffic, so the end-to-end gain stays well below 2x."""
    train = {"global_batch": 8, "seq_len": 4096, "micro_batch": 1}
    par = {"tp": 8, "pp": 4, "dp": 1, "sp": True}
    b = compile_plan("llama3-70b", par, "h100-sxm", training=train, memory_check=False)
    f = compile_plan("llama3-70b", par, "h100-sxm", training={**train, "precision": "fp8"}, memory_check=False)
    cb, cf = b.stages[1].chunks[0], f.stages[1].chunks[0]
    ops_b = {x.where: x for x in cb.forward + cb.backward if isinstance(x, ComputeOp)}
    ops_f = {x.where: x for x in cf.forward + cf.backward if isinstance(x, ComputeOp)}
    for w, x in ops_b.items():
        y = ops_f[w]
        if x.name.startswith(("ffn_up", "ffn_down")):
            assert y.duration_s < 0.85 * x.duration_s
        elif x.kind != "gemm":
            assert y.duration_s == x.duration_s
    speedup = b.compute_only_s / f.compute_only_s
    assert 1.15 < speedup < 1.9
    assert (f.peak_flops, b.peak_flops) == (1979e12, 989e12)  # dense FP8 / BF16, docs/sources.md A1


_QUANT = [("fp8", 6.0, 2), ("mxfp8", 2 + 2 * 33 / 32, 1), ("nvfp4", 4 + 2 * 9 / 16, 2)]


@pytest.mark.parametrize("precision, nbytes, kernels", _QUANT)
def test_quantisation_traffic_closed_form(precision, nbytes, kernels):
    """A low-precision forward GEMM costs its GEMM at the format's peak and e_max plus the
    quantisation of its m x k input: elements x bytes per element over the achievable HBM
    bandwidth, plus one kernel overhead per quantisation kernel (module docstring)."""
    from oassim.workload.compute import QUANT_BYTES, QUANT_KERNELS

    assert QUANT_BYTES[precision] == pytest.approx(nbytes) and QUANT_KERNELS[precision] == kernels
    acc = load_catalog().accelerator("b200-sxm")
    e, _ = EFF.for_accelerator("b200-sxm")
    cm = ComputeModel(acc, e, EFF.framework("megatron-core-2025"), precision)
    m, n, k = 8192, 14336, 4096
    g = ComputeOp("ffn_up", "gemm", 0, "x", 0, 2.0 * m * n * k, 1e3, (m, n, k))
    t_gemm = g.exec_flops / (acc.peak_flops(precision) * gemm_efficiency(m, n, k, 1, e, e.e_max(precision)))
    t_q = m * k * nbytes / (acc.hbm_bandwidth_Bps * e.memory_efficiency)
    ov = e.kernel_overhead_us * 1e-6
    assert cm.op_time(g) == pytest.approx(t_gemm + t_q + kernels * ov + ov)
    wg = ComputeOp("ffn_up_wgrad", "gemm", 0, "y", 0, 2.0 * m * n * k, 1e3, (k, n, m))
    assert cm.op_time(wg) == pytest.approx(
        wg.exec_flops / (acc.peak_flops(precision) * gemm_efficiency(k, n, m, 1, e, e.e_max(precision))) + ov)


def test_sequence_parallel_quantises_the_shard():
    """With SP the column-parallel input is quantised on the sequence shard (1/tp of it)."""
    from oassim.workload.compute import quantised_elements

    assert quantised_elements("qkv", 8192, 4096, 1, sp_tp=4) == 8192 * 4096 / 4
    assert quantised_elements("attn_out", 8192, 1024, 1, sp_tp=4) == 8192 * 1024
    assert quantised_elements("attn_out_dgrad", 8192, 4096, 1, sp_tp=4) == 8192 * 4096 / 4
    assert quantised_elements("ffn_up_wgrad", 8192, 4096, 1, sp_tp=4) == 0


def test_nvfp4_bf16_layers_share_runs_at_bf16():
    """Under nvfp4 the framework's BF16 layer share of each eligible GEMM runs at BF16."""
    acc = load_catalog().accelerator("gb300")
    e, _ = EFF.for_accelerator("gb300")
    fw = EFF.framework("megatron-core-2025")
    g = ComputeOp("ffn_down_wgrad", "gemm", 0, "x", 0, 2.0 * 8192 * 4096 * 14336, 1e3, (14336, 4096, 8192))
    t4 = ComputeModel(acc, e, fw, "nvfp4").op_time(g)
    tb = ComputeModel(acc, e, fw, "bf16").op_time(g)
    half = ComputeModel(acc, e, fw.model_copy(update={"nvfp4_bf16_layers": 0.5}), "nvfp4").op_time(g)
    assert half == pytest.approx(0.5 * t4 + 0.5 * tb)


@pytest.mark.parametrize("acc, precision", [("h100-sxm", "nvfp4"), ("h100-sxm", "mxfp8"), ("a100-sxm", "fp8"),
                                            ("mi300x", "nvfp4"), ("ascend-910c", "fp8")])
def test_precision_the_chip_lacks_is_refused(acc, precision):
    """A precision without a published dense peak on the chip is refused, naming the key."""
    from oassim.errors import SpecError

    with pytest.raises(SpecError) as err:
        compile_plan(TINY_GPT, {}, acc, training={"global_batch": 1, "precision": precision})
    assert "workload.precision" in str(err.value) and precision in str(err.value)


def test_every_catalog_accelerator_has_its_own_entry():
    """Every accelerator of the catalog has its own efficiency entry (its SM count and tile),
    and entries that reuse another chip's figures say they are uncalibrated."""
    cat = load_catalog()
    for name in cat.names("accelerator"):
        assert name in EFF.accelerators, name
    assert EFF.accelerators["b200-sxm"].sm_count == 148 and EFF.accelerators["h100-sxm"].sm_count == 132
    for name in ("h200-sxm", "gb200", "b300-sxm", "mi300x", "ascend-910c", "tpu-v5p"):
        e = EFF.accelerators[name]
        assert not e.calibrated and "uncalibrated" in e.notes


def test_uncalibrated_accelerator_is_reported():
    """A plan on an accelerator (or at a precision) whose efficiencies are not fitted or
    published for it is marked uncalibrated."""
    p = compile_plan(TINY_GPT, {}, "h200-sxm", training={"global_batch": 1})
    assert p.efficiency == "h200-sxm" and not p.calibrated
    p = compile_plan(TINY_GPT, {}, "b200-sxm", training={"global_batch": 1, "precision": "fp8"})
    assert p.calibrated and p.framework == "megatron-core-2025"
    e = EFF.accelerators["b200-sxm"].model_copy(update={"calibrated_precisions": ["bf16", "fp8"]})
    assert e.is_calibrated("fp8") and not e.is_calibrated("mxfp8")
    p = compile_plan(TINY_GPT, {}, "a100-sxm", training={"global_batch": 1})
    assert p.calibrated and p.framework == "megatron-core"


def test_efficiency_file_documents_every_number():
    """Each accelerator entry is either calibrated (fit rows, a reproducing command and how the
    rows are validated without their own fit), or says it is not."""
    for name, e in EFF.accelerators.items():
        if e.calibrated:
            assert e.fit["fit_rows"] and e.fit["command"] and e.fit["validation"]
        else:
            assert e.notes
        assert math.isfinite(e.gemm_e_max)
