"""The single gradebook writer: backup first, one transaction per student, a journal for --resume.

Also the tiny course the grading tests share (`tiny_course`): nbgrader_config.py of this
repository, one assignment "tiny" whose source has a locked set-up cell, one exercise with a
visible check and a hidden test, and a manually graded written answer; released with nbgrader
itself, so its gradebook is exactly what `make release` makes.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import sqlite3
import sys
from pathlib import Path

import nbformat
import pytest
from cnn_course.grading.gradebook import (
    Course,
    CourseError,
    GradebookWriter,
    read_journal,
    submission_sha256,
    write_csv,
)
from cnn_course.grading.model import CellResult, GradeResult, NotebookResult
from cnn_course.grading.plan import make_plan
from cnn_course.grading.results import SubmissionOutcome, graded_outcome, ungraded_outcome
from conftest import REPO_ROOT
from nbgrader.api import Gradebook

ASSIGNMENT = "tiny"
HIDDEN_MARKER = "HIDDEN-MARKER-7f3a"
RIGHT_ANSWER = "def double(x):\n    return 2 * x"


def _cell(kind, grade_id, source, cell_type="code", points=None):
    fields = {"grade_id": grade_id, "schema_version": 3, "grade": kind in ("test", "written"),
              "solution": kind in ("solution", "written"), "locked": kind in ("locked", "test")}
    if points is not None:
        fields["points"] = points
    maker = nbformat.v4.new_code_cell if cell_type == "code" else nbformat.v4.new_markdown_cell
    cell = maker(source, metadata={"nbgrader": fields})
    cell.id = grade_id
    return cell


def tiny_source() -> nbformat.NotebookNode:
    """The source notebook of the tiny assignment (3 points autograded, 1 point by hand)."""
    return nbformat.v4.new_notebook(cells=[
        _cell("locked", "intro", "# A tiny problem set", "markdown"),
        _cell("locked", "setup", "import math"),
        _cell("solution", "ex1-solution",
              "def double(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION"),
        _cell("test", "ex1-check", "assert double(1) == 2, 'double(1) should be 2'", points=1),
        _cell("test", "ex1-hidden", "# Hidden tests for Exercise 1\n### BEGIN HIDDEN TESTS\n"
              f"assert double(3) == 6  # {HIDDEN_MARKER}\n### END HIDDEN TESTS", points=2),
        _cell("written", "ex2-answer", "### BEGIN SOLUTION\nBecause 2 x = x + x.\n### END SOLUTION",
              "markdown", points=1),
    ], metadata={"kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
                 "language_info": {"name": "python"}, "cnn_course_grading": {"cell_timeout": 20}})


def _release_course(root: Path) -> None:
    """nbgrader generate_assignment, in this process (nbgrader runs `alembic`: PATH needs the venv)."""
    from nbgrader.apps.api import NbGraderAPI

    course = Course.load(root)
    old_path = os.environ.get("PATH", "")
    os.environ["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), old_path])
    try:
        result = NbGraderAPI(coursedir=course.coursedir, config=course.coursedir.config).generate_assignment(
            ASSIGNMENT, force=True)
    finally:
        os.environ["PATH"] = old_path
    assert result["success"], result.get("log")


@pytest.fixture(scope="session")
def tiny_course_template(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tiny-course-template")
    shutil.copy(REPO_ROOT / "nbgrader_config.py", root / "nbgrader_config.py")
    (root / "solutions" / ASSIGNMENT).mkdir(parents=True)
    nbformat.write(tiny_source(), root / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")
    _release_course(root)
    return root


@pytest.fixture
def tiny_course(tiny_course_template, tmp_path) -> Course:
    """A fresh copy of the released tiny course."""
    root = tmp_path / "course"
    shutil.copytree(tiny_course_template, root)
    return Course.load(root)


def release_of(course: Course) -> nbformat.NotebookNode:
    return nbformat.read(course.release_folder(ASSIGNMENT) / f"{ASSIGNMENT}.ipynb", 4)


def source_of(course: Course) -> nbformat.NotebookNode:
    return nbformat.read(course.source_folder(ASSIGNMENT) / f"{ASSIGNMENT}.ipynb", 4)


def submission(course: Course, answer: str | None = RIGHT_ANSWER, written: str | None = None) -> nbformat.NotebookNode:
    """The release with the student's answer (None: left blank)."""
    notebook = copy.deepcopy(release_of(course))
    for cell in notebook.cells:
        grade_id = cell.metadata.nbgrader["grade_id"]
        if grade_id == "ex1-solution" and answer is not None:
            cell.source = answer
        if grade_id == "ex2-answer" and written is not None:
            cell.source = written
    return notebook


