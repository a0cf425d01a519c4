"""Chrome trace and Parquet exports: the Trace Event Format, rank selection, atomic writes."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pandas as pd
import pyarrow.parquet as pq
import pytest

from oassim.analysis.trace import (
    MAX_DEFAULT_RANKS,
    atomic_write,
    chrome_trace,
    write_chrome_trace,
    write_link_utilisation,
    write_parquet,
)
from oassim.scheduler.results import Results

OPS = ["stage", "rank", "stream", "name", "kind", "dim", "microbatch", "chunk", "start_s", "end_s", "exposed_s"]


def _results(ops_rows, link_rows=()):
    ops = pd.DataFrame(ops_rows, columns=OPS)
    lu = pd.DataFrame(list(link_rows), columns=["t0_s", "t1_s", "tier", "utilisation", "bytes"])
    empty = pd.DataFrame()
    return Results(scenario={"name": "t"}, plan=None, iteration_time_s=0.01, ops=ops, collectives=empty,
                   link_util=lu, tiers=empty, network="analytical", provenance={"version": "0.1.0"})


def _two_stage():
    return _results([
        (0, 0, "compute", "qkv", "gemm", "", 0, 0, 0.0, 0.001, 0.0),
        (0, 0, "comm", "attn_out_rs", "reduce_scatter", "tp", 0, 0, 0.001, 0.0015, 0.0005),
        (1, 8, "compute", "qkv", "gemm", "", 0, 0, 0.002, 0.003, 0.0),
        (1, 8, "comm", "grad_bucket", "all_reduce", "dp", -1, 0, 0.003, 0.006, 0.0),
    ], [(0.0, 0.002, "leaf-spine", 0.5, 1e6), (0.004, 0.006, "leaf-spine", 0.9, 1e6),
        (0.0, 0.006, "scaleup", 0.1, 1e6)])


def test_operations_are_complete_events_in_microseconds():
    """Each op is an "X" event: ts/dur in us, pid = rank, tid = stream (one per comm dim), args."""
    doc = chrome_trace(_two_stage(), detail="ops")
    x = [e for e in doc["traceEvents"] if e["ph"] == "X"]
    assert len(x) == 4
    qkv = x[0]
    assert qkv["name"] == "qkv" and qkv["cat"] == "gemm"
    assert qkv["ts"] == pytest.approx(0.0) and qkv["dur"] == pytest.approx(1000.0)
    rs = x[1]
    assert (rs["pid"], rs["tid"]) == (0, 2) and rs["args"]["dim"] == "tp"
    assert x[3]["tid"] == 5  # dp communication
    assert rs["args"]["exposed_us"] == pytest.approx(500.0)
    assert {e["pid"] for e in x} == {0, 8}
    assert doc["displayTimeUnit"] == "ms" and doc["otherData"]["scenario"] == "t"


def test_tracks_are_named_per_rank_and_stream():
    """Metadata events name each process "stage S / rank R" and each thread by its stream."""
    doc = chrome_trace(_two_stage())
    names = {(e["pid"], e["name"]): e["args"] for e in doc["traceEvents"] if e["ph"] == "M"}
    assert names[(8, "process_name")]["name"] == "stage 1 / rank 8"
    threads = {(e["pid"], e["tid"]): e["args"]["name"] for e in doc["traceEvents"]
               if e["ph"] == "M" and e["name"] == "thread_name"}
    assert threads[(0, 0)] == "compute stream" and threads[(0, 2)] == "tp communication"
    assert threads[(8, 5)] == "dp communication"


def test_idle_intervals_are_named_by_reason():
    """Results.waits become events on the idle track: the bubble and waits for a collective."""
    res = _two_stage()
    waits = pd.DataFrame([(1, 8, "pipeline", "", "", 0, 0, 0.0, 0.002),
                          (0, 0, "comm", "tp", "s0/c0/L0/fwd/attn_out_rs", 0, 0, 0.001, 0.0015)],
                         columns=["stage", "rank", "reason", "dim", "where", "microbatch", "chunk", "start_s", "end_s"])
    import dataclasses

    doc = chrome_trace(dataclasses.replace(res, waits=waits), detail="ops")
    idle = [e for e in doc["traceEvents"] if e["ph"] == "X" and e["cat"].startswith("wait:")]
    assert {(e["pid"], e["tid"], e["name"]) for e in idle} == {
        (8, 1, "bubble (waiting for a pipeline neighbour)"), (0, 1, "waiting for tp attn_out_rs")}
    assert idle[0]["dur"] == pytest.approx(2000.0)


def test_link_utilisation_becomes_counters_that_drop_to_zero_in_gaps():
    """Each tier is a counter track in percent, 0 between windows and after the last."""
    doc = chrome_trace(_two_stage())
    c = [(e["name"], e["ts"], e["args"]["percent"]) for e in doc["traceEvents"] if e["ph"] == "C"]
    spine = [(ts, v) for n, ts, v in c if n == "leaf-spine utilisation"]
    assert spine == [(0.0, 50.0), (pytest.approx(2000.0), 0.0), (pytest.approx(4000.0), 90.0),
                     (pytest.approx(6000.0), 0.0)]


def test_ranks_selects_processes_and_large_runs_default_to_one_rank_per_stage():
    """ranks= keeps only those ranks; a full-rank frame defaults to the first rank of each stage."""
    doc = chrome_trace(_two_stage(), ranks=[8])
    assert {e["pid"] for e in doc["traceEvents"] if e["ph"] == "X"} == {8}
    n = MAX_DEFAULT_RANKS + 6
    rows = [(r % 2, r, "compute", "f", "gemm", "", 0, 0, 0.0, 1e-3, 0.0) for r in range(n)]
    doc = chrome_trace(_results(rows))
    assert {e["pid"] for e in doc["traceEvents"] if e["ph"] == "X"} == {0, 1}


def test_written_trace_is_json_that_viewers_open(tmp_path):
    """write_chrome_trace writes the same document as JSON, with no temporary file left."""
    res = _two_stage()
    path = write_chrome_trace(res, tmp_path / "sub" / "t.json")
    doc = json.loads(path.read_text())
    assert doc == json.loads(json.dumps(chrome_trace(res)))
    assert [p.name for p in path.parent.iterdir()] == ["t.json"]


def test_link_utilisation_parquet_round_trips_with_metadata(tmp_path):
    """write_link_utilisation writes the link_util frame and the run's identity as metadata."""
    res = _two_stage()
    path = write_link_utilisation(res, tmp_path / "lu.parquet")
    table = pq.read_table(path)
    pd.testing.assert_frame_equal(table.to_pandas(), res.link_util)
    meta = json.loads(table.schema.metadata[b"oassim"])
    assert meta["scenario"] == "t" and meta["network"] == "analytical"


