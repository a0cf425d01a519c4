"""The aggregated direct all-to-all sends rank to rank inside a torus domain where the traffic
is a byte matrix: above ``MAX_DIRECT_FLOWS`` such pairs it is refused (the hierarchical
all-to-all runs), as the n x n form is, instead of listing them (8,192 ranks of the TPU-class
proposal: 33.5 million in-domain flows, > 20 GB). Even traffic on whole tori lists one source
per domain set (:mod:`oassim.collectives.algorithms.all_to_all_domains`) and is not refused."""

from __future__ import annotations

import numpy as np

from oassim.collectives import CollectiveEngine, CollectiveRequest
from oassim.collectives.algorithms import direct
from tests.collectives.conftest import grid_fabric


def test_direct_all_to_all_refused_above_the_in_domain_flow_cap(monkeypatch):
    f = grid_fabric("tpu-v5p-pod", (4, 4, 4), 128)  # two 64-chip tori on the scale-out fat tree
    e = CollectiveEngine(f, "analytical")
    m = np.random.default_rng(0).uniform(0.5, 1.5, (128, 128)) * (1 << 24) / 128
    req = CollectiveRequest("all_to_all", 1 << 24, np.arange(128, dtype=np.int64)[None, :], matrix=m)
    even = CollectiveRequest("all_to_all", 1 << 24, np.arange(128, dtype=np.int64)[None, :])
    pairs = 2 * 64 * 63  # every rank to the 63 others of its torus
    monkeypatch.setattr(direct, "AGGREGATE_ABOVE", 100)
    monkeypatch.setattr(direct, "MAX_DIRECT_FLOWS", pairs)
    assert direct.Direct().unsupported(req, e.caps) is None
    monkeypatch.setattr(direct, "MAX_DIRECT_FLOWS", pairs - 1)
    why = direct.Direct().unsupported(req, e.caps)
    assert why is not None and f"{pairs:,} flows to the ranks of their own domains" in why
    assert e.run(req).algorithm == "hierarchical"
    # even traffic: the two whole tori are costed from one source, nothing to refuse
    monkeypatch.setattr(direct, "MAX_DIRECT_FLOWS", 1)
    assert direct.Direct().unsupported(even, e.caps) is None
    ph = direct.Direct().phases(even, e.caps)
    assert ph[0].bundles is not None and len(ph[0].bundles.domains) == 1
    assert ph[0].n_flows == 128 * 127  # every rank pair is still accounted for
