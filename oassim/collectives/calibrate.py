"""Fit the collective tuning on published nccl-tests curves and check it on held-out rows.

    python -m oassim.collectives.calibrate [--data CSV] [--network analytical|flow]

What is fitted (docs/architecture.md: efficiency parameters belong to the hardware and framework
generation, and a fit tested on its own rows proves nothing). Four numbers of the
``nccl-2.18`` profile, from 8-GPU all-reduce bus bandwidth at sizes >= 64 MiB
(``oassim/data/calibration/collectives.csv``, calibration source S19, NCCL 2.18.5):

- ``nvlink`` achievable fraction, one value for NVLink 3/4/5 (same NCCL protocol);
- ``in_network_efficiency`` (NVLS);
- ``launch_overhead_us`` and ``step_overhead_us`` (NCCL 2.18 generation).

Fit rows: :data:`FIT_ROWS` (A100 at 64M, 256M, 1G, 4G; H100 at 64M and 8G). Every other row
of :data:`ROWS` is held out for checking, including the H200 curve (same NVLink 4 /
NVSwitch gen3 fabric, NCCL 2.20.5), plus the NVIDIA figure for NVLink 4 *ring* all-reduce,
370 GB/s (calibration row C0208, source S21), which no fitted row constrains.

Then every published system row of :mod:`~oassim.collectives.calibrate_systems` (calibration
sources S21 GTC slides, S22 NCCL issues: NVLS on 5-8 H100, NVLink 5 on 8 and 72 GPUs, RDMA NICs,
multi-node DGX; S24 DeepEP expert-parallel all-to-all) is printed per row on a cluster matching
its system, with the leave-one-out refits of
the NVSwitch gen4 reduction rate and the RDMA NIC fraction.

How: each row is costed by the engine (8 ranks = one node of the preset, the algorithm the
source states or NCCL uses there: ring on A100, NVLS = ``in_network`` on H100/H200). The
predicted time is exactly linear in (launch, step, 1/eta_link, 1/(eta_link * eta_inr)) on the
analytical model, so the coefficients are read off the engine by unit perturbations and the
relative time error is minimised by linear least squares: reproducible, no optimiser. The
errors printed are those of the engine run with the fitted values, not of the linear surrogate.

Small messages (NCCL's LL protocol, :data:`SMALL_ROWS`: the same three curves from 1 KiB to
32 MiB). Two more numbers, ``low_latency.launch_overhead_us`` and ``step_overhead_us``, are
fitted on :data:`LL_FIT_ROWS` (A100 and H100 at 4 KiB, 64 KiB, 1 MiB and 16 MiB; every other
small row and all of H200 held out); the bandwidth factor is not fitted (0.5: LL moves 4 data
bytes per 8-byte word). The small rows are costed as NCCL runs them on one node: ring (the
source's "NVLS" label for H100/H200 at these sizes is not what NCCL 2.18's tuner picks: NVLS
has no LL protocol), and the engine takes whichever of Simple and LL is faster. Under LL alone
the time is exactly ``launch + A + step * B``, so the fit is again a linear least squares.
"""

from __future__ import annotations

import argparse
import csv
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from oassim.collectives.engine import CollectiveEngine
from oassim.collectives.ops import CollectiveRequest, busbw_factor, format_size
from oassim.collectives.tuning import Tuning
from oassim.data import calibration_csv
from oassim.errors import SpecError

__all__ = [
    "ROWS", "FIT_ROWS", "SMALL_ROWS", "LL_FIT_ROWS", "LL_BANDWIDTH_FACTOR", "SYSTEMS", "NVLINK", "Row", "RowError",
    "FitResult", "default_data", "load_rows", "run_row", "predict", "fit", "fit_low_latency", "evaluate",
    "error_table", "main",
]

