"""oassim.network: how long a phase of concurrent flows takes on a fabric, and where it is
limited (docs/architecture.md decision 5).

Two fidelities behind one protocol (:class:`NetworkModel`): ``analytical`` (static link
loads, vectorised numpy, for sweeps) and ``flow`` (max-min fair rates re-solved at every
completion, numba). Both stripe each transfer over the paths the fabric spreads it on and add
cut-through path latency; they agree to 1% where no link is shared.
"""

from oassim.network.analytical import AnalyticalNetwork, SubFlows, stripe
from oassim.network.base import Flows, NetworkModel, TransferResult
from oassim.network.flow import FlowNetwork, FlowRun, maxmin_rates
from oassim.network.registry import MODELS, make_network
from oassim.network.report import LinkLoad, bottleneck, tier_utilisation

__all__ = [
    "Flows",
    "TransferResult",
    "NetworkModel",
    "AnalyticalNetwork",
    "FlowNetwork",
    "FlowRun",
    "SubFlows",
    "stripe",
    "maxmin_rates",
    "MODELS",
    "make_network",
    "LinkLoad",
    "bottleneck",
    "tier_utilisation",
]
