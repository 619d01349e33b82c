"""Step 1 of safe grading: a submission read against the assignment, before anything runs.

Every case of issue 8's catalogue that is decided before execution (invalid JSON, duplicated
grade_ids, deleted, extra or edited test cells, altered checksums, an answer cell turned into a
test cell) is graded the way the plan says: author code from the source, the student's code as
written, one plain message per problem.
"""

from __future__ import annotations

import copy
import json

import nbformat
import pytest
from cnn_course.grading.model import GradingConfig
from cnn_course.grading.plan import (
    AssignmentError,
    InvalidSubmission,
    grading_config,
    make_plan,
    release_source,
    split_hidden_tests,
)
from nbgrader.utils import compute_checksum

HIDDEN_MARKER = "HIDDEN-MARKER-7f3a"


def _cell(kind, grade_id, source, cell_type="code", points=None):
    """A source-notebook cell with nbgrader metadata of the given kind."""
    fields = {"grade_id": grade_id, "schema_version": 3, "grade": kind == "test",
              "solution": kind == "solution", "locked": kind in ("locked", "test")}
    if points is not None:
        fields["points"] = points
    maker = nbformat.v4.new_code_cell if cell_type == "code" else nbformat.v4.new_markdown_cell
    cell = maker(source, metadata={"nbgrader": fields})
    cell.id = grade_id
    return cell


def _assignment():
    """A tiny source notebook (markdown, setup, one exercise, its visible and hidden tests) and its release."""
    source = nbformat.v4.new_notebook(cells=[
        _cell("locked", "intro", "# Problem set", "markdown"),
        _cell("locked", "setup", "import numpy as np"),
        _cell("solution", "ex1-solution", "def double(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION"),
        _cell("test", "ex1-check", "assert double(1) == 2", points=1),
        _cell("test", "ex1-hidden",
              f"# hidden tests\n### BEGIN HIDDEN TESTS\nassert double(3) == 6  # {HIDDEN_MARKER}\n### END HIDDEN TESTS",
              points=2),
    ], metadata={"cnn_course_grading": {"cell_timeout": 30}})
    release = copy.deepcopy(source)
    for cell in release.cells:
        grade_id = cell.metadata.nbgrader["grade_id"]
        if grade_id == "ex1-solution":
            cell.source = "def double(x):\n    # YOUR CODE HERE\n    raise NotImplementedError()"
        cell.source = release_source(cell.source)
        cell.metadata.nbgrader["cell_type"] = cell.cell_type
        cell.metadata.nbgrader["checksum"] = compute_checksum(cell)
        if cell.metadata.nbgrader["locked"]:
            cell.metadata.update(editable=False, deletable=False)
    return source, release


def _answered(release, answer="def double(x):\n    return 2 * x"):
    submission = copy.deepcopy(release)
    for cell in submission.cells:
        if cell.metadata.nbgrader["grade_id"] == "ex1-solution":
            cell.source = answer
    return submission


def _plan(submission, source=None, release=None):
    if source is None:
        source, release = _assignment()
    data = submission if isinstance(submission, bytes) else nbformat.writes(submission).encode()
    return make_plan(data, source, release, notebook="tiny")


