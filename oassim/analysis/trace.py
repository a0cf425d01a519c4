"""Exports of a simulated iteration: Chrome trace JSON and Parquet tables.

What is exported: the ``ops`` frame of :class:`~oassim.scheduler.results.Results` as a Trace
Event Format document (the JSON that Perfetto, ``chrome://tracing`` and ``ui.perfetto.dev``
open): complete events (``"ph": "X"``, ``ts``/``dur`` in microseconds), one process
(``pid``) per rank with its pipeline stage in the name, one thread (``tid``) per stream
(compute, its idle intervals, one communication stream per parallel dimension, extra lanes
where a stream's calls overlap), plus one counter track per link tier with its utilisation
over time (from ``link_util``). Two levels of detail: one event per operation (``ops``), or
one per micro-batch phase and track (``phases``, the default: a viewer opens it at once).
Tables (``link_util``, ``ops``, ``collectives``) are written as Parquet through pyarrow.

Why here: exports are pure functions of Results (docs/architecture.md decision 8) and write only when
asked; every file is written atomically (a temporary file in the same folder, then
``os.replace``), so a crash never leaves a half-written file behind.

Format reference: "Trace Event Format" (Google, the document linked from the Catapult
project): ``X`` events carry ``name, cat, ph, ts, dur, pid, tid, args``; ``M`` metadata
events ``process_name`` / ``thread_name`` / ``process_sort_index`` name the tracks; ``C``
events are counters. Complete events of one thread must nest or be disjoint.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

__all__ = [
    "chrome_trace",
    "write_chrome_trace",
    "write_parquet",
    "write_link_utilisation",
    "atomic_write",
    "MAX_DEFAULT_RANKS",
    "DETAILS",
    "DEFAULT_DETAIL",
]

# Above this many distinct ranks in the ops frame (full-rank runs), the default trace keeps
# the first rank of each stage: a 16k-rank trace would be gigabytes and no viewer opens it.
MAX_DEFAULT_RANKS = 64

# pid of the network counter track: above any rank id (at most 2**20 accelerators).
_NETWORK_PID = 1 << 21

# Threads of a rank: its compute stream, the idle intervals of that stream (Results.waits),
# then one communication stream per parallel dimension (calls of different dimensions overlap
# in time, and a viewer draws overlapping events of one thread as a broken nesting).
_COMPUTE_TID, _IDLE_TID = 0, 1
_DIM_TIDS = {"tp": 2, "cp": 3, "ep": 4, "dp": 5, "pp": 6}

# Levels of detail. "ops": one event per operation and per idle interval (a GPT-3 175B
# iteration on 3k A100 is about 128k events, 24 MB). "phases", the default: on each track the
# consecutive events of one micro-batch, chunk and phase merged into one event whose args keep
# how many there were and the time they cover.
DETAILS = ("phases", "ops")
DEFAULT_DETAIL = "phases"

# Times closer than this (us) count as equal: op times are sums of float offsets, and a viewer
# must not draw a sub-nanosecond overlap of back-to-back events as a broken nesting.
_EPS_US = 1e-3

# Name suffixes of backward compute ops (oassim.workload.ops names them so).
_BACKWARD = ("_bwd", "_dgrad", "_wgrad")


def _track(stream: str, dim: str) -> str:
    if stream == "compute":
        return "compute stream"
    return f"{dim} communication" if dim else f"{stream} stream"


def _short(where: Any) -> str:
    return str(where).rsplit("/", 1)[-1]


def _us(seconds: float) -> float:
    return float(seconds) * 1e6


def _selected_ranks(ops: Any, ranks: Iterable[int] | None) -> list[int]:
    if ranks is not None:
        return sorted({int(r) for r in ranks})
    present = sorted({int(r) for r in ops["rank"].unique()}) if len(ops) else []
    if len(present) <= MAX_DEFAULT_RANKS:
        return present
    first = ops.groupby("stage")["rank"].min()
    return sorted(int(r) for r in first)


def _clean(value: Any) -> Any:
    """A JSON-ready scalar (numpy scalars to Python; NaN to None)."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and value != value:
        return None
    return value


