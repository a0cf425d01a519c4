"""Building a proposal's cluster and counting what it is made of.

What it does: :func:`build_proposal` turns a resolved proposal into its cluster file
(:func:`oassim.experiments.proposal.cluster_document`), builds the cluster with the topology
layer's builder, runs the design rules of ``oassim topo check`` on it, and reads the structure
with ``oassim topo info``'s :func:`oassim.topology.metrics.cluster_info`. The per-proposal totals
(:attr:`ProposalCluster.totals`) are switches by tier and part, optical modules by type, cables
by tier, power by part (accelerators, switches, NICs, optics, interconnect link energy) and
capital cost, each with the parts that lack a figure named.

Why the accelerator figures are recounted here: the cluster graph carries one accelerator type
(the first of the proposal), so its power and price totals are replaced by the sum over the
proposal's types, each type's supernodes times its own figure. Everything else is the topology
layer's count. A total is given only when every part has a figure; the sum over the parts that
have one is kept beside it (``*_known``), never presented as the total.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from oassim.experiments.proposal import NIC, ResolvedProposal, cluster_document, type_counts
from oassim.specio import validate
from oassim.topology.checks import Violation, check_graph
from oassim.topology.cluster import build_cluster
from oassim.topology.cluster_spec import ClusterSpec, resolve_cluster
from oassim.topology.fabric import freeze
from oassim.topology.metrics import cluster_info

__all__ = ["ProposalCluster", "build_proposal", "accelerator_rate_violations", "summarise_violations"]

# Violations listed per rule in a report; the count says how many there are in all.
EXAMPLES_PER_RULE = 3


@dataclass
class ProposalCluster:
    """A proposal's cluster, its design-rule violations and its totals.

    Attributes
    ----------
    proposal : ResolvedProposal
    cluster : dict
        The cluster file (``oassim topo info`` / ``topo check`` take it as YAML).
    notes : list of str
        Assumptions made while writing the cluster file (reach classes, modules).
    graph : networkx.Graph
    info : dict
        ``cluster_info`` of the cluster (what ``oassim topo info --json`` prints).
    violations : list of Violation
        Every broken design rule (``oassim topo check``'s rules, and the scale-up port rate of
        each accelerator type against the links it is wired to).
    totals : dict
        Per-proposal totals; see :func:`build_proposal`.
    """

    proposal: ResolvedProposal
    cluster: dict[str, Any]
    notes: list[str]
    graph: nx.Graph
    info: dict[str, Any]
    violations: list[Violation] = field(default_factory=list)
    totals: dict[str, Any] = field(default_factory=dict)


def build_proposal(rp: ResolvedProposal, accelerators: int | None = None, *, check: bool = True) -> ProposalCluster:
    """Build the cluster of a proposal, check it and count its parts.

    Parameters
    ----------
    rp : ResolvedProposal
        From :func:`oassim.experiments.proposal.load_proposal`.
    accelerators : int, optional
        Cluster size (default the proposal's ``cluster_accelerators``), rounded up to whole
        supernodes.
    check : bool
        Run the design rules.

    Returns
    -------
    ProposalCluster
        ``totals`` holds ``accelerators``, ``supernodes``, ``supernode_size``,
        ``accelerators_by_type`` (name -> count), ``switches`` (rows of tier, part, count),
        ``switches_total``, ``optical_modules_by_type``, ``optical_modules``, ``cables`` (rows of
        tier, technology, medium, cables), ``cables_total``, ``power_W`` (by part and
        ``total``; None when a part class has no figure), ``power_known_W``,
        ``power_unknown_for``, ``capital_cost_USD`` (None unless every part is priced),
        ``cost_known_USD``, ``cost_unknown_for``, and per-accelerator forms of the totals.

    Raises
    ------
    SpecError
        An invalid cluster (a geometry the family refuses, a role without a part): one line
        naming the proposal file and the key.
    """
    doc, notes = cluster_document(rp, accelerators)
    spec = validate(ClusterSpec, doc, source=rp.source)
    rc = resolve_cluster(spec, source=rp.source)
    g = build_cluster(rc)
    _nic_figures(rp, g)
    info = cluster_info(g, freeze(g))
    pc = ProposalCluster(rp, doc, notes, g, info)
    if check:
        pc.violations = check_graph(g) + accelerator_rate_violations(rp, g)
    pc.totals = _totals(rp, g, info, rc.supernodes, rc.domain_size)
    return pc


def _nic_figures(rp: ResolvedProposal, g: nx.Graph) -> None:
    """The proposal's price and power of one NIC port, on every NIC node (the builder's NICs
    carry none)."""
    figures = {k: t[NIC] for k, t in (("price_USD", rp.proposal.prices_USD), ("power_W", rp.proposal.power_W))
               if NIC in t}
    if figures:
        for _, d in g.nodes(data=True):
            if d["kind"] == "nic":
                d.update(figures)


def accelerator_rate_violations(rp: ResolvedProposal, g: nx.Graph) -> list[Violation]:
    """The accelerator types the graph does not carry (it holds the first type, whose ports
    ``topo check`` already checks) against the supernode links they are wired to: each type's
    scale-up port rate must match the links' rate (``rate-mismatch``), and its port count must
    cover the links of one accelerator (``unconnected-port`` when ports are left over,
    ``radix`` when there are more links than ports)."""
    rates: dict[tuple[str, str], float] = {}
    used: dict[int, int] = {}
    for u, v, e in g.edges(data=True):
        if e["tier"] == "nic":
            continue
        for n in (u, v):
            if g.nodes[n]["kind"] == "accelerator":
                used[n] = used.get(n, 0) + int(e.get("count", 1))
                if e.get("rate_Gbps") is not None:
                    rates.setdefault((e["tier"], e["link"]), float(e["rate_Gbps"]))
    links = set(used.values())
    out = []
    for acc, choice in rp.accelerators[1:]:
        who = f"accelerator type {acc.name} ({choice.share:g} of supernodes)"
        if acc.scaleup_link_GBps is not None:
            port = acc.scaleup_link_GBps * 8
            for (tier, link), rate in sorted(rates.items()):
                if abs(port - rate) > 1e-6 * max(port, rate):
                    out.append(Violation("rate-mismatch", who, f"its scale-up ports run at {port:g} Gb/s but the "
                                         f"{tier} links ({link}) run at {rate:g} Gb/s"))
        if acc.scaleup_links is not None and links:
            if max(links) > acc.scaleup_links:
                out.append(Violation("radix", who, f"{max(links)} scale-up links per accelerator, but it has "
                                     f"{acc.scaleup_links} scale-up ports"))
            elif min(links) < acc.scaleup_links:
                out.append(Violation("unconnected-port", who, f"{acc.scaleup_links - min(links)} of "
                                     f"{acc.scaleup_links} scale-up ports unconnected"))
    return out


def summarise_violations(violations: list[Violation]) -> list[dict[str, Any]]:
    """Violations grouped by rule: ``rule``, ``count`` and the first few as text."""
    by: dict[str, list[Violation]] = {}
    for v in violations:
        by.setdefault(v.rule, []).append(v)
    return [{"rule": r, "count": len(vs), "examples": [str(v) for v in vs[:EXAMPLES_PER_RULE]]}
            for r, vs in by.items()]


def _link_energy_W(rp: ResolvedProposal, info: dict[str, Any]) -> tuple[float, bool]:
    """Interconnect link power: pJ/bit x both directions of every interconnect link; and
    whether the proposal's interconnect leaves it unknown."""
    spec = rp.interconnect
    if spec is None:
        return 0.0, False
    cables = sum(r["cables"] for r in info["links"] if r["technology"] == f"{spec.name}-port")
    if spec.power_pJ_per_bit is None:
        return 0.0, cables > 0
    return cables * 2 * spec.port_data_rate_Gbps * 1e9 * spec.power_pJ_per_bit * 1e-12, False


