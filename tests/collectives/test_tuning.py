"""The tuning file: validated like every spec (one-line errors naming the key path)."""

from __future__ import annotations

import pytest

from oassim.collectives import CollectiveEngine, Tuning, load_tuning
from oassim.collectives.tuning import load_tuning_file, profile_dict
from oassim.errors import SpecError
from tests.collectives.conftest import preset_fabric

GOOD = """default: p
profiles:
  p:
    launch_overhead_us: 1
    step_overhead_us: 2
    in_network_efficiency: 0.5
    link_efficiency:
      - {technologies: [nvlink3], value: 0.25}
"""


def test_repository_profile_loads():
    """The shipped file has the fitted NCCL 2.18 profile as default, with its fit record."""
    t = load_tuning()
    assert t.name == "nccl-2.18" and 0 < t.link_efficiency["nvlink4"] < 1 and t.step_s > 0
    assert load_tuning_file().profiles["nccl-2.18"].fit.fit_rows
    assert profile_dict(t)["step_overhead_us"] == pytest.approx(t.step_s * 1e6)


def test_units_and_families(tmp_path):
    """us become seconds; a family's value applies to each of its technologies."""
    p = tmp_path / "t.yaml"
    p.write_text(GOOD)
    t = load_tuning(path=p)
    assert t.launch_s == pytest.approx(1e-6) and t.step_s == pytest.approx(2e-6)
    assert t.efficiency(("nvlink3",)) == 0.25 and t.efficiency(("other",)) == 1.0
    assert t.efficiency(("nvlink3", "other")) == 0.25


@pytest.mark.parametrize(
    "old,new,needle",
    [
        ("value: 0.25", "value: 1.5", "value"),
        ("step_overhead_us: 2", "step_overhead: 2", "step_overhead"),
        ("launch_overhead_us: 1", "launch_overhead_us: -1", "launch_overhead_us"),
    ],
)
def test_bad_files(tmp_path, old, new, needle):
    """An efficiency above 1, a key without its unit, a negative overhead: one line naming the key."""
    p = tmp_path / "t.yaml"
    p.write_text(GOOD.replace(old, new))
    with pytest.raises(SpecError) as info:
        load_tuning(path=p)
    msg = str(info.value)
    assert "\n" not in msg and needle in msg and "t.yaml" in msg


def test_unknown_profile_and_algorithm():
    """Unknown profile names list the known ones; unknown auto algorithms are refused."""
    with pytest.raises(SpecError, match="known: .*nccl-2.18"):
        load_tuning("nccl-9")
    assert load_tuning("ideal") == Tuning.ideal()
    with pytest.raises(SpecError, match="unknown algorithm"):
        CollectiveEngine(preset_fabric("dgx-a100-superpod", 8), tuning=Tuning("x", auto_algorithms=("ring", "nvls")))
