"""The preset catalog: named accelerators, link technologies, optics and switches.

What is modelled: the set of hardware parts a cluster file may name. Presets are plain YAML
files a user copies and edits (docs/architecture.md), one per kind, in ``topologies/hardware/``:
``accelerators.yaml``, ``links.yaml``, ``optics.yaml`` and ``switches.yaml``, each a
mapping ``preset-name -> fields`` (the name is filled from the key).

Why a catalog rather than ad-hoc file reads: every layer above resolves names the same way
(a preset name or an inline mapping), every bad file is reported as one line naming the file
and the key path, and unknown names list the known ones. Folders are searched in
:func:`oassim.presets.preset_dirs` order (``OASSIM_PRESET_PATH`` first), and a preset in an
earlier folder overrides one of the same name in a later folder. Nothing is read at import;
the default catalog is read once and cached. :func:`load_interconnect` reads an interconnect
spec file (:mod:`oassim.hardware.interconnect`), resolving the module presets it names.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, TypeVar

from oassim.errors import SpecError
from oassim.hardware.interconnect import InterconnectSpec
from oassim.hardware.models import (
    Accelerator,
    HardwarePart,
    LinkTechnology,
    OpticalModule,
    Switch,
)
from oassim.presets import preset_dirs
from oassim.specio import read_yaml, validate

__all__ = [
    "PRESET_FILES", "PRESET_KIND_DIR", "PartKind", "Catalog", "load_catalog", "clear_catalog_cache",
    "load_interconnect",
]

PartKind = Literal["accelerator", "link", "module", "switch"]

#: Folder (relative to each preset root) that holds the hardware preset files.
PRESET_KIND_DIR = "topologies/hardware"

#: Preset file and model of each part kind.
PRESET_FILES: dict[str, tuple[str, type[HardwarePart]]] = {
    "accelerator": ("accelerators.yaml", Accelerator),
    "link": ("links.yaml", LinkTechnology),
    "module": ("optics.yaml", OpticalModule),
    "switch": ("switches.yaml", Switch),
}

P = TypeVar("P", bound=HardwarePart)


@dataclass(frozen=True)
class Catalog:
    """Validated hardware presets by kind and name.

    Parameters
    ----------
    parts : mapping
        ``kind -> {name: model}`` for kinds ``accelerator``, ``link``, ``module``, ``switch``.
    origins : mapping
        ``kind -> {name: file}``: the file each preset was read from (for reports).
    """

    parts: Mapping[str, Mapping[str, HardwarePart]]
    origins: Mapping[str, Mapping[str, Path]] = field(default_factory=dict)

    # -- lookup by name ------------------------------------------------------------------

    def names(self, kind: str) -> list[str]:
        """Sorted preset names of ``kind`` (``accelerator``, ``link``, ``module``, ``switch``)."""
        return sorted(self._kind(kind))

    def get(self, kind: str, name: str) -> HardwarePart:
        """Preset ``name`` of ``kind``; a :class:`SpecError` lists known names and close matches."""
        table = self._kind(kind)
        if not isinstance(name, str) or name not in table:
            known = sorted(table)
            close = difflib.get_close_matches(str(name), known, n=3, cutoff=0.6)
            hint = f"; did you mean {' or '.join(close)}?" if close else ""
            listed = ", ".join(known) or "none"
            raise SpecError(f"unknown {kind} preset {name!r}{hint} (known: {listed})")
        return table[name]

    def accelerator(self, name: str) -> Accelerator:
        """Accelerator preset ``name``."""
        return self.get("accelerator", name)  # type: ignore[return-value]

    def link(self, name: str) -> LinkTechnology:
        """Link technology preset ``name``."""
        return self.get("link", name)  # type: ignore[return-value]

    def module(self, name: str) -> OpticalModule:
        """Optical module / cable preset ``name``."""
        return self.get("module", name)  # type: ignore[return-value]

    def switch(self, name: str) -> Switch:
        """Switch preset ``name``."""
        return self.get("switch", name)  # type: ignore[return-value]

    def source_of(self, kind: str, name: str) -> Path | None:
        """File preset ``name`` of ``kind`` was read from (None if built in memory)."""
        self.get(kind, name)
        return self.origins.get(kind, {}).get(name)

    # -- name or inline ------------------------------------------------------------------

    def resolve(
        self, kind: str, value: Any, *, source: str | None = None, prefix: str | None = None
    ) -> HardwarePart:
        """Resolve a preset name, an inline mapping or a model into a model of ``kind``.

        Parameters
        ----------
        kind : {"accelerator", "link", "module", "switch"}
            Part kind.
        value : str, mapping or model
            Preset name, inline fields (``name`` defaults to ``prefix`` or ``"inline"``), or
            an already validated model.
        source, prefix : str, optional
            File and key path the value came from, used in error messages.

        Raises
        ------
        SpecError
            Unknown name, invalid inline fields, or a model of the wrong kind.
        """
        model = PRESET_FILES[kind][1] if kind in PRESET_FILES else None
        if model is None:
            self._kind(kind)  # raises with the allowed kinds
        assert model is not None
        if isinstance(value, model):
            return value
        if isinstance(value, str):
            try:
                return self.get(kind, value)
            except SpecError as exc:
                raise exc.with_context(source=source, prefix=prefix) from None
        if isinstance(value, Mapping):
            data = dict(value)
            data.setdefault("name", prefix.rsplit(".", 1)[-1] if prefix else "inline")
            return validate(model, data, source=source, prefix=prefix)
        raise SpecError(
            f"expected a {kind} preset name or a mapping of its fields, got {type(value).__name__}",
            source=source,
            path=prefix,
        )

    def resolve_accelerator(
        self, value: Any, *, source: str | None = None, prefix: str | None = None
    ) -> Accelerator:
        """:meth:`resolve` for accelerators."""
        part = self.resolve("accelerator", value, source=source, prefix=prefix)
        return part  # type: ignore[return-value]

    def resolve_link(
        self, value: Any, *, source: str | None = None, prefix: str | None = None
    ) -> LinkTechnology:
        """:meth:`resolve` for link technologies."""
        part = self.resolve("link", value, source=source, prefix=prefix)
        return part  # type: ignore[return-value]

    def resolve_module(
        self, value: Any, *, source: str | None = None, prefix: str | None = None
    ) -> OpticalModule:
        """:meth:`resolve` for optical modules and cables."""
        part = self.resolve("module", value, source=source, prefix=prefix)
        return part  # type: ignore[return-value]

    def resolve_switch(
        self, value: Any, *, source: str | None = None, prefix: str | None = None
    ) -> Switch:
        """:meth:`resolve` for switches."""
        part = self.resolve("switch", value, source=source, prefix=prefix)
        return part  # type: ignore[return-value]

    def resolve_interconnect(
        self, value: Any, *, source: str | None = None, prefix: str | None = None
    ) -> InterconnectSpec:
        """Validate an interconnect spec and replace the module names of its reach classes by
        models.

        Parameters
        ----------
        value : mapping or InterconnectSpec
            The content of an interconnect spec file (``oassim schema interconnect``).
        source, prefix : str, optional
            File and key path the value came from, used in error messages.

        Raises
        ------
        SpecError
            Missing or unknown keys, impossible values, or an unknown module preset (one line
            naming the file and the key path).
        """
        spec = value if isinstance(value, InterconnectSpec) else validate(
            InterconnectSpec, value, source=source, prefix=prefix
        )

        def at(key: str) -> str:
            return f"{prefix}.{key}" if prefix else key

        reach = []
        for i, rc in enumerate(spec.reach):
            if rc.module is not None:
                module = self.resolve_module(rc.module, source=source, prefix=at(f"reach[{i}].module"))
                if module.medium == "optical" and rc.medium != "optical":
                    raise SpecError(f"module '{module.name}' is optical but the class medium is '{rc.medium}'",
                                    source=source, path=at(f"reach[{i}].medium"))
                rc = rc.model_copy(update={"module": module})
            reach.append(rc)
        return spec.model_copy(update={"reach": reach})

    # -- internals -------------------------------------------------------------------------

    def _kind(self, kind: str) -> Mapping[str, HardwarePart]:
        if kind not in PRESET_FILES:
            raise SpecError(f"unknown hardware kind {kind!r} (allowed: {', '.join(PRESET_FILES)})")
        return self.parts.get(kind, {})


def _read_presets(path: Path, model: type[P]) -> dict[str, P]:
    """Validate every preset of one file; errors name the file and ``preset.key``."""
    data = read_yaml(path)
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        got = type(data).__name__
        raise SpecError(f"expected a mapping of preset names to fields, got {got}",
                        source=str(path))
    out: dict[str, P] = {}
    for key, fields in data.items():
        if not isinstance(key, str) or not key:
            raise SpecError(
                f"preset names must be non-empty strings, got {key!r}", source=str(path)
            )
        if fields is not None and not isinstance(fields, Mapping):
            raise SpecError(
                f"expected a mapping of fields, got {type(fields).__name__}",
                source=str(path),
                path=key,
            )
        body = dict(fields or {})
        if "name" in body and body["name"] != key:
            raise SpecError(
                f"name {body['name']!r} differs from its preset key (leave name out)",
                source=str(path),
                path=f"{key}.name",
            )
        body["name"] = key
        out[key] = validate(model, body, source=str(path), prefix=key)
    return out


def _build(dirs: tuple[Path, ...]) -> Catalog:
    parts: dict[str, dict[str, HardwarePart]] = {}
    origins: dict[str, dict[str, Path]] = {}
    for kind, (filename, model) in PRESET_FILES.items():
        table: dict[str, HardwarePart] = {}
        where: dict[str, Path] = {}
        # Later folders first, so earlier ones (user folders) override per name.
        for d in reversed(dirs):
            path = d / filename
            if path.is_file():
                for name, part in _read_presets(path, model).items():
                    table[name] = part
                    where[name] = path
        parts[kind] = MappingProxyType(table)  # type: ignore[assignment]
        origins[kind] = MappingProxyType(where)  # type: ignore[assignment]
    return Catalog(parts=MappingProxyType(parts), origins=MappingProxyType(origins))


@functools.lru_cache(maxsize=8)
def _cached(dirs: tuple[Path, ...]) -> Catalog:
    return _build(dirs)


def load_catalog(extra_dirs: Iterable[str | Path] | None = None) -> Catalog:
    """Load the hardware presets.

    Parameters
    ----------
    extra_dirs : iterable of path, optional
        Folders holding ``accelerators.yaml``... searched before the preset path (they
        override presets of the same name). Catalogs with extra folders are not cached.

    Returns
    -------
    Catalog
        The default catalog (``OASSIM_PRESET_PATH`` then the repository) is cached per
        search path; call :func:`clear_catalog_cache` after editing preset files.

    Raises
    ------
    SpecError
        A preset file that cannot be read or validated (one line: file, key path, problem).
    """
    dirs = tuple(preset_dirs(PRESET_KIND_DIR))
    if extra_dirs is None:
        return _cached(dirs)
    return _build(tuple(Path(d) for d in extra_dirs) + dirs)


def clear_catalog_cache() -> None:
    """Forget cached catalogs (after preset files changed on disk)."""
    _cached.cache_clear()


def load_interconnect(path: str | Path, catalog: Catalog | None = None) -> InterconnectSpec:
    """Read and validate an interconnect spec file, resolving module presets.

    Raises
    ------
    SpecError
        Unreadable file or invalid spec: one line ``FILE: key.path: message``.
    """
    cat = catalog if catalog is not None else load_catalog()
    return cat.resolve_interconnect(read_yaml(path), source=str(path))