def _cell_with(notebook, grade_id):
    return next(cell for cell in notebook.cells if cell.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def test_an_honest_submission_has_no_problems_and_runs_its_answer_with_the_source_code():
    source, release = _assignment()
    plan = _plan(_answered(release), source, release)
    assert plan.problems == []
    assert [(c.grade_id, c.author, c.source) for c in plan.sandbox_cells] == [
        ("setup", True, "import numpy as np"),
        ("ex1-solution", False, "def double(x):\n    return 2 * x"),
    ]
    # The judge runs the locked and test cells of the source, hidden tests included, in source order.
    assert [(c.grade_id, c.grade, c.points) for c in plan.judge_cells] == [
        ("setup", False, 0.0), ("ex1-check", True, 1.0), ("ex1-hidden", True, 2.0)]
    hidden = plan.judge_cells[2].segments
    assert [s.hidden for s in hidden] == [False, True] and HIDDEN_MARKER in hidden[1].source
    assert plan.config == GradingConfig(cell_timeout=30.0)
    # The autograded notebook keeps the submission's order and shows only the release's test code.
    assert [(c.grade_id, c.role) for c in plan.layout] == [
        ("intro", "author"), ("setup", "author"), ("ex1-solution", "solution"),
        ("ex1-check", "test"), ("ex1-hidden", "test")]
    assert not any(HIDDEN_MARKER in cell.source for cell in plan.layout)
    assert [c.sandbox_index for c in plan.layout] == [None, 0, 1, None, None]


@pytest.mark.parametrize("data, says", [
    (b'{"cells": [', "not valid JSON (line 1, column 12"),
    (b"", "it is empty"),
    (b"\xff\xfe\x00garbage", "not UTF-8 text"),
    (b'["a", "list"]', "not a notebook"),
    (b'{"nbformat": 3, "cells": []}', "notebook format 3"),
])
def test_an_unreadable_file_is_invalid_with_a_plain_message(data, says):
    with pytest.raises(InvalidSubmission, match="^The notebook file could not be read: ") as caught:
        _plan(data)
    assert says in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_huge_file_is_refused_before_it_is_parsed(monkeypatch):
    import cnn_course.grading.plan as plan_module
    monkeypatch.setattr(plan_module, "MAX_SUBMISSION_BYTES", 1000)
    _, release = _assignment()
    with pytest.raises(InvalidSubmission, match="more than the 0 MB"):
        _plan(_answered(release))


def test_duplicated_test_cell_keeps_one_original_copy():
    source, release = _assignment()
    submission = _answered(release)
    fake = copy.deepcopy(_cell_with(submission, "ex1-hidden"))
    fake.source = "pass  # my own version of the test"
    fake.id = "fake"
    submission.cells.insert(2, fake)           # before the answer: the first copy's place is kept
    plan = _plan(submission, source, release)
    assert plan.problems == [
        "The read-only cell 'ex1-hidden' is in the notebook more than once; the grader kept one copy of the original.",
        "The read-only cell 'ex1-hidden' was changed (code or settings); the grader used the original instead.",
    ]
    assert [c.grade_id for c in plan.layout].count("ex1-hidden") == 1
    assert all("my own version" not in c.source for c in plan.layout + plan.sandbox_cells)


def test_duplicated_answer_cells_both_run_in_order():
    source, release = _assignment()
    submission = _answered(release)
    second = copy.deepcopy(_cell_with(submission, "ex1-solution"))
    second.source = "def double(x):\n    return x + x"
    second.id = "copy"
    submission.cells.insert(3, second)
    plan = _plan(submission, source, release)
    assert plan.problems == ["The answer cell 'ex1-solution' is in the notebook more than once; "
                             "every copy was run as your code, in order."]
    assert [c.source for c in plan.sandbox_cells if c.grade_id == "ex1-solution"] == [
        "def double(x):\n    return 2 * x", "def double(x):\n    return x + x"]


def test_deleted_author_cells_are_put_back_where_they_were():
    source, release = _assignment()
    submission = _answered(release)
    submission.cells = [c for c in submission.cells if c.metadata.nbgrader["grade_id"] not in ("setup", "ex1-check")]
    plan = _plan(submission, source, release)
    assert plan.problems == ["The read-only cells 'setup' and 'ex1-check' were deleted; "
                             "the grader put the original back."]
    assert [c.grade_id for c in plan.layout] == ["intro", "setup", "ex1-solution", "ex1-check", "ex1-hidden"]
    assert plan.sandbox_cells[0].source == "import numpy as np" and plan.sandbox_cells[0].cell_id is None


def test_edited_locked_and_test_cells_are_restored_with_one_message():
    source, release = _assignment()
    submission = _answered(release)
    _cell_with(submission, "setup").source = "import numpy as np\nimport builtins; builtins.cheat = True"
    _cell_with(submission, "ex1-check").source = "pass"
    plan = _plan(submission, source, release)
    assert plan.problems == ["The read-only cells 'setup' and 'ex1-check' were changed (code or settings); "
                             "the grader used the original instead."]
    assert plan.sandbox_cells[0].source == "import numpy as np"
    assert _layout(plan, "ex1-check").source == "assert double(1) == 2"


def test_altered_checksums_and_points_count_as_changed_settings():
    source, release = _assignment()
    submission = _answered(release)
    _cell_with(submission, "ex1-check").metadata.nbgrader["checksum"] = "0" * 32
    _cell_with(submission, "ex1-hidden").metadata.nbgrader["points"] = 100
    plan = _plan(submission, source, release)
    assert plan.problems == ["The read-only cells 'ex1-check' and 'ex1-hidden' were changed (code or settings); "
                             "the grader used the original instead."]
    assert [c.points for c in plan.judge_cells if c.grade] == [1.0, 2.0]
    assert _layout(plan, "ex1-hidden").metadata["nbgrader"]["points"] == 2


def test_an_answer_cell_marked_as_a_test_cell_is_still_the_students_code():
    source, release = _assignment()
    submission = _answered(release)
    fields = _cell_with(submission, "ex1-solution").metadata.nbgrader
    fields.update(grade=True, solution=False, locked=True, points=50)
    plan = _plan(submission, source, release)
    assert plan.problems == ["The settings of the answer cell 'ex1-solution' were changed; "
                             "the assignment's settings were used."]
    answer = _layout(plan, "ex1-solution")
    assert answer.role == "solution" and answer.metadata["nbgrader"]["grade"] is False
    assert not plan.sandbox_cells[1].author
    assert [c.grade_id for c in plan.judge_cells] == ["setup", "ex1-check", "ex1-hidden"]


def test_unknown_and_extra_cells_run_as_the_students_own_code_worth_nothing():
    source, release = _assignment()
    submission = _answered(release)
    extra = nbformat.v4.new_code_cell("print('extra')", metadata={"nbgrader": {
        "grade_id": "bonus", "grade": True, "solution": False, "locked": True, "points": 10}})
    plain = nbformat.v4.new_code_cell("y = double(2)", metadata={"tags": ["mine"]})
    submission.cells[3:3] = [extra, plain]
    plan = _plan(submission, source, release)
    assert plan.problems == ["The cell 'bonus' is not part of the assignment; "
                             "the grader ran it as your own code, worth no points."]
    student = [c for c in plan.layout if c.role == "student"]
    assert [(c.source, c.grade_id, c.metadata) for c in student] == [
        ("print('extra')", None, {}), ("y = double(2)", None, {})]
    assert [c.grade for c in plan.judge_cells].count(True) == 2


def test_changed_notebook_settings_are_ignored_with_a_message():
    source, release = _assignment()
    submission = _answered(release)
    submission.metadata["cnn_course_grading"] = {"cell_timeout": 100000}
    plan = _plan(submission, source, release)
    assert plan.config.cell_timeout == 30.0
    assert plan.problems == ["The notebook's grading settings (metadata \"cnn_course_grading\") were changed; "
                             "the assignment's own settings were used."]


def test_broken_cells_are_left_out_and_the_rest_is_graded():
    source, release = _assignment()
    raw = json.loads(nbformat.writes(_answered(release)))
    raw["cells"].insert(1, {"cell_type": "code", "source": 42})
    raw["cells"].insert(1, "not a cell")
    plan = _plan(json.dumps(raw).encode(), source, release)
    assert plan.problems == ["Cells 2, 3 of the notebook were not a readable notebook cell and were left out."]
    assert len(plan.sandbox_cells) == 2


def test_source_lists_and_missing_metadata_are_read_like_jupyter_does():
    source, release = _assignment()
    raw = json.loads(nbformat.writes(_answered(release)))
    raw["cells"].append({"cell_type": "code", "source": ["a = 1\n", "b = 2"], "outputs": []})
    plan = _plan(json.dumps(raw).encode(), source, release)
    assert plan.sandbox_cells[-1].source == "a = 1\nb = 2" and plan.problems == []


def test_hidden_segments_split_and_release_source_matches_nbgrader():
    from nbgrader.preprocessors import ClearHiddenTests
    code = "a = 1\n### BEGIN HIDDEN TESTS\nassert a\n### END HIDDEN TESTS\nb = 2\n### BEGIN HIDDEN TESTS\nc = 3\n### END HIDDEN TESTS"
    assert [(s.hidden, s.source) for s in split_hidden_tests(code)] == [
        (False, "a = 1"), (True, "assert a"), (False, "b = 2"), (True, "c = 3")]
    cell = nbformat.v4.new_code_cell(code, metadata={"nbgrader": {"grade": True, "grade_id": "t", "points": 1,
                                                                  "solution": False, "locked": True}})
    ClearHiddenTests()._remove_hidden_test_region(cell)
    assert release_source(code) == cell.source
    with pytest.raises(AssignmentError, match="without 'END HIDDEN TESTS'"):
        split_hidden_tests("### BEGIN HIDDEN TESTS\nassert 1")


@pytest.mark.parametrize("settings, says", [
    ({"cell_timout": 5}, "unknown grading setting 'cell_timout'"),
    ({"cell_timeout": -1}, "should be a number above 0"),
    ({"memory_bytes": 1.5}, "should be a whole number above 0"),
    ({"forbidden_modules": "scipy"}, "should be a list of names"),
    ({"cell_timeout": 1000, "notebook_timeout": 10}, "longer than notebook_timeout"),
])
def test_bad_grading_settings_are_the_instructors_error(settings, says):
    with pytest.raises(AssignmentError, match=says):
        grading_config({"metadata": {"cnn_course_grading": settings}}, where="solutions/x/x.ipynb")


def test_grading_settings_read_from_metadata():
    config = grading_config({"metadata": {"cnn_course_grading": {
        "notebook_timeout": 600, "forbidden_modules": ["scipy", "keras"], "full_environment_names": ["model"]}}})
    assert config == GradingConfig(notebook_timeout=600.0, forbidden_modules=("scipy", "keras"),
                                   full_environment_names=("model",))
    assert grading_config({"metadata": {}}) == GradingConfig()


def test_a_release_out_of_date_with_its_source_is_the_instructors_error():
    source, release = _assignment()
    release.cells = [c for c in release.cells if c.metadata.nbgrader["grade_id"] != "ex1-hidden"]
    with pytest.raises(AssignmentError, match="make release"):
        make_plan(nbformat.writes(release).encode(), source, release, notebook="tiny")


def _layout(plan, grade_id):
    return next(cell for cell in plan.layout if cell.grade_id == grade_id)


@pytest.mark.parametrize("change", ["points", "visible test", "locked code"])
def test_a_source_changed_since_its_release_is_the_instructors_error(change):
    source, release = _assignment()
    if change == "points":
        _cell_with(source, "ex1-check").metadata.nbgrader["points"] = 5
    elif change == "visible test":
        _cell_with(source, "ex1-hidden").source = "assert True\n" + _cell_with(source, "ex1-hidden").source
    else:
        _cell_with(source, "setup").source = "import numpy as np\nimport math"
    with pytest.raises(AssignmentError, match="changed since the release of tiny: run `make release`"):
        make_plan(nbformat.writes(release).encode(), source, release, notebook="tiny")


def test_hidden_tests_may_change_after_the_release():
    source, release = _assignment()
    cell = _cell_with(source, "ex1-hidden")
    cell.source = cell.source.replace("double(3) == 6", "double(4) == 8")
    plan = make_plan(nbformat.writes(release).encode(), source, release, notebook="tiny")
    assert "double(4) == 8" in plan.judge_cells[2].segments[1].source
