"""The scenario file: one YAML document describing one training run on one cluster.

What is modelled: the user-facing contract of docs/architecture.md ("Scenario files"): a ``name``, a
``cluster`` (a preset in ``topologies/`` or a cluster ``file``, scaled to ``accelerators``),
a ``workload`` (a model preset name or an inline model mapping, plus the training keys of
:class:`~oassim.workload.TrainingSpec`), a ``parallelism`` section (every key of
:class:`~oassim.workload.ParallelismSpec`), the ``network`` fidelity and the ``seed``.

Why a model of its own: docs/architecture.md decision 2. Unknown keys and impossible values are one-line
:class:`~oassim.errors.SpecError` s naming the file and the key path; ``--set path=value``
overrides (:func:`apply_overrides`) are checked against the same model, so a typo in an
override is reported with the keys allowed at that level. Building a :class:`Scenario` does
no file I/O: preset names are resolved by the runner.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Iterable, Literal, Mapping

from pydantic import BaseModel, Field, field_validator, model_validator

from oassim.errors import SpecError
from oassim.hardware.schema import preset_or_inline
from oassim.presets import YAML_SUFFIXES, check_preset_name, spec_file
from oassim.specio import SpecModel, allowed_list, parse_yaml, read_yaml, unit_hint, validate
from oassim.workload import ModelSpec, ParallelismSpec, TrainingSpec

__all__ = [
    "Network",
    "ClusterSection",
    "WorkloadSection",
    "Scenario",
    "load_scenario",
    "parse_override",
    "apply_overrides",
]

Network = Literal["analytical", "flow"]

# Where a bad ``--set`` override is blamed: the argument, not the scenario file it edits.
SET_SOURCE = "argument --set"


class AcceleratorShare(SpecModel):
    """One accelerator type of a mixed cluster (``cluster.accelerator_types``).

    Parameters
    ----------
    accelerator : str or mapping
        The part, as a cluster file's ``accelerator`` takes it (preset name or inline fields).
    supernodes : int
        How many scale-up domains hold this type, in order after those of the types before it.
    """

    accelerator: preset_or_inline("accelerator")  # type: ignore[valid-type]
    supernodes: int = Field(gt=0, le=1_048_576, strict=True)


class ClusterSection(SpecModel):
    """The ``cluster:`` section: which cluster, and how many accelerators.

    Parameters
    ----------
    preset : str, optional
        A preset name in ``topologies/`` (``oassim topo list`` shows them): a name, never a
        path (:func:`oassim.presets.check_preset_name`).
    file : str, optional
        A cluster YAML file; a relative path is taken from the scenario file's folder.
    accelerators : int, optional
        Accelerators of the job. The cluster is scaled to this count (rounded up to whole
        supernodes, e.g. 16,384 GPUs on NVL72 racks build 228 racks = 16,416 GPUs); the job
        runs on the first ``accelerators`` ranks. Default: the cluster file's count.
    accelerator_types : list of AcceleratorShare, optional
        A mixed cluster: the accelerator type of each scale-up domain, by whole supernodes in
        order (the counts adding up to the cluster's supernodes). Each pipeline stage computes
        at its own ranks' type, a stage mixing types at its slowest member
        (:mod:`oassim.workload.hetero`); the network is the cluster file's. Default: every
        accelerator the cluster file's.
    """

    preset: str | None = None
    file: str | None = None
    accelerators: int | None = Field(default=None, gt=0, le=1_048_576, strict=True)
    accelerator_types: list[AcceleratorShare] | None = Field(default=None, min_length=1)

    @field_validator("preset")
    @classmethod
    def _a_name(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                check_preset_name(v)
            except SpecError as exc:
                raise ValueError(f"{exc.message}; a cluster file is given as file: PATH") from None
        return v

    @model_validator(mode="after")
    def _one_source(self) -> "ClusterSection":
        if (self.preset is None) == (self.file is None):
            raise ValueError("give exactly one of preset (a name in topologies/) or file (a cluster YAML path)")
        return self

    @property
    def ref(self) -> str:
        """The preset name or file path, as ``load_cluster`` takes it (a file name without a
        folder or YAML extension gets a ``./``, so that it is not read as a preset name)."""
        if self.preset is not None:
            return self.preset
        f = str(self.file)
        return f if "/" in f or f.endswith(YAML_SUFFIXES) else f"./{f}"


class WorkloadSection(TrainingSpec):
    """The ``workload:`` section: the model plus the training keys of ``TrainingSpec``.

    Parameters
    ----------
    model : str or mapping
        A file stem in ``workloads/`` (e.g. ``llama3-405b``), a model YAML path, or an inline
        mapping of :class:`~oassim.workload.ModelSpec` keys (``layers, hidden, ffn_hidden,
        heads, kv_heads, vocab, activation`` and for MoE ``experts, top_k, shared_experts,
        moe_ffn_hidden``).
    """

    model: str | dict[str, Any]

    @field_validator("model")
    @classmethod
    def _name_or_yaml(cls, v: Any) -> Any:
        if isinstance(v, str) and not v.endswith(YAML_SUFFIXES):
            try:
                check_preset_name(v)
            except SpecError as exc:
                raise ValueError(f"{exc.message}; a model file is given as a path ending in .yaml") from None
        return v

    def training(self) -> TrainingSpec:
        """The training keys alone, as the plan compiler takes them."""
        return TrainingSpec(**self.model_dump(exclude={"model"}))


class Scenario(SpecModel):
    """A whole scenario file (``oassim run SCENARIO.yaml``; docs/architecture.md).

    Parameters
    ----------
    name : str
        Scenario name, used in reports and output folders.
    description, notes : str
        What the scenario stands for and its caveats (substitutions, approximations).
    sources : list of str
        Where its configuration comes from.
    cluster : ClusterSection
        Which cluster the job runs on, and on how many accelerators.
    workload : WorkloadSection
        The model and its training keys (batch, sequence length, precision...).
    parallelism : ParallelismSpec
        How the job is split: tensor, pipeline, data, context and expert parallel degrees.
    network : {"analytical", "flow"}
        Network fidelity: closed-form link costs or flow-level contention.
    seed : int
        Seed of every stochastic part, so a run is reproducible.
    """

    name: str
    description: str = ""
    notes: str = ""
    sources: list[str] = Field(default_factory=list)
    cluster: ClusterSection
    workload: WorkloadSection
    parallelism: ParallelismSpec = Field(default_factory=ParallelismSpec)
    network: Network = "analytical"
    seed: int = Field(default=0, ge=0, strict=True)


def _check_inline_model(sc: Scenario, source: str | None) -> None:
    """An inline model is validated with the scenario (no I/O; presets resolve at run time)."""
    m = sc.workload.model
    if isinstance(m, dict):
        validate(ModelSpec, m, source=source, prefix="workload.model")


def load_scenario(scenario: str | Path | Mapping[str, Any] | Scenario,
                  overrides: Iterable[str] = ()) -> tuple[Scenario, str | None]:
    """Read and validate a scenario, applying ``--set`` overrides first.

    Parameters
    ----------
    scenario : path, mapping or Scenario
        A YAML file, its content as a mapping, or a validated scenario.
    overrides : iterable of str
        ``"dotted.path=value"`` strings (:func:`parse_override`).

    Returns
    -------
    (Scenario, str or None)
        The scenario, with a relative ``cluster.file`` made absolute against the scenario
        file's folder, and the source (file path) for messages, None for a mapping.

    Raises
    ------
    SpecError
        Unreadable file, unknown key, bad value or bad override (one line, naming the file
        and key path).
    """
    source: str | None = None
    base: Path | None = None
    if isinstance(scenario, Scenario):
        data: Any = scenario.model_dump(mode="json")
    elif isinstance(scenario, Mapping):
        data = copy.deepcopy(dict(scenario))
    elif isinstance(scenario, (str, Path)):
        source = str(scenario)
        base = Path(scenario).resolve().parent
        data = read_yaml(scenario)
    else:
        raise SpecError(f"expected a scenario file, mapping or Scenario, got {type(scenario).__name__}")
    overrides = list(overrides)
    if overrides:
        if not isinstance(data, dict):
            data = {} if data is None else data
        try:
            data = apply_overrides(data, overrides, base=base)
        except SpecError as exc:
            raise exc.with_context(source=source) from None
    try:
        sc = validate(Scenario, data, source=source)
        _check_inline_model(sc, source)
    except SpecError as exc:
        raise _blame_override(exc, overrides) from None
    if sc.cluster.file is not None and base is not None and not Path(sc.cluster.file).is_absolute():
        sc = sc.model_copy(update={"cluster": sc.cluster.model_copy(update={"file": str(base / sc.cluster.file)})})
    return sc, source


# -- --set overrides ------------------------------------------------------------------------------


def _blame_override(exc: SpecError, overrides: list[str]) -> SpecError:
    """A validation error at (or under) a key some ``--set`` wrote is that argument's error."""
    if exc.path is None:
        return exc
    for text in overrides:
        key = ".".join(parse_override(text)[0])
        if exc.path == key or exc.path.startswith((key + ".", key + "[")):
            return SpecError(exc.message, source=SET_SOURCE, path=exc.path)
    return exc


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``"a.b.c=value"`` into ``(["a", "b", "c"], value)``; the value is a YAML scalar
    (or flow collection), so ``tp=8`` is an int, ``sp=true`` a bool, ``order=tp-dp`` a string.

    Raises
    ------
    SpecError
        No ``=``, an empty key, or a value that is not YAML (source ``--set``).
    """
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise SpecError(f"expected path=value (e.g. parallelism.tp=4), got {text!r}", source=SET_SOURCE)
    parts = key.split(".")
    if any(not p for p in parts):
        raise SpecError(f"empty key in path {key!r}", source=SET_SOURCE, path=key)
    value = parse_yaml(raw, source=SET_SOURCE, path=key) if raw.strip() else None
    return parts, value


def _submodel(ann: Any) -> type[BaseModel] | None:
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return ann
    for arg in getattr(ann, "__args__", ()) or ():
        found = _submodel(arg)
        if found is not None:
            return found
    return None


def _inline_model(value: Any, base: Path | None, path: str) -> dict[str, Any]:
    """A ``workload.model`` value as a mapping, reading the preset when it names one, so that
    ``--set workload.model.layers=80`` edits a preset model."""
    if isinstance(value, dict):
        return value
    if not isinstance(value, str):
        raise SpecError("expected a model preset name or mapping", source=SET_SOURCE, path=path)
    try:
        p = spec_file("workloads", value, base)
    except SpecError as exc:
        raise SpecError(exc.message, path=path) from None  # the scenario's value: load_scenario names the file
    data = read_yaml(p)
    return {"name": p.stem, **(data or {})}


def apply_overrides(data: Mapping[str, Any], overrides: Iterable[str], *, base: Path | None = None) -> dict[str, Any]:
    """Return a copy of a scenario mapping with ``--set`` overrides applied.

    Each path must name a key of the scenario model (:class:`Scenario` and its sections,
    :class:`~oassim.workload.ModelSpec` under ``workload.model``); otherwise the error names
    the keys allowed at that level.

    Parameters
    ----------
    data : mapping
        Scenario content (not yet validated).
    overrides : iterable of str
        ``"dotted.path=value"`` strings.
    base : Path, optional
        Folder of the scenario file (for a model given as a relative YAML path).
    """
    out = copy.deepcopy(dict(data))
    for text in overrides:
        parts, value = parse_override(text)
        node: dict[str, Any] = out
        model: type[BaseModel] | None = Scenario
        for i, key in enumerate(parts):
            here = ".".join(parts[: i + 1])
            fields = model.model_fields if model is not None else {}
            if key not in fields:
                allowed = sorted(fields)
                at = ".".join(parts[:i]) or "the top level"
                hint = unit_hint(key, allowed)
                msg = f"unknown key '{key}'" + (f"; {hint}" if hint else "")
                raise SpecError(f"{msg} (allowed at {at}: {allowed_list(str(key), allowed)})",
                                source=SET_SOURCE, path=here)
            if i == len(parts) - 1:
                node[key] = value
                break
            if model is WorkloadSection and key == "model":
                node[key] = _inline_model(node.get(key), base, here)
                model = ModelSpec
            else:
                model = _submodel(fields[key].annotation)
                if model is None:
                    raise SpecError(f"'{key}' is a value, not a section: set it as {here}=VALUE",
                                    source=SET_SOURCE, path=".".join(parts))
                if node.get(key) is None:
                    node[key] = {}
                elif not isinstance(node[key], dict):
                    raise SpecError(f"'{key}' in the scenario is not a mapping", source=SET_SOURCE, path=here)
            node = node[key]
    return out
