"""One notebook through the whole grader (cnn_course.grading.pipeline), in real sandboxes.

Each test grades a submission of the tiny assignment in ``tests/grading_fixtures/``
(6 points: ``ex1-check`` 1, ``ex1-hidden`` 2, ``ex2-test`` 1, ``ex3-test`` 2) through
:func:`grade_notebook`, with the student run, the restricted run (SciPy stubbed) and the
judge each in its own bubblewrap sandbox. Every result is searched for a marker string that
only the hidden tests contain. Without bubblewrap the tests skip on a laptop and fail on CI.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from pathlib import Path

import nbformat
import pytest
from cnn_course.grading import pipeline
from cnn_course.grading.pipeline import clean_outputs, grade_notebook, local_course_paths, sandbox_factory
from cnn_course.grading.plan import make_plan
from conftest import require_sandbox

FIXTURES = Path(__file__).resolve().parent / "grading_fixtures"
SOURCE = nbformat.read(FIXTURES / "tiny_source.ipynb", as_version=4)
RELEASE = nbformat.read(FIXTURES / "tiny_release.ipynb", as_version=4)
HIDDEN_MARKER = "HIDDEN-7f3a9c"  # written into the hidden tests by make_tiny_assignment.py
SOLUTIONS = {cell.id: cell.source for cell in SOURCE.cells if cell.metadata["nbgrader"].get("solution")}
FULL = {"ex1-check": 1, "ex1-hidden": 2, "ex2-test": 1, "ex3-test": 2}
LINGERER = f"lingering-{uuid.uuid4().hex}"  # in the command line of a detached student process


@pytest.fixture
def bwrap():
    require_sandbox()





def submission(answers: dict[str, str] | None = None, added_after: dict[str, str] | None = None) -> bytes:
    """The release with ``answers`` (grade_id -> source) filled in and student cells added."""
    notebook = nbformat.from_dict(RELEASE)
    for cell in notebook.cells:
        cell.source = (answers or {}).get(cell.id, cell.source)
    for grade_id, source in (added_after or {}).items():
        position = next(i for i, cell in enumerate(notebook.cells) if cell.id == grade_id)
        notebook.cells.insert(position + 1, nbformat.v4.new_code_cell(source))
    return nbformat.writes(notebook).encode()


def grade(notebook: bytes, *, unsafe_no_sandbox: bool = False, **settings):
    """Grade ``notebook`` in sandboxes; check that no hidden test leaked into the result."""
    plan = make_plan(notebook, SOURCE, RELEASE, notebook="tiny")
    plan.config = dataclasses.replace(plan.config, **settings)
    result = grade_notebook(plan, sandbox_factory=sandbox_factory(unsafe_no_sandbox=unsafe_no_sandbox),
                            course_paths=local_course_paths(plan.config))
    assert HIDDEN_MARKER in json.dumps(nbformat.writes(SOURCE)), "the fixture's hidden tests lost their marker"
    assert HIDDEN_MARKER not in json.dumps(dataclasses.asdict(result)), "hidden test source in the result"
    return result


def points(result) -> dict[str, float]:
    return {grade.grade_id: grade.points for grade in result.grades}


def grade_of(result, grade_id):
    return next(grade for grade in result.grades if grade.grade_id == grade_id)


def test_a_correct_solution_gets_full_marks(bwrap):
    result = grade(submission(SOLUTIONS))
    assert points(result) == FULL and result.score == result.max_score == 6
    assert [cell.status for cell in result.cells] == ["ok"] * len(result.cells)
    assert [grade.hidden for grade in result.grades] == ["none", "passed", "passed", "passed"]
    assert "Exercise 3: check passed" in grade_of(result, "ex3-test").visible_outputs[0]["text"]
    assert result.events == []


def test_the_blank_release_scores_zero_and_says_what_is_not_answered(bwrap):
    result = grade(submission())
    assert result.score == 0 and result.max_score == 6
    (error,) = grade_of(result, "ex1-check").visible_outputs
    assert error["traceback"] == ["Exercise 1 is not answered yet."]
    assert grade_of(result, "ex2-test").visible_outputs[0]["ename"] == "NameError"


def test_a_partly_wrong_notebook_gets_partial_marks(bwrap):
    answers = dict(SOLUTIONS)
    answers["ex1-solution"] = answers["ex1-solution"].replace("raise ValueError", "print")  # no ValueError
    answers["ex2-solution"] = "EDGE_KERNEL = np.array([[1.0, -1.0]])  # the right shape, the wrong signs"
    result = grade(submission(answers))
    assert points(result) == {"ex1-check": 1, "ex1-hidden": 0, "ex2-test": 0, "ex3-test": 2}
    ex2 = grade_of(result, "ex2-test")
    assert ex2.hidden == "failed" and ex2.visible_outputs == [], "stopped at the hidden tests, which show nothing"


def test_tampering_in_the_notebook_changes_no_verdict_of_the_tests(bwrap):
    # Wrong answers to exercises 1 and 2, then everything that used to fool an in-kernel
    # grader: the checks' helper and `len` shadowed, NumPy monkeypatched, a trace function,
    # an exit handler writing to the channel, an input transformer.
    answers = dict(SOLUTIONS, **{"ex1-solution": "def correlate_valid(x, w):\n    return np.zeros((1, 1))",
                                 "ex2-solution": "EDGE_KERNEL = np.zeros((1, 2))"})
    tampering = ("import atexit, os, subprocess, sys\n"
                 f"subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)  # {LINGERER}'],\n"
                 "                 start_new_session=True)\n"
                 "close_enough = lambda got, expected: True\n"
                 "len = lambda anything: 0\n"
                 "np.allclose = np.array_equal = lambda *args, **kwargs: True\n"
                 "sys.settrace(lambda *args: None)\n"
                 "atexit.register(os.write, 4, b'forged')\n"
                 "get_ipython().input_transformers_post.append(lambda lines: ['pass\\n'])\n")
    result = grade(submission(answers, added_after={"ex3-solution": tampering}))
    assert points(result) == {"ex1-check": 0, "ex1-hidden": 0, "ex2-test": 0, "ex3-test": 2}
    assert all(cell.status == "ok" for cell in result.cells), "the tampering ran"
    # Every process a sandbox started is gone once the notebook is graded.
    lingering = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if LINGERER.encode() in cmdline.read_bytes():
                lingering.append(cmdline.parent.name)
        except OSError:
            continue  # the process ended meanwhile
    assert lingering == []


@pytest.mark.slow
def test_a_function_that_never_returns_fails_only_the_tests_that_call_it(bwrap):
    answers = dict(SOLUTIONS)
    answers["ex1-solution"] = answers["ex1-solution"].replace(
        '"""2-D cross-correlation', 'while np.shape(x) == (5, 7):  # only the hidden tests use this shape\n'
                                    '        pass\n    """2-D cross-correlation')
    result = grade(submission(answers), call_timeout=2)
    assert points(result) == {"ex1-check": 1, "ex1-hidden": 0, "ex2-test": 1, "ex3-test": 2}
    assert result.events == ["`correlate_valid(...)` ran past the time limit of 2 s for one call "
                             "(in the tests of ex1-hidden) and was stopped."]


