"""Where preset YAML files are found, and the one rule that turns a reference into a file.

Presets are plain YAML files a user copies and edits (docs/architecture.md). They live in the
repository's ``topologies/`` and ``workloads/`` folders; ``OASSIM_PRESET_PATH`` (a list of
folders separated by ``os.pathsep``) is searched first, so a user can keep their own.

Why one resolver: a reference to a cluster or model reaches oassim from a command-line
argument, a scenario key or a ``--set`` override. A preset is a NAME (:data:`PRESET_NAME`: no
folder, no ``..``, no extension) looked up only inside the preset folders; a file is given as a
path. Without that split ``--cluster ../../../tmp/x`` or ``cluster: {preset: ../../x}`` read any
YAML on the machine. :func:`argument_file` applies the command-line rule, :func:`spec_file` the
rule of a spec key that takes a name or a path (``workload.model``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from oassim.errors import SpecError

__all__ = [
    "PRESET_NAME",
    "YAML_SUFFIXES",
    "preset_roots",
    "preset_dirs",
    "is_preset_name",
    "check_preset_name",
    "find_preset",
    "list_presets",
    "argument_file",
    "spec_file",
]

# A preset name: a file stem of the preset folders, as `oassim topo list` prints them.
PRESET_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
YAML_SUFFIXES = (".yaml", ".yml")
_NAME_RULE = "a preset name is 1 to 64 lowercase letters, digits, '.', '_' or '-', with no folder or extension"


def preset_roots() -> list[Path]:
    """Folders that hold ``topologies/``, ``workloads/``... in search order."""
    roots = [Path(p) for p in os.environ.get("OASSIM_PRESET_PATH", "").split(os.pathsep) if p]
    roots.append(Path(__file__).resolve().parents[1])
    return roots


def preset_dirs(kind: str) -> list[Path]:
    """Existing preset folders for ``kind`` (e.g. ``"topologies"``, ``"topologies/hardware"``)."""
    return [r / kind for r in preset_roots() if _is(r / kind, Path.is_dir)]


def is_preset_name(name: str) -> bool:
    """True when ``name`` may name a preset (:data:`PRESET_NAME`, no ``..``, no extension)."""
    return bool(PRESET_NAME.fullmatch(name)) and ".." not in name and not name.endswith(YAML_SUFFIXES)


def check_preset_name(name: str) -> str:
    """``name`` itself when it may name a preset; else a :class:`SpecError` saying what may."""
    if not isinstance(name, str) or not is_preset_name(name):
        raise SpecError(f"not a preset name: {_NAME_RULE} (give a file as a path)")
    return name


def list_presets(kind: str) -> list[str]:
    """Names (file stems) of the presets of ``kind``, sorted."""
    names = {p.stem for d in preset_dirs(kind) for p in d.glob("*.yaml")}
    return sorted(n for n in names if is_preset_name(n))


def find_preset(kind: str, name: str) -> Path:
    """Path of preset ``name`` of ``kind``, searched only in :func:`preset_dirs`.

    Raises
    ------
    SpecError
        ``name`` is not a preset name, or no folder holds it (the message lists the known names).
    """
    check_preset_name(name)
    for d in preset_dirs(kind):
        p = d / f"{name}.yaml"
        if _is(p, Path.is_file):
            return p
    known = ", ".join(list_presets(kind)) or "none"
    raise SpecError(f"unknown {kind} preset '{name}' (known: {known})")


def argument_file(kind: str, ref: str | Path) -> Path:
    """The file a command-line reference names: a path, or a preset name of ``kind``.

    A :class:`~pathlib.Path` is a path. A string that holds a ``/`` or ends in ``.yaml`` /
    ``.yml`` is a path when that file exists ("file not found" when it does not); any other
    string must be a preset name. Errors have ``source`` the reference as given.
    """
    if isinstance(ref, Path):
        return ref
    if "/" in ref or os.sep in ref or ref.endswith(YAML_SUFFIXES):
        p = Path(ref)
        if _is(p, Path.exists):
            return p
        raise SpecError("file not found", source=ref)
    try:
        return find_preset(kind, ref)
    except SpecError as exc:
        raise SpecError(exc.message, source=ref) from None


def spec_file(kind: str, value: str, base: Path | None = None) -> Path:
    """The file a spec key naming a preset or a file points at (e.g. ``workload.model``).

    A value ending in ``.yaml`` / ``.yml`` is a path, relative to ``base`` (the spec file's
    folder) unless absolute; anything else must be a preset name of ``kind``.
    """
    if value.endswith(YAML_SUFFIXES):
        p = Path(value)
        return p if p.is_absolute() or base is None else base / p
    return find_preset(kind, value)


def _is(p: Path, test) -> bool:
    """``test(p)`` (``Path.is_file``...), False where the name cannot be asked about (too long)."""
    try:
        return bool(test(p))
    except (OSError, ValueError):
        return False
