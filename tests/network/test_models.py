"""Golden cases of both network models: closed forms where nothing is shared, hand-computed
max-min and static-load answers under planted contention, NVLink striping, injection limits."""

from __future__ import annotations

import numpy as np
import pytest

from oassim.network import AnalyticalNetwork, FlowNetwork, Flows, bottleneck, stripe, tier_utilisation
from tests.network.fabrics import HOST_BW, closed_form_alone, dgx, fat_tree

MODELS = (AnalyticalNetwork, FlowNetwork)


def _both(fabric, src, dst, size, salt=0):
    flows = Flows(src, dst, size)
    return AnalyticalNetwork(fabric).transfer(flows, salt), FlowNetwork(fabric).transfer(flows, salt)


def _disjoint(fabric, src, dst, salt):
    """Indices of a greedy subset of the pairs whose stripes share no directed link."""
    paths, owner, _ = fabric.spread(src, dst, salt)
    used: set[int] = set()
    keep = []
    for i in range(len(src)):
        mine = set(np.concatenate([paths[k] for k in np.flatnonzero(owner == i)]).tolist())
        if not mine & used:
            keep.append(i)
            used |= mine
    return np.array(keep)


@pytest.mark.parametrize("spec", [dict(endpoints=32), dict(endpoints=64, tiers=3, planes=2)])
def test_disjoint_pairs_on_fat_tree_match_closed_form(spec):
    """Pairs sharing no link: both models equal latency + bytes / bottleneck capacity and agree within 1%."""
    f = fat_tree(8, host_eff=0.9, ls_bw=25e9, **spec)
    ep = f.routing["endpoints"]
    rng = np.random.default_rng(5)
    src, dst = ep, rng.permutation(ep)
    keep = _disjoint(f, src, dst, salt=3)
    src, dst = src[keep], dst[keep]
    src, dst = src[src != dst], dst[src != dst]
    leaf = f.routing["leaf_of_endpoint"][f.routing["endpoints"].searchsorted(np.r_[src, dst])].reshape(2, -1)
    assert len(src) >= 8 and np.any(leaf[0] != leaf[1])  # cross-leaf pairs are present
    size = rng.uniform(1e6, 1e9, len(src))
    a, fl = _both(f, src, dst, size, salt=3)
    want = closed_form_alone(f, src, dst, size, salt=3)
    np.testing.assert_allclose(a.flow_finish_s, want, rtol=1e-9)
    np.testing.assert_allclose(fl.flow_finish_s, want, rtol=1e-6)
    np.testing.assert_allclose(fl.flow_finish_s, a.flow_finish_s, rtol=0.01)


def test_ring_permutation_on_single_switch():
    """A ring i -> i+1 on one leaf shares no link: finish = 400 ns + size / (50 GB/s x 0.9) in both models."""
    f = fat_tree(16, host_eff=0.9, endpoints=8)
    ep = f.routing["endpoints"]
    size = np.array([1, 2, 3, 4, 1, 2, 3, 4]) * 1e8
    a, fl = _both(f, ep, np.roll(ep, -1), size)
    want = 2 * 1e-7 + 2e-7 + size / (HOST_BW * 0.9)  # two host links + leaf forwarding
    np.testing.assert_allclose(a.flow_finish_s, want, rtol=1e-12)
    np.testing.assert_allclose(fl.flow_finish_s, want, rtol=1e-9)
    assert FlowNetwork(f).run(Flows(ep, np.roll(ep, -1), size)).events == 4  # one per distinct size


def test_ring_on_nvswitch_node_matches_closed_form():
    """A ring over the 8 GPUs of a DGX H100 shares no NVLink: both equal the closed form within 1%."""
    f = dgx(8)
    g = f.accel_node
    size = np.linspace(1e8, 8e8, 8)
    a, fl = _both(f, g, np.roll(g, -1), size)
    want = closed_form_alone(f, g, np.roll(g, -1), size)
    np.testing.assert_allclose(a.flow_finish_s, want, rtol=1e-9)
    np.testing.assert_allclose(fl.flow_finish_s, want, rtol=0.01)


