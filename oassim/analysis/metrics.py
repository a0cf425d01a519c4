"""Training metrics of a simulated iteration: pure functions of :class:`~oassim.scheduler.results.Results`.

What is computed (names as in ``docs/metrics.md`` and docs/architecture.md "Metric definitions"), with
``T`` the iteration time, ``n`` the accelerators, ``P`` the dense peak FLOP/s per accelerator
at the run's precision (``plan.peak_flops``):

- ``iteration_time_s`` = T: wall time of one optimizer step, all micro-batches included.
- ``tokens_per_s`` = tokens per iteration / T (global batch x sequence length / T).
- ``tflops_per_accelerator`` = F_model / (n T) / 1e12, with F_model the docs/architecture.md model FLOPs
  ``(6 N_nonembedding + 12 l h s) * tokens`` (active experts only for MoE; no recomputation).
- ``hfu_tflops_per_accelerator`` = F_hw / (n T) / 1e12, F_hw = F_model + recomputed FLOPs.
- ``mfu`` = F_model / (n T P); ``hfu`` = F_hw / (n T P).
- ``megatron_tflops_per_accelerator`` = F_meg / (n T) / 1e12, F_meg the count of Narayanan et
  al. 2021 eq. 3 (every matmul executed, logits and recomputation included:
  ``96 B s l h^2 (1 + s/6h + V/16lh)`` for GPT with full recomputation): what SC'21 Table 1
  reports as TFLOP/s per GPU.
- The *critical rank* is the simulated rank whose compute stream finishes last (ties: the one
  that computed longest, e.g. a straggler rather than the peers that waited for it). Its
  timeline from 0 to T is covered by compute ops and recorded idle intervals (``waits``), so
  ``compute_s + optimizer_s + exposed_comm_s + bubble_s + imbalance_s + sync_s = T``:

  - ``compute_s``: its compute ops other than the optimizer step;
  - ``optimizer_s``: its optimizer ops;
  - ``exposed_comm_s`` / ``exposed_comm_by_dim``: time its compute stream waited for a
    collective's stream or transfer (blocking calls, ``after`` dependencies of overlappable
    ones, calls still in flight at the end): "communication time on the critical path not
    hidden by compute";
  - its pipeline waits (for a pipeline neighbour's send), split in two: ``imbalance_s``,
    the part explained by the busiest stage having more work than the critical rank
    (``min(pipeline waits, busy_max - busy_critical)``, where a rank's *busy* time is its
    non-optimizer compute plus its comm waits: a slower stage's exposed EP
    all-to-alls count as its work, not as the critical rank's bubble), and ``bubble_s``,
    the rest: the schedule's own warm-up and cool-down, ``(p-1)/(m v + p - 1)`` of the
    iteration on a balanced pipeline of ``p`` stages, ``m`` micro-batches and ``v``
    virtual stages (Narayanan et al. 2021 §2.2);
  - ``sync_s``: time it waited for other ranks to reach a synchronous collective.

- ``breakdown``: those parts as one flat dict (``compute``, ``exposed_<dim>``, ``bubble``,
  ``imbalance``, ``sync``, ``optimizer``) summing to T.
- ``memory_per_accelerator_GB``: footprint of the stage with the largest one, 1e9 bytes.
- ``bottlenecks``: the collectives with the most exposed time on the critical rank (kind
  "collective") and the link tiers by utilisation (kind "tier").
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["summary", "critical_rank", "breakdown", "exposed_by_dim", "collective_bottlenecks",
           "tier_bottlenecks", "busy_by_member", "DIMS"]

DIMS = ("tp", "cp", "ep", "dp", "pp")


def _str(s: pd.Series) -> pd.Series:
    """``s`` for comparisons with strings and as group keys. A categorical of string
    categories without missing values stays categorical (unordered): comparing it costs its
    few categories rather than every row. Its groups come in category order, not sorted by
    name: group keys use :func:`_key`."""
    if _string_categorical(s):
        return s.cat.as_unordered() if s.cat.ordered else s
    return s.astype(str)


def _key(s: pd.Series) -> pd.Series:
    """``s`` as a group key of plain strings (object dtype; a categorical's rows take its
    categories' names without converting every row to a string array), grouped exactly as
    ``s.astype(str)`` would be."""
    if _string_categorical(s):
        return pd.Series(np.asarray(s.cat.categories, dtype=object)[s.cat.codes.to_numpy()], index=s.index,
                         name=s.name, dtype=object)
    return s.astype(str)


def _string_categorical(s: pd.Series) -> bool:
    """A categorical whose categories are all strings and whose rows are all set."""
    return (isinstance(s.dtype, pd.CategoricalDtype) and all(type(c) is str for c in s.cat.categories)
            and not (s.cat.codes.to_numpy() < 0).any())


def critical_rank(results: Any) -> tuple[int, int]:
    """(stage, rank) of the simulated rank whose compute stream ends last.

    End = latest end of its compute ops and idle intervals; ties (within 1 ns) go to the rank
    with the most compute time.
    """
    ops = results.ops
    comp = ops[_str(ops["stream"]) == "compute"]
    if not len(comp):
        return (0, 0)
    key = ["stage", "rank"]
    end = comp.groupby(key)["end_s"].max()
    waits = getattr(results, "waits", None)
    if waits is not None and len(waits):
        end = pd.concat([end, waits.groupby(key)["end_s"].max()], axis=1).max(axis=1)
    busy = (comp["end_s"] - comp["start_s"]).groupby([comp["stage"], comp["rank"]]).sum()
    top = end.max()
    cand = end[end >= top - 1e-9].index
    best = max(cand, key=lambda k: float(busy.get(k, 0.0)))
    return int(best[0]), int(best[1])


def _member(frame: pd.DataFrame, who: tuple[int, int]) -> pd.DataFrame:
    return frame[(frame["stage"] == who[0]) & (frame["rank"] == who[1])]


def exposed_by_dim(results: Any, who: tuple[int, int] | None = None) -> dict[str, float]:
    """Exposed communication of the critical rank (or ``who``) per parallel dimension, s.

    Sum of its ``waits`` with reason "comm" by dimension (falls back on the ``exposed_s`` of
    its ``ops`` rows when Results carry no ``waits``).
    """
    who = who or critical_rank(results)
    out = {d: 0.0 for d in DIMS}
    waits = getattr(results, "waits", None)
    if waits is not None and len(waits):
        w = _member(waits, who)
        w = w[_str(w["reason"]) == "comm"]
        for d, v in (w["end_s"] - w["start_s"]).groupby(_key(w["dim"])).sum().items():
            out[d] = out.get(d, 0.0) + float(v)
        return out
    ops = _member(results.ops, who)
    ops = ops[_str(ops["stream"]) == "comm"]
    for d, v in ops.groupby(_key(ops["dim"]))["exposed_s"].sum().items():
        out[d] = out.get(d, 0.0) + float(v)
    return out


def busy_by_member(results: Any) -> dict[tuple[int, int], float]:
    """Busy time of every simulated rank, s: non-optimizer compute plus the time its compute
    stream waited for communication (its exposed communication); waiting for a pipeline
    neighbour or for the peers of a synchronous call is not work, nor is the optimizer."""
    ops = results.ops
    comp = ops[(_str(ops["stream"]) == "compute") & (_str(ops["kind"]) != "optimizer")]
    busy = (comp["end_s"] - comp["start_s"]).groupby([comp["stage"], comp["rank"]]).sum()
    out = {(int(k[0]), int(k[1])): float(v) for k, v in busy.items()}
    waits = getattr(results, "waits", None)
    if waits is not None and len(waits):
        w = waits[_str(waits["reason"]) == "comm"]
        for k, v in (w["end_s"] - w["start_s"]).groupby([w["stage"], w["rank"]]).sum().items():
            key = (int(k[0]), int(k[1]))
            out[key] = out.get(key, 0.0) + float(v)
    return out


def breakdown(results: Any, who: tuple[int, int] | None = None) -> dict[str, float]:
    """Where the critical rank's iteration goes, s: ``compute``, ``exposed_<dim>`` for each
    dimension, ``bubble``, ``imbalance``, ``sync``, ``optimizer`` (sum = iteration time;
    module docstring)."""
    who = who or critical_rank(results)
    ops = _member(results.ops, who)
    comp = ops[_str(ops["stream"]) == "compute"]
    dur = comp["end_s"] - comp["start_s"]
    is_opt = _str(comp["kind"]) == "optimizer"
    out = {"compute": float(dur[~is_opt].sum())}
    for d, v in exposed_by_dim(results, who).items():
        out[f"exposed_{d}"] = v
    bubble = sync = 0.0
    waits = getattr(results, "waits", None)
    if waits is not None and len(waits):
        w = _member(waits, who)
        reason = _str(w["reason"])
        span = w["end_s"] - w["start_s"]
        bubble = float(span[reason == "pipeline"].sum())
        sync = float(span[reason == "sync"].sum())
    imbalance = 0.0
    if bubble > 0:
        busy = busy_by_member(results)
        imbalance = min(bubble, max(0.0, max(busy.values()) - busy.get(who, 0.0)))
    out["bubble"] = bubble - imbalance
    out["imbalance"] = imbalance
    out["sync"] = sync
    out["optimizer"] = float(dur[is_opt].sum())
    return out


def collective_bottlenecks(results: Any, who: tuple[int, int] | None = None, top: int = 5) -> list[dict[str, Any]]:
    """The calls that exposed the most time on the critical rank, grouped by (dim, op, name).

    Each entry: ``kind`` "collective", ``name`` "<dim> <op> <name>", ``exposed_s`` (sum over
    its instances on that rank), ``detail`` (calls, mean time, mean busbw, bottleneck tier).
    """
    who = who or critical_rank(results)
    ops = _member(results.ops, who)
    ops = ops[(_str(ops["stream"]) == "comm") & (ops["exposed_s"] > 0)]
    if not len(ops):
        return []
    g = ops.groupby([_key(ops["dim"]), _key(ops["kind"]), _key(ops["name"])])
    agg = pd.DataFrame({"exposed_s": g["exposed_s"].sum(), "calls": g.size()}).sort_values("exposed_s", ascending=False)
    coll = results.collectives
    coll = coll[coll["stage"] == who[0]]
    short = _key(coll["where"]).str.rsplit("/", n=1).str[-1]
    out = []
    for (dim, op, name), row in agg.head(top).iterrows():
        c = coll[(_str(coll["dim"]) == dim) & (_str(coll["op"]) == op) & (short == name)]
        detail = f"{int(row['calls'])} calls on stage {who[0]}, {row['exposed_s'] * 1e3:.2f} ms exposed"
        if len(c):
            tier = c["bottleneck_tier"].mode().iloc[0] if len(c["bottleneck_tier"].mode()) else "-"
            detail += (f"; {c['size_bytes'].mean() / 1e6:.3g} MB each, mean {c['time_s'].mean() * 1e3:.3g} ms "
                       f"(alone {c['alone_s'].mean() * 1e3:.3g} ms), busbw {c['busbw_GBps'].mean():.1f} GB/s, "
                       f"{c['algorithm'].iloc[0]}, bottleneck tier {tier}")
        out.append({"kind": "collective", "name": f"{dim} {op} {name}", "exposed_s": float(row["exposed_s"]),
                    "detail": detail})
    return out


def tier_bottlenecks(results: Any, top: int = 3) -> list[dict[str, Any]]:
    """Link tiers that carried traffic, most utilised link first.

    Each entry: ``kind`` "tier", ``name`` the tier, ``utilisation`` its mean link
    utilisation over the iteration, ``detail`` (busiest link's utilisation, bytes carried).
    """
    t = results.tiers
    if t is None or not len(t):
        return []
    t = t[t["bytes"] > 0].sort_values(["max_link_utilisation", "utilisation"], ascending=False)
    return [{"kind": "tier", "name": str(r.tier), "utilisation": float(r.utilisation),
             "detail": f"busiest link {r.max_link_utilisation:.1%} utilised over the iteration, "
                       f"tier mean {r.utilisation:.1%}, {r.bytes / 1e9:.3g} GB carried on {int(r.links)} links"}
            for r in t.head(top).itertuples()]


def summary(results: Any) -> dict[str, Any]:
    """The headline metrics of a run (module docstring gives every formula).

    Returns
    -------
    dict
        ``iteration_time_s``, ``tokens_per_s``, ``tflops_per_accelerator``,
        ``hfu_tflops_per_accelerator``, ``megatron_tflops_per_accelerator``, ``mfu``, ``hfu``,
        ``exposed_comm_s``, ``exposed_comm_by_dim`` (dict), ``bubble_s``, ``imbalance_s``, ``sync_s``,
        ``compute_s``, ``optimizer_s``, ``memory_per_accelerator_GB``, ``breakdown`` (dict),
        ``bottlenecks`` (list of dicts), ``critical_stage``, ``critical_rank``,
        ``busiest_stage`` (the stage with the most busy time, :func:`busy_by_member`),
        ``accelerators``, ``calibrated`` (the compute efficiencies were fitted to this
        accelerator's measurements, or published for it, at the run's precision) and its
        negation ``uncalibrated``, ``efficiency_entry`` (the ``compute_efficiency.yaml`` entry used).
    """
    plan = results.plan
    T = float(results.iteration_time_s)
    n = int(plan.n_accelerators)
    peak = float(plan.peak_flops)
    fast = _fast_parts(results)
    if fast is not None:
        who, parts, busy, coll_top = fast
    else:  # frames of another shape: the definitions above, one by one
        who = critical_rank(results)
        parts = breakdown(results, who)
        busy = busy_by_member(results)
        coll_top = collective_bottlenecks(results, who)
    busiest = max(busy, key=busy.get) if busy else who
    by_dim = {d: parts[f"exposed_{d}"] for d in DIMS}
    per = n * T if T > 0 else np.inf
    return {
        "iteration_time_s": T,
        "tokens_per_s": plan.tokens_per_iteration / T if T > 0 else 0.0,
        "tflops_per_accelerator": plan.flops.model / per / 1e12,
        "hfu_tflops_per_accelerator": plan.flops.hardware / per / 1e12,
        "megatron_tflops_per_accelerator": plan.flops.megatron / per / 1e12,
        "mfu": plan.flops.model / (per * peak),
        "hfu": plan.flops.hardware / (per * peak),
        "exposed_comm_s": float(sum(by_dim.values())),
        "exposed_comm_by_dim": by_dim,
        "bubble_s": parts["bubble"],
        "imbalance_s": parts["imbalance"],
        "sync_s": parts["sync"],
        "compute_s": parts["compute"],
        "optimizer_s": parts["optimizer"],
        "memory_per_accelerator_GB": float(plan.memory.total) / 1e9,
        "breakdown": parts,
        "bottlenecks": coll_top + tier_bottlenecks(results),
        "critical_stage": who[0],
        "busiest_stage": busiest[0],
        "critical_rank": who[1],
        "accelerators": n,
        "calibrated": bool(getattr(plan, "calibrated", False)),
        "uncalibrated": not bool(getattr(plan, "calibrated", False)),
        "efficiency_entry": str(getattr(plan, "efficiency", "")),
    }


# ---------------------------------------------------------------------------- summary fast path
# summary() on the replay's frames (string categoricals, one representative rank per stage)
# computes the same numbers as critical_rank, breakdown, busy_by_member and
# collective_bottlenecks above, from the columns as numpy arrays: each row filter is a mask
# on codes instead of a copy of the frame, and each frame is scanned once rather than once
# per function. Every sum is the same operation on the same rows in the same order (pandas'
# grouped sum for the grouped ones, numpy's for the plain ones), so the results are equal to
# the last bit (tests/experiments/test_sweep_memo.py).
_FAST_MAX_MEMBERS = 64


def _coded(s: pd.Series) -> tuple[np.ndarray, list[str]] | None:
    """(codes, category names) of a string categorical without missing rows, else None."""
    if not isinstance(s.dtype, pd.CategoricalDtype):
        return None
    arr = s.array
    codes, cats = np.asarray(arr.codes), list(arr.categories)
    if not all(type(c) is str for c in cats) or (len(codes) and codes.min() < 0):
        return None
    return codes, cats


def _code_of(cats: list[str], name: str) -> int:
    return cats.index(name) if name in cats else -2  # -2: matches no row


def _gsum(values: np.ndarray, *keys: np.ndarray) -> dict[Any, float]:
    """Grouped sums by ``keys`` as the functions above group (same key kinds: pandas' grouped
    sum does not add in the same order for every kind of key), ascending by key."""
    if not len(values):
        return {}
    by = [pd.Series(k) for k in keys]
    return dict(pd.Series(values).groupby(by if len(by) > 1 else by[0]).sum().items())


def _fast_parts(results: Any) -> tuple[tuple[int, int], dict[str, float], dict[tuple[int, int], float],
                                       list[dict[str, Any]]] | None:
    """(critical rank, breakdown, busy by member, collective bottlenecks) as the functions above
    compute them, or None when the frames are not of the shape this path reads."""
    ops, waits = results.ops, getattr(results, "waits", None)
    if waits is None or not len(waits) or not len(ops):
        return None
    cols = [_coded(ops[c]) for c in ("stream", "kind", "dim", "name")] + [_coded(waits[c]) for c in ("reason", "dim")]
    if any(c is None for c in cols):
        return None
    (stream, stream_c), (kind, kind_c), (dim, dim_c), (name, name_c), (reason, reason_c), (wdim, wdim_c) = cols
    o_st, o_rk = ops["stage"].to_numpy(), ops["rank"].to_numpy()
    w_st, w_rk = waits["stage"].to_numpy(), waits["rank"].to_numpy()
    st, rk = np.concatenate([o_st, w_st]).astype(np.int64), np.concatenate([o_rk, w_rk]).astype(np.int64)
    if st.min() < 0 or rk.min() < 0:
        return None
    span = int(rk.max()) + 1
    members, at = np.unique(st * span + rk, return_inverse=True)  # ascending by (stage, rank)
    if len(members) > _FAST_MAX_MEMBERS:
        return None
    at = at.ravel()
    o_m, w_m = at[:len(o_st)], at[len(o_st):]
    keys = [(int(k) // span, int(k) % span) for k in members]
    o_start, o_end = ops["start_s"].to_numpy(), ops["end_s"].to_numpy()
    w_start, w_end = waits["start_s"].to_numpy(), waits["end_s"].to_numpy()
    comp = stream == _code_of(stream_c, "compute")
    if not comp.any():
        return None
    # critical rank: the latest end of compute ops and waits, ties to the most compute
    o_dur, w_dur = o_end - o_start, w_end - w_start
    end = np.full(len(members), -np.inf)
    np.fmax.at(end, o_m[comp], o_end[comp])
    np.fmax.at(end, w_m, w_end)
    busy_all = _gsum(o_dur[comp], o_st[comp], o_rk[comp])
    top = end.max()
    cand = np.flatnonzero(end >= top - 1e-9).tolist()
    m = max(cand, key=lambda k: float(busy_all.get(keys[k], 0.0)))
    who = keys[m]
    # breakdown of the critical rank
    mine = comp & (o_m == m)
    is_opt = kind == _code_of(kind_c, "optimizer")
    out = {"compute": float(np.nansum(o_dur[mine & ~is_opt]))}
    w_mine = w_m == m
    w_comm = reason == _code_of(reason_c, "comm")
    by_dim = {d: 0.0 for d in DIMS}
    sel = w_mine & w_comm
    for d, v in _gsum(w_dur[sel], np.asarray(wdim_c, dtype=object)[wdim[sel]]).items():
        by_dim[d] = by_dim.get(d, 0.0) + float(v)
    for d, v in by_dim.items():
        out[f"exposed_{d}"] = v
    bubble = float(np.nansum(w_dur[w_mine & (reason == _code_of(reason_c, "pipeline"))]))
    sync = float(np.nansum(w_dur[w_mine & (reason == _code_of(reason_c, "sync"))]))
    # busy time of every member: non-optimizer compute plus comm waits
    work = comp & ~is_opt
    busy = {(int(k[0]), int(k[1])): float(v) for k, v in _gsum(o_dur[work], o_st[work], o_rk[work]).items()}
    for k, v in _gsum(w_dur[w_comm], w_st[w_comm], w_rk[w_comm]).items():
        key = (int(k[0]), int(k[1]))
        busy[key] = busy.get(key, 0.0) + float(v)
    imbalance = 0.0
    if bubble > 0:
        imbalance = min(bubble, max(0.0, max(busy.values()) - busy.get(who, 0.0)))
    out["bubble"] = bubble - imbalance
    out["imbalance"] = imbalance
    out["sync"] = sync
    out["optimizer"] = float(np.nansum(o_dur[mine & is_opt]))
    return who, out, busy, _fast_collectives(results, who, m, o_m, stream, stream_c, (dim, dim_c), (kind, kind_c),
                                             (name, name_c))


def _fast_collectives(results: Any, who: tuple[int, int], m: int, o_m: np.ndarray, stream: np.ndarray,
                      stream_c: list[str], dim: tuple, kind: tuple, name: tuple, top: int = 5) -> list[dict[str, Any]]:
    """:func:`collective_bottlenecks` of ``who`` (member ``m`` of ``o_m``) on coded columns."""
    ops = results.ops
    ex = ops["exposed_s"].to_numpy()
    sel = np.flatnonzero((o_m == m) & (stream == _code_of(stream_c, "comm")) & (ex > 0))
    if not len(sel):
        return []
    obj = [pd.Series(np.asarray(c, dtype=object)[codes[sel]], dtype=object) for codes, c in (dim, kind, name)]
    e = pd.Series(ex[sel])
    g = e.groupby(obj)
    agg = pd.DataFrame({"exposed_s": g.sum(), "calls": g.size()}).sort_values("exposed_s", ascending=False)
    coll = results.collectives
    cd, co, cw = _coded(coll["dim"]), _coded(coll["op"]), _coded(coll["where"])
    if cd is None or co is None or cw is None:
        return collective_bottlenecks(results, who, top)
    at_stage = coll["stage"].to_numpy() == who[0]
    short_c = np.asarray([w.rsplit("/", 1)[-1] for w in cw[1]] + [""], dtype=object)
    short = short_c[cw[0]]
    ct, ca = _coded(coll["bottleneck_tier"]), _coded(coll["algorithm"])
    if ct is None or ca is None:
        return collective_bottlenecks(results, who, top)
    num = {k: coll[k].to_numpy() for k in ("size_bytes", "time_s", "alone_s", "busbw_GBps")}

    def mean(k: str, pos: np.ndarray) -> float:
        return pd.Series(num[k][pos]).mean()  # Series.mean of those rows, as the definition takes it

    out = []
    for (d, op, nm), row in agg.head(top).iterrows():
        pos = np.flatnonzero(at_stage & (cd[0] == _code_of(cd[1], d)) & (co[0] == _code_of(co[1], op)) & (short == nm))
        detail = f"{int(row['calls'])} calls on stage {who[0]}, {row['exposed_s'] * 1e3:.2f} ms exposed"
        if len(pos):
            # a categorical's mode: the most frequent category, the first in category order on ties
            tier = ct[1][int(np.argmax(np.bincount(ct[0][pos], minlength=len(ct[1]))))]
            detail += (f"; {mean('size_bytes', pos) / 1e6:.3g} MB each, mean {mean('time_s', pos) * 1e3:.3g} ms "
                       f"(alone {mean('alone_s', pos) * 1e3:.3g} ms), busbw {mean('busbw_GBps', pos):.1f} GB/s, "
                       f"{ca[1][int(ca[0][pos[0]])]}, bottleneck tier {tier}")
        out.append({"kind": "collective", "name": f"{d} {op} {nm}", "exposed_s": float(row["exposed_s"]),
                    "detail": detail})
    return out
