"""Design-rule checks catch planted violations and stay quiet on sound designs."""

from __future__ import annotations

import pytest

from oassim.cli import main
from oassim.topology.checks import check_graph
from oassim.topology.cluster import build_cluster
from oassim.topology.cluster_spec import load_cluster


def _violations(path):
    return check_graph(build_cluster(load_cluster(path)))


def _rules(path):
    return {v.rule for v in _violations(path)}


def test_base_cluster_is_clean(cluster_file):
    """The unmodified test cluster breaks no rule."""
    assert _violations(cluster_file()) == []


def test_switch_radix_overflow_is_caught(cluster_file):
    """One NVSwitch gen3 (64 ports) cannot take 8 GPUs x 18 links = 144 links."""

    def edit(d):
        d["supernode"]["spec"]["switches"] = 1

    vs = _violations(cluster_file(edit))
    radix = [v for v in vs if v.rule == "radix"]
    assert len(radix) == 4  # one per supernode's single switch
    assert "144 ports used, radix is 64" in radix[0].message
    assert "nvswitch-gen3" in radix[0].component


def test_mismatched_link_rate_is_caught(cluster_file):
    """A 400G NDR link into Quantum-2 ports configured at 200G is a rate mismatch."""

    def edit(d):
        d["scale_out"]["switches"]["leaf"] = {"switch": "quantum-2", "rate_Gbps": 200}

    vs = [v for v in _violations(cluster_file(edit)) if v.rule == "rate-mismatch"]
    assert vs and all("400 Gb/s" in v.message and "200 Gb/s" in v.message for v in vs)
    assert any("leaf" in v.message for v in vs)


def test_copper_beyond_reach_is_caught(cluster_file):
    """A 10 m run of 3 m passive DAC breaks the reach rule."""

    def edit(d):
        d["scale_out"]["links"]["host"] = {"technology": "ib-ndr", "module": "dac-400g", "length_m": 10}

    vs = [v for v in _violations(cluster_file(edit)) if v.rule == "reach"]
    assert len(vs) == 32  # every host link
    assert "10 m exceeds reach 3 m" in vs[0].message


def test_optical_beyond_module_reach_is_caught(cluster_file, capsys):
    """A 10 km run of SR4 multimode optics (50 m reach, docs/sources.md S65) breaks the optical reach rule."""

    def edit(d):
        d["scale_out"]["links"]["host"] = {"technology": "ib-ndr", "module": "osfp-400g-sr4", "length_m": 10_000}

    vs = [v for v in _violations(cluster_file(edit)) if v.rule == "optical-reach"]
    assert len(vs) == 32  # every host link, and no other link
    assert all("host" in v.component for v in vs)
    assert "10000 m exceeds module osfp-400g-sr4's reach 50 m" in vs[0].message
    assert main(["topo", "check", str(cluster_file(edit))]) == 1
    assert "[optical-reach]" in capsys.readouterr().out


def test_optical_within_module_reach_passes(cluster_file):
    """A 500 m DR4 run is exactly at its module's reach: no optical-reach violation."""

    def edit(d):
        d["scale_out"]["links"]["leaf_spine"]["length_m"] = 500

    assert "optical-reach" not in _rules(cluster_file(edit))


def test_unconnected_accelerator_ports_are_caught(cluster_file):
    """Wiring 16 of an H100's 18 NVLink ports leaves 2 unconnected on every GPU."""

    def edit(d):
        d["supernode"]["spec"]["links_per_accelerator"] = 16

    vs = [v for v in _violations(cluster_file(edit)) if v.rule == "unconnected-port"]
    assert len(vs) == 32
    assert "2 of 18 scale-up ports unconnected" in vs[0].message


def test_disconnected_accelerator_is_caught(cluster_file):
    """An accelerator whose links are all cut is reported, by rank."""
    g = build_cluster(load_cluster(cluster_file()))
    victim = next(n for n, d in g.nodes(data=True) if d.get("rank") == 5)
    g.remove_edges_from(list(g.edges(victim)))
    vs = [v for v in check_graph(g) if v.rule == "disconnected"]
    assert len(vs) == 1 and "rank 5" in vs[0].component


def test_optical_link_without_module_is_caught(cluster_file):
    """An optical link with no optical module at its ends is an inconsistent module count."""

    def edit(d):
        d["scale_out"]["links"]["host"] = {"technology": "ib-ndr", "medium": "optical"}

    vs = [v for v in _violations(cluster_file(edit)) if v.rule == "module-count"]
    assert len(vs) == 32 and "without an optical module" in vs[0].message


def test_module_slower_than_link_is_caught(cluster_file):
    """A 400G module on an 800G link cannot carry it."""

    def edit(d):
        for role in ("host", "leaf_spine", "spine_core"):
            d["scale_out"]["links"][role]["technology"] = "ib-xdr"
        d["scale_out"]["nic"] = {"rate_Gbps": 800}
        for role in ("leaf", "spine", "core"):
            d["scale_out"]["switches"][role] = "quantum-x800"

    vs = [v for v in _violations(cluster_file(edit)) if v.rule == "module-count"]
    assert vs and any("osfp-400g-sr4 is 400 Gb/s, link needs 800 Gb/s" in v.message for v in vs)


def test_published_module_total_mismatch_is_caught(cluster_file):
    """A cluster file's expected optical module total is checked against what was built."""

    def edit(d):
        d["expected"] = {"optical_modules": 1}

    vs = [v for v in _violations(cluster_file(edit)) if v.rule == "module-count"]
    assert len(vs) == 1 and "1 expected" in vs[0].message


def test_check_command_exits_1_with_one_line_per_violation(cluster_file, capsys):
    """`oassim topo check` prints one line per broken rule and exits with status 1."""

    def edit(d):
        d["supernode"]["spec"]["switches"] = 1

    assert main(["topo", "check", str(cluster_file(edit))]) == 1
    out = capsys.readouterr().out.strip().splitlines()
    assert sum(line.startswith("[radix]") for line in out) == 4
    assert out[-1].startswith("4 design-rule violation(s)")


def test_check_command_exits_0_on_a_sound_cluster(cluster_file, capsys):
    """A sound cluster passes `topo check` with exit status 0."""
    assert main(["topo", "check", str(cluster_file())]) == 0
    assert "all design rules pass" in capsys.readouterr().out


@pytest.mark.parametrize("preset", ["dgx-h100-superpod", "gb200-nvl72"])
def test_presets_pass_check_at_16k(preset, capsys):
    """The 16k-accelerator NVIDIA presets pass every design rule at full scale."""
    assert main(["topo", "check", preset, "-n", "16384"]) == 0
