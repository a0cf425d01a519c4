"""Hardware catalog layer: validated part specs and the preset catalog.

Models accelerators, link technologies, optical modules and cables and switches
(:mod:`oassim.hardware.models`), the interconnect spec file a standards committee compares
(:mod:`oassim.hardware.interconnect`), and the named presets in
``topologies/hardware/*.yaml`` (:mod:`oassim.hardware.catalog`). This layer knows nothing of
graphs or time (docs/architecture.md); figures carry units in their names and convert once to SI.
"""

from oassim.hardware.catalog import (
    PRESET_FILES,
    Catalog,
    PartKind,
    clear_catalog_cache,
    load_catalog,
    load_interconnect,
)
from oassim.hardware.interconnect import InterconnectSpec, InterconnectSwitch, ReachClass, encoding_fraction
from oassim.hardware.models import (
    PART_MODELS,
    Accelerator,
    HardwarePart,
    LinkTechnology,
    Medium,
    ModuleTechnology,
    OpticalModule,
    PortConfig,
    Precision,
    Switch,
)
from oassim.hardware.schema import SCHEMA_KINDS, json_schema

__all__ = [
    "Accelerator",
    "LinkTechnology",
    "OpticalModule",
    "PortConfig",
    "Switch",
    "InterconnectSpec",
    "InterconnectSwitch",
    "ReachClass",
    "encoding_fraction",
    "load_interconnect",
    "HardwarePart",
    "Precision",
    "Medium",
    "ModuleTechnology",
    "PART_MODELS",
    "json_schema",
    "SCHEMA_KINDS",
    "Catalog",
    "PartKind",
    "PRESET_FILES",
    "load_catalog",
    "clear_catalog_cache",
]
