"""Plan compiler: FLOP totals, conservation of work, collectives in place, the replay contract."""

from __future__ import annotations

import dataclasses
from collections import Counter

import numpy as np
import pytest

from oassim.errors import SpecError
from oassim.workload import SCHEDULES, compile_plan, resolve_model
from oassim.workload.memory import stage_params
from oassim.workload.steps import CollectiveCall, ComputeOp
from tests.workload.conftest import TINY_GPT, TINY_MOE

T = {"global_batch": 16, "micro_batch": 2}


def _plan(model=TINY_GPT, par=None, train=None, acc="h100-sxm", fabric=None, **kw):
    return compile_plan(model, par or {}, acc, fabric, training={**T, **(train or {})}, **kw)


def _matmul_params(m):
    """Active parameters that are matmul weights (norm weights and biases excluded)."""
    small = m.norm_params
    for L in range(m.layers):
        small += 2 * m.norm_params
        if m.has_bias:
            small += m.heads * m.d_head + 2 * m.n_kv_heads * m.d_head + m.hidden
            w, n = (m.expert_ffn, m.top_k + m.shared_experts) if m.is_moe_layer(L) else (m.ffn_hidden, 1)
            small += n * ((m.ffn_matrices - 1) * w + m.hidden)
    return m.active_params - small


def _calls(steps, **match):
    return [x for x in steps if isinstance(x, CollectiveCall) and all(getattr(x, k) == v for k, v in match.items())]


CASES = [
    (TINY_GPT, {"tp": 2, "pp": 2, "dp": 2}, {"recompute": "full"}),
    (TINY_GPT, {"tp": 2, "pp": 2, "vpp": 2, "dp": 2, "sp": True}, {"recompute": "selective"}),
    (TINY_GPT, {"cp": 2, "dp": 2, "zero": 3}, {}),
    (TINY_MOE, {"tp": 2, "dp": 4, "ep": 4, "sp": True, "pp": 2, "zero": 1}, {"recompute": "full"}),
    (TINY_MOE, {"dp": 2, "cp": 2, "ep": 4, "zero": 2}, {}),
]


@pytest.mark.parametrize("model, par, train", CASES)
def test_flop_totals_against_closed_form(model, par, train):
    """Summed over ranks and micro-batches, the ops' FLOPs equal (6 N + 12 l h s + 6 h V) per
    token; model FLOPs follow docs/architecture.md; hardware FLOPs add exactly the recomputed forward."""
    p = _plan(model, par, train)
    m = resolve_model(model)
    s, tok = p.seq_len, p.tokens_per_iteration
    assert p.flops.model == m.model_flops_per_token(s) * tok
    executed = p.flops.megatron - p.flops.recomputed
    assert executed == pytest.approx((6 * _matmul_params(m) + 12 * m.layers * m.hidden * s
                                      + 6 * m.hidden * m.vocab) * tok, rel=1e-12)
    # full recomputation re-runs each layer's forward (2 N + 4 l h s), not the logits;
    # selective re-runs the core attention (4 l h s)
    expected_re = {"none": 0.0, "selective": 4 * m.layers * m.hidden * s,
                   "full": 2 * _matmul_params(m) + 4 * m.layers * m.hidden * s}[p.training.recompute]
    assert p.flops.recomputed == pytest.approx(expected_re * tok, rel=1e-12)
    assert p.flops.hardware == p.flops.model + p.flops.recomputed


def test_megatron_flops_equal_narayanan_eq3():
    """GPT with full recomputation: 96 B s l h^2 (1 + s/6h + V/16lh) (Narayanan et al. 2021 eq. 3)."""
    p = _plan("megatron-gpt-1.7b", {"tp": 2, "pp": 2, "dp": 1}, {"seq_len": 2048, "global_batch": 8,
              "micro_batch": 1, "recompute": "full", "framework": "megatron-lm-2021"}, acc="a100-sxm")
    B, s, l, h, V = 8, 2048, 24, 2304, 51200
    assert p.flops.megatron == pytest.approx(96 * B * s * l * h * h * (1 + s / (6 * h) + V / (16 * l * h)), rel=1e-12)


