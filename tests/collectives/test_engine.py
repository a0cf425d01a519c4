"""The engine: identical phases costed once, memoised requests, exact domain symmetry,
``auto`` choosing the cheapest estimate, per-link results and the bottleneck tier."""

from __future__ import annotations

import numpy as np
import pytest

from oassim.collectives import ALGORITHMS, CollectiveEngine, CollectiveRequest, Tuning, make_groups
from oassim.collectives.algorithms.tree import btree_parent, dtree_parents, tree_depth
from tests.collectives.conftest import preset_fabric

S = 2**28


def test_ring_all_reduce_is_one_transfer(a100_8):
    """2(n-1) identical ring steps are one phase costed by one network transfer."""
    e = CollectiveEngine(a100_8)
    r = e.run(CollectiveRequest("all_reduce", S, np.arange(8)[None, :], "ring"))
    assert len(r.phases) == 1 and r.phases[0].repeat == 14
    assert e.stats["transfers"] == 1


def test_hierarchical_reuses_equal_phases_and_requests(h100_16):
    """The all-gather half repeats the reduce-scatter half's flows: costed once; the same
    request again is a memo hit that costs nothing."""
    e = CollectiveEngine(h100_16)
    req = CollectiveRequest("all_reduce", S, np.arange(16)[None, :], "hierarchical")
    r1 = e.run(req)
    assert [p.repeat for p in r1.phases] == [7, 2, 7]
    assert e.stats["transfers"] == 2 and e.stats["phase_hits"] == 1
    r2 = e.run(CollectiveRequest("all_reduce", S, np.arange(16)[None, :], "hierarchical"))
    assert r2 is r1 and e.stats["transfers"] == 2 and e.stats["request_hits"] == 1
    r3 = e.run(req, memo=False)
    assert r3 is not r1 and r3.time_s == pytest.approx(r1.time_s, rel=1e-12)


@pytest.mark.parametrize("network", ["analytical", "flow"])
@pytest.mark.parametrize("algo", ["hierarchical", "hierarchical_tree", "hierarchical_in_network", "ring"])
def test_domain_symmetry_is_exact(network, algo):
    """Costing one representative domain and replicating equals costing every domain."""
    f = preset_fabric("dgx-h100-superpod", 64)
    req = CollectiveRequest("all_reduce", S, np.arange(64).reshape(2, 32), algo)
    a = CollectiveEngine(f, network, symmetry=True).run(req)
    b = CollectiveEngine(f, network, symmetry=False).run(req)
    assert a.time_s == pytest.approx(b.time_s, rel=1e-9)
    assert np.allclose(a.link_bytes, b.link_bytes, rtol=1e-9)
    assert np.allclose(a.link_busy_s, b.link_busy_s, rtol=1e-9)


def test_symmetry_is_used_for_domain_groups():
    """Every domain's reduce-scatter at once is costed on one domain."""
    f = preset_fabric("dgx-h100-superpod", 64)
    e = CollectiveEngine(f)
    e.run(CollectiveRequest("all_reduce", S, make_groups(e.caps, None, "domain"), "ring"))
    assert e.stats["symmetric"] == 1


def test_auto_picks_the_cheapest_and_reports_candidates(h100_16, a100_8):
    """auto = the least estimated time among the algorithms that fit and the library offers;
    NVLS wins on H100 at large sizes, ring on A100 (where NVLS is not a candidate)."""
    e = CollectiveEngine(h100_16)
    r = e.run(CollectiveRequest("all_reduce", 2**30, np.arange(8)[None, :]))
    assert r.algorithm == min(r.candidates, key=r.candidates.get) == "in_network"
    assert r.time_s == pytest.approx(r.candidates["in_network"])
    assert set(r.candidates) >= {"ring", "tree", "in_network"}
    assert "halving_doubling" not in r.candidates  # not an NCCL algorithm (tuning auto_algorithms)
    ra = CollectiveEngine(a100_8).run(CollectiveRequest("all_reduce", 2**30, np.arange(8)[None, :]))
    assert "in_network" not in ra.candidates and ra.algorithm == "ring"
    ri = CollectiveEngine(a100_8, tuning=Tuning.ideal()).run(
        CollectiveRequest("all_reduce", 2**30, np.arange(8)[None, :]))
    assert "halving_doubling" in ri.candidates  # the ideal profile considers every algorithm


def test_auto_on_the_flow_model_runs_the_choice_there(h100_16):
    """With network=flow, auto estimates analytically and costs the choice on the flow model."""
    r = CollectiveEngine(h100_16, "flow").run(CollectiveRequest("all_reduce", S, np.arange(16)[None, :]))
    assert r.network == "flow" and r.algorithm in r.candidates


def test_auto_prefers_a_tree_across_many_domains():
    """Across 64 domains the ring's 2(k-1) step overheads lose to a tree at moderate sizes."""
    f = preset_fabric("dgx-h100-superpod", 512)
    e = CollectiveEngine(f)
    r = e.run(CollectiveRequest("all_reduce", 2**24, np.arange(512)[None, :]))
    assert r.algorithm in ("hierarchical_tree", "hierarchical_tree_pipelined", "tree")
    assert r.candidates["ring"] > r.time_s


