"""Dragonfly scale-out fabric (Kim, Dally, Scott, Abts, ISCA 2008).

What is modelled: ``g`` groups of ``a`` routers; each router has ``p`` terminals (endpoints),
``a - 1`` local links (all-to-all inside its group) and ``h`` global links to other groups.
The group acts as one virtual high-radix router with ``a*h`` global ports, which is what
lets a dragonfly reach any other group in one global hop (Kim et al. section 3).

Global arrangement ``"consecutive"`` (Kim et al.'s consecutive arrangement, generalised to
``g < a*h + 1``): a group's global ports are numbered router-major, ``q = r*h + port``. The
ports are dealt round-robin to the relative groups ``delta = 1..g-1`` (port ``q`` goes to
``delta = q % (g-1) + 1`` for the first ``floor(a*h/(g-1))`` rounds), so every pair of groups
gets ``floor(a*h/(g-1))`` global links; the ``R = a*h % (g-1)`` ports left over go to a set of
offsets closed under ``delta -> g - delta`` (``1..R/2`` and ``g-R/2..g-1``, plus ``g/2`` when
``R`` is odd and ``g`` even), so those pairs get one link more (the ceiling). The ``t``-th port
of group ``i`` towards ``delta`` is wired to the ``t``-th port of group ``i + delta`` towards
``g - delta``. When ``R`` is odd and ``g`` is odd no such symmetric set of size ``R`` exists and
the last global port of every group stays unused; otherwise every port is used. With
``g = a*h + 1`` this is Kim et al.'s consecutive arrangement (one link per pair of groups, router
``r`` of group ``i`` reaching groups ``i + r*h + 1 .. i + r*h + h``).

Endpoints: endpoint ``e`` is terminal ``e % p`` of router ``e // p`` (routers numbered
group-major), so a partial fabric fills groups in order.

Routing (router ``"dragonfly"``): minimal, i.e. at most one global hop: source router, local
hop to a router of the source group owning a global link to the destination group (if not
itself), that global link, local hop to the destination router (if needed). Among the global
links between the two groups the router keeps those giving the fewest local hops and picks one
by flow hash (a bundle of ``c`` parallel links counts ``c`` times). These are the shortest paths
that use at most one global link; a path through a third group can occasionally be shorter,
and minimal dragonfly routing never takes it (non-minimal/Valiant routing is not modelled).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, Mapping

import numpy as np
from pydantic import model_validator

from oassim.hardware.models import Count, count_at_least
from oassim.specio import SpecModel
from oassim.topology.graph import add_links, add_nodes, has_nodes, new_graph, set_routing
from oassim.topology.parts import LinkClass, SwitchClass, require_parts, switch_node_attrs
from oassim.topology.families.dragonfly_routing import ROUTER, DragonflyRouter  # noqa: F401 (the registry's)

if TYPE_CHECKING:
    import networkx as nx

__all__ = [
    "Spec",
    "LINK_ROLES",
    "SWITCH_ROLES",
    "ROUTER",
    "global_ports",
    "global_links",
    "MAX_FLOW_EDGES",
    "build",
    "bisection_Bps",
    "diameter_hops",
    "DragonflyRouter",
]

LINK_ROLES: tuple[str, ...] = ("host", "local", "global")
SWITCH_ROLES: tuple[str, ...] = ("router",)


class Spec(SpecModel):
    """Geometry of a dragonfly (Kim et al. 2008 notation in brackets).

    Parameters
    ----------
    routers_per_group : int
        Routers per group [a] (>= 1).
    terminals_per_router : int
        Endpoints per router [p] (>= 1).
    global_links_per_router : int
        Global ports per router [h] (>= 1).
    groups : int
        Groups [g], 2 <= g <= a*h + 1 (every pair of groups needs a global link).
    global_arrangement : {"consecutive"}
        How global ports are wired (module docstring).
    endpoints : int or None
        Endpoints attached (default ``a*p*g``; fewer fill routers in order).
    """

    routers_per_group: Count
    terminals_per_router: Count
    global_links_per_router: Count
    groups: count_at_least(2)  # type: ignore[valid-type]
    global_arrangement: Literal["consecutive"] = "consecutive"
    endpoints: Count | None = None

    @model_validator(mode="after")
    def _check(self) -> "Spec":
        a, h, g = self.routers_per_group, self.global_links_per_router, self.groups
        if g > a * h + 1:
            raise ValueError(
                f"groups ({g}) > routers_per_group * global_links_per_router + 1 = {a * h + 1}: "
                "some pairs of groups would have no global link"
            )
        if self.endpoints is not None and self.endpoints > self.capacity:
            raise ValueError(
                f"endpoints ({self.endpoints}) > routers_per_group * terminals_per_router * groups "
                f"= {self.capacity}"
            )
        return self

    @property
    def capacity(self) -> int:
        """Terminal ports, ``a*p*g``."""
        return self.routers_per_group * self.terminals_per_router * self.groups

    @property
    def n_endpoints(self) -> int:
        return self.endpoints if self.endpoints is not None else self.capacity


def global_ports(spec: Spec) -> tuple[np.ndarray, np.ndarray]:
    """Where each group's global ports go, identical for every group (circulant arrangement).

    Returns
    -------
    owner : numpy.ndarray
        Shape (g, M), int64: ``owner[delta, t]`` is the local index of the router owning the
        ``t``-th global link towards group ``i + delta`` (row 0 unused), -1 past the end.
    links_per_pair : numpy.ndarray
        Shape (g,), int64: global links between groups ``i`` and ``i + delta``.
    """
    a, h, g = spec.routers_per_group, spec.global_links_per_router, spec.groups
    q_all = a * h
    base, r = divmod(q_all, g - 1)
    if r % 2 == 0:
        extra = list(range(1, r // 2 + 1)) + list(range(g - r // 2, g))
    elif g % 2 == 0:
        extra = list(range(1, (r - 1) // 2 + 1)) + [g // 2] + list(range(g - (r - 1) // 2, g))
    else:  # no symmetric set of odd size: one port per group stays unused
        extra = list(range(1, (r - 1) // 2 + 1)) + list(range(g - (r - 1) // 2, g))
    extra.sort()
    q = np.arange(base * (g - 1) + len(extra))
    delta = np.where(q < base * (g - 1), q % (g - 1) + 1, 0)
    delta[base * (g - 1):] = extra
    t = np.minimum(q // (g - 1), base)
    links_per_pair = np.full(g, base, dtype=np.int64)
    links_per_pair[extra] += 1
    links_per_pair[0] = 0
    owner = np.full((g, base + (1 if extra else 0)), -1, dtype=np.int64)
    owner[delta, t] = q // h
    return owner, links_per_pair


def global_links(spec: Spec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Global links as router index pairs (group-major router numbering), bundled.

    Returns ``(u, v, count)``, each shape (n_edges,), with ``u < v``.
    """
    a, g = spec.routers_per_group, spec.groups
    owner, m = global_ports(spec)
    i, dl, t = np.meshgrid(np.arange(g), np.arange(1, g), np.arange(owner.shape[1]), indexing="ij")
    j = (i + dl) % g
    keep = (t < m[dl]) & (i < j)
    i, dl, t, j = i[keep], dl[keep], t[keep], j[keep]
    u = i * a + owner[dl, t]
    v = j * a + owner[g - dl, t]
    pairs, count = np.unique(np.stack([u, v], axis=1), axis=0, return_counts=True)
    return pairs[:, 0], pairs[:, 1], count.astype(np.int64)


