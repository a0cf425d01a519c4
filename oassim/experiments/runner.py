"""The composition root: scenario -> cluster -> fabric -> plan -> simulation -> Results.

What it does: :func:`run` is the one place where the layers are wired together (docs/architecture.md, conventions,
"one composition root"); the ``oassim run`` command, ``oassim.run`` and notebooks all call
it. It loads and validates the scenario (:mod:`oassim.experiments.scenario`), builds and
freezes the cluster (``oassim.topology``), compiles the training plan (``oassim.workload``),
replays it (``oassim.scheduler.simulate``) and returns the scheduler's
:class:`~oassim.scheduler.results.Results` with the resolved scenario and provenance
(docs/architecture.md decision 8: oassim version, seed, git state, wall times). Nothing is written to
disk.

Why errors are re-located here: the workload layer reports an impossible job (parallel sizes
that do not multiply to the accelerator count, ``tp`` not dividing the heads, layers not
divisible by ``pp``, a job that does not fit in HBM...) as a :class:`~oassim.errors.SpecError`
with a key path but no file; the runner adds the scenario file, so the user reads one line
``FILE: parallelism.tp: tp 3 does not divide the 128 attention heads``.
"""

from __future__ import annotations

import dataclasses
import json
import platform
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, MutableMapping

from oassim.errors import OassimError, SpecError
from oassim.experiments.scenario import Scenario, load_scenario

if TYPE_CHECKING:  # pragma: no cover
    from oassim.scheduler.results import Results

__all__ = ["run", "resolve_scenario", "git_state"]

_NETWORKS = ("analytical", "flow")


def _simulator() -> Callable[..., Any]:
    """The scheduler's ``simulate`` (imported on first use: no work at import)."""
    try:
        from oassim.scheduler import simulate
    except ImportError as exc:  # pragma: no cover - only before the scheduler exists
        raise OassimError(f"the training replay (oassim.scheduler.simulate) is not available: {exc}") from None
    return simulate


