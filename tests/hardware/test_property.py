"""Property tests: any mutation of a valid spec either validates or fails as one SpecError line."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oassim.errors import SpecError
from oassim.hardware import Catalog, HardwarePart

VALID = {
    "accelerator": {
        "vendor": "NVIDIA", "bf16_dense_TFLOPS": 989, "fp8_dense_TFLOPS": 1979,
        "hbm_capacity_GB": 80, "hbm_bandwidth_TBps": 3.35, "power_W": 700, "scaleup_links": 18,
        "scaleup_link_GBps": 25, "scaleup_fabric": "NVLink 4", "scaleout_nic_ports": 1,
        "scaleout_port_Gbps": 400, "sources": ["S1"],
    },
    "link": {
        "kind": "scale_up", "lane_rate_Gbps": 212.5, "lanes": 4, "encoding_efficiency": 0.94,
        "header_bytes": 10, "mtu_bytes": 256, "latency_ns": 5, "medium": "copper", "reach_m": 4,
    },
    "switch": {
        "capacity_Tbps": 51.2, "port_configs": [{"ports": 64, "rate_Gbps": 800}], "latency_ns": 250,
    },
    "module": {"rate_Gbps": 800, "technology": "lpo", "power_W": 8.5, "reach_m": 50},
}

_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.one_of(st.text(max_size=6), st.integers()), inner, max_size=3),
    ),
    max_leaves=6,
)
_known_keys = sorted({k for v in VALID.values() for k in v})
_keys = st.one_of(st.text(max_size=15), st.integers(), st.sampled_from(_known_keys))


@st.composite
def mutated(draw: Any) -> tuple[str, dict[Any, Any]]:
    kind = draw(st.sampled_from(sorted(VALID)))
    data: dict[Any, Any] = dict(VALID[kind])
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        if data and draw(st.booleans()) and draw(st.booleans()):
            data.pop(draw(st.sampled_from(sorted(data, key=repr))))
        else:
            data[draw(_keys)] = draw(_values)
    return kind, data


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutations_validate_or_give_one_line_spec_error(case: tuple[str, dict[Any, Any]]) -> None:
    """A mutated spec validates or raises a one-line SpecError that starts with its location."""
    kind, data = case
    catalog = Catalog(parts={})
    try:
        part = catalog.resolve(kind, data, source="cluster.yaml", prefix="part")
    except SpecError as exc:
        msg = str(exc)
        assert "\n" not in msg and "\r" not in msg
        assert msg.startswith("cluster.yaml: part")
    else:
        assert isinstance(part, HardwarePart)
        assert all(getattr(part, f) is None for f in part.unset_fields())


_INTERCONNECT = {"name": "x", "domain": "scale_up", "lane_rate_Gbps": 200, "lanes_per_port": 2,
                 "encoding": "64b/66b", "header_bytes": 46, "mtu_bytes": 256, "switch": {"radix": 72},
                 "reach": [{"name": "c", "medium": "copper", "reach_m": 2}]}


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(
    st.sampled_from(["domain", "lane_rate_Gbps", "lanes_per_port", "encoding", "switch", "reach",
                     "max_domain_size", "protocol_efficiency"]), _values, max_size=4
))
def test_interconnect_mutations_give_spec_error(data: dict[str, Any]) -> None:
    """Random edits of an interconnect spec resolve or raise a one-line SpecError naming the file."""
    catalog = Catalog(parts={})
    try:
        catalog.resolve_interconnect({**_INTERCONNECT, **data}, source="spec.yaml")
    except SpecError as exc:
        assert "\n" not in str(exc) and str(exc).startswith("spec.yaml: ")