def links_built(spec: Spec, switches: Mapping[str, SwitchClass] | None = None) -> int:
    """Distinct links (graph edges) one build adds, at least: hosts and every group's local
    all-to-all (global links come on top)."""
    a = spec.routers_per_group
    return spec.n_endpoints + spec.groups * a * (a - 1) // 2


def build(
    spec: Spec,
    links: Mapping[str, LinkClass],
    switches: Mapping[str, SwitchClass],
    *,
    g: nx.Graph | None = None,
    endpoints: np.ndarray | None = None,
    accel: Mapping[str, Any] | None = None,
    name: str = "dragonfly",
) -> nx.Graph:
    """Build a dragonfly into ``g`` and return it.

    Parameters
    ----------
    spec : Spec
        Geometry.
    links : mapping
        ``{"host", "local", "global"}`` -> LinkClass; link tiers "host", "local", "global".
    switches : mapping
        ``{"router": SwitchClass}``; node tier "router", ``pod`` = group index. Its radix must
        hold ``p + a - 1 + h`` ports.
    g : networkx.Graph, optional
        Graph to extend (nodes are appended); a new one when None.
    endpoints : numpy.ndarray, optional
        Existing node ids to attach, shape (E,), in terminal-port order; when None,
        ``spec.endpoints`` (default ``a*p*g``) accelerators are made.
    accel : mapping, optional
        Extra attributes of every accelerator made here.
    name : str
        Graph name when a new graph is made.

    Returns
    -------
    networkx.Graph
        With routing ``"dragonfly"`` and structure keys ``endpoints`` (E,),
        ``router_of_endpoint`` (E,) router index, ``routers`` (a*g,) node ids,
        ``routers_per_group``, ``groups``, ``global_owner`` (g, M) and ``links_per_pair`` (g,)
        from :func:`global_ports`.
    """
    require_parts("dragonfly", links, LINK_ROLES, "link")
    require_parts("dragonfly", switches, SWITCH_ROLES, "switch")
    a, p, h, ng = spec.routers_per_group, spec.terminals_per_router, spec.global_links_per_router, spec.groups
    sw = switches["router"]
    if sw.radix < p + a - 1 + h:
        raise ValueError(
            f"dragonfly: router radix {sw.radix} < terminals + local + global ports = {p} + {a - 1} + {h}"
        )
    if endpoints is not None:
        endpoints = np.asarray(endpoints, dtype=np.int64).ravel()
        if spec.endpoints is not None and spec.endpoints != len(endpoints):
            raise ValueError(f"dragonfly: spec.endpoints ({spec.endpoints}) != {len(endpoints)} endpoints given")
        if len(endpoints) > spec.capacity:
            raise ValueError(f"dragonfly: {len(endpoints)} endpoints > {spec.capacity} terminal ports")
        if len(np.unique(endpoints)) != len(endpoints):
            raise ValueError("dragonfly: endpoints must be distinct node ids")
    E = spec.n_endpoints if endpoints is None else len(endpoints)
    if g is None:
        g = new_graph(name, "dragonfly")
    router_of_ep = np.arange(E, dtype=np.int64) // p
    if endpoints is None:
        attrs = {"ports": 1, "port_rate_Gbps": links["host"].port_rate_Gbps, **dict(accel or {})}
        attrs.pop("rank", None)
        attrs["pod"] = router_of_ep // a
        endpoints = add_nodes(g, E, "accelerator", "accelerator", **attrs)
    elif not has_nodes(g, endpoints):
        raise ValueError("dragonfly: every endpoint must be an existing node of g")
    routers = add_nodes(
        g, a * ng, "switch", "router", pod=np.arange(a * ng) // a, **switch_node_attrs(sw)
    )
    add_links(g, endpoints, routers[router_of_ep], links["host"], tier="host")
    if a > 1:
        x, y = np.triu_indices(a, 1)
        grp = np.arange(ng)[:, None] * a
        add_links(g, routers[(grp + x).ravel()], routers[(grp + y).ravel()], links["local"], tier="local")
    u, v, c = global_links(spec)
    add_links(g, routers[u], routers[v], links["global"], tier="global", count=c)
    owner, m = global_ports(spec)
    set_routing(
        g,
        ROUTER,
        endpoints=np.asarray(endpoints, dtype=np.int64),
        router_of_endpoint=router_of_ep,
        routers=routers,
        routers_per_group=a,
        groups=ng,
        global_owner=owner,
        links_per_pair=m,
    )
    return g


