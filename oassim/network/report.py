"""Which links a phase loaded most: the bottleneck report of one transfer.

What is reported: for a :class:`~oassim.network.base.TransferResult`, each directed link's
utilisation (busy time over the phase duration) with its tier name, so that callers (the
collective engine, analysis) can say *which tier* limits a phase, e.g. "leaf-spine at 98%",
rather than only how long it took.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from oassim.network.base import TransferResult
from oassim.topology.fabric import Fabric

__all__ = ["LinkLoad", "bottleneck", "tier_utilisation"]


@dataclass(frozen=True)
class LinkLoad:
    """One directed link's load in one transfer.

    Attributes
    ----------
    link : int
        Directed link id.
    src, dst : int
        Fabric node ids at its ends.
    tier : str
        Link tier name (``fabric.link_tier_names``), e.g. "scaleup", "nic", "leaf-spine".
    utilisation : float
        Busy time over the phase duration (0..1).
    bytes : float
        Bytes it carried.
    busy_s : float
        bytes / payload capacity, s.
    """

    link: int
    src: int
    dst: int
    tier: str
    utilisation: float
    bytes: float
    busy_s: float


def bottleneck(result: TransferResult, fabric: Fabric, top: int = 5) -> list[LinkLoad]:
    """The ``top`` most utilised links that carried anything, most utilised first.

    Parameters
    ----------
    result : TransferResult
        A transfer on ``fabric``.
    fabric : Fabric
    top : int
        How many links to return (>= 1).

    Returns
    -------
    list of LinkLoad
        Ordered by utilisation, then bytes (descending), then link id; fewer than ``top`` if
        fewer links carried bytes.
    """
    if top < 1:
        raise ValueError(f"top must be >= 1, got {top}")
    if len(result.link_bytes) != fabric.n_links:
        raise ValueError(f"result has {len(result.link_bytes)} links, fabric {fabric.n_links}")
    util = result.link_utilisation
    used = np.flatnonzero(result.link_bytes > 0)
    if len(used) > top:  # partial selection first: fabrics have 10^5-10^6 links
        used = used[np.argpartition(-util[used], top - 1)[:top]]
    order = used[np.lexsort((used, -result.link_bytes[used], -util[used]))][:top]
    names = fabric.link_tier_names
    return [
        LinkLoad(
            int(lk), int(fabric.link_src[lk]), int(fabric.link_dst[lk]), names[int(fabric.link_tier[lk])],
            float(util[lk]), float(result.link_bytes[lk]), float(result.link_busy_s[lk]),
        )
        for lk in order
    ]


def tier_utilisation(result: TransferResult, fabric: Fabric) -> dict[str, float]:
    """Highest link utilisation in each link tier (0..1), keyed by tier name, in tier order."""
    util = result.link_utilisation
    peak = np.zeros(len(fabric.link_tier_names))
    if len(util):
        np.maximum.at(peak, fabric.link_tier.astype(np.int64), util)
    return {name: float(peak[i]) for i, name in enumerate(fabric.link_tier_names)}
