"""OAS-Bench: the fixed, versioned benchmark suite for interconnect specs and its reference cluster.

What is defined: everything a standards committee needs to compare interconnect proposals on
one reproducible footing (``docs/oas-bench.md`` is the user documentation):

- the **reference cluster** built from each candidate spec. A scale-up candidate gets the
  reference accelerator (GB200 compute, HBM and power; its scale-up interface replaced by the
  candidate's ports), a single-tier switched supernode of ``min(64, radix, max_domain_size)``
  accelerators with one switch chip per accelerator port, and the fixed 400G RoCE rail-optimised
  fat-tree of the ``gb200-nvl72`` preset as scale-out. A scale-out candidate gets the same
  accelerator in fixed 8-GPU NVLink 5 nodes and the candidate as a fat-tree scale-out fabric;
- the **collective microbenchmarks** (ops, size sweep, scales);
- the **training workloads** (model, scale, batch and parallel layout of each).

Why frozen and versioned: numbers from two reports are comparable only when they come from
the same suite version; a change to anything here is a new version (``SUITE_VERSION``).
Derivations from the spec (port rate, protocol efficiency) are the closed forms of
:mod:`oassim.hardware.interconnect`; this module only decides the reference design around them.
"""

from __future__ import annotations

import copy
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

from oassim.errors import SpecError
from oassim.hardware import InterconnectSpec, load_catalog

__all__ = [
    "SUITE_VERSION", "TrainingBench", "CollectiveBench", "Reference", "Suite", "SUITES", "get_suite",
    "ReferenceDesign", "reference_design", "slug", "SuiteDefinition", "plain", "pick_profile", "Workload",
]

SUITE_VERSION = "oas-bench-1.0"

_MiB = 1 << 20


@dataclass(frozen=True)
class Workload:
    """The job of a suite's training workload (both suite versions): name, preset, size, batch.

    Parameters
    ----------
    name : str
        Workload label in reports (``"llama3-405b"``).
    model : str
        Workload preset (a file stem in ``workloads/``).
    accelerators : int
        Job size.
    seq_len, global_batch, micro_batch : int
        Tokens per sequence, sequences per optimizer step, sequences per micro-batch.
    """

    name: str
    model: str
    accelerators: int
    seq_len: int
    global_batch: int
    micro_batch: int


@dataclass(frozen=True)
class TrainingBench(Workload):
    """One training workload of the suite: a scenario without its cluster.

    Parameters
    ----------
    name, model, accelerators, seq_len, global_batch, micro_batch
        The job (:class:`Workload`).
    precision, recompute : str
        As in a scenario's ``workload`` section.
    parallelism : mapping
        A scenario's ``parallelism`` section.
    source : str
        Where the layout comes from.
    """

    precision: str
    recompute: str
    parallelism: Mapping[str, Any]
    source: str

    def scenario(self, candidate: str, cluster_file: str, *, network: str, seed: int) -> dict[str, Any]:
        """The scenario mapping of this workload on a candidate's reference cluster file."""
        return {
            "name": f"{candidate}-{self.name}",
            "description": f"OAS-Bench {self.name} on the reference cluster of {candidate}",
            "sources": [self.source],
            "cluster": {"file": cluster_file, "accelerators": self.accelerators},
            "workload": {"model": self.model, "seq_len": self.seq_len, "global_batch": self.global_batch,
                         "micro_batch": self.micro_batch, "precision": self.precision,
                         "recompute": self.recompute},
            "parallelism": dict(self.parallelism),
            "network": network,
            "seed": seed,
        }


@dataclass(frozen=True)
class CollectiveBench:
    """The collective microbenchmarks: every op at every size, at every scale.

    Parameters
    ----------
    ops : tuple of str
        Collective operations (nccl-tests names with underscores).
    sizes : tuple of int
        nccl-tests buffer sizes, bytes.
    scales : tuple of int or "domain"
        Ranks of the one group of each run: ``"domain"`` is the reference scale-up domain; an
        int is a cluster of that many accelerators, all in one group.
    all_to_all_max_ranks : int
        Largest all-to-all group (larger scales are reported "not run"). The even all-to-all
        runs as the engine's two-stage hierarchical form, n (m - 1) + n (k - 1) flows for k
        domains of m ranks (4.2 million at 16,384 ranks in domains of 64; the direct form's
        n^2 would be 2.7e8), so the full suite runs it at every scale.
    """

    ops: tuple[str, ...]
    sizes: tuple[int, ...]
    scales: tuple[int | str, ...]
    all_to_all_max_ranks: int = 16384