def _totals(rp: ResolvedProposal, g: nx.Graph, info: dict[str, Any], supernodes: int, size: int) -> dict[str, Any]:
    a = info["accelerators"]
    counts = [n * size for n in type_counts(rp, supernodes)]
    by_type = {acc.name: n for (acc, _), n in zip(rp.accelerators, counts)}
    switches: Counter = Counter()
    unpriced: set[str] = set()
    price = 0.0
    for _, d in g.nodes(data=True):
        if d["kind"] in ("switch", "ocs"):
            switches[(d["tier"], str(d.get("spec") or d["tier"]))] += 1
        if d["kind"] == "accelerator":
            continue
        name = str(d.get("spec") or d["tier"])
        if d.get("price_USD") is None:
            unpriced.add(name)
        else:
            price += d["price_USD"]
    mods = g.graph.get("modules", {})
    for name, n in info["optical_modules_by_type"].items():
        m = mods.get(name)
        if m is None or m.price_USD is None:
            unpriced.add(name)
        else:
            price += n * m.price_USD
    acc_W, unpowered = 0.0, []
    for (acc, _), n in zip(rp.accelerators, counts):
        if acc.price_USD is None:
            unpriced.add(acc.name)
        else:
            price += n * acc.price_USD
        if acc.power_W is None:
            unpowered.append(acc.name)
        else:
            acc_W += n * acc.power_W
    by_part = dict(info["power_W"])
    by_part.pop("total_W", None)
    unknown = {k: list(v) for k, v in info["power_unknown_by_part"].items()}
    by_part["accelerators_W"], unknown["accelerators_W"] = acc_W, unpowered
    link_W, link_unknown = _link_energy_W(rp, info)
    by_part["interconnect_links_W"] = link_W
    unknown["interconnect_links_W"] = ["interconnect link energy (power_pJ_per_bit)"] if link_unknown else []
    known_W = sum(by_part.values())
    per = (lambda x: None if x is None or not a else x / a)
    # as ``topo info``: a total only when every accelerator type's power is known (they draw most
    # of a cluster's power); other parts without a figure are named and not counted
    total_W = None if unpowered else known_W
    cost = price if not unpriced else None
    return {
        "accelerators": a, "accelerators_requested": info["accelerators_requested"], "supernodes": supernodes,
        "supernode_size": size, "accelerators_by_type": by_type,
        "switches": [{"tier": t, "part": p, "count": c} for (t, p), c in sorted(switches.items())],
        "switches_total": sum(switches.values()),
        "optical_modules_by_type": dict(info["optical_modules_by_type"]),
        "optical_modules": info["optical_modules"],
        "cables": [{k: r[k] for k in ("tier", "technology", "medium", "cables")} for r in info["links"]],
        "cables_total": info["links_total"],
        "power_W": {**by_part, "total_W": total_W}, "power_known_W": known_W,
        "power_unknown_by_part": {k: sorted(v) for k, v in unknown.items()},
        "power_unknown_for": sorted({n for v in unknown.values() for n in v}),
        "capital_cost_USD": cost, "cost_known_USD": price, "cost_unknown_for": sorted(unpriced),
        "power_W_per_accelerator": per(total_W), "power_known_W_per_accelerator": per(known_W),
        "optical_modules_per_accelerator": info["optical_modules_per_accelerator"],
        "switches_per_accelerator": per(float(sum(switches.values()))),
        "capital_cost_USD_per_accelerator": per(cost),
        "scaleup_bandwidth_per_accelerator_GBps": info["scaleup_bandwidth_per_accelerator_GBps"],
        "scaleout_bandwidth_per_accelerator_GBps": info.get("scaleout_bandwidth_per_accelerator_GBps"),
        "cluster_bisection_GBps": info.get("cluster_bisection_GBps"), "diameter_hops": info.get("diameter_hops"),
    }