class _Span:
    """One interval of one track before it becomes a trace event (times in microseconds)."""

    __slots__ = ("pid", "track", "tid", "name", "cat", "t0", "t1", "args", "mb", "chunk", "phase", "n", "busy")

    def __init__(self, pid: int, track: str, tid: int, name: str, cat: str, t0: float, t1: float,
                 args: dict[str, Any], mb: Any, chunk: Any):
        self.pid, self.track, self.tid, self.name, self.cat = pid, track, tid, name, cat
        self.t0, self.t1 = t0, (t1 if t1 == t1 and t1 > t0 else t0)  # NaN end: a call never completed
        self.args, self.mb, self.chunk = args, mb, chunk
        self.phase, self.n, self.busy = "", 1, self.t1 - self.t0

    def copy(self) -> "_Span":
        s = _Span(self.pid, self.track, self.tid, self.name, self.cat, self.t0, self.t1, dict(self.args), self.mb,
                  self.chunk)
        return s


def _spans(results: Any, keep: list[int]) -> tuple[list[_Span], dict[int, int]]:
    """The op rows and idle intervals of the kept ranks as spans; and each rank's stage."""
    ops = results.ops
    sel = ops[ops["rank"].isin(keep)] if len(ops) else ops
    other: dict[str, int] = {}
    spans: list[_Span] = []
    stage_of: dict[int, int] = {}
    for row in sel.itertuples(index=False):
        stream, dim = str(row.stream), str(row.dim)
        track = _track(stream, dim)
        if stream == "compute":
            tid = _COMPUTE_TID
        else:
            tid = _DIM_TIDS.get(dim) or other.setdefault(track, 10 + len(other))
        rank = int(row.rank)
        stage_of.setdefault(rank, int(row.stage))
        mb, chunk = _clean(row.microbatch), _clean(row.chunk)
        args = {"stage": int(row.stage), "dim": dim, "microbatch": mb, "chunk": chunk}
        if stream != "compute":
            args["exposed_us"] = _us(row.exposed_s)
        spans.append(_Span(rank, track, tid, str(row.name), str(row.kind), _us(row.start_s), _us(row.end_s), args,
                           mb, chunk))
    waits = getattr(results, "waits", None)
    if waits is not None and len(waits):
        for row in waits[waits["rank"].isin(stage_of.keys())].itertuples(index=False):
            reason, dim = str(row.reason), str(row.dim)
            mb = _clean(row.microbatch)
            spans.append(_Span(int(row.rank), "idle", _IDLE_TID, _wait_label(reason, dim, _short(row.where)),
                               f"wait:{reason}", _us(row.start_s), _us(row.end_s),
                               {"reason": reason, "dim": dim, "where": str(row.where), "microbatch": mb},
                               mb, _clean(row.chunk)))
    return spans, stage_of


def _wait_label(reason: str, dim: str, where: str) -> str:
    return {"pipeline": "bubble (waiting for a pipeline neighbour)",
            "sync": f"waiting for the {dim} group to reach {where}" if where else f"waiting for the {dim} group",
            "comm": f"waiting for {dim} {where}" if where else f"waiting for {dim} communication"}.get(reason, reason)


def _wrap(spans: list[_Span], period_us: float) -> list[_Span]:
    """Fold what runs past the iteration back to its start.

    The iteration time is the steady-state period: calls the optimizer leaves in flight (the
    ZeRO parameter all-gather) overlap the next iteration's first forward, and the replay
    extends the iteration only by what they outlast (``oassim.scheduler.replay``). The part of
    such a call after the period therefore runs, in steady state, at the start of every
    iteration: it is drawn there, marked ``from_previous_iteration``.
    """
    if not period_us > 0:
        return spans
    out: list[_Span] = []
    for s in spans:
        s.t0 = min(max(s.t0, 0.0), period_us)
        if s.t1 <= period_us + _EPS_US:
            s.t1 = max(s.t0, min(s.t1, period_us))
            s.busy = s.t1 - s.t0
            out.append(s)
            continue
        tail = s.copy()
        tail.t0, tail.t1 = 0.0, min(s.t1 - period_us, period_us)
        tail.busy = tail.t1
        tail.name = f"{s.name} (from the previous iteration)"
        tail.args["from_previous_iteration"] = True
        s.t1 = period_us
        s.busy = s.t1 - s.t0
        s.args["continues_into_next_iteration"] = True
        out.extend((s, tail) if s.t1 > s.t0 else (tail,))
    return out