#: Rows of collectives.csv this calibration uses (8-GPU all-reduce, >= 64 MiB).
ROWS: tuple[str, ...] = tuple(f"C{i:04d}" for i in [*range(17, 25), *range(41, 49), *range(65, 73)])
#: Rows the parameters are fitted on; all other ROWS are held out.
FIT_ROWS: tuple[str, ...] = ("C0017", "C0019", "C0021", "C0023", "C0041", "C0048")
#: Small-message rows (1 KiB - 32 MiB) of the same curves, for the LL protocol.
SMALL_ROWS: tuple[str, ...] = tuple(f"C{i:04d}" for i in [*range(1, 17), *range(25, 41), *range(49, 65)])
#: Small rows the LL overheads are fitted on; all other SMALL_ROWS are held out.
LL_FIT_ROWS: tuple[str, ...] = ("C0003", "C0007", "C0011", "C0015", "C0027", "C0031", "C0035", "C0039")
#: NCCL LL: 4 data bytes with a 4-byte flag per 8-byte store (not fitted)
LL_BANDWIDTH_FACTOR = 0.5
#: hardware prefix -> (cluster preset, algorithm NCCL runs there)
SYSTEMS: dict[str, tuple[str, str]] = {
    "A100": ("dgx-a100-superpod", "ring"),
    "H100": ("dgx-h100-superpod", "in_network"),
    "H200": ("dgx-h100-superpod", "in_network"),
}
#: link technologies sharing the fitted NVLink fraction
NVLINK: tuple[str, ...] = ("nvlink3", "nvlink4", "nvlink5")
#: calibration row C0208 (source S21, NVIDIA GTC slide): NVLink 4 ring all-reduce busbw (8 GPUs, large messages)
REFERENCE_RING_NVLINK4 = ("C0208", "H100", "ring", 8 * 2**30, 370.0)


@dataclass(frozen=True)
class Row:
    """One measured point: id, source, hardware, bytes, busbw (GB/s), NCCL version."""

    row_id: str
    source_id: str
    hardware: str
    size_bytes: int
    busbw_GBps: float
    nccl_version: str

    @property
    def system(self) -> tuple[str, str]:
        for prefix, sys_ in SYSTEMS.items():
            if self.hardware.startswith(prefix):
                return sys_
        raise KeyError(self.hardware)


@dataclass(frozen=True)
class RowError:
    """Prediction for one row: predicted busbw (GB/s), relative error, fitted or held out."""

    row: Row
    role: str
    algorithm: str
    predicted_GBps: float

    @property
    def error(self) -> float:
        return self.predicted_GBps / self.row.busbw_GBps - 1.0


@dataclass(frozen=True)
class FitResult:
    """Fitted parameters (in tuning-file units) and the tuning they make."""

    launch_overhead_us: float
    step_overhead_us: float
    nvlink_efficiency: float
    in_network_efficiency: float
    ll_launch_overhead_us: float | None = None
    ll_step_overhead_us: float | None = None

    def tuning(self, name: str = "nccl-2.18") -> Tuning:
        ll = None if self.ll_launch_overhead_us is None else (self.ll_launch_overhead_us, self.ll_step_overhead_us)
        return make_tuning(self.launch_overhead_us, self.step_overhead_us, self.nvlink_efficiency,
                           self.in_network_efficiency, name, ll)


def make_tuning(launch_us: float, step_us: float, eta_link: float, eta_inr: float, name: str = "fit",
                ll_us: tuple[float, float] | None = None) -> Tuning:
    """A tuning with the calibrated parameters (others default); ``ll_us`` = (launch, step) of
    the LL protocol, µs."""
    from oassim.collectives.tuning import load_tuning

    low = None if ll_us is None else (ll_us[0] * 1e-6, ll_us[1] * 1e-6, LL_BANDWIDTH_FACTOR)
    # auto chooses among the library's algorithms, as the profile being refitted lists them
    return Tuning(name, launch_us * 1e-6, step_us * 1e-6, eta_inr, {t: eta_link for t in NVLINK}, 1.0,
                  auto_algorithms=load_tuning().auto_algorithms, low_latency=low)


def default_data() -> Path:
    """The shipped calibration table (``oassim/data/calibration/collectives.csv``)."""
    return calibration_csv("collectives")


def load_rows(path: str | Path | None = None, ids: tuple[str, ...] = ROWS) -> list[Row]:
    """The calibration rows ``ids`` from a collectives.csv-format file."""
    p = Path(path) if path is not None else default_data()
    with open(p, newline="", encoding="utf-8") as fh:
        recs = {r["row_id"]: r for r in csv.DictReader(fh)}
    missing = [i for i in ids if i not in recs]
    if missing:
        raise SpecError(f"rows {', '.join(missing)} not in the file", source=str(p))
    return [Row(i, recs[i]["source_id"], recs[i]["hardware"], int(float(recs[i]["msg_size_bytes"])),
                float(recs[i]["busbw_GBps"]), recs[i].get("nccl_version", "")) for i in ids]


@lru_cache(maxsize=None)
def _fabric(preset: str):
    from oassim.topology.cluster import build_fabric

    return build_fabric(preset, 8)


