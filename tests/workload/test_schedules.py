"""Pipeline schedules: warm-up counts, F before B, every step exactly once, the interleaved order."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oassim.workload.schedules import SCHEDULES, interleaved, one_f_one_b, warmup_steps


def _fmt(steps):
    return " ".join(f"{s.kind}{s.microbatch}.{s.chunk}" for s in steps)


@pytest.mark.parametrize("pp, m", [(1, 4), (4, 8), (4, 2), (8, 16)])
def test_1f1b_warmup_is_pp_minus_stage_minus_1(pp, m):
    """1F1B: stage i runs min(pp - i - 1, m) forwards before its first backward, then
    alternates F/B, and ends with the cool-down backwards (Narayanan et al. 2021 §2.2.1)."""
    for stage in range(pp):
        steps = one_f_one_b(pp, stage, m)
        first_b = next(i for i, s in enumerate(steps) if s.kind == "B")
        warm = min(pp - stage - 1, m)
        assert warmup_steps("1f1b", pp, stage, m) == warm
        assert first_b == warm + (1 if warm < m else 0)
        steady = steps[warm: warm + 2 * (m - warm)]
        assert [s.kind for s in steady] == ["F", "B"] * (m - warm)


@settings(max_examples=40, deadline=None)
@given(pp=st.integers(1, 8), groups=st.integers(1, 4), vpp=st.integers(1, 4),
       name=st.sampled_from(["1f1b", "interleaved"]))
def test_each_step_once_and_forward_before_backward(pp, groups, vpp, name):
    """Every (F|B, micro-batch, chunk) appears exactly once per stage, and each micro-batch's
    forward of a chunk precedes its backward."""
    if name == "1f1b":
        vpp = 1
    m = pp * groups
    for stage in range(pp):
        steps = SCHEDULES[name](pp, stage, m, vpp)
        c = Counter((s.kind, s.microbatch, s.chunk) for s in steps)
        assert len(steps) == 2 * m * vpp and set(c.values()) == {1}
        pos = {(s.kind, s.microbatch, s.chunk): i for i, s in enumerate(steps)}
        for mb in range(m):
            for ch in range(vpp):
                assert pos[("F", mb, ch)] < pos[("B", mb, ch)]
        # a micro-batch visits the chunks in order forward and in reverse order backward
        for mb in range(m):
            f = [pos[("F", mb, ch)] for ch in range(vpp)]
            b = [pos[("B", mb, ch)] for ch in range(vpp)]
            assert f == sorted(f) and b == sorted(b, reverse=True)


def test_interleaved_order_matches_narayanan_fig4():
    """pp 4, 8 micro-batches, 2 chunks, first device: Narayanan et al. 2021 Fig. 4 (bottom):
    forwards 1-4 on chunk 1, 1-4 on chunk 2, then 5 and 6 on chunk 1 (10 warm-up steps =
    2(p-1) + (v-1)p), then 1F1B steady state starting with micro-batch 1's backward on chunk 2."""
    steps = interleaved(4, 0, 8, 2)
    expected = ("F0.0 F1.0 F2.0 F3.0 F0.1 F1.1 F2.1 F3.1 F4.0 F5.0 "      # warm-up (10)
                "F6.0 B0.1 F7.0 B1.1 F4.1 B2.1 F5.1 B3.1 F6.1 B0.0 F7.1 B1.0 "  # steady 1F1B
                "B2.0 B3.0 B4.1 B5.1 B6.1 B7.1 B4.0 B5.0 B6.0 B7.0")          # cool-down
    assert _fmt(steps) == expected
    assert warmup_steps("interleaved", 4, 0, 8, 2) == 10
    assert warmup_steps("interleaved", 4, 3, 8, 2) == 4


def test_interleaved_all_warmup_when_m_equals_pp():
    """With m == pp Megatron runs every forward first."""
    steps = interleaved(4, 1, 4, 2)
    assert [s.kind for s in steps] == ["F"] * 8 + ["B"] * 8


def test_interleaved_needs_microbatches_divisible_by_pp():
    """The interleaved schedule refuses m % pp != 0."""
    with pytest.raises(ValueError, match="divisible by pp"):
        interleaved(4, 0, 6, 2)
