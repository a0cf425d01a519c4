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
    # one C-level tally of (tier, technology, medium, cables) tuples, then rows by tier
    tally = Counter((e["tier"], e["link"], e["medium"], int(e.get("count", 1))) for _, _, e in g.edges(data=True))
    links: dict[str, dict[str, Any]] = {}
    for (tier, tech, medium, c), k in tally.items():
        row = links.setdefault(tier, {"tier": tier, "technology": tech, "medium": medium,
                                      "edges": 0, "cables": 0, "optical_links": 0})
        row["edges"] += k
        row["cables"] += c * k
        if medium == "optical":
            row["optical_links"] += c * k
    accelerators = sum(c for (k, _), c in kinds.items() if k == "accelerator")
    return {"name": g.graph.get("name", ""), "accelerators": accelerators,
            "nodes": [{"kind": k, "tier": t, "count": c} for (k, t), c in sorted(kinds.items())],
            "links": sorted(links.values(), key=lambda r: r["tier"])}
