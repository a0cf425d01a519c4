"""``oassim reliability``: failures, checkpoints and goodput of a scenario's training campaign.

``oassim reliability SCENARIO.yaml --days 54 [--samples N] [--json]`` runs seeded campaigns of
the scenario's job on its cluster (:func:`oassim.experiments.reliability.reliability`) and
prints interruptions per day, goodput, ETTR, job MTBF and the hours lost by cause and component;
``oassim reliability --validate`` prints the checks against published failure statistics.
Thin wrapper: bad input is one line ``oassim: error: SOURCE: message`` with status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Callable

from oassim.cli._common import positive_int

__all__ = ["add_parsers", "COMMANDS", "run_section"]


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text[:40]!r}") from None


def _count(text: str) -> int:
    try:
        return int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text[:40]!r}") from None


def add_parsers(sub: Any) -> None:
    """Add the ``reliability`` subcommand to the ``oassim`` parser."""
    r = sub.add_parser(
        "reliability",
        help="failures, checkpoints and goodput of a training campaign (interruptions/day, ETTR, MTBF)",
        description="Simulate seeded campaigns of a scenario's job under component failures (rates of "
        "topologies/hardware/reliability.yaml, counts of the cluster) with checkpoints, restarts and "
        "spares, and report interruptions per day, goodput, ETTR, job MTBF and lost hours by cause and "
        "component. See docs/reliability.md.",
    )
    r.add_argument("scenario", metavar="SCENARIO.yaml", nargs="?", help="scenario YAML file (see experiments/)")
    r.add_argument("--days", type=_number, default=54.0, help="campaign length in days (default 54)")
    r.add_argument("--samples", type=positive_int, default=100, help="seeded campaigns (default 100)")
    r.add_argument("--seed", type=_count, default=None, help="root seed (default: the scenario's seed)")
    r.add_argument("--checkpoint-interval-s", type=_number, default=None,
                   help="compute time between checkpoints, s (default: Daly's optimum)")
    r.add_argument("--checkpoint-write-s", type=_number, default=None,
                   help="checkpoint write time, s (default: 14 bytes per parameter over --storage-GBps)")
    r.add_argument("--storage-GBps", type=_number, default=None,
                   help="aggregate checkpoint write bandwidth, GB/s (default 1000, assumed)")
    r.add_argument("--detect-s", type=_number, default=300.0, help="failure detection time, s (default 300)")
    r.add_argument("--restart-s", type=_number, default=600.0, help="restart time, s (default 600)")
    r.add_argument("--repair-h", type=_number, default=24.0, help="repair time of a failed part, h (default 24)")
    r.add_argument("--spares", type=_count, default=None,
                   help="spare pool in accelerators (default: enough that no restart waits)")
    r.add_argument("--straggler-slowdown", type=_number, default=0.0,
                   help="constant fractional slowdown from stragglers (default 0)")
    r.add_argument("--comm-fraction", type=_number, default=1.0,
                   help="share of the iteration a degraded tier's bandwidth sets (default 1, an upper bound)")
    r.add_argument("--link-loss", choices=["stop", "degrade"], default="stop",
                   help="a fabric link or spine failure stops the job then degrades it (default), or only degrades it")
    r.add_argument("--no-recost", dest="recost", action="store_false",
                   help="degraded slowdowns from the structural share f/(1-f), not re-costed by the network model")
    r.add_argument("--rates", metavar="FILE", default=None,
                   help="reliability catalog (default topologies/hardware/reliability.yaml)")
    r.add_argument("--accelerator-rates", metavar="NAME", default=None,
                   help="use this accelerator generation's rates, e.g. h100-sxm (an assumption, reported)")
    r.add_argument("--set", dest="overrides", action="append", default=[], metavar="PATH=VALUE",
                   help="override a scenario key, e.g. --set cluster.accelerators=8192 (repeatable)")
    r.add_argument("--json", action="store_true", help="print one JSON object")
    r.add_argument("--validate", action="store_true",
                   help="print the checks against published failure statistics (no scenario needed)")


def _cmd_reliability(args: argparse.Namespace) -> int:
    from oassim.errors import OassimError
    from oassim.experiments.reliability import reliability, validation_report
    from oassim.reliability import text_report
    from oassim.reliability.validation import format_rows

    if args.validate:
        v = validation_report(samples=args.samples, seed=0 if args.seed is None else args.seed)
        if args.json:
            json.dump(v, sys.stdout, indent=2)
            sys.stdout.write("\n")
        else:
            sys.stdout.write(format_rows(v["llama3_independent"], "Llama 3 405B, 54 days, 16,384 H100, leave one "
                                         "source out: interruptions predicted with no figure of S09"))
            sys.stdout.write("\n" + format_rows(v["llama3"], "Llama 3 405B campaign with the S09-derived rates "
                                                "(consistency of counts and campaign, not a prediction)"))
            sys.stdout.write("\n" + format_rows(v["other"], "other published figures (not fitted)"))
            sys.stdout.write("\n" + format_rows(v["ubmesh_parts"], "UB-Mesh paper MTBFs from part counts x component "
                                                "AFRs (AFR ranges read as FIT; bracket check)"))
            sys.stdout.write("\n" + format_rows(v["ubmesh"], "UB-Mesh paper availability, A = MTBF / (MTBF + MTTR)"))
        return 0
    if args.scenario is None:
        raise OassimError("oassim reliability: give a SCENARIO.yaml, or --validate")
    res = reliability(args.scenario, days=args.days, samples=args.samples, seed=args.seed,
                      checkpoint_interval_s=args.checkpoint_interval_s, checkpoint_write_s=args.checkpoint_write_s,
                      storage_GBps=args.storage_GBps, detect_s=args.detect_s, restart_s=args.restart_s,
                      repair_h=args.repair_h, spare_accelerators=args.spares,
                      straggler_slowdown=args.straggler_slowdown, comm_fraction=args.comm_fraction,
                      link_loss=args.link_loss, rates=args.rates, accelerator_rates=args.accelerator_rates,
                      overrides=args.overrides, recost=args.recost)
    rec = res.summary()
    if args.json:
        json.dump(rec, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(text_report(rec))
    return 0


def run_section(sec: dict[str, Any]) -> str:
    """The text of the reliability section of ``oassim run --reliability DAYS``."""
    g, e, n = sec["goodput"], sec["ettr"], sec["interruptions_per_day"]
    unset = ", ".join(f"{u['component']}:{u['tier']}" for u in sec["unset"]) or "none"
    return (f"\nreliability over {sec['days']:g} days ({sec['samples']} samples; oassim reliability for the detail)\n"
            f"  interruptions/day   {n['mean']:.2f} (95% of campaigns {n['ci95'][0]:.2f}-{n['ci95'][1]:.2f}), "
            f"job MTBF {sec['mtbf_hours']} h\n"
            f"  goodput             {g['mean']:.4f}, ETTR {e['mean']:.4f}; "
            f"{sec['effective_tokens_per_s']:,.0f} tokens/s kept\n"
            f"  checkpoint          every {sec['checkpoint_every_iterations']} iterations (Daly optimum); "
            f"degraded tiers set {100 * sec['comm_fraction']:.1f}% of an iteration (its exposed communication)\n"
            f"  unset rates         {unset}\n")


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {"reliability": _cmd_reliability}
