"""How a model's transformer layers are split over pipeline stages and virtual stages.

What is modelled: the four ways Megatron-Core assigns decoder layers to the ``pp * vpp``
virtual stages (``megatron/core/transformer/transformer_block.py`` ``get_num_layers_to_build``
and ``pipeline_parallel_layer_layout.py``), with the same names and semantics, so that a
layout someone ran can be written down as they wrote it:

1. even: ``layers / (pp * vpp)`` layers on every virtual stage;
2. ``first_stage_layers`` / ``last_stage_layers`` (Megatron's
   ``num_layers_in_first/last_pipeline_stage``, ``--decoder-first/last-pipeline-num-layers``):
   the first / last pipeline rank holds that many layers, the other ranks share the rest
   equally; with ``vpp > 1`` each rank's count is divided equally over its ``vpp`` chunks
   (Megatron asserts each count is divisible by ``vpp``);
3. ``account_for_embedding_in_pipeline_split`` / ``account_for_loss_in_pipeline_split``: the
   embedding and the loss each count as one layer when the ``layers (+1) (+1)`` are divided
   equally over the virtual stages, and the first (last) virtual stage builds one decoder
   layer fewer. Llama 3.1 405B's 126 layers on pp 16 with vpp 4: 128 / 64 = 2 per virtual
   stage, 1 on the first and on the last; with vpp 8 the first and last virtual stages hold
   only the embedding and only the loss;
4. ``pipeline_model_parallel_layout``: an explicit layout string, virtual stages in model
   order separated by ``|`` (virtual stage ``i`` runs on rank ``i % pp`` as chunk
   ``i // pp``), ``E`` the embedding, ``t`` a decoder layer, ``L`` the loss, ``X*k`` and
   ``(...)*k`` repeats, commas cosmetic; e.g. ``"Ettt|(tttt|)*14ttL"`` puts DeepSeek-V3's 61
   layers on pp 4 x vpp 4.

Why here: the plan compiler (embedding on virtual stage 0, logits and loss on the last, as in
Megatron) and the memory model both ask one function, :func:`virtual_stage_layers`, for the
layer count of each virtual stage; the checks live beside it and name the key at fault.
"""

from __future__ import annotations

import re

from oassim.errors import SpecError

__all__ = ["virtual_stage_layers", "parse_layout", "MAX_LAYOUT_STAGES"]

#: Longest layout (virtual stages) accepted: far beyond any published pp x vpp.
MAX_LAYOUT_STAGES = 4096
_KEY_LAYOUT = "parallelism.pipeline_model_parallel_layout"
_GROUP = re.compile(r"\(([^()]*)\)\*(\d+)")
_CHAR = re.compile(r"([EtLm])\*(\d+)")


def _expand(text: str) -> str:
    """Unroll ``(group)*k`` and ``X*k``, refusing a layout that would unroll past the bound."""
    s = text.replace(",", "").replace(" ", "")
    limit = MAX_LAYOUT_STAGES * 64

    def times(m: re.Match) -> str:
        k = int(m.group(2)) if len(m.group(2)) <= 6 else limit + 1
        if k * len(m.group(1)) > limit:
            raise SpecError(f"layout repeat '{m.group(0)[:40]}' unrolls past {limit:,} characters", path=_KEY_LAYOUT)
        return m.group(1) * k

    while True:
        s2 = _GROUP.sub(times, s)
        if s2 == s:
            break
        s = s2
        if len(s) > limit:
            raise SpecError(f"layout unrolls past {limit:,} characters", path=_KEY_LAYOUT)
    return _CHAR.sub(times, s)


def parse_layout(text: str, pp: int, vpp: int, layers: int) -> list[int]:
    """Decoder layers of each virtual stage of a Megatron layout string.

    Parameters
    ----------
    text : str
        The layout (module docstring, item 4).
    pp, vpp : int
        Pipeline ranks and virtual stages per rank; the layout has ``pp * vpp`` stages.
    layers : int
        The model's decoder layers; the layout's ``t`` count must equal it.

    Returns
    -------
    list of int, length ``pp * vpp``
        Decoder layers per virtual stage, in model order.

    Raises
    ------
    SpecError
        Unknown symbols, a stage count other than ``pp * vpp``, the embedding not opening the
        first stage or the loss not closing the last, each exactly once, a ``t`` count other
        than ``layers``, or an MTP stage (``m``: multi-token prediction is not modelled).
    """
    flat = _expand(text)
    bad = sorted(set(flat) - set("EtLm|"))
    if bad:
        raise SpecError(f"unknown layout symbol(s) {''.join(bad)[:20]!r} (allowed: E embedding, "
                        "t decoder layer, L loss, | stage break, X*k and (...)*k repeats)", path=_KEY_LAYOUT)
    if "m" in flat:
        raise SpecError("'m' (a multi-token-prediction layer) is not modelled; write the layout without it",
                        path=_KEY_LAYOUT)
    stages = flat.split("|")
    if len(stages) != pp * vpp:
        raise SpecError(f"the layout has {len(stages)} stages but pp*vpp = {pp}*{vpp} = {pp * vpp}", path=_KEY_LAYOUT)
    if flat.count("E") != 1 or not stages[0].startswith("E"):
        raise SpecError("the embedding 'E' must open the first stage, once", path=_KEY_LAYOUT)
    if flat.count("L") != 1 or not stages[-1].endswith("L"):
        raise SpecError("the loss 'L' must close the last stage, once", path=_KEY_LAYOUT)
    counts = [st.count("t") for st in stages]
    if sum(counts) != layers:
        raise SpecError(f"the layout holds {sum(counts)} decoder layers 't' but the model has {layers}",
                        path=_KEY_LAYOUT)
    return counts


