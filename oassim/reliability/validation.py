"""Checks of the reliability model against published failure statistics.

What is checked:

- **Llama 3 405B, 54 days on 16,384 H100** (calibration source S09, rows F0001-F0021): the
  interruption count (419 unexpected) and its split by root-cause category, from a campaign on
  the ``dgx-h100-superpod`` preset at 16,384 GPUs. The per-accelerator, host and NIC rates of
  the catalog are derived from this same table, so those categories check the counting and the
  campaign, not an independent prediction; the network category is predicted from the Alibaba
  HPN link and switch rates (calibration source S27) and is the independent part.
- **Other sources** (S26 Meta RSC, S27 Alibaba HPN, S16 MegaScale, S09's own ETTR and shares):
  printed beside the model's figure, with the caveats of each (other accelerator generation,
  secondary sources); not fitted.
- **UB-Mesh availability** (UB-Mesh paper, docs/sources.md [S42][S34], note B1-9): an 8K-NPU
  Clos at MTBF 13.8 h and UB-Mesh at 98.5 h, with a 75-minute MTTR, are 91.6% and 98.8%
  available, and 99.78% at a 13-minute MTTR: ``A = MTBF / (MTBF + MTTR)``.
"""

from __future__ import annotations

import csv
from typing import Any

from oassim.data import calibration_csv

__all__ = [
    "LLAMA3_CAUSES", "llama3_published", "llama3_rows", "availability", "UBMESH_CASES", "ubmesh_rows",
    "format_rows", "stop_mtbf_hours",
]

#: Root-cause category of the Llama 3 table (CSV ``category``) -> campaign cause.
LLAMA3_CAUSES = {"GPU": "gpu", "Dependency": "dependency", "Network": "network",
                 "Unplanned Maintenance": "unplanned_maintenance", "Host": "host", "Unknown": "unknown"}


def _rows() -> list[dict[str, str]]:
    with open(calibration_csv("failures"), newline="") as fh:
        return list(csv.DictReader(fh))


def llama3_published() -> dict[str, float]:
    """Unexpected interruptions of the Llama 3 54-day snapshot: total and by campaign cause."""
    out: dict[str, float] = {c: 0.0 for c in LLAMA3_CAUSES.values()}
    total = None
    for r in _rows():
        if r["source_id"] != "S09":
            continue
        if r["metric"] == "unexpected interruptions by root cause":
            out[LLAMA3_CAUSES[r["category"]]] += float(r["count"])
        elif r["metric"] == "unexpected interruptions":
            total = float(r["value"])
    out["total"] = float(total) if total is not None else sum(out.values())
    return out


def llama3_rows(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """Published vs simulated interruptions by cause (and the total) for a 54-day campaign."""
    pub = llama3_published()
    sim = dict(summary["interruptions_by_cause"])
    sim["total"] = summary["interruptions"]["mean"]
    rows = []
    for cause in [*LLAMA3_CAUSES.values(), "total"]:
        p, s = pub[cause], float(sim.get(cause, 0.0))
        basis = "S27 rates (independent)" if cause == "network" else (
            "all rates" if cause == "total" else "rates derived from S09")
        rows.append({"cause": cause, "published": p, "simulated": round(s, 1),
                     "deviation_pct": round(100.0 * (s - p) / p, 1) if p else None, "basis": basis})
    return rows


def availability(mtbf_h: float, mttr_h: float) -> float:
    """Steady-state availability of a repairable system: MTBF / (MTBF + MTTR)."""
    return mtbf_h / (mtbf_h + mttr_h)


#: The UB-Mesh paper's availability comparison (note B1-9): (system, MTBF h, MTTR h, published).
UBMESH_CASES: tuple[tuple[str, float, float, float], ...] = (
    ("8K-NPU Clos", 13.8, 75 / 60, 0.916),
    ("8K-NPU UB-Mesh", 98.5, 75 / 60, 0.988),
    ("8K-NPU UB-Mesh, with monitoring", 98.5, 13 / 60, 0.9978),
)


def ubmesh_rows() -> list[dict[str, Any]]:
    """Availability from the paper's MTBF and MTTR against its published availability."""
    return [{"system": s, "mtbf_h": m, "mttr_min": round(r * 60), "published": a,
             "computed": round(availability(m, r), 4), "deviation_pt": round(100 * (availability(m, r) - a), 2)}
            for s, m, r, a in UBMESH_CASES]


def stop_mtbf_hours(exposures: list[Any], link_loss: str = "stop") -> float:
    """Mean time between job stops of a cluster's exposures (closed form: 1 / sum of rates)."""
    rate = sum(e.per_hour for e in exposures if e.action == "stop" or link_loss == "stop")
    return 1.0 / rate if rate > 0 else float("inf")


def format_rows(rows: list[dict[str, Any]], title: str) -> str:
    """A plain text table of ``rows`` (the keys of the first row are the columns)."""
    if not rows:
        return f"# {title}: no rows\n"
    cols = list(rows[0])

    def cell(v: Any) -> str:
        if v is None:
            return ""
        if isinstance(v, bool):
            return "yes" if v else "NO"
        return f"{v:,}" if isinstance(v, int) else str(v)

    cells = [[cell(r[c]) for c in cols] for r in rows]
    width = [max(len(c), *(len(x[i]) for x in cells)) for i, c in enumerate(cols)]
    out = [f"# {title}", "  ".join(c.ljust(w) for c, w in zip(cols, width))]
    out += ["  ".join(x.ljust(w) for x, w in zip(row, width)) for row in cells]
    return "\n".join(out) + "\n"