@pytest.mark.parametrize("model, par, train", CASES)
def test_conservation_every_layer_once(model, par, train):
    """Chunks hold every layer exactly once (sum of per-stage layers = layers), and each
    layer's ops appear only in its chunk; each stage's schedule is the registered one."""
    p = _plan(model, par, train)
    layers = [L for st in p.stages for c in st.chunks for L in c.layers]
    assert sorted(layers) == list(range(p.model.layers))
    for st in p.stages:
        assert st.schedule == SCHEDULES[p.parallelism.schedule_name](
            p.parallelism.pp, st.stage, p.n_microbatches, p.parallelism.vpp)
        for c in st.chunks:
            for x in c.forward + c.backward:
                if isinstance(x, ComputeOp) and x.layer >= 0:
                    assert x.layer in c.layers


@pytest.mark.parametrize("model, par, train", CASES)
def test_replay_contract_waits_refer_to_earlier_async_calls(model, par, train):
    """Every ``after`` names an overlappable call issued earlier in the same list (the
    optimizer's name the gradient reductions of the last backward); ``where`` is unique per
    list; groups are read-only and inside the stage."""
    p = _plan(model, par, train)
    for st in p.stages:
        ranks = set(st.ranks.tolist())
        grad_calls = set()
        for c in st.chunks:
            for steps in (c.forward, c.backward, c.backward_last):
                wheres = [x.where for x in steps]
                assert len(wheres) == len(set(wheres))
                seen = set()
                for x in steps:
                    if isinstance(x, CollectiveCall):
                        assert not x.groups.flags.writeable
                        if x.dim != "pp":
                            assert set(x.groups.ravel().tolist()) <= ranks
                        if x.overlappable:
                            seen.add(x.where)
                    else:
                        assert set(x.after) <= seen, (x.where, x.after)
            grad_calls |= {x.where for x in c.backward_last if isinstance(x, CollectiveCall) and x.dim == "dp"}
        opt = [x for x in st.optimizer if isinstance(x, ComputeOp)][0]
        assert set(opt.after) <= grad_calls


def test_tp_collectives_per_layer_without_and_with_sp():
    """No SP: 2 all-reduces forward, 2 backward. SP: 2 all-gathers + 2 reduce-scatters forward;
    backward 2 all-gathers of gradients, 2 input re-gathers, 2 reduce-scatters. Full
    recomputation repeats the forward's collectives before the backward."""
    def per_layer(steps, L=3):
        return Counter(x.op for x in steps if isinstance(x, CollectiveCall) and x.dim == "tp" and f"/L{L}/" in x.where)
    c = _plan(TINY_GPT, {"tp": 2}).stages[0].chunks[0]
    assert per_layer(c.forward) == {"all_reduce": 2} and per_layer(c.backward) == {"all_reduce": 2}
    c = _plan(TINY_GPT, {"tp": 2, "sp": True}).stages[0].chunks[0]
    assert per_layer(c.forward) == {"all_gather": 2, "reduce_scatter": 2}
    assert per_layer(c.backward) == {"all_gather": 4, "reduce_scatter": 2}
    c = _plan(TINY_GPT, {"tp": 2}, {"recompute": "full"}).stages[0].chunks[0]
    assert per_layer(c.backward) == {"all_reduce": 4}
    size = 2 * 256 * 512 * 2  # b s h bytes
    assert {x.size_bytes for x in _calls(c.forward, dim="tp", op="all_reduce") if "/L3/" in x.where} == {size}


