"""Sweep metrics: a sweep file's ``reliability:`` section adds campaign columns to every point."""

from __future__ import annotations

import pytest

from oassim.errors import SpecError
from oassim.experiments.executors import run_sweep
from oassim.experiments.store import load_results

SWEEP = {
    "name": "rel-sweep",
    "base": {
        "name": "small",
        "cluster": {"preset": "dgx-h100-superpod", "accelerators": 256},
        "workload": {"model": "megatron-gpt-1.7b", "seq_len": 2048, "global_batch": 256, "micro_batch": 1,
                     "precision": "bf16", "recompute": "selective"},
        "parallelism": {"tp": 1, "pp": 1, "dp": 256, "sp": False, "zero": 1},
    },
    "axes": {"cluster.accelerators": [256, 512]},
    "derived": {"parallelism.dp": "accelerators // (tp * pp)", "workload.global_batch": "dp"},
    "reliability": {"days": 30, "samples": 10},
}


def test_each_point_gets_goodput_and_interruptions(tmp_path):
    """Two points, in process: goodput in (0, 1], twice the GPUs about twice the interruptions."""
    run_sweep(SWEEP, tmp_path / "store", workers=0, quiet=True)
    df = load_results(tmp_path / "store").sort_values("accelerators")
    assert list(df["status"]) == ["ok", "ok"]
    assert ((df["goodput"] > 0) & (df["goodput"] <= 1) & (df["goodput"] <= df["ettr"] + 1e-12)).all()
    lo, hi = df["interruptions_per_day"].tolist()
    assert 1.5 < hi / lo < 2.6  # stop rates scale with the counts (Poisson noise of 10 samples allowed)
    assert (df["effective_tokens_per_s"] <= df["tokens_per_s"]).all()


def test_bad_reliability_section_is_one_line():
    """A negative campaign length in a sweep file: one SpecError naming reliability.days."""
    from oassim.experiments.sweep import expand_sweep

    with pytest.raises(SpecError) as info:
        expand_sweep({**SWEEP, "reliability": {"days": -1}})
    assert "reliability.days" in str(info.value) and "\n" not in str(info.value)
