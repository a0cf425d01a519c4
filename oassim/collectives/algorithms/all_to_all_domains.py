"""All-to-all inside symmetric scale-up domains: one source's flows stand for every source's.

What is modelled. An even all-to-all among all the ranks of a torus, full-mesh or two-tier
Clos (``clos2``) domain is invariant under the domain's symmetries, and so is its routing:

- torus, dimension-ordered over the shortest way round each ring: the translations map every
  flow to another flow of the pattern and every ``+d`` link to another ``+d`` link; the
  reflections map ``+d`` to ``-d`` (a tie at distance ``k/2`` split evenly between the two
  directions, where the router hashes each pair one way);
- full mesh, dimension-ordered: permuting the values of each coordinate maps every directed
  link of dimension ``d`` onto every other;
- ``clos2``: permuting servers, the accelerators of a server, the planes and the L2 switches of
  a plane maps every accelerator-to-L1, L1-to-accelerator, L1-to-L2 and L2-to-L1 link onto every
  other of its kind (each transfer striped evenly over the planes, the L2 switch hashed or
  sprayed).

So every directed link of one *class* (torus and full mesh: its dimension; ``clos2``: the tiers
of its two ends) carries the same bytes, ``n H_c b / N_c``: ``n`` sources, ``H_c`` the hops one
source's flows take in class ``c`` (striping fractions included), ``b`` the bytes per pair and
``N_c`` the class's links. A phase lists only a representative source's ``m - 1`` flows
(:class:`DomainQuotient`); the engine costs them on the *quotient* fabric
(:func:`~oassim.collectives.algorithms.all_to_all_bundles.bundled_transfer`): every hop on a
class link is moved onto one representative link of that class whose capacity is the class's
(least) link capacity times ``N_c / n``, so that link carries ``H_c b`` at the rate a real link
carries ``n H_c b / N_c``, then reports every class link its ``n / N_c`` share. Identical full
domains (stamped copies) with the same bytes pool into one quotient whatever their number.

Exactness. Analytical model: every real link of a class carries the same equal-size flows, so
its finish time is ``load / cap`` and the phase time is exact (tests: to 1e-9 against the
n x n flows, time and every link's bytes) where all links of a class have one capacity and
latency; otherwise the representative takes the least capacity and the largest latency (an
upper bound; the time exceeds the n x n one by at most the path's latency spread). Flow model:
the max-min rates of the n x n flows are symmetric too (the max-min allocation is unique, the
problem symmetric), and each class constraint reads the same on the quotient, so re-solving at
each completion gives the same times up to the solver's completion batching (``eps``).
Torus ties: the n x n flows hash each tie pair one way, so their busiest link carries more than
the even split the quotient costs (the tests measure it; the quotient equals the per-dimension
total). ``clos2`` under static ECMP (``supernode.spec.routing: ecmp``): the L1-L2 classes'
capacity is divided by the expected hashing excess of the real sub-flows through them
(:func:`~oassim.network.routing_modes.ecmp_excess`), as the leaf bundling does for fat-trees
(measured: +4.2% over one hash realisation of the n x n flows on CloudMatrix384, both models);
under ``adaptive`` the quotient is exact. A ``clos2`` domain of whole servers is symmetric
among the servers present: its classes are their links and the L2 links into them.

Where it does not apply (a group holding part of a torus or full-mesh domain or part of a
server, a byte matrix, block traffic that is not uniform inside a domain, other families) the
pairs are listed as before.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from oassim.collectives.caps import FabricCaps

__all__ = ["QUOTIENT_FAMILIES", "DomainQuotient", "quotient_domains", "uniform_quotient_positions", "quotient_flows",
           "quotient_phase", "quotient_view"]

QUOTIENT_FAMILIES = ("torus", "fullmesh", "clos2")
"""Scale-up families whose even in-domain all-to-all is costed on the quotient fabric."""


@dataclass(frozen=True, eq=False)
class DomainQuotient:
    """A representative source standing for every source of some identical full domains.

    Attributes
    ----------
    domains : ndarray of int64
        The pooled domains (every rank of each in the phase, the same bytes per pair).
    rep : int
        Representative rank (in ``domains[0]``); the phase lists its flows to every other rank
        of its domain.
    sources : int
        Ranks the representative stands for (all ranks of the pooled domains).
    size : int
        Ranks per domain.
    pair_bytes : float
        Bytes per rank pair.
    ranks : ndarray of int64
        Every rank the representative stands for, ascending.
    partial : bool
        The domains are not wholly in the phase (``clos2`` domains of whole servers): only the
        links of the servers present (and the L2 links into them) make up the classes.
    """

    domains: np.ndarray
    rep: int
    sources: int
    size: int
    pair_bytes: float = 0.0
    ranks: np.ndarray | None = None
    partial: bool = False

    @property
    def pairs(self) -> int:
        """Rank-to-rank flows the quotient stands for."""
        return self.sources * (self.size - 1)

    def key(self) -> bytes:
        return np.concatenate([np.asarray(self.domains, dtype=np.int64),
                               np.array([self.rep, self.sources, self.size], dtype=np.int64)]).tobytes() + \
            np.float64(self.pair_bytes).tobytes() + (b"p" if self.partial else b"") + \
            (b"" if self.ranks is None else np.asarray(self.ranks, dtype=np.int64).tobytes())


def quotient_domains(ranks: np.ndarray, caps: FabricCaps) -> np.ndarray:
    """Positions of ``ranks`` whose whole domain is in ``ranks`` (full domains of
    ``caps.domain_size`` ranks) where the domain family has a quotient, and in ``clos2`` domains
    also those whose servers are each whole (the servers present are symmetric among
    themselves); the others' pairs are listed one by one."""
    if caps.domain_family not in QUOTIENT_FAMILIES or caps.domain_size < 3:
        return np.zeros(0, dtype=np.int64)
    dom = caps.domain_of_rank[ranks]
    per = np.bincount(caps.domain_of_rank, minlength=caps.n_domains)
    du, inv, cnt = np.unique(dom, return_inverse=True, return_counts=True)
    full = (cnt == per[du]) & (per[du] == caps.domain_size)
    ok = full[inv]
    if caps.domain_family == "clos2" and caps.sub_of_rank is not None:
        sub = caps.sub_of_rank[ranks]
        whole = np.bincount(sub, minlength=int(caps.sub_of_rank.max()) + 1) == \
            np.bincount(caps.sub_of_rank, minlength=int(caps.sub_of_rank.max()) + 1)
        bad = np.zeros(len(du), dtype=bool)
        np.logical_or.at(bad, inv, ~whole[sub])
        ok |= ~bad[inv] & (cnt[inv] >= 3)
    return np.flatnonzero(ok)


