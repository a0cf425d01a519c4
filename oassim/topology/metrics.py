"""Structural metrics of a cluster: counts, bandwidths, bisection, diameter, power and cost.

These are what ``oassim topo info`` reports and what an architect compares first between
supernode designs. Bisection bandwidth is per direction between the natural halves of the
accelerators (rank < A/2 versus the rest): closed forms from the families (checked against
max-flow in the tests); diameter is the largest routed hop count between accelerators.
"""

from __future__ import annotations

import importlib
import inspect
from collections import Counter
from typing import TYPE_CHECKING, Any

import numpy as np

from oassim.topology.fabric import Fabric

if TYPE_CHECKING:
    import networkx as nx

__all__ = ["cluster_info", "routed_diameter", "optical_module_counts", "link_count", "LINK_COUNT_NOTE"]

# What `topo info` and `topo check` count as links, in the words both print.
LINK_COUNT_NOTE = "physical links, each bidirectional link counted once"


def _family(name: str):
    return importlib.import_module(f"oassim.topology.families.{name}")


def optical_module_counts(g: nx.Graph) -> Counter:
    """Optical modules per module type, counted at every link end.

    A twin-port module (``ports`` = 2, e.g. an 800G OSFP carrying two 400G links) serves
    several links at one cage, so modules at a node = ceil(links there / module ports). Optical circuits through an OCS
    count as links with modules at both ends.
    """
    mods = g.graph.get("modules", {})
    ends: Counter = Counter()
    for u, v, e in g.edges(data=True):
        if e["medium"] != "optical":
            continue
        m = e.get("module") or "unspecified"
        per = mods[m].ports if m in mods else 1
        c = int(e.get("count", 1))
        ends[(u, m, per)] += c
        ends[(v, m, per)] += c
    out: Counter = Counter()
    for (_, m, per), links in ends.items():
        out[m] += -(-links // per)
    return out


def link_count(g: nx.Graph) -> int:
    """Physical links of every tier (cables, board traces, NIC attachments, optical circuits
    through an OCS), each bidirectional link counted once: the sum of the edges' ``count``.

    (A frozen :class:`Fabric` holds two directed links per graph edge, whatever its count.)
    """
    return sum(int(e.get("count", 1)) for _, _, e in g.edges(data=True))


def routed_diameter(fabric: Fabric, sources: int = 4) -> int:
    """Largest routed hop count from a few sources (first, last, middle ranks) to every rank.

    Exact for families whose accelerators are equivalent under symmetry, which is every
    family here; on arbitrary graphs it is a lower bound.
    """
    a = fabric.n_accelerators
    if a < 2:
        return 0
    srcs = sorted({0, a - 1, a // 2, a // 3})[:sources]
    best = 0
    for s in srcs:
        dst = np.arange(a)
        dst = dst[dst != s]
        p = fabric.route_ranks(np.full(len(dst), s), dst)
        best = max(best, int(p.hops.max()))
    return best


def part_rows(g: nx.Graph) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``topo info``'s ``nodes`` rows (kind, tier, count) and ``links`` rows (tier, technology of
    its first edge, medium, edges, cables, optical links), sorted; one tally over the edges."""
    kinds = Counter((d["kind"], d["tier"]) for _, d in g.nodes(data=True))
    tally = Counter((e["tier"], e["link"], e["medium"], int(e.get("count", 1))) for _, _, e in g.edges(data=True))
    links: dict[str, dict[str, Any]] = {}
    for (tier, tech, medium, c), k in tally.items():
        row = links.setdefault(tier, {"tier": tier, "technology": tech, "medium": medium,
                                      "edges": 0, "cables": 0, "optical_links": 0})
        row["edges"] += k
        row["cables"] += c * k
        if medium == "optical":
            row["optical_links"] += c * k
    return ([{"kind": k, "tier": t, "count": c} for (k, t), c in sorted(kinds.items())],
            sorted(links.values(), key=lambda r: r["tier"]))


def cluster_info(g: nx.Graph, fabric: Fabric) -> dict[str, Any]:
    """Everything ``topo info`` prints, as one JSON-ready mapping (SI units and named units)."""
    rc = g.graph.get("resolved")
    nodes, links = part_rows(g)
    modules = optical_module_counts(g)
    a = fabric.n_accelerators
    out_scaleup = np.zeros(fabric.n_nodes)
    nic_tier = fabric.link_tier_names.index("nic") if "nic" in fabric.link_tier_names else -1
    up = fabric.link_tier != nic_tier
    np.add.at(out_scaleup, fabric.link_src[up], fabric.link_bw[up])
    per_acc_up = out_scaleup[fabric.accel_node]
    info: dict[str, Any] = {
        "name": g.graph.get("name", ""),
        "accelerators": a,
        "accelerators_requested": g.graph.get("accelerators_requested", a),
        "supernodes": g.graph.get("supernodes", 1),
        "supernode_size": g.graph.get("domain_size", a),
        "nodes": nodes,
        "links": links,
        "links_total": link_count(g),
        "optical_modules": int(sum(modules.values())),
        "optical_modules_by_type": dict(modules),
        "optical_modules_per_accelerator": float(sum(modules.values()) / a) if a else 0.0,
        "scaleup_bandwidth_per_accelerator_GBps": float(np.min(per_acc_up)) / 1e9 if a else 0.0,
    }
    if rc is not None:
        info["accelerator_type"] = rc.accelerator.name
        info["scaleout_bandwidth_per_accelerator_GBps"] = (
            rc.nic_ports * rc.nic_rate_Gbps / 8 if rc.scale_out is not None else 0.0
        )
        info.update(_bisections(rc))
    info["diameter_hops"] = routed_diameter(fabric)
    info.update(_power_cost(g, rc, modules))
    return info


def _family_bisection(d) -> float:
    """Closed-form bisection of one resolved domain (families that size by radix get it)."""
    fn = _family(d.family).bisection_Bps
    if "switches" in inspect.signature(fn).parameters:
        return float(fn(d.spec, d.links, d.switches))
    return float(fn(d.spec, d.links))


def _bisections(rc) -> dict[str, Any]:
    out: dict[str, Any] = {}
    dom = None
    if rc.supernode is not None:
        sn = rc.supernode
        dom = _family_bisection(sn)
        out["supernode_bisection_GBps"] = dom / 1e9
    if rc.scale_out is not None:
        so = rc.scale_out
        fabric_bis = _family_bisection(so)
        nic_bis = rc.accelerators // 2 * rc.nic_ports * rc.nic_rate_Gbps * 1e9 / 8
        cluster = min(fabric_bis, nic_bis)
        # With an odd number of supernodes the rank halves split the middle one in two, so its
        # own scale-up bisection crosses the cut too (one supernode is the 1-supernode case).
        if dom is not None and rc.supernodes % 2 == 1:
            cluster += dom
        out["cluster_bisection_GBps"] = cluster / 1e9
        out["scaleout_bisection_GBps"] = fabric_bis / 1e9
    elif dom is not None:
        out["cluster_bisection_GBps"] = dom / 1e9
    return out


# What ``power_W`` adds up, by node kind; optical modules go to "optics_W".
_POWER_PARTS = {"accelerator": "accelerators_W", "nic": "nics_W", "switch": "switches_W", "ocs": "switches_W"}


def _power_cost(g: nx.Graph, rc, modules: Counter) -> dict[str, Any]:
    """Power and capital cost of the parts, with the parts that have no published figure.

    ``total_W`` is the sum over accelerators, switches (and OCS), NICs and optical modules of
    the parts with a figure; it is None when the accelerators have none, since a total
    without them would be off by orders of magnitude (accelerators draw most of a cluster's
    power). ``power_known_W`` is that sum in every case.
    """
    unknown_price: set[str] = set()
    power = {"accelerators_W": 0.0, "switches_W": 0.0, "nics_W": 0.0, "optics_W": 0.0}
    unknown_by: dict[str, set[str]] = {k: set() for k in power}
    price = 0.0
    for _, d in g.nodes(data=True):
        name = str(d.get("spec") or d["tier"])
        p = d.get("power_W")
        part = _POWER_PARTS.get(d["kind"], "switches_W")
        if p is None:
            unknown_by[part].add(name)
        else:
            power[part] += p
        c = d.get("price_USD")
        if c is None:
            unknown_price.add(name)
        else:
            price += c
    mods = g.graph.get("modules", {})
    for name, n in modules.items():
        m = mods.get(name)
        if m is None or m.power_W is None:
            unknown_by["optics_W"].add(name)
        else:
            power["optics_W"] += n * m.power_W
        if m is None or m.price_USD is None:
            unknown_price.add(name)
        else:
            price += n * m.price_USD
    known = sum(power.values())
    return {
        "power_W": {**power, "total_W": None if unknown_by["accelerators_W"] else known},
        "power_known_W": known,
        "power_includes": ["accelerators", "switches", "NICs", "optical modules"],
        "power_unknown_for": sorted(set().union(*unknown_by.values())),
        "power_unknown_by_part": {k: sorted(v) for k, v in unknown_by.items()},
        "capital_cost_USD": None if unknown_price else price,
        "cost_unknown_for": sorted(unknown_price),
    }
