"""Plug-in registries of the topology layer: family builders and routers, keyed by the names
used in spec files (docs/architecture.md, conventions: plug-ins are a dict; adding one touches
one file and this one)."""

from __future__ import annotations

from types import ModuleType

from oassim.topology.cluster import ClusterRouter
from oassim.topology.families import clos2, dragonfly, fat_tree, fullmesh, switched, torus
from oassim.topology.routing import Router, ShortestPathRouter

__all__ = ["ROUTERS", "FAMILIES", "FAMILY_MODULES"]

# name in cluster files -> family module (Spec, LINK_ROLES, SWITCH_ROLES, build, bisection_Bps,
# diameter_hops and its router)
FAMILY_MODULES: dict[str, ModuleType] = {
    "switched": switched,
    "clos2": clos2,
    "fullmesh": fullmesh,
    "torus": torus,
    "fat_tree": fat_tree,
    "dragonfly": dragonfly,
}

FAMILIES = {name: (mod.Spec, mod.build) for name, mod in FAMILY_MODULES.items()}

ROUTERS: dict[str, type[Router]] = {
    "shortest": ShortestPathRouter,
    "cluster": ClusterRouter,
    switched.ROUTER: switched.SwitchedRouter,
    clos2.ROUTER: clos2.Clos2Router,
    fullmesh.ROUTER: fullmesh.FullMeshRouter,
    torus.ROUTER: torus.TorusRouter,
    fat_tree.ROUTER: fat_tree.FatTreeRouter,
    dragonfly.ROUTER: dragonfly.DragonflyRouter,
}
