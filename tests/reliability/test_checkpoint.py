"""Young/Daly checkpoint intervals: closed forms and the limits they must reach."""

from __future__ import annotations

import math

import numpy as np
import pytest

from oassim.reliability import checkpoint_bytes, daly_interval_s, young_interval_s


def test_young_minimises_the_first_order_waste():
    """sqrt(2 delta M) minimises delta/tau + tau/(2M) (grid search agrees within 0.5%)."""
    delta, m = 30.0, 3 * 3600.0
    tau = np.linspace(10, 10000, 200001)
    best = tau[np.argmin(delta / tau + tau / (2 * m))]
    assert young_interval_s(delta, m) == pytest.approx(best, rel=5e-3)


@pytest.mark.parametrize("ratio", [1e-6, 1e-4, 1e-2])
def test_daly_tends_to_young_when_writes_are_short(ratio):
    """Daly / Young -> 1 as delta / M -> 0 (difference below 2 sqrt(delta/M))."""
    m = 10000.0
    d = ratio * m
    assert abs(daly_interval_s(d, m) / young_interval_s(d, m) - 1) < 2 * math.sqrt(ratio)


def test_daly_limits():
    """delta >= 2M gives tau = M; no failures (M = inf) needs no checkpoint."""
    assert daly_interval_s(300.0, 100.0) == 100.0
    assert daly_interval_s(10.0, math.inf) == math.inf


def test_checkpoint_size_is_fourteen_bytes_per_parameter():
    """bf16 weights + fp32 master, m, v: 2 + 12 bytes per parameter."""
    assert checkpoint_bytes(405e9) == pytest.approx(5.67e12)
