"""Plug-in registries of the topology layer: family builders and routers, keyed by the names
used in spec files (STYLE.md: plug-ins are a dict; adding one touches one file and this one)."""

from __future__ import annotations

from typing import Any, Callable

from oassim.topology.routing import Router, ShortestPathRouter

__all__ = ["ROUTERS", "FAMILIES"]

ROUTERS: dict[str, type[Router]] = {
    "shortest": ShortestPathRouter,
}

# name -> (spec model, build function); filled as families land.
FAMILIES: dict[str, tuple[type, Callable[..., Any]]] = {}
