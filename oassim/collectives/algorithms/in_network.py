"""In-network reduction: NVLink SHARP (NVLS) inside a domain, SHARP across domains.

What is modelled. With in-network reduction the switches add the contributions and
replicate the result, so each rank's link carries its data to the switch once and the result
back once, whatever n is. For all-reduce (NCCL's NVLS: reduce-scatter by ``multimem``
load-reduce, all-gather by ``multimem`` store, pipelined so both run at once) a rank sends S
up and S/n of reduced chunk comes down for the reduce-scatter half, and S/n goes up and S
comes down for the all-gather half: S(n+1)/n each way, against 2(n-1)/n S for a ring. That
is why measured 8xH100 all-reduce bus bandwidth (479 GB/s, calibration row C0048) exceeds the
450 GB/s NVLink 4 port rate (docs/sources.md B1-1: NVLS 480 vs ring 370 GB/s). Reduce-scatter,
all-gather, broadcast and reduce move at most S each way per rank; a chunk makes one switch
round trip per half (``steps`` = 2 for all-reduce, 1 otherwise).

Why the bus bandwidth saturates. Of the ``S (n + 1) / n`` each rank's links carry, ``2 (n - 1)
/ n S`` is payload from *other* ranks that the switch's reduction (``multimem.ld_reduce``)
and multicast (``multimem.st``) engines must produce for that port; each phase records it
(``switch_bytes``) and the engine holds it to the switch part's rate
(:mod:`~oassim.collectives.tuning`, ``in_network_switches``). So

    busbw = min(eta B 2 (n - 1) / (n + 1), R_switch)

with ``eta B`` the rank's achievable link rate: it grows with n while the links bind (H100,
NVSwitch gen3: 420/440/460/480 GB/s on 5/6/7/8 GPUs, calibration source S22, nccl#1455) and
stops at the switch rate once it binds (NVLink 5 / NVSwitch gen4: ~850 GB/s on 8 B200 and on
72 GB200 alike, S21). NCCL's own tuner model has the same two parts in another form: a
per-architecture NVLS efficiency (0.85 Hopper, 0.74 Blackwell, ``src/graph/tuning.cc``).

How it maps onto flows: the network protocol routes between accelerators only, so each rank's
up-and-down traffic is carried by one flow to its ring neighbour of max(up, down) bytes. On a
single-tier switched domain (NVSwitch, NVL72) that loads every rank's switch ports exactly as
NVLS does (the flow goes rank -> switch chips -> neighbour, striped over all chips); the
lighter direction of reduce-scatter / all-gather is reported at the heavier direction's bytes
(time unaffected: links are full duplex). Across domains (SHARP in the scale-out fabric) the
neighbour flows load each NIC exactly, and approximate the aggregation tree's upper links by
the ring's crossing traffic. The engine derates these phases by the tuning file's
``in_network_efficiency`` (NVLS protocol efficiency, fitted on the H100 rows).
"""

from __future__ import annotations

import numpy as np

from oassim.collectives.algorithms.base import Algorithm
from oassim.collectives.caps import FabricCaps
from oassim.collectives.ops import CollectiveRequest
from oassim.collectives.phases import Phase, ring_pairs

__all__ = ["in_network_phases", "in_network_reason", "InNetworkReduction"]


def in_network_phases(op: str, groups: np.ndarray, size: float) -> list[Phase]:
    """One in-network phase for ``op`` on every group at once (see module docstring)."""
    g = np.asarray(groups, dtype=np.int64)
    n = g.shape[1]
    if n < 2:
        return []
    src, dst = ring_pairs(g)
    if op == "all_reduce":
        return [Phase(src, dst, size * (n + 1) / n, steps=2, in_network=True, switch_bytes=2 * (n - 1) / n * size,
                      label="in-network all-reduce (reduce-scatter + all-gather through the switch)")]
    if op in ("reduce_scatter", "all_gather"):
        return [Phase(src, dst, size, steps=1, in_network=True, switch_bytes=(n - 1) / n * size,
                      label=f"in-network {op.replace('_', '-')}")]
    if op in ("broadcast", "reduce"):
        return [Phase(src, dst, size, steps=1, in_network=True, switch_bytes=size,
                      label=f"in-network {op}")]
    raise ValueError(f"in-network reduction does not implement {op}")


def in_network_reason(groups: np.ndarray, caps: FabricCaps) -> str | None:
    """Why the switches the groups span cannot reduce in the network (None: they can)."""
    dom = caps.domain_of_rank[np.asarray(groups, dtype=np.int64)]
    spans = bool(np.any(dom != dom[:, :1]))
    if spans and not caps.scaleout_inr:
        return (f"the group spans scale-up domains and the scale-out switches "
                f"({caps.describe_inr('scale-out')}) have no in-network reduction")
    if not spans and not caps.scaleup_inr:
        return (f"the scale-up switches ({caps.describe_inr('scale-up')}) have no in-network "
                "reduction (NVLS/SHARP)")
    return None


class InNetworkReduction(Algorithm):
    """NVLS / SHARP style: the switches reduce and multicast."""

    name = "in_network"
    ops = frozenset({"all_reduce", "reduce_scatter", "all_gather", "broadcast", "reduce"})
    summary = "in-network reduction (NVLS/SHARP): S(n+1)/n per rank each way for all-reduce; needs reducing switches"

    def unsupported(self, req: CollectiveRequest, caps: FabricCaps) -> str | None:
        return super().unsupported(req, caps) or in_network_reason(req.groups, caps)

    def phases(self, req: CollectiveRequest, caps: FabricCaps) -> list[Phase]:
        return in_network_phases(req.op, req.groups, req.size_bytes)
