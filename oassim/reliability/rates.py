"""Component failure rates: the reliability catalog of ``topologies/hardware/reliability.yaml``.

What is modelled: one constant failure rate (FIT, failures per 10^9 unit-hours) per component
type (accelerator, HBM, host, NIC, optical link, switch, ...), keyed by the accelerator
generation it belongs to or ``any`` for network parts measured on their own. Failures of a
component type are a Poisson process whose rate is the FIT figure times the count the topology
builder produces (:mod:`oassim.reliability.counts`).

Why a catalog of its own: every figure carries its source (docs/sources.md, "Reliability
figures"), and a type no citable source gives keeps no rate: it is left out of the campaign
and named as unset in every report, never filled with a guess. A user passes an edited copy
(``--rates FILE``); a negative rate or an unknown key is one line naming the file and key.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import Field

from oassim.errors import SpecError
from oassim.presets import preset_dirs
from oassim.specio import SpecModel, read_yaml, validate

__all__ = [
    "COMPONENT_TYPES", "Cause", "Rate", "ComponentEntry", "ReliabilityCatalog", "ResolvedRate",
    "load_rates", "resolve_rates", "cites", "HOURS_PER_FIT",
]

#: Every component type a campaign knows, in report order.
COMPONENT_TYPES: tuple[str, ...] = (
    "accelerator", "hbm", "software", "collective_timeout", "host", "host_maintenance", "nic",
    "optical_link", "switch", "copper_link", "scaleup_switch", "ocs", "rack",
)

#: Root-cause categories, as the Llama 3 interruption table names them (calibration source S09).
Cause = Literal["gpu", "dependency", "unknown", "host", "unplanned_maintenance", "network"]

#: 1 FIT = one failure per 10^9 unit-hours.
HOURS_PER_FIT = 1e9


class Rate(SpecModel):
    """One failure rate with its source.

    Parameters
    ----------
    rate_FIT : float
        Failures per 10^9 unit-hours, >= 0.
    source : str
        Where it comes from (a docs/sources.md id or a calibration row).
    """

    rate_FIT: float = Field(ge=0, allow_inf_nan=False)
    source: str = Field(min_length=1)


class ComponentEntry(SpecModel):
    """A component type: what one unit is, its root-cause category and its rates.

    ``rates`` holds the figure a campaign uses by default, per generation key; ``other_sources``
    holds figures of the same part from other sources, per key, in order of preference. A
    leave-one-source-out check (:func:`resolve_rates` with ``exclude_sources``) skips every
    figure citing the source it checks and takes the next one, or leaves the type unset.
    """

    per: str
    cause: Cause
    rates: dict[str, Rate] = Field(default_factory=dict)
    other_sources: dict[str, list[Rate]] = Field(default_factory=dict)


class ReliabilityCatalog(SpecModel):
    """The whole ``reliability.yaml``: component entries and accelerators per host by cluster."""

    components: dict[Literal[COMPONENT_TYPES], ComponentEntry]  # type: ignore[valid-type]
    accelerators_per_host: dict[str, int] = Field(default_factory=dict)


@dataclass(frozen=True)
class ResolvedRate:
    """The rate a campaign uses for one component type (``rate_FIT`` None: unset)."""

    component: str
    cause: str
    rate_FIT: float | None
    source: str | None
    key: str | None  # the generation key the rate was found under


def _default_path() -> Path:
    for d in preset_dirs("topologies/hardware"):
        p = d / "reliability.yaml"
        if p.is_file():
            return p
    raise SpecError("no reliability.yaml in the hardware preset folders (topologies/hardware/)")


@functools.lru_cache(maxsize=8)
def _load(path: str) -> ReliabilityCatalog:
    return validate(ReliabilityCatalog, read_yaml(path), source=path)


def load_rates(path: str | Path | None = None) -> ReliabilityCatalog:
    """Read and validate a reliability catalog (default: ``topologies/hardware/reliability.yaml``).

    Raises
    ------
    SpecError
        Unreadable file, unknown key, negative or non-finite rate (one line, file and key path).
    """
    return _load(str(path) if path is not None else str(_default_path()))


def cites(source: str, source_id: str) -> bool:
    """Whether a rate's ``source`` text cites ``source_id`` (``S09`` matches "(source S09)", not "S091")."""
    return re.search(rf"(?<![\w\[]){re.escape(source_id)}(?![\w])", source) is not None


def resolve_rates(catalog: ReliabilityCatalog, accelerator: str,
                  accelerator_rates: str | None = None,
                  exclude_sources: tuple[str, ...] | list[str] = ()) -> dict[str, ResolvedRate]:
    """The rate of every component type for a cluster of ``accelerator`` parts.

    Parameters
    ----------
    catalog : ReliabilityCatalog
    accelerator : str
        Accelerator preset name of the cluster (its generation key).
    accelerator_rates : str, optional
        Use this generation's rates instead (an explicit assumption, reported as such), for
        accelerators with no published figures.
    exclude_sources : sequence of str
        Source ids (``"S09"``) whose figures are skipped: the first figure of the type (the
        default, then ``other_sources`` in order) that cites none of them is taken. Used by
        leave-one-source-out checks; empty (default): the default figures.

    Returns
    -------
    dict
        Component type -> :class:`ResolvedRate`, in :data:`COMPONENT_TYPES` order; a type
        absent from the catalog, or with no rate for the generation nor ``any``, is unset.
    """
    gen = accelerator_rates or accelerator
    out: dict[str, ResolvedRate] = {}
    for comp in COMPONENT_TYPES:
        entry = catalog.components.get(comp)
        if entry is None:
            out[comp] = ResolvedRate(comp, "unknown", None, None, None)
            continue
        found = None
        for key in (gen, "any"):
            cands = ([entry.rates[key]] if key in entry.rates else []) + list(entry.other_sources.get(key, []))
            for r in cands:
                if not any(cites(r.source, sid) for sid in exclude_sources):
                    found = ResolvedRate(comp, entry.cause, r.rate_FIT, r.source, key)
                    break
            if found is not None:
                break
        out[comp] = found or ResolvedRate(comp, entry.cause, None, None, None)
    return out
