"""Small hand-made fabrics for the network tests (parts built by hand, as in tests/topology)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from oassim.topology.cluster import build_fabric
from oassim.topology.fabric import Fabric, freeze
from oassim.topology.families import fat_tree as ft
from oassim.topology.parts import LinkClass, SwitchClass

__all__ = ["fat_tree", "dgx", "closed_form_alone", "HOST_BW", "LS_BW"]

HOST_BW = 50e9  # B/s per direction, one NDR 400G port
LS_BW = 25e9


def _links(host_eff: float, ls_bw: float) -> dict[str, LinkClass]:
    return {
        "host": LinkClass("h", HOST_BW, 1e-7, "optical", rate_Gbps=400, efficiency=host_eff),
        "leaf_spine": LinkClass("ls", ls_bw, 3e-7, "optical", rate_Gbps=400),
        "spine_core": LinkClass("sc", ls_bw, 5e-7, "optical", rate_Gbps=400),
    }


@lru_cache(maxsize=None)
def fat_tree(k: int, host_eff: float = 1.0, ls_bw: float = HOST_BW, **spec) -> Fabric:
    """A standalone fat-tree fabric with 200 ns switch forwarding latency, frozen.

    Family builders leave node ``latency_s`` to the cluster composer (``cluster.py`` sets it
    from the switch parts), so it is set here the same way.
    """
    sw = {r: SwitchClass(f"sw-{r}", radix=k, latency_s=2e-7, port_rate_Gbps=400) for r in ft.SWITCH_ROLES}
    g = ft.build(ft.Spec(**spec), _links(host_eff, ls_bw), sw)
    for _, d in g.nodes(data=True):
        if d["kind"] == "switch":
            d["latency_s"] = 2e-7
    return freeze(g)


@lru_cache(maxsize=None)
def dgx(accelerators: int) -> Fabric:
    """The dgx-h100-superpod preset at this size (8 GPUs per NVSwitch node)."""
    return build_fabric("dgx-h100-superpod", accelerators)


def closed_form_alone(fabric: Fabric, src, dst, size, salt: int = 0) -> np.ndarray:
    """Finish time of each flow if it were alone: max over its stripes of path latency +
    stripe bytes / smallest capacity on the stripe's path, s."""
    src, dst, size = np.atleast_1d(src), np.atleast_1d(dst), np.atleast_1d(size).astype(float)
    paths, owner, frac = fabric.spread(src, dst, salt)
    out = np.zeros(len(src))
    cap = fabric.capacity_Bps
    for k in range(len(paths)):
        links = paths[k]
        nodes = fabric.link_dst[links][:-1]
        lat = fabric.link_lat[links].sum() + fabric.node_lat[nodes].sum()
        out[owner[k]] = max(out[owner[k]], lat + size[owner[k]] * frac[k] / cap[links].min())
    return out