#: Largest fabric (local + global edges) on which bisection_Bps runs an exact max-flow when
#: the closed form does not apply (networkx preflow-push: ~0.5 s at 24k edges, ~3 s at 120k).
MAX_FLOW_EDGES = 150_000


def _halves(spec: Spec) -> tuple[np.ndarray, np.ndarray]:
    """Endpoints of each half on every router, shapes (a*g,): index < E/2, then the rest."""
    E, p, nr = spec.n_endpoints, spec.terminals_per_router, spec.routers_per_group * spec.groups
    n = np.bincount(np.arange(E) // p, minlength=nr)
    first = np.bincount(np.arange((E + 1) // 2) // p, minlength=nr)
    return first, n - first


def _balanced(spec: Spec) -> bool:
    """g even, every pair of groups joined by the same number of global links, all ports filled."""
    a, h, g = spec.routers_per_group, spec.global_links_per_router, spec.groups
    return g % 2 == 0 and (a * h) % (g - 1) == 0 and spec.n_endpoints == spec.capacity


def _closed_form(spec: Spec, links: Mapping[str, LinkClass]) -> float | None:
    """``min(E/2 * b_host, (g/2)^2 * m * b_global)`` when it is provably the max-flow, else None.

    Both terms are cuts (all host links of one half; all global links between the group halves,
    ``m = a*h/(g-1)`` per pair), so the bisection is at most their minimum ``F``. It is exactly
    ``F`` when this flow exists: ``F / ((g/2)^2 m)`` on every crossing global link and
    ``F / E * 2`` per endpoint, each group moving the difference between what a router's
    terminals send (receive) and what its crossing global links carry over local links, either
    directly (router r to s carries ``e_r+ * e_s- / sum e+``) or spread over all ``a - 1``
    intermediates (a local link carries at most ``(max e+ + max e-) / (a - 1)``). Checked here.
    """
    if not _balanced(spec):
        return None
    a, h, g = spec.routers_per_group, spec.global_links_per_router, spec.groups
    b_h, b_l, b_g = (links[r].bandwidth_Bps for r in LINK_ROLES)
    m = a * h // (g - 1)
    cross = (g // 2) ** 2 * m
    flow = min(spec.capacity // 2 * b_h, cross * b_g)
    phi, sigma = flow / cross, flow / (g // 2) / a
    u, v, c = global_links(spec)
    group_a = np.arange(a * g) // a < g // 2
    crossing = group_a[u] != group_a[v]
    k = np.bincount(u[crossing], c[crossing], a * g) + np.bincount(v[crossing], c[crossing], a * g)
    excess = (sigma - k * phi).reshape(g, a)  # surplus to move inside each group (sign flips on B)
    if a == 1:
        return flow if np.allclose(excess, 0.0, atol=1e-9 * flow) else None
    pos, neg = np.clip(excess, 0, None), np.clip(-excess, 0, None)
    total = np.maximum(pos.sum(axis=1), 1e-300)
    direct = pos.max(axis=1) * neg.max(axis=1) / total
    spread = (pos.max(axis=1) + neg.max(axis=1)) / (a - 1)
    ok = np.minimum(direct, spread) <= b_l * (1 + 1e-12)
    return flow if bool(np.all(ok)) else None


def _max_flow(spec: Spec, links: Mapping[str, LinkClass]) -> float:
    """Exact bisection by max-flow on the router graph (terminals folded into their router)."""
    import networkx as nx

    a, g = spec.routers_per_group, spec.groups
    b_h, b_l, b_g = (links[r].bandwidth_Bps for r in LINK_ROLES)
    first, second = _halves(spec)
    u, v, c = global_links(spec)
    x, y = np.triu_indices(a, 1)
    grp = np.arange(g)[:, None] * a
    lu, lv = (grp + x).ravel(), (grp + y).ravel()
    net = nx.DiGraph()
    cap = np.concatenate([c * b_g, np.full(len(lu), b_l)])
    for s, t, w in zip(np.concatenate([u, lu]).tolist(), np.concatenate([v, lv]).tolist(), cap.tolist()):
        net.add_edge(s, t, capacity=w)
        net.add_edge(t, s, capacity=w)
    net.add_edges_from(("src", r, {"capacity": first[r] * b_h}) for r in np.flatnonzero(first).tolist())
    net.add_edges_from((r, "dst", {"capacity": second[r] * b_h}) for r in np.flatnonzero(second).tolist())
    if "src" not in net or "dst" not in net:
        return 0.0
    return float(nx.maximum_flow_value(net, "src", "dst"))


def bisection_Bps(
    spec: Spec, links: Mapping[str, LinkClass], switches: Mapping[str, SwitchClass] | None = None
) -> float:
    """Bisection bandwidth between the natural halves (endpoint index < E/2 vs the rest), B/s.

    ``switches`` is accepted for a call shape shared with :mod:`fat_tree` (which needs the
    radix) and not used.

    Closed form, domain "balanced": ``g`` even, ``(g - 1) | a*h`` (every pair of groups has
    ``m = a*h/(g-1)`` global links) and all ``a*p*g`` terminals used, so the halves are groups
    ``0..g/2-1`` and the rest::

        B = min(a*p*g/2 * b_host, (g/2)^2 * m * b_global)

    provided the local links can even out, inside each group, what a router's terminals send
    and what its crossing global links carry (condition in ``_closed_form``; it held for equal
    link rates with ``a >= 2h``, as in Kim et al.'s balanced ``a = 2p = 2h``, for every
    balanced shape with ``a <= 16`` and ``p <= 2h + 1``). Outside that domain no
    simple exact closed form holds: a group split between the halves (odd ``g``, the usual
    ``g = a*h + 1``) and thin local links make router-level cuts the minimum. There the value is
    computed exactly by max-flow on the router graph, for fabrics up to :data:`MAX_FLOW_EDGES`
    local + global edges; larger ones raise ValueError.
    """
    closed = _closed_form(spec, links)
    if closed is not None:
        return closed
    a, g = spec.routers_per_group, spec.groups
    n_edges = g * a * (a - 1) // 2 + len(global_links(spec)[0])
    if n_edges > MAX_FLOW_EDGES:
        raise ValueError(
            f"dragonfly: no closed-form bisection for this spec (outside the balanced domain: g even, "
            f"(g-1) | a*h, all terminals used, local links sufficient) and {n_edges} edges is too "
            f"large for an exact max-flow (limit {MAX_FLOW_EDGES})"
        )
    return _max_flow(spec, links)


def _max_local_cost(xs: np.ndarray, ys: np.ndarray, occ_s: int, occ_d: int) -> int:
    """Worst number of local hops (0..2) between occupied routers ``< occ_s`` of the source
    group and ``< occ_d`` of the destination group, given the links' owners ``xs``, ``ys``."""
    if np.setdiff1d(np.arange(occ_s), xs).size and np.setdiff1d(np.arange(occ_d), ys).size:
        return 2
    inside = (xs < occ_s) & (ys < occ_d)
    pairs = np.unique(xs[inside] * occ_d + ys[inside]).size
    return 1 if pairs < occ_s * occ_d else 0


def diameter_hops(spec: Spec, switches: Mapping[str, SwitchClass] | None = None) -> int:
    """Largest routed hop count between two endpoints (links, host links included).
    ``switches`` is accepted for a call shape shared with :mod:`fat_tree`, and not used.

    In general 5 (host, local, global, local, host): whenever a pair of groups has fewer global
    links than routers, some router of each group owns none of them. Exactly, with the
    occupied routers ``0..ceil(E/p)-1``: 0 for one endpoint, 2 for one router, else
    ``max(3, 3 + c)`` where ``c`` is the worst number of local hops over pairs of occupied
    groups, evaluated on the arrangement (:func:`global_ports`) per relative offset.
    """
    a, p, g = spec.routers_per_group, spec.terminals_per_router, spec.groups
    E = spec.n_endpoints
    if E < 2:
        return 0
    nr = -(-E // p)
    if nr == 1:
        return 2
    ng = -(-nr // a)
    if ng == 1:
        return 3
    owner, m = global_ports(spec)
    last, occ_last = ng - 1, nr - a * (ng - 1)
    # (offset, occupied routers at source, at destination) over ordered pairs of occupied groups:
    # full groups 0..last-1 among themselves, and each of them with the last (maybe partial) one
    cases = {(dl, a, a) for dl in range(1, g) if last >= 2 and (dl < last or dl > g - last)}
    cases |= {(dl, a, occ_last) for dl in range(1, last + 1)}
    cases |= {(dl, occ_last, a) for dl in range(g - last, g)}
    worst = 0
    for dl, os_, od in cases:
        xs, ys = owner[dl, : m[dl]], owner[g - dl, : m[dl]]
        worst = max(worst, _max_local_cost(xs, ys, os_, od))
        if worst == 2:
            break
    return 3 + worst
