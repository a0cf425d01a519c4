"""Conservation: every op and algorithm moves exactly the data it must, and the network
delivers every byte sent.

Three levels, each failing when an algorithm is wrong:
- information: replaying the phases (repeats included) every rank ends up holding every
  contribution the op requires (a missing step or a wrong partner fails);
- volume: bytes per rank and in total equal the textbook counts (exact, 1e-9 relative);
- network: over all phases x repeats, bytes leaving accelerators == bytes entering them ==
  the phases' payload (per-link payload from the engine on a 2-domain H100 cluster).
"""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oassim.collectives import ALGORITHMS, CollectiveEngine, CollectiveRequest, FabricCaps, phase_totals
from oassim.collectives.groups import level_tensor
from oassim.errors import SpecError
from tests.collectives.conftest import grid_fabric, preset_fabric

OPS_N = ["all_reduce", "reduce_scatter", "all_gather", "broadcast", "reduce", "all_to_all"]
S = 2**24


def _replay(phases, n_ranks: int) -> np.ndarray:
    """Who holds whose contribution after the phases: K[r, c] = rank r has c's data.

    A phase runs ``repeat * steps`` rounds (pipelined phases move a chunk ``steps`` hops)."""
    K = np.eye(n_ranks, dtype=bool)
    for p in phases:
        if p.in_network:  # the switch combines every member it connects
            g = nx.Graph()
            g.add_edges_from(zip(p.src.tolist(), p.dst.tolist()))
            for comp in nx.connected_components(g):
                c = np.fromiter(comp, dtype=np.int64)
                K[c] = K[c].any(axis=0)
            continue
        for _ in range(p.repeat * p.steps):  # a pipelined phase's chunk crosses `steps` hops
            new = K.copy()
            np.logical_or.at(new, p.dst, K[p.src])
            K = new
    return K


def _required(op: str, groups: np.ndarray, root: int, n_ranks: int) -> np.ndarray:
    need = np.zeros((n_ranks, n_ranks), dtype=bool)
    for g in groups:
        if op == "broadcast":
            need[g, g[root]] = True
        elif op == "reduce":
            need[g[root], g] = True
        else:
            need[np.ix_(g, g)] = True
    return need


def _cases():
    f = preset_fabric("dgx-h100-superpod", 32)
    caps = FabricCaps.from_fabric(f)
    groups = {
        "one group of 32": np.arange(32)[None, :],
        "4 domain groups": np.arange(32).reshape(4, 8),
        "8 rail groups": np.arange(32).reshape(4, 8).T.copy(),
        "two groups of 16": np.arange(32).reshape(2, 16),
    }
    out = []
    for gname, g in groups.items():
        for op in OPS_N:
            for name, alg in ALGORITHMS.items():
                req = CollectiveRequest(op, S, g, name, root=1 if op in ("broadcast", "reduce") else 0)
                if alg.unsupported(req, caps) is None:
                    out.append(pytest.param(f, caps, req, id=f"{op}-{name}-{gname.replace(' ', '_')}"))
    # three levels (server, supernode): CloudMatrix384, one group over the whole domain
    cm = preset_fabric("cloudmatrix384", 384)
    cm_caps = FabricCaps.from_fabric(cm)
    for op in ("all_reduce", "reduce_scatter", "all_gather"):
        req = CollectiveRequest(op, S, np.arange(384)[None, :], "hierarchical")
        out.append(pytest.param(cm, cm_caps, req, id=f"{op}-hierarchical-cloudmatrix384_3_levels"))
    # direct-connect grids over two domains: two UB-Mesh racks, two 4x4x4 TPU cubes
    for f in (preset_fabric("ub-mesh", 128), grid_fabric("tpu-v5p-pod", (4, 4, 4), 128)):
        caps = FabricCaps.from_fabric(f)
        side = caps.grid.dims[0]
        grid_groups = {
            "whole grid of two domains": np.arange(128)[None, :],
            "lines of dim 0": np.arange(128).reshape(-1, side),
            "planes of dims 1+ in both domains": np.arange(128).reshape(-1, side).T.copy(),
        }
        for gname, g in grid_groups.items():
            for op in ("all_reduce", "reduce_scatter", "all_gather"):
                req = CollectiveRequest(op, S, g, caps.grid.family)
                out.append(pytest.param(f, caps, req, id=f"{op}-{caps.grid.family}-{gname.replace(' ', '_')}"))
    return out


CASES = _cases()


def test_every_op_has_cases():
    """Every op (but send/recv, tested below) and every algorithm is exercised."""
    ops = {c.values[2].op for c in CASES}
    assert ops == set(OPS_N)
    assert {c.values[2].algorithm for c in CASES} == set(ALGORITHMS)


