"""The fat-tree sizing rule: how many leaves, spines, cores and bundles a fabric needs.

Split from :mod:`oassim.topology.families.fat_tree` (whose docstring states the rule and its
source, the NVIDIA DGX SuperPOD reference architecture switch counts) so the family module
stays small; the rule is pure integer arithmetic on the spec and the radix.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from oassim.topology.families.fat_tree import Spec

__all__ = ["Sizing", "sizing", "bundles", "port_table"]


@dataclass(frozen=True)
class Sizing:
    """Switch counts and port split of one plane, from the sizing rule in the module docstring.

    ``spines`` counts all spines of a plane (``S`` in 2 tiers, ``pods * u`` in 3 tiers),
    ``cores`` all cores (``u * C``, 0 unless 3 tiers with more than one pod).
    """

    radix: int
    endpoints: int
    tiers: int
    planes: int
    down: int  # d, leaf down ports
    up: int  # u, leaf up ports
    leaves: int  # L
    pods: int  # 1 in 2 tiers
    leaves_per_pod: int  # P (L in 2 tiers)
    spines_per_pod: int  # S in 2 tiers, u in 3 tiers
    spine_down: int  # ds
    spine_up: int  # us (0 in 2 tiers)
    cores_per_group: int  # C

    @property
    def spines(self) -> int:
        return self.pods * self.spines_per_pod

    @property
    def cores(self) -> int:
        return self.up * self.cores_per_group if self.cores_per_group else 0

    @property
    def even_bundles(self) -> bool:
        """Whether every leaf (spine) has the same number of links to each spine (core) it
        reaches: the domain where :func:`bisection_Bps` is exact."""
        if self.tiers == 2:
            return self.spines_per_pod == 0 or self.up % self.spines_per_pod == 0
        return self.cores_per_group == 0 or self.spine_up % self.cores_per_group == 0

    @property
    def max_endpoints(self) -> int:
        """Largest endpoint count this tier count holds with this radix and oversubscription."""
        return self.radix * self.down * (self.spine_down if self.tiers == 3 else 1)


def _split(k: int, ratio: float) -> int:
    # floor(k*o/(o+1)) down ports; the epsilon keeps exact ratios (3:1 on 64 ports -> 48) exact.
    return int(math.floor(k * ratio / (ratio + 1.0) + 1e-9))


def sizing(spec: Spec, radix: int, n_endpoints: int | None = None) -> Sizing:
    """Apply the sizing rule (module docstring) for one plane.

    Parameters
    ----------
    spec : Spec
        Geometry.
    radix : int
        Switch ports at the fabric's port rate (``SwitchClass.radix``).
    n_endpoints : int, optional
        Endpoint count when ``spec.endpoints`` is None (the length of an endpoints array).

    Raises
    ------
    ValueError
        When the endpoints exceed what the tier count holds with this radix (says the maximum).
    """
    e = n_endpoints if n_endpoints is not None else spec.endpoints
    if e is None or e < 1:
        raise ValueError("fat_tree: the endpoint count is unknown: set spec.endpoints or pass endpoints")
    k = int(radix)
    d = _split(k, spec.oversubscription)
    if d < 1 or k - d < 1:
        raise ValueError(f"fat_tree: radix {k} leaves no down or up port at oversubscription {spec.oversubscription}")
    u = k - d
    ds = _split(k, spec.spine_oversubscription)
    max2, max3 = k * d, k * ds * d
    tiers = spec.tiers or (2 if e <= max2 else 3)
    cap = max2 if tiers == 2 else max3
    if e > cap:
        ratios = "" if (spec.oversubscription, spec.spine_oversubscription) == (1.0, 1.0) else (
            f" at oversubscription {spec.oversubscription:g}, spine_oversubscription {spec.spine_oversubscription:g}")
        raise ValueError(f"fat_tree: {tiers} tiers of radix-{k} switches hold at most {cap:,} endpoints{ratios}; "
                         f"asked {e:,}")
    leaves = -(-e // d)
    if tiers == 2:
        s = -(-leaves * u // k) if leaves > 1 else 0
        return Sizing(k, e, 2, spec.planes, d, u, leaves, 1, leaves, s, k, 0, 0)
    pods = -(-leaves // ds)
    us = k - ds
    c = -(-pods * us // k) if pods > 1 else 0
    return Sizing(k, e, 3, spec.planes, d, u, leaves, pods, ds, u, ds, us, c)


def bundles(n_src: int, n_dst: int, per_src: int) -> np.ndarray:
    """Links from each of ``n_src`` switches to each of ``n_dst``, shape (n_src, n_dst).

    ``per_src`` uplinks go evenly over the ``n_dst`` switches; the ``r = per_src % n_dst``
    larger bundles start at ``(i * r) % n_dst`` for source ``i``, so they are dealt round the
    destinations and every destination gets ``floor`` or ``ceil(n_src * per_src / n_dst)``.
    """
    base, r = divmod(per_src, n_dst)
    j = np.arange(n_dst)[None, :]
    i = np.arange(n_src)[:, None]
    return (base + ((j - i * r) % n_dst < r)).astype(np.int64)


def port_table(bundles: np.ndarray) -> np.ndarray:
    """Destination index of each uplink port, shape (n_src, per_src), ports grouped by bundle."""
    n_src, n_dst = bundles.shape
    dst = np.repeat(np.tile(np.arange(n_dst), n_src), bundles.ravel())
    return dst.reshape(n_src, -1)
