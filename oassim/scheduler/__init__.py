"""oassim.scheduler: SimPy replay of a compiled training plan (docs/architecture.md decision 7).

``simulate(plan, fabric) -> Results`` replays one iteration: one SimPy process per pipeline
stage (a representative rank; every rank in full-rank mode) with a compute stream and a
communication stream per parallel dimension; the pipeline schedule and its bubbles emerge
from the dependencies between stages; every collective call is costed by the collective
engine, and calls that overlap in time are costed jointly on the network model
(:mod:`oassim.scheduler.comm`). Results are flat frames (:mod:`oassim.scheduler.results`).

Layering: imports workload, collectives, network, topology and hardware only.
"""

from oassim.scheduler.comm import CallInfo, CommModel, Flight
from oassim.scheduler.context import SimContext
from oassim.scheduler.replay import FULL_RANK_LIMIT, Replay
from oassim.scheduler.results import Results
from oassim.scheduler.simulate import provenance, simulate

__all__ = ["simulate", "Results", "SimContext", "CommModel", "CallInfo", "Flight", "Replay",
           "FULL_RANK_LIMIT", "provenance"]
