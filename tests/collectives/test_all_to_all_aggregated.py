"""The aggregated all-to-all (one flow per rank and destination block) against the n x n flows,
the closed-form NIC bound, and its stated error bound for uneven traffic; ECMP excess."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

import oassim.collectives.algorithms.all_to_all as a2a
import oassim.collectives.algorithms.direct as direct
from oassim.collectives import CollectiveEngine, CollectiveRequest, make_groups
from oassim.collectives.algorithms.all_to_all_blocks import aggregated_all_to_all_phases, destination_error_bytes
from oassim.errors import SpecError
from oassim.network.routing_modes import ecmp_excess
from oassim.topology.cluster import build_fabric

GiB = 2**30


def _cluster(tmp_path, routing: str, tiers: int, radix: int | None = None) -> str:
    """H100 nodes (8 per NVSwitch domain, one 400G NIC per GPU) on a rail-optimised fat-tree;
    a small inline switch radix makes a 3-tier fabric of a few pods at 128 GPUs."""
    spec: dict = {
        "name": f"a2a-{routing}-{tiers}", "accelerators": 128, "accelerator": "h100-sxm",
        "supernode": {"family": "switched", "spec": {"size": 8, "switches": 4, "links_per_accelerator": 18},
                      "links": {"scaleup": {"technology": "nvlink4"}}, "switches": {"scaleup": "nvswitch-gen3"}},
        "scale_out": {"family": "fat_tree", "spec": {"tiers": tiers}, "rail_optimized": True, "rails": 8,
                      "routing": routing,
                      "links": {r: {"technology": "ib-ndr"} for r in ("host", "leaf_spine", "spine_core")},
                      "switches": {r: "quantum-2" for r in ("leaf", "spine", "core")}},
    }
    if radix:
        sw = {"switch": {"name": f"test-{radix}", "description": "small test switch", "capacity_Tbps": radix * 0.4,
                         "port_configs": [{"ports": radix, "rate_Gbps": 400}]}}
        spec["scale_out"]["switches"] = {r: sw for r in ("leaf", "spine", "core")}
    p = tmp_path / f"a2a-{routing}-{tiers}.yaml"
    p.write_text(yaml.safe_dump(spec))
    return str(p)


def _both(fabric, algo, net="analytical", matrix=None, monkeypatch=None):
    """(explicit, aggregated) results of a 1 GiB all-to-all of every rank."""
    out = []
    for thr in (10**12, 0):
        monkeypatch.setattr(a2a, "AGGREGATE_ABOVE", thr)
        monkeypatch.setattr(direct, "AGGREGATE_ABOVE", thr)
        e = CollectiveEngine(fabric, net)
        g = make_groups(e.caps, None, None)
        out.append((e, e.run(CollectiveRequest("all_to_all", GiB, g, algo, matrix=matrix), memo=False)))
    return out


def test_fixture_is_three_tier_with_pods(three_tier):
    """The small-radix cluster has several pods, so pod blocks are exercised."""
    e = CollectiveEngine(three_tier)
    assert len(np.unique(e.caps.pod_of_rank)) >= 4 and len(np.unique(e.caps.leaf_of_rank)) >= 16


@pytest.mark.parametrize("algo", ["direct", "hierarchical"])
@pytest.mark.parametrize("which", ["two_tier", "three_tier"])
def test_even_aggregated_equals_explicit(algo, which, request, monkeypatch):
    """Even traffic, adaptive routing: the aggregated phases cost exactly what the n x n flows cost."""
    f = request.getfixturevalue(which)
    (e0, full), (e1, agg) = _both(f, algo, monkeypatch=monkeypatch)
    flows = [len(p.src) for p in e1.phases(CollectiveRequest("all_to_all", GiB, make_groups(e1.caps), algo))]
    assert sum(flows) < sum(p.n_flows for p in full.phases)  # it did aggregate
    assert agg.time_s == pytest.approx(full.time_s, rel=1e-9)
    assert np.allclose(np.sort(agg.loaded_bytes), np.sort(full.loaded_bytes), rtol=1e-9)


def test_even_aggregated_flow_model_equals_explicit(three_tier, monkeypatch):
    """The flow model agrees too (hierarchical stage 2: rail-aligned flows), within 1%."""
    (_, full), (_, agg) = _both(three_tier, "hierarchical", "flow", monkeypatch=monkeypatch)
    assert agg.time_s == pytest.approx(full.time_s, rel=0.01)


def test_even_busbw_is_the_nic_bound(three_tier, monkeypatch):
    """Direct even all-to-all on a 1:1 fat-tree with adaptive routing: every rank's NIC carries
    its cross-domain share, S (n - 8) / n, at the achievable NIC rate (closed form)."""
    (_, _), (e, agg) = _both(three_tier, "direct", monkeypatch=monkeypatch)
    n = three_tier.n_accelerators
    host = three_tier.link_tier_names.index("host") if "host" in three_tier.link_tier_names else None
    caps = three_tier.capacity_Bps
    nic_cap = caps[three_tier.link_tier == host].min() if host is not None else caps[~e.caps.link_scaleup].min()
    bound = GiB * (n - 8) / n / (nic_cap * e.eta_out)
    assert bound <= agg.time_s <= bound * 1.01 + 50e-6


def test_uneven_within_stated_bound(three_tier, monkeypatch):
    """Uneven traffic: the aggregated time differs from the n x n time by at most the
    destination-side error bound of the module docstring."""
    n = three_tier.n_accelerators
    rng = np.random.default_rng(3)
    m = rng.uniform(0.1, 1.9, (n, n)) * GiB / n
    (e0, full), (e1, agg) = _both(three_tier, "direct", matrix=m, monkeypatch=monkeypatch)
    err = destination_error_bytes(make_groups(e1.caps), e1.caps, m[None])[0]
    host_cap = three_tier.capacity_Bps[~e1.caps.link_scaleup].min() * e1.eta_out
    bound = np.abs(err).max() / host_cap
    # the spine-to-leaf groups: each carries at most the errors of the ranks behind its leaf
    leaf = e1.caps.leaf_of_rank
    per_leaf = np.bincount(leaf, weights=np.abs(err))
    bound = max(bound, per_leaf.max() / host_cap)
    assert abs(agg.time_s - full.time_s) <= bound * (1 + 1e-9)
    assert bound < 0.5 * full.time_s  # the bound is informative, not vacuous


def test_even_traffic_has_no_destination_error(three_tier):
    """Even traffic on equal blocks: every rank receives exactly its n x n bytes."""
    e = CollectiveEngine(three_tier)
    n = three_tier.n_accelerators
    m = np.full((1, n, n), 1.0)
    assert np.abs(destination_error_bytes(make_groups(e.caps), e.caps, m)).max() < 1e-9


def test_aggregated_phase_conserves_bytes(three_tier):
    """Every rank sends exactly its row of the byte matrix, and the counts add up to n (n - 1)."""
    e = CollectiveEngine(three_tier)
    n = three_tier.n_accelerators
    m = np.random.default_rng(1).uniform(0, 2, (1, n, n))
    (p,) = aggregated_all_to_all_phases(make_groups(e.caps), e.caps, pair_bytes=m)
    sent = np.bincount(p.src, weights=p.size_bytes, minlength=n)
    np.fill_diagonal(m[0], 0)
    assert np.allclose(sent, m[0].sum(axis=1))
    assert p.count.sum() == n * (n - 1)


@pytest.mark.parametrize("lam,bins", [(0.5, 64), (4.0, 256), (40.0, 512), (400.0, 64)])
def test_ecmp_excess_matches_random_hashing(lam, bins):
    """The closed form of the busiest bin's excess is within 15% of random hashing."""
    rng = np.random.default_rng(0)
    F = int(round(lam * bins))
    maxima = [np.bincount(rng.integers(0, bins, F), minlength=bins).max() for _ in range(400)]
    sim = np.mean(maxima) / lam
    assert float(ecmp_excess(np.array([lam]), bins)[0]) == pytest.approx(sim, rel=0.15)


