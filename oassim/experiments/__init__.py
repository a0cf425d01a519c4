"""oassim.experiments: scenario files, the composition root ``run()``, and run outputs.

DESIGN.md, "Scenario files": a scenario (cluster, workload, parallelism, network, seed) is one
YAML file validated by :class:`Scenario`; :func:`run` wires scenario -> cluster -> fabric ->
plan -> simulation -> Results (STYLE.md "one composition root"); :func:`write_outputs`
writes a finished run's files (only when asked; DESIGN.md decision 8).
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
