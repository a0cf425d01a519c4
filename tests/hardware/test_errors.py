"""Bad preset files and bad names give one-line SpecErrors naming the file and key path."""

from __future__ import annotations

import pytest

from oassim.errors import SpecError
from oassim.hardware import Catalog, load_catalog

GOOD_LINK = "  kind: scale_up\n  lane_rate_Gbps: 100\n  lanes: 2\n  medium: pcb\n"
GOOD_ACC = "  vendor: v\n  bf16_dense_TFLOPS: 1\n  hbm_capacity_GB: 1\n  hbm_bandwidth_TBps: 3\n"


def _link(name: str = "l", old: str = "", new: str = "", extra: str = "") -> str:
    """YAML of one link preset, with ``old`` replaced by ``new`` and ``extra`` lines added."""
    body = GOOD_LINK.replace(old, new) if old else GOOD_LINK
    return f"{name}:\n{body}{extra}"


def _load_error(write_presets, filename: str, text: str) -> str:
    folder = write_presets(filename, text)
    with pytest.raises(SpecError) as info:
        load_catalog(extra_dirs=[folder])
    msg = str(info.value)
    assert "\n" not in msg
    assert filename in msg
    return msg


def test_zero_or_negative_lanes(write_presets) -> None:
    """Negative or zero lanes: the message names file, preset.key, the bound and the value."""
    msg = _load_error(write_presets, "links.yaml", _link("nvlink4", "lanes: 2", "lanes: -2"))
    assert msg.endswith("links.yaml: nvlink4.lanes: Input should be greater than 0 (got -2)")
    msg = _load_error(write_presets, "links.yaml", _link("nvlink4", "lanes: 2", "lanes: 0"))
    assert "nvlink4.lanes" in msg and "greater than 0" in msg


def test_zero_or_negative_bandwidth(write_presets) -> None:
    """A zero lane rate or a negative HBM bandwidth is rejected at its key path."""
    msg = _load_error(write_presets, "links.yaml", _link("l", "_Gbps: 100", "_Gbps: 0"))
    assert "l.lane_rate_Gbps" in msg and "greater than 0" in msg
    acc = "x:\n" + GOOD_ACC.replace("TBps: 3", "TBps: -3")
    msg = _load_error(write_presets, "accelerators.yaml", acc)
    assert "x.hbm_bandwidth_TBps" in msg and "(got -3)" in msg


def test_unknown_key_lists_allowed(write_presets) -> None:
    """An unknown key is named, with a close match and the allowed keys."""
    msg = _load_error(write_presets, "links.yaml", _link(extra="  lane_rat_Gbps: 3\n"))
    assert "l.lane_rat_Gbps" in msg and "unknown key" in msg
    assert "did you mean lane_rate_Gbps" in msg
    assert "allowed:" in msg and "medium" in msg


def test_unitless_key_asks_for_a_unit(write_presets) -> None:
    """A key without its unit suffix says a unit is required and which spelling to use."""
    msg = _load_error(write_presets, "links.yaml", _link(extra="  latency: 5\n"))
    assert "l.latency" in msg and "a unit is required: use latency_ns" in msg
    acc = "x:\n" + GOOD_ACC.replace("hbm_bandwidth_TBps", "hbm_bandwidth")
    msg = _load_error(write_presets, "accelerators.yaml", acc)
    assert "x.hbm_bandwidth" in msg and "use hbm_bandwidth_TBps" in msg
    sw = "s:\n  port_configs: [{ports: 4, rate: 400}]\n"
    msg = _load_error(write_presets, "switches.yaml", sw)
    assert "s.port_configs[0].rate" in msg and "use rate_Gbps" in msg


def test_wrong_type(write_presets) -> None:
    """A string where a number belongs (even "100") and a bool are type errors."""
    msg = _load_error(write_presets, "links.yaml", _link("l", "lanes: 2", "lanes: two"))
    assert "l.lanes" in msg and "valid integer" in msg
    msg = _load_error(write_presets, "links.yaml", _link("l", "_Gbps: 100", '_Gbps: "100"'))
    assert "l.lane_rate_Gbps" in msg and "valid number" in msg
    msg = _load_error(write_presets, "optics.yaml", "m:\n  rate_Gbps: true\n  technology: dac\n")
    assert "m.rate_Gbps" in msg


