"""The interconnect spec file: one proposed scale-up or scale-out interconnect, field by field.

What is modelled: what a standards committee compares between interconnect proposals (lane
rate, lanes per port, line encoding, protocol overhead, per-hop latency, the switch it
specifies, the largest domain it addresses, in-network reduction, reach classes with the
optics each needs, and energy per bit), plus closed forms of what follows from them: the
payload bandwidth of one port and the largest single-tier domain.

Why a model of its own: the committee publishes the format (``oassim schema interconnect``)
and every candidate is checked on load (docs/architecture.md decision 2): unknown keys and impossible
values are one-line errors naming the key. A figure no citable source gives stays ``None``;
``unset_fields()`` names it so the report says "unknown" instead of using a guess. The
benchmark that consumes these specs (the reference cluster, the suite) lives in
``oassim.experiments.oasbench``; this module knows nothing of graphs or time.

Closed forms (stated again in ``docs/oas-bench.md``)::

    port data rate    = lane_rate_Gbps * lanes_per_port * encoding            (Gb/s, per direction)
    protocol eff.     = protocol_efficiency, else mtu / (mtu + header_bytes)
    port payload rate = port data rate * protocol eff. / 8                    (GB/s, per direction)
"""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar, Literal, Union

from pydantic import Discriminator, Field, Tag, field_validator, model_validator

from oassim.hardware.models import (  # the strict number types are the catalog's own
    Count,
    Flag,
    Fraction,
    HardwarePart,
    LinkTechnology,
    Medium,
    Name,
    NonNegative,
    NonNegativeCount,
    OpticalModule,
    Positive,
    SourceId,
    Switch,
    _CheckedKeys,
    count_at_least,
)
from oassim.specio import SpecModel

__all__ = ["InterconnectSpec", "InterconnectSwitch", "ReachClass", "encoding_fraction"]


# A line code written as data/signal bits ("64b/66b", "128b/130b") or rates ("200/212.5").
_CODE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*b?\s*/\s*(\d+(?:\.\d+)?)\s*b?\s*$")
_EncodingCode = Annotated[str, Field(pattern=_CODE.pattern, strict=True)]


def encoding_fraction(value: float | str | None) -> float:
    """Data / signalling rate of a line code: ``"64b/66b"`` -> 64/66, 0.97 -> 0.97, None -> 1.0.

    None means the spec gives its lane rate as a data rate (encoding already counted or not
    published); the caller lists it as unset.
    """
    if value is None:
        return 1.0
    if isinstance(value, str):
        m = _CODE.match(value)
        if m is None:
            raise ValueError(f"encoding {value!r} is not a code such as 64b/66b")
        return float(m.group(1)) / float(m.group(2))
    return float(value)


def _name_or_inline(value: Any) -> str:
    # Route a mapping or a model to the model branch and everything else to the name
    # branch, so an error names one problem, not one per union member. The tag names
    # ("str", "dict") are dropped from error paths by oassim.specio.
    return "dict" if isinstance(value, (dict, SpecModel)) else "str"


_ModuleRef = Annotated[
    Union[Annotated[Name, Tag("str")], Annotated[OpticalModule, Tag("dict")]],
    Discriminator(_name_or_inline),
]


class InterconnectSwitch(_CheckedKeys):
    """The switch chip an interconnect spec specifies (single tier).

    Parameters
    ----------
    radix : int
        Ports of one switch chip at the spec's port width (lanes_per_port lanes each), >= 2.
    latency_ns : float or None
        Port-to-port latency, ns.
    in_network_reduction : bool
        The switch reduces in the network (NVLink SHARP, in-switch AllReduce).
    capacity_Tbps : float or None
        Sum of port data rates in one direction, 1e12 bit/s; checked against radix x port rate.
    power_W, price_USD : float or None
        Power of one switch chip, W; its unit price, USD.
    sources : list of str
        Source ids of ``docs/sources.md`` for the switch figures.
    """

    radix: count_at_least(2)  # type: ignore[valid-type]
    latency_ns: NonNegative | None = None
    in_network_reduction: Flag = False
    capacity_Tbps: Positive | None = None
    power_W: NonNegative | None = None
    price_USD: NonNegative | None = None
    sources: list[SourceId] = []


