"""``oassim run``: text and JSON summaries, output files, and one-line errors with status 2."""

from __future__ import annotations

import json
import subprocess
import sys

import pyarrow.parquet as pq
import pytest
import yaml

from oassim.cli import main
from oassim.experiments import outputs
from oassim.experiments.outputs import OUTPUT_FILES
from tests.experiments.conftest import ROOT

REQUIRED = {"iteration_time_s", "tokens_per_s", "tflops_per_accelerator", "mfu", "hfu", "exposed_comm_s",
            "bubble_s", "memory_per_accelerator_GB", "bottlenecks"}


def _run(argv, capsys):
    code = main(argv)
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def test_text_summary(fake_sim, scenario_file, capsys):
    """The text output names the scenario and shows the headline metrics and findings."""
    code, out, err = _run(["run", str(scenario_file())], capsys)
    assert code == 0, err
    for part in ("oassim run: small-test", "tiny-gpt on 32 accelerators (dgx-h100-superpod), tp2 pp2 dp8",
                 "iteration time", "tokens/s", "model TFLOP/s", "MFU", "HFU", "memory", "bottlenecks", "1. "):
        assert part in out


def test_json_is_one_object_with_the_required_keys(fake_sim, scenario_file, capsys):
    """--json prints exactly one JSON object with the metrics, findings, scenario and provenance."""
    code, out, err = _run(["run", str(scenario_file()), "--json", "--network", "flow", "--set", "seed=5"], capsys)
    assert code == 0, err
    record = json.loads(out)
    assert REQUIRED <= set(record)
    assert record["network"] == "flow" and record["provenance"]["seed"] == 5
    assert record["scenario"]["name"] == "small-test" and record["findings"]
    assert fake_sim[-1] == {"network": "flow", "seed": 5, "full_rank": False}


def test_full_rank_flag_reaches_the_simulator(fake_sim, scenario_file, capsys):
    """--full-rank asks the scheduler for every rank."""
    assert _run(["run", str(scenario_file()), "--json", "--full-rank"], capsys)[0] == 0
    assert fake_sim[-1]["full_rank"] is True


def test_out_writes_every_file_and_trace_writes_json(fake_sim, scenario_file, tmp_path, capsys):
    """--out DIR writes the summary, tables, link utilisation and trace; --trace a trace file."""
    out_dir = tmp_path / "out"
    trace = tmp_path / "t.json"
    code, out, err = _run(["run", str(scenario_file()), "--out", str(out_dir), "--trace", str(trace)], capsys)
    assert code == 0, err
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(OUTPUT_FILES)
    assert REQUIRED <= set(json.loads((out_dir / "summary.json").read_text()))
    lu = pq.read_table(out_dir / "link_utilisation.parquet")
    assert {"t0_s", "t1_s", "tier", "utilisation", "bytes"} <= set(lu.column_names)
    assert "exposed_s" in pq.read_table(out_dir / "ops.parquet").column_names
    assert "busbw_GBps" in (out_dir / "collectives.csv").read_text().splitlines()[0]
    assert any(e["ph"] == "X" for e in json.loads(trace.read_text())["traceEvents"])
    again = yaml.safe_load((out_dir / "scenario.yaml").read_text())
    assert again["workload"]["model"]["name"] == "tiny-gpt"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
    assert f"wrote {out_dir}" in err


def test_scenario_yaml_written_by_out_runs_again(fake_sim, scenario_file, tmp_path, capsys):
    """The resolved scenario.yaml of --out is itself a runnable scenario."""
    out_dir = tmp_path / "out"
    assert _run(["run", str(scenario_file()), "--out", str(out_dir)], capsys)[0] == 0
    code, out, err = _run(["run", str(out_dir / "scenario.yaml"), "--json"], capsys)
    assert code == 0, err


def test_failed_output_leaves_nothing_half_written(fake_sim, scenario_file, tmp_path, monkeypatch, capsys):
    """If rendering the files fails, DIR keeps its old content and no temporary is left."""
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    (out_dir / "summary.json").write_text("old")

    def broken(results, record, folder):
        (folder / "summary.json").write_text("half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(outputs, "_render", broken)
    code, out, err = _run(["run", str(scenario_file()), "--out", str(out_dir)], capsys)
    assert code == 2 and out == ""
    assert err.strip() == f"oassim: error: argument --out: cannot write {out_dir}: No space left on device"
    assert [p.name for p in out_dir.iterdir()] == ["summary.json"]
    assert (out_dir / "summary.json").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "scenario.yaml"]


BAD_RUNS = [
    (["--set", "parallelism.dp=4"],
     "parallelism: tp*pp*dp*cp = 2*2*4*1 = 16 but the job has 32 accelerators"),
    (["--set", "parallelism.tp=3", "--set", "cluster.accelerators=48"],
     "parallelism.tp: tp 3 does not divide the 16 attention heads"),
    (["--set", "parallelism.pp=8", "--set", "parallelism.dp=2"],
     "parallelism.pp: layers 4 are not divisible by pp = 8"),
    (["--set", "workload.model.experts=8", "--set", "workload.model.top_k=2", "--set", "parallelism.tp=1",
      "--set", "parallelism.dp=16", "--set", "parallelism.ep=16"],
     "parallelism.ep: ep 16 puts fewer than one of the 8 experts"),
    (["--set", "workload.model.hidden=65536"], "parallelism: needs"),
    (["--set", "parallelism.tpp=2"], "--set: parallelism.tpp: unknown key 'tpp'"),
    (["--set", "parallelism.tp"], "--set: expected path=value"),
]


@pytest.mark.parametrize("extra,message", BAD_RUNS)
def test_impossible_jobs_are_one_line_with_status_2(fake_sim, scenario_file, capsys, extra, message):
    """Bad parallel sizes, a job that does not fit and bad overrides: one line, status 2."""
    path = scenario_file()
    code, out, err = _run(["run", str(path), *extra], capsys)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("oassim: error: ")
    assert message in err


def test_bad_scenario_file_and_missing_file(tmp_path, capsys):
    """An unknown key in the file and a missing file are one-line errors naming the file."""
    p = tmp_path / "s.yaml"
    p.write_text("name: x\nclustr: {}\n")
    code, _, err = _run(["run", str(p)], capsys)
    assert code == 2 and f"{p}: clustr: unknown key 'clustr'; did you mean cluster?" in err
    code, _, err = _run(["run", str(tmp_path / "none.yaml")], capsys)
    assert code == 2 and "none.yaml: file not found" in err


def test_usage_errors_are_one_line():
    """A bad --network choice is an argparse usage error with status 2."""
    proc = subprocess.run([sys.executable, "-m", "oassim.cli", "run", "x.yaml", "--network", "packet"],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2 and "invalid choice" in proc.stderr and proc.stderr.count("\n") == 1


def test_a_real_process_prints_no_traceback_for_an_impossible_job(scenario_file):
    """Through the console entry point, an impossible job is one line and exit status 2."""
    path = scenario_file(lambda d: d["parallelism"].__setitem__("tp", 3))
    proc = subprocess.run([sys.executable, "-m", "oassim.cli", "run", str(path)], capture_output=True, text=True,
                          cwd=ROOT)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "parallelism: tp*pp*dp*cp = 3*2*8*1 = 48 but the job has 32 accelerators" in proc.stderr
