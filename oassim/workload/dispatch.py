"""Expert-parallel token dispatch and combine: which all-to-alls a MoE layer issues, on which
groups, with how many bytes.

What is modelled, per rank and micro-batch, for ``T`` tokens (sequence-parallel shard), top-k
routing, hidden size ``h`` and an EP group spread over ``D`` scale-up domains of ``E / D``
experts each (tokens evenly balanced over the experts: auxiliary-loss or bias balancing):

- ``alltoall`` (Megatron-Core ``MoEAlltoAllTokenDispatcher``): every routed copy travels to
  its expert's rank, ``T k h`` elements per rank on the EP group, forward and backward, for
  the dispatch and again for the combine;
- ``deepep`` (DeepEP's normal kernels, as DeepSeek-V3 §3.2.2 describes its all-to-all): a
  token crosses the scale-out once per distinct destination domain, to the rank of the same
  local index there (group ``ep_inter``, ``T n h`` elements, ``n`` the expected number of
  distinct domains a token reaches), which forwards each copy to its expert's rank inside the
  domain (group ``ep_intra``, ``T k h``); the combine reduces inside the domain first, then
  sends one partial sum per domain back. The two hops run one after the other on the EP
  stream (DeepEP pipelines them: the replay is conservative by up to the shorter hop). An EP
  group whose domains hold unequal shares of it has no such pairing: its ``ep_intra`` group
  is the whole EP group and ``ep_inter`` is trivial, which is the plain all-to-all;
- node-limited routing (``moe_max_nodes`` = M, DeepSeek-V3 §2.1.2): the k experts lie in at
  most M domains, so ``n = M (1 - C((M-1) E/D, k) / C(M E/D, k))`` (k experts drawn among the
  M chosen domains' experts; without a limit M = D). It changes the bytes of ``deepep`` only:
  ``alltoall`` sends every copy anyway;
- FP8 dispatch (``moe_dispatch_precision: fp8``, DeepSeek-V3 §3.3.2): the forward dispatch and
  the backward's gradient dispatch (the combine's backward) send 1 byte per element plus an
  fp32 scale per 128 elements; the combine and the dispatch's backward stay in bf16.
"""

from __future__ import annotations

from math import comb

__all__ = ["expected_domains", "dispatch_hops", "FP8_BYTES"]

FP8_BYTES = 1.0 + 4.0 / 128.0  # e4m3 element + one fp32 scale per 1 x 128 tile
_BF16 = 2.0


def expected_domains(experts: int, domains: int, top_k: int, max_domains: int | None = None) -> float:
    """Expected number of distinct scale-up domains the ``top_k`` experts of one token lie in
    (module docstring), for ``experts`` spread evenly over ``domains``."""
    if domains <= 1:
        return 1.0
    per = experts / domains
    m = domains if max_domains is None else min(max_domains, domains)
    pool = int(round(m * per))
    k = min(top_k, pool)
    miss = comb(int(round((m - 1) * per)), k) / comb(pool, k)
    return m * (1.0 - miss)


def dispatch_hops(dispatcher: str, tokens: float, hidden: int, top_k: int, experts: int,
                  domains: int, max_domains: int | None, fp8: bool
                  ) -> tuple[list[tuple[str, str, float, float]], list[tuple[str, str, float, float]]]:
    """(dispatch hops, combine hops) of one MoE layer, in forward order: each
    ``(name, group, forward bytes, backward bytes)`` of an all-to-all's per-rank send buffer."""
    copies = tokens * top_k * hidden
    fwd_el = FP8_BYTES if fp8 else _BF16
    if dispatcher != "deepep":
        return ([("dispatch", "ep", copies * fwd_el, copies * _BF16)],
                [("combine", "ep", copies * _BF16, copies * fwd_el)])
    once = tokens * expected_domains(experts, domains, top_k, max_domains) * hidden
    return ([("dispatch_inter", "ep_inter", once * fwd_el, once * _BF16),
             ("dispatch_intra", "ep_intra", copies * fwd_el, copies * _BF16)],
            [("combine_intra", "ep_intra", copies * _BF16, copies * fwd_el),
             ("combine_inter", "ep_inter", once * _BF16, once * fwd_el)])
