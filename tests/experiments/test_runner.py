"""The composition root: scenario -> cluster -> fabric -> plan -> simulate -> Results."""

from __future__ import annotations

import dataclasses
import os

import pytest

import oassim
from oassim.errors import SpecError
from oassim.experiments import Scenario, git_state, load_scenario, run
from oassim.experiments import runner as runner_mod
from tests.experiments.conftest import SCENARIOS


def test_run_wires_the_layers_and_records_provenance(fake_sim, scenario_file):
    """run(file) builds the cluster, compiles the plan, simulates it and adds provenance."""
    path = scenario_file()
    res = run(path)
    assert res.plan.n_accelerators == 32 and res.plan.parallelism.pp == 2
    assert fake_sim == [{"network": "analytical", "seed": 3, "full_rank": False}]
    prov = res.provenance
    assert prov["version"] == oassim.__version__ and prov["seed"] == 3
    assert set(prov["git"]) == {"commit", "dirty"}
    assert set(prov["wall_s"]) == {"load", "build", "plan", "simulate", "total"}
    assert all(v >= 0 for v in prov["wall_s"].values())
    assert prov["source"] == str(path)
    assert prov["cluster"]["name"] == "dgx-h100-superpod" and prov["cluster"]["accelerators_built"] == 32
    assert prov["simulate_s"] == 0.0  # the scheduler's own provenance is kept


def test_network_seed_and_full_rank_reach_the_simulator(fake_sim, small):
    """Arguments override the scenario's network; the seed and full_rank are passed on."""
    res = run(small, network="flow", full_rank=True, overrides=["seed=7"])
    assert fake_sim[-1] == {"network": "flow", "seed": 7, "full_rank": True}
    assert res.scenario["network"] == "flow" and res.provenance["overrides"] == ["seed=7"]
    with pytest.raises(SpecError, match="argument --network: unknown network 'packet'"):
        run(small, network="packet")


def test_resolved_scenario_is_a_valid_scenario_that_reruns(fake_sim, small):
    """Results.scenario is the scenario as simulated and runs again to the same result."""
    small["workload"]["model"] = "llama3-8b"
    small["workload"]["seq_len"] = 1024
    small["parallelism"] = {"tp": 8, "pp": 1, "dp": 4}
    first = run(small)
    sc = first.scenario
    assert sc["workload"]["model"]["name"] == "llama3-8b" and sc["workload"]["model"]["layers"] == 32
    assert sc["parallelism"]["zero"] == 0 and sc["cluster"]["accelerators"] == 32
    Scenario.model_validate(sc)
    again = run(sc)
    assert again.iteration_time_s == first.iteration_time_s


def test_oassim_run_is_the_runner():
    """oassim.run is the composition root (loaded lazily)."""
    assert oassim.run is run
    assert "run" in oassim.__all__
    with pytest.raises(AttributeError):
        oassim.no_such_thing  # noqa: B018


def test_job_may_use_fewer_accelerators_than_whole_supernodes_hold(fake_sim, small):
    """On 72-GPU racks, 144 + 0 requested builds 2 racks; a 64-GPU job runs on ranks 0..63."""
    small["cluster"] = {"preset": "gb200-nvl72", "accelerators": 64}
    small["parallelism"] = {"tp": 8, "pp": 2, "dp": 4, "sp": True}
    res = run(small)
    assert res.provenance["cluster"]["accelerators_built"] == 72
    assert res.plan.n_accelerators == 64 and res.scenario["cluster"]["accelerators"] == 64


def test_git_state_never_fails_without_git(monkeypatch, tmp_path):
    """Outside a checkout, or with no git on PATH, the git fields are None."""
    assert git_state(tmp_path) == {"commit": None, "dirty": None}
    monkeypatch.setenv("PATH", str(tmp_path))
    assert git_state() == {"commit": None, "dirty": None}


