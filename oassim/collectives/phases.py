"""Phases: what a collective algorithm turns a request into (docs/architecture.md decision 6).

What is modelled: a phase is a set of rank-to-rank flows that run at the same moment, plus
two counts. ``repeat`` says how many times the same phase runs back to back (a ring
all-reduce is ``2(n-1)`` identical neighbour steps: the engine costs one and multiplies).
``steps`` says how many latency steps one repetition contains: a pipelined algorithm (a
tree, a chain broadcast) moves its bytes once but a chunk still crosses ``steps`` hops in
sequence, so it pays the bandwidth term once and the per-hop latency ``steps`` times.
``in_network`` marks phases whose flows stand for traffic reduced or replicated inside the
switches (NVLS / SHARP); the engine applies that family's achievable fraction.

Why flows between ranks: the network protocol (``oassim.network.base``) costs flows between
fabric nodes; a phase is exactly one ``Flows`` once ranks are mapped to nodes, for every
concurrent group at once, so groups contend for shared links.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Phase", "ring_pairs", "phase_totals"]


@dataclass(frozen=True, eq=False)
class Phase:
    """Flows between ranks that start together, ``repeat`` times in a row.

    Parameters
    ----------
    src, dst : ndarray of int64, shape (k,)
        Sending and receiving rank of each flow (ranks, not fabric nodes).
    size_bytes : ndarray of float64, shape (k,), or float
        Payload bytes of each flow in one repetition (> 0); a scalar applies to all.
    repeat : int
        Identical repetitions run back to back (>= 1).
    steps : int
        Sequential latency steps in one repetition (>= 1): 1 for a plain exchange, the
        pipeline depth for pipelined algorithms.
    in_network : bool
        The flows stand for traffic the switches reduce or replicate (NVLS / SHARP).
    label : str
        What the phase does, for reports.
    switch_bytes : float
        In-network phases: payload from *other* ranks that the switches' reduction and
        multicast engines deliver to the busiest rank in one repetition, bytes (the engine
        holds it to the switch's rate; 0: no switch limit).
    count : ndarray of float64, shape (k,), or None
        Aggregated phases: rank-to-rank flows each flow stands for (the all-to-all of
        :mod:`~oassim.collectives.algorithms.all_to_all_blocks`); None: each flow is itself.
    bundles : EndpointBundles or None
        Aggregated phases whose flows stand for every rank behind a leaf: the representatives
        whose NIC links stand for their leaf's
        (:mod:`~oassim.collectives.algorithms.all_to_all_bundles`); None: every flow's NIC
        links are its own.
    """

    src: np.ndarray
    dst: np.ndarray
    size_bytes: np.ndarray
    repeat: int = 1
    steps: int = 1
    in_network: bool = False
    label: str = ""
    switch_bytes: float = 0.0
    count: np.ndarray | None = None
    bundles: Any = None
    _digest: list = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        src = np.ascontiguousarray(self.src, dtype=np.int64).ravel()
        dst = np.ascontiguousarray(self.dst, dtype=np.int64).ravel()
        size = np.asarray(self.size_bytes, dtype=np.float64)
        size = np.full(len(src), float(size)) if size.ndim == 0 else np.ascontiguousarray(size).ravel()
        if not (len(src) == len(dst) == len(size)):
            raise ValueError("src, dst and size_bytes must have the same length")
        if len(size) and not np.all(size > 0):
            raise ValueError("phase flows must carry > 0 bytes (drop empty flows)")
        if np.any(src == dst):
            raise ValueError("a phase flow cannot send to its own rank")
        if int(self.repeat) < 1 or int(self.steps) < 1:
            raise ValueError("repeat and steps must be >= 1")
        object.__setattr__(self, "src", src)
        object.__setattr__(self, "dst", dst)
        object.__setattr__(self, "size_bytes", size)
        object.__setattr__(self, "repeat", int(self.repeat))
        if self.count is not None:
            c = np.ascontiguousarray(self.count, dtype=np.float64).ravel()
            if len(c) != len(src) or (len(c) and not np.all(c >= 1)):
                raise ValueError("count must give every flow a count >= 1")
            object.__setattr__(self, "count", c)
        object.__setattr__(self, "steps", int(self.steps))

    @property
    def n_flows(self) -> int:
        """Flows in one repetition (rank-to-rank flows, aggregated ones counted as many)."""
        listed = len(self.src) if self.count is None else int(round(self.count.sum()))
        return listed + (self.bundles.stand_for if self.bundles is not None else 0)

    @property
    def total_bytes(self) -> float:
        """Payload bytes over all repetitions."""
        extra = self.bundles.stand_for_bytes if self.bundles is not None else 0.0
        return (float(self.size_bytes.sum()) + extra) * self.repeat

    def digest(self) -> bytes:
        """Digest of the flows and kind (not the counts): equal digests cost the same."""
        if not self._digest:
            h = hashlib.blake2b(digest_size=20)
            h.update(b"inr" if self.in_network else b"p2p")
            h.update(np.float64(self.switch_bytes).tobytes())
            h.update(self.src.tobytes())
            h.update(self.dst.tobytes())
            h.update(self.size_bytes.tobytes())
            if self.count is not None:
                h.update(b"agg")
                h.update(self.count.tobytes())
            if self.bundles is not None:
                h.update(b"bundled")
                h.update(self.bundles.digest())
            self._digest.append(h.digest())
        return self._digest[0]


def ring_pairs(groups: np.ndarray, offset: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Each position sends to the position ``offset`` ahead in its group's ring.

    Parameters
    ----------
    groups : ndarray of int64, shape (G, n)
    offset : int

    Returns
    -------
    src, dst : ndarray of int64, shape (G * n,)
    """
    g = np.asarray(groups, dtype=np.int64)
    return g.ravel(), np.roll(g, -offset, axis=1).ravel()


def phase_totals(phases: list[Phase], n_ranks: int) -> tuple[np.ndarray, np.ndarray]:
    """Payload bytes each rank sends and receives over all phases and repetitions.

    Returns
    -------
    sent, received : ndarray of float64, shape (n_ranks,)
    """
    sent = np.zeros(n_ranks)
    recv = np.zeros(n_ranks)
    for p in phases:
        w = p.size_bytes * p.repeat
        sent += np.bincount(p.src, weights=w, minlength=n_ranks)
        recv += np.bincount(p.dst, weights=w, minlength=n_ranks)
        for q in (p.bundles.domains if p.bundles is not None else ()):
            # the representative's listed flows stand for every rank's: (m - 1) b out and in each
            listed = (p.src == q.rep) & np.isin(p.dst, q.ranks)
            sent -= np.bincount(p.src[listed], weights=w[listed], minlength=n_ranks)
            recv -= np.bincount(p.dst[listed], weights=w[listed], minlength=n_ranks)
            each = (q.size - 1) * q.pair_bytes * p.repeat
            sent[q.ranks] += each
            recv[q.ranks] += each
    return sent, recv
