"""Exports of a simulated iteration: Chrome trace JSON and Parquet tables.

What is exported: the ``ops`` frame of :class:`~oassim.scheduler.results.Results` as a Trace
Event Format document (the JSON that Perfetto, ``chrome://tracing`` and ``ui.perfetto.dev``
open): one complete event (``"ph": "X"``, ``ts``/``dur`` in microseconds) per operation, one
process (``pid``) per rank with its pipeline stage in the name, one thread (``tid``) per
stream (compute, its idle intervals, one communication stream per parallel dimension), plus
one counter track per link tier with its utilisation over time (from ``link_util``). Tables
(``link_util``, ``ops``, ``collectives``) are written as Parquet through pyarrow.

Why here: exports are pure functions of Results (docs/architecture.md decision 8) and write only when
asked; every file is written atomically (a temporary file in the same folder, then
``os.replace``), so a crash never leaves a half-written file behind.

Format reference: "Trace Event Format" (Google, the document linked from the Catapult
project): ``X`` events carry ``name, cat, ph, ts, dur, pid, tid, args``; ``M`` metadata
events ``process_name`` / ``thread_name`` / ``process_sort_index`` name the tracks; ``C``
events are counters.
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


def _track(stream: str, dim: str) -> str:
    if stream == "compute":
        return "compute stream"
    return f"{dim} communication" if dim else f"{stream} stream"


def _track_tid(stream: str, dim: str, n: int) -> int:
    if stream == "compute":
        return _COMPUTE_TID
    return _DIM_TIDS.get(dim, 10 + n)


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


def chrome_trace(results: Any, ranks: Iterable[int] | None = None) -> dict[str, Any]:
    """A Trace Event Format document of one iteration.

    Parameters
    ----------
    results : Results
        A simulated iteration.
    ranks : iterable of int, optional
        Accelerator ranks to include. Default: every rank of the ``ops`` frame when there
        are at most :data:`MAX_DEFAULT_RANKS` (the representative-rank mode holds one per
        pipeline stage), else the first rank of each stage.

    Returns
    -------
    dict
        ``{"traceEvents": [...], "displayTimeUnit": "ms", "otherData": {...}}``. Operation
        events: ``ph "X"``, ``ts`` and ``dur`` in microseconds from the iteration start,
        ``pid`` = rank, ``tid`` = stream (0 compute; 1 the compute stream's idle intervals
        from ``Results.waits``, named by reason: pipeline bubble, waiting for a collective or
        for a group to synchronise; 2-6 the communication of tp, cp, ep, dp, pp), ``cat`` = op
        kind (``wait:<reason>`` for idle intervals), ``args`` = stage, dim, micro-batch,
        chunk, exposed_us. Counter events (``ph "C"``, pid :data:`_NETWORK_PID`): mean link
        utilisation of each tier, percent.
    """
    ops = results.ops
    keep = _selected_ranks(ops, ranks)
    events: list[dict[str, Any]] = []
    sel = ops[ops["rank"].isin(keep)] if len(ops) else ops
    tids: dict[str, int] = {}
    stage_of: dict[int, int] = {}
    for row in sel.itertuples(index=False):
        stream, dim = str(row.stream), str(row.dim)
        track = _track(stream, dim)
        tid = tids.setdefault(track, _track_tid(stream, dim, len(tids)))
        rank = int(row.rank)
        stage_of.setdefault(rank, int(row.stage))
        args = {"stage": int(row.stage), "dim": dim, "microbatch": _clean(row.microbatch),
                "chunk": _clean(row.chunk)}
        if stream != "compute":
            args["exposed_us"] = _us(row.exposed_s)
        events.append({
            "name": str(row.name), "cat": str(row.kind), "ph": "X",
            "ts": _us(row.start_s), "dur": max(0.0, _us(row.end_s) - _us(row.start_s)),
            "pid": rank, "tid": tid, "args": args,
        })
    waits = getattr(results, "waits", None)
    if waits is not None and len(waits):
        for row in waits[waits["rank"].isin(stage_of.keys())].itertuples(index=False):
            tid = tids.setdefault("idle", _IDLE_TID)
            reason, dim = str(row.reason), str(row.dim)
            label = {"pipeline": "bubble (waiting for a pipeline neighbour)",
                     "sync": f"waiting for the {dim} group to reach {_short(row.where)}",
                     "comm": f"waiting for {dim} {_short(row.where)}"}.get(reason, reason)
            events.append({"name": label, "cat": f"wait:{reason}", "ph": "X", "ts": _us(row.start_s),
                           "dur": max(0.0, _us(row.end_s) - _us(row.start_s)), "pid": int(row.rank), "tid": tid,
                           "args": {"reason": reason, "dim": dim, "where": str(row.where),
                                    "microbatch": _clean(row.microbatch)}})
    meta: list[dict[str, Any]] = []
    for rank, stage in sorted(stage_of.items()):
        meta.append({"name": "process_name", "ph": "M", "pid": rank, "tid": 0,
                     "args": {"name": f"stage {stage} / rank {rank}"}})
        meta.append({"name": "process_sort_index", "ph": "M", "pid": rank, "tid": 0,
                     "args": {"sort_index": stage}})
        for track, tid in tids.items():
            meta.append({"name": "thread_name", "ph": "M", "pid": rank, "tid": tid, "args": {"name": track}})
            meta.append({"name": "thread_sort_index", "ph": "M", "pid": rank, "tid": tid,
                         "args": {"sort_index": tid}})
    counters = _tier_counters(results.link_util)
    if counters:
        meta.append({"name": "process_name", "ph": "M", "pid": _NETWORK_PID, "tid": 0,
                     "args": {"name": "network: mean link utilisation per tier (%)"}})
    scenario = getattr(results, "scenario", {}) or {}
    other = {"scenario": scenario.get("name"), "network": getattr(results, "network", None),
             "iteration_time_s": float(results.iteration_time_s), "ranks": keep,
             "version": (getattr(results, "provenance", {}) or {}).get("version")}
    return {"traceEvents": meta + events + counters, "displayTimeUnit": "ms", "otherData": other}


def _tier_counters(link_util: Any) -> list[dict[str, Any]]:
    """Counter events: each tier's utilisation (percent) from window start, 0 in gaps."""
    if link_util is None or not len(link_util):
        return []
    out: list[dict[str, Any]] = []
    for tier, df in link_util.sort_values(["tier", "t0_s"]).groupby("tier", sort=True):
        name = f"{tier} utilisation"
        end = None
        for row in df.itertuples(index=False):
            if end is not None and row.t0_s > end:
                out.append({"name": name, "ph": "C", "pid": _NETWORK_PID, "tid": 0, "ts": _us(end),
                            "args": {"percent": 0.0}})
            out.append({"name": name, "ph": "C", "pid": _NETWORK_PID, "tid": 0, "ts": _us(row.t0_s),
                        "args": {"percent": 100.0 * float(row.utilisation)}})
            end = float(row.t1_s)
        out.append({"name": name, "ph": "C", "pid": _NETWORK_PID, "tid": 0, "ts": _us(end),
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


def write_chrome_trace(results: Any, path: str | Path, ranks: Iterable[int] | None = None) -> Path:
    """Write :func:`chrome_trace` as JSON to ``path`` (atomically); returns the path."""
    doc = chrome_trace(results, ranks)

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
