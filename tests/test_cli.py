"""The command line: bad input is one clear line with exit status 2, never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oassim.cli import main
from tests.conftest import BASE_CLUSTER


def _run(argv, capsys):
    code = main(argv)
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def _set(path: str, value):
    def edit(d):
        keys = path.split(".")
        for k in keys[:-1]:
            d = d[k]
        d[keys[-1]] = value

    return edit


def _del(path: str):
    def edit(d):
        keys = path.split(".")
        for k in keys[:-1]:
            d = d[k]
        del d[keys[-1]]

    return edit


BAD = [
    # (edit, words the one-line message must contain)
    (_set("acelerators", 32), ["acelerators", "unknown key", "did you mean accelerators"]),
    (
        _set("scale_out.links.host.technology",
             {"kind": "scale_out", "lane_rate": 100, "lanes": 4, "medium": "optical"}),
        ["scale_out.links.host.technology", "lane_rate", "a unit is required", "lane_rate_Gbps"],
    ),
    (_set("accelerators", "many"), ["accelerators", "integer"]),
    (
        _set("scale_out.links.host.technology",
             {"kind": "scale_out", "lane_rate_Gbps": -100, "lanes": 4, "medium": "optical"}),
        ["scale_out.links.host.technology.lane_rate_Gbps", "greater than 0"],
    ),
    (_set("scale_out.nic", {"rate_Gbps": 0}), ["scale_out.nic.rate_Gbps", "greater than 0"]),
    (_set("supernode.spec.links_per_accelerator", 20), ["supernode.spec", "20 scale-up links", "18 scale-up ports"]),
    (_set("accelerator", "h900"), ["accelerator", "h900", "h100-sxm"]),
    (_set("supernode.family", "hypercube"), ["supernode.family", "hypercube", "allowed", "fat_tree"]),
    (_del("scale_out.links.leaf_spine"), ["scale_out.links", "missing link role 'leaf_spine'"]),
    (_set("supernode.switches.spine", "quantum-2"),
     ["supernode.switches.spine", "unknown switch role 'spine'", "uses: scaleup"]),
    (_set("scale_out.spec", {"tiers": 2}), ["scale_out.spec"]),  # too many endpoints for 2 tiers is set below
    (_del("scale_out"), ["scale_out", "no scale_out fabric"]),
    (_set("supernode.spec.size", -8), ["supernode.spec.size", "greater than or equal to 2"]),
    (_set("scale_out.links.host.module", "osfp-9000g"), ["scale_out.links.host.module", "osfp-9000g"]),
    (_set("supernode.switches.scaleup", {"switch": "quantum-2", "rate_Gbps": 123}),
     ["supernode.switches.scaleup.rate_Gbps", "no 123 Gb/s ports"]),
]


@pytest.mark.parametrize("edit,words", BAD)
def test_bad_cluster_file_is_one_line_with_exit_2(edit, words, cluster_file, capsys):
    """A malformed cluster file ends with one line naming the file, the key and what is allowed."""
    path = cluster_file(edit)
    if words == ["scale_out.spec"]:  # 2 tiers of radix-64 hold 2,048 endpoints: ask for more
        d = yaml.safe_load(path.read_text())
        d["accelerators"] = 4096
        path.write_text(yaml.safe_dump(d))
        words = ["scale_out.spec", "2 tiers of radix-64 switches hold at most 2,048 endpoints; asked 4,096"]
    code, out, err = _run(["topo", "info", str(path)], capsys)
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("oassim: error: ") and str(path) in lines[0]
    for w in words:
        assert w in lines[0], (w, lines[0])


@pytest.mark.parametrize(
    "text,words",
    [
        ("name: x\naccelerators: [1, 2\n", ["YAML syntax error", "line"]),
        ("- just\n- a list\n", ["expected a mapping"]),
        ("", ["required key is missing"]),
    ],
)
def test_unparseable_files_are_one_line(text, words, cluster_file, capsys):
    """Syntax errors and non-mapping documents are reported in one line with exit 2."""
    path = cluster_file(text=text)
    code, _, err = _run(["topo", "check", str(path)], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
    for w in words:
        assert w in err


def test_missing_file_and_unknown_preset(capsys, tmp_path):
    """A path that does not exist and an unknown preset name are one-line errors."""
    code, _, err = _run(["topo", "info", str(tmp_path / "nope.yaml")], capsys)
    assert code == 2 and "file not found" in err and "nope.yaml" in err
    code, _, err = _run(["topo", "info", "dgx-z100-superpod"], capsys)
    assert code == 2 and "unknown topologies preset 'dgx-z100-superpod'" in err and "gb200-nvl72" in err


@pytest.mark.parametrize("argv", [["topo", "info", "gb200-nvl72", "-n", "0"],
                                  ["topo", "info", "gb200-nvl72", "-n", "lots"], ["topo", "frobnicate"]])
def test_bad_arguments_exit_2_in_one_line(argv, capsys):
    """Bad command-line arguments exit with status 2 and one line naming the problem."""
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("oassim: error:")


def test_info_json_reports_the_metrics(capsys):
    """`topo info --json` gives counts, bandwidths, bisection, diameter and power for a preset."""
    code, out, _ = _run(["topo", "info", "dgx-h100-superpod", "-n", "1024", "--json"], capsys)
    assert code == 0
    info = json.loads(out)
    assert info["accelerators"] == 1024
    assert info["scaleup_bandwidth_per_accelerator_GBps"] == pytest.approx(450)
    assert info["scaleout_bandwidth_per_accelerator_GBps"] == pytest.approx(50)
    assert info["supernode_bisection_GBps"] == pytest.approx(4 * 450)
    assert info["cluster_bisection_GBps"] == pytest.approx(512 * 50)  # non-blocking: half the NICs
    assert info["diameter_hops"] == 6
    tiers = {r["tier"]: r["count"] for r in info["nodes"]}
    assert tiers["leaf"] == 32 and tiers["spine"] == 16


def test_info_text_says_what_is_unknown(capsys):
    """The text report names parts without a published power figure or price."""
    code, out, _ = _run(["topo", "info", "gb200-nvl72", "-n", "144"], capsys)
    assert code == 0
    assert "no published power figure for" in out and "nvswitch-gen4" in out
    assert "capital cost      unknown" in out


def test_console_script_prints_no_traceback(cluster_file):
    """The installed `oassim` command itself exits 2 with one stderr line on a bad file."""
    path = cluster_file(_set("accelerators", -5))
    proc = subprocess.run(
        [sys.executable, "-m", "oassim.cli", "topo", "info", str(path)], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


# --- property-based: whatever a user writes, the answer is a result or one clear line -------

_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.lists(st.integers(-5, 5), max_size=3),
    st.dictionaries(st.text(max_size=6), st.integers(-3, 3), max_size=2),
)


def _paths(d, prefix=()):
    for k, v in d.items():
        yield prefix + (k,)
        if isinstance(v, dict):
            yield from _paths(v, prefix + (k,))


_ALL_PATHS = list(_paths(BASE_CLUSTER))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(_ALL_PATHS), value=_values, add_key=st.booleans())
def test_any_mutated_cluster_file_gives_a_result_or_one_line(path, value, add_key, tmp_path_factory, capsys):
    """Random edits of a valid cluster file never raise: exit 0/1, or 2 with one stderr line."""
    import copy

    d = copy.deepcopy(BASE_CLUSTER)
    node = d
    for k in path[:-1]:
        node = node[k]
    if add_key and isinstance(node.get(path[-1]), dict):
        node[path[-1]]["zz_extra"] = value
    else:
        node[path[-1]] = value
    p = Path(tmp_path_factory.mktemp("mut")) / "c.yaml"
    p.write_text(yaml.safe_dump(d))
    code = main(["topo", "check", str(p)])
    err = capsys.readouterr().err
    assert code in (0, 1, 2)
    if code == 2:
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


# ---------------------------------------------------------------- run --trace-detail, topo reports
def test_run_trace_detail_chooses_the_level_of_detail(tmp_path, capsys):
    """`run --trace` writes the aggregated (phases) trace by default and one event per op with
    `--trace-detail ops`: the default has at least 10x fewer complete events."""
    from tests.analysis.test_trace import SMALL_JOB

    scenario = tmp_path / "s.yaml"
    scenario.write_text(yaml.safe_dump(SMALL_JOB))
    counts = {}
    for extra, name in (([], "phases"), (["--trace-detail", "ops"], "ops")):
        out = tmp_path / f"{name}.json"
        code, _, err = _run(["run", str(scenario), "--trace", str(out), *extra], capsys)
        assert code == 0, err
        doc = json.loads(out.read_text())
        assert doc["otherData"]["detail"] == name
        counts[name] = sum(e["ph"] == "X" for e in doc["traceEvents"])
    assert 10 * counts["phases"] <= counts["ops"]


def test_topo_list_pluralises_switches(capsys):
    """`topo list` writes "switches:", never "switchs:"."""
    code, out, _ = _run(["topo", "list"], capsys)
    assert code == 0
    assert "switches:" in out and "switchs" not in out


@pytest.mark.parametrize("preset", ["dgx-a100-superpod", "dgx-h100-superpod", "gb200-nvl72", "cloudmatrix384",
                                    "ub-mesh", "tpu-v5p-pod"])
def test_topo_check_and_info_report_the_same_link_count(preset, capsys):
    """`topo check` and `topo info` (text and JSON) give the same number of links, both saying
    what they count, and it is the sum of the per-tier cable counts of the info table."""
    import re

    code, check, _ = _run(["topo", "check", preset, "-n", "64"], capsys)
    assert code == 0
    m = re.search(r"([\d,]+) links: (physical links, each bidirectional link counted once)", check)
    assert m, check
    _, text, _ = _run(["topo", "info", preset, "-n", "64"], capsys)
    _, js, _ = _run(["topo", "info", preset, "-n", "64", "--json"], capsys)
    info = json.loads(js)
    n = int(m.group(1).replace(",", ""))
    assert n == info["links_total"] == sum(r["cables"] for r in info["links"])
    assert re.search(rf"all tiers\s+{info['links_total']:,}\s+\({m.group(2)}\)", text)


@pytest.mark.parametrize("network,loaded", [("analytical", ""), ("flow", "numba")])
def test_run_imports_only_what_its_network_model_uses(network: str, loaded: str, tmp_path):
    """An analytical ``oassim run`` loads neither networkx nor numba (no graph, no JIT kernels);
    the flow model loads numba when it first solves."""
    import os

    from tests.analysis.test_trace import SMALL_JOB

    scenario = tmp_path / "s.yaml"
    scenario.write_text(yaml.safe_dump({**SMALL_JOB, "network": network}))
    code = ("import sys, io, contextlib; from oassim.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            f"    rc = main(['run', {str(scenario)!r}])\n"
            "print(rc, ','.join(m for m in ('networkx', 'numba') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env=dict(os.environ), timeout=600).stdout.strip()
    assert out == f"0 {loaded}".strip()
