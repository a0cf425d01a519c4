"""Collective-library efficiency parameters: achievable fractions and per-step overheads.

What is modelled: what a collective library (NCCL of a given generation) gets out of the
hardware beyond the raw link rates, in four kinds of numbers, kept in ONE documented file
(``topologies/hardware/collective_tuning.yaml``, a preset a user copies and edits):

- ``link_efficiency``: achievable fraction of a link technology's payload bandwidth (packet
  headers, flow control, copy-engine and SM limits), one value per link family;
- ``in_network_efficiency``: achievable fraction of the ranks' link rate in in-network
  reduction phases (NVLS / SHARP protocol: multimem loads and stores, flag round trips);
- ``in_network_switches``: per switch part, the rate at which its reduction and multicast
  engines deliver payload from *other* ranks to each port (``rate_GBps``). An NVLS
  all-reduce of S on n ranks moves ``S (n + 1) / n`` over each rank's links but ``2 (n - 1)
  / n S`` of it comes from other ranks through those engines, so the switch bounds the bus
  bandwidth at ``rate_GBps`` while the link bound ``eta B 2 (n - 1) / (n + 1)`` still grows
  with n: H100 NVLS rises 420 -> 480 GB/s from 5 to 8 GPUs (link bound, docs/sources.md
  S22, nccl#1455) while NVLink 5 domains stop at ~850 GB/s on 8 and on 72 GPUs (switch
  bound, S21);
- ``step_overhead_us``: software cost of one algorithm step (synchronisation and pipeline
  slice hand-off between neighbours), paid once per latency step;
- ``launch_overhead_us``: fixed cost of one collective call (kernel launch, pipeline fill and
  drain);
- ``low_latency``: NCCL's LL protocol for small messages, with its own launch and step
  overheads and a bandwidth factor (LL stores 4 bytes of data with a 4-byte flag in every
  8-byte word, so it moves half the bytes of the Simple protocol per unit time: 0.5, NCCL's
  ``src/device/prims_ll.h`` design). A collective runs under whichever of Simple and LL is
  faster, as NCCL's tuner picks a protocol per size; in-network (NVLS) phases are Simple only.

Why here and not in code: docs/architecture.md says efficiency parameters belong to the hardware and
framework generation, never to one run, and must be fitted on some measurements and checked on
others. ``python -m oassim.collectives.calibrate`` refits them and prints the per-row errors;
the file records which rows were fitted and which held out. The ``ideal`` profile (all
fractions 1, no overheads) is what closed-form tests use.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import Field

from oassim.errors import SpecError
from oassim.presets import find_preset
from oassim.specio import SpecModel, read_yaml, validate

__all__ = [
    "LinkFamily",
    "SwitchFamily",
    "LowLatencyProtocol",
    "FitRecord",
    "TuningProfile",
    "TuningFile",
    "Tuning",
    "load_tuning",
    "load_tuning_file",
    "tuning_path",
    "profile_dict",
    "TUNING_PRESET",
]

TUNING_PRESET = "collective_tuning"


class LinkFamily(SpecModel):
    """One achievable fraction shared by a family of link technologies."""

    technologies: list[str] = Field(min_length=1)
    value: float = Field(gt=0, le=1)
    notes: str = ""


class SwitchFamily(SpecModel):
    """Reduction / multicast rate of a family of in-network reducing switches."""

    switches: list[str] = Field(min_length=1)
    rate_GBps: float = Field(gt=0, description="payload from other ranks delivered per port, GB/s")
    notes: str = ""


class FitRecord(SpecModel):
    """Which measurements a profile was fitted on and checked against."""

    source: str = ""
    fit_rows: list[str] = Field(default_factory=list)
    check_rows: list[str] = Field(default_factory=list)
    tolerance_pct: float = Field(default=15.0, gt=0)
    notes: str = ""


class LowLatencyProtocol(SpecModel):
    """NCCL's LL protocol: overheads of its own, a fraction of the Simple bandwidth."""

    launch_overhead_us: float = Field(ge=0)
    step_overhead_us: float = Field(ge=0)
    bandwidth_factor: float = Field(gt=0, le=1)
    notes: str = ""


class TuningProfile(SpecModel):
    """Parameters of one collective-library generation (units in the key names)."""

    description: str = ""
    launch_overhead_us: float = Field(ge=0)
    step_overhead_us: float = Field(ge=0)
    in_network_efficiency: float = Field(gt=0, le=1)
    default_link_efficiency: float = Field(default=1.0, gt=0, le=1)
    low_latency: LowLatencyProtocol | None = None
    link_efficiency: list[LinkFamily] = Field(default_factory=list)
    in_network_switches: list[SwitchFamily] = Field(default_factory=list)
    auto_algorithms: list[str] | None = Field(
        default=None, description="algorithms the library's tuner chooses among (None: all registered)"
    )
    fit: FitRecord | None = None


class TuningFile(SpecModel):
    """The whole tuning file: named profiles and the default one."""

    default: str
    profiles: dict[str, TuningProfile]