def git_state(path: str | Path | None = None) -> dict[str, Any]:
    """Commit and dirtiness of the git checkout holding ``path`` (default: this package).

    Never fails: without git, outside a checkout or on any error the fields are None.

    Returns
    -------
    dict
        ``commit`` (40 hex digits or None), ``dirty`` (bool or None: uncommitted changes to
        tracked files).
    """
    where = Path(path) if path is not None else Path(__file__).resolve().parents[2]
    state: dict[str, Any] = {"commit": None, "dirty": None}
    try:
        commit = subprocess.run(["git", "-C", str(where), "rev-parse", "HEAD"], capture_output=True,
                                text=True, timeout=5)
        if commit.returncode != 0:
            return state
        state["commit"] = commit.stdout.strip() or None
        status = subprocess.run(["git", "-C", str(where), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=10)
        if status.returncode == 0:
            state["dirty"] = bool(status.stdout.strip())
    except (OSError, subprocess.SubprocessError, ValueError):
        pass
    return state


def _locate(exc: SpecError, source: str | None) -> SpecError:
    """The same error, placed in the scenario file when it names no file of its own."""
    return exc if exc.source else exc.with_context(source=source)


def _locate_cluster(exc: SpecError, sc: Scenario, source: str | None) -> SpecError:
    """An unknown preset or missing cluster file is a problem of the scenario's key; an error
    inside the cluster file stays located there."""
    missing = sc.cluster.preset is not None or not Path(str(sc.cluster.file)).is_file()
    if exc.path is None and exc.source == sc.cluster.ref and missing:
        key = "cluster.preset" if sc.cluster.preset is not None else "cluster.file"
        msg = exc.message if key == "cluster.preset" else f"{exc.message}: {sc.cluster.file}"
        return SpecError(msg, source=source, path=key)
    return exc


def _resolve_model(sc: Scenario, source: str | None):
    from oassim.workload import load_model_spec, resolve_model

    value = sc.workload.model
    if isinstance(value, str) and value.endswith((".yaml", ".yml")):
        p = Path(value)
        if not p.is_absolute() and source is not None:
            p = Path(source).resolve().parent / p
        return load_model_spec(p)
    try:
        return resolve_model(value, source=source, prefix="workload.model")
    except SpecError as exc:
        # an unknown preset: say where it was asked for
        raise SpecError(exc.message, source=source, path=exc.path or "workload.model") from None


def _mix(sc: Scenario, rc: Any, fabric: Any) -> Any:
    """The :class:`~oassim.workload.hetero.AcceleratorMix` of ``cluster.accelerator_types``, or None."""
    import numpy as np

    from oassim.hardware import load_catalog
    from oassim.workload.hetero import AcceleratorMix

    shares = sc.cluster.accelerator_types
    if not shares:
        return None
    cat = load_catalog()
    types = [cat.resolve_accelerator(a.accelerator, prefix=f"cluster.accelerator_types[{i}].accelerator")
             for i, a in enumerate(shares)]
    if len({a.name for a in types}) != len(types):
        raise SpecError("each accelerator type may be listed once", path="cluster.accelerator_types")
    counts = [a.supernodes for a in shares]
    if sum(counts) != rc.supernodes:
        raise SpecError(f"the supernodes of the accelerator types add up to {sum(counts)}, but the cluster has "
                        f"{rc.supernodes}", path="cluster.accelerator_types")
    dom = np.asarray(fabric.node_domain[fabric.accel_node], dtype=np.int64)
    if rc.domain_size <= 1 or (dom < 0).all():  # no scale-up domain: each accelerator is one
        dom = np.arange(len(dom), dtype=np.int64)
    return AcceleratorMix.by_domain(types, counts, dom)


def resolve_scenario(sc: Scenario, model: Any, accelerators: int, network: str) -> dict[str, Any]:
    """The scenario as simulated, JSON-ready and valid as a scenario again: the model inlined
    (preset resolved), defaults filled in, the accelerator count and network actually used."""
    out = sc.model_dump(mode="json")
    out["workload"]["model"] = model.model_dump(mode="json", exclude_defaults=True)
    out["workload"]["model"]["name"] = model.name
    out["cluster"]["accelerators"] = accelerators
    out["network"] = network
    return out


def run(scenario: str | Path | Mapping[str, Any] | Scenario, *, network: str | None = None,
        overrides: Iterable[str] = (), full_rank: bool = False,
        cluster_cache: MutableMapping[tuple[str, int | None], tuple[Any, Any]] | None = None,
        engine_cache: MutableMapping[Any, tuple[Any, Any]] | None = None,
        plan_cache: MutableMapping[Any, tuple[Any, Any]] | None = None,
        git: Mapping[str, Any] | None = None, replay: str = "auto") -> "Results":
    """Simulate one training iteration of a scenario and return its Results.

    Parameters
    ----------
    scenario : path, mapping or Scenario
        A scenario YAML file (docs/architecture.md "Scenario files"), its content, or a validated model.
    network : {"analytical", "flow"}, optional
        Network fidelity; default the scenario's ``network``.
    overrides : iterable of str
        ``"dotted.path=value"`` edits applied before validation (``--set``), e.g.
        ``["parallelism.tp=4", "cluster.accelerators=4096"]``.
    full_rank : bool
        Simulate every rank instead of one representative per pipeline stage (docs/architecture.md
        decision 7; slower, for what breaks symmetry).
    cluster_cache : mutable mapping, optional
        Built clusters by (cluster reference, accelerators): a sweep worker passes one so that
        points on the same cluster build it once (a frozen fabric is read-only to a run; its
        route caches are keyed by content and salt).
    engine_cache : mutable mapping, optional
        Collective engines by (fabric, network, seed): points on the same built cluster share
        one engine, so a request another point costed is answered from its memo (the engine
        is deterministic: the answer is the one a fresh engine gives).
    plan_cache : mutable mapping, optional
        Compiled plans by the resolved model, parallelism, training and cluster: a repeated
        point (another seed) skips the plan compiler. Plans are frozen.
    git : mapping, optional
        :func:`git_state` already taken (a sweep worker reads it once), else read now.
    replay : {"auto", "full", "periodic"}
        The scheduler's replay mode (``oassim.scheduler.simulate``; ``--replay``): ``auto``
        the periodic replay where the schedule allows it, else the full one; ``full`` every
        micro-batch; ``periodic`` the periodic replay or an error saying why it cannot be used.

    Returns
    -------
    Results
        Frames ``ops``, ``collectives``, ``link_util``, ``tiers``; ``scenario`` is the
        resolved scenario (:func:`resolve_scenario`); ``provenance`` holds ``version``,
        ``seed``, ``git`` (commit, dirty), ``python``, ``started_utc``, ``source``,
        ``overrides``, ``cluster`` (name, accelerators built, supernodes), ``pipeline`` (accelerator
        type(s) and decoder layers of each stage), ``full_rank``,
        ``wall_s`` (``load``, ``build``, ``plan``, ``simulate``, ``total``: wall-clock seconds
        of each step), and the scheduler's own entries (its wall-time split as
        ``scheduler_wall_s``).

    Raises
    ------
    SpecError
        Bad scenario, bad override or impossible job (one line naming the file and key).
    """
    from oassim import __version__
    from oassim.topology.cluster import build_cluster
    from oassim.topology.cluster_spec import load_cluster
    from oassim.topology.fabric import freeze
    from oassim.workload import compile_plan

    from oassim.scheduler.simulate import check_replay

    check_replay(replay, source="argument --replay")
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    t0 = time.perf_counter()
    overrides = list(overrides)
    sc, source = load_scenario(scenario, overrides)
    net = network if network is not None else sc.network
    if net not in _NETWORKS:
        raise SpecError(f"unknown network '{net}' (allowed: {', '.join(_NETWORKS)})", source="argument --network")
    t1 = time.perf_counter()

    key = (sc.cluster.ref, sc.cluster.accelerators)
    hit = cluster_cache.get(key) if cluster_cache is not None else None
    if hit is not None:
        rc, fabric = hit
    else:
        try:
            rc = load_cluster(sc.cluster.ref, sc.cluster.accelerators)
        except SpecError as exc:
            raise _locate_cluster(exc, sc, source) from None
        fabric = freeze(build_cluster(rc))
        if cluster_cache is not None:
            cluster_cache[key] = (rc, fabric)
    accelerators = sc.cluster.accelerators or rc.accelerators
    t2 = time.perf_counter()

    try:
        model = _resolve_model(sc, source)
        training = sc.workload.training()
        pkey = None
        if plan_cache is not None:
            pkey = (id(fabric), accelerators, json.dumps(
                [model.model_dump(mode="json"), sc.parallelism.model_dump(mode="json"),
                 training.model_dump(mode="json"), sc.cluster.model_dump(mode="json")["accelerator_types"]],
                sort_keys=True, default=str))
        phit = plan_cache.get(pkey) if plan_cache is not None else None
        if phit is not None and phit[0] is fabric:
            plan = phit[1]
        else:
            plan = compile_plan(model, sc.parallelism, rc.accelerator, fabric, training=training,
                                accelerators=accelerators, mix=_mix(sc, rc, fabric))
            if plan_cache is not None:
                plan_cache[pkey] = (fabric, plan)
    except SpecError as exc:
        raise _locate(exc, source) from None
    t3 = time.perf_counter()

    engine = None
    if engine_cache is not None:
        from oassim.collectives import CollectiveEngine

        ekey = (id(fabric), net, int(sc.seed))
        ehit = engine_cache.get(ekey)
        if ehit is not None and ehit[0] is fabric:
            engine = ehit[1]
        else:
            engine = CollectiveEngine(fabric, net, salt=int(sc.seed))
            engine_cache[ekey] = (fabric, engine)
    try:
        extra = {k: v for k, v in (("engine", engine), ("replay", replay)) if v not in (None, "auto")}
        res = _simulator()(plan, fabric, network=net, seed=sc.seed, full_rank=full_rank, **extra)
    except SpecError as exc:
        if exc.path == "replay" and not exc.source:  # replay periodic not possible: the flag's business
            raise SpecError(f"{exc.message} (scenario {source})" if source else exc.message,
                            source="argument --replay") from None
        raise _locate(exc, source) from None
    t4 = time.perf_counter()

    provenance = dict(getattr(res, "provenance", {}) or {})
    if "wall_s" in provenance:  # the scheduler's own split of its time
        provenance["scheduler_wall_s"] = provenance.pop("wall_s")
    provenance.update({
        "version": __version__,
        "seed": sc.seed,
        "git": dict(git) if git is not None else git_state(),
        "python": platform.python_version(),
        "started_utc": started,
        "source": source,
        "overrides": overrides,
        "network": net,
        "full_rank": full_rank,
        "cluster": {"name": rc.spec.name, "source": rc.source, "accelerators_built": rc.accelerators,
                    "supernodes": rc.supernodes, "supernode_size": rc.domain_size},
        "pipeline": {"stage_accelerators": list(plan.stage_accelerators), "stage_layers": list(plan.stage_layers)},
        "wall_s": {"load": t1 - t0, "build": t2 - t1, "plan": t3 - t2, "simulate": t4 - t3, "total": t4 - t0},
    })
    changes = {"scenario": resolve_scenario(sc, model, accelerators, net), "provenance": provenance}
    if hasattr(res, "replace"):  # keeps frames not built yet unbuilt
        return res.replace(**changes)
    return dataclasses.replace(res, **changes)
