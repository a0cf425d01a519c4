"""Fixtures of the experiments tests: a small scenario, and stand-ins for the layers above.

``fake_sim`` swaps the scheduler for :mod:`tests.experiments.fakesim` (the runner looks the
simulator up through ``runner._simulator``), so that these tests check the wiring, not the
scheduler's numbers; ``real_sim`` tests use the real one.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

from tests.experiments import fakesim

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = sorted((ROOT / "experiments").glob("*.yaml"))

# The base scenario of the sweep tests: GPT 1.7B on 32 A100 (~0.1 s a point, analytical).
SWEEP_BASE: dict[str, Any] = {
    "name": "tiny-base",
    "cluster": {"preset": "dgx-a100-superpod", "accelerators": 32},
    "workload": {"model": "megatron-gpt-1.7b", "seq_len": 2048, "global_batch": 32, "micro_batch": 1},
    "parallelism": {"tp": 2, "pp": 2, "dp": 8},
}

SMALL: dict[str, Any] = {
    "name": "small-test",
    "description": "a 32-GPU job of a 4-layer model, for tests",
    "cluster": {"preset": "dgx-h100-superpod", "accelerators": 32},
    "workload": {
        "model": {"name": "tiny-gpt", "layers": 4, "hidden": 1024, "ffn_hidden": 4096, "heads": 16,
                  "vocab": 32000, "activation": "gelu"},
        "seq_len": 1024, "global_batch": 32, "micro_batch": 1, "precision": "bf16", "recompute": "none",
    },
    "parallelism": {"tp": 2, "pp": 2, "dp": 8, "sp": True, "zero": 1},
    "network": "analytical",
    "seed": 3,
}


@pytest.fixture
def small() -> dict[str, Any]:
    """A fresh copy of the small scenario mapping."""
    return copy.deepcopy(SMALL)


@pytest.fixture
def scenario_file(tmp_path: Path) -> Callable[..., Path]:
    """Write the small scenario, changed by ``edit(d)`` in place, to a YAML file."""

    def make(edit: Callable[[dict], Any] | None = None, name: str = "scenario.yaml") -> Path:
        d = copy.deepcopy(SMALL)
        if edit is not None:
            edit(d)
        p = tmp_path / name
        p.write_text(yaml.safe_dump(d, sort_keys=False))
        return p

    return make


@pytest.fixture
def fake_sim(monkeypatch: pytest.MonkeyPatch):
    """Replace the scheduler by the naive replay of ``fakesim``; yields its call log."""
    from oassim.experiments import runner

    fakesim.CALLS.clear()
    monkeypatch.setattr(runner, "_simulator", lambda: fakesim.fake_simulate)
    yield fakesim.CALLS
