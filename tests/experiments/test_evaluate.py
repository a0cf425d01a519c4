"""OAS-Bench evaluation: bad specs, the reference cluster, the ranking and the report folder."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from oassim.cli import main
from oassim.experiments.evaluate import limiter, rank
from oassim.experiments.oasbench import reference_design
from oassim.hardware import load_catalog

ROOT = Path(__file__).resolve().parents[2]
UALINK = ROOT / "experiments" / "specs" / "ualink-200g-1.0.yaml"

BASE = {"name": "base", "domain": "scale_up", "lane_rate_Gbps": 100.0, "lanes_per_port": 2,
        "switch": {"radix": 64, "in_network_reduction": False}}


def write_spec(folder: Path, name: str, **changes: Any) -> Path:
    """A spec file made from BASE with ``changes``; returns its path."""
    p = folder / f"{name}.yaml"
    p.write_text(yaml.safe_dump({**BASE, "name": name, **changes}, sort_keys=False), encoding="utf-8")
    return p


def build(data: dict[str, Any], accelerators: int, tmp_path: Path):
    """Resolve, build and describe the reference cluster of a spec mapping."""
    from oassim.topology.cluster import build_cluster
    from oassim.topology.cluster_spec import load_cluster
    from oassim.topology.fabric import freeze
    from oassim.topology.metrics import cluster_info

    design = reference_design(load_catalog().resolve_interconnect(data), "full")
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump(design.cluster), encoding="utf-8")
    g = build_cluster(load_cluster(path, accelerators))
    return design, g, cluster_info(g, freeze(g))


@pytest.mark.parametrize("edit, where", [
    (lambda t: t.replace("lane_rate_Gbps: 212.5", "#"), r"lane_rate_Gbps: required key is missing"),
    (lambda t: t + "lane_speed_Gbps: 5\n", r"lane_speed_Gbps: unknown key 'lane_speed_Gbps'"),
    (lambda t: t.replace("protocol_efficiency: 0.93", "protocol_efficiency: 1.5"),
     r"protocol_efficiency: Input should be less than or equal to 1"),
], ids=["missing", "unknown", "impossible"])
def test_bad_spec_is_one_line_and_leaves_nothing(tmp_path: Path, capsys: pytest.CaptureFixture, edit, where) -> None:
    """A missing, unknown or impossible field exits 2 with one line FILE: key: message; --out stays untouched."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(edit(UALINK.read_text(encoding="utf-8")), encoding="utf-8")
    out = tmp_path / "report"
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "old.txt").write_text("old")
    assert main(["evaluate", str(UALINK), str(bad), "--out", str(out), "--quiet"]) == 2
    assert main(["evaluate", str(bad), "--out", str(kept), "--quiet"]) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 2 and lines[0] == lines[1]
    assert re.match(rf"^oassim: error: {re.escape(str(bad))}: {where}", lines[0]), lines[0]
    assert not out.exists()
    assert [p.name for p in kept.iterdir()] == ["old.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml", "kept"]


