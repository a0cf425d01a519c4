"""Single-tier switched scale-up domain (NVLink Switch style supernode).

What is modelled: ``size`` accelerators, each with ``links_per_accelerator`` scale-up links
spread round-robin over ``switches`` switch chips (accelerator link ``l`` goes to switch
``l % switches``); every switch chip reaches every accelerator, so any two accelerators are two
hops apart through any switch. This is the shape of NVIDIA's single-tier NVLink domains
(docs/sources.md B1): GB200/GB300 NVL72 has 72 GPUs, 18 switch chips and 18 links per GPU, one to
each chip [S11][S12][S13]; DGX/HGX H100 has 8 GPUs, 4 NVSwitch chips and 18 links per GPU,
which round-robin puts 5, 5, 4, 4 on the four chips [S2][S16].

Why this shape: parallel links between one accelerator and one switch are bundled into a single
edge (``count`` = links), so the graph stays at ``size * switches`` edges and the router can pick
a switch in proportion to the links the source has into it, which is what per-link load
balancing over the NVLinks of a GPU does. The switch radix is recorded on each switch node; the
design-rule checker compares it with the ports used, the builder does not.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

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
    "links_per_switch",
    "SwitchedRouter",
]

LINK_ROLES: tuple[str, ...] = ("scaleup",)
SWITCH_ROLES: tuple[str, ...] = ("scaleup",)
ROUTER = "switched"

# Tier labels written on the graph (node tier of the switches, edge tier of the links).
SWITCH_TIER = "scaleup"
LINK_TIER = "scaleup"


class Spec(SpecModel):
    """Geometry of a single-tier switched supernode.

    Parameters
    ----------
    size : int
        Accelerators in the domain (>= 2).
    switches : int
        Switch chips in the single tier (>= 1).
    links_per_accelerator : int
        Scale-up links per accelerator (>= ``switches``), spread round-robin over the chips.
    """

    size: count_at_least(2)  # type: ignore[valid-type]
    switches: Count
    links_per_accelerator: Count

    @model_validator(mode="after")
    def _check(self) -> "Spec":
        if self.links_per_accelerator < self.switches:
            raise ValueError(
                f"links_per_accelerator ({self.links_per_accelerator}) < switches "
                f"({self.switches}): "
                f"switches {self.links_per_accelerator}..{self.switches - 1} would be unused"
            )
        return self


def roles_needed(spec: Spec) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(link roles, switch roles) this geometry uses: all of them for this family."""
    return LINK_ROLES, SWITCH_ROLES


def links_per_switch(spec: Spec) -> np.ndarray:
    """Links from one accelerator to each switch chip, shape (switches,), int64.

    Link ``l`` goes to chip ``l % switches``, so the first ``L % S`` chips get one more link.
    """
    s = np.arange(spec.switches)
    base, extra = divmod(spec.links_per_accelerator, spec.switches)
    return (base + (s < extra)).astype(np.int64)


def links_built(spec: Spec, switches: Mapping[str, SwitchClass] | None = None) -> int:
    """Distinct links (graph edges) one build adds: every accelerator to every switch chip."""
    return spec.size * spec.switches


def build(
    spec: Spec,
    links: Mapping[str, LinkClass],
    switches: Mapping[str, SwitchClass],
    *,
    g: nx.Graph | None = None,
    endpoints: np.ndarray | None = None,
    accel: Mapping[str, Any] | None = None,
    name: str = "switched",
) -> nx.Graph:
    """Build a single-tier switched supernode into ``g`` and return it.

    Parameters
    ----------
    spec : Spec
        Geometry.
    links : mapping
        ``{"scaleup": LinkClass}``: the accelerator-switch link.
    switches : mapping
        ``{"scaleup": SwitchClass}``: the switch chip.
    g : networkx.Graph, optional
        Graph to extend (nodes are appended after its existing ones); a new one when None.
    endpoints : None
        Must be None: a supernode creates its own accelerators.
    accel : mapping, optional
        Extra attributes set on every accelerator node (spec, power_W, ports...).
    name : str
        Graph name when a new graph is made.

    Returns
    -------
    networkx.Graph
        The graph, with routing recorded as router ``"switched"`` and structure keys
        ``accel`` (size,), ``switches`` (switches,) node ids and ``link_counts`` (switches,).
    """
    if endpoints is not None:
        raise ValueError(
            "switched: a supernode creates its own accelerators; endpoints must be None"
        )
    require_parts("switched", links, LINK_ROLES, "link")
    require_parts("switched", switches, SWITCH_ROLES, "switch")
    link, sw = links["scaleup"], switches["scaleup"]
    if g is None:
        g = new_graph(name, "switched")
    acc_attrs = {**dict(accel or {}), "domain": 0, "rail": np.arange(spec.size), "pod": -1}
    acc_attrs.pop("rank", None)
    acc = add_nodes(g, spec.size, "accelerator", "accelerator", **acc_attrs)
    sws = add_nodes(
        g,
        spec.switches,
        "switch",
        SWITCH_TIER,
        domain=0,
        **switch_node_attrs(sw),
    )
    counts = links_per_switch(spec)
    u = np.repeat(acc, spec.switches)
    v = np.tile(sws, spec.size)
    add_links(g, u, v, link, tier=LINK_TIER, count=np.tile(counts, spec.size))
    set_routing(g, ROUTER, accel=acc, switches=sws, link_counts=counts)
    return g


