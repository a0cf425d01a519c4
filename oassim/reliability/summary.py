"""A campaign's Results: interruptions per day with their spread, goodput, ETTR, lost hours.

What is reported (docs/metrics.md, "Reliability"), each as the mean over samples and, where
named ``ci95``, the central 95% interval of the per-campaign values (what one campaign of this
length would see, 2.5th to 97.5th percentile):

- ``interruptions``, ``interruptions_per_day``: job stops (every ``stop`` failure, including
  those that strike during a restart);
- ``goodput``: useful work at full speed / wall time (checkpoints, lost work, restarts, waits
  for spares, degraded and straggling time all count against it);
- ``ettr``: effective training time ratio, time spent training and kept / wall time (degraded
  and straggling time count as training; checkpoints, rework, restarts and waits do not);
- ``mtbf_hours``: campaign hours / interruptions, over all samples;
- ``lost_hours_by_cause`` and ``lost_hours_by_component``: mean hours per campaign lost to
  rework, restart, spare waits and slowdowns, by root cause (the Llama 3 table's categories)
  and by component type; checkpoint writes are listed as ``checkpoint``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from oassim.reliability.campaign import CampaignParams, SampleTally
from oassim.reliability.exposure import Exposure

__all__ = ["CampaignResult", "summarise", "text_report"]


@dataclass(frozen=True)
class CampaignResult:
    """Everything one reliability run produced: inputs, exposures, per-sample tallies."""

    cluster: str
    accelerators: int
    params: CampaignParams
    samples: list[SampleTally]
    exposures: list[Exposure]
    unset: list[tuple[str, str, int]]
    seed: int
    checkpoint_rule: str
    assumptions: list[str] = field(default_factory=list)
    accelerator_rates: str | None = None
    spare_accelerators: int | None = None  # as given (None: unlimited)
    recost_notes: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """The JSON-ready record (:func:`summarise`)."""
        return summarise(self)


def _stat(values: np.ndarray, digits: int = 4) -> dict[str, Any]:
    lo, hi = np.percentile(values, [2.5, 97.5]) if len(values) else (np.nan, np.nan)
    return {"mean": round(float(np.mean(values)), digits), "ci95": [round(float(lo), digits), round(float(hi), digits)]}


def summarise(res: CampaignResult) -> dict[str, Any]:
    """JSON-ready summary of a campaign (keys of docs/metrics.md, "Reliability")."""
    p = res.params
    hours = p.days * 24.0
    n = np.array([s.interruptions for s in res.samples], dtype=float)
    t = {k: np.array([s.time[k] for s in res.samples]) for k in res.samples[0].time}
    goodput = t["useful"] / hours
    ettr = (t["useful"] + t["degraded"] + t["straggler"]) / hours
    causes: dict[str, float] = {}
    comps: dict[str, float] = {}
    for s in res.samples:
        for k, v in s.by_cause.items():
            causes[k] = causes.get(k, 0.0) + v / len(res.samples)
        for k, v in s.by_component.items():
            comps[k] = comps.get(k, 0.0) + v / len(res.samples)
    ck = float(t["checkpoint"].mean())
    by_cause_n: dict[str, float] = {}
    for s in res.samples:
        for k, v in s.interruptions_by_cause.items():
            by_cause_n[k] = by_cause_n.get(k, 0.0) + v / len(res.samples)
    total = float(n.sum())
    return {
        "cluster": res.cluster,
        "accelerators": res.accelerators,
        "days": p.days,
        "samples": len(res.samples),
        "seed": res.seed,
        "interruptions": _stat(n, 2),
        "interruptions_per_day": _stat(n / p.days),
        "interruptions_by_cause": {k: round(v, 2) for k, v in sorted(by_cause_n.items(), key=lambda kv: -kv[1])},
        "goodput": _stat(goodput),
        "ettr": _stat(ettr),
        "mtbf_hours": round(hours * len(n) / total, 3) if total else None,
        "lost_hours_by_cause": {**{k: round(v, 2) for k, v in sorted(causes.items(), key=lambda kv: -kv[1])},
                                "checkpoint": round(ck, 2)},
        "lost_hours_by_component": {**{k: round(v, 2) for k, v in sorted(comps.items(), key=lambda kv: -kv[1])},
                                    "checkpoint": round(ck, 2)},
        "hours": {k: round(float(v.mean()), 2) for k, v in t.items()},
        "checkpoint": {"interval_s": round(p.interval_s, 1), "write_s": round(p.write_s, 1),
                       "rule": res.checkpoint_rule},
        "params": {"detect_s": p.detect_s, "restart_s": p.restart_s, "repair_h": p.repair_h,
                   "spare_accelerators": res.spare_accelerators, "straggler_slowdown": p.straggler_slowdown,
                   "comm_fraction": p.comm_fraction, "link_loss": p.link_loss},
        "exposures": [
            {"component": e.component, "tier": e.tier, "cause": e.cause, "count": e.count, "rate_FIT": e.rate_FIT,
             "failures_per_day": round(e.per_hour * 24.0, 4),
             "action": "stop, then degraded" if e.action == "degraded" and p.link_loss == "stop" else e.action,
             "units_out": e.units_out, "blast_radius": e.blast,
             "degraded_slowdown": round(e.degraded_slowdown, 5) if e.action == "degraded" else None,
             "recosted": e.slowdown is not None}
            for e in res.exposures
        ],
        "unset": [{"component": c, "tier": tr, "count": k} for c, tr, k in res.unset],
        "accelerator_rates": res.accelerator_rates,
        "assumptions": list(res.assumptions),
        "recost": list(res.recost_notes),
    }


def text_report(rec: dict[str, Any]) -> str:
    """The human-readable report of ``oassim reliability``."""
    lines = [f"# oassim reliability: {rec['cluster']} ({rec['accelerators']:,} accelerators), {rec['days']:g} days, "
             f"{rec['samples']} samples, seed {rec['seed']}"]

    def stat(key: str, fmt: str) -> str:
        s = rec[key]
        lo, hi = (format(v, fmt) for v in s["ci95"])
        return f"{format(s['mean'], fmt)}  (95% of campaigns: {lo} .. {hi})"

    lines.append(f"interruptions           {stat('interruptions', '.1f')}")
    lines.append(f"interruptions per day   {stat('interruptions_per_day', '.2f')}")
    mtbf = rec["mtbf_hours"]
    lines.append(f"job MTBF                {mtbf} h" if mtbf is not None else
                 "job MTBF                no interruptions")
    lines.append(f"goodput                 {stat('goodput', '.4f')}")
    lines.append(f"ETTR                    {stat('ettr', '.4f')}")
    ck = rec["checkpoint"]
    lines.append(f"checkpoint              every {ck['interval_s'] / 60:.1f} min of compute ({ck['rule']}), "
                 f"write {ck['write_s']:.1f} s")
    lines.append("")
    lines.append(f"{'lost hours by cause':<28} {'hours':>9}    {'by component':<22} {'hours':>9}")
    a, b = list(rec["lost_hours_by_cause"].items()), list(rec["lost_hours_by_component"].items())
    for i in range(max(len(a), len(b))):
        left = f"{a[i][0]:<28} {a[i][1]:>9.2f}" if i < len(a) else " " * 38
        right = f"{b[i][0]:<22} {b[i][1]:>9.2f}" if i < len(b) else ""
        lines.append(f"{left}    {right}")
    lines.append("")
    lines.append(f"{'failure source':<34} {'count':>9} {'FIT':>8} {'per day':>8}  {'action':<19} blast radius")
    for e in rec["exposures"]:
        lines.append(f"{e['component'] + ':' + e['tier']:<34} {e['count']:>9,} {e['rate_FIT']:>8g} "
                     f"{e['failures_per_day']:>8.3f}  {e['action']:<19} {e['blast_radius']}")
    if rec["unset"]:
        names = ", ".join(f"{u['component']}:{u['tier']}" + (f" ({u['count']:,})" if u["count"] else "")
                          for u in rec["unset"])
        lines.append(f"# unset (no citable rate; not in the campaign): {names}")
    for r_ in rec.get("recost", []):
        lines.append(f"# re-costed: {r_}")
    for a_ in rec["assumptions"]:
        lines.append(f"# assumed: {a_}")
    return "\n".join(lines) + "\n"
