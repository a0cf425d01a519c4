"""Published measurements shipped with oassim, for calibration and validation.

``calibration/`` holds the rows the fits and checks use, one file per kind, with
``calibration/SOURCES.md`` saying what each row is and where it was published (also
summarised in ``docs/sources.md``):

- ``training.csv``: measured training configurations (model, hardware, layout, throughput);
- ``collectives.csv``: measured collective points (op, GPUs, message size, busbw);
- ``failures.csv``: published failure and reliability statistics.
"""

from __future__ import annotations

from pathlib import Path

from oassim.errors import SpecError

__all__ = ["CALIBRATION_DIR", "calibration_csv"]

#: The folder of the shipped calibration tables.
CALIBRATION_DIR = Path(__file__).resolve().parent / "calibration"


def calibration_csv(name: str) -> Path:
    """Path of the shipped calibration table ``name`` ("training", "collectives" or "failures")."""
    path = CALIBRATION_DIR / f"{name}.csv"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in CALIBRATION_DIR.glob("*.csv")))
        raise SpecError(f"no calibration table '{name}' (known: {known})")
    return path
