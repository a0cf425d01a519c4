"""Model specs: preset parameter counts against the published totals, the FLOP formula, errors."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from oassim.errors import SpecError
from oassim.presets import list_presets
from oassim.workload.model import ModelSpec, resolve_model
from tests.workload.conftest import TINY_GPT, TINY_MOE

DATA = Path(__file__).resolve().parents[1] / "data" / "training_megatron_a100.csv"

# Published totals (B parameters): the papers / model cards cited in each preset file.
PUBLISHED = {
    "gpt3-175b": (175.0, 0.01),        # Brown et al. 2020 Table 2.1
    "llama3-8b": (8.03, 0.005),        # Llama 3 paper / model card (8.03B)
    "llama3-70b": (70.6, 0.005),
    "llama3-405b": (405.9, 0.005),
    "mixtral-8x7b": (46.7, 0.005),     # Jiang et al. 2024 §2: 46.7B total
    "deepseek-v3": (671.0, 0.01),      # DeepSeek-AI 2024: 671B (MLA, MTP not counted)
}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_preset_total_params_match_publication(name):
    """Each named preset's total parameter count is within 1% of the published figure."""
    m = resolve_model(name)
    total, tol = PUBLISHED[name]
    assert m.total_params() / 1e9 == pytest.approx(total, rel=tol)


def test_moe_active_params_match_publication():
    """Mixtral activates 12.9B and DeepSeek-V3 37B parameters per token (embeddings included)."""
    mix = resolve_model("mixtral-8x7b")
    assert (mix.active_params + mix.embedding_params() + mix.output_params) / 1e9 == pytest.approx(12.9, rel=0.01)
    ds = resolve_model("deepseek-v3")
    assert (ds.active_params + ds.embedding_params()) / 1e9 == pytest.approx(37.0, rel=0.03)


def test_megatron_table1_presets_match_calibration_rows():
    """The 10 SC'21 Table 1 presets reproduce params_B, hidden, layers, heads of rows T0001-T0010."""
    rows = {r["row_id"]: r for r in csv.DictReader(open(DATA))}
    tags = ["1.7b", "3.6b", "7.5b", "18b", "39b", "76b", "145b", "310b", "530b", "1t"]
    for i, tag in enumerate(tags, start=1):
        r = rows[f"T{i:04d}"]
        m = resolve_model(f"megatron-gpt-{tag}")
        assert (m.hidden, m.layers, m.heads, m.vocab, m.seq_len) == (
            int(r["hidden"]), int(r["layers"]), int(r["heads"]), 51200, 2048)
        assert m.total_params() / 1e9 == pytest.approx(float(r["params_B"]), rel=0.03)


def test_all_workload_presets_load():
    """Every YAML in workloads/ is a valid model with sources."""
    names = list_presets("workloads")
    assert len(names) >= 16
    for n in names:
        m = resolve_model(n)
        assert m.name == n and m.sources


def test_flops_per_token_is_the_design_formula():
    """model_flops_per_token == 6 N_nonembedding_active + 12 l h s (docs/architecture.md)."""
    for spec in (TINY_GPT, TINY_MOE):
        m = ModelSpec(**spec)
        assert m.model_flops_per_token() == 6 * m.active_params + 12 * m.layers * m.hidden * m.seq_len
    gpt3 = resolve_model("gpt3-175b")
    # ~6 * 174B + 12 * 96 * 12288 * 2048: 1.07 TFLOP per token
    assert gpt3.model_flops_per_token(2048) == pytest.approx(1.0728e12, rel=1e-3)


def test_hand_counted_tiny_gpt():
    """Tiny GPT layer = 12h^2 + 13h (GPT convention), embeddings V h + s h, tied output."""
    m = ModelSpec(**TINY_GPT)
    h = m.hidden
    assert m.layer_params(0) == 12 * h * h + 13 * h
    assert m.nonembedding_params() == 8 * (12 * h * h + 13 * h) + 2 * h
    assert m.embedding_params() == 1024 * h + 256 * h
    assert m.output_params == 0


def test_moe_counts_only_active_experts():
    """A MoE layer's active count has top_k + shared experts; the total has all of them."""
    m = ModelSpec(**TINY_MOE)
    e = m.ffn_params(256)
    assert m.layer_params(3) - m.layer_params(3, active=True) == (8 - 2) * e
    assert m.layer_params(0) == m.layer_params(0, active=True)  # the leading dense layer
    assert m.expert_params(3) == 8 * e and m.expert_params(0) == 0


@pytest.mark.parametrize("change, fragment", [
    ({"kv_heads": 3}, "kv_heads 3 must divide heads 8"),
    ({"hidden": 500}, "not divisible by heads"),
    ({"experts": 8, "top_k": 9}, "top_k must be between 1 and experts"),
    ({"top_k": 2}, "need experts >= 2"),
    ({"experts": 1}, "experts must be 0"),
    ({"activation": "relu"}, "activation"),
    ({"layer": 4}, "unknown key 'layer'"),
])
def test_invalid_inline_model_is_one_line_spec_error(change, fragment):
    """An impossible inline model is refused with a one-line SpecError naming the problem."""
    spec = {**TINY_GPT, **change}
    with pytest.raises(SpecError) as err:
        resolve_model(spec)
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_unknown_preset_lists_known_ones():
    """An unknown model preset name lists the known presets."""
    with pytest.raises(SpecError, match="known: .*llama3-8b"):
        resolve_model("llama-9b")
