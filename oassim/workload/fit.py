"""Cross-check of the A100 GEMM efficiency on the S02 README runs: ``python -m oassim.workload.fit``.

The preset's ``gemm_e_max`` of ``a100-sxm`` is fitted by full replays of SC'21 Table 1
(:mod:`oassim.scheduler.calibrate`, source S01, A100 80GB). This module asks a second,
independent question with the compute model alone: which ``gemm_e_max`` do the S02 rows
imply? tile, SM count, k0, flash-attention, memory and overhead figures stay fixed.

Rows (calibration source S02 of ``oassim/data/calibration/SOURCES.md``, Megatron-LM README tables of January
2021): the four A100 rows on 1, 2, 4 and 8 GPUs, tensor-parallel only (GPT 1B/2B/4B/8B,
tp = GPUs, batch 16), T0012, T0015, T0018, T0021. They state iteration time and TFLOP/s per
GPU but not the sequence length; it is derived by solving Narayanan et al. 2021 eq. 3 with
full recomputation (the Megatron-LM default of that era, ``--checkpoint-activations``),

    TFLOP/s * t = 96 B s l h^2 (1 + s / (6 h) + V / (16 l h)),   V = 51,200,

a quadratic in s; every row gives s = 1,024 within 1% (printed), so s = 1,024 is used. The
batch is taken as one micro-batch of 16 sequences. The framework is ``megatron-lm-2021``
(unfused attention, blocking collectives).

Tensor-parallel communication on 2-8 GPUs is not negligible (Megatron 2021 all-reduced the
b s h activations 6 times per layer with recomputation), so the predicted iteration time
adds, for every TP collective of the plan, ``2 (n-1)/n * S / busbw(S)`` (all-reduce; (n-1)/n
for all-gather/reduce-scatter) with busbw interpolated (log-size) on the measured 8x A100
NCCL all-reduce curve (oassim/data/calibration/collectives.csv rows C0017-C0024, calibration source S19). The
same per-GPU busbw is assumed for 2 and 4 GPUs (NVSwitch: each GPU's links limit the ring).
This term exists only here; in a replay the collective engine costs the calls.

Objective: least squares of log(predicted / measured TFLOP/s) over e_max, by golden-section
search on [0.3, 1]; the result is rounded to 3 decimals and is stored in the efficiency
file's ``fit.cross_check`` (not used by any simulation).

Finding: S02 implies e_max = 0.63, the SC'21 replays 0.70: the S02 runs were slower per
FLOP. S02 does not say which A100 it ran on; an A100 40GB at 1.555 TB/s would explain most
of it, but no source here confirms it, so nothing is assumed. Today's best-shape matmul
(source S1, MAMF) implies ~0.89 (printed).
"""

from __future__ import annotations

import argparse
import csv
import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from oassim.data import calibration_csv
from oassim.workload.compute import (
    AcceleratorEfficiency,
    EfficiencyFile,
    load_efficiency,
)
from oassim.workload.plan import Plan, compile_plan
from oassim.workload.steps import CollectiveCall, ComputeOp

__all__ = ["FIT_ROWS", "HELD_OUT_ROWS", "Row", "load_rows", "derive_seq_len", "OpTable", "op_table",
           "fit", "golden_section_min", "with_e_max", "predict_fit_row", "compute_only", "main", "busbw_curve",
           "mamf_check", "default_data"]

FIT_ROWS = ("T0012", "T0015", "T0018", "T0021")
HELD_OUT_ROWS = tuple(f"T{i:04d}" for i in range(1, 11))
VOCAB = 51200
FRAMEWORK = "megatron-lm-2021"


@dataclass(frozen=True)
class Row:
    """One calibration row (columns of oassim/data/calibration/training.csv)."""

    row_id: str
    layers: int
    hidden: int
    heads: int
    gpus: int
    tp: int
    pp: int
    dp: int
    vpp: int
    mbs: int
    gbs: int
    seq_len: int | None
    iter_s: float | None
    tflops: float


def _vpp(text: str, layers: int, pp: int) -> int:
    m = re.match(r"(\d+) layers?/virtual stage", text or "")
    return layers // pp // int(m.group(1)) if m else 1


