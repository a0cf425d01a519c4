"""The supernode proposal file: a whole open-architecture design, as OAS-Bench 2.0 takes it.

What is modelled: what a vendor (or a group of vendors) proposes to a standards committee: the
accelerator type(s), the scale-up interconnect spec, the supernode topology (any registered
family with its geometry: switched, clos2, fullmesh, torus, dragonfly, fat_tree), the switch and
optics parts of every link role, the scale-out fabric, and optional prices and power figures.
``oassim schema proposal`` publishes the format (docs/oas-bench.md, "The proposal file").

Why a format of its own and not a cluster file: a proposal names its interconnect once (an
interconnect spec file, ``oassim schema interconnect``) and its link and switch roles then say
``interconnect`` instead of repeating lane rates, so the same closed forms (port data rate,
protocol efficiency, reach class -> optical module) serve the spec-only benchmark and the
whole-design one; a proposal may mix accelerator types; and a proposal carries the prices and
power figures a vendor quotes for its own parts, which the catalog never holds. The cluster
itself is built by the topology layer: :func:`cluster_document` turns a proposal into the
cluster-file mapping the builder takes (docs/architecture.md decision 2: validation here, no
file I/O when the model is built). Heterogeneous accelerators are placed by whole supernodes, in
list order; the graph carries the first type's scale-up and scale-out figures (the design rules
check every other type's ports against its links), the totals count each type's own power and
price, and the training runs give each supernode its type (the scenario's
``cluster.accelerator_types``), so each pipeline stage computes at its own chips' speed
(:mod:`oassim.workload.hetero`, docs/oas-bench.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from oassim.errors import SpecError
from oassim.hardware import Catalog, InterconnectSpec, load_catalog
from oassim.hardware.models import Count, Fraction, Name, NonNegative, SourceId
from oassim.hardware.schema import preset_or_inline
from oassim.specio import SpecModel, read_yaml, validate
from oassim.topology.cluster_spec import DomainSpec, ScaleOutSpec

__all__ = ["AcceleratorChoice", "Proposal", "PROPOSAL_FORMAT", "INTERCONNECT", "load_proposal",
           "is_proposal_document", "NIC", "cluster_document", "ResolvedProposal", "type_counts"]

#: Version of the proposal format (the ``proposal_format`` key of every file).
PROPOSAL_FORMAT = "1"

#: The word a link ``technology`` or a switch role uses for the proposal's interconnect spec.
INTERCONNECT = "interconnect"

#: The part name of one scale-out NIC port in ``prices_USD`` and ``power_W``.
NIC = "nic"

# Default cluster size of OAS-Bench 2.0: 16,384 accelerators (rounded up to whole supernodes).
DEFAULT_CLUSTER = 16384
# Largest cluster a proposal may ask for: eight times the suite's, which a report builds in
# minutes; the graph of a million-accelerator cluster would take tens of GB.
MAX_CLUSTER = 131072


class _InterconnectSchema:
    """Publishes the ``interconnect`` field as a path or the interconnect spec schema."""

    def __get_pydantic_json_schema__(self, core_schema: Any, handler: Any) -> dict[str, Any]:
        inline = handler(InterconnectSpec.__pydantic_core_schema__)
        return {"anyOf": [
            {"type": "string", "minLength": 1,
             "description": "path of an interconnect spec file, relative to the proposal file"},
            {**inline, "description": "inline interconnect spec: the fields of an interconnect spec file"},
        ]}


_InterconnectRef = Annotated[str | dict[str, Any], _InterconnectSchema()]
_AcceleratorRef = preset_or_inline("accelerator")


class AcceleratorChoice(SpecModel):
    """One accelerator type of a proposal and the share of the cluster it fills.

    Parameters
    ----------
    part : str or mapping
        An accelerator preset of ``topologies/hardware/accelerators.yaml`` or an inline one.
    vendor : str
        Vendor of this part in the proposal (default: the part's own ``vendor``).
    share : float
        Fraction of the cluster's supernodes built of this type, in (0, 1]; whole supernodes in
        list order, the shares of all types summing to 1.
    scaleup_ports : int or None
        Ports of this accelerator on the proposal's interconnect spec. When set, the part's
        scale-up interface is replaced by that many interconnect ports (the proposal's chip
        carries the proposed interface); None keeps the part's published scale-up figures,
        which the design rules check against the supernode's link rate.
    """

    part: _AcceleratorRef
    vendor: str = ""
    share: Fraction = 1.0
    scaleup_ports: Count | None = None


class Proposal(SpecModel):
    """A supernode proposal file (``oassim schema proposal``).

    Parameters
    ----------
    proposal_format : str
        Version of the proposal format this file is written in ("1").
    name : str
        Proposal name (report label; must differ between proposals of one report).
    description : str
        One line for reports.
    proposer : str
        Who proposes the design (vendor, consortium or committee member).
    sources : list of str
        Source ids of ``docs/sources.md`` for the figures of the file.
    notes : str
        Caveats: assumptions, figures that are not published.
    cluster_accelerators : int
        Accelerators of the cluster built from the proposal (rounded up to whole supernodes),
        1 to 131,072; OAS-Bench 2.0 builds 16,384.
    accelerators : list of AcceleratorChoice
        The accelerator type(s) and the share of supernodes each fills.
    interconnect : str, mapping or None
        The scale-up interconnect spec: a file path relative to the proposal, or inline. Link
        roles whose ``technology`` is ``interconnect`` use its port (reach class and module by
        cable length), switch roles ``interconnect`` its switch chip. None: the roles name
        catalog parts only.
    supernode : DomainSpec
        The scale-up domain: any registered family with its geometry, and the link and switch
        part of each of its roles (the cluster file's ``supernode`` section).
    scale_out : ScaleOutSpec or None
        The fabric joining the supernodes (the cluster file's ``scale_out`` section); None when
        the proposal is one supernode.
    prices_USD : mapping of str to float
        Unit price of a part of the proposal by part name (accelerator, switch or optical
        module; ``nic`` for one scale-out NIC port), USD; a figure here replaces the part's own.
    power_W : mapping of str to float
        Power of one part of the proposal by part name (accelerator, switch or optical module;
        ``nic`` for one scale-out NIC port), W; a figure here replaces the part's own.
    """

    proposal_format: Literal["1"]
    name: Name
    description: str = ""
    proposer: str = ""
    sources: list[SourceId] = Field(default_factory=list)
    notes: str = ""
    cluster_accelerators: Annotated[int, Field(gt=0, le=MAX_CLUSTER, strict=True)] = DEFAULT_CLUSTER
    accelerators: Annotated[list[AcceleratorChoice], Field(min_length=1)]
    interconnect: _InterconnectRef | None = None
    supernode: DomainSpec
    scale_out: ScaleOutSpec | None = None
    prices_USD: dict[str, NonNegative] = Field(default_factory=dict)
    power_W: dict[str, NonNegative] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _shares_add_up(self) -> "Proposal":
        total = sum(a.share for a in self.accelerators)
        if abs(total - 1.0) > 1e-9:
            raise ValueError(f"accelerators: the shares add up to {total:g}, not 1")
        return self


class ResolvedProposal:
    """A validated proposal with its interconnect spec loaded and its accelerator parts resolved.

    Attributes
    ----------
    proposal : Proposal
    source : str
        The proposal file ("<inline>" for a model).
    interconnect : InterconnectSpec or None
    interconnect_source : str or None
        The interconnect spec file, when the proposal names one.
    accelerators : list of (Accelerator, AcceleratorChoice)
        Each type's part (the proposal's price and power applied; its scale-up interface
        replaced when ``scaleup_ports`` is set) with its entry.
    """

    def __init__(self, proposal: Proposal, source: str, interconnect: InterconnectSpec | None,
                 interconnect_source: str | None, accelerators: list):
        self.proposal, self.source = proposal, source
        self.interconnect, self.interconnect_source = interconnect, interconnect_source
        self.accelerators = accelerators

    @property
    def name(self) -> str:
        return self.proposal.name


def is_proposal_document(data: Any) -> bool:
    """Whether a parsed YAML document is a proposal file (it has ``proposal_format``)."""
    return isinstance(data, dict) and "proposal_format" in data


def load_proposal(path: str | Path | Proposal, catalog: Catalog | None = None) -> ResolvedProposal:
    """Read, validate and resolve a proposal file.

    Raises
    ------
    SpecError
        Unreadable file, invalid proposal or interconnect spec, unknown preset, or a price or
        power figure for a part the proposal does not use: one line ``FILE: key.path: message``.
    """
    cat = catalog if catalog is not None else load_catalog()
    if isinstance(path, Proposal):
        p, source, base = path, "<inline>", Path.cwd()
    else:
        source, base = str(path), Path(path).parent
        p = validate(Proposal, read_yaml(path), source=source)
    spec, spec_source = None, None
    if isinstance(p.interconnect, str):
        f = Path(p.interconnect)
        f = f if f.is_absolute() else base / f
        spec_source = str(f)
        try:
            data = read_yaml(f)
        except SpecError as exc:
            raise SpecError(f"interconnect spec {p.interconnect}: {exc.message}", source=source,
                            path="interconnect") from None
        spec = cat.resolve_interconnect(data, source=spec_source)
    elif p.interconnect is not None:
        spec = cat.resolve_interconnect(p.interconnect, source=source, prefix="interconnect")
    accs = []
    for i, a in enumerate(p.accelerators):
        part = cat.resolve_accelerator(a.part, source=source, prefix=f"accelerators[{i}].part")
        update: dict[str, Any] = {}
        if a.scaleup_ports is not None:
            if spec is None:
                raise SpecError("scaleup_ports needs the proposal's interconnect spec (key interconnect)",
                                source=source, path=f"accelerators[{i}].scaleup_ports")
            update.update(scaleup_fabric=spec.name, scaleup_links=a.scaleup_ports,
                          scaleup_link_GBps=spec.port_data_rate_Gbps / 8,
                          description=f"{part.description}; scale-up interface of {spec.name}")
        for key, figures in (("price_USD", p.prices_USD), ("power_W", p.power_W)):
            if part.name in figures:
                update[key] = figures[part.name]
        accs.append((part.model_copy(update=update) if update else part, a))
    names = [a.name for a, _ in accs]
    if len(set(names)) != len(names):
        raise SpecError("each accelerator type may be listed once", source=source, path="accelerators")
    return ResolvedProposal(p, source, spec, spec_source, accs)


def type_counts(rp: ResolvedProposal, supernodes: int) -> list[int]:
    """Supernodes of each accelerator type: ``round(share x supernodes)``, the first type taking
    what rounding leaves over (whole supernodes, list order)."""
    counts = [int(round(a.share * supernodes)) for _, a in rp.accelerators]
    counts[0] += supernodes - sum(counts)
    if counts[0] < 0 or (len(counts) > 1 and 0 in counts):
        raise SpecError(f"{supernodes} supernodes cannot be split by the shares "
                        f"{', '.join(f'{a.share:g}' for _, a in rp.accelerators)} (every type needs one)",
                        source=rp.source, path="accelerators")
    return counts


def _part_dict(model: Any) -> dict[str, Any]:
    return model.model_dump(mode="json", exclude_none=True)


def _interconnect_link(spec: InterconnectSpec, use: dict[str, Any], where: str, source: str,
                       notes: list[str]) -> dict[str, Any]:
    """A link use whose technology is the interconnect's port; the reach class covering its
    cable (the first class, when no length is given) names the medium and the module."""
    length = use.get("length_m")
    rc, assumed = spec.reach_class(length if length is not None else 0.0)
    if rc is None and spec.reach:
        raise SpecError(f"no reach class of interconnect {spec.name} covers {length:g} m", source=source,
                        path=f"{where}.length_m")
    medium, reach_m = "copper", None
    out = dict(use)
    if rc is None:
        notes.append(f"{where}: the interconnect gives no reach class; the link is taken as copper "
                     "without modules (the optical module count is a lower bound)")
    else:
        medium, reach_m = rc.medium, rc.reach_m
        if assumed and length is not None:
            notes.append(f"{where}: reach of class '{rc.name}' not published; taken to cover {length:g} m")
        if rc.module is not None and "module" not in use:
            out["module"] = _part_dict(rc.module)
    medium = use.get("medium") or medium
    out["technology"] = _part_dict(spec.link_technology(f"{spec.name}-port", medium=medium, reach_m=reach_m))
    return out


def cluster_document(rp: ResolvedProposal, accelerators: int | None = None,
                     catalog: Catalog | None = None) -> tuple[dict[str, Any], list[str]]:
    """The cluster-file mapping (``oassim schema cluster``) of a proposal, and notes on it.

    ``interconnect`` roles become the interconnect's port and switch chip; every switch and
    module is inlined with the proposal's price and power figures applied; the accelerator is
    the first type's part. ``accelerators`` overrides ``cluster_accelerators``.

    Raises
    ------
    SpecError
        An ``interconnect`` role without an interconnect spec, or a price or power figure for a
        part the proposal does not use.
    """
    cat = catalog if catalog is not None else load_catalog()
    p, src = rp.proposal, rp.source
    notes: list[str] = []
    used: set[str] = {a.name for a, _ in rp.accelerators}

    def figures(d: dict[str, Any]) -> dict[str, Any]:
        name = d["name"]
        used.add(name)
        for key, table in (("price_USD", p.prices_USD), ("power_W", p.power_W)):
            if name in table:
                d[key] = table[name]
        return d

    def link(use: dict[str, Any], where: str) -> dict[str, Any]:
        if use["technology"] == INTERCONNECT:
            use = _interconnect_link(needs_spec(where, "technology"), use, where, src, notes)
        if use.get("module") is not None:
            use["module"] = figures(_part_dict(cat.resolve_module(use["module"], source=src,
                                                                  prefix=f"{where}.module")))
        return use

    def switch(use: dict[str, Any], where: str) -> dict[str, Any]:
        if use["switch"] == INTERCONNECT:
            spec = needs_spec(where, "switch")
            part = spec.switch_part(f"{spec.name}-switch")
        else:
            part = cat.resolve_switch(use["switch"], source=src, prefix=f"{where}.switch")
        use["switch"] = figures(_part_dict(part))
        return use

    def needs_spec(where: str, key: str) -> InterconnectSpec:
        if rp.interconnect is None:
            raise SpecError(f"{key} 'interconnect' needs the proposal's interconnect spec", source=src,
                            path=f"{where}.{key}")
        return rp.interconnect

    def section(dom: DomainSpec, key: str) -> dict[str, Any]:
        d = dom.model_dump(mode="json", exclude_defaults=False)
        for roles, resolve in (("links", link), ("switches", switch)):
            for role, use in d[roles].items():
                d[roles][role] = resolve({k: v for k, v in use.items() if v is not None}, f"{key}.{roles}.{role}")
        return d

    doc: dict[str, Any] = {
        "name": p.name, "description": p.description or f"proposal {p.name}", "sources": list(p.sources),
        "notes": p.notes, "accelerators": accelerators or p.cluster_accelerators,
        "accelerator": _part_dict(rp.accelerators[0][0]), "supernode": section(p.supernode, "supernode"),
    }
    if p.scale_out is not None:
        doc["scale_out"] = section(p.scale_out, "scale_out")
        used.add(NIC)
    for key, table in (("prices_USD", p.prices_USD), ("power_W", p.power_W)):
        for name in table:
            if name not in used:
                raise SpecError(f"no part of this proposal is called '{name}' (parts: {', '.join(sorted(used))})",
                                source=src, path=f"{key}.{name}")
    return doc, notes
