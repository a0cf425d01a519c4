"""Cells of the OAS-Bench 2.0 section of ``interconnect_spec_evaluation.ipynb`` (one supernode proposal
end to end), appended to ``_cells_spec.SPEC_CELLS`` by ``_build.py``."""

PROPOSAL_CELLS: list[tuple[str, str]] = [
    ("md", """\
## 6. OAS-Bench 2.0: one supernode proposal, end to end

Sections 1-5 compared interconnect *specs* on one fixed reference cluster. A **proposal** is a
whole design: accelerator type(s) from one or several vendors, the interconnect spec, the
supernode in the shape the proposer chooses (switched, two-tier Clos, full mesh, torus with
OCS...), the switch and optics parts and the scale-out fabric (`oassim schema proposal`;
`docs/oas-bench.md`, "OAS-Bench 2.0"). This section takes one proposal file through every step
of `oassim evaluate experiments/proposals/*.yaml`:

1. load the file and show what it proposes;
2. build its cluster and count what it is made of: switches, optical modules, cables, power and
   capital cost, with every part that has no published figure named;
3. run its collective microbenchmarks and its training workloads (each in the best layout of a
   bounded search) on its own cluster;
4. its goodput over a 30-day failure campaign;
5. its place in the ranking against another proposal.

The proposal here is `ualink-multivendor`: UALink 200G pods of 128 on one switch tier, half the
supernodes AMD MI300X-class and half Google TPU v5p-class chips. A mix of chips is what an open
architecture allows, and the run shows how it is simulated: each pipeline stage computes at
its own chips' peak and efficiency (stages 0-1 on MI300X and 2-3 on TPU v5p here), and every
layout is also tried with its layers **balanced by chip speed** (more layers on the faster
chip). The `quick` profile keeps it fast (clusters of 256 accelerators, about 30-45 s on 2 cores
for both proposals); `PROPOSAL_SUITE = "full"` runs the committee's suite on 16,384
accelerators, which takes minutes per proposal."""),
    ("code", """\
from oassim.experiments.proposal import load_proposal
from oassim.experiments.proposal_build import build_proposal
from oassim.experiments.proposal_report import evaluate_proposals
from oassim.experiments.proposal_suite import get_proposal_suite

# --- parameters ---------------------------------------------------------------------------------
PROPOSAL = Path("../experiments/proposals/ualink-multivendor.yaml")   # the proposal walked through
RIVALS = [Path("../experiments/proposals/nvlink5.yaml")]              # what it is ranked against
PROPOSAL_SUITE = "quick"   # "quick": smoke profile; "full": OAS-Bench 2.0 as the committee runs it
BUILD_ACCELERATORS = 1024  # cluster size of step 2 (the counts); the full suite builds 16,384
# -------------------------------------------------------------------------------------------------

psuite = get_proposal_suite(PROPOSAL_SUITE)
rp = load_proposal(PROPOSAL)
prop = rp.proposal
print(f"{prop.name}: {prop.description}")
print(f"proposer: {prop.proposer or '-'}; sources: {', '.join(prop.sources)}")
print(f"interconnect: {rp.interconnect.name if rp.interconnect else 'none'} ({rp.interconnect_source})")
print(f"supernode: family {prop.supernode.family}, geometry {prop.supernode.spec}")
pd.DataFrame([{"accelerator": a.name, "vendor": c.vendor or a.vendor, "share of supernodes": c.share,
               "scale-up ports": a.scaleup_links, "port Gb/s": (a.scaleup_link_GBps or 0) * 8,
               "BF16 dense TFLOPS": a.bf16_dense_TFLOPS, "HBM GB": a.hbm_capacity_GB,
               "power W": a.power_W if a.power_W is not None else "not published"}
              for a, c in rp.accelerators]).set_index("accelerator")"""),
    ("md", """\
### 6.2 Its cluster and what it is made of

`build_proposal` writes the proposal's cluster file (the `interconnect` roles become the spec's
port and switch chip, each reach class its medium and optical module), builds it, runs the design
rules of `oassim topo check` (and each other chip type's ports against the links it is wired
to), and counts the parts. Mixed types fill whole supernodes in list order; power and price are
each type's own. A total is given only when every accelerator type has a figure; the parts
without one are listed, never guessed."""),
    ("code", """\
pc = build_proposal(rp, BUILD_ACCELERATORS)
tot = pc.totals
print(f"{tot['accelerators']:,} accelerators = {tot['supernodes']} supernodes x {tot['supernode_size']}; "
      f"by type: {tot['accelerators_by_type']}")
print("design rules:", "ok" if not pc.violations else f"{len(pc.violations)} violations")
print(f"switches: {tot['switches_total']:,}; optical modules: {tot['optical_modules']:,} "
      f"({tot['optical_modules_per_accelerator']:.2f} per accelerator) {tot['optical_modules_by_type']}; "
      f"cables: {tot['cables_total']:,}")
display(pd.DataFrame(tot["switches"]).set_index(["tier", "part"]))
display(pd.DataFrame(tot["cables"]).set_index("tier"))
power = pd.DataFrame([{"part": k.removesuffix("_W"), "kW (parts with a figure)": v / 1e3,
                       "no figure for": ", ".join(tot["power_unknown_by_part"].get(k, []))}
                      for k, v in tot["power_W"].items() if k != "total_W"]).set_index("part")
display(power.round(1))
print("power total:", "unknown (an accelerator type has no figure)" if tot["power_W"]["total_W"] is None
      else f"{tot['power_W']['total_W'] / 1e6:.3f} MW")
print("capital cost:", f"{tot['capital_cost_USD']:,.0f} USD" if tot["capital_cost_USD"] is not None
      else f"unknown: no price for {', '.join(tot['cost_unknown_for'])}")"""),
    ("md", """\
### 6.3 Collectives and training on its own cluster

`evaluate_proposals` does what `oassim evaluate` does with proposal files: build each cluster at
the suite's size, run the collective microbenchmarks on it (busbw per nccl-tests, the algorithm
the tuner chose and the link tier that limits it), and run each training workload in every
layout of its bounded candidate set, keeping the best. For a mixed cluster each layout is run as
published (the Megatron split) and **balanced** by chip speed (a `pipeline_model_parallel_layout`
with the layers in proportion to each stage's speed, measured per layer by the compute model);
the stage table shows which chip each stage ran on and how many layers it held. The proposal and
its rival are evaluated together, so section 6.5 can rank them."""),
    ("code", """\
pev = evaluate_proposals([PROPOSAL, *RIVALS], suite=psuite, workdir=WORK / "proposals", progress=print)
res = next(r for r in pev.results if r.name == prop.name)
coll = pd.DataFrame(res.score["collectives"])
coll[["op", "scale", "size", "status", "busbw_GBps", "algorithm", "bottleneck_tier"]].round(1)"""),
    ("code", """\
for t in res.score["training"]:
    print(f"== {t['workload']} on {t['accelerators']:,} accelerators ({t['precision']}): best layout {t['layout']}, "
          f"{t['tokens_per_s']:,.0f} tokens/s, MFU {t['mfu']:.1%}")
    print("   bottleneck:", t["bottleneck"])
    display(pd.DataFrame(t["candidates"])[["layout", "status", "tokens_per_s", "mfu"]].round(3))
    display(pd.DataFrame({"chip": t["stage_accelerators"], "layers": t["stage_layers"]},
                         index=pd.Index(range(len(t["stage_layers"])), name="stage")).T)"""),
    ("md", """\
### 6.4 Goodput over a 30-day campaign

The evaluation ran the failures model (`oassim.experiments.reliability`, docs/reliability.md):
seeded campaigns of the best layout's job (the scenario it stored) with failures of accelerators,
hosts, NICs, switches, links and optics, checkpoints at the Daly interval and restarts; goodput is
the share of the campaign spent on useful iterations. The per-accelerator rates are the
H100-generation ones (the only published set), as OAS-Bench 1.0 uses them for every candidate;
the parts without a published rate are listed."""),
    ("code", """\
best = res.score["training"][0]
g = best["goodput"]  # the evaluation ran it on the stored scenario of the best layout
print(f"{best['workload']} on {prop.name}, {g['days']:g} days x {g['samples']} campaigns:")
print(f"  goodput {g['goodput']['mean']:.2%} (95% of campaigns {g['goodput']['ci95'][0]:.2%} - "
      f"{g['goodput']['ci95'][1]:.2%}), interruptions per day {g['interruptions_per_day']['mean']:.2f}")
print(f"  tokens/s kept: {g['effective_tokens_per_s']:,.0f} of {best['tokens_per_s']:,.0f}")
print("  no published rate for:", ", ".join(g["unset"]) or "none")"""),
    ("md", """\
### 6.5 Its place in the ranking

Proposals are ranked by throughput score: the geometric mean over the workloads of tokens/s in
each proposal's best layout relative to the best proposal. Per MW and per unit cost are shown
only where the power total or every price is known (for `ualink-multivendor` neither is: the TPU
v5p has no published power figure and no part is priced)."""),
    ("code", """\
ranking2 = pd.DataFrame([{"rank": r["rank"], "proposal": r["proposal"], "throughput score": r["score"],
                          **{f"{w} tokens/s": v for w, v in r["tokens_per_s"].items()}, "status": r["status"]}
                         for r in pev.ranking]).set_index("rank")
place = next(r for r in pev.ranking if r["proposal"] == prop.name)
print(f"{prop.name}: rank {place['rank']} of {len(pev.ranking)} ({PROPOSAL_SUITE} profile); "
      f"notebook computed in {time.perf_counter() - t_start:.0f} s")
ranking2.round(3)"""),
]
