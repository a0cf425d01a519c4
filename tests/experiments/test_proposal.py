"""Supernode proposals: every example proposal's ~16k cluster, its part counts against the closed
forms of its family, and the power and cost totals against the parts' figures."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from oassim.experiments.proposal import load_proposal
from oassim.experiments.proposal_build import build_proposal
from oassim.hardware import load_catalog

ROOT = Path(__file__).resolve().parents[2]
PROPOSALS = sorted((ROOT / "experiments" / "proposals").glob("*.yaml"))
REQUIRED = {"nvlink5", "ualink-200g-1.0", "sue-tomahawk-ultra", "oisa-gen1", "nvl72-class", "cloudmatrix-class",
            "ub-mesh-class", "tpu-class", "ualink-multivendor"}


def test_the_example_proposals_are_there() -> None:
    """The four spec proposals and the five design classes of the brief each have a file."""
    assert {p.stem for p in PROPOSALS} == REQUIRED


def _rows(rows: list[dict], key: str, value: str) -> int:
    return sum(r["count" if "count" in r else "cables"] for r in rows if r[key] == value)


def _supernode_forms(p, s: int) -> tuple[dict[str, int], dict[str, int], int]:
    """Closed forms of one family: scale-up switches by tier, scale-up cables by tier, and
    accelerators per supernode, for ``s`` supernodes."""
    fam, g = p.supernode.family, p.supernode.spec
    if fam == "switched":  # every accelerator to every chip: size x links cables, one tier
        return ({"scaleup": s * g["switches"]}, {"scaleup": s * g["size"] * g["links_per_accelerator"]}, g["size"])
    if fam == "clos2":  # L1 chips per node, one L2 plane per L1 position
        size = g["nodes"] * g["accelerators_per_node"]
        return ({"scaleup-l1": s * g["nodes"] * g["l1_per_node"],
                 "scaleup-l2": s * g["l1_per_node"] * g["l2_per_plane"]},
                {"scaleup-l1": s * size * g["l1_per_node"] * g["links_per_l1"],
                 "scaleup-l2": s * g["nodes"] * g["l1_per_node"] * g["l1_uplinks"]}, size)
    if fam == "fullmesh":  # a Hamming graph: P / n lines of n nodes per dimension, C(n, 2) pairs each
        size = math.prod(g["dims"])
        cables = {f"mesh-dim{d}": s * g["links_per_dim"][d] * (size // n) * math.comb(n, 2)
                  for d, n in enumerate(g["dims"])}
        return {}, cables, size
    if fam == "torus":  # P links per dimension; those crossing a cube face are OCS circuits
        size, cube = math.prod(g["dims"]), g["cube"]
        optical = sum(size // c for c in cube)
        ocs = sum(math.prod(cube) // c for c in cube)  # one OCS per (dimension, face position)
        return {"ocs": s * ocs}, {"ici": s * (len(cube) * size - optical), "ocs-circuit": s * optical}, size
    raise AssertionError(f"no closed form written for family {fam}")


@pytest.mark.parametrize("path", PROPOSALS, ids=[p.stem for p in PROPOSALS])
def test_cluster_of_every_example_proposal(path: Path) -> None:
    """Each example proposal's ~16k cluster passes every design rule; its part counts are the
    closed forms of its family and its power totals the parts' figures times their counts."""
    pc = build_proposal(load_proposal(path))
    assert pc.violations == []
    _check_counts(pc)
    _check_power(pc)


