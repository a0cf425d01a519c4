"""Scenario files: validation with one-line errors, ``--set`` overrides, the shipped scenarios."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from oassim.errors import SpecError
from oassim.experiments import Scenario, apply_overrides, load_scenario, parse_override
from tests.experiments.conftest import SCENARIOS


def _set(path: str, value):
    def edit(d):
        keys = path.split(".")
        for k in keys[:-1]:
            d = d[k]
        d[keys[-1]] = value

    return edit


def test_small_scenario_validates(small):
    """A well-formed mapping gives a Scenario with the parallelism and training keys."""
    sc, source = load_scenario(small)
    assert source is None
    assert sc.parallelism.tp == 2 and sc.parallelism.sp is True
    assert sc.workload.training().global_batch == 32
    assert sc.network == "analytical" and sc.seed == 3


BAD = [
    (_set("netwrk", "flow"), ["netwrk", "unknown key", "did you mean network"]),
    (_set("parallelism.tpp", 2), ["parallelism.tpp", "unknown key", "allowed", "pp, tp, vpp", "more, closest first"]),
    (_set("parallelism.tp", 0), ["parallelism.tp", "greater than 0"]),
    (_set("parallelism.zero", 5), ["parallelism.zero"]),
    (_set("workload.recompute", "some"), ["workload.recompute", "none", "selective", "full"]),
    (_set("workload.global_batch", "many"), ["workload.global_batch", "integer"]),
    (_set("workload.model.hidden", -1), ["workload.model.hidden", "greater than 0"]),
    (_set("workload.model.experts_count", 8), ["workload.model.experts_count", "unknown key"]),
    (_set("network", "packet"), ["network", "analytical", "flow"]),
    (_set("cluster", {"preset": "dgx-h100-superpod", "file": "x.yaml"}), ["cluster", "exactly one of preset"]),
    (_set("cluster.accelerators", -4), ["cluster.accelerators", "greater than 0"]),
]


@pytest.mark.parametrize("edit,words", BAD)
def test_bad_scenarios_are_one_line_errors_naming_file_and_key(scenario_file, edit, words):
    """Each bad key or value is one line naming the file, the key path and what is allowed."""
    path = scenario_file(edit)
    with pytest.raises(SpecError) as err:
        load_scenario(path)
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith(str(path))
    for w in words:
        assert w in msg


def test_missing_required_section(tmp_path):
    """A scenario without a workload says which key is missing."""
    p = tmp_path / "s.yaml"
    p.write_text("name: x\ncluster: {preset: dgx-h100-superpod}\n")
    with pytest.raises(SpecError, match=r"s.yaml: workload: required key is missing"):
        load_scenario(p)


def test_yaml_syntax_error_names_the_line(tmp_path):
    """A broken file is a one-line error with its line number."""
    p = tmp_path / "s.yaml"
    p.write_text("name: x\ncluster: {preset: [\n")
    with pytest.raises(SpecError, match="YAML syntax error at line"):
        load_scenario(p)


def test_parse_override_reads_yaml_scalars():
    """--set values are YAML scalars: ints, bools, strings, lists."""
    assert parse_override("parallelism.tp=4") == (["parallelism", "tp"], 4)
    assert parse_override("parallelism.sp=false") == (["parallelism", "sp"], False)
    assert parse_override("parallelism.order=tp-cp-ep-dp-pp") == (["parallelism", "order"], "tp-cp-ep-dp-pp")
    assert parse_override("parallelism.scaleup_dims=[tp, ep]")[1] == ["tp", "ep"]
    assert parse_override("cluster.accelerators=16_384")[1] == 16384
    for bad in ("parallelism.tp", "=4", "a..b=1", "parallelism.tp=[1"):
        with pytest.raises(SpecError, match="--set"):
            parse_override(bad)


def test_overrides_apply_before_validation(small):
    """--set edits nested keys and the result is validated like a file."""
    sc, _ = load_scenario(small, ["parallelism.tp=4", "parallelism.dp=4", "network=flow", "seed=9"])
    assert (sc.parallelism.tp, sc.parallelism.dp, sc.network, sc.seed) == (4, 4, "flow", 9)
    with pytest.raises(SpecError, match=r"parallelism.tp: Input should be greater than 0"):
        load_scenario(small, ["parallelism.tp=0"])


@pytest.mark.parametrize("override,words", [
    ("parallelism.tpp=4", ["--set: parallelism.tpp", "unknown key 'tpp'", "allowed at parallelism:", "tp, "]),
    ("worklaod.seq_len=4", ["unknown key 'worklaod'", "did you mean workload", "allowed at the top level"]),
    ("seed.value=4", ["'seed' is a value, not a section", "seed=VALUE"]),
    ("workload.model.lyers=4", ["workload.model.lyers", "did you mean layers", "allowed at workload.model"]),
])
def test_override_of_an_unknown_path_names_the_allowed_keys(small, override, words):
    """An override path that names no key lists the keys allowed at that level."""
    with pytest.raises(SpecError) as err:
        apply_overrides(small, [override])
    for w in words:
        assert w in str(err.value)


def test_override_inside_a_preset_model_inlines_it(small):
    """--set workload.model.layers edits a preset model: the preset becomes an inline mapping."""
    small["workload"]["model"] = "llama3-8b"
    sc, _ = load_scenario(small, ["workload.model.layers=8"])
    assert sc.workload.model["layers"] == 8
    assert sc.workload.model["name"] == "llama3-8b" and sc.workload.model["hidden"] == 4096


def test_cluster_file_is_relative_to_the_scenario(tmp_path, small):
    """A relative cluster.file is read from the scenario's folder, wherever the command runs."""
    sub = tmp_path / "study"
    sub.mkdir()
    (sub / "my-cluster.yaml").write_text("name: c\n")
    small["cluster"] = {"file": "my-cluster.yaml", "accelerators": 32}
    p = sub / "s.yaml"
    p.write_text(yaml.safe_dump(small))
    sc, _ = load_scenario(p)
    assert Path(sc.cluster.file) == sub / "my-cluster.yaml"


def test_scenario_round_trips_and_exports_a_schema(small):
    """A Scenario dumps to a mapping that validates again; its JSON Schema can be published."""
    sc, _ = load_scenario(small)
    again, _ = load_scenario(sc.model_dump(mode="json"))
    assert again == sc
    schema = Scenario.model_json_schema()
    assert {"cluster", "workload", "parallelism", "network", "seed"} <= set(schema["properties"])


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_shipped_scenarios_parse(path):
    """Every experiments/*.yaml is a valid scenario whose name is its file stem."""
    sc, _ = load_scenario(path)
    assert sc.name == path.stem
    assert sc.description
    assert sc.parallelism.tp * sc.parallelism.pp * sc.parallelism.dp * sc.parallelism.cp == sc.cluster.accelerators


def test_the_contract_scenarios_exist():
    """The four scenarios of issue 4 ship in experiments/."""
    assert {p.stem for p in SCENARIOS} >= {"llama3-405b-16k-h100", "gpt3-175b-3k-a100", "moe-2k-h800",
                                           "llama3-405b-gb200-nvl72"}


def test_moe_scenario_says_it_substitutes_h100_for_h800():
    """The H800 scenario states in its description and comments that it runs on H100."""
    p = next(p for p in SCENARIOS if p.stem == "moe-2k-h800")
    sc, _ = load_scenario(p)
    assert "H100" in sc.description and "H800" in sc.description
    assert "SUBSTITUTION" in p.read_text()
