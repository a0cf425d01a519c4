"""Issue 11, sweep throughput: what a sweep worker remembers across points changes no result.

Points of the bench sweep (``experiments/sweeps/bench-1000.yaml``: Megatron GPT jobs on DGX
A100 / H100 SuperPODs) run one after the other on one worker's warm caches (built clusters,
collective engines with their request memo, group-structure memos, plans) give exactly the
rows of the same points each run on nothing cached; the size-independent pieces the memos
keep (rail-ring orders, expert-parallel tiers, the summary's string columns) equal the
straightforward computation they replace; and ``--replay`` reaches every point.
"""

from __future__ import annotations

import copy
import math
import subprocess
import sys

import numpy as np
import pandas.testing as pd_testing
import pytest

from oassim.errors import SpecError
from oassim.experiments import executors
from oassim.experiments.sweep import expand_sweep
from tests.experiments.conftest import ROOT, SWEEP_BASE

BENCH = ROOT / "experiments" / "sweeps" / "bench-1000.yaml"


def _bench_tasks(n: int, max_accelerators: int = 1024) -> list[dict]:
    """The first ``n`` bench points on at most ``max_accelerators`` GPUs (a few seconds in all)."""
    plan = expand_sweep(BENCH)
    pts = [p for p in plan.points if p.scenario["cluster"]["accelerators"] <= max_accelerators][:n]
    return [executors.point_task(p) for p in pts]


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    return a == b


VOLATILE = {"wall_s", "wall_build_s", "wall_plan_s", "wall_simulate_s", "wall_load_s", "worker_peak_rss_MB",
            "started_utc", "finished_utc", "worker"}


def test_bench_points_on_warm_caches_equal_the_same_points_uncached():
    tasks = _bench_tasks(8)
    # a repeated point and a point on a cluster size already built: the caches are hit
    tasks.append({**tasks[0], "point_id": "f" * 16, "index": 10_000})
    executors.worker_caches(clear=True)
    cold = [executors.run_point({**t, "reuse": False}) for t in tasks]
    warm = [executors.run_point(t) for t in tasks]
    caches = executors.worker_caches()
    assert len(caches["engine_cache"]) == len({(t["scenario"]["cluster"]["preset"],
                                               t["scenario"]["cluster"]["accelerators"]) for t in tasks})
    hits = sum(e.stats["request_hits"] for _, e in caches["engine_cache"].values())
    assert hits > 0  # the repeated point is answered from the memo
    assert sum(r["status"] == "ok" for r in cold) >= 6
    for c, w in zip(cold, warm):
        assert c["status"] == w["status"], (c.get("error"), w.get("error"))
        assert set(c) == set(w)
        diff = [k for k in c if k not in VOLATILE and not _same(c[k], w[k])]
        assert not diff, {k: (c[k], w[k]) for k in diff}
    executors.worker_caches(clear=True)


def test_vectorised_rail_ring_orders_equal_the_ring_by_ring_construction():
    from oassim.collectives.algorithms.ring import rail_ring_orders

    rng = np.random.default_rng(11)
    for G, k, m in [(1, 2, 8), (3, 4, 8), (2, 1, 4), (5, 3, 2), (4, 16, 8)]:
        blocks = [[rng.permutation(10_000)[:m] for _ in range(k)] for _ in range(G)]
        ref = np.stack([np.concatenate([np.roll(r, -(c % len(r))) for r in doms])
                        for doms in blocks for c in range(m)])
        assert np.array_equal(rail_ring_orders(blocks), ref)
    uneven = [[np.array([0, 1, 2]), np.array([8])]]  # domains holding 3 and 1 of the group's ranks
    assert rail_ring_orders(uneven).tolist() == [[0, 1, 2, 8], [1, 2, 0, 8], [2, 0, 1, 8]]


def _ep_tiers_reference(ep, dom):
    alone = ep.reshape(-1, 1)
    intra, inter = [], []
    for row in ep:
        d = dom[row]
        per = [row[d == x] for x in np.unique(d)]
        if len({len(x) for x in per}) != 1:
            return ep, alone
        intra += per
        inter += list(np.stack(per, axis=1))
    return np.array(intra, dtype=np.int64), np.array(inter, dtype=np.int64)


