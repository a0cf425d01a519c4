"""The shipped hardware presets: they load, validate, cite sources and name unset figures."""

from __future__ import annotations

import pytest

from oassim.hardware import PRESET_FILES, Catalog, load_catalog

EXPECTED = {
    "accelerator": set(
        "a100-sxm h100-sxm h200-sxm b200-sxm gb200 mi300x ascend-910c tpu-v5p".split()
    ),
    "link": set(
        "nvlink3 nvlink4 nvlink5 ualink-200g scale-up-ethernet ib-hdr ib-ndr ib-xdr roce-400g "
        "roce-800g ub tpu-ici xgmi".split()
    ),
    "module": set(
        "osfp-400g-sr4 osfp-800g-2xsr4 osfp-800g-2xdr4 pluggable-800g-dsp pluggable-800g-lpo "
        "pluggable-1.6t cpo-1.6t osfp-400g-lpo dac-400g dac-800g lacc-800g aec-100g-lane".split()
    ),
    "switch": set(
        "nvswitch-gen3 nvswitch-gen4 tomahawk-5 tomahawk-6 tomahawk-ultra quantum-2 quantum-x800 "
        "spectrum-4 palomar-ocs ub-switch-l1 ub-switch-l2 ualink-switch".split()
    ),
}


def _all_parts(catalog: Catalog):
    for kind in PRESET_FILES:
        for name in catalog.names(kind):
            yield kind, name, catalog.get(kind, name)


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_required_presets_exist(catalog: Catalog, kind: str) -> None:
    """Every preset the topology layer relies on is in the catalog."""
    assert EXPECTED[kind] <= set(catalog.names(kind))


def test_every_preset_is_named_after_its_key(catalog: Catalog) -> None:
    """A preset's name is the key it is filed under, and each comes from a known file."""
    for kind, name, part in _all_parts(catalog):
        assert part.name == name
        assert catalog.source_of(kind, name).name == PRESET_FILES[kind][0]


def test_every_preset_cites_a_reference_source(
    catalog: Catalog, reference_source_ids: set[str]
) -> None:
    """Every preset cites at least one source, and every id it cites is in docs/sources.md."""
    for kind, name, part in _all_parts(catalog):
        assert part.sources, f"{kind} {name} cites no source"
        unknown = set(part.sources) - reference_source_ids
        assert not unknown, f"{kind} {name} cites ids not in docs/sources.md: {unknown}"


def test_unset_figures_are_named_in_notes(catalog: Catalog) -> None:
    """Every figure a preset leaves unset is named in its notes, so reports can explain it."""
    for kind, name, part in _all_parts(catalog):
        for field in part.unset_fields():
            assert field in part.notes, f"{kind} {name}: unset {field} not explained in notes"


def test_h800_is_absent_because_the_reference_has_no_figures(catalog: Catalog) -> None:
    """No H800 preset exists: docs/sources.md gives no H800 figures."""
    assert "h800-sxm" not in catalog.names("accelerator")


def test_no_preset_has_a_price(catalog: Catalog) -> None:
    """Prices are not in a citable source, so every preset leaves price_USD unset."""
    for _, _, part in _all_parts(catalog):
        assert getattr(part, "price_USD", None) is None


def test_in_network_reduction_only_where_reference_states_it(catalog: Catalog) -> None:
    """Only NVSwitch (NVLS) and Tomahawk Ultra switches reduce in the network."""
    reducing = {n for n in catalog.names("switch") if catalog.switch(n).in_network_reduction}
    assert reducing == {"nvswitch-gen3", "nvswitch-gen4", "tomahawk-ultra"}


def test_switch_port_configs_fit_capacity(catalog: Catalog) -> None:
    """No listed port configuration of an electrical switch exceeds its capacity."""
    for name in catalog.names("switch"):
        sw = catalog.switch(name)
        if sw.capacity_Tbps is None:
            continue
        for cfg in sw.port_configs:
            assert cfg.ports * cfg.rate_Gbps <= sw.capacity_Tbps * 1e3 * (1 + 1e-9)


def test_default_catalog_is_cached() -> None:
    """Loading the default catalog twice returns the same object (read once)."""
    assert load_catalog() is load_catalog()


def test_earlier_folder_overrides_a_preset(write_presets) -> None:
    """A preset in an extra folder replaces the repository preset of the same name only."""
    folder = write_presets(
        "links.yaml",
        "nvlink4:\n  kind: scale_up\n  lane_rate_Gbps: 100\n  lanes: 4\n  medium: pcb\n",
    )
    cat = load_catalog(extra_dirs=[folder])
    assert cat.link("nvlink4").lanes == 4
    assert cat.link("nvlink5").lanes == 2
    assert cat.source_of("link", "nvlink4").parent == folder


def test_preset_path_env_overrides(tmp_path, monkeypatch) -> None:
    """OASSIM_PRESET_PATH folders are searched before the repository's presets."""
    d = tmp_path / "topologies" / "hardware"
    d.mkdir(parents=True)
    (d / "switches.yaml").write_text(
        "my-switch:\n  port_configs: [{ports: 8, rate_Gbps: 100}]\n", encoding="utf-8"
    )
    monkeypatch.setenv("OASSIM_PRESET_PATH", str(tmp_path))
    cat = load_catalog()
    assert cat.switch("my-switch").radix == 8
    assert "tomahawk-5" in cat.names("switch")
