"""OAS-Bench 2.0 on supernode proposals: structure, collectives and training of each design, ranked.

What it does: :func:`evaluate_proposals` loads every proposal file (all before any work),
builds each one's ~16k-accelerator cluster and checks it against ``oassim topo check``'s design
rules (:func:`oassim.experiments.proposal_build.build_proposal`), then scores every proposal that
passes them (:func:`oassim.experiments.proposal_score.score_proposal`: collective
microbenchmarks on its cluster, and each training workload in the best layout of a bounded
search) and ranks them by throughput (:mod:`oassim.experiments.proposal_rank`).
:func:`write_proposal_report` writes the report folder (``report.html``, ``report.md``, a
figure, ``results.json``, CSV tables and every input) all or nothing. ``oassim evaluate`` takes
proposal files here and interconnect spec files to the OAS-Bench 1.0 suite
(:mod:`oassim.experiments.report_html`).

The structure is exact for the cluster as built: switches, optical modules by type, cables,
power by part and capital cost, each with the parts that have no published figure named. A
proposal that breaks a design rule is listed with its violations and is not scored. Goodput
over the suite's campaign (30 days in the full profile) comes from the failures model
(:func:`oassim.experiments.proposal_score.goodput`), with its ``uncalibrated`` / ``partial``
marks beside the number.
"""

from __future__ import annotations

import json
import platform
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable

import yaml

from oassim import __version__
from oassim.errors import SpecError
from oassim.experiments.oasbench import slug
from oassim.experiments.outputs import jsonable, write_folder
from oassim.experiments.proposal import ResolvedProposal, load_proposal
from oassim.experiments.proposal_build import build_proposal, summarise_violations
from oassim.experiments.proposal_rank import rank_proposals, ranking_blocks, score_blocks
from oassim.experiments.proposal_score import score_proposal
from oassim.experiments.proposal_suite import ProposalSuite, get_proposal_suite
from oassim.experiments.report_plots import proposal_figure
from oassim.experiments.report_render import Block, html_document, markdown, write_csv
from oassim.experiments.runner import git_state

__all__ = ["PROPOSAL_SUITE", "ProposalResult", "ProposalEvaluation", "load_proposals",
           "evaluate_proposals", "write_proposal_report", "proposal_blocks"]

#: Version of the proposal suite (docs/oas-bench.md); the profile's name is in each report.
PROPOSAL_SUITE = "oas-bench-2.0"


@dataclass
class ProposalResult:
    """One proposal's inputs, totals and design-rule findings.

    Attributes
    ----------
    proposal : ResolvedProposal
    cluster : dict
        The cluster file built from it.
    notes : list of str
        Assumptions made while building it.
    totals : dict
        :func:`oassim.experiments.proposal_build.build_proposal`'s totals.
    violations : list of dict
        Broken design rules, by rule: ``rule``, ``count``, ``examples``.
    wall_s : float
    """

    proposal: ResolvedProposal
    cluster: dict[str, Any]
    notes: list[str]
    totals: dict[str, Any]
    violations: list[dict[str, Any]] = field(default_factory=list)
    wall_s: float = 0.0
    score: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.proposal.name

    @property
    def slug(self) -> str:
        return slug(self.proposal.name)

    @property
    def scored(self) -> bool:
        """False when the design breaks a rule (listed with its violations, not scored)."""
        return not self.violations


