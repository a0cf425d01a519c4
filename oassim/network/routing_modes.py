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

__all__ = ["Routing", "ROUTINGS", "scaleout_routing", "LinkGroups", "link_groups", "share_groups", "ecmp_excess",
           "grouped_capacity", "grouped"]

Routing = Literal["ecmp", "adaptive"]
ROUTINGS: tuple[str, ...] = ("ecmp", "adaptive")

_GROUPS: "weakref.WeakKeyDictionary[Fabric, LinkGroups | None]" = weakref.WeakKeyDictionary()


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


def link_groups(fabric: Fabric) -> LinkGroups | None:
    """The equal-cost groups of ``fabric`` (cached per fabric); None without a fat-tree."""
    if fabric in _GROUPS:
        return _GROUPS[fabric]
    g = equal_cost_groups(fabric)
    out = None
    if g is not None and np.any(g >= 0):
        k = int(g.max()) + 1
        inside = g >= 0
        cap = np.bincount(g[inside], weights=fabric.capacity_Bps[inside], minlength=k)
        # a bundle of parallel links is one link id (one hashed next hop carrying c ports'
        # traffic), so collisions are counted per link id
        members = np.bincount(g[inside], minlength=k)
        out = LinkGroups(g, cap, members.astype(np.int64))
    _GROUPS[fabric] = out
    return out


def share_groups(view: Fabric, groups: LinkGroups | None) -> None:
    """Give ``view`` (a copy of a fabric with other NIC capacities, same links) the equal-cost
    groups of the fabric it copies, so they are not derived again."""
    _GROUPS[view] = groups


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
    if mode != "adaptive" and count is None:
        return None
    groups = link_groups(fabric)
    if groups is None:
        return None
    ext = groups.virtual(links, len(cap))
    per_flow = np.ones(len(owner)) if count is None else count[owner]
    capx = grouped_capacity(groups, cap, ext, np.repeat(per_flow, hops), mode)
    return ext, capx, groups
