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
  (``python -m oassim.scheduler.calibrate``: directly on the A100, through the sustained
  fraction of the best-shape matmul rate on H100 / B200 / GB300); tile, SM count and k0 are
  fixed from the hardware and library (see the YAML). The fitted form is consistent with the best-shape matmul
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

Low precision (``precision: fp8 | mxfp8 | nvfp4``) applies to the GEMMs of the transformer
layers' linear projections only (:data:`FP8_GEMMS`; Transformer Engine keeps attention, norms,
softmax, router, output layer, communication and the optimizer in BF16). Such a GEMM runs at
the chip's dense peak for that format (``Accelerator.peak_flops``) times that format's
``e_max`` (:meth:`AcceleratorEfficiency.e_max`: the fitted ``gemm_sustained`` times the
format's best-shape matmul fraction where a benchmark gives one, since a format's kernels
reach a different fraction of its peak than BF16's: source S83 of docs/sources.md measures
73-76% for FP8 against 78-80% for BF16; else ``gemm_e_max_by_precision``, fitted), and its
recipe adds the quantisation kernels that produce the low-precision operands.
Per quantised operand element (one bf16 element in, ``QUANT_BYTES`` bytes of HBM traffic):

- ``fp8`` (per-tensor current scaling, TE ``Float8CurrentScaling``): an amax pass reads the
  tensor (2 B), a cast-transpose reads it again and writes the E4M3/E5M2 copy and its
  transpose for the later transposed GEMM (2 + 1 + 1 B): 6 B, two kernels.
- ``mxfp8`` (block-32 E8M0 scales, TE ``MXFP8BlockScaling``): one pass reads the tensor and
  writes rowwise and columnwise copies, each with one scale byte per 32 elements
  (2 + 2 (1 + 1/32) B): 4.06 B, one kernel.
- ``nvfp4`` (block-16 E4M3 scales under one FP32 tensor scale, TE ``NVFP4BlockScaling``):
  the global amax pass (2 B), then a cast writing rowwise and columnwise E2M1 copies with a
  scale byte per 16 elements (2 + 2 (0.5 + 1/16) B; the random Hadamard transform of the
  weight-gradient operands is fused in it): 5.13 B, two kernels. Layers the framework keeps
  in BF16 (``nvfp4_bf16_layers`` of its profile, Megatron-Core's ``first_last_layers_bf16``)
  run their GEMMs in BF16: the plan charges that share of every low-precision GEMM at BF16.

The quantised operand of a forward GEMM is its input (m x k of the op), of a data-gradient
GEMM the incoming gradient (again m x k of that op); weight-gradient GEMMs reuse the
columnwise copies. With sequence parallelism the inputs of column-parallel layers and the
output gradients of row-parallel layers are quantised on the sequence shard before their
all-gather (TE quantises before communicating), i.e. 1/tp of the elements. Weights are
quantised once per optimizer step (cached across micro-batches) and not charged.

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
    "clear_efficiency_cache", "QUANT_BYTES", "QUANT_KERNELS", "LOW_PRECISIONS", "quantised_elements",
]

EFFICIENCY_FILE = "compute_efficiency.yaml"

#: GEMMs that run in FP8 when the workload's precision is fp8: the layers' linear projections,
#: forward and both backward GEMMs (Transformer Engine: E4M3 forward, E5M2 gradients).
FP8_GEMMS: frozenset[str] = frozenset({
    "qkv", "attn_out", "ffn_up", "ffn_down", "expert_up", "expert_down", "shared_up", "shared_down",
    "q_down", "q_up", "q_proj", "kv_down", "kv_up", "mtp_proj",  # MLA projections, MTP projection
})

#: HBM bytes per quantised operand element and kernels per quantisation (module docstring).
QUANT_BYTES: dict[str, float] = {"fp8": 6.0, "mxfp8": 2.0 + 2 * (1 + 1 / 32), "nvfp4": 2.0 + 2.0 + 2 * (0.5 + 1 / 16)}
QUANT_KERNELS: dict[str, int] = {"fp8": 2, "mxfp8": 1, "nvfp4": 2}
LOW_PRECISIONS: tuple[str, ...] = tuple(QUANT_BYTES)

