"""Write the notebooks defined below (cells here, outputs stripped); strip others.

Defined here: ``compare_supernodes.ipynb`` (:data:`CELLS`), ``parameter_sweep.ipynb``
(:data:`SWEEP_CELLS`) and ``interconnect_spec_evaluation.ipynb`` (:data:`SPEC_CELLS`), listed in
:data:`NOTEBOOKS`. ``python notebooks/_build.py`` regenerates all of them after a cell here was
edited (``python notebooks/_build.py parameter_sweep.ipynb`` only the ones named); the notebooks
are generated, so edit this file rather than the .ipynb when changing the shipped versions. Cell
ids are fixed (``cell-00``, ``cell-01``... in each notebook), so rebuilding unchanged cells
rewrites a notebook byte for byte. ``python notebooks/_build.py --strip notebooks/*.ipynb``
removes outputs, execution counts and widget state from any notebooks in place, before
committing them.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

CELLS: list[tuple[str, str]] = [
    ("md", """\
# Four supernode designs, one training job

This notebook puts four ways of building a ~16,000-accelerator training cluster side by side
and runs the **same job** on each:

| design | preset (`topologies/`) | scale-up domain | scale-out |
|---|---|---|---|
| NVL72-style | `gb200-nvl72` | 72 GB200 on 18 NVLink Switch chips (copper) | 400G RoCE rail-optimised fat-tree |
| CloudMatrix384-style | `cloudmatrix384` | 384 Ascend 910C on a two-tier UB Clos (optical between racks) | 400G RoCE fat-tree |
| UB-Mesh-style | `ub-mesh` | 64 Ascend 910C in an 8 x 8 2D full mesh of direct copper links | 400G RoCE fat-tree |
| TPU-torus-style | `tpu-v5p-pod` | 4,096 TPU v5p in a 16 x 16 x 16 torus (copper cubes, OCS between cubes) | 50G data-centre network |

What is compared, in order:

1. **Training throughput**: tokens/s of the whole job, model TFLOP/s per accelerator and MFU
   (model FLOPs / (accelerators x the chip's own peak); MFU measures how well a design *uses*
   its chips, tokens/s how much work it gets done).
2. **Where an iteration's time goes** (compute, communication left exposed on the critical
   path per parallel dimension, pipeline bubble, optimizer) and the simulator's bottleneck
   findings in words.
3. **Link utilisation per tier** over the iteration.
4. **Collective bandwidth**: a 1 GiB all-reduce inside the scale-up domain, across the whole
   cluster and across the scale-out network only (nccl-tests *busbw*).
5. **Power, optical modules and cost** per accelerator, as far as published figures allow.

Every number is a prediction of `oassim` with the analytical network model (fast; link loads
counted statically), from the presets' published hardware figures. Each preset's YAML file
cites its sources and lists what it approximates; read its `notes:` before quoting a number.

**To compare other designs**, edit `DESIGNS` in the next cell (any preset name in `topologies/`
or a path to your own cluster YAML file) and run all cells."""),
    ("code", """\
import time

import matplotlib.pyplot as plt
import pandas as pd

import oassim
from oassim.analysis import summary
from oassim.analysis import plots
from oassim.experiments import report_dict

# The designs compared: a display name and a cluster preset (or a cluster YAML path).
DESIGNS = [
    {"name": "NVL72", "preset": "gb200-nvl72"},
    {"name": "CloudMatrix384", "preset": "cloudmatrix384"},
    {"name": "UB-Mesh", "preset": "ub-mesh"},
    {"name": "TPU v5p torus", "preset": "tpu-v5p-pod"},
    # {"name": "DGX H100", "preset": "dgx-h100-superpod"},   # a reference point, if wanted
]
ACCELERATORS = 16384   # the job's size; each cluster is built with whole supernodes

# The job: Llama 3 405B pre-training as in Llama Team 2024 (arXiv:2407.21783, section 3.3.2).
WORKLOAD = {"model": "llama3-405b", "seq_len": 8192, "global_batch": 2048, "micro_batch": 1,
            "precision": "bf16", "recompute": "none"}
# The parallel layout asked of every design; the 126 layers split 7 + 14 x 8 + 7 over 16 stages.
PARALLELISM = {"tp": 8, "pp": 16, "dp": 128, "cp": 1, "ep": 1, "vpp": 1, "sp": True, "zero": 1,
               "first_stage_layers": 7, "last_stage_layers": 7}
# Tried in order when a design cannot take PARALLELISM (each must multiply to ACCELERATORS).
FALLBACK_LAYOUTS = [{"tp": 4, "pp": 16, "dp": 256}, {"tp": 2, "pp": 16, "dp": 512}]
NETWORK = "analytical"

t_start = time.perf_counter()
pd.set_option("display.width", 160)
pd.set_option("display.max_colwidth", 120)"""),
    ("md", """\
## 1. Run the job on every design

The same scenario (model, batch, precision, parallel layout) is handed to `oassim.run` with only
the cluster changed. A layout is valid on a design when `tp` divides the 128 attention heads,
`tp` fits inside one scale-up domain (so tensor-parallel traffic never leaves it) and the job
fits in HBM; `oassim.run` refuses an impossible job with a one-line reason. TP 8 x PP 16 x
DP 128 fits all four presets (72 = 9 x 8, 384 = 48 x 8, 64 = 8 x 8 and 4,096 = 512 x 8
accelerators per domain). If a design you add cannot take it, the next cell falls back to the
first valid layout of `FALLBACK_LAYOUTS` and says so in the `layout` column: its numbers then
compare designs *and* layouts.

