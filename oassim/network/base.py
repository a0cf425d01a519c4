"""The network protocol: how long a set of concurrent flows takes on a fabric, and which
links carry them.

docs/architecture.md, conventions: keep the network boundary as narrow as ASTRA-sim's send/recv/time. A model takes a
frozen :class:`~oassim.topology.fabric.Fabric` and answers one question, ``transfer(flows)``:
the flows start together; when does each finish, and how many bytes did each link carry?
docs/architecture.md decision 5: two fidelities (``analytical``, ``flow``) implement it; adding one is a
new class and a registry line.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from oassim.topology.fabric import Fabric

__all__ = ["Flows", "TransferResult", "NetworkModel"]


@dataclass(frozen=True)
class Flows:
    """Flows that start at the same moment (one phase of a collective).

    Attributes
    ----------
    src, dst : ndarray of int64, shape (n,)
        Fabric node ids (accelerators for collectives).
    size_bytes : ndarray of float64, shape (n,)
        Bytes each flow carries (> 0).
    count : ndarray of float64, shape (n,), optional
        Flows each one stands for (an aggregated all-to-all sends one flow per destination
        block). Set, the models cost equal-cost link groups as one virtual link and, under
        static ECMP, derate them by the expected hashing excess of that many flows
        (:mod:`oassim.network.routing_modes`); None: every flow is itself.
    """

    src: np.ndarray
    dst: np.ndarray
    size_bytes: np.ndarray
    count: np.ndarray | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "src", np.asarray(self.src, dtype=np.int64).ravel())
        object.__setattr__(self, "dst", np.asarray(self.dst, dtype=np.int64).ravel())
        object.__setattr__(self, "size_bytes", np.asarray(self.size_bytes, dtype=np.float64).ravel())
        if not (len(self.src) == len(self.dst) == len(self.size_bytes)):
            raise ValueError("src, dst and size_bytes must have the same length")
        if self.count is not None:
            c = np.asarray(self.count, dtype=np.float64).ravel()
            if len(c) != len(self.src) or (len(c) and not np.all(c >= 1)):
                raise ValueError("count must give every flow a count >= 1")
            object.__setattr__(self, "count", c)

    def __len__(self) -> int:
        return len(self.src)


@dataclass(frozen=True)
class TransferResult:
    """What a network model answers for one set of flows.

    Attributes
    ----------
    time_s : float
        When the last flow finished (the phase's duration), s.
    flow_finish_s : ndarray of float64, shape (n_flows,)
        Finish time of each flow (path latency included), s.
    link_bytes : ndarray of float64, shape (n_links,)
        Bytes each directed link carried.
    link_busy_s : ndarray of float64, shape (n_links,)
        link_bytes / link payload capacity: how long each link was busy, s.
    """

    time_s: float
    flow_finish_s: np.ndarray
    link_bytes: np.ndarray
    link_busy_s: np.ndarray

    @property
    def link_utilisation(self) -> np.ndarray:
        """Busy time over the phase duration, per link (0..1)."""
        return self.link_busy_s / self.time_s if self.time_s > 0 else np.zeros_like(self.link_busy_s)


@runtime_checkable
class NetworkModel(Protocol):
    """A network fidelity. Construct with a fabric; ask ``transfer``."""

    name: str
    fabric: Fabric

    def transfer(self, flows: Flows, salt: int = 0) -> TransferResult:
        """Cost flows that start together; see :class:`TransferResult`."""
        ...
