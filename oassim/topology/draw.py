"""Pictures of a cluster: one supernode in detail beside the whole cluster at group level.

A 16k-accelerator cluster has about 40k nodes and 350k edges; drawn node by node it is a grey
blur that takes minutes. ``draw_cluster`` therefore draws two panels of a few hundred marks each:

- left, supernode 0 node by node: accelerators, its switches layered by tier (highest on top),
  OCS, NICs. A supernode too large to read (a 4,096-chip torus, a 384-NPU Clos) is shown by its
  first block (cube, boards, first ranks), and the panel title says so. Mesh and torus families
  have no switches, so their accelerators sit on their grid coordinates.
- right, the whole cluster aggregated by :func:`group_fabric` into at most ``max_groups``
  boxes of supernodes plus scale-out switch groups keyed by (tier, pod, plane), one line per
  pair of groups with width proportional to the bandwidth between them.

Edges are coloured by medium (copper, optical, pcb, backplane): the optics dominate power and
cost of a design and must stand out. Only matplotlib's object API (``Figure`` on the Agg
canvas) is used, never pyplot's global state, so drawing is safe in notebooks and threads.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import networkx as nx
import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from oassim.errors import SpecError
from oassim.topology.fabric import Fabric
from oassim.topology.graph import NODE_KINDS
from oassim.topology.parts import MEDIA

__all__ = ["SUPERNODES", "GroupGraph", "group_fabric", "draw_cluster"]

SUPERNODES = "supernodes"  # layer name of the groups of scale-up domains
MAX_LAYERED_ACCELERATORS = 96  # a switched supernode up to this size is drawn whole (NVL72 fits)
BLOCK_ACCELERATORS = 64  # otherwise: about this many accelerators (one cube, a few boards)
MEDIUM_COLOR = {"copper": "#d95f02", "optical": "#1f78b4", "pcb": "#7f7f7f", "backplane": "#6a3d9a"}
# marker, colour, area (points^2) of each node kind in the detail panel
KIND_STYLE = {"accelerator": ("o", "#4c72b0", 60), "switch": ("s", "#2ca02c", 70),
              "nic": ("^", "#8c564b", 28), "ocs": ("D", "#d62728", 40)}


@dataclass(frozen=True, eq=False)
class GroupGraph:
    """The cluster aggregated into groups of nodes, and the bandwidth between the groups.

    Attributes
    ----------
    node_group : ndarray of int64, shape (n_nodes,)
        Group id of every fabric node; every node is in exactly one group.
    layer : tuple of str, length n_groups
        :data:`SUPERNODES` for a group of scale-up domains (with their NICs), else the tier of
        the scale-out switches in the group.
    label : tuple of str, length n_groups
        Short name, e.g. ``"SN 0-31"`` or ``"leaf pod 3"``.
    n_members, n_accelerators : ndarray of int64, shape (n_groups,)
        Nodes and accelerators in each group.
    n_domains : ndarray of int64, shape (n_groups,)
        Scale-up domains in each group (0 for switch groups).
    edge_u, edge_v : ndarray of int64, shape (n_edges,)
        Group ids joined by each aggregated edge, ``edge_u < edge_v``.
    edge_bw_Bps : ndarray of float64, shape (n_edges,)
        Total per-direction bandwidth of the links between the two groups, bytes/s.
    edge_links : ndarray of int64, shape (n_edges,)
        Physical links between the two groups.
    edge_medium : tuple of str, length n_edges
        Medium carrying most of that bandwidth.
    """

    node_group: np.ndarray
    layer: tuple[str, ...]
    label: tuple[str, ...]
    n_members: np.ndarray
    n_accelerators: np.ndarray
    n_domains: np.ndarray
    edge_u: np.ndarray
    edge_v: np.ndarray
    edge_bw_Bps: np.ndarray
    edge_links: np.ndarray
    edge_medium: tuple[str, ...]

    @property
    def n_groups(self) -> int:
        return len(self.label)


def _span(name: str, values: np.ndarray) -> str:
    v = np.unique(values[values >= 0])
    if len(v) == 0:
        return ""
    return f" {name} {v[0]}" if len(v) == 1 else f" {name}s {v[0]}-{v[-1]}"


def group_fabric(fabric: Fabric, max_groups: int = 64) -> GroupGraph:
    """Aggregate a fabric into supernode groups and scale-out switch groups.

    Nodes of scale-up domain ``d`` (accelerators, scale-up switches, OCS, NICs) join supernode
    group ``d // ceil(D / max_groups)``: consecutive domains share a box, at most ``max_groups``
    boxes. Every other node is grouped by (tier, pod, plane); a tier with more than
    ``max_groups`` such keys has consecutive keys (sorted by plane, then pod) binned together.
    Links inside a group are dropped; links between two groups are summed.

    Parameters
    ----------
    fabric : Fabric
        The frozen cluster.
    max_groups : int
        Most groups per layer (the supernode layer and each switch tier), >= 1. The total is at
        most ``max_groups * (1 + number of tiers of nodes outside any domain)``.

    Returns
    -------
    GroupGraph
    """
    if max_groups < 1:
        raise ValueError(f"max_groups must be >= 1, got {max_groups}")
    dom = fabric.node_domain.astype(np.int64)
    node_group = np.full(fabric.n_nodes, -1, dtype=np.int64)
    layer: list[str] = []
    label: list[str] = []
    in_dom = dom >= 0
    if in_dom.any():
        n_dom = int(dom.max()) + 1
        per = -(-n_dom // max_groups)
        node_group[in_dom] = dom[in_dom] // per
        for i in range(-(-n_dom // per)):
            lo, hi = i * per, min((i + 1) * per, n_dom) - 1
            label.append(f"SN {lo}" if lo == hi else f"SN {lo}-{hi}")
            layer.append(SUPERNODES)
    rest = np.flatnonzero(~in_dom)
    tier_codes = fabric.node_tier[rest]
    _, first = np.unique(tier_codes, return_index=True)
    for t in tier_codes[np.sort(first)]:  # tiers in order of first appearance
        idx = rest[tier_codes == t]
        pod, plane = fabric.node_pod[idx].astype(np.int64), fabric.node_plane[idx].astype(np.int64)
        width = int(pod.max()) + 2
        keys, inv = np.unique((plane + 1) * width + pod + 1, return_inverse=True)
        per = -(-len(keys) // max_groups)
        node_group[idx] = len(label) + inv.ravel() // per
        name = fabric.tier_names[int(t)]
        many_planes = len(np.unique(plane)) > 1
        for i in range(-(-len(keys) // per)):
            k = keys[i * per : (i + 1) * per]
            label.append(name + _span("pod", k % width - 1) + (_span("plane", k // width - 1) if many_planes else ""))
            layer.append(name)
    G = len(label)
    one_node = np.unique(dom[in_dom], return_index=True)[1]  # one node of each domain
    src, dst = node_group[fabric.link_src[0::2]], node_group[fabric.link_dst[0::2]]
    cross = src != dst  # each undirected edge once: the even directed links
    keys, inv = np.unique(np.minimum(src, dst)[cross] * G + np.maximum(src, dst)[cross], return_inverse=True)
    inv = inv.ravel()
    bw = fabric.link_bw[0::2][cross]
    by_medium = np.zeros((len(keys), len(MEDIA)))
    np.add.at(by_medium, (inv, fabric.link_medium[0::2][cross]), bw)
    return GroupGraph(
        node_group=node_group,
        layer=tuple(layer),
        label=tuple(label),
        n_members=np.bincount(node_group, minlength=G),
        n_accelerators=np.bincount(node_group[fabric.kind_mask("accelerator")], minlength=G),
        n_domains=np.bincount(node_group[in_dom][one_node], minlength=G),
        edge_u=keys // G,
        edge_v=keys % G,
        edge_bw_Bps=np.bincount(inv, weights=bw, minlength=len(keys)),
        edge_links=np.bincount(inv, weights=fabric.link_count[0::2][cross], minlength=len(keys)).astype(np.int64),
        edge_medium=tuple(MEDIA[i] for i in by_medium.argmax(axis=1)),
    )


def _fmt_Bps(x: float) -> str:
    for unit, scale in (("PB/s", 1e15), ("TB/s", 1e12), ("GB/s", 1e9)):
        if x >= scale:
            return f"{x / scale:,.1f} {unit}"
    return f"{x / 1e6:,.1f} MB/s"


@dataclass
class _Detail:
    """What the left panel draws: positions, edges as polylines, row labels, title note."""

    pos: dict[int, tuple[float, float]] = field(default_factory=dict)
    lines: list[np.ndarray] = field(default_factory=list)
    media: list[str] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)
    rows: list[tuple[float, float, str]] = field(default_factory=list)  # x, y, text (right-aligned)
    title: str = ""

    def edge(self, line: np.ndarray, e: dict) -> None:
        self.lines.append(line)
        self.media.append(e["medium"])
        self.counts.append(int(e.get("count", 1)))


def _arc(p: np.ndarray, q: np.ndarray, bend: float) -> np.ndarray:
    """Quadratic Bezier from p to q bulging sideways by ``bend`` x length, as 12 points."""
    d = q - p
    ctrl = (p + q) / 2 + bend * np.array([-d[1], d[0]])
    t = np.linspace(0, 1, 12)[:, None]
    return (1 - t) ** 2 * p + 2 * (1 - t) * t * ctrl + t**2 * q


def _describe(g: nx.Graph, nodes: list[int], total: int) -> str:
    """``"18 x nvswitch-gen4"`` (or ``"28 of 336 x ..."``) for one row of the detail panel."""
    d = g.nodes[nodes[0]]
    what = d.get("spec") or d["tier"]
    if d["kind"] == "nic":
        what = f"NIC {d['port_rate_Gbps']:g} Gb/s" if d.get("port_rate_Gbps") else "NIC"
    elif d["kind"] == "switch":
        what = f"{what}\n({d['tier']})"
    elif d["kind"] == "accelerator":
        up = sum(int(e.get("count", 1)) for v, e in g[nodes[0]].items() if g.nodes[v]["kind"] == "switch")
        what = f"{what}\n({up} links to switches each)"
    return (f"{len(nodes)} of {total}" if len(nodes) < total else f"{len(nodes)}") + f" x {what}"


def _layered(g: nx.Graph, fabric: Fabric, acc: np.ndarray, members: set[int]) -> _Detail:
    """Switched supernode: switches by tier on top, accelerators, NICs at the bottom."""
    level = {int(a): 0 for a in acc}  # hops from an accelerator through this domain's switches
    frontier, hops = list(level), 0
    while frontier:  # breadth-first: the whole frontier is ``hops`` away
        hops += 1
        nxt = {v for u in frontier for v in g[u] if v not in level and v in members and g.nodes[v]["kind"] == "switch"}
        level.update(dict.fromkeys(nxt, hops))
        frontier = list(nxt)
    tier_level: dict[str, int] = {}
    for v, lv in level.items():
        tier_level[g.nodes[v]["tier"]] = min(lv, tier_level.get(g.nodes[v]["tier"], lv))
    det, chosen = _Detail(), acc
    if len(acc) > MAX_LAYERED_ACCELERATORS:  # too many to read: the first boards (pods) only
        pods = fabric.node_pod[acc]
        k = max(1, BLOCK_ACCELERATORS // 2 // int((pods == pods[0]).sum())) if pods.min() >= 0 else 0
        chosen = acc[pods < pods[0] + k] if k else acc[:BLOCK_ACCELERATORS]
        det.title = (f"first {k} of {len(np.unique(pods))} boards: " if k else "first ") + \
            f"{len(chosen)} of {len(acc)} accelerators"
    frontier = [int(a) for a in chosen]
    rows = {0: frontier}
    while frontier:  # climb tier by tier from the chosen accelerators
        frontier = sorted({v for u in frontier for v in g[u] if v in level and level[v] == level[u] + 1
                           and tier_level[g.nodes[v]["tier"]] == level[v]})
        if frontier:
            rows[level[frontier[0]]] = frontier
    nics = [v for a in rows[0] for v in sorted(g[a]) if g.nodes[v]["kind"] == "nic"]
    if nics:
        rows[-1] = nics
    ocs = sorted(v for v in members if g.nodes[v]["kind"] == "ocs")
    if ocs:
        rows[max(rows) + 1] = ocs
    totals: dict[tuple[str, str], int] = {}
    for v in members:
        key = (g.nodes[v]["kind"], g.nodes[v]["tier"])
        totals[key] = totals.get(key, 0) + 1
    for y, nodes in rows.items():
        det.pos.update({n: ((i + 0.5) / len(nodes), float(y)) for i, n in enumerate(nodes)})
        d = g.nodes[nodes[0]]
        det.rows.append((-0.03, float(y), _describe(g, nodes, totals[(d["kind"], d["tier"])])))
    for u, v, e in g.subgraph(det.pos).edges(data=True):
        det.edge(np.array([det.pos[u], det.pos[v]]), e)
    return det


def _grid(g: nx.Graph, fabric: Fabric, acc: np.ndarray, members: set[int]) -> _Detail:
    """Mesh / torus supernode: accelerators on their grid coordinates (first block if large)."""
    tmpl = fabric.routing.get("template")
    dims = np.asarray(getattr(tmpl, "routing", {}).get("dims", [len(acc)]), dtype=np.int64)
    local_of = {int(n): i for i, n in enumerate(acc)}  # acc is in rank order: i = local rank
    local, block, det = np.arange(len(acc)), acc, _Detail()
    if len(acc) > BLOCK_ACCELERATORS:  # first cube (pod) if the family marks one, else first ranks
        pods = fabric.node_pod[acc]
        cube = pods[0] >= 0 and (pods == pods[0]).sum() <= 2 * BLOCK_ACCELERATORS
        sel = pods == pods[0] if cube else local < BLOCK_ACCELERATORS
        block, local = acc[sel], local[sel]
        det.title = f"{'first cube' if cube else 'first ranks'}: {len(block)} of {len(acc):,} accelerators"
    strides = np.concatenate([[1], np.cumprod(dims)[:-1]])
    coords = (local[:, None] // strides) % dims
    coords -= coords.min(axis=0)
    if len(dims) == 1:  # no grid known: a circle
        ang = 2 * np.pi * coords[:, 0] / len(block)
        xy, axes = np.c_[np.cos(ang), np.sin(ang)] * len(block) / 6, np.array([[1.0, 0.0]])
    else:  # 2D: rows and columns; 3D: oblique projection, z-slices stacked upwards
        axes = np.array([[1.0, 0.0], [0.0, -1.0]]) if len(dims) == 2 else \
            np.array([[1.0, 0.0], [0.45, 0.4], [0.0, 0.4 * coords[:, 1].max() + 1.2]])
        xy = coords[:, : len(axes)] @ axes
    where = {int(n): i for i, n in enumerate(block)}
    det.pos.update({n: (float(p[0]), float(p[1])) for n, p in zip(block.tolist(), xy)})
    stubs, nic_off = 0, np.array([0.22, -0.22])
    for n, i in where.items():
        for v, e in g[n].items():
            if v in where and v > n:  # non-neighbours on the grid (full mesh, wraparound): arcs
                far = np.abs(coords[i] - coords[where[v]]).sum() > 1
                det.edge(_arc(xy[i], xy[where[v]], 0.1) if far else xy[[i, where[v]]], e)
            elif g.nodes[v]["kind"] == "nic":
                det.pos[v] = tuple(xy[i] + nic_off)
                det.edge(np.array([xy[i], xy[i] + nic_off]), e)
            elif v in local_of and v not in where:  # leaves the block: a stub towards it
                cv, ci = (local_of[v] // strides) % dims, (local[i] // strides) % dims
                dim = int(np.flatnonzero(cv != ci)[0])
                sign = 1.0 if (cv[dim] - ci[dim]) % dims[dim] == 1 else -1.0
                ax = axes[min(dim, len(axes) - 1)]
                det.edge(np.array([xy[i], xy[i] + sign * 0.45 * ax / np.linalg.norm(ax)]), e)
                stubs += 1
    (x0, bottom), (x1, top) = xy.min(axis=0), xy.max(axis=0)
    text = f"{len(acc):,} x {g.nodes[int(acc[0])].get('spec', 'accelerator')}\n"
    if len(block) < len(acc):
        text = f"{len(block)} of {text}block {'x'.join(map(str, coords.max(axis=0) + 1))} of "
    text += f"grid {'x'.join(map(str, dims))}" + (f"\n{stubs} links leave the block\n(stubs)" if stubs else "")
    det.rows.append((x0 - 0.6, (top + bottom) / 2, text))
    ocs = sorted(v for v in members if g.nodes[v]["kind"] == "ocs")
    if ocs:  # OCS steer light only: the circuits are the optical stubs, the OCS have no edges
        det.pos.update({v: (x0 + (x1 - x0) * (k + 0.5) / len(ocs), top + 1.2) for k, v in enumerate(ocs)})
        det.rows.append((x0 - 0.6, top + 1.2, f"{len(ocs)} x {g.nodes[ocs[0]].get('spec', 'ocs')}\n(circuits = stubs)"))
    nics = sum(g.nodes[v]["kind"] == "nic" for v in det.pos)
    if nics:
        det.rows.append((x0 - 0.6, bottom - 0.5, f"{nics} x NIC (beside each\naccelerator)"))
    return det


def _draw_edges(ax, lines: list[np.ndarray], media: list[str], widths: np.ndarray, alpha: float) -> None:
    med = np.asarray(media)
    for m in MEDIA:
        sel = np.flatnonzero(med == m)
        if len(sel):
            ax.add_collection(LineCollection([lines[i] for i in sel], colors=MEDIUM_COLOR[m],
                                             linewidths=widths[sel], alpha=alpha, zorder=1))


def _left_panel(ax, g: nx.Graph, fabric: Fabric) -> None:
    members = set(np.flatnonzero(fabric.node_domain == 0).tolist())
    acc = fabric.accel_node[fabric.node_domain[fabric.accel_node] == 0]
    switched = any(g.nodes[v]["kind"] == "switch" for v in members)
    det = (_layered if switched else _grid)(g, fabric, acc, members)
    counts = np.asarray(det.counts, dtype=float)
    thin = min(1.0, 8.0 / np.sqrt(max(len(counts), 1)))  # many edges: thinner, fainter lines
    widths = (0.4 + 2.2 * counts / counts.max()) * thin if len(counts) else counts
    _draw_edges(ax, det.lines, det.media, widths, 0.9 if len(counts) < 150 else 0.6 if len(counts) < 800 else 0.3)
    for kind in NODE_KINDS:
        pts = [p for n, p in det.pos.items() if g.nodes[n]["kind"] == kind]
        if pts:
            mk, col, size = KIND_STYLE[kind]
            ax.scatter(*np.asarray(pts).T, marker=mk, c=col, s=size * (0.5 if len(pts) > 60 else 1.0),
                       edgecolors="white", linewidths=0.5, zorder=2)
    for x, y, text in det.rows:
        ax.text(x, y, text, ha="right", va="center", fontsize=8.5)
    xy = np.asarray(list(det.pos.values()))
    span = np.ptp(xy[:, 0]) or 1.0
    ax.set_xlim(xy[:, 0].min() - 0.42 * span - 0.1, xy[:, 0].max() + 0.04 * span + 0.2)
    ax.set_ylim(xy[:, 1].min() - 0.6, xy[:, 1].max() + 0.6)
    fam = g.graph.get("supernode_family", "")
    ax.set_title(f"supernode 0 of {int(g.graph.get('supernodes', 1)):,}" + (f" ({fam})" if fam else "") +
                 (f"\nshowing {det.title}" if det.title else "\nevery node and link; width ~ links per bundle"),
                 fontsize=10)
    ax.set_axis_off()


def _layer_order(gg: GroupGraph) -> list[str]:
    """Layers bottom to top: supernodes first, then by hops from them over group edges."""
    names = list(dict.fromkeys(gg.layer))
    adj: dict[str, set[str]] = {n: set() for n in names}
    for u, v in zip(gg.edge_u.tolist(), gg.edge_v.tolist()):
        adj[gg.layer[u]].add(gg.layer[v])
        adj[gg.layer[v]].add(gg.layer[u])
    order = [SUPERNODES] if SUPERNODES in adj else names[:1]
    for name in order:  # breadth-first over layers; ``order`` grows while iterated
        order += [m for m in names if m in adj[name] and m not in order]
    return order + [n for n in names if n not in order]


def _right_panel(ax, g: nx.Graph, fabric: Fabric, gg: GroupGraph) -> None:
    pos = np.zeros((gg.n_groups, 2))
    layer = np.asarray(gg.layer)
    for y, name in enumerate(_layer_order(gg)):
        ids = np.flatnonzero(layer == name)
        pos[ids] = np.c_[(np.arange(len(ids)) + 0.5) / len(ids), np.full(len(ids), y)]
        col = KIND_STYLE["accelerator" if name == SUPERNODES else "switch"][1]
        ax.scatter(*pos[ids].T, marker="s", s=float(np.clip(2400 / len(ids), 18, 420)), c=col,
                   edgecolors="black", linewidths=0.5, zorder=3)
        if name == SUPERNODES:
            text = (f"supernodes\n{int(gg.n_domains.sum()):,} in {len(ids)} box{'es' * (len(ids) > 1)}\n"
                    f"(<= {int(gg.n_domains[ids].max())} SN = {int(gg.n_accelerators[ids].max()):,} acc. each)")
        else:
            text = f"{name}\n{int(gg.n_members[ids].sum()):,} switches\nin {len(ids)} group{'s' * (len(ids) > 1)}"
        ax.text(-0.03, y, text, ha="right", va="center", fontsize=8.5)
        for k in ids if len(ids) <= 8 else ids[[0, -1]]:  # many boxes: name the ends only
            ax.text(pos[k, 0], y - 0.17, gg.label[k], ha="center", va="top", fontsize=7,
                    bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.8), zorder=4)
    title = _title(g, fabric)
    if len(gg.edge_bw_Bps):
        top = gg.edge_bw_Bps.max()
        lines = [pos[[u, v]] for u, v in zip(gg.edge_u, gg.edge_v)]
        _draw_edges(ax, lines, list(gg.edge_medium), 0.4 + 6.0 * gg.edge_bw_Bps / top, 0.6)
        title += f"\nline width ~ total bandwidth between groups (widest {_fmt_Bps(top)} per direction)"
    ax.set_title(title, fontsize=10)
    ax.set_xlim(-0.32, 1.05)
    ax.set_ylim(-0.6, pos[:, 1].max() + 0.5)
    ax.set_axis_off()


def _title(g: nx.Graph, fabric: Fabric) -> str:
    from oassim.topology.metrics import optical_module_counts

    sw = fabric.kind_mask("switch") | fabric.kind_mask("ocs")
    codes, counts = np.unique(fabric.node_tier[sw], return_counts=True)
    tiers = ", ".join(f"{c:,} {fabric.tier_names[t]}" for t, c in zip(codes, counts))
    mods = int(sum(optical_module_counts(g).values()))
    return (f"cluster at group level: {fabric.n_accelerators:,} accelerators in "
            f"{int(g.graph.get('supernodes', 0)):,} supernodes of {int(g.graph.get('domain_size', 1))}\n"
            f"switches: {tiers or 'none'}; {mods:,} optical modules")


def _legend(fabric: Fabric) -> list[Line2D]:
    """One line per medium naming the link tiers on it; one marker per node kind and group."""
    pairs = set(zip(fabric.link_medium[0::2].tolist(), fabric.link_tier[0::2].tolist()))
    handles = [Line2D([], [], color=MEDIUM_COLOR[m], lw=2.5, label=f"{m}: " + ", ".join(
        sorted(fabric.link_tier_names[t] for mm, t in pairs if MEDIA[mm] == m)))
        for m in MEDIA if any(MEDIA[mm] == m for mm, _ in pairs)]
    handles += [Line2D([], [], ls="", marker=KIND_STYLE[k][0], color=KIND_STYLE[k][1], ms=7, label=k)
                for k in NODE_KINDS if fabric.kind_mask(k).any()]
    return handles + [Line2D([], [], ls="", marker="s", color=KIND_STYLE[k][1], mec="black", ms=9, label=text)
                      for k, text in (("accelerator", "supernode group"), ("switch", "switch group"))]


def _check_path(out_path: str | Path) -> Path:
    path = Path(out_path)
    if path.suffix.lower() != ".png":
        raise SpecError(f"the drawing is a PNG: the output file must end in .png, got {path.name!r}",
                        source=str(path))
    if not path.parent.is_dir():
        raise SpecError(f"directory {str(path.parent)!r} does not exist", source=str(path))
    return path


def draw_cluster(g: nx.Graph, fabric: Fabric, out_path: str | Path, *, dpi: int = 150) -> Path:
    """Draw supernode 0 in detail and the whole cluster at group level into one PNG.

    At most a few hundred nodes are drawn whatever the cluster size, so a 16k-accelerator
    cluster draws in seconds.

    Parameters
    ----------
    g : networkx.Graph
        The cluster graph from :func:`~oassim.topology.cluster.build_cluster`.
    fabric : Fabric
        ``freeze(g)``: the arrays the group-level panel is computed from.
    out_path : str or Path
        PNG file to write; its directory must exist. Written atomically (a temporary file in
        the same directory, then renamed onto ``out_path``), so a failure never leaves a
        partial file and never clobbers an existing one.
    dpi : int
        Resolution, dots per inch (the figure is 20 x 9.5 inches).

    Returns
    -------
    Path
        ``out_path``.

    Raises
    ------
    SpecError
        The suffix is not ``.png`` or the directory does not exist.
    """
    path = _check_path(out_path)
    fig = Figure(figsize=(20, 9.5), dpi=dpi)
    left, right = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.15], "wspace": 0.04})
    _left_panel(left, g, fabric)
    _right_panel(right, g, fabric, group_fabric(fabric))
    desc = getattr(getattr(g.graph.get("resolved"), "spec", None), "description", None)
    fig.suptitle(f"{g.graph.get('name', fabric.name)}" + (f": {desc}" if desc else ""), fontsize=13)
    fig.legend(handles=_legend(fabric), loc="lower center", ncol=5, fontsize=9, frameon=False)
    fig.subplots_adjust(left=0.02, right=0.99, top=0.88, bottom=0.1)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "xb") as fh:  # "x": never reuse a stranger's file; mode follows umask
            fig.savefig(fh, format="png", dpi=dpi)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path
