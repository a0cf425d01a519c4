"""Two-tier Clos scale-up domain (Huawei CloudMatrix384 style supernode).

What is modelled: ``nodes`` servers of ``accelerators_per_node`` accelerators. Each server has
``l1_per_node`` L1 switch chips on board; every accelerator links to every L1 chip of its server
(``links_per_l1`` electrical links each). The L2 tier is split into ``l1_per_node`` sub-planes of
``l2_per_plane`` switches: L1 chip ``i`` of every server connects to the ``l2_per_plane``
switches of plane ``i`` with ``l1_uplinks / l2_per_plane`` optical links each. CloudMatrix384
(docs/sources.md B1, [S34][S35][S40]): 48 servers x 8 NPUs, 7 L1 chips per server with 16 uplinks
each, L2 = 7 sub-planes x 16 switches, so every L2 switch uses 48 ports; that is ``nodes=48,
accelerators_per_node=8, l1_per_node=7, l1_uplinks=16, l2_per_plane=16`` (``links_per_l1=2``
matches 8 NPUs x 2 = 16 down-links per L1 chip against 16 uplinks, a non-blocking L1).

Why this shape: the planes are disjoint above the accelerators, so traffic that leaves a server
on L1 chip ``i`` stays in plane ``i`` and enters the destination server on its L1 chip ``i``;
routing is then two hash choices (chip, L2 switch) and the bisection has a closed form per plane.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, Mapping

import numpy as np
from pydantic import model_validator

from oassim.hardware.models import Count, count_at_least
from oassim.specio import SpecModel
from oassim.topology.graph import add_links, add_nodes, new_graph, set_routing
from oassim.topology.parts import LinkClass, SwitchClass, require_parts, switch_node_attrs
from oassim.topology.routing import Router, ecmp_choice, flow_hash, node_paths_to_paths

if TYPE_CHECKING:
    import networkx as nx

__all__ = [
    "Spec",
    "LINK_ROLES",
    "SWITCH_ROLES",
    "ROUTER",
    "build",
    "bisection_Bps",
    "diameter_hops",
    "roles_needed",
    "Clos2Router",
]

LINK_ROLES: tuple[str, ...] = ("l1", "l2")  # accelerator-L1 (electrical), L1-L2 (optical)
SWITCH_ROLES: tuple[str, ...] = ("l1", "l2")
ROUTER = "clos2"

L1_TIER = "scaleup-l1"  # node tier of L1 chips and edge tier of accelerator-L1 links
L2_TIER = "scaleup-l2"  # node tier of L2 switches and edge tier of L1-L2 links


class Spec(SpecModel):
    """Geometry of a two-tier Clos supernode.

    Parameters
    ----------
    nodes : int
        Servers (>= 2; one server needs no L2 tier, use the ``switched`` family).
    accelerators_per_node : int
        Accelerators per server (>= 1).
    l1_per_node : int
        L1 switch chips per server (>= 1); also the number of L2 sub-planes.
    links_per_l1 : int
        Links from each accelerator to each L1 chip of its server (>= 1).
    l1_uplinks : int
        Uplinks of each L1 chip to its L2 plane (>= 1), a multiple of ``l2_per_plane``.
    l2_per_plane : int
        L2 switches per sub-plane (>= 1).
    routing : {"ecmp", "adaptive"}
        How an L1 chip picks its L2 switch: ``ecmp`` hashes each flow onto one (default, static
        hashing), ``adaptive`` spreads every chip's traffic evenly over its plane's switches
        (adaptive routing / packet spraying; :mod:`oassim.network.routing_modes` costs each
        chip's uplinks and each chip's downlinks as one link).
    """

    nodes: count_at_least(2)  # type: ignore[valid-type]
    accelerators_per_node: Count
    l1_per_node: Count
    links_per_l1: Count
    l1_uplinks: Count
    l2_per_plane: Count
    routing: Literal["ecmp", "adaptive"] = "ecmp"

    @model_validator(mode="after")
    def _check(self) -> "Spec":
        if self.l1_uplinks % self.l2_per_plane:
            raise ValueError(
                f"l1_uplinks ({self.l1_uplinks}) is not a multiple of l2_per_plane "
                f"({self.l2_per_plane}): "
                "each L1 chip must reach every L2 switch of its plane with the same number of links"
            )
        return self

    @property
    def size(self) -> int:
        """Accelerators in the domain."""
        return self.nodes * self.accelerators_per_node

    @property
    def uplink_bundle(self) -> int:
        """Links between one L1 chip and one L2 switch of its plane."""
        return self.l1_uplinks // self.l2_per_plane


def roles_needed(spec: Spec) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(link roles, switch roles) this geometry uses: all of them for this family."""
    return LINK_ROLES, SWITCH_ROLES


def links_built(spec: Spec, switches: Mapping[str, SwitchClass] | None = None) -> int:
    """Distinct links (graph edges) one build adds: accelerator-L1 and L1-L2 bundles."""
    return spec.size * spec.l1_per_node + spec.nodes * spec.l1_per_node * spec.l2_per_plane


