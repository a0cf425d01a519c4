"""SI conversions of preset figures and the derived properties of each model."""

from __future__ import annotations

import pytest

from oassim.errors import SpecError
from oassim.hardware import Catalog, InterconnectSpec, LinkTechnology, OpticalModule


def test_h100_peaks_in_flops(catalog: Catalog) -> None:
    """H100 dense peaks: BF16 989e12 and FP8 1979e12 FLOP/s."""
    h100 = catalog.accelerator("h100-sxm")
    assert h100.peak_flops("bf16") == pytest.approx(989e12)
    assert h100.peak_flops("fp8") == pytest.approx(1979e12)


def test_a100_fp8_is_an_error_naming_chip_and_precision(catalog: Catalog) -> None:
    """Asking an A100 for FP8 raises SpecError naming the accelerator and the precision."""
    with pytest.raises(SpecError, match=r"a100-sxm.*fp8"):
        catalog.accelerator("a100-sxm").peak_flops("fp8")


def test_unknown_precision_lists_allowed(catalog: Catalog) -> None:
    """An unknown precision is a SpecError listing bf16, fp16, fp8."""
    with pytest.raises(SpecError, match="bf16, fp16, fp8"):
        catalog.accelerator("h100-sxm").peak_flops("int4")  # type: ignore[arg-type]


def test_h100_memory_and_scaleup_in_si(catalog: Catalog) -> None:
    """H100: 80e9 B HBM at 3.35e12 B/s; 25e9 B/s per link and 450e9 B/s per chip; 50e9 B/s NIC."""
    h100 = catalog.accelerator("h100-sxm")
    assert h100.hbm_capacity_bytes == pytest.approx(80e9)
    assert h100.hbm_bandwidth_Bps == pytest.approx(3.35e12)
    assert h100.scaleup_link_bandwidth_Bps == pytest.approx(25e9)
    assert h100.scaleup_bandwidth_Bps == pytest.approx(450e9)
    assert h100.scaleout_bandwidth_Bps == pytest.approx(400e9 / 8)


def test_unset_interface_is_an_error(catalog: Catalog) -> None:
    """MI300X scale-out is platform-dependent: asking for it raises SpecError naming the fields."""
    with pytest.raises(SpecError, match="mi300x.*scaleout_nic_ports"):
        _ = catalog.accelerator("mi300x").scaleout_bandwidth_Bps


def test_nvlink_link_bandwidths(catalog: Catalog) -> None:
    """NVLink 4 carries 25e9 B/s and NVLink 5 50e9 B/s per link per direction."""
    assert catalog.link("nvlink4").bandwidth_Bps == pytest.approx(25e9)
    assert catalog.link("nvlink5").bandwidth_Bps == pytest.approx(50e9)


def test_scaleup_link_presets_match_accelerator_links(catalog: Catalog) -> None:
    """Each chip's per-link GB/s equals the bandwidth of its link technology preset."""
    pairs = {"a100-sxm": "nvlink3", "h100-sxm": "nvlink4", "h200-sxm": "nvlink4",
             "b200-sxm": "nvlink5", "gb200": "nvlink5", "mi300x": "xgmi", "ascend-910c": "ub",
             "tpu-v5p": "tpu-ici"}
    for chip, link in pairs.items():
        expected = catalog.link(link).bandwidth_Bps
        assert catalog.accelerator(chip).scaleup_link_bandwidth_Bps == pytest.approx(expected)


def test_ualink_lane_carries_200g_of_data(catalog: Catalog) -> None:
    """UALink 200G: 212.5 GT/s signalling carries 200 Gb/s of data per lane; x4 = 800 Gb/s."""
    ua = catalog.link("ualink-200g")
    assert ua.lane_rate_Gbps * ua.encoding_efficiency == pytest.approx(200)
    assert ua.rate_Gbps == pytest.approx(800)
    assert ua.efficiency == pytest.approx(0.93)


def test_infiniband_port_rates(catalog: Catalog) -> None:
    """InfiniBand HDR, NDR, XDR ports run at 200, 400, 800 Gb/s with no per-hop latency claimed."""
    for name, rate in {"ib-hdr": 200, "ib-ndr": 400, "ib-xdr": 800}.items():
        link = catalog.link(name)
        assert link.rate_Gbps == pytest.approx(rate)
        assert link.latency_ns is None and link.latency_s == 0.0