def test_path_latency_counts_links_and_forwarding_nodes():
    """Path latency = link latencies + forwarding latency of intermediate switches (not the endpoints)."""
    f = fat_tree(8, oversubscription=3.0, endpoints=12, tiers=2)
    ep = f.routing["endpoints"]
    sub = stripe(f, Flows(ep[[0, 0]], ep[[1, 6]], [1.0, 1.0]))
    # same leaf: 2 host links + 1 leaf; across: 2 host + 2 leaf-spine links + leaf, spine, leaf
    np.testing.assert_allclose(sub.latency_s, [2e-7 + 2e-7, 2e-7 + 6e-7 + 6e-7], rtol=1e-12)


LAT = 2 * 1e-7 + 2 * 3e-7 + 3 * 2e-7  # endpoint -> leaf -> spine -> leaf -> endpoint


def _oversubscribed():
    """Radix 8 at 3:1: leaves of 6 endpoints with one 2-link (100 GB/s) bundle to a single spine."""
    f = fat_tree(8, oversubscription=3.0, endpoints=12, tiers=2)
    up = (f.link_tier == f.link_tier_names.index("leaf-spine"))
    assert np.all(f.capacity_Bps[up] == 2 * HOST_BW)  # 300 GB/s down vs 100 GB/s up per leaf
    return f, f.routing["endpoints"]


def test_planted_contention_on_oversubscribed_spine():
    """Two groups over one 100 GB/s spine uplink: max-min 1/6 each then 1/3; the analytical
    model's processor sharing on that one link gives the same finishes (A at 6 GB, B at 9 GB
    over 100 GB/s)."""
    f, ep = _oversubscribed()
    src, dst = ep[0:6], ep[6:12]
    size = np.array([1, 1, 1, 2, 2, 2]) * 1e9  # group A: 1 GB, group B: 2 GB
    run = FlowNetwork(f).run(Flows(src, dst, size))
    np.testing.assert_allclose(run.initial_rate_Bps, 100e9 / 6, rtol=1e-12)
    # A: 1 GB at 100/6 GB/s = 60 ms; then B's last 1 GB at 100/3 GB/s: + 30 ms
    np.testing.assert_allclose(run.result.flow_finish_s, np.r_[[0.06] * 3, [0.09] * 3] + LAT, rtol=1e-9)
    assert run.events == 2
    a = AnalyticalNetwork(f).transfer(Flows(src, dst, size))
    np.testing.assert_allclose(a.flow_finish_s, run.result.flow_finish_s, rtol=1e-9)
    np.testing.assert_allclose(a.flow_finish_s, np.r_[[6e9] * 3, [9e9] * 3] / 100e9 + LAT, rtol=1e-12)
    top = bottleneck(a, f, top=1)[0]
    assert top.tier == "leaf-spine" and top.bytes == 9e9
    assert tier_utilisation(a, f)["host"] == pytest.approx(2e9 / HOST_BW / a.time_s)


def test_planted_contention_receiver_and_spine_bottlenecks():
    """Group B (4 -> 1 receiver) is held to 12.5 GB/s by the host link, group A takes the spine's rest (25 GB/s)."""
    f, ep = _oversubscribed()
    src = ep[[0, 1, 2, 3, 4, 5]]
    dst = ep[[6, 7, 8, 8, 8, 8]]
    size = np.full(6, 1e9)
    run = FlowNetwork(f).run(Flows(src, dst, size))
    np.testing.assert_allclose(run.initial_rate_Bps, [25e9, 25e9] + [12.5e9] * 4, rtol=1e-12)
    np.testing.assert_allclose(run.result.flow_finish_s, np.r_[0.04, 0.04, [0.08] * 4] + LAT, rtol=1e-9)
    a = AnalyticalNetwork(f).transfer(Flows(src, dst, size))
    # static: A sees the uplink's 6 GB / 100 GB/s, B the receiver link's 4 GB / 50 GB/s
    np.testing.assert_allclose(a.flow_finish_s, np.r_[0.06, 0.06, [0.08] * 4] + LAT, rtol=1e-12)
    assert bottleneck(a, f, top=1)[0].tier == "host"