When 16,384 is not a multiple of the supernode size the cluster is built with whole supernodes
(NVL72: 228 racks = 16,416 GPUs; CloudMatrix384: 43 supernodes = 16,512 NPUs) and the job
uses the first 16,384 accelerators."""),
    ("code", """\
from oassim.errors import SpecError


def scenario(design, layout):
    return {"name": f"llama3-405b-{design['preset']}",
            "cluster": {"preset": design["preset"], "accelerators": ACCELERATORS},
            "workload": dict(WORKLOAD), "parallelism": {**PARALLELISM, **layout},
            "network": NETWORK, "seed": 0}


runs, layouts = {}, []
for d in DESIGNS:
    tried = []
    for layout in [{}] + FALLBACK_LAYOUTS:
        try:
            runs[d["name"]] = oassim.run(scenario(d, layout))
            break
        except SpecError as exc:
            tried.append(str(exc))
    else:
        raise RuntimeError(f"{d['name']}: no layout fits: " + " | ".join(tried))
    res = runs[d["name"]]
    p, cl = res.scenario["parallelism"], res.provenance["cluster"]
    layouts.append({
        "design": d["name"], "layout": f"TP{p['tp']} PP{p['pp']} DP{p['dp']}", "as asked": not tried,
        "why not as asked": tried[0] if tried else "",
        "supernode size": cl["supernode_size"], "accelerators built": cl["accelerators_built"],
        "TP inside one supernode": cl["supernode_size"] % p["tp"] == 0,
        "simulated in (s)": round(res.provenance["wall_s"]["total"], 1),
    })
pd.DataFrame(layouts).set_index("design")"""),
    ("md", """\
## 2. Throughput

- **tokens/s**: tokens of one optimizer step (2,048 sequences x 8,192 tokens) / iteration time.
- **TFLOP/s per accelerator**: model FLOPs (`6 N + 12 l h s` per token, forward and backward,
  no recomputation) / (accelerators x iteration time).
- **MFU**: that rate / the accelerator's dense BF16 peak. Two designs with different chips can
  have the same MFU and very different tokens/s (a TPU v5p peaks at 459 TFLOP/s, a GB200 at
  2,500).
- **memory**: the footprint of the fullest pipeline stage per accelerator, GB."""),
    ("code", """\
records = {name: report_dict(res) for name, res in runs.items()}
throughput = pd.DataFrame([{
    "design": name,
    "iteration_time_s": r["iteration_time_s"],
    "tokens_per_s": r["tokens_per_s"],
    "tflops_per_accelerator": r["tflops_per_accelerator"],
    "mfu": r["mfu"],
    "exposed_comm_s": r["exposed_comm_s"],
    "bubble_s": r["bubble_s"],
    "memory_per_accelerator_GB": r["memory_per_accelerator_GB"],
} for name, r in records.items()])
throughput.round({"iteration_time_s": 2, "tokens_per_s": 0, "tflops_per_accelerator": 1, "mfu": 3,
                  "exposed_comm_s": 2, "bubble_s": 2, "memory_per_accelerator_GB": 1}).set_index("design")"""),
    ("md", """\
## 3. Where the time goes

One bar per design: the critical rank's iteration split into compute, communication left
exposed on the critical path (per parallel dimension: TP, DP, PP...), pipeline bubble
(waiting for a neighbouring stage) and the optimizer step; the parts sum to the iteration
time. The right panel shows the same bars as shares of the iteration, to compare designs whose
chips differ in speed."""),
    ("code", """\
parts = ["compute", "exposed_tp", "exposed_cp", "exposed_ep", "exposed_dp", "exposed_pp", "bubble", "sync",
         "optimizer"]
breakdown = pd.DataFrame([{"design": name, **r["breakdown"]} for name, r in records.items()])
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.2), layout="constrained")
plots.breakdown_bars(breakdown, "design", parts, ax=ax1)
plots.breakdown_bars(breakdown, "design", parts, ax=ax2, normalize=True)
ax1.get_legend().remove()
ax1.set_title("time per iteration")
ax2.set_title("share of the iteration");"""),
    ("md", """\
### What limits each design, in words

The simulator's bottleneck report (`report_dict(results)["findings"]`): the hottest link tier,
the collectives that expose the most time on the critical path with the tier that limits them,
the pipeline bubble, memory head-room, and for each what would help."""),
    ("code", """\
for name, r in records.items():
    print(f"== {name}")
    for finding in r["findings"]:
        print(f"  - {finding}")
    print()"""),
    ("md", """\
## 4. Link utilisation per tier

Each cell is a link tier of one design (tiers a design does not have are grey). Left: the mean
utilisation of the tier's links over the iteration; right: its busiest link. A tier that is
busy only a few percent on average but whose busiest link is near 100% is a hot spot (uneven
load), not a lack of total bandwidth. Scale-up tiers are listed first, scale-out tiers
(`nic`, `host`, `leaf-spine`, `spine-core`) after them."""),
    ("code", """\
tiers = pd.concat([res.tiers.assign(design=name) for name, res in runs.items()], ignore_index=True)
scale_out = ["nic", "host", "leaf-spine", "spine-core"]
order = [t for t in pd.unique(tiers["tier"]) if t not in scale_out] + [t for t in scale_out if t in set(tiers["tier"])]
tiers["tier"] = pd.Categorical(tiers["tier"], categories=order, ordered=True)
tiers = tiers.sort_values(["tier"], kind="stable")
tiers = tiers.set_index("design").loc[list(runs)].reset_index()  # rows in DESIGNS order
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(14, 3.6), layout="constrained")
plots.tier_heatmap(tiers, "design", ax=ax1, value="utilisation")
plots.tier_heatmap(tiers, "design", ax=ax2, value="max_link_utilisation")
ax1.set_title("mean link utilisation over the iteration")
ax2.set_title("busiest link's utilisation");"""),
    ("md", """\
