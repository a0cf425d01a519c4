"""Heterogeneous accelerators: pipeline stages placed on chip types, and layers balanced by chip speed.

What is modelled: a cluster whose scale-up domains (supernodes, racks) hold different
accelerator types, each domain one type (an open-architecture proposal mixing vendors' chips,
docs/oas-bench.md). The job's ranks are laid out as usual (:mod:`oassim.workload.placement`);
:class:`AcceleratorMix` says which type each accelerator rank is, so every pipeline stage knows
the types of its ranks (:func:`stage_types`). A stage's compute ops then take, each, the time of
its slowest member type (:class:`PacedComputeModel`): every rank of a stage runs the same ops
and meets the others at the stage's synchronous collectives (tensor-, data-, expert-parallel),
so the slowest member paces each of them. A stage of one type runs at that type's own peak and
compute-efficiency entry (``compute_efficiency.yaml``); the framework (attention kernel, overlap
switches) stays one per job. Memory is checked against the smallest HBM among a stage's types.

:func:`balanced_layout` splits the layers over the stages so that the slowest stage's compute
time per micro-batch (forward + backward, with the embedding on the first stage and the output
layer on the last) is as small as a contiguous split allows: a binary search on that time with
a greedy fill, stage by stage, in model order (exact for contiguous splits because each
stage's time grows with every layer it takes). Many splits share that slowest time (when the
output layer's stage bounds it, the greedy fill would load the first stages and leave one layer
on each of the others), so among them the one with the smallest sum of squared stage times is
taken (a dynamic programme over stages and layer boundaries): the stages are then as even as
the bound allows, which keeps activation memory and pipeline waits even. The answer is a Megatron
``pipeline_model_parallel_layout`` string (:mod:`oassim.workload.pipeline_split`), so the
balanced split is an ordinary scenario key that ``oassim run`` reproduces.

Why per stage and not per rank: the plan simulates one representative rank per stage
(docs/architecture.md decision 7); a stage whose ranks mix types is represented by its pacing
member, which is what the synchronous collectives make of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from oassim.errors import SpecError
from oassim.hardware import Accelerator
from oassim.workload.compute import ComputeModel
from oassim.workload.steps import ComputeOp

__all__ = ["AcceleratorMix", "PacedComputeModel", "stage_types", "balanced_layout", "layout_string",
           "layer_costs", "balance_by_chip"]


@dataclass(frozen=True, eq=False)
class AcceleratorMix:
    """The accelerator type of every accelerator rank of a mixed cluster.

    Attributes
    ----------
    types : tuple of Accelerator
        The types, in the order the cluster lists them.
    of_rank : ndarray of int64, shape (accelerators,)
        Index into ``types`` of each accelerator rank.
    """

    types: tuple[Accelerator, ...]
    of_rank: np.ndarray

    @classmethod
    def by_domain(cls, types: Sequence[Accelerator], domains_per_type: Sequence[int],
                  domain_of_rank: np.ndarray) -> "AcceleratorMix":
        """Types by whole scale-up domains in list order: type ``i`` fills the next
        ``domains_per_type[i]`` domains (domain ids ``0 .. sum - 1`` as the cluster builds them)."""
        dom = np.asarray(domain_of_rank, dtype=np.int64)
        edges = np.cumsum(domains_per_type)
        if dom.size and int(dom.max()) >= int(edges[-1]):
            raise SpecError(f"the accelerator types cover {int(edges[-1])} domains but the cluster has "
                            f"{int(dom.max()) + 1}", path="cluster.accelerator_types")
        idx = np.searchsorted(edges, dom, side="right").astype(np.int64)
        idx.setflags(write=False)
        return cls(tuple(types), idx)


class PacedComputeModel:
    """Op durations of a stage whose ranks are of several types: each op takes the longest of its
    members' times (the slowest member paces the stage's synchronous steps)."""

    def __init__(self, models: Sequence[ComputeModel]):
        if not models:
            raise ValueError("a stage needs at least one compute model")
        self.models = tuple(models)
        self.accelerator = min((m.accelerator for m in models), key=lambda a: a.hbm_capacity_bytes)

    def op_time(self, op: ComputeOp) -> float:
        """Duration of ``op`` on the stage's slowest member type, s."""
        return max(m.op_time(op) for m in self.models)


