"""Relabelled layers (``oassim.workload.ops.layer_steps``): the plan compiler emits one layer
of each kind per model chunk and relabels it for the chunk's other layers. The plans must be
the ones emitting every layer gives, step for step and field for field, on dense, MoE (with
leading dense layers), MLA + MTP models, with full and selective recomputation, sequence,
context, expert and interleaved pipeline parallelism."""

from __future__ import annotations

import numpy as np
import pytest

from oassim.workload import compile_plan, ops, plan as plan_module
from oassim.workload.steps import CollectiveCall, ComputeOp
from tests.workload.conftest import TINY_MOE

DENSE = dict(name="dense", layers=8, hidden=512, ffn_hidden=2048, heads=8, kv_heads=2, vocab=1024, seq_len=256,
             activation="swiglu")
MOE_LEAD = {**TINY_MOE, "name": "moe-lead", "layers": 8, "first_dense_layers": 3}
MLA_MTP = {**TINY_MOE, "name": "mla-mtp", "kv_heads": None, "kv_lora_rank": 64, "q_lora_rank": 96,
           "qk_nope_head_dim": 32, "qk_rope_head_dim": 16, "v_head_dim": 32, "mtp_layers": 1,
           "first_dense_layers": 1}

CASES = {
    "dense-tp-sp-pp-vpp-selective": (DENSE, dict(tp=2, pp=2, dp=2, vpp=2, sp=True), "selective"),
    "dense-cp-full": (DENSE, dict(tp=2, cp=2, pp=2, dp=2, sp=True), "full"),
    "moe-ep-lead-dense": (MOE_LEAD, dict(tp=1, ep=4, pp=2, dp=4), "selective"),
    "mla-mtp-ep": (MLA_MTP, dict(tp=2, ep=2, pp=2, dp=2, sp=True), "full"),
}


def _steps(plan):
    for st in plan.stages:
        for c in st.chunks:
            for part in ("forward", "backward", "backward_last"):
                yield from getattr(c, part)
        yield from st.optimizer


def _emit_every_layer(ctx, layer, backward, memo):
    return ops.layer_backward(ctx, layer) if backward else ops.layer_forward(ctx, layer)


@pytest.mark.parametrize("case", list(CASES))
def test_relabelled_layers_give_the_plan_of_every_layer_emitted(case, monkeypatch):
    model, par, recompute = CASES[case]
    train = {"global_batch": 16, "micro_batch": 1, "recompute": recompute, "framework": "megatron-core"}
    world = int(np.prod([par.get(k, 1) for k in ("tp", "cp", "pp", "dp")]))
    new = compile_plan(model, par, "h100-sxm", None, training=train, accelerators=world)
    with monkeypatch.context() as m:
        m.setattr(plan_module, "layer_steps", _emit_every_layer)
        ref = compile_plan(model, par, "h100-sxm", None, training=train, accelerators=world)
    a, b = list(_steps(new)), list(_steps(ref))
    assert len(a) == len(b) > 0
    layers = set()
    for x, y in zip(a, b):
        assert type(x) is type(y)
        if isinstance(x, ComputeOp):
            assert x == y, (x, y)  # every field, the duration included
            layers.add(x.layer)
        else:
            assert isinstance(x, CollectiveCall)
            for f in ("dim", "op", "size_bytes", "overlappable", "where"):
                assert getattr(x, f) == getattr(y, f), (f, x.where, y.where)
            assert np.array_equal(x.groups, y.groups)
    assert len(layers) > 3  # several layers per chunk were relabelled
    assert new.flops == ref.flops
    assert [s.memory for s in new.stages] == [s.memory for s in ref.stages]
