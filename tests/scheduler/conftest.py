"""Shared fixtures: small clusters, a tiny GPT, and collective engines with known answers."""

from __future__ import annotations

from typing import Callable

import numpy as np
import pytest

from oassim.collectives import CollectiveResult
from oassim.topology.cluster import build_fabric
from oassim.workload import compile_plan

# Layers heavy next to the embedding and logits (vocab 64), so that pipeline stages are uniform.
UNIFORM_GPT = dict(name="uniform-gpt", layers=32, hidden=2048, ffn_hidden=8192, heads=16, vocab=64,
                   seq_len=1024, activation="gelu")
TINY_GPT = dict(name="tiny-gpt", layers=8, hidden=1024, ffn_hidden=4096, heads=8, vocab=8000,
                seq_len=512, activation="gelu")


class _Net:
    name = "stub"


class FixedEngine:
    """A collective engine stub: ``time_of(request)`` seconds per call, no link loads (so no
    two calls ever contend)."""

    def __init__(self, fabric, time_of: Callable[[object], float] = lambda req: 0.0):
        self.fabric = fabric
        self.time_of = time_of
        self.network = _Net()
        self.stats = {}

    def run(self, req):
        n = self.fabric.n_links
        return CollectiveResult(op=req.op, algorithm="stub", size_bytes=req.size_bytes, group_size=req.group_size,
                                n_groups=req.n_groups, network="stub", tuning="stub", protocol="simple",
                                time_s=float(self.time_of(req)),
                                phases=(), links=np.zeros(0, dtype=np.int64), loaded_bytes=np.zeros(0),
                                loaded_busy_s=np.zeros(0), n_links=n,
                                link_tier=self.fabric.link_tier, link_tier_names=self.fabric.link_tier_names)


@pytest.fixture(scope="session")
def dgx32():
    """32 A100 in 4 DGX nodes on a rail-optimised fat-tree."""
    return build_fabric("dgx-a100-superpod", 32)


@pytest.fixture(scope="session")
def dgx64():
    """64 A100 in 8 DGX nodes."""
    return build_fabric("dgx-a100-superpod", 64)


def plan_of(fabric, model=TINY_GPT, framework="megatron-lm-2021", **par):
    """Compile ``model`` on ``fabric`` with parallel sizes ``par`` (global_batch, micro_batch
    and recompute may be given too)."""
    train = {"global_batch": par.pop("global_batch", 64), "micro_batch": par.pop("micro_batch", 1),
             "recompute": par.pop("recompute", "none"), "framework": framework}
    return compile_plan(model, par, "a100-sxm", fabric, training=train)
