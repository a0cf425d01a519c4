"""What a fabric offers collective algorithms: its levels and its in-network reduction.

What is modelled: the few facts about a cluster that decide which collective algorithms can
run and how the engine derates them: the scale-up domain of every rank (and a sub-domain
level where the supernode has one, e.g. a CloudMatrix server or a TPU cube), whether the
scale-up and scale-out switches reduce in the network (NVLink SHARP / InfiniBand SHARP), the
link technologies of each level (the tuning file keys achievable fractions by them), and which
directed links are scale-up links.

Why a separate record: the frozen :class:`~oassim.topology.fabric.Fabric` carries arrays for
routing and costing but not the switches' ``in_network_reduction`` flag nor link technology
names (they live on the builder's graph). ``FabricCaps`` reads them from the cluster's
resolved spec (``fabric.meta["resolved"]``) or, for a bare family graph, from the graph
itself, once, so algorithms never look at networkx or hardware models.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from oassim.topology.fabric import Fabric, GridGeometry
from oassim.topology.graph import NODE_KINDS
from oassim.topology.routing import rank_blocks

if TYPE_CHECKING:  # a type only: the run path does not load networkx
    import networkx as nx

__all__ = ["FabricCaps"]


def _local_index(domain: np.ndarray) -> np.ndarray:
    """Position of each rank among the ranks of its domain, in rank order."""
    order = np.argsort(domain, kind="stable")
    sd = domain[order]
    starts = np.searchsorted(sd, sd, side="left")
    local = np.empty(len(domain), dtype=np.int64)
    local[order] = np.arange(len(domain)) - starts
    return local


@dataclass(frozen=True, eq=False)
class FabricCaps:
    """Collective-relevant capabilities of one fabric.

    Attributes
    ----------
    n_ranks : int
        Accelerators (ranks 0..n_ranks-1).
    domain_of_rank : ndarray of int64, shape (n_ranks,)
        Scale-up domain (supernode) of each rank.
    local_of_rank : ndarray of int64, shape (n_ranks,)
        Position of each rank in its domain; equal positions are "rail-aligned".
    sub_of_rank : ndarray of int64, shape (n_ranks,), or None
        A level inside the domain (server, cube) where the supernode has one, else None.
    domain_size : int
        Ranks per domain (the largest domain).
    scaleup_inr, scaleout_inr : bool
        Every switch of that level reduces in the network (and there is at least one).
    scaleup_switches, scaleout_switches : tuple of str
        Switch part names per level, for messages.
    scaleup_techs, scaleout_techs : tuple of str
        Link technology names per level (keys of the tuning file's link efficiencies).
    link_scaleup : ndarray of bool, shape (n_links,)
        Directed links inside a scale-up domain (the rest are NIC and scale-out links).
    domain_nodes : int or None
        Node ids per stamped domain copy (cluster fabrics), for the engine's domain symmetry.
    grid : GridGeometry or None
        Family, dimensions and per-dimension link rate of a direct-connect scale-up domain
        (torus, full mesh), for the topology-aware algorithms
        (:attr:`~oassim.topology.fabric.Fabric.supernode_grid`).
    leaf_of_rank, pod_of_rank : ndarray of int64, shape (n_ranks,), or None
        Scale-out leaf switch and pod of each rank's first NIC, where the scale-out is a
        fat-tree (:func:`~oassim.topology.routing.rank_blocks`), for the aggregated all-to-all.
    domain_family : str or None
        Router of the scale-up domain's family (``torus``, ``fullmesh``, ``clos2``, ...), for
        the symmetric in-domain all-to-all (:mod:`~oassim.collectives.algorithms.all_to_all_domains`).
    """

    n_ranks: int
    domain_of_rank: np.ndarray
    local_of_rank: np.ndarray
    sub_of_rank: np.ndarray | None
    domain_size: int
    scaleup_inr: bool
    scaleout_inr: bool
    scaleup_switches: tuple[str, ...]
    scaleout_switches: tuple[str, ...]
    scaleup_techs: tuple[str, ...]
    scaleout_techs: tuple[str, ...]
    link_scaleup: np.ndarray
    domain_nodes: int | None = None
    grid: GridGeometry | None = None
    leaf_of_rank: np.ndarray | None = None
    pod_of_rank: np.ndarray | None = None
    domain_family: str | None = None

    @property
    def n_domains(self) -> int:
        return int(self.domain_of_rank.max()) + 1 if self.n_ranks else 0

    @classmethod
    def from_fabric(cls, fabric: Fabric, graph: nx.Graph | None = None) -> "FabricCaps":
        """Derive the capabilities of ``fabric``.

        Parameters
        ----------
        fabric : Fabric
        graph : networkx.Graph, optional
            The graph ``fabric`` was frozen from. Needed only for fabrics that are not whole
            clusters (no ``meta["resolved"]``): switch ``in_network_reduction`` and link
            technology names are read from it. Without either, no in-network reduction and
            unknown technologies are assumed.
        """
        acc = fabric.accel_node
        dom = fabric.node_domain[acc].astype(np.int64)
        if len(dom) and dom.min() < 0:
            dom = np.zeros(len(acc), dtype=np.int64)
        local = _local_index(dom)
        sub = _sub_level(fabric, dom)
        size = int(np.bincount(dom).max()) if len(dom) else 0
        kind = fabric.node_kind
        nic = NODE_KINDS.index("nic")
        nd = fabric.node_domain
        ls, ld = fabric.link_src, fabric.link_dst
        link_up = (kind[ls] != nic) & (kind[ld] != nic) & (nd[ls] == nd[ld]) & (nd[ls] >= 0)
        info = _from_resolved(fabric.meta.get("resolved")) if graph is None else _from_graph(graph)
        routing = fabric.routing
        dn = None
        if routing.get("router") == "cluster" and routing.get("template") is not None:
            dn = int(routing["domain_nodes"])
        blocks = rank_blocks(fabric)
        family = routing.get("router")
        if family == "cluster":
            t = routing.get("template")
            family = t.routing.get("router") if t is not None else None
        return cls(
            n_ranks=len(acc),
            domain_of_rank=dom,
            local_of_rank=local,
            sub_of_rank=sub,
            domain_size=size,
            link_scaleup=link_up,
            domain_nodes=dn,
            grid=fabric.supernode_grid,
            leaf_of_rank=None if blocks is None else blocks[0],
            pod_of_rank=None if blocks is None else blocks[1],
            domain_family=None if family is None else str(family),
            **info,
        )

    def describe_inr(self, level: str) -> str:
        """Switch names of ``level`` ("scale-up" / "scale-out") for messages."""
        names = self.scaleup_switches if level == "scale-up" else self.scaleout_switches
        return ", ".join(names) if names else "no switches"


def _sub_level(fabric: Fabric, dom: np.ndarray) -> np.ndarray | None:
    """(domain, pod) codes when pods split domains into several parts, else None."""
    pod = fabric.node_pod[fabric.accel_node].astype(np.int64)
    if len(pod) == 0 or pod.min() < 0:
        return None
    code = dom * (int(pod.max()) + 1) + pod
    if len(np.unique(code)) <= len(np.unique(dom)):
        return None
    return np.unique(code, return_inverse=True)[1].astype(np.int64)


def _names(parts: dict[str, Any]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(p.name for p in parts.values()))


def _from_resolved(rc: Any) -> dict[str, Any]:
    """Capabilities from a ``ResolvedCluster`` (topology.cluster_spec)."""
    out: dict[str, Any] = dict(
        scaleup_inr=False, scaleout_inr=False, scaleup_switches=(), scaleout_switches=(),
        scaleup_techs=(), scaleout_techs=(),
    )
    if rc is None:
        return out
    for level, dom in (("scaleup", rc.supernode), ("scaleout", rc.scale_out)):
        if dom is None:
            continue
        sw = dom.switches
        # an OCS only steers light: it neither reduces nor blocks in-network reduction
        reducing = [s for r, s in sw.items() if r != "ocs"]
        out[f"{level}_inr"] = bool(reducing) and all(s.in_network_reduction for s in reducing)
        out[f"{level}_switches"] = _names(sw)
        out[f"{level}_techs"] = _names(dom.links)
    return out


def _from_graph(g: nx.Graph) -> dict[str, Any]:
    """Capabilities from a bare family graph: switch and link attributes per level."""
    up_sw: list[tuple[str, bool]] = []
    out_sw: list[tuple[str, bool]] = []
    for _, d in g.nodes(data=True):
        if d.get("kind") != "switch":
            continue
        rec = (str(d.get("spec", d.get("tier", "switch"))), bool(d.get("in_network_reduction", False)))
        (up_sw if d.get("domain", -1) >= 0 else out_sw).append(rec)
    up_t: dict[str, None] = {}
    out_t: dict[str, None] = {}
    for u, v, d in g.edges(data=True):
        du, dv = g.nodes[u], g.nodes[v]
        inside = (
            du.get("kind") != "nic" and dv.get("kind") != "nic"
            and du.get("domain", -1) == dv.get("domain", -1) and du.get("domain", -1) >= 0
        )
        (up_t if inside else out_t)[str(d.get("link", d.get("tier", "link")))] = None
    return dict(
        scaleup_inr=bool(up_sw) and all(r for _, r in up_sw),
        scaleout_inr=bool(out_sw) and all(r for _, r in out_sw),
        scaleup_switches=tuple(dict.fromkeys(n for n, _ in up_sw)),
        scaleout_switches=tuple(dict.fromkeys(n for n, _ in out_sw)),
        scaleup_techs=tuple(up_t),
        scaleout_techs=tuple(out_t),
    )
