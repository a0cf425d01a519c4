"""Routing on a dragonfly built by :func:`oassim.topology.families.dragonfly.build`: minimal
paths with ECMP over the global links of a group pair."""

from __future__ import annotations

from typing import Any

import numpy as np

from oassim.topology.routing import Router, ecmp_choice, flow_hash

__all__ = ["DragonflyRouter", "ROUTER"]

ROUTER = "dragonfly"


class DragonflyRouter(Router):
    """Minimal dragonfly routing with ECMP over the global links of a group pair (``"dragonfly"``).

    Hash level 0 picks among the global links that need the fewest local hops. Structure keys as
    recorded by :func:`build`.
    """

    name = ROUTER

    def __init__(
        self,
        fabric,
        *,
        endpoints: np.ndarray,
        router_of_endpoint: np.ndarray,
        routers: np.ndarray,
        routers_per_group: int,
        groups: int,
        global_owner: np.ndarray,
        links_per_pair: np.ndarray,
        chunk: int = 1 << 22,
        **structure: Any,
    ):
        super().__init__(fabric, **structure)
        self.endpoints = np.asarray(endpoints, dtype=np.int64)
        self.ep_index = np.full(fabric.n_nodes, -1, dtype=np.int64)
        self.ep_index[self.endpoints] = np.arange(len(self.endpoints))
        self.router_of_ep = np.asarray(router_of_endpoint, dtype=np.int64)
        self.routers = np.asarray(routers, dtype=np.int64)
        self.a, self.g = int(routers_per_group), int(groups)
        self.owner = np.asarray(global_owner, dtype=np.int64)
        self.m = np.asarray(links_per_pair, dtype=np.int64)
        self.chunk = int(chunk)  # bound on pairs x candidate links held at once (memory)

    def _pick(self, gs, gd, ls, ld, h) -> tuple[np.ndarray, np.ndarray]:
        """Local indices (x in source group, y in destination group) of the chosen global link."""
        dl = (gd - gs) % self.g
        xs = self.owner[dl]  # (n, M)
        ys = self.owner[(self.g - dl) % self.g]
        valid = np.arange(self.owner.shape[1])[None, :] < self.m[dl][:, None]
        cost = (xs != ls[:, None]).astype(np.int64) + (ys != ld[:, None])
        cost[~valid] = 3
        best = cost == cost.min(axis=1, keepdims=True)
        k = ecmp_choice(h, best.sum(axis=1), 0)
        col = np.argmax(np.cumsum(best, axis=1) > k[:, None], axis=1)
        rows = np.arange(len(dl))
        return xs[rows, col], ys[rows, col]

    def node_paths(self, src: np.ndarray, dst: np.ndarray, salt: int) -> np.ndarray:
        """Node sequences, shape (n, 6), -1 after the end (endpoint, router, ..., endpoint)."""
        src = np.asarray(src, dtype=np.int64).ravel()
        dst = np.asarray(dst, dtype=np.int64).ravel()
        es, ed = self.ep_index[src], self.ep_index[dst]
        if np.any(es < 0) or np.any(ed < 0):
            bad = src[es < 0] if np.any(es < 0) else dst[ed < 0]
            raise ValueError(f"dragonfly: node {int(bad[0])} is not an endpoint of this fabric")
        n, a = len(src), self.a
        rs, rd = self.router_of_ep[es], self.router_of_ep[ed]
        gs, gd = rs // a, rd // a
        cand = np.full((n, 6), -1, dtype=np.int64)
        cand[:, 0] = src
        moving = src != dst
        cand[moving, 1] = self.routers[rs[moving]]
        cand[moving, 5] = dst[moving]
        local = moving & (gs == gd) & (rs != rd)
        cand[local, 4] = self.routers[rd[local]]
        far = np.flatnonzero(gs != gd)
        if len(far):
            h = flow_hash(src[far], dst[far], salt)
            step = max(1, self.chunk // max(1, self.owner.shape[1]))
            for lo in range(0, len(far), step):
                f = far[lo : lo + step]
                x, y = self._pick(gs[f], gd[f], rs[f] % a, rd[f] % a, h[lo : lo + step])
                x_node = self.routers[gs[f] * a + x]
                y_node = self.routers[gd[f] * a + y]
                cand[f, 2] = np.where(x_node != cand[f, 1], x_node, -1)
                cand[f, 3] = y_node
                cand[f, 4] = np.where(y_node != self.routers[rd[f]], self.routers[rd[f]], -1)
        # squeeze out the skipped hops, keeping order
        order = np.argsort(cand < 0, axis=1, kind="stable")
        return np.take_along_axis(cand, order, axis=1)
