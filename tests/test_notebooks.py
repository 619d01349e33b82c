"""Every lecture and solution notebook runs top to bottom, headless and offline.

New notebooks are picked up automatically: anything under course/ or solutions/.
"""

from __future__ import annotations

import pytest
from notebooks import REPO_ROOT, execute_notebook, find_notebooks

# Whole-notebook limit: generous for a 2-core laptop, far below CI's 90 minutes.
NOTEBOOK_TIMEOUT_SECONDS = 900

NOTEBOOKS = find_notebooks("course", "solutions")


@pytest.mark.notebook
@pytest.mark.timeout(NOTEBOOK_TIMEOUT_SECONDS)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[str(p.relative_to(REPO_ROOT)) for p in NOTEBOOKS])
def test_notebook_runs_top_to_bottom(path, notebook_times):
    _, seconds = execute_notebook(path)
    notebook_times[str(path.relative_to(REPO_ROOT))] = seconds


def test_course_has_notebooks():
    assert NOTEBOOKS, "no notebooks found under course/ or solutions/"
