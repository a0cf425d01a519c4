"""Replay of the SC'21 Megatron-LM runs against their measured throughput:
``python -m oassim.scheduler.validate``.

What is checked: the ten rows of Narayanan et al. 2021 (SC'21) Table 1 (calibration source S01 of
``oassim/data/calibration/SOURCES.md``; rows T0001-T0010, copied in
``tests/data/training_megatron_a100.csv``): GPT 1.7B to 1T on 32 to 3,072 A100 80GB of NVIDIA
Selene, each with its tensor / pipeline / data-parallel split, micro and global batch and
virtual stages, full activation recomputation, fp16 (the A100's fp16 and bf16 dense peaks are
both 312 TFLOP/s). Each row is simulated for one iteration on the ``dgx-a100-superpod`` preset
scaled to the row's GPU count, with the model preset ``megatron-gpt-<size>`` and the
``megatron-lm-2021`` framework profile (what ``compute_efficiency.yaml`` prescribes for that
era: unfused attention, blocking tensor-parallel and pipeline communication, no data-parallel
overlap). The predicted TFLOP/s per GPU uses the paper's FLOP count
(``megatron_tflops_per_accelerator``: eq. 3, recomputation included), as Table 1 does.

Nothing here is fitted: the A100's ``gemm_e_max`` is fitted on these rows by
:mod:`oassim.scheduler.calibrate`, which uses this module's replays and judges each row at
the value fitted without it (leave-one-out). The table prints, per row, measured and
predicted TFLOP/s, the error and where the predicted iteration goes.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

from oassim.data import calibration_csv

__all__ = ["ROWS", "MEGATRON_FRAMEWORK", "ACCELERATOR", "a100_efficiency", "row_plan", "simulate_row",
           "megatron_table", "format_table", "main"]

ROWS = tuple(f"T{i:04d}" for i in range(1, 11))
MEGATRON_FRAMEWORK = "megatron-lm-2021"
ACCELERATOR = "a100-sxm"


def _data_file() -> Path:
    return calibration_csv("training")


def _model_preset(label: str) -> str:
    """``"GPT 1.7B"`` -> ``"megatron-gpt-1.7b"``."""
    return "megatron-gpt-" + label.split()[-1].lower()


def _raw_rows(path: Path) -> dict[str, dict[str, str]]:
    import csv

    with open(path, newline="") as f:
        return {r["row_id"]: r for r in csv.DictReader(f)}


def a100_efficiency(**values: float) -> Any:
    """The compute-efficiency file with the ``a100-sxm`` entry's fields replaced by ``values``
    (e.g. ``gemm_e_max=0.7``); no values: the file as it is."""
    from oassim.specio import validate
    from oassim.workload.compute import AcceleratorEfficiency, load_efficiency

    eff = load_efficiency()
    if not values:
        return eff
    entry = validate(AcceleratorEfficiency, {**eff.accelerators[ACCELERATOR].model_dump(), **values},
                     source="a100 efficiency override")
    return eff.model_copy(update={"accelerators": {**eff.accelerators, ACCELERATOR: entry}})


def row_plan(row_id: str, path: str | Path | None = None,
             efficiency: Mapping[str, float] | None = None) -> tuple[Any, Any, float]:
    """(plan, fabric, measured TFLOP/s per GPU) of one SC'21 row; ``efficiency`` replaces
    fields of the A100's compute-efficiency entry (see :func:`a100_efficiency`)."""
    from oassim.topology.cluster import build_fabric
    from oassim.workload import compile_plan
    from oassim.workload.fit import load_rows

    path = Path(path) if path is not None else _data_file()
    row = load_rows(path)[row_id]
    label = _raw_rows(path)[row_id]["model"]
    fabric = build_fabric("dgx-a100-superpod", row.gpus)
    par = {"tp": row.tp, "pp": row.pp, "dp": row.dp, "vpp": row.vpp}
    plan = compile_plan(_model_preset(label), par, ACCELERATOR, fabric,
                        training={"global_batch": row.gbs, "micro_batch": row.mbs, "recompute": "full",
                                  "precision": "bf16", "framework": MEGATRON_FRAMEWORK},
                        accelerators=row.gpus, efficiency_file=a100_efficiency(**dict(efficiency or {})))
    return plan, fabric, row.tflops


def _shares(results: Any) -> dict[str, float]:
    """Seconds of the rank whose compute stream ends last: compute (optimizer included) and
    its idle time by cause (``oassim.analysis.metrics.breakdown`` computes the same from above
    this layer; the scheduler may not import analysis)."""
    w = results.waits
    end = w.groupby("stage")["end_s"].max() if len(w) else None
    ops = results.ops
    comp = ops[ops["stream"].astype(str) == "compute"]
    cend = comp.groupby("stage")["end_s"].max()
    stage_end = cend if end is None else cend.combine(end, max, fill_value=0.0)
    stage = int(stage_end.idxmax())
    mine = w[w["stage"] == stage]
    span = mine["end_s"] - mine["start_s"]
    reason, dim = mine["reason"].astype(str), mine["dim"].astype(str)
    out = {"compute": float((comp[comp["stage"] == stage]["end_s"] - comp[comp["stage"] == stage]["start_s"]).sum()),
           "bubble": float(span[reason == "pipeline"].sum()), "sync": float(span[reason == "sync"].sum())}
    for d in ("tp", "cp", "ep", "dp", "pp"):
        out[f"exposed_{d}"] = float(span[(reason == "comm") & (dim == d)].sum())
    return out


