"""Network models by the name used in scenario files (``network: analytical | flow``).

docs/architecture.md, conventions: plug-ins are a dict; a new fidelity is one new class and one line here.
"""

from __future__ import annotations

import inspect
from typing import Any

from oassim.errors import SpecError
from oassim.network.analytical import AnalyticalNetwork
from oassim.network.base import NetworkModel
from oassim.network.flow import FlowNetwork
from oassim.topology.fabric import Fabric

__all__ = ["MODELS", "make_network"]

MODELS: dict[str, type] = {
    AnalyticalNetwork.name: AnalyticalNetwork,
    FlowNetwork.name: FlowNetwork,
}


def make_network(name: str, fabric: Fabric, **opts: Any) -> NetworkModel:
    """Construct the network model registered as ``name`` on ``fabric``.

    Parameters
    ----------
    name : str
        A key of :data:`MODELS` ("analytical", "flow").
    fabric : Fabric
    **opts
        Keyword options of the model's constructor (e.g. ``eps`` for "flow").

    Raises
    ------
    SpecError
        Unknown model name or option (the message lists the allowed ones), or a bad option value.
    """
    try:
        cls = MODELS[name]
    except (KeyError, TypeError):
        raise SpecError(f"unknown network model {name!r} (allowed: {', '.join(sorted(MODELS))})",
                        path="network") from None
    allowed = [p for p in inspect.signature(cls).parameters if p != "fabric"]
    unknown = sorted(set(opts) - set(allowed))
    if unknown:
        raise SpecError(f"unknown option(s) {', '.join(unknown)} for network model {name!r} "
                        f"(allowed: {', '.join(allowed) or 'none'})", path="network")
    try:
        return cls(fabric, **opts)
    except ValueError as exc:
        if isinstance(exc, SpecError):
            raise
        raise SpecError(str(exc), path="network") from None
