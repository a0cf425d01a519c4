"""Cells of ``reliability.ipynb`` (markdown and code, in order), written out by ``_build.py``."""

RELIABILITY_CELLS: list[tuple[str, str]] = [
    ("md", """\
# Failures, checkpoints and goodput of four supernode designs

A training job on ~16,000 accelerators is interrupted every few hours: Llama 3 405B saw 419
unexpected interruptions in 54 days on 16,384 H100 (calibration source S09, docs/sources.md).
This notebook runs the **same job** (`experiments/llama3-405b-16k-h100.yaml`, 54 days) on four
supernode families and asks how much training time each loses to failures:

| design | preset (`topologies/`) | what one failure takes down |
|---|---|---|
| DGX H100 SuperPOD | `dgx-h100-superpod` | a GPU takes its 8-GPU host; a leaf switch one rail's hosts |
| NVL72 | `gb200-nvl72` | a GPU takes its 4-GPU compute tray; an NVSwitch chip is 1/18 of the rack's bandwidth |
| CloudMatrix384 | `cloudmatrix384` | an NPU takes its 8-NPU node; an L2 switch or optical link 1/16 of a chip's uplinks |
| TPU v5p torus | `tpu-v5p-pod` | an ICI link or OCS circuit breaks a ring: a 4x4x4 cube is swapped in through the OCS |

**Read this before quoting a number.** Component rates come from `topologies/hardware/reliability.yaml`:
the per-accelerator, host and NIC rates are published only for the H100 generation (derived from
the Llama 3 table), so every design here uses them (`accelerator_rates="h100-sxm"`): the
comparison isolates what the fabric (its counts of optical links and switches) and the blast
radius change, not the chips. Network links and switches use the Alibaba HPN rates (calibration
source S27). Parts with no citable rate (copper cables, scale-up switch chips, OCS, rack power)
are left out and listed; the TPU preset has no published host size, so its host failures are
left out too. Detection, restart and repair times and the storage bandwidth are assumptions,
listed with each result.

The H100 rates reproduce the Llama 3 table by construction; predicted from other sources only
(`oassim reliability --validate`, leave one source out), the network interruptions come out 45%
high and most other causes have no independent figure, so read the differences between designs,
not the absolute goodput."""),
    ("code", """\
import matplotlib.pyplot as plt
import pandas as pd

import oassim
from oassim.experiments.reliability import DEFAULT_STORAGE_GBPS

SCENARIO = "../experiments/llama3-405b-16k-h100.yaml"
DESIGNS = [
    {"name": "DGX H100", "preset": "dgx-h100-superpod"},
    {"name": "NVL72", "preset": "gb200-nvl72"},
    {"name": "CloudMatrix384", "preset": "cloudmatrix384"},
    {"name": "TPU v5p", "preset": "tpu-v5p-pod"},
]
DAYS, SAMPLES, SEED = 54, 30, 0
CACHE = {}  # built clusters' counts, reused by every call below


def campaign(design, **kw):
    return oassim.reliability(SCENARIO, days=DAYS, samples=kw.pop("samples", SAMPLES), seed=SEED,
                              accelerator_rates="h100-sxm", overrides=[f"cluster.preset={design['preset']}"],
                              cluster_cache=CACHE, **kw)


results = {d["name"]: campaign(d) for d in DESIGNS}
rows = []
for name, res in results.items():
    s = res.summary()
    rows.append({"design": name, "accelerators": s["accelerators"],
                 "interruptions/day": s["interruptions_per_day"]["mean"],
                 "95% of campaigns": "%.1f-%.1f" % tuple(s["interruptions_per_day"]["ci95"]),
                 "job MTBF (h)": s["mtbf_hours"], "goodput": s["goodput"]["mean"], "ETTR": s["ettr"]["mean"],
                 "checkpoint every (min)": round(s["checkpoint"]["interval_s"] / 60, 1)})
pd.DataFrame(rows).set_index("design")"""),
    ("md", """\
## What each design leaves out

Each campaign lists the parts with no citable failure rate (left out of the campaign, so they
bias the design's goodput upwards) and the assumptions it used."""),
    ("code", """\
for name, res in results.items():
    s = res.summary()
    unset = ", ".join(f"{u['component']}:{u['tier']}" + (f" ({u['count']:,})" if u["count"] else "")
                      for u in s["unset"])
    print(f"{name}: unset: {unset or 'none'}")
print()
print("assumed:", *results["DGX H100"].summary()["assumptions"], sep="\\n  ")"""),
    ("md", """\
## Goodput versus checkpoint interval

Checkpointing more often costs write time; less often, more work lost at each interruption.
The curves sweep the compute time between checkpoints; the dots are Daly's optimum for each
design's job MTBF (`oassim.reliability.daly_interval_s`). Every point replays the same seeded
failures (only the checkpoint interval changes), so 10 samples per point draw a smooth curve.
The checkpoint of a 405B model is 14 bytes per parameter, written at the assumed storage
bandwidth."""),
    ("code", """\
INTERVALS_MIN = [1, 3, 10, 30, 100]
fig, ax = plt.subplots(figsize=(7, 4))
for d in DESIGNS:
    g = [campaign(d, checkpoint_interval_s=m * 60, samples=10).summary()["goodput"]["mean"] for m in INTERVALS_MIN]
    line, = ax.plot(INTERVALS_MIN, g, marker=".", label=d["name"])
    s = results[d["name"]].summary()
    ax.plot(s["checkpoint"]["interval_s"] / 60, s["goodput"]["mean"], "o", color=line.get_color())
ax.set_xscale("log")
ax.set_xlabel("compute time between checkpoints (min)")
ax.set_ylabel("goodput")
ax.set_title(f"Llama 3 405B, {DAYS} days, storage {DEFAULT_STORAGE_GBPS:g} GB/s (dots: Daly optimum)")
ax.legend()
plt.show()"""),
    ("md", """\
## Where the time goes, by component

Hours per campaign lost to each component type (work redone since the last checkpoint,
detection and restart, waits for spares, slowdowns on a degraded fabric), and the checkpoint
writes themselves."""),
    ("code", """\
lost = pd.DataFrame({name: res.summary()["lost_hours_by_component"] for name, res in results.items()}).fillna(0).T
ax = lost.plot.barh(stacked=True, figsize=(8, 3.5))
ax.set_xlabel(f"hours lost per {DAYS}-day campaign")
ax.legend(loc="center left", bbox_to_anchor=(1, 0.5), fontsize=8)
plt.show()
lost.round(1)"""),
    ("md", """\
## The failure sources of one design

Counts come from the topology builder (`oassim topo info`), rates from the catalog; the blast
radius column says what one failure takes down."""),
    ("code", """\
pd.DataFrame(results["CloudMatrix384"].summary()["exposures"]).set_index(["component", "tier"])"""),
]