def test_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    """An exception while writing keeps the previous file intact and removes the temporary."""
    target = tmp_path / "x.parquet"
    target.write_text("old")

    def boom(tmp):
        tmp.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(target, boom)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["x.parquet"]
    with pytest.raises(Exception):
        write_parquet(SimpleNamespace(), target)  # not a frame: fails before touching the file
    assert target.read_text() == "old"


def test_atomic_write_gives_ordinary_file_permissions(tmp_path):
    """Files written atomically get the mode a plain open() gives (umask applied), not 0600."""
    import os

    mask = os.umask(0o022)
    try:
        path = atomic_write(tmp_path / "f.txt", lambda tmp: tmp.write_text("x"))
    finally:
        os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o644


# ---------------------------------------------------------------- bounds, lanes, level of detail
# Times are written to the nanosecond: comparisons allow that rounding (1e-3 us).
NS = 1e-3

# A 32-GPU job of an 8-layer model with ZeRO-1 (its parameter all-gather trails into the next
# iteration), simulated for real in about a second.
SMALL_JOB = {
    "name": "trace-test", "cluster": {"preset": "dgx-h100-superpod", "accelerators": 32},
    "workload": {"model": {"name": "tiny-gpt", "layers": 8, "hidden": 1024, "ffn_hidden": 4096, "heads": 16,
                           "vocab": 32000, "activation": "gelu"},
                 "seq_len": 1024, "global_batch": 32, "micro_batch": 1, "precision": "bf16", "recompute": "none"},
    "parallelism": {"tp": 2, "pp": 2, "dp": 8, "sp": True, "zero": 1}, "network": "analytical", "seed": 3,
}


@pytest.fixture(scope="module")
def small_run():
    from oassim.experiments import run

    return run(SMALL_JOB)


def _x(doc):
    return [e for e in doc["traceEvents"] if e["ph"] == "X"]


def _partial_overlaps(doc):
    """Pairs of complete events on one (pid, tid) that overlap without one containing the other."""
    by: dict = {}
    for e in _x(doc):
        by.setdefault((e["pid"], e["tid"]), []).append((e["ts"], e["ts"] + e["dur"]))
    bad = []
    for key, iv in by.items():
        iv.sort(key=lambda t: (t[0], -t[1]))
        stack: list = []
        for s, t in iv:
            while stack and stack[-1][1] <= s + NS:
                stack.pop()
            if stack and t > stack[-1][1] + NS:
                bad.append((key, stack[-1], (s, t)))
            stack.append((s, t))
    return bad


def _union(iv):
    total, end = 0.0, float("-inf")
    for s, t in sorted(iv):
        if t > end:
            total += t - max(s, end)
            end = t
    return total


