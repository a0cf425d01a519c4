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

Plug-ins: :data:`SCHEDULES` maps the name used in spec files to a function
``(pp, stage, n_microbatches, vpp) -> tuple[ScheduleStep, ...]``.
"""

from __future__ import annotations

from typing import Callable

from oassim.workload.steps import ScheduleStep

__all__ = ["SCHEDULES", "one_f_one_b", "interleaved", "warmup_steps", "Schedule"]

Schedule = Callable[[int, int, int, int], tuple[ScheduleStep, ...]]


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
    warm = warmup_steps("1f1b", pp, stage, n_micro)
    out = [ScheduleStep("F", i, 0) for i in range(warm)]
    for i in range(n_micro - warm):
        out += [ScheduleStep("F", warm + i, 0), ScheduleStep("B", i, 0)]
    out += [ScheduleStep("B", i, 0) for i in range(n_micro - warm, n_micro)]
    return tuple(out)


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
    total = n_micro * vpp
    warm = warmup_steps("interleaved", pp, stage, n_micro, vpp)

    def f(k: int) -> ScheduleStep:
        c, mb = _chunk_and_mb(k, pp, vpp, True)
        return ScheduleStep("F", mb, c)

    def b(k: int) -> ScheduleStep:
        c, mb = _chunk_and_mb(k, pp, vpp, False)
        return ScheduleStep("B", mb, c)

    out = [f(k) for k in range(warm)]
    for k in range(total - warm):
        out += [f(k + warm), b(k)]
    out += [b(k) for k in range(total - warm, total)]
    return tuple(out)


SCHEDULES: dict[str, Schedule] = {
    "1f1b": one_f_one_b,
    "interleaved": interleaved,
}