## 5. Collective bandwidth: a 1 GiB all-reduce

The collective engine costs one all-reduce of 1 GiB per rank (nccl-tests convention) on each
cluster, choosing the cheapest algorithm as NCCL's tuner would, in three scopes:

- **inside the scale-up domain**: one group per supernode, all groups at once (what tensor
  parallelism sees);
- **whole cluster**: one group of every accelerator (hierarchical algorithms keep most bytes
  inside the domains);
- **scale-out only**: one group per position in the supernode, i.e. one rank from each
  supernode, all groups at once (what data-parallel gradient reduction sees when TP fills the
  domain).

**busbw** = algbw x 2(n-1)/n (nccl-tests `doc/PERFORMANCE.md`): comparable across group sizes
and with the per-accelerator link bandwidth of each tier (`scaleup_GBps_per_accelerator` in
section 6). The cluster is built as `run` built it; `cluster_info` adds its counts, power and
cost for section 6.

How to read a busbw far below the scale-up bandwidth per accelerator: in this model a flow
between two accelerators follows one route through the domain, and ring and tree algorithms
send to one or a few peers at a time. With the presets as shipped, a CloudMatrix384 flow
between two NPUs crosses one of the seven L1 switch chips (the two UB links to it, 56 GB/s of
the NPU's 392 GB/s), and a UB-Mesh flow one direct 28 GB/s link. A collective library that
stripes each transfer over every switch plane or mesh link would reach more, so read those two
designs' in-domain and TP figures as pessimistic."""),
    ("code", """\
from oassim.collectives import CollectiveEngine, CollectiveRequest, make_groups
from oassim.topology.cluster import build_cluster
from oassim.topology.cluster_spec import load_cluster
from oassim.topology.fabric import freeze
from oassim.topology.metrics import cluster_info

GiB = 2**30
SCOPES = {"inside scale-up domain": "domain", "whole cluster": "all", "scale-out only": "rail"}
infos, busbw, curves = {}, [], []
for d in DESIGNS:
    graph = build_cluster(load_cluster(d["preset"], ACCELERATORS))
    fabric = freeze(graph)
    infos[d["name"]] = cluster_info(graph, fabric)
    engine = CollectiveEngine(fabric, NETWORK, None)
    for scope, groups in SCOPES.items():
        g = make_groups(engine.caps, None, groups)
        row = engine.run(CollectiveRequest("all_reduce", GiB, g, "auto", 0, source=d["name"])).row()
        busbw.append({"design": d["name"], "scope": scope, **row})
    g = make_groups(engine.caps, None, "domain")
    for k in range(20, 31, 2):  # 1 MiB .. 1 GiB inside the domain, for the curves below
        curves.append({"design": d["name"], **engine.run(CollectiveRequest("all_reduce", 2**k, g, source=d["name"])).row()})
busbw = pd.DataFrame(busbw)
busbw.pivot(index="design", columns="scope", values="busbw_GBps").loc[list(infos), list(SCOPES)].round(1)"""),
    ("code", """\
# The algorithm chosen and the tier that limits each 1 GiB all-reduce
busbw[["design", "scope", "ranks", "groups", "time_us", "busbw_GBps", "algorithm", "bottleneck_tier"]].round(
    {"time_us": 0, "busbw_GBps": 1}).set_index(["design", "scope"])"""),
    ("code", """\
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4), layout="constrained")
plots.busbw_curves(pd.DataFrame(curves), hue="design", hue_order=list(infos), ax=ax1)
ax1.set_title("all-reduce inside the scale-up domain")
scaleout = busbw[busbw["scope"] == "scale-out only"]
plots.bars(scaleout, "design", "busbw_GBps", ax=ax2, annotate=True, fmt="{:.1f}")
ax2.set_title("1 GiB all-reduce, scale-out only");"""),
    ("md", """\
## 6. Power, optical modules and cost

From `cluster_info(graph, fabric)`: the parts of each cluster, their published power and the
optical modules the wiring needs (two per optical link, one at each end).

- **Power per accelerator** counts accelerators, switches and optical modules whose power is
  published in the reference; the parts without a published figure are listed and *not
  counted*. When the accelerator's own power is unpublished (Ascend 910C, TPU v5p) the total
  would be meaningless and is shown as unknown.
- **Optical modules per accelerator**: NVLink and the UB-Mesh rack mesh are copper; the
  CloudMatrix384 preset wires 16 optical uplinks per L1 switch chip, which counts more modules
  than SemiAnalysis's 6,912 per supernode (see the preset's notes); the TPU preset counts the
  OCS circuit ends (module type unpublished: `unspecified`) and leaves the DCN's optics out
  (unpublished).
- **Cost**: the reference has no citable price for most parts, so the capital cost is unknown;
  the parts without a price are listed rather than guessed.

For context only (not model outputs, not used below), the reference quotes third-party
estimates of whole-supernode power: GB200 NVL72 rack ~120 kW, or 145 kW (SemiAnalysis);
CloudMatrix384 559 kW, about 1.46 kW per NPU all-in (`shared/reference/hardware.md`, table
B1, both marked as estimates)."""),
    ("code", """\
def power_per_accelerator(info):
    acc_known = info.get("accelerator_type") not in info["power_unknown_for"]
    return info["power_W"]["total_W"] / info["accelerators"] if acc_known else float("nan")


hardware = pd.DataFrame([{
    "design": name,
    "accelerator": info.get("accelerator_type"),
    "accelerators_built": info["accelerators"],
    "power_per_accelerator_W": power_per_accelerator(info),
    "power_not_counted": ", ".join(info["power_unknown_for"]) or "-",
    "optical_modules_per_accelerator": info["optical_modules_per_accelerator"],
    "optical_modules_by_type": ", ".join(f"{k}: {v:,}" for k, v in info["optical_modules_by_type"].items()) or "none",
    "scaleup_GBps_per_accelerator": info["scaleup_bandwidth_per_accelerator_GBps"],
    "scaleout_GBps_per_accelerator": info.get("scaleout_bandwidth_per_accelerator_GBps"),
    "capital_cost": ("unknown: no citable price for " + ", ".join(info["cost_unknown_for"])
                     if info["capital_cost_USD"] is None else f"${info['capital_cost_USD']:,.0f}"),
} for name, info in infos.items()])
shown = hardware.copy()
shown["power_per_accelerator_W"] = [f">= {w:,.0f} (known parts)" if w == w else "unknown"
                                    for w in hardware["power_per_accelerator_W"]]
shown.round({"optical_modules_per_accelerator": 2}).set_index("design").T"""),
    ("md", """\
## 7. What each design buys: Pareto plots

A design is on the **Pareto front** when no other design is both cheaper (lower on the
horizontal axis) and faster (higher on the vertical axis). Throughput is put per accelerator so
that clusters built with a few more accelerators than the job uses are compared fairly.

- Left: throughput against **power per accelerator** (known parts only). Designs whose
  accelerator power is unpublished cannot be placed and are left out (named in the title).
- Right: throughput against **optical modules per accelerator**, a proxy for optics cost,
  power and failure rate (with the caveats of section 6)."""),
    ("code", """\
pareto = throughput.merge(hardware, on="design")
pareto["tokens_per_s_per_accelerator"] = pareto["tokens_per_s"] / ACCELERATORS
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.2), layout="constrained")
plots.pareto_front(pareto, "power_per_accelerator_W", "tokens_per_s_per_accelerator", label="design", ax=ax1)
missing = pareto.loc[pareto["power_per_accelerator_W"].isna(), "design"].tolist()
ax1.set_title("throughput vs power" + (f"\\n(power unpublished: {', '.join(missing)})" if missing else ""))
plots.pareto_front(pareto, "optical_modules_per_accelerator", "tokens_per_s_per_accelerator", label="design", ax=ax2)
ax2.set_title("throughput vs optical modules");"""),
    ("md", """\
## 8. Headline numbers

One row per design, everything above in one table."""),
    ("code", """\
headline = pareto[["design", "tokens_per_s", "tflops_per_accelerator", "mfu", "power_per_accelerator_W",
                   "optical_modules_per_accelerator"]].set_index("design")
for scope in SCOPES:
    headline[f"busbw_GBps {scope}"] = busbw[busbw["scope"] == scope].set_index("design")["busbw_GBps"]
print(f"notebook computed in {time.perf_counter() - t_start:.0f} s")
headline.round({"tokens_per_s": 0, "tflops_per_accelerator": 1, "mfu": 3, "power_per_accelerator_W": 0,
                "optical_modules_per_accelerator": 2, **{c: 1 for c in headline.columns if c.startswith("busbw")}})"""),
    ("md", """\
## Reading the results, and what this model leaves out

- The job's layout is Meta's for 16K H100 (TP 8, PP 16, DP 128, 16 micro-batches per
  replica), kept fixed so that only the cluster changes; it is not re-tuned for each design. A
  larger scale-up domain would allow a larger TP or expert parallelism inside it, which this
  comparison does not exploit. With 16 micro-batches over 16 stages the pipeline bubble is large
  on every design; the findings say how much of it is the schedule and how much is stages
  waiting for slower ones.
- Tensor-parallel traffic stays inside the scale-up domain on all four designs, so its cost is
  set by the per-accelerator scale-up bandwidth of the links TP actually uses: a full mesh
  spreads an accelerator's bandwidth over many peers, and a TP group along one mesh dimension
  or one torus ring uses only part of it.
- Data-parallel gradient traffic crosses the scale-out network; the "scale-out only" busbw is
  the figure to compare there.
- Preset approximations (each YAML's `notes:`): the UB-Mesh preset models the in-rack 8 x 8
  mesh but joins racks through a fat-tree instead of the paper's inter-rack mesh; the Ascend
  910C link count and rate are low-confidence figures; the TPU preset's DCN is a stand-in and
  its slices hold 4,096 chips.
- The network model is analytical (static link loads). Set `NETWORK = "flow"` in the first cell
  for max-min fair sharing (slower)."""),
]


