"""A sweep worker's caches (built clusters, collective engines, plans, git state) change no
result: points run one after the other on warm caches give exactly the rows of the same points
run each on empty caches (issue 11, sweep throughput)."""

from __future__ import annotations

import copy

import pytest

from oassim.experiments import executors
from oassim.experiments.store import METRIC_COLUMNS
from tests.experiments.conftest import SWEEP_BASE


def _task(i: int, tp: int, pp: int, micro_batch: int, seed: int = 0) -> dict:
    sc = copy.deepcopy(SWEEP_BASE)
    sc["parallelism"].update({"tp": tp, "pp": pp, "dp": 32 // (tp * pp)})
    sc["workload"].update({"micro_batch": micro_batch, "global_batch": 32 // (tp * pp) * micro_batch * 8})
    sc["seed"] = seed
    return {"point_id": f"{i:016x}", "index": i, "values": {}, "repeat": 0, "seed": seed, "scenario": sc}


def _numbers(row: dict) -> dict:
    keys = [k for k in row if k in METRIC_COLUMNS or k.startswith(("breakdown_", "exposed_", "util_"))]
    return {k: row[k] for k in keys}


TASKS = [_task(0, 2, 2, 1), _task(1, 2, 2, 2), _task(2, 4, 2, 1), _task(3, 2, 2, 1), _task(4, 2, 2, 1, seed=1),
         _task(5, 1, 4, 1)]


def test_cached_points_equal_uncached_points():
    executors.worker_caches(clear=True)
    cold = []
    for t in TASKS:
        executors.worker_caches(clear=True)
        cold.append(executors.run_point(t))
    executors.worker_caches(clear=True)
    warm = [executors.run_point(t) for t in TASKS]
    caches = executors.worker_caches()
    assert len(caches["cluster_cache"]) == 1  # every point on the same 32-GPU cluster
    assert len(caches["plan_cache"]) == 4  # tasks 0, 3 and 4 share a plan (another seed: same plan)
    assert len(caches["engine_cache"]) == 2  # seeds 0 and 1
    for c, w in zip(cold, warm):
        assert c["status"] == w["status"] == "ok", (c.get("error"), w.get("error"))
        assert _numbers(c) == pytest.approx(_numbers(w), rel=0, abs=0)
    assert _numbers(warm[0]) == _numbers(warm[3])
    executors.worker_caches(clear=True)


def test_a_point_can_run_without_the_worker_caches():
    executors.worker_caches(clear=True)
    row = executors.run_point({**TASKS[0], "reuse": False})
    assert row["status"] == "ok"
    assert not executors.worker_caches()["engine_cache"] and not executors.worker_caches()["plan_cache"]


class _Node:
    """An object in a reference cycle (only the cyclic collector frees it)."""

    def __init__(self):
        self.me = self


def test_settle_heap_freezes_survivors_and_still_frees_cycles(monkeypatch):
    import gc
    import weakref

    from oassim.experiments import heap

    monkeypatch.setattr(heap, "FULL_COLLECTION_EVERY", 3)  # (256 in a sweep)
    monkeypatch.setattr(heap, "_SETTLED", [0])
    try:
        garbage = _Node()
        dead = weakref.ref(garbage)
        del garbage
        kept = _Node()
        alive = weakref.ref(kept)
        heap.settle_heap()  # collects the point's garbage, then freezes what survives
        assert dead() is None and alive() is not None
        assert gc.get_freeze_count() > 0
        del kept  # a cache entry evicted after it was frozen: not walked by collections ...
        heap.settle_heap()
        assert alive() is not None
        heap.settle_heap()  # ... until the full collection every FULL_COLLECTION_EVERY points
        assert alive() is None
    finally:
        gc.unfreeze()
