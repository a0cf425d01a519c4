"""The sweep result store: one small Parquet file per finished point, written atomically.

What is stored (docs/architecture.md decisions 8 and 10): a folder ``DIR`` holding ``sweep.yaml`` (the
resolved sweep: base scenario, axes, seeds, constraints) and ``points/<point_id>.parquet``,
one row per finished point with its axis values, seed, key metrics as flat columns, the full
resolved scenario (JSON), the oassim version, the git state, wall time and worker. A point that
raised is a row too (``status`` ``"error"``, ``error`` ``"ExcType: message"``).
:func:`load_results` concatenates the rows into one DataFrame.

Why one file per point, each written to a temporary name and moved into place with
``os.replace`` (:func:`~oassim.analysis.trace.atomic_write`): a point is either wholly in the
store or absent, whatever moment the sweep is killed at (SIGKILL included), so a re-run skips
exactly the finished points and loses only those in flight. A lock file (``fcntl.flock``,
released by the kernel when the process dies) keeps two sweeps from writing one store at once;
a sweep that ends removes it, and one left by a killed sweep is not held, so the next sweep
simply takes it. The rows are built here
(:func:`result_row`, :func:`error_row`) so that the store owns its columns.
"""

from __future__ import annotations

import json
import math
import os
import re
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import yaml

from oassim.errors import OassimError, SpecError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["ResultStore", "load_results", "read_sweep_record", "result_row", "error_row", "METRIC_COLUMNS",
           "SWEEP_FILE", "POINTS_DIR", "COMPACT_FILE", "LOCK_FILE"]

SWEEP_FILE = "sweep.yaml"
POINTS_DIR = "points"
LOCK_FILE = ".lock"
METRIC_COLUMNS = (
    "iteration_time_s", "tokens_per_s", "tflops_per_accelerator", "mfu", "hfu", "exposed_comm_s", "bubble_s",
    "imbalance_s", "sync_s", "compute_s", "optimizer_s", "memory_per_accelerator_GB",
)
"""Headline metrics of :func:`oassim.analysis.metrics.summary` copied as columns."""

_ID = re.compile(r"^[0-9a-f]{16}$")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _scalar(v: Any) -> Any:
    """A Parquet-friendly cell: numbers, strings, bools and None as they are, NaN/inf as None,
    anything else as JSON text."""
    if hasattr(v, "item") and not isinstance(v, (str, bytes)):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    return json.dumps(v, sort_keys=True, default=str)


