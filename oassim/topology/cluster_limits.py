"""Bounds a cluster file is checked against before anything is built: counts per geometry key
and per domain, the link count a cluster graph may hold, and the link and switch roles a
family needs (used by :mod:`oassim.topology.cluster_spec`)."""

from __future__ import annotations

import math
from typing import Any, Callable

from oassim.errors import SpecError

__all__ = ["MAX_COUNT", "MAX_LINKS", "domain_size"]


MAX_COUNT = 1 << 20


def _check_limits(geometry: Any, source: str, prefix: str) -> None:
    for key, value in geometry.model_dump().items():
        values = value if isinstance(value, list) else [value]
        for v in values:
            if isinstance(v, int) and not isinstance(v, bool) and v > MAX_COUNT:
                raise SpecError(f"{v:,} is too large (at most {MAX_COUNT:,})", source=source, path=f"{prefix}.{key}")
    try:
        size = domain_size(geometry)
    except TypeError:
        return
    if size > MAX_COUNT:
        raise SpecError(f"{size:,} accelerators per domain is too large (at most {MAX_COUNT:,})", source=source,
                        path=prefix)


# The most distinct links (graph edges) a cluster graph may hold. At about 1 kB per link
# (networkx attribute dicts; measured on dgx-h100-superpod), 2**24 links take some 16 GB: a
# geometry beyond it is refused before any graph is built, naming the count.
MAX_LINKS = 1 << 24


def _check_links(links: int | Callable[[], int], what: str, source: str, path: str) -> int:
    """The (estimated) link count of ``what`` fits :data:`MAX_LINKS`; a family's sizing error
    (a fat tree asked for more endpoints than its tiers hold) is a SpecError at ``path``."""
    try:
        n = links() if callable(links) else links
    except ValueError as exc:
        raise SpecError(str(exc), source=source, path=path) from None
    if n > MAX_LINKS:
        raise SpecError(f"{what} would wire {n:,} links, more than the {MAX_LINKS:,} a cluster graph may hold "
                        "(about 1 kB each); use fewer accelerators or a smaller geometry", source=source, path=path)
    return n


def _check_roles(kind: str, given: dict, needed: tuple[str, ...], known: set[str], family: str, source: str,
                 prefix: str) -> None:
    """Every role the family needs is given, and every given role is one the family uses."""
    where = f"{prefix}.{kind}es" if kind == "switch" else f"{prefix}.{kind}s"
    for role in needed:
        if role not in given:
            raise SpecError(
                f"missing {kind} role '{role}' (family {family} needs: {', '.join(needed)})", source=source, path=where
            )
    for role in given:
        if role not in known:
            raise SpecError(
                f"unknown {kind} role '{role}' (family {family} uses: {', '.join(sorted(known)) or 'none'})",
                source=source,
                path=f"{where}.{role}",
            )


def domain_size(spec: Any) -> int:
    """Accelerators in one supernode of a family spec."""
    for attr in ("size",):
        if hasattr(spec, attr):
            return int(getattr(spec, attr))
    if hasattr(spec, "dims"):
        return int(math.prod(spec.dims))
    if hasattr(spec, "nodes") and hasattr(spec, "accelerators_per_node"):
        return int(spec.nodes * spec.accelerators_per_node)
    raise TypeError(f"cannot tell the domain size of {type(spec).__name__}")
