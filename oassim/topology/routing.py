"""Routing on frozen fabrics: structural routers per family, shortest paths otherwise.

docs/architecture.md decision 4: all-pairs tables are impossible at 10^4-10^5 endpoints. Each family
supplies a router that computes paths from the structure it recorded at build time (up/down
with ECMP hashing for Clos, dimension order for tori, direct for full mesh); arbitrary graphs
fall back to on-demand breadth-first shortest paths with a per-destination cache. A router maps
arrays of (src, dst) node ids to a :class:`~oassim.topology.fabric.Paths` CSR of link ids.

Structural routers return node sequences (``node_paths``); the base class turns them into link
ids with one vectorised lookup, so a family router is only its path arithmetic.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import numpy as np

from oassim.topology.arraygraph import NODE_KINDS

if TYPE_CHECKING:
    from oassim.topology.fabric import Fabric, Paths

__all__ = [
    "Router",
    "ShortestPathRouter",
    "flow_hash",
    "ecmp_choice",
    "node_paths_to_paths",
    "permute_paths",
    "make_router",
    "fat_tree_structure",
    "rank_blocks",
    "equal_cost_groups",
]

_M64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def _splitmix(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.uint64, copy=True)
    with np.errstate(over="ignore"):
        x += np.uint64(0x9E3779B97F4A7C15)
        x ^= x >> np.uint64(30)
        x *= np.uint64(0xBF58476D1CE4E5B9)
        x ^= x >> np.uint64(27)
        x *= np.uint64(0x94D049BB133111EB)
        x ^= x >> np.uint64(31)
    return x


def flow_hash(src: np.ndarray, dst: np.ndarray, salt: int = 0) -> np.ndarray:
    """Deterministic 64-bit hash per (src, dst, salt), like a switch's 5-tuple ECMP hash."""
    s = np.asarray(src).astype(np.uint64)
    d = np.asarray(dst).astype(np.uint64)
    with np.errstate(over="ignore"):
        x = _splitmix(s) ^ _splitmix(d + np.uint64(0x632BE59BD9B4E019)) ^ _splitmix(
            np.full_like(s, np.uint64(salt & 0xFFFFFFFFFFFFFFFF)) + np.uint64(0x2545F4914F6CDD1D)
        )
    return _splitmix(x)


def ecmp_choice(h: np.ndarray, n: np.ndarray | int, level: np.ndarray | int) -> np.ndarray:
    """Pick one of ``n`` equal-cost choices at hop ``level`` (an int, or one per hash) from
    flow hashes ``h``."""
    with np.errstate(over="ignore"):  # uint64 products wrap modulo 2^64, as intended
        x = _splitmix(h + (np.asarray(level).astype(np.uint64) + np.uint64(1)) * np.uint64(0x9E3779B97F4A7C15))
    n = np.asarray(n, dtype=np.uint64)
    return (x % np.maximum(n, np.uint64(1))).astype(np.int64)


def node_paths_to_paths(fabric: "Fabric", nodes: np.ndarray) -> "Paths":
    """Turn padded node sequences (n_pairs, H), -1 after the end, into a link CSR."""
    from oassim.topology.fabric import Paths

    nodes = np.asarray(nodes, dtype=np.int64)
    n = nodes.shape[0]
    if nodes.ndim != 2 or nodes.shape[1] < 2:
        return Paths(np.zeros(n + 1, dtype=np.int64), np.zeros(0, dtype=np.int64))
    a = nodes[:, :-1]
    b = nodes[:, 1:]
    valid = (a >= 0) & (b >= 0)
    ptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(valid.sum(axis=1), out=ptr[1:])
    links = fabric.link_ids(a[valid], b[valid]) if ptr[-1] else np.zeros(0, dtype=np.int64)
    return Paths(ptr, links.astype(np.int64))


class Router:
    """Base router. Subclasses implement ``node_paths`` (or override ``route``)."""

    name = "base"

    def __init__(self, fabric: "Fabric", **structure: Any):
        self.fabric = fabric
        self.structure = structure

    def node_paths(self, src: np.ndarray, dst: np.ndarray, salt: int) -> np.ndarray:
        raise NotImplementedError

    def route(self, src: np.ndarray, dst: np.ndarray, salt: int = 0) -> "Paths":
        src = np.asarray(src, dtype=np.int64)
        dst = np.asarray(dst, dtype=np.int64)
        if src.shape != dst.shape:
            raise ValueError("src and dst must have the same shape")
        return node_paths_to_paths(self.fabric, self.node_paths(src, dst, salt))

    def spread(self, src: np.ndarray, dst: np.ndarray, salt: int = 0) -> tuple["Paths", np.ndarray, np.ndarray]:
        """Paths each transfer is striped over: ``(paths, owner, fraction)``.

        The default is one ECMP path per pair (fraction 1); routers of fabrics that stripe a
        transfer over several links override it.
        """
        paths = self.route(src, dst, salt)
        n = len(paths)
        return paths, np.arange(n, dtype=np.int64), np.ones(n)


