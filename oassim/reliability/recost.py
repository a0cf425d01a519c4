"""Degraded fabrics: the slowdown of a failed link or switch, re-costed by the network model.

What is modelled: when one element of a tier fails and the job continues, traffic that crossed
it is spread over the element's parallel peers (ECMP re-hashing, NVLink's other switch planes,
UB-Mesh's other direct links). The degraded fabric is the intact one with every link of the
tier that touches the failed element's neighbours scaled by ``1 - share``, ``share`` being the
neighbour's bandwidth on that tier that went through the failed element (one of ``k`` equal
links: ``1/k``). A representative collective, a 1 GiB all-reduce over the data-parallel rails
for a scale-out tier or inside every scale-up domain for a scale-up tier, is costed by the
collective engine on both fabrics (analytical network model) and the ratio of the two times,
minus one, is the degraded slowdown of that collective; the campaign scales it by
``comm_fraction`` (:class:`~oassim.reliability.campaign.CampaignParams`).

Why re-cost rather than use ``f / (1 - f)``: the failed element slows the collective only as
much as it is that collective's bottleneck; a spine whose tier has headroom costs less than its
share of bandwidth (docs/architecture.md decision 13). The collective runs the algorithm the
engine's tuner picks on the intact fabric (``auto``; a tuner does not know of the failure) on
both; an in-network (NVLS) all-reduce, which the engine costs from the switch rate, does not
see the degraded links.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from oassim.collectives import CollectiveEngine, CollectiveRequest, make_groups
from oassim.reliability.exposure import Exposure
from oassim.topology.fabric import Fabric

__all__ = ["degraded_fabric", "recost_slowdown", "recost_exposures", "SCALEUP_TIERS", "RECOST_BYTES"]

#: Link and switch tiers whose collectives run inside the scale-up domains.
SCALEUP_TIERS = ("scaleup", "scaleup-l1", "scaleup-l2", "ici", "ocs-circuit", "mesh-dim0", "mesh-dim1",
                 "mesh-dim2", "mesh-dim3")

#: Size of the representative all-reduce, bytes.
RECOST_BYTES = 2**30

_SWITCH_LINKS = {"spine": "leaf-spine", "core": "spine-core", "scaleup-l2": "scaleup-l2", "scaleup": "scaleup"}


def _scale_neighbourhood(fabric: Fabric, bw: np.ndarray, nodes: np.ndarray, failed: np.ndarray, tier: int) -> None:
    """Scale every ``tier`` link of each node in ``nodes`` by 1 - its share through ``failed``
    links (a link between two such nodes takes the smaller factor, once)."""
    nodes = np.unique(nodes)
    near = np.flatnonzero((fabric.link_tier == tier)
                          & (np.isin(fabric.link_src, nodes) | np.isin(fabric.link_dst, nodes)))
    src, dst, lbw, lost_bw = fabric.link_src[near], fabric.link_dst[near], fabric.link_bw[near], failed[near]
    factor = np.ones(len(near))
    for u in nodes:
        out = src == u
        total = float(lbw[out].sum())
        lost = float(lbw[out & lost_bw].sum())
        if total > 0 and lost > 0:
            mine = out | (dst == u)
            factor[mine] = np.minimum(factor[mine], max(1e-6, 1.0 - lost / total))
    bw[near] *= factor


def degraded_fabric(fabric: Fabric, component: str, tier: str) -> Fabric | None:
    """The fabric with one element of ``tier`` failed (``component`` "switch"/"scaleup_switch"
    for a switch node, else a link), its traffic spread over the neighbours' other links of that
    tier; None when the fabric has no such element."""
    bw = fabric.link_bw.copy()
    if component in ("switch", "scaleup_switch"):
        if tier not in fabric.tier_names or _SWITCH_LINKS.get(tier) not in fabric.link_tier_names:
            return None
        t = fabric.link_tier_names.index(_SWITCH_LINKS[tier])
        cand = np.flatnonzero(fabric.node_tier == fabric.tier_names.index(tier))
        if not len(cand):
            return None
        x = int(cand[0])
        failed = (fabric.link_tier == t) & ((fabric.link_src == x) | (fabric.link_dst == x))
        neighbours = np.where(fabric.link_src[failed] == x, fabric.link_dst[failed], fabric.link_src[failed])
    else:
        if tier not in fabric.link_tier_names:
            return None
        t = fabric.link_tier_names.index(tier)
        ids = np.flatnonzero(fabric.link_tier == t)
        if not len(ids):
            return None
        u, v = int(fabric.link_src[ids[0]]), int(fabric.link_dst[ids[0]])
        failed = (fabric.link_tier == t) & (((fabric.link_src == u) & (fabric.link_dst == v))
                                            | ((fabric.link_src == v) & (fabric.link_dst == u)))
        neighbours = np.array([u, v])
    _scale_neighbourhood(fabric, bw, neighbours, failed, t)
    return fabric.with_links(link_bw=bw)


def _allreduce(fabric: Fabric, groups: str, algorithm: str = "auto") -> tuple[float, str]:
    """(time, algorithm) of the representative all-reduce on ``fabric``."""
    eng = CollectiveEngine(fabric, "analytical")
    g = make_groups(eng.caps, None, groups)
    r = eng.run(CollectiveRequest("all_reduce", RECOST_BYTES, g, algorithm, 0, source="reliability"))
    return float(r.time_s), str(r.algorithm)


def recost_slowdown(fabric: Fabric, component: str, tier: str, algorithm: str = "auto") -> float | None:
    """Fractional slowdown of the representative all-reduce when one ``component`` of ``tier``
    fails (None: the fabric has no such element)."""
    deg = degraded_fabric(fabric, component, tier)
    if deg is None:
        return None
    groups = "domain" if tier in SCALEUP_TIERS else "rail"
    t0, algo = _allreduce(fabric, groups, algorithm)
    return max(0.0, _allreduce(deg, groups, algo)[0] / t0 - 1.0)


def recost_exposures(fabric: Fabric, exps: list[Exposure],
                     memo: dict | None = None) -> tuple[list[Exposure], list[str]]:
    """Degraded exposures with their re-costed slowdown (``Exposure.slowdown``), and notes.

    Each distinct (component, tier) is costed once (and kept in ``memo``, a dict the caller
    keeps per fabric); an exposure whose element the fabric does not hold keeps the structural
    ``f / (1 - f)``, and a note says so.
    """
    intact: dict[str, float] = memo.setdefault("intact", {}) if memo is not None else {}
    done: dict[tuple[str, str], float | None] = memo.setdefault("slowdown", {}) if memo is not None else {}
    out, notes = [], []
    for e in exps:
        if e.action != "degraded":
            out.append(e)
            continue
        groups = "domain" if e.tier in SCALEUP_TIERS else "rail"
        key = (e.component, e.tier)
        if key not in done:
            deg = degraded_fabric(fabric, e.component, e.tier)
            if deg is not None and groups not in intact:
                intact[groups] = _allreduce(fabric, groups)
            if deg is not None:  # the algorithm the tuner picks on the intact fabric (it does not know)
                t0, algo = intact[groups]
                done[key] = max(0.0, _allreduce(deg, groups, algo)[0] / t0 - 1.0)
            else:
                done[key] = None
        slow = done[key]
        if slow is None:
            notes.append(f"{e.component}:{e.tier}: not re-costed (no such element in the fabric), f/(1-f) used")
            out.append(e)
            continue
        notes.append(f"{e.component}:{e.tier}: 1 GiB all-reduce ({groups}) {100 * slow:.2f}% slower on the "
                     f"degraded fabric (structural bound {100 * e.fraction / (1 - e.fraction):.2f}%)")
        out.append(dataclasses.replace(e, slowdown=slow))
    return out, notes
