"""Shared fixtures: small clusters and a tiny GPT, so workload tests stay fast."""

from __future__ import annotations

import pytest

from oassim.topology.cluster import build_fabric

# A tiny GPT-style model (LayerNorm, biases, learned positions, tied embeddings, dropout).
TINY_GPT = dict(name="tiny-gpt", layers=8, hidden=512, ffn_hidden=2048, heads=8, vocab=1024,
                seq_len=256, activation="gelu")
# A tiny Llama-style MoE (RMSNorm, RoPE, untied, SwiGLU experts, one leading dense layer).
TINY_MOE = dict(name="tiny-moe", layers=4, hidden=256, ffn_hidden=1024, heads=8, kv_heads=2,
                vocab=512, seq_len=128, activation="swiglu", experts=8, top_k=2,
                shared_experts=1, moe_ffn_hidden=256, first_dense_layers=1)


@pytest.fixture(scope="session")
def dgx64():
    """64 A100 in 8 DGX nodes (scale-up domains of 8) on a rail-optimised fat-tree."""
    return build_fabric("dgx-a100-superpod", 64)


@pytest.fixture(scope="session")
def dgx16():
    """16 A100 in 2 DGX nodes."""
    return build_fabric("dgx-a100-superpod", 16)
