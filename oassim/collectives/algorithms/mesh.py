"""Full-mesh collectives: all-path direct exchange, dimension by dimension, on split data.

What is modelled. In an n-D full mesh (UB-Mesh: an 8 x 8 2D full mesh of NPUs in a rack,
7 + 7 direct links per NPU, calibration source S42) the m ranks of a line of one dimension are
a clique: a reduce-scatter along it sends every peer its chunk at once, ``S/m`` over each of
the ``m-1`` direct links, one round, ``S / (m B)`` on links of B bytes/s, which is the
``(m-1)/m * S / ((m-1) B)`` bound of the line. The dimensions are visited in the rotated order
of :mod:`~oassim.collectives.algorithms.grid` with the data split into one part per dimension
the group spans, so both dimensions' links of an 8 x 8 mesh work at once (UB-Mesh's
hierarchical all-path collectives, Liao et al., arXiv:2503.20377): an all-reduce of the whole
rack then moves ``2 (n-1)/n * S`` per NPU over its 14 links, the endpoint bound. An all-gather
of one row is a single direct round over its 7 links.

Which groups fit: any sub-mesh (a Cartesian product of coordinate sets, one per dimension: a
row, a column, a sub-square, the whole rack), the same in every domain. Any subset of a clique
is a clique, so the chosen coordinates need not be contiguous. Groups that are not a product
(e.g. 12 ranks of an 8 x 8 rack) are left to the flat algorithms, and ``auto``'s result says
why this one did not run. Relaying over two-hop paths through other dimensions (the full
"all-path" routing) is not modelled: a line uses its own direct links only.
"""

from __future__ import annotations

import numpy as np

from oassim.collectives.algorithms.grid import DimensionOrdered

__all__ = ["direct_exchange", "direct_line_cost", "FULLMESH"]


def direct_exchange(lines: np.ndarray, size: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """A direct reduce-scatter of ``size`` bytes per rank on each line (X, m): every rank sends
    ``size / m`` to each of its ``m-1`` peers at once, one round."""
    m = lines.shape[1]
    src = np.tile(lines.ravel(), m - 1)
    dst = np.concatenate([np.roll(lines, -o, axis=1).ravel() for o in range(1, m)])
    return src, dst, np.full(len(src), size / m), 1


def direct_line_cost(m: int, closed: bool, link_Bps: float) -> float:
    """Seconds per byte of :func:`direct_exchange`: ``1 / (m B)`` (S/m on each link at once)."""
    return 1.0 / (m * link_Bps)


FULLMESH = DimensionOrdered(
    "fullmesh", "fullmesh", direct_exchange, direct_line_cost,
    "full mesh: direct exchange over every link of a dimension, data split so every dimension works at once "
    "(UB-Mesh all-path)",
)
