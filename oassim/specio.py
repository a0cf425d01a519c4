"""Loading spec files into validated models, with one-line errors.

Every spec file maps to a pydantic model (docs/architecture.md, decision 2); unknown keys and
impossible values are errors that name the offending path and the allowed values. This module
is the only place that turns YAML text and pydantic ``ValidationError`` objects into
:class:`~oassim.errors.SpecError` lines, so every layer reports bad input the same way.

Why a loader of its own: spec files come from users and from wherever a path points. PyYAML's
safe loader still lets a few hundred bytes of aliases expand to billions of values, lets the
last of two equal keys win silently, raises bare ``ValueError`` / ``RecursionError`` for
``!!int abc``, ``2024-13-45`` or 1,000-deep nesting, and its messages print the offending
line. :func:`parse_yaml` composes with bounds (size, depth, alias expansion, plain tags only,
no duplicate keys) checked before any memory is spent, and :func:`read_yaml` quotes nothing of
a file that is not a spec.
"""

from __future__ import annotations

import difflib
import re
import stat
import sys
from pathlib import Path
from typing import Any, Mapping, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, ScalarNode
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import Resolver
from yaml.scanner import Scanner

from oassim.errors import SpecError, clip, describe_value

__all__ = [
    "SpecModel",
    "read_yaml",
    "parse_yaml",
    "MAX_SPEC_BYTES",
    "validate",
    "load_model",
    "format_validation_error",
    "allowed_list",
    "unit_hint",
]

M = TypeVar("M", bound=BaseModel)

# Keys that carry a physical quantity must name their unit (docs/architecture.md, decision 1). When a
# user writes the bare quantity, say which unit-suffixed spellings exist.
_UNIT_SUFFIX = re.compile(r"_(GBps|TBps|Gbps|Tbps|GB|GiB|TB|TFLOPS|PFLOPS|ns|us|ms|s|W|kW|m|USD|pct)$")


