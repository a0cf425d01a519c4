"""``oassim evaluate`` and ``oassim schema``: the standards-committee commands.

``oassim evaluate SPEC.yaml [SPEC.yaml ...] --out DIR`` runs OAS-Bench on interconnect spec
files and writes the ranking report (HTML, Markdown, plots, results and every input) into
DIR, all or nothing; given supernode proposal files it runs OAS-Bench 2.0 on them instead.
``oassim schema KIND`` prints the JSON Schema of a spec format, so a
committee can publish it. Thin wrappers over :mod:`oassim.experiments.report_html` and the
spec models; bad input is one line ``oassim: error: FILE: key.path: message`` with status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Callable

from oassim.errors import OassimError

__all__ = ["add_parsers", "COMMANDS", "SCHEMA_KINDS"]

#: ``oassim schema`` kinds: spec format -> (module, model) of its file. Hardware parts are the
#: entries of the ``topologies/hardware/*.yaml`` preset files.
_SCHEMA_MODELS: dict[str, tuple[str, str]] = {
    "interconnect": ("oassim.hardware.interconnect", "InterconnectSpec"),
    "proposal": ("oassim.experiments.proposal", "Proposal"),
    "accelerator": ("oassim.hardware.models", "Accelerator"),
    "link": ("oassim.hardware.models", "LinkTechnology"),
    "module": ("oassim.hardware.models", "OpticalModule"),
    "switch": ("oassim.hardware.models", "Switch"),
    "cluster": ("oassim.topology.cluster_spec", "ClusterSpec"),
    "model": ("oassim.workload.model", "ModelSpec"),
    "scenario": ("oassim.experiments.scenario", "Scenario"),
    "sweep": ("oassim.experiments.sweep", "SweepSpec"),
}
SCHEMA_KINDS = tuple(_SCHEMA_MODELS)


def add_parsers(sub: Any) -> None:
    """Add the ``evaluate`` and ``schema`` subcommands to the ``oassim`` parser."""
    e = sub.add_parser(
        "evaluate",
        help="rank interconnect specs on the OAS-Bench suite, or supernode proposals on OAS-Bench 2.0, and write "
        "an HTML/Markdown report",
        description="Build each candidate's OAS-Bench reference cluster, run the suite's collective "
        "microbenchmarks and training workloads on it, and write a report ranking the candidates "
        "(report.html, report.md, figures, results.json, CSVs and every input) into --out. Proposal files "
        "(all candidates of one kind): build each proposal's cluster, check its design rules, report its "
        "switches, optics, cables, power and cost, and rank the valid ones by training throughput in their best "
        "layout. See docs/oas-bench.md.",
    )
    e.add_argument("specs", nargs="+", metavar="SPEC.yaml",
                   help="interconnect spec files (format: oassim schema interconnect; examples in experiments/specs/), "
                   "or supernode proposal files (oassim schema proposal; examples in experiments/proposals/)")
    e.add_argument("--out", required=True, metavar="DIR",
                   help="report folder (created; written all or nothing; a folder that is not empty needs --force)")
    e.add_argument("--force", action="store_true", help="replace the report already in --out")
    e.add_argument("--quick", action="store_true",
                   help="run the quick smoke profile (smaller scales and batches; not comparable with the full suite)")
    e.add_argument("--quiet", action="store_true", help="print no progress lines")
    s = sub.add_parser(
        "schema",
        help="print the JSON Schema of a spec file format",
        description="Print the JSON Schema of a spec format (field meanings and units as descriptions).",
    )
    s.add_argument("kind", choices=SCHEMA_KINDS, help="spec format")


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from oassim.experiments.report_html import write_evaluation

    def say(msg: str) -> None:
        sys.stderr.write(f"oassim: evaluate: {msg}\n")
        sys.stderr.flush()

    try:
        written = write_evaluation(args.specs, args.out, "quick" if args.quick else "full",
                                   progress=None if args.quiet else say, replace=args.force)
    except OSError as exc:
        raise OassimError(f"argument --out: cannot write {args.out}: {exc.strerror or exc}") from None
    report = next((p for p in written if p.name == "report.html"), None)
    sys.stdout.write(f"wrote {report or args.out}\n")
    return 0


def schema(kind: str) -> dict[str, Any]:
    """Published JSON Schema (draft 2020-12, with ``$id`` and format version) of ``kind``, one of
    :data:`SCHEMA_KINDS`."""
    import importlib

    from oassim.hardware.schema import publish

    module, name = _SCHEMA_MODELS[kind]
    return publish(getattr(importlib.import_module(module), name), kind)


def _cmd_schema(args: argparse.Namespace) -> int:
    json.dump(schema(args.kind), sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {"evaluate": _cmd_evaluate, "schema": _cmd_schema}
