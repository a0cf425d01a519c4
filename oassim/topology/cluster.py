"""Composition: a cluster = N supernodes whose NICs attach to a scale-out fabric.

The supernode is built once by its family and stamped N times (node ids in contiguous blocks,
so its router serves every copy by offset); each accelerator gets its NIC(s); the scale-out
family then wires the NICs, ordered rank by rail when the fabric is rail-optimised (NVIDIA
DGX SuperPOD practice: each leaf serves one rail of one scalable unit). The ``ClusterRouter``
routes inside a domain with the supernode's router and between domains over
accelerator -> NIC -> scale-out fabric -> NIC -> accelerator.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from oassim.errors import SpecError
from oassim.topology.arraygraph import ArrayGraph
from oassim.topology.fabric import Fabric, freeze
from oassim.topology.graph import accelerators_of, add_links, add_nodes, new_graph, set_routing
from oassim.topology.parts import LinkClass
from oassim.topology.routing import Router, ecmp_choice, flow_hash

if TYPE_CHECKING:
    import networkx as nx

__all__ = ["build_cluster", "ClusterRouter", "rail_order", "build_fabric"]


def _accel_attrs(rc) -> dict[str, Any]:
    acc = rc.accelerator
    return {
        "spec": acc.name,
        "ports": acc.scaleup_links,
        "port_rate_Gbps": (acc.scaleup_link_GBps * 8) if acc.scaleup_link_GBps else None,
        "power_W": acc.power_W,
        "price_USD": acc.price_USD,
    }


def rail_order(rails_of_rank: np.ndarray, nics: int, unit: int) -> np.ndarray:
    """Endpoint order for a rail-optimised fabric.

    NIC ``k`` of rank ``r`` is endpoint ``r * nics + k`` in creation order. Rail-optimised
    order numbers the ranks of each rail (``p`` = position within its rail), cuts every rail
    into scalable units of ``unit`` ranks, and lists endpoints by (unit, rail, p): consecutive
    leaf ports, filled in this order, then serve one rail of one scalable unit. Returns
    creation indices in fabric order.
    """
    rail = np.asarray(rails_of_rank, dtype=np.int64)
    n = len(rail)
    by_rail = np.lexsort((np.arange(n), rail))
    starts = np.searchsorted(rail[by_rail], rail[by_rail], side="left")
    p = np.empty(n, dtype=np.int64)
    p[by_rail] = np.arange(n) - starts
    su = p // max(1, unit)
    order = np.lexsort((p, rail, su))  # the last key sorts first
    return (order[:, None] * nics + np.arange(nics)[None, :]).ravel()


def build_cluster(rc) -> "ArrayGraph | nx.Graph":
    """Build the cluster graph of a :class:`~oassim.topology.cluster_spec.ResolvedCluster`
    (an ArrayGraph; a networkx graph inside :func:`~oassim.topology.graph.networkx_backend`)."""
    from oassim.topology.registry import FAMILIES

    g = new_graph(rc.spec.name, "cluster")
    accel = _accel_attrs(rc)
    structure: dict[str, Any] = {}
    n_dom = rc.supernodes
    size = rc.domain_size
    if rc.supernode is not None:
        sn = rc.supernode
        _, build = FAMILIES[sn.family]
        tmpl = _guarded(rc, "supernode", build, sn.spec, sn.links, sn.switches, accel=accel,
                        name=f"{rc.spec.name}-supernode")
        _check_accelerator_ports(rc, tmpl)
        t_nodes = tmpl.number_of_nodes()
        if isinstance(g, ArrayGraph) and isinstance(tmpl, ArrayGraph) and not tmpl.materialised:
            g.stamp(tmpl, n_dom)  # array tiling: the same nodes, attributes and edge order
        else:
            _stamp_networkx(g, tmpl, n_dom)
        # supernode d occupies node ids [d * t_nodes, (d + 1) * t_nodes): the router offsets by that
        structure.update(template=freeze(tmpl), domain_nodes=t_nodes)
        g.graph["supernode_family"] = sn.family
    else:
        add_nodes(g, rc.accelerators, "accelerator", "accelerator", domain=range(rc.accelerators), rail=0, **accel)
        structure.update(template=None, domain_nodes=1)
        size = 1
    accel_nodes = accelerators_of(g)
    if rc.scale_out is not None:
        so = rc.scale_out
        nics = rc.nic_ports
        nic_bw = rc.nic_rate_Gbps * 1e9 / 8
        ranks = np.arange(len(accel_nodes))
        local = ranks % size
        nic_ids = add_nodes(
            g,
            len(accel_nodes) * nics,
            "nic",
            "nic",
            domain=np.repeat(ranks // size, nics),
            rail=np.repeat(local % rc.rails, nics),
            ports=1,
            port_rate_Gbps=rc.nic_rate_Gbps,
        )
        pcie = LinkClass("nic-attach", nic_bw, 0.0, "pcb", rate_Gbps=rc.nic_rate_Gbps)
        add_links(g, np.repeat(accel_nodes, nics), nic_ids, pcie, tier="nic")
        if rc.spec.scale_out.rail_optimized and rc.rails > 1:
            order = rail_order(local % rc.rails, nics, _guarded(rc, "scale_out", _leaf_down_ports, so) // nics or 1)
            endpoints = nic_ids[order]
        else:
            endpoints = nic_ids
        _, build = FAMILIES[so.family]
        _guarded(rc, "scale_out", build, so.spec, so.links, so.switches, g=g, endpoints=endpoints, name=rc.spec.name)
        structure.update(
            scale_out=g.graph.pop("routing"),
            nic_of_rank=nic_ids.reshape(-1, nics),
        )
    else:
        structure.update(scale_out=None, nic_of_rank=np.zeros((len(accel_nodes), 0), dtype=np.int64))
    structure.update(domain_size=size, accel_nodes=accel_nodes)
    set_routing(g, "cluster", **structure)
    g.graph.update(
        accelerators_requested=rc.spec.accelerators,
        supernodes=n_dom,
        domain_size=size,
        modules=dict(rc.modules),
        resolved=rc,
    )
    return g


def _stamp_networkx(g: "nx.Graph", tmpl: "ArrayGraph | nx.Graph", n_dom: int) -> None:
    """Stamp ``n_dom`` copies of a supernode graph into a networkx cluster graph (the reference
    path; ArrayGraph.stamp is its array form)."""
    from oassim.topology.graph import as_networkx

    tmpl = as_networkx(tmpl)
    t_nodes = tmpl.number_of_nodes()
    t_data = [tmpl.nodes[i] for i in range(t_nodes)]
    t_edges = list(tmpl.edges(data=True))
    for d in range(n_dom):
        off = g.graph["n_nodes"]
        r0 = g.graph["n_accelerators"]
        g.add_nodes_from(
            (off + i, {**a, "domain": d, **({"rank": r0 + a["rank"]} if a["kind"] == "accelerator" else {})})
            for i, a in enumerate(t_data)
        )
        # networkx copies each attribute dict it is given: only node-id attributes need a copy
        g.add_edges_from((off + u, off + v, e if e.get("ocs") is None else _shift(e, off))
                         for u, v, e in t_edges)
        g.graph["n_nodes"] = off + t_nodes
        g.graph["n_accelerators"] = r0 + tmpl.graph["n_accelerators"]


def _shift(e: dict, off: int) -> dict:
    """Copy an edge's attributes for a stamped supernode; node-id attributes move with it."""
    e = dict(e)
    if e.get("ocs") is not None:
        e["ocs"] = e["ocs"] + off
    return e