@pytest.mark.parametrize("zero", [0, 1, 2])
def test_dp_gradient_buckets_cover_every_parameter(zero):
    """Gradient buckets reduce every parameter once per step (ZeRO 0/1: last micro-batch only,
    all-reduce / reduce-scatter; ZeRO 2: every micro-batch), overlapped with the backward."""
    p = _plan(TINY_GPT, {"pp": 2, "dp": 4, "zero": zero, "bucket_params": 1_000_000})
    op = "all_reduce" if zero == 0 else "reduce_scatter"
    for st in p.stages:
        dense, _ = stage_params(p.model, p.parallelism, st.stage, p.seq_len)
        last = [x for c in st.chunks for x in _calls(c.backward_last, dim="dp")]
        assert {x.op for x in last} == {op} and all(x.overlappable for x in last)
        assert sum(x.size_bytes for x in last) == pytest.approx(2 * dense)
        assert len(last) > 1  # several buckets: overlap is possible
        every = [x for c in st.chunks for x in _calls(c.backward, dim="dp")]
        assert len(every) == (len(last) if zero == 2 else 0)


@pytest.mark.parametrize("zero", [0, 1])
def test_blocking_gradient_reductions_run_after_the_pipeline_flush(zero):
    """Without overlap (megatron-lm-2021), ZeRO 0/1 buckets leave the last backward (whose send
    upstream must not wait for them) and head each stage's optimizer list, covering every
    parameter once and blocking."""
    p = _plan(TINY_GPT, {"pp": 2, "dp": 4, "zero": zero, "bucket_params": 1_000_000},
              {"framework": "megatron-lm-2021"})
    for st in p.stages:
        dense, _ = stage_params(p.model, p.parallelism, st.stage, p.seq_len)
        assert not [x for c in st.chunks for x in _calls(c.backward_last, dim="dp")]
        head = []
        for x in st.optimizer:
            if not (isinstance(x, CollectiveCall) and x.dim == "dp"):
                break
            head.append(x)
        assert head and not any(x.overlappable for x in head)
        assert sum(x.size_bytes for x in head) == pytest.approx(2 * dense)


def test_zero3_gathers_each_layer_forward_and_backward():
    """FSDP: each layer's weights are all-gathered before its forward and its backward
    (prefetched, overlappable), and its gradients reduce-scattered right after its backward."""
    p = _plan(TINY_GPT, {"dp": 4, "zero": "fsdp"})
    c = p.stages[0].chunks[0]
    fwd = _calls(c.forward, dim="dp", op="all_gather")
    bwd = _calls(c.backward, dim="dp", op="all_gather")
    rs = _calls(c.backward, dim="dp", op="reduce_scatter")
    assert len(fwd) == len(bwd) == len(rs) == p.model.layers + 2  # + embedding, + logits
    assert all(x.overlappable for x in fwd + bwd + rs)
    layer_p = p.model.layer_params(0)
    assert {x.size_bytes for x in fwd if "_L" in x.where} == {2 * layer_p}


def test_pipeline_send_recv_between_neighbouring_stages():
    """F of each virtual stage but the last sends its activation (b s h / tp bytes) to the
    next; B sends the gradient back; interleaving wraps the last stage to stage 0."""
    p = _plan(TINY_GPT, {"tp": 2, "sp": True, "pp": 2, "vpp": 2, "dp": 1})
    pl = p.placement
    for st in p.stages:
        for c in st.chunks:
            fs, bs = _calls(c.forward, dim="pp"), _calls(c.backward, dim="pp")
            n_vs = 4
            assert len(fs) == (1 if c.virtual_stage < n_vs - 1 else 0)
            assert len(bs) == (1 if c.virtual_stage > 0 else 0)
            for x, nxt in [(y, c.virtual_stage + 1) for y in fs] + [(y, c.virtual_stage - 1) for y in bs]:
                assert x.op == "send_recv" and x.groups.shape == (2, 2)
                assert (pl.stage_of_rank[x.groups[:, 1]] == nxt % 2).all()
                assert x.size_bytes == 2 * 256 * 512 * 2 / 2


