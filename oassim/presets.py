"""Where preset YAML files are found.

Presets are plain YAML files a user copies and edits (docs/architecture.md). They live in the
repository's ``topologies/`` and ``workloads/`` folders; ``OASSIM_PRESET_PATH`` (a list of
folders separated by ``os.pathsep``) is searched first, so a user can keep their own.
"""

from __future__ import annotations

import os
from pathlib import Path

from oassim.errors import SpecError

__all__ = ["preset_roots", "preset_dirs", "find_preset", "list_presets"]


def preset_roots() -> list[Path]:
    """Folders that hold ``topologies/``, ``workloads/``... in search order."""
    roots = [Path(p) for p in os.environ.get("OASSIM_PRESET_PATH", "").split(os.pathsep) if p]
    roots.append(Path(__file__).resolve().parents[1])
    return roots


def preset_dirs(kind: str) -> list[Path]:
    """Existing preset folders for ``kind`` (e.g. ``"topologies"``, ``"topologies/hardware"``)."""
    return [r / kind for r in preset_roots() if (r / kind).is_dir()]


def list_presets(kind: str) -> list[str]:
    """Names (file stems) of the presets of ``kind``, sorted."""
    names = {p.stem for d in preset_dirs(kind) for p in d.glob("*.yaml")}
    return sorted(names)


def find_preset(kind: str, name: str) -> Path:
    """Path of preset ``name`` of ``kind``; a :class:`SpecError` lists the known names."""
    for d in preset_dirs(kind):
        p = d / f"{name}.yaml"
        if p.is_file():
            return p
    known = ", ".join(list_presets(kind)) or "none"
    raise SpecError(f"unknown {kind} preset '{name}' (known: {known})")
