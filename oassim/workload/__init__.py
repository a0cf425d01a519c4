"""Workload layer: model specs, parallelism, placement, compute and memory models, plan compiler.

What is modelled: a large-model training job (dense or mixture-of-experts transformer, split
by tensor, pipeline, data, context and expert parallelism) turned into a frozen
:class:`Plan`: per pipeline stage, the ordered compute ops (with roofline durations) and the
collective calls (as data) of one micro-batch's forward and backward, the pipeline schedule,
gradient synchronisation, optimizer step, FLOP counts and memory footprint.

Why a separate layer: the scheduler (SimPy, above) replays a plan and asks the collective
engine (below) for communication times; this layer knows nothing of either (docs/architecture.md).

Typical use::

    from oassim.topology.cluster import build_fabric
    from oassim.workload import compile_plan
    fabric = build_fabric("dgx-a100-superpod", 1024)
    plan = compile_plan("gpt3-175b", {"tp": 8, "pp": 8, "dp": 16}, "a100-sxm", fabric,
                        training={"global_batch": 1024, "micro_batch": 1, "recompute": "full"})
"""

from oassim.workload.compute import (
    AcceleratorEfficiency,
    ComputeModel,
    FrameworkProfile,
    gemm_efficiency,
    load_efficiency,
)
from oassim.workload.memory import MemoryBreakdown, activation_bytes_per_layer, stage_memory
from oassim.workload.model import ModelSpec, load_model_spec, resolve_model
from oassim.workload.parallelism import (
    ParallelismSpec,
    TrainingSpec,
    check_job,
    n_microbatches,
    parse_workload,
)
from oassim.workload.placement import GROUP_NAMES, Placement, place
from oassim.workload.plan import ChunkPlan, FlopCounts, Plan, StagePlan, compile_plan
from oassim.workload.schedules import SCHEDULES
from oassim.workload.steps import CollectiveCall, ComputeOp, ScheduleStep, Step

__all__ = [
    "ModelSpec", "resolve_model", "load_model_spec",
    "ParallelismSpec", "TrainingSpec", "parse_workload", "check_job", "n_microbatches",
    "Placement", "place", "GROUP_NAMES",
    "ComputeModel", "AcceleratorEfficiency", "FrameworkProfile", "load_efficiency", "gemm_efficiency",
    "MemoryBreakdown", "stage_memory", "activation_bytes_per_layer",
    "ComputeOp", "CollectiveCall", "ScheduleStep", "Step", "SCHEDULES",
    "Plan", "StagePlan", "ChunkPlan", "FlopCounts", "compile_plan",
]
