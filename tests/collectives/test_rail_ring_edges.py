"""Rail rings' merged edges in closed form equal the edges of the listed rings.

:func:`rail_ring_edges` counts how many of the C rings use each edge without listing the
C x n ring flows; the reference here lists them (:func:`rail_ring_orders`) and merges equal
(src, dst) pairs. Counts are integers, so they must be equal exactly; the engine's results
through both within 1e-12 relative.
"""

from __future__ import annotations

import numpy as np
import pytest

from oassim.collectives import CollectiveRequest
from oassim.collectives.algorithms.ring import rail_ring_edges, rail_ring_orders
from oassim.collectives.phases import ring_pairs


def _listed(blocks):
    rings = rail_ring_orders(blocks)
    src, dst = ring_pairs(rings)
    span = int(max(src.max(), dst.max())) + 1
    keys, at = np.unique(src * span + dst, return_inverse=True)
    return keys // span, keys % span, np.bincount(at, minlength=len(keys)).astype(float), len(rings) // len(blocks)


def _blocks(sizes_per_group, seed):
    """Groups of ranks split into domains of the given sizes (ranks shuffled, distinct)."""
    rng = np.random.default_rng(seed)
    total = sum(sum(s) for s in sizes_per_group)
    ranks = rng.permutation(total * 3)[:total]
    out, i = [], 0
    for sizes in sizes_per_group:
        doms = []
        for m in sizes:
            doms.append(ranks[i:i + m].astype(np.int64))
            i += m
        out.append(doms)
    return out


@pytest.mark.parametrize("sizes", [
    [[8, 8]], [[8, 8, 8, 8]], [[4, 4], [4, 4]],  # even domains, one and two groups
    [[8, 3, 5]], [[2, 7]], [[1, 1, 1]], [[1, 4]], [[5]],  # uneven, single-rank domains, one domain
    [[6, 4, 6], [5, 6, 5]],  # groups with the same rail count, different domain sizes
])
def test_closed_form_edges_equal_the_listed_rings(sizes):
    blocks = _blocks(sizes, seed=len(sizes) * 7 + sum(map(sum, sizes)))
    got, ref = rail_ring_edges(blocks), _listed(blocks)
    assert got[3] == ref[3]
    for a, b in zip(got[:3], ref[:3]):
        np.testing.assert_array_equal(a, b)
    # every ring passes through every rank once: each rank sends C ring-edges in all
    _, _, count, C = got
    assert count.sum() == C * sum(sum(s) for s in sizes)


def test_engine_rail_rings_unchanged_on_a_multi_domain_cluster():
    """The phase from the closed form costs what the listed rings' merged phase costs (32 H100
    in 4 nodes of 8: 8 rings through 32 ranks), both network models."""
    from oassim.collectives import CollectiveEngine
    from oassim.collectives.algorithms import ALGORITHMS
    from oassim.collectives.phases import Phase
    from tests.collectives.conftest import preset_fabric

    fabric = preset_fabric("dgx-h100-superpod", 32)
    groups = np.arange(32, dtype=np.int64)[None, :]
    for network in ("analytical", "flow"):
        e = CollectiveEngine(fabric, network)
        for op in ("all_reduce", "reduce_scatter", "all_gather"):
            req = CollectiveRequest(op, 1 << 28, groups, "rail_rings")
            new = e.run(req, memo=False)
            # the reference phase from the listed rings
            from oassim.collectives.groups import domain_blocks
            src, dst, count, C = _listed(domain_blocks(groups, e.caps))
            (p,) = ALGORITHMS["rail_rings"].phases(req, e.caps)
            ref_phase = Phase(src, dst, count * (req.size_bytes / C / 32), p.repeat, label=p.label)
            ref = e._cost_phase(ref_phase, e.network, memo=False)
            assert new.phases[0].transfer_s == pytest.approx(ref.transfer_s, rel=1e-12)
            assert new.time_s > 0
