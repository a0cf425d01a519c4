"""Heterogeneous accelerators: pipeline stages on chip types, mixed stages paced by their slowest
member, and a layer split balanced by chip speed (oassim.workload.hetero)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from oassim.errors import SpecError
from oassim.hardware import load_catalog
from oassim.workload import compile_plan, load_efficiency
from oassim.workload.hetero import AcceleratorMix, balance_by_chip, balanced_layout, layout_string
from oassim.workload.pipeline_split import parse_layout
from oassim.workload.steps import ComputeOp

TRAIN = {"seq_len": 4096, "global_batch": 16, "micro_batch": 1, "precision": "bf16"}
PAR = {"tp": 8, "pp": 4, "dp": 1, "sp": True}
K = 2.0  # the fast chip's peak and HBM bandwidth over the slow one's


def chips():
    """Two test chips on the same (default) efficiency entry: ``fast`` has K x the dense peaks
    and K x the HBM bandwidth of ``slow`` (H100 SXM's figures), everything else equal."""
    h100 = load_catalog().accelerator("h100-sxm")
    slow = h100.model_copy(update={"name": "test-slow-chip"})
    fast = h100.model_copy(update={"name": "test-fast-chip", "bf16_dense_TFLOPS": K * h100.bf16_dense_TFLOPS,
                                   "fp8_dense_TFLOPS": K * h100.fp8_dense_TFLOPS,
                                   "hbm_bandwidth_TBps": K * h100.hbm_bandwidth_TBps})
    return slow, fast


def mix_of(types, domains_per_type, size=8):
    n = sum(domains_per_type)
    return AcceleratorMix.by_domain(types, domains_per_type, np.repeat(np.arange(n), size))


def n_ops(stage) -> int:
    """Compute kernels a stage runs over the iteration (schedule steps and optimizer)."""
    per = 0
    for st in stage.schedule:
        c = stage.chunks[st.chunk]
        per += sum(isinstance(x, ComputeOp) for x in (c.forward if st.kind == "F" else c.backward))
    return per + sum(isinstance(x, ComputeOp) for x in stage.optimizer)


def test_fast_chip_stages_take_proportionally_less_compute_time() -> None:
    """Stages 0-1 on the slow chip, 2-3 on the fast one. Per kernel t = max(F / (P e), B / (W m)) + o
    (roofline plus the entry's kernel overhead o), so with P and W both K times larger the
    fast stage's compute time less N o is the slow stage's less N o, divided by K (N kernels:
    both middle stages run the same ones). Closed form to 1e-9."""
    slow, fast = chips()
    plan = compile_plan("llama3-8b", PAR, slow, None, training=TRAIN, accelerators=32, memory_check=False,
                        mix=mix_of([slow, fast], [2, 2]))
    assert plan.stage_accelerators == ("test-slow-chip", "test-slow-chip", "test-fast-chip", "test-fast-chip")
    o = load_efficiency().for_accelerator("test-fast-chip")[0].kernel_overhead_us * 1e-6
    s1, s2 = plan.stages[1], plan.stages[2]
    n = n_ops(s1)
    assert n == n_ops(s2) > 0
    assert s2.compute_s - n * o == pytest.approx((s1.compute_s - n * o) / K, rel=1e-9)
    assert s2.compute_s < s1.compute_s
    # MFU is taken against the mean peak of the job's ranks: half of them slow, half fast
    assert plan.peak_flops == pytest.approx(0.5 * (slow.peak_flops("bf16") + fast.peak_flops("bf16")), rel=1e-12)


def test_each_stage_uses_its_own_chips_efficiency_entry() -> None:
    """With real chips (H100 and A100, each with its own fitted compute_efficiency.yaml entry) a
    stage of one type computes exactly as the same stage of a cluster of only that type."""
    cat = load_catalog()
    h100, a100 = cat.accelerator("h100-sxm"), cat.accelerator("a100-sxm")
    mixed = compile_plan("llama3-8b", PAR, h100, None, training=TRAIN, accelerators=32, memory_check=False,
                         mix=mix_of([h100, a100], [2, 2]))
    for acc, stages in ((h100, (0, 1)), (a100, (2, 3))):
        alone = compile_plan("llama3-8b", PAR, acc, None, training=TRAIN, accelerators=32, memory_check=False)
        for s in stages:
            assert mixed.stages[s].compute_s == pytest.approx(alone.stages[s].compute_s, rel=1e-12)
    assert mixed.stages[1].compute_s < mixed.stages[2].compute_s  # H100 is the faster chip
    assert mixed.efficiency == "h100-sxm+a100-sxm" and mixed.accelerator == "h100-sxm+a100-sxm"


def test_a_stage_mixing_types_is_paced_by_its_slowest_member() -> None:
    """Domains of 8 alternate fast / slow; with TP 8, DP 2 each 16-rank stage covers one fast and one
    slow domain, so every kernel of it takes the slow chip's time (the stage equals a slow-only one)."""
    slow, fast = chips()
    mix = AcceleratorMix.by_domain([fast, slow], [1, 1], np.repeat([0, 1], 8))
    mix = AcceleratorMix(mix.types, np.tile(mix.of_rank, 2))  # fast, slow, fast, slow domains
    par = {"tp": 8, "pp": 2, "dp": 2, "sp": True}
    plan = compile_plan("llama3-8b", par, fast, None, training=TRAIN, accelerators=32, memory_check=False, mix=mix)
    alone = compile_plan("llama3-8b", par, slow, None, training=TRAIN, accelerators=32, memory_check=False)
    assert plan.stage_accelerators == ("test-fast-chip+test-slow-chip",) * 2
    for a, b in zip(plan.stages, alone.stages):
        assert a.compute_s == pytest.approx(b.compute_s, rel=1e-12)


def test_balanced_layout_is_the_best_contiguous_split() -> None:
    """Equal layers on chips 3:1 in speed: 32 layers over a fast and a slow stage go 24 + 8; on
    random costs the split's slowest stage matches the brute-force optimum over every split."""
    assert balanced_layout([[1.0] * 32, [3.0] * 32]) == [24, 8]
    # the output layer (5 units) bounds the last stage at 1 + 5; the others share the rest evenly
    # (4 + 4 + 4) rather than as a greedy fill would (6 + 5 + 1)
    assert balanced_layout([[1.0] * 13] * 4, [0.0, 0.0, 0.0, 5.0]) == [4, 4, 4, 1]
    rng = np.random.default_rng(7)
    for _ in range(20):
        pp, layers = 3, 9
        costs = rng.uniform(0.5, 3.0, size=(pp, layers)).tolist()
        extra = rng.uniform(0.0, 2.0, size=pp).tolist()
        got = balanced_layout(costs, extra)
        assert sum(got) == layers and min(got) >= 1

        def worst(split):
            at, out = 0, 0.0
            for s, n in enumerate(split):
                out = max(out, extra[s] + sum(costs[s][at:at + n]))
                at += n
            return out
        best = min(worst((a, b, layers - a - b)) for a, b in itertools.product(range(1, layers), repeat=2)
                   if layers - a - b >= 1)
        assert worst(got) == pytest.approx(best, rel=1e-9)


def test_layout_string_round_trips_through_megatrons_parser() -> None:
    """The balanced counts become a pipeline_model_parallel_layout that the parser reads back."""
    counts = [13, 13, 4, 2]
    text = layout_string(counts)
    assert text == "Et*13|t*13|t*4|t*2L"
    assert parse_layout(text, 4, 1, 32) == counts


def test_balance_by_chip_puts_more_layers_on_the_fast_chip() -> None:
    """Stages on the fast chip take more layers than those on the slow chip; the counts add up."""
    slow, fast = chips()
    counts, names = balance_by_chip("llama3-8b", PAR, train_spec(), mix_of([fast, slow], [2, 2]), 32)
    assert sum(counts) == 32 and names == ["test-fast-chip"] * 2 + ["test-slow-chip"] * 2
    assert min(counts[:2]) > max(counts[2:])
    with pytest.raises(SpecError, match="vpp 1"):
        balance_by_chip("llama3-8b", {**PAR, "vpp": 2, "schedule": "interleaved"}, train_spec(),
                        mix_of([fast, slow], [2, 2]), 32)


def train_spec():
    from oassim.workload import TrainingSpec
    return TrainingSpec(**TRAIN)


def scenario(parallelism, types=(("h100-sxm", 2), ("a100-sxm", 2))):
    return {"name": "mixed", "cluster": {"preset": "dgx-h100-superpod", "accelerators": 32,
                                         "accelerator_types": [{"accelerator": a, "supernodes": n} for a, n in types]},
            "workload": {"model": "llama3-8b", **TRAIN}, "parallelism": parallelism, "network": "analytical"}


def test_balanced_split_shortens_the_iteration_end_to_end() -> None:
    """oassim run on a cluster of 2 H100 and 2 A100 nodes (TP 8, PP 4): the split balanced by chip
    speed (more layers on the H100 stages) gives a shorter iteration than the even 8 + 8 + 8 + 8,
    and the run reports the chip type and layers of every stage."""
    from oassim.analysis.metrics import summary
    from oassim.experiments.runner import run

    cat = load_catalog()
    mix = mix_of([cat.accelerator("h100-sxm"), cat.accelerator("a100-sxm")], [2, 2])
    counts, _ = balance_by_chip("llama3-8b", PAR, train_spec(), mix, 32)
    even = run(scenario(PAR))
    balanced = run(scenario({**PAR, "pipeline_model_parallel_layout": layout_string(counts)}))
    assert even.provenance["pipeline"] == {"stage_accelerators": ["h100-sxm"] * 2 + ["a100-sxm"] * 2,
                                           "stage_layers": [8, 8, 8, 8]}
    assert balanced.provenance["pipeline"]["stage_layers"] == counts
    t_even, t_bal = summary(even)["iteration_time_s"], summary(balanced)["iteration_time_s"]
    assert t_bal < 0.9 * t_even


@pytest.mark.parametrize("types, message", [
    ((("h100-sxm", 2), ("a100-sxm", 1)), r"cluster.accelerator_types: the supernodes of the accelerator types add up "
                                         r"to 3, but the cluster has 4"),
    ((("h100-sxm", 2), ("h100-sxm", 2)), r"cluster.accelerator_types: each accelerator type may be listed once"),
    ((("h900", 2), ("a100-sxm", 2)), r"cluster.accelerator_types\[0\].accelerator: unknown"),
])
def test_bad_accelerator_types_name_the_key(types, message) -> None:
    from oassim.experiments.runner import run

    with pytest.raises(SpecError, match=message):
        run(scenario(PAR, types))


def test_each_stage_is_checked_against_its_own_chips_hbm() -> None:
    """The job fits on 80 GB chips; a chip with the same speed and 1 GB of HBM on stages 2-3 makes
    the compiler refuse it, naming that chip; on stages of the 80 GB chip alone it compiles."""
    slow, _ = chips()
    small = slow.model_copy(update={"name": "test-small-hbm", "hbm_capacity_GB": 1.0})
    compile_plan("llama3-8b", PAR, slow, None, training=TRAIN, accelerators=32, mix=mix_of([slow, small], [4, 0]))
    with pytest.raises(SpecError, match="test-small-hbm"):
        compile_plan("llama3-8b", PAR, slow, None, training=TRAIN, accelerators=32, mix=mix_of([slow, small], [2, 2]))
