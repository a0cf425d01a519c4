"""Shared fixtures: small cluster files written to a temporary folder."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

BASE_CLUSTER: dict[str, Any] = {
    "name": "test-cluster",
    "accelerators": 32,
    "accelerator": "h100-sxm",
    "supernode": {
        "family": "switched",
        "spec": {"size": 8, "switches": 4, "links_per_accelerator": 18},
        "links": {"scaleup": {"technology": "nvlink4"}},
        "switches": {"scaleup": "nvswitch-gen3"},
    },
    "scale_out": {
        "family": "fat_tree",
        "spec": {},
        "rails": 8,
        "links": {
            "host": {"technology": "ib-ndr", "module": "osfp-400g-sr4", "length_m": 20},
            "leaf_spine": {"technology": "ib-ndr", "module": "osfp-800g-2xdr4", "length_m": 100},
            "spine_core": {"technology": "ib-ndr", "module": "osfp-800g-2xdr4", "length_m": 100},
        },
        "switches": {"leaf": "quantum-2", "spine": "quantum-2", "core": "quantum-2"},
    },
}


@pytest.fixture
def cluster_file(tmp_path: Path) -> Callable[..., Path]:
    """Write BASE_CLUSTER, changed by ``edit(d)`` (in place), to a YAML file; return its path."""

    def make(edit: Callable[[dict], Any] | None = None, name: str = "cluster.yaml", text: str | None = None) -> Path:
        p = tmp_path / name
        if text is not None:
            p.write_text(text)
            return p
        d = copy.deepcopy(BASE_CLUSTER)
        if edit is not None:
            edit(d)
        p.write_text(yaml.safe_dump(d, sort_keys=False))
        return p

    return make
