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

# Sweeps (docs/sweeps.md): sweep files, their points, the result store and the executors.
from oassim.experiments.executors import SweepReport, run_point, run_sweep  # noqa: E402
from oassim.experiments.store import ResultStore, load_results  # noqa: E402
from oassim.experiments.sweep import Point, SweepPlan, SweepSpec, expand_sweep, load_sweep  # noqa: E402

__all__ += [
    "SweepSpec", "SweepPlan", "Point", "load_sweep", "expand_sweep",
    "run_sweep", "run_point", "SweepReport", "ResultStore", "load_results",
]

# OAS-Bench (docs/oas-bench.md): the interconnect-spec suite, its evaluation and report.
from oassim.experiments.evaluate import Candidate, Evaluation, evaluate, rank  # noqa: E402
from oassim.experiments.oasbench import SUITES, Suite, get_suite, reference_design  # noqa: E402
from oassim.experiments.report_html import write_evaluation, write_report  # noqa: E402

__all__ += [
    "Suite", "SUITES", "get_suite", "reference_design",
    "evaluate", "rank", "Evaluation", "Candidate", "write_evaluation", "write_report",
]

# OAS-Bench 2.0 (docs/oas-bench.md): supernode proposal files, their clusters and report.
from oassim.experiments.proposal import Proposal, load_proposal  # noqa: E402
from oassim.experiments.proposal_build import build_proposal  # noqa: E402
from oassim.experiments.proposal_report import evaluate_proposals, write_proposal_report  # noqa: E402

__all__ += ["Proposal", "load_proposal", "build_proposal", "evaluate_proposals", "write_proposal_report"]