@dataclass
class ProposalEvaluation:
    """Evaluated proposals in input order, their ranking (best first) and provenance."""

    results: list[ProposalResult]
    provenance: dict[str, Any]
    suite: ProposalSuite | None = None
    ranking: list[dict[str, Any]] = field(default_factory=list)

    @property
    def workloads(self) -> list[str]:
        return [w.name for w in self.suite.training] if self.suite is not None else []

    def rows(self) -> list[dict[str, Any]]:
        """One flat row of totals per proposal (``proposals.csv``)."""
        out = []
        for r in self.results:
            t = r.totals
            out.append({"proposal": r.name, "design_rules": "ok" if r.scored else "violated",
                        "violations": sum(v["count"] for v in r.violations), "accelerators": t["accelerators"],
                        "supernodes": t["supernodes"], "supernode_size": t["supernode_size"],
                        "accelerators_by_type": t["accelerators_by_type"], "switches": t["switches_total"],
                        "optical_modules": t["optical_modules"],
                        "optical_modules_by_type": t["optical_modules_by_type"],
                        "cables": t["cables_total"], "power_W": t["power_W"]["total_W"],
                        "power_known_W": t["power_known_W"], "power_unknown_for": t["power_unknown_for"],
                        "capital_cost_USD": t["capital_cost_USD"], "cost_known_USD": t["cost_known_USD"],
                        "cost_unknown_for": t["cost_unknown_for"],
                        **self._score_columns(r)})
        return out

    def _score_columns(self, r: ProposalResult) -> dict[str, Any]:
        rank = next((x for x in self.ranking if x["proposal"] == r.name), {})
        out: dict[str, Any] = {"rank": rank.get("rank"), "throughput_score": rank.get("score"),
                               "ranking_status": rank.get("status")}
        for w in self.workloads:
            sc = (r.score or {}).get("scores", {}).get(w, {})
            out.update({f"{w}_tokens_per_s": sc.get("tokens_per_s"), f"{w}_mfu": sc.get("mfu"),
                        f"{w}_layout": sc.get("layout"),
                        f"{w}_tokens_per_s_per_MW": (sc.get("tokens_per_s_per_MW") or {}).get("value"),
                        f"{w}_tokens_per_s_per_MUSD": (sc.get("tokens_per_s_per_MUSD") or {}).get("value"),
                        f"{w}_stage_accelerators": " ".join(sc.get("stage_accelerators") or ()) or None,
                        f"{w}_stage_layers": " ".join(str(n) for n in sc.get("stage_layers") or ()) or None,
                        f"{w}_approximated": sc.get("approximated"), f"{w}_goodput": sc.get("goodput"),
                        f"{w}_ettr": sc.get("ettr"), f"{w}_goodput_tokens_per_s": sc.get("goodput_tokens_per_s"),
                        f"{w}_goodput_marks": "; ".join(sc.get("goodput_marks") or ()) or None})
        return out

    def collective_rows(self) -> list[dict[str, Any]]:
        return [{"proposal": r.name, **c} for r in self.results for c in (r.score or {}).get("collectives", [])]

    def training_rows(self) -> list[dict[str, Any]]:
        skip = ("breakdown", "findings", "candidates", "parallelism", "exposed_comm_by_dim")
        return [{"proposal": r.name, **{k: v for k, v in t.items() if k not in skip}}
                for r in self.results for t in (r.score or {}).get("training", [])]


def load_proposals(files: Iterable[str | Path]) -> list[ResolvedProposal]:
    """Validate every proposal before any work; names must differ.

    Raises
    ------
    SpecError
        The first invalid proposal (``FILE: key.path: message``) or a repeated name.
    """
    out: list[ResolvedProposal] = []
    seen: dict[str, str] = {}
    for f in files:
        rp = load_proposal(f)
        key = slug(rp.name)
        if key in seen:
            raise SpecError(f"proposal name '{rp.name}' is already used by {seen[key]} (names must differ)",
                            source=rp.source, path="name")
        seen[key] = rp.source
        out.append(rp)
    if not out:
        raise SpecError("no proposal file given", source="arguments")
    return out


def evaluate_proposals(files: Iterable[str | Path], progress: Callable[[str], None] | None = None,
                       accelerators: int | None = None, suite: ProposalSuite | str = "full",
                       workdir: str | Path | None = None, prune: bool = True) -> ProposalEvaluation:
    """Build, check and count every proposal, score those that pass the design rules, rank them.

    Parameters
    ----------
    files : iterable of path
        Proposal files (``oassim schema proposal``).
    progress : callable, optional
        Called with one line per proposal.
    accelerators : int, optional
        Cluster size for every proposal (default: each proposal's ``cluster_accelerators``; the
        quick profile: its largest job).
    suite : ProposalSuite or {"full", "quick"}
    workdir : path, optional
        Folder of each proposal's inputs (``<proposal>/cluster.yaml``, ``scenarios/``); a
        temporary folder when None.
    prune : bool
        Branch and bound in each layout search (the same best layouts and scores; False runs
        every candidate).
    """
    say = progress or (lambda _msg: None)
    s = get_proposal_suite(suite)
    loaded = load_proposals(files)
    if accelerators is None and s.profile == "quick":
        accelerators = s.max_accelerators
    with tempfile.TemporaryDirectory(prefix="oasbench2-") as scratch:
        return _evaluate(loaded, say, accelerators, s, Path(workdir) if workdir is not None else Path(scratch), prune)


