"""``oassim sweep``, ``oassim results`` and ``oassim plot``: parameter sweeps from the shell.

Thin commands over :mod:`oassim.experiments` (``run_sweep``, ``load_results``): ``sweep``
runs a sweep file into a result store (local processes, or a Dask cluster with
``--scheduler``), resuming what an earlier run left; ``results`` prints the stored points;
``plot`` draws one metric against a key. Bad input is one line ``oassim: error: FILE:
key.path: message`` with exit status 2 and nothing written (``oassim.cli.main``).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from oassim.cli._common import positive_int
from oassim.errors import OassimError, SpecError

__all__ = ["add_parsers", "COMMANDS"]

# What `oassim results` shows per point, besides the axes (all columns: --json / --csv).
_SHOWN = ("iteration_time_s", "tokens_per_s", "tflops_per_accelerator", "mfu", "exposed_comm_s",
          "memory_per_accelerator_GB")


def _non_negative_int(text: str) -> int:
    return 0 if text.strip() == "0" else positive_int(text)


def add_parsers(sub: Any) -> None:
    """Add the ``sweep``, ``results`` and ``plot`` subcommands."""
    s = sub.add_parser(
        "sweep", help="run a parameter sweep into a result store (local processes or a Dask cluster)",
        description="Expand a sweep file (docs/sweeps.md) into points and simulate each one, storing every "
        "finished point in DIR as it completes. Re-running the same command skips the stored points.")
    s.add_argument("sweep", metavar="SWEEP.yaml", help="sweep file (see experiments/sweeps/)")
    s.add_argument("--out", "-o", required=True, metavar="DIR", help="result store folder (created or resumed)")
    s.add_argument("--workers", "-j", type=_non_negative_int, default=None, metavar="N",
                   help="local worker processes (default: the CPUs available; 0: in this process)")
    s.add_argument("--scheduler", default=None, metavar="tcp://HOST:PORT",
                   help="run the points on this Dask distributed scheduler instead of local processes "
                   "(tcp:// or tls://). Only connect to a scheduler you control: its workers run code and the "
                   "results come back pickled; prefer tls:// with your own CA (docs/sweeps.md, Trust)")
    s.add_argument("--tls-ca-file", default=None, metavar="CA.pem",
                   help="tls:// scheduler: the CA certificate that signed the scheduler's certificate")
    s.add_argument("--tls-cert", default=None, metavar="CERT.pem", help="tls:// scheduler: this client's certificate")
    s.add_argument("--tls-key", default=None, metavar="KEY.pem",
                   help="tls:// scheduler: this client's private key (default: in the --tls-cert file)")
    s.add_argument("--replay", default="auto", choices=["auto", "full", "periodic"],
                   help="replay mode of every point, as oassim run --replay (default auto); the store's "
                   "replay column says what each point did")
    s.add_argument("--retry-failed", action="store_true", help="run again the points stored with an error")
    s.add_argument("--dry-run", action="store_true", help="list the points without running or writing anything")
    s.add_argument("--quiet", "-q", action="store_true", help="no progress line on stderr")

    r = sub.add_parser("results", help="summary table of a sweep's result store",
                       description="Print the points stored by oassim sweep: counts, then one row per point "
                       "with its axis values and key metrics.")
    r.add_argument("dir", metavar="DIR", help="result store folder (oassim sweep --out)")
    fmt = r.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="print every column as a JSON list of records")
    fmt.add_argument("--csv", action="store_true", help="print every column as CSV")
    r.add_argument("--sort", default=None, metavar="KEY", help="sort the rows by this column (descending for "
                   "throughput-like metrics: tokens_per_s, mfu, tflops_per_accelerator)")

    p = sub.add_parser("plot", help="plot a metric of a sweep against a key (PNG)",
                       description="Plot column Y against column X of the stored points (ok points only), one "
                       "series per value of --hue; markers are points, the line joins their mean per X.")
    p.add_argument("dir", metavar="DIR", help="result store folder (oassim sweep --out)")
    p.add_argument("--x", required=True, metavar="KEY", help="x column, e.g. cluster.accelerators")
    p.add_argument("--y", required=True, metavar="KEY", help="y column, e.g. mfu")
    p.add_argument("--hue", default=None, metavar="KEY", help="one series per value of this column")
    p.add_argument("-o", "--output", required=True, metavar="OUT.png", help="PNG file to write")
    p.add_argument("--logx", action="store_true", help="logarithmic x axis")
    p.add_argument("--logy", action="store_true", help="logarithmic y axis")


def _cmd_sweep(args: argparse.Namespace) -> int:
    from oassim.experiments.executors import run_sweep
    from oassim.experiments.sweep import expand_sweep

    if args.scheduler and args.workers is not None:
        raise SpecError("not used with --scheduler (the Dask cluster has its own workers)", source="argument --workers")
    security = _security(args)
    plan = expand_sweep(args.sweep)
    asked = (plan.spec.samples or 0) * plan.spec.repeats
    if plan.spec.sampling == "random" and len(plan.points) < asked:
        sys.stderr.write(f"oassim: note: {args.sweep}: drew {len(plan.points):,} distinct valid points of the "
                         f"{asked:,} asked (the space is small or the constraints strict)\n")
    if args.dry_run:
        _print_plan(plan)
        return 0
    rep = run_sweep(plan, args.out, workers=args.workers, scheduler=args.scheduler, security=security,
                    quiet=args.quiet, retry_failed=args.retry_failed, replay=args.replay)
    print(f"sweep {rep.name}: {rep.points:,} points in {rep.out} ({rep.reused:,} from earlier runs, {rep.ran:,} run "
          f"now, {rep.failed:,} failed) in {rep.wall_s:.1f} s; see: oassim results {rep.out}")
    return 0


def _security(args: argparse.Namespace) -> Any:
    """The TLS settings of ``--scheduler tls://...`` (None for tcp://); checked before the sweep file is expanded."""
    given = [f for f, v in (("--tls-ca-file", args.tls_ca_file), ("--tls-cert", args.tls_cert),
                            ("--tls-key", args.tls_key)) if v is not None]
    tls = bool(args.scheduler) and args.scheduler.strip().lower().startswith("tls://")
    if given and not tls:
        raise SpecError("is for a tls:// scheduler (--scheduler tls://HOST:PORT)", source=f"argument {given[0]}")
    if not tls:
        return None
    from oassim.experiments.dask_probe import tls_security

    return tls_security(args.tls_ca_file, args.tls_cert, args.tls_key)


