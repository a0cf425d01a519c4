"""Write the notebooks whose cells are defined beside this file (outputs stripped); strip others.

Cells: ``compare_supernodes.ipynb`` (``_cells_compare.CELLS``), ``parameter_sweep.ipynb``
(``_cells_sweep.SWEEP_CELLS``), ``interconnect_spec_evaluation.ipynb``
(``_cells_spec.SPEC_CELLS`` then ``_cells_proposal.PROPOSAL_CELLS``) and ``reliability.ipynb``
(``_cells_reliability.RELIABILITY_CELLS``),
listed in :data:`NOTEBOOKS`. ``python notebooks/_build.py``
regenerates all of them after a cell was edited (``python notebooks/_build.py
parameter_sweep.ipynb`` only the ones named); the notebooks are generated, so edit the cell
modules rather than the .ipynb when changing the shipped versions. Cell ids are fixed
(``cell-00``, ``cell-01``... in each notebook), so rebuilding unchanged cells rewrites a
notebook byte for byte. ``python notebooks/_build.py --strip notebooks/*.ipynb``
removes outputs, execution counts and widget state from any notebooks in place, before
committing them.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the cell modules beside this file
from _cells_compare import CELLS  # noqa: E402
from _cells_proposal import PROPOSAL_CELLS  # noqa: E402
from _cells_reliability import RELIABILITY_CELLS  # noqa: E402
from _cells_spec import SPEC_CELLS  # noqa: E402
from _cells_sweep import SWEEP_CELLS  # noqa: E402

HERE = Path(__file__).resolve().parent

#: Every notebook this file writes: file name in notebooks/ -> its cells.
NOTEBOOKS: dict[str, list[tuple[str, str]]] = {
    "compare_supernodes.ipynb": CELLS,
    "parameter_sweep.ipynb": SWEEP_CELLS,
    "interconnect_spec_evaluation.ipynb": SPEC_CELLS + PROPOSAL_CELLS,
    "reliability.ipynb": RELIABILITY_CELLS,
}


def build(cells: list[tuple[str, str]] = CELLS) -> nbformat.NotebookNode:
    """The notebook of ``cells`` (default: compare_supernodes), every code cell without outputs
    or execution count."""
    # stable cell ids, so that regenerating an unchanged notebook leaves the file unchanged
    cells = [new_markdown_cell(src, id=f"cell-{i:02d}") if kind == "md" else new_code_cell(src, id=f"cell-{i:02d}")
             for i, (kind, src) in enumerate(cells)]
    nb = new_notebook(cells=cells, metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"},
        "language_info": {"name": "python"},
    })
    nbformat.validate(nb)
    return nb


def strip(path: str | Path) -> bool:
    """Remove outputs, execution counts and widget state from a notebook in place; True if it changed."""
    nb = nbformat.read(path, as_version=4)
    before = nbformat.writes(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        cell.metadata.pop("execution", None)
    nb.metadata.pop("widgets", None)
    if nbformat.writes(nb) == before:
        return False
    nbformat.write(nb, path)
    return True


if __name__ == "__main__":
    if sys.argv[1:2] == ["--strip"]:
        for name in sys.argv[2:]:
            print(f"{'stripped' if strip(name) else 'already clean'}: {name}")
    else:
        names = sys.argv[1:] or list(NOTEBOOKS)
        unknown = [n for n in names if n not in NOTEBOOKS]
        if unknown:
            sys.exit(f"unknown notebook(s) {', '.join(unknown)} (defined here: {', '.join(NOTEBOOKS)})")
        for name in names:
            out = HERE / name
            nbformat.write(build(NOTEBOOKS[name]), out)
            print(f"wrote {out}")
