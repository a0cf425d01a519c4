"""The flow model hands its kernel only the links a transfer crosses, renumbered; the answer
must be the kernel's on the whole fabric's link ids, bit for bit (the kernel reads link ids
only as indices). Also the cluster router's stamped-link table against the pair lookup."""

from __future__ import annotations

import numpy as np
import pytest

from oassim.network import FlowNetwork, Flows
from oassim.network import _kernels as K
from oassim.network.analytical import stripe
from oassim.network.analytical import compact_links as _compact
from oassim.topology.cluster import build_fabric


@pytest.fixture(scope="module")
def gb200():
    return build_fabric("gb200-nvl72", 288)  # 4 NVL72 racks on the scale-out fat-tree


@pytest.mark.parametrize("n_links", [10, 10_000])  # the sorted-unique branch and the mark branch
def test_compact_renumbers_in_id_order(n_links):
    rng = np.random.default_rng(3)
    links = rng.integers(0, 10, 40) * (n_links // 10)
    used, local = _compact(links, n_links)
    assert np.all(np.diff(used) > 0)
    assert np.array_equal(used[local], links)
    assert local.dtype == np.int64 and local.max() == len(used) - 1


@pytest.mark.parametrize("seed", [0, 1])
def test_flow_run_equals_kernel_on_full_link_ids(gb200, seed):
    rng = np.random.default_rng(seed)
    ranks = gb200.n_accelerators
    src = rng.integers(0, ranks, 300)
    dst = (src + rng.integers(1, ranks, 300)) % ranks
    flows = Flows(gb200.accel_node[src], gb200.accel_node[dst], rng.uniform(1.0, 64.0, 300) * 2**20)
    run = FlowNetwork(gb200).run(flows, salt=seed)
    sub = stripe(gb200, flows, seed)
    m = len(sub.size_bytes)
    tx, rate0, delivered = np.empty(m), np.empty(m), np.empty(m)
    events = K.flow_completion(sub.ptr, sub.links, gb200.capacity_Bps, sub.size_bytes, 1e-9, tx, rate0, delivered)
    assert run.events == events > 1
    assert np.array_equal(run.sub_finish_s, tx + sub.latency_s)
    assert np.array_equal(run.initial_rate_Bps, rate0)
    assert np.array_equal(run.delivered_bytes, delivered)
    assert np.array_equal(run.result.link_bytes, sub.link_bytes(gb200.n_links))
    # the links outside the transfer carry nothing, and the bytes are conserved
    assert np.isclose(run.result.link_bytes.sum(), (sub.size_bytes * sub.hops).sum(), rtol=1e-12)


def test_stamped_links_match_pair_lookup(gb200):
    router = gb200.router
    tf = router.local.fabric
    rng = np.random.default_rng(7)
    doms = rng.integers(0, gb200.n_accelerators // router.size, 500)
    local = rng.integers(0, tf.n_links, 500)
    off = doms * router.domain_nodes
    want = gb200.link_ids(tf.link_src[local] + off, tf.link_dst[local] + off)
    assert np.array_equal(router.stamped_links(doms, local), want)
    assert np.array_equal(router.stamped_links(doms[::-1], local[::-1]), want[::-1])  # rows reused
