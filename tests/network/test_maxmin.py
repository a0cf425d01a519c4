"""The max-min kernel and the event-loop kernel against the plain numpy references."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oassim.network import _kernels as K
from oassim.network import maxmin_rates
from oassim.topology.fabric import Paths
from tests.network.reference import flow_completion_reference, maxmin_reference

REL = 1e-9  # solver vs reference, and feasibility / certificate tolerance (relative)

CAPS = st.one_of(st.sampled_from([1.0, 2.0, 3.0, 5.0, 7.5, 10.0]), st.floats(0.5, 100.0))


@st.composite
def instances(draw, max_links: int = 8, max_flows: int = 12):
    """Random small CSR path sets: (ptr, links, cap, active); sampled capacities make ties."""
    n_links = draw(st.integers(1, max_links))
    cap = np.array(draw(st.lists(CAPS, min_size=n_links, max_size=n_links)))
    n = draw(st.integers(1, max_flows))
    paths = [draw(st.lists(st.integers(0, n_links - 1), min_size=1, max_size=min(4, n_links), unique=True))
             for _ in range(n)]
    active = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    ptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum([len(p) for p in paths], out=ptr[1:])
    links = np.array([ln for p in paths for ln in p], dtype=np.int64)
    return ptr, links, cap, active


def _solve(ptr, links, cap, active):
    return maxmin_rates(Paths(ptr, links), cap, active)


def _link_rate(ptr, links, cap, rates):
    flow_of = np.repeat(np.arange(len(ptr) - 1), np.diff(ptr))
    return np.bincount(links, weights=rates[flow_of], minlength=len(cap)), flow_of


@settings(max_examples=300, deadline=None)
@given(instances())
def test_kernel_matches_reference(inst):
    """Kernel rates equal the numpy progressive-filling reference within 1e-9 relative."""
    ptr, links, cap, active = inst
    got = _solve(ptr, links, cap, active)
    want = maxmin_reference(ptr, links, cap, active)
    np.testing.assert_allclose(got, want, rtol=REL, atol=0)
    assert np.all(got[~active] == 0)


@settings(max_examples=300, deadline=None)
@given(instances())
def test_rates_feasible(inst):
    """No link carries more than its capacity (1e-9 relative) and every active rate is > 0."""
    ptr, links, cap, active = inst
    rates = _solve(ptr, links, cap, active)
    load, _ = _link_rate(ptr, links, cap, rates)
    assert np.all(load <= cap * (1 + REL))
    assert np.all(rates[active] > 0)


@settings(max_examples=300, deadline=None)
@given(instances())
def test_maxmin_certificate(inst):
    """Every active flow has a saturated link on which no other flow gets a larger rate."""
    ptr, links, cap, active = inst
    rates = _solve(ptr, links, cap, active)
    load, flow_of = _link_rate(ptr, links, cap, rates)
    saturated = load >= cap * (1 - REL)
    top = np.zeros(len(cap))
    np.maximum.at(top, links, rates[flow_of])
    for f in np.flatnonzero(active):
        mine = links[ptr[f]:ptr[f + 1]]
        ok = saturated[mine] & (rates[f] >= top[mine] * (1 - REL))
        assert ok.any(), f"flow {f} (rate {rates[f]}) has no bottleneck link"


@settings(max_examples=200, deadline=None)
@given(instances())
def test_kernel_reports_a_bottleneck_per_flow(inst):
    """The link the kernel says each active flow froze on is on its path, saturated, and carries no faster flow."""
    ptr, links, cap, active = inst
    n = len(ptr) - 1
    rates, bneck = np.zeros(n), np.full(n, -1, dtype=np.int64)
    K.maxmin_rates(ptr, links, cap, np.flatnonzero(active), rates, bneck)
    load, flow_of = _link_rate(ptr, links, cap, rates)
    top = np.zeros(len(cap))
    np.maximum.at(top, links, rates[flow_of])
    for f in np.flatnonzero(active):
        b = bneck[f]
        assert b in links[ptr[f]:ptr[f + 1]]
        assert load[b] >= cap[b] * (1 - REL) and rates[f] >= top[b] * (1 - REL)
    assert np.all(bneck[~active] == -1)


def test_hand_example():
    """Textbook case: A on l0+l1, B on l0, C on l1, caps 1 and 2 -> rates 0.5, 0.5, 1.5."""
    ptr = np.array([0, 2, 3, 4])
    links = np.array([0, 1, 0, 1])
    np.testing.assert_allclose(_solve(ptr, links, np.array([1.0, 2.0]), np.ones(3, bool)), [0.5, 0.5, 1.5])


def test_link_crossed_twice_counts_twice():
    """A path crossing a link twice uses twice its rate there: alone on cap 10 it gets 5."""
    rates = _solve(np.array([0, 3]), np.array([0, 1, 0]), np.array([10.0, 100.0]), np.ones(1, bool))
    assert rates[0] == pytest.approx(5.0)
    assert maxmin_reference(np.array([0, 3]), np.array([0, 1, 0]), np.array([10.0, 100.0]))[0] == pytest.approx(5.0)


def test_empty_path_gets_infinite_rate_and_bad_ids_rejected():
    """A flow with no links is unconstrained (rate inf); link ids outside the capacity array are an error."""
    rates = _solve(np.array([0, 0, 1]), np.array([0]), np.array([4.0]), np.ones(2, bool))
    assert rates[0] == np.inf and rates[1] == 4.0
    with pytest.raises(ValueError, match="link ids"):
        _solve(np.array([0, 1]), np.array([3]), np.array([4.0]), np.ones(1, bool))
    with pytest.raises(ValueError, match="shape"):
        _solve(np.array([0, 1]), np.array([0]), np.array([4.0]), np.ones(2, bool))


@settings(max_examples=150, deadline=None)
@given(instances(max_flows=8), st.data())
def test_event_loop_matches_reference(inst, data):
    """Completion times of the event loop equal the re-solving reference; delivered bytes equal sizes."""
    ptr, links, cap, _ = inst
    n = len(ptr) - 1
    size = np.array(data.draw(st.lists(st.sampled_from([1.0, 2.0, 3.0, 10.0]) | st.floats(0.1, 50.0),
                                       min_size=n, max_size=n)))
    finish, rate0, delivered = np.empty(n), np.empty(n), np.empty(n)
    events = K.flow_completion(ptr, links, cap, size, 1e-9, finish, rate0, delivered)
    want, _ = flow_completion_reference(ptr, links, cap, size, 1e-9)
    np.testing.assert_allclose(finish, want, rtol=1e-7)
    np.testing.assert_allclose(rate0, maxmin_reference(ptr, links, cap), rtol=REL)
    np.testing.assert_allclose(delivered, size, rtol=1e-6)
    assert 1 <= events <= n


@pytest.mark.parametrize("seed,n_flows,tied", [(0, 150, False), (1, 150, False), (2, 400, False), (3, 400, True)])
def test_event_loop_matches_reference_on_fat_tree(seed, n_flows, tied):
    """On a dense oversubscribed fat-tree, partial re-solves finish every flow when a full re-solve per event does."""
    from oassim.network import stripe
    from oassim.network.base import Flows
    from tests.network.fabrics import fat_tree

    f = fat_tree(8, ls_bw=25e9, oversubscription=3.0, endpoints=40, tiers=3, planes=2)
    ep = f.routing["endpoints"]
    rng = np.random.default_rng(seed)
    src, dst = rng.choice(ep, n_flows), rng.choice(ep, n_flows)
    src, dst = src[src != dst], dst[src != dst]
    size = rng.choice([1e8, 2e8, 5e8], len(src)) if tied else rng.uniform(1e6, 1e9, len(src))
    sub = stripe(f, Flows(src, dst, size))
    n = len(sub.size_bytes)
    finish, rate0, delivered = np.empty(n), np.empty(n), np.empty(n)
    events = K.flow_completion(sub.ptr, sub.links, f.capacity_Bps, sub.size_bytes, 1e-9, finish, rate0, delivered)
    want, want_events = flow_completion_reference(sub.ptr, sub.links, f.capacity_Bps, sub.size_bytes, 1e-9)
    np.testing.assert_allclose(finish, want, rtol=1e-9)
    np.testing.assert_allclose(delivered, sub.size_bytes, rtol=1e-9)
    assert events == want_events > (2 if tied else 100)
