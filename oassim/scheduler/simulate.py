"""``simulate(plan, fabric) -> Results``: replay one training iteration on a cluster.

What it does: wires the context (SimPy environment, seeded generator, recorder, collective
engine), runs the replay (:mod:`oassim.scheduler.replay`) and turns the records into the
Results frames (:mod:`oassim.scheduler.results`). It computes no physics: compute durations
come with the plan (``ComputeOp.duration_s``) and every collective is costed by the
collective engine on the chosen network model (docs/architecture.md, conventions "the simulator asks, the model
answers").
"""

from __future__ import annotations

import dataclasses
import functools
import gc
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Literal, Mapping

import numpy as np
import simpy

import pandas as pd

from oassim.collectives import CollectiveEngine
from oassim.errors import SpecError
from oassim.scheduler.comm import CommModel
from oassim.scheduler.context import SimContext
from oassim.scheduler.periodic import TIME_COLUMNS, TOLERANCE, Layout, attempts, expand_frame, period_shift
from oassim.scheduler.quiet import EarlyQuietOverlap
from oassim.scheduler.recorder import Recorder
from oassim.scheduler.replay import Replay
from oassim.scheduler.results import Deferred, Results

__all__ = ["simulate", "provenance", "REPLAY_MODES", "check_replay"]

REPLAY_MODES = ("auto", "full", "periodic")


def check_replay(replay: str, **where: str) -> None:
    """SpecError (at ``where``: ``path=`` or ``source=``) unless ``replay`` is one of :data:`REPLAY_MODES`."""
    if replay not in REPLAY_MODES:
        raise SpecError(f"unknown replay mode {replay!r} (allowed: {', '.join(REPLAY_MODES)})", **where)


@functools.lru_cache(maxsize=1)
def _git_describe() -> str | None:
    """``git describe`` of this checkout (None without git), read once per process: a sweep
    worker runs thousands of points on one version of the code."""
    try:
        out = subprocess.run(["git", "-C", str(Path(__file__).resolve().parents[2]), "describe", "--always",
                              "--dirty", "--tags"], capture_output=True, text=True, timeout=5)
        if out.returncode == 0:
            return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError, ValueError):
        pass
    return None


def provenance(seed: int) -> dict[str, Any]:
    """oassim version, seed, ``git describe`` of the checkout (None without git; read once per
    process) and the versions of Python, SimPy and numpy. Never fails."""
    return {"version": _version(), "seed": int(seed), "git_describe": _git_describe(),
            "python": sys.version.split()[0], "simpy": simpy.__version__, "numpy": np.__version__}


@functools.lru_cache(maxsize=1)
def _version() -> str:
    """The installed distribution's version, read once per process (reading the package
    metadata costs milliseconds: a sweep point's simulate calls this every time)."""
    try:  # the distribution's version: importing the top package would reach up to experiments
        from importlib.metadata import PackageNotFoundError, version

        return version("oassim")
    except (ImportError, PackageNotFoundError):
        return "unknown"


def _scenario(plan: Any, fabric: Any, network: str, seed: int, full_rank: bool,
              stragglers: Mapping[int, float] | None) -> dict[str, Any]:
    return {
        "cluster": {"name": getattr(fabric, "name", None), "accelerators": int(fabric.n_accelerators)},
        "workload": {"model": plan.model.name, **plan.training.model_dump(mode="json")},
        "parallelism": plan.parallelism.model_dump(mode="json"),
        "accelerator": plan.accelerator,
        "framework": plan.framework,
        "network": network,
        "seed": int(seed),
        "full_rank": bool(full_rank),
        "stragglers": {str(k): float(v) for k, v in (stragglers or {}).items()},
    }


