"""FabricCaps: levels, in-network reduction and link technologies read from each preset."""

from __future__ import annotations

import numpy as np
import pytest

from oassim.collectives import CollectiveEngine, CollectiveRequest, FabricCaps, level_tensor
from oassim.errors import SpecError
from tests.collectives.conftest import preset_fabric, single_switch


def test_dgx_presets():
    """H100 NVSwitch gen3 reduces in the network, the A100 baseboard does not; Quantum-2 no SHARP."""
    h = FabricCaps.from_fabric(preset_fabric("dgx-h100-superpod", 16))
    a = FabricCaps.from_fabric(preset_fabric("dgx-a100-superpod", 16))
    assert h.scaleup_inr and not h.scaleout_inr and h.scaleup_techs == ("nvlink4",)
    assert not a.scaleup_inr and a.scaleup_techs == ("nvlink3",) and "ib-hdr" in a.scaleout_techs
    assert h.domain_size == 8 and h.n_domains == 2 and h.sub_of_rank is None
    assert h.local_of_rank.tolist() == list(range(8)) * 2


def test_scaleup_links_are_the_domain_links():
    """Scale-up links join nodes of one domain; NIC and fabric links are scale-out."""
    f = preset_fabric("dgx-h100-superpod", 16)
    c = FabricCaps.from_fabric(f)
    names = np.array(f.link_tier_names)[f.link_tier]
    assert set(names[c.link_scaleup]) == {"scaleup"}
    assert "scaleup" not in set(names[~c.link_scaleup])


def test_sub_domain_levels():
    """CloudMatrix384: one 384-NPU domain of 48 servers; a group over it has three levels."""
    f = preset_fabric("cloudmatrix384", 384)
    c = FabricCaps.from_fabric(f)
    t = level_tensor(np.arange(384)[None, :], c)
    assert t.shape == (1, 1, 48, 8)
    assert np.all(c.domain_of_rank[t] == 0)


def test_in_network_across_domains_needs_scale_out_sharp():
    """A group spanning H100 nodes cannot use NVLS alone: the scale-out has no SHARP."""
    e = CollectiveEngine(preset_fabric("dgx-h100-superpod", 16))
    with pytest.raises(SpecError, match="scale-out switches .* no in-network reduction"):
        e.run(CollectiveRequest("all_reduce", 2**20, np.arange(16)[None, :], "in_network"))
    r = e.run(CollectiveRequest("all_reduce", 2**20, np.arange(16)[None, :], "hierarchical_in_network"))
    assert any(p.in_network for p in r.phases) and not all(p.in_network for p in r.phases)


def test_bare_graph_caps():
    """A bare family graph: in-network reduction and technology read from the graph."""
    f, g = single_switch(4, inr=True)
    c = FabricCaps.from_fabric(f, g)
    assert c.scaleup_inr and c.scaleup_techs == ("test-link",) and c.link_scaleup.all()
    assert not FabricCaps.from_fabric(f).scaleup_inr  # without the graph: nothing assumed


@pytest.mark.parametrize("preset,n", [("gb200-nvl72", 144), ("tpu-v5p-pod", 8192), ("cloudmatrix384", 384)])
def test_hierarchical_on_other_families(preset, n):
    """Hierarchical all-reduce runs on switched, torus and two-tier Clos supernodes, and the
    domain symmetry shortcut agrees with costing every domain."""
    f = preset_fabric(preset, n)
    req = CollectiveRequest("all_reduce", 2**26, np.arange(f.n_accelerators)[None, :], "hierarchical")
    a = CollectiveEngine(f).run(req)
    b = CollectiveEngine(f, symmetry=False).run(req)
    assert a.time_s == pytest.approx(b.time_s, rel=1e-9)
    assert np.allclose(a.link_bytes, b.link_bytes, rtol=1e-9)
