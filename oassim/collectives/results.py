"""What the collective engine answers: time, nccl-tests bandwidths, links and bottleneck.

Metric definitions (docs/architecture.md, nccl-tests ``doc/PERFORMANCE.md``): ``algbw = size / time``
with ``size`` the nccl-tests size of the request; ``busbw = algbw * factor`` with factor
``2(n-1)/n`` for all-reduce, ``(n-1)/n`` for reduce-scatter, all-gather and all-to-all, 1 for
broadcast, reduce and send/recv. Per link: payload bytes carried over the whole collective
(all phases and repetitions) and utilisation = time the link was busy (wire bytes over its
capacity, achievable-fraction losses included) / collective time. The bottleneck tier is the
link tier holding the most utilised link.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from oassim.collectives.ops import busbw_factor

__all__ = ["PhaseCost", "CollectiveResult"]


@dataclass(frozen=True)
class PhaseCost:
    """Cost of one phase of a collective.

    Attributes
    ----------
    label : str
    repeat, steps : int
        As in :class:`~oassim.collectives.phases.Phase`.
    n_flows : int
        Flows in one repetition (all concurrent groups).
    in_network : bool
    transfer_s : float
        One repetition on the network model (wire bytes, one path latency), s.
    latency_s : float
        Longest path latency of the phase's flows, s (paid again for each extra step).
    time_s : float
        ``repeat * (transfer_s + (steps - 1) * latency_s + steps * step overhead)``, s.
    payload_bytes : float
        Payload over all repetitions and flows, bytes.
    """

    label: str
    repeat: int
    steps: int
    n_flows: int
    in_network: bool
    transfer_s: float
    latency_s: float
    time_s: float
    payload_bytes: float


@dataclass(frozen=True, eq=False)
class CollectiveResult:
    """The cost of one collective request.

    Attributes
    ----------
    op : str
    algorithm : str
        The algorithm that ran (``auto`` resolved).
    size_bytes : float
        nccl-tests size, bytes.
    group_size, n_groups : int
        Ranks per group n, concurrent groups G.
    network : str
        Network model name.
    tuning : str
        Tuning profile name.
    protocol : str
        ``simple`` or ``ll`` (NCCL's low-latency protocol, chosen when faster).
    time_s : float
        Launch overhead plus the phases' times, s.
    phases : tuple of PhaseCost
    links : ndarray of int64, shape (k,)
        The directed links that carried bytes, ascending (the sparse form: a collective on
        a 10^5-link fabric touches few of them).
    loaded_bytes, loaded_busy_s : ndarray of float64, shape (k,)
        Payload bytes and busy time of each link of ``links`` over the whole collective.
    n_links : int
        Links of the fabric (the length of the dense :attr:`link_bytes`, :attr:`link_busy_s`).
    link_tier : ndarray of int16, shape (n_links,)
    link_tier_names : tuple of str
    candidates : dict of str to float
        For ``auto``: the estimated time of every algorithm that fits, s.
    notes : tuple of str
        What the result does not model as the fabric would run it, e.g. for ``auto`` why an
        algorithm built for this fabric's family could not take the request, and (under the
        ``flow`` model) which model the candidates were compared on.
    """

    op: str
    algorithm: str
    size_bytes: float
    group_size: int
    n_groups: int
    network: str
    tuning: str
    protocol: str
    time_s: float
    phases: tuple[PhaseCost, ...]
    links: np.ndarray
    loaded_bytes: np.ndarray
    loaded_busy_s: np.ndarray
    n_links: int
    link_tier: np.ndarray
    link_tier_names: tuple[str, ...]
    candidates: dict[str, float] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @cached_property
    def link_bytes(self) -> np.ndarray:
        """Payload bytes per directed link over the whole collective, shape (n_links,)."""
        return self._dense(self.loaded_bytes)

    @cached_property
    def link_busy_s(self) -> np.ndarray:
        """Busy time per directed link over the whole collective, s, shape (n_links,)."""
        return self._dense(self.loaded_busy_s)

    def _dense(self, values: np.ndarray) -> np.ndarray:
        out = np.zeros(self.n_links)
        out[self.links] = values
        return out

    @property
    def algbw_Bps(self) -> float:
        """size / time, bytes/s (0 for an empty collective)."""
        return self.size_bytes / self.time_s if self.time_s > 0 else 0.0

    @property
    def busbw_Bps(self) -> float:
        """algbw times the nccl-tests bus factor of the op, bytes/s."""
        return self.algbw_Bps * busbw_factor(self.op, self.group_size)

    @property
    def link_utilisation(self) -> np.ndarray:
        """Busy time over collective time per directed link (0..1), shape (n_links,)."""
        if self.time_s <= 0:
            return np.zeros_like(self.link_busy_s)
        return np.minimum(self.link_busy_s / self.time_s, 1.0)

    @property
    def tier_utilisation(self) -> dict[str, float]:
        """Highest link utilisation per link tier, keyed by tier name."""
        peak = np.zeros(len(self.link_tier_names))
        u = self.link_utilisation
        if len(u):
            np.maximum.at(peak, self.link_tier.astype(np.int64), u)
        return {name: float(peak[i]) for i, name in enumerate(self.link_tier_names)}

    @property
    def bottleneck_tier(self) -> str:
        """Link tier of the most utilised link ("-" when no link carried anything)."""
        if not np.any(self.loaded_busy_s > 0):
            return "-"
        return self.link_tier_names[int(self.link_tier[self.links[int(np.argmax(self.loaded_busy_s))]])]

    def row(self) -> dict[str, Any]:
        """One nccl-tests style table row (units in the keys)."""
        return {
            "op": self.op,
            "size_bytes": int(round(self.size_bytes)),
            "ranks": self.group_size,
            "groups": self.n_groups,
            "time_us": self.time_s * 1e6,
            "algbw_GBps": self.algbw_Bps / 1e9,
            "busbw_GBps": self.busbw_Bps / 1e9,
            "algorithm": self.algorithm,
            "protocol": self.protocol,
            "bottleneck_tier": self.bottleneck_tier,
            "network": self.network,
        }

    def summary(self) -> dict[str, Any]:
        """A JSON-friendly record: the row, the phases, the tiers' peak utilisation, candidates."""
        return {
            **self.row(),
            "tuning": self.tuning,
            "tier_utilisation": self.tier_utilisation,
            "candidates_us": {k: v * 1e6 for k, v in self.candidates.items()},
            "notes": list(self.notes),
            "phases": [
                {"label": p.label, "repeat": p.repeat, "steps": p.steps, "flows": p.n_flows,
                 "in_network": p.in_network, "time_us": p.time_s * 1e6, "payload_bytes": p.payload_bytes}
                for p in self.phases
            ],
        }
