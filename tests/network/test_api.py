"""Input validation, the model registry, the protocol, and the bottleneck report."""

from __future__ import annotations

import numpy as np
import pytest

from oassim.errors import SpecError
from oassim.network import (
    MODELS,
    AnalyticalNetwork,
    FlowNetwork,
    Flows,
    NetworkModel,
    TransferResult,
    bottleneck,
    make_network,
    tier_utilisation,
)
from tests.network.fabrics import HOST_BW, fat_tree

MODEL_CLASSES = (AnalyticalNetwork, FlowNetwork)


def _f():
    return fat_tree(8, endpoints=16)


def test_mismatched_lengths_rejected():
    """src, dst and size_bytes of different lengths are a ValueError."""
    with pytest.raises(ValueError, match="same length"):
        Flows([0, 1], [1], [1.0, 2.0])


@pytest.mark.parametrize("model", MODEL_CLASSES)
@pytest.mark.parametrize("bad", [0.0, -5.0, np.nan, np.inf])
def test_non_positive_or_non_finite_sizes_rejected(model, bad):
    """A size that is not a finite number > 0 is a ValueError naming the flow, even for src == dst."""
    ep = _f().routing["endpoints"]
    with pytest.raises(ValueError, match="flow 1 has size_bytes"):
        model(_f()).transfer(Flows(ep[[0, 2]], ep[[1, 2]], [1.0, bad]))


@pytest.mark.parametrize("model", MODEL_CLASSES)
def test_node_out_of_range_rejected(model):
    """Node ids outside the fabric are a ValueError."""
    f = _f()
    with pytest.raises(ValueError, match="node ids must lie in"):
        model(f).transfer(Flows([0], [f.n_nodes], [1.0]))


@pytest.mark.parametrize("model", MODEL_CLASSES)
def test_empty_and_self_flows(model):
    """No flows take 0 s; src == dst flows take 0 s and put no byte on any link."""
    f = _f()
    ep = f.routing["endpoints"]
    r = model(f).transfer(Flows([], [], []))
    assert r.time_s == 0.0 and r.flow_finish_s.shape == (0,) and r.link_bytes.shape == (f.n_links,)
    r = model(f).transfer(Flows(ep[[3, 4]], ep[[3, 5]], [1e9, 1e3]))
    assert r.flow_finish_s[0] == 0.0 and r.flow_finish_s[1] > 0
    assert r.link_bytes.sum() == pytest.approx(2e3)


def test_models_satisfy_protocol_and_registry():
    """Both models are NetworkModels registered under their names; make_network builds them with options."""
    f = _f()
    assert set(MODELS) == {"analytical", "flow"}
    for name, cls in MODELS.items():
        m = make_network(name, f)
        assert isinstance(m, cls) and isinstance(m, NetworkModel) and m.name == name and m.fabric is f
    assert make_network("flow", f, eps=1e-6).eps == 1e-6


def test_unknown_model_or_option_is_spec_error():
    """An unknown model name or option is a SpecError listing the allowed ones."""
    with pytest.raises(SpecError, match=r"unknown network model 'packet' \(allowed: analytical, flow\)"):
        make_network("packet", _f())
    with pytest.raises(SpecError, match=r"unknown option\(s\) tolerance .*allowed: eps"):
        make_network("flow", _f(), tolerance=1.0)
    with pytest.raises(SpecError, match="eps must be in"):
        make_network("flow", _f(), eps=-1.0)


def test_bottleneck_orders_links_and_names_tiers():
    """bottleneck() returns the most utilised links first with their tier, bytes and utilisation."""
    f = fat_tree(8, ls_bw=12.5e9, endpoints=32)  # thin leaf-spine links
    ep = f.routing["endpoints"]
    r = AnalyticalNetwork(f).transfer(Flows(ep[[0, 1]], ep[[20, 2]], [1e9, 1e9]))
    top = bottleneck(r, f, top=10)
    assert top[0].tier == "leaf-spine" and top[0].utilisation == pytest.approx(1.0, rel=1e-3)
    assert top[0].bytes == 1e9 and top[0].busy_s == pytest.approx(1e9 / 12.5e9)
    assert [t.utilisation for t in top] == sorted((t.utilisation for t in top), reverse=True)
    assert len(top) == np.count_nonzero(r.link_bytes) == 4 + 2  # cross-leaf: 4 links; same leaf: 2
    assert [t.link for t in bottleneck(r, f, top=2)] == [t.link for t in top[:2]]
    util = tier_utilisation(r, f)
    assert util["leaf-spine"] == pytest.approx(1.0, rel=1e-3)
    assert util["host"] == pytest.approx(1e9 / HOST_BW / r.time_s)
    with pytest.raises(ValueError, match="top must be"):
        bottleneck(r, f, top=0)


def test_link_utilisation_zero_time():
    """A result with zero duration reports zero utilisation and an empty bottleneck list."""
    f = _f()
    r = TransferResult(0.0, np.zeros(1), np.zeros(f.n_links), np.zeros(f.n_links))
    assert bottleneck(r, f) == []
