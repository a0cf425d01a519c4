"""The replay of a plan: closed forms, pipeline bubbles, overlap, full-rank mode, records."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from oassim.analysis.metrics import summary
from oassim.collectives import CollectiveEngine, CollectiveRequest
from oassim.errors import SpecError
from oassim.scheduler import simulate
from oassim.workload import CollectiveCall, ComputeOp
from tests.scheduler.conftest import TINY_GPT, UNIFORM_GPT, FixedEngine, plan_of

ZERO = FixedEngine  # free communication: every call takes 0 s


def _bubble_ratio(fabric, **par):
    plan = plan_of(fabric, UNIFORM_GPT, **par)
    s = summary(simulate(plan, fabric, engine=ZERO(fabric)))
    return s["bubble_s"] / s["compute_s"], plan


def test_single_stage_job_equals_compute_plus_blocking_comm(dgx32):
    """pp 1 with blocking collectives: iteration = sum of compute + sum of each call's engine time."""
    plan = plan_of(dgx32, tp=2, pp=1, dp=16, global_batch=64, micro_batch=2)
    engine = CollectiveEngine(dgx32)
    res = simulate(plan, dgx32, engine=engine)
    st = plan.stages[0]
    expected = 0.0
    lists = [st.chunks[s.chunk].forward if s.kind == "F" else
             (st.chunks[s.chunk].backward_last if s.microbatch == plan.n_microbatches - 1
              else st.chunks[s.chunk].backward) for s in st.schedule] + [st.optimizer]
    for steps in lists:
        for x in steps:
            if isinstance(x, ComputeOp):
                expected += x.duration_s
            else:
                assert isinstance(x, CollectiveCall) and not x.overlappable
                expected += engine.run(CollectiveRequest(x.op, x.size_bytes, x.groups)).time_s
    assert res.iteration_time_s == pytest.approx(expected, rel=1e-9)


def test_1f1b_bubble_is_pp_minus_1_over_m_of_compute(dgx32):
    """1F1B with uniform stages and free communication: bubble = (pp-1)/m of the compute (Narayanan et al. 2021)."""
    ratio, plan = _bubble_ratio(dgx32, tp=1, pp=4, dp=8, global_batch=64)
    assert ratio == pytest.approx((4 - 1) / plan.n_microbatches, rel=0.01)


def test_interleaving_divides_the_bubble_by_vpp(dgx32):
    """The interleaved schedule with vpp 2 halves the 1F1B bubble (Narayanan et al. 2021 §2.2.2)."""
    one, plan = _bubble_ratio(dgx32, tp=1, pp=4, dp=8, global_batch=64)
    two, _ = _bubble_ratio(dgx32, tp=1, pp=4, dp=8, vpp=2, global_batch=64)
    assert two == pytest.approx((4 - 1) / (plan.n_microbatches * 2), rel=0.03)
    assert one / two == pytest.approx(2.0, rel=0.05)


def _dp_exposed(fabric, framework, dp_call_s):
    plan = plan_of(fabric, UNIFORM_GPT, framework=framework, tp=1, pp=1, dp=32, global_batch=64)

    def time_of(req):
        return dp_call_s if req.groups.shape[1] == 32 and req.op in ("all_reduce", "reduce_scatter") else 0.0

    res = simulate(plan, fabric, engine=FixedEngine(fabric, time_of))
    grads = res.collectives[res.collectives["where"].astype(str).str.contains("/grad_")]
    return summary(res)["exposed_comm_by_dim"]["dp"], float(grads["time_s"].sum()), plan


def test_dp_overlap_hides_gradient_buckets_behind_a_long_backward(dgx32):
    """Overlapped buckets that are short next to the backward leave only the last one exposed."""
    exposed, total, plan = _dp_exposed(dgx32, "megatron-core", 1e-4)
    assert total > 0 and exposed < 0.1 * total


def test_dp_overlap_exposes_buckets_when_the_backward_is_short(dgx32):
    """Overlapped buckets much longer than the backward are mostly exposed (they queue on the DP stream)."""
    exposed, total, plan = _dp_exposed(dgx32, "megatron-core", 0.1)
    backward = plan.stages[0].chunks[0].backward_s
    assert exposed > total - backward - 1e-9 and exposed > 0.5 * total


def test_without_overlap_every_bucket_is_exposed(dgx32):
    """Megatron-LM 2021 reduces gradients after the backward, blocking: all of it is exposed."""
    exposed, total, _ = _dp_exposed(dgx32, "megatron-lm-2021", 1e-4)
    assert exposed == pytest.approx(total, rel=1e-9)


CONFIGS = [
    dict(framework="megatron-lm-2021", tp=2, pp=2, dp=8, global_batch=64, micro_batch=2, recompute="full"),
    dict(framework="megatron-core", tp=2, pp=4, dp=4, vpp=2, global_batch=32, sp=True),
    dict(framework="megatron-core", tp=2, pp=2, dp=8, global_batch=32, zero=3),
]


@pytest.mark.parametrize("cfg", CONFIGS, ids=["2021-recompute", "core-interleaved-sp", "core-zero3"])
def test_breakdown_sums_to_the_iteration_time(dgx32, cfg):
    """compute + exposed comm + bubble + sync + optimizer of the critical rank = iteration time."""
    cfg = dict(cfg)
    plan = plan_of(dgx32, TINY_GPT, framework=cfg.pop("framework"), **cfg)
    s = summary(simulate(plan, dgx32))
    assert sum(s["breakdown"].values()) == pytest.approx(s["iteration_time_s"], rel=1e-6)


