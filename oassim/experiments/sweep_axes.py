"""Axes of a sweep file: the values one swept key takes.

What it reads: an ``axes:`` entry of a sweep file (``docs/sweeps.md``): a list of values,
``{values: [...]}``, a range ``{range: [start, stop], step: s}`` or ``{range: [start, stop],
factor: f}`` (stop exclusive, as Python's ``range``), a distribution ``{low, high, log,
integer, num}`` (``num`` evenly spaced values on a grid, a draw for random sampling), or a
single scalar. Errors are one-line :class:`~oassim.errors.SpecError` s located at
``axes.<path>``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from oassim.errors import SpecError

__all__ = ["Axis", "parse_axis", "check_finite", "MAX_VALUES"]

MAX_VALUES = 1_000_000
"""Most values one range may give."""

_AXIS_KEYS = ("values", "range", "step", "factor", "low", "high", "log", "integer", "num")


def _tidy(x: float) -> float | int:
    """A computed axis value without float noise (0.1 * 3 -> 0.3)."""
    return x if isinstance(x, int) else float(f"{x:.12g}")


@dataclass(frozen=True)
class Axis:
    """One swept key: discrete ``values``, or a distribution over ``[low, high]``."""

    path: str
    values: tuple[Any, ...] | None = None
    low: float | None = None
    high: float | None = None
    log: bool = False
    integer: bool = False
    num: int | None = None

    @property
    def size(self) -> int:
        """Values of this axis on a grid, known before any is made (``num`` for a low/high
        axis, an upper bound: rounding to integers may merge some; 0 without ``num``)."""
        return len(self.values) if self.values is not None else int(self.num or 0)

    def space(self) -> float:
        """Distinct values a random draw can give: the discrete values, the integers of
        ``[low, high]`` for an ``integer`` axis, ``inf`` for a continuous one."""
        if self.values is not None:
            return float(len({_key(v) for v in self.values}))
        if self.integer:
            assert self.low is not None and self.high is not None
            return float(int(round(self.high)) - int(round(self.low)) + 1)
        return math.inf

    def grid_values(self) -> tuple[Any, ...]:
        """Values of a grid: the discrete values, or ``num`` evenly (log-)spaced ones."""
        if self.values is not None:
            return self.values
        assert self.low is not None and self.high is not None and self.num is not None
        pts = np.geomspace(self.low, self.high, self.num) if self.log else np.linspace(self.low, self.high, self.num)
        out = [int(round(v)) for v in pts] if self.integer else [_tidy(float(v)) for v in pts]
        return tuple(dict.fromkeys(out))  # rounding to integers may repeat a value

    def draw(self, rng: np.random.Generator) -> Any:
        """One random value: uniform over the values, or (log-)uniform over ``[low, high]``."""
        if self.values is not None:
            return self.values[int(rng.integers(len(self.values)))]
        lo, hi = float(self.low), float(self.high)  # type: ignore[arg-type]
        v = math.exp(rng.uniform(math.log(lo), math.log(hi))) if self.log else rng.uniform(lo, hi)
        return int(round(v)) if self.integer else _tidy(float(v))


def _key(v: Any) -> str:
    import json

    return json.dumps(v, sort_keys=True, default=str)


def _non_finite(v: Any, depth: int = 0) -> float | None:
    """The first NaN or infinity inside ``v`` (a value, list or mapping), else None."""
    if isinstance(v, float) and not math.isfinite(v):
        return v
    if depth < 32 and isinstance(v, dict):
        v = list(v.values())
    if depth < 32 and isinstance(v, (list, tuple)):
        return next((x for x in (_non_finite(i, depth + 1) for i in v) if x is not None), None)
    return None


def check_finite(v: Any, what: str, source: str | None, path: str) -> None:
    """Refuse a NaN or infinite value (YAML ``.nan``, ``.inf``, ``1e999``): it would compare
    false with everything and be silently dropped by a constraint, or stored as empty."""
    bad = _non_finite(v)
    if bad is not None:
        raise SpecError(f"{what} {bad!r} is not a finite number (NaN and infinities cannot be swept)",
                        source=source, path=path)


def _num(v: Any, what: str, source: str | None, path: str) -> float | int:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise SpecError(f"{what} must be a number, got {v!r}", source=source, path=path)
    return v


def parse_axis(path: str, raw: Any, *, source: str | None = None) -> Axis:
    """Read one ``axes:`` entry (see :class:`SweepSpec`); errors name ``axes.<path>``."""
    where = f"axes.{path}"
    if isinstance(raw, list):
        raw = {"values": raw}
    elif not isinstance(raw, dict):
        raw = {"values": [raw]}
    unknown = sorted(set(raw) - set(_AXIS_KEYS))
    if unknown:
        raise SpecError(f"unknown axis key '{unknown[0]}' (an axis is a list, or a mapping of: "
                        f"{', '.join(_AXIS_KEYS)})", source=source, path=where)
    forms = [k for k in ("values", "range", "low") if k in raw]
    if len(forms) != 1:
        raise SpecError("give exactly one of values: [...], range: [start, stop] or low/high",
                        source=source, path=where)
    if "values" in raw:
        vals = raw["values"]
        if not isinstance(vals, list):
            raise SpecError(f"values must be a list, got {type(vals).__name__}", source=source, path=where)
        if not vals:
            raise SpecError("the axis has no values", source=source, path=where)
        if len(vals) > MAX_VALUES:
            raise SpecError(f"the axis has {len(vals):,} values (the most is {MAX_VALUES:,})",
                            source=source, path=where)
        for i, v in enumerate(vals):
            check_finite(v, f"value {i}:", source, where)
        return Axis(path, values=tuple(vals))
    if "range" in raw:
        r = raw["range"]
        if not isinstance(r, list) or len(r) != 2:
            raise SpecError("range must be [start, stop] (stop exclusive)", source=source, path=where)
        start, stop = (_num(v, "range bounds", source, where) for v in r)
        if "step" in raw and "factor" in raw:
            raise SpecError("give step or factor, not both", source=source, path=where)
        vals = []
        if "factor" in raw:
            f = _num(raw["factor"], "factor", source, where)
            if f <= 1 or start <= 0:
                raise SpecError("a geometric range needs factor > 1 and start > 0", source=source, path=where)
            n = math.ceil(math.log(stop / start) / math.log(f) - 1e-9) if stop > start else 0
            if n > MAX_VALUES:  # counted before any value is made
                raise SpecError(f"the range has {n:,} values (the most is {MAX_VALUES:,})", source=source, path=where)
            v = start
            while v < stop and len(vals) <= n:
                vals.append(_tidy(v))
                v = v * f
        else:
            s = _num(raw.get("step", 1), "step", source, where)
            if s <= 0:
                raise SpecError(f"step must be > 0, got {s}", source=source, path=where)
            n = math.ceil((stop - start) / s - 1e-9)
            if n > MAX_VALUES:
                raise SpecError(f"the range has {n:,} values (the most is {MAX_VALUES:,})", source=source, path=where)
            vals = [_tidy(start + i * s) for i in range(max(0, n))]
        if not vals:
            raise SpecError(f"the range [{start}, {stop}) has no values (stop is exclusive)", source=source, path=where)
        return Axis(path, values=tuple(vals))
    if "high" not in raw:
        raise SpecError("a low/high axis needs both low and high", source=source, path=where)
    lo = _num(raw["low"], "low", source, where)
    hi = _num(raw["high"], "high", source, where)
    log, integer = bool(raw.get("log", False)), bool(raw.get("integer", False))
    num = raw.get("num")
    if hi < lo or (log and lo <= 0):
        raise SpecError("need low <= high (and low > 0 with log: true)", source=source, path=where)
    if num is not None and (isinstance(num, bool) or not isinstance(num, int) or num < 1):
        raise SpecError(f"num must be a whole number >= 1, got {num!r}", source=source, path=where)
    if num is not None and num > MAX_VALUES:  # refused before numpy is asked for num values
        raise SpecError(f"num is {num:,} (the most is {MAX_VALUES:,} values per axis)", source=source, path=where)
    return Axis(path, low=lo, high=hi, log=log, integer=integer, num=num)
