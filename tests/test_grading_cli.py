"""`python -m cnn_course.grading autograde`: a batch of good and bad submissions, resume, Dask.

The pipeline that runs a notebook in sandboxes is replaced by a stand-in (`fake_grade_notebook`:
full marks when the answer doubles its argument) so these tests check the command's own work in
seconds: the batch goes on past every bad notebook, nothing is lost or regraded after a crash,
and a Dask cluster of two worker processes gives the same results as local threads.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import os
import shutil
from pathlib import Path

import nbformat
import pytest
import test_grading_gradebook as shared
from cnn_course.grading import cli
from cnn_course.grading.gradebook import GradebookWriter, read_journal
from conftest import REPO_ROOT
from test_grading_gradebook import (
    ASSIGNMENT,
    HIDDEN_MARKER,
    RIGHT_ANSWER,
    fake_result,
    gradebook_rows,
    submission,
    submit,
)

# The tiny released course of the gradebook tests (pytest fixtures, used by name).
tiny_course_template = shared.tiny_course_template
tiny_course = shared.tiny_course

calls: list[str] = []
interrupt_at_call: list[int] = []   # e.g. [2]: the run is interrupted while grading the 2nd submission


def fake_grade_notebook(plan, *, unsafe_no_sandbox):
    """Stands in for the sandboxed pipeline; a marker in the answer makes the grader fail."""
    answer = "\n".join(cell.source for cell in plan.sandbox_cells if not cell.author)
    calls.append(answer)
    if "GRADER-FAILS-HERE" in answer:
        raise RuntimeError("simulated failure of the grading machinery")
    if len(calls) in interrupt_at_call:
        raise KeyboardInterrupt   # Ctrl-C, or the run killed, while this submission is graded
    return fake_result(plan)


@pytest.fixture(autouse=True)
def _fresh_calls():
    calls.clear()
    interrupt_at_call.clear()


def sandbox_works():
    return True, "test sandbox"


def sandbox_missing():
    return False, "bwrap is not installed"


def run(course, *argv, monkeypatch, grade_notebook=fake_grade_notebook, sandbox_check=sandbox_works, **options):
    if grade_notebook is None:          # the real pipeline: the real sandbox check too
        sandbox_check = None
    monkeypatch.chdir(course.root)
    out = io.StringIO()
    status = cli.main(["autograde", ASSIGNMENT, "--no-progress", *argv], out=out, grade_notebook=grade_notebook,
                      sandbox_check=sandbox_check, **options)
    return status, out.getvalue()


def table(course):
    with open(course.grading_folder(ASSIGNMENT) / "grades.csv", newline="") as handle:
        return {row["student"]: row for row in csv.DictReader(handle)}


def class_of_six(course):
    """Two honest students and four bad submissions (issue 8's catalogue, the parts decided before running)."""
    submit(course, "alice", submission(course))
    submit(course, "bob", submission(course, answer="def double(x):\n    return x"))
    submit(course, "carol", b'{"cells": [}')
    (course.submitted_folder("dave", ASSIGNMENT)).mkdir(parents=True)      # handed in nothing
    duplicated = submission(course)
    copy_of_test = nbformat.from_dict(json.loads(json.dumps(duplicated.cells[3])))
    copy_of_test.id, copy_of_test.source = "copy", "pass"
    duplicated.cells.insert(2, copy_of_test)
    submit(course, "erin", duplicated)
    deleted = submission(course)
    deleted.cells = [cell for cell in deleted.cells if cell.metadata.nbgrader["grade_id"] != "ex1-hidden"]
    submit(course, "frank", deleted)


def test_check_says_whether_there_is_a_sandbox(monkeypatch):
    out = io.StringIO()
    assert cli.main(["check"], out=out, sandbox_check=sandbox_missing) == 2
    assert out.getvalue() == "no working sandbox: bwrap is not installed\n"


def test_without_a_sandbox_nothing_runs_unless_the_risk_is_accepted(tiny_course, monkeypatch):
    submit(tiny_course, "alice", submission(tiny_course))
    status, said = run(tiny_course, monkeypatch=monkeypatch, sandbox_check=sandbox_missing)
    assert status == 2 and calls == []
    assert said.startswith("error: no working sandbox, and student code only runs inside one:\n"
                           "  this machine: bwrap is not installed\n")
    assert "--unsafe-no-sandbox" in said and not tiny_course.autograded_folder("alice", ASSIGNMENT).exists()
    status, said = run(tiny_course, "--unsafe-no-sandbox", monkeypatch=monkeypatch, sandbox_check=sandbox_missing)
    assert status == 0 and said.startswith(cli.UNSAFE_WARNING)
    assert "WITHOUT a sandbox" in said


def test_one_bad_notebook_never_stops_the_batch(tiny_course, monkeypatch):
    class_of_six(tiny_course)
    status, said = run(tiny_course, "--workers", "2", monkeypatch=monkeypatch)
    assert status == 0, said
    assert "Done: 2 graded, 2 flagged, 1 invalid, 1 missing, 0 error." in said
    rows = table(tiny_course)
    assert {student: (row["status"], row["score"], row["max_score"]) for student, row in rows.items()} == {
        "alice": ("graded", "3", "4"), "bob": ("graded", "0", "4"), "carol": ("invalid", "0", "4"),
        "dave": ("missing", "0", "4"), "erin": ("flagged", "3", "4"), "frank": ("flagged", "3", "4")}
    assert rows["carol"]["problems"].startswith("The notebook file could not be read: it is not valid JSON")
    assert rows["dave"]["problems"] == "tiny.ipynb was not handed in."
    assert "'ex1-check' is in the notebook more than once" in rows["erin"]["problems"]
    assert rows["frank"]["problems"] == "The read-only cell 'ex1-hidden' was deleted; the grader put the original back."
    assert gradebook_rows(tiny_course, "alice")["score"] == 3.0
    assert gradebook_rows(tiny_course, "carol")["score"] == 0.0
    for student in ("alice", "bob", "erin", "frank"):
        text = (tiny_course.autograded_folder(student, ASSIGNMENT) / f"{ASSIGNMENT}.ipynb").read_text()
        assert HIDDEN_MARKER not in text


def test_a_failing_grader_is_that_students_error_and_a_rerun_retries_only_them(tiny_course, monkeypatch):
    submit(tiny_course, "alice", submission(tiny_course))
    submit(tiny_course, "bob", submission(tiny_course, answer=RIGHT_ANSWER + "  # GRADER-FAILS-HERE"))
    status, said = run(tiny_course, monkeypatch=monkeypatch)
    assert status == 1
    assert "  bob: the grader failed: RuntimeError: simulated failure of the grading machinery" in said
    assert table(tiny_course)["bob"]["status"] == "error"
    assert list(read_journal(tiny_course.grading_folder(ASSIGNMENT) / "journal.jsonl")) == ["alice"]
    submit(tiny_course, "bob", submission(tiny_course, answer="def double(x):\n    return x + x"))
    calls.clear()
    status, said = run(tiny_course, monkeypatch=monkeypatch)
    assert status == 0 and len(calls) == 1 and "x + x" in calls[0]
    assert "Skipping 1 student(s) graded before" in said
    assert table(tiny_course)["bob"]["status"] == "graded"


def test_resume_after_a_crash_between_two_students_loses_and_regrades_nothing(tiny_course, monkeypatch):
    submit(tiny_course, "alice", submission(tiny_course))
    submit(tiny_course, "bob", submission(tiny_course, answer="def double(x):\n    return x + x"))
    submit(tiny_course, "carol", submission(tiny_course, answer="def double(x):\n    return x"))
    interrupt_at_call.append(2)
    status, said = run(tiny_course, "--workers", "1", monkeypatch=monkeypatch)
    assert status == 130 and "Interrupted: 1 submission(s) graded and saved" in said
    assert gradebook_rows(tiny_course, "alice")["score"] == 3.0
    assert list(read_journal(tiny_course.grading_folder(ASSIGNMENT) / "journal.jsonl")) == ["alice"]
    calls.clear()
    interrupt_at_call.clear()
    status, said = run(tiny_course, "--workers", "1", monkeypatch=monkeypatch)
    assert status == 0, said
    assert "Skipping 1 student(s) graded before" in said
    assert len(calls) == 2 and not any("2 * x" in answer for answer in calls), "alice was graded again"
    assert {student: row["score"] for student, row in table(tiny_course).items()} == {
        "alice": "3", "bob": "3", "carol": "0"}


def test_a_kill_after_the_commit_and_before_the_journal_line_regrades_only_that_student(tiny_course, monkeypatch):
    submit(tiny_course, "alice", submission(tiny_course))
    submit(tiny_course, "bob", submission(tiny_course, answer="def double(x):\n    return x + x"))
    original = GradebookWriter._append_journal

    def killed_after_alice(self, entry):
        if entry.student == "bob":
            raise KeyboardInterrupt   # as if the process were killed right after bob's commit
        original(self, entry)

    monkeypatch.setattr(GradebookWriter, "_append_journal", killed_after_alice)
    status, _ = run(tiny_course, "--workers", "1", monkeypatch=monkeypatch)
    assert status == 130
    assert gradebook_rows(tiny_course, "bob")["score"] == 3.0          # committed: not lost
    monkeypatch.setattr(GradebookWriter, "_append_journal", original)
    calls.clear()
    status, _ = run(tiny_course, monkeypatch=monkeypatch)
    assert status == 0 and len(calls) == 1 and "x + x" in calls[0]
    assert gradebook_rows(tiny_course, "bob")["score"] == 3.0
    backups = sorted(tiny_course.grading_folder(ASSIGNMENT).glob("gradebook-before-*.db"))
    assert len(backups) == 2   # one per run that wrote


def test_no_resume_grades_everybody_again_and_student_picks_some(tiny_course, monkeypatch):
    submit(tiny_course, "alice", submission(tiny_course))
    submit(tiny_course, "bob", submission(tiny_course, answer=None))
    run(tiny_course, monkeypatch=monkeypatch)
    calls.clear()
    status, _ = run(tiny_course, "--student", "bob", "--no-resume", monkeypatch=monkeypatch)
    assert status == 0 and len(calls) == 1 and "NotImplementedError" in calls[0]
    status, said = run(tiny_course, "--student", "zoe", monkeypatch=monkeypatch)
    assert status == 2 and said.startswith("error: no submission of tiny for zoe")


def test_a_changed_test_means_a_regrade_on_resume(tiny_course, monkeypatch):
    submit(tiny_course, "alice", submission(tiny_course))
    run(tiny_course, monkeypatch=monkeypatch)
    source_path = tiny_course.source_folder(ASSIGNMENT) / f"{ASSIGNMENT}.ipynb"
    source = nbformat.read(source_path, 4)
    source.cells[4].source = source.cells[4].source.replace("double(3) == 6", "double(4) == 8")
    nbformat.write(source, source_path)
    calls.clear()
    status, _ = run(tiny_course, monkeypatch=monkeypatch)
    assert status == 0 and len(calls) == 1


@pytest.mark.parametrize("argv, says", [
    (["autograde", "ps9"], "error: there is no assignment 'ps9'"),
])
def test_plain_errors_before_anything_runs(tiny_course, monkeypatch, argv, says):
    monkeypatch.chdir(tiny_course.root)
    out = io.StringIO()
    assert cli.main(argv, out=out, sandbox_check=sandbox_works) == 2
    assert out.getvalue().startswith(says)


def test_outside_a_course_the_error_says_where_to_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    assert cli.main(["autograde", "ps1_convolution"], out=out, sandbox_check=sandbox_works) == 2
    assert "run the grader from the course root" in out.getvalue()


def test_a_missing_release_says_make_release(tiny_course, monkeypatch):
    (tiny_course.release_folder(ASSIGNMENT) / f"{ASSIGNMENT}.ipynb").unlink()
    status, said = run(tiny_course, monkeypatch=monkeypatch)
    assert status == 2 and "is missing: run `make release`" in said


# --------------------------------------------------------------------------------------------
# The real pipeline: the fixture assignment of tests/grading_fixtures, graded in sandboxes

FIXTURE = REPO_ROOT / "tests" / "grading_fixtures" / "tiny_source.ipynb"
WRONG_CORRELATE = """def correlate_valid(x, w):
    import numpy as np
    x, w = np.asarray(x, dtype=float), np.asarray(w, dtype=float)[::-1, ::-1]   # flips: a convolution
    rows, cols = x.shape[0] - w.shape[0] + 1, x.shape[1] - w.shape[1] + 1
    return np.array([[np.sum(x[i:i + w.shape[0], j:j + w.shape[1]] * w) for j in range(cols)] for i in range(rows)])
"""


def _sandbox_mode() -> list[str]:
    """[] with a working sandbox; ["--unsafe-no-sandbox"] on a laptop without one; a failure in CI."""
    from cnn_course.grading.sandbox import sandbox_status

    available, reason = sandbox_status()
    if available:
        return []
    if os.environ.get("CI"):
        pytest.fail(f"CI must grade in real sandboxes: {reason}")
    return ["--unsafe-no-sandbox"]


@pytest.fixture(scope="session")
def fixture_course_template(tmp_path_factory):
    root = tmp_path_factory.mktemp("fixture-course")
    shutil.copy(REPO_ROOT / "nbgrader_config.py", root / "nbgrader_config.py")
    (root / "solutions" / ASSIGNMENT).mkdir(parents=True)
    shutil.copy(FIXTURE, root / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")
    shared._release_course(root)
    return root


def _answered(release, source, replace=None):
    """The release with the source's answers (solution markers dropped), some replaced."""
    answers = {cell.metadata.nbgrader["grade_id"]: cell.source for cell in source.cells
               if cell.metadata.get("nbgrader", {}).get("solution")}
    notebook = copy.deepcopy(release)
    for cell in notebook.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in answers:
            lines = answers[grade_id].split("\n")
            cell.source = "\n".join(line for line in lines if "### BEGIN SOLUTION" not in line
                                    and "### END SOLUTION" not in line)
        if replace and grade_id in replace:
            cell.source = replace[grade_id]
    return notebook


def _fixture_class(course):
    release = nbformat.read(course.release_folder(ASSIGNMENT) / f"{ASSIGNMENT}.ipynb", 4)
    source = nbformat.read(course.source_folder(ASSIGNMENT) / f"{ASSIGNMENT}.ipynb", 4)
    submit(course, "honest", _answered(release, source))
    submit(course, "blank", release)
    submit(course, "wrong-ex1", _answered(release, source, {"ex1-solution": WRONG_CORRELATE}))
    submit(course, "not-json", b"{ this is not a notebook")


def _comparable(course):
    rows = {student: {k: v for k, v in row.items() if k != "seconds"} for student, row in table(course).items()}
    notebooks = {}
    for student in rows:
        path = course.autograded_folder(student, ASSIGNMENT) / f"{ASSIGNMENT}.ipynb"
        notebooks[student] = _without_ids(path.read_text())
    grades = {student: gradebook_rows(course, student)["grades"] for student in rows}
    return rows, notebooks, grades


@pytest.mark.slow
def test_dask_workers_in_two_processes_grade_like_local_threads(fixture_course_template, tmp_path, monkeypatch):
    """The fixture graded in real sandboxes: once on 2 threads, once on a LocalCluster of 2 worker processes."""
    from distributed import Client, LocalCluster

    mode = _sandbox_mode()
    threads = shared.Course.load(shutil.copytree(fixture_course_template, tmp_path / "threads"))
    on_dask = shared.Course.load(shutil.copytree(fixture_course_template, tmp_path / "dask"))
    _fixture_class(threads)
    _fixture_class(on_dask)

    status, said = run(threads, "--workers", "2", *mode, monkeypatch=monkeypatch, grade_notebook=None)
    assert status == 0, said
    rows = table(threads)
    # The flipped kernel passes the visible check (its kernel is symmetric): only the hidden test
    # of Exercise 1 (2 of the 6 points) catches it.
    assert {student: (row["status"], row["score"]) for student, row in rows.items()} == {
        "honest": ("graded", "6"), "blank": ("graded", "0"), "wrong-ex1": ("graded", "4"), "not-json": ("invalid", "0")}
    for student in rows:
        text = (threads.autograded_folder(student, ASSIGNMENT) / f"{ASSIGNMENT}.ipynb").read_text()
        assert "HIDDEN-7f3a9c" not in text

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        status, said = run(on_dask, "--dask", "local", *mode, monkeypatch=monkeypatch, grade_notebook=None,
                           dask_client=client)
        worker_pids = set(client.run(os.getpid).values())
    assert status == 0, said
    assert len(worker_pids) == 2 and os.getpid() not in worker_pids
    assert _comparable(on_dask) == _comparable(threads)


def _without_ids(text):
    notebook = json.loads(text)
    for cell in notebook["cells"]:
        cell.pop("id", None)
    return notebook


def test_the_course_package_never_imports_the_grader():
    """Students' `pip install ./utils` must not need the grader's dependencies."""
    import ast

    import cnn_course

    package = Path(cnn_course.__file__).parent
    offenders = []
    for path in package.rglob("*.py"):
        if "grading" in path.relative_to(package).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            if any("grading" in name or name.split(".")[0] in ("dask", "distributed") for name in names):
                offenders.append(str(path.relative_to(package)))
    assert not offenders


def test_the_grading_extra_declares_what_the_grader_imports():
    import tomllib
    from conftest import REPO_ROOT
    from packaging.requirements import Requirement

    extra = tomllib.loads((REPO_ROOT / "utils" / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    declared = {Requirement(text).name.lower() for text in extra["grading"]}
    assert {"nbgrader", "nbformat", "dask", "distributed", "tqdm", "ipython"} <= declared
