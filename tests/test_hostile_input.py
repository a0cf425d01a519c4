"""Hostile input: preset names that are paths, files that are not specs, YAML that is valid
text but not a valid document (tags, aliases, nesting, huge scalars), duplicate keys and errors
blamed on the wrong source. Every case ends in one bounded line with exit status 2."""

from __future__ import annotations

import copy
import os
import re
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oassim.cli import main
from oassim.errors import MAX_LINE, SpecError
from oassim.experiments.scenario import load_scenario
from oassim.presets import find_preset, preset_dirs
from oassim.specio import MAX_SPEC_BYTES, read_yaml
from oassim.topology.cluster_spec import load_cluster
from oassim.workload import resolve_model
from tests.conftest import BASE_CLUSTER
from tests.experiments import fakesim
from tests.experiments.conftest import SMALL

FUZZ = Path(__file__).parent / "data" / "fuzz"
# The longest stderr line allowed: "oassim: error: " and a message of at most MAX_LINE characters.
LONGEST = len("oassim: error: ") + MAX_LINE
SECRET = "SECRET"  # every corpus file hides this word where a careless message would echo it


@pytest.fixture
def fake_sim(monkeypatch):
    """The naive replay of ``fakesim`` in place of the scheduler: a scenario that loads runs in ms."""
    from oassim.experiments import runner

    monkeypatch.setattr(runner, "_simulator", lambda: fakesim.fake_simulate)


def _cli(argv: list[str], capsys) -> tuple[int, str, str]:
    """Run the CLI in-process; returns (status, stdout, stderr) whether it returned or exited."""
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse usage errors
        code = exc.code
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def _one_error_line(code: int, err: str) -> str:
    assert code == 2, err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("oassim: error: ")
    assert len(lines[0]) <= LONGEST, len(lines[0])
    return lines[0]


def _write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


# -- the corpus --------------------------------------------------------------------------------

# file -> words its one error line must contain (besides the file's name)
CORPUS = {
    "cluster-python-tag.yaml": ["accelerator", "tag !!python/object/apply:os.system is not allowed", "line 3"],
    "cluster-custom-tag.yaml": ["name", "tag !mytag is not allowed"],
    "cluster-binary-tag.yaml": ["notes", "tag !!binary is not allowed"],
    "cluster-set-tag.yaml": ["sources", "tag !!set is not allowed"],
    "cluster-int-tag.yaml": ["accelerators", "not a valid int", "line 2"],
    "cluster-bad-date.yaml": ["notes", "not a valid date"],
    "cluster-long-int.yaml": ["accelerators", "more than 4,300 digits"],
    "cluster-deep.yaml": ["expected", "nested deeper than 64 levels"],
    "cluster-alias-bomb.yaml": ["aliases expand to more than"],
    "cluster-recursive-alias.yaml": ["sources", "alias refers to the node that holds it"],
    "cluster-undefined-alias.yaml": ["undefined alias"],
    "cluster-multi-doc.yaml": ["single document"],
    "cluster-duplicate-key.yaml": ["accelerators: duplicate key", "line 36"],
    "cluster-duplicate-nested.yaml": ["supernode.spec.size: duplicate key", "line 8"],
    "cluster-shadow.yaml": ["not a spec file"],
    "cluster-private-key.yaml": ["not a spec file"],
    "cluster-list.yaml": ["not a spec file", "expected a mapping"],
    "cluster-nul.yaml": ["not a spec file"],
    "cluster-latin1.yaml": ["not a spec file", "not UTF-8"],
    "cluster-syntax-secret.yaml": ["YAML syntax error at line"],
    "cluster-long-value.yaml": ["scale_out.rails", "a text of 5,000 characters"],
    "cluster-long-key.yaml": ["unknown key 'kkkk"],
    "scenario-preset-traversal.yaml": ["cluster.preset", "not a preset name"],
    "scenario-preset-extension.yaml": ["cluster.preset", "not a preset name"],
    "scenario-preset-absolute.yaml": ["cluster.preset", "not a preset name"],
    "scenario-preset-long.yaml": ["cluster.preset", "not a preset name"],
    "scenario-model-traversal.yaml": ["workload.model", "not a preset name"],
    "scenario-duplicate-key.yaml": ["parallelism: duplicate key", "line 28"],
    "scenario-alias-bomb.yaml": ["aliases expand to more than"],
}


