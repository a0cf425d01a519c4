"""Booleans, strings, infinities and NaN are refused in every numeric and flag field of a part."""

from __future__ import annotations

import pytest

from oassim.errors import SpecError
from oassim.hardware import Catalog, load_catalog
from oassim.specio import validate
from oassim.hardware.interconnect import InterconnectSpec

LINK = "l:\n  kind: scale_up\n  lane_rate_Gbps: 100\n  lanes: 2\n  medium: pcb\n"
MODULE = "m:\n  rate_Gbps: 400\n  technology: dsp\n"
SWITCH = "s:\n  port_configs: [{ports: 64, rate_Gbps: 400}]\n"


def _error(write_presets, filename: str, text: str) -> str:
    folder = write_presets(filename, text)
    with pytest.raises(SpecError) as info:
        load_catalog(extra_dirs=[folder])
    return str(info.value)


@pytest.mark.parametrize(
    "filename,text,path,allowed",
    [
        ("links.yaml", LINK + "  in_network_reduction: 'yes'\n", "l.in_network_reduction", "valid boolean"),
        ("links.yaml", LINK + "  in_network_reduction: 1\n", "l.in_network_reduction", "valid boolean"),
        ("optics.yaml", MODULE + "  ports: true\n", "m.ports", "valid integer"),
        ("optics.yaml", MODULE + "  ports: 2.0\n", "m.ports", "valid integer"),
        ("optics.yaml", MODULE + "  reach_m: .inf\n", "m.reach_m", "finite number"),
        ("switches.yaml", SWITCH + "  in_network_reduction: 'true'\n", "s.in_network_reduction", "valid boolean"),
    ],
)
def test_lax_values_in_parts_are_refused(write_presets, filename, text, path, allowed) -> None:
    """A bool, float or string where a strict count or flag is due fails at its key path (lax pydantic took it)."""
    msg = _error(write_presets, filename, text)
    assert f"{filename}: {path}: " in msg and allowed in msg and "\n" not in msg


@pytest.mark.parametrize("value,allowed", [("true", "valid number"), ('"400"', "valid number"),
                                           (".nan", "finite number"), ("-.inf", "finite number")])
def test_lane_rate_must_be_a_finite_number(write_presets, value, allowed) -> None:
    """lane_rate_Gbps takes a finite positive number only: not a bool, a numeric string, NaN or infinity."""
    msg = _error(write_presets, "links.yaml", LINK.replace("lane_rate_Gbps: 100", f"lane_rate_Gbps: {value}"))
    assert "l.lane_rate_Gbps" in msg and allowed in msg


def test_interconnect_switch_flag_is_strict(catalog: Catalog) -> None:
    """An interconnect's in_network_reduction is a real boolean, not the string 'yes' or the number 1."""
    spec = {"name": "x", "domain": "scale_up", "lane_rate_Gbps": 200, "lanes_per_port": 2,
            "switch": {"radix": 64, "in_network_reduction": 1}}
    with pytest.raises(SpecError, match=r"switch\.in_network_reduction: Input should be a valid boolean"):
        validate(InterconnectSpec, spec, source="spec.yaml")
    spec["switch"] = {"radix": True}
    with pytest.raises(SpecError, match=r"switch\.radix: Input should be a valid integer"):
        validate(InterconnectSpec, spec, source="spec.yaml")