@pytest.mark.slow
@pytest.mark.parametrize("stopper, status", [
    ("import os\nos._exit(1)", "crashed"),
    ("import time\nwhile True:\n    try:\n        time.sleep(1)\n    except KeyboardInterrupt:\n        pass", "timeout"),
    ("import os\nos.write(4, b'\\xff' * 4)  # the start of a 4 GB message on the channel", "crashed"),
], ids=["os._exit", "endless loop", "forged message"])
def test_a_notebook_stopped_after_exercise_1_keeps_its_points(stopper, status, bwrap):
    result = grade(submission(SOLUTIONS, added_after={"ex1-solution": stopper}), cell_timeout=3)
    assert points(result) == {"ex1-check": 1, "ex1-hidden": 2, "ex2-test": 0, "ex3-test": 0}
    statuses = [cell.status for cell in result.cells]
    stopped = statuses.index(status)
    assert statuses[:stopped] == ["ok"] * stopped and set(statuses[stopped + 1:]) == {"not run"}
    assert result.cells[stopped].outputs[0]["output_type"] == "error"
    assert len(result.events) == 1 and "were run again in a fresh sandbox" in result.events[0]


LIBRARY_ANSWER = {"ex1-solution": (
    "import scipy.signal\n\n\ndef correlate_valid(x, w):\n"
    "    if np.ndim(x) != 2 or np.ndim(w) != 2:\n        raise ValueError('2-D please')\n"
    "    return scipy.signal.correlate2d(x, w, mode='valid')\n\n\n"
    "correlate_valid(np.eye(3), np.ones((2, 2)))")}


