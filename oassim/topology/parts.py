"""Resolved hardware parts as the topology builders see them.

Builders never read presets or YAML; the composition root resolves the hardware catalog into
these small frozen records (SI units only, docs/architecture.md decision 1) and hands them over. That
keeps every family builder testable with hand-made parts and keeps the hardware layer free to
change its spec format.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Mapping

__all__ = ["Medium", "LinkClass", "SwitchClass", "MEDIA", "require_parts", "switch_node_attrs"]

Medium = Literal["copper", "optical", "backplane", "pcb"]
MEDIA: tuple[str, ...] = ("copper", "optical", "backplane", "pcb")


@dataclass(frozen=True, slots=True)
class LinkClass:
    """One physical link type as used in one place of a topology.

    Parameters
    ----------
    name : str
        Link technology name (a preset name such as ``"nvlink5"``), for reports.
    bandwidth_Bps : float
        Raw data rate of one physical link, per direction, bytes/s (after line encoding,
        before protocol headers; the network layer applies protocol efficiency).
    latency_s : float
        Latency one hop adds on this link (PHY, FEC, optical module, propagation), s.
    medium : {"copper", "optical", "backplane", "pcb"}
        Physical medium.
    rate_Gbps : float
        Port rate both ends must run at (the design-rule checker compares ends), Gb/s.
    module : str or None
        Optical module or cable preset name at each end, if any.
    reach_m : float or None
        Maximum length the medium/module supports, m (None: unknown).
    length_m : float or None
        Cable length in this design, m (None: not specified; reach is then not checked).
    efficiency : float
        Protocol efficiency (payload / wire bytes), 0 < e <= 1.
    """

    name: str
    bandwidth_Bps: float
    latency_s: float = 0.0
    medium: Medium = "copper"
    rate_Gbps: float | None = None
    module: str | None = None
    reach_m: float | None = None
    length_m: float | None = None
    efficiency: float = 1.0

    def __post_init__(self) -> None:
        if not self.bandwidth_Bps > 0:
            raise ValueError(f"link {self.name!r}: bandwidth must be > 0")
        if self.latency_s < 0:
            raise ValueError(f"link {self.name!r}: latency must be >= 0")
        if self.medium not in MEDIA:
            raise ValueError(f"link {self.name!r}: medium must be one of {MEDIA}")

    @property
    def port_rate_Gbps(self) -> float:
        """Port rate in Gb/s (``rate_Gbps`` or derived from the bandwidth)."""
        return self.rate_Gbps if self.rate_Gbps is not None else self.bandwidth_Bps * 8 / 1e9


@dataclass(frozen=True, slots=True)
class SwitchClass:
    """One switch chip (or switch box) as used in one tier of a topology.

    Parameters
    ----------
    name : str
        Switch preset name, for reports.
    radix : int
        Ports available at the port rate this tier uses.
    latency_s : float
        Port-to-port latency, s (0 where unpublished; reports say so).
    port_rate_Gbps : float or None
        Rate of each port at this radix, Gb/s.
    in_network_reduction : bool
        Whether the switch can reduce in the network (NVLS / SHARP style).
    power_W, price_USD : float or None
        Per switch; None where no citable figure exists.
    """

    name: str
    radix: int
    latency_s: float = 0.0
    port_rate_Gbps: float | None = None
    in_network_reduction: bool = False
    power_W: float | None = None
    price_USD: float | None = None

    def __post_init__(self) -> None:
        if self.radix < 1:
            raise ValueError(f"switch {self.name!r}: radix must be >= 1")


def require_parts(family: str, parts: Mapping[str, Any], roles: tuple[str, ...] | list[str], what: str) -> None:
    """Raise ValueError naming the roles a family builder needs but was not given."""
    missing = [r for r in roles if r not in parts]
    if missing:
        raise ValueError(f"{family}: missing {what} part(s) for role(s) {missing}; needs {list(roles)}")


def switch_node_attrs(sw: SwitchClass) -> dict[str, Any]:
    """Node attributes every builder writes on a switch of class ``sw`` (graph.py schema)."""
    return {
        "spec": sw.name,
        "radix": sw.radix,
        "port_rate_Gbps": sw.port_rate_Gbps,
        "power_W": sw.power_W,
        "price_USD": sw.price_USD,
        "in_network_reduction": sw.in_network_reduction,
        "latency_s": sw.latency_s,
    }