def _trailing():
    """A dp all-gather issued at 9 ms of a 10 ms iteration that ends at 12 ms."""
    return _results([
        (0, 0, "compute", "qkv", "gemm", "", 0, 0, 0.0, 0.009, 0.0),
        (0, 0, "comm", "param_all_gather", "all_gather", "dp", -1, -1, 0.009, 0.012, 0.001),
    ], [(0.0, 0.006, "leaf-spine", 0.5, 1e6), (0.006, 0.012, "leaf-spine", 0.4, 1e6)])


@pytest.mark.parametrize("detail", ["ops", "phases"])
def test_every_event_lies_within_the_iteration(detail):
    """No event ends after the iteration: a call running past it is drawn at its start (steady state),
    with its whole duration kept (3 ms = 1 ms before the end + 2 ms from 0)."""
    doc = chrome_trace(_trailing(), detail=detail)
    T = 0.01 * 1e6
    for e in doc["traceEvents"]:
        if e["ph"] in ("X", "C"):
            assert -NS <= e["ts"] and e["ts"] + e.get("dur", 0.0) <= T + NS, e
    gather = [e for e in _x(doc) if e["tid"] % 100 == 5]
    assert sum(e["dur"] for e in gather) == pytest.approx(3000.0, abs=NS)
    assert min(e["ts"] for e in gather) == pytest.approx(0.0)


def test_real_trace_stays_within_the_iteration(small_run):
    """The trace of a simulated ZeRO-1 job (parameter all-gather trailing) has every event in [0, T]."""
    T = small_run.iteration_time_s * 1e6
    for detail in ("ops", "phases"):
        for e in _x(chrome_trace(small_run, detail=detail)):
            assert -NS <= e["ts"] and e["ts"] + e["dur"] <= T + NS, (detail, e)


def test_overlapping_gradient_buckets_get_their_own_lanes():
    """Buckets in flight together on the dp stream go to separate threads, so no thread holds two
    partially overlapping events; the extra lanes are named after the stream."""
    res = _results([
        (1, 8, "compute", "qkv_dgrad", "gemm", "", 0, 0, 0.0, 0.003, 0.0),
        (1, 8, "comm", "grad_bucket_0", "reduce_scatter", "dp", -1, -1, 0.001, 0.004, 0.0),
        (1, 8, "comm", "grad_bucket_1", "reduce_scatter", "dp", -1, -1, 0.002, 0.005, 0.0),
        (1, 8, "comm", "grad_bucket_2", "reduce_scatter", "dp", -1, -1, 0.0045, 0.006, 0.0),
    ])
    doc = chrome_trace(res, detail="ops")
    assert _partial_overlaps(doc) == []
    dp = [e for e in _x(doc) if e["tid"] % 100 == 5]
    assert len({e["tid"] for e in dp}) == 2 and len(dp) == 3
    names = {e["tid"]: e["args"]["name"] for e in doc["traceEvents"] if e["name"] == "thread_name"}
    assert names[5] == "dp communication" and names[105] == "dp communication (2)"


@pytest.mark.parametrize("detail", ["ops", "phases"])
def test_real_trace_events_nest_or_are_disjoint_on_every_thread(small_run, detail):
    """On no (pid, tid) of a simulated iteration do two complete events partially overlap."""
    assert _partial_overlaps(chrome_trace(small_run, detail=detail)) == []


def test_phases_detail_has_far_fewer_events_and_the_same_covered_time(small_run):
    """The default (phases) trace has at least 10x fewer complete events than the ops trace; per rank
    and stream its busy_us add up to the time the ops trace covers (to the nanosecond rounding of each
    event), and every op event lies inside a phase event of its stream."""
    ops, phases = chrome_trace(small_run, detail="ops"), chrome_trace(small_run)
    assert phases["otherData"]["detail"] == "phases"
    assert 10 * len(_x(phases)) <= len(_x(ops))
    cover: dict = {}
    for e in _x(ops):
        cover.setdefault((e["pid"], e["tid"] % 100), []).append((e["ts"], e["ts"] + e["dur"]))
    busy: dict = {}
    spans: dict = {}
    for e in _x(phases):
        k = (e["pid"], e["tid"] % 100)
        busy[k] = busy.get(k, 0.0) + e["args"]["busy_us"]
        spans.setdefault(k, []).append((e["ts"], e["ts"] + e["dur"]))
    assert set(busy) == set(cover)
    for k, iv in cover.items():
        assert busy[k] == pytest.approx(_union(iv), abs=NS * len(iv)), k
        for s, t in iv:
            assert any(a - NS <= s and t <= b + NS for a, b in spans[k]), (k, s, t)


def test_unknown_detail_is_refused():
    """A level of detail other than phases or ops is a ValueError naming the allowed ones."""
    with pytest.raises(ValueError, match="phases, ops"):
        chrome_trace(_two_stage(), detail="kernels")
