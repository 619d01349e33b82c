"""Shared pytest set-up: quiet TensorFlow, headless plots, and run-time reports.

At the end of a run two tables are printed in Markdown, ready to paste into
benchmarks/RESULTS.md: the seconds each notebook took to execute (filled in through
the ``notebook_times`` fixture by the notebook, nbgrader and browser tests) and the
seconds spent in each test file (set-up, call and tear-down of all its tests).
``--durations=30`` (pytest.ini) adds the slowest single tests.

It also holds what the end-to-end grading tests share (tests/test_grading_hostile.py,
tests/test_grading_dask.py): a course folder holding the tiny assignment of
``tests/grading_fixtures/`` released with nbgrader, its answers, and handing in.
"""

from __future__ import annotations

import os
import shutil
import sys
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
GRADING_FIXTURES = REPO_ROOT / "tests" / "grading_fixtures"
#: Written into the fixture's hidden tests by grading_fixtures/make_tiny_assignment.py.
FIXTURE_HIDDEN_MARKER = "HIDDEN-7f3a9c"

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


# --- The tiny assignment of tests/grading_fixtures in a course folder (grading tests) ----------


def require_sandbox() -> None:
    """Skip without a working sandbox (bubblewrap) on a laptop; fail on CI (``$CI`` set)."""
    from cnn_course.grading.sandbox import sandbox_status

    available, why = sandbox_status()
    if not available:
        if os.environ.get("CI"):
            pytest.fail(f"CI must grade in real sandboxes: {why}")
        pytest.skip(why)


def make_fixture_course(root: Path, *, assignment: str = "tiny", settings: dict | None = None) -> Path:
    """A course folder at ``root`` holding the fixture assignment, released with nbgrader.

    The folder gets this repository's ``nbgrader_config.py``, the source notebook
    ``tests/grading_fixtures/tiny_source.ipynb`` as ``solutions/<assignment>/<assignment>.ipynb``
    (its grading settings updated with ``settings``), and what ``make release`` makes of it:
    ``assignments/<assignment>/`` and the gradebook. Returns ``root``.
    """
    import nbformat
    from cnn_course.grading.gradebook import Course
    from nbgrader.apps.api import NbGraderAPI

    root = Path(root)
    (root / "solutions" / assignment).mkdir(parents=True)
    shutil.copy(REPO_ROOT / "nbgrader_config.py", root / "nbgrader_config.py")
    source = nbformat.read(GRADING_FIXTURES / "tiny_source.ipynb", as_version=4)
    source.metadata["cnn_course_grading"] = {**source.metadata["cnn_course_grading"], **(settings or {})}
    nbformat.write(source, root / "solutions" / assignment / f"{assignment}.ipynb")
    course = Course.load(root)
    # nbgrader runs `alembic` to make the gradebook: the venv's bin folder must be on PATH.
    old_path = os.environ.get("PATH", "")
    os.environ["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), old_path])
    try:
        result = NbGraderAPI(coursedir=course.coursedir, config=course.coursedir.config).generate_assignment(
            assignment, force=True)
    finally:
        os.environ["PATH"] = old_path
    assert result["success"], result.get("log")
    return root


def fixture_answers(source) -> dict[str, str]:
    """``{grade_id: code}`` of the source notebook's answer cells, solution markers dropped."""
    answers = {}
    for cell in source.cells:
        fields = cell.metadata.get("nbgrader", {})
        if fields.get("solution"):
            answers[fields["grade_id"]] = "\n".join(
                line for line in cell.source.split("\n") if "### BEGIN SOLUTION" not in line
                and "### END SOLUTION" not in line)
    return answers


def hand_in(root: Path, student: str, notebook, *, assignment: str = "tiny",
            timestamp: str = "2026-11-20 10:00:00.000000 UTC") -> Path:
    """Put a submission where ``nbgrader collect`` would: ``nbgrader/submitted/<student>/<assignment>/``.

    ``notebook`` is a notebook node, or the file's bytes as handed in (they may be anything).
    """
    import nbformat

    folder = Path(root) / "nbgrader" / "submitted" / student / assignment
    folder.mkdir(parents=True, exist_ok=True)
    data = notebook if isinstance(notebook, bytes) else nbformat.writes(notebook).encode()
    (folder / f"{assignment}.ipynb").write_bytes(data)
    (folder / "timestamp.txt").write_text(timestamp)
    return folder
