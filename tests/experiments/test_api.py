"""The Python API end to end with the real scheduler: ``oassim.run(file) -> Results``."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

import oassim
from oassim.cli import main
from tests.experiments.conftest import ROOT

CONTRACT = {
    "ops": {"stage", "rank", "stream", "name", "kind", "dim", "microbatch", "chunk", "start_s", "end_s",
            "exposed_s"},
    "collectives": {"stage", "dim", "op", "where", "size_bytes", "groups", "group_size", "algorithm", "start_s",
                    "end_s", "time_s", "alone_s", "exposed_s", "busbw_GBps", "bottleneck_tier",
                    "bottleneck_util"},
    "link_util": {"t0_s", "t1_s", "tier", "utilisation", "bytes"},
    "tiers": {"tier", "links", "bytes", "busy_s", "utilisation", "max_link_utilisation"},
}


@pytest.fixture(scope="module")
def gpt3():
    """The GPT-3 175B scenario on 3,072 A100, simulated once (a few seconds)."""
    return oassim.run(ROOT / "experiments" / "gpt3-175b-3k-a100.yaml")


def test_oassim_run_returns_results_with_the_contract_columns(gpt3):
    """oassim.run on a shipped scenario gives Results whose frames carry the contract's columns."""
    for frame, cols in CONTRACT.items():
        df = getattr(gpt3, frame)
        assert len(df) > 0, frame
        assert cols <= set(df.columns), (frame, cols - set(df.columns))
    assert gpt3.iteration_time_s > gpt3.plan.compute_only_s
    assert gpt3.scenario["name"] == "gpt3-175b-3k-a100" and gpt3.network == "analytical"
    assert gpt3.provenance["wall_s"]["simulate"] > 0


def test_same_scenario_and_seed_give_the_same_iteration(gpt3):
    """docs/architecture.md decision 9: same spec, same seed, same result."""
    again = oassim.run(gpt3.scenario)
    assert again.iteration_time_s == gpt3.iteration_time_s


def test_cli_on_the_real_scheduler_writes_every_output(scenario_file, tmp_path, capsys):
    """oassim run --json --out on the small scenario: one object, and readable output files."""
    out_dir = tmp_path / "out"
    assert main(["run", str(scenario_file()), "--json", "--out", str(out_dir), "--network", "flow"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["network"] == "flow" and 0 < record["mfu"] < 1
    assert record["iteration_time_s"] == pytest.approx(sum(record["breakdown"].values()), rel=1e-6)
    assert pq.read_table(out_dir / "ops.parquet").num_rows > 0
    trace = json.loads((out_dir / "trace.json").read_text())
    assert {e["ph"] for e in trace["traceEvents"]} >= {"X", "M", "C"}