@pytest.mark.parametrize("fabric,caps,req", CASES)
def test_information_reaches_every_rank(fabric, caps, req):
    """Replaying the phases, every rank holds every contribution its op requires."""
    phases = ALGORITHMS[req.algorithm].phases(req, caps)
    K = _replay(phases, caps.n_ranks)
    need = _required(req.op, req.groups, req.root, caps.n_ranks)
    missing = need & ~K
    assert not missing.any(), f"rank {np.argwhere(missing)[0]} lacks data"


@pytest.mark.parametrize("fabric,caps,req", CASES)
def test_volume(fabric, caps, req):
    """Bytes moved equal the textbook count (exact for the bandwidth-optimal algorithms)."""
    phases = ALGORITHMS[req.algorithm].phases(req, caps)
    sent, recv = phase_totals(phases, caps.n_ranks)
    G, n = req.groups.shape
    members = req.groups.ravel()
    total = sent.sum()
    assert total == pytest.approx(recv.sum(), rel=1e-12)
    if req.algorithm in ("in_network", "hierarchical_in_network"):
        return  # switch traffic is not rank-to-rank volume; checked by the closed forms
    optimal = {"ring", "halving_doubling", "hierarchical", "torus", "fullmesh"}
    if req.op == "all_reduce" and req.algorithm in optimal | {"tree", "hierarchical_tree"}:
        assert total == pytest.approx(G * 2 * (n - 1) * S, rel=1e-9)
    if req.op == "all_reduce" and req.algorithm in optimal:
        assert np.allclose(sent[members], 2 * (n - 1) / n * S, rtol=1e-9)
        assert np.allclose(recv[members], 2 * (n - 1) / n * S, rtol=1e-9)
    if req.op == "reduce_scatter":
        assert np.allclose(sent[members], (n - 1) / n * S, rtol=1e-9)
    if req.op == "all_gather":
        assert np.allclose(recv[members], (n - 1) / n * S, rtol=1e-9)
    if req.op == "all_to_all" and req.algorithm == "direct":
        assert np.allclose(sent[members], (n - 1) / n * S, rtol=1e-9)
    if req.op in ("broadcast", "reduce") and req.algorithm in ("ring", "tree"):
        assert total == pytest.approx(G * (n - 1) * S, rel=1e-9)


@pytest.mark.parametrize("fabric,caps,req", CASES)
def test_network_delivers_what_is_sent(fabric, caps, req):
    """Over all phases x repeats, payload leaving accelerators == entering them == sent."""
    e = _engine(fabric)
    r = e.run(req)
    acc = np.zeros(fabric.n_nodes, dtype=bool)
    acc[fabric.accel_node] = True
    out_b = r.link_bytes[acc[fabric.link_src]].sum()
    in_b = r.link_bytes[acc[fabric.link_dst]].sum()
    payload = sum(p.payload_bytes for p in r.phases)
    assert out_b == pytest.approx(payload, rel=1e-9)
    assert in_b == pytest.approx(payload, rel=1e-9)


_ENGINES: dict[int, CollectiveEngine] = {}


def _engine(fabric) -> CollectiveEngine:
    if id(fabric) not in _ENGINES:
        _ENGINES[id(fabric)] = CollectiveEngine(fabric, "analytical")
    return _ENGINES[id(fabric)]


def test_send_recv_delivers_pairs(h100_16):
    """send/recv delivers S from each sender to its receiver and nothing else."""
    pairs = np.array([[0, 9], [3, 2], [15, 4]])
    p = ALGORITHMS["direct"].phases(CollectiveRequest("send_recv", S, pairs), FabricCaps.from_fabric(h100_16))
    assert len(p) == 1 and p[0].repeat == 1
    assert p[0].src.tolist() == [0, 3, 15] and p[0].dst.tolist() == [9, 2, 4]
    assert np.all(p[0].size_bytes == S)


def _pair_totals(phases, n_ranks: int) -> np.ndarray:
    M = np.zeros((n_ranks, n_ranks))
    for p in phases:
        np.add.at(M, (p.src, p.dst), p.size_bytes * p.repeat)
    return M