def test_same_seed_same_results(dgx32):
    """Two runs with one seed give identical frames and iteration time."""
    plan = plan_of(dgx32, framework="megatron-core", tp=2, pp=2, dp=8, global_batch=32)
    a, b = simulate(plan, dgx32, seed=3), simulate(plan, dgx32, seed=3)
    assert a.iteration_time_s == b.iteration_time_s
    for name in ("ops", "collectives", "link_util", "tiers", "waits"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name))


def test_compute_stream_runs_one_op_at_a_time(dgx32):
    """Compute ops of one rank never overlap, and every op of the schedule is recorded once."""
    plan = plan_of(dgx32, framework="megatron-core", tp=2, pp=4, dp=4, vpp=2, global_batch=32)
    res = simulate(plan, dgx32)
    comp = res.ops[res.ops["stream"] == "compute"].sort_values(["rank", "start_s"])
    for _, g in comp.groupby("rank"):
        assert np.all(g["start_s"].to_numpy()[1:] >= g["end_s"].to_numpy()[:-1] - 1e-12)
    expected = 0
    for st in plan.stages:
        for s in st.schedule:
            c = st.chunks[s.chunk]
            steps = c.forward if s.kind == "F" else (c.backward_last if s.microbatch == plan.n_microbatches - 1
                                                     else c.backward)
            expected += sum(isinstance(x, ComputeOp) for x in steps)
        expected += sum(isinstance(x, ComputeOp) for x in st.optimizer)
    assert len(comp) == expected


def test_a_forward_starts_after_the_previous_stage_sent_it(dgx32):
    """F(vs, mb) starts no earlier than the end of F(vs-1, mb)'s send (replay contract)."""
    plan = plan_of(dgx32, tp=2, pp=4, dp=4, global_batch=32)
    res = simulate(plan, dgx32)
    ops, coll = res.ops, res.collectives
    sends = coll[coll["where"].astype(str).str.endswith("/F/send")]
    first = ops[(ops["stream"] == "compute")].groupby(["stage", "microbatch"])["start_s"].min()
    for row in sends.itertuples():
        assert first[(row.stage + 1, row.microbatch)] >= row.end_s - 1e-12


def test_blocking_gradient_reductions_wait_for_the_pipeline_flush(dgx32):
    """Non-overlapped DP reductions start after the stage's last backward has sent its gradient upstream."""
    plan = plan_of(dgx32, tp=2, pp=2, dp=8, global_batch=32)
    coll = simulate(plan, dgx32).collectives
    where = coll["where"].astype(str)
    grads = coll[where.str.contains("/grad_") & (coll["stage"] == 1)]
    last_send = coll[where.str.endswith("/B/send") & (coll["stage"] == 1)]["end_s"].max()
    assert len(grads) and grads["start_s"].min() >= last_send - 1e-12


def test_full_rank_agrees_with_representative_mode(dgx32):
    """Without stragglers, replaying all 32 ranks gives the representative iteration time within 1%."""
    plan = plan_of(dgx32, framework="megatron-core", tp=2, pp=2, dp=8, global_batch=32, micro_batch=2)
    rep = simulate(plan, dgx32)
    full = simulate(plan, dgx32, full_rank=True)
    assert full.iteration_time_s == pytest.approx(rep.iteration_time_s, rel=0.01)
    assert full.ops["rank"].nunique() == 32


def test_a_straggler_slows_the_iteration_by_its_extra_compute(dgx32):
    """One chip 1.5x slower delays the synchronous job by about its extra compute (pp 1: all on the critical path)."""
    plan = plan_of(dgx32, tp=2, pp=1, dp=16, global_batch=32)
    base = simulate(plan, dgx32, full_rank=True)
    slow = simulate(plan, dgx32, full_rank=True, stragglers={5: 1.5})
    extra = 0.5 * plan.stages[0].compute_s
    assert slow.iteration_time_s - base.iteration_time_s == pytest.approx(extra, rel=0.1)
    s = summary(slow)
    assert s["critical_rank"] == 5
    assert s["compute_s"] + s["optimizer_s"] == pytest.approx(1.5 * plan.stages[0].compute_s)
    peers = slow.waits[(slow.waits["rank"] == 4) & (slow.waits["reason"] == "sync")]
    assert (peers["end_s"] - peers["start_s"]).sum() > 0.5 * extra  # its TP peer waited for it


def test_bad_stragglers_and_oversized_full_rank_jobs_are_refused(dgx32):
    """A straggler outside the job, a non-positive factor, or too many ranks raise SpecError."""
    plan = plan_of(dgx32, tp=2, pp=1, dp=16, global_batch=32)
    with pytest.raises(SpecError, match="outside the job"):
        simulate(plan, dgx32, stragglers={99: 2.0})
    with pytest.raises(SpecError, match="> 0"):
        simulate(plan, dgx32, stragglers={3: 0.0})
    import oassim.scheduler.replay as replay

    old, replay.FULL_RANK_LIMIT = replay.FULL_RANK_LIMIT, 16
    try:
        with pytest.raises(SpecError, match="full-rank"):
            simulate(plan, dgx32, full_rank=True)
    finally:
        replay.FULL_RANK_LIMIT = old