def test_ecmp_no_faster_than_adaptive(tmp_path, monkeypatch):
    """Static hashing can only slow an aggregated all-to-all down against adaptive routing."""
    times = {}
    for routing in ("ecmp", "adaptive"):
        f = build_fabric(_cluster(tmp_path, routing, 3, radix=8), 128)
        times[routing] = _both(f, "direct", monkeypatch=monkeypatch)[1][1].time_s
    assert times["ecmp"] > times["adaptive"]


def test_routing_key_is_checked(tmp_path):
    """A bad scale_out.routing is one SpecError naming the key and the allowed values."""
    p = _cluster(tmp_path, "spray", 2)
    with pytest.raises(SpecError) as exc:
        build_fabric(p, 128)
    assert "routing" in str(exc.value) and "adaptive" in str(exc.value)


def test_auto_does_not_materialise_n_squared_flows():
    """4,096 H100 ranks: auto's all-to-all phases list far fewer than n^2 flows."""
    f = build_fabric("dgx-h100-superpod", 4096)
    e = CollectiveEngine(f)
    req = CollectiveRequest("all_to_all", GiB, make_groups(e.caps), "auto")
    res = e.run(req)
    listed = sum(len(p.src) for p in e.phases(req, res.algorithm))
    assert listed < 4096**2 / 10


def test_auto_decides_on_the_flow_model(two_tier, monkeypatch):
    """With the flow model, auto compares the candidates on flow results and says so; above the
    flow cap it compares analytical estimates and says why."""
    import oassim.collectives.engine as engine_mod

    e = CollectiveEngine(two_tier, "flow")
    req = CollectiveRequest("all_to_all", GiB, make_groups(e.caps), "auto")
    res = e.run(req, memo=False)
    assert any("flow model" in n for n in res.notes)
    for name, t in res.candidates.items():  # every estimate is the flow model's own time
        assert t == pytest.approx(e.run(CollectiveRequest("all_to_all", GiB, make_groups(e.caps), name),
                                        memo=False).time_s, rel=1e-12)
    monkeypatch.setattr(engine_mod, "AUTO_FLOW_MAX_FLOWS", 10)
    res = CollectiveEngine(two_tier, "flow").run(req, memo=False)
    assert any("more than the 10 auto costs on the flow model" in n for n in res.notes)
