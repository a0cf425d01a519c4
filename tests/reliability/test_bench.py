"""Benchmark: a 54-day, 16,384-accelerator campaign, 100 samples (``pytest -m bench -s``; prints only)."""

from __future__ import annotations

import pytest

from oassim.bench_reliability import bench_reliability_once


@pytest.mark.bench
def test_reliability_campaign_16k_54_days_100_samples():
    """Counts of the 16,384-GPU DGX H100 cluster, then 100 seeded 54-day campaigns; prints wall times."""
    r = bench_reliability_once(16384, 54.0, 100)
    print(f"\nreliability: counts {r['counts_s']:.1f} s, campaigns {r['campaign_s']:.1f} s "
          f"(samples alone {r['samples_s']:.1f} s) "
          f"({r['samples']} x {r['days']:g} days, {r['accelerators']:,} accelerators), "
          f"{r['interruptions']:.0f} interruptions, goodput {r['goodput']:.3f}, peak {r['peak_rss_GB']:.2f} GB")
    assert r["interruptions"] > 0