def _evaluate(loaded: list[ResolvedProposal], say: Callable[[str], None], accelerators: int | None,
              s: ProposalSuite, root: Path, prune: bool = True) -> ProposalEvaluation:
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    t0 = time.perf_counter()
    results = []
    for rp in loaded:
        t = time.perf_counter()
        pc = build_proposal(rp, accelerators)
        res = ProposalResult(rp, pc.cluster, pc.notes, pc.totals, summarise_violations(pc.violations),
                             time.perf_counter() - t)
        del pc
        state = "design rules ok" if res.scored else f"{sum(v['count'] for v in res.violations):,} violations"
        say(f"{rp.name}: {res.totals['accelerators']:,} accelerators built, {state} ({res.wall_s:.1f} s)")
        if res.scored:
            folder = root / res.slug
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "cluster.yaml").write_text(_cluster_text(res), encoding="utf-8")
            res.score = score_proposal(res, s, folder, say, prune)
            say(f"{rp.name}: scored in {res.score['wall_s']['total']:.1f} s")
        results.append(res)
    prov = {"oassim_version": __version__, "git": git_state(), "python": platform.python_version(),
            "platform": platform.platform(), "started_utc": started, "suite": s.name, "profile": s.profile,
            "network": s.network, "seed": s.seed, "wall_s": time.perf_counter() - t0}
    return ProposalEvaluation(results, prov, s, rank_proposals(results, [w.name for w in s.training]))


def _cluster_text(r: ProposalResult) -> str:
    return f"# the cluster of proposal {r.name} (oassim topo info / topo check this file)\n" + _dump(r.cluster)


def write_proposal_report(files: Iterable[str | Path], out_dir: str | Path,
                          progress: Callable[[str], None] | None = None, replace: bool = True,
                          accelerators: int | None = None, suite: ProposalSuite | str = "full") -> list[Path]:
    """Evaluate proposals and write the report folder, all or nothing (see the module docstring).

    ``suite`` is the OAS-Bench 2.0 profile (``"full"`` or ``"quick"``); the proposals' inputs and
    best-layout scenarios go to ``inputs/<proposal>/`` of the report.

    Raises
    ------
    SpecError
        An invalid proposal, or (``replace`` False) a non-empty ``out_dir``: checked before
        anything is written.
    """
    files = list(files)
    load_proposals(files)
    out = Path(out_dir)
    if not replace and out.is_dir() and any(out.iterdir()):
        raise SpecError(f"{out} is not empty (an earlier report?): add --force to replace its report, or choose "
                        "another folder", source="argument --out")

    def render(folder: Path) -> None:
        write_report(evaluate_proposals(files, progress, accelerators, suite, folder / "inputs"), folder)

    return write_folder(out_dir, render)


def _dump(data: Any) -> str:
    return yaml.safe_dump(jsonable(data), sort_keys=False, allow_unicode=True)


def write_report(ev: ProposalEvaluation, folder: str | Path) -> None:
    """Write the report files of ``ev`` into ``folder``."""
    folder = Path(folder)
    inputs = folder / "inputs"
    for r in ev.results:
        d = inputs / r.slug
        d.mkdir(parents=True, exist_ok=True)
        if r.proposal.source != "<inline>":
            (d / "proposal.yaml").write_text(Path(r.proposal.source).read_text(encoding="utf-8"), encoding="utf-8")
        if r.proposal.interconnect is not None:
            (d / "interconnect.yaml").write_text(
                f"# the interconnect spec of {r.name} as evaluated (module presets inlined)\n"
                + _dump(r.proposal.interconnect.model_dump(mode="json", exclude_none=True)), encoding="utf-8")
        (d / "cluster.yaml").write_text(_cluster_text(r), encoding="utf-8")
    (inputs / "provenance.json").write_text(json.dumps(jsonable(ev.provenance), indent=2) + "\n", encoding="utf-8")
    caption = "Power per accelerator by part (published figures only) and optical modules per accelerator"
    (folder / "proposals.png").write_bytes(png := proposal_figure(ev))
    write_csv(folder / "proposals.csv", ev.rows())
    write_csv(folder / "collectives.csv", ev.collective_rows())
    write_csv(folder / "training.csv", ev.training_rows())
    results = {"suite": ev.provenance.get("suite"), "definition": ev.suite.describe() if ev.suite else None,
               "provenance": ev.provenance, "ranking": ev.ranking,
               "proposals": [{"name": r.name, "source": r.proposal.source, "scored": r.scored,
                              "violations": r.violations, "notes": r.notes, "totals": r.totals,
                              "missing_figures": _missing(r), **r.score,
                              "wall_s": {"build": r.wall_s, **r.score.get("wall_s", {})}} for r in ev.results]}
    (folder / "results.json").write_text(json.dumps(jsonable(results), indent=2) + "\n", encoding="utf-8")
    blocks = proposal_blocks(ev, caption, inputs)
    (folder / "report.md").write_text(markdown(blocks), encoding="utf-8")
    (folder / "report.html").write_text(html_document(blocks, {"proposals.png": png},
                                                      f"{ev.provenance.get('suite')} proposal evaluation"),
                                        encoding="utf-8")