class ShortestPathRouter(Router):
    """Breadth-first shortest paths on demand, ECMP among equal-length next hops.

    Distance arrays are cached per destination (least recently used first out) within
    ``cache_bytes``. Accelerators and NICs do not forward traffic unless the graph says
    ``accelerator_transit`` (direct-connect families such as tori relay through chips).
    """

    name = "shortest"

    def __init__(self, fabric: "Fabric", cache_bytes: int = 256 << 20, accelerator_transit: bool = False,
                 **structure: Any):
        super().__init__(fabric, **structure)
        ptr, order = fabric.csr
        self._ptr = ptr
        self._nbr = fabric.link_dst[order]
        self._lnk = order
        transit = np.ones(fabric.n_nodes, dtype=np.bool_)
        transit[fabric.node_kind == NODE_KINDS.index("nic")] = False
        if not accelerator_transit:
            transit[fabric.node_kind == NODE_KINDS.index("accelerator")] = False
        self._transit = transit
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._cache_max = max(1, cache_bytes // max(1, 4 * fabric.n_nodes))

    def distances(self, root: int) -> np.ndarray:
        """Hop distance of every node from ``root`` (int32, -1 unreachable); cached."""
        d = self._cache.get(root)
        if d is not None:
            self._cache.move_to_end(root)
            return d
        from oassim.topology import _kernels as K  # numba loads only when a graph needs BFS routing

        d = np.empty(self.fabric.n_nodes, dtype=np.int32)
        K.bfs_dist(self._ptr, self._nbr, np.int64(root), self._transit, d)
        self._cache[root] = d
        if len(self._cache) > self._cache_max:
            self._cache.popitem(last=False)
        return d

    def route(self, src: np.ndarray, dst: np.ndarray, salt: int = 0) -> "Paths":
        src = np.asarray(src, dtype=np.int64).ravel()
        dst = np.asarray(dst, dtype=np.int64).ravel()
        n = len(src)
        # Work destination by destination (one BFS each), in dst-sorted order, then put the
        # paths back in the caller's order.
        order = np.argsort(dst, kind="stable")
        s_src, s_dst = src[order], dst[order]
        roots, starts = np.unique(s_dst, return_index=True)
        bounds = np.append(starts, n)
        s_hops = np.empty(n, dtype=np.int64)
        dists = [self.distances(int(r)) for r in roots]
        for j, d in enumerate(dists):
            hj = d[s_src[bounds[j] : bounds[j + 1]]]
            if np.any(hj < 0):
                bad = int(s_src[bounds[j] + np.flatnonzero(hj < 0)[0]])
                raise ValueError(f"node {int(roots[j])} is not reachable from node {bad}")
            s_hops[bounds[j] : bounds[j + 1]] = hj
        s_ptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(s_hops, out=s_ptr[1:])
        s_links = np.empty(s_ptr[-1], dtype=np.int64)
        s_hash = flow_hash(s_src, s_dst, salt)
        from oassim.topology import _kernels as K

        for j, d in enumerate(dists):
            a, b = bounds[j], bounds[j + 1]
            if not K.walk_down_dist(
                self._ptr, self._nbr, self._lnk, d, self._transit, s_src[a:b], s_hash[a:b], s_ptr[a : b + 1], s_links
            ):
                raise ValueError("shortest-path walk failed: inconsistent distances")
        return permute_paths(s_ptr, s_links, np.argsort(order, kind="stable"))


def permute_paths(ptr: np.ndarray, links: np.ndarray, take: np.ndarray) -> "Paths":
    """Paths ``take[i]`` of a CSR, in the order of ``take`` (vectorised gather)."""
    from oassim.topology.fabric import Paths

    lengths = ptr[take + 1] - ptr[take]
    out_ptr = np.zeros(len(take) + 1, dtype=np.int64)
    np.cumsum(lengths, out=out_ptr[1:])
    idx = np.repeat(ptr[take] - out_ptr[:-1], lengths) + np.arange(out_ptr[-1])
    return Paths(out_ptr, links[idx])


def make_router(fabric: "Fabric") -> Router:
    """Build the router the fabric's builder named (``fabric.routing['router']``)."""
    from oassim.topology.registry import ROUTERS

    spec = dict(fabric.routing)
    name = spec.pop("router", "shortest")
    try:
        cls = ROUTERS[name]
    except KeyError:
        raise ValueError(f"unknown router {name!r}; known: {', '.join(sorted(ROUTERS))}") from None
    return cls(fabric, **spec)


def fat_tree_structure(fabric: "Fabric") -> dict[str, Any] | None:
    """The fat-tree scale-out record of ``fabric`` (a cluster over a ``fat_tree`` scale-out, or a
    bare fat-tree), with ``nic_of_rank`` (ranks, NICs) added; None for other fabrics."""
    r = fabric.routing
    if r.get("router") == "cluster":
        so = r.get("scale_out") or {}
        if so.get("router") != "fat_tree":
            return None
        return {**so, "nic_of_rank": np.asarray(r["nic_of_rank"], dtype=np.int64).reshape(len(fabric.accel_node), -1)}
    if r.get("router") == "fat_tree":
        return {**r, "nic_of_rank": np.asarray(fabric.accel_node, dtype=np.int64)[:, None]}
    return None


def rank_blocks(fabric: "Fabric") -> tuple[np.ndarray, np.ndarray] | None:
    """Leaf switch index and pod of each rank's first scale-out port, shape (n_ranks,) each, or
    None where the scale-out is not a fat-tree. Ranks behind one leaf share every switch link
    beyond it: the unit the all-to-all aggregation of :mod:`oassim.collectives` works on."""
    s = fat_tree_structure(fabric)
    if s is None:
        return None
    eps = np.asarray(s["endpoints"], dtype=np.int64)
    index = np.full(fabric.n_nodes, -1, dtype=np.int64)
    index[eps] = np.arange(len(eps))
    ep = index[s["nic_of_rank"][:, 0]]
    if np.any(ep < 0):
        return None
    leaf = np.asarray(s["leaf_of_endpoint"], dtype=np.int64)[ep]
    pod = np.asarray(s["pod_of_leaf"], dtype=np.int64)[leaf]
    return leaf, pod


def equal_cost_groups(fabric: "Fabric") -> np.ndarray | None:
    """Equal-cost link group of every directed link (-1: none), or None without a fat-tree.

    Adaptive routing / packet spraying (InfiniBand AR, Spectrum-X) spreads a switch's traffic
    over every minimal next hop, so at fluid level the links of one group carry equal shares:
    a leaf's uplinks (group per source leaf), the spine links into a leaf (per destination
    leaf), a pod's spine-to-core links (per source pod and plane) and the core links into a
    pod (per destination pod and plane). Shape (n_links,), int64 ids 0..n_groups-1.
    """
    s = fat_tree_structure(fabric)
    if s is None:
        return None
    n = fabric.n_nodes
    role = np.zeros(n, dtype=np.int64)  # 1 leaf, 2 spine, 3 core
    key = np.full(n, -1, dtype=np.int64)  # leaf: its node id; spine / core: (plane, pod) code
    leaves = np.asarray(s["leaves"], dtype=np.int64)  # (planes, L)
    role[leaves.ravel()] = 1
    key[leaves.ravel()] = leaves.ravel()
    spines = np.asarray(s["spines"], dtype=np.int64)  # (planes, pods, S)
    if spines.size:
        pl, pods, S = spines.shape
        role[spines.ravel()] = 2
        key[spines.ravel()] = np.repeat(np.arange(pl * pods), S)
    cores = np.asarray(s["cores"], dtype=np.int64)
    if cores.size:
        role[cores.ravel()] = 3
    a, b = fabric.link_src, fabric.link_dst
    ra, rb = role[a], role[b]
    code = np.full(fabric.n_links, -1, dtype=np.int64)
    kinds = (((ra == 1) & (rb == 2)), key[a]), (((ra == 2) & (rb == 1)), key[b]), \
        (((ra == 2) & (rb == 3)), key[a]), (((ra == 3) & (rb == 2)), key[b])
    for k, (mask, k_id) in enumerate(kinds):
        code[mask] = k_id[mask] * 4 + k
    out = np.full(fabric.n_links, -1, dtype=np.int64)
    used = code >= 0
    if used.any():
        out[used] = np.unique(code[used], return_inverse=True)[1]
    return out
