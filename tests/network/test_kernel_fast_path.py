"""A phase whose flows all finish in the first event skips the flow kernel's event loop; its
outputs must be the loop's, bit for bit. The loop is run as the kernel's Python source with the
shortcut switched off (numba keeps it as ``py_func``)."""

from __future__ import annotations

import numpy as np
import pytest

from oassim.network import Flows
from oassim.network import _kernels as K
from oassim.network.analytical import compact_links, stripe
from oassim.topology.cluster import build_fabric


@pytest.fixture(scope="module")
def gb200():
    return build_fabric("gb200-nvl72", 144)  # 2 NVL72 racks


def _inputs(fabric, sizes, seed, ring=False):
    rng = np.random.default_rng(seed)
    ranks = fabric.n_accelerators
    if ring:  # a ring step inside each rack: every flow alike
        src = np.arange(ranks)
        dst = src // 72 * 72 + (src % 72 + 1 + seed) % 72
    else:
        src = rng.permutation(ranks)[:len(sizes)]
        dst = (src + 1 + rng.integers(0, ranks - 1, len(sizes))) % ranks
    sub = stripe(fabric, Flows(fabric.accel_node[src], fabric.accel_node[dst], sizes), seed)
    used, local = compact_links(sub.links, fabric.n_links)
    return sub.ptr, local, np.ascontiguousarray(fabric.capacity_Bps[used]), sub.size_bytes


def _both(ptr, links, cap, size, monkeypatch):
    m = len(size)
    fast = [np.empty(m) for _ in range(3)]
    ev_fast = K.flow_completion(ptr, links, cap, size, 1e-9, *fast)
    loop = [np.empty(m) for _ in range(3)]
    with monkeypatch.context() as mp:
        mp.setattr(K, "_all_at_once", lambda *a: False)
        ev_loop = K.flow_completion.py_func(ptr, links, cap, size, 1e-9, *loop)
    return ev_fast, fast, ev_loop, loop


@pytest.mark.parametrize("seed", [0, 1])
def test_equal_flows_skip_the_loop_with_its_answer(gb200, seed, monkeypatch):
    """A ring step in each rack (equal flows striped over the NVLink switch chips): one event,
    the same outputs."""
    ptr, links, cap, size = _inputs(gb200, np.full(gb200.n_accelerators, 8.0 * 2**20), seed, ring=True)
    m = len(size)
    rate = np.zeros(m)
    K.maxmin_rates(ptr, links, cap, np.arange(m), rate, np.full(m, -1, dtype=np.int64))
    assert K._all_at_once(rate, size, 1e-9, np.empty(m), np.empty(m), np.empty(m))  # the shortcut is taken
    ev_fast, fast, ev_loop, loop = _both(ptr, links, cap, size, monkeypatch)
    assert ev_fast == ev_loop == 1
    for a, b in zip(fast, loop):
        assert np.array_equal(a, b)


def test_unequal_flows_take_the_loop(gb200, monkeypatch):
    """Different sizes finish in several events: the shortcut declines and the answer is the loop's."""
    ptr, links, cap, size = _inputs(gb200, np.linspace(1.0, 9.0, 40) * 2**20, 3)
    ev_fast, fast, ev_loop, loop = _both(ptr, links, cap, size, monkeypatch)
    assert ev_fast == ev_loop > 1
    for a, b in zip(fast, loop):
        assert np.array_equal(a, b)
