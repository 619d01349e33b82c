"""Committed notebooks are valid nbformat 4 with their outputs cleared."""

from __future__ import annotations

import nbformat
import pytest
from notebooks import REPO_ROOT, find_notebooks

NOTEBOOKS = find_notebooks()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[str(p.relative_to(REPO_ROOT)) for p in NOTEBOOKS])
def test_notebook_is_valid_and_clean(path):
    notebook = nbformat.read(path, as_version=nbformat.NO_CONVERT)
    assert notebook.nbformat == 4, f"{path.name} is nbformat {notebook.nbformat}, expected 4"
    nbformat.validate(notebook)
    dirty = [
        index for index, cell in enumerate(notebook.cells)
        if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None)
    ]
    assert not dirty, (
        f"{path.relative_to(REPO_ROOT)}: cells {dirty} still have outputs; clear them with "
        f"`jupyter nbconvert --clear-output --inplace {path.relative_to(REPO_ROOT)}`"
    )


def test_notebook_files_are_small():
    too_big = [str(p.relative_to(REPO_ROOT)) for p in NOTEBOOKS if p.stat().st_size > 200_000]
    assert not too_big, f"notebooks over 200 kB (embedded images or outputs?): {too_big}"