def _assign_phases(spans: list[_Span]) -> None:
    """Label each span forward, backward or optimizer.

    A compute op is backward when its name says so (the workload names them ``*_bwd``,
    ``*_dgrad``, ``*_wgrad``) or when an earlier op of its micro-batch and chunk already was
    (recomputed forward ops inside a backward); a call takes the phase of the last compute op
    of its micro-batch that started before it (the op that issued it), an idle interval that
    of the next one (the op it held up). Anything outside micro-batches is "optimizer".
    """
    by_rank: dict[int, list[_Span]] = {}
    for s in spans:
        by_rank.setdefault(s.pid, []).append(s)
    for lst in by_rank.values():
        lst.sort(key=lambda s: (s.t0, s.tid != _COMPUTE_TID))
        now: dict[tuple[Any, Any], str] = {}
        idle: list[_Span] = []
        for s in lst:
            key = (s.mb, s.chunk)
            if s.mb is None or s.mb < 0:
                s.phase = "optimizer"
            elif s.tid == _COMPUTE_TID:
                bwd = s.name.endswith(_BACKWARD) or now.get(key) == "backward"
                s.phase = now[key] = "backward" if bwd else "forward"
                for w in idle:
                    if (w.mb, w.chunk) == key:
                        w.phase = s.phase
                idle = [w for w in idle if not w.phase]
            elif s.tid == _IDLE_TID:
                idle.append(s)
            else:
                s.phase = now.get(key, "forward")
        for w in idle:
            w.phase = now.get((w.mb, w.chunk), "forward")


def _run_name(s: _Span, n: int, mixed: tuple[Any, Any] | None) -> str:
    if mixed is not None:
        return f"{n} {s.track} calls in flight together (micro-batches {mixed[0]} to {mixed[1]})"
    mb = "" if s.phase == "optimizer" else f" mb {s.mb}" + (f" chunk {s.chunk}" if s.chunk else "")
    if s.tid == _IDLE_TID:
        return f"{s.phase}{mb}: " + _wait_label(s.args["reason"], s.args["dim"], "") + (
            f" ({n} intervals)" if n > 1 else "")
    if n == 1:
        return f"{s.phase}{mb}: {s.name}"
    return f"{s.phase}{mb} ({n} ops)" if s.tid == _COMPUTE_TID else f"{s.phase}{mb} ({n} {s.track} calls)"


def _run_key(s: _Span) -> tuple[Any, ...]:
    # the part of a call folded back from the previous iteration never merges with this one's
    return (s.mb, s.chunk, s.phase, s.cat if s.tid == _IDLE_TID else "", "from_previous_iteration" in s.args)


def _aggregate(spans: list[_Span]) -> list[_Span]:
    """Merge the spans of each track into runs: consecutive spans of one micro-batch, chunk and
    phase (and, on the idle track, one reason), and any span that overlaps the run so far
    (calls of several micro-batches in flight together). ``n`` counts a run's spans, ``busy``
    is the time they cover (their union); runs of a track are disjoint, so their ``busy`` add
    up to the time the track covers at ``ops`` detail."""
    _assign_phases(spans)
    tracks: dict[tuple[int, int], list[_Span]] = {}
    for s in spans:
        tracks.setdefault((s.pid, s.tid), []).append(s)
    out: list[_Span] = []
    for lst in tracks.values():
        lst.sort(key=lambda s: (s.t0, s.t1))
        i = 0
        while i < len(lst):
            first = lst[i]
            key = _run_key(first)
            end, busy, j, same = first.t1, first.t1 - first.t0, i + 1, True
            while j < len(lst):
                s = lst[j]
                if _run_key(s) != key:
                    if s.t0 >= end - _EPS_US:
                        break
                    same = False
                busy += max(0.0, s.t1 - max(s.t0, end))
                end = max(end, s.t1)
                j += 1
            run = lst[i:j]
            mbs = sorted({-1 if s.mb is None else s.mb for s in run})
            mixed = None if same else (mbs[0], mbs[-1])
            phase = first.phase if same else "mixed"
            args = {k: first.args[k] for k in ("stage", "dim", "reason") if k in first.args}
            args.update({"phase": phase, "microbatch": first.mb if same else mbs, "chunk": first.chunk, "ops": j - i,
                         "busy_us": round(busy, 3)})
            if "from_previous_iteration" in first.args:
                args["from_previous_iteration"] = True
            if first.tid not in (_COMPUTE_TID, _IDLE_TID):
                args["exposed_us"] = round(sum(s.args.get("exposed_us", 0.0) for s in run), 3)
            cat = first.cat if first.tid == _IDLE_TID and same else f"phase:{phase}"
            agg = _Span(first.pid, first.track, first.tid, _run_name(first, j - i, mixed), cat, first.t0, end, args,
                        first.mb, first.chunk)
            agg.phase, agg.n, agg.busy = phase, j - i, busy
            out.append(agg)
            i = j
    return out