class ReachClass(_CheckedKeys):
    """One reach class of the spec: a medium, how far it reaches, and the module it needs.

    Parameters
    ----------
    name : str
        Class name (``"copper"``, ``"optical-500m"``).
    medium : {"copper", "optical", "backplane", "pcb"}
        Physical medium of the class.
    reach_m : float or None
        Longest link of the class, m; None when not published.
    module : str, OpticalModule or None
        The optical module or cable each link end needs (an optics requirement): a preset name
        of ``topologies/hardware/optics.yaml`` or an inline module; None when links need none.
    """

    name: Name
    medium: Medium
    reach_m: Positive | None = None
    module: _ModuleRef | None = None  # type: ignore[valid-type]

    @field_validator("module", mode="before")
    @classmethod
    def _inline_name(cls, value: Any) -> Any:
        # An inline module needs no name of its own; it is called after its key.
        if isinstance(value, dict) and "name" not in value:
            return {"name": "module", **value}
        return value

    @model_validator(mode="after")
    def _module_fits_medium(self) -> "ReachClass":
        if isinstance(self.module, OpticalModule) and self.module.medium == "optical" and self.medium != "optical":
            raise ValueError(f"medium: module '{self.module.name}' is optical but the class medium is "
                             f"'{self.medium}'")
        return self


