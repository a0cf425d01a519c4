"""A cluster graph under construction, held as numpy blocks instead of networkx dictionaries.

The family builders write the schema of :mod:`oassim.topology.graph` through ``add_nodes`` /
``add_links`` / ``set_routing``; by default those helpers write into an :class:`ArrayGraph`,
which records every call as one block of arrays (no Python object per node or link) and
stamps a supernode ``N`` times by tiling its arrays. ``freeze`` reads the blocks directly.

The contract, held by ``tests/topology/test_arraygraph.py``: the fabric frozen from an
``ArrayGraph`` equals, array for array, the fabric frozen from the networkx graph the same
builder calls make (:func:`oassim.topology.graph.networkx_backend`), and :meth:`to_networkx`
is that networkx graph (same nodes, attributes, edges and edge order). networkx's edge order
is "by lower endpoint, then by when the pair was first wired" (its adjacency dictionaries
keep insertion order and nodes are created in id order), which :meth:`merged_edges`
reproduces with one ``lexsort``.

Anyone who needs a networkx graph gets one: the attributes networkx graphs have (``nodes``,
``edges``, ``subgraph``, ``degree``, ...) and ``g[u]``, ``len(g)``, ``n in g`` are served by
the materialised graph, built once on first use. From then on the networkx graph is the
truth (a caller may have edited it): later writes and ``freeze`` go through it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from oassim.topology.parts import MEDIA, LinkClass

if TYPE_CHECKING:
    import networkx as nx

__all__ = ["ArrayGraph", "EdgeTable"]

NODE_KINDS: tuple[str, ...] = ("accelerator", "nic", "switch", "ocs")
_INT_COLS = ("domain", "rail", "pod", "plane")


def _edge_base(link: LinkClass, tier: str) -> dict[str, Any]:
    """The attributes every edge of one ``add_links`` call shares (graph.py schema)."""
    return {
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


def _as_column(value: Any, count: int) -> Any:
    """A per-node attribute: a scalar kept as is, or a sequence as an array of ``count``."""
    if isinstance(value, np.ndarray) and value.ndim == 1 and value.dtype.kind in "biuf":
        if len(value) != count:
            raise ValueError(f"attribute column has {len(value)} values for {count} nodes")
        return value.copy()
    if isinstance(value, np.ndarray) or (isinstance(value, (list, tuple, range)) and not isinstance(value, str)):
        arr = np.asarray(value.tolist() if isinstance(value, np.ndarray) else list(value))
        if arr.dtype.kind in "USO" or arr.ndim != 1:  # keep Python objects (str, None) as they came
            arr = np.empty(len(value), dtype=object)
            arr[:] = list(value.tolist() if isinstance(value, np.ndarray) else value)
        if len(arr) != count:
            raise ValueError(f"attribute column has {len(arr)} values for {count} nodes")
        return arr
    return value


@dataclass
class _NodeBlock:
    ids: np.ndarray  # int64 node ids
    kind: str
    tier: str
    cols: dict[str, Any]  # scalar or array of len(ids)


@dataclass
class _EdgeBlock:
    u: np.ndarray
    v: np.ndarray
    count: np.ndarray  # int64
    bw: np.ndarray  # float64: bandwidth this wiring adds (count x per-link bandwidth)
    base: np.ndarray  # int64 index into ArrayGraph._bases
    ocs: np.ndarray  # int64 node id of the OCS a circuit passes, -1 where none


@dataclass(frozen=True)
class EdgeTable:
    """The undirected edges after merging repeated wiring, in networkx's iteration order."""

    u: np.ndarray  # int64, u < v
    v: np.ndarray
    count: np.ndarray  # int64 parallel physical links
    bandwidth_Bps: np.ndarray  # float64 per direction, all links together
    base: np.ndarray  # int64 index into bases
    ocs: np.ndarray  # int64, -1 where none
    bases: tuple[dict[str, Any], ...]

    def column(self, key: str) -> np.ndarray:
        """Per-edge values of a base attribute (``latency_s``, ``tier``, ...), object dtype."""
        vals = np.empty(len(self.bases), dtype=object)
        vals[:] = [b[key] for b in self.bases]
        return vals[self.base]

    def float_column(self, key: str, default: float) -> np.ndarray:
        """Per-edge float values of a base attribute (``default`` where None)."""
        vals = np.asarray([default if b[key] is None else b[key] for b in self.bases] or [default], dtype=np.float64)
        return vals[self.base]

    def interned(self, key: str) -> tuple[np.ndarray, tuple[str, ...]]:
        """Per-edge int16 codes of a string base attribute, names in first-appearance order."""
        names: dict[str, int] = {}
        prov = np.asarray([names.setdefault(b[key], len(names)) for b in self.bases] or [0], dtype=np.int64)[self.base]
        if not len(prov):
            return np.zeros(0, dtype=np.int16), ()
        seen, first = np.unique(prov, return_index=True)
        by_first = seen[np.argsort(first)]
        remap = np.zeros(len(names), dtype=np.int16)
        remap[by_first] = np.arange(len(by_first))
        listed = list(names)
        return remap[prov], tuple(listed[i] for i in by_first)