def submit(course: Course, student: str, notebook: nbformat.NotebookNode | bytes,
           timestamp: str = "2026-11-20 10:00:00.000000 UTC") -> Path:
    folder = course.submitted_folder(student, ASSIGNMENT)
    folder.mkdir(parents=True, exist_ok=True)
    data = notebook if isinstance(notebook, bytes) else nbformat.writes(notebook).encode()
    (folder / f"{ASSIGNMENT}.ipynb").write_bytes(data)
    (folder / "timestamp.txt").write_text(timestamp)
    return folder


def fake_result(plan) -> NotebookResult:
    """What the pipeline would report: full marks when the answer doubles, nothing otherwise."""
    right = any("2 * x" in cell.source or "x + x" in cell.source for cell in plan.sandbox_cells if not cell.author)
    cells = [CellResult(index=i, status="ok", cell_id=cell.cell_id, grade_id=cell.grade_id,
                        outputs=[{"output_type": "stream", "name": "stdout", "text": f"ran cell {i}\n"}])
             for i, cell in enumerate(plan.sandbox_cells)]
    grades = []
    for judge_cell in plan.judge_cells:
        if not judge_cell.grade:
            continue
        has_hidden = any(segment.hidden for segment in judge_cell.segments)
        visible = [] if right else [{"output_type": "error", "ename": "AssertionError",
                                     "evalue": "double(1) should be 2", "traceback": ["AssertionError: double(1) should be 2"]}]
        grades.append(GradeResult(judge_cell.grade_id, judge_cell.points if right else 0.0, judge_cell.points,
                                  visible_outputs=visible if not has_hidden else [],
                                  hidden=("passed" if right else "failed") if has_hidden else "none"))
    return NotebookResult(cells=cells, grades=grades, events=[], seconds=0.5)


def outcome_for(course: Course, student: str, notebook: nbformat.NotebookNode, *,
                timestamp: str = "2026-11-20 10:00:00.000000 UTC", result=None) -> SubmissionOutcome:
    data = nbformat.writes(notebook).encode()
    plan = make_plan(data, source_of(course), release_of(course), notebook=ASSIGNMENT)
    graded = graded_outcome(plan, result or fake_result(plan))
    return SubmissionOutcome(student, submission_sha256({ASSIGNMENT: data}, timestamp), "assignment-hash",
                             graded.status, [graded], timestamp, 1.0)


def gradebook_rows(course: Course, student: str) -> dict:
    with Gradebook(course.db_url, course.coursedir.course_id) as gradebook:
        notebook = gradebook.find_submission_notebook(ASSIGNMENT, ASSIGNMENT, student)
        grades = {grade.name: (grade.auto_score, grade.max_score, grade.needs_manual_grade) for grade in notebook.grades}
        comments = {comment.name: comment.auto_comment for comment in notebook.comments}
        timestamp = gradebook.find_submission(ASSIGNMENT, student).timestamp
        return {"grades": grades, "comments": comments, "timestamp": timestamp, "score": notebook.score}


# --------------------------------------------------------------------------------------------


def test_the_course_is_read_from_nbgrader_config(tiny_course):
    root = tiny_course.root
    assert tiny_course.source_folder(ASSIGNMENT) == root / "solutions" / ASSIGNMENT
    assert tiny_course.release_folder(ASSIGNMENT) == root / "assignments" / ASSIGNMENT
    assert tiny_course.grading_folder(ASSIGNMENT) == root / "nbgrader" / "grading" / ASSIGNMENT
    assert tiny_course.sqlite_path() == root / "nbgrader" / "gradebook.db"
    submit(tiny_course, "bob", submission(tiny_course))
    submit(tiny_course, "alice", submission(tiny_course))
    (root / "nbgrader" / "submitted" / "carol" / "other").mkdir(parents=True)
    assert tiny_course.students(ASSIGNMENT) == ["alice", "bob"]


def test_a_folder_without_nbgrader_config_is_refused_plainly(tmp_path):
    with pytest.raises(CourseError, match="run the grader from the course root"):
        Course.load(tmp_path)


