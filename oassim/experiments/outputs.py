"""What a finished run reports and writes: the summary record and the output folder.

What is produced: :func:`report_dict`, the one JSON object of ``oassim run --json`` (the
metrics of :func:`oassim.analysis.metrics.summary`, the plain-words findings of
:func:`oassim.analysis.report.bottleneck_report`, the resolved scenario and provenance), and
:func:`write_outputs`, the files of ``oassim run --out DIR``.

Why atomic: docs/architecture.md, decision 8 (nothing written unless asked) and the CLI contract
(nothing half-written on failure). Every file is first rendered into a temporary folder
beside ``DIR``; only when all of them are complete are they moved into ``DIR``, each by an
atomic ``os.replace``. A failure leaves ``DIR`` as it was; files of ``DIR`` that this run does
not write are never touched.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Mapping

__all__ = ["report_dict", "write_outputs", "write_folder", "jsonable", "OUTPUT_FILES"]

OUTPUT_FILES = (
    "summary.json",
    "scenario.yaml",
    "collectives.csv",
    "collectives.parquet",
    "ops.parquet",
    "link_utilisation.parquet",
    "trace.json",
)


def jsonable(value: Any) -> Any:
    """A copy of ``value`` that ``json.dumps`` accepts: numpy scalars and arrays to Python,
    tuples to lists, non-finite floats to None, other objects to ``str``."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        return jsonable(value.tolist())
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if hasattr(value, "model_dump"):
        return jsonable(value.model_dump(mode="json"))
    return str(value)


def report_dict(results: Any) -> dict[str, Any]:
    """The summary record of a run (JSON-ready).

    Returns
    -------
    dict
        Every key of ``oassim.analysis.metrics.summary(results)`` (iteration_time_s,
        tokens_per_s, tflops_per_accelerator, mfu, hfu, exposed_comm_s, bubble_s,
        memory_per_accelerator_GB, breakdown...), plus ``findings`` (the plain-words
        :func:`~oassim.analysis.report.bottleneck_report`), ``bottlenecks`` (the summary's own
        entry when it has one, else the findings), ``scenario`` (resolved), ``network`` and
        ``provenance``.
    """
    from oassim.analysis.metrics import summary
    from oassim.analysis.report import bottleneck_report

    s = dict(summary(results))
    findings = bottleneck_report(results, s)
    out = {"name": (results.scenario or {}).get("name"), **s, "findings": findings}
    if out.get("bottlenecks") is None:
        out["bottlenecks"] = findings
    out["network"] = results.network
    out["scenario"] = results.scenario
    out["provenance"] = results.provenance
    return jsonable(out)


def _render(results: Any, record: Mapping[str, Any], folder: Path) -> None:
    """Write every output file of a run into ``folder`` (which exists and is empty)."""
    import yaml

    from oassim.analysis.trace import write_chrome_trace, write_link_utilisation, write_parquet

    (folder / "summary.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    (folder / "scenario.yaml").write_text(
        "# The scenario as simulated (presets resolved, defaults filled in): oassim run this file\n"
        + yaml.safe_dump(jsonable(results.scenario), sort_keys=False), encoding="utf-8")
    meta = {"scenario": record.get("name"), "network": results.network,
            "version": (results.provenance or {}).get("version"), "seed": (results.provenance or {}).get("seed")}
    results.collectives.to_csv(folder / "collectives.csv", index=False)
    write_parquet(results.collectives, folder / "collectives.parquet", meta)
    write_parquet(results.ops, folder / "ops.parquet", meta)
    write_link_utilisation(results, folder / "link_utilisation.parquet")
    write_chrome_trace(results, folder / "trace.json")


def write_outputs(results: Any, out_dir: str | Path, record: Mapping[str, Any] | None = None) -> list[Path]:
    """Write a run's files into ``out_dir`` (created if needed), all or nothing.

    Parameters
    ----------
    results : Results
    out_dir : str or Path
    record : mapping, optional
        The summary record (default :func:`report_dict` of ``results``).

    Returns
    -------
    list of Path
        The files written: :data:`OUTPUT_FILES` inside ``out_dir``.

    Raises
    ------
    OSError
        The folder cannot be created or written; nothing of this run is left in it.
    """
    record = report_dict(results) if record is None else record
    return write_folder(out_dir, lambda folder: _render(results, record, folder), OUTPUT_FILES)


def write_folder(out_dir: str | Path, render: Callable[[Path], Any],
                 names: tuple[str, ...] | None = None) -> list[Path]:
    """Render files into ``out_dir`` all or nothing: the pattern of every ``--out DIR``.

    ``render(folder)`` fills a fresh temporary folder beside ``out_dir``; only when it returns
    are its entries moved into ``out_dir``, each by an atomic ``os.replace`` (a sub-folder
    already in ``out_dir`` is swapped out first and then removed). If ``render`` raises, or
    anything before the moves does, ``out_dir`` is left as it was and the exception propagates.

    Parameters
    ----------
    out_dir : str or Path
        Target folder (created if needed).
    render : callable
        ``render(folder)`` writes the files into ``folder``.
    names : tuple of str, optional
        Entries to move, in order (default: everything ``render`` wrote, sorted).

    Returns
    -------
    list of Path
        The entries written inside ``out_dir``.

    Raises
    ------
    OSError
        The folder cannot be created or written.
    """
    target = Path(out_dir)
    if target.exists() and not target.is_dir():
        raise NotADirectoryError(f"{target} exists and is not a folder")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        render(tmp)
        target.mkdir(exist_ok=True)
        written = []
        for name in names if names is not None else sorted(p.name for p in tmp.iterdir()):
            dest = target / name
            if (tmp / name).is_dir() and dest.is_dir():
                os.replace(dest, tmp / f".{name}.old")
            os.replace(tmp / name, dest)
            written.append(dest)
        return written
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
