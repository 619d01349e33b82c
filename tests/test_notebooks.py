"""Every lecture notebook runs top to bottom, headless and offline.

New notebooks under course/ are picked up automatically. Each notebook runs once in the
whole suite, and its run time goes into the table printed at the end:

* the solution notebooks (solutions/) run as the "solution" student of the nbgrader
  round trip (tests/test_nbgrader_roundtrip.py), which fails on any error output;
* the start page runs in JupyterLab in tests/test_browser.py; it is skipped here when
  that test runs in the same session, and runs here when it cannot (no Chromium, say).
"""

from __future__ import annotations

import pytest
from notebooks import REPO_ROOT, execute_notebook, find_notebooks

# Whole-notebook limit: generous for a 2-core laptop, far below CI's 90 minutes.
NOTEBOOK_TIMEOUT_SECONDS = 900

NOTEBOOKS = find_notebooks("course")


@pytest.mark.notebook
@pytest.mark.timeout(NOTEBOOK_TIMEOUT_SECONDS)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[str(p.relative_to(REPO_ROOT)) for p in NOTEBOOKS])
def test_notebook_runs_top_to_bottom(path, notebook_times):
    _, seconds = execute_notebook(path)
    notebook_times[str(path.relative_to(REPO_ROOT))] = seconds


def test_course_has_notebooks():
    assert NOTEBOOKS, "no notebooks found under course/"
