"""Branch and bound in the OAS-Bench 2.0 layout search: the compute ceiling of a layout
(oassim.experiments.layout_bound) bounds what its replay gives, and pruning by it changes no
best layout, score or rank (quick profile on two example proposals, one of them mixed-vendor)."""

from __future__ import annotations

from pathlib import Path

import pytest

from oassim.errors import SpecError
from oassim.experiments.layout_bound import pipeline_bound_s
from oassim.experiments.layout_search import Candidate, search
from oassim.experiments.proposal_report import evaluate_proposals
from oassim.workload import compile_plan
from oassim.workload.plan import compute_seconds

ROOT = Path(__file__).resolve().parents[2]
PROPOSALS = [str(ROOT / "experiments" / "proposals" / f"{n}.yaml") for n in ("nvlink5", "ualink-multivendor")]


@pytest.fixture(scope="module")
def pruned_and_full() -> tuple:
    return (evaluate_proposals(PROPOSALS, suite="quick", prune=True),
            evaluate_proposals(PROPOSALS, suite="quick", prune=False))


def _training(ev) -> dict:
    return {(r.name, t["workload"]): t for r in ev.results for t in r.score["training"]}


def test_pruning_keeps_every_best_layout_score_and_rank(pruned_and_full: tuple) -> None:
    """Exact equality of the best layout, its iteration time and every score and rank, pruned vs not."""
    pruned, full = pruned_and_full
    assert pruned.ranking == full.ranking
    for a, b in zip(pruned.results, full.results):
        assert a.score["scores"] == b.score["scores"]
    tp, tf = _training(pruned), _training(full)
    assert tp.keys() == tf.keys() and len(tp) == 4
    for k, t in tp.items():
        assert t["status"] == "ok" == tf[k]["status"]
        assert (t["layout"], t["iteration_time_s"], t["tokens_per_s"]) == (
            tf[k]["layout"], tf[k]["iteration_time_s"], tf[k]["tokens_per_s"])
    # the pruning did prune (else this test shows nothing), and only layouts slower than the best
    pruned_rows = [(k, c) for k, t in tp.items() for c in t["candidates"] if c["status"].startswith("pruned")]
    assert len(pruned_rows) >= 3
    for k, c in pruned_rows:
        ran = next(x for x in tf[k]["candidates"] if x["layout"] == c["layout"])
        assert ran["status"] == "ok" and ran["tokens_per_s"] < tf[k]["tokens_per_s"]


def test_the_ceiling_bounds_every_replayed_layout(pruned_and_full: tuple) -> None:
    """Every candidate the unpruned search replayed gave at most its ceiling (compute-only bound)."""
    _, full = pruned_and_full
    rows = [c for t in _training(full).values() for c in t["candidates"] if c["status"] == "ok"]
    assert len(rows) >= 8
    for c in rows:
        assert c["ceiling_tokens_per_s"] is not None and c["tokens_per_s"] <= c["ceiling_tokens_per_s"], c["layout"]


def test_pipeline_bound_is_the_uniform_pipeline_closed_form() -> None:
    """1F1B over p = 4 stages of m = 8 micro-batches: the bound lies between the closed form
    (m + p - 1)(t_F + t_B) of the middle stages (the end stages add the embedding and the head)
    and the same form at the slowest stage's t_F, t_B plus the longest optimizer (to 1e-12)."""
    plan = compile_plan("llama3-8b", {"tp": 1, "pp": 4, "dp": 16}, "h100-sxm", None,
                        training={"seq_len": 4096, "global_batch": 128, "micro_batch": 1}, accelerators=64)
    m, p = plan.n_microbatches, len(plan.stages)
    assert (m, p) == (8, 4)
    f = [s.chunks[0].forward_s for s in plan.stages]
    b = [s.chunks[0].backward_s for s in plan.stages]
    assert f[1] == pytest.approx(f[2], rel=1e-12) and min(f) == pytest.approx(f[1], rel=1e-12)
    lo = (m + p - 1) * (f[1] + b[1])
    hi = (m + p - 1) * (max(f) + max(b)) + max(compute_seconds(s.optimizer) for s in plan.stages)
    bound = pipeline_bound_s(plan)
    assert lo * (1 - 1e-12) <= bound <= hi * (1 + 1e-12)
    assert bound > plan.compute_only_s * 1.2  # the bubble counted: (m + p - 1) / m = 1.375 of one stage


def test_search_prunes_in_ceiling_order_and_keeps_ties_to_the_earlier_candidate() -> None:
    """Made-up layouts: ceilings 10, 30, 20, 5, 30 and tokens/s 9, 25, 25, 4, 25: the two
    30-ceiling layouts run first, the 5 is pruned, ties go to the earlier; a ceiling that raises
    marks the layout infeasible without running it."""
    tok = {1: 9.0, 2: 25.0, 3: 25.0, 4: 4.0, 5: 25.0, 6: 1.0}
    top = {1: 10.0, 2: 30.0, 3: 20.0, 4: 5.0, 5: 30.0}
    ran: list[int] = []

    def ceiling(par: dict) -> float:
        if par["tp"] == 6:
            raise SpecError("does not fit in HBM")
        return top[par["tp"]]

    def evaluate(par: dict) -> dict:
        ran.append(par["tp"])
        return {"tokens_per_s": tok[par["tp"]]}

    cands = [Candidate({"tp": t, "pp": 1}) for t in range(1, 7)]
    res = search(cands, evaluate, ceiling=ceiling)
    assert ran == [2, 5]  # 3 (ceiling 20) and the rest are below the 25 found
    assert res.best is cands[1]
    assert [c.status.split(":")[0] for c in cands] == ["pruned", "ok", "pruned", "pruned", "ok", "infeasible"]
    ran.clear()
    full = search([Candidate({"tp": t, "pp": 1}) for t in range(1, 7)], evaluate, ceiling=ceiling, prune=False)
    assert ran == [1, 2, 3, 4, 5] and full.best.parallelism["tp"] == 2
