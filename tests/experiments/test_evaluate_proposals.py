"""OAS-Bench 2.0 scoring of proposals: the layout search, the precision of a mixed cluster, the
balanced variants of a mixed cluster's layouts, and two small proposals evaluated end to end
(quick profile)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from oassim.errors import SpecError
from oassim.experiments.layout_search import Candidate, expand, search, stage_split, with_balanced
from oassim.experiments.proposal import load_proposal
from oassim.experiments.proposal_score import common_precision, nic_note
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


def test_common_precision_is_one_every_type_supports() -> None:
    """GB200 has FP8, A100 none: a workload preferring FP8 runs BF16 on the mix, FP8 on GB200 alone."""
    cat = load_catalog()
    gb200, a100 = cat.accelerator("gb200"), cat.accelerator("a100-sxm")
    assert common_precision([gb200, a100], ("fp8", "bf16")) == "bf16"
    assert common_precision([gb200], ("fp8", "bf16")) == "fp8"
    with pytest.raises(SpecError, match="no accelerator type supports all of fp8"):
        common_precision([gb200, a100], ("fp8",))


def test_a_mix_whose_nics_differ_is_approximated_unless_the_proposal_fixes_the_nic(tmp_path: Path) -> None:
    """GB200 (1 x 400 Gb/s NIC) with TPU v5p (1 x 50 Gb/s): the graph has one NIC, so the run is
    approximated and says so; with scale_out.nic set every type has that NIC, and two types with
    the same NIC (GB200 and B200) are exact."""
    from types import SimpleNamespace

    mixed = write(tmp_path, "nic-mix", accelerators=[{"part": "gb200", "share": 0.5, "scaleup_ports": 18},
                                                     {"part": "tpu-v5p", "share": 0.5, "scaleup_ports": 18}])
    note = nic_note(SimpleNamespace(proposal=load_proposal(mixed)))
    assert note.startswith("approximated: the scale-out NICs of tpu-v5p are simulated as gb200's (1 x 400 Gb/s")
    fixed = write(tmp_path, "nic-fixed", accelerators=[{"part": "gb200", "share": 0.5, "scaleup_ports": 18},
                                                       {"part": "tpu-v5p", "share": 0.5, "scaleup_ports": 18}],
                  scale_out={**BASE["scale_out"], "nic": {"ports": 1, "rate_Gbps": 400}})
    assert nic_note(SimpleNamespace(proposal=load_proposal(fixed))) is None
    assert nic_note(SimpleNamespace(proposal=load_proposal(write(tmp_path, "same-nic")))) is None


def test_with_balanced_adds_a_variant_only_where_the_split_changes() -> None:
    """Each runnable candidate is followed by its balanced variant (the layout string of the
    counts, the first/last split dropped); a skipped one gets none, a split equal to the
    candidate's own is left out, and a refusal is kept as skipped with the reason."""
    cands = [Candidate({"tp": 8, "pp": 4, "dp": 8}), Candidate({"tp": 8, "pp": 2, "dp": 16}),
             Candidate({"tp": 16, "pp": 2}, status="skipped: TP 16 is larger than the scale-up domain (8)"),
             Candidate({"tp": 8, "pp": 16, "dp": 2, "first_stage_layers": 1, "last_stage_layers": 1})]

    def balance(par):
        if par["pp"] == 16:
            raise SpecError("no split")
        return [12, 8, 6, 6] if par["pp"] == 4 else [16, 16]

    out = with_balanced(cands, balance)
    assert [c.label for c in out] == ["TP 8 PP 4 DP 8", "TP 8 PP 4 DP 8 balanced", "TP 8 PP 2 DP 16", "TP 16 PP 2",
                                      "TP 8 PP 16 DP 2", "TP 8 PP 16 DP 2 balanced"]
    assert out[1].parallelism["pipeline_model_parallel_layout"] == "Et*12|t*8|t*6|t*6L"
    assert out[5].status == "skipped: no split" and "first_stage_layers" not in out[5].parallelism


def test_two_proposals_end_to_end(tmp_path: Path) -> None:
    """Quick profile on two valid proposals and a rule breaker: the ranking follows the scores
    (geomean of tokens/s relative to the best), throughput is below the accelerators' peak
    (6 x active params x tokens/s < N x peak, MFU < 1), the best layout is no worse than any
    candidate tried, the mixed-type one runs its stages on their own chips (GB200 on stages 0-1,
    B200 on 2-3) with a balanced variant of every layout tried, and the rule breaker is not scored."""
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
            peaks = sum(n * cat.accelerator(a).peak_flops(t["precision"]) for a, n in t["accelerators_by_type"].items())
            model_flops = 6 * resolve_model(wl.model).nonembedding_params(active=True) * t["tokens_per_s"]
            assert sum(t["accelerators_by_type"].values()) == wl.accelerators
            assert 0 < t["mfu"] < 1 and model_flops < peaks
            assert all(t["tokens_per_s"] >= c["tokens_per_s"] for c in t["candidates"] if c["status"] == "ok")
            balanced = [c for c in t["candidates"] if c["layout"].endswith("balanced")]
            assert t["approximated"] is None  # GB200 and B200 have the same NIC
            if name == "two-vendor":  # 4 supernodes of 64: PP 4 puts one supernode on each stage
                assert t["stage_accelerators"][:2] == ["gb200"] * 2 and balanced
                assert sum(t["stage_layers"]) == resolve_model(wl.model).layers
                if t["layout"].startswith("TP 8 PP 4"):
                    assert t["stage_accelerators"][2:] == ["b200-sxm"] * 2
            else:
                assert set(t["stage_accelerators"]) == {"gb200"} and not balanced
    rows = [c for c in by["gb200-only"]["collectives"] if c["status"] == "ok"]
    assert {c["op"] for c in rows} == {"all_reduce", "all_gather", "all_to_all"}
    assert all(c["busbw_GBps"] > 0 and c["bottleneck_tier"] for c in rows)
    for name in ("gb200-only", "two-vendor"):  # goodput of every workload's best layout
        for t in by[name]["training"]:
            g, sc = t["goodput"], by[name]["scores"][t["workload"]]
            assert 0 < g["goodput"]["mean"] <= 1 and g["days"] == PROPOSAL_QUICK.goodput_days
            assert g["interruptions_per_day"]["mean"] > 0  # 256 accelerators' parts do fail
            assert sc["goodput_tokens_per_s"] == pytest.approx(t["tokens_per_s"] * g["goodput"]["mean"], rel=1e-3)
            chips = ", ".join(dict.fromkeys(t["stage_accelerators"]))
            assert g["marks"][0] == f"uncalibrated: h100-sxm accelerator, host and NIC rates stand in for {chips}"
    md = (out / "report.md").read_text()
    assert "## Ranking" in md and "Pipeline stages by chip type: 0-1 gb200" in md and "not yet evaluated" not in md
    assert "goodput, tokens/s kept" in md and "Goodput over 30 days" in md
    assert (out / "collectives.csv").is_file() and (out / "training.csv").is_file()
    assert BASE["cluster_accelerators"] == 256