def test_an_assignment_missing_from_the_gradebook_is_refused_plainly(tiny_course):
    with pytest.raises(CourseError, match=r"'ps9' is not in the gradebook: run `make release`"):
        GradebookWriter(tiny_course, "ps9")


def test_a_missing_gradebook_is_refused_plainly(tiny_course):
    tiny_course.sqlite_path().unlink()
    with pytest.raises(CourseError, match="there is no gradebook yet"):
        GradebookWriter(tiny_course, ASSIGNMENT)


def test_a_source_changed_after_its_release_is_refused(tiny_course):
    with pytest.raises(CourseError, match="differ between the source and the gradebook"):
        GradebookWriter(tiny_course, ASSIGNMENT, max_scores={ASSIGNMENT: {"ex1-check": 1, "ex1-hidden": 5,
                                                                           "ex2-answer": 1}})
    GradebookWriter(tiny_course, ASSIGNMENT, max_scores={ASSIGNMENT: {"ex1-check": 1, "ex1-hidden": 2,
                                                                       "ex2-answer": 1}}).close()


def test_a_graded_student_gets_nbgraders_rows_notebook_and_journal_line(tiny_course):
    outcome = outcome_for(tiny_course, "alice", submission(tiny_course))
    with GradebookWriter(tiny_course, ASSIGNMENT) as writer:
        writer.record(outcome)
        backup = writer.backup_path
    rows = gradebook_rows(tiny_course, "alice")
    assert rows["grades"] == {"ex1-check": (1.0, 1.0, False), "ex1-hidden": (2.0, 2.0, False),
                              "ex2-answer": (0.0, 1.0, False)}
    assert rows["comments"] == {"ex1-solution": None, "ex2-answer": "No response."}
    assert str(rows["timestamp"]).startswith("2026-11-20 10:00:00")
    assert rows["score"] == 3.0
    autograded = tiny_course.autograded_folder("alice", ASSIGNMENT)
    assert nbformat.read(autograded / f"{ASSIGNMENT}.ipynb", 4).cells[2].source == RIGHT_ANSWER
    assert (autograded / "timestamp.txt").read_text() == "2026-11-20 10:00:00.000000 UTC"
    journal = read_journal(writer.journal_path)
    assert list(journal) == ["alice"] and journal["alice"].submission_sha256 == outcome.submission_sha256
    # The backup was taken before the first write: it has the assignment but not alice's grades.
    with sqlite3.connect(backup) as copy_of_before:
        assert copy_of_before.execute("select count(*) from submitted_assignment").fetchone() == (0,)
        assert copy_of_before.execute("select name from assignment").fetchall() == [(ASSIGNMENT,)]


def test_a_written_answer_waits_for_a_person_and_a_manual_score_stays(tiny_course):
    outcome = outcome_for(tiny_course, "bob", submission(tiny_course, written="Because doubling adds x to itself."))
    with GradebookWriter(tiny_course, ASSIGNMENT) as writer:
        writer.record(outcome)
    assert gradebook_rows(tiny_course, "bob")["grades"]["ex2-answer"] == (None, 1.0, True)
    with Gradebook(tiny_course.db_url, tiny_course.coursedir.course_id) as gradebook:
        gradebook.find_grade("ex1-check", ASSIGNMENT, ASSIGNMENT, "bob").manual_score = 0.5
        gradebook.db.commit()
    with GradebookWriter(tiny_course, ASSIGNMENT) as writer:
        writer.record(outcome)
    with Gradebook(tiny_course.db_url, tiny_course.coursedir.course_id) as gradebook:
        grade = gradebook.find_grade("ex1-check", ASSIGNMENT, ASSIGNMENT, "bob")
        assert (grade.manual_score, grade.auto_score, grade.score, grade.needs_manual_grade) == (0.5, 1.0, 0.5, True)


def test_recording_twice_is_the_same_as_once(tiny_course):
    outcome = outcome_for(tiny_course, "alice", submission(tiny_course))
    with GradebookWriter(tiny_course, ASSIGNMENT) as writer:
        writer.record(outcome)
        first_backup = writer.backup_path
        writer.record(outcome)
        assert writer.backup_path == first_backup   # one backup per run
    with sqlite3.connect(tiny_course.sqlite_path()) as db:
        assert db.execute("select count(*) from submitted_assignment").fetchone() == (1,)
        assert db.execute("select count(*) from grade").fetchone() == (3,)
    assert len(list(tiny_course.grading_folder(ASSIGNMENT).glob("gradebook-before-*.db"))) == 1