def _place(spans: list[_Span]) -> tuple[list[dict[str, Any]], dict[tuple[int, int], tuple[str, int]]]:
    """Trace events of the spans, concurrent spans of one track put on extra lanes.

    A viewer nests the complete events of one thread by time; two that partially overlap
    (gradient buckets in flight together on the dp stream) are drawn as a broken nesting.
    Each track is therefore split into lanes, greedily: a span goes to the first lane that is
    free at its start, lane k > 0 becoming thread ``tid + 100 k`` named "TRACK (k+1)". Times
    are written to the nanosecond; spans that touch within that rounding are made to abut.
    """
    tracks: dict[tuple[int, int], list[_Span]] = {}
    for s in spans:
        s.t0, s.t1 = round(s.t0, 3), round(s.t1, 3)
        tracks.setdefault((s.pid, s.tid), []).append(s)
    events: list[dict[str, Any]] = []
    threads: dict[tuple[int, int], tuple[str, int]] = {}
    for (pid, tid), lst in tracks.items():
        lst.sort(key=lambda s: (s.t0, -s.t1))
        ends: list[float] = []
        for s in lst:
            lane = next((k for k, e in enumerate(ends) if s.t0 >= e - _EPS_US), len(ends))
            if lane == len(ends):
                ends.append(s.t0)
            t0 = max(s.t0, ends[lane])
            t1 = max(s.t1, t0)
            ends[lane] = t1
            lt = tid + 100 * lane
            threads.setdefault((pid, lt), (s.track if lane == 0 else f"{s.track} ({lane + 1})", 100 * tid + lane))
            events.append({"name": s.name, "cat": s.cat, "ph": "X", "ts": t0, "dur": round(t1 - t0, 3),
                           "pid": pid, "tid": lt, "args": s.args})
    return events, threads


def chrome_trace(results: Any, ranks: Iterable[int] | None = None, detail: str = DEFAULT_DETAIL) -> dict[str, Any]:
    """A Trace Event Format document of one iteration.

    Parameters
    ----------
    results : Results
        A simulated iteration.
    ranks : iterable of int, optional
        Accelerator ranks to include. Default: every rank of the ``ops`` frame when there
        are at most :data:`MAX_DEFAULT_RANKS` (the representative-rank mode holds one per
        pipeline stage), else the first rank of each stage.
    detail : {"phases", "ops"}
        Level of detail (:data:`DETAILS`). ``"ops"``: one event per operation and per idle
        interval. ``"phases"`` (default): on each track, the consecutive events of one
        micro-batch, chunk and phase (forward, backward, optimizer) merged into one, with
        ``args`` ``ops`` (how many), ``busy_us`` (the time they cover) and, on communication
        tracks, ``exposed_us`` (summed); tens of times fewer events.

    Returns
    -------
    dict
        ``{"traceEvents": [...], "displayTimeUnit": "ms", "otherData": {...}}``. Events:
        ``ph "X"``, ``ts`` and ``dur`` in microseconds from the iteration start, every one
        within ``[0, iteration time]`` (what a call runs past the iteration is drawn at its
        start, see :func:`_wrap`); ``pid`` = rank; ``tid`` = stream: 0 compute; 1 the
        compute stream's idle intervals from ``Results.waits``, named by reason (pipeline
        bubble, waiting for a collective or for a group to synchronise); 2-6 the
        communication of tp, cp, ep, dp, pp; ``tid + 100 k`` the k-th extra lane of a stream
        whose calls overlap in time (events of one thread never partially overlap).
        ``cat`` = op kind (``ops``) or ``phase:<phase>`` (``phases``), ``wait:<reason>`` for
        idle intervals. ``args``: stage, dim, micro-batch, chunk, exposed_us. Counter events
        (``ph "C"``, pid :data:`_NETWORK_PID`): mean link utilisation of each tier, percent.

    Raises
    ------
    ValueError
        ``detail`` is not one of :data:`DETAILS`.
    """
    if detail not in DETAILS:
        raise ValueError(f"trace detail must be one of {', '.join(DETAILS)}, got {detail!r}")
    period = _us(results.iteration_time_s)
    keep = _selected_ranks(results.ops, ranks)
    spans, stage_of = _spans(results, keep)
    spans = _wrap(spans, period)
    if detail == "phases":
        spans = _aggregate(spans)
    events, threads = _place(spans)
    meta: list[dict[str, Any]] = []
    for rank, stage in sorted(stage_of.items()):
        meta.append({"name": "process_name", "ph": "M", "pid": rank, "tid": 0,
                     "args": {"name": f"stage {stage} / rank {rank}"}})
        meta.append({"name": "process_sort_index", "ph": "M", "pid": rank, "tid": 0,
                     "args": {"sort_index": stage}})
    for (pid, tid), (track, order) in sorted(threads.items()):
        meta.append({"name": "thread_name", "ph": "M", "pid": pid, "tid": tid, "args": {"name": track}})
        meta.append({"name": "thread_sort_index", "ph": "M", "pid": pid, "tid": tid,
                     "args": {"sort_index": order}})
    counters = _tier_counters(results.link_util, period)
    if counters:
        meta.append({"name": "process_name", "ph": "M", "pid": _NETWORK_PID, "tid": 0,
                     "args": {"name": "network: mean link utilisation per tier (%)"}})
    scenario = getattr(results, "scenario", {}) or {}
    other = {"scenario": scenario.get("name"), "network": getattr(results, "network", None),
             "iteration_time_s": float(results.iteration_time_s), "ranks": keep, "detail": detail,
             "version": (getattr(results, "provenance", {}) or {}).get("version")}
    return {"traceEvents": meta + events + counters, "displayTimeUnit": "ms", "otherData": other}