SWEEP_CELLS: list[tuple[str, str]] = [
    ("md", """\
# A parameter sweep: GPT-3 175B from 512 to 8,192 GPUs on two cluster generations

This notebook runs a small **parameter sweep** through oassim's sweep API, stores every point in a
result store on disk, reads the store back as one table and plots it. The sweep asks: *how does
the training throughput of GPT-3 175B scale from 512 to 8,192 GPUs on a DGX A100 SuperPOD and on
a DGX H100 SuperPOD, and what limits it at each size?*

What it shows, in order:

1. **The sweep**, written inline as a mapping (the same keys as a sweep YAML file,
   `docs/sweeps.md`): a base scenario, two axes, a derived key and a constraint; and the points it
   expands to, each with a stable id and seed.
2. **Running it** into a result store in a temporary folder, and **running it again**: every point
   is already stored, so nothing is recomputed (this is how an interrupted sweep resumes).
3. **The results table** read back from the store (`load_results`).
4. Plots made with `oassim.analysis.plots`: **throughput versus scale**, **where the iteration's
   time goes** (breakdown bars), **link utilisation per tier** (heat maps) and a
   **throughput/cost Pareto front**, with power and optical modules per accelerator as the cost
   axis (prices are not published, see section 6).
5. How the **same sweep runs on a Dask cluster** from the command line.

Every number is a prediction of `oassim` with the analytical network model (fast; link loads
counted statically), from the presets' published hardware figures; each preset YAML in
`topologies/` cites its sources. The whole notebook runs in 20-40 s on a 2-core machine.

**To run it**: from the repository root, `jupyter lab notebooks/parameter_sweep.ipynb` and run
all cells (or headless: `cd notebooks && jupyter execute parameter_sweep.ipynb`). **To sweep
something else**, edit `SWEEP` in the next cell: any scenario key can be an axis (dotted path,
e.g. `parallelism.tp`, `workload.micro_batch`, `cluster.preset`). Each point of this sweep takes
2-10 s; more points take proportionally longer."""),
    ("code", """\
import tempfile
import time
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from oassim.analysis import plots
from oassim.experiments import expand_sweep, load_results, run_sweep

# The base scenario: GPT-3 175B, TP 8 x PP 8, batch 1,536 x 2,048 tokens, BF16 (file in experiments/;
# the path is relative to notebooks/, the folder Jupyter runs this notebook in).
BASE_SCENARIO = "../experiments/gpt3-175b-3k-a100.yaml"

# The sweep, as a sweep file would hold it (docs/sweeps.md). Grid sampling: every combination.
SWEEP = {
    "name": "gpt3-175b-scaling",
    "description": "GPT-3 175B strong scaling, 512-8,192 GPUs, DGX A100 vs DGX H100 SuperPOD",
    "base": BASE_SCENARIO,
    "axes": {
        "cluster.preset": ["dgx-a100-superpod", "dgx-h100-superpod"],   # presets in topologies/
        "cluster.accelerators": {"range": [512, 8193], "factor": 2},    # 512, 1024, 2048, 4096, 8192
    },
    # TP and PP stay as in the base scenario (8 and 8); data parallelism takes the rest.
    "derived": {"parallelism.dp": "cluster.accelerators // (parallelism.tp * parallelism.pp)"},
    # keep only points whose batch splits into whole micro-batches on every replica
    "constraints": ["workload.global_batch % (parallelism.dp * workload.micro_batch) == 0"],
    "network": "analytical",
}
WORKERS = 2   # local worker processes (0: run the points in this kernel, one after the other)
WORK = Path(tempfile.mkdtemp(prefix="oassim-sweep-"))   # this notebook's files; delete the folder when done
OUT = WORK / "store"   # the result store (run_sweep creates it; a folder of your own keeps the results)

t_start = time.perf_counter()
pd.set_option("display.width", 160)
pd.set_option("display.max_colwidth", 100)
print("result store:", OUT)"""),
    ("md", """\
## 1. The base scenario and the points of the sweep

The base scenario is a scenario file of the repository (its comments cite where the model,
batch and layout come from). Every point is a copy of it with the axis values set, then the
derived keys computed, then the constraints checked:

- `cluster.preset` x `cluster.accelerators`: 2 x 5 = 10 candidate points. A preset is scaled to
  the asked size with whole nodes and the fat-tree tiers it needs.
- `parallelism.dp` is *derived*: accelerators / (TP x PP), so every point uses all its GPUs.
- The constraint drops a point whose batch of 1,536 sequences does not divide into whole
  micro-batches per data-parallel replica (none of these ten; add 5,120 accelerators to
  `cluster.accelerators` as a list, i.e. DP 80, and it is dropped).

The global batch stays at 1,536 sequences at every size (**strong scaling**, as when the batch is
fixed by convergence): a larger cluster gives each replica fewer micro-batches, so the pipeline
bubble of the 1F1B schedule, about (PP - 1) / micro-batches of the compute time, grows. The table
below computes that number for each point from the scenario alone, before anything is simulated.

`expand_sweep` validates every point as a scenario before anything runs; the `point_id` is a hash
of the point's scenario (seed included), so the same simulation has the same id however it was
spelled, and the seed comes from the sweep's root seed, not from the point's position."""),
    ("code", """\
print(Path(BASE_SCENARIO).read_text())"""),
    ("code", """\
plan = expand_sweep(SWEEP)
base = plan.base
points = pd.DataFrame([{"point_id": p.point_id, **p.values, "seed": p.seed} for p in plan.points])
points["micro_batches_per_replica"] = base["workload"]["global_batch"] // (
    points["parallelism.dp"] * base["workload"]["micro_batch"])
points["1F1B bubble / compute"] = (base["parallelism"]["pp"] - 1) / points["micro_batches_per_replica"]
print(f"{plan.candidates} candidate points, {plan.dropped} dropped by the constraints, {len(plan.points)} to run")
points.round(3)"""),
    ("md", """\
## 2. Run the sweep into a result store, then run it again

`run_sweep(plan, OUT, workers=WORKERS)` runs the points in local worker processes and writes each
finished point to `OUT/points/<point_id>.parquet` as it arrives (written whole or not at all), so
an interrupted sweep loses only the points in flight. It returns a `SweepReport`: the points of
the sweep, how many were reused from the store, how many ran now, how many failed (a point the
simulator refuses, e.g. a job that does not fit in memory, is stored as an error row rather than
stopping the sweep), and the wall time."""),
    ("code", """\
report = run_sweep(plan, OUT, workers=WORKERS, quiet=True)
print(report)
print(sorted(p.name for p in Path(OUT).iterdir()), "and", len(list(Path(OUT, "points").glob("*.parquet"))),
      "point files")"""),
    ("md", """\
Running the same sweep into the same folder again finds every point already stored and computes
nothing: `reused` equals `points` and `ran` is 0. The same happens after the sweep is edited
(more axis values, another constraint): only the new points run. A store holds one base scenario;
a sweep of another base into the same folder is refused."""),
    ("code", """\
again = run_sweep(plan, OUT, workers=WORKERS, quiet=True)
print(again)
assert again.ran == 0 and again.reused == again.points == len(plan.points)
print(f"second run: {again.ran} run, {again.reused} of {again.points} skipped (already in the store), "
      f"{again.wall_s:.1f} s")"""),
    ("md", """\
## 3. The results table

`load_results(OUT)` reads the store into one DataFrame, one row per point: the axis and derived
values (`cluster.preset`, `cluster.accelerators`, `parallelism.dp`), the seed, the metrics of
`docs/metrics.md` (iteration time, tokens/s, model TFLOP/s per accelerator, MFU = model FLOPs /
(GPUs x the GPU's dense BF16 peak), exposed communication, pipeline bubble, memory), the
iteration breakdown (`breakdown_*`), link utilisation per tier (`util_*`), the top bottleneck
finding, power, optical modules and cost per accelerator, and provenance (oassim version, git
commit, wall time, worker). The full list of columns is printed first."""),
    ("code", """\
results = load_results(OUT)
print(len(results.columns), "columns:", ", ".join(results.columns))
failed = results[results["status"] != "ok"]
if len(failed):
    print("points stored with an error:")
    print(failed[["cluster.preset", "cluster.accelerators", "error"]].to_string())
ok = results[results["status"] == "ok"].sort_values(["cluster.preset", "cluster.accelerators"]).reset_index(drop=True)
ok["design"] = ok["cluster.preset"].str.replace("-superpod", "", regex=False)
ok["label"] = ok["design"] + " " + ok["cluster.accelerators"].map("{:,}".format)
ok["tokens_per_s_per_accelerator"] = ok["tokens_per_s"] / ok["accelerators"]
table = ok[["cluster.preset", "cluster.accelerators", "parallelism.dp", "iteration_time_s", "tokens_per_s",
            "tflops_per_accelerator", "mfu", "exposed_comm_s", "bubble_s", "memory_per_accelerator_GB",
            "bottleneck"]]
table.round({"iteration_time_s": 2, "tokens_per_s": 0, "tflops_per_accelerator": 1, "mfu": 3, "exposed_comm_s": 2,
             "bubble_s": 2, "memory_per_accelerator_GB": 1})"""),
    ("md", """\
## 4. Throughput versus scale

Left: tokens/s of the whole job against the number of GPUs (both axes logarithmic; perfect
scaling is a straight line of slope 1). Right: model TFLOP/s per GPU, which stays flat under
perfect scaling; MFU is this figure divided by the GPU's dense BF16 peak (A100 312 TFLOP/s,
H100 989 TFLOP/s: presets `a100-sxm` and `h100-sxm` in `topologies/hardware/accelerators.yaml`).
The per-GPU rate falls with size here because the batch is fixed: each replica gets fewer
micro-batches, so the pipeline bubble takes a larger share of the iteration (section 1's table)
and there is less compute per replica to hide the data-parallel communication behind. The
`bottleneck` column of section 3 names the collective that exposes the most time at each size."""),
    ("code", """\
sizes = sorted(ok["cluster.accelerators"].unique())
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.2), layout="constrained")
plots.line(ok, "cluster.accelerators", "tokens_per_s", hue="design", ax=ax1, logx=True, logy=True, base=2)
plots.line(ok, "cluster.accelerators", "tflops_per_accelerator", hue="design", ax=ax2, logx=True, base=2)
for ax in (ax1, ax2):
    ax.set_xticks(sizes, [f"{n:,}" for n in sizes])
    ax.minorticks_off()
ax1.set_title("job throughput")
ax2.set_title("model TFLOP/s per GPU (MFU x peak)");"""),
    ("md", """\
## 5. Where the time goes, and which links are busy

**Breakdown bars**, one per point: the critical rank's iteration split into compute,
communication left exposed on the critical path per parallel dimension (TP inside a node, DP
and PP across the fabric), pipeline bubble (waiting for a neighbouring stage) and the optimizer
step; the parts sum to the iteration time (`breakdown_*` columns). The right panel shows them as
shares of the iteration."""),
    ("code", """\
parts = [c for c in ok.columns if c.startswith("breakdown_")]
breakdown = ok[["label", *parts]].rename(columns=lambda c: c.removeprefix("breakdown_"))
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(14, 4.4), layout="constrained")
plots.breakdown_bars(breakdown, "label", [p.removeprefix("breakdown_") for p in parts], ax=ax1)
plots.breakdown_bars(breakdown, "label", [p.removeprefix("breakdown_") for p in parts], ax=ax2, normalize=True)
ax1.get_legend().remove()
for ax in (ax1, ax2):
    ax.tick_params(axis="x", labelrotation=45)
    ax.set_xlabel("")
ax1.set_title("time per iteration")
ax2.set_title("share of the iteration");"""),
    ("md", """\
**Link utilisation per tier**: one row per point, one column per link tier (`scaleup` = NVLink
inside a DGX node; `nic` = GPU to NIC; `host`, `leaf-spine`, `spine-core` = the InfiniBand
fat-tree's levels, from the GPU's cable up). Left: the mean utilisation of the tier's links over
the iteration (`util_mean_<tier>` columns); right: the busiest link of the tier (`util_<tier>`).
A grey cell is a tier the cluster does not have at that size (small clusters need no core
level). A tier with a low mean but a busy link is a hot spot (uneven load), not a lack of total
bandwidth."""),
    ("code", """\
scale_out = ["nic", "host", "leaf-spine", "spine-core"]
found = [c.removeprefix("util_mean_") for c in ok.columns if c.startswith("util_mean_")]
tiers = [t for t in found if t not in scale_out] + [t for t in scale_out if t in found]
mean_util = pd.DataFrame({"point": ok["label"], **{t: ok[f"util_mean_{t}"] for t in tiers}})
max_util = pd.DataFrame({"point": ok["label"], **{t: ok[f"util_{t}"] for t in tiers}})
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(14, 5), layout="constrained")
plots.tier_heatmap(mean_util, "point", tiers, ax=ax1, value="utilisation")
plots.tier_heatmap(max_util, "point", tiers, ax=ax2, value="max_link_utilisation")
ax1.set_title("mean link utilisation over the iteration")
ax2.set_title("busiest link's utilisation");"""),
    ("md", """\
## 6. Throughput against cost: Pareto fronts

**Cost is unknown.** The project's hardware reference (`shared/reference/hardware.md`) publishes
no citable price for the GPUs, switches, NICs or optics of these clusters, so
`cost_USD_per_accelerator` is empty for every point (the next cell checks it and lists the
unpriced parts); oassim never substitutes a guessed price. The fronts below therefore use the
two cost-like quantities that *are* published:

- **power per GPU** (`power_W_per_accelerator`): the cluster's power counting every part whose
  power the reference publishes (GPUs, optical modules, and switches where published), divided by
  the GPUs built. Parts without a published figure (the next cell lists them: NICs and, in these
  presets, the switches) are *not counted*, so it is a lower bound;
- **optical modules per GPU** (`optical_modules_per_accelerator`): two per optical link, one at
  each end; a proxy for optics cost, power and failure rate.

Read the DGX A100 figures with the preset's own caveat (`topologies/dgx-a100-superpod.yaml`,
`notes:`): the reference has no figures for HDR Quantum switches or 200G optics, so that fabric
is modelled with Quantum-2 switches in 200G mode and 400G SR4 modules, the nearest cited parts;
its optics counts and power are indicative only.

A point is on the **Pareto front** when no other point is both cheaper (further left) and faster
(higher). Left and middle: throughput per GPU against the per-GPU figures (the question "which
generation and size uses each GPU's watt or module best"). Right: job throughput against the
whole cluster's power (power per GPU x GPUs built), i.e. for a given power budget, which
generation and size trains fastest."""),
    ("code", """\
from oassim.topology.cluster import build_cluster
from oassim.topology.cluster_spec import load_cluster
from oassim.topology.fabric import freeze
from oassim.topology.metrics import cluster_info

print("cost_USD_per_accelerator, distinct values:", ok["cost_USD_per_accelerator"].unique())
for preset in SWEEP["axes"]["cluster.preset"]:
    graph = build_cluster(load_cluster(preset, 512))   # the parts are the same at every size
    info = cluster_info(graph, freeze(graph))
    print(f"{preset}: power not counted for: {', '.join(info['power_unknown_for']) or 'none'}; "
          f"no price for: {', '.join(info['cost_unknown_for'])}")

ok["cluster_power_kW"] = ok["power_W_per_accelerator"] * ok["accelerators_built"] / 1e3
fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(16, 4.6), layout="constrained")
plots.pareto_front(ok, "power_W_per_accelerator", "tokens_per_s_per_accelerator", label="label", ax=ax1)
plots.pareto_front(ok, "optical_modules_per_accelerator", "tokens_per_s_per_accelerator", label="label", ax=ax2)
plots.pareto_front(ok, "cluster_power_kW", "tokens_per_s", label="label", ax=ax3)
ax1.set_xlabel("power per GPU (W, parts with a published figure), lower is better")
ax3.set_xlabel("cluster power (kW, parts with a published figure), lower is better")
ax1.set_title("per GPU: throughput vs power")
ax2.set_title("per GPU: throughput vs optical modules")
ax3.set_title("whole job: throughput vs cluster power");"""),
    ("md", """\
## 7. The same sweep on a Dask cluster

The sweep above ran on local processes. The same sweep runs on a Dask distributed cluster by
giving the scheduler's address instead; nothing else changes, and the result store is the same
format (rows travel back to the process that runs the sweep, which writes them, so the workers
need no access to the store). Start a scheduler and workers where oassim is installed (same
version), then run the sweep file from the command line:

```sh
dask scheduler --port 8786                                  # on the head node
dask worker tcp://HOST:8786 --nthreads 1 --nworkers 16      # on each compute node
oassim sweep SWEEP.yaml --out DIR --scheduler tcp://HOST:8786
oassim results DIR --sort mfu                               # the table of section 3
oassim plot DIR --x cluster.accelerators --y tokens_per_s --hue cluster.preset --logx -o scaling.png
```

or from Python, `run_sweep(plan, OUT, scheduler="tcp://HOST:8786")`. This notebook does not
start Dask. The next cell writes `SWEEP` as the sweep file the command line takes (in a file,
`base:` is relative to the file, so the path is made absolute) and checks that it expands to the
very same point ids: pointed at the store above with `--out`, the Dask run would reuse all
ten points and compute none."""),
    ("code", """\
import yaml

sweep_file = WORK / f"{SWEEP['name']}.yaml"
sweep_file.write_text(yaml.safe_dump({**SWEEP, "base": str(Path(BASE_SCENARIO).resolve())}, sort_keys=False))
same = [p.point_id for p in expand_sweep(sweep_file).points] == [p.point_id for p in plan.points]
print(sweep_file.read_text())
print("same point ids as above:", same)
print(f"oassim sweep {sweep_file} --out {OUT} --scheduler tcp://HOST:8786")"""),
    ("md", """\
## 8. Headline numbers

One row per point: throughput, MFU, power and optical modules per GPU, and the top bottleneck
finding of the simulator (`bottleneck`: the kind and name of its first finding)."""),
    ("code", """\
headline = ok[["label", "tokens_per_s", "tokens_per_s_per_accelerator", "mfu", "bubble_s", "exposed_comm_s",
               "power_W_per_accelerator", "optical_modules_per_accelerator", "bottleneck"]].set_index("label")
print(f"notebook computed in {time.perf_counter() - t_start:.0f} s (sweep: {report.wall_s:.0f} s on {WORKERS} workers)")
headline.round({"tokens_per_s": 0, "tokens_per_s_per_accelerator": 1, "mfu": 3, "bubble_s": 2, "exposed_comm_s": 2,
                "power_W_per_accelerator": 0, "optical_modules_per_accelerator": 2})"""),
    ("md", """\
## Reading the results, and what this sweep leaves out

- The layout (TP 8, PP 8) is the base scenario's, kept at every size; only data parallelism
  grows. A real team would re-tune the layout per size (more PP stages or interleaving when the
  micro-batches per replica run short); `experiments/sweeps/gpt3-175b-parallelism.yaml` sweeps
  the layouts themselves.
- Strong scaling at a fixed batch is a hard test: doubling the GPUs halves the micro-batches per
  replica. Weak scaling (the batch grows with DP) is one `derived:` line away:
  `workload.global_batch: "parallelism.dp * 16"` (as `experiments/sweeps/scale-a100-h100.yaml`).
- Power per GPU counts only the parts with a published figure, and cost is unknown: the Pareto
  fronts compare what is known, and a reader should not read the power axis as the electricity
  bill.
- The network model is analytical (static link loads). Set `"network": "flow"` in `SWEEP` for
  max-min fair sharing (slower).
- The store `OUT` and the sweep file are in the temporary folder `WORK`: delete it when done, or
  give `OUT` a folder of your own to keep the results (a later run into it resumes)."""),
]

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