def test_corpus_is_complete():
    """Every corpus file has its expectation (a new file is not silently skipped)."""
    assert sorted(p.name for p in FUZZ.iterdir()) == sorted(CORPUS)


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_corpus_file_is_one_bounded_line_naming_the_file(name, capsys, fake_sim):
    """Each malformed file: exit 2, one line naming the file and the problem, nothing of its content."""
    path = FUZZ / name
    argv = ["topo", "check", str(path), "-n", "16"] if name.startswith("cluster-") else ["run", str(path)]
    code, out, err = _cli(argv, capsys)
    line = _one_error_line(code, err)
    assert out == ""
    assert str(path) in line
    assert SECRET not in line
    for w in CORPUS[name]:
        assert w in line, (w, line)


# -- 1. preset names never leave the preset folders -------------------------------------------


def test_preset_name_cannot_climb_out_of_topologies(tmp_path):
    """`../../x` as a cluster reaches no file outside topologies/ (today it loaded any YAML)."""
    outside = tmp_path / "outside.yaml"
    outside.write_text(yaml.safe_dump(BASE_CLUSTER))
    topologies = preset_dirs("topologies")[-1]
    climb = os.path.relpath(outside.with_suffix(""), topologies)
    assert climb.startswith("..")
    with pytest.raises(SpecError, match="file not found"):
        load_cluster(climb)  # holds a '/': a path, and no such file (no .yaml is added to a path)
    with pytest.raises(SpecError, match="not a preset name"):
        find_preset("topologies", climb)
    with pytest.raises(SpecError, match="not a preset name"):
        resolve_model("../" + climb)


@pytest.mark.parametrize("ref", ["gb200-nvl72.yaml", "gb200-nvl72.yml", "..", "GB200", "a" * 300, "x" * 5000],
                         ids=["yaml", "yml", "dotdot", "capitals", "300-chars", "5000-chars"])
def test_a_preset_name_is_a_name(ref, capsys):
    """A preset name with an extension, `..`, capitals or over 255 characters is one line."""
    code, _, err = _cli(["topo", "info", ref], capsys)
    line = _one_error_line(code, err)
    assert "file not found" in line or "not a preset name" in line


def test_scenario_preset_that_is_a_path_is_refused(tmp_path, fake_sim):
    """`cluster: {preset: /abs/file.yaml}` is refused at cluster.preset, though the file exists."""
    cluster = tmp_path / "c.yaml"
    cluster.write_text(yaml.safe_dump(BASE_CLUSTER))
    sc = copy.deepcopy(SMALL)
    sc["cluster"]["preset"] = str(cluster)
    with pytest.raises(SpecError, match=r"cluster\.preset: not a preset name"):
        load_scenario(sc)
    sc["cluster"] = {"file": str(cluster), "accelerators": 32}
    assert load_scenario(sc)[0].cluster.ref == str(cluster)  # as a file it is fine