def uniform_quotient_positions(ranks: np.ndarray, caps: FabricCaps, blk: np.ndarray | None = None) -> np.ndarray:
    """:func:`quotient_domains` restricted to domains whose ranks all have one traffic block
    (``blk``, per position; None: even traffic), so every pair inside carries the same bytes."""
    pos = quotient_domains(ranks, caps)
    if blk is None or not len(pos):
        return pos
    dom = caps.domain_of_rank[ranks[pos]]
    du, inv = np.unique(dom, return_inverse=True)
    lo = np.full(len(du), np.iinfo(np.int64).max)
    hi = np.full(len(du), np.iinfo(np.int64).min)
    np.minimum.at(lo, inv, blk[pos])
    np.maximum.at(hi, inv, blk[pos])
    return pos[(lo == hi)[inv]]


def quotient_flows(ranks: np.ndarray, caps: FabricCaps, pos: np.ndarray, pair_bytes: np.ndarray):
    """The representative flows of the full domains at ``pos`` (from :func:`quotient_domains`),
    one quotient per distinct bytes value.

    Parameters
    ----------
    ranks : ndarray of int64
        Ranks of the phase's groups (any order, disjoint groups concatenated).
    caps : FabricCaps
    pos : ndarray of int64
        Positions of ranks in full domains.
    pair_bytes : ndarray of float64, same shape as ``pos``
        Bytes each of those ranks sends to each other rank of its domain (one value per domain).

    Returns
    -------
    src, dst, size : ndarray
        Ranks and bytes of the listed flows.
    quotients : list of DomainQuotient
    """
    src, dst, size, out = [], [], [], []
    dom = caps.domain_of_rank[ranks[pos]]
    du, first, cnt = np.unique(dom, return_index=True, return_counts=True)
    value = pair_bytes[first]
    for v, m in sorted({(float(a), int(b)) for a, b in zip(value, cnt) if a > 0}):
        doms = du[(value == v) & (cnt == m)]
        members = np.sort(ranks[pos][dom == doms[0]])
        rep = int(members[0])
        src.append(np.full(len(members) - 1, rep, dtype=np.int64))
        dst.append(members[1:])
        size.append(np.full(len(members) - 1, float(v)))
        every = np.sort(ranks[pos][np.isin(dom, doms)]).astype(np.int64)
        out.append(DomainQuotient(doms.astype(np.int64), rep, len(doms) * m, m, float(v), every,
                                  m != caps.domain_size))
    if not out:
        z = np.zeros(0, dtype=np.int64)
        return z, z, np.zeros(0), []
    return np.concatenate(src), np.concatenate(dst), np.concatenate(size), out


