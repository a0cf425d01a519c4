"""Cells of ``compare_supernodes.ipynb`` (markdown and code, in order), written out by ``_build.py``."""

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

How to read the in-domain figures: each is set by the links an accelerator has and by what the
switches do, because every design gets the algorithm that uses all of its links. NVL72 runs
NVLS (in-network reduction), held at the NVLink Switch's published rate (about 820 GB/s here,
~850 published) rather than the 900 GB/s of an accelerator's 18 links. UB-Mesh runs the
full-mesh all-path algorithm over all 14 direct links at once (about 385 of 14 x 28 = 392 GB/s).
The TPU pod runs bidirectional rings in all three torus dimensions at once (about 470 of
6 x 100 = 600 GB/s over 4,096 chips; the TPU v4 pod's published all-reduce reaches ~89% of its
bound). CloudMatrix384 runs the hierarchical algorithm over its two-tier UB Clos (about 320 of
392 GB/s), limited by its L1 switch chips' links. So the ranking inside the domain follows the
bandwidth per accelerator and in-network reduction, not which algorithm the simulator knows.
Across domains, the scale-out NICs set the figure (section 6 lists their bandwidth per
accelerator)."""),
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
CloudMatrix384 559 kW, about 1.46 kW per NPU all-in (`docs/sources.md`, table
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
