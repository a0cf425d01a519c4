"""Loading spec files into validated models, with one-line errors.

docs/architecture.md decision 2: every spec file maps to a pydantic model; unknown keys and impossible
values are errors that name the offending path and the allowed values. This module is the
only place that turns YAML text and pydantic ``ValidationError`` objects into
:class:`~oassim.errors.SpecError` lines, so every layer reports bad input the same way.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any, Mapping, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from oassim.errors import SpecError

__all__ = [
    "SpecModel",
    "read_yaml",
    "validate",
    "load_model",
    "format_validation_error",
    "unit_hint",
]

M = TypeVar("M", bound=BaseModel)

# Keys that carry a physical quantity must name their unit (docs/architecture.md decision 1). When a
# user writes the bare quantity, say which unit-suffixed spellings exist.
_UNIT_SUFFIX = re.compile(r"_(GBps|TBps|Gbps|Tbps|GB|GiB|TB|TFLOPS|PFLOPS|ns|us|ms|s|W|kW|m|USD|pct)$")


class SpecModel(BaseModel):
    """Base of every spec model: unknown keys are errors, objects are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


def read_yaml(path: str | Path) -> Any:
    """Read a YAML file; a missing file or a syntax error is a :class:`SpecError`."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError("file not found", source=str(path)) from None
    except IsADirectoryError:
        raise SpecError("is a directory, expected a YAML file", source=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"cannot read file ({exc.__class__.__name__})", source=str(path)) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or "invalid YAML"
        loc = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise SpecError(f"YAML syntax error{loc}: {problem}", source=str(path)) from None


def unit_hint(key: str, allowed: list[str]) -> str:
    """Suggest unit-suffixed or similar keys for an unknown ``key``."""
    with_unit = [a for a in allowed if _UNIT_SUFFIX.search(a) and _UNIT_SUFFIX.sub("", a) == key]
    if with_unit:
        return f"a unit is required: use {' or '.join(with_unit)}"
    close = difflib.get_close_matches(key, allowed, n=3, cutoff=0.6)
    if close:
        return f"did you mean {' or '.join(close)}?"
    return ""


def _fields_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Field names of the (sub)model that ``loc`` points into, best effort."""
    current: Any = model
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        fields = getattr(current, "model_fields", None)
        if not fields or part not in fields:
            return []
        ann = fields[part].annotation
        current = _first_model(ann)
        if current is None:
            return []
    fields = getattr(current, "model_fields", None)
    return sorted(fields) if fields else []


def _first_model(ann: Any) -> type[BaseModel] | None:
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return ann
    for arg in getattr(ann, "__args__", ()) or ():
        found = _first_model(arg)
        if found is not None:
            return found
    return None


def _loc_to_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(part, str) and (part.startswith("function-") or part in _UNION_TAGS):
            continue
        else:
            out += f".{part}" if out else str(part)
    return out


_UNION_TAGS = {"int", "float", "str", "bool", "list", "dict", "none", "tagged-union"}


def format_validation_error(
    exc: ValidationError, model: type[BaseModel], source: str | None, prefix: str | None = None
) -> SpecError:
    """Turn the first error of a pydantic ``ValidationError`` into a one-line SpecError."""
    errors = exc.errors(include_url=False)
    # An unknown key usually explains a "missing" one beside it (a misspelt or unit-less
    # key), so report it first.
    errors.sort(key=lambda e: e.get("type") != "extra_forbidden")
    err = errors[0]
    loc = tuple(err.get("loc", ()))
    kind = err.get("type", "")
    path = _loc_to_path(loc)
    if prefix:
        path = f"{prefix}.{path}" if path else prefix
    if kind == "extra_forbidden":
        key = str(loc[-1]) if loc else "?"
        allowed = _fields_at(model, loc)
        hint = unit_hint(key, allowed)
        msg = f"unknown key '{key}'"
        if hint:
            msg += f"; {hint}"
        if allowed:
            msg += f" (allowed: {', '.join(allowed)})"
        return SpecError(msg, source=source, path=path)
    if kind == "missing":
        return SpecError("required key is missing", source=source, path=path)
    msg = err.get("msg", "invalid value")
    msg = re.sub(r"^Value error, ", "", msg)
    if "input" in err and kind not in ("model_type",) and not isinstance(err["input"], (dict, list)):
        msg += f" (got {err['input']!r})"
    more = len(errors) - 1
    if more:
        msg += f" [and {more} more problem{'s' if more > 1 else ''}]"
    return SpecError(msg, source=source, path=path)


def validate(model: type[M], data: Any, *, source: str | None = None, prefix: str | None = None) -> M:
    """Validate ``data`` against ``model``; errors become one-line :class:`SpecError`."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping) and issubclass(model, BaseModel):
        where = prefix or "top level"
        raise SpecError(
            f"expected a mapping of keys to values at {where}, got {type(data).__name__}",
            source=source,
            path=prefix,
        )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise format_validation_error(exc, model, source, prefix) from None
    except SpecError as exc:
        raise exc.with_context(source=source, prefix=prefix) from None


def load_model(model: type[M], path: str | Path) -> M:
    """Read ``path`` (YAML) and validate it as ``model``."""
    return validate(model, read_yaml(path), source=str(path))
