"""Pipeline splits as Megatron-Core expresses them: even, first/last rank counts, embedding and
loss counted as layers, and explicit layout strings; each with vpp (interleaving)."""

from __future__ import annotations

import pytest
import yaml

import oassim

from oassim.errors import SpecError
from oassim.workload.memory import chunk_layers
from oassim.workload.parallelism import ParallelismSpec
from oassim.workload.model import resolve_model
from oassim.workload.pipeline_split import virtual_stage_layers


def test_llama31_405b_on_pp16_with_vpp4_and_vpp8_counts_embedding_and_loss():
    """126 layers + embedding + loss = 128 over pp*vpp virtual stages (NeMo / Megatron-Bridge's
    405B layout): vpp 4 gives 2 per virtual stage and 1 on the first and last; vpp 8 gives 1,
    the first virtual stage only the embedding and the last only the loss."""
    v4 = virtual_stage_layers(126, 16, 4, embedding_counts=True, loss_counts=True)
    assert len(v4) == 64 and sum(v4) == 126
    assert v4[0] == 1 and v4[-1] == 1 and set(v4[1:-1]) == {2}
    v8 = virtual_stage_layers(126, 16, 8, embedding_counts=True, loss_counts=True)
    assert len(v8) == 128 and sum(v8) == 126
    assert v8[0] == 0 and v8[-1] == 0 and set(v8[1:-1]) == {1}


def test_layout_string_matches_the_megatron_design_example():
    """Megatron-Core's flexible-layout design (MR 2795) case 1, pp 3 vpp 2 and 7 layers:
    rank 0 holds [embedding] and [4, 5], rank 1 [0, 1] and [6], rank 2 [2, 3] and [loss]."""
    counts = virtual_stage_layers(7, 3, 2, layout="E|tt|tt|tt|t|L")
    assert counts == [0, 2, 2, 2, 1, 0]
    # chunk c of rank r is virtual stage c * pp + r: rank 0 chunk 1 holds layers 4 and 5
    assert [virtual_stage_layers(7, 3, 2, layout="E|(tt|)*3t|L")] == [counts]


def test_deepseek_v3_61_layers_on_pp4_vpp4_by_layout():
    """61 layers do not divide over 16 virtual stages; a layout puts 3 on the first, 2 on the
    last and 4 on the 14 others."""
    counts = virtual_stage_layers(61, 4, 4, layout="Ettt|(tttt|)*14ttL")
    assert counts == [3] + [4] * 14 + [2]


def test_first_and_last_rank_counts_are_divided_over_the_chunks():
    """first 6, last 8 on pp 4 with vpp 2: the middle ranks share 16 (8 each), and each rank's
    layers split equally over its two chunks (Megatron's get_num_layers_to_build)."""
    counts = virtual_stage_layers(30, 4, 2, first=6, last=8)
    assert counts == [3, 4, 4, 4, 3, 4, 4, 4]


@pytest.mark.parametrize("kw, key, fragment", [
    (dict(layers=126, pp=16, vpp=4), "parallelism.pp", "not divisible by pp*vpp = 64"),
    (dict(layers=126, pp=16, vpp=4, embedding_counts=True), "parallelism.pp", "+1 embedding = 127"),
    (dict(layers=30, pp=4, vpp=4, first=6, last=8), "parallelism.first_stage_layers", "not divisible by vpp 4"),
    (dict(layers=30, pp=4, vpp=2, first=6, embedding_counts=True),
     "parallelism.account_for_embedding_in_pipeline_split", "cannot be combined"),
    (dict(layers=7, pp=3, vpp=2, layout="E|tt|tt|tt|tL"), "parallelism.pipeline_model_parallel_layout",
     "5 stages but pp*vpp"),
    (dict(layers=7, pp=3, vpp=2, layout="tE|tt|tt|tt|t|L"), "parallelism.pipeline_model_parallel_layout",
     "must open the first stage"),
    (dict(layers=8, pp=3, vpp=2, layout="E|tt|tt|tt|t|L"), "parallelism.pipeline_model_parallel_layout",
     "holds 7 decoder layers"),
    (dict(layers=7, pp=3, vpp=2, layout="E|tt|tx|tt|t|L"), "parallelism.pipeline_model_parallel_layout",
     "unknown layout symbol"),
    (dict(layers=7, pp=3, vpp=2, layout="E|(tt|)*99999999999t|L"), "parallelism.pipeline_model_parallel_layout",
     "unrolls past"),
])
def test_splits_megatron_refuses_are_refused_naming_the_key(kw, key, fragment):
    """Each split Megatron-Core would assert on is one SpecError naming the key at fault."""
    kw = dict(kw)
    with pytest.raises(SpecError) as err:
        virtual_stage_layers(kw.pop("layers"), kw.pop("pp"), kw.pop("vpp"), **kw)
    assert err.value.path == key
    assert fragment in err.value.message


def test_megatron_names_are_accepted_and_chunks_follow_the_split():
    """Megatron's own key names (num_layers_in_first/last_pipeline_stage) parse, and the plan's
    chunk_layers hands each virtual stage its contiguous range of global layers."""
    par = ParallelismSpec.model_validate({"pp": 16, "vpp": 4, "dp": 8, "tp": 8,
                                          "account_for_embedding_in_pipeline_split": True,
                                          "account_for_loss_in_pipeline_split": True})
    m = resolve_model("llama3-405b")
    ranges = [chunk_layers(m, par, r, c) for c in range(4) for r in range(16)]
    assert ranges[0] == range(0, 1) and ranges[1] == range(1, 3) and ranges[-1] == range(125, 126)
    alias = ParallelismSpec.model_validate({"pp": 4, "num_layers_in_first_pipeline_stage": 6,
                                            "num_layers_in_last_pipeline_stage": 8})
    assert (alias.first_stage_layers, alias.last_stage_layers) == (6, 8)


def test_405b_interleaved_uneven_layout_replays_end_to_end(tmp_path):
    """Llama 3.1 405B on 1,024 H100 as Megatron-Bridge runs it (tp 8, pp 8, cp 2, vpp 8, embedding
    and loss counted in the split: 128 / 64 = 2 layers per virtual stage): the plan holds every
    layer once, virtual stage 0 one layer beside the embedding, the last one beside the loss,
    and the replay of 8 micro-batches completes with every stage busy."""
    doc = {"name": "405b-vpp8", "cluster": {"preset": "dgx-h100-superpod", "accelerators": 1024},
           "workload": {"model": "llama3-405b", "seq_len": 8192, "global_batch": 64, "micro_batch": 1,
                        "precision": "bf16", "recompute": "none"},
           "parallelism": {"tp": 8, "pp": 8, "dp": 8, "cp": 2, "vpp": 8, "sp": True, "zero": 1,
                           "account_for_embedding_in_pipeline_split": True,
                           "account_for_loss_in_pipeline_split": True},
           "network": "analytical", "seed": 0}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(doc))
    res = oassim.run(path)
    chunks = {c.virtual_stage: c.layers for st in res.plan.stages for c in st.chunks}
    assert sorted(L for layers in chunks.values() for L in layers) == list(range(126))
    assert len(chunks[0]) == 1 and len(chunks[63]) == 1
    assert all(len(chunks[v]) == 2 for v in range(1, 63))
    comp = res.ops[res.ops["stream"] == "compute"]
    busy = (comp["end_s"] - comp["start_s"]).groupby(comp["stage"]).sum()
    assert len(busy) == 8 and (busy > 0).all()
    assert res.iteration_time_s >= busy.max()
