"""Shared assertions for router tests (plain numpy, independent of the routers)."""

from __future__ import annotations

import numpy as np

from oassim.topology.fabric import Fabric, Paths


def assert_paths_valid(fabric: Fabric, src: np.ndarray, dst: np.ndarray, paths: Paths) -> None:
    """Every path starts at its src, ends at its dst, and its links are consecutive."""
    assert len(paths) == len(src)
    for i in range(len(src)):
        links = paths[i]
        if src[i] == dst[i]:
            assert len(links) == 0
            continue
        assert len(links) > 0, f"pair {i}: empty path"
        assert fabric.link_src[links[0]] == src[i], f"pair {i}: does not start at src"
        assert fabric.link_dst[links[-1]] == dst[i], f"pair {i}: does not end at dst"
        assert np.all(fabric.link_dst[links[:-1]] == fabric.link_src[links[1:]]), f"pair {i}: gap"
        nodes = np.append(fabric.link_src[links], fabric.link_dst[links[-1]])
        assert len(np.unique(nodes)) == len(nodes), f"pair {i}: path revisits a node"


def bfs_hops(fabric: Fabric, src: int, transit: np.ndarray | None = None) -> np.ndarray:
    """Reference hop distances from ``src`` (plain Python BFS over the link arrays)."""
    n = fabric.n_nodes
    adj: list[list[int]] = [[] for _ in range(n)]
    for a, b in zip(fabric.link_src.tolist(), fabric.link_dst.tolist()):
        adj[a].append(b)
    dist = np.full(n, -1)
    dist[src] = 0
    frontier = [src]
    while frontier:
        nxt = []
        for u in frontier:
            if u != src and transit is not None and not transit[u]:
                continue
            for w in adj[u]:
                if dist[w] < 0:
                    dist[w] = dist[u] + 1
                    nxt.append(w)
        frontier = nxt
    return dist
