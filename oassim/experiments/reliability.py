"""``oassim.reliability(SCENARIO, ...)``: a failure/checkpoint campaign of a scenario's job.

What it does: reads the scenario (:func:`oassim.experiments.scenario.load_scenario`), builds its
cluster with the topology builder and takes the counts of ``oassim topo info``
(:func:`oassim.topology.metrics.cluster_info`), sizes the checkpoint from the model's
parameters (14 bytes per parameter, :mod:`oassim.reliability.checkpoint`) and the storage
write bandwidth, and runs :func:`oassim.reliability.run.run_campaign`. The CLI's
``oassim reliability`` and notebooks call it (docs/architecture.md, one composition root).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping, MutableMapping

from pydantic import Field

from oassim.errors import SpecError
from oassim.experiments.runner import _resolve_model
from oassim.experiments.scenario import Scenario, load_scenario
from oassim.reliability import CampaignResult, ClusterShape, checkpoint_bytes, load_rates, run_campaign
from oassim.reliability.run import check_inputs
from oassim.specio import SpecModel

__all__ = ["reliability", "cluster_counts", "validation_report", "run_reliability", "ReliabilitySweep",
           "sweep_columns", "SWEEP_COLUMNS", "DEFAULT_STORAGE_GBPS"]

#: Aggregate checkpoint write bandwidth assumed when none is given, GB/s (no published figure
#: for a given cluster; reported among the assumptions).
DEFAULT_STORAGE_GBPS = 1000.0


def cluster_counts(ref: str, accelerators: int | None, cache: MutableMapping | None = None
                   ) -> tuple[dict[str, Any], Any, Any]:
    """(part counts, ResolvedCluster, Fabric) of a cluster, built once per cache.

    The counts are the ``name``, ``accelerators``, ``nodes`` and ``links`` of
    :func:`oassim.topology.metrics.cluster_info` (:func:`oassim.reliability.counts.reliability_counts`,
    without the diameter, bisection, power and cost a campaign does not use). A cluster that
    :func:`oassim.experiments.runner.run` built into the same cache (key ``(ref, accelerators)``)
    is not built again.
    """
    from oassim.topology.cluster import build_cluster
    from oassim.topology.cluster_spec import load_cluster
    from oassim.topology.fabric import freeze
    from oassim.reliability.counts import reliability_counts

    key = ("reliability-counts", ref, accelerators)
    if cache is not None and key in cache:
        return cache[key]
    built = cache.get((ref, accelerators)) if cache is not None else None  # oassim.run's cache entry
    if built is not None:
        rc, fabric = built
    else:
        rc = load_cluster(ref, accelerators)
        fabric = freeze(build_cluster(rc))
    out = (reliability_counts(fabric), rc, fabric)
    if cache is not None:
        cache[key] = out
    return out


def _shape(info: dict[str, Any], rc: Any, per_host: Mapping[str, int]) -> ClusterShape:
    family = rc.supernode.family if rc.supernode is not None else None
    aph = per_host.get(rc.spec.name)
    if aph is None and family == "switched" and rc.domain_size <= 8:
        aph = rc.domain_size  # an HGX/DGX baseboard: the scale-up domain is the host
    cube = getattr(rc.supernode.spec, "cube", None) if rc.supernode is not None else None
    return ClusterShape(name=rc.spec.name, family=family, accelerator=rc.accelerator.name,
                        accelerators=int(info["accelerators"]), domain_size=int(rc.domain_size),
                        accelerators_per_host=aph, ocs_group=math.prod(cube) if cube else None)


def reliability(scenario: str | Path | Mapping[str, Any] | Scenario, *, days: float = 54.0, samples: int = 100,
                seed: int | None = None, checkpoint_interval_s: float | None = None,
                checkpoint_write_s: float | None = None, storage_GBps: float | None = None,
                detect_s: float = 300.0, restart_s: float = 600.0, repair_h: float = 24.0,
                spare_accelerators: int | None = None, straggler_slowdown: float = 0.0,
                comm_fraction: float = 1.0, link_loss: str = "stop", rates: str | Path | None = None,
                accelerator_rates: str | None = None, overrides: list[str] | tuple[str, ...] = (),
                recost: bool = True, cluster_cache: MutableMapping | None = None) -> CampaignResult:
    """Simulate failure/checkpoint campaigns of a scenario's job on its cluster.

    Parameters
    ----------
    scenario : path, mapping or Scenario
        A scenario file (docs/architecture.md "Scenario files"); its cluster, accelerator
        count, model (checkpoint size) and seed are used.
    days, samples : float, int
        Campaign length (days) and number of seeded campaigns.
    seed : int, optional
        Root seed; default the scenario's ``seed``.
    checkpoint_interval_s : float, optional
        Compute time between checkpoints, s; default Daly's optimum.
    checkpoint_write_s : float, optional
        Checkpoint write time, s; default the checkpoint size over ``storage_GBps``.
    storage_GBps : float, optional
        Aggregate checkpoint write bandwidth, GB/s (default :data:`DEFAULT_STORAGE_GBPS`, assumed).
    detect_s, restart_s, repair_h, spare_accelerators, straggler_slowdown, comm_fraction, link_loss
        As :func:`oassim.reliability.run.run_campaign`.
    rates : path, optional
        A reliability catalog file (default ``topologies/hardware/reliability.yaml``).
    accelerator_rates : str, optional
        Use this accelerator generation's rates (e.g. ``h100-sxm``) for parts with none.
    overrides : list of str
        ``--set`` edits of the scenario.
    recost : bool
        Re-cost each degraded failure's slowdown with the network model (a 1 GiB all-reduce on
        the degraded fabric, :mod:`oassim.reliability.recost`); False: the structural bound.
    cluster_cache : mutable mapping, optional
        Built clusters' counts by (reference, accelerators), reused across calls.

    Returns
    -------
    CampaignResult
        ``.summary()`` is the JSON record (keys of docs/metrics.md, "Reliability").
    """
    sc, source = load_scenario(scenario, overrides)
    check_inputs(days=days, samples=samples, checkpoint_interval_s=checkpoint_interval_s,
                 checkpoint_write_s=checkpoint_write_s or 0.0, detect_s=detect_s, restart_s=restart_s,
                 repair_h=repair_h, straggler_slowdown=straggler_slowdown, comm_fraction=comm_fraction,
                 link_loss=link_loss)  # before the cluster is built
    catalog = load_rates(rates)
    info, rc, fabric = cluster_counts(sc.cluster.ref, sc.cluster.accelerators, cluster_cache)
    notes = []
    if checkpoint_write_s is None:
        bw = DEFAULT_STORAGE_GBPS if storage_GBps is None else float(storage_GBps)
        if not bw > 0 or math.isinf(bw):
            raise SpecError(f"must be a finite number > 0, got {storage_GBps!r}", source="argument --storage-GBps")
        model = _resolve_model(sc, source)
        size = checkpoint_bytes(model.total_params(sc.workload.seq_len))
        checkpoint_write_s = size / (bw * 1e9)
        if storage_GBps is None:
            notes.append(f"checkpoint storage writes {bw:g} GB/s ({size / 1e12:.2f} TB in {checkpoint_write_s:.1f} s)")
    for name, value, default in (("detect", detect_s, 300.0), ("restart", restart_s, 600.0),
                                 ("repair", repair_h * 3600.0, 24 * 3600.0)):
        if value == default:
            notes.append(f"{name} time {value / 60:g} min (default, no published figure)")
    if link_loss == "stop":
        notes.append("a fabric link or spine failure stops the job (single-path RDMA), which then runs degraded")
    if comm_fraction == 1.0:
        notes.append("a degraded tier sets the whole iteration time (comm_fraction 1, an upper bound)")
    memo = None if cluster_cache is None else cluster_cache.setdefault(
        ("recost", sc.cluster.ref, sc.cluster.accelerators), {})
    return run_campaign(info, _shape(info, rc, catalog.accelerators_per_host), catalog, days=days, samples=samples,
                        seed=sc.seed if seed is None else seed, checkpoint_interval_s=checkpoint_interval_s,
                        checkpoint_write_s=float(checkpoint_write_s), detect_s=detect_s, restart_s=restart_s,
                        repair_h=repair_h, spare_accelerators=spare_accelerators,
                        straggler_slowdown=straggler_slowdown, comm_fraction=comm_fraction, link_loss=link_loss,
                        accelerator_rates=accelerator_rates, assumptions=notes, fabric=fabric if recost else None,
                        recost_memo=memo)


#: The scenario of the Llama 3 54-day check (16,384 H100 on the DGX H100 SuperPOD preset).
LLAMA3_SCENARIO = Path(__file__).resolve().parents[2] / "experiments" / "llama3-405b-16k-h100.yaml"


def _stop_rate_at(ref: str, accelerators: int, cache: MutableMapping | None) -> tuple[float, Any]:
    from oassim.reliability import exposures, resolve_rates
    from oassim.reliability.validation import stop_mtbf_hours

    catalog = load_rates()
    info, rc, _ = cluster_counts(ref, accelerators, cache)
    shape = _shape(info, rc, catalog.accelerators_per_host)
    exps, _ = exposures(info, shape, resolve_rates(catalog, shape.accelerator))
    return stop_mtbf_hours(exps), (exps, shape)


def validation_report(samples: int = 100, seed: int = 0, cache: MutableMapping | None = None) -> dict[str, Any]:
    """The validation tables: Llama 3 left out, Llama 3 consistency, other sources, UB-Mesh.

    Returns
    -------
    dict
        ``llama3_independent`` (rows of
        :func:`oassim.reliability.crosscheck.llama3_independent_rows`: the prediction with no
        S09 figure), ``llama3`` (rows of :func:`oassim.reliability.validation.llama3_rows`:
        the campaign with the S09-derived rates, a consistency check), ``other`` (source,
        figure, published, model, note), ``ubmesh_parts`` (rows of
        :func:`oassim.reliability.crosscheck.ubmesh_component_rows`: MTBFs from the part
        counts), ``ubmesh`` (availability from MTBF) and ``summary`` (the Llama 3 campaign's record).
    """
    from oassim.reliability.crosscheck import llama3_independent_rows, part_counts, ubmesh_component_rows
    from oassim.reliability.validation import llama3_rows, ubmesh_rows

    cache = {} if cache is None else cache
    res = reliability(LLAMA3_SCENARIO, days=54, samples=samples, seed=seed, cluster_cache=cache)
    s = res.summary()
    exps, shape = _stop_rate_at("dgx-h100-superpod", 16384, cache)[1]
    hosts = shape.accelerators // (shape.accelerators_per_host or 1)
    per_node_day = 1000.0 * 24.0 * sum(e.per_hour for e in exps if e.action == "stop") / hosts
    n = s["interruptions"]["mean"]
    by = s["interruptions_by_cause"]
    net_elems = sum(e.count for e in exps if e.cause == "network")
    other = [
        {"source": "S26 RSC-1 (A100, 16k)", "figure": "failures per 1000 node-days", "published": 6.5,
         "model": round(per_node_day, 2), "note": "other generation (A100); all jobs of the cluster"},
        {"source": "S26 RSC-2 (A100, 8k)", "figure": "failures per 1000 node-days", "published": 2.34,
         "model": round(per_node_day, 2), "note": "other generation (A100)"},
    ]
    for gpus, pub, unit in ((8, 47.7 * 24, "job MTTF, 8 GPUs, h"), (1024, 7.9, "job MTTF, 1,024 GPUs, h"),
                            (16384, 1.8, "job MTTF, 16,384 GPUs (projected), h")):
        mtbf = _stop_rate_at("dgx-h100-superpod", gpus, cache)[0]
        other.append({"source": "S26 RSC (A100)", "figure": unit, "published": round(pub, 1),
                      "model": round(mtbf, 1), "note": "secondary notes; A100 generation"})
    other += [
        {"source": "S09 Llama 3", "figure": "effective training time", "published": "> 0.90",
         "model": s["ettr"]["mean"], "note": "restart 15 min assumed (no published figure)"},
        {"source": "S16 MegaScale (12k GPUs)", "figure": "ETTR", "published": "> 0.90", "model": s["ettr"]["mean"],
         "note": "model at 16,384 H100"},
        {"source": "S09 Llama 3", "figure": "share GPU issues", "published": 0.587,
         "model": round(by.get("gpu", 0) / n, 3), "note": "row F0023 (press)"},
        {"source": "S09 Llama 3", "figure": "share network switch/cable", "published": 0.084,
         "model": round(by.get("network", 0) / n, 3), "note": "every link and switch failure stops the job"},
        {"source": "S09 vs S27", "figure": "network FIT per element", "published": round(35 / (net_elems * 1296) * 1e9),
         "model": "780 link / 698 switch", "note": "S09's 35 over this preset's links and switches (D)"},
        {"source": "S27 Alibaba HPN", "figure": "crashes per month, one job", "published": "1-2",
         "model": round(by.get("network", 0) / 54 * 30.44, 1),
         "note": "network stops of the 16k job; the source's job size is not stated"},
        {"source": "S29 Crusoe (H200)", "figure": "share InfiniBand", "published": 0.341,
         "model": round(by.get("network", 0) / n, 3), "note": "sum of three IB rows; secondary"},
    ]
    catalog = load_rates()
    info16k, _, _ = cluster_counts("dgx-h100-superpod", 16384, cache)
    clos, _, _ = cluster_counts("cloudmatrix384", 8192, cache)
    mesh, _, _ = cluster_counts("ub-mesh", 8192, cache)
    return {"llama3_independent": llama3_independent_rows(info16k, shape, catalog), "llama3": llama3_rows(s),
            "other": other, "ubmesh_parts": ubmesh_component_rows(part_counts(clos, 8192), part_counts(mesh, 8192)),
            "ubmesh": ubmesh_rows(), "summary": s}


def run_reliability(record: Mapping[str, Any], scenario: str | Path | Mapping[str, Any] | Scenario, *,
                    days: float, samples: int = 100, overrides: list[str] | tuple[str, ...] = (),
                    cluster_cache: MutableMapping | None = None, accelerator_rates: str | None = None,
                    recost: bool = True) -> dict[str, Any]:
    """The reliability section of an ``oassim run`` report: a campaign of the run's job.

    The share of the iteration that exposed communication takes (``exposed_comm_s /
    iteration_time_s`` of the run) is the ``comm_fraction`` a degraded fabric slows; tokens/s
    times goodput is the throughput the campaign keeps, and the checkpoint interval is given in
    iterations of the run.

    Parameters
    ----------
    record : mapping
        :func:`oassim.experiments.report_dict` of the run.
    scenario, overrides
        The run's scenario and ``--set`` edits.
    days, samples : float, int
        Campaign length and samples.
    cluster_cache, accelerator_rates, recost
        As :func:`reliability`.
    """
    it = float(record["iteration_time_s"])
    comm = min(1.0, max(0.0, float(record.get("exposed_comm_s", 0.0)) / it)) if it > 0 else 1.0
    s = reliability(scenario, days=days, samples=samples, overrides=overrides, comm_fraction=comm,
                    cluster_cache=cluster_cache, accelerator_rates=accelerator_rates, recost=recost).summary()
    return {
        "days": days, "samples": samples, "comm_fraction": round(comm, 4),
        "interruptions_per_day": s["interruptions_per_day"], "mtbf_hours": s["mtbf_hours"],
        "goodput": s["goodput"], "ettr": s["ettr"],
        "effective_tokens_per_s": round(float(record["tokens_per_s"]) * s["goodput"]["mean"], 1),
        "checkpoint_every_iterations": round(s["checkpoint"]["interval_s"] / it, 1) if it > 0 else None,
        "lost_hours_by_cause": s["lost_hours_by_cause"], "unset": s["unset"], "assumptions": s["assumptions"],
    }


class ReliabilitySweep(SpecModel):
    """The ``reliability:`` section of a sweep file: a campaign per point (docs/sweeps.md).

    Parameters
    ----------
    days : float
        Campaign length, days.
    samples : int
        Seeded campaigns per point.
    """

    days: float = Field(default=54.0, gt=0, le=3650)
    samples: int = Field(default=20, ge=1, le=1000, strict=True)


#: Columns a sweep point gets from its campaign.
SWEEP_COLUMNS = ("goodput", "ettr", "interruptions_per_day", "mtbf_hours", "effective_tokens_per_s")


def sweep_columns(row: Mapping[str, Any], scenario: Mapping[str, Any], *, days: float, samples: int,
                  cache: MutableMapping | None = None) -> dict[str, Any]:
    """The reliability columns of one finished sweep point (means over the samples).

    ``row`` holds the point's headline metrics (``iteration_time_s``, ``exposed_comm_s``,
    ``tokens_per_s``); the campaign runs on the point's resolved ``scenario``.
    """
    sec = run_reliability(row, dict(scenario), days=days, samples=samples, cluster_cache=cache)
    out = {k: sec[k]["mean"] if isinstance(sec[k], dict) else sec[k] for k in SWEEP_COLUMNS}
    out["reliability_days"] = days
    return out
