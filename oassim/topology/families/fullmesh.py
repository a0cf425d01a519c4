"""n-dimensional full mesh of accelerators (Huawei UB-Mesh "nD-FullMesh" style).

What is modelled: accelerators on a mixed-radix grid ``dims`` (rank = coordinate in mixed radix
with ``dims[0]`` fastest). Two accelerators that differ in exactly one coordinate ``d`` are
joined directly by ``links_per_dim[d]`` parallel links; there are no switches, and accelerators
relay traffic for each other. UB-Mesh (docs/sources.md B1, [S42]) builds an 8 x 8 2D full mesh in a
rack and a 4 x 4 2D full mesh of racks on top (``dims=[8, 8, 4, 4]``); an 8-GPU xGMI platform
(AMD MI300X, 7 links per GPU [S2][S31]) is the 1D case ``dims=[8]``.

Why this shape: the graph is a Hamming graph, so the shortest path between two accelerators
takes one direct hop per differing coordinate. Routing in dimension order (lowest first) is
therefore minimal and needs no tables, and every link of a dimension carries the same
all-to-all load by symmetry.

``pod``: accelerators get ``pod = rank // (dims[0] * dims[1])``, i.e. the index of the
coordinates beyond the first two dimensions; UB-Mesh puts those first two dimensions in one
rack, so ``pod`` is the rack. With one or two dimensions everything is pod 0.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Mapping

import numpy as np
from pydantic import Field, StrictInt, model_validator

from oassim.specio import SpecModel
from oassim.topology.graph import add_links, add_nodes, new_graph, set_routing
from oassim.topology.parts import LinkClass, SwitchClass
from oassim.topology.routing import Router

if TYPE_CHECKING:
    import networkx as nx

__all__ = [
    "Spec",
    "LINK_ROLES",
    "SWITCH_ROLES",
    "ROUTER",
    "MAX_DIMS",
    "build",
    "bisection_Bps",
    "diameter_hops",
    "roles_needed",
    "FullMeshRouter",
]

MAX_DIMS = 4
# Roles must be static; a spec with n dims needs "dim0".."dim{n-1}".
LINK_ROLES: tuple[str, ...] = tuple(f"dim{d}" for d in range(MAX_DIMS))
SWITCH_ROLES: tuple[str, ...] = ()
ROUTER = "fullmesh"


class Spec(SpecModel):
    """Geometry of an nD full mesh.

    Parameters
    ----------
    dims : list of int
        Accelerators along each dimension (1 to 4 entries, each >= 2), ``dims[0]`` fastest.
    links_per_dim : list of int
        Parallel links between two accelerators differing only in that dimension's coordinate
        (same length as ``dims``, each >= 1).
    """

    dims: Annotated[list[StrictInt], Field(min_length=1, max_length=MAX_DIMS)]
    links_per_dim: list[StrictInt]

    @model_validator(mode="after")
    def _check(self) -> "Spec":
        if any(k < 2 for k in self.dims):
            raise ValueError(f"every entry of dims must be >= 2, got {self.dims}")
        if len(self.links_per_dim) != len(self.dims):
            raise ValueError(
                f"links_per_dim has {len(self.links_per_dim)} entries but dims has "
                f"{len(self.dims)}: "
                "give one link count per dimension"
            )
        if any(c < 1 for c in self.links_per_dim):
            raise ValueError(f"every entry of links_per_dim must be >= 1, got {self.links_per_dim}")
        return self

    @property
    def size(self) -> int:
        """Accelerators in the mesh."""
        return int(np.prod(self.dims))


def _strides(dims: list[int] | np.ndarray) -> np.ndarray:
    """Rank stride of each dimension (dims[0] fastest), shape (n,)."""
    return np.concatenate([[1], np.cumprod(dims)[:-1]]).astype(np.int64)


def roles_needed(spec: Spec) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(link roles, switch roles) this geometry uses: ``dim0..dim{n-1}``, no switches."""
    return tuple(f"dim{d}" for d in range(len(spec.dims))), ()


def _roles(spec: Spec) -> list[str]:
    return list(roles_needed(spec)[0])


def _require(links: Mapping[str, LinkClass], spec: Spec) -> None:
    missing = [r for r in _roles(spec) if r not in links]
    if missing:
        raise ValueError(
            f"fullmesh: missing link part(s) for role(s) {missing}; "
            f"a {len(spec.dims)}-D mesh needs {_roles(spec)}"
        )


