"""OAS-Bench's goodput term: every training workload of an evaluation carries a campaign's goodput."""

from __future__ import annotations

from pathlib import Path

from oassim.experiments.evaluate import evaluate

SPEC = Path(__file__).resolve().parents[2] / "experiments" / "specs" / "ualink-200g-1.0.yaml"


def test_quick_evaluation_reports_goodput_beside_throughput():
    """Quick suite, one spec: goodput in (0, 1], interruptions > 0, kept tokens/s/acc. = tokens/s/acc. x goodput."""
    ev = evaluate([SPEC], "quick")
    (cand,) = ev.candidates
    ok = [r for r in cand.training if r.get("status") == "ok"]
    assert ok
    for r in ok:
        assert 0 < r["goodput"] <= 1 and r["interruptions_per_day"] > 0
        assert abs(r["goodput_tokens_per_s_per_accelerator"]
                   - r["tokens_per_s_per_accelerator"] * r["goodput"]) <= 1e-9 * r["tokens_per_s_per_accelerator"]
