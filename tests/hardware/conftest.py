"""Shared fixtures for hardware tests: the preset catalog and a writer of bad preset files."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Callable

import pytest

from oassim.hardware import Catalog, load_catalog

# The hardware source list of the project's own docs.
SOURCES_MD = Path(__file__).resolve().parents[2] / "docs" / "sources.md"


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    """The repository's hardware presets."""
    return load_catalog()


@pytest.fixture(scope="session")
def reference_source_ids() -> set[str]:
    """Source ids (``S2``, ``S11b``...) of the hardware source list in docs/sources.md."""
    text = SOURCES_MD.read_text(encoding="utf-8")
    ids = set(re.findall(r"^- \[(S\d+[a-z]?)\]", text, flags=re.M))
    # Some lines list two ids ("[S22] ... ; [S22b] ..."), so take every [Sn] on source lines.
    for line in text.splitlines():
        if line.startswith("- [S"):
            ids.update(re.findall(r"\[(S\d+[a-z]?)\]", line))
    return ids


@pytest.fixture
def write_presets(tmp_path: Path) -> Callable[[str, str], Path]:
    """Write ``text`` as preset file ``filename`` in a fresh folder and return the folder."""
    count = iter(range(10**6))

    def write(filename: str, text: str) -> Path:
        folder = tmp_path / f"presets{next(count)}"
        folder.mkdir()
        (folder / filename).write_text(text, encoding="utf-8")
        return folder

    return write
