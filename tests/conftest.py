"""Shared pytest set-up: quiet TensorFlow, headless plots, and run-time reports.

At the end of a run two tables are printed in Markdown, ready to paste into
benchmarks/RESULTS.md: the seconds each notebook took to execute (filled in through
the ``notebook_times`` fixture by the notebook, nbgrader and browser tests) and the
seconds spent in each test file (set-up, call and tear-down of all its tests).
``--durations=30`` (pytest.ini) adds the slowest single tests.
"""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path

import pytest

# Set before any test imports TensorFlow or matplotlib (kernels started by the
# notebook tests inherit them too).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")

REPO_ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO_ROOT / "tests" / "artifacts"

_notebook_times: dict[str, float] = {}
_file_seconds: dict[str, float] = defaultdict(float)
_file_tests: dict[str, set[str]] = defaultdict(set)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def notebook_times() -> dict[str, float]:
    """Notebook path (relative to the repository) -> seconds it took to execute.

    Each notebook is executed by exactly one test, which records its time here:
    lecture notebooks by tests/test_notebooks.py, the solution notebooks by the
    autograde in tests/test_nbgrader_roundtrip.py, and the start page by the browser
    test when it runs (tests/test_notebooks.py skips it then).
    """
    return _notebook_times


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    # trylast: runs after -k and -m have deselected tests, so `items` is what will run.
    from notebooks import BROWSER_NOTEBOOKS, browser_test_can_run

    browser_runs_start_page = any(
        item.get_closest_marker("browser") is not None and item.name.startswith("test_start_page") for item in items)
    if not browser_runs_start_page or not browser_test_can_run():
        return
    for item in items:
        path = getattr(item, "callspec", None) and item.callspec.params.get("path")
        if item.get_closest_marker("notebook") is not None and path is not None:
            if str(Path(path).relative_to(REPO_ROOT)) in BROWSER_NOTEBOOKS:
                item.add_marker(pytest.mark.skip(
                    reason="runs in tests/test_browser.py, which fails on any error output and records its time"))


def pytest_runtest_logreport(report):
    test_file = report.nodeid.split("::")[0]
    _file_seconds[test_file] += report.duration
    _file_tests[test_file].add(report.nodeid)


def pytest_terminal_summary(terminalreporter):
    if _notebook_times:
        terminalreporter.section("notebook run times (seconds)")
        terminalreporter.write_line("| Notebook | Seconds |")
        terminalreporter.write_line("|---|---|")
        for name, seconds in sorted(_notebook_times.items()):
            terminalreporter.write_line(f"| `{name}` | {seconds:.1f} |")
        terminalreporter.write_line(f"| all notebooks | {sum(_notebook_times.values()):.1f} |")
    if _file_seconds:
        terminalreporter.section("time per test file (seconds, set-up + call + tear-down)")
        terminalreporter.write_line("| Test file | Tests | Seconds |")
        terminalreporter.write_line("|---|---|---|")
        for test_file, seconds in sorted(_file_seconds.items(), key=lambda pair: -pair[1]):
            terminalreporter.write_line(f"| `{test_file}` | {len(_file_tests[test_file])} | {seconds:.1f} |")
        total_tests = sum(len(tests) for tests in _file_tests.values())
        terminalreporter.write_line(f"| all | {total_tests} | {sum(_file_seconds.values()):.1f} |")
