"""Torus collectives: bidirectional rings in every dimension at once on split data.

What is modelled. On a torus (TPU v4/v5p: a 3D torus, 6 ICI links per chip, docs/sources.md
S17, S18, S22) a reduce-scatter along one dimension is a ring over that dimension's line of m
chips, run in both directions at once on the two halves of the data, so both of a chip's
links in that dimension carry half each: ``m-1`` rounds of ``S/(2m)`` per direction, i.e.
``(m-1)/m * S / (2B)`` on links of B bytes/s. The dimensions are visited in the rotated
order of :mod:`~oassim.collectives.algorithms.grid` with the data split into one part per
dimension the group spans, so every one of a chip's 2 x A links works at every stage; the
all-gather runs the stages back in reverse, and an all-reduce is the two (Ying et al., 2018,
the multi-dimensional ring all-reduce of TPU pods). On a 16x16x16 slice that is
``2 (n-1)/n * S / (6B)`` of transfer, the 6-link bound.

Which groups fit: a sub-torus, i.e. in every dimension either the whole ring (it closes on the
wraparound, which on a pod of OCS-stitched cubes is an optical circuit) or one contiguous run
of it, in every domain the same. A run shorter than the ring has no wraparound of its own: its
closing hop is routed back along the run (dimension-order routing), so each directed link of
the run carries both directions' closing traffic and the run moves data at half the rate of a
closed ring (a line has half a ring's cut: that slowdown is physics). Other groups (strided,
scattered) are left to the flat algorithms, and ``auto``'s result says why this one did not
run.
"""

from __future__ import annotations

import numpy as np

from oassim.collectives.algorithms.grid import DimensionOrdered

__all__ = ["bidirectional_ring_exchange", "ring_line_cost", "TORUS"]


def bidirectional_ring_exchange(lines: np.ndarray, size: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """A ring reduce-scatter of ``size`` bytes per rank on each line (X, m), half the data each
    way round: every rank sends ``size / (2m)`` to both neighbours in each of ``m-1`` rounds."""
    m = lines.shape[1]
    src = np.concatenate([lines.ravel(), lines.ravel()])
    dst = np.concatenate([np.roll(lines, -1, axis=1).ravel(), np.roll(lines, 1, axis=1).ravel()])
    return src, dst, np.full(len(src), size / (2 * m)), m - 1


def ring_line_cost(m: int, closed: bool, link_Bps: float) -> float:
    """Seconds per byte of :func:`bidirectional_ring_exchange`: ``(m-1)/m / (2B)`` on a closed
    ring of more than 2 (both links of the dimension), ``(m-1)/m / B`` on a run or a 2-ring
    (each directed link carries both directions' traffic)."""
    return (m - 1) / m / ((2.0 if closed and m > 2 else 1.0) * link_Bps)


TORUS = DimensionOrdered(
    "torus", "torus", bidirectional_ring_exchange, ring_line_cost,
    "torus: bidirectional ring per dimension, data split so every dimension's links work at once "
    "(dimension-ordered reduce-scatter / all-gather)",
)
