"""Validation against published failure statistics (fails above the stated tolerances).

Llama 3 405B, 54 days on 16,384 H100 (calibration source S09), **leave one source out**: no
rate citing S09 is used. The network group, predicted from the Alibaba HPN link and switch
rates (calibration source S27), within 50% (the issue's 20% is not met by any independent
figure); the HBM group, from the NCSA Delta per-GPU MTBE of H100 memory errors (every error
counted), an upper bound; the total inside the band of Meta RSC's node failure rates
(calibration source S26, A100). The other groups have no figure outside S09 and must be
reported as not predicted, never filled.

Consistency (not a prediction): a campaign with the S09-derived rates gives the total of 419
within 20% and every S09-derived group within 20%.

UB-Mesh paper (docs/sources.md [S42][S34], B1-9, D2): the MTBFs 13.8 h (Clos) and 98.5 h
(UB-Mesh) and their ratio 7.1 lie between the figures at the ends of the paper's AFR ranges
applied to the topology builder's part counts; availability from MTBF and MTTR within 0.1
percentage point of 91.6%, 98.8% and 99.78%.
"""

from __future__ import annotations

import pytest

from oassim.experiments.reliability import validation_report
from oassim.reliability.validation import format_rows, ubmesh_rows


@pytest.fixture(scope="module")
def report(counts_cache):
    return validation_report(samples=100, seed=0, cache=counts_cache)


def test_llama3_leave_one_source_out(report):
    """Interruptions by group with no S09 figure: predicted groups within their stated checks."""
    rows = {r["group"]: r for r in report["llama3_independent"]}
    print()
    print(format_rows(report["llama3_independent"], "Llama 3 405B, 54 days, leave S09 out"))
    for r in rows.values():
        assert "S09" not in r["rate_source"], r["group"]
    net = rows["network"]
    assert net["predicted"] is not None and abs(net["deviation_pct"]) <= 50
    assert rows["hbm"]["predicted"] >= rows["hbm"]["published"]
    assert rows["total (all causes)"]["ok"]
    for g in ("accelerator", "software", "host_maintenance", "collective_timeout", "host", "nic"):
        assert rows[g]["predicted"] is None and rows[g]["check"].startswith("not predicted"), g
    assert sum(r["published"] for r in rows.values() if r["group"] != "total (all causes)") == 419


def test_llama3_consistency_with_s09_rates(report):
    """The campaign with S09-derived rates reproduces the table it was derived from (counting check)."""
    print()
    print(format_rows(report["llama3"], "Llama 3 405B, 54 days, 16,384 H100 (S09-derived rates)"))
    print(format_rows(report["other"], "other published figures (not fitted)"))
    rows = {r["cause"]: r for r in report["llama3"]}
    assert abs(rows["total"]["deviation_pct"]) <= 20
    for cause in ("gpu", "dependency", "unplanned_maintenance", "host", "unknown"):
        assert abs(rows[cause]["deviation_pct"]) <= 20, cause
    s = report["summary"]
    assert 0 < s["goodput"]["mean"] <= s["ettr"]["mean"] <= 1


def test_ubmesh_mtbf_from_part_counts(report):
    """Published MTBFs and their ratio lie between the figures at the ends of the AFR ranges."""
    rows = report["ubmesh_parts"]
    print()
    print(format_rows(rows, "UB-Mesh MTBF from part counts"))
    by = {r["system"]: r for r in rows}
    clos, mesh = by["8K-NPU clos"], by["8K-NPU ub-mesh"]
    assert clos["optical_modules"] > 5 * mesh["optical_modules"]  # 93% fewer optical modules (D3)
    for r in rows:
        assert r["ok"], r["system"]


def test_ubmesh_availability():
    """A = MTBF / (MTBF + MTTR) reproduces the UB-Mesh paper's 91.6% / 98.8% / 99.78% within 0.1 pt."""
    rows = ubmesh_rows()
    print()
    print(format_rows(rows, "UB-Mesh availability"))
    for r in rows:
        assert abs(r["deviation_pt"]) <= 0.1, r["system"]


@pytest.mark.parametrize("ref, n", [("cloudmatrix384", 384), ("ub-mesh", 128)])
def test_ubmesh_check_counts_are_the_builders(ref, n):
    """Two modules per optical link equals ``topo info``'s optical module count on both presets."""
    from oassim.reliability.counts import reliability_counts
    from oassim.reliability.crosscheck import part_counts
    from oassim.topology.cluster import build_cluster
    from oassim.topology.cluster_spec import load_cluster
    from oassim.topology.fabric import freeze
    from oassim.topology.metrics import cluster_info

    g = build_cluster(load_cluster(ref, n))
    fab = freeze(g)
    assert part_counts(reliability_counts(g, fab))["optical_module"] == cluster_info(g, fab)["optical_modules"]
