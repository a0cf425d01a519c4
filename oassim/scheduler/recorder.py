"""The recorder: what the replay saw, kept as compact records and turned into flat frames.

What is recorded: every compute segment (one record per SimPy timeout, expanded into one row
per op at the end with numpy), every collective instance (:class:`~oassim.scheduler.comm.
Flight`) and each rank's view of it (issue time, exposed time), and every interval the
compute stream sat idle (waiting for a pipeline neighbour, for the other ranks of a
synchronous call, or for communication). The frames follow the Results contract
(``oassim.scheduler.results``); strings are categorical, so that a million-row frame stays
compact.

Link utilisation over time is built from the engine's per-link busy time and bytes of each
costed call, spread evenly over the call's actual ``[start, end]`` (a fluid picture: the
engine does not say when inside a call each phase ran), summed per link tier and window.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from oassim.collectives import busbw_factor
from oassim.scheduler.comm import Flight
from oassim.scheduler.program import OpTable, short_name

__all__ = ["Recorder", "WAIT_COLUMNS", "REASONS", "DIM_NAMES"]

WAIT_COLUMNS = ["stage", "rank", "reason", "dim", "where", "microbatch", "chunk", "start_s", "end_s"]
REASONS = ("pipeline", "sync", "comm")
DIM_NAMES = ("", "tp", "cp", "ep", "dp", "pp")
_cat = pd.Categorical.from_codes


class Recorder:
    """Collects records during a replay; the ``*_frame`` methods build DataFrames at the end.

    Parameters
    ----------
    members : list of (stage, rank)
        The simulated ranks (one representative per stage, or every rank).
    """

    def __init__(self, members: list[tuple[int, int]]):
        self.members = members
        # six numbers per segment, flat (seg_id, start_s, factor, member, mb, chunk): numbers in a
        # list are not containers the cyclic collector has to scan, tuples would be
        self.segments: list[float] = []
        self.comm_rows: list[list[Any]] = []  # [member, flight, issue_s, exposed_s, arrive_s]
        self.flights: list[Flight] = []
        self.flight_static: list[int] = []  # six numbers per flight, flat (as segments)
        self.waits: list[float] = []  # seven numbers per idle interval, flat
        self.infos: list[Any] = []  # the CommModel's CallInfo list (set by the caller)
        self._calls: dict[int, int] = {}
        self._call_list: list[Any] = []

    # ---------------------------------------------------------------- during the run
    def segment(self, seg_id: int, start_s: float, factor: float, member: int, mb: int, chunk: int) -> None:
        """A compute segment started at ``start_s`` with durations scaled by ``factor``."""
        self.segments.extend((seg_id, start_s, factor, member, mb, chunk))

    def flight(self, fl: Flight) -> None:
        """A collective instance was created (numbers it and codes its call)."""
        fl.index = len(self.flights)
        fl.code = self._code(fl.call)
        self.flights.append(fl)
        self.flight_static.extend((fl.code, fl.info.index, fl.stage, fl.microbatch, fl.chunk, fl.group))

    def comm(self, member: int, flight: Flight, issue_s: float) -> list[Any]:
        """Member ``member`` issued ``flight`` at ``issue_s``; returns its mutable row
        ``[member, flight, issue_s, exposed_s, arrive_s]``."""
        row = [member, flight, issue_s, 0.0, issue_s]
        self.comm_rows.append(row)
        return row

    def wait(self, member: int, reason: int, flight: Flight | None, mb: int, chunk: int, start_s: float,
             end_s: float) -> None:
        """The compute stream of ``member`` was idle over ``[start_s, end_s]``, for ``reason``
        (index into :data:`REASONS`) and ``flight`` (None for a pipeline wait)."""
        if end_s > start_s:
            self.waits.extend((member, reason, -1 if flight is None else flight.code, mb, chunk, start_s, end_s))

    # ---------------------------------------------------------------- helpers
    def _member_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        return (np.array([m[0] for m in self.members], dtype=np.int32),
                np.array([m[1] for m in self.members], dtype=np.int64))

    def _code(self, call: Any) -> int:
        k = id(call)
        c = self._calls.get(k)
        if c is None:
            c = self._calls[k] = len(self._call_list)
            self._call_list.append(call)
        return c

    def _wheres(self, extra: str | None = None) -> tuple[np.ndarray, list[str]]:
        """Code of each recorded call's ``where`` (equal strings share a code) and the
        categories; ``extra`` is appended as the last category."""
        cats: dict[str, int] = {}
        codes = np.array([cats.setdefault(c.where, len(cats)) for c in self._call_list], dtype=np.int32)
        if extra is not None:
            codes = np.append(codes, cats.setdefault(extra, len(cats))).astype(np.int32)
        return codes, list(cats)

    # ---------------------------------------------------------------- frames
    def ops_frame(self, table: OpTable) -> pd.DataFrame:
        """One row per compute op and per (rank, collective) pair (Results contract); compute
        rows first, then collective rows, not sorted by time (sort by ``rank, start_s`` if needed)."""
        st, rk = self._member_arrays()
        seg = np.array(self.segments, dtype=np.float64).reshape(-1, 6)
        sid = seg[:, 0].astype(np.int64)
        cnt = table.seg_count[sid]
        n = int(cnt.sum())
        rep = np.repeat(np.arange(len(sid)), cnt)
        idx = table.seg_first[sid][rep] + (np.arange(n) - np.repeat(np.cumsum(cnt) - cnt, cnt))
        fac = seg[rep, 2]
        start = seg[rep, 1] + fac * table.offset_s[idx]
        mem = seg[rep, 3].astype(np.int64)
        names = {v: i for i, v in enumerate(table.names)}
        kinds = {v: i for i, v in enumerate(table.kinds)}
        rows = self.comm_rows
        rr = _table([(r[0], r[1].code, r[1].microbatch, r[1].chunk, r[2], np.nan if r[1].end_s is None else r[1].end_s,
                      r[3]) for r in rows], 7)
        r_mem, r_call = rr[:, 0].astype(np.int64), rr[:, 1].astype(np.int64)
        calls = self._call_list
        call_name = np.array([names.setdefault(short_name(c.where), len(names)) for c in calls], dtype=np.int32)
        call_kind = np.array([kinds.setdefault(c.op, len(kinds)) for c in calls], dtype=np.int32)
        call_dim = np.array([DIM_NAMES.index(c.dim) for c in calls], dtype=np.int8)
        cols = {
            "stage": np.concatenate([st[mem], st[r_mem]]),
            "rank": np.concatenate([rk[mem], rk[r_mem]]),
            "stream": np.concatenate([np.zeros(n, np.int8), np.ones(len(rows), np.int8)]),
            "name": np.concatenate([table.name[idx], call_name[r_call] if len(calls) else np.zeros(0, np.int32)]),
            "kind": np.concatenate([table.kind[idx], call_kind[r_call] if len(calls) else np.zeros(0, np.int32)]),
            "dim": np.concatenate([np.zeros(n, np.int8), call_dim[r_call] if len(calls) else np.zeros(0, np.int8)]),
            "microbatch": np.concatenate([seg[rep, 4], rr[:, 2]]).astype(np.int32),
            "chunk": np.concatenate([seg[rep, 5], rr[:, 3]]).astype(np.int16),
            "layer": np.concatenate([table.layer[idx], np.full(len(rows), -1, np.int32)]),
            "start_s": np.concatenate([start, rr[:, 4]]),
            "end_s": np.concatenate([start + fac * table.duration_s[idx], rr[:, 5]]),
            "exposed_s": np.concatenate([np.zeros(n), rr[:, 6]]),
        }
        out = cols  # compute rows (by segment record), then collective rows (by issue): not sorted
        out["stream"] = _cat(out["stream"], categories=["compute", "comm"])
        out["name"] = _cat(out["name"], categories=list(names))
        out["kind"] = _cat(out["kind"], categories=list(kinds))
        out["dim"] = _cat(out["dim"], categories=list(DIM_NAMES))
        return pd.DataFrame(out)

    def collectives_frame(self) -> pd.DataFrame:
        """One row per collective instance (Results contract)."""
        fl = self.flights
        nf = len(fl)
        exposed = np.zeros(nf)
        if self.comm_rows:
            ex = _table([(r[1].index, r[3]) for r in self.comm_rows], 2)
            np.maximum.at(exposed, ex[:, 0].astype(np.int64), ex[:, 1])
        stat = np.array(self.flight_static, dtype=np.int64).reshape(-1, 6)
        code, info = stat[:, 0], stat[:, 1]
        times = _table([(f.start_s, np.nan if f.end_s is None else f.end_s) for f in fl], 2)
        calls = self._call_list
        infos = {k: self.infos[k] for k in np.unique(info).tolist()}
        n_info = max(infos, default=-1) + 1
        algo, tier, util, alone = [""] * n_info, ["-"] * n_info, np.zeros(n_info), np.zeros(n_info)
        for k, inf in infos.items():
            res = inf.result
            algo[k] = str(getattr(res, "algorithm", ""))
            tier[k], util[k] = inf.bottleneck_tier, inf.bottleneck_util
            alone[k] = inf.alone_s
        c_size = np.array([float(c.size_bytes) for c in calls])
        c_groups = np.array([c.n_groups for c in calls], dtype=np.int64)
        c_gsize = np.array([c.group_size for c in calls], dtype=np.int64)
        c_factor = np.array([busbw_factor(c.op, c.group_size) for c in calls])
        dims, ops = list(DIM_NAMES), sorted({c.op for c in calls})
        start, end = times[:, 0], times[:, 1]
        t = end - start
        size = c_size[code] if nf else np.zeros(0)
        with np.errstate(divide="ignore", invalid="ignore"):
            busbw = np.where(t > 0, size / t * (c_factor[code] if nf else 0.0) / 1e9, 0.0)
            butil = np.where(t > 0, util[info] * alone[info] / t, util[info]) if nf else np.zeros(0)
        algos, tiers = sorted(set(algo)), sorted(set(tier))
        wcode, wcats = self._wheres()
        return pd.DataFrame({
            "stage": stat[:, 2].astype(np.int32),
            "dim": _cat(np.array([dims.index(calls[c].dim) for c in range(len(calls))], np.int8)[code]
                        if nf else np.zeros(0, np.int8), categories=dims),
            "op": _cat(np.array([ops.index(c.op) for c in calls], np.int8)[code] if nf else np.zeros(0, np.int8),
                       categories=ops or ["all_reduce"]),
            "where": _cat(wcode[code], categories=wcats) if nf else pd.Categorical([]),
            "size_bytes": size,
            "groups": c_groups[code] if nf else np.zeros(0, np.int64),
            "group_size": c_gsize[code] if nf else np.zeros(0, np.int64),
            "algorithm": _cat(np.array([algos.index(a) for a in algo], np.int16)[info] if nf else
                              np.zeros(0, np.int16), categories=algos or [""]),
            "start_s": start, "end_s": end, "time_s": t,
            "alone_s": alone[info] if nf else np.zeros(0),
            "exposed_s": exposed,
            "busbw_GBps": busbw,
            "bottleneck_tier": _cat(np.array([tiers.index(x) for x in tier], np.int16)[info] if nf else
                                    np.zeros(0, np.int16), categories=tiers or ["-"]),
            "bottleneck_util": butil,
            "microbatch": stat[:, 3].astype(np.int32), "chunk": stat[:, 4].astype(np.int16),
            "group": stat[:, 5],
        })

    def waits_frame(self) -> pd.DataFrame:
        """Idle intervals of the compute streams (reason "pipeline", "sync" or "comm")."""
        st, rk = self._member_arrays()
        w = np.array(self.waits, dtype=np.float64).reshape(-1, 7)
        mem, code = w[:, 0].astype(np.int64), w[:, 2].astype(np.int64)
        num = w[:, [1, 3, 4, 5, 6]]
        calls = self._call_list
        dims = list(DIM_NAMES)
        cdim = np.array([dims.index(c.dim) for c in calls] + [dims.index("pp")], np.int8)  # -1: pipeline
        wcode, wcats = self._wheres("")
        return pd.DataFrame({
            "stage": st[mem], "rank": rk[mem],
            "reason": _cat(num[:, 0].astype(np.int8), categories=list(REASONS)),
            "dim": _cat(cdim[code], categories=dims),
            "where": _cat(wcode[np.where(code < 0, len(calls), code)], categories=wcats),
            "microbatch": num[:, 1].astype(np.int32), "chunk": num[:, 2].astype(np.int16),
            "start_s": num[:, 3], "end_s": num[:, 4],
        })

    def flight_arrays(self) -> dict[str, np.ndarray]:
        """The completed flights as arrays: ``info`` (request index), ``weight`` (share of the
        call's link loads: 1/G for a full-rank instance of one of G groups), ``start_s``,
        ``end_s``, ``microbatch``."""
        fl = [f for f in self.flights if f.end_s is not None]
        n = len(fl)
        return {"info": np.fromiter((f.info.index for f in fl), np.int64, count=n),
                "weight": np.array([1.0 if f.group < 0 else 1.0 / f.call.n_groups for f in fl], dtype=np.float64),
                "start_s": np.fromiter((f.start_s for f in fl), np.float64, count=n),
                "end_s": np.fromiter((f.end_s for f in fl), np.float64, count=n),
                "microbatch": np.fromiter((f.microbatch for f in fl), np.int64, count=n)}

    def link_frames(self, fabric: Any, iteration_s: float, windows: int,
                    flights: dict[str, np.ndarray] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
        """``link_util`` (per tier and time window) and ``tiers`` (per tier over the iteration),
        from ``flights`` (:meth:`flight_arrays`, the default).

        A full-rank instance of one of a call's G groups carries 1/G of the call's link loads.
        """
        names = list(fabric.link_tier_names)
        nt = len(names)
        tier_of = np.asarray(fabric.link_tier, dtype=np.int64)
        n_links = np.bincount(tier_of, minlength=nt)[:nt].astype(np.int64)
        fa = self.flight_arrays() if flights is None else flights
        ik, w, s, e = fa["info"], fa["weight"], fa["start_s"], fa["end_s"]
        fl = ik  # one entry per completed flight
        T = max(float(iteration_s), float(e.max()) if len(e) else 0.0)
        infos = {k: self.infos[k] for k in np.unique(ik).tolist()}
        n_info = max(infos, default=-1) + 1
        tb_info, ty_info = np.zeros((n_info, nt)), np.zeros((n_info, nt))
        for k, inf in infos.items():
            tb_info[k], ty_info[k] = inf.tier_busy_s[:nt], inf.tier_bytes[:nt]
        busy = tb_info[ik] * w[:, None] if len(fl) else np.zeros((0, nt))
        byts = ty_info[ik] * w[:, None] if len(fl) else np.zeros((0, nt))
        windows = max(int(windows), 1)
        edges = np.linspace(0.0, T, windows + 1)
        # differences of running integrals: clip the rounding (-1e-13) of windows with nothing in them
        wb = np.maximum(np.diff(_ramp_integral(s, e, busy, edges), axis=0), 0.0)
        wy = np.maximum(np.diff(_ramp_integral(s, e, byts, edges), axis=0), 0.0)
        denom = n_links[None, :] * np.diff(edges)[:, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            u = np.where(denom > 0, wb / denom, 0.0)
        link_util = pd.DataFrame({
            "t0_s": np.repeat(edges[:-1], nt), "t1_s": np.repeat(edges[1:], nt),
            "tier": _cat(np.tile(np.arange(nt), windows), categories=names),
            "utilisation": u.ravel(), "bytes": wy.ravel(),
        })
        per_link = np.zeros(len(tier_of))
        weight = np.bincount(ik, weights=w, minlength=n_info) if len(fl) else np.zeros(0)
        for k, inf in infos.items():
            if getattr(inf.result, "n_links", None) == len(per_link):
                per_link[inf.result.links] += weight[k] * inf.result.loaded_busy_s
        peak = np.array([per_link[tier_of == t].max() if n_links[t] else 0.0 for t in range(nt)])
        tb, ty = busy.sum(axis=0), byts.sum(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            tiers = pd.DataFrame({
                "tier": names, "links": n_links, "bytes": ty, "busy_s": tb,
                "utilisation": np.where((n_links > 0) & (T > 0), tb / (n_links * T), 0.0),
                "max_link_utilisation": peak / T if T > 0 else np.zeros(nt),
            })
        return link_util, tiers


def _table(rows: list[tuple], width: int) -> np.ndarray:
    """A list of equal-length numeric tuples as a float64 array of shape (len(rows), width)."""
    from itertools import chain

    return np.fromiter(chain.from_iterable(rows), dtype=np.float64, count=len(rows) * width).reshape(-1, width)


def _ramp_integral(s: np.ndarray, e: np.ndarray, amount: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Cumulative amount delivered by ``edges`` when each row's ``amount`` (shape (n, k)) is
    spread evenly over ``[s, e]``: shape (len(edges), k). O((n + E) log n)."""
    k = amount.shape[1]
    out = np.zeros((len(edges), k))
    if len(s) == 0:
        return out
    rate = amount / np.maximum(e - s, 1e-15)[:, None]
    # sum_i rate_i * (clip(t, s_i, e_i) - s_i) = [t R_s(t) - Q_s(t)] - [t R_e(t) - Q_e(t)]
    for starts, sign in ((s, 1.0), (e, -1.0)):
        order = np.argsort(starts, kind="stable")
        st = starts[order]
        r = np.cumsum(rate[order], axis=0)
        q = np.cumsum(rate[order] * st[:, None], axis=0)
        pos = np.searchsorted(st, edges, side="right")
        has = (pos > 0)[:, None]
        R = np.where(has, r[np.maximum(pos - 1, 0)], 0.0)
        Q = np.where(has, q[np.maximum(pos - 1, 0)], 0.0)
        out += sign * (edges[:, None] * R - Q)
    return out