def test_nvlink_transfer_striped_over_all_switch_chips():
    """1 GB between two H100s takes 1e9 / (18 x 25 GB/s x eff) + latency, over all 4 NVSwitch chips."""
    f = dgx(8)
    su = f.link_tier == f.link_tier_names.index("scaleup")
    eff = f.link_eff[su]
    assert np.all(eff == eff[0])
    lat = 2 * f.link_lat[su].max() + f.node_lat[f.kind_mask("switch")].max()
    want = 1e9 / (18 * 25e9 * eff[0]) + lat
    for r in _both(f, f.accel_node[[0]], f.accel_node[[1]], [1e9]):
        assert r.time_s == pytest.approx(want, rel=0.01)
        used = np.flatnonzero(r.link_bytes > 0)
        assert len(used) == 8 and r.link_bytes.sum() == pytest.approx(2e9)
        chips = np.unique(np.r_[f.link_src[used], f.link_dst[used]])
        assert np.sum(f.kind_mask("switch")[chips]) == 4


@pytest.mark.parametrize("model", MODELS)
def test_injection_capped_by_sum_of_ports(model):
    """A GPU sending 1 GB to each of 7 peers at once moves at most the sum of its 18 NVLink port capacities."""
    f = dgx(8)
    g = f.accel_node
    scaleup = f.link_tier == f.link_tier_names.index("scaleup")
    ports = f.capacity_Bps[(f.link_src == g[0]) & scaleup].sum()
    assert ports == pytest.approx(18 * 25e9 * f.link_eff[scaleup][0])
    r = model(f).transfer(Flows(np.full(7, g[0]), g[1:], np.full(7, 1e9)))
    assert r.time_s >= 7e9 / ports
    assert r.time_s == pytest.approx(7e9 / ports, rel=1e-6)
    if model is FlowNetwork:
        run = FlowNetwork(f).run(Flows(np.full(7, g[0]), g[1:], np.full(7, 1e9)))
        first = f.link_src[run.sub.links[run.sub.ptr[:-1]]] == g[0]
        assert run.initial_rate_Bps[first].sum() == pytest.approx(ports, rel=1e-9)


@pytest.mark.parametrize("model", MODELS)
def test_nic_link_caps_scale_out_traffic(model):
    """GPU 0 sending to the 8 GPUs of the other node is held to its one 400G NIC; its NVLink traffic is not."""
    f = dgx(16)
    g = f.accel_node
    nic = f.capacity_Bps[(f.link_src == g[0]) & (f.link_tier == f.link_tier_names.index("nic"))]
    assert len(nic) == 1 and nic[0] == pytest.approx(HOST_BW)
    src, dst = np.full(9, g[0]), g[[8, 9, 10, 11, 12, 13, 14, 15, 1]]
    r = model(f).transfer(Flows(src, dst, np.full(9, 1e9)))
    remote = closed_form_alone(f, src[:8], dst[:8], np.full(8, 8e9))  # 8 GB through one NIC
    np.testing.assert_allclose(r.flow_finish_s[:8], remote, rtol=1e-9)
    assert r.flow_finish_s[8] == pytest.approx(closed_form_alone(f, g[0], g[1], 1e9)[0], rel=1e-9)


@pytest.mark.parametrize("n", [3, 7, 11])
def test_equal_flows_on_one_link_finish_in_one_event(n):
    """n equal flows into one receiver finish together, in one event, at n*b/cap + latency."""
    f = fat_tree(32, host_eff=0.9, endpoints=16)  # one leaf
    ep = f.routing["endpoints"]
    b = 1e9 / 3
    run = FlowNetwork(f).run(Flows(ep[1:n + 1], np.full(n, ep[0]), np.full(n, b)))
    assert run.events == 1
    assert np.ptp(run.result.flow_finish_s) == 0.0
    assert run.result.time_s == pytest.approx(n * b / (HOST_BW * 0.9) + 4e-7, rel=1e-12)
    fan_out = FlowNetwork(f).run(Flows(np.full(n, ep[0]), ep[1:n + 1], np.full(n, b)))
    assert fan_out.events == 1 and np.ptp(fan_out.result.flow_finish_s) == 0.0


def test_eps_zero_still_batches_exact_ties():
    """With eps = 0 only bitwise-equal completions share an event; equal flows still take one event."""
    f = fat_tree(16, endpoints=8)
    ep = f.routing["endpoints"]
    run = FlowNetwork(f, eps=0.0).run(Flows(ep[1:5], np.full(4, ep[0]), np.full(4, 1e9)))
    assert run.events == 1
