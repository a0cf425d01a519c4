"""The bounded parallel-layout search of OAS-Bench 2.0: each workload in the layout best for a proposal.

What it does: :func:`expand` turns a workload's documented candidate set (``tp``, ``pp`` and, for
MoE, ``ep``; :mod:`oassim.experiments.proposal_suite`) into full parallelism sections for a job
size: ``dp = accelerators / (tp x pp)``, the uneven first/last pipeline stage where the layer
count is not divisible by ``pp`` (as Llama 3's 405B run puts 7 layers on its first and last
stage), and the reason a candidate is skipped before any simulation (it does not tile the job,
the batch, the expert groups or the scale-up domains). :func:`search` runs every remaining
candidate through a caller's ``evaluate`` (one simulated optimizer step on the analytical
network); a candidate the simulator refuses (one that does not fit in HBM, say) is kept in the
record with the simulator's reason. The best is the highest tokens/s, ties to the earlier
candidate (the published layout is listed first). Given a ceiling on each candidate's tokens/s
(:mod:`oassim.experiments.layout_bound`: the compiled plan's compute lower bound, which also
refuses a layout that does not fit in HBM before any replay), the search runs the candidates
from the highest ceiling down and marks ``pruned`` one whose ceiling is below the best found:
the same best, fewer replays.

Why bounded: every candidate is a full 16,384-accelerator simulation; an exhaustive search over
the divisors of 16,384 is thousands of them. The set is small, documented and frozen with the
suite, so two reports searched the same layouts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from oassim.errors import SpecError

__all__ = ["Candidate", "SearchResult", "stage_split", "expand", "search", "with_balanced", "PRUNE_MARGIN"]


@dataclass
class Candidate:
    """One layout of the search and what became of it.

    Attributes
    ----------
    parallelism : dict
        The scenario's ``parallelism`` section.
    status : str
        ``"ok"``, ``"skipped: ..."`` (before simulation) or ``"infeasible: ..."`` (the simulator's reason).
    record : dict
        The evaluation's record (``tokens_per_s`` and the rest) when ``status`` is ``"ok"``.
    balanced : bool
        The layers are split over the stages by chip speed (:func:`with_balanced`).
    ceiling : float or None
        Upper bound on its tokens/s (:func:`search`'s ``ceiling``), None when not bounded.
    """

    parallelism: dict[str, Any]
    status: str = "not run"
    record: dict[str, Any] = field(default_factory=dict)
    balanced: bool = False
    ceiling: float | None = None

    @property
    def label(self) -> str:
        p = self.parallelism
        return " ".join(f"{k.upper()} {p[k]}" for k in ("tp", "pp", "dp", "ep") if k in p) + (
            " balanced" if self.balanced else "")


@dataclass
class SearchResult:
    """Every candidate tried (in candidate order) and the best one (None when none ran)."""

    tried: list[Candidate]
    best: Candidate | None


def stage_split(layers: int, pp: int) -> dict[str, int] | None:
    """First/last stage layers for ``layers`` over ``pp`` stages.

    ``{}`` when ``pp`` divides ``layers``; otherwise the middle stages take ``ceil(layers / pp)``
    layers each and the first and last stage share the rest (first >= last), e.g. 126 layers on
    16 stages: 7 + 14 x 8 + 7 (Llama 3 405B); 61 on 16: 3 + 14 x 4 + 2 (DeepSeek-V3). None when
    no such split exists (each end stage must hold 1 to ``ceil(layers / pp)`` layers).
    """
    if layers % pp == 0:
        return {}
    if pp < 3:
        return None
    middle = -(-layers // pp)
    rest = layers - middle * (pp - 2)
    if rest < 2 or rest > 2 * middle:
        return None
    return {"first_stage_layers": rest - rest // 2, "last_stage_layers": rest // 2}


def expand(layouts: Sequence[Mapping[str, int]], fixed: Mapping[str, Any], *, layers: int, accelerators: int,
           global_batch: int, micro_batch: int, domain_size: int) -> list[Candidate]:
    """Full parallelism sections of the candidate layouts, the untileable ones marked skipped.

    Parameters
    ----------
    layouts : sequence of mapping
        ``tp``, ``pp`` and optionally ``ep`` per candidate.
    fixed : mapping
        Keys common to every candidate (``zero``, ...); a ``sp`` key becomes ``tp > 1``.
    layers : int
        Transformer layers of the model.
    accelerators, global_batch, micro_batch : int
        Job size; sequences per step and per micro-batch.
    domain_size : int
        Accelerators of one scale-up domain: a TP group larger than it is skipped (tensor
        parallelism's per-layer collectives belong inside a domain), and so is an expert group
        (TP x EP ranks) that neither divides the domain nor is a whole number of domains.
    """
    out = []
    for lay in layouts:
        tp, pp = int(lay["tp"]), int(lay["pp"])
        par: dict[str, Any] = {**dict(fixed), **{k: int(v) for k, v in lay.items()}}
        if "sp" in par:  # sequence parallelism with every TP group (Megatron-Core needs it for MoE with TP)
            par["sp"] = tp > 1
        cand = Candidate(par)
        out.append(cand)
        if accelerators % (tp * pp):
            cand.status = f"skipped: TP {tp} x PP {pp} does not divide {accelerators:,} accelerators"
            continue
        dp = accelerators // (tp * pp)
        par["dp"] = dp
        ep = int(par.get("ep", 1))
        split = stage_split(layers, pp)
        if tp > domain_size:
            cand.status = f"skipped: TP {tp} is larger than the scale-up domain ({domain_size})"
        elif global_batch % (dp * micro_batch):
            cand.status = f"skipped: DP {dp} x micro-batch {micro_batch} does not divide the batch {global_batch:,}"
        elif dp % ep:
            cand.status = f"skipped: EP {ep} does not divide DP {dp}"
        elif ep > 1 and (tp * ep) % domain_size and domain_size % (tp * ep):
            # an expert group straddling domains unevenly has no hierarchical all-to-all (the direct
            # form's flows grow as the square of the group)
            cand.status = (f"skipped: expert groups of TP {tp} x EP {ep} do not tile the {domain_size}-accelerator "
                           "domains")
        elif split is None:
            cand.status = f"skipped: {layers} layers cannot be split over PP {pp}"
        else:
            par.update(split)
    return out


def with_balanced(candidates: Sequence[Candidate],
                  balance: Callable[[dict[str, Any]], Sequence[int]]) -> list[Candidate]:
    """The candidates, each runnable one followed by its variant with the layers balanced by chip speed.

    ``balance`` maps a parallelism section to the layers of each stage
    (:func:`oassim.workload.hetero.balance_by_chip`); the variant replaces the candidate's stage
    split by the Megatron layout string of those counts. A variant whose split is the
    candidate's own is left out (nothing to compare); one ``balance`` refuses is kept as skipped
    with the reason.
    """
    from oassim.workload.hetero import layout_string
    from oassim.workload.pipeline_split import virtual_stage_layers

    out: list[Candidate] = []
    for cand in candidates:
        out.append(cand)
        if cand.status.startswith("skipped"):
            continue
        par = {k: v for k, v in cand.parallelism.items() if k not in ("first_stage_layers", "last_stage_layers")}
        var = Candidate(par, balanced=True)
        try:
            counts = list(balance(dict(cand.parallelism)))
        except SpecError as exc:
            var.status = f"skipped: {exc.message}"
            out.append(var)
            continue
        own = virtual_stage_layers(sum(counts), int(par["pp"]), 1, first=cand.parallelism.get("first_stage_layers"),
                                   last=cand.parallelism.get("last_stage_layers"))
        if counts == own:
            continue
        par["pipeline_model_parallel_layout"] = layout_string(counts)
        out.append(var)
    return out


#: A layout is pruned only when its ceiling is below the best tokens/s found by more than this
#: fraction (the ceiling and the replay sum the same durations in another order; a periodic
#: replay matches the full one to 1e-9 of the iteration).
PRUNE_MARGIN = 1e-6


def search(candidates: Sequence[Candidate], evaluate: Callable[[dict[str, Any]], dict[str, Any]],
           progress: Callable[[str], None] | None = None,
           ceiling: Callable[[dict[str, Any]], float] | None = None, prune: bool = True) -> SearchResult:
    """Run every candidate not skipped (or pruned) and pick the highest ``tokens_per_s``.

    Parameters
    ----------
    candidates : sequence of Candidate
        From :func:`expand`.
    evaluate : callable
        Parallelism section -> record with ``tokens_per_s``; raises
        :class:`~oassim.errors.SpecError` for a layout the simulator refuses.
    progress : callable, optional
        Called with one line per candidate.
    ceiling : callable, optional
        Parallelism section -> an upper bound on the tokens/s ``evaluate`` can return
        (:mod:`oassim.experiments.layout_bound`); raises SpecError where ``evaluate`` would.
        With it the search is a branch and bound: candidates run in order of falling ceiling,
        and one whose ceiling is below the best found (by :data:`PRUNE_MARGIN`) is marked
        ``pruned`` without running. The best is the same as without it: a pruned layout is
        slower than the best, and ties still go to the earlier candidate.
    prune : bool
        With ``ceiling``: False records every candidate's ceiling but runs them all, in
        candidate order (to check the pruning).
    """
    say = progress or (lambda _msg: None)
    runnable = []
    for i, cand in enumerate(candidates):
        if cand.status.startswith("skipped"):
            say(f"{cand.label}: {cand.status}")
            continue
        try:
            top = ceiling(cand.parallelism) if ceiling is not None else float("inf")
        except SpecError as exc:
            cand.status = f"infeasible: {exc.message}"
            say(f"{cand.label}: {cand.status}")
            continue
        cand.ceiling = None if ceiling is None else top
        runnable.append((-top, i, cand))
    prune = prune and ceiling is not None
    best: tuple[int, Candidate] | None = None
    for neg, i, cand in sorted(runnable, key=lambda x: x[:2]) if prune else runnable:
        if prune and best is not None and -neg < best[1].record["tokens_per_s"] * (1 - PRUNE_MARGIN):
            cand.status = (f"pruned: at most {-neg:,.0f} tokens/s (compute lower bound of the iteration), below "
                           f"{best[1].label}'s {best[1].record['tokens_per_s']:,.0f}")
            say(f"{cand.label}: {cand.status}")
            continue
        try:
            cand.record = evaluate(cand.parallelism)
        except SpecError as exc:
            cand.status = f"infeasible: {exc.message}"
            say(f"{cand.label}: {cand.status}")
            continue
        cand.status = "ok"
        say(f"{cand.label}: {cand.record['tokens_per_s']:,.0f} tokens/s")
        tok = cand.record["tokens_per_s"]
        top_tok = None if best is None else best[1].record["tokens_per_s"]
        if top_tok is None or tok > top_tok or (tok == top_tok and i < best[0]):
            best = (i, cand)
    return SearchResult(list(candidates), None if best is None else best[1])
