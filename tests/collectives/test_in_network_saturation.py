"""In-network reduction saturates at the switch's reduction / multicast rate.

Closed form on one non-blocking switch with n ranks of link rate B and a switch whose
engines deliver R bytes/s of other ranks' payload per port (ideal tuning otherwise):

    T_all_reduce = max( (n + 1) / n * S / B,  2 (n - 1) / n * S / R ) + 2 * path latency

so busbw = min(B * 2 (n - 1) / (n + 1), R): link-bound growth with n until the switch binds,
as NVLS measures (docs/sources.md S21, S22). Tolerance 1e-9 relative (exact model).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from oassim.collectives import CollectiveEngine, CollectiveRequest, Tuning
from oassim.collectives.ops import busbw_factor
from tests.collectives.conftest import B, PATH_LAT, single_switch

S = 64 * 2**20


def _engine(n: int, rate: float | None) -> CollectiveEngine:
    fabric, graph = single_switch(n, inr=True)
    t = Tuning.ideal() if rate is None else replace(Tuning.ideal(), switch_rate={"test-switch": rate})
    return CollectiveEngine(fabric, tuning=t, graph=graph)


@pytest.mark.parametrize("n", [2, 5, 8, 72])
@pytest.mark.parametrize("rate_over_B", [0.8, 1.2, 1.9])
def test_all_reduce_is_held_to_the_switch_rate(n, rate_over_B):
    """The time is the larger of the link term and the switch term (closed form above)."""
    R = rate_over_B * B
    t = _engine(n, R).run(CollectiveRequest("all_reduce", S, np.arange(n)[None, :], "in_network")).time_s
    want = max((n + 1) / n * S / B, 2 * (n - 1) / n * S / R) + 2 * PATH_LAT
    assert t == pytest.approx(want, rel=1e-9)


def test_bus_bandwidth_stops_growing_at_the_rate():
    """Without a switch limit NVLS busbw grows as 2(n-1)/(n+1) B; with R = 1.5 B it follows
    that growth while below R and is flat at R (less the latency share) beyond."""
    R = 1.5 * B
    big = 2**34
    free, capped = [], []
    for n in (3, 5, 8, 16, 72):
        req = CollectiveRequest("all_reduce", big, np.arange(n)[None, :], "in_network")
        for eng, out in ((_engine(n, None), free), (_engine(n, R), capped)):
            out.append(big * busbw_factor("all_reduce", n) / eng.run(req).time_s)
    assert all(b > a for a, b in zip(free, free[1:]))
    for n, f, c in zip((3, 5, 8, 16, 72), free, capped):
        assert c == pytest.approx(min(2 * (n - 1) / (n + 1) * B, R), rel=1e-4)
        assert c <= f * (1 + 1e-12)


def test_reduce_scatter_and_all_gather_are_held_too():
    """RS / AG through the switch: max(S / B, (n - 1) / n * S / R) + one path latency."""
    n, R = 8, 0.5 * B
    e = _engine(n, R)
    for op in ("reduce_scatter", "all_gather"):
        t = e.run(CollectiveRequest(op, S, np.arange(n)[None, :], "in_network")).time_s
        assert t == pytest.approx(max(S / B, (n - 1) / n * S / R) + PATH_LAT, rel=1e-9)
