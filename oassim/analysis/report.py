"""The bottleneck report: what limits an iteration, in plain words, and what would help.

What is reported (:func:`bottleneck_report`, a pure function of Results): which link tier is
the most utilised and how hot its busiest links run (``tiers``, ``link_util`` frames); which
collectives sit on the critical path and how much time each exposes, with the tier that
limits them (``collectives`` frame); the pipeline bubble and the stage imbalance; memory head-room; and for each
finding, what would help. Example: "DP reduce-scatter (grad_dp_cp) over the leaf-spine tier
exposes 131 ms per iteration (2.5% of it) on stage 5; leaf-spine links run at 95% during it.
What would help: larger or earlier gradient buckets (bucket_params) to overlap more of the
reduction, or more bandwidth on the leaf-spine tier."

How exposed time is counted: each stage's representative rank records, per collective, the
part the compute stream waited for (``exposed_s``). Stages run concurrently, so a
collective's exposure is the largest per-stage sum, and the stage is named.

Rules (each fires independently; thresholds are fractions of the iteration time):

====================================  ==========================================================
finding                               what would help
====================================  ==========================================================
data-parallel reduce-scatter /        overlap more of the gradient reduction with the backward
all-reduce exposed (>= 1%)            pass (``overlap_grad_reduce``, larger buckets:
                                      ``bucket_params``), or more bandwidth on the limiting tier
data-parallel all-gather exposed      overlap the parameter gathers (``overlap_param_gather``)
TP collective exposed, TP groups      keep TP inside the scale-up domain (tp <= domain size,
straddle scale-up domains             tp innermost in ``order``)
TP collective exposed, inside         overlap TP communication (``tp_comm_overlap``), or a
the domain                            smaller tp
EP all-to-all exposed                 overlap dispatch/combine (``ep_comm_overlap``), fewer
                                      domains per EP group, or more bandwidth on the tier
PP send/recv exposed                  overlap p2p (``overlap_p2p``), or fewer pipeline stages
PP embedding-gradient all-reduce      untied embeddings, or more bandwidth on the tier
exposed                               (tied input/output embeddings on the first and last stage)
a collective whose limiting links     latency-bound: fewer, larger messages (larger
run below 30%                         micro_batch, fewer ranks per group), not more bandwidth
CP exchange exposed                   keep CP inside the scale-up domain, or a smaller cp
a tier's busiest link busy >= 90%     more bandwidth on that tier (more links, faster lanes,
of the iteration                      less oversubscription), or better load balance
pipeline bubble well above the        balance the stages: cut the slowest stage's exposed
schedule's (pp-1)/(m*vpp) x compute   communication, or move layers between stages
stage imbalance >= 5% (the critical   balance the stages: cut the busiest stage's exposed
rank waits for a busier stage)        communication, or move layers between stages
pipeline bubble >= 5%                 more micro-batches per replica (larger global batch or
                                      smaller micro_batch) or interleaving (vpp > 1)
memory >= 90% of HBM                  recompute, a larger tp/pp or a higher ZeRO stage
exposed comm and bubble both < 5%     compute-bound: faster matrix units (or FP8) help most
====================================  ==========================================================
"""

from __future__ import annotations

import re
from typing import Any, Mapping

__all__ = ["bottleneck_report", "text_summary", "COLLECTIVE_THRESHOLD", "BUBBLE_THRESHOLD", "HOT_LINK",
           "TIGHT_MEMORY", "LATENCY_BOUND"]

COLLECTIVE_THRESHOLD = 0.01  # report a collective exposing >= 1% of the iteration
BUBBLE_THRESHOLD = 0.05  # report a pipeline bubble >= 5% of the iteration
HOT_LINK = 0.90  # a tier whose busiest link is busy >= 90% of the iteration
TIGHT_MEMORY = 0.90  # memory use >= 90% of HBM
LATENCY_BOUND = 0.30  # a collective whose limiting links run below 30% is latency-bound
MAX_COLLECTIVE_FINDINGS = 5

_DIM_WORDS = {"tp": "TP", "dp": "DP", "cp": "CP", "ep": "EP", "pp": "PP", "edp": "expert-DP", "dp_cp": "DP"}
_OP_WORDS = {"all_reduce": "all-reduce", "reduce_scatter": "reduce-scatter", "all_gather": "all-gather",
             "all_to_all": "all-to-all", "send_recv": "send/recv", "broadcast": "broadcast", "reduce": "reduce"}


def _ms(seconds: float) -> str:
    s = float(seconds)
    if s >= 10.0:
        return f"{s:.1f} s"
    if s >= 1.0:
        return f"{s:.2f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.0f} ms" if s >= 0.1 else f"{s * 1e3:.1f} ms"
    return f"{s * 1e6:.0f} us"


