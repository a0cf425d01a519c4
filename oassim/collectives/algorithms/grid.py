"""Direct-connect grids (tori, full meshes): where a group lies on the grid, and the
dimension-ordered schedule the topology-aware algorithms of those fabrics share.

What is modelled. A torus or n-D full mesh gives every accelerator direct links in each
dimension and no switch, so a collective is only as fast as the links it drives at once. A
group that is a sub-grid (a Cartesian product of coordinate sets, one per dimension: a row
of a mesh, a line or plane of a torus, a whole domain) runs a reduce-scatter as a sequence
of one-dimension reduce-scatters, one per dimension it spans, and an all-gather as the
reverse (the dimension-ordered / "2D-ring" scheme of TPU collectives, Ying et al., "Image
classification at supercomputer scale", arXiv:1811.06992, 2018, and the hierarchical
all-path collectives of UB-Mesh, Liao et al., arXiv:2503.20377, 2025, calibration source S42).
To drive every dimension's links at once, the data is split into A parts for a group
spanning A dimensions; part ``p`` visits the dimensions in the rotated order
``p, p+1, ..., p+A-1`` (mod A), so at every stage each dimension carries exactly one part.
On equal dimensions of m ranks this is bandwidth-optimal: stage ``s`` moves
``(m-1)/m * S/A / m^s`` per rank over the links of one dimension, and
``sum_s (m-1)/m^(s+1) = (n-1)/n`` for ``n = m^A``, so a rank sends ``(n-1)/n * S`` over all
its links at once, the bound of the most loaded endpoint. How one dimension's line exchanges
its data (ring both ways on a torus, direct to every peer on a full mesh) is the
algorithm's ``exchange``.

Groups that span several scale-up domains must hold the same sub-grid in each (rail-aligned):
the grid stages run inside every domain at once, and the ``S/n_local`` each rank then holds is
all-reduced (reduce-scattered, all-gathered) by a ring across domains on the aligned ranks,
as the hierarchical algorithm does (the only traffic on the scale-out fabric).

Unequal dimensions (a 8 x 2 sub-mesh, a 16 x 16 x 2 slab of a torus) load their links
unequally under equal parts, so the parts' data fractions are chosen to balance the busiest
dimension (:func:`part_fractions`, from each dimension's ``line_cost``: its rate and rank
count); equal parts on symmetric grids.

The stages are pipelined chunk by chunk, as the hierarchical ``_pipelined`` variants are: a
chunk of part ``p`` enters its second dimension as soon as its first is done, so each
dimension's links carry every stage's traffic of every part at once. The reduce-scatter (and
the all-gather) is one phase holding every stage's flows of every part and group, each with
its bytes of all its rounds, and ``steps`` = the rounds a chunk crosses in turn (the sum over
the dimensions it visits). On symmetric grids this costs what the stages in turn would (each
dimension carries one part per stage); on unequal ones it lets a dimension that finishes its
own part early work on the others'. The all-gather phase has the reduce-scatter's flows and
bytes, so the engine's phase cache costs an all-reduce's two halves once.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from typing import Callable

import numpy as np

from oassim.collectives.algorithms.base import Algorithm
from oassim.collectives.algorithms.ring import ring_phases
from oassim.collectives.caps import FabricCaps
from oassim.collectives.ops import CollectiveRequest
from oassim.collectives.phases import Phase

__all__ = ["GridLayout", "grid_layout", "part_fractions", "dimension_ordered_phases", "Exchange", "DimensionOrdered"]

_AXIS_NAMES = "xyzw"

# One dimension's line exchange: lines (X, m) of ranks and the per-rank data size (the
# reduce-scatter input, the all-gather output), bytes -> (src, dst, bytes per flow per round,
# rounds).
Exchange = Callable[[np.ndarray, float], tuple[np.ndarray, np.ndarray, np.ndarray, int]]


@dataclass(frozen=True)
class GridLayout:
    """Groups arranged on their sub-grid.

    Attributes
    ----------
    tensor : ndarray of int64, shape (G, K, m_0, ..., m_{A-1})
        ``tensor[g, k]`` is group ``g``'s sub-grid in its ``k``-th domain (by domain id); equal
        trailing indices are the same grid position in every domain (rail-aligned).
    axes : tuple of int
        Grid dimension of each of the A trailing axes (the dimensions the group spans, m > 1).
    closed : tuple of bool
        Each axis covers its whole dimension (on a torus: its ring closes on the wraparound).
    link_Bps : tuple of float
        Capacity between two neighbours along each axis, bytes/s per direction.
    """

    tensor: np.ndarray
    axes: tuple[int, ...]
    closed: tuple[bool, ...]
    link_Bps: tuple[float, ...]

    @property
    def shape(self) -> tuple[int, ...]:
        """Ranks along each axis, (m_0, ..., m_{A-1})."""
        return tuple(int(m) for m in self.tensor.shape[2:])

    @property
    def domains(self) -> int:
        """Domains K the group spans."""
        return int(self.tensor.shape[1])


def _dense_index(v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row of ``v`` (G, n): the index of each entry among the row's distinct values
    (ascending), the number of distinct values per row, and the sorted values with the mask
    of first occurrences."""
    order = np.argsort(v, axis=1, kind="stable")
    sv = np.take_along_axis(v, order, axis=1)
    first = np.ones(sv.shape, dtype=bool)
    first[:, 1:] = sv[:, 1:] != sv[:, :-1]
    idx = np.empty_like(sv)
    np.put_along_axis(idx, order, np.cumsum(first, axis=1) - 1, axis=1)
    return idx, first.sum(axis=1), sv[first]


