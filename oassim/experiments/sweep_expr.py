"""Safe expressions of sweep files: ``derived`` keys and ``constraints``.

What it does: parses an expression with :mod:`ast` and interprets it node by node (never
``eval``), so a sweep file cannot run code. Allowed: names (dotted key paths of the point such
as ``parallelism.tp``, or an unambiguous last component such as ``tp``), numbers, strings,
arithmetic (``+ - * / // % **``), comparisons (``in`` included), ``and``/``or``/``not``,
``x if c else y``, tuples/lists, and the functions ``min``, ``max``, ``abs``, ``round``.
Anything else (attribute access on other objects, subscripts, lambdas, comprehensions, other
calls such as ``__import__``) is a one-line :class:`~oassim.errors.SpecError` naming the
expression's place in the sweep file.
"""

from __future__ import annotations

import ast
import operator
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from oassim.errors import SpecError

__all__ = ["Expr", "compile_expr", "known_names"]

# -- expressions ----------------------------------------------------------------------------------

_BINOPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow,
}
_CMPOPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
    ast.Gt: operator.gt, ast.GtE: operator.ge, ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b,
}
_FUNCS: dict[str, Callable[..., Any]] = {"min": min, "max": max, "abs": abs, "round": round}


def _dotted(node: ast.AST) -> str | None:
    """``a.b.c`` of a Name/Attribute chain, else None."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        head = _dotted(node.value)
        return f"{head}.{node.attr}" if head is not None else None
    return None


@dataclass(frozen=True)
class Expr:
    """A checked sweep expression: ``text``, where it came from, and the key paths it reads."""

    text: str
    where: str
    tree: ast.Expression = field(repr=False)
    names: Mapping[str, str] = field(repr=False)  # spelling in the text -> full dotted path

    def __call__(self, lookup: Callable[[str], Any]) -> Any:
        """Evaluate with ``lookup(dotted_path) -> value``."""
        return self._eval(self.tree.body, lookup)

    def _eval(self, n: ast.AST, look: Callable[[str], Any]) -> Any:
        ev = self._eval
        if isinstance(n, ast.Constant):
            return n.value
        if isinstance(n, (ast.Name, ast.Attribute)):
            return look(self.names[_dotted(n)])  # type: ignore[index]
        if isinstance(n, ast.BinOp):
            a, b = ev(n.left, look), ev(n.right, look)
            if isinstance(n.op, ast.Pow) and isinstance(b, (int, float)) and abs(b) > 64:
                raise ValueError("exponent larger than 64")
            return _BINOPS[type(n.op)](a, b)
        if isinstance(n, ast.UnaryOp):
            v = ev(n.operand, look)
            return (not v) if isinstance(n.op, ast.Not) else (-v if isinstance(n.op, ast.USub) else +v)
        if isinstance(n, ast.BoolOp):
            if isinstance(n.op, ast.And):
                out: Any = True
                for v in n.values:
                    out = ev(v, look)
                    if not out:
                        return out
                return out
            out = False
            for v in n.values:
                out = ev(v, look)
                if out:
                    return out
            return out
        if isinstance(n, ast.Compare):
            left = ev(n.left, look)
            for op, right_node in zip(n.ops, n.comparators):
                right = ev(right_node, look)
                if not _CMPOPS[type(op)](left, right):
                    return False
                left = right
            return True
        if isinstance(n, ast.IfExp):
            return ev(n.body, look) if ev(n.test, look) else ev(n.orelse, look)
        if isinstance(n, ast.Call):
            return _FUNCS[n.func.id](*(ev(a, look) for a in n.args))  # type: ignore[attr-defined]
        if isinstance(n, (ast.Tuple, ast.List)):
            return tuple(ev(e, look) for e in n.elts)
        raise AssertionError(type(n).__name__)  # compile_expr let through only the nodes above


_ALLOWED = (ast.Expression, ast.Constant, ast.Name, ast.Attribute, ast.BinOp, ast.UnaryOp, ast.BoolOp,
            ast.Compare, ast.IfExp, ast.Call, ast.Tuple, ast.List, ast.Load, ast.And, ast.Or, ast.Not,
            ast.UAdd, ast.USub, *_BINOPS, *_CMPOPS)


def compile_expr(text: Any, where: str, known: Mapping[str, Any], *, source: str | None = None) -> Expr:
    """Parse and check a sweep expression.

    Parameters
    ----------
    text : str
        E.g. ``"parallelism.tp * parallelism.pp * parallelism.dp == cluster.accelerators"``.
    where : str
        Its key path in the sweep file, for messages (``constraints[0]``, ``derived.x``).
    known : mapping
        Every dotted key path a name may refer to (full paths and unique last components).

    Raises
    ------
    SpecError
        Not a string, a syntax error, a construct outside the safe subset (attribute access
        on anything but a key path, subscripts, lambdas, comprehensions, calls other than
        min/max/abs/round...), or a name that is no key of the scenario.
    """
    if not isinstance(text, str) or not text.strip():
        raise SpecError(f"expected an expression (a string), got {text!r}", source=source, path=where)
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise SpecError(f"cannot parse expression {text!r}: {exc.msg}", source=source, path=where) from None
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED):
            raise SpecError(f"'{type(node).__name__}' is not allowed in a sweep expression {text!r} (allowed: "
                            "key paths, numbers, strings, + - * / // % **, comparisons, and/or/not, "
                            "x if c else y, min, max, abs, round)", source=source, path=where)
        if isinstance(node, ast.Constant) and not isinstance(node.value, (int, float, str, bool, type(None))):
            raise SpecError(f"constant {node.value!r} is not allowed in {text!r}", source=source, path=where)
        if isinstance(node, ast.Call):
            fname = node.func.id if isinstance(node.func, ast.Name) else None
            if fname not in _FUNCS or node.keywords:
                shown = fname or ast.unparse(node.func)
                raise SpecError(f"function '{shown}' is not allowed in {text!r} (allowed: "
                                f"{', '.join(sorted(_FUNCS))}, positional arguments)", source=source, path=where)
        if isinstance(node, ast.Attribute):
            name = _dotted(node)
            if name is None:
                raise SpecError(f"attribute access '{ast.unparse(node)}' is not allowed in {text!r}: names are "
                                "dotted key paths of the scenario", source=source, path=where)
    for node in ast.walk(tree):
        if isinstance(node, (ast.Name, ast.Attribute)) and not _inside_chain(tree, node):
            if isinstance(node, ast.Name) and _is_func(tree, node):
                continue
            name = _dotted(node)
            assert name is not None
            if name not in known:
                raise SpecError(f"'{name}' in {text!r} names no key of the scenario (use a dotted key path such "
                                "as parallelism.tp, or its last part when that is unique)", source=source, path=where)
            target = known[name]
            if isinstance(target, list):
                raise SpecError(f"'{name}' in {text!r} is ambiguous: write {' or '.join(target)}",
                                source=source, path=where)
            names[name] = target
    return Expr(text.strip(), where, tree, names)


def _inside_chain(tree: ast.AST, node: ast.AST) -> bool:
    return any(isinstance(p, ast.Attribute) and p.value is node for p in ast.walk(tree))


def _is_func(tree: ast.AST, node: ast.AST) -> bool:
    return any(isinstance(p, ast.Call) and p.func is node for p in ast.walk(tree))


def known_names(paths: list[str]) -> dict[str, Any]:
    """Full paths, plus each last component that is unique (a list of candidates when not)."""
    known: dict[str, Any] = {p: p for p in paths}
    last: dict[str, list[str]] = {}
    for p in paths:
        last.setdefault(p.rsplit(".", 1)[-1], []).append(p)
    for name, full in last.items():
        if name not in known:
            known[name] = full[0] if len(full) == 1 else sorted(full)
    return known