def load_rows(path: str | Path) -> dict[str, Row]:
    """Rows of a training CSV (the calibration file or its copy in tests/data), by row id."""
    out = {}
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            if not r["layers"] or not r["tflops_per_gpu"]:
                continue
            layers, tp = int(r["layers"]), int(r["tp"] or 1)
            pp = int(r["pp"] or 1)
            gbs = int(r["gbs_seqs"])
            out[r["row_id"]] = Row(
                row_id=r["row_id"], layers=layers, hidden=int(r["hidden"]), heads=int(r["heads"]),
                gpus=int(r["num_gpus"]), tp=tp, pp=pp, dp=int(r["dp"] or 1),
                vpp=_vpp(r["vpp"], layers, pp), mbs=int(r["mbs"] or gbs), gbs=gbs,
                seq_len=int(r["seq_len"]) if r["seq_len"] else None,
                iter_s=float(r["iter_time_s"]) if r["iter_time_s"] else None,
                tflops=float(r["tflops_per_gpu"]))
    return out


def default_data() -> tuple[Path, Path]:
    """(training csv, collectives csv): the shipped tables of ``oassim/data/calibration/``."""
    return calibration_csv("training"), calibration_csv("collectives")


def derive_seq_len(row: Row, vocab: int = VOCAB) -> float:
    """Sequence length solving Narayanan et al. 2021 eq. 3 (full recomputation) for the row."""
    B, l, h = row.gbs, row.layers, row.hidden
    a = 16.0 * B * l * h  # 96 B l h^2 / (6 h)
    b = 96.0 * B * l * h * h * (1 + vocab / (16.0 * l * h))
    c = row.tflops * 1e12 * row.gpus * row.iter_s  # FLOPs of one iteration, all GPUs
    return (-b + math.sqrt(b * b + 4 * a * c)) / (2 * a)


def busbw_curve(path: str | Path, hardware: str = "A100") -> tuple[np.ndarray, np.ndarray]:
    """(sizes bytes, busbw B/s) of the 8-GPU all-reduce rows of ``hardware``, sorted by size."""
    pts = []
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            # one measured curve: the full table also holds other sources' 8-GPU points, some without a size
            if (r["collective"] == "all_reduce" and r["num_gpus"] == "8" and hardware in r["hardware"]
                    and r["source_id"] == "S19"):
                pts.append((float(r["msg_size_bytes"]), float(r["busbw_GBps"]) * 1e9))
    pts.sort()
    return np.array([p[0] for p in pts]), np.array([p[1] for p in pts])


def _tp_comm_s(call: CollectiveCall, curve: tuple[np.ndarray, np.ndarray]) -> float:
    n = call.group_size
    factor = 2.0 * (n - 1) / n if call.op == "all_reduce" else (n - 1) / n
    bw = float(np.interp(np.log(call.size_bytes), np.log(curve[0]), curve[1]))
    return factor * call.size_bytes / bw


def _model(row: Row, seq_len: int) -> dict:
    return dict(name=f"gpt-{row.row_id}", layers=row.layers, hidden=row.hidden,
                ffn_hidden=4 * row.hidden, heads=row.heads, vocab=VOCAB, seq_len=seq_len,
                activation="gelu")


def _plan(row: Row, seq_len: int, efficiency_file: str | EfficiencyFile | None = None) -> Plan:
    return compile_plan(_model(row, seq_len), dict(tp=row.tp, pp=row.pp, dp=row.dp, vpp=row.vpp),
                        "a100-sxm", training=dict(seq_len=seq_len, global_batch=row.gbs,
                                                  micro_batch=row.mbs, recompute="full",
                                                  framework=FRAMEWORK),
                        efficiency_file=efficiency_file)


@dataclass(frozen=True)
class OpTable:
    """The compute ops one GPU of the slowest stage runs per iteration, as arrays (for refits).

    ``count[i]`` is how often op i runs; GEMM dims are 0 for non-GEMM ops.
    """

    kind: np.ndarray  # 0 gemm, 1 attention, 2 memory-bound
    flops: np.ndarray
    nbytes: np.ndarray
    mnk: np.ndarray  # (n, 3)
    instances: np.ndarray
    count: np.ndarray
    comm_s: float  # TP communication term (fit rows only)

    def time(self, e_max: float, eff: AcceleratorEfficiency, peak: float, hbm: float) -> float:
        """Iteration time with ``gemm_e_max = e_max`` and the rest of ``eff``, s."""
        tm, tn = eff.gemm_tile
        m, n, k = self.mnk.T
        tiles = np.ceil(m / tm) * np.ceil(n / tn) * self.instances
        waves = np.maximum(np.ceil(tiles / eff.sm_count), 1.0)
        occ = np.where(self.kind == 0, m * n * self.instances / (waves * eff.sm_count * tm * tn), 1.0)
        g = e_max * occ * k / np.maximum(k + eff.gemm_k0, 1e-9)
        e = np.where(self.kind == 0, g, np.where(self.kind == 1, eff.flash_attention_efficiency, e_max))
        t = np.maximum(self.flops / (peak * e), self.nbytes / (hbm * eff.memory_efficiency))
        t += eff.kernel_overhead_us * 1e-6
        return float(np.dot(t, self.count)) + self.comm_s


