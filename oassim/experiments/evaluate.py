"""Running OAS-Bench on interconnect candidates and ranking them.

What it does: :func:`evaluate` takes interconnect spec files (or validated specs), builds each
candidate's reference cluster (:func:`oassim.experiments.oasbench.reference_design`), runs the
suite's collective microbenchmarks on the collective engine and its training workloads through
the composition root :func:`oassim.experiments.runner.run`, reads power, optical modules and
cost from :func:`oassim.topology.metrics.cluster_info`, and ranks the candidates. The result is
data (:class:`Evaluation`); :mod:`oassim.experiments.report_html` renders it.

Why the score is what it is (``docs/oas-bench.md``): the committee's question is how fast a
cluster built on the interconnect trains, so the primary key is the training score, the
geometric mean over the suite's workloads of each candidate's tokens/s per accelerator relative
to the best candidate on that workload (1.0 = best everywhere). Scores within 1% (equal to two
decimals) are ordered by the collective score, the same geometric mean over every measured
(op, scale, size) bus bandwidth. Cost and power are reported beside the rank, never folded into
it: most prices are unpublished, and an unknown is shown as unknown.
"""

from __future__ import annotations

import math
import platform
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import yaml

from oassim.errors import SpecError
from oassim.experiments.oasbench import CollectiveBench, ReferenceDesign, Suite, get_suite, reference_design, slug
from oassim.hardware import InterconnectSpec, load_interconnect

__all__ = ["Candidate", "Evaluation", "load_candidates", "evaluate", "rank", "geomean", "limiter", "collective_rows"]

Progress = Callable[[str], None]


@dataclass
class Candidate:
    """One candidate's inputs and results.

    Attributes
    ----------
    spec : InterconnectSpec
        The resolved spec (module presets inlined).
    source : str
        The spec file ("<inline>" for a spec given as a model).
    design : ReferenceDesign
        Its reference cluster and derived figures.
    structure : dict
        Cluster figures at the suite's largest scale: ``accelerators``, ``power_W_per_accelerator``
        (None when nothing is known), ``power_unknown_for``, ``optical_modules_per_accelerator``,
        ``capital_cost_USD_per_accelerator`` (None when any price is missing),
        ``cost_unknown_for``, ``scaleup_bandwidth_per_accelerator_GBps``, ``switches``.
    collectives : list of dict
        One row per (op, scale, size): ``busbw_GBps``, ``algbw_GBps``, ``time_us``, ``algorithm``,
        ``bottleneck_tier``; ``status`` "ok" or why it was not run.
    training : list of dict
        One record per workload: throughput, MFU, breakdown, ``bottleneck`` (the first finding),
        ``scenario_file``; ``status`` "ok" or the error line.
    wall_s : dict
        Wall-clock seconds: ``collectives``, ``training``, ``total``.
    inputs : dict of str to str
        Every input file of the candidate (``spec.yaml``, ``cluster.yaml``,
        ``scenarios/*.yaml``) by path relative to its folder, kept so that a report can carry
        them even when the evaluation ran in a temporary folder.
    """

    spec: InterconnectSpec
    source: str
    design: ReferenceDesign
    structure: dict[str, Any] = field(default_factory=dict)
    collectives: list[dict[str, Any]] = field(default_factory=list)
    training: list[dict[str, Any]] = field(default_factory=list)
    wall_s: dict[str, float] = field(default_factory=dict)
    inputs: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def slug(self) -> str:
        return slug(self.spec.name)


@dataclass
class Evaluation:
    """An evaluated suite: candidates in input order, the ranking, provenance."""

    suite: Suite
    candidates: list[Candidate]
    ranking: list[dict[str, Any]]
    provenance: dict[str, Any]

    def ranked(self) -> list[Candidate]:
        """Candidates in rank order."""
        by_name = {c.name: c for c in self.candidates}
        return [by_name[r["candidate"]] for r in self.ranking]

    def collectives_rows(self) -> list[dict[str, Any]]:
        """Every collective row, with the candidate name."""
        return [{"candidate": c.name, **r} for c in self.candidates for r in c.collectives]

    def training_rows(self) -> list[dict[str, Any]]:
        """Every training record (without findings lists), with the candidate name."""
        return [{"candidate": c.name, **{k: v for k, v in r.items() if k not in ("findings", "breakdown")}}
                for c in self.candidates for r in c.training]


