"""A closed-form ceiling on a layout's tokens/s, so that the layout search need not replay a
layout that cannot win (branch and bound; :func:`oassim.experiments.layout_search.search`).

What it computes: :func:`pipeline_bound_s`, a lower bound on the iteration time of a compiled
plan from its compute alone, and :func:`plan_for`, the plan :func:`oassim.experiments.runner.run`
would compile for a scenario (same cluster cache, model, mix of chips), without replaying it.
The ceiling on tokens/s is ``plan.tokens_per_iteration / pipeline_bound_s(plan)``.

Why it is a lower bound (the replay contract of :mod:`oassim.scheduler.replay`): each simulated
rank runs its compute segments one after the other on one compute stream, each for its
compute ops' summed duration (no straggler factor in the suite), from time 0; the forward of
micro-batch ``mb`` on stage ``s`` (one chunk per stage) starts only after the forward of ``mb``
on stage ``s - 1`` has run, and the backward of ``mb`` on ``s`` only after that on ``s + 1``;
the optimizer list runs after a stage's schedule; communication, bubbles and contention only
add waiting, and the iteration is the latest rank's end. So for every stage ``k``, with its
first step the forward of ``f`` and its last the backward of ``b``, the iteration lasts at least

    sum_{s<k} F_s(f) + (compute of k's schedule) + max(optimizer_k, sum_{s<k} B_s(b) + optimizer_0)

(the classic ``(m + p - 1)(t_F + t_B)`` of a uniform pipeline). A plan with several chunks per
stage (interleaved schedule) gets the weaker bound ``Plan.compute_only_s`` (its slowest stage's
compute), equally a lower bound.
"""

from __future__ import annotations

from typing import Any, MutableMapping

from oassim.workload.plan import compute_seconds

__all__ = ["pipeline_bound_s", "plan_for"]


def pipeline_bound_s(plan: Any) -> float:
    """Lower bound on ``plan``'s iteration time from compute alone, s (module docstring)."""
    stages = plan.stages
    bound = float(plan.compute_only_s)
    if any(len(st.chunks) != 1 for st in stages):
        return bound
    last_mb = plan.n_microbatches - 1
    fwd = [compute_seconds(st.chunks[0].forward) for st in stages]

    def bwd(s: int, mb: int) -> float:
        c = stages[s].chunks[0]
        return compute_seconds(c.backward_last if mb == last_mb else c.backward)

    opt = [compute_seconds(st.optimizer) for st in stages]
    for k, st in enumerate(stages):
        if not st.schedule:
            continue
        sched = sum(fwd[k] if x.kind == "F" else bwd(k, x.microbatch) for x in st.schedule)
        first, last = st.schedule[0], st.schedule[-1]
        pre = sum(fwd[:k]) if first.kind == "F" else 0.0
        post = sum(bwd(s, last.microbatch) for s in range(k)) if last.kind == "B" else 0.0
        tail = max(opt[k], post + opt[0]) if k else opt[k]
        bound = max(bound, pre + sched + tail)
    return bound


def plan_for(scenario: dict[str, Any], cluster_cache: MutableMapping[tuple[str, int | None], tuple[Any, Any]]) -> Any:
    """The plan :func:`oassim.experiments.runner.run` compiles for ``scenario`` (a mapping), on
    the cluster of ``cluster_cache`` (built and stored there when missing).

    Raises
    ------
    SpecError
        The layout the compiler refuses (does not fit in HBM, TP not dividing the heads, ...).
    """
    from oassim.experiments.runner import _mix, _resolve_model
    from oassim.experiments.scenario import load_scenario
    from oassim.topology.cluster import build_cluster
    from oassim.topology.cluster_spec import load_cluster
    from oassim.topology.fabric import freeze
    from oassim.workload import compile_plan

    sc, source = load_scenario(scenario, [])
    key = (sc.cluster.ref, sc.cluster.accelerators)
    hit = cluster_cache.get(key)
    if hit is None:
        rc = load_cluster(sc.cluster.ref, sc.cluster.accelerators)
        hit = cluster_cache[key] = (rc, freeze(build_cluster(rc)))
    rc, fabric = hit
    return compile_plan(_resolve_model(sc, source), sc.parallelism, rc.accelerator, fabric,
                        training=sc.workload.training(), accelerators=sc.cluster.accelerators or rc.accelerators,
                        mix=_mix(sc, rc, fabric))
