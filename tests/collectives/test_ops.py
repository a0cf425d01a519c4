"""Requests, sizes, groups and bus-bandwidth factors; bad input is one SpecError line."""

from __future__ import annotations

import numpy as np
import pytest

from oassim.collectives import (
    CollectiveEngine,
    CollectiveRequest,
    FabricCaps,
    busbw_factor,
    format_size,
    make_groups,
    parse_size,
    parse_sizes,
)
from oassim.errors import SpecError


def _msg(fn, *a, **k) -> str:
    with pytest.raises(SpecError) as info:
        fn(*a, **k)
    msg = str(info.value)
    assert "\n" not in msg
    return msg


def test_busbw_factors_are_nccl_tests():
    """all-reduce 2(n-1)/n; RS, AG, all-to-all (n-1)/n; broadcast, reduce, send/recv 1."""
    assert busbw_factor("all_reduce", 8) == pytest.approx(1.75)
    for op in ("reduce_scatter", "all_gather", "all_to_all"):
        assert busbw_factor(op, 8) == pytest.approx(0.875)
    for op in ("broadcast", "reduce", "send_recv"):
        assert busbw_factor(op, 8) == 1.0


def test_sizes_are_powers_of_two_and_double():
    """K/M/G are 2^10/2^20/2^30; A:B doubles as nccl-tests -f 2."""
    assert parse_size("1K") == 1024 and parse_size("64M") == 64 * 2**20 and parse_size("8G") == 8 * 2**30
    assert parse_size("1.5K") == 1536 and parse_size("4096") == 4096 and parse_size("2MiB") == 2 * 2**20
    assert parse_sizes("1M:8M") == [2**20, 2**21, 2**22, 2**23]
    assert parse_sizes("1M:8G")[-1] == 8 * 2**30 and len(parse_sizes("1M:8G")) == 14
    assert parse_sizes("1K,1M") == [1024, 2**20]
    assert parse_sizes("1K:64K:4") == [1024, 4096, 16384, 65536]
    assert format_size(64 * 2**20) == "64M" and format_size(1536) == "1.5K"


@pytest.mark.parametrize("bad", ["0", "-1M", "0K", "abc", "1X", "8G:1M"])
def test_bad_sizes(bad):
    """Zero, negative, malformed sizes and reversed ranges are one-line errors."""
    assert "--sizes" in _msg(parse_sizes, bad)


def test_request_validation_messages():
    """A rank named twice, overlapping groups, size <= 0, a bad op or root: clear one-liners."""
    g = np.arange(8)[None, :]
    assert "names rank 3 twice" in _msg(CollectiveRequest, "all_reduce", 1024, [[0, 3, 3, 4]])
    assert "groups 0 and 1" in _msg(CollectiveRequest, "all_reduce", 1024, [[0, 1], [1, 2]])
    assert "> 0 bytes" in _msg(CollectiveRequest, "all_reduce", 0, g)
    assert "> 0 bytes" in _msg(CollectiveRequest, "all_reduce", -5, g)
    assert "unknown collective op" in _msg(CollectiveRequest, "allreduce", 1024, g)
    assert "root position 9" in _msg(CollectiveRequest, "broadcast", 1024, g, root=9)
    assert "(sender, receiver)" in _msg(CollectiveRequest, "send_recv", 1024, g)
    assert "same number of ranks" in _msg(CollectiveRequest, "all_reduce", 1024, [[0, 1], [2]])
    assert "matrix must have shape" in _msg(CollectiveRequest, "all_to_all", 1, g, matrix=np.ones((3, 3)))
    assert "all_to_all only" in _msg(CollectiveRequest, "all_reduce", 1, g, matrix=np.ones((8, 8)))


def test_ranks_beyond_the_cluster(a100_8):
    """A rank the cluster does not have is refused by the engine and by make_groups."""
    e = CollectiveEngine(a100_8)
    assert "beyond the cluster (8 accelerators" in _msg(e.run, CollectiveRequest("all_reduce", 1024, [[0, 8]]))
    assert "beyond the cluster" in _msg(make_groups, e.caps, 16)


def test_algorithm_must_fit_op_and_fabric(a100_8):
    """Unknown algorithm, wrong op, or in-network reduction without reducing switches."""
    e = CollectiveEngine(a100_8)
    g = np.arange(8)[None, :]
    assert "unknown algorithm 'nvls'" in _msg(e.run, CollectiveRequest("all_reduce", 1024, g, "nvls"))
    msg = _msg(e.run, CollectiveRequest("all_to_all", 1024, g, "ring"))
    assert "algorithm 'ring' cannot run all_to_all" in msg
    msg = _msg(e.run, CollectiveRequest("all_reduce", 1024, g, "in_network"))
    assert "no in-network reduction" in msg and "nvswitch-baseboard-a100-logical" in msg
    msg = _msg(e.run, CollectiveRequest("reduce_scatter", 1024, np.arange(6)[None, :], "halving_doubling"))
    assert "power-of-two" in msg


def test_group_splits(h100_16):
    """all, domain, rail and N contiguous groups; uneven splits are refused."""
    caps = FabricCaps.from_fabric(h100_16)
    assert make_groups(caps).shape == (1, 16)
    assert make_groups(caps, 16, "domain").tolist() == [list(range(8)), list(range(8, 16))]
    rail = make_groups(caps, 16, "rail")
    assert rail.shape == (8, 2) and rail[3].tolist() == [3, 11]
    assert make_groups(caps, 12, "3").tolist() == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]
    assert "do not split into 5" in _msg(make_groups, caps, 16, 5)
    assert "whole domains" in _msg(make_groups, caps, 12, "domain")
    assert "unknown group split" in _msg(make_groups, caps, 16, "pods")


def test_single_rank_groups_cost_nothing(a100_8):
    """A group of one rank has no phases and takes no time."""
    r = CollectiveEngine(a100_8).run(CollectiveRequest("all_reduce", 1024, np.arange(8)[:, None], "ring"))
    assert r.time_s == 0 and r.busbw_Bps == 0 and r.phases == ()
