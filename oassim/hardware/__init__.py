"""Hardware catalog layer: validated part specs and the preset catalog.

Models accelerators, link technologies, optical modules and cables, switches and the
interconnect bundle of one domain (:mod:`oassim.hardware.models`), and the named presets in
``topologies/hardware/*.yaml`` (:mod:`oassim.hardware.catalog`). This layer knows nothing of
graphs or time (DESIGN.md); figures carry units in their names and convert once to SI.
"""

from oassim.hardware.catalog import (
    PRESET_FILES,
    Catalog,
    PartKind,
    clear_catalog_cache,
    load_catalog,
)
from oassim.hardware.models import (
    PART_MODELS,
    Accelerator,
    HardwarePart,
    InterconnectSpec,
    LinkTechnology,
    Medium,
    ModuleTechnology,
    OpticalModule,
    PortConfig,
    Precision,
    Switch,
)
from oassim.hardware.schema import json_schema

__all__ = [
    "Accelerator",
    "LinkTechnology",
    "OpticalModule",
    "PortConfig",
    "Switch",
    "InterconnectSpec",
    "HardwarePart",
    "Precision",
    "Medium",
    "ModuleTechnology",
    "PART_MODELS",
    "json_schema",
    "Catalog",
    "PartKind",
    "PRESET_FILES",
    "load_catalog",
    "clear_catalog_cache",
]
