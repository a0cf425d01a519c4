"""2D / 3D torus of accelerators, optionally built from cubes stitched by optical circuit switches.

What is modelled: accelerators on a grid ``dims`` (rank in mixed radix, ``dims[0]`` fastest),
each joined to its two ring neighbours in every dimension by ``links_per_neighbor`` direct links
(wraparound included); accelerators relay traffic, there are no packet switches. A dimension of
size 2 has ONE edge between its two nodes (``count = links_per_neighbor``): the wraparound
neighbour is the same node, and a second edge between the same pair is not representable.

With ``cube`` set, the torus is built like a Google TPU v4/v5p pod (docs/sources.md B1, [S17][S18]
[S22][S24]): each ``cube`` block is a mesh on copper ("ici" links); every link that crosses a
cube face is an optical circuit through an optical circuit switch (OCS). That is every link whose
ends lie in different cubes, the wraparound included, and also the wraparound of a dimension that
is only one cube long: a TPU v4 cube is a 4x4x4 mesh whose 6 faces x 16 links all go to OCSes
[S22], so even one cube closes its rings optically. (A size-2 dimension keeps its single edge,
optical only when ``cube`` is 1 there.) One OCS serves each (dimension, position on the cube face)
pair: TPU v4 has 3 x 16 = 48 OCS for 4x4x4 cubes, each using 128 of 136 ports in a 4,096-chip
pod [S22][S23].

OCS modelling: a MEMS OCS only steers light, so it is transparent to routing. Each circuit is a
DIRECT accelerator-accelerator edge (link role "ocs", tier "ocs-circuit") carrying the attribute
``ocs=<OCS node id>``; its latency adds the OCS's ``latency_s``. The OCS nodes (kind "ocs",
tier "ocs") have no edges; they carry ``radix`` and ``ports_used`` (2 per physical link) for the
design-rule checker, power and cost.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Annotated, Any, Mapping

import numpy as np
from pydantic import Field, StrictInt, model_validator

from oassim.hardware.models import Count
from oassim.specio import SpecModel
from oassim.topology.graph import add_links, add_nodes, new_graph, set_routing
from oassim.topology.parts import LinkClass, SwitchClass, require_parts
from oassim.topology.routing import Router, ecmp_choice, flow_hash

if TYPE_CHECKING:
    import networkx as nx

    from oassim.topology.fabric import Paths

__all__ = [
    "Spec",
    "LINK_ROLES",
    "SWITCH_ROLES",
    "ROUTER",
    "build",
    "bisection_Bps",
    "diameter_hops",
    "roles_needed",
    "ocs_ports_needed",
    "TorusRouter",
]

LINK_ROLES: tuple[str, ...] = ("ici", "ocs")  # "ocs" only when cube is set
SWITCH_ROLES: tuple[str, ...] = ("ocs",)  # only when cube is set
ROUTER = "torus"

ICI_TIER = "ici"
OCS_LINK_TIER = "ocs-circuit"
OCS_TIER = "ocs"


class Spec(SpecModel):
    """Geometry of a 2D/3D torus, optionally of OCS-stitched cubes.

    Parameters
    ----------
    dims : list of int
        Accelerators along each dimension (2 or 3 entries, each >= 2), ``dims[0]`` fastest.
    links_per_neighbor : int
        Parallel links to each ring neighbour (>= 1).
    cube : list of int, optional
        Block shape on copper (same length as ``dims``, each >= 1 and dividing its dimension);
        links crossing a block face are optical circuits through OCS. None: all copper.
    ocs_ports : int, optional
        Ports of each OCS; checked against the ports the circuits need. Only with ``cube``.
    """

    dims: Annotated[list[StrictInt], Field(min_length=2, max_length=3)]
    links_per_neighbor: Count = 1
    cube: list[StrictInt] | None = None
    ocs_ports: Count | None = None

    @model_validator(mode="after")
    def _check(self) -> "Spec":
        if any(k < 2 for k in self.dims):
            raise ValueError(f"every entry of dims must be >= 2, got {self.dims}")
        if self.cube is None:
            if self.ocs_ports is not None:
                raise ValueError("ocs_ports is set but cube is not: without cubes there are no OCS")
            return self
        if len(self.cube) != len(self.dims):
            raise ValueError(f"cube has {len(self.cube)} entries but dims has {len(self.dims)}")
        bad = [d for d, (k, c) in enumerate(zip(self.dims, self.cube)) if c < 1 or k % c]
        if bad:
            raise ValueError(
                f"cube {self.cube} must divide dims {self.dims} entry by entry "
                f"(dimension {bad[0]} does not)"
            )
        if self.ocs_ports is not None:
            need = max(ocs_ports_needed(self).values(), default=0)
            if need > self.ocs_ports:
                raise ValueError(
                    f"each OCS needs {need} ports (2 per optical link) but ocs_ports is "
                    f"{self.ocs_ports}"
                )
        return self

    @property
    def size(self) -> int:
        """Accelerators in the torus."""
        return int(np.prod(self.dims))


def _strides(dims: list[int] | np.ndarray) -> np.ndarray:
    """Rank stride of each dimension (dims[0] fastest), shape (n,)."""
    return np.concatenate([[1], np.cumprod(dims)[:-1]]).astype(np.int64)


def _optical_edge(k: int, cube: int | None, c: np.ndarray) -> np.ndarray:
    """Whether the ring edge (c, c+1 mod k) crosses a cube face (bool, shape of ``c``)."""
    if cube is None:
        return np.zeros(np.shape(c), dtype=bool)
    if k == 2:  # the single edge: optical only between two 1-wide cubes
        return np.full(np.shape(c), cube == 1)
    return (np.asarray(c) + 1) % cube == 0


def _ring_edges(k: int) -> int:
    """Edges of a ring of k nodes (one for k == 2)."""
    return 1 if k == 2 else k


def ocs_ports_needed(spec: Spec) -> dict[int, int]:
    """Ports each OCS of dimension ``d`` uses, ``{d: ports}`` (dims with optical links only).

    A line of dimension ``d`` has ``dims[d] / cube[d]`` face-crossing edges (one edge for a
    2-long dimension with ``cube`` 1); the ``N / dims[d]`` lines share ``prod(cube[e], e != d)``
    OCS, one per face position, and each physical link takes 2 ports.
    """
    if spec.cube is None:
        return {}
    out = {}
    n = spec.size
    for d, (k, c) in enumerate(zip(spec.dims, spec.cube)):
        per_line = int(_optical_edge(k, c, np.arange(_ring_edges(k))).sum())
        if per_line:
            face = int(np.prod(spec.cube)) // c
            out[d] = 2 * spec.links_per_neighbor * per_line * (n // k) // face
    return out


def roles_needed(spec: Spec) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(link roles, switch roles) this geometry uses: the OCS parts only with ``cube``."""
    if spec.cube is None:
        return ("ici",), ()
    return LINK_ROLES, SWITCH_ROLES