# Operands quantised on the sequence shard (before the SP all-gather): forward input of the
# column-parallel layers, incoming gradient of the row-parallel ones.
_SHARDED_OPERAND = frozenset({"qkv", "ffn_up", "shared_up", "attn_out_dgrad", "ffn_down_dgrad",
                              "shared_down_dgrad"})

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
    nvfp4_bf16_layers : float
        Share of the transformer layers whose GEMMs stay BF16 under ``precision: nvfp4``
        (Megatron-Core ``first_last_layers_bf16``), in [0, 1).
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
    nvfp4_bf16_layers: float = Field(default=0.0, ge=0, lt=1)


class AcceleratorEfficiency(SpecModel):
    """Achievable fractions of one accelerator's peaks (module docstring gives the formulas).

    Parameters
    ----------
    gemm_e_max : float
        BF16 GEMM efficiency of full waves and long inner loops (fraction of dense peak).
    gemm_e_max_by_precision : mapping of {"fp8", "mxfp8", "nvfp4"} to float
        The same for the low-precision GEMMs, as a fraction of that format's dense peak.
    mamf_fraction : mapping of precision to float
        Best-shape matmul rate of a published benchmark (MAMF, source S83) as a fraction of
        that format's dense peak.
    gemm_sustained : float, optional
        Fitted: the fraction of the best-shape matmul rate that a training run's GEMMs reach
        at full waves (sustained clocks under the power cap, library kernels for the real
        shapes). When set, ``e_max(p) = gemm_sustained * mamf_fraction[p]`` for every format
        with a MAMF figure; otherwise ``gemm_e_max_by_precision``, else ``gemm_e_max``. A
        format with neither makes the plan say uncalibrated.
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
        False for an entry not fitted to this accelerator's measurements nor taken from a
        published benchmark of it.
    calibrated_precisions : list of str
        Precisions whose GEMM efficiency is fitted or published for this chip; a run at
        another precision is reported uncalibrated.
    """

    description: str = ""
    sources: list[str] = []
    notes: str = ""
    gemm_e_max: float = _Frac
    gemm_e_max_by_precision: dict[Literal["fp8", "mxfp8", "nvfp4"], float] = {}
    mamf_fraction: dict[Literal["bf16", "fp8", "mxfp8", "nvfp4"], float] = {}
    gemm_sustained: float | None = Field(default=None, gt=0, le=1)
    gemm_tile: tuple[int, int] = (128, 128)
    sm_count: int = Field(gt=0)
    gemm_k0: float = Field(ge=0)
    flash_attention_efficiency: float = _Frac
    memory_efficiency: float = _Frac
    kernel_overhead_us: float = Field(ge=0)
    default_framework: str
    calibrated: bool = False
    calibrated_precisions: list[str] = ["bf16"]
    fit: dict = {}

    def e_max(self, precision: str) -> float:
        """GEMM e_max at ``precision`` (a fraction of that format's peak)."""
        if self.gemm_sustained is not None and precision in self.mamf_fraction:
            return self.gemm_sustained * self.mamf_fraction[precision]  # type: ignore[index]
        if precision == "bf16":
            return self.gemm_e_max
        return self.gemm_e_max_by_precision.get(precision, self.gemm_e_max)  # type: ignore[call-overload]

    def is_calibrated(self, precision: str) -> bool:
        """Whether this entry's figures are fitted or published for runs at ``precision``."""
        return self.calibrated and precision in self.calibrated_precisions


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


def gemm_efficiency(m: int, n: int, k: int, instances: int, eff: AcceleratorEfficiency,
                    e_max: float | None = None) -> float:
    """Tile-quantisation GEMM efficiency (module docstring), a fraction of peak in (0, e_max].

    Parameters
    ----------
    m, n, k : int
        One GEMM instance computes C[m, n] = A[m, k] B[k, n].
    instances : int
        Independent instances in the kernel (batched / grouped GEMM): their tiles share waves.
    eff : AcceleratorEfficiency
    e_max : float, optional
        Efficiency of full waves; default ``eff.gemm_e_max`` (BF16).
    """
    tm, tn = eff.gemm_tile
    tiles = math.ceil(m / tm) * math.ceil(n / tn) * instances
    waves = math.ceil(tiles / eff.sm_count)
    occupancy = (m * n * instances) / (waves * eff.sm_count * tm * tn)
    return (eff.gemm_e_max if e_max is None else e_max) * occupancy * k / (k + eff.gemm_k0)