def stage_types(mix: AcceleratorMix, stage_of_rank: np.ndarray, pp: int) -> list[tuple[int, ...]]:
    """Indices into ``mix.types`` of the types on each pipeline stage (sorted, no repeats).

    ``stage_of_rank`` is :attr:`oassim.workload.placement.Placement.stage_of_rank` (-1 for an
    idle accelerator)."""
    n = len(stage_of_rank)
    if len(mix.of_rank) < n:
        raise SpecError(f"the accelerator types cover {len(mix.of_rank)} accelerators but the job places "
                        f"{n}", path="cluster.accelerator_types")
    of = mix.of_rank[:n]
    return [tuple(int(t) for t in np.unique(of[stage_of_rank == s])) for s in range(pp)]


def layer_costs(stages: Sequence[object]) -> tuple[dict[int, float], float, float]:
    """Per-layer compute time of one micro-batch (forward + backward) of a compiled plan's stages,
    and the fixed time of the first and the last stage (embedding; output layer and MTP), s.

    ``stages`` are :class:`oassim.workload.plan.StagePlan` objects; an op counts for its layer when
    the layer belongs to the op's chunk, else for the stage's fixed time."""
    per: dict[int, float] = {}
    fixed = [0.0] * len(stages)
    for i, st in enumerate(stages):
        for c in st.chunks:  # type: ignore[attr-defined]
            mine = set(c.layers)
            for x in (*c.forward, *c.backward):
                if not isinstance(x, ComputeOp):
                    continue
                if x.layer in mine:
                    per[x.layer] = per.get(x.layer, 0.0) + x.duration_s
                else:
                    fixed[i] += x.duration_s
    return per, fixed[0], fixed[-1]


def _fill(costs: Sequence[Sequence[float]], extra: Sequence[float], limit: float) -> list[int] | None:
    """Greedy contiguous split under ``limit``: each stage takes layers while its time stays within
    it (at least one); None when the layers do not all fit."""
    layers, pp = len(costs[0]), len(costs)
    out, at = [], 0
    for s in range(pp):
        t, n = extra[s], 0
        left = pp - s - 1  # stages after this one need one layer each
        while at + n < layers - left and (n == 0 or t + costs[s][at + n] <= limit):
            t += costs[s][at + n]
            n += 1
        if t > limit:
            return None
        out.append(n)
        at += n
    return out if at == layers else None


def balanced_layout(costs: Sequence[Sequence[float]], extra: Sequence[float] | None = None) -> list[int]:
    """Layers per stage minimising the slowest stage's compute time (module docstring).

    Parameters
    ----------
    costs : sequence of sequence of float, shape (pp, layers)
        ``costs[s][L]``: time of layer ``L`` (forward + backward of one micro-batch) on stage
        ``s``'s chip type, s.
    extra : sequence of float, optional
        Fixed time of each stage (the embedding on the first, the output layer on the last).

    Returns
    -------
    list of int
        Layers of each stage, in model order, each at least 1, summing to the layer count.
    """
    pp, layers = len(costs), len(costs[0])
    if pp > layers:
        raise SpecError(f"{layers} layers cannot fill {pp} pipeline stages", path="parallelism.pp")
    ex = list(extra) if extra is not None else [0.0] * pp
    lo = max(ex[s] + min(costs[s]) for s in range(pp))
    hi = max(ex) + max(sum(c) for c in costs)
    for _ in range(60):  # halve the interval to 1e-18 of its width
        mid = 0.5 * (lo + hi)
        if _fill(costs, ex, mid) is None:
            lo = mid
        else:
            hi = mid
    return _evenest(costs, ex, hi * (1 + 1e-12))


