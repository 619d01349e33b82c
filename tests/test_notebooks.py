"""Every lecture notebook runs top to bottom, headless and offline.

New notebooks under course/ are picked up automatically. Each notebook runs once in the
whole suite, and its run time goes into the table printed at the end:

* the solution notebooks (solutions/) run as the "solution" student of the nbgrader
  round trip (tests/test_nbgrader_roundtrip.py), which fails on any error output;
* the start page runs in JupyterLab in tests/test_browser.py; it is skipped here when
  that test runs in the same session, and runs here when it cannot (no Chromium, say).
"""

from __future__ import annotations

import re

import nbformat
import pytest
from notebooks import REPO_ROOT, execute_notebook, find_notebooks

# Whole-notebook limit: generous for a 2-core laptop, far below CI's 90 minutes.
NOTEBOOK_TIMEOUT_SECONDS = 900

NOTEBOOKS = find_notebooks("course")

# A C++ log line (abseil/glog format, e.g. TensorFlow's "I0000 00:00:17.. 1234 port.cc:153] oneDNN ..."),
# or abseil's warning that precedes them. jupyter_config/ipython_kernel_config.py keeps them in the
# terminal; in a notebook they are noise a student cannot act on.
C_LEVEL_LOG_LINE = re.compile(r"^(WARNING: All log messages before absl::InitializeLog|[IWEF]\d{4} [\d:.]+\s+\d+ \S+:\d+\])",
                              re.MULTILINE)


def log_lines_in_outputs(notebook) -> list[str]:
    """The C++ log lines that reached a cell's output, as "cell N: line"."""
    found = []
    for index, cell in enumerate(notebook.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream":
                found += [f"cell {index}: {line[:120]}" for line in output["text"].splitlines()
                          if C_LEVEL_LOG_LINE.match(line)]
    return found


@pytest.mark.notebook
@pytest.mark.timeout(NOTEBOOK_TIMEOUT_SECONDS)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[str(p.relative_to(REPO_ROOT)) for p in NOTEBOOKS])
def test_notebook_runs_top_to_bottom(path, notebook_times):
    executed, seconds = execute_notebook(path)
    notebook_times[str(path.relative_to(REPO_ROOT))] = seconds
    stray = log_lines_in_outputs(executed)
    assert not stray, ("C++ log lines reached the notebook (is .venv/etc/ipython/ipython_kernel_config.py "
                       "installed? run `make setup`):\n" + "\n".join(stray))


def test_the_log_line_pattern_matches_tensorflows_start_up_lines_only():
    tensorflow = ("WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
                  "I0000 00:00:1796086828.363813   19287 port.cc:153] oneDNN custom operations are on.\n")
    student = "Epoch 1/3\nI0000 is not a log line\nW1 = 0.5\n"
    notebook = nbformat.from_dict({"cells": [{"outputs": [{"output_type": "stream", "name": "stderr",
                                                        "text": tensorflow + student}]}]})
    assert len(log_lines_in_outputs(notebook)) == 2


def test_course_has_notebooks():
    assert NOTEBOOKS, "no notebooks found under course/"
