"""OAS-Bench 2.0 scoring of proposals: the layout search, the pacing accelerator of a mixed
cluster, and two small proposals evaluated end to end (quick profile)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from oassim.errors import SpecError
from oassim.experiments.layout_search import expand, search, stage_split
from oassim.experiments.proposal_score import pacing_accelerator
from oassim.experiments.proposal_suite import PROPOSAL_QUICK
from oassim.hardware import load_catalog
from oassim.workload import resolve_model
from tests.experiments.test_proposal_eval import BASE, write


@pytest.mark.parametrize("layers, pp, split", [
    (126, 16, {"first_stage_layers": 7, "last_stage_layers": 7}),   # Llama 3 405B (arXiv:2407.21783 §3.3.2)
    (61, 16, {"first_stage_layers": 3, "last_stage_layers": 2}),    # DeepSeek-V3 (its published 16-stage split)
    (80, 8, {}),
    (7, 2, None),
])
def test_stage_split(layers: int, pp: int, split: dict | None) -> None:
    """Middle stages hold ceil(L / pp) layers, the ends share the rest, and every layer is placed."""
    assert stage_split(layers, pp) == split
    if split:
        assert split["first_stage_layers"] + split["last_stage_layers"] + (pp - 2) * -(-layers // pp) == layers


def test_expand_skips_layouts_that_do_not_tile_the_job() -> None:
    """dp = N / (tp pp); a TP group beyond the domain, an EP that does not divide DP, a batch DP
    does not divide and expert groups that do not tile the domains are skipped before any simulation."""
    cands = expand([{"tp": 8, "pp": 4}, {"tp": 16, "pp": 2}, {"tp": 1, "pp": 4, "ep": 128}, {"tp": 1, "pp": 2}],
                   {"sp": True, "zero": 1}, layers=32, accelerators=256, global_batch=64, micro_batch=1,
                   domain_size=8)
    assert cands[0].status == "not run" and cands[0].parallelism["dp"] == 8 and cands[0].parallelism["sp"]
    assert "larger than the scale-up domain" in cands[1].status
    assert "EP 128 does not divide DP 64" in cands[2].status
    assert "does not divide the batch 64" in cands[3].status
    # EP 64 neither divides a 72-accelerator domain nor is a whole number of them; EP 8 divides it
    moe = expand([{"tp": 1, "pp": 16, "ep": 64}, {"tp": 1, "pp": 16, "ep": 8}], {"zero": 1}, layers=61,
                 accelerators=16384, global_batch=15360, micro_batch=1, domain_size=72)
    assert "do not tile the 72-accelerator domains" in moe[0].status and moe[1].status == "not run"
    assert moe[1].parallelism["dp"] == 1024 and moe[1].parallelism["first_stage_layers"] == 3


def test_search_returns_a_layout_no_worse_than_any_it_tried() -> None:
    """The best is the highest tokens/s of the candidates that ran; a refused one is kept as infeasible."""
    cands = expand([{"tp": t, "pp": p} for t in (1, 2, 4, 8) for p in (1, 2, 4)], {"zero": 1}, layers=32,
                   accelerators=64, global_batch=64, micro_batch=1, domain_size=8)

    def evaluate(par: dict) -> dict:
        if par["tp"] * par["pp"] == 1:
            raise SpecError("does not fit in HBM")
        # a made-up, non-monotone cost: the best is interior
        return {"tokens_per_s": 1e6 / ((par["tp"] - 4) ** 2 + (par["pp"] - 2) ** 2 + 1)}

    res = search(cands, evaluate)
    ran = [c for c in res.tried if c.status == "ok"]
    assert res.best is not None and all(res.best.record["tokens_per_s"] >= c.record["tokens_per_s"] for c in ran)
    assert (res.best.parallelism["tp"], res.best.parallelism["pp"]) == (4, 2)
    assert res.tried[0].status == "infeasible: does not fit in HBM"


def test_pacing_accelerator_is_the_slowest_type() -> None:
    """A mix of GB200 (2,500 TFLOPS BF16) and TPU v5p (459) runs as TPU v5p and is marked approximated."""
    cat = load_catalog()
    part, prec, note = pacing_accelerator([cat.accelerator("gb200"), cat.accelerator("tpu-v5p")], ("bf16",))
    assert part.name == "tpu-v5p" and prec == "bf16" and note.startswith("approximated")
    part, _, note = pacing_accelerator([cat.accelerator("gb200")], ("bf16",))
    assert part.name == "gb200" and note is None


def test_two_proposals_end_to_end(tmp_path: Path) -> None:
    """Quick profile on two valid proposals and a rule breaker: the ranking follows the scores
    (geomean of tokens/s relative to the best), throughput is below the accelerators' peak
    (6 x active params x tokens/s < N x peak, MFU < 1), the best layout is no worse than any
    candidate tried, the mixed-type one is approximated, and the rule breaker is not scored."""
    from oassim.cli import main

    single = write(tmp_path, "gb200-only", accelerators=[{"part": "gb200", "share": 1.0, "scaleup_ports": 18}])
    mixed = write(tmp_path, "two-vendor")
    bad = write(tmp_path, "xgmi-on-ualink", accelerators=[{"part": "gb200", "share": 0.5, "scaleup_ports": 18},
                                                          {"part": "mi300x", "share": 0.5}])
    out = tmp_path / "report"
    assert main(["evaluate", str(single), str(mixed), str(bad), "--out", str(out), "--quiet", "--quick"]) == 0
    res = json.loads((out / "results.json").read_text())
    by = {p["name"]: p for p in res["proposals"]}
    workloads = [w.name for w in PROPOSAL_QUICK.training]
    best = {w: max(by[n]["scores"][w]["tokens_per_s"] for n in ("gb200-only", "two-vendor")) for w in workloads}
    ranking = res["ranking"]
    assert [r["proposal"] for r in ranking][-1] == "xgmi-on-ualink"
    assert ranking[-1]["rank"] is None and ranking[-1]["status"].startswith("not scored")
    assert "scores" not in by["xgmi-on-ualink"]
    ranked = [r for r in ranking if r["rank"] is not None]
    assert len(ranked) == 2 and ranked[0]["score"] >= ranked[1]["score"]
    cat = load_catalog()
    for r in ranked:
        expect = math.exp(sum(math.log(by[r["proposal"]]["scores"][w]["tokens_per_s"] / best[w])
                              for w in workloads) / len(workloads))
        assert r["score"] == pytest.approx(expect, rel=1e-12)
    for name in ("gb200-only", "two-vendor"):
        for t in by[name]["training"]:
            assert t["status"] == "ok"
            wl = next(w for w in PROPOSAL_QUICK.training if w.name == t["workload"])
            peak = cat.accelerator(t["pacing_accelerator"]).peak_flops(t["precision"])
            model_flops = 6 * resolve_model(wl.model).nonembedding_params(active=True) * t["tokens_per_s"]
            assert 0 < t["mfu"] < 1 and model_flops < wl.accelerators * peak
            assert all(t["tokens_per_s"] >= c["tokens_per_s"] for c in t["candidates"] if c["status"] == "ok")
            assert bool(t["approximated"]) == (name == "two-vendor")
    rows = [c for c in by["gb200-only"]["collectives"] if c["status"] == "ok"]
    assert {c["op"] for c in rows} == {"all_reduce", "all_gather", "all_to_all"}
    assert all(c["busbw_GBps"] > 0 and c["bottleneck_tier"] for c in rows)
    md = (out / "report.md").read_text()
    assert "## Ranking" in md and "approximated" in md and "not yet evaluated" in md
    assert (out / "collectives.csv").is_file() and (out / "training.csv").is_file()
    assert BASE["cluster_accelerators"] == 256