def test_a_library_answer_scores_zero_where_scipy_is_a_stub(bwrap):
    result = grade(submission(dict(SOLUTIONS, **LIBRARY_ANSWER)))
    assert points(result) == {"ex1-check": 0, "ex1-hidden": 0, "ex2-test": 1, "ex3-test": 2}
    # In the student's own run SciPy works: the cell shows its result.
    ex1_cell = next(cell for cell in result.cells if cell.grade_id == "ex1-solution")
    assert ex1_cell.status == "ok" and ex1_cell.outputs[0]["output_type"] == "execute_result"
    error = grade_of(result, "ex1-check").visible_outputs[0]
    assert "scipy" in error["evalue"]
    # ... and the student is told why: the cell failed where SciPy is a stub.
    [event] = [e for e in result.events if "not available" in e]
    assert event.startswith("Code cell") and "(ex1-solution) failed where scipy is not available" in event
    assert "RuntimeError" in event


def test_names_the_assignment_allows_to_use_libraries_run_in_the_full_environment(bwrap):
    result = grade(submission(dict(SOLUTIONS, **LIBRARY_ANSWER)), full_environment_names=("correlate_valid",))
    assert points(result) == FULL


def test_names_in_the_full_environment_can_still_be_denied_some_packages(bwrap):
    # A Keras builder may use Keras but not the course's reference builders: its own run has
    # only those packages as stubs. Here: SciPy is a stub only for correlate_valid.
    settings = {"forbidden_modules": (), "full_environment_names": ("correlate_valid",),
                "full_environment_forbidden_modules": ("scipy",)}
    result = grade(submission(dict(SOLUTIONS, **LIBRARY_ANSWER)), **settings)
    assert points(result) == {"ex1-check": 0, "ex1-hidden": 0, "ex2-test": 1, "ex3-test": 2}
    [event] = [e for e in result.events if "not available" in e]
    assert "(ex1-solution) failed where scipy is not available" in event
    assert points(grade(submission(SOLUTIONS), **settings)) == FULL
    # ... and only those: with other packages stubbed there, the SciPy answer is served.
    result = grade(submission(dict(SOLUTIONS, **LIBRARY_ANSWER)), full_environment_names=("correlate_valid",),
                   full_environment_forbidden_modules=("skimage",))
    assert points(result) == FULL


def test_data_the_assignment_makes_with_a_forbidden_package_reaches_the_restricted_run(bwrap):
    # The assignment's own set-up may use SciPy (to load a photo, say); the student's functions,
    # served where SciPy is a stub, still see what it made, and nobody is told off for it.
    made_with_scipy = "\nimport scipy.signal\nWINDOW = scipy.signal.windows.hann(5)\n"
    source, release = nbformat.from_dict(SOURCE), nbformat.from_dict(RELEASE)
    for notebook in (source, release):
        setup = next(cell for cell in notebook.cells if cell.id == "setup")
        setup.source += made_with_scipy
        setup.metadata["nbgrader"].pop("checksum", None)
    answer = SOLUTIONS["ex1-solution"] + (
        "\n\n_own_answer = correlate_valid\n\n\n"
        "def correlate_valid(x, w):\n"
        "    assert WINDOW.shape == (5,) and WINDOW[2] == 1.0, WINDOW\n"
        "    return _own_answer(x, w)\n")
    plan = make_plan(submission(dict(SOLUTIONS, **{"ex1-solution": answer})), source, release, notebook="tiny")
    result = grade_notebook(plan, sandbox_factory=sandbox_factory(), course_paths=local_course_paths(plan.config))
    assert points(result) == FULL
    assert not [event for event in result.events if "not available" in event], result.events


