"""Double binary tree (NCCL's tree algorithm) and pipelined binary trees.

What is modelled. NCCL builds two binary trees over the n ranks (``ncclGetDtree`` in NCCL's
``src/graph/trees.cc``): tree 0 is the in-order binary tree of ``ncclGetBtree`` (rank r's
parent is ``(r ^ b) | (b << 1)`` with b its lowest set bit, or ``r ^ b`` when that is out of
range), and tree 1 is tree 0 mirrored (even n) or shifted by one (odd n), so a rank that is
an inner node of one tree is a leaf of the other. Each tree all-reduces half of the data:
chunks are reduced up the tree and broadcast back down, pipelined, so the up and down
traffic of both trees runs concurrently. That is one phase: every child sends S/2 to its
parent and every parent sends S/2 to each child, per tree; a chunk crosses the tree up and
down, ``steps = 2 * depth``. Per rank this moves at most 2S each way, so on a non-blocking
switch the time is ``2S/B + 2 depth`` latency terms (Sanders, Speck & Träff, "Two-tree
algorithms for full bandwidth broadcast, reduction and scan", Parallel Computing 2009; NCCL
2.4 release notes).

Inside one scale-up domain NCCL does not build binary trees: its intra-node tree pattern is a
chain through the node's GPUs (``NCCL_TOPO_PATTERN_TREE``/``SPLIT_TREE`` in
``src/graph/search.cc``; the binary trees join nodes). A group whose ranks all sit in one
domain therefore all-reduces over two opposite chains (tree 0 rooted at the first rank,
tree 1 at the last), each carrying S/2, ``steps = 2 (n - 1)``.

Broadcast and reduce use one pipelined binary tree rooted at the root (positions rotated so
the root is tree position 0): S down (up) every tree edge, ``steps = depth``.
"""

from __future__ import annotations

import numpy as np

from oassim.collectives.algorithms.base import Algorithm
from oassim.collectives.caps import FabricCaps
from oassim.collectives.ops import CollectiveRequest
from oassim.collectives.phases import Phase

__all__ = ["btree_parent", "dtree_parents", "chain_parents", "tree_depth", "tree_phases", "DoubleBinaryTree"]


def btree_parent(n: int) -> np.ndarray:
    """Parent position of every position in NCCL's binary tree (root 0 has -1), shape (n,)."""
    r = np.arange(n, dtype=np.int64)
    parent = np.full(n, -1, dtype=np.int64)
    if n < 2:
        return parent
    rr = r[1:]
    bit = rr & -rr
    up = (rr ^ bit) | (bit << 1)
    parent[1:] = np.where(up >= n, rr ^ bit, up)
    return parent


def dtree_parents(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Parents in NCCL's two trees (tree 1 mirrored for even n, shifted for odd n)."""
    p0 = btree_parent(n)
    r = np.arange(n, dtype=np.int64)
    if n % 2 == 0:
        q = p0[n - 1 - r]
        p1 = np.where(q < 0, -1, n - 1 - q)
    else:
        q = p0[(r - 1) % n]
        p1 = np.where(q < 0, -1, (q + 1) % n)
    return p0, p1


def tree_depth(parent: np.ndarray) -> int:
    """Edges on the longest root-to-leaf path."""
    cur = np.arange(len(parent))
    depth = 0
    while True:
        nxt = np.where(cur >= 0, parent[np.maximum(cur, 0)], -1)
        if np.all(nxt < 0):
            return depth
        cur = nxt
        depth += 1


def _edges(groups: np.ndarray, parent: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(child rank, parent rank) of every tree edge of every group."""
    child = np.flatnonzero(parent >= 0)
    return groups[:, child].ravel(), groups[:, parent[child]].ravel()


def chain_parents(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Parents in two opposite chains: i -> i-1 (root 0) and i -> i+1 (root n-1)."""
    r = np.arange(n, dtype=np.int64)
    return np.where(r > 0, r - 1, -1), np.where(r < n - 1, r + 1, -1)


def tree_phases(op: str, groups: np.ndarray, size: float, root: int = 0, chains: bool = False) -> list[Phase]:
    """Phases of the tree algorithm for ``op`` on every group at once.

    Parameters
    ----------
    op : {"all_reduce", "broadcast", "reduce"}
    groups : ndarray of int64, shape (G, n)
    size : float
        Bytes.
    root : int
        Root position for broadcast / reduce.
    chains : bool
        All-reduce over two opposite chains (a group inside one scale-up domain).
    """
    g = np.asarray(groups, dtype=np.int64)
    n = g.shape[1]
    if n < 2:
        return []
    if op == "all_reduce":
        p0, p1 = chain_parents(n) if chains else dtree_parents(n)
        c0, a0 = _edges(g, p0)
        c1, a1 = _edges(g, p1)
        src = np.concatenate([c0, a0, c1, a1])
        dst = np.concatenate([a0, c0, a1, c1])
        depth = max(tree_depth(p0), tree_depth(p1))
        label = "two chains" if chains else "double binary tree"
        return [Phase(src, dst, size / 2, steps=2 * depth, label=f"{label} reduce+broadcast (pipelined)")]
    if op in ("broadcast", "reduce"):
        p = btree_parent(n)
        rot = np.roll(g, -root, axis=1)
        c, a = _edges(rot, p)
        src, dst = (c, a) if op == "reduce" else (a, c)
        return [Phase(src, dst, size, steps=tree_depth(p), label=f"binary tree {op} (pipelined)")]
    raise ValueError(f"tree does not implement {op}")


class DoubleBinaryTree(Algorithm):
    """NCCL-style double binary tree all-reduce; pipelined binary tree broadcast / reduce."""

    name = "tree"
    ops = frozenset({"all_reduce", "broadcast", "reduce"})
    summary = "double binary tree (all-reduce), binary tree (broadcast/reduce), pipelined: O(log n) latency"

    def phases(self, req: CollectiveRequest, caps: FabricCaps) -> list[Phase]:
        dom = caps.domain_of_rank[req.groups]
        one_domain = bool(np.all(dom == dom[:, :1]))
        return tree_phases(req.op, req.groups, req.size_bytes, req.root, chains=one_domain)