def _guarded(rc, where: str, build, *args, **kwargs):
    """Run a family builder; an impossible geometry becomes a one-line SpecError."""
    try:
        return build(*args, **kwargs)
    except ValueError as exc:
        raise SpecError(str(exc), source=rc.source, path=f"{where}.spec") from None


def _check_accelerator_ports(rc, tmpl: "ArrayGraph | nx.Graph") -> None:
    """More scale-up links than the accelerator has ports is impossible (bad input, exit 2)."""
    have = rc.accelerator.scaleup_links
    if have is None:
        return
    if isinstance(tmpl, ArrayGraph) and not tmpl.materialised:
        acc = accelerators_of(tmpl)
        used = int(tmpl.weighted_degree()[acc].max()) if len(acc) else 0
    else:
        used = max(
            sum(int(e.get("count", 1)) for _, _, e in tmpl.edges(n, data=True))
            for n, d in tmpl.nodes(data=True)
            if d["kind"] == "accelerator"
        )
    if used > have:
        raise SpecError(
            f"each accelerator needs up to {used} scale-up links in this supernode, but "
            f"{rc.accelerator.name} has {have} scale-up ports",
            source=rc.source,
            path="supernode.spec",
        )


def _leaf_down_ports(so) -> int:
    """Endpoints per leaf (the scalable-unit width of one rail) for fat-tree fabrics, else 1."""
    if so.family != "fat_tree" or "leaf" not in so.switches:
        return 1
    from oassim.topology.families.fat_tree import sizing

    return max(1, sizing(so.spec, so.switches["leaf"].radix).down)


