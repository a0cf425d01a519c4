"""Communicator groups: how ranks are split into concurrent groups, and a group's levels.

What is modelled: the two ways training jobs lay collectives over a cluster. A job's
tensor-parallel groups fill a scale-up domain (``domain``); its data-parallel groups take
the same position in every domain (``rail``: the NCCL "rail-aligned" ranks, which a
rail-optimised fabric connects through one leaf). ``make_groups`` builds those (G, n)
arrays. ``level_tensor`` finds the hierarchy inside a group, ranks ordered by
(domain, sub-domain, rank), so that hierarchical algorithms can reduce inside a domain and
cross domains on rail-aligned ranks only. ``domain_blocks`` lists a group's ranks domain by
domain when domains hold different numbers of them (a partial rack, a half-used node), for
the hierarchical all-reduce of uneven groups.

Both depend on the groups and the fabric alone, not on the message size, and a training
replay (or a sweep of them on one fabric) asks for the same groups at many sizes and for
several candidate algorithms: :func:`structure_memo` keeps their answers per
:class:`FabricCaps` (keyed by the groups' content), so each is computed once per distinct
group set. The cached arrays are read-only; the answer is the one the function returns.
"""

from __future__ import annotations

import hashlib
import weakref
from typing import Any, Callable

import numpy as np

from oassim.collectives.caps import FabricCaps
from oassim.errors import SpecError

__all__ = ["make_groups", "level_tensor", "domain_blocks", "structure_memo", "GroupSpec"]

GroupSpec = str | int | None

_MEMO: "weakref.WeakKeyDictionary[FabricCaps, dict[tuple[str, bytes], Any]]" = weakref.WeakKeyDictionary()
_MEMO_MAX = 4096  # entries per fabric; beyond, the oldest half is dropped


def _frozen(x: Any) -> Any:
    if isinstance(x, np.ndarray):
        x.setflags(write=False)
    elif isinstance(x, list):
        for v in x:
            _frozen(v)
    return x


