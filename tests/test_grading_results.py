"""The autograded notebook and the feedback made from it never show hidden tests.

The autograded notebook keeps the submission's order, nbgrader's cell metadata (the release's),
the student run's outputs, and for test cells the release code, the judge's visible outputs and
one line "hidden tests: passed/failed". `nbgrader generate_feedback` on it (with this course's
nbgrader_config.py) gives HTML without any hidden-test source or traceback line, and the same
config also strips hidden tests from a notebook graded by plain `nbgrader autograde`.
"""

from __future__ import annotations

import os
import sys

import nbformat
import test_grading_gradebook as shared
from cnn_course.grading.gradebook import GradebookWriter
from cnn_course.grading.model import CellResult, GradeResult, NotebookResult
from cnn_course.grading.plan import make_plan
from cnn_course.grading.results import autograded_notebook, clean_outputs
from test_grading_gradebook import ASSIGNMENT, HIDDEN_MARKER, outcome_for, release_of, source_of, submission

# The tiny released course of the gradebook tests (pytest fixtures, used by name).
tiny_course_template = shared.tiny_course_template
tiny_course = shared.tiny_course


def _plan(course, notebook):
    return make_plan(nbformat.writes(notebook).encode(), source_of(course), release_of(course), notebook=ASSIGNMENT)


def _result(plan, *, hidden="failed", statuses=None):
    statuses = statuses or {}
    cells = [CellResult(index=i, status=statuses.get(i, "ok"),
                        outputs=[{"output_type": "stream", "name": "stdout", "text": f"cell {i}\n"}])
             for i in range(len(plan.sandbox_cells))]
    grades = [
        GradeResult("ex1-check", 0.0, 1.0, visible_outputs=[{
            "output_type": "error", "ename": "AssertionError", "evalue": "double(1) should be 2",
            "traceback": ["Cell In[4], line 1", "AssertionError: double(1) should be 2"]}]),
        GradeResult("ex1-hidden", 0.0 if hidden == "failed" else 2.0, 2.0, hidden=hidden),
    ]
    return NotebookResult(cells=cells, grades=grades, events=["Cell 2 ran past its 20 s limit and was stopped."],
                          seconds=1.0)


def test_the_autograded_notebook_keeps_order_metadata_and_only_visible_test_code(tiny_course):
    release = release_of(tiny_course)
    plan = _plan(tiny_course, submission(tiny_course))
    notebook = autograded_notebook(plan, _result(plan))
    notes, *cells = notebook.cells
    assert notes.source.startswith("**Grader's notes**") and "ran past its 20 s limit" in notes.source
    assert [cell.metadata for cell in cells] == [cell.metadata for cell in release.cells]
    assert [cell.id for cell in cells] == [cell.id for cell in release.cells]
    by_id = {cell.metadata.nbgrader.grade_id: cell for cell in cells}
    assert by_id["ex1-hidden"].source == release.cells[4].source == "# Hidden tests for Exercise 1"
    assert [o.get("text") for o in by_id["ex1-hidden"].outputs] == ["hidden tests: failed\n"]
    assert by_id["ex1-check"].outputs[0].ename == "AssertionError"
    assert [o.text for o in by_id["setup"].outputs] == ["cell 0\n"] and by_id["setup"].execution_count == 1
    assert HIDDEN_MARKER not in nbformat.writes(notebook)
    assert HIDDEN_MARKER in str(plan.judge_cells)   # the plan had it: the judge needs it


def test_cells_stopped_by_a_limit_say_so(tiny_course):
    plan = _plan(tiny_course, submission(tiny_course))
    notebook = autograded_notebook(plan, _result(plan, statuses={0: "timeout", 1: "not run"}))
    setup, answer = (cell for cell in notebook.cells if cell.cell_type == "code" and not
                     cell.metadata.nbgrader.get("grade"))
    assert setup.outputs[-1].text.startswith("[grader] This cell ran past its time limit")
    assert answer.outputs[-1].text.startswith("[grader] Not run:") and answer.execution_count is None


def test_outputs_from_a_sandbox_are_rebuilt_from_known_fields_only():
    hostile = [
        {"output_type": "display_data", "data": {"text/html": "<script>alert(1)</script>",
                                                  "image/svg+xml": "<svg onload=alert(1)>"}},
        {"output_type": "execute_result", "data": {"text/plain": "42"}, "execution_count": "x", "extra": 1},
        {"output_type": "stream", "name": "/etc/passwd", "text": ["a", "b"]},
        {"output_type": "kernel_takeover"},
        "not a dict",
    ]
    cleaned = clean_outputs(hostile, 10_000)
    assert cleaned[0].data == {"text/plain": "[output left out: image/svg+xml, text/html]"}
    assert cleaned[1].data == {"text/plain": "42"} and "extra" not in cleaned[1]
    assert (cleaned[2].name, cleaned[2].text) == ("stdout", "ab")
    assert len(cleaned) == 3
    many = [{"output_type": "stream", "name": "stdout", "text": "y" * 1000}] * 50
    capped = clean_outputs(many, 5000)
    assert sum(len(o.text) for o in capped) < 5100 and capped[-1].text == "\n[output truncated]\n"