def op_table(plan: Plan, curve: tuple[np.ndarray, np.ndarray] | None = None) -> OpTable:
    """Tabulate the slowest stage's ops of ``plan`` (and its TP comm time when ``curve``)."""
    st = max(plan.stages, key=lambda s: s.compute_s)
    rows: dict[tuple, int] = {}
    comm = 0.0
    lists = []
    for x in st.schedule:
        c = st.chunks[x.chunk]
        lists.append(c.forward if x.kind == "F" else c.backward)
    lists.append(st.optimizer)
    for steps in lists:
        for s in steps:
            if isinstance(s, ComputeOp):
                key = (s.kind, s.exec_flops, s.bytes, s.gemm or (0, 0, 0), s.instances)
                rows[key] = rows.get(key, 0) + 1
            elif curve is not None and s.dim == "tp":
                comm += _tp_comm_s(s, curve)
    keys = list(rows)
    code = {"gemm": 0, "attention": 1}
    return OpTable(kind=np.array([code.get(k[0], 2) for k in keys]),
                   flops=np.array([k[1] for k in keys], dtype=float),
                   nbytes=np.array([k[2] for k in keys], dtype=float),
                   mnk=np.array([k[3] for k in keys], dtype=float).reshape(-1, 3),
                   instances=np.array([k[4] for k in keys], dtype=float),
                   count=np.array([rows[k] for k in keys], dtype=float), comm_s=comm)


def _tflops(plan: Plan, seconds: float) -> float:
    return plan.flops.megatron / plan.n_accelerators / seconds / 1e12


def _a100() -> tuple[AcceleratorEfficiency, float, float]:
    from oassim.hardware import load_catalog

    eff, _ = load_efficiency().for_accelerator("a100-sxm")
    acc = load_catalog().accelerator("a100-sxm")
    return eff, acc.peak_flops("bf16"), acc.hbm_bandwidth_Bps


def fit(rows: dict[str, Row], curve: tuple[np.ndarray, np.ndarray], seq_len: int = 1024) -> float:
    """Fitted ``gemm_e_max`` on :data:`FIT_ROWS` (module docstring), rounded to 3 decimals."""
    eff, peak, hbm = _a100()
    tables = [(rows[r], _plan(rows[r], seq_len)) for r in FIT_ROWS]
    tables2 = [(r, p, op_table(p, curve)) for r, p in tables]

    def loss(e: float) -> float:
        return sum(math.log(_tflops(p, t.time(e, eff, peak, hbm)) / r.tflops) ** 2 for r, p, t in tables2)

    return round(golden_section_min(loss, 0.3, 1.0), 3)  # the loss is unimodal in e_max


def golden_section_min(loss: Callable[[float], float], lo: float, hi: float, iterations: int = 60) -> float:
    """The minimiser of a unimodal ``loss`` on ``[lo, hi]`` by golden-section search."""
    g = (math.sqrt(5) - 1) / 2
    for _ in range(iterations):
        a, b = hi - g * (hi - lo), lo + g * (hi - lo)
        if loss(a) < loss(b):
            hi = b
        else:
            lo = a
    return (lo + hi) / 2


def mamf_check(eff: AcceleratorEfficiency) -> list[tuple[str, float, float]]:
    """(shape, eff / e_max, implied e_max) at the best shapes of source S1's MAMF table
    (A100 SXM bf16: 6912x16384x2048 at 85.9%, 1024x10240x5120 at 86.9%)."""
    from oassim.workload.compute import gemm_efficiency

    unit = eff.model_copy(update={"gemm_e_max": 1.0})
    out = []
    for (m, n, k), frac in (((6912, 16384, 2048), 0.859), ((1024, 10240, 5120), 0.869)):
        f = gemm_efficiency(m, n, k, 1, unit)
        out.append((f"{m}x{n}x{k}", f, frac / f))
    return out