def build(
    spec: Spec,
    links: Mapping[str, LinkClass],
    switches: Mapping[str, SwitchClass],
    *,
    g: nx.Graph | None = None,
    endpoints: np.ndarray | None = None,
    accel: Mapping[str, Any] | None = None,
    name: str = "clos2",
) -> nx.Graph:
    """Build a two-tier Clos supernode into ``g`` and return it.

    Parameters
    ----------
    spec : Spec
        Geometry.
    links : mapping
        ``{"l1": LinkClass, "l2": LinkClass}``: accelerator-L1 and L1-L2 links.
    switches : mapping
        ``{"l1": SwitchClass, "l2": SwitchClass}``.
    g : networkx.Graph, optional
        Graph to extend (nodes are appended); a new one when None.
    endpoints : None
        Must be None: a supernode creates its own accelerators.
    accel : mapping, optional
        Extra attributes set on every accelerator node.
    name : str
        Graph name when a new graph is made.

    Returns
    -------
    networkx.Graph
        Routing recorded as router ``"clos2"`` with structure keys ``accel`` (size,),
        ``l1`` (nodes, l1_per_node), ``l2`` (l1_per_node, l2_per_plane) node ids and the scalar
        ``accelerators_per_node``.

    Notes
    -----
    Accelerator ``j`` of server ``p`` has local index (rail) ``p * accelerators_per_node + j``
    and ``pod = p``; L1 chip ``i`` of server ``p`` has ``pod = p``, ``plane = i``; L2 switch
    ``k`` of plane ``i`` has ``plane = i``. All are in domain 0.
    """
    if endpoints is not None:
        raise ValueError("clos2: a supernode creates its own accelerators; endpoints must be None")
    require_parts("clos2", links, LINK_ROLES, "link")
    require_parts("clos2", switches, SWITCH_ROLES, "switch")
    n, apn, nl1, npp = spec.nodes, spec.accelerators_per_node, spec.l1_per_node, spec.l2_per_plane
    if g is None:
        g = new_graph(name, "clos2")
    acc_attrs = {
        **dict(accel or {}),
        "domain": 0,
        "rail": np.arange(spec.size),
        "pod": np.repeat(np.arange(n), apn),
    }
    acc_attrs.pop("rank", None)
    acc = add_nodes(g, spec.size, "accelerator", "accelerator", **acc_attrs)
    l1 = add_nodes(
        g,
        n * nl1,
        "switch",
        L1_TIER,
        domain=0,
        pod=np.repeat(np.arange(n), nl1),
        plane=np.tile(np.arange(nl1), n),
        **switch_node_attrs(switches["l1"]),
    ).reshape(n, nl1)
    l2 = add_nodes(
        g,
        nl1 * npp,
        "switch",
        L2_TIER,
        domain=0,
        plane=np.repeat(np.arange(nl1), npp),
        **switch_node_attrs(switches["l2"]),
    ).reshape(nl1, npp)
    # Every accelerator to every L1 chip of its own server.
    acc_by_node = acc.reshape(n, apn)
    u = np.repeat(acc_by_node, nl1, axis=1).ravel()  # (n, apn * nl1): acc j repeated per chip
    v = np.tile(l1, (1, apn)).ravel()
    add_links(g, u, v, links["l1"], tier=L1_TIER, count=spec.links_per_l1)
    # L1 chip i of every server to every L2 switch of plane i.
    u = np.repeat(l1, npp, axis=1).ravel()  # (n, nl1 * npp)
    v = np.tile(l2.ravel(), n)
    add_links(g, u, v, links["l2"], tier=L2_TIER, count=spec.uplink_bundle)
    set_routing(g, ROUTER, accel=acc, l1=l1, l2=l2, accelerators_per_node=apn, routing=spec.routing)
    return g


def bisection_Bps(spec: Spec, links: Mapping[str, LinkClass]) -> float:
    """Bisection bandwidth between ranks < size/2 and the rest, per direction, bytes/s.

    With accelerators pinned to their halves, the planes are disjoint, so the min cut is
    ``l1_per_node`` times the min cut of one plane. In a plane, a whole server on the small side
    feeds its L1 chip with ``D = accelerators_per_node * links_per_l1 * B_l1`` and the chip
    reaches the L2 switches with ``U = l1_uplinks * B_l2``. When the halves split one server
    (odd ``nodes``, or an odd ``size``) that server's chip carries ``Ds`` from its first-half
    accelerators and ``Dt`` to its second-half ones. Every L2 switch of a plane sees the same
    chips, so an optimal cut puts all L2 switches of the plane on one side (cost is linear in
    how many go each way), and each chip then takes its cheapest side:

    - L2 on the first-half side: ``n_T * min(D, U) + min(Dt, Ds + U)``
    - L2 on the second-half side: ``n_S * min(D, U) + min(Ds, Dt + U)``

    where ``n_S``, ``n_T`` count whole servers in each half. Without a split server this is
    ``min(n_S, n_T) * min(D, U)``: for even ``nodes``, ``nodes/2 * min(D, U)`` per plane.
    """
    require_parts("clos2", links, LINK_ROLES, "link")
    b1, b2 = links["l1"].bandwidth_Bps, links["l2"].bandwidth_Bps
    apn = spec.accelerators_per_node
    first = (spec.size + 1) // 2  # ranks < size/2
    n_s, s_m = divmod(first, apn)
    split = s_m > 0
    n_t = spec.nodes - n_s - int(split)
    d_full = apn * spec.links_per_l1 * b1
    up = spec.l1_uplinks * b2
    ds = s_m * spec.links_per_l1 * b1
    dt = (apn - s_m) * spec.links_per_l1 * b1 if split else 0.0
    per_plane = min(
        n_t * min(d_full, up) + min(dt, ds + up),
        n_s * min(d_full, up) + min(ds, dt + up),
    )
    return float(spec.l1_per_node * per_plane)


