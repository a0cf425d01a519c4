"""Cells of ``interconnect_spec_evaluation.ipynb`` (markdown and code, in order), written out by ``_build.py``."""

SPEC_CELLS: list[tuple[str, str]] = [
    ("md", """\
# Evaluating interconnect specs with OAS-Bench, step by step

This notebook walks through what `oassim evaluate` does for a standards committee, one step at a
time through the Python API, on the four example scale-up specs in `experiments/specs/`
(NVLink 5, UALink 200G 1.0, Scale-Up Ethernet on Tomahawk Ultra, OISA Gen1):

1. **Load the specs** and show what each one states, the figures derived from it by closed
   forms (port data rate, protocol efficiency, port payload, payload per accelerator, domain
   size) and the figures it leaves unset, with how the benchmark treats each unknown.
2. **Build one candidate's reference cluster** (the same GB200-class accelerator and scale-out
   fabric for every candidate; only the interconnect under test changes) and describe it: parts,
   links, optics, power, bisection.
3. **Run the suite**: collective microbenchmarks (nccl-tests busbw against message size) and
   training workloads on every candidate's reference cluster.
4. **Rank** the candidates and show the evidence: the ranking table, busbw-versus-size curves
   per collective, training throughput and MFU bars, the **bottleneck behind each number**, and
   power, optics and cost per accelerator.
5. **Write the committee's report** (HTML and Markdown, with every input) into a temporary
   folder and list its files.
6. **OAS-Bench 2.0: one supernode proposal end to end** (`experiments/proposals/`): load the
   proposal file, build its cluster, count its parts, power and cost, run its collectives and
   training workloads (a mixed-vendor design, each pipeline stage on its own chip type), its
   goodput over a 30-day campaign, and its place in the ranking.

**Profile.** The parameter cell below runs the `quick` profile (`SUITE = "quick"`: smaller
scales and batches, about 20 s on a 2-core machine) so that the notebook stays fast. **The
committee's numbers come from the `full` profile**, OAS-Bench 1.0 proper, from the command line:

```sh
oassim evaluate experiments/specs/*.yaml --out report/     # full suite, about 2 minutes on 2 cores
```

Quick results are a smoke test: **they are not comparable with full ones** (the suite's name,
`oas-bench-1.0-quick`, and the report say so). Set `SUITE = "full"` to run the full suite here.

Every number below is computed by oassim from the spec files, whose figures come from
`docs/sources.md` with source ids in their comments; a figure no source publishes is
left unset and reported as unknown, never guessed. The suite itself (reference cluster, sizes,
workloads, scoring) is documented in `docs/oas-bench.md`.

**To run it**: from the repository root, `jupyter lab notebooks/interconnect_spec_evaluation.ipynb`
and run all cells (or headless: `cd notebooks && jupyter execute interconnect_spec_evaluation.ipynb`).
**To evaluate your own proposal**, write a spec file (`oassim schema interconnect` prints the
format; copy one of `experiments/specs/`) and add its path to `SPECS`."""),
    ("code", """\
import tempfile
import time
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import yaml

from oassim.analysis import plots
from oassim.experiments import evaluate, get_suite, reference_design, write_report
from oassim.hardware import load_interconnect

# --- parameters ---------------------------------------------------------------------------------
SUITE = "quick"   # "quick": smoke profile (~20 s); "full": OAS-Bench 1.0 as the committee runs it (~2 min)
# The candidates: interconnect spec files (paths relative to notebooks/, where Jupyter runs this).
SPECS = sorted(Path("../experiments/specs").glob("*.yaml"))
DESCRIBE = "ualink-200g-1.0"   # the candidate whose reference cluster section 2 describes
WORK = Path(tempfile.mkdtemp(prefix="oasbench-"))   # this notebook's files (a cluster file, the report)
# -------------------------------------------------------------------------------------------------

suite = get_suite(SUITE)
t_start = time.perf_counter()
pd.set_option("display.width", 160)
pd.set_option("display.max_colwidth", 200)
print(f"suite {suite.name} ({suite.profile} profile), network model {suite.network}, seed {suite.seed}")
print("candidates:", ", ".join(str(p) for p in SPECS))"""),
    ("md", """\
## 1. The specs: what they state, what follows from it, what they leave unset

`load_interconnect(path)` reads and validates one spec file (unknown keys and impossible values
are refused with the offending key named; module presets are resolved). The first table shows
the figures as the specs state them; an empty cell is a figure the spec leaves unset.

The second table derives the figures the benchmark uses, with the closed forms of
`docs/oas-bench.md`:

```
port data rate       = lane_rate_Gbps x lanes_per_port x encoding                (Gb/s per direction)
protocol efficiency  = protocol_efficiency, else mtu / (mtu + header), else unknown (1.0 used)
port payload         = port data rate x protocol efficiency / 8                   (GB/s per direction)
ports per accelerator = the spec's, else the suite's lane budget of 36 lanes / lanes_per_port
payload per acc.     = ports per accelerator x port payload
single-tier domain   = min(switch.radix, max_domain_size)
reference domain     = min(64, single-tier domain)
```

The lane budget (36 lanes = GB200's 18 NVLink 5 links x 2 lanes) models a fixed SerDes
beachfront: a proposal with faster lanes gets more bandwidth from the same chip edge. The
reference domain of 64 accelerators keeps power-of-two parallel groups aligned with domains so
that every candidate runs the same layouts."""),
    ("code", """\
specs = {p.stem: load_interconnect(p) for p in SPECS}
designs = {name: reference_design(spec, suite, source=str(path))
           for (name, spec), path in zip(specs.items(), SPECS)}

stated = pd.DataFrame([{
    "candidate": s.name, "domain": s.domain, "version": s.spec_version,
    "lane_rate_Gbps": s.lane_rate_Gbps, "lanes_per_port": s.lanes_per_port, "encoding": s.encoding,
    "header_bytes": s.header_bytes, "mtu_bytes": s.mtu_bytes, "protocol_efficiency": s.protocol_efficiency,
    "ports_per_accelerator": s.ports_per_accelerator, "max_domain_size": s.max_domain_size,
    "switch.radix": s.switch.radix, "switch.capacity_Tbps": s.switch.capacity_Tbps,
    "switch.latency_ns": s.switch.latency_ns, "in_network_reduction": s.switch.in_network_reduction,
    "reach classes": ", ".join(f"{r.name} ({r.medium}, {r.reach_m if r.reach_m is not None else '?'} m)"
                               for r in s.reach) or None,
    "sources": ", ".join(s.sources),
} for s in specs.values()], dtype=object).set_index("candidate")
stated.T.map(lambda v: "" if v is None else v)   # an empty cell: the spec leaves the figure unset"""),
    ("code", """\
derived = pd.DataFrame([{
    "candidate": s.name,
    "port data rate (Gb/s)": s.port_data_rate_Gbps,
    "encoding eff.": s.encoding_efficiency,
    "protocol eff.": s.protocol_efficiency_value if s.protocol_efficiency_value is not None else "unknown (1.0 used)",
    "port payload (GB/s)": d.port_payload_GBps,
    "ports per acc.": f"{d.ports_per_accelerator} ({d.ports_from})",
    "payload per acc. (GB/s)": d.accelerator_payload_GBps,
    "payload is": "upper bound" if s.protocol_efficiency_value is None else "as specified",
    "single-tier domain": s.max_single_tier_domain,
    "reference domain": d.domain_size,
    "switch chips per supernode": d.switches_per_supernode,
} for s, d in zip(specs.values(), designs.values())]).set_index("candidate")
derived.round(4).T"""),
    ("md", """\
**Unset figures and how the benchmark treats them.** `spec.unset_fields()` lists every figure a
spec leaves unset; the reference design's notes say what the benchmark assumed in its place:
an unknown protocol efficiency counts as 1.0 (so the payload is an upper bound), unknown hop and
switch latencies as 0, a reach class without a published reach is taken to cover the 2 m
in-rack cable, and a spec without reach classes gets copper without modules (its optical
module count is then a lower bound). Unknown switch power and prices are reported as unknown in
section 4, never filled in."""),
    ("code", """\
for name, s in specs.items():
    print(f"== {name}: {s.description}")
    print("   unset:", ", ".join(s.unset_fields()) or "none")
    for note in designs[name].notes:
        print("   benchmark:", note)
    print()"""),
    ("md", """\
## 2. One candidate's reference cluster

`reference_design(spec, suite)` writes the cluster file the benchmark builds around a candidate:
the GB200 accelerator's compute, HBM, power and NIC with its scale-up interface replaced by the
candidate's ports; a single-tier switched supernode (one candidate switch chip per accelerator
port, every accelerator wired to every chip); and the fixed scale-out fabric of the `gb200-nvl72`
preset (one 400G RoCE port per accelerator, rail-optimised fat-tree of Tomahawk 5). This is the
file a report stores as `inputs/<candidate>/cluster.yaml`; `oassim topo info` and
`oassim topo check` take it.

Below: the supernode section of `DESCRIBE`'s cluster file, then the cluster built at the suite's
largest scale (`suite.max_accelerators`) and described by `cluster_info` (what `oassim topo info`
prints). `scaleup_bandwidth_per_accelerator_GBps` there is the links' *data* rate per
accelerator; the protocol efficiency is applied on top of it when traffic is costed (the payload
figure of section 1)."""),
    ("code", """\
from oassim.topology.cluster import build_cluster
from oassim.topology.cluster_spec import load_cluster
from oassim.topology.fabric import freeze
from oassim.topology.metrics import cluster_info

design = designs[DESCRIBE]
print(yaml.safe_dump({"supernode": design.cluster["supernode"]}, sort_keys=False))
cluster_file = WORK / f"{DESCRIBE}-cluster.yaml"
cluster_file.write_text(yaml.safe_dump(design.cluster, sort_keys=False))
graph = build_cluster(load_cluster(cluster_file, suite.max_accelerators))
info = cluster_info(graph, freeze(graph))
facts = {k: info.get(k) for k in ["accelerators", "supernodes", "supernode_size", "accelerator_type",
                                  "scaleup_bandwidth_per_accelerator_GBps", "scaleout_bandwidth_per_accelerator_GBps",
                                  "supernode_bisection_GBps", "cluster_bisection_GBps", "diameter_hops",
                                  "optical_modules", "optical_modules_per_accelerator"]}
facts["optical modules by type"] = ", ".join(f"{k}: {v:,}" for k, v in info["optical_modules_by_type"].items())
facts["power of known parts (W per accelerator)"] = round(info["power_W"]["total_W"] / info["accelerators"], 1)
facts["power not counted for"] = ", ".join(info["power_unknown_for"])
facts["capital cost"] = "unknown: no citable price for " + ", ".join(info["cost_unknown_for"]) \\
    if info["capital_cost_USD"] is None else info["capital_cost_USD"]
pd.Series(facts, name=DESCRIBE).to_frame()"""),
    ("code", """\
# the parts and the links of that cluster, as `oassim topo info` lists them
display(pd.DataFrame(info["nodes"]).set_index(["kind", "tier"]))
pd.DataFrame(info["links"]).set_index("tier")"""),
    ("md", """\
## 3. Run the suite

`evaluate(SPECS, suite)` does, for every candidate: write its resolved spec and reference cluster
file; run the **collective microbenchmarks** (all-reduce, all-gather, reduce-scatter, all-to-all
over one group of all ranks, at the reference domain size and at larger scales, at nccl-tests
message sizes; the engine's tuner picks the algorithm as NCCL's would); read power, optical
modules and cost from the cluster; and run each **training workload** for one optimizer step
through `oassim.run`. The suite definition is printed first: these are the only things that
differ between the profiles. The progress lines below come from the run.

`workdir=` keeps each candidate's inputs (resolved spec, reference cluster file, one scenario per
workload) in the report folder of section 5, under `inputs/`, where the report points to them;
without it they go to a temporary folder that is removed afterwards."""),
    ("code", """\
definition = suite.describe()
print(yaml.safe_dump({"collectives": definition["collectives"],
                      "training": [{k: v for k, v in t.items() if k != "source"} for t in definition["training"]]},
                     sort_keys=False, width=150))
report_dir = WORK / "report"   # section 5 writes the report here
ev = evaluate(SPECS, suite, workdir=report_dir / "inputs", progress=print)
print(f"evaluated in {ev.provenance['wall_s']:.1f} s")"""),
    ("md", """\
## 4. The ranking

Candidates are ranked by **training score**: the geometric mean over the suite's workloads of
the candidate's tokens/s per accelerator divided by the best candidate's on that workload (1.00 =
best on every workload). Scores equal to two decimals are ordered by the **collective score**,
the same geometric mean over every (op, scale, size) bus bandwidth measured for all candidates.
MFU = model FLOPs / (accelerators x GB200's dense peak at the workload's precision;
`docs/metrics.md`). Power, optical modules and cost per accelerator are shown beside the rank,
not folded into it: power counts only the parts with a published figure (the parts left out are
listed in the last table of this section), and cost is unknown because no part of the reference
cluster has a citable price."""),
    ("code", """\
workloads = [t.name for t in suite.training]
by_name = {c.name: c for c in ev.candidates}
ranking = pd.DataFrame([{
    "rank": r["rank"], "candidate": r["candidate"],
    "training score": r["training_score"], "collective score": r["collective_score"],
    **{f"{w} tokens/s/acc.": r["tokens_per_s_per_accelerator"].get(w) for w in workloads},
    **{f"{w} MFU": r["mfu"].get(w) for w in workloads},
    "payload GB/s/acc.": by_name[r["candidate"]].design.accelerator_payload_GBps,
    "power W/acc. (known parts)": by_name[r["candidate"]].structure["power_W_per_accelerator"],
    "optical modules/acc.": by_name[r["candidate"]].structure["optical_modules_per_accelerator"],
    "cost USD/acc.": by_name[r["candidate"]].structure["capital_cost_USD_per_accelerator"] or "unknown",
} for r in ev.ranking]).set_index("rank")
order = [c.name for c in ev.ranked()]
ranking.round(3)"""),
    ("md", """\
### Collective bandwidth against message size

One panel per collective and scale, one curve per candidate (in rank order). **busbw** follows
nccl-tests (`doc/PERFORMANCE.md` there): algbw = size / time, busbw = algbw x 2(n-1)/n for
all-reduce and x (n-1)/n for the others, so it can be compared with a link's bandwidth. At the
domain size the candidate's scale-up network carries the traffic (in-network reduction, where a
spec's switch offers it, lifts all-reduce); at the larger scale the ranks span several supernodes
and the hierarchical algorithms use the fixed scale-out fabric too. A panel marked "not run" is
an all-to-all beyond the engine's limit of `all_to_all_max_ranks`. With in-network reduction
the switch reduces the data, so an all-reduce's busbw can exceed the accelerator's own link
bandwidth: the nccl-tests factor assumes the ranks do the reduction."""),
    ("code", """\
coll = pd.DataFrame(ev.collectives_rows())
coll["scale"] = coll["scale"].where(~coll["scale"].str.startswith("domain"), "domain")
ops, scales = list(suite.collectives.ops), list(dict.fromkeys(coll["scale"]))
fig, axes = plt.subplots(len(scales), len(ops), figsize=(4 * len(ops), 3.4 * len(scales)), layout="constrained",
                         squeeze=False)
for i, scale in enumerate(scales):
    for j, op in enumerate(ops):
        ax = axes[i][j]
        part = coll[(coll["op"] == op) & (coll["scale"] == scale) & (coll["status"] == "ok")]
        ranks = coll.loc[(coll["op"] == op) & (coll["scale"] == scale), "ranks"]
        title = f"{op}, {'domain' if scale == 'domain' else scale} ({', '.join(map(str, sorted(set(ranks))))} ranks)"
        if part.empty:
            ax.text(0.5, 0.5, "not run\\n(beyond the engine's all-to-all limit)", ha="center", va="center",
                    transform=ax.transAxes)
        else:
            plots.busbw_curves(part, hue="candidate", hue_order=order, ax=ax)
            if (i, j) != (0, 0):
                ax.get_legend().remove()
        ax.set_title(title, fontsize=10)"""),
    ("code", """\
# The evidence behind one column of those curves: the algorithm the tuner chose and the link tier that limits it
mid = sorted(coll["size_bytes"].unique())[len(coll["size_bytes"].unique()) // 2]
cell = coll[(coll["size_bytes"] == mid) & (coll["status"] == "ok")]
print(f"message size {cell['size'].iloc[0]} per rank")
pd.concat({what: cell.pivot_table(index=["op", "scale"], columns="candidate", values=col, aggfunc="first")[order]
           for what, col in [("busbw GB/s", "busbw_GBps"), ("algorithm", "algorithm"),
                             ("bottleneck tier", "bottleneck_tier")]}, axis=1).round(1)"""),
    ("md", """\
### Training throughput and MFU

Left: tokens/s per accelerator of each workload on each candidate (the training score's terms);
right: MFU. Each training run is one optimizer step of the scenario the report stores in
`inputs/<candidate>/scenarios/<workload>.yaml` (`oassim run` of that file reproduces it)."""),
    ("code", """\
train = pd.DataFrame(ev.training_rows())
train = train[train["status"] == "ok"]
fig, axes = plt.subplots(2, len(workloads), figsize=(5.5 * len(workloads), 7.5), layout="constrained", squeeze=False)
for j, w in enumerate(workloads):
    part = train[train["workload"] == w].set_index("candidate").loc[order].reset_index()
    plots.bars(part, "candidate", "tokens_per_s_per_accelerator", ax=axes[0][j], annotate=True, fmt="{:,.0f}")
    plots.bars(part, "candidate", "mfu", ax=axes[1][j], annotate=True, fmt="{:.1%}")
    acc = next(t.accelerators for t in suite.training if t.name == w)
    axes[0][j].set_title(f"{w} on {acc:,} accelerators")
    for ax in axes[:, j]:
        ax.tick_params(axis="x", labelrotation=15)
        ax.set_xlabel("")"""),
    ("md", """\
### The bottleneck behind each number

For every training number, the largest part of the iteration that is not compute and the
simulator's finding about it, in words (what limits it, on which link tier, and what would
help). The stacked bars show the whole iteration breakdown of the same runs: compute, exposed
communication per parallel dimension, pipeline bubble, optimizer."""),
    ("code", """\
for w in workloads:
    print(f"== {w}")
    for name in order:
        r = next(x for x in by_name[name].training if x["workload"] == w)
        text = r["bottleneck"] if r.get("status") == "ok" else r.get("status")
        print(f"  {name}: {text}\\n")"""),
    ("code", """\
parts = ["compute", "exposed_tp", "exposed_cp", "exposed_ep", "exposed_dp", "exposed_pp", "bubble", "sync", "optimizer"]
rows = pd.DataFrame([{"workload": r["workload"], "candidate": name, **r.get("breakdown", {})}
                     for name in order for r in by_name[name].training])
rows = rows.reindex(columns=["workload", "candidate", *parts])
parts = [p for p in parts if rows[p].fillna(0).gt(0).any()]   # the same parts, in the same colours, in every panel
fig, axes = plt.subplots(1, len(workloads), figsize=(6.5 * len(workloads), 4.2), layout="constrained", squeeze=False)
for ax, w in zip(axes[0], workloads):
    plots.breakdown_bars(rows[rows["workload"] == w], "candidate", parts, ax=ax, drop_empty=False)
    ax.set_title(f"{w}: time per iteration")
    ax.tick_params(axis="x", labelrotation=15)
    ax.set_xlabel("")"""),
    ("md", """\
### Power, optical modules and cost

From `cluster_info` of each reference cluster at the suite's largest scale, plus the spec's
energy per bit on its own links when the spec gives one (none of the four examples does). Parts whose
power or price the reference does not publish are named rather than guessed: when every
candidate leaves its switch power and its optics unpublished, equal power and optics figures mean
"equally unknown", not "equal"."""),
    ("code", """\
structure = pd.DataFrame([{
    "candidate": name,
    "accelerators": by_name[name].structure["accelerators"],
    "power W/acc. (known parts)": by_name[name].structure["power_W_per_accelerator"],
    "power not counted for": ", ".join(by_name[name].structure["power_unknown_for"]),
    "optical modules/acc.": by_name[name].structure["optical_modules_per_accelerator"],
    "switch chips/acc.": by_name[name].structure["switches_per_accelerator"],
    "cost": "unknown: no price for " + ", ".join(by_name[name].structure["cost_unknown_for"])
    if by_name[name].structure["capital_cost_USD_per_accelerator"] is None
    else by_name[name].structure["capital_cost_USD_per_accelerator"],
} for name in order]).set_index("candidate")
structure.round(3)"""),
    ("md", """\
## 5. The committee's report

`write_report(ev, folder)` renders the evaluation above into a report folder: `report.html`
(self-contained, figures inline, to circulate as one file), `report.md` with its figures as PNG
files, `results.json` (every number, the suite definition, provenance), `collectives.csv` and
`training.csv`, and `inputs/` (per candidate the resolved spec, the reference cluster file and
one scenario per workload; the suite definition; provenance: oassim version, git commit and
whether the checkout had uncommitted changes, Python, date, wall time). `write_report` takes the
candidates' inputs from `folder/inputs`, which is why section 3 gave `evaluate` that folder as
its `workdir`. `write_evaluation(SPECS, folder, suite)` evaluates and writes in one call, all or
nothing, as `oassim evaluate` does."""),
    ("code", """\
write_report(ev, report_dir)   # the inputs are already in report_dir/inputs (section 3)
files = sorted(p for p in report_dir.rglob("*") if p.is_file())
print(f"{len(files)} files in {report_dir}:")
for p in files:
    print(f"  {str(p.relative_to(report_dir)):<60} {p.stat().st_size:>10,} bytes")"""),
    ("code", """\
# The top of the Markdown report (the HTML one holds the same blocks)
print("\\n".join((report_dir / "report.md").read_text().splitlines()[:18]))"""),
    ("md", """\
## Headline numbers

One row per candidate, in rank order."""),
    ("code", """\
headline = ranking.set_index("candidate")[["training score", "collective score",
                                           *[f"{w} tokens/s/acc." for w in workloads], *[f"{w} MFU" for w in workloads],
                                           "payload GB/s/acc."]]
print(f"suite {suite.name}; notebook computed in {time.perf_counter() - t_start:.0f} s")
if suite.profile != "full":
    print("quick profile: a smoke test, not comparable with the full OAS-Bench "
          "(oassim evaluate experiments/specs/*.yaml --out report/)")
headline.round(3)"""),
    ("md", """\
## Reading the results, and what version 1.0 leaves out

- The training score follows payload bandwidth per accelerator on dense models whose
  tensor-parallel traffic stays inside the domain; a workload whose communication is hidden
  behind compute (the MoE one overlaps its expert all-to-all) separates the candidates little.
  The bottleneck lines above say, per number, which of the two applies.
- Figures the specs leave unset are treated as stated in section 1 (efficiency 1.0, latencies 0):
  a candidate that publishes *more* figures can look *worse* than one that publishes fewer.
  The unset lists belong beside the ranking.
- Version 1.0 builds single-tier switched scale-up domains only (no mesh, torus or multi-tier
  proposals) and uses the uncalibrated `default` compute
  efficiency for the reference accelerator (the same for every candidate).
- These are quick-profile numbers unless `SUITE = "full"`. For the committee, run
  `oassim evaluate experiments/specs/*.yaml --out report/` and circulate `report/report.html`.
- Mesh, torus and multi-tier designs, mixed vendors, and each design's own optics, power and
  cost are what OAS-Bench 2.0 proposals add: section 6 takes one through the whole suite."""),
]
