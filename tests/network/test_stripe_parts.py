"""Striping a concatenation part by part (``stripe_parts``, ``finish_parts_s``): the replay's
joint costing of calls in flight stripes each call's flows on their own, which must give the
concatenation's stripe and finish times exactly (a flow's paths depend on its endpoints)."""

from __future__ import annotations

import numpy as np
import pytest

from oassim.network.analytical import AnalyticalNetwork, stripe, stripe_parts
from oassim.network.base import Flows
from oassim.topology.cluster import build_fabric

# an NVSwitch domain striping over its switch chips + a fat-tree scale-out, a GB200 rack, a 3D torus
PRESETS = [("dgx-h100-superpod", 256), ("gb200-nvl72", 288), ("tpu-v5p-pod", 128)]


def _parts(f, seed):
    """Three random flow sets over the fabric's accelerators: one inside domains, one across,
    one mixed with src == dst flows (no sub-flow) and repeated pairs."""
    rng = np.random.default_rng(seed)
    n = f.n_accelerators
    out = []
    for k, span in ((40, 4), (60, n), (50, n)):
        src = rng.integers(0, n, k)
        dst = (src + rng.integers(0 if span == n else 1, span, k)) % n
        out.append(Flows(f.accel_node[src], f.accel_node[dst], rng.uniform(1e5, 1e8, k)))
    return out


@pytest.mark.parametrize("preset,n", PRESETS)
@pytest.mark.parametrize("salt", [0, 3])
def test_stripe_parts_is_the_stripe_of_the_concatenation(preset, n, salt):
    f = build_fabric(preset, n)
    parts = _parts(f, seed=salt + n)
    whole = Flows(*(np.concatenate([getattr(p, a) for p in parts]) for a in ("src", "dst", "size_bytes")))
    a = stripe(f, whole, salt)
    stripe(f, parts[1], salt)  # one part striped before (answered by the caches), the others not
    b = stripe_parts(f, parts, salt)
    assert a.n_flows == b.n_flows == len(whole)
    for name in ("ptr", "links", "owner", "size_bytes", "latency_s"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and np.array_equal(x, y), name
    net = AnalyticalNetwork(f)
    joint = net.finish_s(whole, salt)
    assert np.array_equal(net.finish_parts_s(parts, salt), joint)
    # the parts do contend: costing them together is not costing each alone
    alone = np.concatenate([net.finish_s(p, salt) for p in parts])
    assert np.all(joint >= alone * (1 - 1e-12)) and np.any(joint > alone * (1 + 1e-6))


def test_finish_parts_refuses_counted_flows():
    f = build_fabric("dgx-h100-superpod", 64)
    p = Flows(f.accel_node[[0, 8]], f.accel_node[[8, 16]], [1e6, 1e6], count=[2, 2])
    with pytest.raises(ValueError, match="without count"):
        AnalyticalNetwork(f).finish_parts_s([p, p])
