"""S02 cross-check of the A100 compute efficiency: reproducible, S02 rows within 3% at the value
they imply, SC'21 rows' compute-only throughput printed.

Data: ``tests/data/training_megatron_a100.csv`` (rows T0001-T0022 copied from
``oassim/data/calibration/training.csv``, calibration sources S01 and S02) and the 8x A100 all-reduce rows of
``tests/data/collectives_allreduce_8gpu.csv`` (S19) for the fit's tensor-parallel term.

Rows: S02 T0012, T0015, T0018, T0021 (1-8 GPUs, tensor parallel only). The preset's value is
fitted on S01 T0001-T0010 (SC'21 Table 1) by full replays (tests/scheduler/test_calibrate.py);
here the compute model alone is checked on their compute-bound part at the preset: a
compute-only throughput may not fall below the measured one (communication and bubbles only
add time), beyond a 2% allowance.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from oassim.data import calibration_csv
from oassim.workload import fit as F
from oassim.workload import load_efficiency

DATA = Path(__file__).resolve().parents[1] / "data"
TRAIN = DATA / "training_megatron_a100.csv"
COLL = DATA / "collectives_allreduce_8gpu.csv"
SHIPPED = calibration_csv("training")


@pytest.fixture(scope="module")
def rows():
    return F.load_rows(TRAIN)


@pytest.fixture(scope="module")
def curve():
    return F.busbw_curve(COLL)


def test_sequence_length_derived_as_1024(rows):
    """Solving Narayanan et al. eq. 3 (full recomputation) for s gives 1,024 on every fit row."""
    for r in F.FIT_ROWS:
        assert F.derive_seq_len(rows[r]) == pytest.approx(1024, rel=0.01)


def test_refit_reproduces_the_file(rows, curve):
    """Refitting on the copied S02 rows gives the cross-check value stored in compute_efficiency.yaml."""
    e = F.fit(rows, curve)
    check = load_efficiency().accelerators["a100-sxm"].fit["cross_check"]
    assert e == pytest.approx(check["implied_gemm_e_max"], abs=0.002)
    assert check["rows"] == list(F.FIT_ROWS)


def test_fit_rows_within_3_percent(rows, curve, capsys):
    """Each S02 row's TFLOP/s per GPU is reproduced within 3% at the value S02 implies (compute + TP term)."""
    e = F.fit(rows, curve)
    errors = {r: F.predict_fit_row(rows[r], curve=curve, e_max=e) / rows[r].tflops - 1 for r in F.FIT_ROWS}
    with capsys.disabled():
        print("\nS02 fit rows:", ", ".join(f"{r} {e:+.1%}" for r, e in errors.items()))
    assert max(abs(e) for e in errors.values()) < 0.03


def test_held_out_compute_only_not_slower_than_measured(rows, capsys):
    """SC'21 Table 1 (held out): compute-only throughput >= measured - 2% on every row; the
    table printed shows the room communication and pipeline bubbles have."""
    lines, bad = [], []
    for r in F.HELD_OUT_ROWS:
        row = rows[r]
        tf, plan = F.compute_only(row)
        bubble = (row.pp - 1) / (plan.n_microbatches * row.vpp)
        room = 1 - row.tflops / tf
        lines.append(f"  {r} h={row.hidden:5d} tp={row.tp} pp={row.pp:2d} measured {row.tflops:5.1f} "
                     f"compute-only {tf:5.1f} room {room:+6.1%} bubble {bubble:5.1%}")
        if room < -0.02:
            bad.append(r)
    with capsys.disabled():
        print("\nheld-out SC'21 rows, compute model alone (TFLOP/s per GPU, paper FLOP count):")
        print("\n".join(lines))
    assert not bad, f"compute-only slower than measured: {bad}"


def test_command_prints_per_row_errors(capsys):
    """``python -m oassim.workload.fit`` runs on the test copies and prints every row."""
    assert F.main(["--training", str(TRAIN), "--collectives", str(COLL)]) == 0
    out = capsys.readouterr().out
    for r in F.FIT_ROWS + F.HELD_OUT_ROWS:
        assert r in out
    assert "S02 implies a100-sxm gemm_e_max" in out and "MAMF" in out


def test_copied_rows_match_shipped_calibration():
    """tests/data rows are verbatim copies of the shipped oassim/data/calibration/training.csv."""
    shared = {r["row_id"]: r for r in csv.DictReader(open(SHIPPED))}
    for r in csv.DictReader(open(TRAIN)):
        assert r == shared[r["row_id"]]


def test_default_data_is_the_shipped_tables_and_fits_the_same(capsys):
    """With no paths the fit reads the shipped tables and prints what it prints on the copies."""
    assert F.default_data() == (SHIPPED, calibration_csv("collectives"))
    assert F.main([]) == 0
    shipped = capsys.readouterr().out.splitlines()
    assert F.main(["--training", str(TRAIN), "--collectives", str(COLL)]) == 0
    copies = capsys.readouterr().out.splitlines()
    assert shipped[0].startswith("data: ") and shipped[1:] == copies[1:]
