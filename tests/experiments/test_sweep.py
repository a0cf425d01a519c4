"""Sweep files: axes, sampling, seeds, derived keys, constraints, point ids, and bad input.

Nothing here simulates: these tests expand sweeps and check the one-line errors of
``oassim sweep`` (exit status 2, nothing written).
"""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from oassim.cli import main
from oassim.errors import SpecError
from oassim.experiments.progress import Progress
from oassim.experiments.store import ResultStore
from oassim.experiments.sweep import expand_sweep, parse_axis
from tests.experiments.conftest import SWEEP_BASE

ROOT = Path(__file__).resolve().parents[2]
BASE = SWEEP_BASE


def sweep(**kw: Any) -> dict[str, Any]:
    """A sweep mapping over the tiny base scenario."""
    return {"name": "t", "base": BASE, "axes": {"parallelism.tp": [1, 2]}, **kw}


def write(tmp_path: Path, data: Any, name: str = "sweep.yaml") -> Path:
    p = tmp_path / name
    p.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    return p


def test_grid_expands_to_the_product_in_file_order():
    """A grid is every combination, the last axis varying fastest, each point a valid scenario."""
    plan = expand_sweep(sweep(axes={"parallelism.tp": [1, 2, 4], "workload.micro_batch": [1, 2]}))
    assert len(plan.points) == 6
    assert [(p.values["parallelism.tp"], p.values["workload.micro_batch"]) for p in plan.points] == [
        (1, 1), (1, 2), (2, 1), (2, 2), (4, 1), (4, 2)]
    assert plan.points[3].scenario["parallelism"]["tp"] == 2
    assert plan.points[3].scenario["workload"]["micro_batch"] == 2
    assert plan.points[3].scenario["cluster"]["accelerators"] == 32  # base value kept


@pytest.mark.parametrize("raw, values", [
    ({"range": [4, 33], "step": 4}, (4, 8, 12, 16, 20, 24, 28, 32)),
    ({"range": [256, 4097], "factor": 2}, (256, 512, 1024, 2048, 4096)),
    ({"range": [0.1, 0.45], "step": 0.1}, (0.1, 0.2, 0.3, 0.4)),
    ({"low": 1, "high": 1000, "log": True, "num": 4}, (1.0, 10.0, 100.0, 1000.0)),
    ({"low": 1, "high": 8, "integer": True, "num": 3}, (1, 4, 8)),
    ({"values": [3, 5]}, (3, 5)),
    (7, (7,)),
])
def test_axis_forms_give_their_values(raw, values):
    """Lists, ranges (stop exclusive), geometric ranges and low/high/num give the documented values."""
    assert parse_axis("x", raw).grid_values() == values


def test_random_sampling_is_reproducible_from_its_seed():
    """The same seed draws the same points; another seed draws others; draws stay in range."""
    def draw(seed):
        plan = expand_sweep(sweep(sampling="random", samples=6, seed=seed,
                                  axes={"parallelism.tp": [1, 2, 4, 8], "workload.micro_batch": [1, 2, 4, 8],
                                        "workload.global_batch": {"low": 32, "high": 4096, "log": True,
                                                                  "integer": True}}))
        return [p.point_id for p in plan.points], plan

    a, plan = draw(1)
    assert len(a) == 6 and len(set(a)) == 6
    assert draw(1)[0] == a
    assert draw(2)[0] != a
    assert all(32 <= p.values["workload.global_batch"] <= 4096 for p in plan.points)


def test_derived_keys_and_constraints_filter_points():
    """Derived keys are computed per point; constraints (full paths or unique short names) drop points."""
    plan = expand_sweep(sweep(
        axes={"parallelism.tp": [1, 2, 4, 8], "parallelism.pp": [1, 2, 3, 4]},
        derived={"parallelism.dp": "cluster.accelerators // (parallelism.tp * parallelism.pp)"},
        constraints=["tp * pp * dp == accelerators", "layers % pp == 0", "max(tp, pp) <= 4"]))
    got = {(p.values["parallelism.tp"], p.values["parallelism.pp"], p.values["parallelism.dp"]) for p in plan.points}
    assert got == {(1, 1, 32), (1, 2, 16), (1, 4, 8), (2, 1, 16), (2, 2, 8), (2, 4, 4), (4, 1, 8), (4, 2, 4), (4, 4, 2)}
    assert plan.candidates == 16 and plan.dropped == 7


@pytest.mark.parametrize("expr, words", [
    ("__import__('os').system('true') == 0", "not allowed"),
    ("().__class__ == 1", "attribute access"),
    ("(lambda: 1)() == 1", "not allowed"),
    ("parallelism.tp[0] == 1", "not allowed"),
    ("parallelism.tq == 1", "names no key"),
    ("name == 'x'", None),
])
def test_expressions_are_checked_before_anything_runs(expr, words):
    """Only key paths, numbers, arithmetic, comparisons and min/max/abs/round are accepted."""
    spec = sweep(constraints=[expr])
    if words is None:
        with pytest.raises(SpecError, match="drop every one"):  # valid, and false for every point
            expand_sweep(spec)
        return
    with pytest.raises(SpecError, match=words) as e:
        expand_sweep(spec)
    assert e.value.path == "constraints[0]"


