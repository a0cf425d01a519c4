"""The frozen fabric: a cluster graph as flat numpy arrays, plus its router.

docs/architecture.md decision 3: kernels never see networkx. ``freeze(graph)`` turns the builder's graph
(an :class:`~oassim.topology.arraygraph.ArrayGraph`, read array by array, or a networkx graph)
into a :class:`Fabric` once; everything downstream (routing, network models, metrics) works on
its arrays. Each undirected edge ``e`` becomes two directed links: ``2e`` (lower id to higher
id) and ``2e + 1`` (the reverse), each with the edge's full per-direction bandwidth.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from oassim.topology.arraygraph import NODE_KINDS, ArrayGraph, medium_codes
from oassim.topology.parts import MEDIA

if TYPE_CHECKING:
    import networkx as nx

__all__ = ["Fabric", "GridGeometry", "Paths", "freeze"]


@dataclass(frozen=True)
class Paths:
    """Routes of many (src, dst) pairs as a CSR of directed link ids.

    ``links[ptr[i]:ptr[i+1]]`` are the links of pair ``i`` in travel order.
    """

    ptr: np.ndarray  # int64, shape (n_pairs + 1,)
    links: np.ndarray  # int64, shape (total_hops,)

    def __len__(self) -> int:
        return len(self.ptr) - 1

    def __getitem__(self, i: int) -> np.ndarray:
        return self.links[self.ptr[i] : self.ptr[i + 1]]

    @property
    def hops(self) -> np.ndarray:
        """Links per pair, shape (n_pairs,)."""
        return np.diff(self.ptr)


class GridGeometry(NamedTuple):
    """A direct-connect scale-up domain's grid, for topology-aware collectives.

    Attributes
    ----------
    family : str
        ``"torus"`` (a ring with wraparound in every dimension) or ``"fullmesh"`` (every
        dimension a clique).
    dims : tuple of int
        Accelerators along each dimension, ``dims[0]`` fastest: local rank ``r`` of a domain
        sits at coordinate ``(r // stride_d) % dims[d]``.
    link_Bps : tuple of float
        Payload capacity per direction between two neighbours of each dimension (the least
        of that dimension's links, parallel links bundled), bytes/s.
    """

    family: str
    dims: tuple[int, ...]
    link_Bps: tuple[float, ...]


#: Answers of ``Fabric.spread`` each fabric keeps (a sweep worker costs the same groups'
#: flows at many sizes and points), at most this many and this many array elements in all.
SPREAD_CACHE_ENTRIES = 1024
SPREAD_CACHE_ELEMENTS = 2 * 2**20


def _spread_elements(entry: tuple) -> int:
    src, dst, (paths, owner, frac) = entry
    return len(src) + len(dst) + len(paths.ptr) + len(paths.links) + len(owner) + len(frac)


@dataclass(frozen=True, eq=False)
class Fabric:
    """A cluster fabric as arrays. All quantities SI (bytes/s, s).

    Node arrays have shape (n_nodes,), link arrays shape (n_links,) with n_links = 2 * edges.
    """

    name: str
    family: str
    node_kind: np.ndarray  # int8 index into NODE_KINDS
    node_tier: np.ndarray  # int16 index into tier_names
    tier_names: tuple[str, ...]
    node_domain: np.ndarray  # int32, -1 where none
    node_rail: np.ndarray
    node_pod: np.ndarray
    node_plane: np.ndarray
    accel_node: np.ndarray  # int64, rank -> node id
    link_src: np.ndarray  # int64
    link_dst: np.ndarray  # int64
    link_bw: np.ndarray  # float64, bytes/s per direction
    link_lat: np.ndarray  # float64, s
    link_eff: np.ndarray  # float64, protocol efficiency
    link_count: np.ndarray  # int32, physical links bundled
    link_tier: np.ndarray  # int16 index into link_tier_names
    link_tier_names: tuple[str, ...]
    link_medium: np.ndarray  # int8 index into MEDIA
    node_lat: np.ndarray  # float64, s: forwarding latency of each node (switch port-to-port), 0 else
    routing: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def n_nodes(self) -> int:
        return len(self.node_kind)

    @property
    def n_links(self) -> int:
        return len(self.link_src)

    @property
    def n_accelerators(self) -> int:
        return len(self.accel_node)

    @cached_property
    def _pair_keys(self) -> tuple[np.ndarray, np.ndarray]:
        """Directed links sorted by ``src * n_nodes + dst``: (sorted keys, link ids). Parallel
        links keep ascending id order, so a lookup finds the lowest id of a pair."""
        key = self.link_src.astype(np.int64, copy=False) * self.n_nodes + self.link_dst
        order = np.argsort(key, kind="stable")
        return key[order], order.astype(np.int64, copy=False)

    @cached_property
    def csr(self) -> tuple[np.ndarray, np.ndarray]:
        """Outgoing adjacency: ``out_link[out_ptr[u]:out_ptr[u+1]]`` are u's links."""
        order = np.argsort(self.link_src, kind="stable")
        counts = np.bincount(self.link_src, minlength=self.n_nodes)
        ptr = np.zeros(self.n_nodes + 1, dtype=np.int64)
        np.cumsum(counts, out=ptr[1:])
        return ptr, order.astype(np.int64, copy=False)

    def link_ids(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Directed link ids for node pairs (u[i] -> v[i]); KeyError if a pair is not adjacent."""
        # a binary search over all links in numpy: no JIT start-up on the analytical path
        q = np.ascontiguousarray(u, dtype=np.int64).ravel() * self.n_nodes + np.asarray(v, dtype=np.int64).ravel()
        keys, ids = self._pair_keys
        at = np.minimum(np.searchsorted(keys, q), max(len(keys) - 1, 0))
        found = keys[at] == q if len(keys) else np.zeros(len(q), dtype=bool)
        if not found.all():
            i = int(np.flatnonzero(~found)[0])
            raise KeyError(f"no link from node {int(q[i] // self.n_nodes)} to node {int(q[i] % self.n_nodes)}")
        return ids[at]

    @cached_property
    def router(self):
        """The router named by the builder (structural where possible, see routing.py)."""
        from oassim.topology.routing import make_router

        return make_router(self)

    def route(self, src: np.ndarray, dst: np.ndarray, salt: int = 0) -> Paths:
        """Paths between node ids ``src[i] -> dst[i]`` (ECMP choice hashed with ``salt``)."""
        return self.router.route(np.asarray(src, dtype=np.int64), np.asarray(dst, dtype=np.int64), salt)

    def route_ranks(self, src: np.ndarray, dst: np.ndarray, salt: int = 0) -> Paths:
        """Paths between accelerator ranks."""
        return self.route(self.accel_node[np.asarray(src)], self.accel_node[np.asarray(dst)], salt)

    def spread(self, src: np.ndarray, dst: np.ndarray, salt: int = 0) -> tuple[Paths, np.ndarray, np.ndarray]:
        """How the hardware spreads each (src, dst) transfer over paths.

        Returns ``(paths, owner, fraction)``: path ``k`` carries ``fraction[k]`` of the bytes of
        pair ``owner[k]``. Fabrics that stripe a transfer over all their links (NVLink over
        every switch chip) return several paths per pair; ECMP fabrics return one.
        """
        src = np.ascontiguousarray(src, dtype=np.int64)
        dst = np.ascontiguousarray(dst, dtype=np.int64)
        # Collectives route the same flow sets again and again (every ring step, every
        # micro-batch): keep the last few answers. Keyed by content, so it is always exact.
        key = (salt, len(src), hash(src.tobytes()), hash(dst.tobytes()))
        cache = self._spread_cache
        hit = cache.get(key)
        if hit is not None and np.array_equal(hit[0], src) and np.array_equal(hit[1], dst):
            cache.move_to_end(key)
            return hit[2]
        out = self.router.spread(src, dst, salt)
        for a in (*out[1:], out[0].ptr, out[0].links):
            a.flags.writeable = False
        cache[key] = (src.copy(), dst.copy(), out)
        cache.size = getattr(cache, "size", 0) + _spread_elements(cache[key])
        while len(cache) > 1 and (len(cache) > SPREAD_CACHE_ENTRIES or cache.size > SPREAD_CACHE_ELEMENTS):
            cache.size -= _spread_elements(cache.popitem(last=False)[1])
        return out

    @cached_property
    def _spread_cache(self) -> "OrderedDict[tuple, tuple]":
        return OrderedDict()

    #: Cached properties that depend on the nodes and links only, never on a link's bandwidth,
    #: capacity or latency (link lookup, adjacency, the router and its spread cache).
    TOPOLOGY_CACHES = ("_pair_keys", "csr", "router", "_spread_cache")

    def with_links(self, *, link_bw: np.ndarray | None = None, capacity_Bps: np.ndarray | None = None,
                   link_lat: np.ndarray | None = None) -> "Fabric":
        """This fabric with other link bandwidths, payload capacities or latencies (same nodes
        and links), sharing its topology-only caches (:attr:`TOPOLOGY_CACHES`), so that what
        is costed on it is not routed again. A degraded fabric (a failed part's bandwidth
        taken away) and a bundled view (links standing for a group of links) are both this.

        ``capacity_Bps`` overrides the capacity ``link_bw x link_eff`` would give; properties
        derived from bandwidth (``capacity_Bps`` otherwise, ``supernode_grid``) are computed
        afresh on the new fabric.
        """
        changes = {k: v for k, v in (("link_bw", link_bw), ("link_lat", link_lat)) if v is not None}
        view = replace(self, **changes)
        for name in self.TOPOLOGY_CACHES:
            view.__dict__[name] = getattr(self, name)
        if capacity_Bps is not None:
            view.__dict__["capacity_Bps"] = capacity_Bps
        return view

    @cached_property
    def capacity_Bps(self) -> np.ndarray:
        """Payload capacity of each directed link, bytes/s: bandwidth x protocol efficiency."""
        return self.link_bw * self.link_eff

    @cached_property
    def supernode_grid(self) -> "GridGeometry | None":
        """The scale-up domain's geometry when it is a direct-connect grid (torus, full mesh),
        else None. For a cluster: its stamped supernode's (every domain the same)."""
        f = self
        if f.routing.get("router") == "cluster":
            f = f.routing.get("template")
            if f is None:
                return None
        r = f.routing
        if r.get("router") not in ("torus", "fullmesh") or r.get("dims") is None:
            return None
        dims = np.asarray(r["dims"], dtype=np.int64)
        strides = np.concatenate([[1], np.cumprod(dims)[:-1]])
        local = np.full(f.n_nodes, -1, dtype=np.int64)
        local[f.accel_node] = np.arange(f.n_accelerators)
        a, b = local[f.link_src], local[f.link_dst]
        ok = (a >= 0) & (b >= 0)
        diff = ((a[ok, None] // strides) % dims) != ((b[ok, None] // strides) % dims)  # one True per link
        cap = f.capacity_Bps[ok]
        link_Bps = tuple(float(cap[diff[:, d]].min()) if diff[:, d].any() else 0.0 for d in range(len(dims)))
        return GridGeometry(str(r["router"]), tuple(int(k) for k in dims), link_Bps)

    def kind_mask(self, kind: str) -> np.ndarray:
        return self.node_kind == NODE_KINDS.index(kind)

    def tiers_of_links(self, names: list[str]) -> np.ndarray:
        idx = [self.link_tier_names.index(n) for n in names if n in self.link_tier_names]
        return np.isin(self.link_tier, idx)


def _intern(values: list[Any]) -> tuple[np.ndarray, tuple[str, ...]]:
    names: dict[Any, int] = {}
    codes = np.fromiter((names.setdefault(v, len(names)) for v in values), dtype=np.int16, count=len(values))
    return codes, tuple(names)


def _both(x: np.ndarray, y: np.ndarray | None = None) -> np.ndarray:
    """Per-edge values laid out per directed link: ``2e`` gets ``x[e]``, ``2e + 1`` ``y[e]``."""
    out = np.empty(2 * len(x), dtype=x.dtype)
    out[0::2] = x
    out[1::2] = x if y is None else y
    return out


def freeze(g: "ArrayGraph | nx.Graph") -> Fabric:
    """Freeze a cluster graph (schema of ``graph.py``) into a :class:`Fabric`."""
    if isinstance(g, ArrayGraph):
        if not g.materialised:
            return _freeze_arrays(g)
        g = g.to_networkx()
    return _freeze_networkx(g)


def _freeze_arrays(g: ArrayGraph) -> Fabric:
    """The array path: the same fabric as ``_freeze_networkx(g.to_networkx())``."""
    nt = g.node_table()
    e = g.merged_edges()
    acc = np.flatnonzero(nt["kind"] == NODE_KINDS.index("accelerator"))
    accel_node = acc[np.argsort(nt["rank"][acc], kind="stable")].astype(np.int64)
    link_tier_e, link_tier_names = e.interned("tier")
    return Fabric(
        name=g.graph.get("name", ""),
        family=g.graph.get("family", ""),
        node_kind=nt["kind"],
        node_tier=nt["tier"],
        tier_names=nt["tier_names"],
        node_domain=nt["domain"],
        node_rail=nt["rail"],
        node_pod=nt["pod"],
        node_plane=nt["plane"],
        accel_node=accel_node,
        link_src=_both(e.u, e.v),
        link_dst=_both(e.v, e.u),
        link_bw=_both(e.bandwidth_Bps.astype(np.float64)),
        link_lat=_both(e.float_column("latency_s", 0.0)),
        link_eff=_both(e.float_column("efficiency", 1.0)),
        link_count=_both(e.count.astype(np.int32)),
        link_tier=_both(link_tier_e),
        link_tier_names=link_tier_names,
        link_medium=_both(medium_codes(e)),
        node_lat=nt["latency_s"],
        routing=dict(g.graph.get("routing") or {"router": "shortest"}),
        meta={k: v for k, v in g.graph.items() if k not in ("routing",)},
    )


def _freeze_networkx(g: "nx.Graph") -> Fabric:
    """The networkx path (reference for the array path, and for hand-made graphs)."""
    n = g.number_of_nodes()
    if n != g.graph.get("n_nodes", n) or (n and (min(g) != 0 or max(g) != n - 1)):
        raise ValueError("graph nodes must be the contiguous ids 0..n-1 made by add_nodes")
    nodes = sorted(g.nodes(data=True), key=lambda t: t[0])
    kind_code = {k: i for i, k in enumerate(NODE_KINDS)}
    node_kind = np.fromiter((kind_code[d["kind"]] for _, d in nodes), dtype=np.int8, count=n)
    node_tier, tier_names = _intern([d["tier"] for _, d in nodes])

    def col(key: str) -> np.ndarray:
        return np.fromiter((d.get(key, -1) for _, d in nodes), dtype=np.int32, count=n)

    acc = [(d["rank"], i) for i, d in nodes if d["kind"] == "accelerator"]
    acc.sort()
    accel_node = np.asarray([i for _, i in acc], dtype=np.int64)

    m = g.number_of_edges()
    eu = np.empty(m, dtype=np.int64)
    ev = np.empty(m, dtype=np.int64)
    bw = np.empty(m)
    lat = np.empty(m)
    eff = np.empty(m)
    cnt = np.empty(m, dtype=np.int32)
    tiers: list[str] = []
    media: list[int] = []
    med_code = {k: i for i, k in enumerate(MEDIA)}
    for e, (a, b, d) in enumerate(g.edges(data=True)):
        if a > b:
            a, b = b, a
        eu[e] = a
        ev[e] = b
        bw[e] = d["bandwidth_Bps"]
        lat[e] = d["latency_s"]
        eff[e] = d.get("efficiency", 1.0)
        cnt[e] = d.get("count", 1)
        tiers.append(d["tier"])
        media.append(med_code[d["medium"]])
    link_tier_e, link_tier_names = _intern(tiers)

    def both(x: np.ndarray, y: np.ndarray | None = None) -> np.ndarray:
        out = np.empty(2 * m, dtype=x.dtype)
        out[0::2] = x
        out[1::2] = x if y is None else y
        return out

    node_lat = np.fromiter((d.get("latency_s") or 0.0 for _, d in nodes), dtype=np.float64, count=n)
    routing = dict(g.graph.get("routing") or {"router": "shortest"})
    return Fabric(
        name=g.graph.get("name", ""),
        family=g.graph.get("family", ""),
        node_kind=node_kind,
        node_tier=node_tier,
        tier_names=tier_names,
        node_domain=col("domain"),
        node_rail=col("rail"),
        node_pod=col("pod"),
        node_plane=col("plane"),
        accel_node=accel_node,
        link_src=both(eu, ev),
        link_dst=both(ev, eu),
        link_bw=both(bw),
        link_lat=both(lat),
        link_eff=both(eff),
        link_count=both(cnt),
        link_tier=both(link_tier_e),
        link_tier_names=link_tier_names,
        link_medium=both(np.asarray(media, dtype=np.int8)),
        node_lat=node_lat,
        routing=routing,
        meta={k: v for k, v in g.graph.items() if k not in ("routing",)},
    )