def test_bare_file_name_of_a_cluster_file_is_still_a_path(tmp_path, monkeypatch):
    """`cluster: {file: mycluster}` (no folder, no extension) is read as that file, not a preset."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mycluster").write_text(yaml.safe_dump(BASE_CLUSTER))
    sc = copy.deepcopy(SMALL)
    sc["cluster"] = {"file": "mycluster", "accelerators": 32}
    assert load_cluster(load_scenario(sc)[0].cluster.ref).spec.name == BASE_CLUSTER["name"]


def test_preset_path_environment_still_works(tmp_path, monkeypatch):
    """A preset in an OASSIM_PRESET_PATH folder is found by name before the shipped ones."""
    (tmp_path / "topologies").mkdir()
    mine = {**copy.deepcopy(BASE_CLUSTER), "name": "mine"}
    (tmp_path / "topologies" / "dgx-h100-superpod.yaml").write_text(yaml.safe_dump(mine))
    monkeypatch.setenv("OASSIM_PRESET_PATH", str(tmp_path))
    assert load_cluster("dgx-h100-superpod").spec.name == "mine"


# -- 2. errors quote no content of files that are not specs ----------------------------------


def test_etc_passwd_like_file_is_not_echoed(tmp_path, capsys):
    """A file of `user:hash:...` lines is "not a spec file", its lines never printed."""
    p = _write(tmp_path, "shadow", "root:$6$SECRETsalt:19000:0:99999:7:::\nbin:*:19000:0:99999:7:::\n")
    line = _one_error_line(*_cli(["topo", "info", str(p)], capsys)[::2])
    assert "not a spec file" in line and SECRET not in line and "19000" not in line


def test_syntax_error_does_not_print_the_offending_line(tmp_path, capsys):
    """A YAML syntax error names line and column, never the text of the line."""
    p = _write(tmp_path, "bad.yaml", "name: x\nnotes: {SECRET: [1, 2}\n")
    line = _one_error_line(*_cli(["topo", "info", str(p)], capsys)[::2])
    assert "line 2" in line and SECRET not in line


def test_values_are_described_not_echoed_when_long(tmp_path, capsys):
    """A 5,000-character value is named by its size, not printed."""
    p = _write(tmp_path, "c.yaml", yaml.safe_dump({**BASE_CLUSTER, "accelerators": "9" * 5000 + "x"}))
    line = _one_error_line(*_cli(["topo", "info", str(p)], capsys)[::2])
    assert "a text of 5,001 characters" in line and "9999999999" not in line


# -- 3. YAML the parser accepts as text but not as a document ----------------------------------


def test_alias_bomb_is_refused_while_loading(tmp_path):
    """The 10-level "billion laughs" (10**10 values from a few hundred bytes) is refused by read_yaml."""
    text = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [{', '.join(['*' + p] * 10)}]\n" for p, c in zip("abcdefghi", "bcdefghij"))
    with pytest.raises(SpecError, match=r"aliases expand to more than [\d,]+ values"):
        read_yaml(_write(tmp_path, "bomb.yaml", text))


def test_oversized_file_is_refused_before_parsing(tmp_path):
    """A file over the spec size cap is one line saying so (its start is not even YAML)."""
    p = tmp_path / "big.yaml"
    with p.open("wb") as f:
        f.write(b"\t" * (MAX_SPEC_BYTES + 1))
    with pytest.raises(SpecError, match=r"not a spec file: larger than 16 MiB"):
        read_yaml(p)


@pytest.mark.parametrize("text,words", [
    ("name: !!int abc\n", ["name", "not a valid int", "line 1"]),
    ("name: !!float x\n", ["name", "not a valid float"]),
    ("name: 2024-13-45\n", ["name", "not a valid date"]),
    ("accelerators: " + "7" * 5000 + "\n", ["accelerators", "more than 4,300 digits"]),
    ("notes: " + "[" * 1000 + "]" * 1000 + "\n", ["notes", "nested deeper than 64 levels"]),
    ("notes: !!python/object/new:os.system [ls]\n", ["notes", "tag !!python/object/new:os.system is not allowed"]),
    ("notes: !!python/name:os.system\n", ["tag !!python/name:os.system is not allowed"]),
    ("sources: &s [a, *s]\n", ["sources", "alias refers to the node that holds it"]),
], ids=["int-tag", "float-tag", "bad-date", "5000-digits", "1000-deep", "python-object", "python-name", "recursive"])
def test_unreadable_values_are_one_line(text, words, tmp_path, capsys):
    """Values that break Python's constructors (int, date, int-str limit, recursion) are one line."""
    p = _write(tmp_path, "v.yaml", text)
    line = _one_error_line(*_cli(["topo", "check", str(p)], capsys)[::2])
    for w in words:
        assert w in line, (w, line)