class SpecModel(BaseModel):
    """Base of every spec model: unknown keys are errors, objects are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


def read_yaml(path: str | Path) -> Any:
    """Read a spec file: a YAML mapping of name keys, or nothing (an empty file gives None).

    Refused, each as one :class:`SpecError` line that quotes nothing of the file but names:
    a missing, unreadable or non-regular file, one over :data:`MAX_SPEC_BYTES`, a YAML syntax
    error (line and column), and whatever :func:`parse_yaml` refuses. A document whose top
    level is not a mapping, or whose top-level keys are not names, is "not a spec file" (so
    ``/etc/passwd`` is never echoed back key by key).
    """
    source = str(path)
    p = Path(path)
    try:
        if not stat.S_ISREG(p.stat().st_mode):
            kind = "a directory" if p.is_dir() else "not a regular file"
            raise SpecError(f"is {kind}, expected a YAML file", source=source)
        with p.open("rb") as f:
            raw = f.read(MAX_SPEC_BYTES + 1)
    except FileNotFoundError:
        raise SpecError("file not found", source=source) from None
    except OSError as exc:
        raise SpecError(f"cannot read file: {exc.strerror or exc.__class__.__name__}", source=source) from None
    if len(raw) > MAX_SPEC_BYTES:
        raise SpecError(f"not a spec file: larger than {MAX_SPEC_BYTES >> 20} MiB", source=source)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise SpecError("not a spec file: not UTF-8 text", source=source) from None
    data = parse_yaml(text, source=source)
    if data is None:
        return None
    if not isinstance(data, Mapping):
        raise SpecError(f"not a spec file: expected a mapping of keys at the top level, got {_kind(data)}",
                        source=source)
    for key in data:
        if not (isinstance(key, str) and _NAME_KEY.fullmatch(key)):
            raise SpecError(f"not a spec file: a top-level key is {_kind(key)}, not a name", source=source)
    return data


def parse_yaml(text: str, *, source: str | None = None, path: str | None = None) -> Any:
    """Parse YAML text with the guarded safe loader (:class:`_SpecLoader`).

    Refused as a :class:`SpecError` located at ``source`` (and key ``path``): syntax errors,
    tags other than plain YAML's, duplicate keys, nesting deeper than :data:`MAX_DEPTH`,
    aliases that expand past :data:`MAX_NODES` values or refer to themselves, and scalars
    their tag cannot hold (``!!int abc``, the date ``2024-13-45``, a 5,000-digit integer).
    """
    return _parse(_SpecLoader, text, source, path)


def _parse(loader_class: Any, text: str, source: str | None, path: str | None) -> Any:
    loader = None
    try:
        loader = loader_class(text)  # the pure-Python reader checks every character here
        return loader.get_single_data()
    except _Refused as exc:
        where = f"{path or ''}{'.' if path and exc.path and exc.path[0] != '[' else ''}{exc.path or ''}" or None
        raise SpecError(f"{exc.reason}{_at(exc.mark)}", source=source, path=where) from None
    except yaml.MarkedYAMLError as exc:
        problem = exc.problem or exc.context or "invalid YAML"
        if "nesting depth" in problem and loader_class is not _PySpecLoader:
            # libyaml 0.2.6+ scans ahead and stops at its own depth limit before the composer's
            # guard has seen a node: the pure-Python parser reaches the guard, which names the key
            return _parse(_PySpecLoader, text, source, path)
        if problem == "second occurrence":
            problem = "an anchor is defined twice"
        elif exc.context and problem.startswith("but "):  # the problem continues the context
            problem = f"{exc.context}, {problem}"
        problem = _quiet(problem)
        raise SpecError(f"YAML syntax error{_at(exc.problem_mark)}: {problem}", source=source, path=path) from None
    except yaml.reader.ReaderError as exc:
        raise SpecError(f"not a spec file: a character YAML does not allow (#x{_ord(exc.character):04x}) "
                        f"at position {exc.position}", source=source, path=path) from None
    except yaml.YAMLError:
        raise SpecError("YAML syntax error", source=source, path=path) from None
    finally:
        if loader is not None:
            loader.dispose()


def _ord(ch: Any) -> int:
    return ord(ch[0]) if isinstance(ch, str) and ch else ch if isinstance(ch, int) else 0


def _at(mark: Any) -> str:
    return f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""


def _kind(value: Any) -> str:
    """What a value is, in words, without its content."""
    names = {str: "a text", list: "a list", dict: "a mapping", bool: "a boolean", int: "a number",
             float: "a number", type(None): "empty"}
    return names.get(type(value), f"a {type(value).__name__}")


def _quiet(problem: str) -> str:
    """A parser's problem text without what it quotes of the file: a quoted token such as
    ',' or '<stream end>' stays, a quoted tag, anchor or word of the file does not."""
    def keep(m: re.Match) -> str:
        inner = m.group(1)
        return m.group(0) if len(inner) <= 2 or re.fullmatch(r"<[a-z ]+>", inner) else "'...'"

    return clip(re.sub(r"'([^']*)'", keep, problem), 160)


# -- the guarded loader ---------------------------------------------------------------------------

# A spec file is small: the largest shipped one is a few kB. These bounds refuse, before any
# memory is spent, documents no spec needs: a file of 16 MiB, nesting a recursive validator
# or deepcopy cannot walk, and the "billion laughs" alias bomb (a few hundred bytes whose
# aliases expand to 10**9 values once anything copies or prints the document).
MAX_SPEC_BYTES = 16 << 20
MAX_DEPTH = 64
MAX_NODES = 250_000

_Y = "tag:yaml.org,2002:"
# Tags with a plain-data meaning; anything else (!!python/object, !!binary, !!set, !custom) is
# refused, so no file can ask the loader for an object of its choosing.
_PLAIN_TAGS = {_Y + t for t in ("str", "int", "float", "bool", "null", "seq", "map", "timestamp", "merge", "value")}
_CONVERTED_TAGS = {_Y + t for t in ("int", "float", "bool", "timestamp")}
_TAG_SHOWN = re.compile(r"[!A-Za-z0-9:/._-]{1,40}")
# Keys a spec file has at its top level: names such as ``scale_out``, ``h100-sxm``, ``parallelism``.
_NAME_KEY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]{0,79}")


class _PyEvents(Reader, Scanner, Parser):
    """PyYAML's pure-Python scanner and parser: YAML text to events."""

    def __init__(self, stream: str):
        Reader.__init__(self, stream)
        Scanner.__init__(self)
        Parser.__init__(self)


try:  # libyaml's scanner and parser (the same events, faster) when PyYAML was built with it
    from yaml._yaml import CParser as _EventSource
except ImportError:  # pragma: no cover - PyYAML without libyaml
    _EventSource = _PyEvents


class _Refused(Exception):
    """A document refused while loading: why, where in the file, and at which key path."""

    def __init__(self, reason: str, mark: Any, path: list[str] | None = None):
        super().__init__(reason)
        self.reason, self.mark = reason, mark
        self.path = ".".join(path or []).replace(".[", "[") or None


def _tag_name(tag: str) -> str:
    short = "!!" + tag[len(_Y):] if tag.startswith(_Y) else tag
    return short if _TAG_SHOWN.fullmatch(short) else "of this kind"


