"""Benchmark of the reliability layer: a failure/checkpoint campaign of the Llama 3 scenario
(``python -m oassim.bench reliability``; figures printed, never asserted on wall time)."""

from __future__ import annotations

import time

from oassim.bench import _peak_rss_GB

__all__ = ["bench_reliability_once"]


def bench_reliability_once(accelerators: int = 16384, days: float = 54.0, samples: int = 100) -> dict:
    """A failure/checkpoint campaign of the Llama 3 scenario (DGX H100): cluster counts, then campaigns.

    ``counts_s``: building the cluster and counting its parts; ``campaign_s``: the first
    campaign (re-costing the degraded elements on the network model, then the samples);
    ``samples_s``: the same campaign again with the re-costing memoised (the samples alone).
    """
    from oassim.experiments.reliability import LLAMA3_SCENARIO, cluster_counts, reliability

    cache: dict = {}
    t0 = time.perf_counter()
    cluster_counts("dgx-h100-superpod", accelerators, cache)
    t1 = time.perf_counter()
    run = dict(days=days, samples=samples, overrides=[f"cluster.accelerators={accelerators}"], cluster_cache=cache)
    s = reliability(LLAMA3_SCENARIO, **run).summary()
    t2 = time.perf_counter()
    reliability(LLAMA3_SCENARIO, **run)  # the degraded elements' re-costing is memoised now: sampling only
    return {"accelerators": accelerators, "days": days, "samples": samples, "counts_s": t1 - t0,
            "campaign_s": t2 - t1, "samples_s": time.perf_counter() - t2, "interruptions": s["interruptions"]["mean"],
            "goodput": s["goodput"]["mean"], "peak_rss_GB": _peak_rss_GB()}
