"""The 47 Megatron-Bridge pre-training runs (calibration source S07) and the 5 MXFP8
measurements their table cells give in parentheses, as replayable jobs.

What it does: reads the S07 rows of ``oassim/data/calibration/training.csv`` (Llama 3 8B / 70B
and Llama 3.1 405B on DGX-H100, DGX-B200 and DGX-GB300, NeMo containers 25.09-26.06,
precisions FP8 with per-tensor current scaling, MXFP8 and NVFP4) and turns each into a
scenario of this simulator: the cluster preset of its system scaled to the row's GPU count,
the model preset, the row's tensor / pipeline / context / data split, virtual stages,
micro and global batch, and its precision. Replays are cached by configuration: many rows
repeat one layout in several containers, and a calibration replays each layout once per
parameter value.

Mapping of the table's columns (the source's own words in quotes):

- "DGX-H100" -> ``dgx-h100-superpod`` / ``h100-sxm``; "DGX-B200" -> ``dgx-b200`` /
  ``b200-sxm``; "DGX-GB300" -> ``gb300-nvl72`` / ``gb300``.
- precision "FP8", "FP8-CS" and the 25.09 rows' implied per-tensor current scaling ->
  ``fp8``; "MXFP8" -> ``mxfp8``; "NVFP4" -> ``nvfp4``.
- "FSDP (value N)" -> ``zero: fsdp`` (Megatron FSDP); "DDP (FSDP=0)" or empty -> the
  distributed optimizer, ``zero: 1``. DP = GPUs / (TP PP CP).
- Sequence parallelism with every TP > 1 (the recipes' default); Llama 3.1 405B counts the
  embedding and the loss as a layer each in the pipeline split
  (``account_for_embedding_in_pipeline_split`` / ``..._loss_...``: 126 + 2 = 128 layers over
  pp x vpp), as Megatron-Bridge's 405B recipe does.
- No activation recomputation (the column is empty; the H100 8B FP8 recipe recomputes 5
  layers, ``recompute_num_layers=5``, which is not modelled and shows in its residual).
- The framework profile is ``megatron-core-2025`` (``compute_efficiency.yaml``).
- Settings the table does not carry, from the Megatron-Bridge performance recipes
  (``scripts/performance/configs/llama/llama3_workload_base_configs.py``,
  ``scripts/performance/configs/llama/llama3_llm_pretrain.py``, ``scripts/performance/utils/``
  ``overrides.py`` and ``src/megatron/bridge/training/mixed_precision.py`` at tag v0.3.1;
  the same values in every tag v0.2.0-v0.5.0 for these runs; docs/sources.md): BF16
  gradient buffers and reduction (``grad_reduce_in_fp32 = False`` for every Llama 3 run:
  ``grad_precision: bf16``); the FP8 current-scaling and MXFP8 recipes keep the weights in
  FP8 only (``fp8_param_gather = True``), the NVFP4 recipe does not (BF16 weights plus the
  cached NVFP4 copy); the precision-aware optimizer only for BF16 runs without FSDP (no S07
  row); and the Llama 3 70B GB300 FP8 runs with Megatron FSDP offload the activations of 20
  of the 80 layers to the Grace CPU (``cpu_offloading_num_layers=20``).
- Two rows of the 26.02.01 table give a layout their recipe never had
  (:data:`RECIPE_LAYOUT`); they are replayed with the recipe's layout.
- Every row, so corrected, fits in HBM under the memory model: replays run with the memory
  check on.

The measured figure is tokens/s per GPU (the table's "Tokens / sec / GPU"); the prediction
is tokens per iteration / iteration time / GPUs.
"""

from __future__ import annotations

import csv
import functools
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping

from oassim.data import calibration_csv
from oassim.errors import SpecError
from oassim.scheduler.simulate import simulate
from oassim.specio import validate
from oassim.topology.cluster import build_fabric
from oassim.workload import compile_plan
from oassim.workload.compute import AcceleratorEfficiency, load_efficiency

__all__ = ["SYSTEMS", "MODELS", "FRAMEWORK", "BridgeRow", "load_bridge_rows", "efficiency_with",
           "replay", "fits_in_memory"]

SYSTEMS: dict[str, tuple[str, str]] = {
    "DGX-H100": ("dgx-h100-superpod", "h100-sxm"),
    "DGX-B200": ("dgx-b200", "b200-sxm"),
    "DGX-GB300": ("gb300-nvl72", "gb300"),
}
MODELS: dict[str, str] = {"LLAMA3_8B": "llama3-8b", "LLAMA3_70B": "llama3-70b", "LLAMA3.1_405B": "llama3-405b"}
FRAMEWORK = "megatron-core-2025"