def _pct(x: float) -> str:
    return f"{100.0 * float(x):.0f}%" if x >= 0.1 else f"{100.0 * float(x):.1f}%"


def _what(dim: str, op: str) -> str:
    return f"{_DIM_WORDS.get(dim, dim.upper())} {_OP_WORDS.get(op, op)}"


def _help(dim: str, op: str, tier: str, plan: Any, call: str = "", latency_bound: bool = False) -> str:
    """What would help a collective that exposes time (the rules of the module docstring)."""
    overlap = dict(getattr(plan, "overlap", {}) or {}) if plan is not None else {}
    straddle = dict(getattr(plan, "straddling", {}) or {}) if plan is not None else {}
    more_bw = f"more bandwidth on the {tier} tier" if tier else "more network bandwidth"
    if latency_bound:
        more_bw = "fewer, larger messages (a larger micro_batch, or fewer ranks per group)"
    if dim in ("dp", "edp", "dp_cp"):
        if op == "all_gather":
            if overlap.get("overlap_param_gather") is False:
                return f"overlap the parameter gathers with compute (overlap_param_gather: true), or {more_bw}"
            return f"earlier parameter prefetch, or {more_bw}"
        if overlap.get("overlap_grad_reduce") is False:
            return (f"overlap the gradient reduction with the backward pass (overlap_grad_reduce: true), "
                    f"or {more_bw}")
        return f"larger or earlier gradient buckets (bucket_params) to overlap more of the reduction, or {more_bw}"
    if dim == "tp":
        if straddle.get("tp", 0):
            return ("keep TP inside the scale-up domain (tp no larger than the domain, tp innermost in "
                    "parallelism.order)")
        if overlap.get("tp_comm_overlap") is False:
            return f"overlap TP communication with the GEMMs (tp_comm_overlap: true), a smaller tp, or {more_bw}"
        return f"a smaller tp, or {more_bw}"
    if dim == "ep":
        if overlap.get("ep_comm_overlap") is False:
            return (f"overlap expert dispatch/combine with compute (ep_comm_overlap: true), EP groups spanning "
                    f"fewer scale-up domains, or {more_bw}")
        return f"EP groups spanning fewer scale-up domains (a smaller ep), or {more_bw}"
    if dim == "pp":
        if op != "send_recv":
            what = "untied input and output embeddings (no gradient all-reduce between the first and last stage)" \
                if "embedding" in call else "fewer pipeline stages"
            return f"{what}, or {more_bw}"
        if overlap.get("overlap_p2p") is False:
            return "overlap pipeline sends with compute (overlap_p2p: true), or fewer pipeline stages"
        return f"fewer pipeline stages, or {more_bw}"
    if dim == "cp":
        return f"keep CP inside the scale-up domain, a smaller cp, or {more_bw}"
    return more_bw


def _call_name(where: str) -> str:
    """Short name of a call from its plan position: ``s1/c0/bwd/grad_dp_cp_0`` -> ``grad_dp_cp``."""
    return re.sub(r"_\d+$", "", str(where).rsplit("/", 1)[-1])


def _collective_findings(results: Any, iteration: float) -> tuple[list[str], tuple[int, float] | None]:
    """Findings on exposed collectives, biggest first; and the stage exposing the most
    communication with its total, s."""
    coll = results.collectives
    if coll is None or not len(coll) or iteration <= 0:
        return [], None
    df = coll.assign(dim=coll["dim"].astype(str), op=coll["op"].astype(str),
                     bottleneck_tier=coll["bottleneck_tier"].astype(str),
                     call=coll["where"].astype(str).map(_call_name))
    per_stage = df.groupby("stage")["exposed_s"].sum()
    slowest = (int(per_stage.idxmax()), float(per_stage.max()))
    by_stage = df.groupby(["dim", "op", "stage"], sort=False)["exposed_s"].sum().reset_index()
    worst = by_stage.sort_values("exposed_s", ascending=False).drop_duplicates(["dim", "op"])
    pp = int(df["stage"].nunique())
    lines: list[str] = []
    for row in worst.itertuples(index=False):
        if row.exposed_s < COLLECTIVE_THRESHOLD * iteration or len(lines) >= MAX_COLLECTIVE_FINDINGS:
            continue
        mine = df[(df["dim"] == row.dim) & (df["op"] == row.op) & (df["stage"] == row.stage)]
        # the tier limiting most of its exposed (else total) time, and how hot it ran then
        weight = mine["exposed_s"] if mine["exposed_s"].sum() > 0 else mine["time_s"]
        tiers = weight.groupby(mine["bottleneck_tier"]).sum()
        tier = str(tiers.idxmax()) if len(tiers) and tiers.max() > 0 else ""
        util = float(mine.loc[mine["bottleneck_tier"] == tier, "bottleneck_util"].max()) if tier else float("nan")
        calls = weight.groupby(mine["call"]).sum().sort_values(ascending=False)
        names = ", ".join(calls.index[:2]) + (", ..." if len(calls) > 2 else "")
        over = f" over the {tier} tier" if tier else ""
        where = f" on stage {int(row.stage)}" if pp > 1 else ""
        text = (f"{_what(row.dim, row.op)} ({names}){over} exposes {_ms(row.exposed_s)} per iteration "
                f"({_pct(row.exposed_s / iteration)} of it){where}")
        latency_bound = util == util and util < LATENCY_BOUND
        if tier and util == util:
            text += f"; {tier} links run at {_pct(util)} during it"
            if latency_bound:
                text += " (mostly idle: the time is latency and per-call overhead, not bandwidth)"
        remedy = _help(row.dim, row.op, tier, results.plan, str(calls.index[0]) if len(calls) else "",
                       latency_bound)
        lines.append(f"{text}. What would help: {remedy}.")
    return lines, slowest


