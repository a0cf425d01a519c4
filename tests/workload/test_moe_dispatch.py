"""MoE token dispatch in the plan and its replay: what waits for the all-to-alls."""

from __future__ import annotations

from math import comb

import numpy as np
import pytest

from oassim.scheduler import simulate
from oassim.topology.cluster import build_fabric
from oassim.workload import compile_plan
from oassim.workload.dispatch import expected_domains
from oassim.workload.steps import CollectiveCall, ComputeOp
from tests.workload.conftest import TINY_MOE

T = {"global_batch": 128, "micro_batch": 2}
MOE64 = dict(TINY_MOE, name="moe64", experts=64, top_k=8)


def _plan(par, fabric, train=None, model=TINY_MOE):
    return compile_plan(model, par, "a100-sxm", fabric, training={**T, **(train or {})})


_PAIRS = {"alltoall": (("dispatch", "expert_up"), ("combine", "unpermute"),
                       ("combine_bwd", "expert_down_dgrad"), ("dispatch_bwd", "permute_bwd")),
          # DeepEP's two hops: the consumer waits for the second
          "deepep": (("dispatch_intra", "expert_up"), ("combine_inter", "unpermute"),
                     ("combine_inter_bwd", "expert_down_dgrad"), ("dispatch_inter_bwd", "permute_bwd"))}


