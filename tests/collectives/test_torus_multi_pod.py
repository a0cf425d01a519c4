"""Torus collectives across TPU-class pods: the 6-link bound holds beyond one pod, and auto's
candidates there (rail rings through 8,192 ranks included) are costed on both network models.

Two 16 x 16 x 16 v5p pods (8,192 chips) joined by the data-centre network: every chip's
share after the in-pod reduce-scatter is S / 4,096, so the across-pod ring adds ~2% at
1 GiB and busbw stays within [0.75, 1] of 6 x B x eta (6 ICI links of B = 100 GB/s per
direction, docs/sources.md S18; eta the tuning's scale-up efficiency; the 0.75 floor the
single-pod test's, the per-step overhead of 90 ring steps).
"""

from __future__ import annotations

import numpy as np
import pytest

from oassim.collectives import CollectiveEngine, CollectiveRequest
from tests.collectives.conftest import preset_fabric

GiB = 1 << 30


@pytest.fixture(scope="module")
def two_pods():
    return preset_fabric("tpu-v5p-pod", 8192)


@pytest.mark.parametrize("network", ["analytical", "flow"])
def test_two_pods_keep_the_six_link_bound(two_pods, network):
    f = two_pods
    e = CollectiveEngine(f, network)
    assert e.caps.n_domains == 2
    ici = f.link_tier_names.index("ici")
    B = float(np.max(f.link_bw[f.link_tier == ici]))
    bound = 6 * B * e.eta_up
    groups = np.arange(8192, dtype=np.int64)[None, :]
    for op in ("all_reduce", "all_gather", "reduce_scatter"):
        r = e.run(CollectiveRequest(op, GiB, groups))
        assert r.algorithm == "torus", (op, r.candidates)
        assert 0.75 * bound <= r.busbw_Bps <= 6 * B, (op, r.busbw_Bps / bound)
        # rail rings (4,096 rings through 8,192 ranks) were costed and lose by the ICI links'
        # use: every ring crosses the pods on DCN
        assert r.candidates["rail_rings"] > r.time_s
