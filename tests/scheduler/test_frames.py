"""Results frames follow the contract of oassim/scheduler/results.py and conserve what was sent."""

from __future__ import annotations

import numpy as np
import pytest

from oassim.collectives import busbw_factor
from oassim.scheduler import simulate
from tests.scheduler.conftest import plan_of

OPS = ["stage", "rank", "stream", "name", "kind", "dim", "microbatch", "chunk", "start_s", "end_s", "exposed_s"]
COLL = ["stage", "dim", "op", "where", "size_bytes", "groups", "group_size", "algorithm", "start_s", "end_s",
        "time_s", "alone_s", "exposed_s", "busbw_GBps", "bottleneck_tier", "bottleneck_util"]
LINK = ["t0_s", "t1_s", "tier", "utilisation", "bytes"]
TIERS = ["tier", "links", "bytes", "busy_s", "utilisation", "max_link_utilisation"]


@pytest.fixture(scope="module")
def res(dgx64):
    """A pipelined job with overlapped gradient buckets on 64 A100."""
    return simulate(plan_of(dgx64, framework="megatron-core", tp=2, pp=2, dp=16, global_batch=64), dgx64, seed=1)


def test_frames_have_the_contract_columns(res):
    """Every column the contract names is present (added columns are allowed)."""
    assert set(OPS) <= set(res.ops.columns)
    assert set(COLL) <= set(res.collectives.columns)
    assert set(LINK) <= set(res.link_util.columns)
    assert set(TIERS) <= set(res.tiers.columns)
    assert set(res.ops["stream"].astype(str)) == {"compute", "comm"}


def test_provenance_names_version_seed_and_git(res):
    """Provenance carries the version, the seed and git describe (None without git)."""
    p = res.provenance
    assert p["seed"] == 1 and p["version"] and "git_describe" in p and p["network"] == "analytical"


def test_link_util_windows_add_up_to_the_tier_totals(res):
    """Bytes spread over the time windows sum to each tier's bytes; utilisation stays in [0, 1]."""
    per_tier = res.link_util.groupby(res.link_util["tier"].astype(str), observed=True)["bytes"].sum()
    tiers = res.tiers.set_index("tier")
    for tier, b in per_tier.items():
        assert b == pytest.approx(tiers.loc[tier, "bytes"], rel=1e-9, abs=1.0)
    assert res.link_util["utilisation"].between(0, 1 + 1e-9).all()
    assert res.tiers["max_link_utilisation"].between(0, 1 + 1e-9).all()
    assert res.link_util["t1_s"].max() == pytest.approx(res.iteration_time_s)


def test_collective_rows_are_consistent(res):
    """time = end - start >= alone; busbw is the nccl-tests figure of size and time."""
    c = res.collectives
    assert np.allclose(c["time_s"], c["end_s"] - c["start_s"])
    assert (c["time_s"] >= c["alone_s"] * (1 - 1e-9)).all()
    row = c.iloc[len(c) // 2]
    expect = row["size_bytes"] / row["time_s"] * busbw_factor(str(row["op"]), int(row["group_size"])) / 1e9
    assert row["busbw_GBps"] == pytest.approx(expect)


def test_exposed_time_matches_the_comm_waits(res):
    """Each rank's exposed time in ``ops`` equals its 'comm' idle intervals in ``waits``."""
    ops, w = res.ops, res.waits
    exposed = ops.groupby("rank")["exposed_s"].sum()
    comm = w[w["reason"] == "comm"]
    waited = (comm["end_s"] - comm["start_s"]).groupby(comm["rank"]).sum()
    for rank, v in waited.items():
        assert exposed[rank] == pytest.approx(v, rel=1e-9, abs=1e-12)


def test_compute_rows_carry_the_plan_durations(res):
    """Each stage's compute rows add up to the plan's compute time of that stage (segments expand exactly)."""
    comp = res.ops[res.ops["stream"] == "compute"]
    per_stage = (comp["end_s"] - comp["start_s"]).groupby(comp["stage"]).sum()
    for st in res.plan.stages:
        assert per_stage[st.stage] == pytest.approx(st.compute_s, rel=1e-9)
