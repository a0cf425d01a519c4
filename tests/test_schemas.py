"""Published JSON Schemas (`oassim schema KIND`): valid draft 2020-12, fully described, and they
accept every shipped spec file and reject known-bad ones."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any, Iterator

import jsonschema
import pytest
import yaml

from oassim.cli import main
from oassim.cli.evaluate import SCHEMA_KINDS, schema

ROOT = Path(__file__).resolve().parents[1]
HARDWARE = {"accelerator": "accelerators.yaml", "link": "links.yaml", "module": "optics.yaml",
            "switch": "switches.yaml"}


def _validator(kind: str) -> Any:
    return jsonschema.Draft202012Validator(schema(kind))


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _readme_cluster() -> dict[str, Any]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split("### A cluster file", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    return yaml.safe_load(block)


def _shipped() -> Iterator[tuple[str, str, Any]]:
    """(kind, label, document) for every shipped spec file (hardware presets entry by entry)."""
    for kind, pattern in (("cluster", "topologies/*.yaml"), ("model", "workloads/*.yaml"),
                          ("scenario", "experiments/*.yaml"), ("interconnect", "experiments/specs/*.yaml"),
                          ("proposal", "experiments/proposals/*.yaml"),
                          ("sweep", "experiments/sweeps/*.yaml")):
        for p in sorted(ROOT.glob(pattern)):
            yield kind, str(p.relative_to(ROOT)), _yaml(p)
    for kind, filename in HARDWARE.items():
        for name, entry in _yaml(ROOT / "topologies" / "hardware" / filename).items():
            yield kind, f"{filename}:{name}", entry
    yield "cluster", "README.md cluster example", _readme_cluster()


SHIPPED = list(_shipped())


def test_every_kind_of_shipped_file_is_covered():
    """The shipped files exercise every schema kind, and there are as many as the folders hold."""
    assert {k for k, _, _ in SHIPPED} == set(SCHEMA_KINDS)
    assert sum(k == "cluster" for k, _, _ in SHIPPED) == len(list(ROOT.glob("topologies/*.yaml"))) + 1


@pytest.mark.parametrize("kind,label,doc", SHIPPED, ids=[f"{k}-{lab}" for k, lab, _ in SHIPPED])
def test_shipped_file_validates(kind, label, doc):
    """Every shipped spec file (and the README's cluster example) is valid against its published schema."""
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in _validator(kind).iter_errors(doc)]
    assert errors == [], label


@pytest.mark.parametrize("kind", SCHEMA_KINDS)
def test_schema_is_a_published_draft_2020_12_schema(kind):
    """Each schema passes the draft 2020-12 meta-schema and carries $schema, $id, a title and a format version."""
    s = schema(kind)
    jsonschema.Draft202012Validator.check_schema(s)
    assert s["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert re.fullmatch(rf"urn:oassim:schema:{kind}:\d+", s["$id"])
    assert s["x-oassim-format-version"] == s["$id"].rsplit(":", 1)[1]
    assert s["title"].strip()
    json.dumps(s)


def _undescribed(node: Any, where: str) -> Iterator[str]:
    if isinstance(node, dict):
        props = node.get("properties")
        if isinstance(props, dict):
            for key, prop in props.items():
                if not (isinstance(prop, dict) and str(prop.get("description", "")).strip()):
                    yield f"{where}.properties.{key}"
        for key, value in node.items():
            yield from _undescribed(value, f"{where}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _undescribed(value, f"{where}[{i}]")


@pytest.mark.parametrize("kind", SCHEMA_KINDS)
def test_every_property_at_every_level_is_described(kind):
    """No property anywhere in a schema (nested $defs and family geometries included) lacks a description."""
    assert list(_undescribed(schema(kind), kind)) == []


def test_cluster_schema_carries_each_family_geometry():
    """The cluster schema checks `spec` against the geometry of the family it names (all six families)."""
    from oassim.topology.registry import FAMILIES

    text = json.dumps(schema("cluster"))
    for name, (spec_model, _) in FAMILIES.items():
        assert f'"const": "{name}"' in text
        for field in spec_model.model_fields:
            assert f'"{field}"' in text, (name, field)


def _edit(doc: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    *head, last = path.split(".")
    d = doc
    for key in head:
        d = d[key]
    d[last] = value
    return doc


GOOD_CLUSTER = _yaml(ROOT / "topologies" / "dgx-h100-superpod.yaml")


@pytest.mark.parametrize(
    "path,value",
    [
        ("accelerators", "64"),  # a numeric string
        ("accelerators", True),  # a bool
        ("accelerators", 0),  # not positive
        ("scale_out.links.host.length_m", -1),
        ("scale_out.links.host.module", ["osfp-400g-sr4"]),  # neither a name nor a mapping
        ("scale_out.links.host.medium", "glass"),
        ("scale_out.switches.leaf", 64),  # a switch role is a name or a mapping
        ("scale_out.spec", {"radix": 64}),  # not a fat_tree geometry key
        ("scale_out.spec", {"tiers": 4}),
        ("supernode.spec", {"size": 8, "switches": 4}),  # links_per_accelerator is required
        ("supernode.family", "hypercube"),
        ("accelerator", {"vendor": "x", "bf16_dense_TFLOPS": "990"}),  # inline part, string figure
        ("colour", "blue"),  # unknown key
    ],
)
def test_bad_cluster_documents_are_rejected(path, value):
    """The cluster schema rejects each planted mistake in an otherwise valid preset."""
    assert _validator("cluster").is_valid(GOOD_CLUSTER)
    assert not _validator("cluster").is_valid(_edit(GOOD_CLUSTER, path, value))


@pytest.mark.parametrize(
    "kind,doc",
    [
        ("link", {"kind": "scale_up", "lane_rate_Gbps": True, "lanes": 2, "medium": "pcb"}),
        ("module", {"rate_Gbps": 400, "technology": "dsp", "ports": 1.5}),
        ("switch", {"port_configs": []}),
        ("interconnect", {"name": "x", "domain": "scale_up", "lane_rate_Gbps": 200, "lanes_per_port": 2,
                          "switch": {"radix": 1}}),
        ("model", {"layers": 2, "hidden": 64, "ffn_hidden": 256, "heads": 4, "vocab": 100, "activation": "relu"}),
        ("scenario", {"name": "x", "cluster": {"preset": "gb200-nvl72"}, "workload": {"model": "llama3-8b"},
                      "seed": -1}),
    ],
)
def test_bad_part_and_run_documents_are_rejected(kind, doc):
    """Schemas of the other kinds reject a bool figure, a fractional count, an empty list, a radix below 2,
    an unknown activation and a negative seed."""
    assert not _validator(kind).is_valid(doc)


def test_schema_command_prints_the_published_schema(capsys):
    """`oassim schema cluster` prints the same schema as the API, as JSON."""
    assert main(["schema", "cluster"]) == 0
    assert json.loads(capsys.readouterr().out) == schema("cluster")
