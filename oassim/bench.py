"""Benchmarks that print figures (time, peak memory); they never assert wall-clock times.

    python -m oassim.bench topology [--preset gb200-nvl72] [--accelerators 16384 131072]

Each size runs in a fresh subprocess so that its peak resident memory is its own.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

__all__ = ["main", "bench_topology_once"]


def _peak_rss_GB() -> float:
    # ru_maxrss is in KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def bench_topology_once(preset: str, accelerators: int, pairs: int, seed: int = 0) -> dict:
    """Build, freeze, make the router ready and route ``pairs`` random rank pairs; time each."""
    import numpy as np

    from oassim.topology.cluster import build_cluster
    from oassim.topology.cluster_spec import load_cluster
    from oassim.topology.fabric import freeze

    t0 = time.perf_counter()
    rc = load_cluster(preset, accelerators)
    g = build_cluster(rc)
    t1 = time.perf_counter()
    fabric = freeze(g)
    t2 = time.perf_counter()
    router = fabric.router
    fabric.link_ids(fabric.link_src[:1], fabric.link_dst[:1])  # builds the link index
    t3 = time.perf_counter()
    rng = np.random.default_rng(seed)
    src = rng.integers(0, fabric.n_accelerators, pairs)
    dst = rng.integers(0, fabric.n_accelerators, pairs)
    dst = np.where(dst == src, (dst + 1) % fabric.n_accelerators, dst)
    t4 = time.perf_counter()
    paths = fabric.route_ranks(src, dst)
    t5 = time.perf_counter()
    del router
    return {
        "preset": preset,
        "accelerators": fabric.n_accelerators,
        "nodes": fabric.n_nodes,
        "links": fabric.n_links,
        "build_s": t1 - t0,
        "freeze_s": t2 - t1,
        "router_ready_s": t3 - t2,
        "total_ready_s": t3 - t0,
        "route_pairs": pairs,
        "route_s": t5 - t4,
        "mean_hops": float(paths.hops.mean()),
        "peak_rss_GB": _peak_rss_GB(),
    }


def _topology(args: argparse.Namespace) -> int:
    rows = []
    for n in args.accelerators:
        cmd = [sys.executable, "-m", "oassim.bench", "_topology_one", args.preset, str(n), str(args.pairs)]
        out = subprocess.run(cmd, capture_output=True, text=True)
        if out.returncode != 0:
            sys.stderr.write(out.stderr)
            return out.returncode
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    hdr = f"{'preset':<18} {'accel':>8} {'nodes':>9} {'links':>10} {'build s':>8} {'freeze s':>9} {'router s':>9} {'ready s':>8} {'route s':>8} {'pairs':>8} {'peak GB':>8}"
    print(hdr)
    for r in rows:
        print(
            f"{r['preset']:<18} {r['accelerators']:>8,} {r['nodes']:>9,} {r['links']:>10,} {r['build_s']:>8.2f} "
            f"{r['freeze_s']:>9.2f} {r['router_ready_s']:>9.3f} {r['total_ready_s']:>8.2f} {r['route_s']:>8.3f} "
            f"{r['route_pairs']:>8,} {r['peak_rss_GB']:>8.2f}"
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_topology_one":
        print(json.dumps(bench_topology_once(argv[1], int(argv[2]), int(argv[3]))))
        return 0
    p = argparse.ArgumentParser(prog="python -m oassim.bench", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="what", required=True)
    t = sub.add_parser("topology", help="build, freeze and routing times, peak memory")
    t.add_argument("--preset", default="gb200-nvl72")
    t.add_argument("--accelerators", type=int, nargs="+", default=[16384, 131072])
    t.add_argument("--pairs", type=int, default=100_000)
    args = p.parse_args(argv)
    return _topology(args)


if __name__ == "__main__":
    sys.exit(main())