def test_a_student_cannot_break_feedback_with_hidden_test_markers(tiny_course):
    plan = _plan(tiny_course, submission(tiny_course, answer="# ### BEGIN HIDDEN TESTS\ndef double(x):\n    return 2 * x"))
    notebook = autograded_notebook(plan, _result(plan))
    assert "BEGIN HIDDEN TESTS" not in nbformat.writes(notebook)
    assert "BEGIN HIDDEN-TESTS" in notebook.cells[3].source


def _generate_feedback(course):
    from nbgrader.apps.api import NbGraderAPI

    old_path = os.environ.get("PATH", "")
    os.environ["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), old_path])
    try:
        api = NbGraderAPI(coursedir=course.coursedir, config=course.coursedir.config)
        result = api.generate_feedback(ASSIGNMENT, force=True)
    finally:
        os.environ["PATH"] = old_path
    assert result["success"], result.get("log")


def test_generated_feedback_holds_no_hidden_test_source_or_traceback(tiny_course):
    plan = _plan(tiny_course, submission(tiny_course, answer="def double(x):\n    return x"))
    result = _result(plan, hidden="failed")
    outcome = outcome_for(tiny_course, "alice", submission(tiny_course, answer="def double(x):\n    return x"),
                          result=result)
    with GradebookWriter(tiny_course, ASSIGNMENT) as writer:
        writer.record(outcome)
    _generate_feedback(tiny_course)
    html = (tiny_course.root / "nbgrader" / "feedback" / "alice" / ASSIGNMENT / f"{ASSIGNMENT}.html").read_text()
    assert "Score: 0.0 / 4.0" in html
    assert "hidden tests: failed" in html and "double(1) should be 2" in html
    # The hidden test is `assert double(3) == 6`: neither its code nor a traceback quoting it.
    for secret in (HIDDEN_MARKER, "double(3)", "BEGIN HIDDEN TESTS"):
        assert secret not in html


def test_the_course_config_strips_hidden_tests_from_plain_nbgrader_notebooks(tiny_course):
    """Second line of defence: an autograded notebook holding hidden tests (as nbgrader's own writes it)."""
    outcome = outcome_for(tiny_course, "bob", submission(tiny_course))
    with GradebookWriter(tiny_course, ASSIGNMENT) as writer:
        writer.record(outcome)
    path = tiny_course.autograded_folder("bob", ASSIGNMENT) / f"{ASSIGNMENT}.ipynb"
    notebook = nbformat.read(path, 4)
    hidden_cell = next(c for c in notebook.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "ex1-hidden")
    hidden_cell.source = next(c.source for c in source_of(tiny_course).cells if c.id == "ex1-hidden")
    assert HIDDEN_MARKER in hidden_cell.source
    nbformat.write(notebook, path)
    _generate_feedback(tiny_course)
    html = (tiny_course.root / "nbgrader" / "feedback" / "bob" / ASSIGNMENT / f"{ASSIGNMENT}.html").read_text()
    assert "Score: 3.0 / 4.0" in html
    assert HIDDEN_MARKER not in html and "BEGIN HIDDEN TESTS" not in html


def test_limits_flag_lost_points_for_review_and_other_events_only_inform(tiny_course):
    from cnn_course.grading.results import graded_outcome

    plan = _plan(tiny_course, submission(tiny_course))
    quiet = graded_outcome(plan, _result(plan))                  # an event, but the run was not stopped
    assert quiet.status == "graded" and quiet.problems == ["Cell 2 ran past its 20 s limit and was stopped."]
    assert not any(grade.needs_manual_grade for grade in quiet.grades if grade.grade_id.startswith("ex1"))
    stopped = graded_outcome(plan, _result(plan, statuses={1: "timeout"}))
    assert stopped.status == "flagged"
    assert {g.grade_id: g.needs_manual_grade for g in stopped.grades} == {
        "ex1-check": True, "ex1-hidden": True, "ex2-answer": False}
    restored = _plan(tiny_course, submission(tiny_course, answer=None))
    restored.problems.append("The read-only cell 'setup' was changed (code or settings); the grader used the original instead.")
    assert graded_outcome(restored, _result(restored)).status == "flagged"
