"""Pipeline schedules as data: the order of forward and backward micro-batch steps per stage.

What is modelled: the two schedules of Narayanan et al. 2021 (SC'21, §2.2): PipeDream-Flush
"1F1B" (Fig. 4 top), and the interleaved schedule with ``vpp`` model chunks per rank (Fig. 4
bottom), in the exact order Megatron-LM runs them
(``megatron/core/pipeline_parallel/schedules.py``: ``forward_backward_pipelining_without_
interleaving`` and ``..._with_interleaving``).

Why data: the scheduler replays the list; tests check its invariants (warm-up counts, each
micro-batch's F before its B); memory derives the activations in flight from it.

Dependencies the replay must honour (not repeated in the lists): with virtual stage
``vs = chunk * pp + stage``, F(vs, mb) waits for F(vs - 1, mb) and B(vs, mb) waits for
B(vs + 1, mb) (and for F(vs, mb), which precedes it in the same list).

Cost: a long job's schedule is tens of thousands of steps per stage (1,024 micro-batches of
12 chunks), and the plan compiler asks for each stage's twice (memory, plan); a sweep asks
for the same small ones over and over. The built-in schedules are therefore computed with
array arithmetic, remembered by their arguments (the tuples are immutable), and share one
:class:`ScheduleStep` object per distinct (kind, micro-batch, chunk) across stages.

Plug-ins: :data:`SCHEDULES` maps the name used in spec files to a function
``(pp, stage, n_microbatches, vpp) -> tuple[ScheduleStep, ...]``.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Callable

import numpy as np

from oassim.workload.steps import ScheduleStep

__all__ = ["SCHEDULES", "one_f_one_b", "interleaved", "warmup_steps", "Schedule"]

Schedule = Callable[[int, int, int, int], tuple[ScheduleStep, ...]]


@lru_cache(maxsize=16)
def _step_table(n_micro: int, vpp: int) -> np.ndarray:
    """Every step of a job of ``n_micro`` micro-batches and ``vpp`` chunks, one (frozen)
    object each: entry ``(0 if F else 1) * n_micro * vpp + mb * vpp + chunk``."""
    table = np.empty(2 * n_micro * vpp, dtype=object)
    table[:] = [ScheduleStep(kind, mb, c) for kind in ("F", "B") for mb in range(n_micro) for c in range(vpp)]
    return table


def _steps(forward: np.ndarray, mb: np.ndarray, chunk: np.ndarray, n_micro: int, vpp: int) -> tuple[ScheduleStep, ...]:
    """The steps of the given (forward?, micro-batch, chunk) columns, each distinct step one
    shared object across the stages of a job."""
    idx = np.where(forward, 0, n_micro * vpp) + mb * vpp + chunk
    return tuple(_step_table(n_micro, vpp)[idx].tolist())


def warmup_steps(name: str, pp: int, stage: int, n_micro: int, vpp: int = 1) -> int:
    """Forward steps before the first backward on ``stage`` (Megatron-LM's ``num_warmup``).

    1F1B: ``min(pp - stage - 1, m)``. Interleaved: ``(pp - stage - 1) * 2 + (vpp - 1) * pp``,
    capped at ``m * vpp`` (all forward first when ``m == pp``).
    """
    if name == "1f1b":
        return min(pp - stage - 1, n_micro)
    total = n_micro * vpp
    if n_micro == pp:
        return total
    return min((pp - stage - 1) * 2 + (vpp - 1) * pp, total)


def one_f_one_b(pp: int, stage: int, n_micro: int, vpp: int = 1) -> tuple[ScheduleStep, ...]:
    """1F1B (PipeDream-Flush): warm-up forwards, alternating F/B, cool-down backwards.

    Parameters
    ----------
    pp : int
        Pipeline stages.
    stage : int
        This stage, 0 .. pp-1.
    n_micro : int
        Micro-batches per step.
    vpp : int
        Must be 1.
    """
    if vpp != 1:
        raise ValueError("1f1b has one model chunk per stage (vpp = 1)")
    return _one_f_one_b(int(pp), int(stage), int(n_micro))


@lru_cache(maxsize=256)
def _one_f_one_b(pp: int, stage: int, n_micro: int) -> tuple[ScheduleStep, ...]:
    warm = warmup_steps("1f1b", pp, stage, n_micro)
    steady = n_micro - warm
    # F 0..warm-1, then (F warm+i, B i) for i < steady, then B steady..n_micro-1
    fwd = np.concatenate([np.ones(warm, bool), np.tile([True, False], steady), np.zeros(warm, bool)])
    pairs = np.stack([np.arange(warm, n_micro), np.arange(steady)], axis=1).ravel()
    mb = np.concatenate([np.arange(warm), pairs, np.arange(steady, n_micro)]).astype(np.int64)
    return _steps(fwd, mb, np.zeros(len(mb), dtype=np.int64), n_micro, 1)


def _chunk_and_mb(k: int, pp: int, vpp: int, forward: bool) -> tuple[int, int]:
    # Megatron-LM get_model_chunk_id / microbatch id: micro-batches go through the chunks in
    # groups of pp (Narayanan et al. 2021 Fig. 4).
    in_group = k % (pp * vpp)
    chunk = in_group // pp
    if not forward:
        chunk = vpp - 1 - chunk
    mb = (k // (pp * vpp)) * pp + in_group % pp
    return chunk, mb


def interleaved(pp: int, stage: int, n_micro: int, vpp: int = 1) -> tuple[ScheduleStep, ...]:
    """Interleaved 1F1B with ``vpp`` model chunks per stage (needs ``n_micro % pp == 0``)."""
    if pp > 1 and n_micro % pp:
        raise ValueError(f"interleaved schedule needs micro-batches ({n_micro}) divisible by pp ({pp})")
    return _interleaved(int(pp), int(stage), int(n_micro), int(vpp))


@lru_cache(maxsize=256)
def _interleaved(pp: int, stage: int, n_micro: int, vpp: int) -> tuple[ScheduleStep, ...]:
    total = n_micro * vpp
    warm = warmup_steps("interleaved", pp, stage, n_micro, vpp)
    steady = total - warm
    # forward k for k < warm, then (forward k + warm, backward k) for k < steady, then
    # backward steady..total-1; k maps to (chunk, micro-batch) as _chunk_and_mb
    fwd = np.concatenate([np.ones(warm, bool), np.tile([True, False], steady), np.zeros(warm, bool)])
    pairs = np.stack([np.arange(warm, total), np.arange(steady)], axis=1).ravel()
    k = np.concatenate([np.arange(warm), pairs, np.arange(steady, total)]).astype(np.int64)
    in_group = k % (pp * vpp)
    chunk = in_group // pp
    chunk = np.where(fwd, chunk, vpp - 1 - chunk)
    mb = (k // (pp * vpp)) * pp + in_group % pp
    return _steps(fwd, mb, chunk, n_micro, vpp)


SCHEDULES: dict[str, Schedule] = {
    "1f1b": one_f_one_b,
    "interleaved": interleaved,
}