def _tier_finding(results: Any) -> list[str]:
    tiers = results.tiers
    if tiers is None or not len(tiers):
        return []
    df = tiers.sort_values(["utilisation", "max_link_utilisation"], ascending=False)
    top = df.iloc[0]
    name = str(top["tier"])
    line = (f"The most utilised tier is {name}: its links are busy {_pct(top['utilisation'])} of the "
            f"iteration on average and its busiest link {_pct(top['max_link_utilisation'])}")
    lu = results.link_util
    if lu is not None and len(lu):
        mine = lu[lu["tier"].astype(str) == name]
        if len(mine):
            peak = mine.loc[mine["utilisation"].idxmax()]
            line += (f"; the tier peaks at {_pct(peak['utilisation'])} mean utilisation between "
                     f"{_ms(peak['t0_s'])} and {_ms(peak['t1_s'])} into the iteration")
    out = [line + "."]
    hot = df[df["max_link_utilisation"] >= HOT_LINK]
    for row in hot.itertuples(index=False):
        out.append(f"The busiest {row.tier} link is busy {_pct(row.max_link_utilisation)} of the iteration: "
                   f"a hot spot. What would help: more bandwidth on the {row.tier} tier "
                   "(more links, faster lanes, less oversubscription) or better load balance across its links.")
    return out


def _bubble_s(results: Any) -> float:
    """Pipeline bubble of the busiest stage: iteration time not spent computing nor waiting
    for exposed communication, s."""
    ops = results.ops
    if ops is None or not len(ops):
        return 0.0
    busy = (ops["end_s"] - ops["start_s"]).where(ops["stream"].astype(str) == "compute", 0.0)
    exposed = ops["exposed_s"].where(ops["stream"].astype(str) != "compute", 0.0)
    per = (busy + exposed).groupby(ops["stage"]).sum()
    comp = busy.groupby(ops["stage"]).sum()
    stage = comp.idxmax()
    return max(0.0, float(results.iteration_time_s) - float(per[stage]))


def _bubble_finding(bubble: float, iteration: float, plan: Any, compute_s: float | None,
                    slowest: tuple[int, float] | None) -> list[str]:
    """The bubble against the schedule's own: (pp-1)/(m*vpp) of the compute (Narayanan et al.
    2021 §2.2). A bubble well above it is waiting for slower stages, not the schedule."""
    if iteration <= 0 or bubble < BUBBLE_THRESHOLD * iteration:
        return []
    text = f"The pipeline bubble is {_ms(bubble)} ({_pct(bubble / iteration)} of the iteration)"
    remedy = ("more micro-batches per replica (a larger global_batch or a smaller micro_batch) or "
              "interleaving (vpp > 1 with schedule interleaved)")
    par = getattr(plan, "parallelism", None)
    m = getattr(plan, "n_microbatches", None)
    if par is not None and m:
        ideal = (par.pp - 1) / (m * par.vpp)
        text += (f"; with pp {par.pp}, {m} micro-batches and vpp {par.vpp} the 1F1B bubble is "
                 f"(pp-1)/(m*vpp) = {ideal:.2f} of compute")
        if compute_s:
            expected = ideal * compute_s
            text += f", about {_ms(expected)}"
            if bubble > 1.5 * expected + BUBBLE_THRESHOLD * iteration:
                text += ", so most of it is waiting for slower stages rather than the schedule"
                remedy = "balance the stages: cut the exposed communication of the slowest stage"
                if slowest is not None:
                    text += f" (stage {slowest[0]} exposes {_ms(slowest[1])} of communication)"
                    remedy += f" (stage {slowest[0]}, findings above)"
                remedy += " or move layers between stages (first_stage_layers, last_stage_layers)"
    return [f"{text}. What would help: {remedy}."]


