"""The uncalibrated flag of a plan reaches every output: the run record (JSON) and the
OAS-Bench HTML / Markdown training tables (the text summary is covered in tests/analysis)."""

from __future__ import annotations

from types import SimpleNamespace

from oassim.analysis.metrics import summary
from oassim.experiments.report_html import _training_blocks
from oassim.scheduler import simulate
from oassim.topology.cluster import build_fabric
from oassim.workload import compile_plan
from tests.workload.conftest import TINY_GPT


def _record(calibrated: bool) -> dict:
    return {"workload": "w", "status": "ok", "iteration_time_s": 1.0, "tokens_per_s": 1e5,
            "tokens_per_s_per_accelerator": 1e3, "mfu": 0.4, "exposed_comm_s": 0.1, "bubble_s": 0.0,
            "bottleneck": "compute", "scenario_file": "s.yaml", "calibrated": calibrated}


def _table(calibrated: bool) -> list[list[str]]:
    t = SimpleNamespace(name="w", accelerators=8, seq_len=2048, global_batch=8, precision="bf16",
                        parallelism={"tp": 1})
    c = SimpleNamespace(name="cand", training=[_record(calibrated)])
    ev = SimpleNamespace(suite=SimpleNamespace(training=[t]), ranked=lambda: [c])
    return next(b for b in _training_blocks(ev) if b[0] == "table")[2]


def test_report_tables_mark_uncalibrated_figures():
    """Iteration time, tokens/s and MFU cells say "uncalibrated" for an uncalibrated run only."""
    row = _table(False)[0]
    assert sum("uncalibrated" in cell for cell in row) == 4
    assert not any("uncalibrated" in cell for cell in _table(True)[0])


def test_run_record_has_the_uncalibrated_key():
    """The JSON record carries ``uncalibrated`` (true on a chip whose entry reuses another's figures)."""
    fab = build_fabric("dgx-h100-superpod", 8)
    for acc, expect in (("h100-sxm", False), ("h200-sxm", True)):
        plan = compile_plan(TINY_GPT, {"dp": 8}, acc, fab, training={"global_batch": 8}, accelerators=8)
        rec = summary(simulate(plan, fab))
        assert rec["uncalibrated"] is expect and rec["calibrated"] is not expect


def test_cli_refuses_a_precision_the_chip_lacks(tmp_path, capsys):
    """``oassim run`` at NVFP4 on H100: one line naming the file, the key and why; exit 2."""
    from oassim.cli import main

    f = tmp_path / "s.yaml"
    f.write_text("name: t\ncluster: {preset: dgx-h100-superpod, accelerators: 8}\n"
                 "workload: {model: llama3-8b, seq_len: 8192, global_batch: 8, precision: nvfp4}\n"
                 "parallelism: {dp: 8}\n")
    assert main(["run", str(f)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "workload.precision" in err[0] and "nvfp4" in err[0] and str(f) in err[0]
