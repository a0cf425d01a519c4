"""oassim.experiments: scenario files, the composition root ``run()``, and run outputs.

docs/architecture.md, "Scenario files": a scenario (cluster, workload, parallelism, network, seed) is one
YAML file validated by :class:`Scenario`; :func:`run` wires scenario -> cluster -> fabric ->
plan -> simulation -> Results (docs/architecture.md, conventions "one composition root"); :func:`write_outputs`
writes a finished run's files (only when asked; docs/architecture.md decision 8).
"""

from oassim.experiments.outputs import report_dict, write_outputs
from oassim.experiments.runner import git_state, resolve_scenario, run
from oassim.experiments.scenario import (
    ClusterSection,
    Scenario,
    WorkloadSection,
    apply_overrides,
    load_scenario,
    parse_override,
)

__all__ = [
    "Scenario", "ClusterSection", "WorkloadSection", "load_scenario", "parse_override", "apply_overrides",
    "run", "resolve_scenario", "git_state",
    "report_dict", "write_outputs",
]

# The sweep, OAS-Bench and proposal names below are imported on first use (PEP 562), so that
# ``oassim run`` does not load the sweep executors, the reliability model, SimPy's sweep side
# or the report writers it never calls.
_LAZY = {
    # Sweeps (docs/sweeps.md): sweep files, their points, the result store and the executors.
    "oassim.experiments.executors": ("SweepReport", "run_point", "run_sweep"),
    "oassim.experiments.store": ("ResultStore", "load_results"),
    "oassim.experiments.sweep": ("Point", "SweepPlan", "SweepSpec", "expand_sweep", "load_sweep"),
    # OAS-Bench (docs/oas-bench.md): the interconnect-spec suite's report.
    "oassim.experiments.report_html": ("write_evaluation", "write_report"),
    # OAS-Bench 2.0 (docs/oas-bench.md): supernode proposal files, their clusters and report.
    "oassim.experiments.proposal": ("Proposal", "load_proposal"),
    "oassim.experiments.proposal_build": ("build_proposal",),
    "oassim.experiments.proposal_report": ("evaluate_proposals", "write_proposal_report"),
}
# OAS-Bench (docs/oas-bench.md): the interconnect-spec suite and its evaluation. Imported now
# (17 ms): ``evaluate`` is also a submodule's name, which importing that submodule would bind
# on this package in place of a lazily imported function.
from oassim.experiments.evaluate import Candidate, Evaluation, evaluate, rank  # noqa: E402
from oassim.experiments.oasbench import SUITES, Suite, get_suite, reference_design  # noqa: E402

__all__ += ["Suite", "SUITES", "get_suite", "reference_design", "evaluate", "rank", "Evaluation", "Candidate"]

_LAZY_NAME = {name: mod for mod, names in _LAZY.items() for name in names}

__all__ += list(_LAZY_NAME)


def __getattr__(name: str):
    mod = _LAZY_NAME.get(name)
    if mod is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(mod), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY_NAME))
