"""The bottleneck report: findings in plain words, each with what would help."""

from __future__ import annotations

from types import MappingProxyType, SimpleNamespace

import pandas as pd

from oassim.analysis.report import bottleneck_report, text_summary
from oassim.scheduler.results import Results

COLL = ["stage", "dim", "op", "where", "size_bytes", "groups", "group_size", "algorithm", "start_s", "end_s",
        "time_s", "alone_s", "exposed_s", "busbw_GBps", "bottleneck_tier", "bottleneck_util"]
OPS = ["stage", "rank", "stream", "name", "kind", "dim", "microbatch", "chunk", "start_s", "end_s", "exposed_s"]
MEM = SimpleNamespace(stage=0, total=40e9, capacity=80e9)


def _plan(pp=2, m=8, vpp=1, straddle_tp=0, overlap=True, memory=MEM):
    return SimpleNamespace(parallelism=SimpleNamespace(pp=pp, vpp=vpp), n_microbatches=m,
                           overlap=MappingProxyType({"overlap_grad_reduce": overlap, "tp_comm_overlap": overlap,
                                                     "overlap_param_gather": overlap, "ep_comm_overlap": overlap,
                                                     "overlap_p2p": overlap}),
                           straddling=MappingProxyType({"tp": straddle_tp}), memory=memory)


def _results(coll_rows, iteration=10.0, compute_s=9.0, plan=None, tiers=None):
    coll = pd.DataFrame(coll_rows, columns=COLL)
    ops = pd.DataFrame([(s, s, "compute", "f", "gemm", "", 0, 0, 0.0, compute_s, 0.0) for s in (0, 1)], columns=OPS)
    tiers = tiers if tiers is not None else pd.DataFrame(
        {"tier": ["scaleup", "leaf-spine"], "links": [8, 4], "bytes": [1e9, 1e9], "busy_s": [1.0, 4.0],
         "utilisation": [0.1, 0.4], "max_link_utilisation": [0.3, 0.97]})
    lu = pd.DataFrame({"t0_s": [0.0, 5.0], "t1_s": [5.0, 10.0], "tier": ["leaf-spine"] * 2,
                       "utilisation": [0.2, 0.8], "bytes": [1e9, 1e9]})
    return Results(scenario={"name": "t"}, plan=plan or _plan(), iteration_time_s=iteration, ops=ops,
                   collectives=coll, link_util=lu, tiers=tiers, network="analytical", provenance={})


def _coll(stage, dim, op, exposed, tier="leaf-spine", util=0.97):
    return (stage, dim, op, f"s{stage}/x", 1e9, 16, 8, "ring", 0.0, 1.0, 1.0, 1.0, exposed, 100.0, tier, util)


def test_exposed_dp_reduction_names_tier_utilisation_and_help():
    """DP all-reduce exposing time is reported with its tier, link utilisation and a remedy."""
    res = _results([_coll(1, "dp", "all_reduce", 0.2), _coll(1, "dp", "all_reduce", 0.11),
                    _coll(0, "dp", "all_reduce", 0.05)])
    lines = bottleneck_report(res)
    dp = next(x for x in lines if x.startswith("DP all-reduce"))
    assert "over the leaf-spine tier exposes 310 ms per iteration (3.1% of it) on stage 1" in dp
    assert "leaf-spine links run at 97%" in dp
    assert "gradient buckets" in dp and "more bandwidth on the leaf-spine tier" in dp


def test_most_utilised_tier_comes_first_and_hot_spots_are_flagged():
    """The headline names the busiest tier, its busiest link and its peak window."""
    lines = bottleneck_report(_results([]))
    assert lines[0].startswith("The most utilised tier is leaf-spine: its links are busy 40% of the iteration")
    assert "busiest link 97%" in lines[0] and "peaks at 80%" in lines[0]
    assert any(x.startswith("The busiest leaf-spine link is busy 97% of the iteration: a hot spot") for x in lines)


def test_tp_straddling_domains_suggests_keeping_tp_inside():
    """Exposed TP communication with straddling TP groups suggests keeping TP in the domain."""
    res = _results([_coll(0, "tp", "reduce_scatter", 0.5)], plan=_plan(straddle_tp=4))
    tp = next(x for x in bottleneck_report(res) if x.startswith("TP reduce-scatter"))
    assert "keep TP inside the scale-up domain" in tp


def test_disabled_overlap_suggests_enabling_it():
    """When the framework does not overlap gradient reduction, the remedy says to turn it on."""
    res = _results([_coll(0, "dp", "reduce_scatter", 0.5)], plan=_plan(overlap=False))
    line = next(x for x in bottleneck_report(res) if x.startswith("DP reduce-scatter"))
    assert "overlap_grad_reduce: true" in line


def test_big_bubble_suggests_micro_batches_or_interleaving():
    """A bubble above 5% of the iteration suggests more micro-batches or interleaving."""
    res = _results([], iteration=10.0, compute_s=7.0, plan=_plan(pp=4, m=8))
    line = next(x for x in bottleneck_report(res) if x.startswith("The pipeline bubble"))
    assert "3.00 s (30% of the iteration)" in line and "(pp-1)/(m*vpp) = 0.38 of compute" in line
    assert "more micro-batches" in line and "vpp > 1" in line
    # a summary's bubble takes precedence
    lines = bottleneck_report(res, {"bubble_s": 0.01, "exposed_comm_s": 0.0})
    assert not any(x.startswith("The pipeline bubble") for x in lines)


