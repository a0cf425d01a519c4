"""Scale-out routing as deployed: static ECMP hashing or adaptive routing / packet spraying.

What is modelled. A fat-tree's switches choose among equal-cost next hops in one of two ways
(``scale_out.routing`` of a cluster file):

- ``ecmp``: each flow is hashed onto one next hop (the 5-tuple hash of Ethernet ECMP, the
  static LID routes of an InfiniBand subnet manager). Flows collide: with ``F`` equal flows on
  ``u`` uplinks the busiest carries more than ``F/u``. Explicit flows are hashed one by one
  (:func:`oassim.topology.routing.flow_hash`); flows that stand for many (the aggregated
  all-to-all, ``Flows.count``) cannot be, so their equal-cost groups carry the group's mean
  load times the expected excess of random hashing (:func:`ecmp_excess`).
- ``adaptive``: InfiniBand adaptive routing and Spectrum-X packet spraying spread a switch's
  traffic over all its minimal next hops, so at fluid level every link of an equal-cost
  group (:func:`~oassim.topology.routing.equal_cost_groups`) carries the same share. The
  models cost such a group as one virtual link of the group's summed capacity and report
  each member its capacity share of the load.

Two-tier Clos supernodes (the ``clos2`` family) have the same choice for their L1 chips'
uplinks to the L2 switches (``supernode.spec.routing``, :func:`supernode_routing`): under
``adaptive`` each L1 chip's uplinks and the L2 links into each L1 chip are equal-cost groups
too, never derated for hashing.

Why a closed form for ECMP collisions: the maximum of ``N`` bins after throwing ``F`` balls
uniformly is, for ``lambda = F/N`` balls per bin, ``lambda + sqrt(2 lambda ln N)`` when
``lambda >> ln N`` and ``ln N / ln(ln N / lambda)`` when ``lambda << ln N`` (Raab and Steger,
"Balls into bins: a simple and tight analysis", RANDOM 1998; docs/sources.md). The excess
factor is that maximum over ``lambda``; the test holds it to hashing by simulation.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Literal

import numpy as np

from oassim.topology.fabric import Fabric
from oassim.topology.routing import equal_cost_groups

__all__ = ["Routing", "ROUTINGS", "scaleout_routing", "supernode_routing", "LinkGroups", "link_groups",
           "share_groups", "ecmp_excess",
           "grouped_capacity", "grouped"]

Routing = Literal["ecmp", "adaptive"]
ROUTINGS: tuple[str, ...] = ("ecmp", "adaptive")

_GROUPS: "weakref.WeakKeyDictionary[Fabric, dict]" = weakref.WeakKeyDictionary()


def scaleout_routing(fabric: Fabric) -> str:
    """``"ecmp"`` or ``"adaptive"``: the cluster file's ``scale_out.routing`` (default ecmp)."""
    rc = fabric.meta.get("resolved")
    so = getattr(getattr(rc, "spec", None), "scale_out", None)
    mode = getattr(so, "routing", None) or fabric.meta.get("routing") or "ecmp"
    return str(mode)


def ecmp_excess(flows_per_link: np.ndarray, links: int) -> np.ndarray:
    """Expected load of the busiest of ``links`` links over their mean when equal flows are
    hashed onto them at random, ``flows_per_link`` on average (>= 1; 1 for no collisions).

    Parameters
    ----------
    flows_per_link : ndarray of float64
        Mean flows per link (lambda).
    links : int
        Links the flows are hashed over (N, >= 1).
    """
    lam = np.maximum(np.asarray(flows_per_link, dtype=np.float64), 1e-12)
    ln = np.log(max(int(links), 1))
    if ln <= 0:
        return np.ones_like(lam)
    heavy = lam + np.sqrt(2.0 * lam * ln)
    with np.errstate(divide="ignore", invalid="ignore"):
        light = ln / np.log(np.maximum(np.e * ln / lam, np.e))
    # the two regimes meet near lambda = ln N; take the larger (both are lower-order tight)
    most = np.maximum(np.where(lam >= ln, heavy, np.maximum(light, heavy)), 1.0)
    return np.maximum(most / lam, 1.0)


