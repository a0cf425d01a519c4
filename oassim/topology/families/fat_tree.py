"""Multi-tier folded Clos (fat-tree) scale-out fabric: 2 or 3 switch tiers, oversubscription,
several independent planes.

What is modelled: ``E`` endpoints (accelerators, or the NICs of a composed cluster) hang off
leaf switches; leaves connect up to spines and, with three tiers, spines connect up to cores.
Every switch has radix ``k`` (``SwitchClass.radix``, already resolved at the port rate of the
fabric). The sizing rule is the one that reproduces the NVIDIA DGX SuperPOD B200 reference
architecture switch counts (docs/sources.md C1 [S8][S54]; radix 64, 1:1, 512..16,384 GPUs give
leaf-spine-core 16-8-0 ... 512-512-256):

- leaf down ports ``d = floor(k*o/(o+1))`` (``o`` = ``oversubscription``), up ports ``u = k - d``,
  leaves ``L = ceil(E/d)``; endpoint ``e`` is port ``e % d`` of leaf ``e // d``.
- two tiers: ``S = ceil(L*u/k)`` spines; each leaf spreads its ``u`` uplinks evenly over all
  spines (bundles of ``floor``/``ceil(u/S)``, the larger bundles rotated from leaf to leaf so
  every spine uses at most ``k`` ports). Every leaf must reach every spine, so ``S <= u``, i.e.
  ``L <= k``: at most ``k*d`` endpoints (``k*k/2`` at 1:1). One leaf needs no spine (none built).
- three tiers: pods of ``P = ds`` leaves (``ds = floor(k*os/(os+1))`` spine down ports,
  ``os`` = ``spine_oversubscription``, ``us = k - ds`` spine up ports), ``u`` spines per pod,
  every leaf of a pod linked once to every spine of the pod. Spine ``j`` of every pod joins core
  group ``j``; ``C = ceil(pods*us/k)`` cores per group, each spine's ``us`` uplinks spread evenly
  over its group's cores (rotated bundles as above). ``C <= us`` needs ``pods <= k``: at most
  ``k*ds*d`` endpoints (``k**3/4`` at 1:1). A single pod needs no core (none built).

Rail optimisation is not a topology of its own: it is the order of ``endpoints``. For a DGX
SuperPOD the caller orders the NICs by (scalable unit, rail, node), so that consecutive
endpoints, which fill consecutive leaf ports, put each leaf on one rail of one SU.

Planes: with ``planes = n`` every endpoint has one port into each of ``n`` identical,
independent fabrics (node attribute ``plane``); a flow uses one plane, chosen by ECMP hash.

Routing (router ``"fat_tree"``) is up/down and minimal: same leaf -> down; same pod (or two
tiers) -> leaf, spine, leaf; otherwise leaf, spine, core, the destination pod's spine of the
same group, leaf. Next hops are chosen per physical uplink port by hash, so a bundle of ``c``
links draws ``c`` times the traffic of a single link, as port-level ECMP does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Mapping

import numpy as np
from pydantic import Field, model_validator

from oassim.hardware.models import Count, ratio_at_least
from oassim.specio import SpecModel
from oassim.topology.graph import add_links, add_nodes, has_nodes, new_graph, set_routing
from oassim.topology.parts import LinkClass, SwitchClass, require_parts, switch_node_attrs
from oassim.topology.routing import Router, ecmp_choice, flow_hash
from oassim.topology.families._fat_tree_sizing import Sizing, bundles, port_table, sizing

if TYPE_CHECKING:
    import networkx as nx

__all__ = [
    "Spec",
    "Sizing",
    "LINK_ROLES",
    "SWITCH_ROLES",
    "ROUTER",
    "sizing",
    "build",
    "bisection_Bps",
    "diameter_hops",
    "FatTreeRouter",
]

LINK_ROLES: tuple[str, ...] = ("host", "leaf_spine", "spine_core")
SWITCH_ROLES: tuple[str, ...] = ("leaf", "spine", "core")
ROUTER = "fat_tree"

_LINK_TIER = {"host": "host", "leaf_spine": "leaf-spine", "spine_core": "spine-core"}


class Spec(SpecModel):
    """Geometry of a folded-Clos fabric (the radix comes from the switch part).

    Parameters
    ----------
    endpoints : int or None
        Endpoints to attach (>= 1); required when ``build`` gets no ``endpoints`` array.
    tiers : {2, 3} or None
        Switch tiers; None picks the smallest that holds the endpoints.
    oversubscription : float
        Leaf down:up port ratio (>= 1).
    spine_oversubscription : float
        Spine down:up port ratio in a 3-tier fabric (>= 1).
    planes : int
        Identical, independent fabric planes; each endpoint has one port into each (>= 1).
    """

    endpoints: Count | None = None
    tiers: Annotated[int, Field(ge=2, le=3, strict=True)] | None = None
    oversubscription: ratio_at_least(1.0) = 1.0  # type: ignore[valid-type]
    spine_oversubscription: ratio_at_least(1.0) = 1.0  # type: ignore[valid-type]
    planes: Count = 1

    @model_validator(mode="after")
    def _check(self) -> "Spec":
        if self.tiers == 2 and self.spine_oversubscription != 1.0:
            raise ValueError(
                f"spine_oversubscription ({self.spine_oversubscription}) applies only to 3 tiers, "
                "but tiers = 2: a 2-tier spine has no uplinks"
            )
        return self


def links_built(spec: Spec, switches: Mapping[str, SwitchClass] | None = None,
                n_endpoints: int | None = None) -> int:
    """Distinct links (graph edges) one build adds, from the sizing rule; sizing a fabric the
    tier count cannot hold raises the capacity error here, before any graph is built.

    Raises
    ------
    ValueError
        The endpoints exceed what the tier count holds with the leaf switch's radix.
    """
    sz = sizing(spec, _radix(switches, None), n_endpoints)
    if sz.tiers == 2:
        up = sz.leaves * min(sz.up, sz.spines_per_pod)
    else:
        up = sz.leaves * sz.up + sz.up * sz.pods * min(sz.spine_up, sz.cores_per_group)
    return sz.planes * (sz.endpoints + up)


def build(
    spec: Spec,
    links: Mapping[str, LinkClass],
    switches: Mapping[str, SwitchClass],
    *,
    g: nx.Graph | None = None,
    endpoints: np.ndarray | None = None,
    accel: Mapping[str, Any] | None = None,
    name: str = "fat_tree",
) -> nx.Graph:
    """Build a folded-Clos fabric into ``g`` and return it.

    Parameters
    ----------
    spec : Spec
        Geometry.
    links : mapping
        ``{"host", "leaf_spine", "spine_core"}`` -> LinkClass (``spine_core`` only read with
        cores). Link tiers on the graph: "host", "leaf-spine", "spine-core".
    switches : mapping
        ``{"leaf", "spine", "core"}`` -> SwitchClass; the sizing uses ``switches["leaf"].radix``
        for every tier (a larger spine/core radix leaves ports unused, a smaller one is an
        error). Node tiers: "leaf", "spine", "core".
    g : networkx.Graph, optional
        Graph to extend (nodes are appended); a new one when None.
    endpoints : numpy.ndarray, optional
        Existing node ids to attach, shape (E,), in port order (the caller orders them for rail
        optimisation). When None, ``spec.endpoints`` accelerators (tier "accelerator") are made.
    accel : mapping, optional
        Extra attributes of every accelerator made here.
    name : str
        Graph name when a new graph is made.

    Returns
    -------
    networkx.Graph
        With routing ``"fat_tree"`` and structure keys: ``endpoints`` (E,), ``tiers``,
        ``planes``, ``leaf_of_endpoint`` (E,) leaf index, ``pod_of_leaf`` (L,), ``leaves``
        (planes, L) node ids, ``uplink_spine`` (planes, L, u) spine node id behind each leaf
        uplink port, ``spines`` (planes, pods, spines_per_pod), ``cores`` (planes, groups, C) and
        ``spine_uplink_core`` (planes, pods, u, us) core node id behind each spine uplink port
        (the last two empty without cores).
    """
    require_parts("fat_tree", links, ("host", "leaf_spine"), "link")
    require_parts("fat_tree", switches, SWITCH_ROLES, "switch")
    if endpoints is not None:
        endpoints = np.asarray(endpoints, dtype=np.int64).ravel()
        if spec.endpoints is not None and spec.endpoints != len(endpoints):
            raise ValueError(f"fat_tree: spec.endpoints ({spec.endpoints}) != {len(endpoints)} endpoints given")
        if len(np.unique(endpoints)) != len(endpoints):
            raise ValueError("fat_tree: endpoints must be distinct node ids")
    sz = sizing(spec, switches["leaf"].radix, None if endpoints is None else len(endpoints))
    if sz.cores:
        require_parts("fat_tree", links, ("spine_core",), "link")
    for role, used in (("spine", sz.spines), ("core", sz.cores)):
        if used and switches[role].radix < sz.radix:
            raise ValueError(f"fat_tree: {role} radix {switches[role].radix} < leaf radix {sz.radix}; "
                             "the sizing rule gives every tier the leaf radix")
    if g is None:
        g = new_graph(name, "fat_tree")
    E, d, u, L, pl = sz.endpoints, sz.down, sz.up, sz.leaves, sz.planes
    leaf_of_ep = np.arange(E, dtype=np.int64) // d
    pod_of_leaf = np.arange(L, dtype=np.int64) // sz.leaves_per_pod
    if endpoints is None:
        host = links["host"]
        attrs = {"ports": pl, "port_rate_Gbps": host.port_rate_Gbps, **dict(accel or {})}
        attrs.pop("rank", None)
        attrs["pod"] = pod_of_leaf[leaf_of_ep]
        endpoints = add_nodes(g, E, "accelerator", "accelerator", **attrs)
    elif not has_nodes(g, endpoints):
        raise ValueError("fat_tree: every endpoint must be an existing node of g")

    S, C, us, G = sz.spines_per_pod, sz.cores_per_group, sz.spine_up, sz.up
    leaves = np.empty((pl, L), dtype=np.int64)
    spines = np.empty((pl, sz.pods, S), dtype=np.int64)
    cores = np.empty((pl, G if C else 0, C), dtype=np.int64)
    uplink_spine = np.empty((pl, L, u if S else 0), dtype=np.int64)
    spine_up_core = np.empty((pl, sz.pods, u, us) if C else (pl, 0, 0, 0), dtype=np.int64)
    if sz.tiers == 2 and S:
        up_bundles = bundles(L, S, u)  # (L, S)
        up_port = port_table(up_bundles)  # (L, u) spine index
    if C:
        core_bundles = bundles(sz.pods, C, us)  # (pods, C): same for every group j
        core_port = port_table(core_bundles)  # (pods, us) core index within the group
    for p in range(pl):
        leaves[p] = add_nodes(g, L, "switch", "leaf", plane=p, pod=pod_of_leaf, **switch_node_attrs(switches["leaf"]))
        add_links(g, endpoints, leaves[p, leaf_of_ep], links["host"], tier="host")
        if S:
            spine_pod = np.repeat(np.arange(sz.pods), S)
            group = np.tile(np.arange(S), sz.pods) if sz.tiers == 3 else -1
            ids = add_nodes(g, sz.pods * S, "switch", "spine", plane=p, pod=spine_pod, group=group,
                            **switch_node_attrs(switches["spine"]))
            spines[p] = ids.reshape(sz.pods, S)
            if sz.tiers == 2:
                ii, jj = np.nonzero(up_bundles)
                add_links(g, leaves[p, ii], spines[p, 0, jj], links["leaf_spine"], tier="leaf-spine",
                          count=up_bundles[ii, jj])
                uplink_spine[p] = spines[p, 0][up_port]
            else:
                # every leaf of a pod links once to each of the pod's u spines (port q -> spine q)
                uplink_spine[p] = spines[p][pod_of_leaf]
                add_links(g, np.repeat(leaves[p], u), uplink_spine[p].ravel(), links["leaf_spine"],
                          tier="leaf-spine")
        if C:
            cores[p] = add_nodes(g, G * C, "switch", "core", plane=p, group=np.repeat(np.arange(G), C),
                                 **switch_node_attrs(switches["core"])).reshape(G, C)
            pp, cc = np.nonzero(core_bundles)
            for j in range(G):
                add_links(g, spines[p, pp, j], cores[p, j, cc], links["spine_core"], tier="spine-core",
                          count=core_bundles[pp, cc])
            # spine_up_core[p, pod, j, r] = cores[p, j, core_port[pod, r]]
            spine_up_core[p] = cores[p][np.arange(G)[None, :, None], core_port[:, None, :]]
    set_routing(
        g,
        ROUTER,
        endpoints=np.asarray(endpoints, dtype=np.int64),
        tiers=sz.tiers,
        planes=pl,
        leaf_of_endpoint=leaf_of_ep,
        pod_of_leaf=pod_of_leaf,
        leaves=leaves,
        uplink_spine=uplink_spine,
        spines=spines,
        cores=cores,
        spine_uplink_core=spine_up_core,
    )
    return g


def _radix(switches: Mapping[str, SwitchClass] | None, radix: int | None) -> int:
    if radix is not None:
        return int(radix)
    if not switches or "leaf" not in switches:
        raise ValueError("fat_tree: the sizing needs the switch radix: pass switches={'leaf': ...} or radix=")
    return int(switches["leaf"].radix)


def bisection_Bps(
    spec: Spec,
    links: Mapping[str, LinkClass],
    switches: Mapping[str, SwitchClass] | None = None,
    *,
    radix: int | None = None,
    n_endpoints: int | None = None,
) -> float:
    """Bisection bandwidth between the natural halves (endpoint index < E/2 vs the rest), B/s.

    The per-plane fabric with even bundles is equivalent, for max-flow, to a tree: endpoints ->
    leaf (capacity ``b_host`` each) -> one aggregated spine node (``u * b_ls`` per leaf) ->
    (3 tiers) one aggregated core (``u * us * b_sc`` per pod), because any flow on the tree
    splits evenly over identical spines / cores without exceeding a link. On a tree with
    full-duplex links, matching A-supply with B-demand as low as possible is optimal, so with
    ``a_i``, ``b_i`` endpoints of each half on leaf ``i``::

        up_i   = min((a_i - b_i)^+ * b_host, u * b_ls)      down_i = min((b_i - a_i)^+ ...)
        2 tiers: B = sum_i min(a_i, b_i) * b_host + min(sum_i up_i, sum_i down_i)
        3 tiers: the same per pod, then min(sum_pods pod_up, sum_pods pod_down) at the cores,
                 pod_up = min(sum_{i in pod} up_i - matched_pod, u * us * b_sc)

    times ``planes``. Domain where this is exact (== max-flow): the bundles are even
    (:attr:`Sizing.even_bundles`), i.e. 2 tiers with one leaf or ``u % S == 0``; 3 tiers with
    one pod or ``us % C == 0`` (all DGX SuperPOD B200 sizes [S54] qualify). Otherwise it is an
    upper bound, since the aggregation ignores per-spine imbalance (tests show up to ~10% above
    the max-flow when link rates differ per tier; equal with equal rates in the cases tried).

    Parameters
    ----------
    spec : Spec
    links : mapping
        Link parts by role; bandwidth per physical link, B/s per direction.
    switches : mapping, optional
        Switch parts (the radix of ``"leaf"`` sizes the fabric); or give ``radix``.
    radix : int, optional
        Switch radix when ``switches`` is not given.
    n_endpoints : int, optional
        Endpoint count when ``spec.endpoints`` is None.
    """
    sz = sizing(spec, _radix(switches, radix), n_endpoints)
    E, d, L = sz.endpoints, sz.down, sz.leaves
    b_h = links["host"].bandwidth_Bps
    n = np.full(L, d, dtype=np.int64)
    n[-1] = E - d * (L - 1)
    a = np.clip((E + 1) // 2 - np.arange(L) * d, 0, n)  # ranks < E/2 on each leaf
    b = n - a
    total = np.minimum(a, b).sum() * b_h
    if L == 1:
        return float(total * sz.planes)
    cap1 = sz.up * links["leaf_spine"].bandwidth_Bps
    up = np.minimum(np.clip(a - b, 0, None) * b_h, cap1)
    down = np.minimum(np.clip(b - a, 0, None) * b_h, cap1)
    if sz.tiers == 2:
        return float((total + min(up.sum(), down.sum())) * sz.planes)
    pod = np.arange(L) // sz.leaves_per_pod
    pu, pd = np.bincount(pod, up), np.bincount(pod, down)
    m = np.minimum(pu, pd)
    total += m.sum()
    if sz.pods > 1:
        cap2 = sz.up * sz.spine_up * links["spine_core"].bandwidth_Bps
        total += min(np.minimum(pu - m, cap2).sum(), np.minimum(pd - m, cap2).sum())
    return float(total * sz.planes)


def diameter_hops(
    spec: Spec,
    switches: Mapping[str, SwitchClass] | None = None,
    *,
    radix: int | None = None,
    n_endpoints: int | None = None,
) -> int:
    """Largest routed hop count between two endpoints (links, host links included).

    0 for one endpoint, 2 with one leaf, 4 with two tiers (or three tiers in one pod), 6 with
    three tiers over several pods. ``switches`` / ``radix`` / ``n_endpoints`` as in
    :func:`bisection_Bps` (the tier count may depend on the radix).
    """
    sz = sizing(spec, _radix(switches, radix), n_endpoints)
    if sz.endpoints < 2:
        return 0
    if sz.leaves == 1:
        return 2
    return 6 if sz.tiers == 3 and sz.pods > 1 else 4


class FatTreeRouter(Router):
    """Up/down minimal routing on a fat-tree, ECMP by flow hash (router ``"fat_tree"``).

    Hash levels: 0 picks the plane, 1 the leaf uplink port (hence the spine), 2 the spine
    uplink port (hence the core). Structure keys as recorded by :func:`build`.
    """

    name = ROUTER

    def __init__(
        self,
        fabric,
        *,
        endpoints: np.ndarray,
        tiers: int,
        planes: int,
        leaf_of_endpoint: np.ndarray,
        pod_of_leaf: np.ndarray,
        leaves: np.ndarray,
        uplink_spine: np.ndarray,
        spines: np.ndarray,
        cores: np.ndarray,
        spine_uplink_core: np.ndarray,
        **structure: Any,
    ):
        super().__init__(fabric, **structure)
        self.endpoints = np.asarray(endpoints, dtype=np.int64)
        self.ep_index = np.full(fabric.n_nodes, -1, dtype=np.int64)
        self.ep_index[self.endpoints] = np.arange(len(self.endpoints))
        self.tiers, self.planes = int(tiers), int(planes)
        self.leaf_of_ep = np.asarray(leaf_of_endpoint, dtype=np.int64)
        self.pod_of_leaf = np.asarray(pod_of_leaf, dtype=np.int64)
        self.leaves = np.asarray(leaves, dtype=np.int64)
        self.uplink_spine = np.asarray(uplink_spine, dtype=np.int64)
        self.spines = np.asarray(spines, dtype=np.int64)
        self.spine_uplink_core = np.asarray(spine_uplink_core, dtype=np.int64)

    def node_paths(self, src: np.ndarray, dst: np.ndarray, salt: int) -> np.ndarray:
        """Node sequences, shape (n, 7), -1 after the end (endpoint, leaf, spine, core, ...)."""
        src = np.asarray(src, dtype=np.int64).ravel()
        dst = np.asarray(dst, dtype=np.int64).ravel()
        es, ed = self.ep_index[src], self.ep_index[dst]
        if np.any(es < 0) or np.any(ed < 0):
            bad = src[es < 0] if np.any(es < 0) else dst[ed < 0]
            raise ValueError(f"fat_tree: node {int(bad[0])} is not an endpoint of this fabric")
        n = len(src)
        h = flow_hash(src, dst, salt)
        plane = ecmp_choice(h, self.planes, 0) if self.planes > 1 else np.zeros(n, dtype=np.int64)
        ls, ld = self.leaf_of_ep[es], self.leaf_of_ep[ed]
        out = np.full((n, 7), -1, dtype=np.int64)
        out[:, 0] = src
        moving = src != dst
        same_leaf = moving & (ls == ld)
        far = moving & (ls != ld)
        out[moving, 1] = self.leaves[plane[moving], ls[moving]]
        out[same_leaf, 2] = dst[same_leaf]
        if not np.any(far):
            return out
        u = self.uplink_spine.shape[2]
        pf, lsf, ldf, hf = plane[far], ls[far], ld[far], h[far]
        q = ecmp_choice(hf, u, 1)
        spine_s = self.uplink_spine[pf, lsf, q]
        pod_s, pod_d = self.pod_of_leaf[lsf], self.pod_of_leaf[ldf]
        cross = pod_s != pod_d
        # rows of `far`: 5-node paths inside a pod, 7-node paths across pods
        rows = np.flatnonzero(far)
        inside, across = rows[~cross], rows[cross]
        out[rows, 2] = spine_s
        out[inside, 3] = self.leaves[plane[inside], ld[inside]]
        out[inside, 4] = dst[inside]
        if len(across):
            us = self.spine_uplink_core.shape[3]
            qa, pa = q[cross], pf[cross]
            r = ecmp_choice(hf[cross], us, 2)
            out[across, 3] = self.spine_uplink_core[pa, pod_s[cross], qa, r]
            out[across, 4] = self.spines[pa, pod_d[cross], qa]
            out[across, 5] = self.leaves[pa, ldf[cross]]
            out[across, 6] = dst[across]
        return out
