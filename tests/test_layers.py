"""The package keeps the dependency order of docs/architecture.md (import-linter contract in setup.cfg)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_import_layers_follow_design_order():
    """No layer imports a layer above it (hardware < topology < network < ... < cli)."""
    exe = shutil.which("lint-imports")
    if exe is None:
        pytest.fail("lint-imports is missing: install the test extras (pip install -e '.[test]')")
    proc = subprocess.run([exe, "--config", str(ROOT / "setup.cfg")], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 kept, 0 broken" in proc.stdout


def test_importing_the_package_does_no_work():
    """`import oassim` loads no heavy dependency (no work at import, docs/architecture.md, conventions)."""
    code = ("import sys, oassim; "
            "print(','.join(m for m in ('numba', 'networkx', 'pandas', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""
