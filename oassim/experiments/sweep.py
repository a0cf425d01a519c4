"""Sweep files: a base scenario, the keys to vary, and the points they expand to.

What is modelled: the researcher's parameter study (docs/architecture.md decision 10). A sweep file
names a base scenario (a scenario file or an inline mapping), ``axes`` given by dotted key
paths of the scenario (lists, ranges, distributions), ``grid`` or ``random`` sampling, a root
``seed`` with ``repeats`` seeds per point, ``derived`` keys computed from the others (e.g.
``parallelism.dp`` from the accelerator count) and ``constraints`` that drop invalid points
(e.g. ``tp * pp * dp == accelerators``). :func:`expand_sweep` turns it into validated
:class:`Point` s, each a complete scenario with a stable id.

Why these choices:

- Axis paths are checked against the :class:`~oassim.experiments.scenario.Scenario` model
  with :func:`~oassim.experiments.scenario.apply_overrides`, so a path that names no key is a
  one-line error naming the allowed keys, before anything runs; every point is validated as a
  scenario before the first one runs.
- Axis forms live in :mod:`oassim.experiments.sweep_axes`; expressions (``derived``,
  ``constraints``) in :mod:`oassim.experiments.sweep_expr`, parsed with :mod:`ast` and
  interpreted node by node (never ``eval``) over the point's key paths, base values included.
- Seeds (docs/architecture.md decision 9): ``SeedSequence(seed).spawn(repeats + 1)``; child 0 drives
  random sampling, child ``1 + r`` gives the seed of repeat ``r`` of *every* point (common
  random numbers: points differ by their configuration, not by their draws), so a point's
  seed does not depend on its position in the sweep.
- A point's id hashes its scenario (documentation keys left out, defaults dropped), seed
  included, so a re-run or an edited sweep file finds the points already computed, however
  their values were spelled.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterator, Literal, Mapping

import numpy as np
from pydantic import Field

from oassim.errors import SpecError
from oassim.experiments.reliability import ReliabilitySweep
from oassim.experiments.scenario import Network, Scenario, apply_overrides, load_scenario
from oassim.experiments.sweep_axes import Axis, parse_axis
from oassim.experiments.sweep_expr import Expr, compile_expr, known_names
from oassim.specio import SpecModel, read_yaml, validate

__all__ = [
    "SweepSpec", "Axis", "Point", "SweepPlan",
    "load_sweep", "parse_axis", "expand_sweep", "point_id", "scenario_identity",
    "MAX_CANDIDATES",
]

MAX_CANDIDATES = 1_000_000
"""Largest number of candidate points (before constraints) a sweep may expand to, and of
points (candidates or samples x repeats) it may run."""

_DOC_KEYS = ("name", "description", "notes", "sources")  # documentation: not part of a point's identity


class SweepSpec(SpecModel):
    """A sweep file (``docs/sweeps.md``).

    Parameters
    ----------
    name : str
        Sweep name, used in reports and the results store.
    description : str
        One line saying what the study asks.
    base : str or mapping
        The base scenario: a scenario file (relative to the sweep file's folder) or an inline
        scenario mapping.
    sampling : {"grid", "random"}
        Every combination of the axes' values, or ``samples`` random draws.
    samples : int, optional
        Distinct points to draw (``random`` only).
    seed : int
        Root seed of sampling and of every point's ``seed``.
    repeats : int
        Seeds per point (each one a separate point).
    axes : mapping of str to axis
        Dotted scenario key -> a list of values, ``{values: [...]}``, ``{range: [start, stop],
        step: s}`` / ``{range: [start, stop], factor: f}`` (stop exclusive, as Python's
        ``range``), or ``{low, high, log, integer, num}`` (``num`` values for grids, a
        distribution for random sampling). A single scalar fixes the key.
    derived : mapping of str to str
        Dotted scenario key -> expression of other keys, set in order after the axes.
    constraints : list of str
        Boolean expressions; a point is kept when all are true.
    network : {"analytical", "flow"}, optional
        Network fidelity of every point (default: the base scenario's).
    reliability : mapping, optional
        ``{days, samples}``: also run a failure/checkpoint campaign per point and store its
        ``goodput``, ``ettr``, ``interruptions_per_day``, ``mtbf_hours`` and
        ``effective_tokens_per_s`` (:class:`~oassim.experiments.reliability.ReliabilitySweep`).
    """

    name: str
    description: str = ""
    base: str | dict[str, Any]
    sampling: Literal["grid", "random"] = "grid"
    samples: int | None = Field(default=None, gt=0, le=MAX_CANDIDATES, strict=True)
    seed: int = Field(default=0, ge=0, strict=True)
    repeats: int = Field(default=1, gt=0, le=10_000, strict=True)
    axes: dict[str, Any] = Field(min_length=1)
    derived: dict[str, str] = Field(default_factory=dict)
    constraints: list[str] = Field(default_factory=list)
    network: Network | None = None
    reliability: ReliabilitySweep | None = None


def _check_samples(spec: SweepSpec, source: str | None) -> None:
    if spec.sampling == "random" and spec.samples is None:
        raise SpecError("random sampling needs samples: N (how many points to draw)", source=source, path="samples")
    if spec.sampling == "grid" and spec.samples is not None:
        raise SpecError("samples is for sampling: random only (a grid takes every combination)",
                        source=source, path="samples")


# -- points ---------------------------------------------------------------------------------------


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def scenario_identity(sc: Scenario) -> dict[str, Any]:
    """What makes two scenarios the same simulation: the validated scenario without its
    documentation keys (name, description, notes, sources), defaults left out."""
    doc = sc.model_dump(mode="json", exclude_defaults=True)
    for k in _DOC_KEYS:
        doc.pop(k, None)
    return doc


def point_id(sc: Scenario) -> str:
    """Stable id of a point: 16 hex digits of the SHA-256 of its canonical identity (seed included)."""
    return hashlib.sha256(_canonical(scenario_identity(sc)).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Point:
    """One simulation of a sweep.

    Attributes
    ----------
    point_id : str
    index : int
        Position in the sweep (the order points are submitted in).
    values : dict
        Axis and derived values by dotted key path.
    repeat : int
        Which seed of ``repeats`` (0-based).
    seed : int
    scenario : dict
        The complete scenario (JSON-ready, valid for :func:`~oassim.experiments.runner.run`).
    """

    point_id: str
    index: int
    values: dict[str, Any]
    repeat: int
    seed: int
    scenario: dict[str, Any]


@dataclass(frozen=True)
class SweepPlan:
    """An expanded sweep: the points to run and what produced them."""

    spec: SweepSpec
    source: str | None
    base: dict[str, Any]
    fingerprint: str
    axes: tuple[Axis, ...]
    points: tuple[Point, ...]
    candidates: int
    dropped: int

    @property
    def axis_paths(self) -> list[str]:
        """Dotted paths of the axes and derived keys (the point columns of the store)."""
        return [a.path for a in self.axes] + [p for p in self.spec.derived if p not in {a.path for a in self.axes}]

    def record(self) -> dict[str, Any]:
        """The resolved sweep, as ``DIR/sweep.yaml`` holds it."""
        spec = self.spec.model_dump(mode="json")
        spec["base"] = self.base
        return {"oassim_sweep": 1, "name": self.spec.name, "source": self.source,
                "base_fingerprint": self.fingerprint, "axis_paths": self.axis_paths,
                "points": len(self.points), "candidates": self.candidates, "dropped": self.dropped,
                "sweep": spec}


def load_sweep(sweep: str | Path | Mapping[str, Any] | SweepSpec) -> tuple[SweepSpec, str | None]:
    """Read and validate a sweep file (or mapping); returns the spec and its source path."""
    if isinstance(sweep, SweepSpec):
        spec, source = sweep, None
    elif isinstance(sweep, Mapping):
        spec, source = validate(SweepSpec, dict(sweep)), None
    else:
        spec, source = validate(SweepSpec, read_yaml(sweep), source=str(sweep)), str(sweep)
    _check_samples(spec, source)
    return spec, source


@lru_cache(maxsize=256)
def _model_fields(key: str) -> dict[str, Any] | None:
    """Every field of a model given as a preset name or (canonical JSON of) an inline mapping."""
    from oassim.workload import ModelSpec, resolve_model

    try:
        value = json.loads(key)
        m = resolve_model(value) if isinstance(value, str) else ModelSpec.model_validate(value)
        return m.model_dump(mode="json")
    except Exception:  # an unknown preset or a bad model: reported when the point is validated or run
        return None


def _namespace(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The point as expressions see it: the model (preset name or mapping) as all its fields."""
    wl = doc.get("workload")
    if isinstance(wl, dict) and isinstance(wl.get("model"), (str, dict)):
        m = _model_fields(_canonical(wl["model"]))
        if m is not None:
            doc = {**doc, "workload": {**wl, "model": m}}
    return dict(doc)


def _flat_paths(doc: Any, prefix: str = "") -> Iterator[str]:
    if isinstance(doc, dict):
        for k, v in doc.items():
            p = f"{prefix}.{k}" if prefix else str(k)
            yield p
            yield from _flat_paths(v, p)


def _get(doc: Mapping[str, Any], path: str) -> Any:
    node: Any = doc
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            raise KeyError(path)
        node = node[part]
    return node


def _set(doc: dict[str, Any], path: str, value: Any) -> None:
    parts = path.split(".")
    node = doc
    for part in parts[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[parts[-1]] = copy.deepcopy(value)


def _load_base(spec: SweepSpec, source: str | None) -> tuple[dict[str, Any], str | None]:
    """The base scenario as a JSON-ready mapping (defaults filled in, paths made absolute)."""
    folder = Path(source).resolve().parent if source else Path.cwd()
    if isinstance(spec.base, str):
        p = Path(spec.base)
        p = p if p.is_absolute() else folder / p
        if not p.is_file():
            raise SpecError(f"base scenario file not found: {p}", source=source, path="base")
        sc, base_src = load_scenario(p)
    else:
        try:
            sc, _ = load_scenario(spec.base)
        except SpecError as exc:
            raise exc.with_context(source=source, prefix="base") from None
        base_src = source
        if sc.cluster.file is not None and not Path(sc.cluster.file).is_absolute():
            cluster = sc.cluster.model_copy(update={"file": str(folder / sc.cluster.file)})
            sc = sc.model_copy(update={"cluster": cluster})
    doc = sc.model_dump(mode="json")
    model = doc["workload"]["model"]
    if isinstance(model, str) and model.endswith((".yaml", ".yml")) and not Path(model).is_absolute():
        doc["workload"]["model"] = str((Path(base_src).resolve().parent if base_src else folder) / model)
    if spec.network is not None:
        doc["network"] = spec.network
    return doc, base_src


def _check_paths(doc: dict[str, Any], paths: list[tuple[str, str]], source: str | None) -> dict[str, Any]:
    """Check each (path, where) against the scenario model; returns the base with a preset model
    inlined when a path reaches into it."""
    for path, where in paths:
        if path == "seed" or path.startswith("seed."):
            raise SpecError("the seed is set per point from the sweep's seed and repeats; it cannot be swept",
                            source=source, path=where)
        try:
            doc = apply_overrides(doc, [f"{path}=null"])
        except SpecError as exc:
            raise SpecError(exc.message, source=source, path=where) from None
    return doc


def _check_size(spec: SweepSpec, axes: tuple[Axis, ...], source: str | None) -> None:
    """Refuse, before any value is made, a sweep of more than :data:`MAX_CANDIDATES` points
    (candidates x repeats), and random sampling asking for more distinct points than exist."""
    repeats = spec.repeats
    if spec.sampling == "grid":
        for a in axes:
            if a.values is None and a.num is None:
                raise SpecError("a low/high axis needs num: N on a grid (or use sampling: random)",
                                source=source, path=f"axes.{a.path}")
        total = math.prod(a.size for a in axes)  # the sizes alone: nothing is materialised yet
        if total > MAX_CANDIDATES:
            raise SpecError(f"the grid has {total:,} points before constraints (the most is {MAX_CANDIDATES:,}): "
                            "use fewer values or sampling: random", source=source, path="axes")
        if total * repeats > MAX_CANDIDATES:
            raise SpecError(f"{total:,} grid points x {repeats:,} repeats are {total * repeats:,} points to run "
                            f"(the most is {MAX_CANDIDATES:,}): use fewer repeats or fewer values",
                            source=source, path="repeats")
        return
    samples = int(spec.samples or 0)
    if samples * repeats > MAX_CANDIDATES:
        raise SpecError(f"{samples:,} samples x {repeats:,} repeats are {samples * repeats:,} points to run (the "
                        f"most is {MAX_CANDIDATES:,}): use fewer samples or repeats", source=source, path="repeats")
    space = math.prod(a.space() for a in axes)
    if space < samples:  # the draws could never find that many distinct points
        raise SpecError(f"samples: {samples:,} distinct points asked, but the axes have only {int(space):,} "
                        f"combinations: ask for at most {int(space):,} (or use sampling: grid)",
                        source=source, path="samples")


def _candidates(spec: SweepSpec, axes: tuple[Axis, ...], rng: np.random.Generator) -> Iterator[tuple[Any, ...]]:
    if spec.sampling == "grid":
        yield from itertools.product(*(a.grid_values() for a in axes))
        return
    attempts = max(1000, 100 * int(spec.samples or 0))
    for _ in range(attempts):
        yield tuple(a.draw(rng) for a in axes)


def expand_sweep(sweep: str | Path | Mapping[str, Any] | SweepSpec, *, source: str | None = None) -> SweepPlan:
    """Expand a sweep into validated points.

    Parameters
    ----------
    sweep : path, mapping or SweepSpec
    source : str, optional
        The sweep file, for messages and relative paths (when ``sweep`` is not a path).

    Returns
    -------
    SweepPlan
        ``points`` in grid order (axes in file order, the last one varying fastest; each
        point's repeats together) or in draw order.

    Raises
    ------
    SpecError
        A malformed file, an axis or expression key that names no key of the scenario, an
        empty axis, a grid larger than :data:`MAX_CANDIDATES`, an expression that cannot be
        evaluated, constraints that drop every point, or a point that is not a valid
        scenario (one line: ``FILE: key.path: message``).
    """
    spec, src = load_sweep(sweep)
    source = src or source
    base, _ = _load_base(spec, source)
    fingerprint = hashlib.sha256(_canonical(scenario_identity(Scenario.model_validate(base))).encode()).hexdigest()[:16]
    axes = tuple(parse_axis(p, raw, source=source) for p, raw in spec.axes.items())
    _check_size(spec, axes, source)
    template = _check_paths(base, [(a.path, f"axes.{a.path}") for a in axes]
                            + [(p, f"derived.{p}") for p in spec.derived], source)
    from oassim.workload import ModelSpec

    paths = list(_flat_paths(_namespace(template)))
    paths += [f"workload.model.{f}" for f in ModelSpec.model_fields]  # a swept model has them too
    known = known_names(list(dict.fromkeys(paths)))
    derived = [(p, compile_expr(t, f"derived.{p}", known, source=source)) for p, t in spec.derived.items()]
    constraints = [compile_expr(t, f"constraints[{i}]", known, source=source) for i, t in enumerate(spec.constraints)]

    ss = np.random.SeedSequence(spec.seed).spawn(spec.repeats + 1)
    rng = np.random.default_rng(ss[0])
    seeds = [int(s.generate_state(1, dtype=np.uint32)[0]) for s in ss[1:]]
    where_of = {a.path: f"axes.{a.path}" for a in axes} | {p: f"derived.{p}" for p in spec.derived}

    points: list[Point] = []
    seen: set[tuple[str, ...]] = set()
    ids: set[str] = set()
    candidates = dropped = 0
    drops = [0] * len(constraints)
    space = math.prod(a.space() for a in axes)
    for combo in _candidates(spec, axes, rng):
        if spec.sampling == "random" and len(seen) >= min(space, MAX_CANDIDATES):
            break  # every combination drawn (or as many candidates as a grid may have)
        key = tuple(_canonical(v) for v in combo)
        if spec.sampling == "random" and key in seen:
            continue
        seen.add(key)
        candidates += 1
        doc = copy.deepcopy(template)
        values: dict[str, Any] = {}
        for a, v in zip(axes, combo):
            _set(doc, a.path, v)
            values[a.path] = v
        ns = _namespace(doc)
        look = _looker(ns, values, source)
        for p, expr in derived:
            v = _evaluate(expr, look, values, source)
            if isinstance(v, float) and not math.isfinite(v):
                raise SpecError(f"{expr.text!r} gives {v!r} at point ({_at(values)}), not a finite number",
                                source=source, path=expr.where)
            _set(doc, p, v)
            values[p] = v
            ns = _namespace(doc)
            look = _looker(ns, values, source)
        failed = next((i for i, c in enumerate(constraints) if not _evaluate(c, look, values, source)), None)
        if failed is not None:
            dropped += 1
            drops[failed] += 1
            continue
        for r, seed in enumerate(seeds):
            doc_r = dict(doc, seed=seed)
            sc = _validate_point(doc_r, values, where_of, source)
            pid = point_id(sc)
            if pid in ids:  # a value listed twice
                continue
            ids.add(pid)
            points.append(Point(pid, len(points), dict(values), r, seed, sc.model_dump(mode="json")))
        if spec.sampling == "random" and len(points) >= int(spec.samples or 0) * spec.repeats:
            break
    if not points:
        detail = ", ".join(f"constraints[{i}] drops {n:,}" for i, n in enumerate(drops) if n)
        raise SpecError(f"the constraints drop every one of the {candidates:,} candidate points ({detail})",
                        source=source, path="constraints")
    return SweepPlan(spec, source, base, fingerprint, axes, tuple(points), candidates, dropped)


def _at(values: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in values.items())


def _looker(ns: Mapping[str, Any], values: Mapping[str, Any], source: str | None) -> Callable[[str], Any]:
    def look(path: str) -> Any:
        try:
            return _get(ns, path)
        except KeyError:
            raise LookupError(f"key {path} has no value here") from None
    return look


def _evaluate(expr: Expr, look: Callable[[str], Any], values: Mapping[str, Any], source: str | None) -> Any:
    try:
        return expr(look)
    except Exception as exc:  # ZeroDivisionError, TypeError on None, a key not set...: say where
        raise SpecError(f"cannot evaluate {expr.text!r} at point ({_at(values)}): {type(exc).__name__}: {exc}",
                        source=source, path=expr.where) from None


def _validate_point(doc: dict[str, Any], values: Mapping[str, Any], where_of: Mapping[str, str],
                    source: str | None) -> Scenario:
    try:
        sc = validate(Scenario, doc)
        if isinstance(sc.workload.model, dict):
            from oassim.workload import ModelSpec

            validate(ModelSpec, sc.workload.model, prefix="workload.model")
        return sc
    except SpecError as exc:
        key = exc.path or ""
        hit = next((p for p in where_of if key == p or key.startswith(p + ".")), None)
        path = where_of[hit] if hit else (f"base.{key}" if key else "base")
        raise SpecError(f"{exc.message} at point ({_at(values)}); add a constraint to drop such points",
                        source=source, path=path) from None