class _Guards:
    """PyYAML's safe loader with the bounds above checked while composing (a mixin placed
    before ``Composer`` and an event source: see :class:`_SpecLoader`).

    Every composed node's expanded size (itself plus, through aliases, everything under it)
    is counted once per node, so an alias bomb is refused in time linear in the file.
    """

    _events: Any

    def __init__(self, text: str):
        self._events.__init__(self, text)
        Composer.__init__(self)
        SafeConstructor.__init__(self)
        Resolver.__init__(self)
        self._sizes: dict[int, int] = {}
        self._keys: list[str] = []

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, AliasEvent):
            target = self.anchors.get(event.anchor)
            if target is not None and id(target) not in self._sizes:
                raise _Refused("an alias refers to the node that holds it", event.start_mark, self._keys)
        if len(self._keys) >= MAX_DEPTH:
            raise _Refused(f"nested deeper than {MAX_DEPTH} levels", event.start_mark, self._keys[:3])
        if parent is None:  # the document's root
            key = None
        elif isinstance(index, ScalarNode):
            key = clip(str(index.value), 40)
        else:  # an item of a list, or a mapping's key itself
            key = f"[{index}]" if isinstance(index, int) else "(key)"
        if key is not None:
            self._keys.append(key)
        try:
            node = super().compose_node(parent, index)
            if id(node) not in self._sizes:
                self._sizes[id(node)] = self._size(node)
        finally:
            if key is not None:
                self._keys.pop()
        return node

    def _size(self, node: Any) -> int:
        if node.tag not in _PLAIN_TAGS:
            raise _Refused(f"tag {_tag_name(node.tag)} is not allowed: spec files are plain YAML", node.start_mark,
                           self._keys)
        if isinstance(node, ScalarNode):
            if node.tag in _CONVERTED_TAGS:  # convert now, while the key path is known
                try:
                    self.yaml_constructors[node.tag](self, node)
                except (ValueError, OverflowError, TypeError, AttributeError) as exc:  # e.g. !!timestamp x
                    raise _Refused(_unreadable(node, exc), node.start_mark, self._keys) from None
            return 1
        if isinstance(node, MappingNode):
            self._no_duplicates(node)
            children = [n for pair in node.value for n in pair]
        else:
            children = node.value
        size = 1 + sum(self._sizes[id(c)] for c in children)
        if size > MAX_NODES:
            raise _Refused(f"aliases expand to more than {MAX_NODES:,} values", node.start_mark, self._keys)
        return size

    def _no_duplicates(self, node: Any) -> None:
        seen: set[tuple[str, str]] = set()
        for key, _ in node.value:
            if not isinstance(key, ScalarNode) or key.tag == _Y + "merge":
                continue
            ident = (key.tag, key.value)
            if ident in seen:
                raise _Refused("duplicate key (each key once per mapping)", key.start_mark,
                               self._keys + [clip(str(key.value), 40)])
            seen.add(ident)

    def construct_object(self, node: Any, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, OverflowError, TypeError, AttributeError) as exc:
            raise _Refused(_unreadable(node, exc), node.start_mark) from None


class _SpecLoader(_Guards, Composer, _EventSource, SafeConstructor, Resolver):  # type: ignore[valid-type,misc]
    """The guarded loader on libyaml's parser when there is one."""

    _events = _EventSource


class _PySpecLoader(_Guards, Composer, _PyEvents, SafeConstructor, Resolver):
    """The guarded loader on the pure-Python parser (PyYAML without libyaml; tests)."""

    _events = _PyEvents


def _unreadable(node: Any, exc: Exception) -> str:
    """Why a scalar cannot be what its tag (written or implied) says."""
    tag = node.tag[len(_Y):] if node.tag.startswith(_Y) else node.tag
    if tag == "int" and "digits" in str(exc):
        limit = getattr(sys, "get_int_max_str_digits", lambda: 4300)()
        return f"an integer of more than {limit:,} digits"
    if tag == "timestamp":
        return "not a valid date or time (quote it to keep it as text)"
    return f"not a valid {tag if tag in ('int', 'float', 'bool') else 'value'}"


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
        key = clip(str(loc[-1]), 80) if loc else "?"
        allowed = _fields_at(model, loc)
        hint = unit_hint(key, allowed)
        msg = f"unknown key '{key}'"
        if hint:
            msg += f"; {hint}"
        if allowed:
            msg += f" (allowed: {allowed_list(key, allowed)})"
        return SpecError(msg, source=source, path=path)
    if kind == "missing":
        return SpecError("required key is missing", source=source, path=path)
    msg = err.get("msg", "invalid value")
    msg = re.sub(r"^Value error, ", "", msg)
    if "input" in err and kind not in ("model_type",) and not isinstance(err["input"], (dict, list)):
        msg += f" (got {describe_value(err['input'])})"
    more = len(errors) - 1
    if more:
        msg += f" [and {more} more problem{'s' if more > 1 else ''}]"
    return SpecError(msg, source=source, path=path)


def allowed_list(key: str, allowed: list[str], budget: int = 240) -> str:
    """The allowed keys for a message: all of them when they fit in ``budget`` characters,
    else the closest to ``key`` first and a count of the rest (the line stays one readable line;
    ``oassim schema`` publishes the full list)."""
    text = ", ".join(allowed)
    if len(text) <= budget:
        return text
    ranked = sorted(allowed, key=lambda a: -difflib.SequenceMatcher(None, key, a).ratio())
    shown: list[str] = []
    for a in ranked:
        if len(", ".join(shown + [a])) > budget - 40:
            break
        shown.append(a)
    return f"{', '.join(shown)} and {len(allowed) - len(shown)} more, closest first"


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
