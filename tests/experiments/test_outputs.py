"""The run record and output folder: JSON-ready values, all-or-nothing writes."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from oassim.experiments import write_outputs
from oassim.experiments.outputs import jsonable


def test_jsonable_turns_numpy_tuples_and_nan_into_json():
    """numpy scalars and arrays become Python values, tuples lists, NaN and inf None."""
    value = {"a": np.float64(1.5), "b": np.int32(3), "c": (1, 2), "d": np.arange(3), "e": math.nan,
             "f": np.float32("inf"), "g": {"h": np.bool_(True)}, 4: None}
    out = jsonable(value)
    assert out == {"a": 1.5, "b": 3, "c": [1, 2], "d": [0, 1, 2], "e": None, "f": None, "g": {"h": True}, "4": None}
    json.dumps(out, allow_nan=False)


def test_out_path_that_is_a_file_is_refused(fake_sim, scenario_file, tmp_path):
    """--out naming an existing file is an error and the file is untouched."""
    from oassim.experiments import run

    res = run(scenario_file())
    target = tmp_path / "taken"
    target.write_text("mine")
    with pytest.raises(NotADirectoryError):
        write_outputs(res, target)
    assert target.read_text() == "mine"


def test_out_keeps_unrelated_files(fake_sim, scenario_file, tmp_path):
    """Writing into an existing folder replaces only the run's own files."""
    from oassim.experiments import run

    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("keep")
    written = write_outputs(run(scenario_file()), out)
    assert (out / "notes.txt").read_text() == "keep"
    assert {p.name for p in written} < {p.name for p in out.iterdir()}
