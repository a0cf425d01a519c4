"""The campaign kernel: time is conserved, runs are seeded, and closed forms hold where they exist."""

from __future__ import annotations

import numpy as np
import pytest

from oassim.reliability import CampaignParams, Exposure, simulate_samples


def _exp(per_hour: float, action: str = "stop", units: int = 0, fraction: float = 0.0, comp: str = "accelerator"):
    # count 1 at rate_FIT = per_hour * 1e9 gives exactly per_hour failures per hour
    return Exposure(comp, "t", "gpu" if comp == "accelerator" else "network", 1, per_hour * 1e9, action, units,
                    fraction, "test")


def _params(**kw) -> CampaignParams:
    base = dict(days=54.0, interval_s=1800.0, write_s=180.0, detect_s=300.0, restart_s=600.0, repair_h=24.0,
                spare_accelerators=10**6)
    base.update(kw)
    return CampaignParams(**base)


def test_hours_sum_to_the_campaign_and_runs_are_seeded():
    """Every sample's hours add up to days x 24; the same seed repeats, another differs."""
    exps = [_exp(0.1), _exp(0.02, "degraded", fraction=0.1, comp="optical_link"), _exp(0.01, units=8)]
    p = _params(spare_accelerators=8, straggler_slowdown=0.02)
    a = simulate_samples(exps, p, 20, seed=1)
    for s in a:
        assert sum(s.time.values()) == pytest.approx(54 * 24, abs=1e-6)
        assert all(v >= -1e-9 for v in s.time.values())
    b = simulate_samples(exps, p, 20, seed=1)
    assert [s.time for s in a] == [s.time for s in b]
    c = simulate_samples(exps, p, 20, seed=2)
    assert [s.interruptions for s in a] != [s.interruptions for s in c]


def test_no_failures_leaves_only_checkpoint_overhead():
    """Without failures, goodput = tau / (tau + delta) (up to the last, unfinished cycle)."""
    (s,) = simulate_samples([_exp(0.0)], _params(), 1, seed=0)
    assert s.interruptions == 0
    assert s.time["useful"] / (54 * 24) == pytest.approx(1800 / 1980, abs=1e-3)


def test_interruptions_are_poisson_with_the_summed_rate():
    """Mean interruptions = lambda T within 4 standard errors (Poisson variance lambda T)."""
    lam = 0.3
    n = np.array([s.interruptions for s in simulate_samples([_exp(lam)], _params(), 200, seed=3)])
    mean = lam * 54 * 24
    assert abs(n.mean() - mean) < 4 * np.sqrt(mean / len(n))
    assert n.var() == pytest.approx(mean, rel=0.3)


def test_goodput_matches_the_first_order_closed_form():
    """Small lambda: goodput ~ (1 - lambda R) tau/(tau+delta) - lambda (1 - lambda R) E[min(o, tau)], within 1%.

    o is uniform over the cycle tau + delta, so E[min(o, tau)] = (tau^2/2 + tau delta) / (tau + delta).
    """
    lam, r_h, tau, d = 0.05, 0.25, 0.5, 0.05
    p = _params(interval_s=tau * 3600, write_s=d * 3600, detect_s=0.0, restart_s=r_h * 3600)
    g = np.mean([s.time["useful"] for s in simulate_samples([_exp(lam)], p, 200, seed=4)]) / (54 * 24)
    up = 1 - lam * r_h
    expected = up * tau / (tau + d) - lam * up * (tau**2 / 2 + tau * d) / (tau + d)
    assert g == pytest.approx(expected, rel=0.01)


def test_without_spares_every_hardware_stop_waits_for_its_repair():
    """Pool of 0: each stop that takes hardware out waits repair_h (rare failures do not overlap)."""
    p = _params(spare_accelerators=0, repair_h=2.0)
    for s in simulate_samples([_exp(0.002, units=8)], p, 30, seed=5):
        assert s.time["spare_wait"] == pytest.approx(2.0 * s.interruptions, abs=1e-6)
    p_big = _params(spare_accelerators=64, repair_h=2.0)
    assert all(s.time["spare_wait"] == 0 for s in simulate_samples([_exp(0.002, units=8)], p_big, 30, seed=5))


def test_degraded_failures_slow_without_stopping_when_the_transport_survives():
    """link_loss=degrade: no interruptions; lost hours ~ lambda T * repair * s/(1+s) * tau/(tau+delta)."""
    lam, f = 0.01, 0.2
    p = _params(link_loss="degrade", repair_h=5.0)
    out = simulate_samples([_exp(lam, "degraded", fraction=f, comp="optical_link")], p, 200, seed=6)
    assert all(s.interruptions == 0 for s in out)
    s_ = f / (1 - f)
    expected = lam * 54 * 24 * 5.0 * s_ / (1 + s_) * 1800 / 1980
    assert np.mean([s.time["degraded"] for s in out]) == pytest.approx(expected, rel=0.1)
    stopped = simulate_samples([_exp(lam, "degraded", fraction=f, comp="optical_link")], _params(repair_h=5.0), 20, 6)
    assert sum(s.interruptions for s in stopped) > 0


def test_overlapping_degradations_slow_the_job_as_the_worst_one():
    """Many degradations at once (lambda x repair = 100): the job runs at 1/(1+s), not 1/(1+sum s)."""
    f = 0.2
    p = _params(link_loss="degrade", repair_h=100.0)
    (s,) = simulate_samples([_exp(1.0, "degraded", fraction=f, comp="optical_link")], p, 1, seed=7)
    compute = s.time["useful"] + s.time["degraded"]
    slow = f / (1 - f)
    # the first hours, before the first failure, run at full speed: allow 1%
    assert s.time["degraded"] / compute == pytest.approx(slow / (1 + slow), rel=0.01)