@pytest.mark.parametrize("tp, dispatcher", [(1, "alltoall"), (2, "alltoall"), (1, "deepep")])
def test_expert_compute_waits_for_its_dispatch_when_overlapped(dgx16, tp, dispatcher):
    """With ep_comm_overlap the routed experts of every layer and micro-batch start after
    their dispatch all-to-all has completed, and the unpermute after the combine (replayed
    timeline); the shared expert may run while the dispatch travels. DeepEP on EP 16 over
    both nodes: after the last of its two hops."""
    par = {"tp": tp, "sp": tp > 1, "dp": 16 // tp, "ep": 8, "ep_comm_overlap": True}
    model = TINY_MOE
    if dispatcher == "deepep":
        par.update(ep=16, moe_token_dispatcher="deepep")
        model = MOE64
    res = simulate(_plan(par, dgx16, model=model), dgx16)
    ops, coll = res.ops, res.collectives
    comp = ops[(ops["stream"] == "compute") & (ops["stage"] == 0)]
    a2a = coll[(coll["dim"] == "ep") & (coll["stage"] == 0)]
    short = a2a["where"].str.rsplit("/", n=1).str[-1]
    layer = a2a["where"].str.extract(r"/L(\d+)/")[0].astype(int)
    checked = 0
    for (L, mb), grp in comp.groupby(["layer", "microbatch"]):
        for call, consumer in _PAIRS[dispatcher]:
            c = a2a[(short == call) & (layer == L) & (a2a["microbatch"] == mb)]
            op = grp[grp["name"] == consumer]
            if not len(c) or not len(op):
                continue
            assert op["start_s"].min() >= c["end_s"].max() - 1e-12, (L, mb, call)
            checked += 1
    # 3 MoE layers x (128 / (2 * dp)) micro-batches x 4 (call, consumer) pairs
    assert checked == 3 * (128 // (2 * par["dp"])) * 4


def test_overlapped_dispatch_marks_its_consumers_in_the_plan(dgx16):
    """The plan names the dispatch in the ``after`` of the first routed-expert op and the
    combine in the unpermute's; without overlap the calls are blocking and nobody waits."""
    for ovl in (True, False):
        p = _plan({"dp": 16, "ep": 8, "ep_comm_overlap": ovl}, dgx16)
        fwd = p.stages[0].chunks[0].forward
        calls = {x.where.rsplit("/", 1)[-1]: x for x in fwd if isinstance(x, CollectiveCall)
                 and x.dim == "ep" and "/L1/" in x.where}
        ops = {x.name: x for x in fwd if isinstance(x, ComputeOp) and x.layer == 1}
        assert set(calls) == {"dispatch", "combine"}
        assert all(c.overlappable == ovl for c in calls.values())
        if ovl:
            assert calls["dispatch"].where in ops["expert_up"].after
            assert calls["combine"].where in ops["unpermute"].after
            assert not ops["shared_up"].after  # the shared expert overlaps the dispatch
        else:
            assert not any(x.after for x in ops.values())


def test_expected_domains_matches_random_routing():
    """The closed form of distinct destination domains per token equals a seeded Monte Carlo
    draw of k distinct experts (within 1%), limited to the M domains chosen first; DeepSeek-V3
    on EP 64 over 8 nodes: 5.29 nodes unlimited, 3.63 with its limit of 4."""
    rng = np.random.default_rng(0)
    for E, D, k, M in ((256, 8, 8, None), (256, 8, 8, 4), (64, 4, 6, 2), (16, 2, 2, None)):
        per = E // D
        hits = []
        for _ in range(4000):
            doms = rng.permutation(D)[:M or D]
            pool = (doms[:, None] * per + np.arange(per)).ravel()
            hits.append(len(np.unique(rng.choice(pool, size=k, replace=False) // per)))
        assert expected_domains(E, D, k, M) == pytest.approx(np.mean(hits), rel=0.01)
    assert expected_domains(256, 8, 8) == pytest.approx(5.29, abs=0.01)
    assert expected_domains(256, 8, 8, 4) == pytest.approx(3.63, abs=0.01)
    assert expected_domains(256, 1, 8) == 1.0


def _ep_calls(plan, layer=1, steps="forward"):
    seq = getattr(plan.stages[0].chunks[0], steps)
    return {x.where.rsplit("/", 1)[-1]: x for x in seq
            if isinstance(x, CollectiveCall) and x.dim == "ep" and f"/L{layer}/" in x.where}


def test_fp8_dispatch_bytes_and_bf16_combine(dgx16):
    """FP8 dispatch: T k h (1 + 4/128) bytes (e4m3 and a 1 x 128 fp32 scale) forward and for
    the combine's backward; the combine and the dispatch's backward stay 2 bytes per element."""
    p = _plan({"dp": 16, "ep": 8, "moe_dispatch_precision": "fp8"}, dgx16, model=MOE64)
    tkh = 2 * 128 * 8 * 256  # micro-batch 2 x seq 128 tokens, top-8, hidden 256
    f, b = _ep_calls(p), _ep_calls(p, steps="backward")
    assert f["dispatch"].size_bytes == pytest.approx(tkh * (1 + 4 / 128))
    assert f["combine"].size_bytes == b["dispatch_bwd"].size_bytes == 2 * tkh
    assert b["combine_bwd"].size_bytes == pytest.approx(tkh * (1 + 4 / 128))


def test_deepep_sends_each_token_once_per_domain_then_forwards(dgx16):
    """DeepEP on EP 16 over two 8-GPU domains: the inter-domain hop carries T n h (n the
    expected distinct domains, 2 (1 - C(32, 8)/C(64, 8)) here) between the two ranks of the
    same local index, the intra-domain hop T k h among the 8 ranks of a domain; node-limited
    routing to one node leaves n = 1."""
    p = _plan({"dp": 16, "ep": 16, "moe_token_dispatcher": "deepep"}, dgx16, model=MOE64)
    c = _ep_calls(p)
    T, h, k = 2 * 128, 256, 8
    n = 2 * (1 - comb(32, 8) / comb(64, 8))
    assert set(c) == {"dispatch_inter", "dispatch_intra", "combine_intra", "combine_inter"}
    assert c["dispatch_inter"].group_size == 2 and c["dispatch_intra"].group_size == 8
    assert c["dispatch_inter"].size_bytes == pytest.approx(T * n * h * 2)
    assert c["dispatch_intra"].size_bytes == pytest.approx(T * k * h * 2)
    dom = dgx16.node_domain[dgx16.accel_node]
    g = c["dispatch_inter"].groups
    assert (dom[g][:, 0] != dom[g][:, 1]).all() and (g[:, 0] % 8 == g[:, 1] % 8).all()
    limited = _ep_calls(_plan({"dp": 16, "ep": 16, "moe_token_dispatcher": "deepep", "moe_max_nodes": 1},
                              dgx16, model=MOE64))
    assert limited["dispatch_inter"].size_bytes == pytest.approx(T * h * 2)
    res = simulate(p, dgx16)  # the two-hop plan replays
    assert res.iteration_time_s > 0


def test_domain_placement_keeps_ep_groups_inside_racks():
    """EP 64 on two 72-GPU NVL72 racks: consecutive ranks put the second EP group across
    both racks; ep_placement domain starts each group at a rack boundary (8 GPUs of each
    rack idle) and no EP group straddles."""
    fabric = build_fabric("gb200-nvl72", 144)
    par = {"dp": 128, "ep": 64}
    kw = dict(training={"global_batch": 128, "micro_batch": 1}, memory_check=False)
    cons = compile_plan(MOE64, {**par, "allow_straddle": True}, "gb200", fabric, accelerators=128, **kw)
    dom = compile_plan(MOE64, {**par, "ep_placement": "domain"}, "gb200", fabric, **kw)
    assert cons.straddling["ep"] == 1 and dom.straddling["ep"] == 0
    assert dom.n_accelerators == 128
    ranks = np.sort(dom.placement.groups["ep"].ravel())
    assert ranks.tolist() == list(range(64)) + list(range(72, 136))


def test_domain_placed_deepep_job_replays_alike_per_stage_and_per_rank():
    """The idle accelerators of ep_placement domain do not disturb the replay: every rank
    replayed (full-rank mode) gives the representative replay's iteration time."""
    fabric = build_fabric("gb200-nvl72", 144)
    p = compile_plan(MOE64, {"dp": 128, "ep": 64, "ep_placement": "domain", "moe_token_dispatcher": "deepep"},
                     "gb200", fabric, training={"global_batch": 128, "micro_batch": 1})
    t = simulate(p, fabric).iteration_time_s
    assert simulate(p, fabric, full_rank=True).iteration_time_s == pytest.approx(t, rel=1e-9)
