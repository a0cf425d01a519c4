"""MoE token dispatch in the plan and its replay: what waits for the all-to-alls."""

from __future__ import annotations

import pytest

from oassim.scheduler import simulate
from oassim.workload import compile_plan
from oassim.workload.steps import CollectiveCall, ComputeOp
from tests.workload.conftest import TINY_MOE

T = {"global_batch": 128, "micro_batch": 2}


def _plan(par, fabric, train=None, model=TINY_MOE):
    return compile_plan(model, par, "a100-sxm", fabric, training={**T, **(train or {})})


@pytest.mark.parametrize("tp", [1, 2])
def test_expert_compute_waits_for_its_dispatch_when_overlapped(dgx16, tp):
    """With ep_comm_overlap the routed experts of every layer and micro-batch start after
    their dispatch all-to-all has completed, and the unpermute after the combine (replayed
    timeline); the shared expert may run while the dispatch travels."""
    par = {"tp": tp, "sp": tp > 1, "dp": 16 // tp, "ep": 8, "ep_comm_overlap": True}
    res = simulate(_plan(par, dgx16), dgx16)
    ops, coll = res.ops, res.collectives
    comp = ops[(ops["stream"] == "compute") & (ops["stage"] == 0)]
    a2a = coll[(coll["dim"] == "ep") & (coll["stage"] == 0)]
    short = a2a["where"].str.rsplit("/", n=1).str[-1]
    layer = a2a["where"].str.extract(r"/L(\d+)/")[0].astype(int)
    checked = 0
    for (L, mb), grp in comp.groupby(["layer", "microbatch"]):
        for call, consumer in (("dispatch", "expert_up"), ("combine", "unpermute"),
                               ("combine_bwd", "expert_down_dgrad"), ("dispatch_bwd", "permute_bwd")):
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
