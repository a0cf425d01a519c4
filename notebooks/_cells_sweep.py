"""Cells of ``parameter_sweep.ipynb`` (markdown and code, in order), written out by ``_build.py``."""

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

**Cost is unknown.** The project's hardware sources (`docs/sources.md`) publish
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
