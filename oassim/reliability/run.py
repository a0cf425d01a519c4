"""One reliability campaign from a cluster's counts: exposures, checkpoint rule, samples, Results.

What is modelled: :func:`run_campaign` joins the pieces of this package. It resolves the rates of
the cluster's accelerator generation, turns the topology counts into failure sources with
their blast radius, picks the checkpoint interval (the user's, or Daly's optimum for the job
MTBF that the stop failures give), checks the inputs and runs the seeded samples.

Why here and not in the composition root: it needs no file format, only the counts
(``cluster_info``) and numbers; :mod:`oassim.experiments.reliability` reads the scenario file,
builds the cluster and calls it (docs/architecture.md, layers).
"""

from __future__ import annotations

import math
from typing import Any

from oassim.errors import SpecError
from oassim.reliability.campaign import CampaignParams, simulate_samples
from oassim.reliability.checkpoint import daly_interval_s
from oassim.reliability.exposure import ClusterShape, exposures
from oassim.reliability.rates import ReliabilityCatalog, resolve_rates
from oassim.reliability.recost import recost_exposures
from oassim.reliability.summary import CampaignResult

__all__ = ["run_campaign", "check_inputs", "UNLIMITED"]

#: ``spare_accelerators=None``: a pool large enough that no restart waits for a repair.
UNLIMITED = None


def _check(name: str, value: float, *, low: float = 0.0, strict: bool = False) -> None:
    if not (value > low if strict else value >= low) or not math.isfinite(value):
        raise SpecError(f"must be a finite number {'>' if strict else '>='} {low:g}, got {value!r}",
                        source=f"argument {name}")


def check_inputs(*, days: float, samples: int, checkpoint_interval_s: float | None = None,
                 checkpoint_write_s: float = 0.0, detect_s: float = 0.0, restart_s: float = 0.0,
                 repair_h: float = 0.0, straggler_slowdown: float = 0.0, comm_fraction: float = 1.0,
                 link_loss: str = "stop") -> None:
    """The checks of :func:`run_campaign` that need no cluster (callers run them before building one).

    Raises
    ------
    SpecError
        One line naming the argument and what is allowed.
    """
    _check("--days", days, strict=True)
    _check("--samples", samples, low=1)
    for name, v in (("--checkpoint-write-s", checkpoint_write_s), ("--detect-s", detect_s),
                    ("--restart-s", restart_s), ("--repair-h", repair_h),
                    ("--straggler-slowdown", straggler_slowdown), ("--comm-fraction", comm_fraction)):
        _check(name, float(v))
    if link_loss not in ("stop", "degrade"):
        raise SpecError(f"expected stop or degrade, got {link_loss!r}", source="argument --link-loss")
    if comm_fraction > 1:
        raise SpecError(f"must be at most 1 (a share of the iteration), got {comm_fraction!r}",
                        source="argument --comm-fraction")
    hours = days * 24.0
    if checkpoint_interval_s is not None:
        _check("--checkpoint-interval-s", checkpoint_interval_s, strict=True)
        if checkpoint_interval_s > hours * 3600.0:
            raise SpecError(f"{checkpoint_interval_s / 3600:g} h is longer than the campaign ({hours:g} h = "
                            f"--days {days:g}); give at most {hours * 3600:g} s",
                            source="argument --checkpoint-interval-s")


