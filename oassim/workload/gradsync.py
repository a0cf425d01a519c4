"""Data-parallel synchronisation: gradient buckets, ZeRO parameter gathers, optimizer step.

What is modelled: how Megatron-style data parallelism moves weights and gradients.
Gradients are reduced in buckets of ``bucket_params`` parameters, issued as soon as the
backward pass has produced a whole bucket (Megatron-Core ``DistributedDataParallel``,
``overlap_grad_reduce``; PyTorch DDP, Li et al. 2020 §3.2.3): an all-reduce for ZeRO 0, a
reduce-scatter for ZeRO >= 1 (the distributed optimizer). ZeRO 0/1 reduce after the last
micro-batch only (gradient accumulation in place); ZeRO 2/3 cannot keep whole gradients, so
they reduce every micro-batch (DeepSpeed ZeRO-2/3, FSDP without ``no_sync``). ZeRO-3 / FSDP
all-gathers each layer's weights before its forward and again before its backward, one layer
ahead when overlapped (FSDP ``forward_prefetch``/``backward_prefetch``). Dense parameters
synchronise over the ``dp * cp`` replicas, expert parameters over the ``edp`` replicas. After
the step, ZeRO 1/2 all-gather the updated bf16 weights (Megatron ``overlap_param_gather``).

Why separate: the plan compiler places these calls; their rules change with the data-parallel
strategy, not with the layer's operations.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Mapping

import numpy as np

from oassim.workload.memory import stage_params
from oassim.workload.model import ModelSpec
from oassim.workload.parallelism import ParallelismSpec, TrainingSpec
from oassim.workload.placement import Placement
from oassim.workload.steps import CollectiveCall, ComputeOp, Step

__all__ = ["GradBuckets", "with_param_gathers", "optimizer_steps", "segment_label"]


class GradBuckets:
    """Data-parallel gradient buckets (Megatron ``bucket_size``) or ZeRO-3 per-layer units."""

    def __init__(self, groups: Mapping[str, np.ndarray], size: float, gbytes: float, op: str,
                 overlap: bool, prefix: str, per_layer: bool):
        self.groups, self.size, self.gbytes, self.op = groups, size, gbytes, op
        self.overlap, self.prefix, self.per_layer = overlap, prefix, per_layer
        self.dense = self.expert = 0.0
        self.n = 0
        self.calls: list[CollectiveCall] = []

    def add(self, dense: float, expert: float, out: list[Step], flush: bool = False,
            label: str | None = None) -> None:
        """Add one segment's (dense, expert) parameters; emit the bucket's calls into ``out``
        when it is full (or ``flush``, or per layer for ZeRO-3, named ``label``)."""
        self.dense += dense
        self.expert += expert
        if not (flush or self.per_layer or self.dense + self.expert >= self.size):
            return
        for grp, p in (("dp_cp", self.dense), ("edp", self.expert)):
            g = self.groups[grp]
            if p > 0 and g.shape[1] > 1:
                c = CollectiveCall("dp", self.op, p * self.gbytes, g, self.overlap,  # type: ignore[arg-type]
                                   f"{self.prefix}/grad_{grp}_{label or self.n}")
                out.append(c)
                self.calls.append(c)
        self.n += 1
        self.dense = self.expert = 0.0


def _label(steps: list[Step], i: int) -> str:
    for x in steps:
        if isinstance(x, ComputeOp):
            return f"L{x.layer}" if x.layer >= 0 else ("E" if x.name.startswith("embedding") else "out")
    return str(i)


def with_param_gathers(segments: list[tuple[list[Step], float, float]], groups: Mapping[str, np.ndarray],
                       overlap: bool, prefix: str) -> list[list[Step]]:
    """ZeRO-3/FSDP: all-gather each segment's (layer's) weights before it runs.

    Overlapped: the gather of segment i+1 is issued when segment i starts (prefetch) and the
    first op of each segment waits for its own gather. Returns one step list per segment.
    """
    gathers: list[list[CollectiveCall]] = []
    for i, (_, dense, expert) in enumerate(segments):
        cs = []
        for grp, p in (("dp_cp", dense), ("edp", expert)):
            g = groups[grp]
            if p > 0 and g.shape[1] > 1:
                cs.append(CollectiveCall("dp", "all_gather", 2.0 * p, g, overlap,
                                         f"{prefix}/param_{grp}_{_label(segments[i][0], i)}"))
        gathers.append(cs)
    out: list[list[Step]] = []
    for i, (steps, _, _) in enumerate(segments):
        seg: list[Step] = []
        if not overlap:
            seg += gathers[i]
        else:
            seg += gathers[i] if i == 0 else []
            seg += gathers[i + 1] if i + 1 < len(segments) else []
        waits = tuple(c.where for c in gathers[i]) if overlap else ()
        for x in steps:
            if waits and isinstance(x, ComputeOp):
                x = replace(x, after=x.after + waits)
                waits = ()
            seg.append(x)
        out.append(seg)
    return out


def segment_label(steps: list[Step], i: int) -> str:
    """``L<layer>``, ``E`` (embedding) or ``out`` (logits): names a segment's calls."""
    return _label(steps, i)


def optimizer_steps(m: ModelSpec, par: ParallelismSpec, train: TrainingSpec, pl: Placement,
                    groups: Mapping[str, np.ndarray], stage: int, s: int, gbytes: float,
                    overlap: Mapping[str, bool], grad_calls: list[str]) -> list[Step]:
    out: list[Step] = []
    dense, expert = stage_params(m, par, stage, s)
    after = tuple(grad_calls)
    if m.is_tied and par.pp > 1 and stage in (0, par.pp - 1):
        # Megatron's embedding group: first and last stage all-reduce the tied word-embedding
        # gradient (Narayanan et al. 2021 §2; megatron/core/distributed finalize_model_grads).
        c = CollectiveCall("pp", "all_reduce", m.vocab * m.hidden / par.tp * gbytes,
                           pl.pipeline_pairs(0, par.pp - 1), False, f"s{stage}/opt/embedding_grad")
        out.append(c)
    zero = par.zero_stage
    local = dense / (par.dp * par.cp) + expert / par.edp if zero >= 1 else dense + expert
    # Adam: read fp32 master, m, v and the gradient; write master, m, v and the bf16 weight.
    nbytes = local * (12.0 + gbytes + 12.0 + 2.0)
    out.append(ComputeOp("optimizer_step", "optimizer", -1, f"s{stage}/opt/step", 0.0, 0.0, nbytes,
                         after=after))
    if zero in (1, 2):
        for grp, p in (("dp_cp", dense), ("edp", expert)):
            g = groups[grp]
            if p > 0 and g.shape[1] > 1:
                out.append(CollectiveCall("dp", "all_gather", 2.0 * p, g, overlap["overlap_param_gather"],
                                          f"s{stage}/opt/param_all_gather_{grp}"))
    return out
