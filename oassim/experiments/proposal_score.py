"""Scoring one supernode proposal on OAS-Bench 2.0: collectives on its cluster, training in its best layout.

What it does: :func:`score_proposal` takes a proposal that passed the design rules
(:class:`oassim.experiments.proposal_report.ProposalResult`) and

- runs the OAS-Bench collective microbenchmarks (all-reduce, all-gather, all-to-all at the
  supernode size and at 1k / 8k / 16k accelerators) on the proposal's own cluster file, each
  row with busbw and the bottleneck link tier (:func:`oassim.experiments.evaluate.collective_rows`);
- runs each training workload of the suite in every layout of its bounded candidate set
  (:mod:`oassim.experiments.layout_search`) and keeps the best, with every candidate tried;
- derives the scores: tokens/s, tokens/s per MW of the cluster's power (only when the power
  total is known, else "unknown" with the parts that have no figure named) and tokens/s per
  million USD of capital cost (only when every part is priced), each with the bottleneck of the
  best layout's iteration beside it;
- runs the failures campaign of each workload's best layout (:func:`goodput`: the suite's days
  and seeded samples, :mod:`oassim.experiments.reliability`) on the same cluster: goodput, ETTR,
  interruptions per day, job MTBF, lost hours by cause, and tokens/s times goodput. Every
  proposal uses one generation's accelerator, host and NIC rates (:data:`GOODPUT_RATES`, marked
  ``uncalibrated`` for other chips) so the fabric's parts and blast radius decide; parts with no
  published rate are named (``partial``). Degraded-fabric slowdowns are not re-costed here.

How mixed accelerators run: the cluster graph carries the first type's interconnect figures
(the design rules check that every type's ports match its links), and the scenario's
``cluster.accelerator_types`` gives each supernode its type in the proposal's order (whole
supernodes by share, as the totals count them). Every pipeline stage then computes at its own
ranks' chip (a stage spanning types at its slowest member, which paces its synchronous
collectives; :mod:`oassim.workload.hetero`), and each layout of the search is also tried with
its layers balanced by chip speed (a Megatron ``pipeline_model_parallel_layout``, reported as
``balanced``). The precision is the first of the workload's that every type supports. What is
still approximated is marked ``approximated`` with the reason: a scale-out NIC the proposal leaves
to each chip's own figures runs, for every type, as the first type's (the graph has one NIC).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import yaml

from oassim.errors import SpecError
from oassim.experiments.evaluate import collective_rows, limiter
from oassim.experiments.layout_bound import pipeline_bound_s, plan_for
from oassim.experiments.layout_search import expand, search, with_balanced
from oassim.experiments.proposal import type_counts
from oassim.experiments.proposal_suite import ProposalSuite, ProposalWorkload
from oassim.hardware.models import Accelerator
from oassim.workload import TrainingSpec, resolve_model
from oassim.workload.hetero import AcceleratorMix, balance_by_chip

__all__ = ["common_precision", "nic_note", "score_proposal", "proposal_scores"]

Progress = Callable[[str], None]


def common_precision(types: list[Accelerator], precisions: tuple[str, ...]) -> str:
    """The first of ``precisions`` every accelerator type has a dense peak figure for.

    Raises
    ------
    SpecError
        No precision of the workload is supported by every type.
    """
    for prec in precisions:
        try:
            for a in types:
                a.peak_flops(prec)
        except SpecError:
            continue
        return prec
    raise SpecError(f"no accelerator type supports all of {', '.join(precisions)} (precision of the workload)")


def _mix(res: Any, wl: ProposalWorkload) -> tuple[list[dict[str, Any]], AcceleratorMix]:
    """The scenario's ``accelerator_types`` for the job's cluster, and the mix of its ranks."""
    types = [a for a, _ in res.proposal.accelerators]
    size = res.totals["supernode_size"]
    supernodes = -(-wl.accelerators // size)
    counts = type_counts(res.proposal, supernodes)
    shares = [{"accelerator": a.model_dump(mode="json", exclude_none=True), "supernodes": n}
              for a, n in zip(types, counts)]
    return shares, AcceleratorMix.by_domain(types, counts, np.repeat(np.arange(supernodes), size))


def _dump(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def _training(res: Any, wl: ProposalWorkload, s: ProposalSuite, folder: Path, cache: dict,
              say: Progress, engines: dict | None = None, prune: bool = True) -> dict[str, Any]:
    """One workload in its best layout on the proposal's cluster, with every candidate tried.

    ``engines``: the collective engines shared by the proposal's runs (``run``'s
    ``engine_cache``); ``prune``: skip the layouts whose compute ceiling is below the best
    found (:func:`oassim.experiments.layout_search.search`; the best is the same either way;
    every candidate's ceiling is recorded)."""
    from oassim.experiments.outputs import report_dict
    from oassim.experiments.runner import run

    types = [a for a, _ in res.proposal.accelerators]
    rec: dict[str, Any] = {"workload": wl.name, "model": wl.model, "accelerators": wl.accelerators}
    try:
        prec = common_precision(types, wl.precisions)
        shares, mix = _mix(res, wl) if len(types) > 1 else (None, None)
    except SpecError as exc:
        return {**rec, "status": f"failed: {exc.message}", "candidates": []}
    cluster_file = folder / "cluster.yaml"
    layers = resolve_model(wl.model).layers
    cands = expand(wl.layouts, wl.fixed, layers=layers, accelerators=wl.accelerators,
                   global_batch=wl.global_batch, micro_batch=wl.micro_batch, domain_size=res.totals["supernode_size"])
    if mix is not None:
        training = TrainingSpec(seq_len=wl.seq_len, global_batch=wl.global_batch, micro_batch=wl.micro_batch,
                                precision=prec, recompute=wl.recompute)
        cands = with_balanced(cands, lambda par: balance_by_chip(wl.model, par, training, mix, wl.accelerators)[0])
    cluster_ref: dict[str, Any] = {"accelerators": wl.accelerators}
    if shares is not None:
        cluster_ref["accelerator_types"] = shares

    def scenario_of(par: dict[str, Any]) -> dict[str, Any]:
        return {"name": f"{res.slug}-{wl.name}", "description": f"OAS-Bench 2.0 {wl.name} on proposal {res.name}",
                "sources": [wl.source], "cluster": {"file": str(cluster_file.resolve()), **cluster_ref},
                "workload": {"model": wl.model, "seq_len": wl.seq_len, "global_batch": wl.global_batch,
                             "micro_batch": wl.micro_batch, "precision": prec, "recompute": wl.recompute},
                "parallelism": par, "network": s.network, "seed": s.seed}

    def ceiling(par: dict[str, Any]) -> float:
        plan = plan_for(scenario_of(par), cache)
        return plan.tokens_per_iteration / pipeline_bound_s(plan)

    def evaluate(par: dict[str, Any]) -> dict[str, Any]:
        sc = scenario_of(par)
        t = time.perf_counter()
        r = report_dict(run(sc, cluster_cache=cache, engine_cache=engines))
        breakdown, findings = r.get("breakdown", {}), list(r.get("findings") or [])
        return {"tokens_per_s": r["tokens_per_s"], "iteration_time_s": r["iteration_time_s"], "mfu": r["mfu"],
                "tokens_per_s_per_accelerator": r["tokens_per_s"] / wl.accelerators,
                "exposed_comm_s": r["exposed_comm_s"], "bubble_s": r["bubble_s"],
                "memory_per_accelerator_GB": r["memory_per_accelerator_GB"], "breakdown": breakdown,
                "bottleneck": limiter(breakdown, findings), "findings": findings, "scenario": sc,
                **r["provenance"]["pipeline"],
                "wall_s": time.perf_counter() - t}

    t0 = time.perf_counter()
    result = search(cands, evaluate, lambda m: say(f"{res.name}: {wl.name} {m}"), ceiling, prune)
    by_type = _job_types(mix, wl.accelerators) if mix else {types[0].name: wl.accelerators}
    rec.update(precision=prec, approximated=nic_note(res), accelerators_by_type=by_type,
               candidates=[{"layout": c.label, "parallelism": c.parallelism, "status": c.status,
                            "ceiling_tokens_per_s": c.ceiling,
                            **({"tokens_per_s": c.record["tokens_per_s"], "mfu": c.record["mfu"]} if c.record else {})}
                           for c in result.tried],
               wall_s=time.perf_counter() - t0)
    if result.best is None:
        reasons = "; ".join(f"{c.label}: {c.status}" for c in result.tried)
        return {**rec, "status": f"failed: no candidate layout ran ({reasons})"}
    best = result.best.record
    scenario = best.pop("scenario")
    (folder / "scenarios").mkdir(exist_ok=True)
    (folder / "scenarios" / f"{wl.name}.yaml").write_text(
        f"# OAS-Bench 2.0 {wl.name} on proposal {res.name}: the best layout of the search\n"
        "# reproduce: oassim run THIS_FILE\n" + _dump({**scenario, "cluster": {
            "file": f"../{cluster_file.name}", **cluster_ref}}), encoding="utf-8")
    return {**rec, "status": "ok", "layout": result.best.label, "parallelism": result.best.parallelism, **best}


#: Accelerator generation whose accelerator, HBM, host and NIC failure rates every proposal's
#: goodput uses: the only generation with a full published set (docs/reliability.md), so that
#: proposals differ by their fabric's parts and blast radius, not by which chips have figures.
GOODPUT_RATES = "h100-sxm"


def goodput(rec: dict[str, Any], folder: Path, s: ProposalSuite, cache: dict, chips: list[str]) -> dict[str, Any]:
    """The failures campaign of a workload's best layout (its stored scenario), with its marks:
    ``uncalibrated`` where :data:`GOODPUT_RATES` stand in for another chip, ``partial`` naming
    the parts of the cluster that have no published rate (counted as never failing)."""
    from oassim.experiments.reliability import run_reliability

    scenario = yaml.safe_load((folder / "scenarios" / f"{rec['workload']}.yaml").read_text(encoding="utf-8"))
    # the cluster file as the training runs named it, so the campaign finds their build in the cache
    scenario["cluster"]["file"] = str((folder / "cluster.yaml").resolve())
    rel = run_reliability(rec, scenario, days=s.goodput_days,
                          samples=s.goodput_samples, cluster_cache=cache, accelerator_rates=GOODPUT_RATES,
                          recost=False)
    unset = sorted({u["component"] for u in rel["unset"] if u["count"]})
    marks = []
    other = [c for c in dict.fromkeys(chips) if c != GOODPUT_RATES]
    if other:
        marks.append(f"uncalibrated: {GOODPUT_RATES} accelerator, host and NIC rates stand in for {', '.join(other)}")
    if unset:
        marks.append(f"partial: no published rate for {', '.join(unset)} (counted as never failing)")
    keep = ("days", "samples", "goodput", "ettr", "interruptions_per_day", "mtbf_hours", "lost_hours_by_cause",
            "effective_tokens_per_s", "checkpoint_every_iterations")
    return {**{k: rel[k] for k in keep}, "unset": unset, "marks": marks}


def nic_note(res: Any) -> str | None:
    """Why a mixed proposal's run is approximated, or None: its scale-out NIC (ports, rate) is
    taken from the first type for every type, and another type's own NIC differs."""
    types = [a for a, _ in res.proposal.accelerators]
    so = res.proposal.proposal.scale_out
    if len(types) < 2 or so is None or (so.nic.ports is not None and so.nic.rate_Gbps is not None):
        return None
    first = types[0]
    used = (so.nic.ports or first.scaleout_nic_ports, so.nic.rate_Gbps or first.scaleout_port_Gbps)
    odd = [a.name for a in types[1:]
           if (so.nic.ports or a.scaleout_nic_ports, so.nic.rate_Gbps or a.scaleout_port_Gbps) != used]
    if not odd:
        return None
    return (f"approximated: the scale-out NICs of {', '.join(odd)} are simulated as {first.name}'s "
            f"({used[0]} x {used[1]:g} Gb/s; the cluster graph has one NIC); set scale_out.nic to make them one part")


def _job_types(mix: AcceleratorMix, accelerators: int) -> dict[str, int]:
    """Accelerators of each type among the job's ranks."""
    n = np.bincount(mix.of_rank[:accelerators], minlength=len(mix.types))
    return {a.name: int(k) for a, k in zip(mix.types, n) if k}


def proposal_scores(rec: dict[str, Any], totals: dict[str, Any]) -> dict[str, Any]:
    """Throughput, throughput per MW and per million USD of one workload record, unknowns named."""
    tok = rec["tokens_per_s"]
    power, cost = totals["power_W"]["total_W"], totals["capital_cost_USD"]
    per_mw: dict[str, Any] = {"value": None, "unknown_for": list(totals["power_unknown_for"])}
    if power:
        per_mw["value"] = tok / (power / 1e6)
    per_usd: dict[str, Any] = {"value": None, "unknown_for": list(totals["cost_unknown_for"])}
    if cost:
        per_usd["value"] = tok / (cost / 1e6)
    return {"tokens_per_s": tok, "tokens_per_s_per_MW": per_mw, "tokens_per_s_per_MUSD": per_usd,
            "mfu": rec["mfu"], "bottleneck": rec["bottleneck"], "layout": rec["layout"],
            "stage_accelerators": rec.get("stage_accelerators"), "stage_layers": rec.get("stage_layers"),
            "approximated": rec.get("approximated"), **_goodput_scores(rec.get("goodput"))}


def _goodput_scores(g: dict[str, Any] | None) -> dict[str, Any]:
    """Goodput, ETTR and goodput-adjusted tokens/s of a workload record (None where not run)."""
    if not g:
        return {"goodput": None, "ettr": None, "goodput_tokens_per_s": None, "goodput_marks": []}
    return {"goodput": g["goodput"]["mean"], "ettr": g["ettr"]["mean"],
            "goodput_tokens_per_s": g["effective_tokens_per_s"], "goodput_marks": list(g["marks"])}


def score_proposal(res: Any, s: ProposalSuite, folder: Path, say: Progress | None = None,
                   prune: bool = True) -> dict[str, Any]:
    """Collectives and training of one proposal (see the module docstring).

    Parameters
    ----------
    res : ProposalResult
        A proposal that passed the design rules (its ``cluster`` the file built).
    s : ProposalSuite
    folder : path
        Where the proposal's ``cluster.yaml`` is (scenarios are written beside it).
    say : callable, optional
    prune : bool
        Branch and bound in the layout search (the same best layouts and scores; False replays
        every candidate, for the record of each).

    Returns
    -------
    dict
        ``collectives`` (rows), ``training`` (one record per workload: the best layout's
        figures, ``candidates`` tried, ``status``), ``scores`` (workload -> scores) and ``wall_s``.
    """
    say = say or (lambda _msg: None)
    t0 = time.perf_counter()
    cluster_file = folder / "cluster.yaml"
    cache: dict = {}
    ref = str(cluster_file.resolve())
    keep = {wl.accelerators for wl in s.training}

    def at_scale(n: int, rc: Any, _g: Any, fabric: Any) -> None:
        if n in keep:  # the training runs reuse the build
            cache[(ref, n)] = (rc, fabric)

    coll = collective_rows(res.name, ref, res.totals["supernode_size"], s.collectives, s.network, say, at_scale)
    tc = time.perf_counter()
    engines: dict = {}  # one collective engine per built cluster, shared by every layout and workload
    training = [_training(res, wl, s, folder, cache, say, engines, prune) for wl in s.training]
    for rec in training:
        if rec["status"] == "ok":
            say(f"{res.name}: {rec['workload']} goodput over {s.goodput_days:g} days")
            rec["goodput"] = goodput(rec, folder, s, cache, [a.name for a, _ in res.proposal.accelerators])
    cache.clear()
    engines.clear()
    scores = {r["workload"]: proposal_scores(r, res.totals) for r in training if r["status"] == "ok"}
    return {"collectives": coll, "training": training, "scores": scores,
            "wall_s": {"collectives": tc - t0, "training": time.perf_counter() - tc, "total": time.perf_counter() - t0}}
