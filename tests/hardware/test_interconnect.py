"""The interconnect spec file: closed forms, validation, schema and the example specs."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from oassim.errors import SpecError
from oassim.hardware import InterconnectSpec, json_schema, load_catalog, load_interconnect

SPECS = Path(__file__).resolve().parents[2] / "experiments" / "specs"
EXAMPLES = sorted(SPECS.glob("*.yaml"))


def spec(**changes: Any) -> dict[str, Any]:
    """A minimal valid scale-up spec mapping with ``changes`` applied."""
    base = {"name": "t", "domain": "scale_up", "lane_rate_Gbps": 100.0, "lanes_per_port": 4,
            "switch": {"radix": 64}}
    return {**base, **changes}


def resolve(data: dict[str, Any]) -> InterconnectSpec:
    return load_catalog().resolve_interconnect(data, source="spec.yaml")


def test_effective_bandwidth_closed_form() -> None:
    """64b/66b with a 46-byte header at a 256-byte MTU: efficiency 64/66 * 256/302, port payload to match."""
    s = resolve(spec(encoding="64b/66b", header_bytes=46, mtu_bytes=256))
    eff = 64 / 66 * 256 / (256 + 46)
    assert s.efficiency == pytest.approx(eff, rel=1e-12)
    assert s.port_data_rate_Gbps == pytest.approx(100 * 4 * 64 / 66)
    assert s.port_payload_Bps == pytest.approx(100e9 * 4 * eff / 8)
    link = s.link_technology("l")
    assert link.bandwidth_Bps * link.efficiency == pytest.approx(s.port_payload_Bps)


@pytest.mark.parametrize("code, value", [("128b/130b", 128 / 130), ("200/212.5", 200 / 212.5), (0.9, 0.9),
                                         (None, 1.0)])
def test_encoding_forms(code: Any, value: float) -> None:
    """Encoding is a data/signal code or a fraction; unset means the lane rate is a data rate."""
    s = resolve(spec(encoding=code))
    assert s.encoding_efficiency == pytest.approx(value)
    assert ("encoding" in s.unset_fields()) == (code is None)


def test_explicit_protocol_efficiency_wins_and_conflicts_are_errors() -> None:
    """protocol_efficiency alone is used as given; with header and MTU too it is a one-line error."""
    assert resolve(spec(protocol_efficiency=0.93)).port_payload_Bps == pytest.approx(400e9 / 8 * 0.93)
    assert "protocol_efficiency (or header_bytes with mtu_bytes)" in resolve(spec(header_bytes=10)).unset_fields()
    with pytest.raises(SpecError, match=r"^spec.yaml: protocol_efficiency: give protocol_efficiency or"):
        resolve(spec(protocol_efficiency=0.9, header_bytes=10, mtu_bytes=256))


@pytest.mark.parametrize("changes, where", [
    ({"switch": {"radix": 129, "capacity_Tbps": 51.2}}, r"switch\.radix: 129 ports x 400 Gb/s = 51\.6 Tb/s"),
    ({"encoding": "66b/64b"}, r"encoding: .*more data bits than it signals"),
    ({"lanes_per_port": 0}, r"lanes_per_port: "),
    ({"switch": {"radix": 1}}, r"switch\.radix: "),
    ({"reach": [{"name": "a", "medium": "copper"}, {"name": "a", "medium": "optical"}]}, r"reach: .*unique"),
    ({"lane_rate_Gbps": "400"}, r"lane_rate_Gbps: "),
])
def test_impossible_values_name_their_key(changes: dict[str, Any], where: str) -> None:
    """Impossible values are one-line SpecErrors that start with the file and the key."""
    with pytest.raises(SpecError, match=rf"^spec.yaml: {where}") as info:
        resolve(spec(**changes))
    assert "\n" not in str(info.value)


def test_single_tier_domain_and_reach_choice() -> None:
    """The single-tier domain is the radix capped by max_domain_size; reach picks the first class that covers."""
    reach = [{"name": "dac", "medium": "copper", "reach_m": 3},
             {"name": "sr", "medium": "optical", "reach_m": 50, "module": "osfp-400g-sr4"}]
    s = resolve(spec(max_domain_size=48, reach=reach))
    assert s.max_single_tier_domain == 48
    assert resolve(spec()).max_single_tier_domain == 64
    assert s.reach_class(2)[0].name == "dac" and s.reach_class(30)[0].name == "sr"
    assert s.reach_class(30)[0].module.power_W == pytest.approx(9)
    assert s.reach_class(100) == (None, False)


def test_schema_export_is_json_with_required_fields() -> None:
    """The interconnect JSON Schema is valid JSON, forbids unknown keys and requires the core fields."""
    schema = json.loads(json.dumps(json_schema("interconnect")))
    assert set(schema["required"]) == {"name", "domain", "lane_rate_Gbps", "lanes_per_port", "switch"}
    assert schema["additionalProperties"] is False
    assert "1e9 bit/s" in schema["properties"]["lane_rate_Gbps"]["description"]
    assert schema["$defs"]["InterconnectSwitch"]["required"] == ["radix"]
    assert {"hop_latency_ns", "power_pJ_per_bit", "reach", "max_domain_size"} <= set(schema["properties"])


def test_four_example_specs_validate() -> None:
    """The NVLink 5, UALink, SUE and OISA examples validate, with the per-port rates the reference gives."""
    specs = {s.name: s for s in map(load_interconnect, EXAMPLES)}
    assert set(specs) == {"nvlink5", "ualink-200g-1.0", "sue-tomahawk-ultra", "oisa-gen1"}
    assert specs["nvlink5"].port_payload_Bps == pytest.approx(50e9)  # A2-1: 2 lanes x 25 GB/s
    assert specs["ualink-200g-1.0"].port_data_rate_Gbps == pytest.approx(400)  # x2 of 200 Gb/s data
    assert specs["ualink-200g-1.0"].port_payload_Bps == pytest.approx(400e9 / 8 * 0.93)
    assert specs["sue-tomahawk-ultra"].port_data_rate_Gbps == pytest.approx(100)
    assert specs["oisa-gen1"].ports_per_accelerator * specs["oisa-gen1"].port_data_rate_Gbps == 3200


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_figures_cite_reference_sources(path: Path, reference_source_ids: set[str]) -> None:
    """Every figure line of an example spec cites a source id of docs/sources.md or says it is derived."""
    s = load_interconnect(path)
    cited = set(s.sources) | set(s.switch.sources)
    assert cited and cited <= reference_source_ids
    for line in path.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^\s*[a-zA-Z_]+_(Gbps|Tbps|ns|m|bytes|W|USD)?\w*:\s*[\d.]+", line)
        if m and not line.lstrip().startswith("#"):
            ids = set(re.findall(r"\[(S\d+[a-z]?)\]", line))
            assert ids and ids <= reference_source_ids, f"{path.name}: figure without a source id: {line.strip()}"