def simulate(plan: Any, fabric: Any, *, network: Literal["analytical", "flow"] = "analytical",
             engine: Any = None, seed: int = 0, full_rank: bool = False,
             stragglers: Mapping[int, float] | None = None, link_windows: int = 100,
             scenario: Mapping[str, Any] | None = None, replay: str = "auto") -> Results:
    """Simulate one training iteration of ``plan`` on ``fabric``.

    Parameters
    ----------
    plan : Plan
        From :func:`oassim.workload.compile_plan` (ranks must lie on ``fabric``).
    fabric : Fabric
        The frozen cluster (``oassim.topology.cluster.build_fabric``).
    network : {"analytical", "flow"}
        Network fidelity of a new engine (ignored when ``engine`` is given).
    engine : CollectiveEngine, optional
        The collective engine to ask (reuse one across runs to share its memo; tests inject
        stubs). Default: ``CollectiveEngine(fabric, network, salt=seed)``.
    seed : int
        Seeds the run's generator and the ECMP hash salt of a new engine; same plan, fabric
        and seed give the same Results.
    full_rank : bool
        Replay every rank (small jobs, at most ``FULL_RANK_LIMIT`` ranks) instead of one
        representative per pipeline stage, so that asymmetry shows.
    stragglers : mapping of int to float, optional
        Compute slowdown factor per accelerator rank (2.0: its kernels take twice as long).
        In representative mode a stage takes its slowest rank's factor.
    link_windows : int
        Time windows of the ``link_util`` frame over the iteration.
    scenario : mapping, optional
        The resolved scenario to store in Results (default: a description built from the plan).
    replay : {"auto", "full", "periodic"}
        ``auto``: replay a few steady periods of the pipeline schedule and account the others
        (:mod:`oassim.scheduler.periodic`) when the schedule has enough periods and its steady
        periods are checked to repeat, else every micro-batch; ``full``: every micro-batch;
        ``periodic``: as ``auto``, but where the periodic replay cannot be used that is an
        error (SpecError with the reason) rather than a full replay (a sweep that must stay
        cheap). ``provenance["replay"]`` says which was done and why.

    Returns
    -------
    Results
        ``iteration_time_s``; frames ``ops``, ``collectives``, ``link_util``, ``tiers`` (see
        :mod:`oassim.scheduler.results`) and ``waits`` (idle intervals of the compute streams);
        ``provenance`` (version, seed, git describe, wall time, event and costing counts of what
        was replayed, and ``replay``: ``mode`` "periodic" with the period, the micro-batches
        replayed and the periods accounted, or "full" with the ``reason``).

    Raises
    ------
    SpecError
        A bad straggler, a full-rank job too large, or a call the engine cannot cost.
    """
    t0 = time.perf_counter()
    if engine is None:
        engine = CollectiveEngine(fabric, network, salt=int(seed))
    check_replay(replay, path="replay")
    net_name = getattr(getattr(engine, "network", None), "name", network)
    # The replay allocates millions of small records that live to the end: the cyclic
    # collector would re-walk all of them again and again (quadratic time), and they hold
    # no cycles worth collecting, so it is paused for the run.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        out, wall, how = None, {"setup": 0.0, "replay": 0.0, "frames": 0.0}, None
        tries: Any = "the full replay was asked for" if replay == "full" else attempts(plan)
        if isinstance(tries, str):
            how = {"mode": "full", "reason": tries}
        for attempt in () if isinstance(tries, str) else tries:
            got = _attempt(plan, fabric, engine, seed, full_rank, stragglers, link_windows, attempt, wall)
            if not isinstance(got, str):
                out = got
                lay = got[-1]
                how = {"mode": "periodic", "period_microbatches": lay.period, "periods": lay.periods,
                       "replayed_microbatches": lay.microbatches, "periods_accounted": lay.inserted,
                       "steady_from_period": lay.anchor, "period_s": got[-2]}
                break
            how = {"mode": "full", "reason": f"the steady periods do not repeat ({len(tries)} attempt(s), the "
                                             f"last replaying {attempt.microbatches} micro-batches): {got}"}
        if out is None and replay == "periodic":
            raise SpecError(f"the periodic replay cannot be used: {how['reason'] if how else 'no attempt'} "
                            "(replay auto falls back to the full replay)", path="replay")
        if out is None:
            out = _attempt(plan, fabric, engine, seed, full_rank, stragglers, link_windows, None, wall)
    finally:
        if gc_was_enabled:
            gc.enable()
    iteration, frames, stats = out[:3]
    ops, colls, link_util, tiers, waits = frames
    prov = {
        **provenance(seed),
        "network": net_name,
        "full_rank": bool(full_rank),
        **stats,
        "replay": how,
        "engine": dict(getattr(engine, "stats", {}) or {}),
        "wall_s": {**wall, "total": time.perf_counter() - t0},
    }
    return Results(
        scenario=dict(scenario) if scenario is not None else _scenario(plan, fabric, net_name, seed, full_rank,
                                                                       stragglers),
        plan=plan, iteration_time_s=float(iteration), ops=ops, collectives=colls, link_util=link_util,
        tiers=tiers, network=net_name, provenance=prov, waits=waits,
    )