def _tier_counters(link_util: Any, period_us: float) -> list[dict[str, Any]]:
    """Counter events: each tier's utilisation (percent) from window start, 0 in gaps.

    Windows past the iteration (the recorder spans the last call's end) are cut at it.
    """
    if link_util is None or not len(link_util):
        return []
    out: list[dict[str, Any]] = []
    for tier, df in link_util.sort_values(["tier", "t0_s"]).groupby("tier", sort=True, observed=True):
        name = f"{tier} utilisation"
        end = None
        for row in df.itertuples(index=False):
            if _us(row.t0_s) >= period_us:
                break
            if end is not None and row.t0_s > end:
                out.append({"name": name, "ph": "C", "pid": _NETWORK_PID, "tid": 0, "ts": _us(end),
                            "args": {"percent": 0.0}})
            out.append({"name": name, "ph": "C", "pid": _NETWORK_PID, "tid": 0, "ts": _us(row.t0_s),
                        "args": {"percent": 100.0 * float(row.utilisation)}})
            end = float(row.t1_s)
        if end is not None:
            out.append({"name": name, "ph": "C", "pid": _NETWORK_PID, "tid": 0, "ts": min(_us(end), period_us),
                        "args": {"percent": 0.0}})
    return out


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it to ``path``.

    The rename is atomic on POSIX and Windows (``os.replace``): readers see the old file or
    the whole new one, never a part. On failure the temporary file is removed.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        # mkstemp makes the file private (0600); give it the mode a plain open() would
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return target


def write_chrome_trace(results: Any, path: str | Path, ranks: Iterable[int] | None = None,
                       detail: str = DEFAULT_DETAIL) -> Path:
    """Write :func:`chrome_trace` (``ranks``, ``detail`` as there) as JSON to ``path``
    (atomically); returns the path."""
    doc = chrome_trace(results, ranks, detail)

    def write(tmp: Path) -> None:
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(doc, fh, separators=(",", ":"))

    return atomic_write(path, write)


def write_parquet(frame: Any, path: str | Path, metadata: Mapping[str, Any] | None = None) -> Path:
    """Write a DataFrame to Parquet through pyarrow (atomically); returns the path.

    Parameters
    ----------
    frame : pandas.DataFrame
    path : str or Path
    metadata : mapping, optional
        Stored as JSON under the schema metadata key ``oassim``.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame, preserve_index=False)
    if metadata:
        meta = dict(table.schema.metadata or {})
        meta[b"oassim"] = json.dumps(metadata, default=str).encode()
        table = table.replace_schema_metadata(meta)
    return atomic_write(path, lambda tmp: pq.write_table(table, tmp))


def _run_metadata(results: Any) -> dict[str, Any]:
    scenario = getattr(results, "scenario", {}) or {}
    prov = getattr(results, "provenance", {}) or {}
    return {"scenario": scenario.get("name"), "network": getattr(results, "network", None),
            "version": prov.get("version"), "seed": prov.get("seed"), "git": prov.get("git")}


def write_link_utilisation(results: Any, path: str | Path) -> Path:
    """Write the ``link_util`` frame (t0_s, t1_s, tier, utilisation, bytes) to Parquet,
    atomically, with the scenario name, network, version, seed and git state as metadata."""
    return write_parquet(results.link_util, path, _run_metadata(results))