def run_row(tuning: Tuning, preset: str, algorithm: str, size: float, network: str = "analytical"):
    """The engine's CollectiveResult for an all-reduce on one 8-GPU node of ``preset``."""
    engine = CollectiveEngine(_fabric(preset), network, tuning)
    req = CollectiveRequest("all_reduce", size, np.arange(8)[None, :], algorithm)
    return engine.run(req, memo=False)


def predict(tuning: Tuning, preset: str, algorithm: str, size: float, network: str = "analytical") -> float:
    """Predicted all-reduce time on one 8-GPU node of ``preset``, s."""
    return run_row(tuning, preset, algorithm, size, network).time_s


def _measured_time(r: Row) -> float:
    return r.size_bytes * busbw_factor("all_reduce", 8) / (r.busbw_GBps * 1e9)


def fit(rows: list[Row], fit_ids: tuple[str, ...] = FIT_ROWS, network: str = "analytical") -> FitResult:
    """Least-squares fit of the four parameters on ``fit_ids`` (relative time error)."""
    use = [r for r in rows if r.row_id in fit_ids]
    if len(use) < 4:
        raise SpecError(f"need at least 4 fit rows, got {len(use)}")
    # unit perturbations of x = [launch_s, step_s, 1/eta_link, 1/(eta_link*eta_inr)]
    base = (0.0, 0.0, 1.0, 1.0)
    pert = [(1e-4, 0.0, 1.0, 1.0), (0.0, 1e-5, 1.0, 1.0), (0.0, 0.0, 2.0, 1.0), (0.0, 0.0, 1.0, 2.0)]
    scale = np.array([1e-4, 1e-5, 1.0, 1.0])

    def t(x, r):
        launch, step, u, v = x
        preset, algo = r.system
        return predict(make_tuning(launch * 1e6, step * 1e6, 1 / u, u / v), preset, algo, r.size_bytes, network)

    A, y = [], []
    for r in use:
        t0 = t(base, r)
        coef = [(t(p, r) - t0) / s for p, s in zip(pert, scale)]
        # T = t0 + sum_i coef_i (x_i - base_i); base has u = v = 1
        tm = _measured_time(r)
        A.append(np.array(coef) / tm)
        y.append(1.0 - (t0 - coef[2] - coef[3]) / tm)
    x, *_ = np.linalg.lstsq(np.array(A), np.array(y), rcond=None)
    launch, step, u, v = x
    if launch < 0 or step < 0 or u < 1 or v < u:
        raise SpecError(f"fit left the physical range (launch {launch:.3g} s, step {step:.3g} s, "
                        f"eta_link {1 / u:.3g}, eta_inr {u / v:.3g})")
    return FitResult(launch * 1e6, step * 1e6, 1 / u, u / v)


def fit_low_latency(base: FitResult, rows: list[Row], fit_ids: tuple[str, ...] = LL_FIT_ROWS,
                    network: str = "analytical") -> FitResult:
    """``base`` plus the LL launch and step overheads, least squares on ``fit_ids`` (ring)."""
    use = [r for r in rows if r.row_id in fit_ids]
    if len(use) < 2:
        raise SpecError(f"need at least 2 small-message fit rows, got {len(use)}")

    def t_ll(launch_us: float, step_us: float, r: Row) -> float:
        # Simple made prohibitively slow, so the engine's time is the LL time
        tun = make_tuning(1e9, base.step_overhead_us, base.nvlink_efficiency, base.in_network_efficiency,
                          ll_us=(launch_us, step_us))
        return predict(tun, r.system[0], "ring", r.size_bytes, network)

    A, y = [], []
    for r in use:
        t0 = t_ll(0.0, 0.0, r)
        a, b = t_ll(1.0, 0.0, r) - t0, t_ll(0.0, 1.0, r) - t0  # s per µs of launch, of step
        tm = _measured_time(r)
        A.append([a / tm, b / tm])
        y.append(1.0 - t0 / tm)
    (launch, step), *_ = np.linalg.lstsq(np.array(A), np.array(y), rcond=None)
    if launch < 0 or step < 0:
        raise SpecError(f"LL fit left the physical range (launch {launch:.3g} us, step {step:.3g} us)")
    return FitResult(base.launch_overhead_us, base.step_overhead_us, base.nvlink_efficiency,
                     base.in_network_efficiency, float(launch), float(step))


