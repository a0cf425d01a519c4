"""Running a sweep: one point function, two executors (local processes, Dask), and the loop
that stores each finished point as it completes.

What it does: :func:`run_point` simulates one point (``runner.run`` with the point's
scenario) and returns its flat store row; it never raises: an exception becomes an error row
(``"ExcType: message"``). :class:`LocalExecutor` runs points in a pool of local processes
(``concurrent.futures``, ``forkserver`` start method: no fork of a threaded parent, and oassim
is imported once in the server rather than in every worker); :class:`DaskExecutor` submits
the same function to a Dask distributed scheduler (docs/architecture.md decision 10: scale out on an
existing engine). :func:`run_sweep` expands the sweep, opens the store, skips the points
already stored, and writes each row in this (the client) process as it arrives, with a
progress line on stderr.

Why the parent writes: the workers need no access to the store (a Dask cluster may not share
its file system), and a SIGKILL of the sweep loses only the points in flight. Local workers
watch the sweep process and exit when it dies, so a killed sweep leaves no orphans behind.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Protocol

from oassim.errors import OassimError, SpecError
from oassim.experiments.heap import settle_heap
from oassim.experiments.progress import Progress
from oassim.experiments.store import ResultStore, error_row, result_row
from oassim.experiments.sweep import Point, SweepPlan, SweepSpec, expand_sweep

__all__ = ["run_point", "cluster_facts", "point_task", "ClusterCache", "worker_caches", "Executor", "InlineExecutor",
           "LocalExecutor", "DaskExecutor", "make_executor", "run_sweep", "SweepReport"]

_FACTS: "OrderedDict[tuple[str, int | None], dict[str, Any]]" = OrderedDict()
_FACTS_MAX = 16


def cluster_facts(ref: str, accelerators: int | None) -> dict[str, Any]:
    """Per-accelerator power, optical modules and capital cost of a cluster (None when a part
    has no published figure), from :func:`oassim.topology.metrics.cluster_info`.

    Cached per process by ``(ref, accelerators)``: a sweep builds each cluster size once per
    worker for these, however many points use it.
    """
    key = (ref, accelerators)
    if key in _FACTS:
        _FACTS.move_to_end(key)
        return _FACTS[key]
    from oassim.topology.cluster import build_cluster
    from oassim.topology.cluster_spec import load_cluster
    from oassim.topology.fabric import freeze
    from oassim.topology.metrics import cluster_info

    g = build_cluster(load_cluster(ref, accelerators))
    info = cluster_info(g, freeze(g))
    n = max(1, int(info["accelerators"]))
    power = (info.get("power_W") or {}).get("total_W")
    cost = info.get("capital_cost_USD")
    facts = {
        # total of the parts with a published figure (info["power_unknown_for"] lists the others)
        "power_W_per_accelerator": None if power is None else float(power) / n,
        "optical_modules_per_accelerator": float(info["optical_modules_per_accelerator"]),
        "cost_USD_per_accelerator": None if cost is None else float(cost) / n,
    }
    _FACTS[key] = facts
    while len(_FACTS) > _FACTS_MAX:
        _FACTS.popitem(last=False)
    return facts


class ClusterCache(OrderedDict):
    """A least-recently-used cache of this process: at most ``size`` entries and, when
    ``max_accelerators`` is given, entries whose values' fabrics hold at most that many
    accelerators in all (a 100k-GPU fabric is large); the least recently used is dropped first
    (never the newest entry).

    Handed to ``runner.run(..., cluster_cache=...)`` (values: (resolved cluster, fabric)), a
    sweep point skips building a cluster this worker already built (about a third of a small
    point's time); the engine and plan caches (:func:`worker_caches`) are instances too.
    """

    def __init__(self, size: int = 4, max_accelerators: int | None = None):
        super().__init__()
        self.size = int(size)
        self.max_accelerators = max_accelerators

    def get(self, key: Any, default: Any = None) -> Any:
        if key in self:
            self.move_to_end(key)
            return self[key]
        return default

    def _accelerators(self) -> int:
        # values are (resolved cluster, fabric) or (fabric, engine)
        return sum(int(getattr(v[1], "n_accelerators", 0) or getattr(v[0], "n_accelerators", 0))
                   for v in self.values())

    def __setitem__(self, key: Any, value: Any) -> None:
        super().__setitem__(key, value)
        self.move_to_end(key)
        while len(self) > self.size or (len(self) > 1 and self.max_accelerators is not None
                                        and self._accelerators() > self.max_accelerators):
            self.popitem(last=False)


_CLUSTERS = ClusterCache(size=16, max_accelerators=65536)
_RELIABILITY = ClusterCache()  # the reliability campaigns' counts, fabrics and re-costed slowdowns
# Per worker process, keyed by the resolved inputs (runner.run): collective engines (their
# memo answers a request another point on the same cluster costed), compiled plans, and the
# checkout's git state (read once: a sweep runs one version of the code).
# engines (with their memo and group-structure caches) of up to 16 clusters, 16,384 accelerators in all
_ENGINES = ClusterCache(size=16, max_accelerators=16384)
_PLANS = ClusterCache(size=64)
_GIT: list[dict[str, Any]] = []


def worker_caches(clear: bool = False) -> dict[str, Any]:
    """The caches this process's sweep points share (``clear``: empty them first)."""
    if clear:
        _CLUSTERS.clear()
        _RELIABILITY.clear()
        _ENGINES.clear()
        _PLANS.clear()
        _GIT.clear()
    return {"cluster_cache": _CLUSTERS, "engine_cache": _ENGINES, "plan_cache": _PLANS}


def run_point(task: Mapping[str, Any]) -> dict[str, Any]:
    """Simulate one sweep point and return its store row; never raises an ``Exception``.

    Parameters
    ----------
    task : mapping
        :func:`point_task` of a :class:`~oassim.experiments.sweep.Point`; ``"reuse": False``
        runs it without this worker's caches (:func:`worker_caches`).

    Returns
    -------
    dict
        :func:`~oassim.experiments.store.result_row`, or
        :func:`~oassim.experiments.store.error_row` when the point raised.
    """
    import resource

    from oassim import __version__
    from oassim.experiments.runner import git_state, run

    worker = f"{socket.gethostname()}:{os.getpid()}"
    t0 = time.perf_counter()
    try:
        if not _GIT:
            _GIT.append(git_state())
        results = run(task["scenario"], git=_GIT[0], replay=task.get("replay", "auto"),
                      **(worker_caches() if task.get("reuse", True) else {}))
        cl = task["scenario"]["cluster"]
        try:
            facts: dict[str, Any] | None = cluster_facts(cl.get("preset") or cl.get("file"), cl.get("accelerators"))
        except Exception:  # facts are extra columns: never fail a simulated point for them
            facts = None
        row = result_row(task, results, facts, wall_s=time.perf_counter() - t0, worker=worker)
        row["replay"] = str((results.provenance.get("replay") or {}).get("mode", "full"))
        if task.get("reliability"):  # the sweep asked for a failure/checkpoint campaign per point
            from oassim.experiments.reliability import sweep_columns

            row.update(sweep_columns(row, results.scenario, cache=_RELIABILITY, **task["reliability"]))
    except Exception as exc:
        row = error_row(task, exc, wall_s=time.perf_counter() - t0, worker=worker, version=__version__,
                        git=git_state())
    row["worker_peak_rss_MB"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if task.get("reuse", True):
        settle_heap()
    return row


def point_task(p: Point) -> dict[str, Any]:
    """What is shipped to a worker for point ``p`` (plain data: cheap to pickle)."""
    return {"point_id": p.point_id, "index": p.index, "values": p.values, "repeat": p.repeat, "seed": p.seed,
            "scenario": p.scenario}


class Executor(Protocol):
    """Runs point tasks; yields their rows in completion order."""

    def run(self, tasks: list[dict[str, Any]]) -> Iterator[dict[str, Any]]: ...

    def close(self) -> None: ...


class InlineExecutor:
    """Points one after another in this process (``workers=0``: debugging, tests, baselines)."""

    def run(self, tasks: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for t in tasks:
            yield run_point(t)

    def close(self) -> None:
        pass


def _start_time(pid: int) -> str | None:
    """Start time of process ``pid`` (Linux ``/proc``; None elsewhere or when it is gone or a zombie)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] == "Z" else fields[19]


def _alive(pid: int, started: str | None) -> bool:
    if started is not None:  # /proc: the same process (not a reused pid), not a zombie
        return _start_time(pid) == started
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        pass
    return True


def _watch_parent(pid: int, started: str | None) -> None:
    while True:
        time.sleep(0.5)
        if not _alive(pid, started):
            os._exit(0)


def _worker_init(parent: int, started: str | None) -> None:
    """Local worker set-up: Ctrl-C is the parent's business; exit when the sweep process dies.

    The sweep process is watched by pid (and start time), not through ``getppid``: a
    ``forkserver`` worker's parent is the fork server, which outlives a killed sweep as long
    as its workers do.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_watch_parent, args=(parent, started), daemon=True).start()


class LocalExecutor:
    """A pool of ``workers`` local processes (``concurrent.futures.ProcessPoolExecutor``).

    Parameters
    ----------
    workers : int
    start_method : {"forkserver", "spawn"}, optional
        Default ``forkserver`` where available, else ``spawn``.
    """

    def __init__(self, workers: int, start_method: str | None = None):
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        methods = mp.get_all_start_methods()
        method = start_method or ("forkserver" if "forkserver" in methods else "spawn")
        ctx = mp.get_context(method)
        if method == "forkserver":
            ctx.set_forkserver_preload(["oassim.experiments.executors", "oassim.experiments.runner"])
        self.workers = int(workers)
        me = os.getpid()
        self.pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=ctx, initializer=_worker_init,
                                        initargs=(me, _start_time(me)))
        self._futures: list[Any] = []

    def run(self, tasks: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        from concurrent.futures import as_completed
        from concurrent.futures.process import BrokenProcessPool

        self._futures = [self.pool.submit(run_point, t) for t in tasks]
        for fut in as_completed(self._futures):
            try:
                yield fut.result()
            except BrokenProcessPool:
                raise OassimError("a worker process died (killed, or out of memory); the points finished so far "
                                  "are stored: re-run the same command to resume") from None

    def close(self) -> None:
        if all(f.done() for f in self._futures):
            self.pool.shutdown(wait=True)
            return
        procs = list((getattr(self.pool, "_processes", None) or {}).values())
        self.pool.shutdown(wait=False, cancel_futures=True)
        for p in procs:  # points in flight of an interrupted sweep: stop them now
            if p.is_alive():
                p.terminate()
        for p in procs:
            p.join(timeout=5)


class DaskExecutor:
    """Points as tasks of a Dask distributed cluster (``distributed.Client``).

    Parameters
    ----------
    address : str
        Scheduler address, ``tcp://HOST:PORT`` or ``tls://HOST:PORT`` (e.g.
        ``tcp://10.0.0.1:8786``). The scheduler must be one you trust: its workers run code
        and the rows come back pickled (docs/sweeps.md, "Trust").
    timeout : float
        Seconds to wait for the connection.
    security : distributed.security.Security, optional
        Certificates of a ``tls://`` scheduler (:func:`tls_security`).

    Raises
    ------
    SpecError
        The address is malformed or not tcp:// / tls://, nothing listens there, the peer does
        not answer as a Dask scheduler (:func:`~oassim.experiments.dask_probe.probe_scheduler`,
        which never unpickles), the TLS handshake fails (source ``argument --scheduler``), or
        distributed is not installed.
    """

    def __init__(self, address: str, timeout: float = 5.0, security: Any = None):
        import logging

        try:
            from distributed import Client
        except ImportError:
            raise SpecError("running on a Dask cluster needs dask[distributed] (pip install 'oassim[dask]')",
                            source="argument --scheduler") from None
        from oassim.experiments.dask_probe import probe_scheduler, shown

        probe_scheduler(address, timeout, security)  # before any byte of the peer is unpickled
        log = logging.getLogger("distributed")
        level = log.level
        log.setLevel(logging.CRITICAL)  # the failure is reported once, below
        try:
            self.client = Client(address, timeout=timeout, set_as_default=False, security=security)
        except Exception as exc:
            msg = " ".join(str(exc).split())[:200] or type(exc).__name__
            raise SpecError(f"cannot connect to the Dask scheduler at {shown(address)} ({type(exc).__name__}: {msg})",
                            source="argument --scheduler") from None
        finally:
            log.setLevel(level)
        self.address = address
        self._futures: list[Any] = []

    def run(self, tasks: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        from distributed import as_completed

        token = uuid.uuid4().hex[:8]
        self._futures = [self.client.submit(run_point, t, key=f"oassim-point-{t['point_id']}-{token}")
                         for t in tasks]
        by_key = {f.key: t for f, t in zip(self._futures, tasks)}
        for fut in as_completed(self._futures, loop=self.client.loop):
            try:
                row = fut.result()
            except Exception as exc:  # KilledWorker: the point took down every worker it ran on
                row = error_row(by_key[fut.key], exc, wall_s=0.0, worker="dask")
            fut.release()
            yield row

    def close(self) -> None:
        try:
            if self._futures:
                self.client.cancel(self._futures)
            self.client.close()
        except Exception:  # pragma: no cover - closing a broken connection
            pass


def make_executor(workers: int | None = None, scheduler: str | None = None, security: Any = None) -> Executor:
    """A Dask executor when ``scheduler`` is given (with ``security`` for a ``tls://`` one),
    else local processes (``workers`` of them, default the CPUs available; 0 runs in this process)."""
    if scheduler:
        return DaskExecutor(scheduler, security=security)
    if workers == 0:
        return InlineExecutor()
    if workers is None:
        workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return LocalExecutor(max(1, workers))


@dataclass(frozen=True)
class SweepReport:
    """What :func:`run_sweep` did: points of the sweep, reused from the store, run now, failed."""

    name: str
    out: Path
    points: int
    reused: int
    ran: int
    failed: int
    wall_s: float


def run_sweep(sweep: str | Path | Mapping[str, Any] | SweepSpec | SweepPlan, out: str | Path, *,
              workers: int | None = None, scheduler: str | None = None, security: Any = None, quiet: bool = False,
              retry_failed: bool = False, stream: Any = None, executor: Executor | None = None,
              replay: str = "auto") -> SweepReport:
    """Run a sweep into the result store ``out``, resuming what an earlier run left.

    Parameters
    ----------
    sweep : path, mapping, SweepSpec or SweepPlan
        A sweep file (``docs/sweeps.md``) or its expansion.
    out : str or Path
        The store folder (created; an existing store of the same base scenario is resumed).
    workers : int, optional
        Local worker processes (default: the CPUs available; 0: run in this process).
    scheduler : str, optional
        A Dask scheduler address (``tcp://HOST:PORT`` or ``tls://HOST:PORT``); the points run
        on that cluster instead. Only use a scheduler you trust: its workers run code and the
        rows come back pickled (docs/sweeps.md, "Trust").
    security : distributed.security.Security, optional
        Certificates of a ``tls://`` scheduler, e.g.
        :func:`~oassim.experiments.dask_probe.tls_security`.
    quiet : bool
        No progress line.
    retry_failed : bool
        Run again the points stored with an error.
    stream : text stream, optional
        Where the progress line goes (default stderr).
    executor : Executor, optional
        Use this executor (``workers`` and ``scheduler`` are then ignored; it is not closed).
    replay : {"auto", "full", "periodic"}
        Replay mode of every point (``runner.run``); each row's ``replay`` column says what
        the point did ("periodic" or "full").

    Returns
    -------
    SweepReport

    Raises
    ------
    SpecError
        Bad sweep file, unreachable scheduler, or a store of another sweep: raised before
        anything is written.
    """
    t0 = time.perf_counter()
    from oassim.scheduler.simulate import check_replay

    check_replay(replay, source="argument --replay")
    plan = sweep if isinstance(sweep, SweepPlan) else expand_sweep(sweep)
    record = plan.record()
    ResultStore.check(out, record, source=plan.source)
    done = ResultStore(out).finished(include_errors=not retry_failed) if Path(out, "points").is_dir() else set()
    todo = [p for p in plan.points if p.point_id not in done]
    own = executor is None
    if own and todo:
        n = None if workers is None else min(workers, len(todo))
        executor = make_executor(n, scheduler, security)
    store = ResultStore.open(out, record, source=plan.source)
    done = store.finished(include_errors=not retry_failed)  # again, now that the store is locked
    todo = [p for p in plan.points if p.point_id not in done]
    progress = Progress(len(plan.points), len(plan.points) - len(todo), name=plan.spec.name, stream=stream,
                        quiet=quiet)
    failed = ran = 0
    progress.quiet = progress.quiet or not todo
    try:
        progress.start()
        if todo:
            assert executor is not None
            tasks = [point_task(p) for p in todo]
            for t in tasks:
                t["replay"] = replay
            if plan.spec.reliability is not None:
                for t in tasks:
                    t["reliability"] = plan.spec.reliability.model_dump()
            for row in executor.run(tasks):
                store.write(row)
                ok = row.get("status") == "ok"
                ran += 1
                failed += 0 if ok else 1
                progress.update(ok)
    except BaseException:
        progress.abort()
        raise
    finally:
        if own and executor is not None:
            executor.close()
        store.close()
    progress.close()
    return SweepReport(plan.spec.name, Path(out), len(plan.points), len(plan.points) - len(todo), ran, failed,
                       time.perf_counter() - t0)