def load_candidates(specs: Iterable[str | Path | InterconnectSpec]) -> list[tuple[InterconnectSpec, str]]:
    """Validate every candidate before any work starts.

    Raises
    ------
    SpecError
        The first invalid spec file (``FILE: key.path: message``), two candidates with the
        same name, or candidates of different domains (scale-up and scale-out).
    """
    out: list[tuple[InterconnectSpec, str]] = []
    seen: dict[str, str] = {}
    for item in specs:
        if isinstance(item, InterconnectSpec):
            spec, source = item, "<inline>"
        else:
            source = str(item)
            spec = load_interconnect(item)
        key = slug(spec.name)
        if key in seen:
            raise SpecError(f"candidate name '{spec.name}' is already used by {seen[key]} (names must differ)",
                            source=source, path="name")
        seen[key] = source
        if out and spec.domain != out[0][0].domain:
            raise SpecError(f"is a {spec.domain} spec but {out[0][1]} is {out[0][0].domain}: candidates of one "
                            "report must share a domain (each domain has its own reference cluster)",
                            source=source, path="domain")
        out.append((spec, source))
    if not out:
        raise SpecError("no interconnect spec given", source="arguments")
    return out


def geomean(values: Sequence[float]) -> float | None:
    """Geometric mean of positive values (None when empty or any value is not positive)."""
    if not values or any(not (v > 0) for v in values):
        return None
    return math.exp(sum(math.log(v) for v in values) / len(values))


def evaluate(specs: Iterable[str | Path | InterconnectSpec], suite: Suite | str = "full", *,
             workdir: str | Path | None = None, progress: Progress | None = None) -> Evaluation:
    """Run OAS-Bench on each candidate and rank them.

    Parameters
    ----------
    specs : iterable of path or InterconnectSpec
        Interconnect spec files (``oassim schema interconnect``) or validated specs.
    suite : Suite or {"full", "quick"}
        Suite profile (default: the full OAS-Bench).
    workdir : path, optional
        Folder for each candidate's inputs (``<candidate>/spec.yaml``, ``cluster.yaml``,
        ``scenarios/*.yaml``); a temporary folder removed afterwards when None.
    progress : callable, optional
        Called with one line per step (for a progress display).

    Returns
    -------
    Evaluation

    Raises
    ------
    SpecError
        An invalid spec (before any run) or a spec that cannot build the reference cluster.
    """
    s = get_suite(suite)
    say = progress or (lambda _msg: None)
    loaded = load_candidates(specs)
    designs = [(spec, src, reference_design(spec, s, source=src)) for spec, src in loaded]
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="oasbench-") as scratch:
        root = Path(workdir) if workdir is not None else Path(scratch)
        candidates = []
        for spec, src, design in designs:
            cand = Candidate(spec, src, design)
            folder = root / cand.slug
            _write_inputs(cand, folder)
            tc = time.perf_counter()
            cand.collectives, cand.structure = _collectives(cand, folder / "cluster.yaml", s, say)
            tt = time.perf_counter()
            cand.training = _training(cand, folder, s, say)
            cand.wall_s = {"collectives": tt - tc, "training": time.perf_counter() - tt,
                           "total": time.perf_counter() - tc}
            cand.inputs = {p.relative_to(folder).as_posix(): p.read_text(encoding="utf-8")
                           for p in sorted(folder.rglob("*")) if p.is_file()}
            say(f"{cand.name}: done in {cand.wall_s['total']:.1f} s")
            candidates.append(cand)
    return Evaluation(s, candidates, rank(candidates), _provenance(s, started, time.perf_counter() - t0))


def _provenance(s: Suite, started: str, wall: float) -> dict[str, Any]:
    from oassim import __version__
    from oassim.experiments.runner import git_state

    return {"oassim_version": __version__, "git": git_state(), "python": platform.python_version(),
            "platform": platform.platform(), "started_utc": started, "suite": s.name, "profile": s.profile,
            "network": s.network, "seed": s.seed, "wall_s": wall}