def _hier_reference(groups: np.ndarray, pair: np.ndarray, caps: FabricCaps, n_ranks: int):
    """Naive loops: stage-1 and stage-2 byte matrices of the two-stage all-to-all."""
    s1 = np.zeros((n_ranks, n_ranks))
    s2 = np.zeros((n_ranks, n_ranks))
    for gi, g in enumerate(groups):
        dom = caps.domain_of_rank[g]
        for i in range(len(g)):
            for j in range(len(g)):
                b = pair[gi, i, j]
                if i == j or b == 0:
                    continue
                if dom[i] == dom[j]:
                    s1[g[i], g[j]] += b
                    continue
                # the rank of i's domain at j's place in its own domain
                di_members = sorted(g[dom == dom[i]])
                dj_members = sorted(g[dom == dom[j]])
                proxy = di_members[dj_members.index(g[j])]
                if proxy != g[i]:
                    s1[g[i], proxy] += b
                s2[proxy, g[j]] += b
    return s1, s2


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), rail=st.booleans(), sparse=st.floats(0.0, 0.9))
def test_uneven_all_to_all_conserves_the_matrix(seed, rail, sparse):
    """Direct delivers the (n, n) matrix pair by pair; hierarchical matches a naive reference
    and every rank's received-minus-forwarded bytes equal its column sum."""
    f = preset_fabric("dgx-h100-superpod", 32)
    caps = FabricCaps.from_fabric(f)
    rng = np.random.default_rng(seed)
    if rail:
        groups = np.arange(32).reshape(4, 8).T.copy()
    else:  # two groups, 4 random ranks of every domain each, in a random position order
        per_dom = np.stack([rng.permutation(8) + 8 * d for d in range(4)])  # (4 domains, 8)
        groups = np.stack([rng.permutation(per_dom[:, :4].ravel()), rng.permutation(per_dom[:, 4:].ravel())])
    G, n = groups.shape
    m = rng.integers(0, 1000, size=(G, n, n)).astype(float) * (rng.random((G, n, n)) > sparse)
    m[:, 0, 1] += 1.0  # something crosses
    req = CollectiveRequest("all_to_all", 1, groups, matrix=m)
    pair = req.pair_bytes()
    want = np.zeros((32, 32))
    for gi, g in enumerate(groups):
        want[np.ix_(g, g)] += pair[gi]
    direct = _pair_totals(ALGORITHMS["direct"].phases(req, caps), 32)
    assert np.allclose(direct, want)
    hp = ALGORITHMS["hierarchical"].phases(req, caps)
    got = _pair_totals(hp, 32)
    s1, s2 = _hier_reference(groups, pair, caps, 32)
    assert np.allclose(got, s1 + s2)
    sent, recv = phase_totals(hp, 32)
    assert np.allclose(recv - sent, want.sum(axis=0) - want.sum(axis=1))
    cross = caps.domain_of_rank[:, None] != caps.domain_of_rank[None, :]
    assert sum(p.size_bytes.sum() for p in hp if "across" in p.label) == pytest.approx((want * cross).sum())


def test_uneven_all_to_all_size_is_mean_send_buffer():
    """An uneven all-to-all's nccl-tests size is the mean per-rank send buffer."""
    m = np.arange(16.0).reshape(4, 4)
    req = CollectiveRequest("all_to_all", 1, np.arange(4), matrix=m)
    assert req.size_bytes == pytest.approx(m.sum() / 4)
    with pytest.raises(SpecError):
        CollectiveRequest("all_to_all", 1, np.arange(4), matrix=np.eye(4))


def test_level_tensor_rail_alignment(h100_16):
    """level_tensor orders a group by domain, and aligned ranks share a rail."""
    caps = FabricCaps.from_fabric(h100_16)
    t = level_tensor(np.array([[9, 0, 8, 1]]), caps)
    assert t.shape == (1, 2, 1, 2)
    assert t[0, :, 0, :].tolist() == [[0, 1], [8, 9]]
    assert isinstance(level_tensor(np.array([[0, 1, 8]]), caps), str)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 3), st.integers(1, 5), st.integers(1, 6), st.floats(1.0, 1e9))
def test_even_hierarchical_all_to_all_equals_the_matrix_form(G, k, m, size):
    """The even all-to-all's two stages built without the n x n byte matrix carry the same
    (src, dst, bytes) flows as the general form given the even matrix."""
    from oassim.collectives.algorithms.all_to_all import (
        even_hierarchical_all_to_all_phases,
        hierarchical_all_to_all_phases,
    )

    n = k * m
    tensor = np.arange(G * n, dtype=np.int64).reshape(G, k, m)
    pos = np.broadcast_to(np.arange(n).reshape(1, k, m), (G, k, m))
    even = np.full((G, n, n), size / n)

    def flows(phases):  # (src, dst) sorted, and the bytes in that order
        out = []
        for p in phases:
            o = np.lexsort((p.dst, p.src))
            out.append((p.src[o].tolist(), p.dst[o].tolist(), p.size_bytes[o]))
        return out

    fast = even_hierarchical_all_to_all_phases(tensor, size)
    general = hierarchical_all_to_all_phases(tensor, pos, even)
    assert [p.label for p in fast] == [p.label for p in general]
    # the same flows; bytes to rounding (k x size / n against a sum of k matrix entries)
    for a, b in zip(flows(fast), flows(general), strict=True):
        assert a[:2] == b[:2]
        np.testing.assert_allclose(a[2], b[2], rtol=1e-12)