def test_a_large_data_set_of_the_assignment_is_not_copied_and_costs_no_restart(bwrap, monkeypatch):
    # A set-up cell that loads a data set with a forbidden package (64 MB here) leaves it out of
    # the restricted run: the student's functions do not use it, and the student's run, which
    # would have to be run again if it sent a message over the grader's limit, is never asked.
    made_with_scipy = "\nimport scipy.signal\nDATA_SET = np.zeros(8 * 1024**2) + scipy.signal.windows.hann(3)[1]\n"
    source, release = nbformat.from_dict(SOURCE), nbformat.from_dict(RELEASE)
    for notebook in (source, release):
        setup = next(cell for cell in notebook.cells if cell.id == "setup")
        setup.source += made_with_scipy
        setup.metadata["nbgrader"].pop("checksum", None)
    starts = []
    original_start = pipeline._StudentSandbox.start

    def counted_start(self):
        starts.append(self.label)
        return original_start(self)

    monkeypatch.setattr(pipeline._StudentSandbox, "start", counted_start)
    # The grader's limits scaled down with the data set (128 and 32 MiB in real use).
    monkeypatch.setattr(pipeline, "MAX_RELAY_BYTES", 16 * 1024**2)
    monkeypatch.setattr(pipeline, "MAX_COPIED_BYTES", 8 * 1024**2)
    plan = make_plan(submission(SOLUTIONS), source, release, notebook="tiny")
    result = grade_notebook(plan, sandbox_factory=sandbox_factory(), course_paths=local_course_paths(plan.config))
    assert points(result) == FULL
    assert sorted(starts) == ["restricted", "student"], starts


def test_matplotlib_finds_its_font_cache_in_every_sandbox(bwrap):
    # Scanning the system's fonts costs each sandbox ~0.3 s of CPU; the grader hands it the list.
    check = ("import os\n"
             "folder = os.path.expanduser('~/.cache/matplotlib')\n"
             "def stamps():\n"
             "    return {name: os.stat(os.path.join(folder, name)).st_mtime_ns for name in os.listdir(folder)}\n"
             "before = stamps()\n"
             "import matplotlib.font_manager\n"
             "assert before and stamps() == before, (before, stamps())\n")
    result = grade(submission(SOLUTIONS, added_after={"setup": check}))
    assert points(result) == FULL
    added = next(cell for cell in result.cells if cell.grade_id is None and cell.index == 1)
    assert added.status == "ok", added.outputs


def test_outputs_from_a_sandbox_are_rebuilt_from_known_fields_only():
    hostile = [{"output_type": "stream", "name": "stdout", "text": ["a", "b"], "extra": "x"},
               {"output_type": "display_data", "data": {"text/html": "<b>x</b>", "bad": 1, "image/png": 5},
                "metadata": {"x": float("nan")}},
               {"output_type": "error", "ename": 3, "evalue": "boom", "traceback": ["line", 7]},
               {"output_type": "execute_result", "data": {}, "execution_count": "1"},
               {"output_type": "update_display_data", "data": {}}, "not a dict", None]
    assert clean_outputs(hostile, 10_000) == [
        {"output_type": "stream", "name": "stdout", "text": "ab"},
        {"output_type": "display_data", "data": {"text/html": "<b>x</b>"}, "metadata": {}},
        {"output_type": "error", "ename": "", "evalue": "boom", "traceback": ["line"]},
        {"output_type": "execute_result", "data": {}, "metadata": {}, "execution_count": None}]
    flood = [{"output_type": "stream", "name": "stdout", "text": "x" * 500}] * 10
    capped = clean_outputs(flood, 2_000)
    assert len(json.dumps(capped)) < 2_500 and "[output truncated]" in capped[-1]["text"]
    error = {"output_type": "error", "ename": "ValueError", "evalue": "why it failed", "traceback": []}
    assert clean_outputs([*flood, error], 2_000)[-1] == error, "the error after a flood of output still shows"


def test_without_a_sandbox_trusted_notebooks_get_the_same_grades():
    # Where bubblewrap is missing (macOS) the instructor may accept the risk: plain processes,
    # with the forbidden packages still stubbed where the student's functions run.
    library_derivative = ("import scipy.signal\n\n\ndef derivative(f, x, eps=1e-5):\n"
                          "    values = scipy.signal.convolve([f(x - eps), f(x + eps)], [1.0])\n"
                          "    return float(values[1] - values[0]) / (2 * eps)\n")
    namespace = {}
    exec(library_derivative, namespace)
    assert abs(namespace["derivative"](lambda t: t**3, 1.0) - 3) < 1e-4, "right where SciPy works"
    result = grade(submission(dict(SOLUTIONS, **{"ex3-solution": library_derivative})), unsafe_no_sandbox=True)
    assert points(result) == {"ex1-check": 1, "ex1-hidden": 2, "ex2-test": 1, "ex3-test": 0}