def simulate_row(row_id: str, path: str | Path | None = None, network: str = "analytical",
                 efficiency: Mapping[str, float] | None = None) -> dict[str, Any]:
    """Simulate one row; returns measured and predicted TFLOP/s per GPU, the relative error
    ``predicted / measured - 1``, the iteration time and where it goes (s)."""
    from oassim.scheduler.simulate import simulate

    plan, fabric, measured = row_plan(row_id, path, efficiency)
    t0 = time.perf_counter()
    res = simulate(plan, fabric, network=network)
    T = res.iteration_time_s
    predicted = plan.flops.megatron / plan.n_accelerators / T / 1e12
    par = plan.parallelism
    return {"row": row_id, "model": plan.model.name.removeprefix("megatron-gpt-"), "gpus": plan.n_accelerators,
            "tp": par.tp, "pp": par.pp, "dp": par.dp, "vpp": par.vpp, "microbatches": plan.n_microbatches,
            "measured": measured, "predicted": predicted, "error": predicted / measured - 1.0,
            "iteration_s": T,
            "compute_only_tflops": plan.flops.megatron / plan.n_accelerators / plan.compute_only_s / 1e12,
            "breakdown": _shares(res), "wall_s": time.perf_counter() - t0}


def megatron_table(rows: tuple[str, ...] = ROWS, path: str | Path | None = None,
                   network: str = "analytical", workers: int = 1,
                   efficiency: Mapping[str, float] | Sequence[Mapping[str, float]] | None = None
                   ) -> list[dict[str, Any]]:
    """Simulate every row of ``rows`` (in ``workers`` processes); one dict per row, in the
    order of ``rows`` (see :func:`format_table`). ``efficiency``: A100 efficiency fields for
    every row, or a sequence of them, one per row."""
    per_row = list(efficiency) if isinstance(efficiency, Sequence) else [efficiency] * len(rows)
    if len(per_row) != len(rows):
        raise ValueError(f"{len(per_row)} efficiency entries for {len(rows)} rows")
    if workers <= 1 or len(rows) < 2:
        return [simulate_row(r, path, network, e) for r, e in zip(rows, per_row)]
    from concurrent.futures import ProcessPoolExecutor

    # the largest rows first, so that the pool ends together
    order = sorted(range(len(rows)), key=lambda i: -int(rows[i][1:]))
    with ProcessPoolExecutor(max_workers=workers) as pool:
        done = dict(zip(order, pool.map(simulate_row, [rows[i] for i in order], [path] * len(order),
                                        [network] * len(order), [per_row[i] for i in order])))
    return [done[i] for i in range(len(rows))]


def format_table(table: list[dict[str, Any]]) -> str:
    """The per-row table as text, with the mean absolute error."""
    lines = [f"{'row':6} {'model':>9} {'gpus':>5} {'tp':>2} {'pp':>3} {'dp':>3} {'vpp':>3} {'m':>4} "
             f"{'measured':>8} {'predicted':>9} {'error':>7}  {'compute':>7} {'tp comm':>7} {'bubble':>6} "
             f"{'pp comm':>7} {'dp comm':>7}"]
    for r in table:
        b, it = r["breakdown"], r["iteration_s"]
        lines.append(
            f"{r['row']:6} {r['model']:>9} {r['gpus']:5d} {r['tp']:2d} {r['pp']:3d} {r['dp']:3d} {r['vpp']:3d} "
            f"{r['microbatches']:4d} {r['measured']:8.1f} {r['predicted']:9.1f} {r['error']:+7.1%}  "
            f"{b['compute'] / it:7.1%} {b['exposed_tp'] / it:7.1%} {b['bubble'] / it:6.1%} "
            f"{b['exposed_pp'] / it:7.1%} {b['exposed_dp'] / it:7.1%}")
    errs = [abs(r["error"]) for r in table]
    if errs:
        lines.append(f"mean |error| {sum(errs) / len(errs):.1%}, max |error| {max(errs):.1%} "
                     f"(shares: of the predicted iteration time)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Print the table (``--rows T0001 T0005`` for a subset, ``--network flow``)."""
    ap = argparse.ArgumentParser(prog="python -m oassim.scheduler.validate", description=__doc__.split("\n")[0])
    ap.add_argument("--rows", nargs="+", default=list(ROWS))
    ap.add_argument("--data", help="training CSV (default oassim/data/calibration/training.csv)")
    ap.add_argument("--network", default="analytical", choices=["analytical", "flow"])
    ap.add_argument("--workers", type=int, default=1, help="rows simulated in parallel processes")
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    table = megatron_table(tuple(a.rows), a.data, a.network, a.workers)
    print("SC'21 Table 1 (Narayanan et al. 2021) replayed: TFLOP/s per GPU, paper FLOP count (eq. 3)")
    print(format_table(table))
    print(f"({time.perf_counter() - t0:.1f} s)")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
