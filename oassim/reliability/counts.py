"""The part counts a reliability campaign needs, read straight off the topology builder's graph.

What is counted: the rows ``nodes`` (kind, tier, count) and ``links`` (tier, technology,
medium, edges, cables, optical links) of :func:`oassim.topology.metrics.cluster_info`, the
accelerator count and the cluster name, and nothing else: the routed diameter, bisections,
power and cost that ``oassim topo info`` also computes are not needed to know what can fail,
so a campaign does not pay for them (``tests/reliability`` checks the rows equal
``cluster_info``'s).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

__all__ = ["reliability_counts"]


def reliability_counts(g: Any) -> dict[str, Any]:
    """``name``, ``accelerators``, ``nodes`` and ``links`` of a built cluster graph (networkx)."""
    kinds = Counter((d["kind"], d["tier"]) for _, d in g.nodes(data=True))
    links: dict[str, dict[str, Any]] = {}
    for _, _, e in g.edges(data=True):
        row = links.setdefault(e["tier"], {"tier": e["tier"], "technology": e["link"], "medium": e["medium"],
                                           "edges": 0, "cables": 0, "optical_links": 0})
        c = int(e.get("count", 1))
        row["edges"] += 1
        row["cables"] += c
        if e["medium"] == "optical":
            row["optical_links"] += c
    return {"name": g.graph.get("name", ""), "accelerators": sum(c for (k, _), c in kinds.items() if k == "accelerator"),
            "nodes": [{"kind": k, "tier": t, "count": c} for (k, t), c in sorted(kinds.items())],
            "links": sorted(links.values(), key=lambda r: r["tier"])}
