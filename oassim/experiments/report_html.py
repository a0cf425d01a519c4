"""The OAS-Bench report: a self-contained HTML file and a Markdown file, with their evidence.

What is written into the report folder (``oassim evaluate ... --out DIR``):

- ``report.html``: self-contained (figures as base64 ``data:`` URIs, every input inline, no
  external reference) for a committee to circulate as one file;
- ``report.md`` with the figures beside it as PNG files;
- ``results.json`` (every number), ``collectives.csv`` and ``training.csv`` (flat rows);
- ``inputs/``: per candidate the resolved spec, the reference cluster file and the scenario of
  each training run (``oassim run inputs/<candidate>/scenarios/<workload>.yaml`` reruns it),
  plus ``suite.yaml`` (the suite definition) and ``provenance.json`` (oassim version, git
  state, Python, date, wall time).

Why one document model: the HTML and the Markdown are two renderings of the same list of
blocks (:mod:`oassim.experiments.report_render`), so they can never
disagree. Everything is rendered into a temporary folder beside
``DIR`` and moved in only when complete (:func:`oassim.experiments.outputs.write_folder`), so a
failure leaves nothing half-written.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Iterable

import yaml

from oassim.errors import SpecError
from oassim.experiments.evaluate import Evaluation, evaluate, load_candidates
from oassim.experiments.oasbench import Suite, get_suite, reference_design
from oassim.experiments.outputs import jsonable, write_folder
from oassim.experiments.proposal import is_proposal_document
from oassim.experiments.proposal_report import write_proposal_report
from oassim.experiments.report_render import Block, html_document, markdown, write_csv
from oassim.hardware import InterconnectSpec
from oassim.specio import read_yaml

__all__ = ["write_evaluation", "write_report", "report_blocks"]


def write_evaluation(specs: Iterable[str | Path | InterconnectSpec], out_dir: str | Path,
                     suite: Suite | str = "full", progress: Callable[[str], None] | None = None,
                     replace: bool = True) -> list[Path]:
    """Evaluate candidates on OAS-Bench and write the report folder, all or nothing.

    Parameters
    ----------
    specs : iterable of path or InterconnectSpec
        Interconnect spec files, or supernode proposal files (``oassim schema proposal``; all
        candidates of one report are of one kind): proposals go to
        :func:`oassim.experiments.proposal_report.write_proposal_report` with the OAS-Bench 2.0
        profile of the same name (``suite`` must then be ``"full"`` or ``"quick"``).
    out_dir : str or Path
        Report folder (created if needed; entries of an earlier report are replaced).
    suite : Suite or {"full", "quick"}
    progress : callable, optional
        Called with one line per step.
    replace : bool
        Replace the entries of an earlier report in ``out_dir``; when False a non-empty
        ``out_dir`` is refused before any work (``oassim evaluate`` without ``--force``).

    Returns
    -------
    list of Path
        The entries written in ``out_dir``.

    Raises
    ------
    SpecError
        An invalid spec or proposal, a mix of both, or (``replace`` False) a non-empty
        ``out_dir``: checked before anything is written.
    """
    specs = list(specs)
    if _proposal_files(specs):
        return write_proposal_report(specs, out_dir, progress, replace, suite=suite)
    s = get_suite(suite)
    for spec, source in load_candidates(specs):  # every spec is checked before any file exists
        reference_design(spec, s, source=source)
    out = Path(out_dir)
    if not replace and out.is_dir() and any(out.iterdir()):
        raise SpecError(f"{out} is not empty (an earlier report?): add --force to replace its report, or choose "
                        "another folder", source="argument --out")

    def render(folder: Path) -> None:
        ev = evaluate(specs, s, workdir=folder / "inputs", progress=progress)
        write_report(ev, folder)

    return write_folder(out_dir, render)


def _proposal_files(specs: list) -> bool:
    """Whether the candidates are proposal files (all of them) rather than interconnect specs."""
    kinds = []
    for item in specs:
        if isinstance(item, InterconnectSpec):
            kinds.append((False, "<inline>"))
        else:
            kinds.append((is_proposal_document(read_yaml(item)), str(item)))
    if any(k for k, _ in kinds) and not all(k for k, _ in kinds):
        first = next(src for k, src in kinds if k)
        odd = next(src for k, src in kinds if not k)
        raise SpecError(f"is an interconnect spec but {first} is a proposal: the candidates of one report are all "
                        "interconnect specs or all proposals", source=odd)
    return bool(kinds) and kinds[0][0]


def write_report(ev: Evaluation, folder: str | Path) -> None:
    """Write the report files of ``ev`` into ``folder`` (``folder/inputs`` holds the inputs)."""
    from oassim.experiments.report_plots import report_figures

    folder = Path(folder)
    inputs = folder / "inputs"
    inputs.mkdir(parents=True, exist_ok=True)
    for cand in ev.candidates:  # an evaluation run in a temporary folder carries its inputs
        for rel, text in cand.inputs.items():
            target = inputs / cand.slug / rel
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text, encoding="utf-8")
    (inputs / "suite.yaml").write_text(f"# {ev.suite.name} ({ev.suite.profile} profile) as run\n"
                                       + yaml.safe_dump(ev.suite.describe(), sort_keys=False), encoding="utf-8")
    (inputs / "provenance.json").write_text(json.dumps(jsonable(ev.provenance), indent=2) + "\n", encoding="utf-8")
    figures = report_figures(ev)
    for name, (_, png) in figures.items():
        (folder / name).write_bytes(png)
    write_csv(folder / "collectives.csv", ev.collectives_rows())
    write_csv(folder / "training.csv", ev.training_rows())
    (folder / "results.json").write_text(json.dumps(jsonable(_results(ev)), indent=2) + "\n", encoding="utf-8")
    blocks = report_blocks(ev, {k: v[0] for k, v in figures.items()}, inputs)
    (folder / "report.md").write_text(markdown(blocks), encoding="utf-8")
    page = html_document(blocks, {k: v[1] for k, v in figures.items()}, f"{ev.suite.name} interconnect evaluation")
    (folder / "report.html").write_text(page, encoding="utf-8")


def _results(ev: Evaluation) -> dict[str, Any]:
    return {
        "suite": ev.suite.describe(),
        "provenance": ev.provenance,
        "ranking": ev.ranking,
        "candidates": [{
            "name": c.name, "source": c.source, "spec": c.spec.model_dump(mode="json", exclude_none=True),
            "unset_fields": c.spec.unset_fields(), "reference": c.design.figures(), "structure": c.structure,
            "training": c.training, "collectives": c.collectives, "wall_s": c.wall_s,
        } for c in ev.candidates],
    }


# -- formatting -------------------------------------------------------------------------------


def _num(v: Any, fmt: str = ",.3g", none: str = "n/a") -> str:
    if v is None:
        return none
    if isinstance(v, float):
        return format(v, fmt)
    return str(v)


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.1%}"


def _unknown(value: float | None, parts: list[str], fmt: str) -> str:
    if value is None:
        return "unknown (no published price for: " + ", ".join(parts) + ")"
    return format(value, fmt) + (f" (not counted, unpublished: {', '.join(parts)})" if parts else "")


def report_blocks(ev: Evaluation, captions: dict[str, str], inputs: Path) -> list[Block]:
    """The report as a list of blocks (both renderings are made from it)."""
    s, prov = ev.suite, ev.provenance
    git = prov.get("git") or {}
    commit = (git.get("commit") or "unknown")[:12] + (" (uncommitted changes)" if git.get("dirty") else "")
    b: list[Block] = [("h", 1, f"OAS-Bench interconnect evaluation: {', '.join(c.name for c in ev.ranked())}")]
    b.append(("p", f"Suite {s.name} ({s.profile} profile), network model {s.network}, seed {s.seed}. "
              f"oassim {prov.get('oassim_version')}, git {commit}, started {prov.get('started_utc')} UTC, "
              f"wall time {prov.get('wall_s', 0):.0f} s. Definitions, formulas and the reference cluster: "
              "docs/oas-bench.md."))
    if s.profile != "full":
        b.append(("p", f"Warning: the {s.profile} profile is a smoke test with smaller scales and batches; "
                  "its numbers are not comparable with the full OAS-Bench."))
    wls = [t.name for t in s.training]
    by_name = {c.name: c for c in ev.candidates}
    b += [("h", 2, "Ranking"),
          ("p", "Rank by training score: the geometric mean over the training workloads of tokens/s per "
           "accelerator relative to the best candidate on that workload (1.00 = best on every workload); "
           "scores equal to two decimals are ordered by the collective score (the same mean over every "
           "measured bus bandwidth). Power, optics and cost are shown beside the rank, not folded into it.")]
    rows = []
    for r in ev.ranking:
        c = by_name[r["candidate"]]
        st = c.structure
        rows.append([str(r["rank"]), c.name, _num(r["training_score"], ".3f"), _num(r["collective_score"], ".3f"),
                     *[_num(r["tokens_per_s_per_accelerator"].get(w), ",.0f") for w in wls],
                     *[_pct(r["mfu"].get(w)) for w in wls],
                     _num(c.design.accelerator_payload_GBps, ",.0f"),
                     _num(st.get("power_W_per_accelerator"), ",.0f"),
                     _num(st.get("optical_modules_per_accelerator"), ".2f"),
                     "unknown" if st.get("capital_cost_USD_per_accelerator") is None
                     else _num(st["capital_cost_USD_per_accelerator"], ",.0f")])
    b.append(("table", ["rank", "candidate", "training score", "collective score",
                        *[f"{w} tokens/s/acc." for w in wls], *[f"{w} MFU" for w in wls],
                        "payload GB/s/acc.", "power W/acc.", "optical modules/acc.", "cost USD/acc."], rows))
    b.append(("figure", "training.png", captions["training.png"]))
    b += _candidate_blocks(ev)
    b += _training_blocks(ev)
    b += _collective_blocks(ev, captions)
    b += _structure_blocks(ev, captions)
    b += _input_blocks(ev, inputs)
    return b


def _candidate_blocks(ev: Evaluation) -> list[Block]:
    ref = ev.suite.reference
    b: list[Block] = [("h", 2, "Candidates and their reference clusters"),
                      ("p", f"Every candidate runs on the same reference: {ref.accelerator} compute, HBM, power and "
                       f"NIC; scale-up candidates form single-tier switched domains of min({ref.domain_size}, radix, "
                       "max_domain_size) accelerators with one switch chip per accelerator port (ports from the spec, "
                       f"else {ref.lane_budget} lanes / lanes per port) on the fixed 400G RoCE fat-tree; scale-out "
                       "candidates join fixed 8-GPU NVLink 5 nodes. Port payload = lane rate x lanes x encoding x "
                       "protocol efficiency / 8.")]
    rows = []
    for c in ev.ranked():
        sp, d = c.spec, c.design
        proto = sp.protocol_efficiency_value
        rows.append([c.name, sp.domain, sp.spec_version or "-", f"{sp.lane_rate_Gbps:g} x {sp.lanes_per_port}",
                     f"{sp.encoding_efficiency:.4f}" + ("" if sp.encoding is not None else " (unset)"),
                     "unknown (1.0 used)" if proto is None else f"{proto:.4f}", f"{d.port_payload_GBps:,.2f}",
                     f"{d.ports_per_accelerator} ({d.ports_from})", f"{d.accelerator_payload_GBps:,.1f}",
                     f"{d.domain_size}"
                     + (f" (single-tier max {d.natural_domain_size})" if d.natural_domain_size else ""),
                     _num(d.switches_per_supernode), f"{sp.switch.radix}", _num(sp.switch.latency_ns, "g", "unknown"),
                     _num(sp.hop_latency_ns, "g", "unknown"), "yes" if sp.switch.in_network_reduction else "no",
                     "; ".join(f"{k}: {v['class']}" + (f" + {v['module']}" if v.get("module") else "")
                               for k, v in d.reach.items())])
    b.append(("table", ["candidate", "domain", "version", "lane Gb/s x lanes", "encoding", "protocol eff.",
                        "port payload GB/s", "ports/acc.", "payload GB/s/acc.", "domain size", "switches/supernode",
                        "radix", "switch ns", "hop ns", "in-network reduction", "reach class used"], rows))
    for c in ev.ranked():
        items = [f"source file: {c.source}", f"unknown figures: {', '.join(c.spec.unset_fields()) or 'none'}"]
        items += list(c.design.notes)
        if c.spec.notes:
            items.append(f"spec notes: {c.spec.notes}")
        b += [("p", f"{c.name}: {c.spec.description}"), ("list", items)]
    return b


def _training_blocks(ev: Evaluation) -> list[Block]:
    b: list[Block] = [("h", 2, "Training workloads"),
                      ("p", "One optimizer step of each workload on each reference cluster (oassim run). MFU counts "
                       "model FLOPs only (docs/metrics.md). The bottleneck column names the largest part of the "
                       "iteration that is not compute and the finding about it.")]
    for t in ev.suite.training:
        b.append(("h", 3, f"{t.name}: {t.accelerators:,} accelerators, seq {t.seq_len:,}, batch {t.global_batch:,}, "
                  f"{t.precision}, parallelism {', '.join(f'{k} {v}' for k, v in t.parallelism.items())}"))
        rows = []
        for c in ev.ranked():
            r = next(x for x in c.training if x["workload"] == t.name)
            if r.get("status") != "ok":
                rows.append([c.name, r.get("status", "failed"), *["n/a"] * 7, r["scenario_file"]])
                continue
            # figures the compute model sets carry the flag when its efficiencies are not fitted
            u = " (uncalibrated)" if r.get("calibrated") is False else ""
            rows.append([c.name, f"{r['iteration_time_s']:.3f}{u}", f"{r['tokens_per_s']:,.0f}{u}",
                         f"{r['tokens_per_s_per_accelerator']:,.1f}{u}", _pct(r["mfu"]) + u,
                         _num(r.get("goodput"), ".3f"), f"{r['exposed_comm_s']:.3f}", f"{r['bubble_s']:.3f}",
                         r["bottleneck"], "inputs/" + r["scenario_file"]])
        b.append(("table", ["candidate", "iteration s", "tokens/s", "tokens/s/acc.", "MFU", "goodput",
                            "exposed comm s", "bubble s", "bottleneck", "scenario"], rows))
    return b


def _collective_blocks(ev: Evaluation, captions: dict[str, str]) -> list[Block]:
    bench = ev.suite.collectives
    b: list[Block] = [("h", 2, "Collective microbenchmarks"),
                      ("p", "One group of all ranks at each scale (nccl-tests sizes and busbw definitions, "
                       "algorithm chosen by the engine's tuner). Each cell: busbw GB/s (algorithm, bottleneck "
                       "link tier).")]
    rows_all = ev.collectives_rows()
    cands = [c.name for c in ev.ranked()]
    for op in bench.ops:
        b += [("h", 3, op), ("figure", f"busbw-{op}.png", captions[f"busbw-{op}.png"])]
        cell: dict[tuple, str] = {}
        keys: list[tuple] = []
        for r in rows_all:
            if r["op"] != op:
                continue
            k = ("domain" if "domain" in r["scale"] else r["scale"], r["size"])
            keys.append(k)
            cell[k + (r["candidate"],)] = (f"{r['busbw_GBps']:,.1f} ({r['algorithm']}, {r['bottleneck_tier']})"
                                           if r.get("status") == "ok" else "not run")
        rows = [[k[0], k[1], *[cell.get(k + (c,), "n/a") for c in cands]] for k in dict.fromkeys(keys)]
        b.append(("table", ["ranks", "size", *cands], rows))
        skipped = {r["status"] for r in rows_all if r["op"] == op and r.get("status") != "ok"}
        if skipped:
            b.append(("list", sorted(skipped)))
    return b


def _structure_blocks(ev: Evaluation, captions: dict[str, str]) -> list[Block]:
    b: list[Block] = [("h", 2, "Power, optics and cost per accelerator"),
                      ("p", f"At {ev.suite.max_accelerators:,} accelerators (oassim topo info on each reference "
                       "cluster). Only published figures are summed; parts without one are named, and a cost is "
                       "shown only when every part has a published price."),
                      ("figure", "power-optics.png", captions["power-optics.png"])]
    rows = []
    for c in ev.ranked():
        st = c.structure
        parts = ", ".join(f"{k.removesuffix('_W')} {v:,.1f}" for k, v in st["power_W_by_part"].items())
        mods = ", ".join(f"{k} {v:,}" for k, v in st["optical_modules_by_type"].items()) or "none"
        rows.append([c.name, _unknown(st["power_W_per_accelerator"], st["power_unknown_for"], ",.0f"), parts,
                     f"{st['optical_modules_per_accelerator']:.2f} ({mods})",
                     _unknown(st["capital_cost_USD_per_accelerator"], st["cost_unknown_for"], ",.0f"),
                     _num(st.get("switches_per_accelerator"), ".3f")])
    b.append(("table", ["candidate", "power W/acc.", "power by part W/acc.", "optical modules/acc.",
                        "cost USD/acc.", "switch chips/acc."], rows))
    return b


def _input_blocks(ev: Evaluation, inputs: Path) -> list[Block]:
    b: list[Block] = [("h", 2, "Inputs of every figure"),
                      ("p", "The files below are in the report folder under inputs/; each training run is "
                       "reproduced by oassim run inputs/<candidate>/scenarios/<workload>.yaml, each collective "
                       "by oassim collective --cluster inputs/<candidate>/cluster.yaml -n RANKS --op OP.")]
    for rel in ("suite.yaml", "provenance.json"):
        b.append(("code", rel, (inputs / rel).read_text(encoding="utf-8"), f"inputs/{rel}"))
    for c in ev.candidates:
        b.append(("h", 3, c.name))
        for f in sorted((inputs / c.slug).rglob("*.yaml")):
            rel = f.relative_to(inputs).as_posix()
            b.append(("code", rel, f.read_text(encoding="utf-8"), f"inputs/{rel}"))
    return b
