"""The repository stands on its own: nothing shipped points outside it, every link resolves,
every cited source id is listed in docs/sources.md, and no package archive is tracked."""

from __future__ import annotations

import csv
import json
import re
import subprocess
from functools import lru_cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES_MD = ROOT / "docs" / "sources.md"

# What ships: the package, its docs and presets, the notebooks and the build configuration.
SHIPPED_DIRS = ("oassim/", "docs/", "topologies/", "workloads/", "experiments/", "notebooks/")
SHIPPED_FILES = ("README.md", "pyproject.toml", "setup.cfg", "tests/data/README.md")
TEXT_SUFFIXES = {".py", ".md", ".yaml", ".yml", ".ipynb", ".toml", ".cfg", ".txt", ".csv", ".json"}
SKIP_DIRS = {".git", "__pycache__", "build", "dist", ".ipynb_checkpoints", ".pytest_cache"}

# Files that live beside the repository, not in it.
OUTSIDE = re.compile(r"\.\./shared|shared/reference|shared/calibration|DESIGN\.md|STYLE\.md|hardware\.md")
# [text](target) in Markdown; images too. Targets with a scheme or only an anchor are not files.
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
SOURCE_ID = re.compile(r"(?<![\w-])(S\d{1,2}[a-z]?)(?![\w-])")
BRACKETED_ID = re.compile(r"\[(S\d{1,2}[a-z]?)\]")


@lru_cache(maxsize=1)
def repo_files() -> tuple[str, ...]:
    """Tracked files (git ls-files), or every file under the root outside a git checkout."""
    try:
        out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True,
                             timeout=60).stdout
        files = [f for f in out.splitlines() if f]
        if files:
            return tuple(f for f in files if (ROOT / f).is_file())
    except (OSError, subprocess.SubprocessError):
        pass
    return tuple(p.relative_to(ROOT).as_posix() for p in ROOT.rglob("*")
                 if p.is_file() and not SKIP_DIRS.intersection(p.relative_to(ROOT).parts))


def in_git_checkout() -> bool:
    try:
        subprocess.run(["git", "rev-parse", "--is-inside-work-tree"], cwd=ROOT, capture_output=True,
                       check=True, timeout=60)
        return True
    except (OSError, subprocess.SubprocessError):
        return False


def shipped_text_files() -> list[str]:
    return [f for f in repo_files()
            if (f in SHIPPED_FILES or f.startswith(SHIPPED_DIRS)) and Path(f).suffix in TEXT_SUFFIXES]


def markdown_texts() -> list[tuple[str, str]]:
    """(file, markdown text) of every Markdown file and of every notebook's markdown cells."""
    out = []
    for f in repo_files():
        if f.endswith(".md"):
            out.append((f, (ROOT / f).read_text(encoding="utf-8")))
        elif f.endswith(".ipynb"):
            nb = json.loads((ROOT / f).read_text(encoding="utf-8"))
            for cell in nb.get("cells", []):
                if cell.get("cell_type") == "markdown":
                    src = cell.get("source", "")
                    out.append((f, "".join(src) if isinstance(src, list) else src))
    return out


def listed_source_ids() -> tuple[set[str], set[str]]:
    """(hardware ids, calibration ids) that docs/sources.md lists with a citation."""
    text = SOURCES_MD.read_text(encoding="utf-8")
    hardware: set[str] = set()
    for line in text.splitlines():
        if line.startswith("- [S"):  # a source line may list two ids ("[S22] ... ; [S22b] ...")
            hardware.update(BRACKETED_ID.findall(line))
    calibration = set(re.findall(r"^\| (S\d\d) \|", text, flags=re.M))
    return hardware, calibration


def test_the_file_list_is_not_empty():
    """The checks below see the repository's files (git ls-files or the tree walk)."""
    files = set(repo_files())
    assert {"README.md", "docs/sources.md", "docs/architecture.md", "setup.cfg"} <= files


def test_no_shipped_file_refers_outside_the_repository():
    """No shipped file names ../shared, shared/reference, shared/calibration, DESIGN.md, STYLE.md
    or hardware.md."""
    bad = []
    for f in shipped_text_files():
        for n, line in enumerate((ROOT / f).read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            m = OUTSIDE.search(line)
            if m:
                bad.append(f"{f}:{n}: {m.group(0)}")
    assert not bad, "references to files outside the repository:\n" + "\n".join(bad)


def test_every_relative_markdown_link_resolves_inside_the_repository():
    """Every relative [..](path) link in Markdown files and notebook markdown cells names an
    existing file or folder inside the repository."""
    bad = []
    for f, text in markdown_texts():
        base = (ROOT / f).parent
        for target in LINK.findall(text):
            if target.startswith("#") or SCHEME.match(target):
                continue
            path = target.split("#", 1)[0].split("?", 1)[0]
            resolved = (base / path).resolve()
            if not resolved.is_relative_to(ROOT):
                bad.append(f"{f}: {target} (outside the repository)")
            elif not resolved.exists():
                bad.append(f"{f}: {target} (missing)")
    assert not bad, "broken links:\n" + "\n".join(bad)


def test_every_source_id_cited_in_presets_is_listed():
    """Every source id in topologies/, experiments/ and workloads/ YAML files (comments and
    sources keys) has an entry in docs/sources.md."""
    hardware, calibration = listed_source_ids()
    assert len(hardware) > 50 and {"S01", "S19"} <= calibration
    bad = []
    for f in repo_files():
        if f.startswith(("topologies/", "experiments/", "workloads/")) and f.endswith((".yaml", ".yml")):
            for n, line in enumerate((ROOT / f).read_text(encoding="utf-8").splitlines(), 1):
                for sid in SOURCE_ID.findall(line):
                    if sid not in hardware | calibration:
                        bad.append(f"{f}:{n}: {sid}")
    assert not bad, "source ids without an entry in docs/sources.md:\n" + "\n".join(bad)


def test_every_bracketed_source_id_in_code_and_docs_is_listed():
    """Every [Sn] cited in the package's docstrings and comments, the docs and the notebooks is a
    hardware source of docs/sources.md."""
    hardware, _ = listed_source_ids()
    bad = []
    for f in shipped_text_files():
        if f.endswith((".py", ".md", ".ipynb")) and not f.startswith("oassim/data/"):
            for n, line in enumerate((ROOT / f).read_text(encoding="utf-8").splitlines(), 1):
                bad += [f"{f}:{n}: {sid}" for sid in BRACKETED_ID.findall(line) if sid not in hardware]
    assert not bad, "source ids without an entry in docs/sources.md:\n" + "\n".join(bad)


def test_every_calibration_source_id_is_listed():
    """Every source_id of the shipped calibration tables has an entry in docs/sources.md."""
    _, calibration = listed_source_ids()
    used = set()
    for f in repo_files():
        if f.startswith("oassim/data/calibration/") and f.endswith(".csv"):
            with open(ROOT / f, newline="", encoding="utf-8") as fh:
                used.update(r["source_id"] for r in csv.DictReader(fh))
    assert used and not used - calibration, f"not in docs/sources.md: {sorted(used - calibration)}"


def test_no_package_archives_are_tracked():
    """No wheel, sdist or zip archive is committed."""
    if not in_git_checkout():
        pytest.skip("not a git checkout: tracked files unknown")
    archives = [f for f in repo_files() if f.endswith((".whl", ".tar.gz", ".zip"))]
    assert not archives, f"archives in the repository: {archives}"
