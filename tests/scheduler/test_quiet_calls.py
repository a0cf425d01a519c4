"""Quiet calls (``Replay._mark_quiet``): a call no other flight can slow down is timed by the
replay itself, without the contention model's bookkeeping or an event per call. The replay
must give exactly what it gives when every call goes through ``CommModel.start``: the same
iteration time, every frame (ops, collectives, waits, link utilisation) equal row for row, on
both network models, over a corpus where calls are quiet (TP inside a DGX node beside
cross-node DP and PP), mixed (TP 2 whose DP group shares the node's NVLink), quiet only in
the early phase (before the gradient reductions Megatron-Core overlaps with the last
micro-batch's backward, 1F1B and interleaved), and under ZeRO 3, interleaving, context and
expert parallelism and a straggler.
"""

from __future__ import annotations

import pytest

from oassim.scheduler import simulate
from oassim.scheduler.replay import Replay
from oassim.topology.cluster import build_fabric
from tests.scheduler.conftest import TINY_GPT, UNIFORM_GPT, plan_of
from tests.scheduler.test_periodic import TINY_MOE

CORPUS = {
    "tp8-pp2-1f1b": dict(model=UNIFORM_GPT, framework="megatron-core", tp=8, pp=2, dp=4, sp=True, global_batch=32),
    "tp8-pp4-vpp2-zero3": dict(model=UNIFORM_GPT, framework="megatron-core", tp=8, pp=4, dp=2, vpp=2, zero=3,
                               global_batch=32),
    "tp2-pp4-mixed": dict(model=TINY_GPT, tp=2, pp=4, dp=8, global_batch=32),
    "tp4-cp2-pp2": dict(model=TINY_GPT, framework="megatron-core", tp=4, cp=2, pp=2, dp=4, sp=True, global_batch=32),
    "moe-ep4": dict(model=TINY_MOE, framework="megatron-core", tp=1, ep=4, pp=2, dp=32, global_batch=128),
    # Megatron-Core overlaps the gradient reductions with the last micro-batch's backward and
    # the data-parallel group shares the node's NVLink: TP calls are quiet before that only
    "early-tp2-pp2-overlap": dict(model=UNIFORM_GPT, framework="megatron-core", tp=2, pp=2, dp=16, sp=True,
                                  global_batch=64),
    "early-tp4-pp2-vpp2": dict(model=UNIFORM_GPT, framework="megatron-core", tp=4, pp=2, dp=8, vpp=2,
                               global_batch=64),
}


@pytest.fixture(scope="module")
def h100_64():
    return build_fabric("dgx-h100-superpod", 64)


def _run(plan, fabric, quiet: bool, monkeypatch, **kw):
    marked: list[tuple[int, int]] = []
    orig = Replay._mark_quiet

    def count(self):
        orig(self)
        marked.append((sum(m.quiet for m in self.meta.values()), len(self.meta),
                       sum(m.quiet_early for m in self.meta.values())))

    with monkeypatch.context() as m:
        m.setattr(Replay, "quiet_calls", quiet)
        m.setattr(Replay, "_mark_quiet", count)
        res = simulate(plan, fabric, **kw)
    return res, marked


@pytest.mark.parametrize("network", ["analytical", "flow"])
@pytest.mark.parametrize("case", list(CORPUS))
def test_quiet_calls_replay_exactly_as_the_contention_model(h100_64, case, network, monkeypatch):
    cfg = dict(CORPUS[case])
    plan = plan_of(h100_64, cfg.pop("model"), **cfg)
    kw = dict(network=network, replay="full")
    if case == "tp2-pp4-mixed":
        kw["stragglers"] = {3: 1.3}
    new, marked = _run(plan, h100_64, True, monkeypatch, **kw)
    ref, none = _run(plan, h100_64, False, monkeypatch, **kw)
    assert not none and marked
    quiet, calls, early = marked[-1]
    if case.startswith("tp8"):
        assert quiet > calls // 2, (quiet, calls)  # NVLink-only TP calls of one stage are quiet
    if case == "tp2-pp4-mixed":
        assert 0 < quiet < calls  # the data-parallel group shares the node: some are not
    if case.startswith("early"):
        assert quiet == 0 and early > calls // 2, (quiet, early, calls)
    assert new.iteration_time_s == ref.iteration_time_s
    for name in ("ops", "collectives", "waits", "link_util", "tiers"):
        a, b = getattr(new, name), getattr(ref, name)
        assert len(a) and a.equals(b), name
    assert new.provenance["comm"]["calls"] == ref.provenance["comm"]["calls"]


def test_an_early_quiet_flight_that_outlasts_its_phase_replays_again_without(h100_64, monkeypatch):
    """If a flight quiet in the early phase were still in flight when its member entered the
    late phase, the replay is run again with only the calls quiet throughout: the same frames
    as the contention model's."""
    cfg = dict(CORPUS["early-tp2-pp2-overlap"])
    plan = plan_of(h100_64, cfg.pop("model"), **cfg)
    ref, _ = _run(plan, h100_64, False, monkeypatch, replay="full")
    seen: list[bool] = []
    orig = Replay._leave_early

    def overlap(self, m):
        seen.append(self.early_quiet)
        if self.early_quiet:
            m.free["tp"] = self.env.now + 1.0  # pretend a TP flight is still in flight
        orig(self, m)

    monkeypatch.setattr(Replay, "_leave_early", overlap)
    new = simulate(plan, h100_64, replay="full")
    assert seen[0] is True and seen[-1] is False  # raised in the first replay, none in the second
    assert new.iteration_time_s == ref.iteration_time_s
    for name in ("ops", "collectives", "waits", "link_util", "tiers"):
        assert getattr(new, name).equals(getattr(ref, name)), name