def _imbalance_finding(imbalance: float, iteration: float, busiest: Any) -> list[str]:
    """The critical rank's pipeline waiting that a busier stage's extra work explains."""
    if iteration <= 0 or imbalance < BUBBLE_THRESHOLD * iteration:
        return []
    where = f" (stage {busiest})" if busiest is not None else ""
    return [f"Stage imbalance: the critical rank waits {_ms(imbalance)} ({_pct(imbalance / iteration)} of the "
            f"iteration) for the busiest stage{where}, whose compute and exposed communication take that much "
            "longer. What would help: balance the stages: cut the busiest stage's exposed communication "
            "(findings above) or move layers between stages (first_stage_layers, last_stage_layers)."]


def _memory_finding(plan: Any) -> list[str]:
    mem = getattr(plan, "memory", None)
    if mem is None or not getattr(mem, "capacity", 0):
        return []
    frac = mem.total / mem.capacity
    if frac < TIGHT_MEMORY:
        return []
    return [f"Memory is tight: pipeline stage {mem.stage} needs {mem.total / 1e9:.1f} GB of "
            f"{mem.capacity / 1e9:.0f} GB ({_pct(frac)}). What would help: activation recomputation, a larger "
            "tp or pp, or a higher ZeRO stage."]


def bottleneck_report(results: Any, summary: Mapping[str, Any] | None = None) -> list[str]:
    """Plain-words findings on what limits an iteration and what would help.

    Parameters
    ----------
    results : Results
        A simulated iteration.
    summary : mapping, optional
        ``oassim.analysis.metrics.summary(results)`` if already computed (computed here
        otherwise); its ``bubble_s`` and ``exposed_comm_s`` (s) are used, so the report agrees
        with the printed summary. Without a compiled plan (hand-made Results) the bubble is
        estimated from the ``ops`` frame: the busiest stage's iteration time minus its compute
        and exposed communication.

    Returns
    -------
    list of str
        One sentence (or two) per finding, most important first: the most utilised tier and
        its busiest links, exposed collectives (largest first), saturated tiers, the pipeline
        bubble, memory, or that the iteration is compute-bound. Rules: module docstring.
    """
    iteration = float(results.iteration_time_s)
    plan = getattr(results, "plan", None)
    if summary is None and getattr(plan, "flops", None) is not None:
        from oassim.analysis.metrics import summary as _summary

        summary = _summary(results)
    findings, slowest = _collective_findings(results, iteration)
    exposed = slowest[1] if slowest else 0.0
    compute_s = None
    if summary is not None and summary.get("exposed_comm_s") is not None:
        exposed = float(summary["exposed_comm_s"])
    if summary is not None and summary.get("bubble_s") is not None:
        bubble = float(summary["bubble_s"])
        compute_s = _num(summary.get("compute_s"))
    else:
        bubble = _bubble_s(results)
    if compute_s is None and getattr(plan, "stages", None):
        compute_s = float(plan.compute_only_s)
    out = _tier_finding(results)
    out[1:1] = findings  # after the headline tier, before hot-spot lines
    out += _bubble_finding(bubble, iteration, plan, compute_s, slowest)
    if summary is not None:
        out += _imbalance_finding(_num(summary.get("imbalance_s")) or 0.0, iteration, summary.get("busiest_stage"))
    out += _memory_finding(plan)
    if iteration > 0 and exposed < BUBBLE_THRESHOLD * iteration and bubble < BUBBLE_THRESHOLD * iteration:
        out.append(f"The iteration is compute-bound: exposed communication is {_ms(exposed)} and the bubble "
                   f"{_ms(bubble)}. What would help: faster matrix units (or FP8 GEMMs); more network "
                   "bandwidth would not.")
    if not out:
        out.append("Nothing stands out: no collective exposes 1% of the iteration.")
    return out


# -- the text summary of ``oassim run`` -------------------------------------------------------------