def _dump(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def _write_inputs(cand: Candidate, folder: Path) -> None:
    """The resolved spec and the reference cluster file, where the scenarios find them."""
    (folder / "scenarios").mkdir(parents=True, exist_ok=True)
    spec = cand.spec.model_dump(mode="json", exclude_none=True)
    (folder / "spec.yaml").write_text(
        f"# {cand.name} as evaluated (resolved from {cand.source}; module presets inlined)\n" + _dump(spec),
        encoding="utf-8")
    (folder / "cluster.yaml").write_text(
        f"# OAS-Bench reference cluster of {cand.name} (oassim topo info this file)\n"
        + _dump(cand.design.cluster), encoding="utf-8")


def _collectives(cand: Candidate, cluster_file: Path, s: Suite, say: Progress):
    """Collective rows at every scale, and the cluster figures at the suite's largest scale."""
    from oassim.topology.cluster import build_cluster
    from oassim.topology.cluster_spec import load_cluster
    from oassim.topology.fabric import freeze
    from oassim.topology.metrics import cluster_info

    structure: dict[str, Any] = {}

    def at_scale(n: int, _rc: Any, g: Any, fabric: Any) -> None:
        if n == s.max_accelerators:
            structure.update(_structure(cand, cluster_info(g, fabric)))

    rows = collective_rows(cand.name, cluster_file, cand.design.domain_size, s.collectives, s.network, say, at_scale)
    if not structure:
        g = build_cluster(load_cluster(cluster_file, s.max_accelerators))
        structure = _structure(cand, cluster_info(g, freeze(g)))
    return rows, structure


def collective_rows(name: str, cluster_file: str | Path, domain_size: int, bench: CollectiveBench, network: str,
                    say: Progress, at_scale: Callable[[int, Any, Any, Any], None] | None = None
                    ) -> list[dict[str, Any]]:
    """The collective microbenchmarks on one cluster file: one row per (scale, op, size).

    Each scale builds the cluster at that many accelerators and runs every op and size as one
    group of all ranks (algorithm chosen by the engine's tuner); a row holds time, algbw, busbw,
    the algorithm and the bottleneck link tier, or ``status`` "not run: <the engine's reason>" for
    a group no algorithm can run. ``at_scale(n, resolved cluster, graph, fabric)``
    is called after each scale (to reuse the build).
    """
    import numpy as np

    from oassim.collectives import CollectiveEngine, CollectiveRequest
    from oassim.collectives.ops import format_size
    from oassim.topology.cluster import build_cluster
    from oassim.topology.cluster_spec import load_cluster
    from oassim.topology.fabric import freeze

    rows: list[dict[str, Any]] = []
    for scale in bench.scales:
        n = domain_size if scale == "domain" else int(scale)
        label = f"domain ({n})" if scale == "domain" else f"{n:,}"
        t = time.perf_counter()
        rc = load_cluster(cluster_file, n)
        g = build_cluster(rc)
        fabric = freeze(g)
        engine = CollectiveEngine(fabric, network)
        groups = np.arange(n, dtype=np.int64)[None, :]
        for op in bench.ops:
            for size in bench.sizes:
                base = {"op": op, "scale": label, "ranks": n, "size_bytes": int(size), "size": format_size(size)}
                if op == "all_to_all" and n > bench.all_to_all_max_ranks:
                    rows.append({**base, "status": f"not run: all-to-all over more than "
                                 f"{bench.all_to_all_max_ranks:,} ranks is beyond the engine (n^2 flows)"})
                    continue
                try:
                    r = engine.run(CollectiveRequest(op, size, groups, "auto", source=f"OAS-Bench {op}"))
                except SpecError as exc:  # e.g. a group that does not spread evenly over the domains
                    rows.append({**base, "status": f"not run: {exc.message}"})
                    continue
                row = r.row()
                rows.append({**base, "status": "ok", "time_us": row["time_us"], "algbw_GBps": row["algbw_GBps"],
                             "busbw_GBps": row["busbw_GBps"], "algorithm": row["algorithm"],
                             "bottleneck_tier": row["bottleneck_tier"]})
        if at_scale is not None:
            at_scale(n, rc, g, fabric)
        del engine, fabric, g
        say(f"{name}: collectives at {label} ranks ({time.perf_counter() - t:.1f} s)")
    return rows


def _structure(cand: Candidate, info: dict[str, Any]) -> dict[str, Any]:
    """Per-accelerator power, optics and cost of the reference cluster, unknowns named."""
    a = info["accelerators"]
    spec = cand.spec
    unknown_power = list(info["power_unknown_for"])
    link_W = 0.0
    tech = f"candidate-{cand.slug}"
    cables = sum(r["cables"] for r in info["links"] if r["technology"] == tech)
    if spec.power_pJ_per_bit is None:
        unknown_power.append("link energy (power_pJ_per_bit)")
    else:  # both directions of every candidate link
        link_W = cables * 2 * spec.port_data_rate_Gbps * 1e9 * spec.power_pJ_per_bit * 1e-12
    total = info["power_W"]["total_W"] + link_W
    cost = info["capital_cost_USD"]
    switches = sum(r["count"] for r in info["nodes"] if r["kind"] == "switch")
    return {
        "accelerators": a,
        "supernodes": info["supernodes"],
        "power_W_per_accelerator": total / a if a else None,
        "power_W_by_part": {**{k: v / a for k, v in info["power_W"].items() if k != "total_W"},
                            "candidate_links_W": link_W / a},
        "power_unknown_for": unknown_power,
        "optical_modules_per_accelerator": info["optical_modules_per_accelerator"],
        "optical_modules_by_type": info["optical_modules_by_type"],
        "capital_cost_USD_per_accelerator": None if cost is None else cost / a,
        "cost_unknown_for": info["cost_unknown_for"],
        "scaleup_bandwidth_per_accelerator_GBps": info["scaleup_bandwidth_per_accelerator_GBps"],
        "candidate_links": cables,
        "switches_per_accelerator": switches / a if a else None,
        "cluster_bisection_GBps": info.get("cluster_bisection_GBps"),
        "diameter_hops": info.get("diameter_hops"),
    }


def _training(cand: Candidate, folder: Path, s: Suite, say: Progress) -> list[dict[str, Any]]:
    from oassim.experiments.outputs import report_dict
    from oassim.experiments.runner import run

    out = []
    rel_cache: dict = {}  # the reference cluster's counts, built once per size
    for wl in s.training:
        path = folder / "scenarios" / f"{wl.name}.yaml"
        scenario = wl.scenario(cand.name, "../cluster.yaml", network=s.network, seed=s.seed)
        path.write_text(f"# OAS-Bench {s.name}: {wl.name} on the reference cluster of {cand.name}\n"
                        "# reproduce: oassim run THIS_FILE (its cluster file is ../cluster.yaml)\n" + _dump(scenario),
                        encoding="utf-8")
        rec: dict[str, Any] = {"workload": wl.name, "accelerators": wl.accelerators,
                               "scenario_file": f"{cand.slug}/scenarios/{wl.name}.yaml"}
        t = time.perf_counter()
        try:
            r = report_dict(run(path))
        except SpecError as exc:
            rec.update(status=f"failed: {exc.message}")
            out.append(rec)
            say(f"{cand.name}: {wl.name} failed: {exc}")
            continue
        findings = list(r.get("findings") or [])
        rec.update(
            status="ok", iteration_time_s=r["iteration_time_s"], tokens_per_s=r["tokens_per_s"],
            tokens_per_s_per_accelerator=r["tokens_per_s"] / wl.accelerators, mfu=r["mfu"],
            tflops_per_accelerator=r["tflops_per_accelerator"], exposed_comm_s=r["exposed_comm_s"],
            exposed_comm_by_dim=r.get("exposed_comm_by_dim", {}), bubble_s=r["bubble_s"],
            memory_per_accelerator_GB=r["memory_per_accelerator_GB"], calibrated=r.get("calibrated"),
            breakdown=r.get("breakdown", {}), bottleneck=limiter(r.get("breakdown", {}), findings),
            findings=findings, wall_s=time.perf_counter() - t,
        )
        rec.update(_goodput(r, path, rel_cache))
        out.append(rec)
        say(f"{cand.name}: {wl.name} {rec['tokens_per_s']:,.0f} tokens/s, MFU {rec['mfu']:.1%} "
            f"({rec['wall_s']:.1f} s)")
    return out


#: The goodput term (docs/oas-bench.md): a campaign of this many days and samples, with the
#: H100-generation per-accelerator rates for every candidate (the same for all: only the
#: interconnect's links, switches and blast radius differ) and structural degraded slowdowns.
GOODPUT_DAYS, GOODPUT_SAMPLES, GOODPUT_RATES = 54.0, 20, "h100-sxm"


def _goodput(record: dict[str, Any], scenario: Path, cache: dict) -> dict[str, Any]:
    """``goodput`` of a training workload's job on the reference cluster, and the tokens/s per
    accelerator it keeps (shown beside the rank, not folded into it)."""
    from oassim.experiments.reliability import run_reliability

    sec = run_reliability(record, scenario, days=GOODPUT_DAYS, samples=GOODPUT_SAMPLES, cluster_cache=cache,
                          accelerator_rates=GOODPUT_RATES, recost=False)
    g = sec["goodput"]["mean"]
    return {"goodput": g, "interruptions_per_day": sec["interruptions_per_day"]["mean"],
            "goodput_tokens_per_s_per_accelerator": record["tokens_per_s"] * g / record["accelerators"]}


_PART_WORDS = {"exposed_tp": ("exposed TP communication", "TP "), "exposed_cp": ("exposed CP communication", "CP "),
               "exposed_ep": ("exposed EP communication", "EP "), "exposed_dp": ("exposed DP communication", "DP "),
               "exposed_pp": ("exposed PP communication", "PP "), "bubble": ("pipeline bubble", "The pipeline bubble"),
               "imbalance": ("stage imbalance (waiting for busier stages)", "Stage imbalance"),
               "sync": ("waiting at synchronous collectives", ""), "optimizer": ("the optimizer step", "")}


def limiter(breakdown: dict[str, float], findings: Sequence[str]) -> str:
    """What holds an iteration back, in one sentence: the largest part of the iteration that is
    not compute, with the bottleneck finding about it (``oassim run``'s plain-words findings).
    """
    total = sum(breakdown.values())
    parts = {k: v for k, v in breakdown.items() if k != "compute" and v > 0}
    if not parts or total <= 0:
        return findings[0] if findings else "compute bound (no exposed communication or bubble)"
    top = max(parts, key=parts.__getitem__)
    words, prefix = _PART_WORDS.get(top, (top, ""))
    about = next((f for f in findings if prefix and f.startswith(prefix)), "")
    head = f"{parts[top] / total:.0%} of the iteration is {words} (compute {breakdown.get('compute', 0.0) / total:.0%})"
    return f"{head}. {about}" if about else head


def rank(candidates: Sequence[Candidate]) -> list[dict[str, Any]]:
    """The ranking (best first) with each candidate's scores.

    Returns
    -------
    list of dict
        ``rank``, ``candidate``, ``training_score`` (geometric mean over workloads of tokens/s
        per accelerator relative to the best candidate; None when a workload failed),
        ``collective_score`` (the same over every (op, scale, size) busbw measured for all
        candidates), ``tokens_per_s_per_accelerator`` per workload, ``mfu`` per workload.
    """
    best_tok: dict[str, float] = {}
    for c in candidates:
        for r in c.training:
            if r.get("status") == "ok":
                best_tok[r["workload"]] = max(best_tok.get(r["workload"], 0.0), r["tokens_per_s_per_accelerator"])
    points: dict[tuple, dict[str, float]] = {}
    for c in candidates:
        for r in c.collectives:
            if r.get("status") == "ok":
                points.setdefault((r["op"], r["ranks"] if "domain" not in r["scale"] else "domain",
                                   r["size_bytes"]), {})[c.name] = r["busbw_GBps"]
    common = {k: v for k, v in points.items() if len(v) == len(candidates)}
    rows = []
    for c in candidates:
        ok = {r["workload"]: r for r in c.training if r.get("status") == "ok"}
        rel = [ok[w]["tokens_per_s_per_accelerator"] / best_tok[w] for w in best_tok if w in ok]
        complete = len(ok) == len(c.training) and len(rel) == len(best_tok)
        coll = [v[c.name] / max(v.values()) for v in common.values() if max(v.values()) > 0]
        rows.append({
            "candidate": c.name,
            "training_score": geomean(rel) if complete else None,
            "collective_score": geomean(coll),
            "tokens_per_s_per_accelerator": {w: r.get("tokens_per_s_per_accelerator") for w, r in ok.items()},
            "mfu": {w: r.get("mfu") for w, r in ok.items()},
        })

    def key(row: dict[str, Any]) -> tuple:
        t, b = row["training_score"], row["collective_score"]
        return (t is None, -round(t, 2) if t is not None else 0.0, -(b or 0.0))

    rows.sort(key=key)
    for i, row in enumerate(rows, 1):
        row["rank"] = i
    return rows