def _attempt(plan: Any, fabric: Any, engine: Any, seed: int, full_rank: bool, stragglers: Any,
             link_windows: int, lay: Layout | None, wall: dict[str, float]) -> tuple | str:
    """One replay: every micro-batch (``lay`` None), or the periodic layout ``lay`` expanded
    to the whole job. Returns (iteration time, frames, stats, period) or, for a layout whose
    steady periods do not repeat, why (a sentence). Adds its wall times to ``wall``."""
    t0 = time.perf_counter()
    for early_quiet in (None, False):  # again without early-phase quiet calls if one outlasted its phase
        env = simpy.Environment()
        recorder = Recorder([])
        comm = CommModel(env, engine, len(fabric.link_tier_names))
        recorder.infos = comm.infos
        ctx = SimContext(env=env, rng=np.random.default_rng(seed), recorder=recorder, comm=comm, engine=engine)
        rp = Replay(ctx, plan, full_rank=full_rank, stragglers=stragglers,
                    schedules=None if lay is None else lay.schedules(),
                    n_microbatches=None if lay is None else lay.microbatches, early_quiet=early_quiet)
        t1 = time.perf_counter()
        try:
            iteration = rp.run()
            break
        except EarlyQuietOverlap:
            continue
    t2 = time.perf_counter()
    wall["setup"] += t1 - t0
    wall["replay"] += t2 - t1
    ops = recorder.ops_frame(rp.builder.table())
    colls = recorder.collectives_frame()
    waits = recorder.waits_frame()
    flights = recorder.flight_arrays()
    stats = {"members": len(rp.members), "segments": len(recorder.segments) // 6,
             "collective_instances": len(recorder.flights), "distinct_requests": len(comm.infos),
             "comm": dict(comm.stats)}
    delta = 0.0
    if lay is not None:
        # idle intervals of a few ulps (simultaneous events whose times were summed in another
        # order) come and go between periods: not records of anything
        tiny = (waits["end_s"] - waits["start_s"]).to_numpy() <= TOLERANCE * iteration
        if tiny.any():
            waits = waits[~tiny].reset_index(drop=True)
        fr = {"ops": ops, "collectives": colls, "waits": waits, "flights": pd.DataFrame(flights)}
        found: float | str = "no steady periods"
        for j in list(lay.steady)[:-1]:
            found = _shift(fr, lay, j, iteration)
            if not isinstance(found, str):
                lay = dataclasses.replace(lay, anchor=j)
                break
        if isinstance(found, str):
            wall["frames"] += time.perf_counter() - t2
            return found
        delta = found
        iteration += lay.inserted * delta
        wall["frames"] += time.perf_counter() - t2
        links = Recorder(recorder.members)  # link frames need the costed calls, not the records
        links.infos = recorder.infos
        return iteration, _deferred(fr, lay, delta, links, fabric, iteration, link_windows), stats, delta, lay
    link_util, tiers = recorder.link_frames(fabric, iteration, link_windows, flights)
    wall["frames"] += time.perf_counter() - t2
    return iteration, (ops, colls, link_util, tiers, waits), stats, delta, lay


def _shift(fr: dict[str, pd.DataFrame], lay: Layout, j: int, iteration: float) -> float | str:
    """The period's time shift from ``j`` to ``j + 1``, the same in every frame, or why not."""
    shifts = []
    for name, df in fr.items():
        d = period_shift(df, TIME_COLUMNS[name], lay, j, iteration)
        if isinstance(d, str):
            return f"{name}: {d}"
        if d is not None:
            shifts.append(d)
    if not shifts:
        return f"no records in periods {j} and {j + 1}"
    if max(shifts) - min(shifts) > TOLERANCE * iteration:
        return f"the frames disagree on the period ({min(shifts):.9g} to {max(shifts):.9g} s)"
    return shifts[0]


def _deferred(fr: dict[str, pd.DataFrame], lay: Layout, delta: float, recorder: Recorder, fabric: Any,
              iteration: float, link_windows: int) -> tuple[Deferred, ...]:
    """The whole job's frames from the replayed periods, each built when first read."""
    links: list[tuple[pd.DataFrame, pd.DataFrame]] = []

    def expand(name: str, group: str | None = None) -> Deferred:
        return Deferred(lambda: expand_frame(fr[name], TIME_COLUMNS[name], lay, delta, group=group))

    def link(i: int) -> Deferred:
        def build() -> pd.DataFrame:
            if not links:
                fx = expand_frame(fr["flights"], TIME_COLUMNS["flights"], lay, delta)
                links.append(recorder.link_frames(fabric, iteration, link_windows,
                                                  {c: fx[c].to_numpy() for c in fx.columns}))
            return links[0][i]
        return Deferred(build)

    return expand("ops", "stream"), expand("collectives"), link(0), link(1), expand("waits")