def test_unknown_enum_value_lists_allowed(write_presets) -> None:
    """An unknown medium or module technology lists the allowed values."""
    msg = _load_error(write_presets, "links.yaml", _link("l", "medium: pcb", "medium: fibre"))
    assert "l.medium" in msg and "'copper', 'optical', 'backplane' or 'pcb'" in msg
    msg = _load_error(write_presets, "optics.yaml", "m:\n  rate_Gbps: 400\n  technology: aoc\n")
    assert "m.technology" in msg and "'dsp'" in msg and "'aec'" in msg


def test_other_impossible_values(write_presets) -> None:
    """Efficiency above 1, a bad source id, missing keys and overfull port configs are rejected."""
    msg = _load_error(write_presets, "links.yaml", _link(extra="  encoding_efficiency: 1.2\n"))
    assert "l.encoding_efficiency" in msg and "less than or equal to 1" in msg
    msg = _load_error(write_presets, "links.yaml", _link(extra="  sources: [hw.md]\n"))
    assert "l.sources[0]" in msg
    msg = _load_error(write_presets, "links.yaml", _link("l", "  lane_rate_Gbps: 100\n", "\n"))
    assert "l.lane_rate_Gbps" in msg and "required key is missing" in msg
    sw = "s:\n  capacity_Tbps: 1\n  port_configs: [{ports: 64, rate_Gbps: 400}]\n"
    assert "exceeds capacity_Tbps" in _load_error(write_presets, "switches.yaml", sw)
    sw = "s:\n  port_configs: [{ports: 64}]\n"
    assert "rate_Gbps is required" in _load_error(write_presets, "switches.yaml", sw)
    sw = "s:\n  port_configs: []\n"
    assert "s.port_configs" in _load_error(write_presets, "switches.yaml", sw)


def test_malformed_files(write_presets) -> None:
    """A non-mapping file, a non-mapping preset, a clashing name and bad YAML name the file."""
    assert "expected a mapping" in _load_error(write_presets, "links.yaml", "- a\n- b\n")
    assert "l: expected a mapping" in _load_error(write_presets, "links.yaml", "l: 3\n")
    msg = _load_error(write_presets, "links.yaml", _link(extra="  name: other\n"))
    assert "l.name" in msg
    assert "YAML syntax error" in _load_error(write_presets, "links.yaml", "l: [\n")


def test_unknown_preset_name_lists_known(catalog: Catalog) -> None:
    """An unknown name lists the known presets and close matches."""
    with pytest.raises(SpecError) as info:
        catalog.link("nvlink6")
    msg = str(info.value)
    assert "did you mean" in msg and "nvlink5" in msg and "known:" in msg and "ib-ndr" in msg
    with pytest.raises(SpecError, match="known: .*tomahawk-5"):
        catalog.switch("tomahawk-7")
    with pytest.raises(SpecError, match="allowed: accelerator, link, module, switch"):
        catalog.names("cable")


def test_resolve_reports_where_the_value_came_from(catalog: Catalog) -> None:
    """Names and inline mappings from a cluster file are reported with its file and key path."""
    src = "cluster.yaml"
    with pytest.raises(SpecError, match=r"^cluster.yaml: scale_out.switch: unknown switch preset"):
        catalog.resolve_switch("q2", source=src, prefix="scale_out.switch")
    with pytest.raises(SpecError, match=r"^cluster.yaml: scale_up.link.lanes: "):
        inline = {"kind": "scale_up", "lane_rate_Gbps": 1, "lanes": 0, "medium": "pcb"}
        catalog.resolve_link(inline, source=src, prefix="scale_up.link")
    spec = {"name": "x", "domain": "scale_up", "lane_rate_Gbps": 200, "lanes_per_port": 2,
            "switch": {"radix": 72}, "reach": [{"name": "c", "medium": "copper", "module": "dac-8OOg"}]}
    with pytest.raises(SpecError, match=r"^spec.yaml: reach\[0\].module: unknown module preset"):
        catalog.resolve_interconnect(spec, source="spec.yaml")
    with pytest.raises(SpecError, match="expected a module preset name or a mapping"):
        catalog.resolve_module(3)