def run_campaign(info: dict[str, Any], shape: ClusterShape, catalog: ReliabilityCatalog, *, days: float = 54.0,
                 samples: int = 100, seed: int = 0, checkpoint_interval_s: float | None = None,
                 checkpoint_write_s: float = 60.0, detect_s: float = 300.0, restart_s: float = 600.0,
                 repair_h: float = 24.0, spare_accelerators: int | None = UNLIMITED,
                 straggler_slowdown: float = 0.0, comm_fraction: float = 1.0, link_loss: str = "stop",
                 accelerator_rates: str | None = None, assumptions: list[str] | None = None,
                 fabric: Any = None, recost_memo: dict | None = None) -> CampaignResult:
    """Simulate ``samples`` campaigns of ``days`` on a cluster.

    Parameters
    ----------
    info : dict
        :func:`oassim.topology.metrics.cluster_info` of the cluster.
    shape : ClusterShape
        Family, domain size and host size of the cluster (blast radius).
    catalog : ReliabilityCatalog
        Component rates (:func:`oassim.reliability.rates.load_rates`).
    days : float
        Campaign length, days (> 0).
    samples : int
        Independent campaigns (>= 1); the spread of their outcomes is the reported interval.
    seed : int
        Root seed (children by ``SeedSequence.spawn``).
    checkpoint_interval_s : float, optional
        Compute time between checkpoints, s; default Daly's optimum for the job MTBF.
    checkpoint_write_s : float
        Blocking checkpoint write time, s.
    detect_s, restart_s : float
        Failure detection and restart (reload, re-initialise) time, s.
    repair_h : float
        Time a failed part is out (repair or replacement), h; also the length of a degradation.
    spare_accelerators : int, optional
        Spare pool in accelerators; None: enough that no restart waits for a repair.
    straggler_slowdown : float
        Constant fractional slowdown from stragglers (0.05 = 5% slower).
    comm_fraction : float
        Share of the iteration time a degraded tier's bandwidth sets (1 = fully
        communication-bound, an upper bound on degraded slowdowns).
    link_loss : {"stop", "degrade"}
        What a fabric link or spine failure does to the running job (``CampaignParams``).
    accelerator_rates : str, optional
        Take the per-accelerator rates of this generation (an assumption, reported).
    fabric : Fabric, optional
        The cluster's frozen fabric: when given, each degraded failure's slowdown is re-costed
        by the network model (:func:`oassim.reliability.recost.recost_exposures`); else the
        structural ``f / (1 - f)``.
    recost_memo : dict, optional
        Re-costed slowdowns of this fabric kept between calls.

    Raises
    ------
    SpecError
        A negative or non-finite parameter, a checkpoint interval longer than the campaign,
        a spare pool larger than the cluster (one line naming the argument).
    """
    check_inputs(days=days, samples=samples, checkpoint_interval_s=checkpoint_interval_s,
                 checkpoint_write_s=checkpoint_write_s, detect_s=detect_s, restart_s=restart_s, repair_h=repair_h,
                 straggler_slowdown=straggler_slowdown, comm_fraction=comm_fraction, link_loss=link_loss)
    hours = days * 24.0
    a = int(info["accelerators"])
    if spare_accelerators is not None:
        _check("--spares", spare_accelerators)
        if spare_accelerators > a:
            raise SpecError(f"a pool of {spare_accelerators:,} spare accelerators is larger than the cluster "
                            f"({a:,}); give at most {a:,}", source="argument --spares")
    rates = resolve_rates(catalog, shape.accelerator, accelerator_rates)
    exps, unset = exposures(info, shape, rates)
    recost_notes: list[str] = []
    if fabric is not None:
        exps, recost_notes = recost_exposures(fabric, exps, recost_memo)
    stop_rate = sum(e.per_hour for e in exps if e.action == "stop" or link_loss == "stop")
    if checkpoint_interval_s is None:
        mtbf_s = 3600.0 / stop_rate if stop_rate > 0 else float("inf")
        interval = min(daly_interval_s(checkpoint_write_s, mtbf_s) if checkpoint_write_s > 0 else hours * 3600.0,
                       hours * 3600.0)
        rule = "Daly optimum" if stop_rate > 0 else "no stop failures: none needed"
    else:
        interval, rule = float(checkpoint_interval_s), "user"
    biggest = max((e.units_out for e in exps), default=0)
    pool = spare_accelerators if spare_accelerators is not None else max(a, biggest) * 4
    params = CampaignParams(days=float(days), interval_s=float(interval), write_s=float(checkpoint_write_s),
                            detect_s=float(detect_s), restart_s=float(restart_s), repair_h=float(repair_h),
                            spare_accelerators=int(pool), straggler_slowdown=float(straggler_slowdown),
                            comm_fraction=float(comm_fraction), link_loss=link_loss)
    tallies = simulate_samples(exps, params, int(samples), int(seed))
    notes = list(assumptions or [])
    if fabric is None and any(e.action == "degraded" for e in exps):
        notes.append("degraded slowdowns structural, f / (1 - f): not re-costed by the network model")
    if accelerator_rates:
        notes.append(f"per-accelerator, host and NIC rates of the {accelerator_rates} generation")
    if spare_accelerators is None:
        notes.append("spare pool large enough that no restart waits for a repair")
    return CampaignResult(cluster=str(info.get("name", "")), accelerators=a, params=params, samples=tallies,
                          exposures=exps, unset=unset, seed=int(seed), checkpoint_rule=rule, assumptions=notes,
                          accelerator_rates=accelerator_rates, spare_accelerators=spare_accelerators,
                          recost_notes=recost_notes)
