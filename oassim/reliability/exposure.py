"""What can fail in a cluster, how often, and what one failure takes down (blast radius).

What is modelled: the topology builder's counts (``oassim topo info``, the mapping of
:func:`oassim.topology.metrics.cluster_info`: accelerators, NICs, switches by tier, cables and
optical links by tier) are turned into *exposures*: one Poisson failure source per (component
type, tier), with its rate (count x FIT of :mod:`oassim.reliability.rates`) and its effect on a
training job that uses the whole cluster:

- ``stop``: the job fails, restarts from its last checkpoint after detection and restart, and,
  when the failure takes hardware out (``units_out`` accelerators: an 8-GPU node, an NVL72 compute
  tray, the hosts of one rail under a leaf switch, a 4x4x4 torus cube behind an OCS port
  group), restarts on spares from the pool or waits for the repair;
- ``degraded``: the job continues on the fabric with one element fewer (a spine, a
  switch-to-switch link, one NVSwitch chip of an NVL72 rack, one UB-Mesh direct link), at an
  iteration time longer by ``comm_fraction * f / (1 - f)`` until the repair, where ``f`` is the
  share of a synchronised rank's bandwidth on that tier the element carried (one of its ``k``
  parallel links: ``f = 1/k``). Whether the job also stops first (single-path RDMA
  connections break) is the campaign's ``link_loss`` choice (:class:`~oassim.reliability.campaign.CampaignParams`).

Why structural: the blast radius follows from the family (docs/architecture.md decision 13);
the degraded slowdown uses the tier's parallelism, not a re-costing of the collectives on the
degraded fabric by the network model unless asked (:mod:`oassim.reliability.recost` does that
and sets ``Exposure.slowdown``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from oassim.reliability.rates import HOURS_PER_FIT, ResolvedRate

__all__ = ["Exposure", "ClusterShape", "exposures", "component_counts", "blast_radius"]

Action = Literal["stop", "degraded"]

_ACCEL_COMPONENTS = ("accelerator", "hbm", "software", "collective_timeout")
_HOST_COMPONENTS = ("host", "host_maintenance")
_SCALEUP_TIERS = ("scaleup", "scaleup-l1", "scaleup-l2")


@dataclass(frozen=True)
class ClusterShape:
    """What the blast radius rules need to know of a cluster beyond its counts."""

    name: str
    family: str | None  # supernode family (switched, clos2, fullmesh, torus, ...)
    accelerator: str
    accelerators: int
    domain_size: int
    accelerators_per_host: int | None
    ocs_group: int | None = None  # torus: accelerators of one OCS-joined cube


@dataclass(frozen=True)
class Exposure:
    """One failure source of a cluster.

    ``count`` units fail at ``rate_FIT`` each; ``per_hour`` is the source's total rate (1/h).
    """

    component: str
    tier: str
    cause: str
    count: int
    rate_FIT: float
    action: Action
    units_out: int  # accelerators taken out until repaired (0: none)
    fraction: float  # degraded: share of a rank's bandwidth on the tier that is lost
    blast: str  # what one failure takes down, in words
    slowdown: float | None = None  # degraded: re-costed collective slowdown (None: f / (1 - f))

    @property
    def degraded_slowdown(self) -> float:
        """Fractional slowdown of the communication a degraded element sets."""
        if self.slowdown is not None:
            return self.slowdown
        return self.fraction / max(1e-9, 1.0 - self.fraction)

    @property
    def per_hour(self) -> float:
        return self.count * self.rate_FIT / HOURS_PER_FIT


def component_counts(info: dict[str, Any], shape: ClusterShape) -> list[tuple[str, str, int]]:
    """(component type, tier, count) of a cluster from its ``cluster_info`` mapping.

    Accelerator-level parts count accelerators; host parts count hosts (accelerators /
    accelerators per host, unknown when the cluster has no host size); NICs count NIC nodes;
    switches count switch nodes by tier (scale-up tiers as ``scaleup_switch``); links count
    optical links (``optical_link``) and copper cables (``copper_link``) by tier. On-board
    (``pcb``) links are part of their host and are not counted.
    """
    out: list[tuple[str, str, int]] = []
    a = int(info["accelerators"])
    for comp in _ACCEL_COMPONENTS:
        out.append((comp, "accelerator", a))
    if shape.accelerators_per_host:
        for comp in _HOST_COMPONENTS:
            out.append((comp, "host", -(-a // shape.accelerators_per_host)))
    for row in info["nodes"]:
        kind, tier, n = row["kind"], row["tier"], int(row["count"])
        if kind == "nic":
            out.append(("nic", tier, n))
        elif kind == "switch":
            out.append(("scaleup_switch" if tier in _SCALEUP_TIERS else "switch", tier, n))
        elif kind == "ocs":
            out.append(("ocs", tier, n))
    for row in info["links"]:
        if row["medium"] == "optical":
            out.append(("optical_link", row["tier"], int(row["optical_links"])))
        elif row["medium"] == "copper":
            out.append(("copper_link", row["tier"], int(row["cables"])))
    return out


def _count(info: dict[str, Any], kind: str, tier: str) -> int:
    return sum(int(r["count"]) for r in info["nodes"] if r["kind"] == kind and r["tier"] == tier)


def _links(info: dict[str, Any], tier: str) -> int:
    return sum(int(r["cables"]) for r in info["links"] if r["tier"] == tier)


def _below(tier: str) -> tuple[str, str] | None:
    """The (node kind, tier) whose uplinks a link or switch tier carries."""
    return {"leaf-spine": ("switch", "leaf"), "spine-core": ("switch", "spine"),
            "spine": ("switch", "leaf"), "core": ("switch", "spine"),
            "scaleup-l2": ("switch", "scaleup-l1")}.get(tier)


def _uplink_fraction(info: dict[str, Any], tier: str, link_tier: str, per: str = "cables") -> float:
    """Share of one lower element's uplink bandwidth that one element of ``tier`` carries: one of
    its uplink cables (``per="cables"``), or one of the switches it connects to, which takes
    the whole bundle of cables to it (``per="edges"``: one edge per switch pair)."""
    low = _below(tier)
    n_low = _count(info, *low) if low else 0
    links = sum(int(r[per]) for r in info["links"] if r["tier"] == link_tier)
    return min(1.0, n_low / links) if n_low and links else 1.0


def blast_radius(comp: str, tier: str, info: dict[str, Any], shape: ClusterShape) -> tuple[Action, int, float, str]:
    """(action, accelerators out, degraded fraction, words) of one failure of ``comp`` on ``tier``.

    A host part of a cluster with no known host size takes out its own accelerator only.
    """
    aph = shape.accelerators_per_host or 0
    host = aph or 1
    a, dom = shape.accelerators, shape.domain_size
    if comp in ("software", "collective_timeout"):
        return "stop", 0, 0.0, "the job (restart in place)"
    if comp in ("accelerator", "hbm", "host", "host_maintenance", "nic"):
        if not aph:
            return "stop", 1, 0.0, "its accelerator (host size unknown)"
        what = "an NVL72 compute tray" if shape.family == "switched" and dom > 8 else "a host"
        return "stop", host, 0.0, f"{what} ({aph} accelerators)"
    if comp == "rack":
        return "stop", dom, 0.0, f"a rack ({dom} accelerators)"
    if comp == "optical_link" and tier == "host":
        return "stop", host, 0.0, "a NIC-to-leaf link: its host"
    if comp == "switch" and tier == "leaf":
        nics = _count(info, "nic", "nic")
        leaves = _count(info, "switch", "leaf") or 1
        ports = -(-nics // leaves)  # rail-optimised: each NIC port under a leaf is on another host
        return "stop", min(a, ports * host), 0.0, f"a leaf: the hosts of its {ports} NIC ports (one rail)"
    if shape.family == "torus" and (comp == "ocs" or tier in ("ici", "ocs-circuit")):
        cube = shape.ocs_group or dom
        return "stop", cube, 0.0, f"a torus ring: a cube of {cube} chips swapped in through the OCS"
    if comp == "scaleup_switch":
        if dom <= 8 or tier == "scaleup-l1":
            return "stop", host, 0.0, "a scale-up switch on the host board: its host"
        per_domain = _count(info, "switch", tier) / max(1, a // max(dom, 1))
        f = _uplink_fraction(info, tier, tier, "edges") if tier == "scaleup-l2" else 1.0 / max(per_domain, 1.0)
        return "degraded", 0, f, f"one scale-up switch plane (1/{1 / f:.0f} of the domain bandwidth)"
    if comp == "switch":
        link_tier = {"spine": "leaf-spine", "core": "spine-core"}.get(tier, tier)
        f = _uplink_fraction(info, tier, link_tier, "edges")
        return "degraded", 0, f, f"a {tier} switch (1/{1 / f:.0f} of the uplinks of the switches below)"
    if comp == "optical_link" and _below(tier):
        f = _uplink_fraction(info, tier, tier)
        return "degraded", 0, f, f"a {tier} link (1/{1 / f:.0f} of one switch's uplinks)"
    # one of a rank's k scale-up links: to a switch (switched, Clos domains: k = links / ranks)
    # or to a peer (full mesh: each link has two ranks, k = 2 links / ranks)
    links = _links(info, tier)
    k = (links if shape.family in ("switched", "clos2") else 2 * links) / a if a else 1.0
    f = min(1.0, 1.0 / k) if k > 0 else 1.0
    return "degraded", 0, f, f"one {tier} link (1/{1 / f:.0f} of a rank's links)"


def exposures(info: dict[str, Any], shape: ClusterShape,
              rates: dict[str, ResolvedRate]) -> tuple[list[Exposure], list[tuple[str, str, int]]]:
    """Failure sources of a cluster, and the (component, tier, count) left unset (no rate).

    Parameters
    ----------
    info : dict
        :func:`oassim.topology.metrics.cluster_info` of the cluster.
    shape : ClusterShape
    rates : dict
        :func:`oassim.reliability.rates.resolve_rates` for the cluster.
    """
    out: list[Exposure] = []
    unset: list[tuple[str, str, int]] = []
    if not shape.accelerators_per_host:
        unset += [(c, "host", 0) for c in _HOST_COMPONENTS]
    for comp, tier, n in component_counts(info, shape):
        r = rates[comp]
        if r.rate_FIT is None:
            unset.append((comp, tier, n))
            continue
        if n <= 0:
            continue
        action, units, frac, words = blast_radius(comp, tier, info, shape)
        out.append(Exposure(comp, tier, r.cause, n, r.rate_FIT, action, units, frac, words))
    return out, unset
