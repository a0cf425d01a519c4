"""The OAS-Bench 2.0 ranking of proposals and its report blocks.

What it does: :func:`rank_proposals` orders the proposals by throughput score, the geometric
mean over the suite's workloads of the proposal's tokens/s in its best layout divided by the
best proposal's (1.00 = the fastest on every workload). Proposals whose scores are equal to two
decimals share a rank and are marked as tied; a proposal that breaks a design rule is not scored
(listed after the ranked ones with its violations), and one with a workload that could not run
has no score ("unknown", with the reason) and is listed after the ranked ones too. Throughput per
MW and per unit cost are shown beside the rank, not folded into it: most proposals publish
neither their switches' power nor any price, and a ranking over the few that do would compare
unlike things. :func:`ranking_blocks`, :func:`score_blocks` give the report's tables.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

__all__ = ["rank_proposals", "ranking_blocks", "score_blocks"]

Block = tuple


def _geomean(values: Sequence[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values))


def rank_proposals(results: Sequence[Any], workloads: Sequence[str]) -> list[dict[str, Any]]:
    """Ranking rows, best first: ``rank`` (None when unranked), ``tie``, ``proposal``, ``score``,
    ``status`` and the per-workload ``tokens_per_s``."""
    best: dict[str, float] = {}
    for r in results:
        for w, sc in (r.score or {}).get("scores", {}).items():
            best[w] = max(best.get(w, 0.0), sc["tokens_per_s"])
    rows = []
    for r in results:
        scores = (r.score or {}).get("scores", {})
        tok = {w: scores[w]["tokens_per_s"] for w in workloads if w in scores}
        row: dict[str, Any] = {"proposal": r.name, "rank": None, "tie": False, "score": None, "tokens_per_s": tok}
        if not r.scored:
            row["status"] = "not scored: breaks design rules"
        elif len(tok) < len(workloads):
            failed = [t for t in (r.score or {}).get("training", []) if t["status"] != "ok"]
            row["status"] = "unknown: " + "; ".join(f"{t['workload']} {t['status']}" for t in failed)
        else:
            row["score"] = _geomean([tok[w] / best[w] for w in workloads])
            row["status"] = "ranked"
        rows.append(row)
    ranked = sorted((x for x in rows if x["score"] is not None), key=lambda x: -x["score"])
    for i, row in enumerate(ranked):
        prev = ranked[i - 1] if i else None
        if prev is not None and round(prev["score"], 2) == round(row["score"], 2):
            row["rank"], row["tie"], prev["tie"] = prev["rank"], True, True
        else:
            row["rank"] = i + 1
    return ranked + [x for x in rows if x["score"] is None]


def _fmt(v: float | None, unit: str = "") -> str:
    return "unknown" if v is None else f"{v:,.0f}{unit}"


def _per(entry: dict[str, Any], what: str) -> str:
    if entry["value"] is not None:  # a total with parts left out is a lower bound, so the ratio an upper one
        tail = f" (upper bound: no {what} for {', '.join(entry['unknown_for'])})" if entry["unknown_for"] else ""
        return f"{entry['value']:,.0f}{tail}"
    named = ", ".join(entry["unknown_for"][:4]) + (" ..." if len(entry["unknown_for"]) > 4 else "")
    return f"unknown (no {what} for {named})" if named else "unknown"


def _mixed(rec: dict[str, Any]) -> bool:
    return len(set(rec.get("stage_accelerators") or ())) > 1


def stage_text(rec: dict[str, Any]) -> str:
    """The chip type and decoder layers of each pipeline stage of a run, runs of equal stages
    joined (``"stages 0-1 gb200 (20 layers each), 2-3 b200-sxm (20, 20)"``)."""
    chips, layers = rec["stage_accelerators"], rec["stage_layers"]
    parts, i = [], 0
    while i < len(chips):
        j = i
        while j + 1 < len(chips) and chips[j + 1] == chips[i]:
            j += 1
        span = f"{i}" if i == j else f"{i}-{j}"
        parts.append(f"{span} {chips[i]} ({', '.join(str(n) for n in layers[i:j + 1])} layers)")
        i = j + 1
    return "Pipeline stages by chip type: " + "; ".join(parts)


def ranking_blocks(ranking: list[dict[str, Any]], results: Sequence[Any], workloads: Sequence[str]) -> list[Block]:
    """The side-by-side ranking table and what limits each proposal."""
    by = {r.name: r for r in results}
    rows = []
    for row in ranking:
        r = by[row["proposal"]]
        scores = (r.score or {}).get("scores", {})
        rank = "-" if row["rank"] is None else f"{row['rank']}" + (" (tie)" if row["tie"] else "")
        cells = [rank, row["proposal"], "-" if row["score"] is None else f"{row['score']:.3f}"]
        for w in workloads:
            sc = scores.get(w)
            cells.append("-" if sc is None else f"{sc['tokens_per_s']:,.0f} ({sc['mfu']:.1%}, {sc['layout']})"
                         + (" mixed chips" if _mixed(sc) else "") + (" approximated" if sc.get("approximated") else ""))
        for w in workloads:
            sc = scores.get(w)
            cells += ["-" if sc is None else _per(sc["tokens_per_s_per_MW"], "power figure"),
                      "-" if sc is None else _per(sc["tokens_per_s_per_MUSD"], "price"),
                      "-" if sc is None or sc.get("goodput") is None else
                      f"{sc['goodput']:.1%}, {sc['goodput_tokens_per_s']:,.0f}"
                      + (" uncalibrated" if any(m.startswith("uncalibrated") for m in sc["goodput_marks"]) else "")
                      + (" partial" if any(m.startswith("partial") for m in sc["goodput_marks"]) else "")]
        cells.append(row["status"])
        rows.append(cells)
    head = ["rank", "proposal", "throughput score"] + [f"{w} tokens/s (MFU, layout)" for w in workloads]
    for w in workloads:
        head += [f"{w} tokens/s per MW", f"{w} tokens/s per M USD", f"{w} goodput, tokens/s kept"]
    limits = []
    for row in ranking:
        r = by[row["proposal"]]
        scores = (r.score or {}).get("scores", {})
        if not scores:
            limits.append(f"{r.name}: {row['status']}")
            continue
        limits.append(f"{r.name}: " + " | ".join(f"{w}: {sc['bottleneck']}" for w, sc in scores.items()))
    return [("h", 2, "Ranking"),
            ("p", "Ranked by throughput score: the geometric mean over the workloads of tokens/s in the proposal's "
             "best layout relative to the best proposal (1.00 = fastest on every workload); equal to two decimals "
             "is a tie (same rank). Proposals that break a design rule or could not run a workload are listed "
             "after the ranked ones, without a rank. Per MW and per million USD are shown beside the rank, not "
             "folded into it, and only where the power total or every price is known. Goodput is the share of "
             "a failures campaign spent on useful iterations; tokens/s kept is tokens/s times goodput."),
            ("table", head, rows),
            ("p", "What limits each proposal (the largest non-compute part of the best layout's iteration):"),
            ("list", limits)]


def score_blocks(r: Any) -> list[Block]:
    """One proposal's layout search and collective rows."""
    if not r.score:
        return []
    b: list[Block] = []
    for t in r.score["training"]:
        rows = [[c["layout"], c["status"], "-" if "tokens_per_s" not in c else f"{c['tokens_per_s']:,.0f}",
                 "-" if "mfu" not in c else f"{c['mfu']:.1%}",
                 "-" if c.get("ceiling_tokens_per_s") is None else f"{c['ceiling_tokens_per_s']:,.0f}"]
                for c in t["candidates"]]
        head = (f"{t['workload']} ({t['accelerators']:,} accelerators, {t.get('precision', '-')}): "
                + (f"best layout {t['layout']}, {t['tokens_per_s']:,.0f} tokens/s" if t["status"] == "ok"
                   else t["status"]))
        if t["status"] == "ok" and _mixed(t):
            head += f". {stage_text(t)}"
        if t.get("approximated"):
            head += f". {t['approximated']}"
        g = t.get("goodput")
        if g:
            causes = sorted(g["lost_hours_by_cause"].items(), key=lambda kv: -kv[1])
            lost = ", ".join(f"{k} {v:,.1f} h" for k, v in causes if v > 0)
            mtbf = "no interruption" if g["mtbf_hours"] is None else f"{g['mtbf_hours']:.1f} h"
            head += (f". Goodput over {g['days']:g} days ({g['samples']} campaigns): {g['goodput']['mean']:.1%} "
                     f"(95% {g['goodput']['ci95'][0]:.1%}-{g['goodput']['ci95'][1]:.1%}), "
                     f"ETTR {g['ettr']['mean']:.1%}, "
                     f"{g['interruptions_per_day']['mean']:.2f} interruptions/day, job MTBF {mtbf}, "
                     f"{g['effective_tokens_per_s']:,.0f} tokens/s kept; lost: {lost or 'none'}"
                     + "".join(f". {m}" for m in g["marks"]))
        b += [("p", head), ("table", ["layout", "status", "tokens/s", "MFU", "ceiling tokens/s (compute bound)"], rows)]
    rows = [[c["op"], c["scale"], c["size"], "-" if c["status"] != "ok" else f"{c['busbw_GBps']:,.1f}",
             c.get("algorithm", "-"), c.get("bottleneck_tier", c["status"])] for c in r.score["collectives"]]
    b += [("p", f"Collectives on {r.name}'s cluster (busbw GB/s per rank, nccl-tests definition):"),
          ("table", ["op", "ranks", "size", "busbw GB/s", "algorithm", "bottleneck tier"], rows)]
    return b