def quantised_elements(name: str, m: int, k: int, instances: int, sp_tp: int = 1) -> float:
    """Elements a low-precision GEMM op quantises before it runs (module docstring): the
    m x k operand of a forward or data-gradient GEMM, 1/``sp_tp`` of it when it is
    quantised on the sequence shard, nothing for a weight-gradient GEMM."""
    if name.endswith("_wgrad"):
        return 0.0
    share = sp_tp if name in _SHARDED_OPERAND else 1
    return float(m) * k * instances / share


@dataclass(frozen=True, eq=False)
class ComputeModel:
    """Durations of compute ops on one accelerator for one framework generation and precision.

    Parameters
    ----------
    accelerator : Accelerator
    efficiency : AcceleratorEfficiency
    framework : FrameworkProfile
    precision : {"bf16", "fp8", "mxfp8", "nvfp4"}
        Precision of the eligible GEMMs (:data:`FP8_GEMMS`); everything else runs bf16.
    sp_tp : int
        Tensor-parallel size when sequence parallelism is on (operands quantised on the
        sequence shard), else 1.
    """

    accelerator: Accelerator
    efficiency: AcceleratorEfficiency
    framework: FrameworkProfile
    precision: Literal["bf16", "fp8", "mxfp8", "nvfp4"] = "bf16"
    sp_tp: int = 1

    @functools.cached_property
    def _peaks(self) -> tuple[float, float]:
        bf16 = self.accelerator.peak_flops("bf16")
        gemm = self.accelerator.peak_flops(self.precision)
        return bf16, gemm

    @functools.cached_property
    def _bf16_share(self) -> float:
        """Share of the eligible GEMMs that stay BF16 (layers the recipe keeps in BF16)."""
        return self.framework.nvfp4_bf16_layers if self.precision == "nvfp4" else 0.0

    def op_time(self, op: ComputeOp) -> float:
        """Duration of ``op``, s: roofline max(compute, memory) plus the kernel overhead."""
        return _op_time(self, op.kind, op.name, op.exec_flops, op.bytes, op.gemm, op.instances)

    def gemm_time(self, m: int, n: int, k: int, instances: int = 1, fp8: bool = False) -> float:
        """Duration of ``instances`` (m, n, k) GEMMs in bf16 (or, with ``fp8``, at the model's
        low precision with its quantisation kernels), s, bytes included."""
        nbytes = 2.0 * (m * k + k * n + m * n) * instances
        name = "qkv" if fp8 else "gemm"
        return _op_time(self, "gemm", name, 2.0 * m * n * k * instances, nbytes, (m, n, k), instances)


@functools.lru_cache(maxsize=65536)
def _op_time(cm: ComputeModel, kind: str, name: str, flops: float, nbytes: float,
             gemm: tuple[int, int, int] | None, instances: int) -> float:
    e = cm.efficiency
    bf16, gemm_peak = cm._peaks
    hbm = cm.accelerator.hbm_bandwidth_Bps * e.memory_efficiency
    t_mem = nbytes / hbm
    t_flop = 0.0
    if flops > 0:
        if kind == "gemm" and gemm is not None:
            base = name.removesuffix("_dgrad").removesuffix("_wgrad")
            t_bf16 = flops / (bf16 * gemm_efficiency(*gemm, instances, e, e.e_max("bf16")))
            if base not in FP8_GEMMS or cm.precision == "bf16":
                t_flop = t_bf16
            else:
                low = flops / (gemm_peak * gemm_efficiency(*gemm, instances, e, e.e_max(cm.precision)))
                q = quantised_elements(name, gemm[0], gemm[2], instances, cm.sp_tp)
                if q:
                    # the recipe's quantisation kernels run before the GEMM on the same stream
                    low += q * QUANT_BYTES[cm.precision] / hbm
                    low += QUANT_KERNELS[cm.precision] * e.kernel_overhead_us * 1e-6
                share = cm._bf16_share
                t_flop = (1 - share) * low + share * t_bf16
        elif kind == "attention":
            t_flop = flops / (bf16 * e.flash_attention_efficiency)
        else:
            t_flop = flops / (bf16 * e.e_max("bf16"))
    return max(t_flop, t_mem) + e.kernel_overhead_us * 1e-6
