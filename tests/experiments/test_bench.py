"""Benchmarks: every shipped scenario end to end (``pytest -m bench -s``; prints, never asserts times)."""

from __future__ import annotations

import time

import pytest

import oassim
from oassim.analysis.metrics import summary
from tests.experiments.conftest import SCENARIOS


@pytest.mark.bench
@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_scenario_runs_end_to_end(path):
    """Each experiments/*.yaml simulates to a positive iteration time; prints its wall times."""
    t = time.perf_counter()
    res = oassim.run(path)
    wall = time.perf_counter() - t
    s = summary(res)
    w = res.provenance["wall_s"]
    print(f"\n{path.stem}: iteration {s['iteration_time_s']:.2f} s, MFU {100 * s['mfu']:.1f}%, "
          f"{s['tokens_per_s']:,.0f} tokens/s; wall {wall:.1f} s (build {w['build']:.2f}, plan {w['plan']:.2f}, "
          f"simulate {w['simulate']:.2f})")
    assert s["iteration_time_s"] > 0
