"""The two kinds of step a plan is made of: a compute kernel and a collective call.

What is modelled: one GPU kernel (or fused kernel group) with its FLOPs, HBM bytes, GEMM
shape and duration; and one communication request with the data the collective engine needs
(operation, bytes, every concurrent group) plus whether it may overlap compute.

Why data: the plan compiler decides *what* runs in which order; the scheduler (SimPy, a later
layer) only replays these records and asks the collective engine for communication times
(docs/architecture.md, conventions "the simulator asks, the model answers"). Nothing here imports the collective or
network layers: a :class:`CollectiveCall` is a request, not a cost.

Byte convention of ``CollectiveCall.size_bytes`` (nccl-tests, as ``oassim.collectives``):
the per-rank buffer of all-reduce; the *input* of reduce-scatter (each rank keeps size/n);
the *output* of all-gather (each rank contributes size/n); the send buffer of all-to-all
(size/n to each rank); the message of send/recv.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Union

import numpy as np

__all__ = [
    "ComputeOp", "CollectiveCall", "Step", "OpKind", "CommDim", "CommOp",
    "ScheduleStep", "copied",
]

OpKind = Literal["gemm", "attention", "elementwise", "norm", "embedding", "optimizer"]
CommDim = Literal["tp", "cp", "ep", "dp", "pp"]
CommOp = Literal["all_reduce", "reduce_scatter", "all_gather", "all_to_all", "send_recv"]


@dataclass(frozen=True)
class ComputeOp:
    """One kernel on one accelerator, for one micro-batch.

    Attributes
    ----------
    name : str
        Operation name (``qkv``, ``qkv_dgrad``, ``attn``, ``ffn_up_wgrad``, ``ln1``...).
    kind : {"gemm", "attention", "elementwise", "norm", "embedding", "optimizer"}
    layer : int
        Global transformer layer (0-based); -1 for embedding, logits and optimizer ops.
    where : str
        Unique position, e.g. ``"c0/L3/fwd/qkv"`` (chunk, layer, pass, name).
    flops : float
        Nominal FLOPs in the model-accounting convention (matmuls only, 2 m n k each, the full
        s x s attention products); 0 for memory-bound kernels. Summing ``flops`` over a plan
        gives the Narayanan et al. (2021) count.
    exec_flops : float
        FLOPs the kernel actually executes (a causal flash-attention kernel skips masked
        blocks; its backward recomputes the scores), used for its duration.
    bytes : float
        HBM bytes read + written.
    gemm : tuple of int or None
        (m, n, k) of one GEMM instance (C[m, n] = A[m, k] B[k, n]) for shape-dependent
        efficiency; None for other kinds.
    instances : int
        Independent instances of ``gemm`` in the kernel (batched/grouped GEMM).
    recompute : bool
        Recomputation of a forward op (counted by HFU, not by MFU).
    duration_s : float
        Time on the compute stream, s (from :mod:`oassim.workload.compute`).
    after : tuple of str
        ``where`` of overlappable collective calls that must have completed before this op
        starts (a prefetched parameter gather, a ring-attention exchange, gradient buckets).
    """

    name: str
    kind: OpKind
    layer: int
    where: str
    flops: float
    exec_flops: float
    bytes: float
    gemm: tuple[int, int, int] | None = None
    instances: int = 1
    recompute: bool = False
    duration_s: float = 0.0
    after: tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class CollectiveCall:
    """One collective (or point-to-point) request, issued by every group in ``groups`` at once.

    Attributes
    ----------
    dim : {"tp", "cp", "ep", "dp", "pp"}
        Parallel dimension the call belongs to (data-parallel gradient reductions are ``dp``
        even when their groups span ``dp * cp`` ranks or the expert ``edp`` ranks).
    op : {"all_reduce", "reduce_scatter", "all_gather", "all_to_all", "send_recv"}
    size_bytes : float
        Per-rank bytes in the nccl-tests convention (module docstring).
    groups : ndarray of int64, shape (n_groups, group_size)
        Accelerator ranks of every group that runs this call concurrently (read-only). For
        ``send_recv``: shape (n_pairs, 2), each row (source rank, destination rank); all
        pairs transfer at once.
    overlappable : bool
        False: on the critical path (the next step waits for it). True: issued on a
        communication stream; it must complete before any op naming it in ``after`` (and
        before the optimizer step for gradient reductions).
    where : str
        Unique position in the plan, e.g. ``"c0/L3/fwd/attn_out_rs"``.
    """

    dim: CommDim
    op: CommOp
    size_bytes: float
    groups: np.ndarray
    overlappable: bool
    where: str

    @property
    def group_size(self) -> int:
        """Ranks per group."""
        return int(self.groups.shape[1])

    @property
    def n_groups(self) -> int:
        """Concurrent groups (or pairs)."""
        return int(self.groups.shape[0])


Step = Union[ComputeOp, CollectiveCall]


@dataclass(frozen=True)
class ScheduleStep:
    """One entry of a stage's pipeline order: run pass ``kind`` of ``microbatch`` on ``chunk``.

    Attributes
    ----------
    kind : {"F", "B"}
        Forward or backward (backward includes any recomputation).
    microbatch : int
        Micro-batch index, 0 .. n_microbatches - 1.
    chunk : int
        Model chunk (virtual stage) on this rank, 0 .. vpp - 1.
    """

    kind: Literal["F", "B"]
    microbatch: int
    chunk: int


def copied(x: Step, **changes: object) -> Step:
    """``dataclasses.replace(x, **changes)`` without re-running the generated ``__init__`` (a
    plan holds 10^4-10^5 steps; neither kind has a ``__post_init__``): the same fields, field by
    field, then ``changes``."""
    out = object.__new__(type(x))
    out.__dict__.update(x.__dict__)
    out.__dict__.update(changes)
    return out
