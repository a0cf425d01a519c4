"""Compute cost model: how long one kernel takes on one accelerator (per-operation roofline).

What is modelled: each :class:`~oassim.workload.steps.ComputeOp` runs for

    t = max(exec_flops / (peak * eff), bytes / (hbm_bandwidth * memory_efficiency)) + overhead

(the roofline of Williams et al. 2009, CACM 52(4)), with ``peak`` the accelerator's dense
peak at the op's precision (``Accelerator.peak_flops``) and ``eff`` by kind:

- GEMMs: a tile-quantisation efficiency (the GEMM is cut into ``tile_m x tile_n`` output
  tiles that the ``sm_count`` multiprocessors run in waves; each tile walks the inner
  dimension k in a software pipeline whose fill and drain cost about ``k0`` elements of k):

      eff(m, n, k; instances) = e_max * (m n instances) / (waves * sm_count * tile_m * tile_n)
                                      * k / (k + k0),
      waves = ceil(ceil(m / tile_m) * ceil(n / tile_n) * instances / sm_count).

  The first factor is the occupancy of the last (partial) wave and of padded edge tiles:
  small or oddly shaped outputs (thin micro-batches, small hidden sizes split by tensor
  parallelism) leave SMs idle (NVIDIA "Matrix Multiplication Background" user guide, wave
  and tile quantisation); the second charges short inner loops. Only ``e_max`` is fitted
  (``python -m oassim.workload.fit``); tile, SM count and k0 are fixed from the hardware and
  library (see the YAML). The fitted form is consistent with the best-shape matmul
  measurements of source S1 (docs/sources.md) (stas00/ml-engineering MAMF table), whose best
  shapes reach 0.97-0.98 e_max here. A saturating form ``e_max prod(x / (x + x0))`` was
  tried first and rejected: one x0 for all three dimensions either ignores small outputs
  or charges head-dimension-sized inner loops (k = 64-128) like tiny outputs, and the fit
  rows could not tell its two parameters apart (docs/architecture.md: "GEMM efficiency depends on the
  shapes").
- fused (flash) attention: a fraction of peak per accelerator, not shape-dependent
  (FlashAttention-2, Dao 2023, reports a near-flat fraction beyond 1k tokens); unfused
  frameworks instead run batched GEMMs through the formula above plus memory-bound softmax
  and dropout kernels that move the s x s scores.
- everything else (norms, activations, residuals, softmax, router top-k, optimizer) is
  memory-bound: bytes over the achievable HBM bandwidth.

FP8 speeds up the GEMMs of the transformer layers' linear projections only (docs/architecture.md
modelling notes; Transformer Engine keeps attention, norms, softmax, router, output layer,
communication and the optimizer in higher precision).

Parameters live in ONE file, ``topologies/hardware/compute_efficiency.yaml``: per accelerator
(the hardware's GEMM and memory efficiency, kernel overhead, flash-attention efficiency) and
per framework generation (attention kernel, which collectives overlap). They are never tuned
per run (docs/architecture.md modelling notes).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import Field

from oassim.errors import SpecError
from oassim.hardware import Accelerator
from oassim.presets import preset_dirs
from oassim.specio import SpecModel, read_yaml, validate
from oassim.workload.steps import ComputeOp

__all__ = [
    "FrameworkProfile", "AcceleratorEfficiency", "EfficiencyFile", "ComputeModel",
    "load_efficiency", "efficiency_path", "gemm_efficiency", "FP8_GEMMS", "EFFICIENCY_FILE",
    "clear_efficiency_cache",
]

EFFICIENCY_FILE = "compute_efficiency.yaml"

#: GEMMs that run in FP8 when the workload's precision is fp8: the layers' linear projections,
#: forward and both backward GEMMs (Transformer Engine: E4M3 forward, E5M2 gradients).
FP8_GEMMS: frozenset[str] = frozenset({
    "qkv", "attn_out", "ffn_up", "ffn_down", "expert_up", "expert_down", "shared_up", "shared_down",
    "q_down", "q_up", "q_proj", "kv_down", "kv_up", "mtp_proj",  # MLA projections, MTP projection
})

_Frac = Field(gt=0, le=1, strict=False)


class FrameworkProfile(SpecModel):
    """What one training-framework generation does, independent of the chip.

    Parameters
    ----------
    attention_kernel : {"fused", "unfused"}
        ``fused``: flash-style kernel, O(s h) HBM traffic. ``unfused``: QK^T and PV batched
        GEMMs with the s x s scores written to and read from HBM (Megatron-LM before 2022).
    overlap_grad_reduce, overlap_param_gather : bool
        Data-parallel gradient buckets overlap backward; parameter all-gathers overlap forward.
    tp_comm_overlap : bool
        Forward TP all-gather / reduce-scatter pipelined with their GEMMs (TE userbuffers).
    tp_bwd_overlap : bool
        Backward: the SP input re-gather overlaps the data-gradient GEMM, and the input
        gradient's all-reduce / reduce-scatter overlaps the weight-gradient GEMM.
    ep_comm_overlap, overlap_p2p : bool
        EP all-to-all overlapped with other micro-batches' compute; pipeline send/recv async.
    """

    description: str = ""
    sources: list[str] = []
    notes: str = ""
    attention_kernel: Literal["fused", "unfused"]
    overlap_grad_reduce: bool
    overlap_param_gather: bool
    tp_comm_overlap: bool
    tp_bwd_overlap: bool
    ep_comm_overlap: bool
    overlap_p2p: bool


class AcceleratorEfficiency(SpecModel):
    """Achievable fractions of one accelerator's peaks (module docstring gives the formulas).

    Parameters
    ----------
    gemm_e_max : float
        GEMM efficiency of full waves and long inner loops (fraction of dense peak), fitted.
    gemm_tile : (int, int)
        Output tile (rows, columns) of the library's large GEMM kernels.
    sm_count : int
        Streaming multiprocessors (tiles run concurrently, one per SM).
    gemm_k0 : float
        Inner-dimension length lost per tile to pipeline fill and drain, elements.
    flash_attention_efficiency : float
        Fraction of the bf16 peak a fused attention kernel executes at.
    memory_efficiency : float
        Fraction of HBM bandwidth memory-bound kernels achieve.
    kernel_overhead_us : float
        Fixed time per kernel (launch and tail), microseconds.
    default_framework : str
        Framework generation used when a workload names none.
    calibrated : bool
        False for an entry not fitted to this accelerator's measurements.
    """

    description: str = ""
    sources: list[str] = []
    notes: str = ""
    gemm_e_max: float = _Frac
    gemm_tile: tuple[int, int] = (128, 128)
    sm_count: int = Field(gt=0)
    gemm_k0: float = Field(ge=0)
    flash_attention_efficiency: float = _Frac
    memory_efficiency: float = _Frac
    kernel_overhead_us: float = Field(ge=0)
    default_framework: str
    calibrated: bool = False
    fit: dict = {}


class EfficiencyFile(SpecModel):
    """The whole ``compute_efficiency.yaml``: framework generations and accelerators.

    The entry ``default`` serves accelerators that have none of their own (the plan reports
    it as uncalibrated).
    """

    frameworks: dict[str, FrameworkProfile]
    accelerators: dict[str, AcceleratorEfficiency]

    def for_accelerator(self, name: str) -> tuple[AcceleratorEfficiency, str]:
        """(efficiency entry, its key) for accelerator ``name``, else the ``default`` entry."""
        if name in self.accelerators:
            return self.accelerators[name], name
        if "default" in self.accelerators:
            return self.accelerators["default"], "default"
        raise SpecError(f"no compute efficiency for accelerator '{name}' and no 'default' entry",
                        source=EFFICIENCY_FILE)

    def framework(self, name: str) -> FrameworkProfile:
        """Framework generation ``name``; SpecError lists the known ones."""
        if name not in self.frameworks:
            raise SpecError(f"unknown framework '{name}' (known: {', '.join(sorted(self.frameworks))})",
                            path="workload.framework")
        return self.frameworks[name]


def efficiency_path() -> Path:
    """The efficiency file found first on the preset path (``topologies/hardware/``)."""
    for d in preset_dirs("topologies/hardware"):
        p = d / EFFICIENCY_FILE
        if p.is_file():
            return p
    raise SpecError(f"{EFFICIENCY_FILE} not found in topologies/hardware/")


@functools.lru_cache(maxsize=4)
def _load(path: str) -> EfficiencyFile:
    return validate(EfficiencyFile, read_yaml(path), source=path)


def load_efficiency(path: str | Path | None = None) -> EfficiencyFile:
    """Read (once, cached) and validate the compute-efficiency file."""
    return _load(str(path or efficiency_path()))


def clear_efficiency_cache() -> None:
    """Forget cached efficiency files (after editing one on disk)."""
    _load.cache_clear()


def gemm_efficiency(m: int, n: int, k: int, instances: int, eff: AcceleratorEfficiency) -> float:
    """Tile-quantisation GEMM efficiency (module docstring), a fraction of peak in (0, e_max].

    Parameters
    ----------
    m, n, k : int
        One GEMM instance computes C[m, n] = A[m, k] B[k, n].
    instances : int
        Independent instances in the kernel (batched / grouped GEMM): their tiles share waves.
    eff : AcceleratorEfficiency
    """
    tm, tn = eff.gemm_tile
    tiles = math.ceil(m / tm) * math.ceil(n / tn) * instances
    waves = math.ceil(tiles / eff.sm_count)
    occupancy = (m * n * instances) / (waves * eff.sm_count * tm * tn)
    return eff.gemm_e_max * occupancy * k / (k + eff.gemm_k0)


@dataclass(frozen=True, eq=False)
class ComputeModel:
    """Durations of compute ops on one accelerator for one framework generation and precision.

    Parameters
    ----------
    accelerator : Accelerator
    efficiency : AcceleratorEfficiency
    framework : FrameworkProfile
    precision : {"bf16", "fp8"}
        Precision of the FP8-eligible GEMMs (:data:`FP8_GEMMS`); everything else runs bf16.
    """

    accelerator: Accelerator
    efficiency: AcceleratorEfficiency
    framework: FrameworkProfile
    precision: Literal["bf16", "fp8"] = "bf16"

    @functools.cached_property
    def _peaks(self) -> tuple[float, float]:
        bf16 = self.accelerator.peak_flops("bf16")
        gemm = self.accelerator.peak_flops(self.precision)
        return bf16, gemm

    def op_time(self, op: ComputeOp) -> float:
        """Duration of ``op``, s: roofline max(compute, memory) plus the kernel overhead."""
        return _op_time(self, op.kind, op.name, op.exec_flops, op.bytes, op.gemm, op.instances)

    def gemm_time(self, m: int, n: int, k: int, instances: int = 1, fp8: bool = False) -> float:
        """Duration of ``instances`` (m, n, k) GEMMs in bf16 (or fp8), s, bytes included."""
        nbytes = 2.0 * (m * k + k * n + m * n) * instances
        name = "qkv" if fp8 else "gemm"
        return _op_time(self, "gemm", name, 2.0 * m * n * k * instances, nbytes, (m, n, k), instances)


@functools.lru_cache(maxsize=65536)
def _op_time(cm: ComputeModel, kind: str, name: str, flops: float, nbytes: float,
             gemm: tuple[int, int, int] | None, instances: int) -> float:
    e = cm.efficiency
    bf16, gemm_peak = cm._peaks
    t_mem = nbytes / (cm.accelerator.hbm_bandwidth_Bps * e.memory_efficiency)
    t_flop = 0.0
    if flops > 0:
        if kind == "gemm" and gemm is not None:
            base = name.removesuffix("_dgrad").removesuffix("_wgrad")
            peak = gemm_peak if base in FP8_GEMMS else bf16
            t_flop = flops / (peak * gemm_efficiency(*gemm, instances, e))
        elif kind == "attention":
            t_flop = flops / (bf16 * e.flash_attention_efficiency)
        else:
            t_flop = flops / (bf16 * e.gemm_e_max)
    return max(t_flop, t_mem) + e.kernel_overhead_us * 1e-6