def build_fabric(path_or_name: str | Path, accelerators: int | None = None) -> Fabric:
    """Load, build and freeze a cluster file in one call."""
    from oassim.topology.cluster_spec import load_cluster

    return freeze(build_cluster(load_cluster(path_or_name, accelerators)))


class ClusterRouter(Router):
    """Routes of a composed cluster: supernode router inside a domain, scale-out between."""

    name = "cluster"

    def __init__(self, fabric: Fabric, **s: Any):
        super().__init__(fabric, **s)
        from oassim.topology.routing import make_router

        self.size = int(s["domain_size"])
        self.accel_nodes = np.asarray(s["accel_nodes"])
        self.nic_of_rank = np.asarray(s["nic_of_rank"])
        self.domain_nodes = int(s["domain_nodes"])
        tmpl = s.get("template")
        self.local = make_router(tmpl) if tmpl is not None else None
        so = s.get("scale_out")
        if so is not None:
            so_fabric = _View(fabric, so)
            self.remote = make_router(so_fabric)
        else:
            self.remote = None
        self.rank_of_node = np.full(fabric.n_nodes, -1, dtype=np.int64)
        self.rank_of_node[self.accel_nodes] = np.arange(len(self.accel_nodes))
        self._stamped: np.ndarray | None = None  # (domains, template links) -> cluster link id
        self._stamped_known: np.ndarray | None = None

    def stamped_links(self, domain: np.ndarray, local: np.ndarray) -> np.ndarray:
        """Cluster link ids of template links ``local[i]`` in supernode ``domain[i]``. The
        template's links map one to one by their endpoints; each domain's row of the table
        is looked up (``fabric.link_ids``) the first time a transfer uses that domain."""
        tf = self.local.fabric
        if self._stamped is None:
            n_dom = len(self.accel_nodes) // self.size
            self._stamped = np.empty((n_dom, tf.n_links), dtype=np.int64)
            self._stamped_known = np.zeros(n_dom, dtype=np.bool_)
        doms = np.unique(domain)
        miss = doms[~self._stamped_known[doms]]
        if len(miss):
            off = (miss * self.domain_nodes)[:, None]
            self._stamped[miss] = self.fabric.link_ids(tf.link_src[None, :] + off,
                                                       tf.link_dst[None, :] + off).reshape(len(miss), -1)
            self._stamped_known[miss] = True
        return self._stamped[domain, local]

    def spread(self, src: np.ndarray, dst: np.ndarray, salt: int = 0):
        """Transfers inside a supernode striped as its router stripes them; others one path."""
        return _spread_cluster(self, np.asarray(src, dtype=np.int64), np.asarray(dst, dtype=np.int64), salt)

    def node_paths(self, src: np.ndarray, dst: np.ndarray, salt: int) -> np.ndarray:
        rs = self.rank_of_node[src]
        rd = self.rank_of_node[dst]
        if np.any(rs < 0) or np.any(rd < 0):
            raise ValueError("the cluster router routes between accelerators; got a non-accelerator node")
        ds, dd = rs // self.size, rd // self.size
        same = ds == dd
        parts: list[tuple[np.ndarray, np.ndarray]] = []
        if np.any(same) and self.local is not None:
            i = np.flatnonzero(same & (src != dst))
            off = ds[i] * self.domain_nodes
            lp = self.local.node_paths(src[i] - off, dst[i] - off, salt)
            parts.append((i, np.where(lp >= 0, lp + off[:, None], -1)))
        cross = np.flatnonzero(~same)
        if len(cross):
            if self.remote is None:
                raise ValueError("accelerators in different supernodes but no scale-out fabric")
            h = flow_hash(src[cross], dst[cross], salt)
            nics = self.nic_of_rank.shape[1]
            ns = self.nic_of_rank[rs[cross], ecmp_choice(h, nics, 7)]
            nd = self.nic_of_rank[rd[cross], ecmp_choice(h, nics, 8)]
            rp = self.remote.node_paths(ns, nd, salt)
            full = np.full((len(cross), rp.shape[1] + 2), -1, dtype=np.int64)
            full[:, 0] = src[cross]
            full[:, 1:-1] = rp
            ends = (rp >= 0).sum(axis=1) + 1
            full[np.arange(len(cross)), ends] = dst[cross]
            parts.append((cross, full))
        width = max([p.shape[1] for _, p in parts], default=2)
        out = np.full((len(src), width), -1, dtype=np.int64)
        for i, p in parts:
            out[i, : p.shape[1]] = p
        return out