class ArrayGraph:
    """A cluster graph as numpy blocks; see the module docstring."""

    def __init__(self, name: str, family: str):
        self.graph: dict[str, Any] = {"name": name, "family": family, "n_nodes": 0, "n_accelerators": 0}
        self._nodes: list[_NodeBlock] = []
        self._edges: list[_EdgeBlock] = []
        self._bases: list[dict[str, Any]] = []
        self._base_ids: dict[tuple, int] = {}
        self._nx: "nx.Graph | None" = None
        self._merged: EdgeTable | None = None

    # -- writing (graph.add_nodes / add_links call these) ------------------------------------

    def add_nodes(self, count: int, kind: str, tier: str, attrs: dict[str, Any]) -> np.ndarray:
        start = self.graph["n_nodes"]
        ids = np.arange(start, start + count, dtype=np.int64)
        for key in _INT_COLS:
            attrs.setdefault(key, -1)
        if kind == "accelerator":
            r0 = self.graph["n_accelerators"]
            attrs["rank"] = np.arange(r0, r0 + count, dtype=np.int64)
            self.graph["n_accelerators"] = r0 + count
        self._nodes.append(_NodeBlock(ids, kind, tier, {k: _as_column(v, count) for k, v in attrs.items()}))
        self.graph["n_nodes"] = start + count
        self._merged = None
        return ids

    def _base_id(self, base: dict[str, Any]) -> int:
        key = tuple(base.items())
        i = self._base_ids.get(key)
        if i is None:
            i = self._base_ids[key] = len(self._bases)
            self._bases.append(base)
        return i

    def add_links(self, us: np.ndarray, vs: np.ndarray, cs: np.ndarray, link: LinkClass, tier: str,
                  ocs: np.ndarray | None = None) -> None:
        n = len(us)
        b = self._base_id(_edge_base(link, tier))
        self._edges.append(_EdgeBlock(
            us.astype(np.int64, copy=True), vs.astype(np.int64, copy=True), cs.astype(np.int64, copy=True),
            cs * link.bandwidth_Bps, np.full(n, b, dtype=np.int64),
            np.full(n, -1, dtype=np.int64) if ocs is None else np.asarray(ocs, dtype=np.int64).copy(),
        ))
        self._merged = None

    def stamp(self, tmpl: "ArrayGraph", copies: int) -> None:
        """Append ``copies`` copies of ``tmpl`` (supernode ``d`` gets ``domain = d``; node ids,
        ranks and node-id edge attributes shift by the copy's offset), as the cluster does."""
        t_nodes, t_acc = tmpl.graph["n_nodes"], tmpl.graph["n_accelerators"]
        off0, r0 = self.graph["n_nodes"], self.graph["n_accelerators"]
        offs = off0 + np.arange(copies, dtype=np.int64) * t_nodes
        for blk in tmpl._nodes:
            k = len(blk.ids)
            cols = {key: (np.tile(v, copies) if isinstance(v, np.ndarray) else v) for key, v in blk.cols.items()}
            cols["domain"] = np.repeat(np.arange(copies, dtype=np.int64), k)
            if blk.kind == "accelerator":
                first_rank = r0 + np.arange(copies, dtype=np.int64) * t_acc
                cols["rank"] = (np.asarray(blk.cols["rank"])[None, :] + first_rank[:, None]).ravel()
            ids = (blk.ids[None, :] + offs[:, None]).ravel()
            self._nodes.append(_NodeBlock(ids, blk.kind, blk.tier, cols))
        e = tmpl.merged_edges()
        remap = np.asarray([self._base_id(b) for b in e.bases], dtype=np.int64)
        sh = offs[:, None]
        ocs = np.where(e.ocs[None, :] >= 0, e.ocs[None, :] + sh, -1).ravel()
        self._edges.append(_EdgeBlock(
            (e.u[None, :] + sh).ravel(), (e.v[None, :] + sh).ravel(), np.tile(e.count, copies),
            np.tile(e.bandwidth_Bps, copies), np.tile(remap[e.base], copies), ocs,
        ))
        self.graph["n_nodes"] = off0 + copies * t_nodes
        self.graph["n_accelerators"] = r0 + copies * t_acc
        self._merged = None

    # -- reading ------------------------------------------------------------------------------

    def merged_edges(self) -> EdgeTable:
        """Edges with repeated wiring of a pair merged (counts and bandwidths added in wiring
        order, other attributes from the first wiring), ordered as networkx iterates them."""
        if self._merged is not None:
            return self._merged
        blocks = self._edges
        cat = (lambda parts, dt: np.concatenate(parts) if parts else np.zeros(0, dtype=dt))
        lo = cat([np.minimum(e.u, e.v) for e in blocks], np.int64)
        hi = cat([np.maximum(e.u, e.v) for e in blocks], np.int64)
        count, bw = cat([e.count for e in blocks], np.int64), cat([e.bw for e in blocks], np.float64)
        base, ocs = cat([e.base for e in blocks], np.int64), cat([e.ocs for e in blocks], np.int64)
        n = self.graph["n_nodes"]
        if len(lo) and (lo.min() < 0 or hi.max() >= n):
            raise ValueError("a link must join two nodes made by add_nodes")
        key = lo * max(n, 1) + hi
        by_key = np.sort(key, kind="stable")  # runs of sorted blocks: a cheap merge
        if not np.any(by_key[1:] == by_key[:-1]):  # nothing wired twice: no sums needed
            f = np.argsort(lo, kind="stable")  # by lower end, then by wiring order
            cnt, bws = count[f], bw[f]
        else:
            uniq, first, inv = np.unique(key, return_index=True, return_inverse=True)
            cnt = np.bincount(inv, weights=count, minlength=len(uniq)).astype(np.int64)
            bws = np.bincount(inv, weights=bw, minlength=len(uniq))  # sums in wiring order
            order = np.lexsort((first, lo[first]))
            f = first[order]
            cnt, bws = cnt[order], bws[order]
        self._merged = EdgeTable(lo[f], hi[f], cnt, bws, base[f], ocs[f], tuple(self._bases))
        return self._merged

    def node_table(self) -> dict[str, Any]:
        """Per-node arrays in id order: ``kind`` (int8 index into NODE_KINDS), ``tier`` (int16
        index into ``tier_names``, first-appearance order), ``domain``/``rail``/``pod``/
        ``plane`` (int32, -1 where unset), ``rank`` (int64, -1 for non-accelerators) and
        ``latency_s`` (float64, 0 where unset)."""
        n = self.graph["n_nodes"]
        kind = np.full(n, -1, dtype=np.int8)
        tier_prov = np.zeros(n, dtype=np.int64)
        out = {k: np.full(n, -1, dtype=np.int32) for k in _INT_COLS}
        rank = np.full(n, -1, dtype=np.int64)
        lat = np.zeros(n)
        tiers: dict[str, int] = {}
        for blk in self._nodes:
            kind[blk.ids] = NODE_KINDS.index(blk.kind)
            tier_prov[blk.ids] = tiers.setdefault(blk.tier, len(tiers))
            for key in _INT_COLS:
                val = blk.cols.get(key, -1)
                out[key][blk.ids] = val
            if blk.kind == "accelerator":
                rank[blk.ids] = blk.cols["rank"]
            val = blk.cols.get("latency_s")
            if isinstance(val, np.ndarray):
                lat[blk.ids] = [x or 0.0 for x in val.tolist()]
            else:
                lat[blk.ids] = val or 0.0
        if n and kind.min() < 0:
            raise ValueError("graph nodes must be the contiguous ids 0..n-1 made by add_nodes")
        names = list(tiers)
        seen, firsts = np.unique(tier_prov, return_index=True)
        by_first = seen[np.argsort(firsts)]
        remap = np.empty(max(len(names), 1), dtype=np.int16)
        remap[by_first] = np.arange(len(by_first))
        return {"kind": kind, "tier": remap[tier_prov] if n else tier_prov.astype(np.int16),
                "tier_names": tuple(names[i] for i in by_first), "rank": rank, "latency_s": lat, **out}

    def weighted_degree(self, exclude_tier: str | None = None) -> np.ndarray:
        """Physical links at each node (edge counts summed), optionally without one link tier."""
        e = self.merged_edges()
        w = e.count
        if exclude_tier is not None:
            w = np.where(np.asarray([b["tier"] != exclude_tier for b in e.bases] or [True])[e.base], w, 0)
        n = self.graph["n_nodes"]
        return np.bincount(e.u, weights=w, minlength=n) + np.bincount(e.v, weights=w, minlength=n)

    def accelerator_ids(self) -> np.ndarray:
        """Accelerator node ids ordered by rank."""
        if self._nx is not None:
            from oassim.topology.graph import accelerators_of

            return accelerators_of(self._nx)
        ids = [b.ids for b in self._nodes if b.kind == "accelerator"]
        ranks = [np.asarray(b.cols["rank"], dtype=np.int64) for b in self._nodes if b.kind == "accelerator"]
        if not ids:
            return np.zeros(0, dtype=np.int64)
        ids_a, ranks_a = np.concatenate(ids), np.concatenate(ranks)
        return ids_a[np.argsort(ranks_a, kind="stable")]

    # -- networkx view ------------------------------------------------------------------------

    def to_networkx(self) -> "nx.Graph":
        """The networkx graph these blocks describe (built once; it shares ``graph``)."""
        if self._nx is not None:
            return self._nx
        import networkx as nx

        g = nx.Graph()
        g.graph = self.graph
        n = self.graph["n_nodes"]
        data: list[dict[str, Any] | None] = [None] * n
        for blk in self._nodes:
            cols = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in blk.cols.items()}
            arrays = [k for k, v in cols.items() if isinstance(v, list)]
            scalars = {k: v for k, v in cols.items() if not isinstance(v, list)}
            for j, i in enumerate(blk.ids.tolist()):
                data[i] = {"kind": blk.kind, "tier": blk.tier, **scalars, **{k: cols[k][j] for k in arrays}}
        g.add_nodes_from(enumerate(data))
        e = self.merged_edges()
        bases = e.bases
        g.add_edges_from(
            (a, b, {**bases[k], "count": c, "bandwidth_Bps": w, **({"ocs": o} if o >= 0 else {})})
            for a, b, k, c, w, o in zip(e.u.tolist(), e.v.tolist(), e.base.tolist(), e.count.tolist(),
                                        e.bandwidth_Bps.tolist(), e.ocs.tolist())
        )
        self._nx = g
        return g

    @property
    def materialised(self) -> bool:
        """Whether a networkx graph was made (it is then the truth)."""
        return self._nx is not None

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("_nx", "_nodes", "_edges", "_bases", "_base_ids", "_merged", "graph"):
            raise AttributeError(name)
        return getattr(self.to_networkx(), name)

    def __getitem__(self, n: int) -> Any:
        return self.to_networkx()[n]

    def __len__(self) -> int:
        return int(self.graph["n_nodes"])

    def __iter__(self):
        return iter(range(self.graph["n_nodes"]))

    def __contains__(self, n: object) -> bool:
        if self._nx is not None:
            return n in self._nx
        try:
            return 0 <= int(n) < self.graph["n_nodes"]  # type: ignore[call-overload]
        except (TypeError, ValueError):
            return False

    def number_of_nodes(self) -> int:
        return self._nx.number_of_nodes() if self._nx is not None else int(self.graph["n_nodes"])

    def number_of_edges(self) -> int:
        return self._nx.number_of_edges() if self._nx is not None else len(self.merged_edges().u)


def medium_codes(table: EdgeTable) -> np.ndarray:
    """int8 index into MEDIA of every edge of ``table``."""
    per_base = np.asarray([MEDIA.index(b["medium"]) for b in table.bases], dtype=np.int8)
    return per_base[table.base] if len(table.bases) else np.zeros(len(table.u), dtype=np.int8)
