"""Metrics are pure functions of Results, with the formulas of docs/architecture.md and docs/metrics.md."""

from __future__ import annotations

import dataclasses

import pytest

from oassim.analysis.metrics import breakdown, critical_rank, summary
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
    """bubble_s sums the critical rank's 'pipeline' idle intervals and nothing else."""
    who = critical_rank(run)
    w = run.waits[(run.waits["stage"] == who[0]) & (run.waits["rank"] == who[1])]
    pipe = w[w["reason"] == "pipeline"]
    assert breakdown(run)["bubble"] == pytest.approx(float((pipe["end_s"] - pipe["start_s"]).sum()))


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
