"""Plug-in registries of the topology layer: family builders and routers, keyed by the names
used in spec files (docs/architecture.md, conventions: plug-ins are a dict; adding one touches
one file and this one).

The registries are read-only mappings that import a family's module the first time it is
looked up, so a run on a switched + fat-tree cluster never loads the torus or dragonfly code.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping, MutableMapping
from types import ModuleType
from typing import Any, Callable

__all__ = ["ROUTERS", "FAMILIES", "FAMILY_MODULES"]

# name in cluster files -> module of the family (Spec, LINK_ROLES, SWITCH_ROLES, build,
# bisection_Bps, diameter_hops and its router); each family's router has the family's name
_FAMILY_NAMES: tuple[str, ...] = ("switched", "clos2", "fullmesh", "torus", "fat_tree", "dragonfly")
_ROUTER_CLASSES: dict[str, tuple[str, str]] = {
    "shortest": ("oassim.topology.routing", "ShortestPathRouter"),
    "cluster": ("oassim.topology.cluster", "ClusterRouter"),
    "switched": ("oassim.topology.families.switched", "SwitchedRouter"),
    "clos2": ("oassim.topology.families.clos2", "Clos2Router"),
    "fullmesh": ("oassim.topology.families.fullmesh", "FullMeshRouter"),
    "torus": ("oassim.topology.families.torus", "TorusRouter"),
    "fat_tree": ("oassim.topology.families.fat_tree", "FatTreeRouter"),
    "dragonfly": ("oassim.topology.families.dragonfly", "DragonflyRouter"),
}


class _Lazy(MutableMapping):
    """A mapping whose values are made on first look-up and kept (a plug-in may also be set
    or replaced by assignment, as a test's monkeypatch does)."""

    def __init__(self, names: tuple[str, ...], make: Callable[[str], Any]):
        self._names = names
        self._make = make
        self._done: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        if name not in self._done:
            if name not in self._names:
                raise KeyError(name)
            self._done[name] = self._make(name)
        return self._done[name]

    def __setitem__(self, name: str, value: Any) -> None:
        if name not in self._names:
            self._names = (*self._names, name)
        self._done[name] = value

    def __delitem__(self, name: str) -> None:
        if name not in self._names:
            raise KeyError(name)
        self._names = tuple(n for n in self._names if n != name)
        self._done.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def __contains__(self, name: object) -> bool:
        return name in self._names

    def __repr__(self) -> str:
        return f"<registry {', '.join(self._names)}>"


def _module(name: str) -> ModuleType:
    return importlib.import_module(f"oassim.topology.families.{name}")


def _router(name: str) -> type:
    mod, cls = _ROUTER_CLASSES[name]
    return getattr(importlib.import_module(mod), cls)


FAMILY_MODULES: Mapping[str, ModuleType] = _Lazy(_FAMILY_NAMES, _module)
FAMILIES: Mapping[str, tuple[Any, Any]] = _Lazy(_FAMILY_NAMES, lambda n: (_module(n).Spec, _module(n).build))
ROUTERS: Mapping[str, type] = _Lazy(tuple(_ROUTER_CLASSES), _router)
