"""The reliability catalog: every rate has a source, S09-derived rates match the shipped CSV, bad files fail."""

from __future__ import annotations

import csv
import math
import re

import pytest

from oassim.data import calibration_csv
from oassim.errors import SpecError
from oassim.reliability import COMPONENT_TYPES, load_rates, resolve_rates
from oassim.reliability.rates import cites

# Llama 3 54-day snapshot (calibration source S09): 1,296 h on 16,384 GPUs in 8-GPU hosts.
HOURS = 54 * 24
UNITS = {"accelerator": 16384, "host": 2048, "nic": 16384}


def _row_ids(source: str) -> list[str]:
    ids = []
    for a, b in re.findall(r"F(\d{4})(?:-F(\d{4}))?", source):
        ids += [f"F{i:04d}" for i in range(int(a), int(b or a) + 1)]
    return ids


def test_every_component_type_is_listed_and_every_rate_has_a_source():
    """The catalog names every component type; each rate is >= 0 with a non-empty source."""
    cat = load_rates()
    assert set(cat.components) == set(COMPONENT_TYPES)
    for entry in cat.components.values():
        for r in [*entry.rates.values(), *(x for v in entry.other_sources.values() for x in v)]:
            assert r.rate_FIT >= 0 and r.source


def test_s09_derived_rates_equal_the_csv_counts_over_the_exposure():
    """FIT = sum of the cited rows' counts / (units x 1,296 h) x 1e9, within 0.5 FIT (whole-FIT rounding)."""
    rows = {r["row_id"]: r for r in csv.DictReader(open(calibration_csv("failures"), newline=""))}
    cat = load_rates()
    checked = 0
    for comp, entry in cat.components.items():
        r = entry.rates.get("h100-sxm")
        if r is None:
            continue
        count = sum(float(rows[i]["count"]) for i in _row_ids(r.source))
        per = entry.per.split()[0]
        expected = count / (UNITS[per] * HOURS) * 1e9
        assert r.rate_FIT == pytest.approx(expected, abs=0.5), comp
        checked += 1
    assert checked == 7


def test_s27_network_rates_follow_the_monthly_percentages():
    """0.057 %/month per link and 0.051 %/month per switch (rows F0035, F0036) in FIT, within 0.1%."""
    rows = {r["row_id"]: r for r in csv.DictReader(open(calibration_csv("failures"), newline=""))}
    cat = load_rates()
    for comp, row in (("optical_link", "F0035"), ("switch", "F0036")):
        pct = float(rows[row]["pct"])
        assert cat.components[comp].rates["any"].rate_FIT == pytest.approx(pct / 100 / 730.5 * 1e9, rel=1e-3)


def test_generations_without_figures_stay_unset():
    """A GB200 cluster has no per-accelerator rate unless asked to borrow one; network rates apply to any."""
    cat = load_rates()
    own = resolve_rates(cat, "gb200")
    assert own["accelerator"].rate_FIT is None and own["optical_link"].rate_FIT == 780
    borrowed = resolve_rates(cat, "gb200", accelerator_rates="h100-sxm")
    assert borrowed["accelerator"].rate_FIT == 9231 and borrowed["accelerator"].key == "h100-sxm"
    assert own["copper_link"].rate_FIT is None and own["ocs"].rate_FIT is None


@pytest.mark.parametrize("text, words", [
    ("components:\n  nic:\n    per: nic\n    cause: host\n    rates:\n      any: {rate_FIT: -1, source: x}\n",
     ["components.nic.rates.any.rate_FIT", "greater than or equal to 0"]),
    ("components:\n  gpu:\n    per: x\n    cause: gpu\n", ["components"]),
    ("components:\n  nic:\n    per: nic\n    cause: host\n    rates:\n      any: {rate: 3, source: x}\n",
     ["rate"]),
])
def test_bad_catalog_is_one_line_naming_file_and_key(tmp_path, text, words):
    """A negative rate, an unknown component type or key: one SpecError line with the file and key path."""
    p = tmp_path / "rates.yaml"
    p.write_text(text)
    with pytest.raises(SpecError) as info:
        load_rates(p)
    msg = str(info.value)
    assert "\n" not in msg and str(p) in msg
    for w in words:
        assert w in msg


def test_leave_one_source_out_skips_every_figure_citing_the_source():
    """With S09 excluded no resolved rate cites S09; HBM falls back to the Delta figure, the rest unset."""
    cat = load_rates()
    loso = resolve_rates(cat, "h100-sxm", exclude_sources=("S09",))
    for r in loso.values():
        assert r.source is None or "S09" not in r.source
    assert loso["hbm"].rate_FIT == pytest.approx(1e9 / 88768, abs=0.5)
    assert loso["accelerator"].rate_FIT is None and loso["optical_link"].rate_FIT == 780
    both = resolve_rates(cat, "h100-sxm", exclude_sources=("S09", "S27"))
    assert both["switch"].rate_FIT == pytest.approx(-math.log(0.98) / (3 * 730.5) * 1e9, abs=1)
    assert both["optical_link"].rate_FIT is None
    assert resolve_rates(cat, "h100-sxm")["hbm"].rate_FIT == 3391  # the default is unchanged


def test_cites_matches_whole_ids_only():
    assert cites("calibration row F0002 (source S09)", "S09")
    assert not cites("calibration row F0002 (source S091)", "S09") and not cites("[S09]", "S09")


@pytest.mark.parametrize("gen", ["b200-sxm", "gb200", "mi300x", "ascend-910c", "tpu-v5p", "h200-sxm"])
def test_generations_with_no_published_rates_are_unset(gen):
    """No per-accelerator, host or NIC figure is filled for generations no source covers."""
    own = resolve_rates(load_rates(), gen)
    for comp in ("accelerator", "hbm", "software", "host", "host_maintenance", "nic"):
        assert own[comp].rate_FIT is None, (gen, comp)


def test_a100_memory_rate_is_the_delta_mtbe_and_the_rest_unset():
    """A100 HBM: 1e9 / 283,271 h (Delta per-GPU MTBE of memory errors), within 0.5 FIT; no other A100 part."""
    own = resolve_rates(load_rates(), "a100-sxm")
    assert own["hbm"].rate_FIT == pytest.approx(1e9 / 283271, abs=0.5) and "2503.11901" in own["hbm"].source
    assert own["accelerator"].rate_FIT is None and own["host"].rate_FIT is None
