"""Golden tests: algorithms on uncontended fabrics equal their textbook closed forms.

All with the ideal tuning (achievable fractions 1, no overheads), so the engine's answer is
the algorithm's bandwidth term plus its latency terms. Tolerance: 1e-9 relative (the models
are exact here); the flow model must agree with the analytical one to 1% (docs/architecture.md 5).
"""

from __future__ import annotations

import numpy as np
import pytest

from oassim.collectives import CollectiveRequest
from tests.collectives.conftest import B, LINK_LAT, PATH_LAT, engine_for, ring_fabric, single_switch

S = 64 * 2**20
RTOL = 1e-9


def _time(engine, op, n, algo, size=S, **kw):
    return engine.run(CollectiveRequest(op, size, np.arange(n)[None, :], algo, **kw)).time_s


@pytest.mark.parametrize("n", [2, 3, 8, 16])
def test_ring_all_reduce_single_switch(n):
    """Ring all-reduce = 2(n-1)/n S/B + 2(n-1) path latencies on one switch."""
    e = engine_for(single_switch(n))
    want = 2 * (n - 1) / n * S / B + 2 * (n - 1) * PATH_LAT
    assert _time(e, "all_reduce", n, "ring") == pytest.approx(want, rel=RTOL)


@pytest.mark.parametrize("n", [4, 8])
def test_ring_all_reduce_on_a_physical_ring(n):
    """On a ring of links each neighbour step uses one link: 2(n-1)/n S/B + 2(n-1) link latencies."""
    e = engine_for(ring_fabric(n))
    want = 2 * (n - 1) / n * S / B + 2 * (n - 1) * LINK_LAT
    assert _time(e, "all_reduce", n, "ring") == pytest.approx(want, rel=RTOL)


@pytest.mark.parametrize("op", ["reduce_scatter", "all_gather"])
@pytest.mark.parametrize("n", [2, 5, 8])
def test_ring_reduce_scatter_all_gather(op, n):
    """Ring reduce-scatter / all-gather = (n-1)/n S/B + (n-1) latency terms."""
    e = engine_for(single_switch(n))
    want = (n - 1) / n * S / B + (n - 1) * PATH_LAT
    assert _time(e, op, n, "ring") == pytest.approx(want, rel=RTOL)


@pytest.mark.parametrize("n", [4, 8, 16, 32])
def test_double_binary_tree_all_reduce(n):
    """Double binary tree over n = 2^k single-rank domains on a switch: 2S/B + 2 log2(n)
    latency terms (pipelined)."""
    e = engine_for(single_switch(n, domain_each=True))
    want = 2 * S / B + 2 * int(np.log2(n)) * PATH_LAT
    assert _time(e, "all_reduce", n, "tree") == pytest.approx(want, rel=RTOL)


@pytest.mark.parametrize("n", [3, 8, 16])
def test_tree_inside_one_domain_runs_two_chains(n):
    """Inside one scale-up domain NCCL's tree is a chain: two opposite chains of S/2 each,
    2S/B + 2(n-1) latency terms."""
    e = engine_for(single_switch(n))
    want = 2 * S / B + 2 * (n - 1) * PATH_LAT
    assert _time(e, "all_reduce", n, "tree") == pytest.approx(want, rel=RTOL)


@pytest.mark.parametrize("n", [2, 4, 8, 16])
def test_halving_doubling_all_reduce(n):
    """Rabenseifner: 2(n-1)/n S/B + 2 log2(n) latency terms."""
    e = engine_for(single_switch(n))
    want = 2 * (n - 1) / n * S / B + 2 * int(np.log2(n)) * PATH_LAT
    assert _time(e, "all_reduce", n, "halving_doubling") == pytest.approx(want, rel=RTOL)


def test_halving_doubling_non_power_of_two_folds():
    """n = 6: fold 2 ranks in (S), HD over 4, return (S): 2S/B + 2(3/4)S/B + (2 + 4) latencies."""
    e = engine_for(single_switch(6))
    want = 2 * S / B + 2 * 3 / 4 * S / B + 6 * PATH_LAT
    assert _time(e, "all_reduce", 6, "halving_doubling") == pytest.approx(want, rel=RTOL)


@pytest.mark.parametrize("n", [4, 8])
def test_in_network_all_reduce(n):
    """NVLS-style all-reduce: S(n+1)/n per rank each way, two switch round trips."""
    e = engine_for(single_switch(n, inr=True))
    want = (n + 1) / n * S / B + 2 * PATH_LAT
    assert _time(e, "all_reduce", n, "in_network") == pytest.approx(want, rel=RTOL)


@pytest.mark.parametrize("op", ["broadcast", "reduce"])
def test_chain_broadcast_reduce(op):
    """Ring (chain) broadcast / reduce, pipelined: S/B + (n-1) latency terms, any root."""
    n = 8
    e = engine_for(single_switch(n))
    want = S / B + (n - 1) * PATH_LAT
    assert _time(e, op, n, "ring", root=3) == pytest.approx(want, rel=RTOL)


def test_tree_broadcast():
    """Binary-tree broadcast: inner nodes feed two children (2S/B) + depth latency terms."""
    n = 8
    e = engine_for(single_switch(n))
    want = 2 * S / B + 3 * PATH_LAT
    assert _time(e, "broadcast", n, "tree", root=5) == pytest.approx(want, rel=RTOL)


def test_send_recv_and_direct_all_to_all():
    """send/recv = S/B + one path; direct all-to-all = (n-1)/n S/B + one path."""
    n = 8
    e = engine_for(single_switch(n))
    pairs = np.array([[0, 1], [2, 3], [4, 5]])
    t = e.run(CollectiveRequest("send_recv", S, pairs, "direct")).time_s
    assert t == pytest.approx(S / B + PATH_LAT, rel=RTOL)
    assert _time(e, "all_to_all", n, "direct") == pytest.approx((n - 1) / n * S / B + PATH_LAT, rel=RTOL)


@pytest.mark.parametrize("algo", ["ring", "tree", "halving_doubling", "in_network"])
def test_flow_model_agrees_with_analytical(algo):
    """Where no link is shared the two network fidelities agree to 1% (docs/architecture.md 5)."""
    fg = single_switch(8, inr=True)
    a = _time(engine_for(fg, "analytical"), "all_reduce", 8, algo)
    f = _time(engine_for(fg, "flow"), "all_reduce", 8, algo)
    assert f == pytest.approx(a, rel=0.01)


def test_busbw_of_ring_equals_link_rate():
    """nccl-tests busbw of an ideal ring all-reduce tends to the port rate B (large S)."""
    e = engine_for(single_switch(8))
    r = e.run(CollectiveRequest("all_reduce", 2**36, np.arange(8)[None, :], "ring"))
    assert r.busbw_Bps == pytest.approx(B, rel=1e-3)
    assert r.algbw_Bps == pytest.approx(r.size_bytes / r.time_s)
    assert r.busbw_Bps == pytest.approx(r.algbw_Bps * 2 * 7 / 8)
