"""The sweep store's lock file: gone after a sweep ends, harmless when a killed sweep left it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from oassim.errors import OassimError
from oassim.experiments.executors import run_sweep
from oassim.experiments.store import LOCK_FILE, ResultStore
from oassim.experiments.sweep import expand_sweep
from tests.experiments.conftest import SWEEP_BASE

SWEEP = {"name": "t", "base": SWEEP_BASE, "axes": {"parallelism.tp": [1, 2]},
         "derived": {"parallelism.dp": "accelerators // (tp * pp)"}}


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_a_finished_sweep_leaves_no_lock_file(tmp_path, fake_sim):
    """run_sweep that ends normally (and one that resumes a finished store) removes DIR/.lock."""
    out = tmp_path / "store"
    rep = run_sweep(SWEEP, out, workers=0, quiet=True)
    assert rep.ran == 2 and len(list((out / "points").glob("*.parquet"))) == 2
    assert not (out / LOCK_FILE).exists()
    run_sweep(SWEEP, out, workers=0, quiet=True)
    assert not (out / LOCK_FILE).exists()


@pytest.mark.parametrize("finished", [True, False], ids=["finished-store", "killed-before-sweep-yaml"])
def test_a_stale_lock_file_is_not_held_and_does_not_block(tmp_path, fake_sim, finished):
    """A .lock naming a dead pid (left by a SIGKILLed sweep) is reported as not held, and the next sweep
    runs, in a finished store or in a folder the killed sweep left with only its lock and points/."""
    out = tmp_path / "store"
    if finished:
        run_sweep(SWEEP, out, workers=0, quiet=True)
    else:
        (out / "points").mkdir(parents=True)
    (out / LOCK_FILE).write_text(f"{dead_pid()}\n")
    assert ResultStore.holder(out) is None
    rep = run_sweep(SWEEP, out, workers=0, quiet=True)
    assert rep.points == 2 and rep.reused + rep.ran == 2
    assert not (out / LOCK_FILE).exists()


def test_a_held_lock_names_its_holder(tmp_path):
    """While a store is open its holder's pid is reported and a second writer is refused naming it; after
    close() the lock file is gone and nobody holds it."""
    out = tmp_path / "store"
    record = expand_sweep(SWEEP).record()
    store = ResultStore.open(out, record)
    try:
        assert ResultStore.holder(out) == os.getpid()
        with pytest.raises(OassimError, match=rf"is in use by another oassim sweep \(pid {os.getpid()}\)"):
            ResultStore.open(out, record)
    finally:
        store.close()
    assert not (out / LOCK_FILE).exists() and ResultStore.holder(out) is None
    ResultStore.open(out, record).close()  # free again
