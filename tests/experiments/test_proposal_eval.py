"""oassim evaluate on proposal files: bad proposals, mixed inputs, a mixed-vendor design that
breaks a rate rule, cost where every part is priced, and the report folder."""

from __future__ import annotations

import copy
import csv
import json
import math
from pathlib import Path
from typing import Any

import pytest
import yaml

from oassim.cli import main
from oassim.experiments.proposal import load_proposal
from oassim.experiments.proposal_build import build_proposal

ROOT = Path(__file__).resolve().parents[2]
UALINK = str(ROOT / "experiments" / "specs" / "ualink-200g-1.0.yaml")

# Two vendors' accelerators, 4 UALink supernodes of 64 on a 2-tier fat-tree (256 accelerators).
BASE: dict[str, Any] = {
    "proposal_format": "1", "name": "two-vendor", "cluster_accelerators": 256,
    "accelerators": [{"part": "gb200", "share": 0.5, "scaleup_ports": 18},
                     {"part": "b200-sxm", "share": 0.5, "scaleup_ports": 18}],
    "interconnect": UALINK,
    "supernode": {"family": "switched", "spec": {"size": 64, "switches": 18, "links_per_accelerator": 18},
                  "links": {"scaleup": {"technology": "interconnect", "length_m": 2}},
                  "switches": {"scaleup": "interconnect"}},
    "scale_out": {"family": "fat_tree", "spec": {}, "rails": 4,
                  "links": {"host": {"technology": "roce-400g", "module": "osfp-400g-sr4", "length_m": 30},
                            "leaf_spine": {"technology": "roce-400g", "module": "osfp-800g-2xdr4", "length_m": 100},
                            "spine_core": {"technology": "roce-400g", "module": "osfp-800g-2xdr4", "length_m": 300}},
                  "switches": {r: {"switch": "tomahawk-5", "rate_Gbps": 400} for r in ("leaf", "spine", "core")}},
}
# Test prices (inputs of the sums below, not figures of any product).
PRICES = {"gb200": 30000.0, "b200-sxm": 25000.0, "ualink-200g-1.0-switch": 4000.0, "tomahawk-5": 20000.0,
          "osfp-400g-sr4": 500.0, "osfp-800g-2xdr4": 900.0, "nic": 1000.0}


def write(folder: Path, name: str, **changes: Any) -> Path:
    data = copy.deepcopy(BASE)
    data.update(name=name, **changes)
    p = folder / f"{name}.yaml"
    p.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return p


