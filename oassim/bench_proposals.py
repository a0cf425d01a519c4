"""Benchmark of OAS-Bench 2.0 on the example proposals (``python -m oassim.bench proposals
[--quick] [FILE ...]``; figures printed, never asserted on wall time)."""

from __future__ import annotations

import argparse
import time

from oassim.bench import _peak_rss_GB

__all__ = ["bench_proposals"]


def bench_proposals(argv: list[str]) -> int:
    """``proposals [--quick] [FILE ...]``: OAS-Bench 2.0 (rules, collectives, layout search) on 6 example
    proposals by default; prints each proposal's and the whole suite's wall time (target < 10 min, 2 cores)."""
    from pathlib import Path

    from oassim.experiments.proposal_report import evaluate_proposals
    p = argparse.ArgumentParser(prog="python -m oassim.bench proposals")
    p.add_argument("files", nargs="*")
    p.add_argument("--quick", action="store_true", help="the quick profile (smaller clusters; a smoke test)")
    args = p.parse_args(argv)
    six = ("nvlink5", "nvl72-class", "cloudmatrix-class", "ub-mesh-class", "tpu-class", "ualink-multivendor")
    files = args.files or [str(Path(__file__).resolve().parents[1] / f"experiments/proposals/{n}.yaml") for n in six]
    t0 = time.perf_counter()
    ev = evaluate_proposals(files, lambda m: print(f"[{time.perf_counter() - t0:7.1f} s] {m}", flush=True),
                            suite="quick" if args.quick else "full")
    wall = time.perf_counter() - t0
    for r in ev.results:
        w = (r.score or {}).get("wall_s", {})
        print(f"{r.name:<22} build {r.wall_s:6.1f} s, collectives {w.get('collectives', 0):6.1f} s, training "
              f"{w.get('training', 0):6.1f} s")
    print(f"OAS-Bench 2.0 ({ev.provenance['suite']}) on {len(ev.results)} proposals: {wall:.0f} s "
          f"({wall / 60:.1f} min), peak memory {_peak_rss_GB():.1f} GB")
    return 0