@pytest.mark.parametrize("name", sorted(n for n in CORPUS if n.startswith("cluster-") and "latin1" not in n))
def test_pure_python_parser_refuses_the_same(name):
    """Without libyaml (the pure-Python parser) each corpus file is refused for the same reason."""
    from oassim import specio

    text = (FUZZ / name).read_text(encoding="utf-8")
    fast = slow = None
    try:
        specio.parse_yaml(text, source="f")
    except SpecError as exc:
        fast = exc.message.split(" at line")[0]
    try:
        specio._parse(specio._PySpecLoader, text, "f", None)
    except SpecError as exc:
        slow = exc.message.split(" at line")[0]
    if fast is None or "syntax" in fast or "not a spec file" in fast:  # parsers word syntax errors differently
        assert (fast is None) == (slow is None)
    else:
        assert slow == fast


def test_only_the_guarded_loader_reads_yaml():
    """No module of the package calls a YAML loader other than specio's (a safe one)."""
    root = Path(__file__).resolve().parents[1] / "oassim"
    risky = re.compile(r"yaml\.(load|full_load|unsafe_load|load_all|full_load_all|unsafe_load_all)\(|"
                       r"Loader=yaml\.(Loader|FullLoader|UnsafeLoader)")
    bad = [str(p) for p in root.rglob("*.py") if risky.search(p.read_text(encoding="utf-8"))]
    assert bad == []


# -- 4. duplicate keys ------------------------------------------------------------------------


def test_duplicate_key_names_file_key_path_and_line(tmp_path):
    """A second `accelerators:` is an error (today the last one silently won)."""
    text = yaml.safe_dump(BASE_CLUSTER, sort_keys=False)
    text = text.replace("    size: 8\n", "    size: 8\n    size: 72\n")
    p = _write(tmp_path, "dup.yaml", text)
    with pytest.raises(SpecError) as err:
        load_cluster(p)
    line_no = text.splitlines().index("    size: 72") + 1
    assert str(err.value).startswith(f"{p}: supernode.spec.size: duplicate key")
    assert f"line {line_no}," in str(err.value)


def test_merge_keys_are_not_duplicates(tmp_path):
    """YAML merge keys (`<<: *base`) are not counted as duplicate keys."""
    p = _write(tmp_path, "m.yaml", "a: &base {x: 1, y: 2}\nb:\n  <<: *base\n  y: 3\n")
    assert read_yaml(p) == {"a": {"x": 1, "y": 2}, "b": {"x": 1, "y": 3}}


# -- 5. errors blame the right source ------------------------------------------------------------


def test_bad_set_value_blames_the_argument(tmp_path, capsys, fake_sim):
    """`--set parallelism.tp=abc` blames argument --set, not the scenario file."""
    p = _write(tmp_path, "s.yaml", yaml.safe_dump(SMALL))
    line = _one_error_line(*_cli(["run", str(p), "--set", "parallelism.tp=abc"], capsys)[::2])
    assert line.startswith("oassim: error: argument --set: parallelism.tp:") and str(p) not in line
    line = _one_error_line(*_cli(["run", str(p), "--set", "cluster.accelerators=" + "[" * 200], capsys)[::2])
    assert line.startswith("oassim: error: argument --set: cluster.accelerators[0][0]") and "nested" in line


def test_error_in_preset_file_names_that_file(tmp_path, capsys, fake_sim, monkeypatch):
    """A syntax error in a cluster reached through cluster.preset or cluster.file names that file."""
    (tmp_path / "topologies").mkdir()
    broken = tmp_path / "topologies" / "broken.yaml"
    broken.write_text("name: broken\naccelerators: [1\n")
    monkeypatch.setenv("OASSIM_PRESET_PATH", str(tmp_path))
    for cluster in ({"preset": "broken"}, {"file": str(broken)}):
        p = _write(tmp_path, "s.yaml", yaml.safe_dump({**SMALL, "cluster": cluster}))
        line = _one_error_line(*_cli(["run", str(p)], capsys)[::2])
        assert line.startswith(f"oassim: error: {broken}: YAML syntax error at line"), line


