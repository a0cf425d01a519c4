"""Reference bisection by max-flow (networkx), independent of the closed forms."""

from __future__ import annotations

import networkx as nx
import numpy as np


def natural_bisection_maxflow(g: nx.Graph) -> float:
    """Max-flow, bytes/s per direction, from accelerators of rank < A/2 to the rest.

    Every undirected edge is a full-duplex link: capacity ``bandwidth_Bps`` each way.
    """
    acc = sorted((d["rank"], n) for n, d in g.nodes(data=True) if d["kind"] == "accelerator")
    a = len(acc)
    half = (a + 1) // 2
    d = nx.DiGraph()
    for u, v, e in g.edges(data=True):
        d.add_edge(u, v, capacity=e["bandwidth_Bps"])
        d.add_edge(v, u, capacity=e["bandwidth_Bps"])
    for _, n in acc[:half]:
        d.add_edge("S", n, capacity=np.inf)
    for _, n in acc[half:]:
        d.add_edge(n, "T", capacity=np.inf)
    value, _ = nx.maximum_flow(d, "S", "T")
    return float(value)