def links_built(spec: Spec, switches: Mapping[str, SwitchClass] | None = None) -> int:
    """Distinct links (graph edges) one build adds: each pair along each dimension once."""
    return sum(spec.size * (k - 1) // 2 for k in spec.dims)


def build(
    spec: Spec,
    links: Mapping[str, LinkClass],
    switches: Mapping[str, SwitchClass],
    *,
    g: nx.Graph | None = None,
    endpoints: np.ndarray | None = None,
    accel: Mapping[str, Any] | None = None,
    name: str = "fullmesh",
) -> nx.Graph:
    """Build an nD full mesh into ``g`` and return it.

    Parameters
    ----------
    spec : Spec
        Geometry.
    links : mapping
        ``{"dim0": LinkClass, ...}``, one per dimension used.
    switches : mapping
        Unused (no switches); may be empty.
    g : networkx.Graph, optional
        Graph to extend (nodes are appended); a new one when None.
    endpoints : None
        Must be None: the mesh creates its own accelerators.
    accel : mapping, optional
        Extra attributes set on every accelerator node.
    name : str
        Graph name when a new graph is made.

    Returns
    -------
    networkx.Graph
        Edges of dimension ``d`` have tier ``"mesh-dim{d}"``. Routing recorded as router
        ``"fullmesh"`` with structure keys ``accel`` (size,) node ids by local rank, ``dims``
        (n,) and ``accelerator_transit=True``.
    """
    if endpoints is not None:
        raise ValueError(
            "fullmesh: a supernode creates its own accelerators; endpoints must be None"
        )
    _require(links, spec)
    if g is None:
        g = new_graph(name, "fullmesh")
    n = spec.size
    local = np.arange(n, dtype=np.int64)
    rack = spec.dims[0] * spec.dims[1] if len(spec.dims) >= 2 else n
    acc_attrs = {**dict(accel or {}), "domain": 0, "rail": local, "pod": local // rack}
    acc_attrs.pop("rank", None)
    acc = add_nodes(g, n, "accelerator", "accelerator", **acc_attrs)
    strides = _strides(spec.dims)
    for d, k in enumerate(spec.dims):
        c = (local // strides[d]) % k
        # Each node links to the nodes with a larger coordinate d (each pair once).
        for delta in range(1, k):
            lo = local[c + delta < k]
            hi = lo + delta * strides[d]
            add_links(
                g, acc[lo], acc[hi], links[f"dim{d}"], tier=f"mesh-dim{d}",
                count=spec.links_per_dim[d],
            )
    dims = np.asarray(spec.dims, dtype=np.int64)
    set_routing(g, ROUTER, accel=acc, dims=dims, accelerator_transit=True)
    return g


def _prefix_line_split(dims: list[int], first: int) -> list[tuple[int, int, int, int]]:
    """How the rank prefix ``[0, first)`` cuts the lines of each dimension.

    A line of dimension ``d`` fixes every other coordinate. Lines whose higher digits are below
    those of ``first`` lie wholly in the prefix, lines above wholly outside; only the
    ``stride_d`` lines sharing ``first``'s higher digits are split. Of those, ``first mod
    stride_d`` lines hold ``p + 1`` prefix nodes and the rest ``p``, where ``p`` is ``first``'s
    digit ``d``. Returns ``(lines_with_p_plus_1, p + 1, lines_with_p, p)`` per dimension.
    """
    out = []
    for d, s in enumerate(_strides(dims).tolist()):
        p = (first // s) % dims[d]
        low = first % s
        out.append((low, p + 1, s - low, p))
    return out


def bisection_Bps(spec: Spec, links: Mapping[str, LinkClass]) -> float:
    """Bisection bandwidth between ranks < size/2 and the rest, per direction, bytes/s.

    Every accelerator is pinned to a half, so the min cut is the capacity of the links between
    the halves. Links of dimension ``d`` join the nodes of one line (a ``dims[d]``-clique); a
    line with ``s`` first-half nodes has ``s * (dims[d] - s)`` crossing pairs, and
    :func:`_prefix_line_split` says how many lines have which ``s``. For an even last
    dimension ``k`` this is ``(N / k) * (k/2)^2 * links_per_dim[-1] * B`` and no other
    dimension is cut.
    """
    _require(links, spec)
    first = (spec.size + 1) // 2  # ranks < size/2
    total = 0.0
    for d, (n1, s1, n0, s0) in enumerate(_prefix_line_split(spec.dims, first)):
        k = spec.dims[d]
        pairs = n1 * s1 * (k - s1) + n0 * s0 * (k - s0)
        total += pairs * spec.links_per_dim[d] * links[f"dim{d}"].bandwidth_Bps
    return float(total)


def diameter_hops(spec: Spec) -> int:
    """One direct hop per differing coordinate: at most ``len(dims)``."""
    return len(spec.dims)


def _compact(nodes: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Move the kept entries of each row to the front, -1 after them (rows keep their order)."""
    out = np.full_like(nodes, -1)
    r, c = np.nonzero(keep)
    out[r, np.cumsum(keep, axis=1)[r, c] - 1] = nodes[r, c]
    return out


class FullMeshRouter(Router):
    """Dimension-order routing: fix coordinates lowest dimension first, one direct hop each.

    Minimal (hop count = Hamming distance); deterministic, so ``salt`` is unused: a full mesh
    has exactly one shortest path per dimension order and the order is fixed.
    """

    name = ROUTER

    def __init__(self, fabric: Any, *, accel: np.ndarray, dims: np.ndarray, **structure: Any):
        super().__init__(fabric, accel=accel, dims=dims, **structure)
        self._accel = np.asarray(accel, dtype=np.int64)
        self._dims = np.asarray(dims, dtype=np.int64)
        self._strides = _strides(self._dims)
        self._local = np.full(fabric.n_nodes, -1, dtype=np.int64)
        self._local[self._accel] = np.arange(len(self._accel))

    def node_paths(self, src: np.ndarray, dst: np.ndarray, salt: int) -> np.ndarray:
        """Node sequences (n, len(dims) + 1), -1 padded."""
        src = np.asarray(src, dtype=np.int64).ravel()
        dst = np.asarray(dst, dtype=np.int64).ravel()
        ls, ld = self._local[src], self._local[dst]
        if np.any(ls < 0) or np.any(ld < 0):
            raise ValueError("fullmesh router: src and dst must be accelerators of this mesh")
        nd = len(self._dims)
        nodes = np.empty((len(src), nd + 1), dtype=np.int64)
        keep = np.ones((len(src), nd + 1), dtype=bool)
        nodes[:, 0] = src
        cur = ls.copy()
        for d in range(nd):
            s, k = self._strides[d], self._dims[d]
            cc, ct = (cur // s) % k, (ld // s) % k
            cur += (ct - cc) * s
            nodes[:, d + 1] = self._accel[cur]
            keep[:, d + 1] = cc != ct
        return _compact(nodes, keep)