def diameter_hops(spec: Spec) -> int:
    """Routed hops between accelerators of different servers: acc-L1-L2-L1-acc (4)."""
    return 4


class Clos2Router(Router):
    """Up/down routing over the two tiers with ECMP hashing.

    Same server: accelerator -> L1 chip ``i`` (hash over the server's chips) -> accelerator.
    Different servers: accelerator -> L1 chip ``i`` (hash) -> L2 switch ``k`` of plane ``i``
    (hash) -> L1 chip ``i`` of the destination server -> accelerator.
    """

    name = ROUTER

    def __init__(
        self,
        fabric: Any,
        *,
        accel: np.ndarray,
        l1: np.ndarray,
        l2: np.ndarray,
        accelerators_per_node: int,
        **structure: Any,
    ):
        super().__init__(
            fabric, accel=accel, l1=l1, l2=l2, accelerators_per_node=accelerators_per_node,
            **structure,
        )
        self._accel = np.asarray(accel, dtype=np.int64)
        self._l1 = np.asarray(l1, dtype=np.int64)
        self._l2 = np.asarray(l2, dtype=np.int64)
        self._apn = int(accelerators_per_node)
        self._local = np.full(fabric.n_nodes, -1, dtype=np.int64)
        self._local[self._accel] = np.arange(len(self._accel))

    def node_paths(self, src: np.ndarray, dst: np.ndarray, salt: int) -> np.ndarray:
        """Node sequences (n, 5), -1 padded: 2 hops inside a server, 4 across servers."""
        src = np.asarray(src, dtype=np.int64).ravel()
        dst = np.asarray(dst, dtype=np.int64).ravel()
        ls, ld = self._local[src], self._local[dst]
        if np.any(ls < 0) or np.any(ld < 0):
            raise ValueError("clos2 router: src and dst must be accelerators of this supernode")
        h = flow_hash(src, dst, salt)
        chip = ecmp_choice(h, self._l1.shape[1], 0)
        top = ecmp_choice(h, self._l2.shape[1], 1)
        out = self._rows(src, dst, ls // self._apn, ld // self._apn, chip, top)
        out[src == dst, 1:] = -1
        return out

    def _rows(self, src: np.ndarray, dst: np.ndarray, p: np.ndarray, q: np.ndarray, chip: np.ndarray,
              top: np.ndarray) -> np.ndarray:
        """Node sequences (n, 5) through L1 chip ``chip`` (and L2 switch ``top`` of that plane
        when servers ``p`` and ``q`` differ)."""
        out = np.full((len(src), 5), -1, dtype=np.int64)
        out[:, 0], out[:, 1] = src, self._l1[p, chip]
        same = p == q
        out[same, 2] = dst[same]
        far = ~same
        out[far, 2] = self._l2[chip[far], top[far]]
        out[far, 3] = self._l1[q[far], chip[far]]
        out[far, 4] = dst[far]
        return out

    def spread(self, src: np.ndarray, dst: np.ndarray, salt: int = 0):
        """UB striping: each transfer goes over all ``l1_per_node`` planes of its source in
        equal parts (an NPU's bandwidth is the sum of its links to every L1 chip, docs/sources.md
        B1: 7 x 56 = 392 GB/s, "inter-node penalty <3%"); across servers each plane's part
        takes an ECMP-hashed L2 switch of that plane. Returns (paths, owner, fraction)."""
        src = np.asarray(src, dtype=np.int64).ravel()
        dst = np.asarray(dst, dtype=np.int64).ravel()
        live = np.flatnonzero(src != dst)
        ls, ld = self._local[src[live]], self._local[dst[live]]
        if np.any(ls < 0) or np.any(ld < 0):
            raise ValueError("clos2 router: src and dst must be accelerators of this supernode")
        chips, tops = self._l1.shape[1], self._l2.shape[1]
        p, q = np.repeat(ls // self._apn, chips), np.repeat(ld // self._apn, chips)
        chip = np.tile(np.arange(chips, dtype=np.int64), len(live))
        s, d = np.repeat(src[live], chips), np.repeat(dst[live], chips)
        top = ecmp_choice(flow_hash(s, d, salt), tops, 1 + chip)
        out = self._rows(s, d, p, q, chip, top)
        return node_paths_to_paths(self.fabric, out), np.repeat(live, chips), np.full(len(s), 1.0 / chips)
