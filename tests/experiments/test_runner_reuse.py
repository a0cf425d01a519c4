"""runner.run's reuse hooks (engine and plan caches, git state) and its replay switch."""

from __future__ import annotations

import copy

from oassim.experiments.runner import run
from tests.experiments.conftest import SWEEP_BASE


def _scenario(gb: int = 256) -> dict:
    sc = copy.deepcopy(SWEEP_BASE)
    sc["workload"]["global_batch"] = gb  # 32 micro-batches per replica at dp 8
    return sc


def test_replay_full_is_passed_to_the_scheduler_and_agrees_with_the_periodic_replay():
    auto, full = run(_scenario()), run(_scenario(), replay="full")
    assert auto.provenance["replay"]["mode"] == "periodic"
    assert full.provenance["replay"] == {"mode": "full", "reason": "the full replay was asked for"}
    assert abs(auto.iteration_time_s - full.iteration_time_s) <= 1e-9 * full.iteration_time_s


def test_a_shared_engine_answers_a_repeated_request_from_its_memo():
    clusters, engines, plans = {}, {}, {}
    git = {"commit": "0" * 40, "dirty": False}
    a = run(_scenario(), cluster_cache=clusters, engine_cache=engines, plan_cache=plans, git=git)
    b = run(_scenario(), cluster_cache=clusters, engine_cache=engines, plan_cache=plans, git=git)
    assert len(engines) == 1 and len(plans) == 1 and b.plan is a.plan
    assert b.provenance["engine"]["request_hits"] > a.provenance["engine"]["request_hits"]
    assert b.provenance["git"] == git
    assert a.iteration_time_s == b.iteration_time_s
