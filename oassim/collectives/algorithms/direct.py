"""Direct algorithms: point-to-point send/recv and pairwise all-to-all.

What is modelled: every transfer the op needs is posted at once as one phase and the fabric
shares the links (NCCL's send/recv and all-to-all). For send/recv each group is a
(sender, receiver) pair moving S bytes, e.g. every pipeline-parallel stage boundary of a job
at once. All-to-all is :func:`~oassim.collectives.algorithms.all_to_all.direct_all_to_all_phases`.
A direct all-to-all has n(n-1) flows per group; above ``AGGREGATE_ABOVE`` of them on a
fat-tree scale-out it sends one flow per (rank, destination block) instead
(:mod:`~oassim.collectives.algorithms.all_to_all_blocks`); inside whole torus, full-mesh and
``clos2`` domains with even traffic one source's flows stand for all
(:mod:`~oassim.collectives.algorithms.all_to_all_domains`, also without a fat-tree when every
group is one such domain); elsewhere beyond :data:`MAX_DIRECT_FLOWS` the hierarchical
algorithm must be used.
"""

from __future__ import annotations

import numpy as np

from oassim.collectives.algorithms.all_to_all import direct_all_to_all_phases
from oassim.collectives.algorithms.all_to_all_blocks import (
    AGGREGATE_ABOVE,
    aggregated_all_to_all_phases,
    can_aggregate,
    single_stage_domains,
)
from oassim.collectives.algorithms.all_to_all_domains import uniform_quotient_positions
from oassim.collectives.algorithms.base import Algorithm
from oassim.collectives.caps import FabricCaps
from oassim.collectives.ops import CollectiveRequest
from oassim.collectives.phases import Phase
from oassim.errors import SpecError

__all__ = ["Direct", "MAX_DIRECT_FLOWS"]

MAX_DIRECT_FLOWS = 20_000_000


class Direct(Algorithm):
    """Everything at once: send/recv pairs; pairwise all-to-all."""

    name = "direct"
    ops = frozenset({"all_to_all", "send_recv"})
    summary = "every transfer posted at once (send/recv; pairwise all-to-all, n(n-1) flows per group)"

    def unsupported(self, req: CollectiveRequest, caps: FabricCaps) -> str | None:
        why = super().unsupported(req, caps)
        if why:
            return why
        n = req.group_size
        flows = req.n_groups * n * (n - 1)
        if req.op == "all_to_all" and flows > MAX_DIRECT_FLOWS and not can_aggregate(caps) \
                and not _whole_domains(req, caps):
            return (f"it would post {flows:,} flows (more than {MAX_DIRECT_FLOWS:,}); "
                    "use the hierarchical all-to-all")
        if (req.op == "all_to_all" and flows > AGGREGATE_ABOVE and can_aggregate(caps)
                and not single_stage_domains(caps)):
            # the aggregated form still sends rank to rank inside tori, meshes and two-level domains
            local = _in_domain_pairs(req, caps)
            if local > MAX_DIRECT_FLOWS:
                return (f"its ranks would post {local:,} flows to the ranks of their own domains (more than "
                        f"{MAX_DIRECT_FLOWS:,}); use the hierarchical all-to-all")
        return None

    def phases(self, req: CollectiveRequest, caps: FabricCaps) -> list[Phase]:
        if req.op == "send_recv":
            g = req.groups
            return [Phase(g[:, 0], g[:, 1], req.size_bytes, label="send/recv")]
        n = req.group_size
        if req.n_groups * n * (n - 1) > AGGREGATE_ABOVE and not can_aggregate(caps) and _whole_domains(req, caps):
            # every group one whole symmetric domain (no scale-out to aggregate): its representative
            return aggregated_all_to_all_phases(req.groups, caps, **_traffic(req),
                                                label="direct all-to-all")
        if can_aggregate(caps) and req.n_groups * n * (n - 1) > AGGREGATE_ABOVE:
            if req.blocks is not None:
                blk, W = req.block_layout()
                out = aggregated_all_to_all_phases(req.groups, caps, block_of=blk, block_bytes=W)
                if out is None:
                    raise SpecError("block traffic cannot be bundled per leaf on this fabric and the "
                                    f"{n:,} x {n:,} byte matrix it implies is too large", source=req.source,
                                    path="blocks")
                return out
            if req.matrix is None:
                return aggregated_all_to_all_phases(req.groups, caps, per_pair=req.size_bytes / n)
            return aggregated_all_to_all_phases(req.groups, caps, pair_bytes=req.pair_bytes())
        return direct_all_to_all_phases(req.groups, req.pair_bytes())


def _block_rows(req: CollectiveRequest) -> np.ndarray | None:
    """Traffic block of every position (G, n): zeros for even traffic, None for a byte matrix."""
    if req.matrix is not None:
        return None
    if req.blocks is not None:
        return req.block_layout()[0]
    return np.zeros(req.groups.shape, dtype=np.int64)


def _traffic(req: CollectiveRequest) -> dict:
    """The traffic arguments of :func:`aggregated_all_to_all_phases` for ``req``."""
    if req.blocks is not None:
        blk, W = req.block_layout()
        return {"block_of": blk, "block_bytes": W}
    if req.matrix is None:
        return {"per_pair": req.size_bytes / req.group_size}
    return {"pair_bytes": req.pair_bytes()}


def _whole_domains(req: CollectiveRequest, caps: FabricCaps) -> bool:
    """Every group is exactly one full symmetric domain with uniform traffic inside."""
    blk = _block_rows(req)
    if blk is None:
        return False
    dom = caps.domain_of_rank[req.groups]
    if np.any(dom != dom[:, :1]):
        return False
    return all(len(uniform_quotient_positions(r, caps, b)) == len(r) for r, b in zip(req.groups, blk))


def _in_domain_pairs(req: CollectiveRequest, caps: FabricCaps) -> int:
    """Rank-to-rank pairs of the request's groups that lie in one domain and are listed one by
    one: sum of m (m - 1) over every group's domains of m ranks, but for the full symmetric
    domains costed from one source (:mod:`~oassim.collectives.algorithms.all_to_all_domains`)."""
    blk = _block_rows(req)
    dom = caps.domain_of_rank[req.groups]
    total = 0
    for gi, row in enumerate(dom):
        if blk is not None:
            q = uniform_quotient_positions(req.groups[gi], caps, blk[gi])
            row = np.delete(row, q)
        m = np.unique(row, return_counts=True)[1].astype(np.int64)
        total += int((m * (m - 1)).sum())
    return total