def evaluate(tuning: Tuning, rows: list[Row], fit_ids: tuple[str, ...] = FIT_ROWS,
             network: str = "analytical") -> list[RowError]:
    """Engine prediction for every row with ``tuning`` (small rows: ``auto``, as NCCL's tuner
    picks algorithm and protocol per size)."""
    out = []
    for r in rows:
        preset, algo = r.system
        if r.row_id in SMALL_ROWS:
            algo = "auto"
        res = run_row(tuning, preset, algo, r.size_bytes, network)
        bus = r.size_bytes * busbw_factor("all_reduce", 8) / res.time_s / 1e9
        shown = res.algorithm + ("/LL" if res.protocol == "ll" else "")
        out.append(RowError(r, "fit" if r.row_id in fit_ids else "check", shown, bus))
    return out


def reference_check(tuning: Tuning, network: str = "analytical") -> RowError:
    """The held-out calibration row C0208 (source S21): NVLink 4 ring figure (370 GB/s at 8 GiB)."""
    src, hw, algo, size, bus = REFERENCE_RING_NVLINK4
    row = Row(src, "S21", hw + " (NVIDIA slide, ring)", size, bus, "")
    t = predict(tuning, SYSTEMS[hw][0], algo, size, network)
    return RowError(row, "check", algo, size * busbw_factor("all_reduce", 8) / t / 1e9)


def error_table(errors: list[RowError]) -> str:
    """A per-row error table (text)."""
    lines = [f"{'row':<6} {'role':<6} {'hardware':<32} {'size':>6} {'algorithm':<22} "
             f"{'measured':>9} {'model':>9} {'error':>8}"]
    for e in errors:
        r = e.row
        lines.append(f"{r.row_id:<6} {e.role:<6} {r.hardware[:32]:<32} {format_size(r.size_bytes):>6} "
                     f"{e.algorithm:<22} {r.busbw_GBps:>9.1f} {e.predicted_GBps:>9.1f} {e.error * 100:>+7.1f}%")
    worst = max((abs(e.error) for e in errors if e.role == "check"), default=0.0)
    lines.append(f"worst held-out error: {worst * 100:.1f}%   (busbw GB/s, nccl-tests definition)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m oassim.collectives.calibrate", description=__doc__.splitlines()[0])
    p.add_argument("--data", default=None,
                   help="collectives.csv-format file (default: oassim/data/calibration/collectives.csv)")
    p.add_argument("--network", default="analytical", choices=["analytical", "flow"])
    p.add_argument("--profile", default=None,
                   help="also evaluate this profile of the tuning file (default: the file's default)")
    args = p.parse_args(argv)
    try:
        rows = load_rows(args.data)
        small = load_rows(args.data, SMALL_ROWS)
        res = fit_low_latency(fit(rows, network=args.network), small, network=args.network)
        print("refit on rows " + ", ".join(FIT_ROWS) + " and " + ", ".join(LL_FIT_ROWS) + " (held out: the rest)")
        print(f"  launch_overhead_us    {res.launch_overhead_us:.2f}")
        print(f"  step_overhead_us      {res.step_overhead_us:.3f}")
        print(f"  nvlink efficiency     {res.nvlink_efficiency:.4f}   (nvlink3, nvlink4, nvlink5)")
        print(f"  in_network_efficiency {res.in_network_efficiency:.4f}")
        print(f"  low_latency.launch_overhead_us {res.ll_launch_overhead_us:.2f}")
        print(f"  low_latency.step_overhead_us   {res.ll_step_overhead_us:.3f}   (bandwidth factor "
              f"{LL_BANDWIDTH_FACTOR}, not fitted)\n")
        fit_ids = FIT_ROWS + LL_FIT_ROWS
        errs = (evaluate(res.tuning(), small + rows, fit_ids, args.network)
                + [reference_check(res.tuning(), args.network)])
        print(error_table(errs))
        from oassim.collectives.tuning import load_tuning

        t = load_tuning(args.profile)
        print(f"\nprofile '{t.name}' of the tuning file:")
        errs = evaluate(t, small + rows, fit_ids, args.network) + [reference_check(t, args.network)]
        print(error_table(errs))
        from oassim.collectives.calibrate_systems import check_rows, leave_one_out, system_table

        print(f"\npublished system rows (calibration sources S21, S22), profile '{t.name}', "
              "each on a matching cluster:")
        print(system_table(check_rows(t, args.data)))
        print("\nleave-one-out (hardware parameters refitted without the row, error on it):")
        for name, row, value, err in leave_one_out(t, args.data):
            print(f"  {name:<24} without {row}: {value:8.4g}   error on {row}: {err * 100:+.1f}%")
    except SpecError as exc:
        sys.stderr.write(f"calibrate: error: {exc}\n")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