def _per_rank_first_last(layers: int, pp: int, vpp: int, first: int | None, last: int | None) -> list[int]:
    key = "parallelism.first_stage_layers" if first is not None else "parallelism.last_stage_layers"
    if pp < 2:
        raise SpecError("an uneven pipeline split (first_stage_layers / last_stage_layers) needs pp >= 2", path=key)
    middle = pp - (first is not None) - (last is not None)
    rest = layers - (first or 0) - (last or 0)
    if rest < 0 or (middle == 0 and rest) or (middle and rest % middle):
        raise SpecError(f"the {rest} layers left after the first/last stages are not divisible by "
                        f"the {middle} other stages", path=key)
    ranks = [rest // middle if middle else 0] * pp
    if first is not None:
        ranks[0] = first
    if last is not None:
        ranks[-1] = last
    if vpp > 1:
        for r, n in enumerate(ranks):
            if n % vpp:
                raise SpecError(f"pipeline rank {r} holds {n} layers, not divisible by vpp {vpp} "
                                "(Megatron divides each rank's layers equally over its chunks; "
                                "use pipeline_model_parallel_layout for an arbitrary split)", path=key)
    return ranks


def virtual_stage_layers(layers: int, pp: int, vpp: int, *, first: int | None = None,
                         last: int | None = None, embedding_counts: bool = False,
                         loss_counts: bool = False, layout: str | None = None) -> list[int]:
    """Decoder layers of each virtual stage ``chunk * pp + rank`` (module docstring).

    Parameters
    ----------
    layers : int
        Decoder (transformer) layers of the model.
    pp, vpp : int
        Pipeline ranks; virtual stages (model chunks) per rank.
    first, last : int, optional
        Layers of the first / last pipeline rank (item 2).
    embedding_counts, loss_counts : bool
        Megatron's ``account_for_embedding/loss_in_pipeline_split`` (item 3).
    layout : str, optional
        Megatron's ``pipeline_model_parallel_layout`` (item 4); excludes the other options.

    Raises
    ------
    SpecError
        A split Megatron would refuse, naming the ``parallelism.`` key at fault.
    """
    n_vs = pp * vpp
    if layout is not None:
        if first is not None or last is not None or embedding_counts or loss_counts:
            raise SpecError("pipeline_model_parallel_layout gives the whole split: drop first/last_stage_layers "
                            "and account_for_*_in_pipeline_split", path=_KEY_LAYOUT)
        return parse_layout(layout, pp, vpp, layers)
    if first is not None or last is not None:
        if embedding_counts or loss_counts:
            raise SpecError("account_for_embedding/loss_in_pipeline_split cannot be combined with "
                            "first_stage_layers / last_stage_layers (as in Megatron-Core)",
                            path="parallelism.account_for_embedding_in_pipeline_split")
        ranks = _per_rank_first_last(layers, pp, vpp, first, last)
        return [ranks[vs % pp] // vpp for vs in range(n_vs)]
    total = layers + int(embedding_counts) + int(loss_counts)
    if total % n_vs:
        what = "pp" if vpp == 1 else "pp*vpp"
        extra = " +1 embedding" * embedding_counts + " +1 loss" * loss_counts
        counted = f"layers {layers}{extra} = {total}" if extra else f"layers {layers}"
        raise SpecError(f"{counted} are not divisible by {what} = {n_vs} (set "
                        "first_stage_layers / last_stage_layers, account_for_embedding/loss_in_pipeline_split "
                        "or pipeline_model_parallel_layout for an uneven split)", path="parallelism.pp")
    counts = [total // n_vs] * n_vs
    counts[0] -= int(embedding_counts)
    counts[-1] -= int(loss_counts)
    if min(counts) < 0:
        raise SpecError(f"with {total // n_vs} layer(s) per virtual stage the first/last stage cannot also "
                        "give one up to the embedding and the loss", path="parallelism.pp")
    return counts