def _print_plan(plan: Any) -> None:
    import pandas as pd

    print(f"sweep {plan.spec.name}: {len(plan.points):,} points ({plan.candidates:,} candidates, {plan.dropped:,} "
          f"dropped by constraints, {plan.spec.repeats} seed(s) each)")
    frame = pd.DataFrame([{"point_id": p.point_id, **p.values, "seed": p.seed} for p in plan.points])
    sys.stdout.write(frame.to_string(index=False, max_rows=40) + "\n")


def _frame(dir_: str):
    from oassim.experiments.store import load_results, read_sweep_record

    record = read_sweep_record(dir_)
    return record, load_results(dir_)


def _check_column(frame: Any, key: str, flag: str) -> None:
    if key not in frame.columns:
        cols = ", ".join(c for c in frame.columns if c not in ("scenario", "error"))
        raise SpecError(f"no column '{key}' in the results (columns: {cols})", source=f"argument {flag}")


def _cmd_results(args: argparse.Namespace) -> int:
    record, frame = _frame(args.dir)
    if args.sort:
        _check_column(frame, args.sort, "--sort")
        desc = args.sort in ("tokens_per_s", "mfu", "hfu", "tflops_per_accelerator")
        frame = frame.sort_values(args.sort, ascending=not desc, na_position="last", kind="stable")
    if args.json:
        recs = json.loads(frame.to_json(orient="records"))
        for r in recs:
            if isinstance(r.get("scenario"), str):
                r["scenario"] = json.loads(r["scenario"])
        json.dump(recs, sys.stdout, indent=1)
        sys.stdout.write("\n")
        return 0
    if args.csv:
        frame.to_csv(sys.stdout, index=False)
        return 0
    n = len(frame)
    ok = int((frame["status"] == "ok").sum()) if n else 0
    print(f"sweep {record.get('name')} ({args.dir}): {n:,} points stored ({record.get('points', 0):,} in the "
          f"latest sweep): {ok:,} done, {n - ok:,} failed")
    if not n:
        return 0
    axes = [a for a in record.get("axis_paths", []) if a in frame.columns]
    cols = ["point_id", "status"] + axes + (["seed"] if frame["seed"].nunique() > 1 else [])
    cols += [c for c in _SHOWN if c in frame.columns] + ["error"]
    sys.stdout.write(_table(frame[cols].to_dict("records"), cols))
    return 0


def _cell(v: Any) -> str:
    if v is None or (isinstance(v, float) and v != v):
        return "-"
    if isinstance(v, float):
        return f"{v:,.0f}" if abs(v) >= 1e5 else f"{v:.4g}"
    return str(v)


def _table(rows: list[dict[str, Any]], cols: list[str]) -> str:
    """Plain text table: numbers right-aligned, text left-aligned, the error cut to 70 characters."""
    cells = [[_cell(r[c]) for c in cols] for r in rows]
    for line in cells:
        if len(line[-1]) > 70:
            line[-1] = line[-1][:67] + "..."
    numeric = [all(isinstance(r[c], (int, float)) or r[c] is None for r in rows) for c in cols]
    width = [max([len(c)] + [len(line[i]) for line in cells]) for i, c in enumerate(cols)]

    def fmt(vals: list[str]) -> str:
        return "  ".join(v.rjust(w) if num else v.ljust(w) for v, w, num in zip(vals, width, numeric)).rstrip()

    return "\n".join([fmt(cols)] + [fmt(line) for line in cells]) + "\n"


def _cmd_plot(args: argparse.Namespace) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from oassim.analysis.plots import sweep_points
    from oassim.analysis.trace import atomic_write

    record, frame = _frame(args.dir)
    for key, flag in ((args.x, "--x"), (args.y, "--y"), (args.hue, "--hue")):
        if key is not None:
            _check_column(frame, key, flag)
    ok = frame[frame["status"] == "ok"] if len(frame) else frame
    if not len(ok):
        raise OassimError(f"{args.dir}: no finished point without error to plot")
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    try:
        sweep_points(ok, args.x, args.y, args.hue, ax, logx=args.logx, logy=args.logy)
    except OassimError as exc:
        plt.close(fig)
        raise SpecError(str(exc), source="argument --y") from None
    shown = sum(len(c.get_offsets()) for c in ax.collections)
    ax.set_title(f"sweep {record.get('name')}: {shown:,} points")
    fig.tight_layout()
    try:
        atomic_write(args.output, lambda t: fig.savefig(t, format="png"))
    except OSError as exc:
        raise OassimError(f"argument -o: cannot write {args.output}: {exc.strerror or exc}") from None
    finally:
        plt.close(fig)
    print(f"wrote {args.output}")
    return 0


COMMANDS = {"sweep": _cmd_sweep, "results": _cmd_results, "plot": _cmd_plot}