def test_context_parallel_ring_overlaps_attention():
    """cp 4: each attention runs in 4 steps; 3 send/recv of the key/value block travel the cp
    ring concurrently and step j waits for block j-1."""
    p = _plan(TINY_GPT, {"cp": 4})
    c = p.stages[0].chunks[0]
    ring = [x for x in _calls(c.forward, dim="cp") if "/L0/" in x.where]
    assert len(ring) == 3 and all(x.op == "send_recv" and x.overlappable for x in ring)
    assert ring[0].groups.shape == (4, 2)
    attn = [x for x in c.forward if isinstance(x, ComputeOp) and x.name.startswith("attn") and x.layer == 0
            and x.kind == "attention"]
    assert len(attn) == 4 and attn[1].after == (ring[0].where,)


def test_expert_dispatch_and_combine_on_critical_path():
    """EP: dispatch and combine all-to-all per MoE layer, forward and backward, blocking by default."""
    p = _plan(TINY_MOE, {"dp": 4, "ep": 4})
    c = p.stages[0].chunks[0]
    fwd = [x for x in _calls(c.forward, dim="ep") if "/L2/" in x.where]
    assert [x.where.split("/")[-1] for x in fwd] == ["dispatch", "combine"]
    assert all(x.op == "all_to_all" and not x.overlappable for x in fwd)
    assert not [x for x in _calls(c.forward, dim="ep") if "/L0/" in x.where]  # dense first layer


def test_optimizer_step_tied_embedding_and_param_gather():
    """pp > 1 with tied embeddings: first and last stage all-reduce the embedding gradient;
    ZeRO 1 all-gathers the updated weights after the step."""
    p = _plan(TINY_GPT, {"pp": 2, "dp": 2, "zero": 1})
    for st in p.stages:
        kinds = [(x.dim, x.op) if isinstance(x, CollectiveCall) else x.name for x in st.optimizer]
        assert kinds == [("pp", "all_reduce"), "optimizer_step", ("dp", "all_gather")]
        emb = st.optimizer[0]
        assert emb.groups.shape == (2, 2) and set(p.placement.stage_of_rank[emb.groups[0]]) == {0, 1}


def test_plan_is_frozen_and_reports_metrics(dgx16):
    """compile_plan returns frozen data; mfu/hfu follow docs/architecture.md; placement uses the fabric."""
    p = compile_plan(TINY_GPT, {"tp": 8, "dp": 2}, "a100-sxm", dgx16, training={**T, "recompute": "full"})
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.n_microbatches = 3  # type: ignore[misc]
    t = 2.0
    assert p.mfu(t) == p.flops.model / (t * 16 * 312e12)
    assert p.hfu(t) == pytest.approx(p.mfu(t) * 4 / 3, rel=0.02)
    assert p.straddling["tp"] == 0 and p.straddling["dp"] == 8
    assert p.compute_only_s > 0 and p.memory.fits
    with pytest.raises(SpecError, match="but the job has 16 accelerators"):
        compile_plan(TINY_GPT, {"tp": 8}, "a100-sxm", dgx16, training=T)


def test_straddle_needs_opt_in(dgx16):
    """tp 16 over two 8-GPU nodes needs allow_straddle; then the plan reports it."""
    with pytest.raises(SpecError, match="tp groups of 16 ranks straddle scale-up domains of 8"):
        compile_plan(dict(TINY_GPT, heads=16), {"tp": 16}, "a100-sxm", dgx16, training=T)
    p = compile_plan(dict(TINY_GPT, heads=16), {"tp": 16, "allow_straddle": True}, "a100-sxm", dgx16, training=T)
    assert p.straddling["tp"] == 1


def test_durations_positive_and_compute_time_sums_schedule():
    """Every op has a positive duration; a stage's compute time is its schedule's sum."""
    p = _plan(TINY_GPT, {"pp": 2, "dp": 2}, {"recompute": "selective"})
    st = p.stages[0]
    for c in st.chunks:
        assert all(x.duration_s > 0 for x in c.forward + c.backward if isinstance(x, ComputeOp))
    expected = p.n_microbatches * (st.chunks[0].forward_s + st.chunks[0].backward_s)
    opt = sum(x.duration_s for x in st.optimizer if isinstance(x, ComputeOp))
    assert st.compute_s == pytest.approx(expected + opt)
    assert np.isclose(p.compute_only_s, max(s.compute_s for s in p.stages))