def _spread_cluster(router: "ClusterRouter", src: np.ndarray, dst: np.ndarray, salt: int):
    """Intra-domain pairs striped as the supernode router stripes them; others one path."""
    from oassim.topology.fabric import Paths
    from oassim.topology.routing import permute_paths

    rs, rd = router.rank_of_node[src], router.rank_of_node[dst]
    same = (rs // router.size) == (rd // router.size)
    pieces = []  # (owner, paths, fraction)
    i = np.flatnonzero(~same | (src == dst))
    if len(i):
        p = router.route(src[i], dst[i], salt)
        pieces.append((i, p, np.ones(len(i))))
    j = np.flatnonzero(same & (src != dst))
    if len(j) and router.local is not None:
        off = (rs[j] // router.size) * router.domain_nodes
        lp, lown, lfrac = router.local.spread(src[j] - off, dst[j] - off, salt)
        # local link ids -> cluster link ids: the template's links map one to one by endpoints
        links = router.stamped_links(np.repeat((rs[j] // router.size)[lown], lp.hops), lp.links)
        pieces.append((j[lown], Paths(lp.ptr, links), lfrac))
    owner = np.concatenate([o for o, _, _ in pieces]) if pieces else np.zeros(0, dtype=np.int64)
    frac = np.concatenate([f for _, _, f in pieces]) if pieces else np.zeros(0)
    ptrs, links, base = [np.zeros(1, dtype=np.int64)], [], 0
    for _, p, _ in pieces:
        ptrs.append(p.ptr[1:] + base)
        links.append(p.links)
        base += p.ptr[-1]
    cat = Paths(np.concatenate(ptrs), np.concatenate(links) if links else np.zeros(0, dtype=np.int64))
    order = np.argsort(owner, kind="stable")
    return permute_paths(cat.ptr, cat.links, order), owner[order], frac[order]


class _View:
    """The cluster fabric seen with the scale-out builder's routing record (shares arrays)."""

    def __init__(self, fabric: Fabric, routing: dict):
        self._f = fabric
        self.routing = routing

    def __getattr__(self, name: str):
        return getattr(self._f, name)
