"""numba kernels for routing on frozen fabrics: pure functions over arrays.

docs/architecture.md, conventions: kernels take arrays and scalars, fill preallocated outputs, import nothing from the
package. Plain numpy references live in the tests.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["bfs_dist", "walk_down_dist", "splitmix64"]


@njit(cache=True)
def splitmix64(x):
    """splitmix64 finalizer on a uint64 scalar (Steele, Lea, Flood 2014)."""
    x = (x + np.uint64(0x9E3779B97F4A7C15)) & np.uint64(0xFFFFFFFFFFFFFFFF)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


@njit(cache=True)
def bfs_dist(ptr, nbr, root, transit, dist):
    """Hop distances from ``root`` to every node, filled into ``dist`` (-1 = unreachable).

    ``transit[u]`` False means u may be reached but paths may not pass through it (an
    accelerator in a switched fabric). The root always expands.
    """
    n = dist.shape[0]
    for i in range(n):
        dist[i] = -1
    queue = np.empty(n, dtype=np.int64)
    head = 0
    tail = 0
    dist[root] = 0
    queue[tail] = root
    tail += 1
    while head < tail:
        u = queue[head]
        head += 1
        if u != root and not transit[u]:
            continue
        du = dist[u]
        for k in range(ptr[u], ptr[u + 1]):
            w = nbr[k]
            if dist[w] < 0:
                dist[w] = du + 1
                queue[tail] = w
                tail += 1


@njit(cache=True)
def walk_down_dist(ptr, nbr, lnk, dist, transit, srcs, hashes, out_ptr, out_links):
    """Walk from each src toward the BFS root along strictly decreasing ``dist``.

    Among equal-cost next hops the choice is ``hash % candidates`` (ECMP). Writes the links
    of path i to ``out_links[out_ptr[i]:out_ptr[i+1]]``; ``out_ptr`` must hold
    ``cumsum(dist[srcs])`` already. Returns False if some src cannot reach the root.
    """
    for i in range(srcs.shape[0]):
        cur = srcs[i]
        if dist[cur] < 0:
            return False
        h = hashes[i]
        pos = out_ptr[i]
        step = 0
        while dist[cur] > 0:
            want = dist[cur] - 1
            ncand = 0
            for k in range(ptr[cur], ptr[cur + 1]):
                w = nbr[k]
                if dist[w] == want and (want == 0 or transit[w]):
                    ncand += 1
            if ncand == 0:
                return False
            h = splitmix64(h + np.uint64(step))
            pick = np.int64(h % np.uint64(ncand))
            for k in range(ptr[cur], ptr[cur + 1]):
                w = nbr[k]
                if dist[w] == want and (want == 0 or transit[w]):
                    if pick == 0:
                        out_links[pos] = lnk[k]
                        pos += 1
                        cur = w
                        break
                    pick -= 1
            step += 1
    return True