def quotient_phase(ranks: np.ndarray, caps: FabricCaps, per_pair: float, label: str):
    """One phase of the even all-to-all inside every domain of ``ranks`` (``per_pair`` bytes per
    pair), costed from one source per pooled set, or None unless ``ranks`` are whole symmetric
    domains."""
    from oassim.collectives.algorithms.all_to_all_bundles import _EMPTY, EndpointBundles
    from oassim.collectives.phases import Phase

    ranks = np.asarray(ranks, dtype=np.int64).ravel()
    pos = quotient_domains(ranks, caps)
    if len(pos) != len(ranks) or per_pair <= 0:
        return None
    s, d, b, q = quotient_flows(ranks, caps, pos, np.full(len(pos), float(per_pair)))
    return Phase(s, d, b, label=label, count=np.ones(len(s)),
                 bundles=EndpointBundles(_EMPTY, (), _EMPTY, (), domains=tuple(q)))


def _template(fabric):
    """(routing of the domain family, nodes per stamped domain or None for a bare family)."""
    r = fabric.routing
    if r.get("router") == "cluster":
        t = r.get("template")
        return (t.routing if t is not None else {}), int(r["domain_nodes"])
    return r, None


def _link_classes(fabric, links: np.ndarray) -> np.ndarray:
    """Class key of each in-domain link: the tiers of its ends and, between two accelerators
    of a grid (torus, full mesh), the dimension their coordinates differ in."""
    r, dn = _template(fabric)
    a, b = fabric.link_src[links], fabric.link_dst[links]
    tiers = len(fabric.tier_names)
    key = (fabric.node_tier[a].astype(np.int64) * tiers + fabric.node_tier[b]) * 8
    if r.get("router") in ("torus", "fullmesh"):
        acc = np.asarray(r["accel"], dtype=np.int64)
        dims = np.asarray(r["dims"], dtype=np.int64)
        strides = np.concatenate([[1], np.cumprod(dims)[:-1]])
        size = int(acc.max()) + 1 if dn is None else dn
        local = np.full(size, -1, dtype=np.int64)
        local[acc] = np.arange(len(acc))
        la, lb = local[a if dn is None else a % dn], local[b if dn is None else b % dn]
        both = (la >= 0) & (lb >= 0)
        diff = ((la[both, None] // strides) % dims) != ((lb[both, None] // strides) % dims)
        key[both] += 1 + np.argmax(diff, axis=1)
    return key


def _active(fabric, present: np.ndarray, nodes: np.ndarray) -> np.ndarray:
    """Nodes of a partial ``clos2`` quotient's links: accelerators of ranks present, L1 chips
    of servers (pods) with a rank present, and every L2 switch (no pod)."""
    acc = fabric.accel_node[present]
    pod = fabric.node_pod
    code = fabric.node_domain.astype(np.int64) * (int(pod.max()) + 2) + pod
    here = np.isin(code[nodes], np.unique(code[acc])) | (pod[nodes] < 0)
    is_acc = fabric.node_kind[nodes] == fabric.node_kind[acc[0]]
    return np.where(is_acc, np.isin(nodes, acc), here)


def quotient_view(fabric, quotients: list[DomainQuotient], rep_paths):
    """The quotient of ``fabric`` for ``quotients``.

    Parameters
    ----------
    fabric : Fabric
    quotients : list of DomainQuotient
    rep_paths : callable
        ``rep_paths(q)`` -> link ids (on ``fabric``) of every hop of the representative's
        sub-flows, for the hashing excess.

    Returns
    -------
    rep_of_link : ndarray of int64, shape (n_links,)
        Representative link of each class link (-1 elsewhere).
    cap, lat : dict of int -> float
        Capacity and latency of each representative link on the quotient.
    expand : list of (rep link, class links, share)
        Each class's real links and the share ``n / N_c`` of the representative's bytes each
        carries.
    """
    from oassim.network.routing_modes import ecmp_excess, supernode_routing
    from oassim.topology.graph import NODE_KINDS

    rep_of = np.full(fabric.n_links, -1, dtype=np.int64)
    cap_of, lat_of, expand = {}, {}, []
    nd = fabric.node_domain
    ls, ld = fabric.link_src, fabric.link_dst
    nic = NODE_KINDS.index("nic")
    inside = (nd[ls] == nd[ld]) & (nd[ls] >= 0) & (fabric.node_kind[ls] != nic) & (fabric.node_kind[ld] != nic)
    hashed = supernode_routing(fabric) == "ecmp"
    l2 = fabric.tier_names.index("scaleup-l2") if "scaleup-l2" in fabric.tier_names else -1
    capacity = fabric.capacity_Bps
    for q in quotients:
        ids = np.flatnonzero(inside & np.isin(nd[ls], q.domains))
        if q.partial:  # only the servers present: their accelerators and L1 chips
            ids = ids[_active(fabric, q.ranks, ls[ids]) & _active(fabric, q.ranks, ld[ids])]
        key = _link_classes(fabric, ids)
        uk, cls = np.unique(key, return_inverse=True)
        rep_dom = int(fabric.node_domain[fabric.accel_node[q.rep]])
        cls_of = np.full(fabric.n_links, -1, dtype=np.int64)
        cls_of[ids] = cls
        hop = cls_of[rep_paths(q)]
        crossings = np.bincount(hop[hop >= 0], minlength=len(uk))
        n_c = np.bincount(cls, minlength=len(uk))
        for c in range(len(uk)):
            members = ids[cls == c]
            here = members[nd[ls[members]] == rep_dom]
            if not len(here):
                continue
            rep = int(here[0])
            share = q.sources / len(members)
            cap = float(capacity[members].min()) / share
            if hashed and l2 >= 0 and (fabric.node_tier[ls[rep]] == l2 or fabric.node_tier[ld[rep]] == l2):
                # real sub-flows per link of the class, hashed over its links
                lam = q.sources * crossings[c] / n_c[c] if crossings[c] > 0 else 1.0
                cap /= float(ecmp_excess(np.array([lam]), len(members))[0])
            rep_of[members] = rep
            cap_of[rep] = cap
            lat_of[rep] = float(fabric.link_lat[members].max())
            expand.append((rep, members, share))
    return rep_of, cap_of, lat_of, expand