@dataclass(frozen=True)
class Reference:
    """The fixed parts of every candidate's reference cluster (see the module docstring).

    Parameters
    ----------
    accelerator : str
        Accelerator preset whose compute, HBM, power and NIC every candidate shares.
    domain_size : int
        Scale-up domain of the suite; a candidate whose radix or maximum domain is smaller
        gets its own maximum (reported).
    lane_budget : int
        Scale-up lanes per accelerator when a spec does not state its ports per accelerator
        (36 = GB200: 18 NVLink 5 links x 2 lanes, docs/sources.md A2 [S2]).
    scaleup_cable_m : float
        Accelerator-to-switch cable length of a scale-up candidate (in-rack), m.
    scale_out : mapping
        The cluster-file ``scale_out`` section joining the supernodes of scale-up candidates.
    node : mapping
        The cluster-file ``supernode`` section of scale-out candidates.
    node_rails : int
        Rails of a scale-out candidate's rail-optimised fabric (GPUs per node).
    scaleout_cable_m : mapping
        Cable length per fat-tree link role of a scale-out candidate, m.
    """

    accelerator: str = "gb200"
    domain_size: int = 64
    lane_budget: int = 36
    scaleup_cable_m: float = 2.0
    scale_out: Mapping[str, Any] = field(default_factory=lambda: {
        "family": "fat_tree", "spec": {}, "rail_optimized": True, "rails": 4,
        "links": {
            "host": {"technology": "roce-400g", "module": "osfp-400g-sr4", "length_m": 30},
            "leaf_spine": {"technology": "roce-400g", "module": "osfp-800g-2xdr4", "length_m": 100},
            "spine_core": {"technology": "roce-400g", "module": "osfp-800g-2xdr4", "length_m": 300},
        },
        "switches": {r: {"switch": "tomahawk-5", "rate_Gbps": 400} for r in ("leaf", "spine", "core")},
    })
    node: Mapping[str, Any] = field(default_factory=lambda: {
        "family": "switched", "spec": {"size": 8, "switches": 2, "links_per_accelerator": 18},
        "links": {"scaleup": {"technology": "nvlink5", "length_m": 1}},
        "switches": {"scaleup": "nvswitch-gen4"},
    })
    node_rails: int = 8
    scaleout_cable_m: Mapping[str, float] = field(
        default_factory=lambda: {"host": 30.0, "leaf_spine": 100.0, "spine_core": 300.0})