def test_a_failed_transaction_leaves_the_student_untouched(tiny_course, monkeypatch):
    with GradebookWriter(tiny_course, ASSIGNMENT) as writer:
        writer.record(outcome_for(tiny_course, "alice", submission(tiny_course, answer=None)))
        broken = outcome_for(tiny_course, "alice", submission(tiny_course))
        broken.notebooks[0].grades[-1].grade_id = "no-such-cell"     # fails after the first grades are set
        with pytest.raises(Exception, match="No such grade"):
            writer.record(broken)
        assert len(read_journal(writer.journal_path)) == 1
    assert gradebook_rows(tiny_course, "alice")["grades"]["ex1-check"] == (0.0, 1.0, False)


def test_error_outcomes_write_nothing(tiny_course):
    error = SubmissionOutcome("dave", "h", "a", "error", error="the grader failed: OSError: disk full")
    with GradebookWriter(tiny_course, ASSIGNMENT) as writer:
        writer.record(error)
        assert writer.backup_path is None
    assert not writer.journal_path.exists()
    assert not tiny_course.autograded_folder("dave", ASSIGNMENT).exists()


def test_an_unreadable_notebook_scores_zero_and_says_why(tiny_course):
    message = "The notebook file could not be read: it is not valid JSON (line 1, column 2: Expecting value)."
    invalid = ungraded_outcome(ASSIGNMENT, release_of(tiny_course), "invalid", message)
    outcome = SubmissionOutcome("erin", "h", "a", "invalid", [invalid], None, 0.1)
    with GradebookWriter(tiny_course, ASSIGNMENT) as writer:
        writer.record(outcome)
    assert gradebook_rows(tiny_course, "erin")["grades"] == {
        "ex1-check": (0.0, 1.0, False), "ex1-hidden": (0.0, 2.0, False), "ex2-answer": (0.0, 1.0, False)}
    autograded = nbformat.read(tiny_course.autograded_folder("erin", ASSIGNMENT) / f"{ASSIGNMENT}.ipynb", 4)
    assert message in autograded.cells[0].source


def test_a_journal_line_cut_short_by_a_kill_is_skipped(tmp_path):
    journal = tmp_path / "journal.jsonl"
    entry = {"student": "a", "submission_sha256": "1", "assignment_sha256": "2", "status": "graded", "score": 3,
             "max_score": 4, "seconds": 1.0, "problems": [], "graded_at": "now"}
    journal.write_text(json.dumps(entry) + "\n" + json.dumps({**entry, "student": "b"})[:40])
    assert list(read_journal(journal)) == ["a"]


def test_csv_has_one_row_per_student(tmp_path, tiny_course):
    outcomes = [outcome_for(tiny_course, "bob", submission(tiny_course, answer=None)),
                outcome_for(tiny_course, "alice", submission(tiny_course)),
                SubmissionOutcome("carl", "h", "a", "error", error="the grader failed: boom", seconds=2.0)]
    path = write_csv(tmp_path / "grades.csv", outcomes)
    assert path.read_text().splitlines() == [
        "student,status,score,max_score,seconds,problems",
        "alice,graded,3,4,1.0,",
        "bob,graded,0,4,1.0,",
        "carl,error,0,0,2.0,the grader failed: boom",
    ]


def test_canvas_export_has_the_columns_canvas_imports(tiny_course, tmp_path):
    from cnn_course.grading.gradebook import CanvasCsvExportPlugin

    with GradebookWriter(tiny_course, ASSIGNMENT) as writer:
        writer.record(outcome_for(tiny_course, "alice", submission(tiny_course)))
    with Gradebook(tiny_course.db_url, tiny_course.coursedir.course_id) as gradebook:
        gradebook.update_or_create_student("alice", first_name="Alice", last_name="Liddell", lms_user_id="1042")
        gradebook.update_or_create_student("zed")        # enrolled, handed in nothing
        CanvasCsvExportPlugin(to=str(tmp_path / "canvas.csv")).export(gradebook)
    assert (tmp_path / "canvas.csv").read_text().splitlines() == [
        "Student,ID,SIS User ID,SIS Login ID,Section,tiny",
        '"Liddell, Alice",1042,alice,,,3',
        "zed,,zed,,,0",
    ]
