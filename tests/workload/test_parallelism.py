"""Every validation error of a job: one sentence, naming the key."""

from __future__ import annotations

import pytest

from oassim.errors import SpecError
from oassim.workload import ParallelismSpec, TrainingSpec, check_job, compile_plan, parse_workload, resolve_model
from oassim.workload.parallelism import stage_layer_counts
from tests.workload.conftest import TINY_GPT, TINY_MOE

GPT = resolve_model(TINY_GPT)  # 8 layers, 8 heads
MOE = resolve_model(TINY_MOE)  # 8 experts, kv_heads 2


def _check(model, par, train=None, accelerators=None):
    check_job(model, ParallelismSpec(**par), TrainingSpec(**(train or {"global_batch": 16})), accelerators)


@pytest.mark.parametrize("model, par, train, acc, path, fragment", [
    (GPT, dict(tp=2, pp=2, dp=2), None, 16, "parallelism", "tp*pp*dp*cp = 2*2*2*1 = 8 but the job has 16"),
    (GPT, dict(tp=3), None, None, "parallelism.tp", "tp 3 does not divide the 8 attention heads"),
    (MOE, dict(tp=4, dp=2, sp=True), None, None, "parallelism.tp", "tp 4 does not divide the 2 kv_heads"),
    (GPT, dict(pp=3), None, None, "parallelism.pp", "layers 8 are not divisible by pp = 3"),
    (GPT, dict(pp=2, vpp=3), {"global_batch": 16}, None, "parallelism.pp",
     "layers 8 are not divisible by pp*vpp = 6"),
    (GPT, dict(pp=2, vpp=2, schedule="1f1b"), None, None, "parallelism.vpp", "needs schedule 'interleaved'"),
    (MOE, dict(dp=16, ep=16), None, None, "parallelism.ep", "fewer than one of the 8 experts"),
    (MOE, dict(dp=6, ep=3), {"global_batch": 12}, None, "parallelism.ep", "ep 3 does not divide the 8 experts"),
    (MOE, dict(dp=2, ep=4), None, None, "parallelism.ep", "ep 4 must divide dp*cp = 2"),
    (GPT, dict(dp=2, ep=2), None, None, "parallelism.ep", "needs a mixture-of-experts model"),
    (MOE, dict(tp=2, dp=2), None, None, "parallelism.sp", "needs sp: true"),
    (GPT, dict(dp=3), {"global_batch": 16}, None, "workload.global_batch",
     "global_batch 16 is not divisible by micro_batch*dp = 1*3 = 3"),
    (GPT, dict(dp=2), {"global_batch": 16, "micro_batch": 3}, None, "workload.global_batch",
     "micro_batch*dp = 3*2 = 6"),
    (GPT, dict(pp=4, vpp=2), {"global_batch": 6}, None, "workload.global_batch",
     "micro-batch count (6) to be a multiple of pp 4"),
    (GPT, dict(cp=3), None, None, "workload.seq_len", "divisible by 2*cp = 6"),
    (GPT, dict(pp=3, first_stage_layers=3), None, None, "parallelism.first_stage_layers",
     "the 5 layers left after the first/last stages are not divisible by the 2 other stages"),
])
def test_validation_errors(model, par, train, acc, path, fragment):
    """Each impossible combination raises one SpecError naming the key."""
    with pytest.raises(SpecError) as err:
        _check(model, par, train, acc)
    e = err.value
    assert e.path == path
    assert fragment in e.message
    assert "\n" not in str(e)


def test_order_must_be_a_permutation_with_adjacent_data_dims():
    """The order names every dimension once, and cp, ep, dp are adjacent (consistent layouts)."""
    with pytest.raises(Exception, match="each of tp, cp, ep, dp, pp once"):
        ParallelismSpec(order="tp-dp-pp")
    with pytest.raises(Exception, match="cp, ep and dp must be adjacent"):
        ParallelismSpec(order="tp-cp-pp-ep-dp")
    assert ParallelismSpec(order="tp-pp-dp-ep-cp").order == "tp-pp-dp-ep-cp"


def test_valid_jobs_pass_and_derived_sizes():
    """A valid MoE job passes; edp = dp*cp/ep; the schedule defaults from vpp."""
    par = ParallelismSpec(tp=2, dp=4, cp=2, ep=4, sp=True, vpp=1)
    check_job(MOE, par, TrainingSpec(global_batch=16), 16)
    assert par.edp == 2 and par.schedule_name == "1f1b" and par.world == 16
    assert ParallelismSpec(pp=2, vpp=2).schedule_name == "interleaved"
    assert ParallelismSpec(zero="fsdp").zero_stage == 3


def test_uneven_pipeline_split_llama3_405b():
    """Llama 3 405B: 126 layers on pp 16 with 7 on the first and last stage, 8 elsewhere."""
    m = resolve_model("llama3-405b")
    par = ParallelismSpec(tp=8, pp=16, dp=128, sp=True, first_stage_layers=7, last_stage_layers=7)
    check_job(m, par, TrainingSpec(global_batch=2048), 16384)
    counts = stage_layer_counts(m, par)
    assert counts[0] == counts[-1] == 7 and set(counts[1:-1]) == {8} and sum(counts) == 126


def test_parse_workload_section():
    """The scenario's workload section gives (model, training); an inline model uses DESIGN keys."""
    m, t = parse_workload({"model": "llama3-8b", "seq_len": 4096, "global_batch": 64, "recompute": "full"})
    assert m.name == "llama3-8b" and t.seq_len == 4096 and t.recompute == "full"
    inline = {k: TINY_GPT[k] for k in ("layers", "hidden", "ffn_hidden", "heads", "vocab", "activation")}
    m, t = parse_workload({"model": {**inline, "kv_heads": 8}, "seq_len": 256, "global_batch": 8})
    assert m.layers == 8 and t.resolved_seq_len(m) == 256
    with pytest.raises(SpecError) as err:
        parse_workload({"model": "llama3-8b", "global_batch": 8, "recompute": "some"})
    assert err.value.path == "workload.recompute"
    with pytest.raises(SpecError) as err:
        parse_workload({"global_batch": 8})
    assert err.value.path == "workload.model"


def test_fp8_on_a100_is_refused_naming_precision():
    """A100 has no FP8 format: the error names workload.precision."""
    with pytest.raises(SpecError) as err:
        compile_plan(TINY_GPT, {}, "a100-sxm", training={"global_batch": 4, "precision": "fp8"})
    assert err.value.path == "workload.precision" and "no fp8 peak" in err.value.message


def test_unfused_attention_refuses_context_parallelism():
    """Ring attention needs a fused kernel; the 2021 framework has none."""
    with pytest.raises(SpecError) as err:
        compile_plan(TINY_GPT, {"cp": 2}, "a100-sxm",
                     training={"global_batch": 4, "framework": "megatron-lm-2021"})
    assert err.value.path == "parallelism.cp"


def test_unknown_framework_lists_known():
    """An unknown framework generation lists the known ones."""
    with pytest.raises(SpecError, match="known: megatron-core, megatron-core-2025, megatron-lm-2021"):
        compile_plan(TINY_GPT, {}, "a100-sxm", training={"global_batch": 4, "framework": "jax"})
