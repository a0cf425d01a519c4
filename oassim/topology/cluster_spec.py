"""The cluster file: one YAML document describing a whole cluster.

A cluster is N supernodes (scale-up domains built by one family) whose NICs attach to a
scale-out fabric (another family). Hardware is named by preset or given inline; this module
validates the file (docs/architecture.md decision 2) and resolves it into the SI ``LinkClass`` /
``SwitchClass`` parts the family builders take. Nothing here builds a graph.

Example (``topologies/dgx-h100-superpod.yaml`` is the real one)::

    name: dgx-h100-superpod
    accelerators: 16384
    accelerator: h100-sxm
    supernode:
      family: switched
      spec: {size: 8, switches: 4, links_per_accelerator: 18}
      links: {scaleup: {technology: nvlink4}}
      switches: {scaleup: nvswitch-gen3}
    scale_out:
      family: fat_tree
      spec: {tiers: 3}
      rail_optimized: true
      links:
        host: {technology: ib-ndr, module: osfp-400g-sr4, length_m: 20}
        leaf_spine: {technology: ib-ndr, module: osfp-800g-2xdr4}
        spine_core: {technology: ib-ndr, module: osfp-800g-2xdr4}
      switches: {leaf: quantum-2, spine: quantum-2, core: quantum-2}
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from oassim.errors import SpecError
from oassim.hardware import Accelerator, Catalog, LinkTechnology, OpticalModule, Switch, load_catalog
from oassim.hardware.models import Count, Flag, Medium, Name, NonNegative, Positive
from oassim.hardware.schema import preset_or_inline
from oassim.presets import argument_file
from oassim.specio import SpecModel, read_yaml, validate
from oassim.topology.cluster_limits import (MAX_COUNT, MAX_LINKS, _check_limits, _check_links,  # noqa: F401
                                            _check_roles, domain_size)
from oassim.topology.parts import LinkClass, SwitchClass

__all__ = [
    "LinkUse",
    "SwitchUse",
    "DomainSpec",
    "ScaleOutSpec",
    "ClusterSpec",
    "ResolvedDomain",
    "ResolvedCluster",
    "load_cluster",
    "resolve_cluster",
    "FIBRE_NS_PER_M",
]

# Propagation in glass, c / 1.47 (docs/sources.md C3, derived): added to optical links whose
# length is given.
FIBRE_NS_PER_M = 4.9


# Fields that take a preset name or an inline mapping of the part's fields.
_AcceleratorRef, _LinkRef, _ModuleRef, _SwitchRef = (
    preset_or_inline(kind) for kind in ("accelerator", "link", "module", "switch")
)


class LinkUse(SpecModel):
    """Where a link technology is used: the technology, the module or cable at each end, and
    the cable length in this design.

    Parameters
    ----------
    technology : str or mapping
        A link preset of ``topologies/hardware/links.yaml`` or an inline link technology.
    module : str, mapping or None
        The optical module or cable at each link end: a preset of
        ``topologies/hardware/optics.yaml`` or an inline module; None for board traces.
    length_m : float or None
        Cable length in this design, m (> 0); checked against the module's reach and adds
        fibre propagation delay on optical links.
    medium : {"copper", "optical", "backplane", "pcb"} or None
        Override the technology's (or module's) usual medium for this placement.
    """

    technology: _LinkRef
    module: _ModuleRef | None = None
    length_m: Positive | None = None
    medium: Medium | None = None


class SwitchUse(SpecModel):
    """A switch preset (or inline spec) and the port rate this tier runs it at.

    Parameters
    ----------
    switch : str or mapping
        A switch preset of ``topologies/hardware/switches.yaml`` or an inline switch.
    rate_Gbps : float or None
        Native port configuration to use, 1e9 bit/s per direction (default: the switch's first).
    run_at_Gbps : float or None
        Run those ports below their native rate (speed negotiation), 1e9 bit/s.
    """

    switch: _SwitchRef
    rate_Gbps: Positive | None = None
    run_at_Gbps: Positive | None = None


def _switch_use(v: Any) -> Any:
    return {"switch": v} if isinstance(v, str) else v


class DomainSpec(SpecModel):
    """The scale-up domain (supernode): a family, its geometry and the parts per role.

    Parameters
    ----------
    family : str
        Topology family that builds the domain (``switched``, ``clos2``, ``torus``...).
    spec : mapping
        The family's geometry (its ``Spec`` keys; see the family's schema in ``$defs``).
    links : mapping of str to LinkUse
        Link role of the family (``scaleup``, ``host``, ``dim0``...) -> the link used there.
    switches : mapping of str to SwitchUse or str
        Switch role of the family (``scaleup``, ``leaf``...) -> the switch used there, or just
        its preset name.
    """

    family: Name
    spec: dict[str, Any] = Field(default_factory=dict)
    links: dict[str, LinkUse] = Field(default_factory=dict)
    switches: dict[str, SwitchUse] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _short_switches(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("switches"), dict):
            data = {**data, "switches": {k: _switch_use(v) for k, v in data["switches"].items()}}
        return data

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: Any, handler: Any) -> dict[str, Any]:
        # Publish each family's geometry: ``spec`` is checked against the schema of the family
        # named in ``family``, and a switch role may be a bare preset name.
        ref = handler(core_schema)
        js = handler.resolve_ref_schema(ref)
        from oassim.topology.registry import FAMILIES

        props = js["properties"]
        props["family"]["enum"] = sorted(FAMILIES)
        use = props["switches"]["additionalProperties"]
        props["switches"]["additionalProperties"] = {"anyOf": [
            {"type": "string", "minLength": 1, "description": "a switch preset name"}, use]}
        rules = []
        for name in sorted(FAMILIES):
            geometry = handler(FAMILIES[name][0].__pydantic_core_schema__)
            handler.resolve_ref_schema(geometry)["title"] = f"{name} geometry"
            rules.append({
                "if": {"properties": {"family": {"const": name, "description": f"the {name} family"}},
                       "required": ["family"]},
                "then": {"properties": {"spec": {**geometry, "description": f"geometry of a {name} domain"}}},
            })
        js["allOf"] = rules
        return ref


class NicSpec(SpecModel):
    """Scale-out NICs per accelerator (default: the accelerator preset's figures).

    Parameters
    ----------
    ports : int or None
        NIC ports per accelerator (>= 1); default the accelerator's ``scaleout_nic_ports``.
    rate_Gbps : float or None
        Rate of one NIC port per direction, 1e9 bit/s; default the accelerator's
        ``scaleout_port_Gbps``.
    """

    ports: Count | None = None
    rate_Gbps: Positive | None = None


class ScaleOutSpec(DomainSpec):
    """The scale-out fabric joining the supernodes' NICs.

    Parameters
    ----------
    nic : NicSpec
        NIC ports and rate per accelerator.
    rail_optimized : bool
        Order the NICs rail by rail, so each leaf serves one rail of one scalable unit.
    rails : int or None
        Rails (>= 1); default: the supernode size.
    routing : {"ecmp", "adaptive"}
        How switches pick among equal-cost next hops: static per-flow hashing (ecmp) or
        adaptive routing / packet spraying (InfiniBand AR, Spectrum-X) that spreads traffic
        evenly (docs/architecture.md decision 12; :mod:`oassim.network.routing_modes`).
    """

    nic: NicSpec = Field(default_factory=NicSpec)
    rail_optimized: Flag = True
    rails: Count | None = None
    routing: Literal["ecmp", "adaptive"] = "ecmp"


class ClusterSpec(SpecModel):
    """A whole cluster file (``oassim schema cluster``).

    Parameters
    ----------
    name : str
        Cluster name, used in reports.
    description : str
        One line for reports.
    sources : list of str
        Source ids (docs/sources.md) of the figures and the layout.
    notes : str
        Caveats: assumptions of the preset, figures that are not published.
    accelerators : int
        Accelerators to build, 1 to 1,048,576 (rounded up to whole supernodes).
    accelerator : str or mapping
        An accelerator preset of ``topologies/hardware/accelerators.yaml`` or an inline one.
    supernode : DomainSpec or None
        The scale-up domain, stamped once per supernode; None: every accelerator stands alone.
    scale_out : ScaleOutSpec or None
        The fabric joining the supernodes; None for a single supernode.
    expected : mapping of str to float
        Published totals to check against (``topo check``), e.g. ``optical_modules``.
    """

    name: Name
    description: str = ""
    sources: list[str] = Field(default_factory=list)
    notes: str = ""
    accelerators: Annotated[int, Field(gt=0, le=1_048_576, strict=True)]
    accelerator: _AcceleratorRef
    supernode: DomainSpec | None = None
    scale_out: ScaleOutSpec | None = None
    expected: dict[str, NonNegative] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _needs_some_fabric(self) -> "ClusterSpec":
        if self.supernode is None and self.scale_out is None:
            raise ValueError("a cluster needs a supernode, a scale_out fabric, or both")
        return self


@dataclass(frozen=True)
class ResolvedDomain:
    """A domain spec with its family geometry validated and its parts resolved."""

    family: str
    spec: Any  # the family's Spec model instance
    links: dict[str, LinkClass]
    switches: dict[str, SwitchClass]


@dataclass(frozen=True)
class ResolvedCluster:
    """Everything the composer needs, in SI units."""

    spec: ClusterSpec
    source: str
    accelerator: Accelerator
    accelerators: int  # built (whole supernodes)
    supernodes: int
    domain_size: int
    supernode: ResolvedDomain | None
    scale_out: ResolvedDomain | None
    nic_ports: int
    nic_rate_Gbps: float | None
    rails: int
    modules: dict[str, OpticalModule]


def load_cluster(path_or_name: str | Path, accelerators: int | None = None) -> ResolvedCluster:
    """Load a cluster file and resolve it.

    Parameters
    ----------
    path_or_name : str or Path
        A path, or a preset name in ``topologies/``, by the command-line rule of
        :func:`oassim.presets.argument_file` (a ``Path`` is always a path).
    accelerators : int, optional
        Overrides the file's count (presets scale by it); a count the file could not hold
        is blamed on the ``-n/--accelerators`` argument, not on the file.
    """
    p = argument_file("topologies", path_or_name)
    data = read_yaml(p)
    if isinstance(data, dict) and accelerators is not None:
        data = {**data, "accelerators": accelerators}
    try:
        spec = validate(ClusterSpec, data, source=str(p))
    except SpecError as exc:
        if accelerators is not None and exc.path == "accelerators":
            raise SpecError(exc.message, source="argument -n/--accelerators") from None
        raise
    return resolve_cluster(spec, source=str(p))


def _family(name: str, source: str, prefix: str):
    from oassim.topology.registry import FAMILIES

    if name not in FAMILIES:
        raise SpecError(
            f"unknown topology family '{name}' (allowed: {', '.join(sorted(FAMILIES))})",
            source=source,
            path=f"{prefix}.family",
        )
    return FAMILIES[name]


def _link_class(use: LinkUse, cat: Catalog, source: str, path: str, modules: dict) -> LinkClass:
    tech: LinkTechnology = cat.resolve_link(use.technology, source=source, prefix=f"{path}.technology")
    module: OpticalModule | None = None
    if use.module is not None:
        module = cat.resolve_module(use.module, source=source, prefix=f"{path}.module")
        modules[module.name] = module
    medium = use.medium or (module.medium if module is not None else tech.medium)
    if medium not in ("copper", "optical", "backplane", "pcb"):
        raise SpecError(
            f"unknown medium '{medium}' (allowed: copper, optical, backplane, pcb)", source=source,
            path=f"{path}.medium"
        )
    latency = tech.latency_s + (module.latency_s if module is not None else 0.0)
    if medium == "optical" and use.length_m is not None:
        latency += use.length_m * FIBRE_NS_PER_M * 1e-9
    reach = module.reach_m if module is not None and module.reach_m is not None else tech.reach_m
    return LinkClass(
        name=tech.name,
        bandwidth_Bps=tech.bandwidth_Bps,
        latency_s=latency,
        medium=medium,
        rate_Gbps=tech.rate_Gbps,
        module=module.name if module is not None else None,
        reach_m=reach,
        length_m=use.length_m,
        efficiency=tech.efficiency,
    )


def _switch_class(use: SwitchUse, cat: Catalog, source: str, path: str) -> SwitchClass:
    sw: Switch = cat.resolve_switch(use.switch, source=source, prefix=f"{path}.switch")
    if use.rate_Gbps is None:
        radix, rate = sw.radix, sw.port_rate_Gbps
    else:
        try:
            radix, rate = sw.ports_at(use.rate_Gbps), use.rate_Gbps
        except SpecError as exc:
            raise SpecError(exc.message, source=source, path=f"{path}.rate_Gbps") from None
    if use.run_at_Gbps is not None:
        if rate is not None and use.run_at_Gbps > rate:
            raise SpecError(
                f"ports cannot run at {use.run_at_Gbps:g} Gb/s, above their {rate:g} Gb/s configuration",
                source=source,
                path=f"{path}.run_at_Gbps",
            )
        rate = use.run_at_Gbps
    return SwitchClass(
        name=sw.name,
        radix=radix,
        latency_s=sw.latency_s,
        port_rate_Gbps=rate,
        in_network_reduction=sw.in_network_reduction,
        power_W=sw.power_W,
        price_USD=sw.price_USD,
    )


def _resolve_domain(d: DomainSpec, extra: dict[str, Any], cat: Catalog, source: str, prefix: str,
                    modules: dict) -> ResolvedDomain:
    spec_model, _build = _family(d.family, source, prefix)
    family_mod = _family_module(d.family)
    geometry = validate(spec_model, {**d.spec, **extra}, source=source, prefix=f"{prefix}.spec")
    _check_limits(geometry, source, f"{prefix}.spec")
    needed_links = _roles_used(family_mod, "LINK_ROLES", geometry)
    needed_switches = _roles_used(family_mod, "SWITCH_ROLES", geometry)
    for kind, given, needed, attr in (
        ("link", d.links, needed_links, "LINK_ROLES"),
        ("switch", d.switches, needed_switches, "SWITCH_ROLES"),
    ):
        _check_roles(kind, given, needed, set(getattr(family_mod, attr, ())), d.family, source, prefix)
    links = {r: _link_class(u, cat, source, f"{prefix}.links.{r}", modules) for r, u in d.links.items()}
    switches = {r: _switch_class(u, cat, source, f"{prefix}.switches.{r}") for r, u in d.switches.items()}
    _check_links(lambda: family_mod.links_built(geometry, switches), f"one {d.family} {prefix}", source,
                 f"{prefix}.spec")
    return ResolvedDomain(d.family, geometry, links, switches)


# The largest count any geometry field may take: 2**20 covers a million-accelerator cluster and
# keeps a typo (an extra zero or two) from exhausting the machine's memory.
def _family_module(name: str):
    import importlib

    return importlib.import_module(f"oassim.topology.families.{name}")


def _roles_used(mod: Any, attr: str, geometry: Any) -> tuple[str, ...]:
    """Roles a family needs for this geometry (``roles_needed(spec)`` if it has one)."""
    fn = getattr(mod, "roles_needed", None)
    if fn is not None:
        links, switches = fn(geometry)
        return tuple(links if attr == "LINK_ROLES" else switches)
    return tuple(getattr(mod, attr, ()))


def resolve_cluster(spec: ClusterSpec, source: str = "<cluster>", catalog: Catalog | None = None) -> ResolvedCluster:
    """Validate family geometry, resolve hardware parts and scale to whole supernodes."""
    cat = catalog or load_catalog()
    acc = cat.resolve_accelerator(spec.accelerator, source=source, prefix="accelerator")
    modules: dict[str, OpticalModule] = {}
    sn = None
    size = 1
    if spec.supernode is not None:
        sn = _resolve_domain(spec.supernode, {}, cat, source, "supernode", modules)
        size = domain_size(sn.spec)
    supernodes = math.ceil(spec.accelerators / size)
    built = supernodes * size
    if sn is None:
        supernodes, built = spec.accelerators, spec.accelerators
    if supernodes > 1 and spec.scale_out is None:
        raise SpecError(
            f"{spec.accelerators} accelerators need {supernodes} supernodes of {size}, but there is no "
            "scale_out fabric to join them (add scale_out, or ask for at most one supernode)",
            source=source,
            path="scale_out",
        )
    so = None
    nic_ports, nic_rate, rails = 0, None, 1
    if spec.scale_out is not None:
        nic_ports = spec.scale_out.nic.ports or acc.scaleout_nic_ports or 1
        nic_rate = spec.scale_out.nic.rate_Gbps or acc.scaleout_port_Gbps
        if nic_rate is None:
            raise SpecError(
                f"accelerator '{acc.name}' has no published scale-out port rate; set it here",
                source=source,
                path="scale_out.nic.rate_Gbps",
            )
        rails = spec.scale_out.rails or size
        extra = {} if "endpoints" in spec.scale_out.spec else {"endpoints": built * nic_ports}
        so = _resolve_domain(spec.scale_out, extra, cat, source, "scale_out", modules)
    total = built * nic_ports  # accelerator-NIC attachments
    for dom, copies in ((sn, supernodes), (so, 1)):
        if dom is not None:
            total += copies * _family_module(dom.family).links_built(dom.spec, dom.switches)
    _check_links(total, f"{built:,} accelerators on {supernodes:,} supernodes", source, "accelerators")
    return ResolvedCluster(
        spec=spec,
        source=source,
        accelerator=acc,
        accelerators=built,
        supernodes=supernodes,
        domain_size=size,
        supernode=sn,
        scale_out=so,
        nic_ports=nic_ports,
        nic_rate_Gbps=nic_rate,
        rails=rails,
        modules=modules,
    )