def test_point_ids_are_stable_and_shared_by_edited_sweeps():
    """Ids ignore spelling and documentation keys; adding axis values keeps the old points' ids and seeds."""
    a = expand_sweep(sweep(axes={"parallelism.tp": [1, 2]}))
    b = expand_sweep(sweep(name="renamed", axes={"parallelism.tp": {"range": [1, 5]}}))
    assert {p.point_id for p in a.points} <= {p.point_id for p in b.points}
    assert len(b.points) == 4
    assert {p.seed for p in b.points} == {a.points[0].seed}
    base2 = {**BASE, "description": "other words"}
    c = expand_sweep({**sweep(), "base": base2})
    assert [p.point_id for p in c.points] == [p.point_id for p in a.points]
    d = expand_sweep(sweep(seed=5))
    assert not {p.point_id for p in d.points} & {p.point_id for p in a.points}


def test_repeats_give_each_point_distinct_seeds():
    """repeats: r seeds per point from SeedSequence(seed).spawn, the same r seeds for every point."""
    plan = expand_sweep(sweep(repeats=3))
    assert len(plan.points) == 6
    by_tp: dict[int, list[int]] = {}
    for p in plan.points:
        by_tp.setdefault(p.values["parallelism.tp"], []).append(p.seed)
        assert p.scenario["seed"] == p.seed
    assert by_tp[1] == by_tp[2] and len(set(by_tp[1])) == 3


# -- bad input through the CLI: one line, status 2, nothing written ------------------------------