def _cyclic_positions(c: np.ndarray, values: np.ndarray, k: int) -> np.ndarray | None:
    """Positions along a cyclic run of each coordinate of ``c`` (G, n), given each row's m
    distinct coordinates ``values`` (G, m) sorted, on a ring of k; None if some row's
    coordinates are not one contiguous run around the ring."""
    G, m = values.shape
    if m == k:
        return c.copy()
    gaps = np.concatenate([np.diff(values, axis=1), (values[:, :1] + k - values[:, -1:])], axis=1)
    big = gaps > 1
    if not np.all(big.sum(axis=1) == 1):
        return None
    start = values[np.arange(G), (np.argmax(big, axis=1) + 1) % m]
    return (c - start[:, None]) % k


def grid_layout(groups: np.ndarray, caps: FabricCaps, family: str) -> GridLayout | str:
    """Where ``groups`` lie on the ``family`` grid of the scale-up domain, or why they do not.

    Parameters
    ----------
    groups : ndarray of int64, shape (G, n)
    caps : FabricCaps
    family : {"torus", "fullmesh"}
        On a torus each dimension's coordinates must be one contiguous run around the ring (the
        ring of the run uses the links between its members); on a full mesh any set will do
        (every dimension is a clique).

    Returns
    -------
    GridLayout or str
        Every group must have the same shape (ranks per domain and per dimension).
    """
    if caps.grid is None or caps.grid.family != family:
        have = caps.grid.family if caps.grid is not None else "not a direct-connect grid"
        return f"the scale-up domain must be a {family} (this one is {have})"
    g = np.asarray(groups, dtype=np.int64)
    G, n = g.shape
    dims = np.asarray(caps.grid.dims, dtype=np.int64)
    strides = np.concatenate([[1], np.cumprod(dims)[:-1]])
    coords = (caps.local_of_rank[g][..., None] // strides) % dims  # (G, n, D)
    flat, counts, _ = _dense_index(caps.domain_of_rank[g])
    if not np.all(counts == counts[0]):
        return "the groups span different numbers of domains"
    K = int(counts[0])
    axes, closed, shape = [], [], []
    for d, k in enumerate(dims.tolist()):
        c = coords[..., d]
        idx, m, values = _dense_index(c)
        if not np.all(m == m[0]):
            return f"the groups span different numbers of coordinates in dimension {_AXIS_NAMES[d]}"
        m0 = int(m[0])
        if m0 == 1:
            continue
        if family == "torus":
            idx = _cyclic_positions(c, values.reshape(G, m0), k)
            if idx is None:
                return (f"the group's coordinates in torus dimension {_AXIS_NAMES[d]} are not one contiguous "
                        "run around the ring (no ring of neighbour links joins them)")
        flat = flat * m0 + idx
        axes.append(d)
        closed.append(m0 == k)
        shape.append(m0)
    if K * int(np.prod(shape, dtype=np.int64)) != n or not np.array_equal(
            np.sort(flat, axis=1), np.broadcast_to(np.arange(n), (G, n))):
        return (f"the group's ranks are not a whole sub-grid ({'x'.join(map(str, shape)) or '1'} positions "
                f"in each of {K} domain(s) for {n} ranks)")
    tensor = np.empty((G, n), dtype=np.int64)
    np.put_along_axis(tensor, flat, g, axis=1)
    return GridLayout(tensor.reshape(G, K, *shape), tuple(axes), tuple(closed),
                      tuple(caps.grid.link_Bps[d] for d in axes))


def part_fractions(W: np.ndarray) -> np.ndarray:
    """Data fractions of the parts that balance the dimensions' links.

    Parameters
    ----------
    W : ndarray of float64, shape (A, A)
        ``W[p, a]``: time the links of axis ``a`` spend on part ``p`` per byte of the part.

    Returns
    -------
    ndarray of float64, shape (A,)
        Fractions ``f`` (>= 0, summing to 1) minimising ``max_a sum_p f_p W[p, a]``, the
        busiest dimension's load. Exact: a piecewise-linear convex minimum lies on a vertex of
        the arrangement of ties between axes (``L_a = L_b``) and simplex faces (``f_p = 0``),
        and there are at most C(10, 3) = 120 of them for 4 dimensions. Equal parts when they
        are as good (every symmetric grid).
    """
    A = W.shape[0]
    best = np.full(A, 1.0 / A)
    if A == 1:
        return best
    W = W / W.max()  # the ties' planes on the scale of the faces' (conditioning)
    best_load = float((best @ W).max())
    planes = [W[:, a] - W[:, b] for a, b in combinations(range(A), 2)] + list(np.eye(A))
    rhs = np.zeros(A)
    rhs[-1] = 1.0
    for pick in combinations(planes, A - 1):
        M = np.vstack([*pick, np.ones(A)])
        if abs(np.linalg.det(M)) < 1e-12:
            continue
        f = np.linalg.solve(M, rhs)
        if np.any(f < -1e-12):
            continue
        f = np.clip(f, 0.0, None) / np.clip(f, 0.0, None).sum()
        load = float((f @ W).max())
        if load < best_load * (1 - 1e-9):
            best, best_load = f, load
    return best


def dimension_ordered_phases(op: str, layout: GridLayout, size: float, exchange: Exchange,
                             line_cost: Callable[[int, bool, float], float], name: str) -> list[Phase]:
    """Phases of a dimension-ordered ``op`` on the sub-grids of ``layout``.

    Parameters
    ----------
    op : {"all_reduce", "reduce_scatter", "all_gather"}
    layout : GridLayout
    size : float
        nccl-tests size, bytes.
    exchange : Exchange
        One dimension's line reduce-scatter (its all-gather has the same flows).
    line_cost : callable (m, closed, link_Bps) -> float
        Seconds per byte of per-rank data that ``exchange`` takes on a line of m ranks (to
        balance the parts, :func:`part_fractions`).
    name : str
        Algorithm name, for labels.
    """
    t = layout.tensor
    G, K = t.shape[:2]
    shape = layout.shape
    A = len(shape)
    inner = t.reshape(G * K, *shape)
    n_local = int(np.prod(shape, dtype=np.int64))
    order = [[(p + s) % A for s in range(A)] for p in range(A)]  # axes part p visits
    cost = [line_cost(m, c, b) for m, c, b in zip(shape, layout.closed, layout.link_Bps)]
    W = np.zeros((A, A))
    for p in range(A):
        shrink = 1.0
        for ax in order[p]:
            W[p, ax] = cost[ax] / shrink
            shrink *= shape[ax]
    frac = part_fractions(W)
    src, dst, wire = [], [], []
    steps = [0] * A  # a chunk of part p crosses the rounds of each of its stages in turn
    for s in range(A):
        for p in range(A):
            ax = order[p][s]
            data = float(size) * frac[p] / float(np.prod([shape[a] for a in order[p][:s]]))
            if data <= 0:
                continue
            lines = np.moveaxis(inner, ax + 1, -1).reshape(-1, shape[ax])
            a, b, x, r = exchange(lines, data)
            src.append(a)
            dst.append(b)
            wire.append(x * r)
            steps[p] += r
    dims = ",".join(_AXIS_NAMES[d] for d in layout.axes)
    parts = "/".join(f"{f:.2f}" for f in frac)
    phases: dict[str, list[Phase]] = {"reduce_scatter": [], "all_gather": []}
    if A:
        for o in phases:
            phases[o] = [Phase(np.concatenate(src), np.concatenate(dst), np.concatenate(wire), steps=max(steps),
                               label=f"{name} {o.replace('_', '-')}: dims {dims} in rotated order, parts {parts}, "
                               "stages pipelined")]
    across = np.moveaxis(t, 1, -1).reshape(-1, K)

    def outer(o: str) -> list[Phase]:
        return [_relabel(p, f"{p.label} [across domains]") for p in ring_phases(o, across, float(size) / n_local)]

    if op == "all_reduce":
        return phases["reduce_scatter"] + outer("all_reduce") + phases["all_gather"]
    if op == "reduce_scatter":
        return phases["reduce_scatter"] + outer("reduce_scatter")
    if op == "all_gather":
        return outer("all_gather") + phases["all_gather"]
    raise ValueError(f"dimension-ordered collectives do not implement {op}")


def _relabel(p: Phase, label: str) -> Phase:
    return Phase(p.src, p.dst, p.size_bytes, p.repeat, p.steps, p.in_network, label)


class DimensionOrdered(Algorithm):
    """Dimension-ordered reduce-scatter / all-gather / all-reduce on a direct-connect grid.

    Parameters
    ----------
    name : str
        Registry key.
    family : str
        The grid family it runs on (also its ``families``).
    exchange : Exchange
        One dimension's line reduce-scatter.
    line_cost : callable (m, closed, link_Bps) -> float
        Seconds per byte of per-rank data ``exchange`` takes on a line of m ranks.
    summary : str
    """

    ops = frozenset({"all_reduce", "reduce_scatter", "all_gather"})

    def __init__(self, name: str, family: str, exchange: Exchange,
                 line_cost: Callable[[int, bool, float], float], summary: str):
        self.name = name  # type: ignore[misc]
        self.family = family
        self.families = frozenset({family})  # type: ignore[misc]
        self.exchange = exchange
        self.line_cost = line_cost
        self.summary = summary  # type: ignore[misc]

    def __repr__(self) -> str:
        return f"DimensionOrdered({self.name!r}, family={self.family!r})"

    def unsupported(self, req: CollectiveRequest, caps: FabricCaps) -> str | None:
        why = super().unsupported(req, caps)
        if why:
            return why
        lay = grid_layout(req.groups, caps, self.family)
        if isinstance(lay, str):
            return lay
        if not lay.axes:
            return "the group has one rank per domain: no grid dimension to run on (the flat algorithms apply)"
        return None

    def phases(self, req: CollectiveRequest, caps: FabricCaps) -> list[Phase]:
        lay = grid_layout(req.groups, caps, self.family)
        if isinstance(lay, str):
            raise ValueError(lay)
        if req.group_size < 2:
            return []
        return dimension_ordered_phases(req.op, lay, req.size_bytes, self.exchange, self.line_cost, self.name)
