"""Running sweeps for real: local processes, resume after SIGKILL, Dask, results and plots.

The sweeps are small (a GPT 1.7B job on 32 A100, analytical network: ~0.1 s a point) so that
all of this stays within seconds.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from oassim.cli import main
from oassim.experiments import load_results
from oassim.experiments.sweep import expand_sweep
from tests.experiments.conftest import SWEEP_BASE

ROOT = Path(__file__).resolve().parents[2]
BASE = SWEEP_BASE
SMALL = {  # 6 points: tp 16 does not divide the 24 heads, so two of them raise
    "name": "small",
    "base": BASE,
    "axes": {"parallelism.tp": [1, 4, 16], "parallelism.pp": [1, 2]},
    "derived": {"parallelism.dp": "accelerators // (tp * pp)"},
}


def write(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def small_store(tmp_path_factory) -> tuple[Path, Path]:
    """The small sweep run once on 2 local worker processes: (sweep file, store)."""
    d = tmp_path_factory.mktemp("sweep")
    f = write(d / "small.yaml", SMALL)
    out = d / "store"
    assert main(["sweep", str(f), "--out", str(out), "--workers", "2", "--quiet"]) == 0
    return f, out


def test_local_sweep_stores_one_row_per_point(small_store):
    """Every point is a row: ok rows carry metrics, provenance and the resolved scenario; tp 16 rows carry the error."""
    f, out = small_store
    df = load_results(out)
    plan = expand_sweep(f)
    assert sorted(df["point_id"]) == sorted(p.point_id for p in plan.points)
    assert sorted(p.name for p in (out / "points").iterdir()) == sorted(f"{p.point_id}.parquet" for p in plan.points)
    ok, bad = df[df["status"] == "ok"], df[df["status"] == "error"]
    assert len(ok) == 4 and len(bad) == 2
    assert set(bad["parallelism.tp"]) == {16}
    assert all(e.startswith("SpecError: parallelism.tp: tp 16 does not divide the 24 attention heads")
               for e in bad["error"])
    assert (ok["iteration_time_s"] > 0).all() and ((ok["mfu"] > 0) & (ok["mfu"] < 1)).all()
    assert (ok["parallelism.tp"] * ok["parallelism.pp"] * ok["parallelism.dp"] == 32).all()
    for col in ("breakdown_compute", "exposed_dp_s", "util_nic", "util_scaleup", "power_W_per_accelerator",
                "optical_modules_per_accelerator", "cost_USD_per_accelerator", "version", "git_commit", "worker"):
        assert col in df.columns, col
    assert (ok["power_W_per_accelerator"] > 400).all()  # an A100 alone draws 400 W
    sc = json.loads(ok.iloc[0]["scenario"])
    assert sc["workload"]["model"]["layers"] == 24 and sc["parallelism"]["tp"] == ok.iloc[0]["parallelism.tp"]
    assert ok["worker"].nunique() == 2  # both worker processes took points


def test_rerun_skips_finished_points(small_store, capsys):
    """The same command again computes nothing: every point file keeps its mtime."""
    f, out = small_store
    before = {p.name: p.stat().st_mtime_ns for p in (out / "points").glob("*.parquet")}
    assert main(["sweep", str(f), "--out", str(out), "--workers", "2"]) == 0
    assert "6 from earlier runs, 0 run now" in capsys.readouterr().out
    assert {p.name: p.stat().st_mtime_ns for p in (out / "points").glob("*.parquet")} == before


def test_results_command_prints_every_point(small_store, capsys):
    """oassim results: the counts, then one line per point with its axes and metrics; --json parses."""
    _, out = small_store
    assert main(["results", str(out)]) == 0
    text = capsys.readouterr().out
    lines = text.splitlines()
    assert lines[0].endswith("6 points stored (6 in the latest sweep): 4 done, 2 failed")
    assert "parallelism.tp" in lines[1] and "mfu" in lines[1]
    df = load_results(out)
    for pid in df["point_id"]:
        assert pid in text
    assert main(["results", str(out), "--json", "--sort", "mfu"]) == 0
    recs = json.loads(capsys.readouterr().out)
    assert len(recs) == 6 and recs[0]["mfu"] == max(r["mfu"] or 0 for r in recs)
    assert isinstance(recs[0]["scenario"], dict)
    assert main(["results", str(out), "--csv"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 7


def test_plot_command_writes_a_png(small_store, tmp_path, capsys):
    """oassim plot writes a non-empty PNG; an unknown column is a one-line error."""
    _, out = small_store
    png = tmp_path / "mfu.png"
    assert main(["plot", str(out), "--x", "parallelism.tp", "--y", "mfu", "--hue", "parallelism.pp",
                 "-o", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    assert main(["plot", str(out), "--x", "parallelism.tq", "--y", "mfu", "-o", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("oassim: error: argument --x: no column 'parallelism.tq'") and err.count("\n") == 1
    assert not (tmp_path / "x.png").exists()


def test_retry_failed_runs_error_points_again(small_store, capsys):
    """--retry-failed recomputes exactly the error rows."""
    f, out = small_store
    files = {p.name: p.stat().st_mtime_ns for p in (out / "points").glob("*.parquet")}
    assert main(["sweep", str(f), "--out", str(out), "--workers", "0", "--retry-failed", "-q"]) == 0
    assert "4 from earlier runs, 2 run now, 2 failed" in capsys.readouterr().out
    df = load_results(out)
    changed = {n for n, m in files.items() if (out / "points" / n).stat().st_mtime_ns != m}
    assert changed == {f"{p}.parquet" for p in df.loc[df["status"] == "error", "point_id"]}


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc").is_dir() or os.name != "posix", reason="needs POSIX signals and /proc")
def test_sigkill_mid_sweep_resumes_losing_only_points_in_flight(tmp_path):
    """SIGKILL of `oassim sweep` mid-run: finished points survive untouched, workers exit, a re-run
    completes the rest."""
    base = {**BASE, "workload": {**BASE["workload"], "global_batch": 256}}
    spec = {**SMALL, "name": "kill", "base": base, "axes": {"parallelism.tp": [1, 2, 4, 8], "parallelism.pp": [1, 2],
                                                            "workload.micro_batch": [1, 2]}}
    f = write(tmp_path / "kill.yaml", spec)
    out = tmp_path / "store"
    proc = subprocess.Popen([sys.executable, "-m", "oassim.cli", "sweep", str(f), "--out", str(out), "--workers", "1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not list((out / "points").glob("*.parquet")) if out.exists() else True:
        assert proc.poll() is None, "the sweep ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    first = {p.name: (p.stat().st_mtime_ns, p.stat().st_ino) for p in (out / "points").glob("*.parquet")}
    assert 1 <= len(first) < 16
    workers = {int(w.rsplit(":", 1)[1]) for w in load_results(out)["worker"]}
    t = time.monotonic()
    while any(_alive(w) for w in workers) and time.monotonic() - t < 10:
        time.sleep(0.1)
    assert not any(_alive(w) for w in workers), "orphaned worker processes kept running"

    assert main(["sweep", str(f), "--out", str(out), "--workers", "2", "-q"]) == 0
    df = load_results(out)
    assert len(df) == 16 and df["point_id"].is_unique
    assert set(df["point_id"]) == {p.point_id for p in expand_sweep(f).points}
    assert (df["status"] == "ok").all()
    assert {n: (p.stat().st_mtime_ns, p.stat().st_ino) for n, p in
            ((n, out / "points" / n) for n in first)} == first
    assert not list((out / "points").glob(".*"))  # no temporary file left behind


def test_dask_cluster_gives_the_same_rows_as_local_processes(small_store, tmp_path):
    """The sweep on a real distributed LocalCluster (loopback) stores the same points with the same metrics."""
    distributed = pytest.importorskip("distributed")
    f, local = small_store
    out = tmp_path / "dask"
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        assert main(["sweep", str(f), "--out", str(out), "--scheduler", cluster.scheduler_address, "-q"]) == 0
    a = load_results(local).set_index("point_id").sort_index()
    b = load_results(out).set_index("point_id").sort_index()
    assert list(a.index) == list(b.index)
    assert list(a["status"]) == list(b["status"])
    for col in ("iteration_time_s", "tokens_per_s", "mfu", "exposed_comm_s", "memory_per_accelerator_GB",
                "util_nic", "power_W_per_accelerator"):
        want = b[col].astype(float).fillna(-1).tolist()
        assert a[col].astype(float).fillna(-1).tolist() == pytest.approx(want, rel=1e-12), col
    assert list(a["error"].fillna("")) == list(b["error"].fillna(""))
