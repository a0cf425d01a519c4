"""Validation against published all-reduce figures (8-GPU curves S19; systems S21, S22).

The tuning file's ``nccl-2.18`` profile was fitted on rows C0017, C0019, C0021, C0023 (A100)
and C0041, C0048 (H100) of the shipped ``oassim/data/calibration/collectives.csv`` (source
S19; ``tests/data/collectives_allreduce_8gpu.csv`` is a verbatim subset). Every row >= 64 MiB
of the A100, H100 and H200 curves must be predicted within 15% busbw (10% for all but one
named row), held-out rows included, and a refit must reproduce the file's values. The S21 /
S22 system rows (NVLS on 5-8 H100, NVLink 5 on 8 and 72 GPUs, RDMA NICs, multi-node DGX) are
held at 10%; the rows whose source reports an underperforming or untuned system are printed
only. The per-row tables are printed.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from oassim.collectives import calibrate as cal
from oassim.collectives import calibrate_systems as cs
from oassim.collectives.tuning import load_tuning, load_tuning_file
from oassim.data import calibration_csv
from oassim.errors import SpecError

DATA = calibration_csv("collectives")
COPY = Path(__file__).resolve().parents[1] / "data" / "collectives_allreduce_8gpu.csv"
TOLERANCE = 0.15
LARGE, SMALL = 0.10, 0.25  # the issue's tolerances: >= 64 MiB, 1-32 MiB
#: rows beyond those, with why (each still bounded by the looser tolerance above)
KNOWN_MISSES = {
    # T(64M) and T(256M) fix any fixed-cost + bytes/rate curve; through them 128 MiB gives
    # 195 GB/s (+12%): the measured 174.2 is a dip no latency-bandwidth model reaches
    "C0018": "A100 128 MiB: a dip in the measured curve",
    # NCCL 2.20.5 (H200) runs NVLS / LL128 at 4-8 MiB; no LL128 protocol is modelled
    "C0061": "H200 4 MiB: LL128 not modelled", "C0062": "H200 8 MiB: LL128 not modelled",
}


@pytest.fixture(scope="module")
def rows():
    return cal.load_rows(DATA)


def test_tuning_profile_within_15_percent(rows, capsys):
    """Every row, fitted or held out, and the S21 NVLink 4 ring figure (C0208): |busbw error| <= 15%."""
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
    every = set(cal.ROWS) | set(cal.SMALL_ROWS) | {cal.REFERENCE_RING_NVLINK4[0]}
    assert set(prof.fit.fit_rows) | set(prof.fit.check_rows) == every


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


def test_copied_rows_match_the_shipped_table():
    """tests/data rows are verbatim copies of the shipped calibration table."""
    with open(DATA, newline="") as fh:
        shipped = {r["row_id"]: r for r in csv.DictReader(fh)}
    with open(COPY, newline="") as fh:
        for r in csv.DictReader(fh):
            for k, v in r.items():
                assert shipped[r["row_id"]][k] == v, (r["row_id"], k)


def test_s19_rows_within_the_issue_tolerances(rows):
    """Every S19 row >= 64 MiB within 10% and every 1-32 MiB row within 25%, but for the
    named misses (each within 15% / 30%)."""
    t = load_tuning("nccl-2.18")
    small = [r for r in cal.load_rows(DATA, cal.SMALL_ROWS) if r.size_bytes >= 2**20]
    errors = cal.evaluate(t, rows + small, cal.FIT_ROWS + cal.LL_FIT_ROWS)
    bad = {}
    for e in errors:
        tol = LARGE if e.row.size_bytes >= 64 * 2**20 else SMALL
        if abs(e.error) > tol:
            bad[e.row.row_id] = e.error
    assert set(bad) <= set(KNOWN_MISSES), {k: f"{v:+.1%}" for k, v in bad.items() if k not in KNOWN_MISSES}
    assert all(abs(v) <= 0.30 for v in bad.values())


@pytest.fixture(scope="module")
def system_checks():
    return cs.check_rows(load_tuning("nccl-2.18"))


def test_system_rows_within_10_percent(system_checks, capsys):
    """Every held S21/S22 row (all >= 4 GiB or unsized peaks) within 10% busbw on its
    matching cluster; the table, not-held rows included, is printed."""
    with capsys.disabled():
        print("\npublished system rows (S21, S22), tuning profile nccl-2.18")
        print(cs.system_table(system_checks))
    held = [c for c in system_checks if c.held]
    assert len(held) >= 25
    bad = [f"{c.row_id} {c.error:+.1%}" for c in held if abs(c.error) > LARGE]
    assert not bad, bad
    assert any(not c.held and "nccl#2409" in c.why_not for c in system_checks)


def test_nvls_saturates_as_published(system_checks):
    """NVLS busbw grows 420 -> 480 GB/s from 5 to 8 H100 (nccl#1455) and is ~850 on both 8
    Blackwell GPUs and a 72-GPU NVL72 rack (S21), each within 3%; (n+1)/n-style growth would
    give 1,190 GB/s at 72."""
    by = {c.row_id: c for c in system_checks}
    for rid in ("C0231", "C0232", "C0233", "C0234", "C0221", "C0227", "C0239"):
        assert abs(by[rid].error) <= 0.03, (rid, by[rid].predicted_GBps)
    assert by["C0227"].predicted_GBps == pytest.approx(by["C0221"].predicted_GBps, rel=0.01)


def test_rdma_nic_rate_is_the_published_one(system_checks):
    """A 400G NDR NIC moves 46-48 GB/s of all-reduce busbw (S22, nccl-tests#290; S21 48)."""
    nic = {c.row_id: c for c in system_checks}["C0212"]
    assert 46.0 <= nic.predicted_GBps <= 48.0


def test_leave_one_out_holds_each_hardware_row():
    """The NVSwitch gen4 rate and the RDMA NIC fraction refitted without each of their rows
    predict that row within 5%."""
    loo = cs.leave_one_out(load_tuning("nccl-2.18"))
    assert {p for p, *_ in loo} == {"nvswitch-gen4 rate_GBps", "RDMA NIC fraction"}
    assert all(abs(err) <= 0.05 for *_, err in loo), loo


def test_calibrate_command_prints_the_table(capsys):
    """`python -m oassim.collectives.calibrate` refits and prints per-row errors."""
    assert cal.main(["--data", str(DATA)]) == 0
    out = capsys.readouterr().out
    assert "launch_overhead_us" in out and "C0048" in out and "worst held-out error" in out
    assert "C0227" in out and "not held: nccl#2409" in out and "leave-one-out" in out


def test_default_rows_come_from_the_shipped_table():
    """Without --data the fit reads the shipped table."""
    assert cal.default_data() == DATA
    assert cal.load_rows() == cal.load_rows(DATA)


def test_expert_parallel_all_to_all_rows(system_checks, capsys):
    """S24 (DeepEP) expert-parallel all-to-all rows, each on a cluster matching its system and
    in the row's own metric: every held row within 10% (all are >= 64 MiB); rows whose figure
    cannot be a link rate, or whose kernel the GPU limits, are printed, not held."""
    a2a = [c for c in system_checks if c.op == "all_to_all"]
    with capsys.disabled():
        print("\nexpert-parallel all-to-all rows (S24), tuning profile nccl-2.18")
        print(cs.system_table(a2a))
    held = [c for c in a2a if c.held]
    assert len(held) >= 10 and all(c.size_bytes >= 64 * 2**20 for c in held)
    bad = [f"{c.row_id} {c.error:+.1%}" for c in held if abs(c.error) > LARGE]
    assert not bad, bad
    assert any(not c.held and "line rate" in c.why_not for c in a2a)