def test_results_links_and_bottleneck(h100_16):
    """Cross-domain all-reduce of rail groups: the NIC links are the bottleneck, per-link
    bytes add up, utilisation lies in [0, 1] and busbw follows nccl-tests."""
    e = CollectiveEngine(h100_16, tuning=Tuning.ideal())
    r = e.run(CollectiveRequest("all_reduce", S, np.array([[0, 8], [1, 9]]), "ring"))
    assert r.bottleneck_tier in ("nic", "host")
    u = r.link_utilisation
    assert u.min() >= 0 and u.max() <= 1 and u.max() > 0.9
    assert r.busbw_Bps == pytest.approx(r.algbw_Bps * 2 * 1 / 2)
    assert max(r.tier_utilisation, key=r.tier_utilisation.get) == r.bottleneck_tier
    row = r.row()
    assert row["algorithm"] == "ring" and row["time_us"] == pytest.approx(r.time_s * 1e6)
    assert r.summary()["phases"][0]["repeat"] == 2


def test_tuning_derates_and_adds_overheads(a100_8):
    """Achievable fractions divide the bandwidth term; launch and step overheads add."""
    g = np.arange(8)[None, :]
    ideal = CollectiveEngine(a100_8, tuning=Tuning.ideal()).run(CollectiveRequest("all_reduce", S, g, "ring"))
    t = Tuning("t", launch_s=5e-6, step_s=1e-6, link_efficiency={"nvlink3": 0.5})
    tuned = CollectiveEngine(a100_8, tuning=t).run(CollectiveRequest("all_reduce", S, g, "ring"))
    lat = ideal.phases[0].latency_s
    bw = ideal.time_s - 14 * lat if lat else ideal.time_s
    assert tuned.time_s == pytest.approx(2 * bw + 14 * lat + 5e-6 + 14e-6, rel=1e-9)
    assert np.allclose(tuned.link_bytes, ideal.link_bytes)  # payload is unchanged
    assert tuned.link_busy_s.sum() == pytest.approx(2 * ideal.link_busy_s.sum())


def test_nccl_binary_tree_shape():
    """NCCL's btree for 8 ranks: 0 <- 4 <- {2, 6}; 2 <- {1, 3}; 6 <- {5, 7}; depth 3; in the
    double tree every rank is an inner node of at most one tree."""
    assert btree_parent(8).tolist() == [-1, 2, 4, 2, 0, 6, 4, 6]
    assert tree_depth(btree_parent(8)) == 3
    for n in (2, 5, 8, 16, 33):
        p0, p1 = dtree_parents(n)
        inner0 = np.isin(np.arange(n), p0[p0 >= 0])
        inner1 = np.isin(np.arange(n), p1[p1 >= 0])
        assert not np.any(inner0 & inner1) or n % 2 == 1
        for p in (p0, p1):
            assert (p < 0).sum() == 1 and tree_depth(p) <= int(np.ceil(np.log2(n))) + 1


def test_registry_names_match():
    """Registry keys are the algorithms' own names (the CLI spelling)."""
    for name, alg in ALGORITHMS.items():
        assert alg.name == name and alg.ops and alg.summary


def test_pipelined_hierarchical_overlaps_the_stages(h100_16):
    """Pipelined: one phase whose transfer is set by the busiest link over all stages
    (max busy <= transfer <= max busy + path latency), with every stage's latency steps;
    faster than running the stages in turn, same payload."""
    e = CollectiveEngine(h100_16, tuning=Tuning.ideal())
    g = np.arange(16)[None, :]
    seq = e.run(CollectiveRequest("all_reduce", S, g, "hierarchical"))
    pipe = e.run(CollectiveRequest("all_reduce", S, g, "hierarchical_pipelined"))
    (ph,) = pipe.phases
    assert ph.steps == sum(p.repeat * p.steps for p in seq.phases) and ph.repeat == 1
    assert pipe.link_busy_s.max() <= ph.transfer_s <= pipe.link_busy_s.max() + ph.latency_s + 1e-12
    assert pipe.time_s < seq.time_s
    assert np.allclose(pipe.link_bytes, seq.link_bytes)


def test_low_latency_protocol_is_taken_when_faster():
    """With an LL protocol (own launch/step, half bandwidth) a 4 KiB ring all-reduce runs LL and
    costs launch_LL + 2(n-1)(step_LL + latency) + 2(n-1)/n S / (B/2); 1 GiB stays Simple; the
    LL links are busy twice as long per byte."""
    from tests.collectives.conftest import B, PATH_LAT, engine_for, single_switch

    n, small, big = 8, 4096.0, 2.0**30
    t = Tuning("t", launch_s=50e-6, step_s=5e-6, low_latency=(1e-6, 0.5e-6, 0.5))
    e = engine_for(single_switch(n), tuning=t)
    g = np.arange(n)[None, :]
    r = e.run(CollectiveRequest("all_reduce", small, g, "ring"))
    want = 1e-6 + 2 * (n - 1) * (0.5e-6 + PATH_LAT) + 2 * (n - 1) / n * small / (B * 0.5)
    assert r.protocol == "ll" and r.time_s == pytest.approx(want, rel=1e-9)
    assert r.loaded_busy_s.max() == pytest.approx(2 * (n - 1) / n * small / B * 2, rel=1e-9)
    assert e.run(CollectiveRequest("all_reduce", big, g, "ring")).protocol == "simple"
    in_net = engine_for(single_switch(n, inr=True), tuning=t).run(
        CollectiveRequest("all_reduce", small, g, "in_network"))
    assert in_net.protocol == "simple"  # NVLS has no LL
