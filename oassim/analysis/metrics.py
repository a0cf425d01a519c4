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
    who = critical_rank(results)
    parts = breakdown(results, who)
    busy = busy_by_member(results)
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
        "bottlenecks": collective_bottlenecks(results, who) + tier_bottlenecks(results),
        "critical_stage": who[0],
        "busiest_stage": busiest[0],
        "critical_rank": who[1],
        "accelerators": n,
        "calibrated": bool(getattr(plan, "calibrated", False)),
        "uncalibrated": not bool(getattr(plan, "calibrated", False)),
        "efficiency_entry": str(getattr(plan, "efficiency", "")),
    }