def test_protocol_efficiency_derivation() -> None:
    """Protocol efficiency: explicit wins, else mtu/(mtu+header), else 1.0 and reported unset."""
    base = dict(name="x", kind="scale_out", lane_rate_Gbps=100, lanes=4, medium="optical")
    derived = LinkTechnology(**base, mtu_bytes=4096, header_bytes=64)
    assert derived.efficiency == pytest.approx(4096 / 4160)
    assert "protocol_efficiency" not in derived.unset_fields()
    explicit = LinkTechnology(**base, mtu_bytes=4096, header_bytes=64, protocol_efficiency=0.9)
    assert explicit.efficiency == 0.9
    bare = LinkTechnology(**base, latency_ns=150)
    assert bare.efficiency == 1.0 and "protocol_efficiency" in bare.unset_fields()
    assert bare.latency_s == pytest.approx(150e-9)


def test_tomahawk5_ports_by_rate(catalog: Catalog) -> None:
    """Tomahawk 5 has 64 ports at 800G, 128 at 400G, 256 at 200G; radix is the first config."""
    th5 = catalog.switch("tomahawk-5")
    assert th5.ports_at(400) == 128
    assert th5.ports_at(800) == 64 and th5.radix == 64 and th5.port_rate_Gbps == 800
    assert th5.ports_at(200) == 256


def test_unsupported_port_rate_lists_supported(catalog: Catalog) -> None:
    """A rate no configuration offers raises SpecError listing the supported rates."""
    with pytest.raises(SpecError, match=r"tomahawk-5.*300.*64 x 800, 128 x 400, 256 x 200"):
        catalog.switch("tomahawk-5").ports_at(300)


def test_ocs_is_rate_agnostic(catalog: Catalog) -> None:
    """The Palomar OCS has 136 ports at any rate and no port rate of its own."""
    ocs = catalog.switch("palomar-ocs")
    assert ocs.kind == "ocs" and ocs.port_rate_Gbps is None
    assert ocs.ports_at(400) == ocs.ports_at(1600) == 136


def test_switch_latency_and_module_medium(catalog: Catalog) -> None:
    """Tomahawk Ultra adds 250e-9 s; copper cables report medium copper, optics optical."""
    assert catalog.switch("tomahawk-ultra").latency_s == pytest.approx(250e-9)
    assert catalog.module("dac-800g").medium == "copper"
    assert catalog.module("lacc-800g").medium == "copper"
    assert catalog.module("osfp-400g-sr4").medium == "optical"
    assert catalog.module("cpo-1.6t").bandwidth_Bps == pytest.approx(200e9)


def test_nvswitch_gen4_matches_tray_figures(catalog: Catalog) -> None:
    """Two NVLink Switch chips give the NVL72 tray's 144 ports and 14.4 TB/s bidirectional."""
    sw = catalog.switch("nvswitch-gen4")
    assert 2 * sw.radix == 144
    assert 2 * sw.capacity_Tbps * 1e12 / 8 * 2 == pytest.approx(14.4e12)
    assert sw.ports_at(catalog.link("nvlink5").rate_Gbps) == 72


def test_resolve_interconnect_inlines_module_presets(catalog: Catalog) -> None:
    """An interconnect spec's reach-class module names resolve to models; inline modules validate."""
    spec = catalog.resolve_interconnect({
        "name": "x", "domain": "scale_out", "lane_rate_Gbps": 100, "lanes_per_port": 4,
        "switch": {"radix": 64},
        "reach": [{"name": "dac", "medium": "copper", "reach_m": 3, "module": "dac-400g"},
                  {"name": "sr4", "medium": "optical", "module": {"rate_Gbps": 400, "technology": "dsp"}}],
    })
    assert isinstance(spec.reach[0].module, OpticalModule) and spec.reach[0].module.power_W == pytest.approx(0.1)
    assert spec.reach[1].module.technology == "dsp"
    assert isinstance(InterconnectSpec.model_validate({
        "name": "y", "domain": "scale_up", "lane_rate_Gbps": 1, "lanes_per_port": 1, "switch": {"radix": 2},
        "reach": [{"name": "o", "medium": "optical", "module": "osfp-400g-sr4"}]}).reach[0].module, str)


def test_interconnect_rejects_an_optical_module_on_copper(catalog: Catalog) -> None:
    """A reach class whose module is optical but whose medium is copper is a SpecError."""
    spec = {"name": "x", "domain": "scale_up", "lane_rate_Gbps": 100, "lanes_per_port": 1,
            "switch": {"radix": 64}, "reach": [{"name": "c", "medium": "copper", "module": "osfp-400g-sr4"}]}
    with pytest.raises(SpecError, match=r"^spec.yaml: reach\[0\].medium: .*optical"):
        catalog.resolve_interconnect(spec, source="spec.yaml")