#: Rows whose published layout is not the one their recipe ran, with the recipe's layout.
#: The 26.02.01 section of calibration source S07 gives the GB300 Llama 3 70B NVFP4 run as
#: tp 1 pp 1, DDP, micro-batch 2 and the MXFP8 run as pp 4 without virtual stages at
#: micro-batch 2. The recipes of that container (``LLAMA3_70B_PRETRAIN_CONFIG_GB300_NVFP4_V2``
#: and ``..._FP8_MX_V2``, GBS 256: pp 4, vp 5, micro-batch 1, no FSDP, no offload) are the same
#: in tag v0.3.0 (26.02), v0.3.1, the release branches r0.3.0 / llmb-r0.3.1 and in every
#: version of the file before 2026-04-11 (the 26.02.01 table was published 2026-03-19), and the
#: 26.02 and 26.04 sections of the same source list these two runs as pp 4, vp 5,
#: micro-batch 1. Their cells in 26.02.01 repeat the FP8 FSDP row's micro-batch 2 (and, for
#: NVFP4, its tp 1 pp 1). As published, T0209 cannot have run: its BF16 weights, their
#: cached NVFP4 copy and BF16 gradients alone need 359 GB per GPU.
RECIPE_LAYOUT: dict[str, dict[str, int]] = {
    "T0209": {"pp": 4, "vpp": 5, "mbs": 1},
    "T0211": {"pp": 4, "vpp": 5, "mbs": 1},
}

#: Activation offload of the recipes (``cpu_offloading_num_layers``), by model, system,
#: precision and FSDP (Llama 3 70B GB300 FP8 current scaling V1/V2: 20 layers).
RECIPE_OFFLOAD: dict[tuple[str, str, str, bool], int] = {("llama3-70b", "DGX-GB300", "fp8", True): 20}


def _precision(text: str) -> str:
    t = text.upper()
    if "NVFP4" in t:
        return "nvfp4"
    if "MXFP8" in t:
        return "mxfp8"
    if "FP8" in t:
        return "fp8"
    return "bf16"


@dataclass(frozen=True)
class BridgeRow:
    """One S07 row: the job and its measured tokens/s per GPU.

    ``config`` identifies the layout (rows of several containers share it).
    """

    row_id: str
    container: str
    model: str
    system: str
    gpus: int
    tp: int
    pp: int
    cp: int
    vpp: int
    mbs: int
    gbs: int
    fsdp: bool
    precision: str
    measured: float
    offload_layers: int = 0

    @property
    def preset(self) -> str:
        return SYSTEMS[self.system][0]

    @property
    def accelerator(self) -> str:
        return SYSTEMS[self.system][1]

    @property
    def dp(self) -> int:
        return self.gpus // (self.tp * self.pp * self.cp)

    @property
    def config(self) -> tuple:
        return (self.model, self.system, self.gpus, self.tp, self.pp, self.cp, self.vpp, self.mbs, self.gbs,
                self.fsdp, self.precision, self.offload_layers)

    def parallelism(self) -> dict[str, Any]:
        par: dict[str, Any] = dict(tp=self.tp, pp=self.pp, cp=self.cp, dp=self.dp, vpp=self.vpp, sp=self.tp > 1,
                                   zero="fsdp" if self.fsdp else 1)
        if self.model == "llama3-405b":
            par.update(account_for_embedding_in_pipeline_split=True, account_for_loss_in_pipeline_split=True)
        return par

    def training(self) -> dict[str, Any]:
        """The workload keys, with the recipe settings the table does not carry (module docstring)."""
        return dict(seq_len=8192, global_batch=self.gbs, micro_batch=self.mbs, precision=self.precision,
                    recompute="none", framework=FRAMEWORK, grad_precision="bf16",
                    fp8_param_gather=self.precision in ("fp8", "mxfp8"),
                    use_precision_aware_optimizer=self.precision == "bf16" and not self.fsdp,
                    offload_layers=self.offload_layers)


_ALT_TOKENS = re.compile(r"Tokens / sec / GPU alt=(\d+)")