def with_e_max(e: float) -> EfficiencyFile:
    """The efficiency file with the ``a100-sxm`` ``gemm_e_max`` replaced by ``e``."""
    eff = load_efficiency()
    entry = eff.accelerators["a100-sxm"].model_copy(update={"gemm_e_max": float(e)})
    return eff.model_copy(update={"accelerators": {**eff.accelerators, "a100-sxm": entry}})


def predict_fit_row(row: Row, seq_len: int = 1024, curve: tuple[np.ndarray, np.ndarray] | None = None,
                    e_max: float | None = None) -> float:
    """Predicted TFLOP/s per GPU of a fit row (compute + TP term), with the file's
    parameters or with ``gemm_e_max = e_max``."""
    p = _plan(row, seq_len, with_e_max(e_max) if e_max is not None else None)
    st = p.stages[0]
    comm = op_table(p, curve).comm_s if curve is not None else 0.0
    return _tflops(p, st.compute_s + comm)


def compute_only(row: Row, efficiency_file: str | None = None) -> tuple[float, Plan]:
    """Compute-only TFLOP/s per GPU (paper FLOP count) of an SC'21 row, and its plan."""
    p = _plan(row, row.seq_len or 2048, efficiency_file)
    return _tflops(p, p.compute_only_s), p


def main(argv: list[str] | None = None) -> int:
    """Fit on S02, print per-row errors and the held-out compute-only predictions."""
    ap = argparse.ArgumentParser(prog="python -m oassim.workload.fit", description=__doc__.split("\n")[0])
    ap.add_argument("--training", help="training CSV (default oassim/data/calibration/training.csv)")
    ap.add_argument("--collectives", help="collectives CSV for the TP term")
    a = ap.parse_args(argv)
    d_train, d_coll = default_data()
    rows = load_rows(a.training or d_train)
    curve = busbw_curve(a.collectives or d_coll)
    print(f"data: {a.training or d_train}")
    print("sequence length of the S02 rows from eq. 3 with full recomputation (V = 51,200):")
    for r in FIT_ROWS:
        print(f"  {r}: s = {derive_seq_len(rows[r]):7.1f}")
    e = fit(rows, curve)
    file_eff, _ = load_efficiency().for_accelerator("a100-sxm")
    stored = file_eff.fit.get("cross_check", {}).get("implied_gemm_e_max")
    print(f"\nS02 implies a100-sxm gemm_e_max = {e}  (file's cross_check: {stored}; preset, fitted by "
          f"replaying SC'21 with python -m oassim.scheduler.calibrate: {file_eff.gemm_e_max})")
    print("cross-check, MAMF best shapes of source S1 (not fitted): eff/e_max, implied e_max")
    for shape, f, implied in mamf_check(file_eff):
        print(f"  {shape:>17}: {f:.3f}  e_max = {implied:.3f}")
    print("\nS02 rows (1-8 A100, tp only, s = 1024, compute + TP all-reduce term), TFLOP/s per GPU:")
    print(f"  {'row':6} {'gpus':>4} {'measured':>9} {'at ' + str(e):>9} {'error':>7} {'at preset':>9} {'error':>7}")
    for r in FIT_ROWS:
        own = predict_fit_row(rows[r], curve=curve, e_max=e)
        pre = predict_fit_row(rows[r], curve=curve)
        m = rows[r].tflops
        print(f"  {r:6} {rows[r].gpus:4d} {m:9.1f} {own:9.1f} {own / m - 1:+7.1%} {pre:9.1f} {pre / m - 1:+7.1%}")
    print("\nSC'21 Table 1 (S01) at the preset: compute only, no communication, no pipeline bubble")
    print(f"  {'row':6} {'model':>6} {'gpus':>5} {'tp':>2} {'pp':>3} {'vpp':>3} {'measured':>8} "
          f"{'compute':>8} {'room':>6} {'bubble':>6}")
    for r in HELD_OUT_ROWS:
        row = rows[r]
        tf, p = compute_only(row)
        bubble = (row.pp - 1) / (p.n_microbatches * row.vpp)
        print(f"  {r:6} {row.hidden:6d} {row.gpus:5d} {row.tp:2d} {row.pp:3d} {row.vpp:3d} "
              f"{row.tflops:8.1f} {tf:8.1f} {1 - row.tflops / tf:6.1%} {bubble:6.1%}")
    print("  room = 1 - measured / compute-only: the share of the iteration communication and "
          "bubbles may take; bubble = (pp-1)/(m vpp)")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