def links_built(spec: Spec, switches: Mapping[str, SwitchClass] | None = None) -> int:
    """Distinct links (graph edges) one build adds: one ring per line of each dimension."""
    return sum(spec.size // k * _ring_edges(k) for k in spec.dims)


def build(
    spec: Spec,
    links: Mapping[str, LinkClass],
    switches: Mapping[str, SwitchClass],
    *,
    g: nx.Graph | None = None,
    endpoints: np.ndarray | None = None,
    accel: Mapping[str, Any] | None = None,
    name: str = "torus",
) -> nx.Graph:
    """Build a torus into ``g`` and return it.

    Parameters
    ----------
    spec : Spec
        Geometry.
    links : mapping
        ``{"ici": LinkClass}`` and, with ``cube``, ``{"ocs": LinkClass}`` for the circuits.
    switches : mapping
        ``{"ocs": SwitchClass}`` with ``cube``; unused otherwise.
    g : networkx.Graph, optional
        Graph to extend (nodes are appended); a new one when None.
    endpoints : None
        Must be None: the torus creates its own accelerators.
    accel : mapping, optional
        Extra attributes set on every accelerator node.
    name : str
        Graph name when a new graph is made.

    Returns
    -------
    networkx.Graph
        Routing recorded as router ``"torus"`` with structure keys ``accel`` (size,) node ids by
        local rank, ``dims`` (n,) and ``accelerator_transit=True``. Accelerators get
        ``pod`` = cube index (mixed radix of ``dims / cube``, dim 0 fastest) with ``cube``, else
        -1. OCS nodes get ``plane`` = dimension and ``face_position`` (rank within the face).
    """
    if endpoints is not None:
        raise ValueError("torus: a supernode creates its own accelerators; endpoints must be None")
    optical = spec.cube is not None
    link_roles, switch_roles = roles_needed(spec)
    require_parts("torus", links, link_roles, "link")
    require_parts("torus", switches, switch_roles, "switch")
    if g is None:
        g = new_graph(name, "torus")
    n = spec.size
    dims = np.asarray(spec.dims, dtype=np.int64)
    strides = _strides(dims)
    local = np.arange(n, dtype=np.int64)
    coords = (local[:, None] // strides) % dims  # (n, ndim)
    if optical:
        cube = np.asarray(spec.cube, dtype=np.int64)
        pod = ((coords // cube) * _strides(dims // cube)).sum(axis=1)
    else:
        pod = np.full(n, -1)
    acc_attrs = {**dict(accel or {}), "domain": 0, "rail": local, "pod": pod}
    acc_attrs.pop("rank", None)
    acc = add_nodes(g, n, "accelerator", "accelerator", **acc_attrs)

    ocs_base: dict[int, int] = {}
    if optical:
        sw = switches["ocs"]
        for d, ports in ocs_ports_needed(spec).items():
            face = int(np.prod(spec.cube)) // spec.cube[d]
            ids = add_nodes(
                g, face, "ocs", OCS_TIER, plane=d, face_position=np.arange(face), ports_used=ports,
                spec=sw.name, radix=sw.radix, port_rate_Gbps=sw.port_rate_Gbps, power_W=sw.power_W,
                price_USD=sw.price_USD, in_network_reduction=False,
            )
            ocs_base[d] = int(ids[0])

    for d in range(len(dims)):
        k, s = int(dims[d]), int(strides[d])
        c = coords[:, d]
        lo = local[c < k - 1] if k == 2 else local  # k == 2: one edge per line
        nb = lo + (((c[lo] + 1) % k) - c[lo]) * s
        opt = _optical_edge(k, spec.cube[d] if optical else None, c[lo])
        add_links(
            g, acc[lo[~opt]], acc[nb[~opt]], links["ici"], tier=ICI_TIER,
            count=spec.links_per_neighbor,
        )
        if opt.any():
            u, v = acc[lo[opt]], acc[nb[opt]]
            # The OCS serving this circuit: face position = the other coordinates within the cube;
            # a circuit's hop adds the OCS's own latency to the link's.
            other = np.delete(np.arange(len(dims)), d)
            cub = np.asarray(spec.cube, dtype=np.int64)[other]
            fpos = ((coords[lo[opt]][:, other] % cub) * _strides(cub)).sum(axis=1)
            circuit = replace(links["ocs"], latency_s=links["ocs"].latency_s + switches["ocs"].latency_s)
            add_links(g, u, v, circuit, tier=OCS_LINK_TIER, count=spec.links_per_neighbor, ocs=ocs_base[d] + fpos)
    set_routing(g, ROUTER, accel=acc, dims=dims, accelerator_transit=True)
    return g


def bisection_Bps(spec: Spec, links: Mapping[str, LinkClass]) -> float:
    """Bisection bandwidth between ranks < size/2 and the rest, per direction, bytes/s.

    Every accelerator is pinned to a half, so the min cut is the capacity of the edges between
    the halves. The first half is a rank prefix, so in each dimension ``d`` only the
    ``stride_d`` lines that share the prefix end's higher digits are split, each into an arc
    ``0..s-1`` and the rest: ``first mod stride_d`` of them hold ``p + 1`` first-half nodes and
    the others ``p``, where ``p`` is digit ``d`` of ``first = ceil(N/2)``. A split ring
    of ``k > 2`` nodes is crossed by 2 edges, ``(s-1, s)`` and the wraparound ``(k-1, 0)``; a
    2-node ring by its one edge. Each crossing edge is ``links_per_neighbor`` links of the ICI
    or OCS class, as it crosses a cube face or not. For even ``dims[-1] > 2`` and no cubes this
    is ``2 * (N / dims[-1]) * links_per_neighbor * B_ici`` (the classic torus bisection).
    """
    optical = spec.cube is not None
    require_parts("torus", links, roles_needed(spec)[0], "link")
    bw_ici = spec.links_per_neighbor * links["ici"].bandwidth_Bps
    bw_ocs = spec.links_per_neighbor * links["ocs"].bandwidth_Bps if optical else 0.0
    first = (spec.size + 1) // 2  # ranks < size/2
    total = 0.0
    for d, (k, stride) in enumerate(zip(spec.dims, _strides(spec.dims).tolist())):
        p, low = (first // stride) % k, first % stride
        cube = spec.cube[d] if optical else None
        for lines, s in ((low, p + 1), (stride - low, p)):
            if lines == 0 or not 0 < s < k:
                continue
            cut = [s - 1] if k == 2 else [s - 1, k - 1]  # edges (c, c+1 mod k) crossing the arc end
            opt = _optical_edge(k, cube, np.asarray(cut))
            total += lines * float(np.where(opt, bw_ocs, bw_ici).sum())
    return float(total)


def diameter_hops(spec: Spec) -> int:
    """Dimension-order hops, shortest way round each ring: ``sum(floor(d / 2))``."""
    return int(sum(k // 2 for k in spec.dims))


class TorusRouter(Router):
    """Dimension-order routing, shortest direction around each ring.

    Dimensions are corrected lowest first. When both directions are equally short (even ring,
    distance ``k/2``) the direction is an ECMP hash choice, so half-ring traffic uses both ways.
    Minimal: hop count = sum over dimensions of the ring distance.

    ``route`` writes link ids straight from a per-chip table of its ring links instead of
    looking up every hop of ``node_paths`` (torus paths are long: 40 hops on 16x32x32), and
    gives the same result.
    """

    name = ROUTER

    def __init__(self, fabric: Any, *, accel: np.ndarray, dims: np.ndarray, **structure: Any):
        super().__init__(fabric, accel=accel, dims=dims, **structure)
        self._accel = np.asarray(accel, dtype=np.int64)
        self._dims = np.asarray(dims, dtype=np.int64)
        self._strides = _strides(self._dims)
        self._local = np.full(fabric.n_nodes, -1, dtype=np.int64)
        self._local[self._accel] = np.arange(len(self._accel))
        self._ring_links: np.ndarray | None = None

    def _plan(self, src: np.ndarray, dst: np.ndarray, salt: int):
        """Per dimension: (stride, size, line base, start coordinate, direction, distance)."""
        ls, ld = self._local[src], self._local[dst]
        if np.any(ls < 0) or np.any(ld < 0):
            raise ValueError("torus router: src and dst must be accelerators of this torus")
        h = flow_hash(src, dst, salt)
        cur = ls.copy()
        plan = []
        for d in range(len(self._dims)):
            s, k = int(self._strides[d]), int(self._dims[d])
            cs, ct = (cur // s) % k, (ld // s) % k
            fwd = (ct - cs) % k
            bwd = k - fwd
            step = np.where(fwd < bwd, 1, -1)
            tie = fwd == bwd
            step[tie] = np.where(ecmp_choice(h[tie], 2, d) == 0, 1, -1)
            base = cur - cs * s
            plan.append((s, k, base, cs, step, np.minimum(fwd, bwd)))
            cur = base + ct * s
        return plan

    def node_paths(self, src: np.ndarray, dst: np.ndarray, salt: int) -> np.ndarray:
        """Node sequences (n, 1 + sum(dims // 2)), -1 padded."""
        src = np.asarray(src, dtype=np.int64).ravel()
        dst = np.asarray(dst, dtype=np.int64).ravel()
        plan = self._plan(src, dst, salt)
        n = len(src)
        width = 1 + int((self._dims // 2).sum())
        out = np.full((n, width), -1, dtype=np.int64)
        out[:, 0] = src
        flat = out.reshape(-1)
        # Flat index of each pair's next free slot; steps of one dimension are consecutive.
        slot = np.arange(n, dtype=np.int64) * width + 1
        for s, k, base, cs, step, dist in plan:
            for j in range(1, int(dist.max(initial=0)) + 1):
                m = dist >= j
                flat[slot[m] + (j - 1)] = self._accel[base[m] + ((cs[m] + step[m] * j) % k) * s]
            slot += dist
        return out

    def _ring_link_table(self) -> np.ndarray:
        """Directed link id from each chip along each dimension, (A, ndim, 2): [-1, +1]."""
        if self._ring_links is None:
            a = np.arange(len(self._accel), dtype=np.int64)
            table = np.empty((len(a), len(self._dims), 2), dtype=np.int64)
            for d, (s, k) in enumerate(zip(self._strides, self._dims)):
                c = (a // s) % k
                for side, step in enumerate((-1, 1)):
                    nb = a + (((c + step) % k) - c) * s
                    table[:, d, side] = self.fabric.link_ids(self._accel[a], self._accel[nb])
            self._ring_links = table
        return self._ring_links

    def route(self, src: np.ndarray, dst: np.ndarray, salt: int = 0) -> "Paths":
        """Paths as a link CSR, built from the ring-link table (same as ``node_paths``)."""
        from oassim.topology.fabric import Paths

        src = np.asarray(src, dtype=np.int64)
        dst = np.asarray(dst, dtype=np.int64)
        if src.shape != dst.shape:
            raise ValueError("src and dst must have the same shape")
        src, dst = src.ravel(), dst.ravel()
        plan = self._plan(src, dst, salt)
        table = self._ring_link_table()
        ptr = np.zeros(len(src) + 1, dtype=np.int64)
        np.cumsum(sum(p[5] for p in plan), out=ptr[1:])
        links = np.empty(ptr[-1], dtype=np.int64)
        slot = ptr[:-1].copy()
        for d, (s, k, base, cs, step, dist) in enumerate(plan):
            side = (step > 0).astype(np.int64)
            for j in range(int(dist.max(initial=0))):
                m = dist > j
                here = base[m] + ((cs[m] + step[m] * j) % k) * s  # local index before step j+1
                links[slot[m] + j] = table[here, d, side[m]]
            slot += dist
        return Paths(ptr, links)