@pytest.mark.parametrize("changes, where", [
    ({"prices_USD": {"h100-sxm": 1.0}}, r"prices_USD.h100-sxm: no part of this proposal is called 'h100-sxm'"),
    ({"accelerators": [{"part": "gb200", "share": 0.5}]}, r"accelerators: the shares add up to 0.5, not 1"),
    ({"interconnect": None}, r"accelerators\[0\].scaleup_ports: scaleup_ports needs the proposal's interconnect"),
    ({"proposal_format": "2"}, r"proposal_format: Input should be '1'"),
    ({"cluster_accelerators": 1 << 20}, r"cluster_accelerators: Input should be less than or equal to 131072"),
    ({"supernode": {**BASE["supernode"], "family": "hypercube"}}, r"supernode.family"),
], ids=["unknown-part-price", "shares", "no-interconnect", "format", "too-large", "family"])
def test_bad_proposal_is_one_line_exit_2_and_writes_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture, changes: dict, where: str) -> None:
    """A bad proposal exits 2 with one line naming the file and the key; --out is not created."""
    import re

    bad = write(tmp_path, "bad", **changes)
    out = tmp_path / "report"
    assert main(["evaluate", str(bad), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(bad) in err and re.search(where, err), err
    assert "Traceback" not in err and not out.exists()


def test_specs_and_proposals_do_not_mix(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """An interconnect spec beside a proposal is refused before any work."""
    p = write(tmp_path, "one")
    assert main(["evaluate", str(p), UALINK, "--out", str(tmp_path / "r"), "--quiet"]) == 2
    assert "all interconnect specs or all proposals" in capsys.readouterr().err


def test_mixed_vendors_split_by_supernode_and_cost_is_the_sum_over_priced_parts(tmp_path: Path) -> None:
    """Half the supernodes of each type; with every part priced the capital cost is each type's
    count x its price plus the switches, NIC ports and modules x theirs; with one price missing
    it is unknown and that part is named."""
    pc = build_proposal(load_proposal(write(tmp_path, "priced", prices_USD=PRICES)))
    t = pc.totals
    assert t["accelerators_by_type"] == {"gb200": 128, "b200-sxm": 128}
    n_sw = {r["part"]: 0 for r in t["switches"]}
    for r in t["switches"]:
        n_sw[r["part"]] += r["count"]
    assert n_sw["ualink-200g-1.0-switch"] == 4 * 18
    leaves = math.ceil(256 / 64)  # 128-port Tomahawk 5 leaves: 64 down
    assert sum(r["count"] for r in t["switches"] if r["tier"] == "leaf") == leaves
    mods = t["optical_modules_by_type"]
    assert mods["osfp-400g-sr4"] == 2 * 256
    expected = (128 * PRICES["gb200"] + 128 * PRICES["b200-sxm"] + 72 * PRICES["ualink-200g-1.0-switch"]
                + n_sw["tomahawk-5"] * PRICES["tomahawk-5"] + 256 * PRICES["nic"]
                + mods["osfp-400g-sr4"] * PRICES["osfp-400g-sr4"] + mods["osfp-800g-2xdr4"] * PRICES["osfp-800g-2xdr4"])
    assert t["capital_cost_USD"] == pytest.approx(expected) and t["cost_unknown_for"] == []
    assert t["capital_cost_USD_per_accelerator"] == pytest.approx(expected / 256)
    # power: 128 x 1,200 W (gb200) + 128 x 1,000 W (b200-sxm) [docs/sources.md A1] plus the fabric
    assert t["power_W"]["accelerators_W"] == pytest.approx(128 * 1200 + 128 * 1000)
    partial = {k: v for k, v in PRICES.items() if k != "osfp-800g-2xdr4"}
    t2 = build_proposal(load_proposal(write(tmp_path, "partial", prices_USD=partial)), check=False).totals
    assert t2["capital_cost_USD"] is None and t2["cost_unknown_for"] == ["osfp-800g-2xdr4"]
    assert t2["cost_known_USD"] == pytest.approx(expected - mods["osfp-800g-2xdr4"] * PRICES["osfp-800g-2xdr4"])


def test_report_lists_a_rule_breaker_unscored_and_leaves_scores_unevaluated(tmp_path: Path) -> None:
    """A type that keeps its own 512 Gb/s xGMI ports on 400 Gb/s UALink links breaks the rate
    rule: the report lists it with the violation and does not score it; the valid proposal's
    totals are in results.json, and its goodput with the H100-generation rates (quick profile)."""
    good = write(tmp_path, "good", prices_USD=PRICES)
    accs = [{"part": "gb200", "share": 0.5, "scaleup_ports": 18}, {"part": "mi300x", "share": 0.5}]
    bad = write(tmp_path, "xgmi-on-ualink", accelerators=accs, scale_out={**BASE["scale_out"]})
    out = tmp_path / "report"
    assert main(["evaluate", str(good), str(bad), "--out", str(out), "--quiet", "--quick"]) == 0
    res = json.loads((out / "results.json").read_text())
    by = {p["name"]: p for p in res["proposals"]}
    assert by["good"]["scored"] and by["good"]["violations"] == []
    v = by["xgmi-on-ualink"]["violations"]
    assert not by["xgmi-on-ualink"]["scored"] and sorted(x["rule"] for x in v) == ["radix", "rate-mismatch"]
    rate = next(x for x in v if x["rule"] == "rate-mismatch")
    assert "512 Gb/s" in rate["examples"][0] and "400 Gb/s" in rate["examples"][0]
    assert by["good"]["totals"]["capital_cost_USD"] > 0
    assert "not_yet_evaluated" not in res
    md = (out / "report.md").read_text()
    assert "not scored" in md and "not yet evaluated" not in md and "\\[rate-mismatch\\]" in md
    assert (out / "proposals.png").read_bytes()[:4] == b"\x89PNG"
    html = (out / "report.html").read_text()
    assert "data:image/png;base64," in html and "inputs/good/cluster.yaml" in html
    cluster = yaml.safe_load((out / "inputs" / "good" / "cluster.yaml").read_text())
    assert cluster["accelerators"] == 256 and cluster["supernode"]["family"] == "switched"
    rows = {r["proposal"]: r for r in csv.DictReader((out / "proposals.csv").open())}
    assert 0 < float(rows["good"]["llama3-70b_goodput"]) <= 1 and rows["xgmi-on-ualink"]["llama3-70b_goodput"] == ""


def test_a_second_type_with_too_few_ports_breaks_the_port_rule(tmp_path: Path) -> None:
    """A second type wired with more links than it has ports (MI300X: 7 xGMI ports, 18 links)
    is a radix violation, and its 512 Gb/s ports a rate mismatch; the first type is not flagged."""
    accs = [{"part": "gb200", "share": 0.5, "scaleup_ports": 18}, {"part": "mi300x", "share": 0.5}]
    pc = build_proposal(load_proposal(write(tmp_path, "ports", accelerators=accs)))
    rules = sorted(v.rule for v in pc.violations)
    assert rules == ["radix", "rate-mismatch"]
    assert all("mi300x" in v.component for v in pc.violations)
    assert any("18 scale-up links per accelerator, but it has 7" in v.message for v in pc.violations)
