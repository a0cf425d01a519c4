"""Placement: groups partition the ranks, tensor groups stay in a DGX node, straddling is caught."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oassim.errors import SpecError
from oassim.workload import ParallelismSpec, place

ORDERS = sorted({"-".join(p) for p in itertools.permutations(["tp", "cp", "ep", "dp", "pp"])
                 if max(p.index(d) for d in ("cp", "ep", "dp")) - min(p.index(d) for d in ("cp", "ep", "dp")) == 2})


def _assert_partition(groups: np.ndarray, world: int) -> None:
    flat = np.sort(groups.ravel())
    assert np.array_equal(flat, np.arange(world)), "every rank in exactly one group"


@settings(max_examples=60, deadline=None)
@given(tp=st.sampled_from([1, 2, 4]), cp=st.sampled_from([1, 2]), dp=st.sampled_from([1, 2, 4]),
       pp=st.sampled_from([1, 2, 3]), ep_div=st.sampled_from([1, 2, 4, 8]), order=st.sampled_from(ORDERS))
def test_every_rank_in_exactly_one_group_per_dimension(tp, cp, dp, pp, ep_div, order):
    """For any sizes and valid order: each group name partitions the ranks, sizes are right,
    and non-pipeline groups never cross a pipeline stage; ep groups lie inside dp_cp groups'
    stage."""
    ep = ep_div if (dp * cp) % ep_div == 0 else 1
    par = ParallelismSpec(tp=tp, cp=cp, dp=dp, pp=pp, ep=ep, order=order)
    pl = place(par)
    world = par.world
    sizes = {"tp": tp, "cp": cp, "dp": dp, "pp": pp, "ep": ep, "edp": dp * cp // ep, "dp_cp": dp * cp,
             "ep_intra": ep, "ep_inter": 1}  # no fabric: one domain per EP group
    for name, g in pl.groups.items():
        assert g.shape == (world // sizes[name], sizes[name]), name
        _assert_partition(g, world)
        if name != "pp":
            stages = pl.stage_of_rank[g]
            assert (stages == stages[:, :1]).all(), f"{name} group crosses stages"
    # pipeline groups visit stages 0..pp-1 in order
    assert (pl.stage_of_rank[pl.groups["pp"]] == np.arange(pp)).all()
    # dense and expert layouts agree: every cp/dp/ep/edp/dp_cp group holds ranks of one tensor
    # coordinate (expert-TP = tp), so its members run the same shard
    tp_pos = np.empty(world, dtype=np.int64)
    tp_pos[pl.groups["tp"]] = np.arange(tp)[None, :]
    for name in ("cp", "dp", "ep", "edp", "dp_cp", "pp"):
        pos = tp_pos[pl.groups[name]]
        assert (pos == pos[:, :1]).all(), name
    # each ep x edp block of a stage is the stage's dp_cp x (fixed tp) block
    for g in pl.groups["ep"]:
        dpcp = pl.groups["dp_cp"][np.any(np.isin(pl.groups["dp_cp"], g[0]), axis=1)][0]
        assert set(g) <= set(dpcp)


def test_default_order_tensor_innermost_pipeline_outermost():
    """tp-cp-ep-dp-pp: tp ranks consecutive, pp stages are the outermost blocks."""
    pl = place(ParallelismSpec(tp=4, cp=2, dp=2, pp=2))
    assert pl.groups["tp"][0].tolist() == [0, 1, 2, 3]
    assert pl.groups["cp"][0].tolist() == [0, 4]
    assert pl.groups["dp"][0].tolist() == [0, 8]
    assert pl.groups["pp"][0].tolist() == [0, 16]
    assert pl.stage_ranks(1).tolist() == list(range(16, 32))


def test_tp_groups_inside_one_dgx_node(dgx64):
    """On DGX A100 nodes (8 GPUs per scale-up domain), tp 8 groups never leave a node; dp does."""
    dom = dgx64.node_domain[dgx64.accel_node]
    pl = place(ParallelismSpec(tp=8, dp=4, pp=2), dom, dgx64.routing["domain_size"])
    for g in pl.groups["tp"]:
        assert len(set(dom[g])) == 1
    assert pl.straddling["tp"] == 0
    assert pl.straddling["dp"] == len(pl.groups["dp"])  # every dp group crosses nodes
    assert pl.domain_size == 8


def test_straddling_tp_group_is_refused_naming_dim_and_sizes(dgx64):
    """tp 16 on 8-GPU nodes: SpecError naming tp, the group size 16 and the domain size 8."""
    dom = dgx64.node_domain[dgx64.accel_node]
    with pytest.raises(SpecError) as err:
        place(ParallelismSpec(tp=16, dp=4), dom, 8)
    e = err.value
    assert e.path == "parallelism.tp"
    assert "tp groups of 16 ranks straddle scale-up domains of 8 accelerators" in e.message


def test_allow_straddle_reports_instead(dgx64):
    """With allow_straddle the placement succeeds and reports the straddling groups."""
    dom = dgx64.node_domain[dgx64.accel_node]
    pl = place(ParallelismSpec(tp=16, dp=4, allow_straddle=True), dom, 8)
    assert pl.straddling["tp"] == 4


def test_other_dims_can_be_required_in_domain(dgx64):
    """scaleup_dims extends the check, e.g. to expert parallelism."""
    dom = dgx64.node_domain[dgx64.accel_node]
    with pytest.raises(SpecError, match="ep groups of 16 ranks"):
        place(ParallelismSpec(tp=2, dp=32, ep=16, scaleup_dims=("tp", "ep")), dom, 8)


def test_job_larger_than_cluster(dgx16):
    """More ranks than accelerators is refused."""
    with pytest.raises(SpecError, match="needs 32 accelerators but the cluster has 16"):
        place(ParallelismSpec(tp=8, dp=4), dgx16.node_domain[dgx16.accel_node])


def test_stage_groups_and_pipeline_pairs():
    """stage_groups keeps one stage's groups; pipeline_pairs maps each pipeline's ranks."""
    pl = place(ParallelismSpec(tp=2, dp=2, pp=3))
    g = pl.stage_groups("tp", 2)
    assert g.shape == (2, 2) and set(g.ravel()) == set(pl.stage_ranks(2))
    pairs = pl.pipeline_pairs(0, 1)
    assert pairs.shape == (4, 2)
    assert (pl.stage_of_rank[pairs[:, 0]] == 0).all() and (pl.stage_of_rank[pairs[:, 1]] == 1).all()
    assert not pairs.flags.writeable