**Profile.** The parameter cell below runs the `quick` profile (`SUITE = "quick"`: smaller
scales and batches, about 20 s on a 2-core machine) so that the notebook stays fast. **The
committee's numbers come from the `full` profile**, OAS-Bench 1.0 proper, from the command line:

```sh
oassim evaluate experiments/specs/*.yaml --out report/     # full suite, about 2 minutes on 2 cores
```

Quick results are a smoke test: **they are not comparable with full ones** (the suite's name,
`oas-bench-1.0-quick`, and the report say so). Set `SUITE = "full"` to run the full suite here.

Every number below is computed by oassim from the spec files, whose figures come from
`shared/reference/hardware.md` with source ids in their comments; a figure no source publishes is
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
  proposals), measures all-to-all up to 1,024 ranks, and uses the uncalibrated `default` compute
  efficiency for the reference accelerator (the same for every candidate).
- These are quick-profile numbers unless `SUITE = "full"`. For the committee, run
  `oassim evaluate experiments/specs/*.yaml --out report/` and circulate `report/report.html`."""),
]

#: Every notebook this file writes: file name in notebooks/ -> its cells.
NOTEBOOKS: dict[str, list[tuple[str, str]]] = {
    "compare_supernodes.ipynb": CELLS,
    "parameter_sweep.ipynb": SWEEP_CELLS,
    "interconnect_spec_evaluation.ipynb": SPEC_CELLS,
}


def build(cells: list[tuple[str, str]] = CELLS) -> nbformat.NotebookNode:
    """The notebook of ``cells`` (default: compare_supernodes), every code cell without outputs
    or execution count."""
    # stable cell ids, so that regenerating an unchanged notebook leaves the file unchanged
    cells = [new_markdown_cell(src, id=f"cell-{i:02d}") if kind == "md" else new_code_cell(src, id=f"cell-{i:02d}")
             for i, (kind, src) in enumerate(cells)]
    nb = new_notebook(cells=cells, metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"},
        "language_info": {"name": "python"},
    })
    nbformat.validate(nb)
    return nb


def strip(path: str | Path) -> bool:
    """Remove outputs, execution counts and widget state from a notebook in place; True if it changed."""
    nb = nbformat.read(path, as_version=4)
    before = nbformat.writes(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        cell.metadata.pop("execution", None)
    nb.metadata.pop("widgets", None)
    if nbformat.writes(nb) == before:
        return False
    nbformat.write(nb, path)
    return True


if __name__ == "__main__":
    if sys.argv[1:2] == ["--strip"]:
        for name in sys.argv[2:]:
            print(f"{'stripped' if strip(name) else 'already clean'}: {name}")
    else:
        names = sys.argv[1:] or list(NOTEBOOKS)
        unknown = [n for n in names if n not in NOTEBOOKS]
        if unknown:
            sys.exit(f"unknown notebook(s) {', '.join(unknown)} (defined here: {', '.join(NOTEBOOKS)})")
        for name in names:
            out = HERE / name
            nbformat.write(build(NOTEBOOKS[name]), out)
            print(f"wrote {out}")