def test_small_exposures_are_not_reported_and_compute_bound_is_said():
    """Below 1% of the iteration a collective is not a finding; with no bubble, say compute-bound."""
    res = _results([_coll(0, "dp", "all_reduce", 0.05)], iteration=10.0, compute_s=9.9)
    lines = bottleneck_report(res)
    assert not any(x.startswith("DP") for x in lines)
    assert lines[-1].startswith("The iteration is compute-bound")


def test_tight_memory_is_reported():
    """Memory above 90% of HBM is a finding."""
    res = _results([], plan=_plan(memory=SimpleNamespace(stage=3, total=76e9, capacity=80e9)))
    assert any(x.startswith("Memory is tight: pipeline stage 3 needs 76.0 GB of 80 GB (95%)")
               for x in bottleneck_report(res))


def test_empty_frames_give_a_sentence():
    """A run without communication or tiers still returns readable findings."""
    empty = pd.DataFrame()
    res = Results({}, None, 1.0, pd.DataFrame(columns=OPS), pd.DataFrame(columns=COLL), empty, empty, "analytical", {})
    lines = bottleneck_report(res)
    assert lines and all(isinstance(x, str) and x for x in lines)


def test_text_summary_shows_headline_breakdown_and_findings():
    """The text summary lists the headline metrics, the breakdown and numbered findings."""
    record = {"name": "demo", "iteration_time_s": 12.5, "tokens_per_s": 1.34e6, "tflops_per_accelerator": 401.2,
              "mfu": 0.405, "hfu": 0.41, "exposed_comm_s": 0.31, "bubble_s": 1.2,
              "memory_per_accelerator_GB": 61.3, "breakdown": {"compute": 10.9, "exposed comm": 0.31},
              "exposed_comm_by_dim": {"dp": 0.31}, "findings": ["A.", "B."], "network": "analytical",
              "scenario": {"cluster": {"preset": "p", "accelerators": 1024}, "parallelism": {"tp": 8, "pp": 2},
                           "workload": {"model": {"name": "m"}, "seq_len": 8, "global_batch": 4,
                                        "precision": "bf16"}}}
    text = text_summary(record)
    for part in ("oassim run: demo", "m on 1,024 accelerators (p), tp8 pp2", "iteration time     12.5 s",
                 "1,340,000 tokens/s", "401.2 per accelerator", "MFU                40.5%", "61.3 GB",
                 "compute", "exposed comm by dimension: dp 310 ms", "1. A.", "2. B."):
        assert part in text


def test_bubble_far_above_the_schedule_points_at_the_slow_stage():
    """A bubble much larger than (pp-1)/(m*vpp) x compute is blamed on the slowest stage."""
    res = _results([_coll(1, "ep", "all_to_all", 2.0)], iteration=10.0, compute_s=4.0, plan=_plan(pp=2, m=16))
    line = next(x for x in bottleneck_report(res, {"bubble_s": 5.0, "exposed_comm_s": 0.0, "compute_s": 4.0})
                if x.startswith("The pipeline bubble"))
    assert "about 250 ms, so most of it is waiting for slower stages" in line
    assert "stage 1 exposes 2.00 s of communication" in line and "balance the stages" in line


def test_uncalibrated_runs_are_marked_next_to_their_numbers():
    """A run whose compute efficiencies are not fitted to its accelerator marks every figure
    they set (time, throughput, TFLOP/s, MFU, HFU) and names the entry; a calibrated one does not."""
    base = {"name": "x", "iteration_time_s": 1.0, "tokens_per_s": 1e6, "tflops_per_accelerator": 500.0,
            "mfu": 0.5, "hfu": 0.5, "memory_per_accelerator_GB": 40.0}
    text = text_summary({**base, "calibrated": False, "efficiency_entry": "default"})
    marked = [ln for ln in text.splitlines() if ln.endswith("[uncalibrated]")]
    assert len(marked) == 5
    assert "entry 'default'" in text and "memory" not in " ".join(marked)
    assert "uncalibrated" not in text_summary({**base, "calibrated": True})


def test_stage_imbalance_is_its_own_finding_and_headline():
    """Imbalance above 5% of the iteration is reported apart from the bubble, naming the
    busiest stage; below it, no finding; the text summary prints it as its own line."""
    res = _results([_coll(1, "ep", "all_to_all", 2.0)], iteration=10.0, compute_s=4.0, plan=_plan(pp=2, m=16))
    lines = bottleneck_report(res, {"bubble_s": 0.3, "imbalance_s": 4.0, "busiest_stage": 1,
                                    "exposed_comm_s": 2.0, "compute_s": 4.0})
    line = next(x for x in lines if x.startswith("Stage imbalance"))
    assert "4.00 s (40% of the iteration)" in line and "(stage 1)" in line and "balance the stages" in line
    assert not any(x.startswith("The pipeline bubble") for x in lines)  # 3% bubble: below the threshold
    lines = bottleneck_report(res, {"bubble_s": 0.3, "imbalance_s": 0.4, "exposed_comm_s": 2.0, "compute_s": 4.0})
    assert not any(x.startswith("Stage imbalance") for x in lines)
    text = text_summary({"name": "t", "iteration_time_s": 10.0, "bubble_s": 0.3, "imbalance_s": 4.0})
    assert "stage imbalance    4.00 s" in text
