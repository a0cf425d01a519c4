"""The workload layer imports neither SimPy nor the network or collective layers (docs/architecture.md)."""

from __future__ import annotations

import subprocess
import sys


def test_workload_imports_no_simpy_network_or_collectives():
    """Importing oassim.workload (and compiling a plan) loads no simpy, oassim.network or
    oassim.collectives module."""
    code = (
        "import sys, oassim.workload as w\n"
        "w.compile_plan({'layers': 2, 'hidden': 64, 'ffn_hidden': 256, 'heads': 4, 'vocab': 128,"
        " 'seq_len': 32, 'activation': 'gelu'}, {}, 'a100-sxm', training={'global_batch': 2})\n"
        "bad = [m for m in sys.modules if m == 'simpy' or m.startswith(('simpy.', 'oassim.network',"
        " 'oassim.collectives', 'oassim.scheduler'))]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == ""
