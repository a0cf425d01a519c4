"""Reliability: component failures, blast radius, checkpoint/restart campaigns and goodput.

What is modelled (docs/reliability.md; docs/architecture.md decision 13): component failure
rates of the hardware catalog (:mod:`~oassim.reliability.rates`), what each failure takes down
on a given topology (:mod:`~oassim.reliability.exposure`), the Young/Daly checkpoint interval
(:mod:`~oassim.reliability.checkpoint`), and a seeded SimPy campaign of failures, restarts,
spares and checkpoints (:mod:`~oassim.reliability.campaign`) whose Results are interruptions
per day, goodput, ETTR, job MTBF and the hours lost by cause and component
(:mod:`~oassim.reliability.summary`). :mod:`~oassim.reliability.validation` holds the checks
against published failure statistics.

``oassim.reliability(SCENARIO, days=54, ...)`` is also a function: calling the package runs
:func:`oassim.experiments.reliability.reliability` (the composition root reads the scenario
file, builds the cluster and calls :func:`~oassim.reliability.run.run_campaign`).
"""

from __future__ import annotations

import sys
import types
from typing import Any

from oassim.reliability.campaign import CampaignParams, SampleTally, simulate_samples
from oassim.reliability.checkpoint import checkpoint_bytes, daly_interval_s, young_interval_s
from oassim.reliability.exposure import ClusterShape, Exposure, component_counts, exposures
from oassim.reliability.rates import COMPONENT_TYPES, ReliabilityCatalog, load_rates, resolve_rates
from oassim.reliability.run import run_campaign
from oassim.reliability.summary import CampaignResult, summarise, text_report

__all__ = [
    "CampaignParams", "SampleTally", "simulate_samples", "checkpoint_bytes", "daly_interval_s",
    "young_interval_s", "ClusterShape", "Exposure", "component_counts", "exposures", "COMPONENT_TYPES",
    "ReliabilityCatalog", "load_rates", "resolve_rates", "run_campaign", "CampaignResult", "summarise",
    "text_report",
]


class _CallablePackage(types.ModuleType):
    """This package, callable as the API entry ``oassim.reliability(scenario, ...)``."""

    def __call__(self, scenario: Any, **kwargs: Any) -> CampaignResult:
        # The entry point belongs to the composition root, one layer up; the package only
        # forwards the call so that ``oassim.reliability`` is both the package and the API.
        import importlib

        return importlib.import_module("oassim.experiments.reliability").reliability(scenario, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
