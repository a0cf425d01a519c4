"""JSON Schema export of every hardware spec kind."""

from __future__ import annotations

import json

import pytest

from oassim.errors import SpecError
from oassim.hardware import json_schema


@pytest.mark.parametrize("kind", ["accelerator", "link", "module", "switch", "interconnect"])
def test_schema_has_properties(kind: str) -> None:
    """Each kind's schema is a JSON-serialisable dict with properties and no extra keys allowed."""
    schema = json_schema(kind)
    assert isinstance(schema, dict) and schema["properties"]
    assert schema.get("additionalProperties") is False
    json.dumps(schema)


def test_schema_keeps_units_in_names() -> None:
    """Published field names carry their units (docs/architecture.md decision 1)."""
    props = json_schema("accelerator")["properties"]
    units = {"bf16_dense_TFLOPS", "hbm_bandwidth_TBps", "scaleup_link_GBps", "scaleout_port_Gbps"}
    assert units <= set(props)
    assert "1e12 FLOP/s" in props["bf16_dense_TFLOPS"]["description"]
    assert "latency_ns" in json_schema("link")["properties"]


def test_unknown_schema_kind() -> None:
    """An unknown kind is a SpecError listing the kinds."""
    with pytest.raises(SpecError, match="allowed: accelerator, link, module, switch, interconnect"):
        json_schema("cable")
