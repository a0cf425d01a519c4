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
  best layout's iteration beside it.

Why mixed accelerators are approximated: the cluster graph carries one accelerator type, so a
proposal mixing types is simulated with every accelerator the slowest type (lowest dense peak
at the workload's precision) - the member that paces every synchronous collective and every
data-parallel step of a job spread over all types. The number is marked ``approximated`` with
that reason: faster types' idle time is not credited, and pipeline stages are not assigned by
chip type.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import yaml

from oassim.errors import SpecError
from oassim.experiments.evaluate import collective_rows, limiter
from oassim.experiments.layout_search import expand, search
from oassim.experiments.proposal_suite import ProposalSuite, ProposalWorkload
from oassim.hardware.models import Accelerator
from oassim.workload import resolve_model

__all__ = ["pacing_accelerator", "score_proposal", "proposal_scores"]

Progress = Callable[[str], None]


def pacing_accelerator(types: list[Accelerator], precisions: tuple[str, ...]) -> tuple[Accelerator, str, str | None]:
    """The accelerator type a run uses, the precision, and why the run is approximated (None if exact).

    The precision is the first of ``precisions`` every type has a peak figure for; the type is
    the one with the lowest dense peak at it (ties: the smaller HBM).

    Raises
    ------
    SpecError
        No precision of the workload is supported by every type.
    """
    for prec in precisions:
        try:
            peaks = [(a.peak_flops(prec), a.hbm_capacity_GB, i) for i, a in enumerate(types)]
        except SpecError:
            continue
        slow = types[min(peaks)[2]]
        note = None
        if len(types) > 1:
            note = (f"approximated: the cluster mixes {', '.join(a.name for a in types)}; every accelerator is "
                    f"simulated as {slow.name}, the slowest at {prec.upper()} ({slow.peak_flops(prec) / 1e12:,.0f} "
                    "TFLOPS), which paces each synchronous step; faster types' spare time is not credited")
        return slow, prec, note
    raise SpecError(f"no accelerator type supports all of {', '.join(precisions)} (precision of the workload)")


def _dump(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def _training(res: Any, wl: ProposalWorkload, s: ProposalSuite, folder: Path, cache: dict,
              say: Progress) -> dict[str, Any]:
    """One workload in its best layout on the proposal's cluster, with every candidate tried."""
    from oassim.experiments.outputs import report_dict
    from oassim.experiments.runner import run

    types = [a for a, _ in res.proposal.accelerators]
    rec: dict[str, Any] = {"workload": wl.name, "model": wl.model, "accelerators": wl.accelerators}
    try:
        part, prec, approx = pacing_accelerator(types, wl.precisions)
    except SpecError as exc:
        return {**rec, "status": f"failed: {exc.message}", "candidates": []}
    cluster = dict(res.cluster)
    cluster_file = folder / "cluster.yaml"
    if part.name != types[0].name:  # the graph carries the pacing type
        cluster["accelerator"] = part.model_dump(mode="json", exclude_none=True)
        cluster_file = folder / f"cluster-{part.name}.yaml"
        cluster_file.write_text(f"# the cluster of {res.name} with every accelerator {part.name} (the slowest type)\n"
                                + _dump(cluster), encoding="utf-8")
    layers = resolve_model(wl.model).layers
    cands = expand(wl.layouts, wl.fixed, layers=layers, accelerators=wl.accelerators,
                   global_batch=wl.global_batch, micro_batch=wl.micro_batch, domain_size=res.totals["supernode_size"])

    def evaluate(par: dict[str, Any]) -> dict[str, Any]:
        sc = {"name": f"{res.slug}-{wl.name}", "description": f"OAS-Bench 2.0 {wl.name} on proposal {res.name}",
              "sources": [wl.source], "cluster": {"file": str(cluster_file.resolve()), "accelerators": wl.accelerators},
              "workload": {"model": wl.model, "seq_len": wl.seq_len, "global_batch": wl.global_batch,
                           "micro_batch": wl.micro_batch, "precision": prec, "recompute": wl.recompute},
              "parallelism": par, "network": s.network, "seed": s.seed}
        t = time.perf_counter()
        r = report_dict(run(sc, cluster_cache=cache))
        breakdown, findings = r.get("breakdown", {}), list(r.get("findings") or [])
        return {"tokens_per_s": r["tokens_per_s"], "iteration_time_s": r["iteration_time_s"], "mfu": r["mfu"],
                "tokens_per_s_per_accelerator": r["tokens_per_s"] / wl.accelerators,
                "exposed_comm_s": r["exposed_comm_s"], "bubble_s": r["bubble_s"],
                "memory_per_accelerator_GB": r["memory_per_accelerator_GB"], "breakdown": breakdown,
                "bottleneck": limiter(breakdown, findings), "findings": findings, "scenario": sc,
                "wall_s": time.perf_counter() - t}

    t0 = time.perf_counter()
    result = search(cands, evaluate, lambda m: say(f"{res.name}: {wl.name} {m}"))
    rec.update(precision=prec, pacing_accelerator=part.name, approximated=approx,
               candidates=[{"layout": c.label, "parallelism": c.parallelism, "status": c.status,
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
            "file": f"../{cluster_file.name}", "accelerators": wl.accelerators}}), encoding="utf-8")
    return {**rec, "status": "ok", "layout": result.best.label, "parallelism": result.best.parallelism, **best}


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
            "approximated": rec.get("approximated")}


def score_proposal(res: Any, s: ProposalSuite, folder: Path, say: Progress | None = None) -> dict[str, Any]:
    """Collectives and training of one proposal (see the module docstring).

    Parameters
    ----------
    res : ProposalResult
        A proposal that passed the design rules (its ``cluster`` the file built).
    s : ProposalSuite
    folder : path
        Where the proposal's ``cluster.yaml`` is (scenarios are written beside it).
    say : callable, optional

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
    training = [_training(res, wl, s, folder, cache, say) for wl in s.training]
    cache.clear()
    scores = {r["workload"]: proposal_scores(r, res.totals) for r in training if r["status"] == "ok"}
    return {"collectives": coll, "training": training, "scores": scores,
            "wall_s": {"collectives": tc - t0, "training": time.perf_counter() - tc, "total": time.perf_counter() - t0}}