@dataclass(frozen=True)
class LinkGroups:
    """Equal-cost link groups of a fabric, for costing them as virtual links.

    Attributes
    ----------
    group_of_link : ndarray of int64, shape (n_links,)
        Group id (0..n_groups-1) of every directed link, -1 for links outside any group.
    capacity_Bps : ndarray of float64, shape (n_groups,)
        Summed payload capacity of each group's links, bytes/s.
    members : ndarray of int64, shape (n_groups,)
        Link ids in each group (a bundle of parallel links is one).
    """

    group_of_link: np.ndarray
    capacity_Bps: np.ndarray
    members: np.ndarray
    scaleout: np.ndarray | None = None  # bool per group: a scale-out group (None: all are)

    @property
    def n_groups(self) -> int:
        return len(self.capacity_Bps)

    def virtual(self, links: np.ndarray, n_links: int) -> np.ndarray:
        """Link ids with grouped links replaced by ``n_links + group``."""
        g = self.group_of_link[links]
        return np.where(g >= 0, n_links + g, links)

    def expand(self, ext: np.ndarray, cap: np.ndarray) -> np.ndarray:
        """Per-physical-link values from values on the extended (links + groups) ids: each
        group's value shared by its links in proportion to their capacity."""
        n = len(cap)
        out = ext[:n].copy()
        g = self.group_of_link
        inside = g >= 0
        out[inside] += ext[n + g[inside]] * cap[inside] / self.capacity_Bps[g[inside]]
        return out


def supernode_routing(fabric: Fabric) -> str:
    """``"ecmp"`` or ``"adaptive"``: the supernode's own routing where its family has the choice
    (``clos2``: ``supernode.spec.routing``), else ``"ecmp"``."""
    r = fabric.routing
    if r.get("router") == "cluster":
        t = r.get("template")
        r = t.routing if t is not None else {}
    return str(r.get("routing") or "ecmp") if r.get("router") == "clos2" else "ecmp"


def _clos2_codes(fabric: Fabric) -> np.ndarray | None:
    """Equal-cost groups of a two-tier Clos supernode: each L1 chip's uplinks to its plane's
    L2 switches, and the L2 links down into each L1 chip (-1: none)."""
    names = fabric.tier_names
    if "scaleup-l1" not in names or "scaleup-l2" not in names:
        return None
    t1, t2 = names.index("scaleup-l1"), names.index("scaleup-l2")
    a, b = fabric.link_src, fabric.link_dst
    ta, tb = fabric.node_tier[a], fabric.node_tier[b]
    code = np.full(fabric.n_links, -1, dtype=np.int64)
    up, down = (ta == t1) & (tb == t2), (ta == t2) & (tb == t1)
    code[up], code[down] = a[up] * 2, b[down] * 2 + 1
    out = np.full(fabric.n_links, -1, dtype=np.int64)
    used = code >= 0
    if not used.any():
        return None
    out[used] = np.unique(code[used], return_inverse=True)[1]
    return out


def link_groups(fabric: Fabric, scaleout: bool = True, scaleup: bool = False) -> LinkGroups | None:
    """The equal-cost groups of ``fabric`` (cached per fabric): the fat-tree scale-out's
    (``scaleout``) and a two-tier Clos supernode's (``scaleup``); None without any."""
    cache = _GROUPS.setdefault(fabric, {})
    key = (bool(scaleout), bool(scaleup))
    if key in cache:
        return cache[key]
    parts = [(c, flag) for c, flag in ((equal_cost_groups(fabric) if scaleout else None, True),
                                       (_clos2_codes(fabric) if scaleup else None, False)) if c is not None]
    g = np.full(fabric.n_links, -1, dtype=np.int64)
    kinds = []
    for codes, flag in parts:
        inside = codes >= 0
        g[inside] = codes[inside] + len(kinds)
        kinds += [flag] * (int(codes.max()) + 1 if inside.any() else 0)
    out = None
    if np.any(g >= 0):
        k = len(kinds)
        inside = g >= 0
        cap = np.bincount(g[inside], weights=fabric.capacity_Bps[inside], minlength=k)
        # a bundle of parallel links is one link id (one hashed next hop carrying c ports'
        # traffic), so collisions are counted per link id
        members = np.bincount(g[inside], minlength=k)
        out = LinkGroups(g, cap, members.astype(np.int64), np.asarray(kinds, dtype=bool))
    cache[key] = out
    return out


