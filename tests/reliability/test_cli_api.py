"""``oassim reliability`` and ``oassim.reliability(...)``: JSON keys, seeded results, bad input in one line."""

from __future__ import annotations

import json

import pytest

import oassim
from oassim.cli import main

SCENARIO = "experiments/llama3-405b-16k-h100.yaml"
SMALL = ["--set", "cluster.accelerators=256", "--samples", "10"]
KEYS = ("interruptions_per_day", "interruptions", "goodput", "ettr", "mtbf_hours", "lost_hours_by_cause")


def _run(argv, capsys):
    code = main(argv)
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def test_json_has_the_issue_keys_and_matches_the_api(capsys, monkeypatch):
    """--json prints the keys of the issue; the API returns the same record for the same seed."""
    from pathlib import Path

    monkeypatch.chdir(Path(__file__).resolve().parents[2])
    code, out, err = _run(["reliability", SCENARIO, "--days", "20", "--json", *SMALL], capsys)
    assert code == 0, err
    rec = json.loads(out)
    for k in KEYS:
        assert k in rec
    assert rec["interruptions_per_day"]["ci95"][0] <= rec["interruptions_per_day"]["mean"]
    api = oassim.reliability(SCENARIO, days=20, samples=10, overrides=["cluster.accelerators=256"]).summary()
    assert api == rec
    assert callable(oassim.reliability) and hasattr(oassim.reliability, "run_campaign")


@pytest.mark.parametrize("argv, words", [
    (["--checkpoint-interval-s", "9e9"], ["--checkpoint-interval-s", "longer than the campaign"]),
    (["--spares", "100000"], ["--spares", "larger than the cluster"]),
    (["--restart-s", "-5"], ["--restart-s", ">= 0"]),
    (["--days", "0"], ["--days", "> 0"]),
])
def test_bad_arguments_are_one_line_exit_2(argv, words, capsys, monkeypatch):
    """An interval longer than the campaign, a pool larger than the cluster, a negative time: one line, exit 2."""
    from pathlib import Path

    monkeypatch.chdir(Path(__file__).resolve().parents[2])
    code, out, err = _run(["reliability", SCENARIO, *SMALL, *argv], capsys)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("oassim: error: ")
    for w in words:
        assert w in err


def test_negative_rate_in_a_rates_file_is_one_line(tmp_path, capsys, monkeypatch):
    """--rates with a negative FIT: one line naming the file and the key, exit 2."""
    from pathlib import Path

    import yaml

    root = Path(__file__).resolve().parents[2]
    monkeypatch.chdir(root)
    data = yaml.safe_load((root / "topologies/hardware/reliability.yaml").read_text())
    data["components"]["hbm"]["rates"]["h100-sxm"]["rate_FIT"] = -3391
    p = tmp_path / "rates.yaml"
    p.write_text(yaml.safe_dump(data))
    code, out, err = _run(["reliability", SCENARIO, *SMALL, "--rates", str(p)], capsys)
    assert code == 2 and err.count("\n") == 1
    assert str(p) in err and "components.hbm.rates.h100-sxm.rate_FIT" in err


def test_text_report_names_unset_parts(capsys, monkeypatch):
    """The text report lists the component types with no citable rate."""
    from pathlib import Path

    monkeypatch.chdir(Path(__file__).resolve().parents[2])
    code, out, _ = _run(["reliability", SCENARIO, *SMALL], capsys)
    assert code == 0
    assert "# unset (no citable rate; not in the campaign): scaleup_switch:scaleup" in out
    assert "goodput" in out and "ETTR" in out


def test_run_report_gets_a_reliability_section(capsys, monkeypatch):
    """oassim run --reliability DAYS: the campaign uses the run's exposed-communication share and
    keeps tokens/s x goodput."""
    from pathlib import Path

    monkeypatch.chdir(Path(__file__).resolve().parents[2])
    code, out, err = _run(["run", "experiments/gpt3-175b-3k-a100.yaml", "--json", "--reliability", "10"], capsys)
    assert code == 0, err
    rec = json.loads(out)
    sec = rec["reliability"]
    assert sec["comm_fraction"] == pytest.approx(rec["exposed_comm_s"] / rec["iteration_time_s"], abs=1e-4)
    assert sec["effective_tokens_per_s"] == pytest.approx(rec["tokens_per_s"] * sec["goodput"]["mean"], rel=1e-6)
    assert any(u["component"] == "accelerator" for u in sec["unset"])  # no published A100 rates
