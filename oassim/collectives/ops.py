"""Collective operations and the request a caller hands the collective engine.

What is modelled: the operations of NCCL / MPI collectives that training traffic is made of
(all-reduce, reduce-scatter, all-gather, all-to-all with even or uneven per-pair sizes,
broadcast, reduce, point-to-point send/recv), the byte-count convention of nccl-tests, and the
bus-bandwidth factors that turn an algorithm bandwidth into the figure nccl-tests prints.

Why nccl-tests conventions: published collective curves (``oassim/data/calibration/``) are
nccl-tests output, and docs/architecture.md fixes algbw and busbw to its definitions
(nccl-tests ``doc/PERFORMANCE.md``). ``size_bytes`` is therefore the per-rank buffer size that
nccl-tests prints: the (input = output) buffer of all-reduce, broadcast and reduce, the input
of reduce-scatter (each rank keeps ``size/n``), the *output* of all-gather (each rank
contributes ``size/n``), the send buffer of all-to-all (``size/n`` to every rank, itself
included), and the message of send/recv.

A request carries every group that runs the collective at the same moment (say every
data-parallel group of a job) as one ``(G, n)`` array of ranks, so that the engine can cost
them together on shared links (docs/architecture.md decision 6). Bad input raises
:class:`~oassim.errors.SpecError`: one line, exit status 2 in the CLI.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Literal, get_args

import numpy as np

from oassim.errors import SpecError

__all__ = [
    "Op",
    "OPS",
    "busbw_factor",
    "parse_size",
    "parse_sizes",
    "format_size",
    "CollectiveRequest",
]

Op = Literal["all_reduce", "reduce_scatter", "all_gather", "all_to_all", "broadcast", "reduce", "send_recv"]
OPS: tuple[str, ...] = get_args(Op)


def busbw_factor(op: str, n: int) -> float:
    """busbw / algbw of ``op`` on ``n`` ranks, as nccl-tests ``doc/PERFORMANCE.md`` defines it.

    all-reduce ``2(n-1)/n``; reduce-scatter, all-gather, all-to-all ``(n-1)/n``; broadcast,
    reduce and send/recv ``1``.
    """
    if op not in OPS:
        raise SpecError(f"unknown collective op '{op}' (allowed: {', '.join(OPS)})")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if op == "all_reduce":
        return 2.0 * (n - 1) / n
    if op in ("reduce_scatter", "all_gather", "all_to_all"):
        return (n - 1) / n
    return 1.0


_SUFFIX = {"": 1, "B": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
_SIZE_RE = re.compile(r"^\s*(-?[0-9]*\.?[0-9]+)\s*([KMGT]?)(?:i?B)?\s*$", re.IGNORECASE)


def parse_size(text: str | int | float, *, source: str = "argument --sizes") -> int:
    """Bytes of a size such as ``"64M"``: K/M/G/T suffixes are powers of two, as in nccl-tests.

    Raises
    ------
    SpecError
        Not a size, or not > 0.
    """
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value = float(text)
    else:
        m = _SIZE_RE.match(str(text))
        if not m:
            raise SpecError(f"'{text}' is not a size (use bytes or a K/M/G/T suffix, e.g. 64M)", source=source)
        value = float(m.group(1)) * _SUFFIX[m.group(2).upper()]
    if not np.isfinite(value) or value <= 0:
        raise SpecError(f"sizes must be > 0 bytes, got {text}", source=source)
    b = int(round(value))
    if b < 1:
        raise SpecError(f"sizes must be at least 1 byte, got {text}", source=source)
    return b


def parse_sizes(text: str, *, source: str = "argument --sizes") -> list[int]:
    """Sizes from ``"A:B"`` (doubling from A to B, nccl-tests ``-b A -e B -f 2``), ``"A:B:F"``
    (factor F), or a comma list ``"1M,64M,1G"``; each item as :func:`parse_size`."""
    text = str(text).strip()
    if "," in text:
        return [parse_size(t, source=source) for t in text.split(",") if t.strip()]
    if ":" in text:
        parts = text.split(":")
        if len(parts) not in (2, 3):
            raise SpecError(f"'{text}' is not a range (use A:B or A:B:factor)", source=source)
        lo, hi = parse_size(parts[0], source=source), parse_size(parts[1], source=source)
        factor = 2.0
        if len(parts) == 3:
            try:
                factor = float(parts[2])
            except ValueError:
                raise SpecError(f"range factor '{parts[2]}' is not a number", source=source) from None
            if factor <= 1:
                raise SpecError(f"range factor must be > 1, got {parts[2]}", source=source)
        if hi < lo:
            raise SpecError(f"range {text} ends below its start", source=source)
        out, s = [], float(lo)
        while s <= hi * (1 + 1e-12):
            out.append(int(round(s)))
            s *= factor
        return out
    return [parse_size(text, source=source)]


def format_size(b: float) -> str:
    """Short label of a byte count with power-of-two suffixes (``64M``, ``1.5K``)."""
    for suf, mult in (("T", 2**40), ("G", 2**30), ("M", 2**20), ("K", 2**10)):
        if b >= mult:
            v = b / mult
            return f"{v:.0f}{suf}" if v == int(v) else f"{v:.3g}{suf}"
    return f"{b:.0f}"


def _check_permutation(g: np.ndarray, src: str) -> None:
    """Concurrent send/recv pairs: each rank sends at most once and receives at most once."""
    for col, role in ((0, "sends"), (1, "receives")):
        ranks = np.sort(g[:, col])
        twice = ranks[1:] == ranks[:-1]
        if twice.any():
            raise SpecError(f"rank {int(ranks[1:][twice][0])} {role} twice in one send_recv request",
                            source=src, path="groups")


def _as_groups(groups: np.ndarray | list, source: str) -> np.ndarray:
    try:
        g = np.asarray(groups)
    except ValueError:
        raise SpecError("groups must all have the same number of ranks", source=source) from None
    if g.dtype == object:
        raise SpecError("groups must all have the same number of ranks", source=source)
    if g.ndim == 1:
        g = g[None, :]
    if g.ndim != 2 or g.shape[0] < 1 or g.shape[1] < 1:
        raise SpecError(f"groups must be a (groups, ranks) array, got shape {g.shape}", source=source)
    if not np.issubdtype(g.dtype, np.integer):
        if not np.all(np.isfinite(g)) or not np.all(g == np.round(g)):
            raise SpecError("ranks must be whole numbers", source=source)
    return np.ascontiguousarray(g, dtype=np.int64)


@dataclass(frozen=True, eq=False)
class CollectiveRequest:
    """One collective, run at once by every group it lists.

    Parameters
    ----------
    op : Op
        The operation.
    size_bytes : float
        Per-rank buffer size in the nccl-tests convention (module docstring), bytes (> 0).
        For an uneven all-to-all it is derived from ``matrix`` (mean send-buffer size).
    groups : ndarray of int64, shape (G, n)
        Ranks of each group; all G groups run concurrently and must be disjoint. For
        ``send_recv``, n = 2: ``groups[:, 0]`` sends to ``groups[:, 1]``; the pairs may share
        ranks as long as no rank sends twice or receives twice (a ring shift, as ring
        attention's neighbour exchange, is one request: every rank sends and receives once). Position order is the
        order the algorithm uses (ring order, tree labels).
    algorithm : str
        A key of :data:`~oassim.collectives.algorithms.ALGORITHMS`, or ``"auto"``.
    root : int
        Position (0..n-1) of the root in each group, for broadcast and reduce.
    matrix : ndarray of float64, shape (n, n) or (G, n, n), optional
        All-to-all only: bytes position ``i`` sends to position ``j`` (MoE token routing);
        the diagonal stays local and is not sent. Memory grows as n^2.
    blocks : ndarray of float64, shape (B, B) or (G, B, B), optional
        All-to-all only, without n^2 memory: the group's positions in B equal contiguous
        blocks (B divides n); ``blocks[a, b]`` is what the ranks of block a send in all to the
        ranks of block b, spread evenly over their rank pairs (each rank's share to itself
        stays local, as in an even all-to-all). Exactly the byte matrix
        ``blocks[a, b] / (n/B)^2`` per pair; on fat-tree scale-outs it is costed per leaf pair
        within a stated bound (:mod:`~oassim.collectives.algorithms.all_to_all_bundles`).
    source : str
        Where the request came from, for error messages (e.g. ``"argument --groups"``).

    Raises
    ------
    SpecError
        Unknown op, size <= 0, a rank named twice (in one group or across groups), a root out
        of range, a bad matrix.
    """

    op: str
    size_bytes: float
    groups: np.ndarray
    algorithm: str = "auto"
    root: int = 0
    matrix: np.ndarray | None = None
    source: str = "collective request"
    blocks: np.ndarray | None = None
    _digest: list = field(default_factory=list, repr=False, compare=False)

    def __post_init__(self) -> None:
        src = self.source
        if self.op not in OPS:
            raise SpecError(f"unknown collective op '{self.op}' (allowed: {', '.join(OPS)})", source=src, path="op")
        g = _as_groups(self.groups, src)
        object.__setattr__(self, "groups", g)
        if g.min() < 0:
            raise SpecError(f"ranks must be >= 0, got {int(g.min())}", source=src, path="groups")
        flat = np.sort(g, axis=1)
        dup = flat[:, 1:] == flat[:, :-1]
        if dup.any():
            gi, pi = np.argwhere(dup)[0]
            raise SpecError(f"group {int(gi)} names rank {int(flat[gi, pi])} twice", source=src, path="groups")
        if self.op == "send_recv" and g.shape[1] == 2:
            _check_permutation(g, src)
        elif g.shape[0] > 1:
            allr = np.sort(g.ravel())
            twice = allr[1:] == allr[:-1]
            if twice.any():
                r = int(allr[1:][twice][0])
                owners = np.flatnonzero((g == r).any(axis=1))[:2].tolist()
                raise SpecError(
                    f"rank {r} is in groups {owners[0]} and {owners[1]}; concurrent groups must be disjoint",
                    source=src, path="groups",
                )
        n = g.shape[1]
        if self.op == "send_recv" and n != 2:
            raise SpecError(f"send_recv groups are (sender, receiver) pairs; got {n} ranks per group",
                            source=src, path="groups")
        if not (0 <= int(self.root) < n):
            raise SpecError(f"root position {self.root} is outside the group (0..{n - 1})", source=src, path="root")
        object.__setattr__(self, "root", int(self.root))
        if self.matrix is not None and self.blocks is not None:
            raise SpecError("give an all-to-all either a byte matrix or blocks, not both", source=src, path="blocks")
        if self.matrix is not None:
            self._set_matrix(n, g.shape[0])
        elif self.blocks is not None:
            self._set_blocks(n, g.shape[0])
        else:
            s = self.size_bytes
            try:
                s = float(s)
            except (TypeError, ValueError):
                raise SpecError(f"size must be a number of bytes, got {s!r}", source=src, path="size_bytes") from None
            if not np.isfinite(s) or s <= 0:
                raise SpecError(f"size must be > 0 bytes, got {self.size_bytes}", source=src, path="size_bytes")
            object.__setattr__(self, "size_bytes", s)
        if not isinstance(self.algorithm, str) or not self.algorithm:
            raise SpecError("algorithm must be a name", source=src, path="algorithm")

    def _set_matrix(self, n: int, n_groups: int) -> None:
        src = self.source
        if self.op != "all_to_all":
            raise SpecError(f"a per-pair byte matrix applies to all_to_all only, not {self.op}", source=src,
                            path="matrix")
        m = np.asarray(self.matrix, dtype=np.float64)
        if m.shape not in ((n, n), (n_groups, n, n)):
            raise SpecError(f"matrix must have shape ({n}, {n}) or ({n_groups}, {n}, {n}), got {m.shape}",
                            source=src, path="matrix")
        if not np.all(np.isfinite(m)) or np.any(m < 0):
            raise SpecError("matrix entries must be finite bytes >= 0", source=src, path="matrix")
        off = m.sum() - np.trace(m, axis1=-2, axis2=-1).sum()
        if off <= 0:
            raise SpecError("matrix sends nothing between different ranks (all off-diagonal entries are 0)",
                            source=src, path="matrix")
        m = np.ascontiguousarray(m)
        m.setflags(write=False)
        object.__setattr__(self, "matrix", m)
        # nccl-tests size of an all-to-all is the per-rank send buffer; uneven: its mean
        per_group = m.sum(axis=(-2, -1)) if m.ndim == 3 else np.array([m.sum()])
        object.__setattr__(self, "size_bytes", float(per_group.mean() / n))

    def _set_blocks(self, n: int, n_groups: int) -> None:
        src = self.source
        if self.op != "all_to_all":
            raise SpecError(f"a block matrix applies to all_to_all only, not {self.op}", source=src, path="blocks")
        try:
            b = np.array(self.blocks, dtype=np.float64)
        except (TypeError, ValueError):
            raise SpecError("blocks must be a square matrix of bytes", source=src, path="blocks") from None
        if b.ndim not in (2, 3) or b.shape[-1] != b.shape[-2] or b.shape[-1] < 1 \
                or (b.ndim == 3 and b.shape[0] != n_groups):
            raise SpecError(f"blocks must have shape (B, B) or ({n_groups}, B, B), got {b.shape}",
                            source=src, path="blocks")
        B = b.shape[-1]
        if n % B:
            raise SpecError(f"{B} blocks do not divide a group of {n} ranks (B must divide n)", source=src,
                            path="blocks")
        if not np.all(np.isfinite(b)) or np.any(b < 0):
            raise SpecError("blocks entries must be finite bytes >= 0", source=src, path="blocks")
        off = b.sum() - (np.trace(b, axis1=-2, axis2=-1).sum() if n == B else 0.0)
        if off <= 0:
            raise SpecError("blocks send nothing between different ranks", source=src, path="blocks")
        b = np.ascontiguousarray(b)
        b.setflags(write=False)
        object.__setattr__(self, "blocks", b)
        per_group = b.sum(axis=(-2, -1)) if b.ndim == 3 else np.array([b.sum()])
        object.__setattr__(self, "size_bytes", float(per_group.mean() / n))

    def block_layout(self) -> tuple[np.ndarray, np.ndarray]:
        """Block traffic as (block of each position (G, n), bytes per rank pair (G, B, B))."""
        n, G = self.group_size, self.n_groups
        b = np.broadcast_to(self.blocks, (G,) + self.blocks.shape[-2:])
        B = b.shape[-1]
        k = n // B
        return np.broadcast_to(np.repeat(np.arange(B), k), (G, n)), b / float(k * k)

    @property
    def n_groups(self) -> int:
        """Concurrent groups G."""
        return int(self.groups.shape[0])

    @property
    def group_size(self) -> int:
        """Ranks per group n."""
        return int(self.groups.shape[1])

    def pair_bytes(self) -> np.ndarray:
        """All-to-all bytes per (position i -> position j), shape (G, n, n), diagonal zeroed."""
        n, G = self.group_size, self.n_groups
        if self.blocks is not None:
            blk, W = self.block_layout()
            m = W[np.arange(G)[:, None, None], blk[:, :, None], blk[:, None, :]].copy()
        elif self.matrix is None:
            m = np.full((G, n, n), self.size_bytes / n)
        else:
            m = np.broadcast_to(self.matrix, (G, n, n)).copy()
        idx = np.arange(n)
        m[:, idx, idx] = 0.0
        return m

    def check_ranks(self, n_ranks: int) -> None:
        """Raise SpecError when a rank lies beyond a cluster of ``n_ranks`` accelerators."""
        hi = int(self.groups.max())
        if hi >= n_ranks:
            raise SpecError(
                f"rank {hi} is beyond the cluster ({n_ranks:,} accelerators, ranks 0..{n_ranks - 1})",
                source=self.source, path="groups",
            )

    def key(self) -> bytes:
        """Digest of everything that determines the cost: op, size, group structure, root, matrix."""
        if not self._digest:
            h = hashlib.blake2b(digest_size=20)
            h.update(f"{self.op}|{self.size_bytes!r}|{self.root}|{self.groups.shape}".encode())
            h.update(self.groups.tobytes())
            if self.matrix is not None:
                h.update(str(self.matrix.shape).encode())
                h.update(self.matrix.tobytes())
            if self.blocks is not None:
                h.update(b"blocks" + str(self.blocks.shape).encode())
                h.update(self.blocks.tobytes())
            self._digest.append(h.digest())
        return self._digest[0]
