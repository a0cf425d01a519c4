"""Placement: which accelerator ranks form each tensor, context, expert, data and pipeline group.

What is modelled: the rank layout of Megatron-Core's ``RankGenerator``
(``megatron/core/parallel_state.py``): an order string such as ``"tp-cp-ep-dp-pp"`` lists the
dimensions innermost first, so with the default order the ``tp`` ranks of a group are
consecutive and share a scale-up domain (a DGX node), and the ``pp`` stages are outermost.
Dense layers use the grid (tp, cp, dp, pp) in that order (``ep`` dropped); expert layers use
(tp, ep, edp, pp), where ``edp = dp * cp / ep`` (``cp`` dropped, ``dp`` replaced by ``edp``),
so expert-parallel groups are carved out of the data/context-parallel ranks of each stage.

Why: the scheduler hands each group array, shape (n_groups, group_size), to the collective
engine as concurrent groups (docs/architecture.md decision 6); a group that spans scale-up domains runs
over the scale-out fabric, which is usually a mistake for tensor parallelism, so it is refused
unless ``allow_straddle`` is set, and reported in the plan either way.

Group names: ``tp``, ``cp``, ``dp``, ``pp`` (the pipeline of one replica, stage order), ``ep``,
``edp`` (replicas of one expert shard: they reduce expert gradients), ``dp_cp`` (replicas of
one dense weight shard, ``dp * cp`` ranks: they reduce dense gradients; Megatron's
``get_data_parallel_group(with_context_parallel=True)``), and the two hops of a
domain-aware token dispatch: ``ep_intra`` (an EP group's ranks inside one scale-up domain)
and ``ep_inter`` (its ranks of the same local index across its domains).

``ep_placement: domain`` maps the logical ranks onto accelerators so that expert-parallel
blocks start at scale-up domain boundaries (some accelerators then stay idle); groups hold
accelerator ranks either way.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Mapping

import numpy as np

from oassim.errors import SpecError
from oassim.workload.parallelism import ParallelismSpec

__all__ = ["Placement", "place", "GROUP_NAMES"]

GROUP_NAMES: tuple[str, ...] = ("tp", "cp", "dp", "pp", "ep", "edp", "dp_cp", "ep_intra", "ep_inter")


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a, dtype=np.int64)
    a.setflags(write=False)
    return a


def _grid_groups(order: list[str], sizes: dict[str, int], dims: list[str]) -> np.ndarray:
    """Groups of the ranks that differ only in ``dims`` (listed innermost first).

    ``order`` lists the grid's dimensions innermost first; rank = sum(coord_d * stride_d).
    Returns shape (n_groups, prod(sizes of dims)), members ordered by their ``dims`` coords.
    """
    n = int(np.prod([sizes[d] for d in order]))
    grid = np.arange(n, dtype=np.int64).reshape([sizes[d] for d in reversed(order)])
    axes = [len(order) - 1 - order.index(d) for d in reversed(dims)]  # outer..inner
    moved = np.moveaxis(grid, axes, list(range(-len(dims), 0)))
    return moved.reshape(-1, int(np.prod([sizes[d] for d in dims])))


@dataclass(frozen=True, eq=False)
class Placement:
    """The groups of every parallel dimension on accelerator ranks ``0 .. world-1``.

    Attributes
    ----------
    order : tuple of str
        Dimension order, innermost first.
    sizes : mapping
        Size of each dimension (``tp, cp, ep, dp, pp, edp``).
    groups : mapping of str to ndarray of int64, shape (n_groups, group_size)
        Every group of each name in :data:`GROUP_NAMES`; each rank is in exactly one group of
        each name. Arrays are read-only.
    stage_of_rank : ndarray of int64, shape (n_slots,)
        Pipeline stage of each accelerator rank the job may occupy (-1 for an accelerator
        left idle by ``ep_placement: domain``).
    domain_of_rank : ndarray of int64, shape (n_slots,), or None
        Scale-up domain of each accelerator rank (None when placed without a fabric).
    domain_size : int or None
        Accelerators per scale-up domain.
    straddling : mapping of str to int
        Groups of each name that span more than one scale-up domain.
    """

    order: tuple[str, ...]
    sizes: Mapping[str, int]
    groups: Mapping[str, np.ndarray]
    stage_of_rank: np.ndarray
    domain_of_rank: np.ndarray | None
    domain_size: int | None
    straddling: Mapping[str, int]

    @property
    def world(self) -> int:
        """Ranks placed."""
        return int(np.count_nonzero(self.stage_of_rank >= 0))

    def stage_ranks(self, stage: int) -> np.ndarray:
        """Ranks of pipeline stage ``stage``, shape (world / pp,)."""
        return np.flatnonzero(self.stage_of_rank == stage)

    def stage_groups(self, name: str, stage: int) -> np.ndarray:
        """Groups of ``name`` whose ranks are on ``stage``, shape (n, group_size).

        Every non-pipeline group lies inside one stage, so these are the groups that run a
        stage's collective at the same moment.
        """
        if name == "pp":
            raise ValueError("pipeline groups span every stage; use pipeline_pairs")
        g = self.groups[name]
        out = g[self.stage_of_rank[g[:, 0]] == stage]
        out.setflags(write=False)
        return out

    def pipeline_pairs(self, src_stage: int, dst_stage: int) -> np.ndarray:
        """(source, destination) rank of every pipeline between two stages, shape (n, 2)."""
        g = self.groups["pp"]
        return _readonly(np.stack([g[:, src_stage], g[:, dst_stage]], axis=1))


def _physical(par: ParallelismSpec, world: int, dom: np.ndarray | None, dsize: int | None) -> np.ndarray:
    """Accelerator rank of each logical rank: the identity, or with ``ep_placement: domain``
    each expert-parallel block of ``tp * ep`` consecutive logical ranks (the expert grid's
    innermost dimensions) starting at a scale-up domain boundary, as many whole blocks per
    domain as fit (a block larger than a domain takes whole domains)."""
    ident = np.arange(world, dtype=np.int64)
    if par.ep_placement != "domain" or par.ep == 1:
        return ident
    order = [d for d in par.order.split("-") if d != "cp"]  # the expert grid
    sizes = {"dp": par.dp, "pp": par.pp}
    if any(d != "tp" and sizes[d] > 1 for d in order[:order.index("ep")]):
        raise SpecError(f"ep_placement domain needs ep innermost after tp in order, got {par.order!r}",
                        path="parallelism.ep_placement")
    if dom is None or not dsize:
        return ident
    block = par.tp * par.ep
    per, stride = (dsize // block, dsize) if block <= dsize else (1, -(-block // dsize) * dsize)
    b, off = np.divmod(ident, block)
    return (b // per) * stride + (b % per) * block + off


def _ep_tiers(ep: np.ndarray, dom: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """(intra, inter) groups of every EP group: its ranks in each scale-up domain, and the
    ranks of the same local index across its domains (DeepEP's two hops). Without domains, or
    when the group's domains hold unequal shares of it, the whole group is one intra group
    and every rank its own inter group."""
    alone = ep.reshape(-1, 1)
    if dom is None:
        return ep, alone
    G, n = ep.shape
    d = dom[ep]
    order = np.argsort(d, axis=1, kind="stable")  # each row domain by domain, in row order inside one
    ds, rs = np.take_along_axis(d, order, axis=1), np.take_along_axis(ep, order, axis=1).astype(np.int64)
    ks = 1 + np.count_nonzero(ds[:, 1:] != ds[:, :-1], axis=1)
    k = int(ks[0]) if G else 1
    if G and np.all(ks == k) and n % k == 0 and np.all(ds.reshape(G, k, n // k) == ds.reshape(G, k, n // k)[..., :1]):
        m = n // k
        return rs.reshape(G * k, m), np.ascontiguousarray(rs.reshape(G, k, m).transpose(0, 2, 1).reshape(G * m, k))
    intra, inter = [], []
    for row in ep:
        d = dom[row]
        ids = np.unique(d)
        per = [row[d == x] for x in ids]
        if len({len(x) for x in per}) != 1:
            return ep, alone
        intra += per
        inter += list(np.stack(per, axis=1))
    return np.array(intra, dtype=np.int64), np.array(inter, dtype=np.int64)


def place(par: ParallelismSpec, domain_of_rank: np.ndarray | None = None,
          domain_size: int | None = None) -> Placement:
    """Lay the job's dimensions on ranks ``0 .. tp*pp*dp*cp - 1``.

    Parameters
    ----------
    par : ParallelismSpec
    domain_of_rank : ndarray of int, shape (>= world,), optional
        Scale-up domain of each accelerator rank (``fabric.node_domain[fabric.accel_node]``).
    domain_size : int, optional
        Accelerators per scale-up domain, for messages (default: the largest domain).

    Raises
    ------
    SpecError
        A group of a dimension in ``par.scaleup_dims`` spans scale-up domains and
        ``allow_straddle`` is not set (the message names the dimension, group and domain size).
    """
    order = par.order.split("-")
    sizes = {"tp": par.tp, "cp": par.cp, "dp": par.dp, "pp": par.pp, "ep": par.ep,
             "edp": par.edp}
    dense = [d for d in order if d != "ep"]
    expert = ["edp" if d == "dp" else d for d in order if d != "cp"]
    dp_cp = [d for d in dense if d in ("cp", "dp")]
    groups = {
        "tp": _grid_groups(dense, sizes, ["tp"]),
        "cp": _grid_groups(dense, sizes, ["cp"]),
        "dp": _grid_groups(dense, sizes, ["dp"]),
        "pp": _grid_groups(dense, sizes, ["pp"]),
        "dp_cp": _grid_groups(dense, sizes, dp_cp),
        "ep": _grid_groups(expert, sizes, ["ep"]),
        "edp": _grid_groups(expert, sizes, ["edp"]),
    }
    world = par.world
    dom_all = None if domain_of_rank is None else np.asarray(domain_of_rank, dtype=np.int64)
    if dom_all is not None and domain_size is None:
        domain_size = int(np.bincount(dom_all - dom_all.min()).max())
    phys = _physical(par, world, dom_all, domain_size)
    groups = {k: _readonly(phys[v]) for k, v in groups.items()}
    n_slots = int(phys.max()) + 1
    stage = np.full(n_slots, -1, dtype=np.int64)
    stage[groups["pp"]] = np.arange(par.pp)[None, :]
    stage.setflags(write=False)
    dom = None
    if dom_all is not None:
        if len(dom_all) < n_slots:
            raise SpecError(f"the job needs {n_slots} accelerators but the cluster has "
                            f"{len(dom_all)}", path="parallelism")
        dom = _readonly(dom_all[:n_slots])
    groups.update({k: _readonly(v) for k, v in zip(("ep_intra", "ep_inter"), _ep_tiers(groups["ep"], dom))})
    straddling: dict[str, int] = {k: 0 for k in groups}
    if dom is not None:
        for name, g in groups.items():
            d = dom[g]
            straddling[name] = int(np.count_nonzero((d != d[:, :1]).any(axis=1)))
        for name in par.scaleup_dims:
            if straddling[name] and not par.allow_straddle:
                raise SpecError(
                    f"{name} groups of {sizes[name]} ranks straddle scale-up domains of "
                    f"{domain_size} accelerators ({straddling[name]} of {len(groups[name])} "
                    f"groups); set allow_straddle: true to allow it", path=f"parallelism.{name}")
    return Placement(
        order=tuple(order),
        sizes=MappingProxyType(sizes),
        groups=MappingProxyType(groups),
        stage_of_rank=stage,
        domain_of_rank=dom,
        domain_size=domain_size,
        straddling=MappingProxyType(straddling),
    )