def _base_row(task: Mapping[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {"point_id": task["point_id"], "status": "ok", "error": None}
    for path, v in task["values"].items():
        row[path] = _scalar(v)
    row["repeat"] = int(task["repeat"])
    row["seed"] = int(task["seed"])
    return row


def _provenance_cols(task: Mapping[str, Any], version: str | None, git: Mapping[str, Any] | None,
                     wall_s: float, worker: str) -> dict[str, Any]:
    git = git or {}
    return {"network": task["scenario"].get("network"), "version": version, "git_commit": git.get("commit"),
            "git_dirty": git.get("dirty"), "wall_s": float(wall_s), "worker": worker, "finished_utc": _now()}


def result_row(task: Mapping[str, Any], results: Any, cluster: Mapping[str, Any] | None, *, wall_s: float,
               worker: str) -> dict[str, Any]:
    """The store row of a finished point.

    Parameters
    ----------
    task : mapping
        The point as submitted: ``point_id``, ``values`` (axis values by dotted path),
        ``repeat``, ``seed``, ``scenario``.
    results : Results
        What :func:`~oassim.experiments.runner.run` returned.
    cluster : mapping, optional
        Per-accelerator facts of the cluster: ``power_W_per_accelerator``,
        ``optical_modules_per_accelerator``, ``cost_USD_per_accelerator`` (None when unknown).
    wall_s : float
        Wall-clock seconds of the point (run and summary).
    worker : str
        ``host:pid`` of the process that ran it.

    Returns
    -------
    dict
        Flat: the columns of :func:`load_results`.
    """
    from oassim.analysis.metrics import summary

    s = summary(results)
    row = _base_row(task)
    for k in METRIC_COLUMNS:
        row[k] = _scalar(s.get(k))
    row["accelerators"] = _scalar(s.get("accelerators"))
    for k, v in (s.get("breakdown") or {}).items():
        row[f"breakdown_{k}"] = _scalar(v)
    for k, v in (s.get("exposed_comm_by_dim") or {}).items():
        row[f"exposed_{k}_s"] = _scalar(v)
    tiers = getattr(results, "tiers", None)
    if tiers is not None and len(tiers):
        for r in tiers.itertuples():
            row[f"util_{r.tier}"] = _scalar(getattr(r, "max_link_utilisation", None))
            row[f"util_mean_{r.tier}"] = _scalar(getattr(r, "utilisation", None))
    top = next(iter(s.get("bottlenecks") or []), None)
    row["bottleneck"] = f"{top.get('kind')}: {top.get('name')}" if top else None
    for k in ("power_W_per_accelerator", "optical_modules_per_accelerator", "cost_USD_per_accelerator"):
        row[k] = _scalar((cluster or {}).get(k))
    prov = dict(getattr(results, "provenance", {}) or {})
    row["accelerators_built"] = _scalar((prov.get("cluster") or {}).get("accelerators_built"))
    for step in ("build", "plan", "simulate"):  # where a point's time goes (runner provenance)
        row[f"wall_{step}_s"] = _scalar((prov.get("wall_s") or {}).get(step))
    row["scenario"] = json.dumps(results.scenario, sort_keys=False, default=str)
    row.update(_provenance_cols(task, prov.get("version"), prov.get("git"), wall_s, worker))
    return row


def error_row(task: Mapping[str, Any], exc: BaseException, *, wall_s: float, worker: str,
              version: str | None = None, git: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The store row of a point that raised: ``status`` "error", ``error`` "ExcType: message"
    (one line), the point's own scenario, no metrics."""
    row = _base_row(task)
    msg = " ".join(str(exc).split()) or repr(exc)
    row["status"] = "error"
    row["error"] = f"{type(exc).__name__}: {msg}"
    row["scenario"] = json.dumps(task["scenario"], sort_keys=False, default=str)
    row.update(_provenance_cols(task, version, git, wall_s, worker))
    return row


def read_sweep_record(root: str | Path) -> dict[str, Any]:
    """The ``sweep.yaml`` of a store; an :class:`OassimError` when ``root`` is not a store."""
    p = Path(root) / SWEEP_FILE
    if not p.is_file():
        raise OassimError(f"{root}: not an oassim sweep store (no {SWEEP_FILE}); "
                          f"run oassim sweep SWEEP.yaml --out {root}")
    try:
        rec = yaml.safe_load(p.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise OassimError(f"{p}: cannot read the sweep record ({type(exc).__name__})") from None
    if not isinstance(rec, dict) or "base_fingerprint" not in rec:
        raise OassimError(f"{p}: not an oassim sweep record")
    return rec


def _leftover(p: Path) -> bool:
    """What a sweep killed before writing its sweep.yaml leaves: the lock file, an empty points/."""
    return p.name == LOCK_FILE or (p.name == POINTS_DIR and p.is_dir() and not any(p.iterdir()))


class ResultStore:
    """A sweep's result folder (see the module docstring).

    Use :meth:`open` to create or reopen one for writing; reading needs no object
    (:func:`load_results`).
    """

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.points_dir = self.root / POINTS_DIR
        self._lock_fd: int | None = None

    @classmethod
    def open(cls, root: str | Path, record: Mapping[str, Any], *, source: str | None = None) -> "ResultStore":
        """Create ``root`` (or reopen it) for the sweep ``record`` and take its lock.

        A new store gets ``sweep.yaml``; an existing one must hold a sweep of the same base
        scenario (same ``base_fingerprint``): then ``sweep.yaml`` is replaced by ``record``
        when axes, constraints or seeds changed, and its finished points are reused.

        Raises
        ------
        SpecError
            ``root`` holds a sweep of another base scenario (located at ``source: base``).
        OassimError
            ``root`` is a file or a non-empty folder that is not a store, or another sweep
            holds its lock.
        """
        existing = cls.check(root, record, source=source)
        store = cls(root)
        r = store.root
        store.points_dir.mkdir(parents=True, exist_ok=True)
        store._lock()
        for stale in store.points_dir.glob(".*.tmp"):  # left by a killed run; we hold the lock
            try:
                stale.unlink()
            except OSError:
                pass
        from oassim.analysis.trace import atomic_write

        if existing is None or {k: v for k, v in existing.items() if k != "written_utc"} != dict(record):
            text = ("# oassim sweep store: the resolved sweep (oassim results DIR reads it)\n"
                    + yaml.safe_dump({**record, "written_utc": _now()}, sort_keys=False))
            atomic_write(r / SWEEP_FILE, lambda t: t.write_text(text, encoding="utf-8"))
        return store

    @staticmethod
    def check(root: str | Path, record: Mapping[str, Any], *, source: str | None = None) -> dict[str, Any] | None:
        """Can the sweep ``record`` be written into ``root``? Reads only; returns the existing
        record (None for a new store). Raises as :meth:`open`."""
        r = Path(root)
        if r.exists() and not r.is_dir():
            raise OassimError(f"argument --out: {r} exists and is not a folder")
        if (r / SWEEP_FILE).exists():
            existing = read_sweep_record(r)
            if existing.get("base_fingerprint") != record["base_fingerprint"]:
                raise SpecError(f"the store {r} holds a sweep of another base scenario ({existing.get('name')!r}); "
                                "use another --out folder or delete that one", source=source, path="base")
            return existing
        if r.is_dir() and any(p for p in r.iterdir() if not _leftover(p)):
            raise OassimError(f"argument --out: {r} is a non-empty folder without {SWEEP_FILE}, not a sweep store; "
                              "choose a new folder")
        return None

    def _lock(self) -> None:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX: no lock
            return
        path = self.root / LOCK_FILE
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                pid = ResultStore.holder(self.root)
                raise OassimError(f"argument --out: {self.root} is in use by another oassim sweep"
                                  + (f" (pid {pid})" if pid else "")) from None
            try:  # a sweep that just finished unlinks the file it held: lock the file now at the path
                if os.fstat(fd).st_ino == os.stat(path).st_ino:
                    break
            except FileNotFoundError:
                pass
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._lock_fd = fd

    @staticmethod
    def holder(root: str | Path) -> int | None:
        """Pid of the sweep writing ``root`` now (0 if its lock file names none), or None: a
        ``.lock`` file left by a killed sweep (its lock died with it) is not held, whatever
        pid it names."""
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX
            return None
        try:
            fd = os.open(Path(root) / LOCK_FILE, os.O_RDONLY)
        except OSError:
            return None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except OSError:  # held
                text = os.read(fd, 32).decode("ascii", "replace").strip()
                return int(text) if text.isdigit() else 0
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        finally:
            os.close(fd)

    def close(self) -> None:
        """Release the lock and remove the lock file (the lock is also released when the
        process ends, however it ends; a file left then is harmless)."""
        if self._lock_fd is not None:
            try:  # unlinked while still held: see _lock for the sweep that opened it meanwhile
                os.unlink(self.root / LOCK_FILE)
            except OSError:
                pass
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> "ResultStore":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def finished(self, *, include_errors: bool = True) -> set[str]:
        """Ids of the points stored (without the error rows when ``include_errors`` is False)."""
        ids = {p.stem for p in self.points_dir.glob("*.parquet") if _ID.match(p.stem) and p.stat().st_size > 0}
        if include_errors:
            return ids
        frame = load_results(self.root, ids=ids)
        return set(frame.loc[frame["status"] == "ok", "point_id"]) if len(frame) else set()

    def write(self, row: Mapping[str, Any]) -> Path:
        """Write one point's row as ``points/<point_id>.parquet``, atomically."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        from oassim.analysis.trace import atomic_write

        pid = str(row["point_id"])
        if not _ID.match(pid):
            raise ValueError(f"not a point id: {pid!r}")
        table = pa.Table.from_pylist([dict(row)])
        path = self.points_dir / f"{pid}.parquet"
        atomic_write(path, lambda t: pq.write_table(table, t, compression="zstd"))
        return path


def load_results(root: str | Path, *, ids: set[str] | None = None, compact: bool = True) -> "pd.DataFrame":
    """All stored points of a sweep as one DataFrame.

    Parameters
    ----------
    root : str or Path
        The store (``oassim sweep ... --out DIR``).
    ids : set of str, optional
        Only these point ids.
    compact : bool
        When many point files had to be read one by one, save all rows in
        ``DIR/compacted.parquet`` (atomically; skipped when the folder is read-only) so the
        next load reads one file plus the points written since. The point files stay the
        record: a cached row is used only while its point file is the one it was read from.

    Returns
    -------
    pandas.DataFrame
        One row per point, in the order of the current sweep's axes: ``point_id``,
        ``status`` ("ok" or "error"), ``error``, the axis (and derived) values by dotted key
        path, ``repeat``, ``seed``, the metrics (:data:`METRIC_COLUMNS`, ``breakdown_*``,
        ``exposed_<dim>_s``, ``util_<tier>`` (busiest link) and ``util_mean_<tier>``,
        ``bottleneck``, ``power_W_per_accelerator``, ``optical_modules_per_accelerator``,
        ``cost_USD_per_accelerator``), ``scenario`` (resolved, JSON), ``network``,
        ``version``, ``git_commit``, ``git_dirty``, ``wall_s`` (the whole point) and
        ``wall_build_s``, ``wall_plan_s``, ``wall_simulate_s`` (the runner's steps), ``worker``
        (``host:pid``), ``worker_peak_rss_MB`` (that process's peak so far), ``finished_utc``.
        A point file that cannot be read is skipped with a warning.
    """
    import pandas as pd
    import pyarrow.parquet as pq

    files = {p.stem: p for p in Path(root, POINTS_DIR).glob("*.parquet")
             if _ID.match(p.stem) and (ids is None or p.stem in ids)}
    stamps = {pid: _stamp(p) for pid, p in files.items()}
    cached = _read_compacted(Path(root)) if files else {}
    rows, fresh = [], 0
    for pid in sorted(files):
        hit = cached.get(pid)
        if hit is not None and hit[0] == stamps[pid]:
            rows.append(hit[1])
            continue
        try:
            rows.extend(pq.ParquetFile(files[pid]).read().to_pylist())
            fresh += 1
        except Exception as exc:  # a file cut short by a power loss: report, skip
            warnings.warn(f"{files[pid]}: unreadable point file skipped ({type(exc).__name__})", stacklevel=2)
    if compact and ids is None and fresh >= _COMPACT_AFTER:
        _write_compacted(Path(root), rows, stamps)
    frame = pd.DataFrame(rows)
    if not len(frame):
        return pd.DataFrame(columns=["point_id", "status", "error"])
    lead = ["point_id", "status", "error"]
    try:
        axes = [a for a in read_sweep_record(root).get("axis_paths", []) if a in frame.columns]
    except OassimError:
        axes = []
    order = lead + axes + [c for c in frame.columns if c not in lead and c not in axes]
    frame = frame[order]
    if axes and "repeat" in frame.columns:
        try:
            frame = frame.sort_values(axes + ["repeat"], kind="stable", na_position="last").reset_index(drop=True)
        except TypeError:  # values of mixed types in one axis: keep the file order
            pass
    return frame


COMPACT_FILE = "compacted.parquet"
_COMPACT_AFTER = 64  # point files read one by one before load_results writes the compacted file


def _stamp(p: Path) -> str:
    """Identity of one point file as written: a rewrite (os.replace) gives a new inode."""
    st = p.stat()
    return f"{st.st_ino}:{st.st_mtime_ns}:{st.st_size}"


def _read_compacted(root: Path) -> dict[str, tuple[str, dict[str, Any]]]:
    import pyarrow.parquet as pq

    path = root / COMPACT_FILE
    if not path.is_file():
        return {}
    try:
        rows = pq.ParquetFile(path).read().to_pylist()
    except Exception:  # a stale or foreign file: read the point files instead
        return {}
    out = {}
    for r in rows:
        stamp = r.pop("_file", None)
        out[str(r.get("point_id"))] = (stamp, {k: v for k, v in r.items() if v is not None})
    return out


def _write_compacted(root: Path, rows: list[dict[str, Any]], stamps: Mapping[str, str]) -> None:
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    from oassim.analysis.trace import atomic_write

    try:
        frame = pd.DataFrame(rows)
        frame["_file"] = frame["point_id"].map(stamps)
        table = pa.Table.from_pandas(frame, preserve_index=False)
        atomic_write(root / COMPACT_FILE, lambda t: pq.write_table(table, t, compression="zstd"))
    except (OSError, pa.ArrowException, TypeError, ValueError):  # read-only store, mixed-type column: no cache
        pass
