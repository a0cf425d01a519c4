"""The part counts a reliability campaign needs, read straight off the topology builder's graph.

What is counted: the rows ``nodes`` (kind, tier, count) and ``links`` (tier, technology,
medium, edges, cables, optical links) of :func:`oassim.topology.metrics.cluster_info`, the
accelerator count and the cluster name, and nothing else: the routed diameter, bisections,
power and cost that ``oassim topo info`` also computes are not needed to know what can fail,
so a campaign does not pay for them (``tests/reliability`` checks the rows equal
``cluster_info``'s).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["reliability_counts"]


def reliability_counts(g: Any, fabric: Any = None) -> dict[str, Any]:
    """``name``, ``accelerators``, ``nodes`` and ``links`` of a built cluster: its networkx graph
    ``g``, or its frozen :class:`~oassim.topology.fabric.Fabric` (as ``g`` or ``fabric``), whose
    counts are numpy tallies of its node and link arrays (each edge is two directed links of
    equal bundle count; the link rows then carry no ``technology``)."""
    from oassim.topology.fabric import Fabric

    fabric = g if fabric is None and isinstance(g, Fabric) else fabric
    if fabric is not None:
        return _from_fabric(fabric.name, fabric)
    from oassim.topology.metrics import part_rows

    nodes, links = part_rows(g)
    accelerators = sum(r["count"] for r in nodes if r["kind"] == "accelerator")
    return {"name": g.graph.get("name", ""), "accelerators": accelerators, "nodes": nodes, "links": links}


def _from_fabric(name: str, f: Any) -> dict[str, Any]:
    from oassim.topology.graph import NODE_KINDS
    from oassim.topology.parts import MEDIA

    nk, nt = len(NODE_KINDS), len(f.tier_names)
    pairs = np.bincount(f.node_kind.astype(np.int64) * nt + f.node_tier, minlength=nk * nt)
    nodes = sorted((NODE_KINDS[i // nt], f.tier_names[i % nt], int(c)) for i, c in enumerate(pairs) if c)
    nm = len(MEDIA)
    key = f.link_tier.astype(np.int64) * nm + f.link_medium
    edges = np.bincount(key, minlength=len(f.link_tier_names) * nm) // 2
    cables = np.bincount(key, weights=f.link_count, minlength=len(f.link_tier_names) * nm) / 2
    links: dict[str, dict[str, Any]] = {}
    for i in np.flatnonzero(edges):
        tier, medium = f.link_tier_names[i // nm], MEDIA[i % nm]
        row = links.setdefault(tier, {"tier": tier, "medium": medium, "edges": 0, "cables": 0, "optical_links": 0})
        row["edges"] += int(edges[i])
        row["cables"] += int(cables[i])
        if medium == "optical":
            row["optical_links"] += int(cables[i])
    return {"name": name, "accelerators": int(len(f.accel_node)),
            "nodes": [{"kind": k, "tier": t, "count": c} for k, t, c in nodes],
            "links": sorted(links.values(), key=lambda r: r["tier"])}