class InterconnectSpec(HardwarePart):
    """One interconnect spec file (scale-up or scale-out), as a standards committee compares it.

    Parameters
    ----------
    domain : {"scale_up", "scale_out"}
        Which network the spec proposes.
    spec_version : str
        Version of the interconnect specification itself (``"1.0"``).
    lane_rate_Gbps : float
        Signalling rate of one lane per direction, 1e9 bit/s (a data rate when ``encoding`` is
        unset).
    lanes_per_port : int
        Lanes of one port (x1, x2, x4...).
    encoding : str, float or None
        Line encoding as data/signal ``"64b/66b"`` / ``"200/212.5"``, or that fraction in
        (0, 1]; None when the lane rate is already a data rate or no source gives it.
    header_bytes, mtu_bytes : int or None
        Per-packet header and largest payload, bytes; together they give the protocol
        efficiency ``mtu / (mtu + header)``.
    protocol_efficiency : float or None
        Payload / wire bytes in (0, 1], when a source states it instead of header and MTU.
    hop_latency_ns : float or None
        Latency one link hop adds (PHY, FEC; not the switch), ns.
    ports_per_accelerator : int or None
        Ports of one accelerator on this interconnect in the spec's reference design; None
        lets OAS-Bench derive it from its fixed lane budget.
    max_domain_size : int or None
        Most accelerators the spec addresses in one domain (e.g. UALink 1,024).
    switch : InterconnectSwitch
        The switch chip (radix at this port width, latency, in-network reduction...).
    reach : list of ReachClass
        Reach classes, shortest first; each names its medium, reach and the module it needs.
    power_pJ_per_bit : float or None
        Energy of one link per bit carried, both ends' PHY/SerDes included, pJ/bit.
    """

    _not_figures: ClassVar[frozenset[str]] = frozenset({"encoding"})

    domain: Literal["scale_up", "scale_out"]
    spec_version: str = ""
    lane_rate_Gbps: Positive
    lanes_per_port: Count
    encoding: _EncodingCode | Fraction | None = None
    header_bytes: NonNegativeCount | None = None
    mtu_bytes: Count | None = None
    protocol_efficiency: Fraction | None = None
    hop_latency_ns: NonNegative | None = None
    ports_per_accelerator: Count | None = None
    max_domain_size: count_at_least(2) | None = None  # type: ignore[valid-type]
    switch: InterconnectSwitch
    reach: list[ReachClass] = []
    power_pJ_per_bit: Positive | None = None

    @field_validator("encoding")
    @classmethod
    def _encoding_is_a_fraction(cls, value: Any) -> Any:
        if isinstance(value, str) and not 0 < encoding_fraction(value) <= 1:
            raise ValueError(f"encoding {value} carries more data bits than it signals (must be <= 1)")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> "InterconnectSpec":
        if self.protocol_efficiency is not None and None not in (self.header_bytes, self.mtu_bytes):
            # model-level checks name their key first: the one-line error reads FILE: key: message
            raise ValueError("protocol_efficiency: give protocol_efficiency or header_bytes with mtu_bytes, "
                             "not both (they state the same overhead twice)")
        cap = self.switch.capacity_Tbps
        total = self.switch.radix * self.port_data_rate_Gbps / 1e3
        if cap is not None and total > cap * (1 + 1e-9):
            raise ValueError(f"switch.radix: {self.switch.radix} ports x {self.port_data_rate_Gbps:g} Gb/s = "
                             f"{total:g} Tb/s exceeds switch.capacity_Tbps {cap:g}")
        names = [r.name for r in self.reach]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"reach: reach class names must be unique ({', '.join(dup)} repeated)")
        return self

    def unset_fields(self) -> list[str]:
        """Figures left unset, with dotted paths into the switch; ``protocol_efficiency`` only
        when header and MTU do not give it, and ``encoding`` always when unset."""
        overhead = {"protocol_efficiency", "header_bytes", "mtu_bytes"}
        out = [f for f in super().unset_fields() if f not in overhead]
        if self.encoding is None:
            out.insert(0, "encoding")
        if self.protocol_efficiency_value is None:
            out.append("protocol_efficiency (or header_bytes with mtu_bytes)")
        out += [f"switch.{f}" for f in ("latency_ns", "capacity_Tbps", "power_W", "price_USD")
                if getattr(self.switch, f) is None]
        out += [f"reach[{r.name}].reach_m" for r in self.reach if r.reach_m is None]
        return out

    # -- closed forms ------------------------------------------------------------------------

    @property
    def encoding_efficiency(self) -> float:
        """Data / signalling rate (1.0 when ``encoding`` is unset)."""
        return encoding_fraction(self.encoding)

    @property
    def protocol_efficiency_value(self) -> float | None:
        """Payload / wire bytes: explicit, else ``mtu / (mtu + header)``, else None (unknown)."""
        if self.protocol_efficiency is not None:
            return self.protocol_efficiency
        if self.header_bytes is None or self.mtu_bytes is None:
            return None
        return self.mtu_bytes / (self.mtu_bytes + self.header_bytes)

    @property
    def efficiency(self) -> float:
        """Encoding x protocol efficiency (an unknown protocol efficiency counts as 1.0)."""
        proto = self.protocol_efficiency_value
        return self.encoding_efficiency * (1.0 if proto is None else proto)

    @property
    def port_data_rate_Gbps(self) -> float:
        """Data rate of one port per direction (lanes x lane rate x encoding), 1e9 bit/s."""
        return self.lane_rate_Gbps * self.lanes_per_port * self.encoding_efficiency

    @property
    def port_payload_Bps(self) -> float:
        """Payload rate of one port per direction (data rate x protocol efficiency), bytes/s."""
        proto = self.protocol_efficiency_value
        return self.port_data_rate_Gbps * 1e9 / 8 * (1.0 if proto is None else proto)

    @property
    def max_single_tier_domain(self) -> int:
        """Largest domain one switch tier reaches: the radix, capped by ``max_domain_size``."""
        cap = self.max_domain_size
        return self.switch.radix if cap is None else min(cap, self.switch.radix)

    def reach_class(self, length_m: float) -> tuple[ReachClass | None, bool]:
        """The first reach class (file order) that covers a ``length_m`` cable.

        Returns
        -------
        (ReachClass or None, bool)
            The class (None when the spec lists none that reaches) and whether the choice rests
            on an unpublished reach (a class with ``reach_m`` unset is taken to cover it).
        """
        for r in self.reach:
            if r.reach_m is None:
                return r, True
            if r.reach_m >= length_m:
                return r, False
        return None, False

    # -- as catalog parts --------------------------------------------------------------------

    def link_technology(self, name: str, medium: Medium = "copper",
                        reach_m: float | None = None) -> LinkTechnology:
        """This spec's port as a :class:`LinkTechnology` (the form cluster files take)."""
        fields: dict[str, Any] = {
            "name": name, "kind": self.domain, "lane_rate_Gbps": self.lane_rate_Gbps,
            "lanes": self.lanes_per_port, "encoding_efficiency": self.encoding_efficiency,
            "latency_ns": self.hop_latency_ns, "medium": medium, "reach_m": reach_m,
            "in_network_reduction": self.switch.in_network_reduction,
            "description": f"port of interconnect spec {self.name}", "sources": list(self.sources),
        }
        proto = self.protocol_efficiency_value
        if proto is not None:
            fields["protocol_efficiency"] = proto
        return LinkTechnology(**fields)

    def switch_part(self, name: str) -> Switch:
        """This spec's switch as a :class:`Switch` with one port configuration at the port rate."""
        sw = self.switch
        return Switch(
            name=name, capacity_Tbps=sw.capacity_Tbps, latency_ns=sw.latency_ns,
            port_configs=[{"ports": sw.radix, "rate_Gbps": self.port_data_rate_Gbps}],
            in_network_reduction=sw.in_network_reduction, power_W=sw.power_W, price_USD=sw.price_USD,
            description=f"switch of interconnect spec {self.name}", sources=list(sw.sources or self.sources),
        )
