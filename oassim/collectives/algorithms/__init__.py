"""Collective algorithms, registered by the name used on the CLI (``--algo``) and in specs.

docs/architecture.md, conventions: plug-ins are a dict. Adding an algorithm is one module with an
:class:`~oassim.collectives.algorithms.base.Algorithm` subclass and one line here. ``auto``
is not an algorithm: the engine picks, per request, the cheapest of those that fit.

============================  ==============================================================
name                          phases
============================  ==============================================================
ring                          1 neighbour phase x 2(n-1) (all-reduce), x (n-1) (RS, AG);
                              pipelined chain (broadcast, reduce)
rail_rings                    one ring per rail through every rank (NCCL multi-node ring):
                              each NIC carries one ring's crossing
tree                          1 pipelined phase: both binary trees up and down, 2*depth steps
halving_doubling              log2(n) halving + log2(n) doubling phases (+2 fold phases)
in_network                    1 phase through reducing switches (NVLS / SHARP)
hierarchical                  RS inside domain levels, ring AR across domains, AG inside;
                              two-stage all-to-all
hierarchical_tree             as hierarchical, double binary tree across domains
hierarchical_in_network       as hierarchical, in-network reduction inside domains
hierarchical_in_network_tree  NVLS inside domains, double binary tree across (NCCL's NVLS_TREE)
hierarchical_pipelined        the hierarchical stages merged into one phase (bytes x repeat,
                              latency steps summed): stages overlapped chunk by chunk
hierarchical_tree_pipelined   the same for hierarchical_tree
direct                        every transfer at once (send/recv, pairwise all-to-all)
torus                         per torus dimension a bidirectional ring, every dimension at
                              once on split data; dimension-ordered RS / AG (sub-tori)
fullmesh                      per full-mesh dimension a direct exchange over all its links,
                              every dimension at once on split data (sub-meshes)
============================  ==============================================================
"""

from __future__ import annotations

from oassim.collectives.algorithms.base import Algorithm
from oassim.collectives.algorithms.direct import Direct
from oassim.collectives.algorithms.halving_doubling import HalvingDoubling
from oassim.collectives.algorithms.hierarchical import Hierarchical
from oassim.collectives.algorithms.in_network import InNetworkReduction
from oassim.collectives.algorithms.mesh import FULLMESH
from oassim.collectives.algorithms.ring import RailRings, Ring
from oassim.collectives.algorithms.torus import TORUS
from oassim.collectives.algorithms.tree import DoubleBinaryTree

__all__ = ["Algorithm", "ALGORITHMS", "algorithms_for"]

_RS_AR_AG = frozenset({"all_reduce", "reduce_scatter", "all_gather"})

ALGORITHMS: dict[str, Algorithm] = {
    "ring": Ring(),
    "rail_rings": RailRings(),
    "tree": DoubleBinaryTree(),
    "halving_doubling": HalvingDoubling(),
    "in_network": InNetworkReduction(),
    "hierarchical": Hierarchical(
        "hierarchical", "ring", "ring", _RS_AR_AG | {"all_to_all"},
        "ring inside each domain level, ring across domains on rail-aligned ranks; two-stage all-to-all",
    ),
    "hierarchical_tree": Hierarchical(
        "hierarchical_tree", "ring", "tree", frozenset({"all_reduce"}),
        "ring reduce-scatter/all-gather inside domains, double binary tree all-reduce across",
    ),
    "hierarchical_in_network": Hierarchical(
        "hierarchical_in_network", "in_network", "ring", _RS_AR_AG,
        "in-network reduction (NVLS) inside domains, ring across domains",
    ),
    "hierarchical_in_network_tree": Hierarchical(
        "hierarchical_in_network_tree", "in_network", "tree", frozenset({"all_reduce"}),
        "in-network reduction (NVLS) inside domains, double binary tree across (NCCL's NVLS tree)",
    ),
    "hierarchical_pipelined": Hierarchical(
        "hierarchical_pipelined", "ring", "ring", _RS_AR_AG,
        "as hierarchical, the 2D ring stages overlapped chunk by chunk", pipelined=True,
    ),
    "hierarchical_tree_pipelined": Hierarchical(
        "hierarchical_tree_pipelined", "ring", "tree", frozenset({"all_reduce"}),
        "as hierarchical_tree, stages overlapped chunk by chunk (NCCL-style tree)", pipelined=True,
    ),
    "direct": Direct(),
    "torus": TORUS,
    "fullmesh": FULLMESH,
}


def algorithms_for(op: str) -> list[str]:
    """Names of the registered algorithms that implement ``op``, in registry order."""
    return [name for name, a in ALGORITHMS.items() if op in a.ops]
