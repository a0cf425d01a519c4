"""Validation against published 8-GPU all-reduce curves (fails above 15% from 64 MiB, 40% below).

The tuning file's ``nccl-2.18`` profile was fitted on rows C0017, C0019, C0021, C0023 (A100)
and C0041, C0048 (H100) of ``tests/data/collectives_allreduce_8gpu.csv`` (copied from
``oassim/data/calibration/collectives.csv``, calibration source S19). Every row >= 64 MiB of the A100, H100 and
H200 curves must be predicted within 15% busbw, held-out rows included, and a refit must
reproduce the file's values (the fit is reproducible). The per-row table is printed.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from oassim.collectives import calibrate as cal
from oassim.collectives.tuning import load_tuning, load_tuning_file
from oassim.data import calibration_csv
from oassim.errors import SpecError

DATA = Path(__file__).resolve().parents[1] / "data" / "collectives_allreduce_8gpu.csv"
SHIPPED = calibration_csv("collectives")
TOLERANCE = 0.15


@pytest.fixture(scope="module")
def rows():
    return cal.load_rows(DATA)


def test_tuning_profile_within_15_percent(rows, capsys):
    """Every row, fitted or held out, and the B1-1 NVLink 4 ring figure: |busbw error| <= 15%."""
    t = load_tuning("nccl-2.18")
    errors = cal.evaluate(t, rows) + [cal.reference_check(t)]
    with capsys.disabled():
        print("\n8-GPU all-reduce busbw, tuning profile nccl-2.18 (analytical network)")
        print(cal.error_table(errors))
    bad = [f"{e.row.row_id} {e.error:+.1%}" for e in errors if abs(e.error) > TOLERANCE]
    assert not bad, f"rows beyond {TOLERANCE:.0%}: {bad}"
    held_out = [e for e in errors if e.role == "check"]
    assert len(held_out) >= 18


def test_refit_reproduces_the_tuning_file(rows):
    """Refitting on FIT_ROWS gives the file's values to the digits it records."""
    fit = cal.fit(rows)
    prof = load_tuning_file().profiles["nccl-2.18"]
    assert fit.launch_overhead_us == pytest.approx(prof.launch_overhead_us, abs=0.05)
    assert fit.step_overhead_us == pytest.approx(prof.step_overhead_us, abs=0.05)
    assert fit.in_network_efficiency == pytest.approx(prof.in_network_efficiency, abs=5e-4)
    nvlink = [f for f in prof.link_efficiency if "nvlink3" in f.technologies][0]
    assert set(cal.NVLINK) <= set(nvlink.technologies)
    assert fit.nvlink_efficiency == pytest.approx(nvlink.value, abs=5e-4)
    assert tuple(prof.fit.fit_rows) == cal.FIT_ROWS + cal.LL_FIT_ROWS
    assert not set(prof.fit.fit_rows) & set(prof.fit.check_rows)
    assert set(prof.fit.fit_rows) | set(prof.fit.check_rows) == set(cal.ROWS) | set(cal.SMALL_ROWS) | {"B1-1"}


SMALL_TOLERANCE = 0.40


def test_small_messages_low_latency_protocol(rows, capsys):
    """1 KiB - 32 MiB (LL protocol fitted on 8 rows, 40 held out incl. all of H200): every row
    within 40% busbw, the LL refit reproduces the file, and LL is what runs below 64 KiB."""
    small = cal.load_rows(DATA, cal.SMALL_ROWS)
    base = cal.fit(rows)
    refit = cal.fit_low_latency(base, small)
    ll = load_tuning_file().profiles["nccl-2.18"].low_latency
    assert refit.ll_launch_overhead_us == pytest.approx(ll.launch_overhead_us, abs=0.01)
    assert refit.ll_step_overhead_us == pytest.approx(ll.step_overhead_us, abs=0.01)
    errors = cal.evaluate(load_tuning("nccl-2.18"), small, cal.LL_FIT_ROWS)
    with capsys.disabled():
        print("\n8-GPU all-reduce busbw below 64 MiB (algorithm/protocol chosen by auto)")
        print(cal.error_table(errors))
    bad = [f"{e.row.row_id} {e.error:+.1%}" for e in errors if abs(e.error) > SMALL_TOLERANCE]
    assert not bad, f"rows beyond {SMALL_TOLERANCE:.0%}: {bad}"
    assert all(e.algorithm.endswith("/LL") for e in errors if e.row.size_bytes < 64 * 1024)


def test_another_fit_subset_also_holds_out(rows):
    """The model, not the particular fit rows, carries the result: fitted on a different
    subset (A100 64M/512M/2G/8G, H100 128M and 4G) every other row is still within 15%;
    fewer than four fit rows is refused. (A subset holding the A100 128 MiB dip, C0018,
    pulls the overheads up and misses C0017 by 16%: the one known fragility.)"""
    other = ("C0017", "C0020", "C0022", "C0024", "C0042", "C0047")
    fit = cal.fit(rows, fit_ids=other)
    errors = cal.evaluate(fit.tuning(), rows, fit_ids=other)
    bad = [f"{e.row.row_id} {e.error:+.1%}" for e in errors if e.role == "check" and abs(e.error) > TOLERANCE]
    assert not bad
    with pytest.raises(SpecError):
        cal.fit(rows, fit_ids=("C0017", "C0019"))


def test_flow_model_gives_the_same_calibration(rows):
    """On one node no link is shared: the flow model's busbw equals the analytical one (1%)."""
    t = load_tuning("nccl-2.18")
    some = [r for r in rows if r.row_id in ("C0017", "C0041", "C0072")]
    a = cal.evaluate(t, some, network="analytical")
    f = cal.evaluate(t, some, network="flow")
    for x, y in zip(a, f):
        assert y.predicted_GBps == pytest.approx(x.predicted_GBps, rel=0.01)


def test_copied_rows_match_shipped_table():
    """tests/data rows are verbatim copies of the shipped oassim/data/calibration/collectives.csv."""
    with open(SHIPPED, newline="") as fh:
        shared = {r["row_id"]: r for r in csv.DictReader(fh)}
    with open(DATA, newline="") as fh:
        for r in csv.DictReader(fh):
            for k, v in r.items():
                assert shared[r["row_id"]][k] == v, (r["row_id"], k)


def test_calibrate_command_prints_the_table(capsys):
    """`python -m oassim.collectives.calibrate` refits and prints per-row errors."""
    assert cal.main(["--data", str(DATA)]) == 0
    out = capsys.readouterr().out
    assert "launch_overhead_us" in out and "C0048" in out and "worst held-out error" in out


def test_default_rows_come_from_the_shipped_table():
    """Without --data the fit reads the shipped table, whose rows equal the tests/data copies."""
    assert cal.default_data() == SHIPPED
    assert cal.load_rows() == cal.load_rows(DATA)
