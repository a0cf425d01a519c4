"""Validated models of the hardware a cluster is built from.

What is modelled: an accelerator package (compute peaks, HBM, scale-up and scale-out
interfaces), a link technology (lanes, encoding, protocol overhead, per-hop latency, medium),
an optical module or copper cable, a switch chip (port configurations, latency, in-network
reduction), and the bundle of those that makes one interconnect domain.

Why: cluster files name these parts and a standards committee compares interconnect specs
field by field, so every figure is explicit, carries its unit in its name and is checked on
load (docs/architecture.md decisions 1, 2); properties convert once to SI (FLOP/s, bytes, B/s, s). A
figure no citable source gives stays ``None`` and ``unset_fields()`` names it, so reports say
"unknown: price_USD" rather than use a guess. Conventions of ``docs/sources.md``:
GB = 1e9 bytes, TB/s = 1e12 B/s, Gb/s = 1e9 bit/s, bandwidths per direction.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, model_validator

from oassim.errors import SpecError
from oassim.specio import SpecModel

__all__ = [
    "Positive", "NonNegative", "Fraction", "Count", "NonNegativeCount", "Flag", "Name", "SourceId",
    "count_at_least", "ratio_at_least",
    "Precision", "Medium", "ModuleTechnology", "HardwarePart", "Accelerator", "LinkTechnology",
    "OpticalModule", "PortConfig", "Switch", "PART_MODELS",
]

Precision = Literal["bf16", "fp16", "fp8", "mxfp8", "nvfp4"]
Medium = Literal["copper", "optical", "backplane", "pcb"]
ModuleTechnology = Literal["dsp", "lpo", "cpo", "dac", "lacc", "aec"]

# Numbers are strict: YAML already types them, so "400" (a string) or true (a bool) in a
# numeric field is a mistake to report, not to coerce, and 2.5 is not a count. Infinity and
# NaN are never figures. Every spec model (parts, interconnect, cluster, family geometry)
# takes its number types from here, so a figure is checked the same way in every file.
Positive = Annotated[float, Field(gt=0, strict=True, allow_inf_nan=False)]
NonNegative = Annotated[float, Field(ge=0, strict=True, allow_inf_nan=False)]
Fraction = Annotated[float, Field(gt=0, le=1, strict=True, allow_inf_nan=False)]
Count = Annotated[int, Field(gt=0, strict=True)]
NonNegativeCount = Annotated[int, Field(ge=0, strict=True)]
Flag = Annotated[bool, Field(strict=True)]
Name = Annotated[str, Field(min_length=1, strict=True)]
SourceId = Annotated[str, Field(pattern=r"^S\d+[a-z]?$", strict=True)]


def count_at_least(low: int) -> Any:
    """Strict whole-number type ``>= low`` (a bool, a float or a string is refused)."""
    return Annotated[int, Field(ge=low, strict=True)]


def ratio_at_least(low: float) -> Any:
    """Strict finite-number type ``>= low`` (ratios such as an oversubscription)."""
    return Annotated[float, Field(ge=low, strict=True, allow_inf_nan=False)]


_GB, _TB, _TERA, _NS = 1e9, 1e12, 1e12, 1e-9
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

_COPPER_TECHNOLOGIES = frozenset({"dac", "lacc", "aec"})


class _CheckedKeys(SpecModel):
    """Spec model whose keys must be plain names: they end up in one-line error paths."""

    @model_validator(mode="before")
    @classmethod
    def _keys_are_names(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key in data:
                if not isinstance(key, str) or not _KEY.match(key):
                    raise ValueError(f"invalid key {key!r}: keys are plain names such as 'power_W'")
        return data


class HardwarePart(_CheckedKeys):
    """Fields every hardware spec shares: identity, provenance and notes.

    Parameters
    ----------
    name : str
        Preset or part name (filled from the preset key in catalog files).
    description : str
        One line for reports.
    sources : list of str
        Source ids of ``docs/sources.md`` the figures come from
        (``"S2"``, ``"S11b"``).
    notes : str
        Caveats: derived or low-confidence figures, and which figures are "not published
        in reference".
    """

    # Optional fields that are not figures: None there means "absent", not "unknown".
    _not_figures: ClassVar[frozenset[str]] = frozenset()

    name: Name
    description: str = ""
    sources: list[SourceId] = []
    notes: str = ""

    def unset_fields(self) -> list[str]:
        """Figure fields left unset (``None``), e.g. ``["power_W"]``; reports say "unknown"."""
        return [
            f for f, info in type(self).model_fields.items()
            if info.default is None and f not in self._not_figures and getattr(self, f) is None
        ]

    def _require(self, what: str, *fields: str) -> None:
        missing = ", ".join(f for f in fields if getattr(self, f) is None)
        if missing:
            raise SpecError(f"{type(self).__name__.lower()} '{self.name}': {what} is unknown "
                            f"({missing} not set); give it in the spec to use it")


class _HasLatency:
    """Mixin (not a model, so it adds no field): ``latency_s`` from the ``latency_ns`` field."""

    @property
    def latency_s(self) -> float:
        """``latency_ns`` in s; 0.0 when unset (then listed by ``unset_fields``)."""
        latency_ns = self.latency_ns  # type: ignore[attr-defined]
        return 0.0 if latency_ns is None else latency_ns * _NS


class Accelerator(HardwarePart):
    """One accelerator package (GPU, NPU, TPU chip) as one rank of the simulator.

    Parameters
    ----------
    vendor : str
        Vendor name.
    bf16_dense_TFLOPS : float
        Dense (no structured sparsity) BF16 peak, 1e12 FLOP/s.
    fp8_dense_TFLOPS, fp16_dense_TFLOPS : float or None
        Dense FP8 (per-tensor scaled E4M3/E5M2) / FP16 peaks, 1e12 FLOP/s; None when the chip
        lacks the format or no source gives it.
    mxfp8_dense_TFLOPS, nvfp4_dense_TFLOPS : float or None
        Dense peaks of the block-scaled formats, 1e12 FLOP/s: MXFP8 (OCP microscaling, 32
        elements per E8M0 scale) and NVFP4 (E2M1, 16 elements per E4M3 scale); None on chips
        whose tensor cores do not take them (Hopper, Ampere, MI300X).
    hbm_capacity_GB, hbm_bandwidth_TBps : float
        HBM capacity as the vendor labels it, 1e9 bytes; HBM bandwidth, 1e12 bytes/s.
    power_W, price_USD : float or None
        Maximum board/package power, W; unit price, USD.
    scaleup_links : int or None
        Scale-up links per chip.
    scaleup_link_GBps : float or None
        Data rate of one scale-up link, per direction, 1e9 bytes/s.
    scaleup_fabric : str
        Scale-up fabric name (``"NVLink 4"``, ``"Unified Bus (UB)"``).
    scaleout_nic_ports, scaleout_port_Gbps : int, float or None
        Scale-out NIC ports per chip; rate of one port per direction, 1e9 bit/s.
    """

    vendor: Name
    bf16_dense_TFLOPS: Positive
    fp8_dense_TFLOPS: Positive | None = None
    fp16_dense_TFLOPS: Positive | None = None
    mxfp8_dense_TFLOPS: Positive | None = None
    nvfp4_dense_TFLOPS: Positive | None = None
    hbm_capacity_GB: Positive
    hbm_bandwidth_TBps: Positive
    power_W: NonNegative | None = None
    price_USD: NonNegative | None = None
    scaleup_links: Count | None = None
    scaleup_link_GBps: Positive | None = None
    scaleup_fabric: str = ""
    scaleout_nic_ports: Count | None = None
    scaleout_port_Gbps: Positive | None = None

    def peak_flops(self, precision: Precision) -> float:
        """Dense peak at ``precision``, FLOP/s.

        Parameters
        ----------
        precision : {"bf16", "fp16", "fp8", "mxfp8", "nvfp4"}
            Arithmetic format of the matrix multiplications.

        Raises
        ------
        SpecError
            If the precision is unknown or the accelerator's spec leaves it unset.
        """
        field = {p: f"{p}_dense_TFLOPS" for p in ("bf16", "fp16", "fp8", "mxfp8", "nvfp4")}
        if precision not in field:
            raise SpecError(f"unknown precision {precision!r} (allowed: {', '.join(field)})")
        value = getattr(self, field[precision])
        if value is None:
            raise SpecError(f"accelerator '{self.name}' has no {precision} peak ({field[precision]}"
                            " not set: the chip lacks the format or no source gives it)")
        return float(value) * _TERA

    @property
    def hbm_capacity_bytes(self) -> float:
        """HBM capacity, bytes (decimal GB, as labelled by the vendor)."""
        return self.hbm_capacity_GB * _GB

    @property
    def hbm_bandwidth_Bps(self) -> float:
        """HBM bandwidth, bytes/s."""
        return self.hbm_bandwidth_TBps * _TB

    @property
    def scaleup_link_bandwidth_Bps(self) -> float:
        """Data rate of one scale-up link per direction, bytes/s (SpecError if unset)."""
        self._require("scale-up link bandwidth", "scaleup_link_GBps")
        return float(self.scaleup_link_GBps) * _GB  # type: ignore[arg-type]

    @property
    def scaleup_bandwidth_Bps(self) -> float:
        """Scale-up bandwidth of the chip per direction (all links), bytes/s."""
        self._require("scale-up bandwidth", "scaleup_links", "scaleup_link_GBps")
        return self.scaleup_links * self.scaleup_link_bandwidth_Bps  # type: ignore[operator]

    @property
    def scaleout_bandwidth_Bps(self) -> float:
        """Scale-out NIC bandwidth of the chip per direction (all ports), bytes/s."""
        self._require("scale-out bandwidth", "scaleout_nic_ports", "scaleout_port_Gbps")
        ports, rate = self.scaleout_nic_ports, self.scaleout_port_Gbps
        return ports * rate * 1e9 / 8  # type: ignore[operator]


class LinkTechnology(_HasLatency, HardwarePart):
    """One point-to-point link technology (a PHY plus its link/transport framing).

    ``bandwidth_Bps`` is the data rate after line encoding and before protocol headers; the
    network layer multiplies by ``efficiency`` for payload throughput.

    Parameters
    ----------
    kind : {"scale_up", "scale_out"}
        Domain the technology serves.
    lane_rate_Gbps : float
        Signalling rate of one lane per direction, 1e9 bit/s. When a source gives only a
        per-link rate, presets model the link as one lane at that rate and say so in notes.
    lanes : int
        Lanes per link.
    encoding_efficiency : float
        Data rate / signalling rate, in (0, 1] (UALink 200G: 200 / 212.5).
    header_bytes, mtu_bytes : int or None
        Per-packet header and payload size, bytes; give both to derive protocol efficiency.
    protocol_efficiency : float or None
        Payload / wire bytes in (0, 1]; None derives ``mtu / (mtu + header)``.
    latency_ns, reach_m : float or None
        Latency one hop adds (PHY + FEC), ns; maximum link length, m.
    medium : {"copper", "optical", "backplane", "pcb"}
        Usual medium of the technology (a topology may override it per placement).
    in_network_reduction : bool
        The technology supports reductions computed in its switches.
    """

    kind: Literal["scale_up", "scale_out"]
    lane_rate_Gbps: Positive
    lanes: Count
    encoding_efficiency: Fraction = 1.0
    header_bytes: NonNegativeCount | None = None
    mtu_bytes: Count | None = None
    protocol_efficiency: Fraction | None = None
    latency_ns: NonNegative | None = None
    medium: Medium
    reach_m: Positive | None = None
    in_network_reduction: Flag = False

    def unset_fields(self) -> list[str]:
        """Unset figure fields; ``protocol_efficiency`` only when it cannot be derived."""
        out = super().unset_fields()
        if self.protocol_efficiency is None and self._derived_efficiency() is not None:
            out.remove("protocol_efficiency")
        return out

    def _derived_efficiency(self) -> float | None:
        if self.mtu_bytes is None or self.header_bytes is None:
            return None
        return self.mtu_bytes / (self.mtu_bytes + self.header_bytes)

    @property
    def rate_Gbps(self) -> float:
        """Data rate of one link per direction, 1e9 bit/s (lane rate x lanes x encoding)."""
        return self.lane_rate_Gbps * self.lanes * self.encoding_efficiency

    @property
    def bandwidth_Bps(self) -> float:
        """Data rate of one link per direction, bytes/s."""
        return self.rate_Gbps * 1e9 / 8

    @property
    def efficiency(self) -> float:
        """Protocol efficiency: explicit, else mtu/(mtu+header), else 1.0."""
        if self.protocol_efficiency is not None:
            return self.protocol_efficiency
        derived = self._derived_efficiency()
        return 1.0 if derived is None else derived


class OpticalModule(_HasLatency, HardwarePart):
    """One optical transceiver, co-packaged optics port, or copper cable end.

    Parameters
    ----------
    rate_Gbps : float
        Data rate per direction, 1e9 bit/s.
    form_factor : str or None
        ``"OSFP"``, ``"QSFP112"``, ``"CPO"``...; None when no source states it.
    technology : {"dsp", "lpo", "cpo", "dac", "lacc", "aec"}
        ``dsp``: conventional retimed pluggable; ``lpo``: linear pluggable (no DSP);
        ``cpo``: co-packaged optics; ``dac``/``lacc``/``aec``: passive, linear-active and
        retimed active copper cables.
    power_W, latency_ns : float or None
        Power of one module (one cable end), W; latency it adds, ns.
    afr_pct, price_USD, reach_m : float or None
        Annualised failure rate, %/year; unit price, USD; maximum reach, m.
    ports : int
        Links one module serves (2 for a twin-port OSFP carrying 2 x 400G), >= 1.
    """

    _not_figures: ClassVar[frozenset[str]] = frozenset({"form_factor", "ports"})

    rate_Gbps: Positive
    form_factor: str | None = None
    technology: ModuleTechnology
    power_W: NonNegative | None = None
    latency_ns: NonNegative | None = None
    afr_pct: NonNegative | None = None
    price_USD: NonNegative | None = None
    reach_m: Positive | None = None
    ports: Count = 1

    @property
    def medium(self) -> Medium:
        """``"copper"`` for cables (dac, lacc, aec), else ``"optical"``."""
        return "copper" if self.technology in _COPPER_TECHNOLOGIES else "optical"

    @property
    def bandwidth_Bps(self) -> float:
        """Data rate per direction, bytes/s."""
        return self.rate_Gbps * 1e9 / 8


class PortConfig(_CheckedKeys):
    """One way to split a switch's SerDes into ports.

    Parameters
    ----------
    ports : int
        Number of ports in this configuration.
    rate_Gbps : float or None
        Rate of each port per direction, 1e9 bit/s; None only for a rate-agnostic optical
        circuit switch.
    """

    ports: Count
    rate_Gbps: Positive | None = None


class Switch(_HasLatency, HardwarePart):
    """One switch chip (or one optical circuit switch).

    Parameters
    ----------
    kind : {"electrical", "ocs"}
        Packet switch or optical circuit switch (rate-agnostic, circuits only).
    capacity_Tbps : float or None
        Sum of port rates in one direction, 1e12 bit/s.
    port_configs : list of PortConfig
        Supported port configurations, the default first.
    latency_ns : float or None
        Port-to-port latency, ns.
    in_network_reduction : bool
        The switch computes reductions (NVLink SHARP, in-switch AllReduce).
    power_W, price_USD : float or None
        Power (W) and unit price (USD).
    """

    kind: Literal["electrical", "ocs"] = "electrical"
    capacity_Tbps: Positive | None = None
    port_configs: Annotated[list[PortConfig], Field(min_length=1)]
    latency_ns: NonNegative | None = None
    in_network_reduction: Flag = False
    power_W: NonNegative | None = None
    price_USD: NonNegative | None = None

    @model_validator(mode="after")
    def _check_ports(self) -> "Switch":
        for i, cfg in enumerate(self.port_configs):
            if cfg.rate_Gbps is None and self.kind != "ocs":
                raise ValueError(
                    f"port_configs[{i}].rate_Gbps is required for an electrical switch "
                    "(only kind 'ocs' is rate-agnostic)"
                )
            if cfg.rate_Gbps is not None and self.capacity_Tbps is not None:
                total = cfg.ports * cfg.rate_Gbps / 1e3
                if total > self.capacity_Tbps * (1 + 1e-9):
                    raise ValueError(
                        f"port_configs[{i}]: {cfg.ports} x {cfg.rate_Gbps:g} Gb/s = {total:g} "
                        f"Tb/s exceeds capacity_Tbps {self.capacity_Tbps:g}"
                    )
        return self

    def unset_fields(self) -> list[str]:
        """Unset figure fields (an OCS has no capacity, so it is not listed there)."""
        out = super().unset_fields()
        return [f for f in out if not (self.kind == "ocs" and f == "capacity_Tbps")]

    @property
    def radix(self) -> int:
        """Ports of the default (first) configuration."""
        return self.port_configs[0].ports

    @property
    def port_rate_Gbps(self) -> float | None:
        """Port rate of the default configuration, 1e9 bit/s (None for an OCS)."""
        return self.port_configs[0].rate_Gbps

    def ports_at(self, rate_Gbps: float) -> int:
        """Ports available at ``rate_Gbps`` (1e9 bit/s).

        An OCS switches light, not packets, so any rate passes at its full radix.

        Raises
        ------
        SpecError
            If no port configuration runs at that rate; the message lists the rates.
        """
        if self.kind == "ocs":
            return self.radix
        for cfg in self.port_configs:
            if cfg.rate_Gbps is not None and math.isclose(cfg.rate_Gbps, rate_Gbps):
                return cfg.ports
        rates = ", ".join(f"{c.ports} x {c.rate_Gbps:g}" for c in self.port_configs)
        raise SpecError(
            f"switch '{self.name}' has no {rate_Gbps:g} Gb/s ports (supported: {rates} Gb/s)"
        )


PART_MODELS: dict[str, type[HardwarePart]] = {
    "accelerator": Accelerator, "link": LinkTechnology, "module": OpticalModule,
    "switch": Switch,
}
