"""Notebooks shipped in notebooks/ run top to bottom, and every notebook in the repo is stored without outputs.

Which kernel runs them: the ``python3`` kernel that ipykernel provides. jupyter_client starts
a kernelspec whose command is plain ``python`` with ``sys.executable`` (the interpreter running
pytest), so the notebooks see the same installed ``oassim``. When the ``python3`` kernelspec
found on this machine names another interpreter, the tests write a private kernelspec for this
interpreter into a temporary folder and point a ``KernelSpecManager`` at that folder only:
nothing is installed and no environment variable is changed. ``test_kernel_runs_this_interpreter``
checks the result from inside the kernel.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
CELL_TIMEOUT_S = 300
_SKIP_DIRS = {"__pycache__", "build", "dist", "node_modules", ".ipynb_checkpoints"}

nbformat = pytest.importorskip("nbformat")


def _shipped() -> list[Path]:
    """The notebooks the suite executes: notebooks/*.ipynb."""
    return sorted(NOTEBOOK_DIR.glob("*.ipynb"))


def _all_in_repo() -> list[Path]:
    """Every notebook in the repository, outside hidden, build and checkpoint folders."""
    found = []
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = sorted(d for d in dirs
                         if not d.startswith(".") and d not in _SKIP_DIRS and not d.endswith(".egg-info"))
        found += [Path(folder) / f for f in sorted(files) if f.endswith(".ipynb")]
    return found


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _is_this_interpreter(command: str) -> bool:
    """Whether a kernelspec's argv[0] starts ``sys.executable`` (jupyter_client replaces a bare
    ``python``, ``python3`` or ``python3.X`` by it, see ``KernelManager.format_kernel_cmd``)."""
    major, minor = sys.version_info[:2]
    if command in {"python", f"python{major}", f"python{major}.{minor}"}:
        return True
    try:
        return Path(command).resolve() == Path(sys.executable).resolve()
    except OSError:
        return False


@pytest.fixture
def kernel_manager(tmp_path: Path):
    """A KernelManager for an ipykernel ``python3`` kernel running ``sys.executable``; shut down after the test."""
    pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
    from jupyter_client.manager import KernelManager

    try:
        spec = KernelSpecManager().get_kernel_spec("python3")
    except NoSuchKernel:
        pytest.skip("no 'python3' Jupyter kernel: install ipykernel to execute the notebooks")
    if _is_this_interpreter(spec.argv[0]):
        km = KernelManager(kernel_name="python3")
    else:  # a python3 kernelspec of another interpreter: a private one for this interpreter
        from ipykernel.kernelspec import write_kernel_spec

        write_kernel_spec(tmp_path / "kernels" / "python3")
        km = KernelManager(kernel_name="python3",
                           kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(tmp_path / "kernels")]))
    yield km
    if km.has_kernel:
        km.shutdown_kernel(now=True)


def _execute(nb, km, cwd: Path):
    from nbclient import NotebookClient

    client = NotebookClient(nb, km=km, timeout=CELL_TIMEOUT_S, kernel_name="python3",
                            resources={"metadata": {"path": str(cwd)}})
    return client.execute()


def test_kernel_runs_this_interpreter(kernel_manager, tmp_path):
    """The kernel that executes the notebooks is the interpreter running the tests."""
    from nbformat.v4 import new_code_cell, new_notebook

    nb = new_notebook(cells=[new_code_cell("import sys; print(sys.executable)")])
    _execute(nb, kernel_manager, tmp_path)
    printed = "".join(o.get("text", "") for o in nb.cells[0].outputs).strip()
    assert Path(printed).resolve() == Path(sys.executable).resolve()


@pytest.mark.slow
@pytest.mark.parametrize("path", _shipped(), ids=[p.name for p in _shipped()])
def test_notebook_runs_top_to_bottom(path: Path, kernel_manager, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The notebook executes without error in notebooks/ as its working directory (its
    temporary folders go under this test's tmp_path: the kernel inherits TMPDIR)."""
    from nbclient.exceptions import CellExecutionError

    monkeypatch.setenv("TMPDIR", str(tmp_path))

    nb = nbformat.read(path, as_version=4)
    try:
        _execute(nb, kernel_manager, NOTEBOOK_DIR)
    except CellExecutionError as exc:
        pytest.fail(f"{_rel(path)} failed:\n{exc}", pytrace=False)


@pytest.mark.parametrize("path", _all_in_repo(), ids=[_rel(p) for p in _all_in_repo()])
def test_notebook_is_stored_with_outputs_stripped(path: Path):
    """Every code cell has no outputs and execution_count None, and no widget state is stored."""
    nb = nbformat.read(path, as_version=4)
    dirty = [i for i, c in enumerate(nb.cells)
             if c.cell_type == "code" and (c.get("outputs") or c.get("execution_count") is not None)]
    assert not dirty, (f"{_rel(path)}: cells {dirty} keep outputs or execution counts; strip them with "
                       f"jupyter nbconvert --clear-output --inplace {_rel(path)}")
    assert "widgets" not in nb.metadata, f"{_rel(path)} stores widget state in its metadata"


def _build_module():
    """``notebooks/_build.py``, imported from its folder (its cell modules sit beside it)."""
    sys.path.insert(0, str(NOTEBOOK_DIR))
    try:
        import _build
    finally:
        sys.path.remove(str(NOTEBOOK_DIR))
    return _build


@pytest.mark.parametrize("name", list(_build_module().NOTEBOOKS))
def test_generated_notebook_matches_its_cell_source(name: str):
    """A generated notebook is stored exactly as ``python notebooks/_build.py`` writes it from its
    cell module, so an edit made to the .ipynb alone (which the next rebuild would lose) fails here."""
    build = _build_module()
    stored = (NOTEBOOK_DIR / name).read_text(encoding="utf-8")
    rebuilt = nbformat.writes(build.build(build.NOTEBOOKS[name]))
    assert stored.rstrip("\n") == rebuilt.rstrip("\n"), (
        f"notebooks/{name} differs from its cell module; edit the module and run "
        f"python notebooks/_build.py {name}")
