"""Every published layout of the calibration table fits in HBM, as it did when it ran.

The rows come from ``oassim/data/calibration/training.csv`` (its sources in ``SOURCES.md``
beside it). A row is checked when it gives a whole layout on hardware of the catalog: the
Megatron-LM SC'21 runs (calibration source S01: A100, full recomputation) and the
Megatron-Bridge Llama 3 runs (calibration source S07: H100, B200, GB300). Not checked, and
printed as such: S02 (no sequence length; V100 has no preset) and S03 (no layout given).
Megatron-Bridge settings the table does not carry are taken from its recipes, as the replay
of those rows takes them (``oassim/scheduler/bridge_rows.py``, docs/sources.md): BF16
gradients, FP8-only weights under the FP8 and MXFP8 recipes (``fp8_param_gather``), the
distributed optimizer with DDP, and on GB300 the 70B FSDP runs offload 20 of the 80 layers'
activations (``cpu_offloading_num_layers=20``). Two 26.02.01 rows publish a layout their recipe
never had; they are checked with the recipe's layout, and their published layout is checked
to be physically impossible (``RECIPE_LAYOUT``).
"""

from __future__ import annotations

import csv
from dataclasses import replace

import pytest

from oassim.data import calibration_csv
from oassim.errors import SpecError
from oassim.scheduler.bridge_rows import RECIPE_LAYOUT, fits_in_memory, load_bridge_rows
from oassim.workload import compile_plan
from oassim.workload.fit import load_rows

_BRIDGE = {r.row_id: r for r in load_bridge_rows(alternates=False)}


def _rows() -> list[dict[str, str]]:
    with open(calibration_csv("training"), newline="") as f:
        return list(csv.DictReader(f))


def _s07_job(r: dict[str, str]) -> tuple[str, dict, str, dict, int]:
    b = _BRIDGE[r["row_id"]]
    return b.model, b.parallelism(), b.accelerator, b.training(), b.gpus


def _s01_job(r: dict[str, str]) -> tuple[str, dict, str, dict, int]:
    row = load_rows(calibration_csv("training"))[r["row_id"]]
    par = dict(tp=row.tp, pp=row.pp, dp=row.dp, vpp=row.vpp)
    train = dict(global_batch=row.gbs, micro_batch=row.mbs, recompute="full", framework="megatron-lm-2021")
    return "megatron-gpt-" + r["model"].split()[-1].lower(), par, "a100-sxm", train, row.gpus


def _jobs():
    out, skipped = [], []
    for r in _rows():
        if r["source_id"] == "S07":
            out.append(pytest.param(r["row_id"], _s07_job(r), id=r["row_id"]))
        elif r["source_id"] == "S01":
            out.append(pytest.param(r["row_id"], _s01_job(r), id=r["row_id"]))
        else:
            skipped.append(r["row_id"])
    return out, skipped


JOBS, SKIPPED = _jobs()


def test_rows_not_checked_are_the_ones_without_a_layout():
    """Only S02 and S03 rows are left out (printed), and every S01/S07 row is checked."""
    by_id = {r["row_id"]: r for r in _rows()}
    print("not checked (no complete layout on catalog hardware):", ", ".join(SKIPPED))
    assert {by_id[i]["source_id"] for i in SKIPPED} <= {"S02", "S03"}
    assert len(JOBS) == sum(r["source_id"] in ("S01", "S07") for r in _rows())


@pytest.mark.parametrize("row_id, job", JOBS)
def test_published_layout_fits_in_hbm(row_id, job):
    """The plan compiles with the memory check on; the footprint is at most the HBM capacity
    and at least the weights it must hold."""
    model, par, acc, train, n = job
    plan = compile_plan(model, par, acc, None, training=train, accelerators=n)
    mem = plan.memory
    assert mem.weights <= mem.total <= mem.capacity
    print(f"{row_id}: {mem.total / 1e9:.1f} of {mem.capacity / 1e9:.0f} GB on stage {mem.stage}")


@pytest.mark.parametrize("row_id", sorted(RECIPE_LAYOUT))
def test_corrected_rows_could_not_run_as_published(row_id):
    """The two 26.02.01 rows replayed with their recipe's layout: as the table prints them
    they do not fit on any stage (T0209: weights, their NVFP4 copy and gradients alone exceed
    the HBM; T0211: the 1F1B stack of micro-batch-2 activations does), and the recipe's layout
    is the one the 26.02 section of the same source publishes for the same run."""
    row = next(r for r in _rows() if r["row_id"] == row_id)
    b = _BRIDGE[row_id]
    published = dict(b.parallelism(), pp=int(row["pp"]), vpp=int(row["vpp"] or 1),
                     dp=b.gpus // (b.tp * int(row["pp"]) * b.cp))
    train = dict(b.training(), micro_batch=int(row["mbs"]))
    plan = compile_plan(b.model, published, b.accelerator, None, training=train, accelerators=b.gpus,
                        memory_check=False)
    worst = max((s.memory for s in plan.stages), key=lambda m: m.total)
    assert not worst.fits
    if row_id == "T0209":
        assert worst.weights + worst.gradients > worst.capacity
    with pytest.raises(SpecError, match="needs .* GB per accelerator"):
        compile_plan(b.model, published, b.accelerator, None, training=train, accelerators=b.gpus)
    same_run = [r for r in _BRIDGE.values() if r.container == "26.02" and r.model == b.model
                and r.system == b.system and r.precision == b.precision]
    assert same_run and all((r.pp, r.vpp, r.mbs, r.fsdp) == (b.pp, b.vpp, b.mbs, b.fsdp) for r in same_run)
    print(f"{row_id} as published: {worst.sentence(b.accelerator)}")


def test_every_replayed_bridge_row_fits_so_replays_keep_the_memory_check():
    """The calibration replays (``bridge_rows.replay``) compile with the memory check on, so
    every S07 row and MXFP8 cell must fit with its recipe settings; the FSDP rows only with
    their recipe's activation offload."""
    rows = load_bridge_rows()
    assert all(fits_in_memory(r) for r in rows), [r.row_id for r in rows if not fits_in_memory(r)]
    fsdp = [r for r in rows if r.fsdp and r.offload_layers]
    assert fsdp and not any(fits_in_memory(replace(r, offload_layers=0)) for r in fsdp)
