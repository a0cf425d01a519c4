"""Results of a simulated training iteration: flat records plus the inputs and provenance.

docs/architecture.md decision 8: a run returns frames of flat records (operations, collectives, link
utilisation) plus the spec and provenance; metrics, plots and exports are pure functions of
Results (``oassim.analysis``). Nothing here writes to disk.

Frames (pandas DataFrames, one row per record; times in seconds from the iteration start):

``ops``
    stage, rank, stream ("compute" | "comm"), name, kind, dim (parallel dimension of a
    collective, "" for compute), microbatch (-1 outside micro-batches), chunk, start_s, end_s,
    exposed_s (the part of a communication op that the compute stream waited for; 0 for compute;
    waiting for other ranks to reach a synchronous call is not included: see ``waits``)
``collectives``
    stage, dim, op, where, size_bytes, groups (number of concurrent groups), group_size,
    algorithm, start_s, end_s, time_s, alone_s (its time if it ran alone), exposed_s,
    busbw_GBps, bottleneck_tier, bottleneck_util
``link_util``
    t0_s, t1_s, tier, utilisation (mean over the tier's links in that window), bytes
``tiers``
    tier, links, bytes, busy_s, utilisation (over the iteration), max_link_utilisation
``waits`` (added)
    stage, rank, reason ("pipeline": waiting for a pipeline neighbour, the bubble; "sync":
    waiting for the other ranks of a synchronous collective to reach it, e.g. a straggler's
    peers; "comm": waiting for a collective's stream or transfer, its exposed time), dim, where
    (the call waited for, "" for pipeline waits), microbatch, chunk, start_s, end_s: every
    interval a compute stream sat idle, so that compute + waits cover each rank's iteration.

Added columns (the contract's columns are all present): ``ops`` has ``layer`` (-1 outside
transformer layers and for collectives); ``collectives`` has ``microbatch``, ``chunk`` and
``group`` (the group index of a full-rank instance, -1 when the row covers every group).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Callable

import pandas as pd

__all__ = ["Results", "Deferred"]


class Deferred:
    """A frame computed on first use: ``Results`` holds it in place of the frame and replaces
    it by ``build()`` the first time the attribute is read (a periodic replay expands its
    records to the whole job only when someone looks at them)."""

    __slots__ = ("build",)

    def __init__(self, build: Callable[[], pd.DataFrame]):
        self.build = build


@dataclass(frozen=True)
class Results:
    """One simulated iteration.

    Attributes
    ----------
    scenario : dict
        The fully resolved scenario (what was simulated), JSON-ready.
    plan : Plan
        The compiled plan (``oassim.workload.plan.Plan``): model, parallelism, FLOPs, memory.
    iteration_time_s : float
        Wall time of one optimizer step, all micro-batches included, s.
    ops, collectives, link_util, tiers : pandas.DataFrame
        Flat records, columns as in the module docstring.
    network : str
        Network fidelity used ("analytical" | "flow").
    provenance : dict
        oassim version, seed, git state, wall time of the simulation.
    waits : pandas.DataFrame
        Idle intervals of the compute streams (module docstring); empty when not recorded.

    A frame may be held as a :class:`Deferred` and is built when first read; reading the
    attribute always gives the DataFrame.
    """

    scenario: dict[str, Any]
    plan: Any
    iteration_time_s: float
    ops: pd.DataFrame
    collectives: pd.DataFrame
    link_util: pd.DataFrame
    tiers: pd.DataFrame
    network: str
    provenance: dict[str, Any] = field(default_factory=dict)
    waits: pd.DataFrame = field(default_factory=pd.DataFrame)

    def __getattribute__(self, name: str) -> Any:
        value = object.__getattribute__(self, name)
        if type(value) is Deferred:
            value = value.build()
            object.__setattr__(self, name, value)
        return value

    def replace(self, **changes: Any) -> "Results":
        """A copy with ``changes`` (as ``dataclasses.replace``), frames not built yet left unbuilt."""
        kw = {f.name: object.__getattribute__(self, f.name) for f in fields(self)}
        kw.update(changes)
        return Results(**kw)
