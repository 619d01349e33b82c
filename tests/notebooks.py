"""Finding and executing the course's notebooks (used by the tests)."""

from __future__ import annotations

import importlib.util
import shutil
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

REPO_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_FOLDERS = ("course", "solutions", "assignments")

# Notebooks that tests/test_browser.py runs top to bottom in JupyterLab (failing on any error
# output and recording the run time); tests/test_notebooks.py skips them when that test runs.
BROWSER_NOTEBOOKS = ("course/00_start_here.ipynb",)


def find_notebooks(*folders: str) -> list[Path]:
    """Every notebook below the given top-level folders, checkpoints excluded."""
    found = []
    for folder in folders or NOTEBOOK_FOLDERS:
        found += [
            path for path in (REPO_ROOT / folder).rglob("*.ipynb")
            if ".ipynb_checkpoints" not in path.parts
        ]
    return sorted(found)


def execute_notebook(path: Path, *, cell_timeout: int = 600) -> tuple[nbformat.NotebookNode, float]:
    """Run a notebook top to bottom in a fresh kernel, in its own folder.

    Returns the executed notebook (the file on disk is not changed) and the
    seconds it took. Raises ``nbclient.exceptions.CellExecutionError`` on the
    first cell that fails, with that cell's traceback.
    """
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=cell_timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    start = time.perf_counter()
    client.execute()
    return notebook, time.perf_counter() - start


def browser_test_can_run() -> bool:
    """Whether tests/test_browser.py finds what it needs (Chromium, playwright, make, git).

    Unlike ``browser_helpers.find_chromium`` this never skips or fails the caller.
    """
    from browser_helpers import find_chromium

    try:
        find_chromium()
    except (pytest.skip.Exception, pytest.fail.Exception):
        return False
    return (importlib.util.find_spec("playwright") is not None
            and shutil.which("make") is not None and shutil.which("git") is not None)
