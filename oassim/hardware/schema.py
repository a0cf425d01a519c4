"""JSON Schema export of the hardware spec formats.

docs/architecture.md decision 2: a spec's JSON Schema can be exported, so a standards committee can
publish the format. Each field's numpydoc line (meaning and unit) becomes its description.
"""

from __future__ import annotations

from typing import Any

from oassim.errors import SpecError
from oassim.hardware.interconnect import InterconnectSpec, InterconnectSwitch, ReachClass
from oassim.hardware.models import PART_MODELS, PortConfig

__all__ = ["json_schema", "SCHEMA_KINDS"]

#: Spec kinds with a published schema: the catalog parts and the interconnect spec file.
SCHEMA_KINDS: dict[str, type] = {**PART_MODELS, "interconnect": InterconnectSpec}

# Models that appear nested in a schema's ``$defs``.
_NESTED = (PortConfig, InterconnectSwitch, ReachClass)


def json_schema(kind: str) -> dict[str, Any]:
    """JSON Schema of spec ``kind`` ("accelerator", "link", "module", "switch" or
    "interconnect"), with each field's docstring line as its description; SpecError if unknown.
    """
    if kind not in SCHEMA_KINDS:
        raise SpecError(f"unknown hardware kind '{kind}' (allowed: {', '.join(SCHEMA_KINDS)})")
    top = SCHEMA_KINDS[kind]
    schema = top.model_json_schema()
    schema.setdefault("title", top.__name__)
    # Publish each field's numpydoc line (meaning and unit) as its JSON Schema description.
    for model in (*SCHEMA_KINDS.values(), *_NESTED):
        defs = schema.get("$defs", {})
        where = schema if model is top else defs.get(model.__name__)
        for field, prop in (where or {}).get("properties", {}).items():
            prop.setdefault("description", _param_docs(model).get(field, ""))
    return schema


def _param_docs(model: type) -> dict[str, str]:
    """Field descriptions from the "Parameters" sections of numpydoc class docstrings."""
    out: dict[str, str] = {}
    for cls in reversed(model.__mro__):
        section = (cls.__dict__.get("__doc__") or "").partition("----------\n")[2]
        names: list[str] = []
        for line in section.splitlines():
            if line.startswith("    ") and not line.startswith("     ") and " : " in line:
                names = [n.strip() for n in line.split(" : ")[0].split(",")]
                out.update({n: "" for n in names})
            elif line.startswith("        ") and names:
                out.update({n: f"{out[n]} {line.strip()}".strip() for n in names})
    return out