def test_vectorised_ep_tiers_equal_the_row_by_row_construction():
    from oassim.workload.placement import _ep_tiers

    rng = np.random.default_rng(5)
    checked = 0
    for trial in range(400):
        world = int(rng.choice([8, 16, 64, 96]))
        n = int(rng.choice([x for x in (1, 2, 4, 8) if world % x == 0]))
        ep = rng.permutation(world).reshape(-1, n) if trial % 2 else np.arange(world).reshape(-1, n)
        dom = np.arange(world) // int(rng.choice([1, 2, 3, 4, 8])) if trial % 5 else rng.integers(0, 4, world)
        try:
            ref = _ep_tiers_reference(ep, dom)
        except ValueError:  # groups of unequal shapes: the reference cannot stack them either
            continue
        got = _ep_tiers(ep, dom)
        for a, b in zip(got, ref):
            assert a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b), trial
        checked += 1
    assert checked > 300


def test_summary_on_categorical_columns_equals_the_summary_on_strings(monkeypatch):
    import json

    from oassim.analysis import metrics
    from oassim.experiments.runner import run

    ranked = 0
    for sc in [copy.deepcopy(SWEEP_BASE)] + [t["scenario"] for t in _bench_tasks(4, 512)]:
        res = run(sc)
        fast = metrics.summary(res)
        with monkeypatch.context() as m:
            m.setattr(metrics, "_str", lambda s: s.astype(str))
            m.setattr(metrics, "_key", lambda s: s.astype(str))
            slow = metrics.summary(res)
        assert json.dumps(fast, sort_keys=True) == json.dumps(slow, sort_keys=True)  # to the last bit
        ranked += bool(fast["bottlenecks"])
    assert ranked  # something was ranked


def test_replay_modes_reach_every_sweep_point_and_bad_ones_are_refused(tmp_path):
    from oassim.experiments.runner import run
    from oassim.experiments.store import load_results

    sc = copy.deepcopy(SWEEP_BASE)  # 4 micro-batches per replica: too few periods to compress
    with pytest.raises(SpecError, match="periodic replay cannot be used") as err:
        run(sc, replay="periodic")
    assert err.value.source == "argument --replay"
    with pytest.raises(SpecError, match="unknown replay mode 'sometimes'"):
        run(sc, replay="sometimes")
    sweep = {"name": "replay-modes", "base": sc, "axes": {"workload.global_batch": [32, 256]}}
    executors.run_sweep(sweep, tmp_path / "full", workers=0, quiet=True, replay="full")
    executors.run_sweep(sweep, tmp_path / "auto", workers=0, quiet=True)
    full, auto = load_results(tmp_path / "full"), load_results(tmp_path / "auto")
    assert set(full["replay"]) == {"full"}
    assert set(auto["replay"]) == {"full", "periodic"}  # 32 micro-batches per replica compress, 4 do not
    key = "workload.global_batch"
    a = auto.sort_values(key)["iteration_time_s"].to_numpy()
    f = full.sort_values(key)["iteration_time_s"].to_numpy()
    assert list(auto.sort_values(key)["replay"]) == ["full", "periodic"]
    assert np.allclose(a, f, rtol=1e-3, atol=0)  # the periodic replay's contract: within 0.1%


@pytest.mark.parametrize("command", [["run", "x.yaml"], ["sweep", "x.yaml", "--out", "o"]])
def test_a_bad_replay_flag_is_one_line_with_status_2(command):
    proc = subprocess.run([sys.executable, "-m", "oassim.cli", *command, "--replay", "half"], capture_output=True,
                          text=True, cwd=ROOT)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "argument --replay: invalid choice: 'half'" in proc.stderr and "periodic" in proc.stderr


