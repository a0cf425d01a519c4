"""The one small context object a replay runs in (docs/architecture.md, conventions "borrow the event kernel").

What it holds: the SimPy environment (the event kernel: a heap and ``schedule/step/run``),
the random generator of the run (docs/architecture.md decision 9: every stochastic part takes it), the
recorder, and the engines the replay asks (the collective engine behind
:class:`~oassim.scheduler.comm.CommModel`; compute durations come with the plan). Nothing
else: no event loop of our own, no global state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from oassim.scheduler.comm import CommModel
from oassim.scheduler.recorder import Recorder

__all__ = ["SimContext"]


@dataclass
class SimContext:
    """Environment, random generator, recorder and engines of one replay.

    Attributes
    ----------
    env : simpy.Environment
    rng : numpy.random.Generator
        Seeded from the run's seed; every stochastic part draws from it.
    recorder : Recorder
    comm : CommModel
        Costs collective calls on the collective engine and runs them as fluid jobs.
    engine : CollectiveEngine or compatible
    """

    env: Any
    rng: np.random.Generator
    recorder: Recorder
    comm: CommModel
    engine: Any
