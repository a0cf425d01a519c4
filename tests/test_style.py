"""The code keeps the flake8 rules of setup.cfg (line length 120, pyflakes, pycodestyle)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_flake8_is_clean():
    """flake8 over oassim/, tests/ and notebooks/ reports nothing."""
    try:
        import flake8  # noqa: F401
    except ImportError:
        pytest.fail("flake8 is missing: install the test extras (pip install -e '.[test]')")
    proc = subprocess.run([sys.executable, "-m", "flake8", "oassim", "tests", "notebooks"], cwd=ROOT,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