def test_git_state_of_this_checkout():
    """In the repository, the commit is 40 hex digits."""
    state = git_state()
    if state["commit"] is None:
        pytest.skip("not a git checkout")
    assert len(state["commit"]) == 40 and isinstance(state["dirty"], bool)


IMPOSSIBLE = [
    (["parallelism.dp=4"], "parallelism: tp*pp*dp*cp = 2*2*4*1 = 16 but the job has 32 accelerators"),
    (["parallelism.tp=3", "cluster.accelerators=48"], "parallelism.tp: tp 3 does not divide the 16 attention heads"),
    (["parallelism.pp=8", "parallelism.dp=2"], "parallelism.pp: layers 4 are not divisible by pp = 8"),
    (["workload.model.experts=8", "workload.model.top_k=2", "parallelism.tp=1", "parallelism.dp=16",
      "parallelism.ep=16"], "parallelism.ep: ep 16 puts fewer than one of the 8 experts on each rank"),
    (["workload.global_batch=20"], "workload.global_batch: global_batch 20 is not divisible by micro_batch*dp"),
    (["workload.model.hidden=65536"], "parallelism: needs"),
]


@pytest.mark.parametrize("overrides,message", IMPOSSIBLE)
def test_impossible_jobs_name_the_scenario_file_and_key(fake_sim, scenario_file, overrides, message):
    """The workload layer's refusals reach the user located in the scenario file."""
    path = scenario_file()
    with pytest.raises(SpecError) as err:
        run(path, overrides=overrides)
    assert str(err.value).startswith(f"{path}: ")
    assert message in str(err.value)


def test_unknown_model_preset_names_the_key_and_known_presets(fake_sim, scenario_file):
    """An unknown model preset lists the known ones."""
    path = scenario_file(lambda d: d["workload"].__setitem__("model", "llama9"))
    with pytest.raises(SpecError, match=r"unknown workloads preset 'llama9' \(known: .*llama3-8b"):
        run(path)


def _no_sim(plan, fabric, **kw):
    """Compile only: a Results-shaped stand-in with empty frames."""
    import pandas as pd

    from oassim.scheduler.results import Results

    empty = pd.DataFrame()
    return Results({}, plan, 1.0, empty, empty, empty, empty, kw["network"], {})


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_shipped_scenarios_compile(monkeypatch, path):
    """Every experiments/*.yaml builds its cluster and compiles a plan that fits in memory."""
    monkeypatch.setattr(runner_mod, "_simulator", lambda: _no_sim)
    res = run(path)
    sc, _ = load_scenario(path)
    assert res.plan.n_accelerators == sc.cluster.accelerators
    assert res.plan.memory.fits
    assert res.provenance["cluster"]["accelerators_built"] >= sc.cluster.accelerators


def test_run_takes_a_scenario_object(fake_sim, small):
    """run() accepts a validated Scenario as well as a path or mapping."""
    sc, _ = load_scenario(small)
    res = run(sc, overrides=["parallelism.sp=false"])
    assert res.plan.parallelism.sp is False
    assert dataclasses.is_dataclass(res)
    assert os.path.basename(str(res.provenance["source"])) == "None"


def test_unknown_cluster_preset_and_missing_cluster_file_name_the_scenario_key(fake_sim, scenario_file):
    """A bad cluster reference is reported at cluster.preset / cluster.file of the scenario."""
    path = scenario_file(lambda d: d["cluster"].__setitem__("preset", "dgx-h900"))
    with pytest.raises(SpecError, match=r"scenario.yaml: cluster.preset: unknown topologies preset 'dgx-h900' "
                                        r"\(known: .*dgx-h100-superpod"):
        run(path)
    path = scenario_file(lambda d: d.__setitem__("cluster", {"file": "mine.yaml"}))
    with pytest.raises(SpecError, match=r"scenario.yaml: cluster.file: file not found: .*mine.yaml"):
        run(path)