BAD = {
    "unknown-axis-key": (sweep(axes={"parallelism.tq": [1, 2]}), "axes.parallelism.tq", "unknown key 'tq'"),
    "empty-axis": (sweep(axes={"parallelism.tp": []}), "axes.parallelism.tp", "no values"),
    "empty-range": (sweep(axes={"parallelism.tp": {"range": [8, 4]}}), "axes.parallelism.tp", "no values"),
    "no-axes": (sweep(axes={}), "axes", "at least 1"),
    "filters-all": (sweep(constraints=["tp > 8"]), "constraints", "drop every one"),
    "bad-value": (sweep(axes={"parallelism.tp": [0, 2]}), "axes.parallelism.tp", "greater than 0"),
    "unsafe": (sweep(constraints=["__import__('os') == 1"]), "constraints[0]", "__import__"),
    "unknown-top-key": ({**sweep(), "axez": {}}, "axez", "did you mean axes"),
    "bad-base": (sweep(base={**BASE, "workload": {**BASE["workload"], "micro_btch": 1}}),
                 "base.workload.micro_btch", "unknown key"),
    "missing-base-file": (sweep(base="nowhere.yaml"), "base", "not found"),
    "random-without-samples": (sweep(sampling="random"), "samples", "samples: N"),
    "seed-axis": (sweep(axes={"seed": [1, 2]}), "axes.seed", "cannot be swept"),
    "malformed-yaml": ("name: t\naxes: {parallelism.tp: [1, 2\n", None, "YAML syntax error"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_sweep_files_are_one_line_errors(tmp_path, capsys, case):
    """Each bad sweep file: exit status 2, one stderr line naming the file and key, no store created."""
    data, key, words = BAD[case]
    f = write(tmp_path, data)
    out = tmp_path / "store"
    assert main(["sweep", str(f), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    prefix = f"oassim: error: {f}: " + (f"{key}: " if key else "")
    assert err.startswith(prefix), err
    assert words in err
    assert not out.exists()


def test_unreachable_scheduler_fails_fast(tmp_path, capsys):
    """--scheduler tcp://127.0.0.1:1: exit status 2 within seconds, one line naming the address, no store."""
    f = write(tmp_path, sweep())
    out = tmp_path / "store"
    t = time.perf_counter()
    assert main(["sweep", str(f), "--out", str(out), "--scheduler", "tcp://127.0.0.1:1", "-q"]) == 2
    assert time.perf_counter() - t < 10
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("oassim: error: argument --scheduler: ")
    assert "tcp://127.0.0.1:1" in err
    assert not out.exists()


def test_a_store_of_another_base_is_refused(tmp_path, capsys):
    """Re-running into a store of a different base scenario: status 2, the store left as it was."""
    out = tmp_path / "store"
    first = expand_sweep(sweep())
    ResultStore.open(out, first.record()).close()
    before = (out / "sweep.yaml").read_bytes()
    f = write(tmp_path, sweep(base={**BASE, "cluster": {"preset": "dgx-h100-superpod", "accelerators": 32}}))
    assert main(["sweep", str(f), "--out", str(out), "-q"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"oassim: error: {f}: base: the store {out} holds a sweep of another base scenario")
    assert (out / "sweep.yaml").read_bytes() == before
    assert not any((out / "points").iterdir())


def test_results_of_a_folder_that_is_no_store(tmp_path, capsys):
    """oassim results on a folder without sweep.yaml: status 2 and one line."""
    assert main(["results", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not an oassim sweep store" in err


def test_example_sweeps_expand():
    """Every shipped experiments/sweeps/*.yaml expands to at least one point."""
    files = sorted((ROOT / "experiments" / "sweeps").glob("*.yaml"))
    assert len(files) >= 3
    for f in files:
        assert expand_sweep(f).points, f


def test_progress_line_is_redrawn_on_a_tty_and_sparse_otherwise():
    """Non-TTY: a handful of plain lines for 100 points; TTY: carriage-return redraws; quiet: nothing."""
    log = io.StringIO()
    p = Progress(100, 20, name="s", stream=log)
    p.start()
    for i in range(80):
        p.update(ok=i % 10 != 0)
    p.close()
    lines = log.getvalue().splitlines()
    assert 3 <= len(lines) <= 12 and "\r" not in log.getvalue()
    assert lines[-1].startswith("s: 100/100 done (8 failed, 20 from earlier runs)")

    class Tty(io.StringIO):
        def isatty(self):
            return True

    tty = Tty()
    p = Progress(3, name="s", stream=tty)
    p.start()
    for _ in range(3):
        p.update()
    p.close()
    assert tty.getvalue().startswith("\r") and tty.getvalue().endswith("\n") and tty.getvalue().count("\n") == 1
    quiet = io.StringIO()
    q = Progress(3, stream=quiet, quiet=True)
    q.start()
    q.update()
    q.close()
    assert quiet.getvalue() == ""


def test_run_point_turns_any_exception_into_an_error_row(monkeypatch):
    """A point whose run raises is a one-line error row; a runner that takes a cluster cache gets one."""
    from oassim.experiments import executors, runner

    seen = {}

    def fake_run(scenario, *, cluster_cache=None, **caches):
        seen["cache"] = cluster_cache
        seen.update(caches)
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(runner, "run", fake_run)
    p = expand_sweep(sweep()).points[0]
    row = executors.run_point(executors.point_task(p))
    assert row["status"] == "error" and row["error"] == "RuntimeError: boom second line"
    assert row["point_id"] == p.point_id and row["parallelism.tp"] == 1 and row["seed"] == p.seed
    assert isinstance(seen["cache"], executors.ClusterCache)
    assert isinstance(seen["engine_cache"], executors.ClusterCache) and seen["git"] is not None


def test_cluster_cache_drops_the_least_recently_used():
    """ClusterCache keeps at most `size` clusters, evicting the one used longest ago."""
    from oassim.experiments.executors import ClusterCache

    c = ClusterCache(size=2)
    c["a"], c["b"] = 1, 2
    assert c.get("a") == 1
    c["c"] = 3
    assert set(c) == {"a", "c"} and c.get("b") is None


def test_cluster_cache_keeps_within_its_accelerator_budget():
    """With max_accelerators, the oldest fabrics go until the rest fit; the newest always stays."""
    from types import SimpleNamespace

    from oassim.experiments.executors import ClusterCache

    c = ClusterCache(size=8, max_accelerators=10_000)
    for k, n in (("a", 4096), ("b", 4096), ("c", 4096)):
        c[k] = (None, SimpleNamespace(n_accelerators=n))
    assert list(c) == ["b", "c"]
    c["big"] = (None, SimpleNamespace(n_accelerators=131072))
    assert list(c) == ["big"]


def test_load_results_compacts_and_sees_rewritten_points(tmp_path):
    """After many point files, load_results caches them in compacted.parquet; a rewritten point wins over the cache."""
    from oassim.experiments.store import COMPACT_FILE, load_results

    store = ResultStore.open(tmp_path / "s", {"base_fingerprint": "f", "name": "n", "axis_paths": ["x"]})
    ids = [f"{i:016x}" for i in range(70)]
    for i, pid in enumerate(ids):
        row = {"point_id": pid, "status": "ok", "error": None, "x": i, "repeat": 0, "seed": 1, "mfu": i / 100}
        if i % 10 == 0:
            row = {"point_id": pid, "status": "error", "error": "SpecError: no", "x": i, "repeat": 0, "seed": 1}
        store.write(row)
    first = load_results(tmp_path / "s")
    assert (tmp_path / "s" / COMPACT_FILE).is_file()
    second = load_results(tmp_path / "s")
    assert first.equals(second) and list(second["x"]) == list(range(70))
    store.write({"point_id": ids[3], "status": "ok", "error": None, "x": 3, "repeat": 0, "seed": 1, "mfu": 0.9})
    store.close()
    third = load_results(tmp_path / "s")
    assert third.loc[third["point_id"] == ids[3], "mfu"].item() == 0.9
    assert third["mfu"].isna().sum() == 7
