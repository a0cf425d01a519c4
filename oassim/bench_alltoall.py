"""All-to-all benchmark of ``python -m oassim.bench alltoall``: prints figures, asserts nothing.

A 1 GiB all-to-all of every rank with ``auto``, on each network model: the call's wall time,
the flows the phases list against the n (n - 1) rank pairs, and the process's peak memory
(issue targets: 16,384 H100 ranks <= 2 s analytical, <= 10 s flow, <= 2 GB; 131,072 ranks
< 30 s). Traffic: even; ``--uneven``, an n x n byte matrix (n^2 memory); ``--blocks B``, a
B x B block matrix (no n^2 memory).
"""

from __future__ import annotations

import argparse
import time

from oassim.bench import _peak_rss_GB, child

__all__ = ["bench_all_to_all_once", "alltoall"]


def bench_all_to_all_once(preset: str, accelerators: int, size: int, network: str, uneven: bool,
                          blocks: int = 0) -> dict:
    """Build a cluster, then cost one all-to-all of every rank (``auto``) on ``network``: wall
    time of the call (fresh engine) and the process's peak memory. ``uneven``: the byte
    matrix is drawn per pair uniformly in [0.5, 1.5] x the even share (seeded); ``blocks`` > 0:
    a blocks x blocks matrix drawn the same way per block pair instead."""
    import numpy as np

    from oassim.collectives import CollectiveEngine, CollectiveRequest, make_groups
    from oassim.topology.cluster import build_fabric

    t0 = time.perf_counter()
    fabric = build_fabric(preset, accelerators)
    build = time.perf_counter() - t0
    engine = CollectiveEngine(fabric, network)
    g = make_groups(engine.caps, None, None)
    n = g.shape[1]
    matrix = np.random.default_rng(0).uniform(0.5, 1.5, (n, n)) * size / n if uneven and not blocks else None
    block = (np.random.default_rng(0).uniform(0.5, 1.5, (blocks, blocks)) * size * n / blocks**2
             if blocks else None)
    t1 = time.perf_counter()
    res = engine.run(CollectiveRequest("all_to_all", size, g, "auto", matrix=matrix, blocks=block))
    wall = time.perf_counter() - t1
    listed = sum(len(p.src) for p in engine.phases(CollectiveRequest("all_to_all", size, g, res.algorithm,
                                                                     matrix=matrix, blocks=block)))
    traffic = f"{blocks} blocks" if blocks else ("uneven" if uneven else "even")
    return {"preset": preset, "accelerators": fabric.n_accelerators, "network": network, "traffic": traffic,
            "algorithm": res.algorithm, "busbw_GBps": res.busbw_Bps / 1e9, "build_s": build, "all_to_all_s": wall,
            "flows_listed": listed, "rank_pairs": n * (n - 1), "peak_rss_GB": _peak_rss_GB(), "notes": list(res.notes)}


def alltoall(args: argparse.Namespace) -> int:
    """The ``alltoall`` benchmark: each case in a fresh subprocess (its own peak memory)."""
    from oassim.collectives.ops import parse_size

    print(f"{'preset':<18} {'ranks':>8} {'traffic':<10} {'net':<10} {'algorithm':<13} {'busbw':>7} "
          f"{'flows':>10} {'pairs':>14} {'a2a s':>7} {'build s':>7} {'peak GB':>8}")
    kinds = [(False, 0)] + ([(True, 0)] if args.uneven else []) + ([(True, args.blocks)] if args.blocks else [])
    for n in args.accelerators:
        for net in args.network:
            for uneven, blocks in kinds:
                rc, r = child(["_alltoall_one", args.preset, str(n), str(parse_size(args.size)), net, str(int(uneven)),
                               str(blocks)])
                if r is None:
                    return rc
                print(f"{r['preset']:<18} {r['accelerators']:>8,} {r['traffic']:<10} {net:<10} "
                      f"{r['algorithm']:<13} {r['busbw_GBps']:>7.1f} {r['flows_listed']:>10,} {r['rank_pairs']:>14,} "
                      f"{r['all_to_all_s']:>7.2f} {r['build_s']:>7.2f} {r['peak_rss_GB']:>8.2f}")
    return 0