def test_candidates_must_differ_in_name_and_share_a_domain(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """Two candidates of one name, or a scale-out among scale-up candidates, are one-line errors."""
    a = write_spec(tmp_path, "a")
    b = write_spec(tmp_path, "b", domain="scale_out")
    assert main(["evaluate", str(a), str(a), "--out", str(tmp_path / "r"), "--quiet"]) == 2
    assert main(["evaluate", str(a), str(b), "--out", str(tmp_path / "r"), "--quiet"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith(f"oassim: error: {a}: name: candidate name 'a' is already used")
    assert err[1].startswith(f"oassim: error: {b}: domain: is a scale_out spec but")
    assert not (tmp_path / "r").exists()


def test_schema_command_prints_the_interconnect_schema(capsys: pytest.CaptureFixture) -> None:
    """oassim schema interconnect prints JSON naming the required fields; cluster and scenario export too."""
    assert main(["schema", "interconnect"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert {"name", "domain", "lane_rate_Gbps", "lanes_per_port", "switch"} == set(schema["required"])
    assert main(["schema", "scenario"]) == 0
    assert "parallelism" in json.loads(capsys.readouterr().out)["properties"]


def test_reference_cluster_of_a_scale_up_spec(tmp_path: Path) -> None:
    """UALink x2 ports from the 36-lane budget: 64-GPU domains, 18 switches each, 900 GB/s data per GPU."""
    data = yaml.safe_load(UALINK.read_text(encoding="utf-8"))
    design, g, info = build(data, 128, tmp_path)
    assert design.domain_size == 64 and design.natural_domain_size == 128
    assert (design.ports_per_accelerator, design.ports_from) == (18, "lane budget")
    assert info["supernodes"] == 2 and info["supernode_size"] == 64
    assert info["scaleup_bandwidth_per_accelerator_GBps"] == pytest.approx(18 * 50)
    assert design.accelerator_payload_GBps == pytest.approx(18 * 50 * 0.93)
    scaleup = [d for _, d in g.nodes(data=True) if d["kind"] == "switch" and d["tier"] == "scaleup"]
    assert len(scaleup) == 2 * 18 and all(d["radix"] == 128 for d in scaleup)
    assert all(d["in_network_reduction"] is False for d in scaleup)


def test_radix_caps_the_domain_and_is_reported(tmp_path: Path) -> None:
    """A 32-port switch caps the domain at 32 accelerators, and the design says so."""
    design, _, info = build({**BASE, "switch": {"radix": 32}, "ports_per_accelerator": 4}, 64, tmp_path)
    assert design.domain_size == 32 and info["supernodes"] == 2
    assert info["scaleup_bandwidth_per_accelerator_GBps"] == pytest.approx(4 * 25)
    assert any("capped at 32" in n for n in design.notes)


def test_reference_cluster_of_a_scale_out_spec(tmp_path: Path) -> None:
    """A scale-out candidate is the NIC and fat-tree of 8-GPU NVLink 5 nodes; optical reach gets modules."""
    data = {**BASE, "domain": "scale_out", "lane_rate_Gbps": 200.0, "lanes_per_port": 4,
            "switch": {"radix": 64, "power_W": 500},
            "reach": [{"name": "sr", "medium": "optical", "reach_m": 500, "module": "osfp-800g-2xdr4"}]}
    design, g, info = build(data, 64, tmp_path)
    assert design.domain_size == 8 and design.switches_per_supernode is None
    assert info["scaleout_bandwidth_per_accelerator_GBps"] == pytest.approx(100)
    assert info["optical_modules_by_type"].get("osfp-800g-2xdr4", 0) > 0
    leaves = [d for _, d in g.nodes(data=True) if d["kind"] == "switch" and d["tier"] == "leaf"]
    assert leaves and all(d["radix"] == 64 and d["port_rate_Gbps"] == 800 for d in leaves)


def _cand(name: str, tokens: list[float], busbw: float, ok: bool = True) -> Any:
    training = [{"workload": f"w{i}", "status": "ok" if ok else "failed: x", "tokens_per_s_per_accelerator": t,
                 "mfu": 0.1} for i, t in enumerate(tokens)]
    coll = [{"op": "all_reduce", "scale": "1,024", "ranks": 1024, "size_bytes": 1, "status": "ok", "busbw_GBps": busbw}]
    return SimpleNamespace(name=name, training=training, collectives=coll)


def test_rank_orders_by_training_then_collectives() -> None:
    """Training score (geometric mean of relative throughput) ranks; equal to 1% the busbw decides; failures last."""
    rows = rank([_cand("slow", [50, 100], 900), _cand("fast", [100, 100], 100), _cand("tie", [99.8, 100], 300),
                 _cand("broken", [100, 100], 999, ok=False)])
    assert [r["candidate"] for r in rows] == ["tie", "fast", "slow", "broken"]
    assert rows[2]["training_score"] == pytest.approx(0.5 ** 0.5)
    assert rows[3]["training_score"] is None and rows[0]["rank"] == 1


def test_limiter_names_the_largest_non_compute_part() -> None:
    """The bottleneck line is the largest non-compute share with the finding about it."""
    text = limiter({"compute": 1.0, "exposed_tp": 0.5, "bubble": 0.2},
                   ["The most utilised tier is scaleup", "TP all-gather over the scaleup tier exposes 500 ms"])
    assert text.startswith("29% of the iteration is exposed TP communication (compute 59%)")
    assert text.endswith("TP all-gather over the scaleup tier exposes 500 ms")


def test_quick_evaluation_ranks_the_faster_spec_first(tmp_path: Path) -> None:
    """Two specs through oassim evaluate --quick: HTML and Markdown name both, the double lane rate ranks
    first, the HTML is self-contained and the Markdown's PNGs sit beside it."""
    slow = write_spec(tmp_path, "slow-lanes")
    fast = write_spec(tmp_path, "fast-lanes", lane_rate_Gbps=200.0)
    out = tmp_path / "report"
    assert main(["evaluate", str(slow), str(fast), "--out", str(out), "--quick", "--quiet"]) == 0
    html, md = (out / "report.html").read_text(), (out / "report.md").read_text()
    results = json.loads((out / "results.json").read_text())
    assert [r["candidate"] for r in results["ranking"]] == ["fast-lanes", "slow-lanes"]
    assert results["ranking"][0]["training_score"] == pytest.approx(1.0)
    assert results["ranking"][1]["training_score"] < 1.0
    for text in (html, md):
        assert "fast-lanes" in text and "slow-lanes" in text and "oas-bench-1.0-quick" in text
    assert re.search(r"\| 1 \| fast-lanes \|", md)
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", html)
    imgs = re.findall(r"<img [^>]*src=\"([^\"]+)\"", html)
    assert imgs and all(i.startswith("data:image/png;base64,") for i in imgs)
    pngs = re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", md)
    assert pngs and all((out / p).is_file() for p in pngs)
    scenario = out / "inputs" / "fast-lanes" / "scenarios" / "llama3-70b.yaml"
    assert yaml.safe_load(scenario.read_text())["cluster"]["file"] == "../cluster.yaml"
    assert "inputs/fast-lanes/cluster.yaml" in html and "provenance.json" in md
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folder left


def test_failure_while_rendering_leaves_the_folder_as_it_was(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An error after evaluation started leaves --out and its parent as they were."""
    import oassim.experiments.report_html as report_html

    def boom(specs: Any, suite: Any, workdir: Path, progress: Any = None) -> Any:
        (workdir / "half").mkdir(parents=True)
        raise RuntimeError("simulated crash")

    monkeypatch.setattr(report_html, "evaluate", boom)
    out = tmp_path / "report"
    out.mkdir()
    (out / "report.html").write_text("previous report")
    spec = write_spec(tmp_path, "one")
    with pytest.raises(RuntimeError):
        report_html.write_evaluation([spec], out, "quick")
    assert [p.name for p in out.iterdir()] == ["report.html"]
    assert (out / "report.html").read_text() == "previous report"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.yaml", "report"]


def test_report_of_an_evaluation_run_in_a_temporary_folder_keeps_its_inputs(tmp_path: Path) -> None:
    """evaluate() without a workdir, then write_report(): every candidate's spec, cluster and
    scenario files are in the report's inputs/ folder, as the report's links promise."""
    from oassim.experiments import evaluate, write_report

    ev = evaluate([write_spec(tmp_path, "solo")], "quick")
    write_report(ev, tmp_path / "rep")
    got = {p.relative_to(tmp_path / "rep" / "inputs" / "solo").as_posix()
           for p in (tmp_path / "rep" / "inputs" / "solo").rglob("*") if p.is_file()}
    assert {"spec.yaml", "cluster.yaml"} <= got
    assert {r["scenario_file"].split("/", 1)[1] for r in ev.candidates[0].training} <= got