def _missing(r: ProposalResult) -> list[str]:
    """Every figure the totals had to leave out, in words."""
    t = r.totals
    out = [f"power of {p}" for p in t["power_unknown_for"]]
    out += [f"price of {p}" for p in t["cost_unknown_for"]]
    if r.proposal.interconnect is not None:
        out += [f"interconnect {r.proposal.interconnect.name}: {f}" for f in r.proposal.interconnect.unset_fields()]
    return out


def _mw(w: float | None) -> str:
    return "unknown" if w is None else f"{w / 1e6:,.2f}"


def _usd(v: float | None, known: float, unknown: list[str]) -> str:
    if v is not None:
        return f"{v:,.0f}"
    return "unknown" + (f" (priced parts {known:,.0f}; no price for {len(unknown)} parts)" if known else "")


def _part_power(t: dict[str, Any], key: str) -> str:
    """One part class's power: "unknown" when no part of it has a figure, "+ unknown" when some lack one."""
    v, unknown = t["power_W"][key], t["power_unknown_by_part"].get(key)
    label = key.removesuffix("_W").replace("_", " ")
    if unknown and v == 0:
        return f"{label} unknown"
    return f"{label} {v / 1e6:,.3f} MW" + (" + unknown" if unknown else "")


def _geometry(r: ProposalResult) -> str:
    sn = r.proposal.proposal.supernode
    return f"{sn.family} " + ", ".join(f"{k} {v}" for k, v in sn.spec.items())


def proposal_blocks(ev: ProposalEvaluation, caption: str, inputs: Path) -> list[Block]:
    """The report as a list of blocks (both renderings are made from it)."""
    prov = ev.provenance
    git = prov.get("git") or {}
    commit = (git.get("commit") or "unknown")[:12] + (" (uncommitted changes)" if git.get("dirty") else "")
    b: list[Block] = [("h", 1, f"OAS-Bench 2.0 proposal evaluation: {', '.join(r.name for r in ev.results)}"),
                      ("p", f"Suite {prov.get('suite')}: each proposal's cluster is built as proposed, checked "
                       "against the design rules of oassim topo check and counted; each that passes runs the "
                       "collective microbenchmarks and every training workload in the best layout of a bounded search "
                       f"({prov.get('network', 'analytical')} network). oassim {prov.get('oassim_version')}, git "
                       f"{commit}, started {prov.get('started_utc')} UTC, wall time {prov.get('wall_s', 0):.0f} s. "
                       "The proposal format, the suite and every total: docs/oas-bench.md."
                       + (" Quick profile: smaller clusters and jobs, a smoke test whose numbers are not comparable "
                          "with the full suite." if prov.get("profile") == "quick" else "")),
                      ("p", "Goodput: seeded failures campaigns of each workload's best layout on the proposal's "
                       "cluster (failure rates of every counted part, Daly checkpoint interval, restarts; "
                       "docs/reliability.md). Every proposal uses the H100 generation's accelerator, host and NIC "
                       "rates, so the fabric's parts and blast radius decide; 'uncalibrated' marks a chip they "
                       "stand in for, 'partial' names counted parts with no published rate.")]
    b += ranking_blocks(ev.ranking, ev.results, ev.workloads)
    b.append(("h", 2, "Proposals side by side"))
    rows = []
    for r in ev.results:
        t = r.totals
        rules = "ok" if r.scored else f"violated ({sum(v['count'] for v in r.violations):,}): not scored"
        types = ", ".join(f"{n:,} x {k}" for k, n in t["accelerators_by_type"].items())
        rows.append([r.name, rules, types, _geometry(r), f"{t['supernodes']:,} x {t['supernode_size']:,}",
                     f"{t['switches_total']:,}",
                     f"{t['optical_modules']:,} ({t['optical_modules_per_accelerator']:.2f})",
                     f"{t['cables_total']:,}", _mw(t["power_W"]["total_W"]), _mw(t["power_known_W"]),
                     "unknown" if t["power_W_per_accelerator"] is None else f"{t['power_W_per_accelerator']:,.0f}",
                     _usd(t["capital_cost_USD"], t["cost_known_USD"], t["cost_unknown_for"]),
                     _goodput_cell(r, ev.workloads)])
    b.append(("table", ["proposal", "design rules", "accelerators", "supernode", "supernodes x size", "switches",
                        "optical modules (per acc.)", "cables", "power MW", "power of parts with a figure MW",
                        "power W/acc.", "capital cost USD", "goodput"], rows))
    b.append(("figure", "proposals.png", caption))
    for r in ev.results:
        b += _proposal_section(r)
    b += [("h", 2, "Inputs"),
          ("p", "Each proposal's cluster is inputs/<proposal>/cluster.yaml: oassim topo info and oassim topo check "
           "on it reproduce every count above.")]
    b.append(("code", "provenance.json", (inputs / "provenance.json").read_text(encoding="utf-8"),
              "inputs/provenance.json"))
    for r in ev.results:
        for f in sorted((inputs / r.slug).glob("*.yaml")):
            rel = f.relative_to(inputs).as_posix()
            b.append(("code", rel, f.read_text(encoding="utf-8"), f"inputs/{rel}"))
    return b


