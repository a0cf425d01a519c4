"""Benchmarks of the replay's cost (issue 11), printed by ``python -m oassim.bench``, never asserted.

    python -m oassim.bench replay [--repeat 3] [--full]
    python -m oassim.bench process [--scenario FILE ...] [--network analytical flow]

``replay``: GPT-3 175B on 64 A100 (``dgx-a100-superpod``), tp 4, pp 8, dp 2, vpp 12, ZeRO 1,
sequence parallelism and selective recomputation, global batch 2,048 of micro-batch 1
(1,024 micro-batches per replica) against the same job with global batch 64 (32
micro-batches), analytical network, in one fresh process: ``simulate`` wall time (best of
``repeat``), the ratio of the two, the time to build every frame of the long run on first
read, and with ``--full`` the full replay of the long run and the difference of the iteration
times.

``process``: whole ``oassim run SCENARIO --network NET`` processes (interpreter start and
imports included), cold (an empty numba cache, ``NUMBA_CACHE_DIR`` pointing at a fresh
directory) and warm (the same cache again, best of two).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

__all__ = ["REPLAY_JOB", "bench_replay_once", "replay_main", "process_main", "PROCESS_SCENARIOS"]

REPLAY_JOB = {
    "preset": "dgx-a100-superpod", "accelerators": 64, "model": "gpt3-175b",
    # the benchmark layout of issue 11 (tp 4, pp 8, vpp 12, micro-batch 1): many micro-batches per replica
    "parallelism": {"tp": 4, "pp": 8, "dp": 2, "vpp": 12, "sp": True, "zero": 1},
    "training": {"seq_len": 2048, "micro_batch": 1, "precision": "bf16", "recompute": "selective"},
    "global_batches": (64, 2048),
}

PROCESS_SCENARIOS = ("experiments/gpt3-175b-3k-a100.yaml", "experiments/llama3-405b-16k-h100.yaml")
"""Repository-relative: the README's main job and Llama 3 405B on 16,384 H100."""


def bench_replay_once(repeat: int = 3, full: bool = False) -> dict:
    """The ``replay`` case in this process (module docstring)."""
    from oassim.scheduler import simulate
    from oassim.topology.cluster import build_fabric
    from oassim.workload import compile_plan

    job = REPLAY_JOB
    fabric = build_fabric(job["preset"], job["accelerators"])
    out: dict = {"cases": []}
    plans = []
    for gb in job["global_batches"]:
        t = time.perf_counter()
        plan = compile_plan(job["model"], job["parallelism"], "a100-sxm", fabric,
                            training={**job["training"], "global_batch": gb}, accelerators=job["accelerators"])
        plans.append((plan, time.perf_counter() - t))
    best = [float("inf")] * len(plans)
    last = [None] * len(plans)
    for _ in range(max(int(repeat), 1)):
        for i, (plan, _t) in enumerate(plans):
            t = time.perf_counter()
            last[i] = simulate(plan, fabric, network="analytical")
            best[i] = min(best[i], time.perf_counter() - t)
    for (plan, plan_s), b, res in zip(plans, best, last):
        t = time.perf_counter()
        rows = len(res.ops) + len(res.collectives) + len(res.waits) + len(res.link_util) + len(res.tiers)
        out["cases"].append({"microbatches": plan.n_microbatches, "plan_s": plan_s, "simulate_s": b,
                             "frames_on_read_s": time.perf_counter() - t, "rows": rows,
                             "iteration_s": res.iteration_time_s, "replay": res.provenance["replay"],
                             "segments_replayed": res.provenance["segments"]})
    out["ratio"] = best[-1] / best[0]
    if full:
        t = time.perf_counter()
        ref = simulate(plans[-1][0], fabric, network="analytical", replay="full")
        out["full_s"] = time.perf_counter() - t
        out["full_iteration_s"] = ref.iteration_time_s
        out["rel_error"] = last[-1].iteration_time_s / ref.iteration_time_s - 1.0
    return out


def replay_main(repeat: int, full: bool) -> int:
    cmd = [sys.executable, "-m", "oassim.bench", "_replay_one", str(repeat), "1" if full else "0"]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        sys.stderr.write(res.stderr)
        return res.returncode
    r = json.loads(res.stdout.strip().splitlines()[-1])
    print("GPT-3 175B, 64 A100 (dgx-a100-superpod), tp 4 pp 8 dp 2 vpp 12, analytical, in-process simulate() "
          f"(best of {repeat}); frames are built when first read")
    print(f"{'micro-batches':>13} {'plan s':>7} {'simulate s':>10} {'frames s':>9} {'rows':>10} {'iter s':>9} "
          f"{'replay':<9} {'replayed mb':>11}")
    for c in r["cases"]:
        rep = c["replay"]
        print(f"{c['microbatches']:>13,} {c['plan_s']:>7.2f} {c['simulate_s']:>10.2f} {c['frames_on_read_s']:>9.2f} "
              f"{c['rows']:>10,} {c['iteration_s']:>9.3f} {rep['mode']:<9} "
              f"{rep.get('replayed_microbatches', c['microbatches']):>11,}")
    print(f"ratio of the simulate() wall times, {r['cases'][-1]['microbatches']:,} / {r['cases'][0]['microbatches']} "
          f"micro-batches: {r['ratio']:.2f} (target <= 1.5); target for the long run <= 1 s")
    if "full_s" in r:
        print(f"full replay of the long run: {r['full_s']:.1f} s, iteration {r['full_iteration_s']:.6f} s; periodic "
              f"minus full: {r['rel_error']:+.2e} of it")
    return 0


def _one_process(scenario: str, network: str, cache: str) -> float:
    env = dict(os.environ, NUMBA_CACHE_DIR=cache)
    t = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "oassim.cli", "run", scenario, "--network", network],
                         capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t
    if res.returncode != 0:
        raise RuntimeError(res.stderr.strip().splitlines()[-1] if res.stderr.strip() else "oassim run failed")
    return wall


def process_main(scenarios: list[str] | None, networks: list[str]) -> int:
    root = Path(__file__).resolve().parents[1]
    scenarios = scenarios or [str(root / s) for s in PROCESS_SCENARIOS]
    print("whole `oassim run SCENARIO --network NET` processes: cold = empty numba cache (fresh NUMBA_CACHE_DIR), "
          "warm = that cache again (best of 2)")
    print(f"{'scenario':<28} {'network':<10} {'cold s':>7} {'warm s':>7}")
    for sc in scenarios:
        for net in networks:
            cache = tempfile.mkdtemp(prefix="oassim-bench-numba-")
            try:
                cold = _one_process(sc, net, cache)
                warm = min(_one_process(sc, net, cache) for _ in range(2))
            except RuntimeError as exc:
                print(f"{Path(sc).stem:<28} {net:<10} failed: {exc}")
                continue
            finally:
                shutil.rmtree(cache, ignore_errors=True)
            print(f"{Path(sc).stem:<28} {net:<10} {cold:>7.2f} {warm:>7.2f}")
    return 0
