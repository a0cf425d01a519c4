"""The cluster graph schema and the helpers every family builder uses to write it.

docs/architecture.md decision 3: builders produce a cluster graph, frozen once into a ``Fabric``. The
schema is fixed here so that builders, the design-rule checker, metrics and the freezer agree.
By default the graph is an :class:`~oassim.topology.arraygraph.ArrayGraph` (numpy blocks, a
networkx view on demand); inside :func:`networkx_backend` it is a plain ``networkx.Graph``, the
reference the array path is tested against.

Nodes are contiguous integers ``0..n-1`` in creation order (``add_nodes`` allocates them), so a
frozen fabric keeps node ids unchanged and structural routers can compute ids arithmetically.

Node attributes
    kind      "accelerator" | "nic" | "switch" | "ocs"
    tier      tier label, e.g. "accelerator", "nic", "scaleup", "scaleup-l1", "scaleup-l2",
              "leaf", "spine", "core", "router" (dragonfly), "ocs"
    rank      accelerators only: 0..A-1 in creation order
    domain    scale-up domain (supernode) id, -1 where none
    rail      rail index (accelerator position in its domain / NIC rail), -1 where none
    pod       pod / group id, -1 where none
    plane     fabric plane, -1 where none
    spec      hardware preset name (accelerator, switch, NIC)
    radix     switches: usable ports at the tier's port rate
    ports     accelerators / NICs: declared ports of the class this builder wires
    port_rate_Gbps  port rate (switches, NICs, accelerators' scale-up ports)
    power_W, price_USD  optional, None where unknown

Edge attributes (one undirected edge = ``count`` parallel full-duplex physical links)
    bandwidth_Bps  per direction, all ``count`` links together
    latency_s      per hop
    medium         "copper" | "optical" | "backplane" | "pcb"
    link           link technology name
    module         optical module / cable preset at each end, or None
    count          parallel physical links bundled in this edge
    tier           link tier label, e.g. "scaleup", "nic", "leaf-spine", "spine-core"
    rate_Gbps      port rate of each physical link
    reach_m, length_m, efficiency  as in :class:`~oassim.topology.parts.LinkClass`
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Iterable, Iterator

import numpy as np

from oassim.topology.arraygraph import NODE_KINDS, ArrayGraph
from oassim.topology.parts import LinkClass

if TYPE_CHECKING:
    import networkx as nx

__all__ = [
    "NODE_KINDS",
    "new_graph",
    "add_nodes",
    "add_links",
    "nodes_of",
    "accelerators_of",
    "set_routing",
    "networkx_backend",
    "as_networkx",
    "has_nodes",
]

_BACKEND = ["arrays"]


@contextmanager
def networkx_backend() -> Iterator[None]:
    """Inside this block ``new_graph`` makes networkx graphs (the reference build path)."""
    _BACKEND.append("networkx")
    try:
        yield
    finally:
        _BACKEND.pop()


def as_networkx(g: Any) -> "nx.Graph":
    """``g`` as a networkx graph (an ArrayGraph's materialised view; a networkx graph itself)."""
    return g.to_networkx() if isinstance(g, ArrayGraph) else g


def has_nodes(g: "ArrayGraph | nx.Graph", ids: Iterable[int]) -> bool:
    """Whether every id in ``ids`` is a node of ``g`` (vectorised for an ArrayGraph)."""
    if isinstance(g, ArrayGraph) and not g.materialised:
        a = np.asarray(ids, dtype=np.int64)
        return bool(np.all((a >= 0) & (a < g.graph["n_nodes"])))
    return all(int(n) in g for n in ids)


def new_graph(name: str, family: str) -> "ArrayGraph | nx.Graph":
    """An empty cluster graph with the counters ``add_nodes`` needs."""
    if _BACKEND[-1] == "arrays":
        return ArrayGraph(name, family)
    import networkx as nx

    g = nx.Graph(name=name, family=family)
    g.graph["n_nodes"] = 0
    g.graph["n_accelerators"] = 0
    return g


def _column(value: Any, count: int) -> list[Any]:
    if isinstance(value, np.ndarray) or (isinstance(value, (list, tuple, range)) and not isinstance(value, str)):
        seq = list(value.tolist() if isinstance(value, np.ndarray) else value)
        if len(seq) != count:
            raise ValueError(f"attribute column has {len(seq)} values for {count} nodes")
        return seq
    return [value] * count


def add_nodes(g: "ArrayGraph | nx.Graph", count: int, kind: str, tier: str, **attrs: Any) -> np.ndarray:
    """Add ``count`` nodes of one kind and tier; return their ids (int64 array).

    Each keyword is either a scalar (same for all nodes) or a sequence of length ``count``.
    Accelerators get consecutive ``rank`` values. Missing ``domain``, ``rail``, ``pod`` and
    ``plane`` default to -1.
    """
    if kind not in NODE_KINDS:
        raise ValueError(f"node kind must be one of {NODE_KINDS}, got {kind!r}")
    if count < 0:
        raise ValueError("count must be >= 0")
    if isinstance(g, ArrayGraph):
        if not g.materialised:
            return g.add_nodes(count, kind, tier, attrs)
        g = g.to_networkx()
    start = g.graph["n_nodes"]
    ids = np.arange(start, start + count, dtype=np.int64)
    for key in ("domain", "rail", "pod", "plane"):
        attrs.setdefault(key, -1)
    if kind == "accelerator":
        r0 = g.graph["n_accelerators"]
        attrs["rank"] = range(r0, r0 + count)
        g.graph["n_accelerators"] = r0 + count
    cols = {k: _column(v, count) for k, v in attrs.items()}
    keys = list(cols)
    g.add_nodes_from(
        (int(i), {"kind": kind, "tier": tier, **{k: cols[k][j] for k in keys}})
        for j, i in enumerate(ids)
    )
    g.graph["n_nodes"] = start + count
    return ids


def add_links(
    g: "ArrayGraph | nx.Graph",
    u: Iterable[int] | int,
    v: Iterable[int] | int,
    link: LinkClass,
    tier: str,
    count: int | Iterable[int] = 1,
    ocs: Iterable[int] | None = None,
) -> None:
    """Wire ``u[i]`` to ``v[i]`` with ``count[i]`` parallel physical links of class ``link``.

    Wiring the same pair twice adds to the existing edge's ``count`` and bandwidth, so a
    builder may wire link by link or in bundles with the same result. ``ocs[i]``, when given,
    is the node id of the optical circuit switch circuit ``i`` passes (edge attribute ``ocs``).
    """
    us = np.atleast_1d(np.asarray(u, dtype=np.int64))
    vs = np.atleast_1d(np.asarray(v, dtype=np.int64))
    cs = np.atleast_1d(np.asarray(count, dtype=np.int64))
    us, vs, cs = np.broadcast_arrays(us, vs, cs)
    if np.any(us == vs):
        raise ValueError("a link must join two different nodes")
    if np.any(cs < 1):
        raise ValueError("link count must be >= 1")
    if isinstance(g, ArrayGraph):
        if not g.materialised:
            g.add_links(us, vs, cs, link, tier, None if ocs is None else np.broadcast_to(np.asarray(ocs), us.shape))
            return
        g = g.to_networkx()
    os_ = None if ocs is None else np.broadcast_to(np.asarray(ocs, dtype=np.int64), us.shape).tolist()
    base = {
        "latency_s": link.latency_s,
        "medium": link.medium,
        "link": link.name,
        "module": link.module,
        "tier": tier,
        "rate_Gbps": link.port_rate_Gbps,
        "reach_m": link.reach_m,
        "length_m": link.length_m,
        "efficiency": link.efficiency,
    }
    adj = g._adj  # read-only peek to merge repeated wiring without a per-edge Python lookup cost
    bw = link.bandwidth_Bps
    fresh: dict[tuple[int, int], tuple[int, int, dict]] = {}  # pairs new to g, first wiring first
    for j, (a, b, c) in enumerate(zip(us.tolist(), vs.tolist(), cs.tolist())):
        d = adj.get(a, {}).get(b)
        if d is None:
            hit = fresh.get((a, b) if a < b else (b, a))
            d = hit[2] if hit is not None else None
        if d is not None:
            d["count"] += c
            d["bandwidth_Bps"] += c * bw
        else:
            fresh[(a, b) if a < b else (b, a)] = (
                a, b, {**base, "count": c, "bandwidth_Bps": c * bw, **({} if os_ is None else {"ocs": os_[j]})})
    g.add_edges_from(fresh.values())


def nodes_of(g: "ArrayGraph | nx.Graph", kind: str | None = None, tier: str | None = None) -> np.ndarray:
    """Ids of the nodes of a kind and/or tier, ascending."""
    out = [
        n
        for n, d in g.nodes(data=True)
        if (kind is None or d["kind"] == kind) and (tier is None or d["tier"] == tier)
    ]
    return np.asarray(sorted(out), dtype=np.int64)


def accelerators_of(g: "ArrayGraph | nx.Graph") -> np.ndarray:
    """Accelerator node ids ordered by rank."""
    if isinstance(g, ArrayGraph):
        return g.accelerator_ids()
    acc = [(d["rank"], n) for n, d in g.nodes(data=True) if d["kind"] == "accelerator"]
    acc.sort()
    return np.asarray([n for _, n in acc], dtype=np.int64)


def set_routing(g: "ArrayGraph | nx.Graph", router: str, **structure: Any) -> None:
    """Record which structural router serves this graph, with the arrays it needs.

    ``structure`` holds plain numpy arrays and scalars in this graph's node ids; the router
    named here (see :data:`oassim.topology.routing.ROUTERS`) is built from them at freeze time.
    """
    g.graph["routing"] = {"router": router, **structure}
