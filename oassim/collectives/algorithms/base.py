"""The algorithm plug-in interface: a request in, phases of flows out.

Each algorithm is a small object registered in
:data:`~oassim.collectives.algorithms.ALGORITHMS` under the name used on the CLI and in
specs (docs/architecture.md, conventions: plug-ins are a dict). It says which ops it implements, why it cannot run a
given request on a given fabric (``unsupported``: a reason, or None), and turns a request
into phases (``phases``). Algorithms never cost anything: the engine does, on a network model.
"""

from __future__ import annotations

from typing import ClassVar

from oassim.collectives.caps import FabricCaps
from oassim.collectives.ops import CollectiveRequest
from oassim.collectives.phases import Phase

__all__ = ["Algorithm"]


class Algorithm:
    """Base class of collective algorithms.

    Attributes
    ----------
    name : str
        Registry key (the CLI's ``--algo`` value).
    ops : frozenset of str
        Ops it implements.
    summary : str
        One line for ``--help`` and reports.
    families : frozenset of str
        Scale-up grid families the algorithm is built for (empty: any fabric). Where ``auto``
        runs on such a family and the algorithm cannot take the request, the result says why.
    """

    name: ClassVar[str] = "base"
    ops: ClassVar[frozenset[str]] = frozenset()
    summary: ClassVar[str] = ""
    families: ClassVar[frozenset[str]] = frozenset()

    def unsupported(self, req: CollectiveRequest, caps: FabricCaps) -> str | None:
        """Why this algorithm cannot run ``req`` on a fabric with ``caps`` (None: it can)."""
        if req.op not in self.ops:
            return f"it implements {', '.join(sorted(self.ops))}, not {req.op}"
        return None

    def phases(self, req: CollectiveRequest, caps: FabricCaps) -> list[Phase]:
        """The phases of ``req`` in execution order (empty for single-rank groups)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
