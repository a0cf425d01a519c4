"""Benchmark of sweep throughput: the 1,000-point bench sweep on local workers, and the
inline / local / Dask per-point overhead (``python -m oassim.bench sweep``; figures printed,
never asserted on wall time)."""

from __future__ import annotations

import argparse
import resource
import time

from oassim.bench import child

__all__ = ["bench_sweep_once", "SWEEP_BENCH"]


SWEEP_BENCH = "experiments/sweeps/bench-1000.yaml"
"""The benchmark sweep (repository-relative): 1,000 random Megatron GPT jobs on 256-4,096 GPUs."""


def bench_sweep_once(mode: str, sweep: str, out: str, workers: int, points: int) -> dict:
    """One sweep run in this process, into the empty store ``out``: ``mode`` is ``inline`` (no
    pool: the compute baseline), ``local`` (a pool of ``workers`` processes) or ``dask`` (a
    ``distributed.LocalCluster`` of ``workers`` single-thread processes on loopback, started
    first and timed apart). Only the first ``points`` points of the sweep run (0: all).
    Reports wall time (pool start-up and Client connection included), points/s, compute per
    point (mean of the rows' ``wall_s``), and peak memory of this process and of each worker
    (the rows' ``worker_peak_rss_MB``)."""
    from dataclasses import replace

    from oassim.experiments.executors import run_sweep
    from oassim.experiments.store import load_results
    from oassim.experiments.sweep import expand_sweep

    plan = expand_sweep(sweep)
    if points:
        plan = replace(plan, points=plan.points[:points])
    cluster, scheduler, start_s = None, None, 0.0
    if mode == "dask":
        from distributed import LocalCluster

        t = time.perf_counter()
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                               dashboard_address=None)
        scheduler, start_s = cluster.scheduler_address, time.perf_counter() - t
    try:
        t0 = time.perf_counter()
        rep = run_sweep(plan, out, workers=0 if mode == "inline" else (workers if mode == "local" else None),
                        scheduler=scheduler, quiet=True)
        wall = time.perf_counter() - t0
    finally:
        if cluster is not None:
            cluster.close()
    frame = load_results(out)
    peaks = frame.groupby("worker")["worker_peak_rss_MB"].max()
    ok = frame["status"] == "ok"
    slots = 1 if mode == "inline" else workers
    return {
        "mode": mode, "workers": slots, "points": rep.points, "ok": int(ok.sum()), "failed": rep.failed,
        "wall_s": wall, "points_per_s": rep.points / wall, "cluster_start_s": start_s,
        "compute_per_point_s": float(frame["wall_s"].mean()),
        "compute_per_ok_point_s": float(frame.loc[ok, "wall_s"].mean()),
        "build_share": float(frame.loc[ok, "wall_build_s"].sum() / frame.loc[ok, "wall_s"].sum()),
        "slot_s_per_point": wall * slots / rep.points,
        "parent_peak_MB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "worker_peak_MB_max": float(peaks.max()), "worker_peak_MB_sum": float(peaks.sum()),
        "worker_processes": int(len(peaks)),
    }


def _sweep(args: argparse.Namespace) -> int:
    import shutil
    import tempfile
    from pathlib import Path

    sweep = args.sweep or str(Path(__file__).resolve().parents[1] / SWEEP_BENCH)
    root = Path(tempfile.mkdtemp(prefix="oassim-bench-sweep-"))
    cases = [("local", args.points)] if args.points else []
    if args.overhead_points:
        cases += [(m, args.overhead_points) for m in ("inline", "local", "dask")]
    rows = []
    try:
        for i, (mode, n) in enumerate(cases):
            rc, row = child(["_sweep_one", mode, sweep, str(root / f"{i}-{mode}"), str(args.workers), str(n)])
            if row is None:
                return rc
            rows.append(row)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"sweep {Path(sweep).name}, analytical network, fresh process per case; compute/pt = mean point wall "
          "time in its worker; slot/pt = wall x workers / points; overhead/pt = slot/pt - compute/pt")
    print(f"{'mode':<7} {'workers':>7} {'points':>6} {'failed':>6} {'wall s':>7} {'points/s':>8} {'compute/pt ms':>13} "
          f"{'slot/pt ms':>10} {'overhead/pt ms':>14} {'parent MB':>9} {'worker MB max':>13} {'workers MB sum':>14}")
    for r in rows:
        print(f"{r['mode']:<7} {r['workers']:>7} {r['points']:>6,} {r['failed']:>6,} {r['wall_s']:>7.1f} "
              f"{r['points_per_s']:>8.2f} {r['compute_per_point_s'] * 1e3:>13.1f} {r['slot_s_per_point'] * 1e3:>10.1f} "
              f"{(r['slot_s_per_point'] - r['compute_per_point_s']) * 1e3:>14.1f} {r['parent_peak_MB']:>9.0f} "
              f"{r['worker_peak_MB_max']:>13.0f} {r['worker_peak_MB_sum']:>14.0f}")
    full = rows[0] if args.points else None
    if full is not None:
        print(f"full sweep: {full['points']:,} points ({full['ok']:,} ok, {full['failed']:,} stored as errors"
              f") in {full['wall_s']:.1f} s on {full['workers']} local workers, {full['points_per_s']:.2f} points/s; "
              f"peak memory {full['parent_peak_MB']:.0f} MB parent + {full['worker_peak_MB_sum']:.0f} MB workers; "
              f"cluster build is {full['build_share']:.0%} of the ok points' time")
    if args.overhead_points:
        loc, dask = rows[-2], rows[-1]
        extra = ((dask["slot_s_per_point"] - dask["compute_per_point_s"])
                 - (loc["slot_s_per_point"] - loc["compute_per_point_s"]))
        print(f"Dask vs local on the same {loc['points']} points: wall {dask['wall_s']:.1f} s vs {loc['wall_s']:.1f} s "
              f"({(dask['slot_s_per_point'] - loc['slot_s_per_point']) * 1e3:+.1f} ms per point per worker, of which "
              f"{extra * 1e3:+.1f} ms dispatch overhead and the rest slower compute in the workers); the "
              f"LocalCluster's own start-up, {dask['cluster_start_s']:.1f} s, not counted")
    return 0