@dataclass(frozen=True)
class Tuning:
    """A resolved tuning profile in SI units.

    Attributes
    ----------
    name : str
    launch_s : float
        Fixed cost per collective call, s.
    step_s : float
        Cost per latency step, s.
    in_network_efficiency : float
        Achievable fraction of in-network phases (0..1].
    link_efficiency : dict of str to float
        Achievable fraction per link technology name.
    default_link_efficiency : float
        For technologies not listed.
    auto_algorithms : tuple of str or None
        What ``auto`` chooses among (the library's own algorithms); None: every registered one.
    low_latency : (launch_s, step_s, bandwidth_factor) or None
        The LL protocol's overheads and bandwidth fraction; None: Simple only.
    switch_rate : dict of str to float
        Reduction / multicast payload rate per port of in-network switches by part name,
        bytes/s (parts not listed: no switch limit).
    """

    name: str
    launch_s: float = 0.0
    step_s: float = 0.0
    in_network_efficiency: float = 1.0
    link_efficiency: dict[str, float] = field(default_factory=dict)
    default_link_efficiency: float = 1.0
    auto_algorithms: tuple[str, ...] | None = None
    low_latency: tuple[float, float, float] | None = None
    switch_rate: dict[str, float] = field(default_factory=dict)

    @classmethod
    def ideal(cls) -> "Tuning":
        """Every fraction 1, no overheads: the textbook cost of an algorithm."""
        return cls("ideal")

    @classmethod
    def from_profile(cls, name: str, p: TuningProfile) -> "Tuning":
        eff: dict[str, float] = {}
        for fam in p.link_efficiency:
            for t in fam.technologies:
                eff[t] = fam.value
        auto = tuple(p.auto_algorithms) if p.auto_algorithms is not None else None
        ll = p.low_latency
        low = (ll.launch_overhead_us * 1e-6, ll.step_overhead_us * 1e-6, ll.bandwidth_factor) if ll else None
        rate = {s: fam.rate_GBps * 1e9 for fam in p.in_network_switches for s in fam.switches}
        return cls(name, p.launch_overhead_us * 1e-6, p.step_overhead_us * 1e-6, p.in_network_efficiency,
                   eff, p.default_link_efficiency, auto, low, rate)

    def efficiency(self, technologies: tuple[str, ...]) -> float:
        """Achievable fraction of a level built of ``technologies`` (the least of them)."""
        vals = [self.link_efficiency.get(t, self.default_link_efficiency) for t in technologies]
        return min(vals) if vals else self.default_link_efficiency

    def switch_limit(self, switches: tuple[str, ...]) -> float | None:
        """Reduction / multicast rate per port of a level built of ``switches`` (the least of
        those listed), bytes/s; None when none is listed."""
        vals = [self.switch_rate[s] for s in switches if s in self.switch_rate]
        return min(vals) if vals else None

    def key(self) -> tuple:
        """Hashable identity for memo keys."""
        return (self.name, self.launch_s, self.step_s, self.in_network_efficiency,
                tuple(sorted(self.link_efficiency.items())), self.default_link_efficiency, self.auto_algorithms,
                self.low_latency, tuple(sorted(self.switch_rate.items())))


def tuning_path() -> Path:
    """Path of the tuning preset (``OASSIM_PRESET_PATH`` first, then the repository)."""
    return find_preset("topologies/hardware", TUNING_PRESET)


def load_tuning_file(path: str | Path | None = None) -> TuningFile:
    """Read and validate the tuning file (default: the preset)."""
    p = Path(path) if path is not None else tuning_path()
    return validate(TuningFile, read_yaml(p), source=str(p))


def load_tuning(profile: str | None = None, path: str | Path | None = None) -> Tuning:
    """Load a tuning profile.

    Parameters
    ----------
    profile : str, optional
        Profile name; default: the file's ``default``. ``"ideal"`` needs no file.
    path : str or Path, optional
        Tuning file (default: ``topologies/hardware/collective_tuning.yaml``).

    Raises
    ------
    SpecError
        Unknown profile (the message lists the known ones) or a bad file.
    """
    if profile == "ideal":
        return Tuning.ideal()
    f = load_tuning_file(path)
    name = profile or f.default
    if name not in f.profiles:
        known = ", ".join(sorted(f.profiles) + ["ideal"])
        raise SpecError(f"unknown tuning profile '{name}' (known: {known})", source="argument --tuning")
    return Tuning.from_profile(name, f.profiles[name])


def profile_dict(t: Tuning) -> dict[str, Any]:
    """A tuning as plain numbers with units in the keys (for reports and JSON)."""
    return {
        "name": t.name,
        "launch_overhead_us": t.launch_s * 1e6,
        "step_overhead_us": t.step_s * 1e6,
        "in_network_efficiency": t.in_network_efficiency,
        "link_efficiency": dict(t.link_efficiency),
        "default_link_efficiency": t.default_link_efficiency,
        "auto_algorithms": list(t.auto_algorithms) if t.auto_algorithms is not None else None,
        "in_network_switches_GBps": {k: v / 1e9 for k, v in t.switch_rate.items()},
        "low_latency": None if t.low_latency is None else {
            "launch_overhead_us": t.low_latency[0] * 1e6, "step_overhead_us": t.low_latency[1] * 1e6,
            "bandwidth_factor": t.low_latency[2]},
    }