def load_bridge_rows(path: str | Path | None = None, alternates: bool = True) -> list[BridgeRow]:
    """The S07 rows of the training table, in file order, each followed (``alternates``) by
    the MXFP8 measurement the same table cell publishes in parentheses: the source's "A (B)"
    cells give FP8 per-tensor scaling first and block (MX) scaling second (the CSV keeps B
    in the row's notes as ``Tokens / sec / GPU alt=B``). Such a row is ``<row id>-mx``."""
    out = []
    with open(path or calibration_csv("training"), newline="") as f:
        for r in csv.DictReader(f):
            if r["source_id"] != "S07" or r["hardware"] not in SYSTEMS:
                continue
            alt = _ALT_TOKENS.search(r["notes"]) if alternates else None
            row = BridgeRow(
                row_id=r["row_id"], container=r["framework"].removeprefix("NeMo Megatron-Bridge container "),
                model=MODELS[r["model"]], system=r["hardware"], gpus=int(r["num_gpus"]), tp=int(r["tp"] or 1),
                pp=int(r["pp"] or 1), cp=int(r["cp"] or 1), vpp=int(r["vpp"] or 1), mbs=int(r["mbs"] or 1),
                gbs=int(r["gbs_seqs"]), fsdp=r["zero_or_fsdp"].startswith("FSDP"),
                precision=_precision(r["precision"]), measured=float(r["tokens_per_s_per_gpu"]))
            row = replace(row, **RECIPE_LAYOUT.get(row.row_id, {}))
            out.append(replace(row, offload_layers=RECIPE_OFFLOAD.get(
                (row.model, row.system, row.precision, row.fsdp), 0)))
            if alt is not None and out[-1].precision == "fp8":
                out.append(replace(out[-1], row_id=f"{r['row_id']}-mx", precision="mxfp8",
                                   measured=float(alt.group(1))))
    return out


def efficiency_with(overrides: Mapping[str, Mapping[str, Any]] | None = None) -> Any:
    """The efficiency file with fields of accelerator entries replaced:
    ``{"gb300": {"gemm_sustained": 0.8}}``; nested mappings (``gemm_e_max_by_precision``)
    are merged, not replaced."""
    eff = load_efficiency()
    if not overrides:
        return eff
    accs = dict(eff.accelerators)
    for name, values in overrides.items():
        base = accs[name].model_dump()
        for k, v in values.items():
            base[k] = {**base[k], **v} if isinstance(v, Mapping) else v
        accs[name] = validate(AcceleratorEfficiency, base, source=f"{name} efficiency override")
    return eff.model_copy(update={"accelerators": accs})


@functools.lru_cache(maxsize=8)
def _fabric(preset: str, gpus: int) -> Any:
    return build_fabric(preset, gpus)


def _freeze(overrides: Mapping[str, Mapping[str, Any]] | None) -> tuple:
    if not overrides:
        return ()
    return tuple(sorted((a, tuple(sorted((k, tuple(sorted(v.items())) if isinstance(v, Mapping) else v)
                                         for k, v in vals.items()))) for a, vals in overrides.items()))


def _thaw(frozen: tuple) -> dict[str, dict[str, Any]]:
    return {a: {k: dict(v) if isinstance(v, tuple) else v for k, v in vals} for a, vals in frozen}


@functools.lru_cache(maxsize=4096)
def _replay(row: BridgeRow, frozen: tuple) -> dict[str, float]:
    fabric = _fabric(row.preset, row.gpus)
    plan = compile_plan(row.model, row.parallelism(), row.accelerator, fabric, training=row.training(),
                        accelerators=row.gpus, efficiency_file=efficiency_with(_thaw(frozen)))
    T = simulate(plan, fabric).iteration_time_s
    return {"tokens_per_s_per_gpu": plan.tokens_per_iteration / T / row.gpus, "iteration_s": T,
            "mfu": plan.mfu(T), "compute_only_s": plan.compute_only_s}


def replay(row: BridgeRow, overrides: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, float]:
    """Replay ``row`` (cached by its configuration and ``overrides``, see
    :func:`efficiency_with`): tokens/s per GPU, iteration time (s), MFU, compute-only time."""
    key = BridgeRow(**{**row.__dict__, "row_id": "", "container": "", "measured": 0.0})
    return _replay(key, _freeze(overrides))


@functools.lru_cache(maxsize=256)
def fits_in_memory(row: BridgeRow) -> bool:
    """Whether the memory model accepts the row's layout with its recipe settings."""
    try:
        compile_plan(row.model, row.parallelism(), row.accelerator, None, training=row.training(),
                     accelerators=row.gpus)
    except SpecError:
        return False
    return True
