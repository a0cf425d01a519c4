"""Any group shape keeps the hierarchical algorithm: partial, straddling and uneven groups are
costed within 15% of the bound their most loaded endpoint links set.

The bound, for an all-reduce of S over a group whose K domains hold m_d of its ranks each
(two-level reduce-scatter / all-reduce / all-gather without in-network reduction):

    T_lb = max_d max( 2 (m_d - 1) / m_d * S / R_up,  2 (K - 1) / K * (S / m_d) / R_out )

R_up is a rank's scale-up (NVLink) rate, R_out its NIC rate, both at the tuning's achievable
fraction: every rank of domain d sends S (m_d - 1) / m_d over NVLink in each of the two
in-domain halves, and domain d exports its share of the cross-domain ring, S / m_d per rank,
through each of its m_d NICs. A half-used node's fewer NICs carry a larger share; that
slowdown must show, a fallback to a flat ring must not.
"""

from __future__ import annotations

import numpy as np
import pytest

from oassim.collectives import CollectiveEngine, CollectiveRequest
from tests.collectives.conftest import preset_fabric

S = 2**30


def _rates(engine: CollectiveEngine, rank: int) -> tuple[float, float]:
    """(scale-up, scale-out) achievable injection rate of ``rank``, bytes/s."""
    f, caps = engine.fabric, engine.caps
    node = f.accel_node[rank]
    out = f.link_src == node
    cap = f.capacity_Bps
    up = cap[out & caps.link_scaleup].sum() * engine.eta_up
    nic_links = np.flatnonzero(out & ~caps.link_scaleup)
    nic = nic_links[0]
    onward = (f.link_src == f.link_dst[nic]) & (f.link_dst != node)
    r_out = min(cap[nic_links].sum(), cap[onward].sum()) * engine.eta_out
    return float(up), float(r_out)


def _bound(engine: CollectiveEngine, ranks: np.ndarray) -> float:
    dom = engine.caps.domain_of_rank[ranks]
    doms, counts = np.unique(dom, return_counts=True)
    K = len(doms)
    up, out = _rates(engine, int(ranks[0]))
    return max(max(2 * (m - 1) / m * S / up, 2 * (K - 1) / K * (S / m) / out) for m in counts)


@pytest.fixture(scope="module")
def dgx_engine() -> CollectiveEngine:
    return CollectiveEngine(preset_fabric("dgx-h100-superpod", 40))


@pytest.mark.parametrize("start", range(8))
def test_every_group_shape_is_within_15pct_of_its_endpoint_bound(dgx_engine, start):
    """For every contiguous group of 2 to 32 ranks (up to 4 DGX H100 nodes' worth, starting at
    every position of a node), hierarchical all-reduce of 1 GiB takes between the endpoint
    bound and 1.15 times it."""
    for r in range(2, 33):
        ranks = np.arange(start, start + r)
        res = dgx_engine.run(CollectiveRequest("all_reduce", S, ranks[None, :], "hierarchical_pipelined"))
        lb = _bound(dgx_engine, ranks)
        assert lb * (1 - 1e-9) <= res.time_s <= 1.15 * lb, (start, r, res.time_s / lb)


def test_half_node_sets_the_pace_by_its_nics(dgx_engine):
    """20 ranks = 8 + 8 + 4: the 4-GPU node's NICs export a whole node's share (twice the
    per-NIC bytes), so auto keeps a hierarchical algorithm whose time is set by those NICs:
    at least their ring bound, at most 20% above it (a tree across moves up to twice a
    ring's bytes on some NICs)."""
    ranks = np.arange(20)
    res = dgx_engine.run(CollectiveRequest("all_reduce", S, ranks[None, :]))
    assert res.algorithm.startswith("hierarchical")
    _, out = _rates(dgx_engine, 0)
    nic_time = 2 * 2 / 3 * (S / 4) / out
    assert nic_time <= res.time_s <= 1.2 * nic_time


def test_partial_rack_keeps_the_hierarchical_algorithm():
    """GB200 NVL72, 256 ranks = 3 full racks + 40: auto keeps a hierarchical algorithm, and
    the partial rack's ranks export 72/40 times a full rack rank's share of the buffer."""
    e = CollectiveEngine(preset_fabric("gb200-nvl72", 288))
    res = e.run(CollectiveRequest("all_reduce", S, np.arange(256)[None, :]))
    full = e.run(CollectiveRequest("all_reduce", S, np.arange(288)[None, :]))
    assert res.algorithm.startswith("hierarchical")
    assert res.time_s >= full.time_s * (1 - 1e-9)
    ph = e.phases(CollectiveRequest("all_reduce", S, np.arange(256)[None, :], "hierarchical"))
    cross = [p for p in ph if "across" in p.label][0]
    sent = np.bincount(cross.src, weights=cross.size_bytes, minlength=256)
    assert sent[216:].max() / sent[:72].max() == pytest.approx(72 / 40, rel=1e-9)


def test_rail_ring_orders_rotate_each_domain():
    """Ring c of a group visits every domain's ranks rotated left by c modulo the domain's
    count (the np.roll definition), for equal and unequal domain counts."""
    from oassim.collectives.algorithms.ring import rail_ring_orders

    rng = np.random.default_rng(5)
    for _ in range(30):
        lens = rng.integers(1, 6, rng.integers(1, 5))
        blocks = [[rng.integers(0, 100, int(n)) for n in lens] for _ in range(int(rng.integers(1, 4)))]
        want = np.stack([np.concatenate([np.roll(r, -(c % len(r))) for r in doms])
                         for doms in blocks for c in range(max(len(r) for r in doms))])
        got = rail_ring_orders(blocks)
        assert got.shape == want.shape and np.array_equal(got, want)