def structure_memo(name: str, groups: np.ndarray, caps: FabricCaps, fn: Callable[[], Any]) -> Any:
    """``fn()``, remembered per ``caps`` under (``name``, the groups' shape and content).

    For size-independent answers about a group set on one fabric (its level tensor, domain
    blocks, rail-ring orders). Arrays in the answer are made read-only.
    """
    g = np.ascontiguousarray(groups, dtype=np.int64)
    h = hashlib.blake2b(g.tobytes(), digest_size=16)
    h.update(repr(g.shape).encode())
    key = (name, h.digest())
    memo = _MEMO.get(caps)
    if memo is None:
        memo = _MEMO.setdefault(caps, {})
    hit = memo.get(key)
    if hit is None:
        if len(memo) >= _MEMO_MAX:
            for k in list(memo)[: _MEMO_MAX // 2]:
                del memo[k]
        hit = memo[key] = (_frozen(fn()),)
    return hit[0]


def make_groups(caps: FabricCaps, ranks: int | None = None, groups: GroupSpec = None,
                *, source: str = "argument --groups") -> np.ndarray:
    """Split ranks ``0..ranks-1`` into concurrent groups.

    Parameters
    ----------
    caps : FabricCaps
    ranks : int, optional
        Ranks taking part (default: every accelerator of the fabric).
    groups : {None, "all", "domain", "rail"} or int
        ``None``/``"all"``: one group of all ranks. ``"domain"``: one group per scale-up
        domain. ``"rail"``: one group per position in the domain (every domain's rank at that
        position; the data-parallel groups of a job whose tensor-parallel groups fill the
        domain). An int ``N``: N contiguous groups of ``ranks / N`` ranks.

    Returns
    -------
    ndarray of int64, shape (G, n)

    Raises
    ------
    SpecError
        More ranks than the cluster has, or a split that does not divide the ranks evenly.
    """
    total = caps.n_ranks
    r = total if ranks is None else int(ranks)
    if r < 1:
        raise SpecError(f"ranks must be >= 1, got {r}", source="argument --ranks")
    if r > total:
        raise SpecError(f"{r:,} ranks are beyond the cluster ({total:,} accelerators); "
                        "scale it with --accelerators", source="argument --ranks")
    ids = np.arange(r, dtype=np.int64)
    if groups is None or groups == "all":
        return ids[None, :]
    if isinstance(groups, str) and groups.strip().lstrip("+").isdigit():
        groups = int(groups)
    if isinstance(groups, (int, np.integer)) and not isinstance(groups, bool):
        k = int(groups)
        if k < 1 or r % k:
            raise SpecError(f"{r:,} ranks do not split into {k} equal groups", source=source)
        return ids.reshape(k, r // k)
    if groups in ("domain", "rail"):
        dom = caps.domain_of_rank[:r]
        loc = caps.local_of_rank[:r]
        key_outer, key_inner = (dom, loc) if groups == "domain" else (loc, dom)
        order = np.lexsort((ids, key_inner, key_outer))
        counts = np.bincount(key_outer)
        counts = counts[counts > 0]
        if not np.all(counts == counts[0]):
            raise SpecError(
                f"{r:,} ranks do not fill whole {'domains' if groups == 'domain' else 'rails'} "
                f"(domains of {caps.domain_size}); use a multiple of {caps.domain_size} ranks",
                source=source,
            )
        return ids[order].reshape(len(counts), int(counts[0]))
    raise SpecError(f"unknown group split '{groups}' (allowed: all, domain, rail, or a number of groups)",
                    source=source)


def level_tensor(groups: np.ndarray, caps: FabricCaps) -> np.ndarray | str:
    """The groups' ranks arranged by level, or the reason they cannot be (memoised per
    fabric: :func:`structure_memo`; see :func:`_level_tensor`)."""
    return structure_memo("level_tensor", groups, caps, lambda: _level_tensor(groups, caps))


def domain_blocks(groups: np.ndarray, caps: FabricCaps) -> list[list[np.ndarray]] | str:
    """Each group's ranks split by domain, or the reason they cannot be used (memoised per
    fabric: :func:`structure_memo`; see :func:`_domain_blocks`)."""
    return structure_memo("domain_blocks", groups, caps, lambda: _domain_blocks(groups, caps))


def _level_tensor(groups: np.ndarray, caps: FabricCaps) -> np.ndarray | str:
    """The groups' ranks arranged by level, or the reason they cannot be.

    Parameters
    ----------
    groups : ndarray of int64, shape (G, n)
    caps : FabricCaps

    Returns
    -------
    ndarray of int64, shape (G, k_domain, k_sub, m) or str
        ``t[g, d, s, i]`` is the ``i``-th rank (by rank) of sub-domain ``s`` of domain ``d`` of
        group ``g``; ``k_sub == 1`` where the fabric has no sub-domain level. Ranks with equal
        ``(s, i)`` are rail-aligned across domains. A string says why the group is not uniform
        (every domain must hold the same number of the group's ranks, every sub-domain too).
    """
    g = np.asarray(groups, dtype=np.int64)
    G, n = g.shape
    dom = caps.domain_of_rank[g]
    sub = caps.sub_of_rank[g] if caps.sub_of_rank is not None else np.zeros_like(g)
    row = np.repeat(np.arange(G), n).reshape(G, n)
    order = np.lexsort((g.ravel(), sub.ravel(), dom.ravel(), row.ravel()))
    gs, ds, ss = g.ravel()[order].reshape(G, n), dom.ravel()[order].reshape(G, n), sub.ravel()[order].reshape(G, n)
    k = len(np.unique(ds[0]))
    if n % k:
        return f"the group's {n} ranks do not spread evenly over its {k} domains"
    m = n // k
    blk = ds.reshape(G, k, m)
    if not (np.all(blk == blk[..., :1]) and (k == 1 or np.all(blk[:, 1:, 0] != blk[:, :-1, 0]))):
        return "the group does not hold the same number of ranks in every domain"
    sblk = ss.reshape(G, k, m)
    j = len(np.unique(sblk[0, 0]))
    if m % j:
        return f"the group's {m} ranks per domain do not spread evenly over {j} sub-domains"
    q = m // j
    sb = sblk.reshape(G, k, j, q)
    if not (np.all(sb == sb[..., :1]) and (j == 1 or np.all(sb[:, :, 1:, 0] != sb[:, :, :-1, 0]))):
        return "the group does not hold the same number of ranks in every sub-domain"
    return gs.reshape(G, k, j, q)


def _domain_blocks(groups: np.ndarray, caps: FabricCaps) -> list[list[np.ndarray]] | str:
    """Each group's ranks split by domain, or the reason they cannot be used.

    Parameters
    ----------
    groups : ndarray of int64, shape (G, n)
    caps : FabricCaps

    Returns
    -------
    list of list of ndarray, or str
        ``blocks[g][d]``: the ranks of group g in its d-th domain (domains by id, ranks by
        position in the domain), any number per domain. A string when the groups span
        different numbers of domains (their cross-domain stages would not line up).
    """
    g = np.asarray(groups, dtype=np.int64)
    out: list[list[np.ndarray]] = []
    for row in g:
        dom = caps.domain_of_rank[row]
        order = np.lexsort((caps.local_of_rank[row], dom))
        r, d = row[order], dom[order]
        cut = np.flatnonzero(d[1:] != d[:-1]) + 1
        out.append(np.split(r, cut))
    ks = {len(b) for b in out}
    if len(ks) > 1:
        return f"the groups span different numbers of domains ({', '.join(map(str, sorted(ks)))})"
    return out
