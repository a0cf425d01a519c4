"""Benchmarks that print figures (time, peak memory); they never assert wall-clock times.

    python -m oassim.bench topology [--preset gb200-nvl72] [--accelerators 16384 131072]
    python -m oassim.bench collective [--preset dgx-h100-superpod] [--accelerators 16384] [--groups all|rail]
    python -m oassim.bench run [--network analytical flow] [--large]
    python -m oassim.bench network [--endpoints 10000] [--radix 48] [--flows 10000 100000]
    python -m oassim.bench sweep [--workers 2] [--points 1000] [--overhead-points 100]
    python -m oassim.bench reliability [--accelerators 16384] [--days 54] [--samples 100]
    python -m oassim.bench alltoall [--preset P] [--accelerators 16384] [--network analytical flow] [--blocks B]
    python -m oassim.bench replay [--repeat 3] [--full]          (oassim/bench_replay.py)
    python -m oassim.bench process [--scenario F ...] [--network analytical flow]
    python -m oassim.bench proposals [--quick] [FILE ...]   (oassim/bench_proposals.py)

Each size runs in a fresh subprocess so that its peak resident memory is its own.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

__all__ = ["main", "bench_topology_once", "bench_collective_once", "bench_run_once", "bench_network_once", "RUN_JOB"]


def _peak_rss_GB() -> float:
    # ru_maxrss is in KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def child(args: list[str]) -> tuple[int, dict | None]:
    """Run ``python -m oassim.bench ARGS`` in a fresh process (its peak memory is its own):
    (exit status, the record it printed last), or (status, None) after echoing its stderr."""
    out = subprocess.run([sys.executable, "-m", "oassim.bench", *args], capture_output=True, text=True)
    if out.returncode != 0:
        sys.stderr.write(out.stderr)
        return out.returncode, None
    return 0, json.loads(out.stdout.strip().splitlines()[-1])


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
        rc, row = child(["_topology_one", args.preset, str(n), str(args.pairs)])
        if row is None:
            return rc
        rows.append(row)
    hdr = (f"{'preset':<18} {'accel':>8} {'nodes':>9} {'links':>10} {'build s':>8} {'freeze s':>9} "
           f"{'router s':>9} {'ready s':>8} {'route s':>8} {'pairs':>8} {'peak GB':>8}")
    print(hdr)
    for r in rows:
        print(
            f"{r['preset']:<18} {r['accelerators']:>8,} {r['nodes']:>9,} {r['links']:>10,} {r['build_s']:>8.2f} "
            f"{r['freeze_s']:>9.2f} {r['router_ready_s']:>9.3f} {r['total_ready_s']:>8.2f} {r['route_s']:>8.3f} "
            f"{r['route_pairs']:>8,} {r['peak_rss_GB']:>8.2f}"
        )
    return 0


def bench_collective_once(preset: str, accelerators: int, size: int, groups: str, algorithm: str,
                          networks: list[str]) -> dict:
    """Build a cluster, then cost one collective on each network model: cold (fresh engine),
    memo bypassed (warm engine, ``memo=False``, best of 3) and memoised (cache hit)."""
    from oassim.collectives import CollectiveEngine, CollectiveRequest, make_groups
    from oassim.topology.cluster import build_fabric

    t0 = time.perf_counter()
    fabric = build_fabric(preset, accelerators)
    out = {"preset": preset, "accelerators": fabric.n_accelerators, "links": fabric.n_links,
           "build_s": time.perf_counter() - t0, "size_bytes": size, "groups": groups, "runs": []}
    for net in networks:
        t1 = time.perf_counter()
        engine = CollectiveEngine(fabric, net)
        g = make_groups(engine.caps, None, groups)
        req = CollectiveRequest("all_reduce", size, g, algorithm)
        res = engine.run(req, memo=False)
        cold = time.perf_counter() - t1
        warm = []
        for _ in range(3):
            t2 = time.perf_counter()
            engine.run(req, memo=False)
            warm.append(time.perf_counter() - t2)
        engine.run(req)
        t3 = time.perf_counter()
        engine.run(req)
        hit = time.perf_counter() - t3
        out["runs"].append({
            "network": net, "group_shape": list(g.shape), "algorithm": res.algorithm,
            "phases": len(res.phases),
            "time_ms": res.time_s * 1e3, "busbw_GBps": res.busbw_Bps / 1e9, "bottleneck": res.bottleneck_tier,
            "cold_s": cold, "memo_bypassed_s": min(warm), "memo_hit_s": hit, "peak_rss_GB": _peak_rss_GB(),
        })
    out["peak_rss_GB"] = _peak_rss_GB()
    return out


def _collective(args: argparse.Namespace) -> int:
    from oassim.collectives.ops import parse_size

    cases = [(args.preset, args.accelerators, g, args.algo) for g in args.groups]
    if args.memory_accelerators:
        cases.append((args.memory_preset, args.memory_accelerators, args.groups[0], args.algo))
    print(f"{'preset':<18} {'ranks':>8} {'groups':>10} {'net':<10} {'algorithm':<13} {'coll ms':>9} "
          f"{'busbw':>7} {'cold s':>8} {'no-memo s':>10} {'memo s':>9} {'peak GB':>8}")
    for preset, n, groups, algo in cases:
        rc, r = child(["_collective_one", preset, str(n), str(parse_size(args.size)), groups, algo,
                       ",".join(args.network)])
        if r is None:
            return rc
        for run in r["runs"]:
            shape = "x".join(str(v) for v in run["group_shape"])
            print(f"{r['preset']:<18} {r['accelerators']:>8,} {shape:>10} {run['network']:<10} {run['algorithm']:<13} "
                  f"{run['time_ms']:>9.2f} {run['busbw_GBps']:>7.1f} {run['cold_s']:>8.3f} "
                  f"{run['memo_bypassed_s']:>10.4f} {run['memo_hit_s']:>9.6f} {run['peak_rss_GB']:>8.2f}")
        print(f"{'':<18} build {r['build_s']:.2f} s, {r['links']:,} links, process peak {r['peak_rss_GB']:.2f} GB")
    return 0


RUN_JOB = {
    "model": "llama3-405b",
    # Llama Team 2024 (arXiv:2407.21783) §3.3.2: TP 8, PP 16, DP 128 on 16K H100, sequence
    # 8,192; 126 layers with 7 on the first and last stage; ZeRO 1 and sequence parallelism.
    "parallelism": {"tp": 8, "pp": 16, "sp": True, "zero": 1, "first_stage_layers": 7, "last_stage_layers": 7},
    "training": {"seq_len": 8192, "micro_batch": 1, "precision": "bf16", "recompute": "none"},
    "sequences_per_replica": 16,  # global batch 2,048 at dp 128: 16 micro-batches per replica
}


def bench_run_once(preset: str, accelerators: int, network: str) -> dict:
    """One training iteration of :data:`RUN_JOB` end to end in this process: build the fabric,
    compile the plan, simulate; wall time of each step and peak memory. The data-parallel
    size fills the cluster (dp = accelerators / (tp pp)); the global batch keeps 16
    micro-batches per replica."""
    from oassim.scheduler import simulate
    from oassim.topology.cluster import build_fabric
    from oassim.workload import compile_plan

    t0 = time.perf_counter()
    fabric = build_fabric(preset, accelerators)
    t1 = time.perf_counter()
    par = dict(RUN_JOB["parallelism"])
    dp = accelerators // (par["tp"] * par["pp"])
    par["dp"] = dp
    train = dict(RUN_JOB["training"], global_batch=RUN_JOB["sequences_per_replica"] * dp)
    plan = compile_plan(RUN_JOB["model"], par, fabric_accelerator(preset), fabric, training=train,
                        accelerators=accelerators)
    t2 = time.perf_counter()
    res = simulate(plan, fabric, network=network)
    t3 = time.perf_counter()
    return {
        "preset": preset, "accelerators": accelerators, "links": fabric.n_links, "network": network,
        "dp": dp, "microbatches": plan.n_microbatches, "iteration_s": res.iteration_time_s,
        "mfu": plan.mfu(res.iteration_time_s), "build_s": t1 - t0, "plan_s": t2 - t1, "simulate_s": t3 - t2,
        "total_s": t3 - t0, "ops_rows": len(res.ops), "collective_instances": len(res.collectives),
        "distinct_requests": res.provenance.get("distinct_requests"), "comm": res.provenance.get("comm"),
        "simulate_wall": res.provenance.get("wall_s"), "peak_rss_GB": _peak_rss_GB(),
    }


def fabric_accelerator(preset: str) -> str:
    """The accelerator preset a cluster preset is built of."""
    from oassim.topology.cluster_spec import load_cluster

    return load_cluster(preset, None).accelerator.name


def _run(args: argparse.Namespace) -> int:
    cases = [(args.preset, args.accelerators, net) for net in args.network]
    if args.large:
        cases.append((args.large_preset, args.large_accelerators, "flow"))
    print(f"one iteration of {RUN_JOB['model']} (tp 8, pp 16, seq 8192, 16 micro-batches per replica), "
          "fabric build included; fresh process per case")
    print(f"{'preset':<18} {'accel':>8} {'net':<10} {'build s':>8} {'plan s':>7} {'sim s':>7} {'total s':>8} "
          f"{'iter s':>7} {'MFU':>6} {'requests':>8} {'joint':>6} {'peak GB':>8}")
    for preset, n, net in cases:
        rc, r = child(["_run_one", preset, str(n), net])
        if r is None:
            return rc
        print(f"{r['preset']:<18} {r['accelerators']:>8,} {r['network']:<10} {r['build_s']:>8.2f} {r['plan_s']:>7.2f} "
              f"{r['simulate_s']:>7.2f} {r['total_s']:>8.2f} {r['iteration_s']:>7.3f} {r['mfu']:>6.1%} "
              f"{r['distinct_requests']:>8} {r['comm']['joint_costings']:>6} {r['peak_rss_GB']:>8.2f}")
    return 0


def _best(fn, repeat: int) -> tuple[float, object]:
    """Smallest wall time of ``repeat`` calls of ``fn`` and its last result."""
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def bench_network_once(endpoints: int, radix: int, flows: int, random_max: int, seed: int = 0) -> dict:
    """Network models on a standalone 3-tier fat-tree (NDR-like 400G parts), ``flows`` random
    endpoint pairs: one max-min solve, the ``analytical`` and the full ``flow`` transfer (all
    events) with equal sizes (a collective phase) and with random sizes (one event per flow;
    only up to ``random_max`` flows). The numba JIT is warmed first (loaded from its cache)."""
    import numpy as np

    from oassim.network import AnalyticalNetwork, FlowNetwork, Flows, maxmin_rates, stripe
    from oassim.topology.fabric import Paths, freeze
    from oassim.topology.families import fat_tree as ft
    from oassim.topology.parts import LinkClass, SwitchClass

    t0 = time.perf_counter()
    link = LinkClass("ndr", 50e9, 1e-7, "optical", rate_Gbps=400)
    sw = {r: SwitchClass("sw", radix=radix, latency_s=2e-7, port_rate_Gbps=400) for r in ft.SWITCH_ROLES}
    fabric = freeze(ft.build(ft.Spec(endpoints=endpoints, tiers=3), dict.fromkeys(ft.LINK_ROLES, link), sw))
    build_s = time.perf_counter() - t0
    ep = fabric.routing["endpoints"]
    rng = np.random.default_rng(seed)
    src = rng.choice(ep, flows)
    dst = ep[(np.searchsorted(ep, src) + rng.integers(1, len(ep), flows)) % len(ep)]  # != src
    equal = Flows(src, dst, np.full(flows, 16.0 * 2**20))
    rand = Flows(src, dst, rng.uniform(1.0, 64.0, flows) * 2**20)
    fm, am = FlowNetwork(fabric), AnalyticalNetwork(fabric)
    fm.transfer(Flows(src[:8], dst[:8], np.ones(8)))  # JIT warm-up
    sub = stripe(fabric, equal)
    paths, cap = Paths(sub.ptr, sub.links), fabric.capacity_Bps
    solve_s, _ = _best(lambda: maxmin_rates(paths, cap), 5)
    stripe_s, _ = _best(lambda: stripe(fabric, equal), 3)
    analytical_s, _ = _best(lambda: am.transfer(equal), 3)
    flow_eq_s, run_eq = _best(lambda: fm.run(equal), 1)
    row = {"endpoints": len(ep), "links": fabric.n_links, "flows": flows, "hops": float(sub.hops.mean()),
           "build_s": build_s, "solve_s": solve_s, "stripe_s": stripe_s, "analytical_s": analytical_s,
           "flow_equal_s": flow_eq_s, "events_equal": run_eq.events, "flow_random_s": None, "events_random": None}
    if flows <= random_max:
        row["flow_random_s"], run_rand = _best(lambda: fm.run(rand), 1)
        row["events_random"] = run_rand.events
    row["peak_rss_GB"] = _peak_rss_GB()
    return row


def _network(args: argparse.Namespace) -> int:
    rows = []
    for n in args.flows:
        rc, row = child(["_network_one", str(args.endpoints), str(args.radix), str(n), str(args.random_max_flows)])
        if row is None:
            return rc
        rows.append(row)

    def ms(x):
        return f"{x * 1e3:>9.1f}" if x is not None else f"{'-':>9}"

    print(f"3-tier fat-tree, radix {args.radix}: {rows[0]['endpoints']:,} endpoints, {rows[0]['links']:,} directed "
          f"links; random endpoint pairs; times in ms (best of 5 / 3 / 1)")
    print(f"{'flows':>8} {'hops':>5} {'max-min':>9} {'stripe':>9} {'analyt.':>9} {'flow eq':>9} {'events':>7} "
          f"{'flow rnd':>9} {'events':>7} {'peak GB':>8}")
    for r in rows:
        print(f"{r['flows']:>8,} {r['hops']:>5.2f} {ms(r['solve_s'])} {ms(r['stripe_s'])} {ms(r['analytical_s'])} "
              f"{ms(r['flow_equal_s'])} {r['events_equal']:>7,} {ms(r['flow_random_s'])} "
              f"{r['events_random'] if r['events_random'] is not None else '-':>7} {r['peak_rss_GB']:>8.2f}")
    print("max-min: one solve of all flows (maxmin_rates); analytical: whole transfer (routing included); "
          "flow eq / rnd: whole flow transfer, all events, equal (16 MiB) / random (1-64 MiB) sizes")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "proposals":
        from oassim.bench_proposals import bench_proposals
        return bench_proposals(argv[1:])
    if argv and argv[0] == "_network_one":
        print(json.dumps(bench_network_once(int(argv[1]), int(argv[2]), int(argv[3]), int(argv[4]))))
        return 0
    if argv and argv[0] == "_topology_one":
        print(json.dumps(bench_topology_once(argv[1], int(argv[2]), int(argv[3]))))
        return 0
    if argv and argv[0] == "_run_one":
        print(json.dumps(bench_run_once(argv[1], int(argv[2]), argv[3])))
        return 0
    if argv and argv[0] == "_replay_one":
        from oassim.bench_replay import bench_replay_once

        print(json.dumps(bench_replay_once(int(argv[1]), argv[2] == "1")))
        return 0
    if argv and argv[0] == "_sweep_one":
        from oassim.bench_sweep import bench_sweep_once
        print(json.dumps(bench_sweep_once(argv[1], argv[2], argv[3], int(argv[4]), int(argv[5]))))
        return 0
    if argv and argv[0] == "_alltoall_one":
        from oassim.bench_alltoall import bench_all_to_all_once

        print(json.dumps(bench_all_to_all_once(argv[1], int(argv[2]), int(argv[3]), argv[4], argv[5] == "1",
                                               int(argv[6]) if len(argv) > 6 else 0)))
        return 0
    if argv and argv[0] == "_collective_one":
        print(json.dumps(bench_collective_once(argv[1], int(argv[2]), int(argv[3]), argv[4], argv[5],
                                               argv[6].split(","))))
        return 0
    p = argparse.ArgumentParser(prog="python -m oassim.bench", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="what", required=True)
    t = sub.add_parser("topology", help="build, freeze and routing times, peak memory")
    t.add_argument("--preset", default="gb200-nvl72")
    t.add_argument("--accelerators", type=int, nargs="+", default=[16384, 131072])
    t.add_argument("--pairs", type=int, default=100_000)
    c = sub.add_parser("collective", help="collective engine: cold / memo-bypassed / memoised times, memory")
    c.add_argument("--preset", default="dgx-h100-superpod")
    c.add_argument("--accelerators", type=int, default=16384)
    c.add_argument("--groups", nargs="+", default=["all", "rail"],
                   help="all (one group: RS in every domain, AR on the 8 rails, AG), rail (the 8 "
                   "data-parallel groups at once), domain")
    c.add_argument("--algo", default="hierarchical")
    c.add_argument("--size", default="1G")
    c.add_argument("--network", nargs="+", default=["analytical", "flow"])
    c.add_argument("--memory-preset", default="dgx-a100-superpod",
                   help="preset for the memory case (dgx-h100's 3-tier NDR fat-tree stops at 65,536)")
    c.add_argument("--memory-accelerators", type=int, default=131072, help="0 to skip")
    a = sub.add_parser("alltoall", help="1 GiB all-to-all of every rank (auto): wall time, flows listed, memory")
    a.add_argument("--preset", default="dgx-h100-superpod")
    a.add_argument("--accelerators", type=int, nargs="+", default=[16384])
    a.add_argument("--network", nargs="+", default=["analytical", "flow"])
    a.add_argument("--size", default="1G")
    a.add_argument("--uneven", action="store_true", help="also an uneven byte matrix (n x n floats in memory)")
    a.add_argument("--blocks", type=int, default=0, metavar="B",
                   help="also uneven traffic as a B x B block matrix (no n x n memory; B divides the ranks)")
    r = sub.add_parser("run", help="one training iteration (Llama 3 405B) end to end: build, plan, simulate")
    r.add_argument("--preset", default="dgx-h100-superpod")
    r.add_argument("--accelerators", type=int, default=16384)
    r.add_argument("--network", nargs="+", default=["analytical", "flow"])
    r.add_argument("--large", action="store_true", help="also the large case (flow network)")
    r.add_argument("--large-preset", default="gb200-nvl72",
                   help="preset of the large case (dgx-h100's 3-tier NDR fat-tree stops at 65,536)")
    r.add_argument("--large-accelerators", type=int, default=131072)
    nw = sub.add_parser("network", help="max-min solve, analytical and flow transfers on a 3-tier fat-tree")
    nw.add_argument("--endpoints", type=int, default=10000)
    nw.add_argument("--radix", type=int, default=48)
    nw.add_argument("--flows", type=int, nargs="+", default=[10000, 100000])
    nw.add_argument("--random-max-flows", type=int, default=30000,
                    help="largest flow count for the random-size flow transfer (one event per flow)")
    sw = sub.add_parser("sweep", help="a 1,000-point sweep on local workers; local vs Dask per-point overhead")
    sw.add_argument("--sweep", default=None, help="sweep file (default experiments/sweeps/bench-1000.yaml)")
    sw.add_argument("--workers", type=int, default=2)
    sw.add_argument("--points", type=int, default=1000, help="points of the full run (0: skip it)")
    sw.add_argument("--overhead-points", type=int, default=100,
                    help="points of the inline / local / Dask comparison (0 to skip)")
    rl = sub.add_parser("reliability", help="a 54-day failure/checkpoint campaign, 100 samples")
    for flag, kind, default in (("--accelerators", int, 16384), ("--days", float, 54.0), ("--samples", int, 100)):
        rl.add_argument(flag, type=kind, default=default)
    rp = sub.add_parser("replay", help="GPT-3 175B, 1,024 vs 32 micro-batches: periodic replay cost")
    rp.add_argument("--repeat", type=int, default=3)
    rp.add_argument("--full", action="store_true", help="also the full replay of the long run (slow)")
    pr = sub.add_parser("process", help="whole `oassim run` processes, cold and warm numba cache")
    pr.add_argument("--scenario", nargs="+", default=None)
    pr.add_argument("--network", nargs="+", default=["analytical", "flow"])
    args = p.parse_args(argv)
    if args.what == "reliability":
        from oassim.bench_reliability import bench_reliability_once
        print(json.dumps(bench_reliability_once(args.accelerators, args.days, args.samples)))
        return 0
    if args.what in ("replay", "process"):
        from oassim.bench_replay import process_main, replay_main

        if args.what == "replay":
            return replay_main(args.repeat, args.full)
        return process_main(args.scenario, args.network)
    if args.what == "sweep":
        from oassim.bench_sweep import _sweep
        return _sweep(args)
    if args.what == "network":
        return _network(args)
    if args.what == "run":
        return _run(args)
    if args.what == "collective":
        return _collective(args)
    if args.what == "alltoall":
        from oassim.bench_alltoall import alltoall

        return alltoall(args)
    return _topology(args)


if __name__ == "__main__":
    sys.exit(main())
