"""``simulate(plan, fabric) -> Results``: replay one training iteration on a cluster.

What it does: wires the context (SimPy environment, seeded generator, recorder, collective
engine), runs the replay (:mod:`oassim.scheduler.replay`) and turns the records into the
Results frames (:mod:`oassim.scheduler.results`). It computes no physics: compute durations
come with the plan (``ComputeOp.duration_s``) and every collective is costed by the
collective engine on the chosen network model (docs/architecture.md, conventions "the simulator asks, the model
answers").
"""

from __future__ import annotations

import gc
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Literal, Mapping

import numpy as np
import simpy

from oassim.collectives import CollectiveEngine
from oassim.scheduler.comm import CommModel
from oassim.scheduler.context import SimContext
from oassim.scheduler.recorder import Recorder
from oassim.scheduler.replay import Replay
from oassim.scheduler.results import Results

__all__ = ["simulate", "provenance"]


def provenance(seed: int) -> dict[str, Any]:
    """oassim version, seed, ``git describe`` of the checkout (None without git) and the
    versions of Python, SimPy and numpy. Never fails."""
    try:  # the distribution's version: importing the top package would reach up to experiments
        from importlib.metadata import PackageNotFoundError, version

        __version__ = version("oassim")
    except (ImportError, PackageNotFoundError):
        __version__ = "unknown"
    git = None
    try:
        out = subprocess.run(["git", "-C", str(Path(__file__).resolve().parents[2]), "describe", "--always",
                              "--dirty", "--tags"], capture_output=True, text=True, timeout=5)
        if out.returncode == 0:
            git = out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError, ValueError):
        git = None
    return {"version": __version__, "seed": int(seed), "git_describe": git,
            "python": sys.version.split()[0], "simpy": simpy.__version__, "numpy": np.__version__}


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
             scenario: Mapping[str, Any] | None = None) -> Results:
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

    Returns
    -------
    Results
        ``iteration_time_s``; frames ``ops``, ``collectives``, ``link_util``, ``tiers`` (see
        :mod:`oassim.scheduler.results`) and ``waits`` (idle intervals of the compute streams);
        ``provenance`` (version, seed, git describe, wall time, event and costing counts).

    Raises
    ------
    SpecError
        A bad straggler, a full-rank job too large, or a call the engine cannot cost.
    """
    t0 = time.perf_counter()
    if engine is None:
        engine = CollectiveEngine(fabric, network, salt=int(seed))
    net_name = getattr(getattr(engine, "network", None), "name", network)
    env = simpy.Environment()
    recorder = Recorder([])
    comm = CommModel(env, engine, len(fabric.link_tier_names))
    recorder.infos = comm.infos
    ctx = SimContext(env=env, rng=np.random.default_rng(seed), recorder=recorder, comm=comm, engine=engine)
    replay = Replay(ctx, plan, full_rank=full_rank, stragglers=stragglers)
    t1 = time.perf_counter()
    # The replay allocates millions of small records that live to the end: the cyclic
    # collector would re-walk all of them again and again (quadratic time), and they hold
    # no cycles worth collecting, so it is paused for the run.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        iteration = replay.run()
        t2 = time.perf_counter()
        table = replay.builder.table()
        ops = recorder.ops_frame(table)
        colls = recorder.collectives_frame()
        link_util, tiers = recorder.link_frames(fabric, iteration, link_windows)
        waits = recorder.waits_frame()
    finally:
        if gc_was_enabled:
            gc.enable()
    t3 = time.perf_counter()
    prov = {
        **provenance(seed),
        "network": net_name,
        "full_rank": bool(full_rank),
        "members": len(replay.members),
        "segments": len(recorder.segments),
        "collective_instances": len(recorder.flights),
        "distinct_requests": len(comm.infos),
        "comm": dict(comm.stats),
        "engine": dict(getattr(engine, "stats", {}) or {}),
        "wall_s": {"setup": t1 - t0, "replay": t2 - t1, "frames": t3 - t2, "total": t3 - t0},
    }
    return Results(
        scenario=dict(scenario) if scenario is not None else _scenario(plan, fabric, net_name, seed, full_rank,
                                                                       stragglers),
        plan=plan, iteration_time_s=float(iteration), ops=ops, collectives=colls, link_util=link_util,
        tiers=tiers, network=net_name, provenance=prov, waits=waits,
    )
