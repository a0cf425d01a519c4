"""numba's cache of compiled kernels lives in a per-user cache folder, never in the package."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import oassim

_PROBE = (
    "import oassim, numba\n"
    "from oassim.topology._kernels import splitmix64\n"
    "import numpy as np; splitmix64(np.uint64(7))\n"
    "print(numba.config.CACHE_DIR)\n"
)


def _run(env_extra: dict[str, str], tmp_path: Path) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_CACHE_DIR", "XDG_CACHE_HOME")}
    env.update(env_extra)
    proc = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout.strip().splitlines()[-1]


def test_default_cache_is_per_user_not_the_package(tmp_path):
    """Without NUMBA_CACHE_DIR, kernels are cached under $XDG_CACHE_HOME/oassim/numba."""
    used = Path(_run({"XDG_CACHE_HOME": str(tmp_path / "xdg")}, tmp_path))
    assert used == tmp_path / "xdg" / "oassim" / "numba"
    cached = list(used.rglob("*.nbi"))
    assert cached, "no kernel index written to the per-user cache"
    package = Path(oassim.__file__).resolve().parent
    assert all(package not in p.resolve().parents for p in cached)


def test_numba_cache_dir_is_respected(tmp_path):
    """A NUMBA_CACHE_DIR set by the user wins over the default."""
    used = Path(_run({"NUMBA_CACHE_DIR": str(tmp_path / "mine")}, tmp_path))
    assert used == tmp_path / "mine"
    assert list(used.rglob("*.nbi"))