def _schedule_reference(name: str, pp: int, stage: int, n: int, vpp: int):
    """The step-by-step construction of Megatron-LM's order (Narayanan et al. 2021, Fig. 4)."""
    from oassim.workload.schedules import _chunk_and_mb, warmup_steps
    from oassim.workload.steps import ScheduleStep

    warm = warmup_steps(name, pp, stage, n, vpp)
    if name == "1f1b":
        out = [ScheduleStep("F", i, 0) for i in range(warm)]
        for i in range(n - warm):
            out += [ScheduleStep("F", warm + i, 0), ScheduleStep("B", i, 0)]
        return out + [ScheduleStep("B", i, 0) for i in range(n - warm, n)]

    def step(kind, k):
        c, mb = _chunk_and_mb(k, pp, vpp, kind == "F")
        return ScheduleStep(kind, mb, c)

    total = n * vpp
    out = [step("F", k) for k in range(warm)]
    for k in range(total - warm):
        out += [step("F", k + warm), step("B", k)]
    return out + [step("B", k) for k in range(total - warm, total)]


@pytest.mark.parametrize("pp,n,vpp", [(1, 1, 1), (1, 5, 1), (2, 2, 1), (4, 8, 1), (4, 3, 1), (8, 16, 1),
                                      (2, 2, 3), (4, 8, 2), (4, 4, 4), (8, 64, 12)])
def test_array_built_schedules_equal_the_step_by_step_order(pp, n, vpp):
    from oassim.workload.schedules import SCHEDULES

    name = "1f1b" if vpp == 1 else "interleaved"
    for stage in range(pp):
        got = SCHEDULES[name](pp, stage, n, vpp)
        ref = _schedule_reference(name, pp, stage, n, vpp)
        assert list(got) == ref
        assert all(type(s.microbatch) is int and type(s.chunk) is int for s in got)
        assert SCHEDULES[name](pp, stage, n, vpp) is got  # remembered


def test_peak_inflight_equals_the_step_by_step_count():
    from oassim.workload.memory import peak_inflight
    from oassim.workload.schedules import interleaved

    rng = np.random.default_rng(3)
    for stage in range(4):
        sched = interleaved(4, stage, 16, 3)
        w = rng.uniform(1e8, 1e10, 3).tolist()
        out, peak, peak_n = [0, 0, 0], 0.0, 0
        for st in sched:
            out[st.chunk] += 1 if st.kind == "F" else -1
            peak = max(peak, sum(o * x for o, x in zip(out, w)))
            peak_n = max(peak_n, sum(out))
        assert peak_inflight(sched, w) == (peak, peak_n)


def test_the_short_schedule_reaches_the_same_peak_in_flight_exactly():
    from oassim.workload.memory import peak_inflight, peak_microbatches
    from oassim.workload.schedules import SCHEDULES

    rng = np.random.default_rng(7)
    shorter = 0
    for name, pp, vpp in [("1f1b", 1, 1), ("1f1b", 4, 1), ("1f1b", 8, 1), ("interleaved", 2, 3),
                          ("interleaved", 4, 2), ("interleaved", 8, 12), ("interleaved", 3, 5)]:
        for n in range(1, 50):
            if name == "interleaved" and n % pp:
                continue
            w = rng.uniform(0, 1e9, vpp).tolist()
            for st in range(pp):
                short = peak_microbatches(name, pp, st, n, vpp)
                assert short <= n
                shorter += short < n
                assert peak_inflight(SCHEDULES[name](pp, st, short, vpp), w) == \
                    peak_inflight(SCHEDULES[name](pp, st, n, vpp), w)
    assert shorter > 100
    assert peak_microbatches("interleaved", 8, 0, 1024, 12) <= 32  # the layout: not 1,024


def test_summary_fast_path_equals_the_metric_definitions(monkeypatch):
    """summary() reads the replay's frames once as arrays; the metric functions one by one
    (critical_rank, breakdown, busy_by_member, collective_bottlenecks) give the same dict,
    to the last bit, on bench points, the sweep base and a full-rank replay."""
    import json

    from oassim.analysis import metrics
    from oassim.experiments.runner import run

    results = [run(copy.deepcopy(SWEEP_BASE)), run(copy.deepcopy(SWEEP_BASE), full_rank=True)]
    results += [run(t["scenario"]) for t in _bench_tasks(12, 1024)
                if t["scenario"]["parallelism"]["pp"] > 1 or t["index"] % 3 == 0][:8]
    fast_used = 0
    real = metrics._fast_parts
    for res in results:
        fast = metrics.summary(res)
        fast_used += real(res) is not None
        with monkeypatch.context() as m:
            m.setattr(metrics, "_fast_parts", lambda r: None)
            slow = metrics.summary(res)
        assert json.dumps(fast, sort_keys=True) == json.dumps(slow, sort_keys=True)
        assert list(fast["breakdown"]) == list(slow["breakdown"])
    assert fast_used >= len(results) - 1