def _check_counts(pc) -> None:
    """Supernodes, accelerators per type, scale-up switches and cables of the family, NICs,
    fat-tree leaves and uplinks, and single-port optical modules (two per optical link) are
    the closed forms; twin-port modules lie between one per link and one per link plus one per
    switch."""
    p, t = pc.proposal.proposal, pc.totals
    size = _supernode_forms(p, 1)[2]
    s = math.ceil(p.cluster_accelerators / size)
    switches, cables, _ = _supernode_forms(p, s)
    assert (t["supernodes"], t["supernode_size"], t["accelerators"]) == (s, size, s * size)
    shares = [a.share for a in p.accelerators]
    assert sum(t["accelerators_by_type"].values()) == s * size
    for (acc, choice), n in zip(pc.proposal.accelerators, t["accelerators_by_type"].values()):
        assert abs(n - choice.share * s * size) <= size * len(shares), acc.name
    for tier, n in switches.items():
        assert _rows(t["switches"], "tier", tier) == n, tier
    for tier, n in cables.items():
        assert _rows(t["cables"], "tier", tier) == n, tier
    so = p.scale_out
    e = s * size * (so.nic.ports or 1)
    assert _rows(t["cables"], "tier", "nic") == e and _rows(t["cables"], "tier", "host") == e
    leaf = so.switches["leaf"]
    k = load_catalog().get("switch", leaf.switch).ports_at(leaf.rate_Gbps)
    leaves = _rows(t["switches"], "tier", "leaf")
    assert leaves == math.ceil(e / (k // 2))  # a non-blocking leaf: k/2 ports down, k/2 up
    assert _rows(t["cables"], "tier", "leaf-spine") == leaves * k // 2
    three = e > k * k // 2  # two tiers reach k^2/2 endpoints
    assert any(r["tier"] == "core" for r in t["switches"]) == three
    if three:
        assert _rows(t["cables"], "tier", "spine-core") == _rows(t["switches"], "tier", "spine") * k // 2
    mods = load_catalog()
    optical_tiers = [c for c in t["cables"] if c["medium"] == "optical"]
    by_module: dict[str, int] = {}
    for role, use in {**p.supernode.links, **so.links}.items():
        if use.module is not None:
            by_module.setdefault(use.module, 0)
    tier_of = {"host": "host", "leaf_spine": "leaf-spine", "spine_core": "spine-core", "l2": "scaleup-l2"}
    for role, use in {**p.supernode.links, **so.links}.items():
        if use.module is not None and role in tier_of:
            by_module[use.module] += _rows(t["cables"], "tier", tier_of[role])
    for name, links in by_module.items():
        got = t["optical_modules_by_type"][name]
        if mods.get("module", name).ports == 1:
            assert got == 2 * links, name
        else:
            assert links <= got <= links + t["switches_total"], name
    if "ocs-circuit" in cables:  # OCS circuits carry no published module: counted as unspecified ends
        assert t["optical_modules_by_type"]["unspecified"] == 2 * cables["ocs-circuit"]
    assert t["optical_modules"] == sum(t["optical_modules_by_type"].values())
    assert t["cables_total"] == sum(c["cables"] for c in t["cables"]) and optical_tiers


def _check_power(pc) -> None:
    """Accelerator power is each type's count times its figure; switch and optics power are the
    counts times the published figures; the total exists exactly when every type has one."""
    t = pc.totals
    acc = {a.name: a for a, _ in pc.proposal.accelerators}
    known = [n * acc[k].power_W for k, n in t["accelerators_by_type"].items() if acc[k].power_W is not None]
    assert t["power_W"]["accelerators_W"] == pytest.approx(sum(known))
    cat = load_catalog()
    parts = {}
    for sec in (pc.cluster["supernode"], pc.cluster.get("scale_out") or {}):
        for use in sec.get("switches", {}).values():
            parts[use["switch"]["name"]] = use["switch"].get("power_W")
    sw = sum(r["count"] * (parts.get(r["part"]) or 0.0) for r in t["switches"])
    assert t["power_W"]["switches_W"] == pytest.approx(sw)
    optics = sum(n * (cat.get("module", m).power_W or 0.0) for m, n in t["optical_modules_by_type"].items()
                 if m != "unspecified")
    assert t["power_W"]["optics_W"] == pytest.approx(optics)
    every = len(known) == len(acc)
    assert (t["power_W"]["total_W"] is not None) == every
    if every:
        assert t["power_W"]["total_W"] == pytest.approx(sum(v for k, v in t["power_W"].items() if k != "total_W"))
        assert 100 < t["power_W_per_accelerator"] < 3000  # W per accelerator: a chip plus its share of fabric


def test_priced_parts_are_counted_once_in_the_nvl72_class() -> None:
    """The NVL72-class rack price (GB200 at the rack price / 72, switch trays included) is
    counted once per GPU; the unpriced scale-out leaves the capital cost unknown."""
    t = build_proposal(load_proposal(ROOT / "experiments" / "proposals" / "nvl72-class.yaml"), 144).totals
    assert t["capital_cost_USD"] is None
    assert t["accelerators"] == 144 and t["cost_known_USD"] == pytest.approx(144 * 34722)
    assert "tomahawk-5" in t["cost_unknown_for"] and "gb200" not in t["cost_unknown_for"]


@pytest.mark.parametrize("stem, accelerators, published", [
    # TPU v4: 48 OCS for 4x4x4 cubes in a 4,096-chip pod, each using 128 of 136 ports (B1 [S22][S23])
    ("tpu-class", 4096, {"switches": {"ocs": 48}, "ocs_ports_used": 128}),
    # GB200 NVL72: 72 GPUs on 18 NVLink Switch chips (B1 [S11][S12])
    ("nvl72-class", 72, {"switches": {"scaleup": 18}}),
    # CloudMatrix384: 48 x 7 L1 chips on the boards, 7 sub-planes x 16 = 112 L2 switches (B1 [S34])
    ("cloudmatrix-class", 384, {"switches": {"scaleup-l1": 336, "scaleup-l2": 112}}),
], ids=["tpu-v4-ocs", "nvl72", "cloudmatrix384"])
def test_one_supernode_matches_the_published_counts(stem: str, accelerators: int, published: dict) -> None:
    """One supernode of the TPU-, NVL72- and CloudMatrix-class proposals has the published
    switch counts of the system it is modelled on (exact: these are counts, not measurements)."""
    pc = build_proposal(load_proposal(ROOT / "experiments" / "proposals" / f"{stem}.yaml"), accelerators)
    assert pc.totals["supernodes"] == 1 and pc.violations == []
    for tier, n in published["switches"].items():
        assert _rows(pc.totals["switches"], "tier", tier) == n, tier
    if "ocs_ports_used" in published:
        used = {d["ports_used"] for _, d in pc.graph.nodes(data=True) if d["kind"] == "ocs"}
        assert used == {published["ocs_ports_used"]}
