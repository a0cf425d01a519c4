"""JSON Schema export of the spec file formats.

What is modelled: the published form of every spec format (docs/architecture.md, spec files):
a JSON Schema (draft 2020-12) with an ``$id``, a title and a format version, in which every
field at every level carries its meaning and unit as its description. A standards committee
publishes it, and editors check a file against it before oassim reads it.

Why from the models: the pydantic model of a format is the one definition of what a file may
hold, so the schema is generated from it and each field's numpydoc "Parameters" line (meaning
and unit) becomes its description; a field no docstring describes fails the schema tests
instead of shipping undocumented. This module also provides :func:`preset_or_inline`, the
annotation of a field that takes a preset name or an inline mapping of a part's fields: it
validates as either and publishes as ``anyOf: [string, <part schema>]``.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema

from oassim.errors import SpecError
from oassim.hardware.interconnect import InterconnectSpec
from oassim.hardware.models import PART_MODELS, HardwarePart

__all__ = [
    "json_schema", "publish", "preset_or_inline", "param_docs", "SCHEMA_KINDS", "DIALECT", "FORMAT_VERSION",
    "schema_id",
]

#: JSON Schema dialect of every exported schema.
DIALECT = "https://json-schema.org/draft/2020-12/schema"

#: Version of the spec file formats; raised when a released format changes incompatibly.
FORMAT_VERSION = "1"

#: Spec kinds with a published schema in this layer: the catalog parts and the interconnect spec file.
SCHEMA_KINDS: dict[str, type[BaseModel]] = {**PART_MODELS, "interconnect": InterconnectSpec}

# Preset file of each part kind, named in the description of preset-or-inline fields.
_PRESET_FILE = {"accelerator": "accelerators.yaml", "link": "links.yaml", "module": "optics.yaml",
                "switch": "switches.yaml"}


def schema_id(kind: str) -> str:
    """``$id`` of the schema of ``kind``: ``urn:oassim:schema:<kind>:<format version>``."""
    return f"urn:oassim:schema:{kind}:{FORMAT_VERSION}"


def json_schema(kind: str) -> dict[str, Any]:
    """Published JSON Schema of hardware spec ``kind`` ("accelerator", "link", "module",
    "switch" or "interconnect"); SpecError if unknown."""
    if kind not in SCHEMA_KINDS:
        raise SpecError(f"unknown hardware kind '{kind}' (allowed: {', '.join(SCHEMA_KINDS)})")
    return publish(SCHEMA_KINDS[kind], kind)


def publish(model: type[BaseModel], kind: str, title: str | None = None) -> dict[str, Any]:
    """JSON Schema of spec ``model`` as published for ``kind``.

    Parameters
    ----------
    model : pydantic model class
        The spec model of the file format.
    kind : str
        Format name (``oassim schema KIND``), used in ``$id``.
    title : str, optional
        Schema title; default the first line of the model's docstring.

    Returns
    -------
    dict
        ``$schema`` (draft 2020-12), ``$id``, ``title``, ``x-oassim-format-version`` and the
        model's schema, every property described.
    """
    body = model.model_json_schema(schema_generator=_Documented)
    doc = (model.__doc__ or "").strip().splitlines()
    body["title"] = title or (doc[0].rstrip(".") if doc else model.__name__)
    return {"$schema": DIALECT, "$id": schema_id(kind), "x-oassim-format-version": FORMAT_VERSION, **body}


def preset_or_inline(kind: str) -> Any:
    """Field type taking a ``kind`` preset name or an inline mapping of that part's fields.

    Validation accepts a string or a mapping (the catalog resolves and checks it, naming the
    key path); the JSON Schema is ``anyOf: [string, <part schema>]``.
    """
    if kind not in PART_MODELS:
        raise ValueError(f"unknown part kind {kind!r} (allowed: {', '.join(PART_MODELS)})")
    return Annotated[str | dict[str, Any], _PartSchema(kind)]


class _PartSchema:
    """Pydantic annotation that publishes a preset-or-inline field's schema (see above)."""

    def __init__(self, kind: str):
        self.kind = kind

    def __get_pydantic_json_schema__(self, core_schema: Any, handler: Any) -> dict[str, Any]:
        inline = handler(PART_MODELS[self.kind].__pydantic_core_schema__)
        return {"anyOf": [
            {"type": "string", "minLength": 1,
             "description": f"a preset name of topologies/hardware/{_PRESET_FILE[self.kind]}"},
            {**inline, "description": f"inline {self.kind}: the fields of a preset entry"},
        ]}


class _Documented(GenerateJsonSchema):
    """Schema generator that describes every model field from its class docstring."""

    def model_schema(self, schema: Any) -> dict[str, Any]:
        js = super().model_schema(schema)
        cls = schema["cls"]
        docs = param_docs(cls)
        # The model's description is its docstring's summary; the fields carry the rest.
        summary = (cls.__doc__ or "").split("\n\n")[0].strip()
        if summary:
            js["description"] = " ".join(summary.split())
        for name, prop in js.get("properties", {}).items():
            if not prop.get("description") and docs.get(name):
                prop["description"] = docs[name]
        # Parts are named by their preset key (catalog files) or by their key path (inline).
        if isinstance(cls, type) and issubclass(cls, HardwarePart) and cls is not InterconnectSpec:
            js["required"] = [r for r in js.get("required", []) if r != "name"]
            if "name" in js.get("properties", {}):
                js["properties"]["name"]["description"] += " Optional: filled from the preset key or key path."
        return js


def param_docs(model: type) -> dict[str, str]:
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