def plain(value: Any) -> Any:
    """Mappings and sequences of a suite definition as plain dicts and lists (for YAML and JSON)."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


class SuiteDefinition:
    """What every OAS-Bench suite definition (1.0 on specs, 2.0 on proposals) answers: the
    largest cluster it needs and its whole definition as plain data. A frozen dataclass with
    ``collectives`` (a :class:`CollectiveBench`) and ``training`` (workloads with
    ``accelerators``) inherits it; ``_fixed_sizes`` adds sizes the suite builds besides those."""

    def _fixed_sizes(self) -> tuple[int, ...]:
        return ()

    @property
    def max_accelerators(self) -> int:
        """Largest cluster any benchmark of the suite needs."""
        me: Any = self  # a dataclass with ``collectives`` and ``training``
        scales = [s for s in me.collectives.scales if isinstance(s, int)]
        return max([*scales, *(t.accelerators for t in me.training), *self._fixed_sizes()])

    def describe(self) -> dict[str, Any]:
        """The whole definition as plain data (for reports and results.json)."""
        return plain(asdict(self))  # type: ignore[call-overload]


@dataclass(frozen=True)
class Suite(SuiteDefinition):
    """One version and profile of OAS-Bench.

    Parameters
    ----------
    name : str
        ``SUITE_VERSION``, with ``-quick`` for the quick profile.
    profile : {"full", "quick"}
    reference : Reference
    collectives : CollectiveBench
    training : tuple of TrainingBench
    network : {"analytical", "flow"}
        Network fidelity of every run.
    seed : int
    """

    name: str
    profile: str
    reference: Reference
    collectives: CollectiveBench
    training: tuple[TrainingBench, ...]
    network: str = "analytical"
    seed: int = 0

    def _fixed_sizes(self) -> tuple[int, ...]:
        return (self.reference.domain_size,)


_LLAMA_405B = {"tp": 8, "pp": 16, "dp": 128, "cp": 1, "ep": 1, "vpp": 1, "sp": True, "zero": 1,
               "first_stage_layers": 7, "last_stage_layers": 7}
_MOE = {"tp": 1, "pp": 16, "dp": 128, "cp": 1, "ep": 64, "vpp": 1, "sp": False, "zero": 1,
        "ep_comm_overlap": True, "first_stage_layers": 3, "last_stage_layers": 2}
_LLAMA3 = "Llama Team 2024, arXiv:2407.21783, §3.3.2 and Table 4"
_DSV3 = "DeepSeek-AI 2024, arXiv:2412.19437, §3.1-3.3 (PP 16, EP 64, ZeRO-1, FP8), §4.2"

FULL = Suite(
    name=SUITE_VERSION,
    profile="full",
    reference=Reference(),
    collectives=CollectiveBench(
        ops=("all_reduce", "all_gather", "reduce_scatter", "all_to_all"),
        sizes=tuple(_MiB * 4**k for k in range(6)),  # 1 MiB .. 1 GiB, x4
        scales=("domain", 1024, 8192, 16384),
    ),
    training=(
        TrainingBench("llama3-70b", "llama3-70b", 2048, 8192, 1024, 1, "bf16", "none",
                      {"tp": 8, "pp": 4, "dp": 64, "cp": 1, "ep": 1, "vpp": 1, "sp": True, "zero": 1},
                      f"{_LLAMA3} (TP 8 inside a domain; this suite's scale and batch)"),
        TrainingBench("llama3-405b", "llama3-405b", 16384, 8192, 2048, 1, "bf16", "none", _LLAMA_405B,
                      f"{_LLAMA3} (16K GPUs: TP 8, PP 16, DP 128)"),
        TrainingBench("deepseek-v3", "deepseek-v3", 2048, 4096, 15360, 1, "fp8", "full", _MOE,
                      f"{_DSV3}; layout of experiments/moe-2k-h800.yaml"),
    ),
)

QUICK = Suite(
    name=f"{SUITE_VERSION}-quick",
    profile="quick",
    reference=Reference(),
    collectives=CollectiveBench(
        ops=("all_reduce", "all_gather", "reduce_scatter", "all_to_all"),
        sizes=(_MiB, 16 * _MiB, 256 * _MiB),
        scales=("domain", 256),
        all_to_all_max_ranks=256,
    ),
    training=(
        TrainingBench("llama3-70b", "llama3-70b", 256, 8192, 64, 1, "bf16", "none",
                      {"tp": 8, "pp": 4, "dp": 8, "cp": 1, "ep": 1, "vpp": 1, "sp": True, "zero": 1},
                      f"{_LLAMA3} (quick profile: 256 accelerators)"),
        TrainingBench("deepseek-v3", "deepseek-v3", 2048, 4096, 1024, 1, "fp8", "full", _MOE,
                      f"{_DSV3} (quick profile: 8 micro-batches per replica)"),
    ),
)

#: Suite profiles by name: ``full`` is OAS-Bench; ``quick`` is a smoke profile, not comparable.
SUITES: dict[str, Suite] = {"full": FULL, "quick": QUICK}


def pick_profile(name: Any, profiles: Mapping[str, Any], what: str) -> Any:
    """A suite by profile name from ``profiles``, or ``name`` itself when it is already a suite
    of that kind; an unknown name is refused naming ``what`` and the allowed profiles."""
    kind = type(next(iter(profiles.values())))
    if isinstance(name, kind):
        return name
    if name not in profiles:
        raise SpecError(f"unknown {what} profile '{name}' (allowed: {', '.join(profiles)})")
    return profiles[name]


def get_suite(name: str | Suite) -> Suite:
    """A suite by profile name (``"full"``, ``"quick"``) or the suite itself."""
    return pick_profile(name, SUITES, "OAS-Bench")


def slug(name: str) -> str:
    """A file-name-safe form of a candidate name."""
    out = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.")
    return out or "candidate"


@dataclass(frozen=True)
class ReferenceDesign:
    """The reference cluster of one candidate and the figures it was derived from.

    Attributes
    ----------
    candidate, domain : str
        Spec name; ``scale_up`` or ``scale_out``.
    domain_size : int
        Accelerators per supernode in the reference cluster.
    natural_domain_size : int or None
        Largest single-tier domain of the spec (radix capped by max_domain_size; scale-up only).
    ports_per_accelerator : int
    ports_from : str
        ``"spec"`` or ``"lane budget"``.
    switches_per_supernode : int or None
        Candidate switch chips per supernode (scale-up only; one per accelerator port).
    port_data_rate_Gbps, port_payload_GBps : float
        Per port, per direction (closed forms of the spec).
    accelerator_payload_GBps : float
        Per accelerator on the candidate's network, per direction (ports x port payload).
    reach : dict
        Link role -> chosen reach class (``name``, ``medium``, ``module``, ``assumed``).
    notes : tuple of str
        Limits hit and assumptions made, in plain words.
    cluster : dict
        The cluster file (``oassim topo info`` takes it as YAML).
    """

    candidate: str
    domain: str
    domain_size: int
    natural_domain_size: int | None
    ports_per_accelerator: int
    ports_from: str
    switches_per_supernode: int | None
    port_data_rate_Gbps: float
    port_payload_GBps: float
    accelerator_payload_GBps: float
    reach: dict[str, dict[str, Any]]
    notes: tuple[str, ...]
    cluster: dict[str, Any]

    def figures(self) -> dict[str, Any]:
        """Everything but the cluster file, JSON-ready."""
        return {k: plain(v) for k, v in asdict(self).items() if k != "cluster"}


def _ports(spec: InterconnectSpec, ref: Reference) -> tuple[int, str]:
    if spec.ports_per_accelerator is not None:
        return spec.ports_per_accelerator, "spec"
    if spec.domain == "scale_out":
        return 1, "one NIC port per accelerator"
    return max(1, ref.lane_budget // spec.lanes_per_port), "lane budget"


def _link_use(spec: InterconnectSpec, name: str, role: str, length_m: float, source: str | None,
              notes: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Cluster-file link entry of the candidate's port on a ``length_m`` cable, and its reach."""
    rc, assumed = spec.reach_class(length_m)
    if rc is None and spec.reach:
        longest = max(r.reach_m for r in spec.reach if r.reach_m is not None)
        raise SpecError(f"no reach class covers the {length_m:g} m {role} cable of the OAS-Bench reference "
                        f"cluster (longest: {longest:g} m)", source=source, path="reach")
    if rc is None:
        notes.append(f"{role}: no reach class given; the {length_m:g} m cable is taken as copper "
                     "without modules (optical module count is a lower bound)")
        medium, module, reach_m, label = "copper", None, None, "copper (assumed)"
    else:
        if assumed:
            notes.append(f"{role}: reach of class '{rc.name}' not published; taken to cover {length_m:g} m")
        medium, reach_m, label = rc.medium, rc.reach_m, rc.name
        module = rc.module.model_dump(mode="json", exclude_none=True) if rc.module is not None else None
    tech = spec.link_technology(name, medium=medium, reach_m=reach_m).model_dump(mode="json", exclude_none=True)
    use: dict[str, Any] = {"technology": tech, "length_m": length_m}
    if module is not None:
        use["module"] = module
    info = {"class": label, "medium": medium, "module": (module or {}).get("name"), "assumed": rc is None or assumed}
    return use, info


