"""Conservation and capacity properties of both models on random flow sets (hypothesis)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oassim.network import AnalyticalNetwork, FlowNetwork, Flows
from tests.network.fabrics import closed_form_alone, dgx, fat_tree

FABRICS = {
    "fat_tree_3tier_2planes": lambda: fat_tree(8, ls_bw=25e9, oversubscription=3.0, endpoints=40, tiers=3, planes=2),
    "dgx_h100_16": lambda: dgx(16),
}


def _accelerators(f):
    return f.accel_node


@st.composite
def flow_sets(draw, n_acc: int):
    """Random flows between accelerator ranks (some with src == dst), sizes 1 kB..1 GB."""
    n = draw(st.integers(1, 24))
    ranks = st.integers(0, n_acc - 1)
    src = draw(st.lists(ranks, min_size=n, max_size=n))
    dst = draw(st.lists(ranks, min_size=n, max_size=n))
    size = draw(st.lists(st.sampled_from([1e3, 1e6, 1e9]) | st.floats(1e3, 1e9), min_size=n, max_size=n))
    salt = draw(st.integers(0, 3))
    return np.array(src), np.array(dst), np.array(size), salt


@pytest.mark.parametrize("name", sorted(FABRICS))
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_bytes_conserved_and_capacity_respected(name, data):
    """Link bytes = sub-flow bytes x hops; bytes out of senders = into receivers = sent; no link over capacity."""
    f = FABRICS[name]()
    acc = _accelerators(f)
    r_src, r_dst, size, salt = data.draw(flow_sets(len(acc)))
    src, dst = acc[r_src], acc[r_dst]
    flows = Flows(src, dst, size)
    run = FlowNetwork(f).run(flows, salt)
    sub = run.sub
    moving = src != dst
    sent = size[moving].sum()
    for r in (AnalyticalNetwork(f).transfer(flows, salt), run.result):
        assert r.link_bytes.sum() == pytest.approx((sub.size_bytes * sub.hops).sum(), rel=1e-12)
        out_of = np.bincount(f.link_src, weights=r.link_bytes, minlength=f.n_nodes)
        into = np.bincount(f.link_dst, weights=r.link_bytes, minlength=f.n_nodes)
        # accelerators do not forward: what leaves a sender / reaches a receiver is its flows' bytes
        sent_by = np.bincount(np.searchsorted(acc, src[moving]), size[moving], len(acc))
        got_by = np.bincount(np.searchsorted(acc, dst[moving]), size[moving], len(acc))
        np.testing.assert_allclose(out_of[acc], sent_by, rtol=1e-9)
        np.testing.assert_allclose(into[acc], got_by, rtol=1e-9)
        assert into[acc].sum() == pytest.approx(sent, rel=1e-12)
        assert np.all(r.link_busy_s <= r.time_s * (1 + 1e-9))  # no link busier than the phase is long
        assert np.all(r.flow_finish_s[~moving] == 0)
        # nobody beats having the fabric to itself (the flow model's event batching may end a
        # flow up to eps = 1e-9 relative early)
        alone = closed_form_alone(f, src[moving], dst[moving], size[moving], salt)
        assert np.all(r.flow_finish_s[moving] >= alone * (1 - 1e-8))
    # the flow model's rates integrate to the bytes sent, and its t = 0 rates fit every link
    delivered = np.bincount(sub.owner, run.delivered_bytes, len(size))
    np.testing.assert_allclose(delivered, np.where(moving, size, 0), rtol=1e-6)
    rate_on_link = np.bincount(sub.links, np.repeat(run.initial_rate_Bps, sub.hops), f.n_links)
    assert np.all(rate_on_link <= f.capacity_Bps * (1 + 1e-9))


@pytest.mark.parametrize("name", sorted(FABRICS))
def test_single_flow_bytes_times_hops(name):
    """One flow alone: its path links carry bytes x hops in total, and each link of its route carries its stripe."""
    f = FABRICS[name]()
    acc = _accelerators(f)
    for s, d in ((0, 1), (0, len(acc) - 1), (3, 9)):
        src, dst = acc[[s]], acc[[d]]
        hops = len(f.route(src, dst, 0)[0])
        paths, _, frac = f.spread(src, dst, 0)
        for model in (AnalyticalNetwork, FlowNetwork):
            r = model(f).transfer(Flows(src, dst, [7e8]), 0)
            assert r.link_bytes.sum() == pytest.approx(7e8 * hops, rel=1e-12)
            for k in range(len(paths)):
                np.testing.assert_allclose(r.link_bytes[paths[k]], 7e8 * frac[k], rtol=1e-12)