def _evenest(costs: Sequence[Sequence[float]], extra: Sequence[float], limit: float) -> list[int]:
    """The contiguous split with every stage within ``limit`` and the smallest sum of squared stage
    times (dynamic programme: ``best[s][j]`` over the first ``j`` layers on the first ``s`` stages)."""
    pp, layers = len(costs), len(costs[0])
    pre = [np.concatenate([[0.0], np.cumsum(c)]) for c in costs]
    inf = float("inf")
    best = np.full((pp + 1, layers + 1), inf)
    back = np.zeros((pp + 1, layers + 1), dtype=np.int64)
    best[0][0] = 0.0
    for s in range(pp):
        for j in range(s + 1, layers - (pp - s - 1) + 1):  # layers 0..j-1 on stages 0..s
            i = np.arange(s, j)  # stage s holds layers i..j-1
            t = extra[s] + pre[s][j] - pre[s][i]
            val = np.where(t <= limit, best[s][i] + t * t, inf)
            k = int(np.argmin(val))
            best[s + 1][j], back[s + 1][j] = val[k], i[k]
    if not np.isfinite(best[pp][layers]):
        raise AssertionError("the binary search's limit admits no split")
    out, j = [], layers
    for s in range(pp, 0, -1):
        i = int(back[s][j])
        out.append(j - i)
        j = i
    return out[::-1]


def layout_string(counts: Sequence[int]) -> str:
    """Megatron's ``pipeline_model_parallel_layout`` of one chunk per stage with ``counts`` layers:
    the embedding opens the first stage, the loss closes the last (``"Et*7|t*9|t*6L"``)."""
    parts = [f"t*{n}" if n > 1 else "t" * n for n in counts]
    parts[0] = "E" + parts[0]
    parts[-1] = parts[-1] + "L"
    return "|".join(parts)


def balance_by_chip(model: Any, parallelism: Mapping[str, Any], training: Any, mix: AcceleratorMix,
                    accelerators: int) -> tuple[list[int], list[str]]:
    """Layers per pipeline stage balanced by the chip speed of each stage (module docstring).

    The per-layer times are measured by compiling the job once per type on every stage (no
    fabric, no memory check) with the split ``parallelism`` gives; a stage that mixes types
    takes, layer by layer, its slowest type's time. ``mix.of_rank`` gives the type of each rank
    as the cluster lays them out (:meth:`AcceleratorMix.by_domain`).

    Returns
    -------
    (list of int, list of str)
        Decoder layers of each stage, and the type name(s) of each stage.

    Raises
    ------
    SpecError
        ``vpp > 1`` (one chunk per stage only) or a job the compiler refuses.
    """
    from oassim.workload.parallelism import ParallelismSpec
    from oassim.workload.placement import place
    from oassim.workload.plan import compile_plan
    from oassim.specio import validate

    par = validate(ParallelismSpec, dict(parallelism), prefix="parallelism")
    if par.vpp > 1:
        raise SpecError("a split balanced by chip speed takes one chunk per stage (vpp 1)", path="parallelism.vpp")
    used = stage_types(mix, place(par).stage_of_rank, par.pp)
    measured = {t: layer_costs(compile_plan(model, par, mix.types[t], None, training=training,
                                            accelerators=accelerators, memory_check=False).stages)
                for t in sorted({t for ts in used for t in ts})}
    layers = sorted(next(iter(measured.values()))[0])
    costs = [[max(measured[t][0][L] for t in ts) for L in layers] for ts in used]
    extra = [0.0] * par.pp
    extra[0] = max(measured[t][1] for t in used[0])
    extra[-1] += max(measured[t][2] for t in used[-1])
    return balanced_layout(costs, extra), ["+".join(mix.types[t].name for t in ts) for ts in used]