def reference_design(spec: InterconnectSpec, suite: Suite | str = "full", *, source: str | None = None,
                     accelerators: int | None = None) -> ReferenceDesign:
    """Build the reference cluster file of one candidate.

    Parameters
    ----------
    spec : InterconnectSpec
        A resolved candidate (``oassim.hardware.load_interconnect``).
    suite : Suite or str
    source : str, optional
        The spec file, for error messages.
    accelerators : int, optional
        Cluster size written in the file (default: the suite's largest); scenarios rescale it.

    Raises
    ------
    SpecError
        The spec cannot build the reference (no reach class covers a reference cable).
    """
    s = get_suite(suite)
    ref = s.reference
    acc = load_catalog().accelerator(ref.accelerator)
    accel = acc.model_dump(mode="json", exclude_none=True)
    ports, ports_from = _ports(spec, ref)
    cand = slug(spec.name)
    notes: list[str] = []
    payload_GBps = spec.port_payload_Bps / 1e9
    cluster: dict[str, Any] = {
        "name": f"oas-bench-{cand}",
        "description": f"{s.name} reference cluster of interconnect spec {spec.name}",
        "accelerators": accelerators or s.max_accelerators,
    }
    if spec.domain == "scale_up":
        natural = spec.max_single_tier_domain
        size = min(ref.domain_size, natural)
        if size < ref.domain_size:
            notes.append(f"domain capped at {size} accelerators (radix {spec.switch.radix}, max_domain_size "
                         f"{spec.max_domain_size}) below the suite's {ref.domain_size}")
        use, reach = _link_use(spec, f"candidate-{cand}", "scale-up", ref.scaleup_cable_m, source, notes)
        accel.update(description=f"{acc.description}; scale-up interface of {spec.name}",
                     scaleup_fabric=spec.name, scaleup_links=ports,
                     scaleup_link_GBps=spec.port_data_rate_Gbps / 8)
        cluster.update(accelerator=accel, supernode={
            "family": "switched", "spec": {"size": size, "switches": ports, "links_per_accelerator": ports},
            "links": {"scaleup": use},
            "switches": {"scaleup": {"switch": spec.switch_part(f"candidate-{cand}-switch").model_dump(
                mode="json", exclude_none=True)}},
        }, scale_out=copy.deepcopy(dict(ref.scale_out)))
        reaches = {"scaleup": reach}
        switches = ports
    else:
        natural, switches = None, None
        size = int(ref.node["spec"]["size"])
        links, reaches = {}, {}
        for role, length in ref.scaleout_cable_m.items():
            links[role], reaches[role] = _link_use(spec, f"candidate-{cand}", role, length, source, notes)
        sw = {"switch": spec.switch_part(f"candidate-{cand}-switch").model_dump(mode="json", exclude_none=True)}
        cluster.update(accelerator=accel, supernode=copy.deepcopy(dict(ref.node)), scale_out={
            "family": "fat_tree", "spec": {}, "rail_optimized": True, "rails": ref.node_rails,
            "nic": {"ports": ports, "rate_Gbps": spec.port_data_rate_Gbps},
            "links": links, "switches": {r: dict(sw) for r in ("leaf", "spine", "core")},
        })
    if spec.protocol_efficiency_value is None:
        notes.append("protocol efficiency unknown: counted as 1.0 (payload bandwidth is an upper bound)")
    if spec.hop_latency_ns is None:
        notes.append("per-hop link latency unknown: counted as 0")
    if spec.switch.latency_ns is None:
        notes.append("switch latency unknown: counted as 0")
    return ReferenceDesign(
        candidate=spec.name, domain=spec.domain, domain_size=size, natural_domain_size=natural,
        ports_per_accelerator=ports, ports_from=ports_from, switches_per_supernode=switches,
        port_data_rate_Gbps=spec.port_data_rate_Gbps, port_payload_GBps=payload_GBps,
        accelerator_payload_GBps=ports * payload_GBps, reach=reaches, notes=tuple(notes), cluster=cluster,
    )