def share_groups(view: Fabric, fabric: Fabric, drop: np.ndarray | None = None) -> None:
    """Give ``view`` (a copy of ``fabric`` with other NIC capacities, same links) the
    equal-cost groups of ``fabric``, so they are not derived again; links in ``drop`` (a
    quotient's representative links, costed on their own capacity) taken out of their groups."""
    if drop is None or not len(drop):
        _GROUPS[view] = _GROUPS.setdefault(fabric, {})
        return
    own = {}
    for key in ((False, False), (False, True), (True, False), (True, True)):
        g = link_groups(fabric, *key)
        if g is not None and np.any(g.group_of_link[drop] >= 0):
            at = g.group_of_link.copy()
            at[drop] = -1
            g = LinkGroups(at, g.capacity_Bps, g.members, g.scaleout)
        own[key] = g
    _GROUPS[view] = own


def grouped_capacity(groups: LinkGroups, cap: np.ndarray, ext_links: np.ndarray, hop_count: np.ndarray,
                     mode: str) -> np.ndarray:
    """Capacities of the extended ids: the physical links', then each group's. Under ``ecmp``
    a group's capacity is divided by the expected hashing excess of the real flows through it
    (``hop_count``: real flows behind each hop of ``ext_links``).

    Parameters
    ----------
    groups : LinkGroups
    cap : ndarray of float64, shape (n_links,)
    ext_links : ndarray of int64
        Hops of the phase's sub-flows on extended ids.
    hop_count : ndarray of float64, same shape
        Real flows each hop stands for.
    mode : {"ecmp", "adaptive"}
    """
    n = len(cap)
    gcap = groups.capacity_Bps.copy()
    if mode == "ecmp":
        on = ext_links >= n
        flows = np.bincount(ext_links[on] - n, weights=hop_count[on], minlength=groups.n_groups)
        used = flows > 0
        if groups.scaleout is not None:  # an adaptive supernode's groups are not hashed
            used &= groups.scaleout
        ports = int(groups.members[used].sum())
        if ports:
            factor = ecmp_excess(flows[used] / groups.members[used], ports)
            gcap[used] = gcap[used] / factor
    return np.concatenate([cap, gcap])


def grouped(fabric: Fabric, links: np.ndarray, owner: np.ndarray, hops: np.ndarray, count: np.ndarray | None,
            mode: str, cap: np.ndarray) -> tuple[np.ndarray, np.ndarray, LinkGroups] | None:
    """Sub-flow hops on extended ids and the extended capacities, when the phase is costed on
    equal-cost groups (adaptive routing, or flows that stand for many); else None.

    Parameters
    ----------
    fabric : Fabric
    links, owner, hops : ndarray
        The sub-flows' hops (CSR links), owning flow and hop counts (:class:`SubFlows`).
    count : ndarray of float64 or None
        ``Flows.count``.
    mode : {"ecmp", "adaptive"}
    cap : ndarray of float64, shape (n_links,)
    """
    out = mode == "adaptive" or count is not None
    up = supernode_routing(fabric) == "adaptive"
    if not (out or up):
        return None
    groups = link_groups(fabric, out, up)
    if groups is None:
        return None
    ext = groups.virtual(links, len(cap))
    per_flow = np.ones(len(owner)) if count is None else count[owner]
    capx = grouped_capacity(groups, cap, ext, np.repeat(per_flow, hops), mode)
    return ext, capx, groups
