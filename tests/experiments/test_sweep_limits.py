"""Sweeps that would be unbounded work are refused before the work, in one line.

Each case runs ``oassim sweep --dry-run`` and expects exit status 2 with one line naming the
sweep file, the key and the cause. Limits are lowered with monkeypatch where the real limit
(1,000,000 points) would make the old behaviour slow to show.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import yaml

from oassim.cli import main
from oassim.experiments import sweep as sweep_mod
from oassim.experiments.sweep import expand_sweep
from tests.experiments.conftest import SWEEP_BASE


def sweep(**kw: Any) -> dict[str, Any]:
    return {"name": "t", "base": SWEEP_BASE, "axes": {"parallelism.tp": [1, 2]},
            "derived": {"parallelism.dp": "accelerators // (tp * pp)"}, **kw}


def refused(tmp_path: Path, capsys: pytest.CaptureFixture, data: Any, key: str) -> str:
    """Assert that the sweep file ``data`` is refused in one line at ``key``; return the message."""
    f = tmp_path / "sweep.yaml"
    f.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    assert main(["sweep", str(f), "--out", str(tmp_path / "store"), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith(f"oassim: error: {f}: {key}: "), err
    return err


def test_repeats_count_against_the_point_limit(tmp_path, capsys, monkeypatch):
    """2 grid points x 6 repeats with a limit of 10 points: refused at repeats, naming the product."""
    monkeypatch.setattr(sweep_mod, "MAX_CANDIDATES", 10)
    err = refused(tmp_path, capsys, sweep(repeats=6), "repeats")
    assert "2 grid points x 6 repeats are 12 points" in err
    err = refused(tmp_path, capsys, sweep(sampling="random", samples=2, repeats=6), "repeats")
    assert "2 samples x 6 repeats are 12 points" in err
    assert len(expand_sweep(sweep(repeats=5)).points) == 10  # at the limit: allowed


def test_random_sampling_of_a_smaller_space_is_refused(tmp_path, capsys):
    """samples: 10 over 2 x 2 discrete values (4 combinations): refused at samples, naming 4."""
    axes = {"parallelism.tp": [1, 2], "workload.micro_batch": [1, 2]}
    err = refused(tmp_path, capsys, sweep(sampling="random", samples=10, axes=axes), "samples")
    assert "10 distinct points asked, but the axes have only 4 combinations" in err
    plan = expand_sweep(sweep(sampling="random", samples=4, axes=axes))  # the whole space: all 4 drawn
    assert sorted((p.values["parallelism.tp"], p.values["workload.micro_batch"]) for p in plan.points) == [
        (1, 1), (1, 2), (2, 1), (2, 2)]


def test_integer_ranges_count_their_integers(tmp_path, capsys):
    """An integer low/high axis of [1, 3] has 3 values: 2 x 3 = 6 combinations cannot give 7 samples."""
    axes = {"parallelism.tp": [1, 2], "workload.micro_batch": {"low": 1, "high": 3, "integer": True}}
    err = refused(tmp_path, capsys, sweep(sampling="random", samples=7, axes=axes), "samples")
    assert "only 6 combinations" in err


@pytest.mark.parametrize("axis, words", [
    ({"low": 32, "high": 4096, "num": 10**12}, "num is 1,000,000,000,000"),
    # start f^k < stop for k < ceil(ln(stop / start) / ln f)
    ({"range": [1, 10], "factor": 1.0000001},
     f"the range has {math.ceil(math.log(10) / math.log(1.0000001)):,} values"),
    ({"range": [0, 10**12]}, "the range has 1,000,000,000,000 values"),
], ids=["num", "factor", "step"])
def test_huge_ranges_are_refused_before_they_are_made(tmp_path, capsys, axis, words):
    """A num of 10**12, or a range of millions of values: refused at the axis without making the values."""
    err = refused(tmp_path, capsys, sweep(axes={"workload.global_batch": axis}), "axes.workload.global_batch")
    assert words in err and "the most is 1,000,000" in err


@pytest.mark.parametrize("text, words", [
    ("[.nan, 2]", "value 0: nan is not a finite number"),
    ("[2, .inf]", "value 1: inf is not a finite number"),
    ("[1.0e+999]", "value 0: inf is not a finite number"),
    ("[{a: -.inf}]", "value 0: -inf is not a finite number"),
], ids=["nan", "inf", "overflow", "nested"])
def test_nan_and_infinite_values_are_refused(tmp_path, capsys, text, words):
    """NaN or infinite axis values (which a constraint would silently drop) are refused at the axis."""
    data = yaml.safe_dump(sweep(constraints=["tp <= 8"]), sort_keys=False)
    data = data.replace("parallelism.tp:\n  - 1\n  - 2\n", f"parallelism.tp: {text}\n")
    assert f"parallelism.tp: {text}" in data
    err = refused(tmp_path, capsys, data, "axes.parallelism.tp")
    assert words in err