def test_segments_advanced_without_timeouts_give_the_rows_of_the_event_by_event_replay(monkeypatch):
    """A compute segment that would be the next event moves the clock itself (Replay.inline):
    the rows of bench points (pipelines of 1-8 stages, periodic and full replays), the sweep
    base and a full-rank replay equal those of the replay that schedules every timeout."""
    import simpy

    from oassim.scheduler.replay import Replay

    steps = {"n": 0}
    real = simpy.Environment.step

    def counted(env):
        steps["n"] += 1
        return real(env)

    monkeypatch.setattr(simpy.Environment, "step", counted)
    from oassim.experiments.runner import run

    tasks = _bench_tasks(10, 1024) + [{**_bench_tasks(1)[0], "scenario": copy.deepcopy(SWEEP_BASE)}]
    rows = {}
    for inline in (True, False):
        monkeypatch.setattr(Replay, "inline", inline)
        steps["n"] = 0
        rows[inline] = [executors.run_point({**t, "reuse": False}) for t in tasks]
        rows[inline, "steps"] = steps["n"]
        rows[inline, "full"] = run(copy.deepcopy(SWEEP_BASE), full_rank=True)
    a, b = rows[True, "full"], rows[False, "full"]
    assert a.iteration_time_s == b.iteration_time_s
    for name in ("ops", "waits", "collectives"):
        pd_testing.assert_frame_equal(getattr(a, name), getattr(b, name), check_exact=True)
    assert rows[True, "steps"] < 0.95 * rows[False, "steps"]  # events were saved
    assert sum(r["status"] == "ok" for r in rows[True]) >= 8
    for a, b in zip(rows[True], rows[False]):
        assert a["status"] == b["status"], (a.get("error"), b.get("error"))
        diff = [k for k in a if k not in VOLATILE and not _same(a[k], b[k])]
        assert not diff, {k: (a[k], b[k]) for k in diff}


def test_auto_reusing_the_chosen_candidates_costs_equals_costing_it_again(monkeypatch):
    """``auto`` evaluates its pick from the phases and costs its comparison built; costing the
    pick again (the construction it replaces) gives the same rows on bench points."""
    from oassim.collectives.engine import CollectiveEngine

    tasks = _bench_tasks(5, 512)
    reused = [executors.run_point({**t, "reuse": False}) for t in tasks]
    real = CollectiveEngine._evaluate
    seen = {"timed": 0}

    def again(self, req, name, net, memo, timed=None):
        seen["timed"] += timed is not None
        return real(self, req, name, net, memo)

    monkeypatch.setattr(CollectiveEngine, "_evaluate", again)
    costed = [executors.run_point({**t, "reuse": False}) for t in tasks]
    assert seen["timed"] > 0
    assert sum(r["status"] == "ok" for r in reused) >= 3
    for a, b in zip(reused, costed):
        assert a["status"] == b["status"]
        diff = [k for k in a if k not in VOLATILE and not _same(a[k], b[k])]
        assert not diff, {k: (a[k], b[k]) for k in diff}


def test_timed_op_copy_equals_dataclasses_replace():
    from dataclasses import replace

    from oassim.workload.plan import _with_duration
    from oassim.workload.steps import ComputeOp

    op = ComputeOp("qkv", "gemm", 3, "s0/c0/L3/fwd/qkv", 1e12, 9e11, 4e8, (2048, 3072, 1024), 2, True, 0.0,
                   ("s0/c0/L3/fwd/ag",))
    new, ref = _with_duration(op, 1.25e-3), replace(op, duration_s=1.25e-3)
    assert new == ref and new.__dict__ == ref.__dict__ and type(new) is ComputeOp
    assert op.duration_s == 0.0  # the original is untouched