def bisection_Bps(spec: Spec, links: Mapping[str, LinkClass]) -> float:
    """Bisection bandwidth between ranks < size/2 and the rest, per direction, bytes/s.

    Each switch chip ``s`` joins ``a`` accelerators of one half and ``b`` of the other, each by
    ``c_s`` links. With the accelerators pinned to their halves, the cheapest cut around chip
    ``s`` puts it on the larger half's side and cuts its ``min(a, b) * c_s`` links to the other
    half; chips are independent, so the min cut is ``min(a, b) * sum_s c_s * B =
    floor(size/2) * links_per_accelerator * B``. A chip's crossbar is non-blocking, so its
    capacity (``size * c_s`` links) never binds below that.
    """
    require_parts("switched", links, LINK_ROLES, "link")
    return float(spec.size // 2 * spec.links_per_accelerator * links["scaleup"].bandwidth_Bps)


def diameter_hops(spec: Spec) -> int:
    """Routed hops between any two accelerators: up to a chip and down again (2)."""
    return 2


class SwitchedRouter(Router):
    """accelerator -> one switch chip -> accelerator.

    The chip is chosen by ECMP over the source's links (a chip with ``c`` of the ``L`` links is
    picked with probability ``c / L``), as per-link spraying over a GPU's NVLinks does.
    """

    name = ROUTER

    def __init__(
        self,
        fabric: Any,
        *,
        accel: np.ndarray,
        switches: np.ndarray,
        link_counts: np.ndarray,
        **structure: Any,
    ):
        super().__init__(
            fabric, accel=accel, switches=switches, link_counts=link_counts, **structure
        )
        self._accel = np.asarray(accel, dtype=np.int64)
        self._switches = np.asarray(switches, dtype=np.int64)
        self._cum = np.cumsum(np.asarray(link_counts, dtype=np.int64))
        self._local = np.full(fabric.n_nodes, -1, dtype=np.int64)
        self._local[self._accel] = np.arange(len(self._accel))

    def node_paths(self, src: np.ndarray, dst: np.ndarray, salt: int) -> np.ndarray:
        """Node sequences (n, 3): [src, switch, dst]; [src, -1, -1] where src == dst."""
        src = np.asarray(src, dtype=np.int64).ravel()
        dst = np.asarray(dst, dtype=np.int64).ravel()
        if np.any(self._local[src] < 0) or np.any(self._local[dst] < 0):
            raise ValueError("switched router: src and dst must be accelerators of this supernode")
        pick = ecmp_choice(flow_hash(src, dst, salt), int(self._cum[-1]), 0)
        chip = np.searchsorted(self._cum, pick, side="right")
        out = np.stack([src, self._switches[chip], dst], axis=1)
        out[src == dst, 1:] = -1
        return out

    def spread(self, src: np.ndarray, dst: np.ndarray, salt: int = 0):
        """NVLink-style striping: each transfer goes over every switch chip the source reaches,
        in proportion to the source's links into it (paths, owner, fraction)."""
        src = np.asarray(src, dtype=np.int64).ravel()
        dst = np.asarray(dst, dtype=np.int64).ravel()
        counts = np.diff(np.concatenate(([0], self._cum)))
        n, s = len(src), len(self._switches)
        live = src != dst
        owner = np.repeat(np.arange(n, dtype=np.int64)[live], s)
        nodes = np.stack(
            [np.repeat(src[live], s), np.tile(self._switches, int(live.sum())), np.repeat(dst[live], s)], axis=1
        )
        frac = np.tile(counts / counts.sum(), int(live.sum()))
        paths = node_paths_to_paths(self.fabric, nodes)
        return paths, owner, frac