def test_huge_accelerator_count_blames_the_argument(capsys):
    """`-n 10000000` blames -n/--accelerators, not the preset's `accelerators` key."""
    line = _one_error_line(*_cli(["topo", "info", "dgx-h100-superpod", "-n", "10000000"], capsys)[::2])
    assert "argument --accelerators/-n" in line and "dgx-h100-superpod.yaml" not in line
    with pytest.raises(SpecError, match=r"^argument -n/--accelerators: "):
        load_cluster("dgx-h100-superpod", 10_000_000)


# -- 6. property-based: hostile edits of valid files ---------------------------------------------

_HOSTILE_VALUES = [
    "!!python/object/apply:os.system [ls]", "!!int abc", "!!binary aGk=", "!custom x", "2024-13-45",
    "9" * 5000, "x" * 5000, "[" * 300 + "]" * 300, "*undefined", "&a [1, *a]", "{a: 1, a: 2}", "-1e999",
    ".nan", "~", "[]", "{}", "'" + "a" * 400 + "'", "0x" + "f" * 400, "!!set {a}", "!!timestamp x",
    "true", "1.5", "-3", "0", "[a, b]", "{x: 1}", "../../../../etc/passwd", "/etc/shadow", "gb200-nvl72.yaml",
]


def _lines_of(doc: dict) -> list[str]:
    return yaml.safe_dump(doc, sort_keys=False, width=1000).splitlines()


def _mutate(lines: list[str], data) -> str:
    """One textual edit of a YAML file: drop a line, replace a value, duplicate a key, add an
    alias bomb or a deep value."""
    i = data.draw(st.integers(0, len(lines) - 1))
    kind = data.draw(st.sampled_from(["drop", "value", "duplicate", "bomb", "deep", "key"]))
    out = list(lines)
    head, sep, _ = out[i].partition(": ")
    if kind == "drop":
        del out[i]
    elif kind == "value" and sep:
        out[i] = f"{head}: {data.draw(st.sampled_from(_HOSTILE_VALUES))}"
    elif kind == "duplicate":
        out.insert(i + 1, out[i])
    elif kind == "bomb":
        out.append("notes: &l0 [x, x, x, x, x, x, x, x]")
        out += [f"z{k}: &l{k} [{', '.join([f'*l{k - 1}'] * 8)}]" for k in range(1, 9)]
    elif kind == "deep":
        out.append("expected: " + "{a: " * 200 + "1" + "}" * 200)
    else:
        out.insert(i + 1, f"{' ' * (len(head) - len(head.lstrip()))}{data.draw(st.text(min_size=1, max_size=300))}: 1")
    return "\n".join(out) + "\n"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), target=st.sampled_from(["cluster", "scenario"]))
def test_hostile_edits_give_a_result_or_one_bounded_line(data, target, tmp_path_factory, capsys, fake_sim):
    """Any hostile edit of a valid cluster or scenario file: exit 0, 1 or 2; on 2 one line
    starting `oassim: error:`; no traceback and no stderr line over the bound."""
    small_cluster = {**copy.deepcopy(BASE_CLUSTER), "accelerators": 16}
    text = _mutate(_lines_of(small_cluster if target == "cluster" else SMALL), data)
    p = Path(tmp_path_factory.mktemp("hostile")) / "f.yaml"
    p.write_text(text, encoding="utf-8")
    argv = ["topo", "check", str(p)] if target == "cluster" else ["run", str(p), "--json"]
    code, _, err = _cli(argv, capsys)
    assert code in (0, 1, 2), err
    assert "Traceback" not in err
    assert all(len(line) <= LONGEST for line in err.splitlines())
    if code == 2:
        _one_error_line(code, err)