def _goodput_cell(r: ProposalResult, workloads: Iterable[str]) -> str:
    """Goodput of each workload's best layout, or why there is none."""
    scores = (r.score or {}).get("scores", {})
    cells = [f"{w} {scores[w]['goodput']:.1%}" for w in workloads if (scores.get(w) or {}).get("goodput") is not None]
    return ", ".join(cells) if cells else "not scored"


def _proposal_section(r: ProposalResult) -> list[Block]:
    t, p = r.totals, r.proposal.proposal
    b: list[Block] = [("h", 2, r.name),
                      ("p", f"{p.description}. Proposed by {p.proposer or 'unnamed'}; file {r.proposal.source}.")]
    if r.violations:
        b.append(("p", "Breaks design rules, so it is not scored:"))
        b.append(("list", [f"[{v['rule']}] {v['count']:,} violations, e.g. " + " | ".join(v["examples"])
                           for v in r.violations]))
    items = [f"accelerators: {', '.join(f'{n:,} x {k}' for k, n in t['accelerators_by_type'].items())} "
             f"({t['supernodes']:,} supernodes of {t['supernode_size']:,}; requested {t['accelerators_requested']:,})",
             "switches: " + (", ".join(f"{s['tier']} {s['part']} {s['count']:,}" for s in t["switches"]) or "none"),
             "optical modules: " + (", ".join(f"{k} {v:,}" for k, v in t["optical_modules_by_type"].items()) or "none"),
             "cables: " + ", ".join(f"{c['tier']} ({c['technology']}, {c['medium']}) {c['cables']:,}"
                                    for c in t["cables"]),
             "power by part: " + ", ".join(_part_power(t, k) for k in t["power_W"] if k != "total_W"),
             f"power total: {_mw(t['power_W']['total_W'])} MW" + (
                 f" (not counted, no published figure: {', '.join(t['power_unknown_for'])})"
                 if t["power_unknown_for"] else ""),
             f"capital cost: {_usd(t['capital_cost_USD'], t['cost_known_USD'], t['cost_unknown_for'])} USD"
             + (f" (no price for: {', '.join(t['cost_unknown_for'])})" if t["cost_unknown_for"] else "")]
    items += list(r.notes)
    if p.notes:
        items.append(f"proposal notes: {p.notes}")
    b.append(("list", items))
    missing = _missing(r)
    if missing:
        b += [("p", f"Figures left out of {r.name}'s totals and scores (not published):"), ("list", missing)]
    return b + score_blocks(r)