_HEADLINE = (
    ("iteration_time_s", "iteration time", lambda v: _ms(v)),
    ("tokens_per_s", "throughput", lambda v: f"{v:,.0f} tokens/s"),
    ("tflops_per_accelerator", "model TFLOP/s", lambda v: f"{v:,.1f} per accelerator"),
    ("mfu", "MFU", lambda v: f"{100 * v:.1f}%"),
    ("hfu", "HFU", lambda v: f"{100 * v:.1f}%"),
    ("exposed_comm_s", "exposed comm", lambda v: _ms(v)),
    ("bubble_s", "pipeline bubble", lambda v: _ms(v)),
    ("imbalance_s", "stage imbalance", lambda v: _ms(v)),
    ("memory_per_accelerator_GB", "memory", lambda v: f"{v:,.1f} GB per accelerator"),
)


# Headline figures that the compute model's efficiencies set (marked when those are uncalibrated).
_COMPUTE_BOUND = frozenset({"iteration_time_s", "tokens_per_s", "tflops_per_accelerator", "mfu", "hfu"})


def _num(v: Any) -> float | None:
    try:
        return None if v is None or isinstance(v, bool) else float(v)
    except (TypeError, ValueError):
        return None


def _breakdown_rows(breakdown: Any, iteration: float | None) -> list[tuple[str, str]]:
    """(label, value) rows of a breakdown {name: seconds}; zero parts are left out, each part
    shows its share of the iteration."""
    rows: list[tuple[str, str]] = []
    if not isinstance(breakdown, Mapping):
        return rows
    for label, v in breakdown.items():
        n = _num(v)
        if n is None:
            continue
        if n == 0.0:
            continue
        share = f"{100 * n / iteration:5.1f}%" if iteration else ""
        rows.append((str(label).replace("_", " "), f"{_ms(n):>9}  {share}"))
    return rows


def text_summary(record: Mapping[str, Any]) -> str:
    """A readable summary of a run record (``oassim.experiments.report_dict``).

    Lines: scenario and network; iteration time, throughput, model TFLOP/s per accelerator,
    MFU, HFU, exposed communication, bubble, stage imbalance, memory; the time breakdown table; exposed
    communication by parallel dimension; the bottleneck findings, numbered.
    """
    out: list[str] = []
    scen = record.get("scenario") or {}
    cluster = scen.get("cluster") or {}
    par = scen.get("parallelism") or {}
    name = record.get("name") or scen.get("name") or "scenario"
    out.append(f"oassim run: {name}")
    if scen:
        layout = " ".join(f"{k}{par[k]}" for k in ("tp", "pp", "dp", "cp", "ep", "vpp") if par.get(k, 1) != 1)
        wl = scen.get("workload") or {}
        model = (wl.get("model") or {}).get("name") if isinstance(wl.get("model"), Mapping) else wl.get("model")
        acc = cluster.get("accelerators")
        acc_text = f"{acc:,}" if isinstance(acc, int) else str(acc)
        out.append(f"  {model} on {acc_text} accelerators "
                   f"({cluster.get('preset') or cluster.get('file')}), {layout or 'no parallelism'}, "
                   f"seq {wl.get('seq_len')}, global batch {wl.get('global_batch')}, {wl.get('precision')}, "
                   f"network {record.get('network')}")
    out.append("")
    uncal = record.get("calibrated") is False
    for key, label, fmt in _HEADLINE:
        n = _num(record.get(key))
        if n is not None:
            mark = "  [uncalibrated]" if uncal and key in _COMPUTE_BOUND else ""
            out.append(f"  {label:<18} {fmt(n)}{mark}")
    if uncal:
        entry = record.get("efficiency_entry") or "default"
        out.append(f"  uncalibrated: compute efficiencies from entry '{entry}' of compute_efficiency.yaml, "
                   "not fitted to this accelerator's measurements; absolute times and rates are estimates")
    rows = _breakdown_rows(record.get("breakdown"), _num(record.get("iteration_time_s")))
    if rows:
        out += ["", "  breakdown (per iteration)"]
        width = max(len(r[0]) for r in rows)
        out += [f"    {label:<{width}}  {value}" for label, value in rows]
    by_dim = record.get("exposed_comm_by_dim")
    if isinstance(by_dim, Mapping) and by_dim:
        parts = [f"{k} {_ms(v)}" for k, v in by_dim.items() if _num(v)]
        if parts:
            out += ["", "  exposed comm by dimension: " + ", ".join(parts)]
    findings = record.get("findings") or record.get("bottlenecks") or []
    if findings:
        out += ["", "  bottlenecks"]
        out += [f"    {i}. {f}" for i, f in enumerate(findings, 1)]
    wall = ((record.get("provenance") or {}).get("wall_s")) or {}
    if wall:
        out += ["", "  wall time: " + ", ".join(f"{k} {float(v):.2f} s" for k, v in wall.items())]
    return "\n".join(out) + "\n"
