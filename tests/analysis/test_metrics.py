"""Metrics are pure functions of Results, with the formulas of docs/architecture.md and docs/metrics.md."""

from __future__ import annotations

import dataclasses

import pytest

from oassim.analysis.metrics import breakdown, busy_by_member, critical_rank, summary
from oassim.scheduler import simulate
from oassim.topology.cluster import build_fabric
from oassim.workload import compile_plan

MODEL = dict(name="tiny-gpt", layers=8, hidden=1024, ffn_hidden=4096, heads=8, vocab=8000, seq_len=512,
             activation="gelu")
KEYS = {"iteration_time_s", "tokens_per_s", "tflops_per_accelerator", "hfu_tflops_per_accelerator", "mfu", "hfu",
        "megatron_tflops_per_accelerator", "exposed_comm_s", "exposed_comm_by_dim", "bubble_s", "compute_s",
        "optimizer_s", "memory_per_accelerator_GB", "breakdown", "bottlenecks"}


@pytest.fixture(scope="module")
def run():
    """A small pipelined job with full recomputation and overlapped gradient buckets."""
    fabric = build_fabric("dgx-a100-superpod", 32)
    plan = compile_plan(MODEL, {"tp": 2, "pp": 2, "dp": 8}, "a100-sxm", fabric,
                        training={"global_batch": 32, "micro_batch": 2, "recompute": "full",
                                  "framework": "megatron-core"})
    return simulate(plan, fabric)


def test_summary_has_every_documented_key(run):
    """summary() returns at least the keys the experiments layer and the report rely on."""
    s = summary(run)
    assert KEYS <= set(s)
    assert set(s["exposed_comm_by_dim"]) == {"tp", "cp", "ep", "dp", "pp"}


def test_throughput_formulas(run):
    """MFU/HFU, TFLOP/s and tokens/s follow the docs/architecture.md definitions from the plan's FLOP counts."""
    s, p, T = summary(run), run.plan, run.iteration_time_s
    n = p.n_accelerators
    assert s["mfu"] == pytest.approx(p.flops.model / (T * n * p.peak_flops))
    assert s["mfu"] == pytest.approx(p.mfu(T))
    assert s["hfu"] == pytest.approx(p.hfu(T)) and s["hfu"] > s["mfu"]  # recomputation counts for HFU only
    assert s["tflops_per_accelerator"] == pytest.approx(p.flops.model / (n * T) / 1e12)
    assert s["megatron_tflops_per_accelerator"] == pytest.approx(p.flops.megatron / (n * T) / 1e12)
    assert s["tokens_per_s"] == pytest.approx(p.tokens_per_iteration / T)
    assert s["memory_per_accelerator_GB"] == pytest.approx(p.memory.total / 1e9)


def test_breakdown_adds_up_to_the_iteration_time(run):
    """compute + exposed comm per dim + bubble + sync + optimizer of the critical rank = T (within 1%)."""
    s = summary(run)
    assert sum(s["breakdown"].values()) == pytest.approx(s["iteration_time_s"], rel=0.01)
    assert s["exposed_comm_s"] == pytest.approx(sum(s["exposed_comm_by_dim"].values()))
    assert s["bubble_s"] > 0  # two stages: there is a pipeline bubble


def test_bubble_is_the_critical_ranks_pipeline_waiting(run):
    """bubble + imbalance sum the critical rank's 'pipeline' idle intervals and nothing else."""
    who = critical_rank(run)
    w = run.waits[(run.waits["stage"] == who[0]) & (run.waits["rank"] == who[1])]
    pipe = w[w["reason"] == "pipeline"]
    b = breakdown(run)
    assert b["bubble"] + b["imbalance"] == pytest.approx(float((pipe["end_s"] - pipe["start_s"]).sum()))
    assert b["bubble"] >= 0 and b["imbalance"] >= 0


# Untied (SwiGLU family) and a small vocabulary: the logits add ~3% to the last stage.
FLAT = dict(name="flat", layers=8, hidden=1024, ffn_hidden=4096, heads=8, vocab=1024, seq_len=512,
            activation="swiglu")


def _pipeline(par, train):
    fabric = build_fabric("dgx-a100-superpod", 8)
    plan = compile_plan(FLAT, {"dp": 1, **par}, "a100-sxm", fabric, accelerators=par["pp"],
                        training={"micro_batch": 1, "framework": "megatron-core", **train})
    return simulate(plan, fabric)


@pytest.mark.parametrize("pp, m, vpp", [(4, 8, 1), (2, 8, 1), (4, 8, 2)])
def test_balanced_pipeline_bubble_is_the_closed_form(pp, m, vpp):
    """Equal stages: the bubble is the schedule's own, (p-1)/(m v + p - 1) of the pipelined
    part of the iteration (the optimizer step excluded; Narayanan et al. 2021 §2.2, 1F1B for
    v = 1, interleaved for v = 2), within 10% (p2p latency, the first stage's embedding); the
    last stage's logits are the only imbalance, under 6% of the iteration."""
    res = _pipeline({"pp": pp, "vpp": vpp}, {"global_batch": m})
    s = summary(res)
    T = s["iteration_time_s"] - s["optimizer_s"]
    assert s["bubble_s"] / T == pytest.approx((pp - 1) / (m * vpp + pp - 1), rel=0.10)
    assert s["imbalance_s"] < 0.06 * T


def test_imbalanced_pipeline_shows_imbalance_not_bubble():
    """A middle stage with twice the layers of the others (2/4/2 on pp 3): the first stage,
    critical because it runs the last backward, waits for it; that waiting is imbalance (the
    busy-time difference, over 40% of the iteration), and what is left as bubble stays below
    the closed form of the slow stage, (p-1)/m x its busy time."""
    p, m = 3, 8
    res = _pipeline({"pp": p, "first_stage_layers": 2, "last_stage_layers": 2}, {"global_batch": m})
    s = summary(res)
    busy = busy_by_member(res)
    assert s["critical_stage"] == 0
    assert s["imbalance_s"] == pytest.approx(max(busy.values()) - busy[(0, 0)], rel=1e-6)
    assert s["imbalance_s"] > 0.4 * s["iteration_time_s"]
    assert 0 < s["bubble_s"] < (p - 1) / m * max(busy.values())
    # the slow stage ending last instead: it is critical and waits for nobody's work
    res = _pipeline({"pp": 2, "first_stage_layers": 2, "last_stage_layers": 6}, {"global_batch": m})
    s = summary(res)
    assert s["critical_stage"] == 1 and s["imbalance_s"] == 0.0


def test_bottlenecks_name_collectives_and_tiers(run):
    """Bottlenecks list collectives by exposed time (largest first) and tiers with a utilisation."""
    b = summary(run)["bottlenecks"]
    colls = [x for x in b if x["kind"] == "collective"]
    tiers = [x for x in b if x["kind"] == "tier"]
    assert colls and tiers
    assert [c["exposed_s"] for c in colls] == sorted((c["exposed_s"] for c in colls), reverse=True)
    assert all(0.0 <= t["utilisation"] <= 1.0 and t["detail"] for t in tiers)


def test_metrics_do_not_change_results(run):
    """summary() reads Results only: calling it twice gives the same answer and leaves frames intact."""
    before = dataclasses.replace(run, ops=run.ops.copy())
    assert summary(run)["iteration_time_s"] == summary(run)["iteration_time_s"]
    assert run.ops.equals(before.ops)
