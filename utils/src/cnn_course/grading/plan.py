"""Step 1 of grading one notebook: read the submission and decide what runs where (pure data).

Nothing here executes student code. :func:`make_plan` reads the submitted notebook (bytes)
against the assignment's *source* notebook (solutions and hidden tests) and its *release*
(what the students got), and returns a :class:`Plan`:

- ``sandbox_cells``: the code the student run executes, in the submission's order. Author
  cells (locked, nbgrader ``grade_id`` known) always carry the source notebook's code, never
  the submission's; test cells are left out (they run in the judge); the student's own cells
  run as submitted.
- ``judge_cells``: the source notebook's locked and test code cells, in source order, each
  test cell split into visible and hidden segments.
- ``config``: the assignment's grading settings (:class:`~cnn_course.grading.model.GradingConfig`),
  read from the source notebook's metadata key ``"cnn_course_grading"``.
- ``problems``: one plain sentence per thing the student did that the grader had to undo
  (a deleted, duplicated or edited read-only cell, an unknown cell, changed settings).
- ``layout``: the cells of the autograded notebook (submission order, restored cells put
  back where they belong), used by :mod:`cnn_course.grading.results`.

A submission that cannot be read at all raises :class:`InvalidSubmission` with a message
for the student; a source notebook the grader cannot use raises :class:`AssignmentError`
with a message for the instructor.

Examples
--------
>>> import nbformat
>>> source = nbformat.v4.new_notebook(cells=[
...     nbformat.v4.new_code_cell("x = 1", metadata={"nbgrader": {
...         "grade_id": "answer", "solution": True, "grade": False, "locked": False}}),
...     nbformat.v4.new_code_cell("assert x == 1\\n### BEGIN HIDDEN TESTS\\nassert x > 0\\n### END HIDDEN TESTS",
...         metadata={"nbgrader": {"grade_id": "test", "grade": True, "solution": False,
...                                "locked": True, "points": 2}})])
>>> release = nbformat.reads(nbformat.writes(source), 4)       # what students got
>>> release.cells[1].source = release_source(release.cells[1].source)
>>> plan = make_plan(nbformat.writes(release).encode(), source, release)
>>> [cell.source for cell in plan.sandbox_cells]
['x = 1']
>>> [(segment.hidden, segment.source) for segment in plan.judge_cells[0].segments]
[(False, 'assert x == 1'), (True, 'assert x > 0')]
>>> make_plan(b"{not json", source, release)
Traceback (most recent call last):
...
cnn_course.grading.plan.InvalidSubmission: The notebook file could not be read: it is not valid JSON (line 1, column 2: Expecting property name enclosed in double quotes).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

import nbformat

from .model import GradingConfig, JudgeCell, SandboxCell, TestSegment

__all__ = [
    "AssignmentError",
    "CONFIG_KEY",
    "HIDDEN_BEGIN",
    "HIDDEN_END",
    "InvalidSubmission",
    "LayoutCell",
    "MAX_SUBMISSION_BYTES",
    "Plan",
    "grading_config",
    "make_plan",
    "release_source",
    "split_hidden_tests",
]

#: Metadata key of the source notebook that holds the assignment's grading settings.
CONFIG_KEY = "cnn_course_grading"
#: nbgrader's markers of a hidden-test region (its ``ClearHiddenTests`` defaults).
HIDDEN_BEGIN = "BEGIN HIDDEN TESTS"
HIDDEN_END = "END HIDDEN TESTS"
#: A submitted notebook larger than this is not read (a notebook of a problem set with its
#: outputs is a few MB; this only stops a file meant to exhaust the grader's memory).
MAX_SUBMISSION_BYTES = 64 * 1024**2

# The nbgrader fields that decide how a cell is graded. A submission whose copy of these
# differs from the release's has had its metadata edited (checksum included).
_GRADING_FIELDS = ("grade", "solution", "locked", "task", "points", "checksum", "cell_type")

Role = Literal["author", "test", "solution", "student"]


class InvalidSubmission(ValueError):
    """The submitted notebook cannot be graded at all (the message is for the student)."""


class AssignmentError(ValueError):
    """The assignment's source or release notebook cannot be used (the message is for the instructor)."""


@dataclass
class LayoutCell:
    """One cell of the autograded notebook.

    Attributes
    ----------
    cell_type : {"code", "markdown", "raw"}
    source : str
        What the autograded notebook shows: the source's code for author cells, the
        *release* code for test cells (visible part only), the submission's for the rest.
    role : {"author", "test", "solution", "student"}
        ``author``: a locked cell of the assignment; ``test``: a graded test cell (run by the
        judge); ``solution``: an nbgrader answer cell; ``student``: a cell the student added.
    grade_id : str or None
        The nbgrader ``grade_id`` (``None`` for the student's own cells).
    metadata : dict
        Cell metadata for the autograded notebook: the release's for nbgrader cells, empty
        for the student's own cells (nothing a student wrote into metadata is kept).
    cell_id : str or None
        The submission's cell id (``None`` for restored cells).
    sandbox_index : int or None
        Index into ``Plan.sandbox_cells`` when the student run executes this cell.
    """

    cell_type: str
    source: str
    role: Role
    grade_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    cell_id: str | None = None
    sandbox_index: int | None = None


@dataclass
class Plan:
    """What grading one submitted notebook runs, where, and what the autograded notebook holds.

    Attributes
    ----------
    notebook : str
        The notebook's name (file name without ``.ipynb``), as nbgrader's gradebook knows it.
    sandbox_cells : list of SandboxCell
        Code of the student run, in the submission's order (test cells left out).
    judge_cells : list of JudgeCell
        The source notebook's locked and test code cells, in source order.
    config : GradingConfig
        The assignment's grading settings.
    problems : list of str
        One plain sentence per thing in the submission the grader had to undo or ignore.
    layout : list of LayoutCell
        The cells of the autograded notebook.
    metadata : dict
        Notebook metadata of the autograded notebook (the release's).
    """

    notebook: str
    sandbox_cells: list[SandboxCell]
    judge_cells: list[JudgeCell]
    config: GradingConfig
    problems: list[str] = field(default_factory=list)
    layout: list[LayoutCell] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------
# Source notebook: settings and hidden tests (errors here are the instructor's to fix)


def grading_config(source: nbformat.NotebookNode | dict, *, where: str = "the source notebook") -> GradingConfig:
    """Read the grading settings from a source notebook's metadata key ``"cnn_course_grading"``.

    Every setting has a default (see :class:`~cnn_course.grading.model.GradingConfig`);
    the notebook states only what it changes.

    Parameters
    ----------
    source : notebook
        The assignment's source notebook.
    where : str
        How to name the notebook in error messages (its path).

    Returns
    -------
    GradingConfig

    Raises
    ------
    AssignmentError
        For an unknown setting or a value of the wrong kind.

    Examples
    --------
    >>> grading_config({"metadata": {"cnn_course_grading": {"cell_timeout": 30, "forbidden_modules": ["scipy"]}}})
    ... # doctest: +ELLIPSIS
    GradingConfig(cell_timeout=30.0, notebook_timeout=900.0, ..., forbidden_modules=('scipy',), ...)
    >>> grading_config({"metadata": {"cnn_course_grading": {"cell_timout": 30}}})
    Traceback (most recent call last):
    ...
    cnn_course.grading.plan.AssignmentError: the source notebook: unknown grading setting 'cell_timout' \
in the metadata "cnn_course_grading"; known settings: cell_timeout, notebook_timeout, call_timeout, \
memory_bytes, max_processes, max_output_bytes_per_cell, forbidden_modules, full_environment_names, \
full_environment_forbidden_modules, data_folders
    """
    settings = (source.get("metadata") or {}).get(CONFIG_KEY, {})
    if not isinstance(settings, dict):
        raise AssignmentError(f'{where}: the metadata "{CONFIG_KEY}" should be an object of settings, '
                              f"got {type(settings).__name__}")
    known = {f.name: f for f in dataclasses.fields(GradingConfig)}
    values: dict[str, Any] = {}
    for name, value in settings.items():
        if name not in known:
            raise AssignmentError(f"{where}: unknown grading setting {name!r} in the metadata "
                                  f'"{CONFIG_KEY}"; known settings: {", ".join(known)}')
        default = known[name].default
        if isinstance(default, tuple):
            if isinstance(value, str) or not isinstance(value, list | tuple) \
                    or not all(isinstance(item, str) and item for item in value):
                raise AssignmentError(f"{where}: grading setting {name!r} should be a list of names, got {value!r}")
            values[name] = tuple(value)
        else:
            number_ok = isinstance(value, int | float) and not isinstance(value, bool) \
                and math.isfinite(value) and value > 0
            if isinstance(default, int) and not isinstance(value, int):
                number_ok = False
            if not number_ok:
                kind = "a whole number" if isinstance(default, int) else "a number"
                raise AssignmentError(f"{where}: grading setting {name!r} should be {kind} above 0, got {value!r}")
            values[name] = type(default)(value)
    config = GradingConfig(**values)
    if config.cell_timeout > config.notebook_timeout:
        raise AssignmentError(f"{where}: cell_timeout ({config.cell_timeout:g} s) is longer than "
                              f"notebook_timeout ({config.notebook_timeout:g} s)")
    return config


def split_hidden_tests(source: str, *, where: str = "a test cell") -> tuple[TestSegment, ...]:
    """Split a test cell's code into visible and hidden segments.

    Hidden code sits between lines containing ``BEGIN HIDDEN TESTS`` and ``END HIDDEN TESTS``
    (the marker lines themselves belong to neither); blank segments are left out.

    Examples
    --------
    >>> split_hidden_tests("a = 1\\n### BEGIN HIDDEN TESTS\\nassert a\\n### END HIDDEN TESTS\\nb = 2")
    (TestSegment(source='a = 1', hidden=False), TestSegment(source='assert a', hidden=True), \
TestSegment(source='b = 2', hidden=False))
    """
    segments: list[TestSegment] = []
    lines: list[str] = []
    hidden = False

    def close() -> None:
        text = "\n".join(lines)
        if text.strip():
            segments.append(TestSegment(source=text, hidden=hidden))
        lines.clear()

    for line in source.split("\n"):
        if HIDDEN_BEGIN in line:
            if hidden:
                raise AssignmentError(f"{where}: a second '{HIDDEN_BEGIN}' before '{HIDDEN_END}'")
            close()
            hidden = True
        elif HIDDEN_END in line:
            if not hidden:
                raise AssignmentError(f"{where}: '{HIDDEN_END}' without '{HIDDEN_BEGIN}'")
            close()
            hidden = False
        else:
            lines.append(line)
    if hidden:
        raise AssignmentError(f"{where}: '{HIDDEN_BEGIN}' without '{HIDDEN_END}'")
    close()
    return tuple(segments)


def release_source(source: str) -> str:
    """A test cell's code as students see it: the hidden-test regions and their markers removed.

    The same text ``nbgrader generate_assignment`` writes into the release.

    Examples
    --------
    >>> release_source("a = 1\\n### BEGIN HIDDEN TESTS\\nassert a\\n### END HIDDEN TESTS\\nb = 2")
    'a = 1\\nb = 2'
    """
    kept, hidden = [], False
    for line in source.split("\n"):
        if HIDDEN_BEGIN in line:
            hidden = True
        elif HIDDEN_END in line:
            hidden = False
        elif not hidden:
            kept.append(line)
    return "\n".join(kept)


# --------------------------------------------------------------------------------------------
# Notebooks as plain records


@dataclass
class _Cell:
    """A cell as the grader needs it: type, text, nbgrader fields, id."""

    cell_type: str
    source: str
    nbgrader: dict[str, Any] | None
    metadata: dict[str, Any]
    cell_id: str | None

    @property
    def grade_id(self) -> str | None:
        grade_id = (self.nbgrader or {}).get("grade_id")
        return grade_id if isinstance(grade_id, str) and grade_id else None

    def flag(self, name: str) -> bool:
        return bool((self.nbgrader or {}).get(name, False))


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(part, str) for part in value):
        return "".join(value)
    return None


def _cells_of_trusted(notebook: nbformat.NotebookNode | dict, where: str) -> list[_Cell]:
    """The cells of a source or release notebook (instructor files: malformed means an error)."""
    cells = []
    for number, cell in enumerate(notebook.get("cells", []), start=1):
        source = _text(cell.get("source", ""))
        if source is None:
            raise AssignmentError(f"{where}: cell {number} has no readable source")
        metadata = dict(cell.get("metadata") or {})
        nbgrader_fields = metadata.get("nbgrader")
        cells.append(_Cell(cell.get("cell_type", "code"), source,
                           dict(nbgrader_fields) if isinstance(nbgrader_fields, dict) else None,
                           metadata, cell.get("id")))
    return cells


def _read_submission(data: bytes) -> tuple[list[_Cell], dict[str, Any], list[str]]:
    """The cells and metadata of a submitted notebook, or :class:`InvalidSubmission`.

    Only the parts the grader uses are read (type, source, nbgrader metadata, id); outputs
    are ignored. Cells that are not cells are left out, with a message.
    """
    unreadable = "The notebook file could not be read: "
    advice = " Hand in the .ipynb file that JupyterLab saved."
    if len(data) > MAX_SUBMISSION_BYTES:
        raise InvalidSubmission(f"{unreadable}it is {len(data) / 1024**2:.0f} MB, more than the "
                                f"{MAX_SUBMISSION_BYTES // 1024**2} MB a notebook may have.{advice}")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidSubmission(f"{unreadable}it is not UTF-8 text.{advice}") from None
    if not text.strip():
        raise InvalidSubmission(f"{unreadable}it is empty.{advice}")
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as error:
        raise InvalidSubmission(f"{unreadable}it is not valid JSON (line {error.lineno}, "
                                f"column {error.colno}: {error.msg}).") from None
    except RecursionError:
        raise InvalidSubmission(f"{unreadable}its JSON is nested too deeply.{advice}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("cells"), list):
        raise InvalidSubmission(f"{unreadable}it is JSON, but not a notebook (no list of cells).{advice}")
    if raw.get("nbformat") != 4:
        raise InvalidSubmission(f"{unreadable}it is in notebook format {raw.get('nbformat')!r}; "
                                f"the grader reads format 4.{advice}")
    problems = []
    cells = []
    left_out = []
    for number, cell in enumerate(raw["cells"], start=1):
        source = _text(cell.get("source", "")) if isinstance(cell, dict) else None
        if source is None or cell.get("cell_type") not in ("code", "markdown", "raw"):
            left_out.append(number)
            continue
        metadata = cell.get("metadata")
        metadata = metadata if isinstance(metadata, dict) else {}
        nbgrader_fields = metadata.get("nbgrader")
        cell_id = cell.get("id")
        cells.append(_Cell(cell["cell_type"], source,
                           nbgrader_fields if isinstance(nbgrader_fields, dict) else None,
                           metadata, cell_id if isinstance(cell_id, str) else None))
    if left_out:
        was = "was" if len(left_out) == 1 else "were"
        problems.append(f"{_numbers('Cell', left_out)} of the notebook {was} not a readable notebook cell "
                        f"and {was} left out.")
    metadata = raw.get("metadata")
    return cells, metadata if isinstance(metadata, dict) else {}, problems


def _numbers(noun: str, numbers: list[int]) -> str:
    return f"{noun} {numbers[0]}" if len(numbers) == 1 else f"{noun}s {', '.join(map(str, numbers))}"


def _be(items: list) -> str:
    return "is" if len(items) == 1 else "are"


def _names(items: list[str]) -> str:
    quoted = [f"'{item}'" for item in items]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]


def _grading_fields(cell: _Cell) -> dict[str, Any]:
    fields = {}
    for name in _GRADING_FIELDS:
        value = (cell.nbgrader or {}).get(name)
        if name in ("grade", "solution", "locked", "task"):
            value = bool(value)
        elif name == "points" and value is not None:
            try:
                value = float(value)
            except (TypeError, ValueError):
                pass
        fields[name] = value
    return fields


# --------------------------------------------------------------------------------------------
# The plan


def _role(cell: _Cell) -> Role:
    if cell.flag("solution"):
        return "solution"
    if cell.flag("grade") and cell.cell_type == "code":
        return "test"
    return "author"


def make_plan(submission: bytes, source: nbformat.NotebookNode | dict, release: nbformat.NotebookNode | dict,
              *, notebook: str = "notebook", where: str = "the source notebook") -> Plan:
    """Read a submitted notebook against the assignment and plan its grading.

    Parameters
    ----------
    submission : bytes
        The submitted ``.ipynb`` file as it was handed in (it may be anything).
    source : notebook
        The assignment's source notebook (``solutions/<assignment>/<notebook>.ipynb``).
    release : notebook
        The released notebook (``assignments/<assignment>/<notebook>.ipynb``): its test cells'
        code is what the autograded notebook shows, its nbgrader metadata what a faithful
        submission carries.
    notebook : str
        The notebook's name as the gradebook knows it.
    where : str
        How to name the source notebook in the instructor's error messages.

    Returns
    -------
    Plan

    Raises
    ------
    InvalidSubmission
        When the file is not a readable notebook (message for the student).
    AssignmentError
        When the source or release notebook cannot be used (message for the instructor).
    """
    config = grading_config(source, where=where)
    source_cells = _cells_of_trusted(source, where)
    release_cells = _cells_of_trusted(release, f"the release of {notebook}")
    judge_cells, author_cells = _judge_cells(source_cells, where)
    release_by_id = {cell.grade_id: cell for cell in release_cells if cell.grade_id}
    missing = [grade_id for grade_id in author_cells if grade_id not in release_by_id]
    if missing:
        raise AssignmentError(f"the release of {notebook} lacks the cells {_names(missing)} of {where}: "
                              "run `make release` and commit assignments/")
    stale = [grade_id for grade_id, cell in author_cells.items() if not _released_as(cell, release_by_id[grade_id])]
    if stale:
        raise AssignmentError(f"the cells {_names(stale)} of {where} changed since the release of {notebook}: "
                              "run `make release` and commit assignments/")

    submitted, submitted_metadata, problems = _read_submission(submission)
    layout, problems_of_cells = _merge(submitted, source_cells, author_cells, release_by_id)
    problems.extend(problems_of_cells)
    if submitted_metadata.get(CONFIG_KEY) != (release.get("metadata") or {}).get(CONFIG_KEY):
        problems.append("The notebook's grading settings (metadata \"cnn_course_grading\") were changed; "
                        "the assignment's own settings were used.")

    sandbox_cells: list[SandboxCell] = []
    for cell in layout:
        if cell.cell_type == "code" and cell.role != "test":
            cell.sandbox_index = len(sandbox_cells)
            sandbox_cells.append(SandboxCell(source=cell.source, cell_id=cell.cell_id,
                                             grade_id=cell.grade_id, author=cell.role == "author"))
    metadata = copy.deepcopy(dict(release.get("metadata") or {}))
    return Plan(notebook=notebook, sandbox_cells=sandbox_cells, judge_cells=judge_cells, config=config,
                problems=problems, layout=layout, metadata=metadata)


def _judge_cells(source_cells: list[_Cell], where: str) -> tuple[list[JudgeCell], dict[str, _Cell]]:
    """The judge's cells, and the author cells (locked or test) of the source by grade_id."""
    judge_cells = []
    author_cells: dict[str, _Cell] = {}
    seen = Counter(cell.grade_id for cell in source_cells if cell.grade_id)
    doubled = sorted(grade_id for grade_id, count in seen.items() if count > 1)
    if doubled:
        raise AssignmentError(f"{where}: the grade_ids {_names(doubled)} are used by more than one cell")
    for cell in source_cells:
        if cell.grade_id is None or cell.nbgrader is None:
            continue
        role = _role(cell)
        if role == "solution":
            continue
        if not (cell.flag("locked") or cell.flag("grade") or cell.flag("task")):
            continue
        author_cells[cell.grade_id] = cell
        if cell.cell_type != "code":
            continue
        if role == "test":
            try:
                points = float(cell.nbgrader.get("points", 0))
            except (TypeError, ValueError):
                raise AssignmentError(f"{where}: test cell {cell.grade_id!r} has points "
                                      f"{cell.nbgrader.get('points')!r}, not a number") from None
            segments = split_hidden_tests(cell.source, where=f"{where}, cell {cell.grade_id!r}")
            judge_cells.append(JudgeCell(grade_id=cell.grade_id, segments=segments, grade=True, points=points))
        else:
            if HIDDEN_BEGIN in cell.source:
                raise AssignmentError(f"{where}: cell {cell.grade_id!r} has hidden tests but is not a test cell")
            judge_cells.append(JudgeCell(grade_id=cell.grade_id, segments=(TestSegment(cell.source),)))
    return judge_cells, author_cells


def _released_as(original: _Cell, released: _Cell) -> bool:
    """Whether the release's copy of an author cell is what releasing the source gives now."""
    expected = release_source(original.source) if _role(original) == "test" else original.source
    fields = ("grade", "solution", "locked", "task", "points")
    return (released.cell_type == original.cell_type and released.source == expected
            and all(_grading_fields(released)[name] == _grading_fields(original)[name] for name in fields))


def _merge(submitted: list[_Cell], source_cells: list[_Cell], author_cells: dict[str, _Cell],
           release_by_id: dict[str, _Cell]) -> tuple[list[LayoutCell], list[str]]:
    """The autograded notebook's cells: the submission's order, author cells from the source."""
    source_roles = {cell.grade_id: _role(cell) for cell in source_cells if cell.grade_id and cell.nbgrader}
    layout: list[LayoutCell] = []
    placed: set[str] = set()
    duplicated_author: list[str] = []
    duplicated_answers: list[str] = []
    edited: list[str] = []
    answer_settings: list[str] = []
    unknown: list[str] = []
    answers_seen: set[str] = set()

    for cell in submitted:
        grade_id = cell.grade_id
        if grade_id in author_cells:
            if grade_id in placed:
                if grade_id not in duplicated_author:
                    duplicated_author.append(grade_id)
                continue
            placed.add(grade_id)
            original, released = author_cells[grade_id], release_by_id[grade_id]
            if (cell.cell_type != released.cell_type or cell.source != released.source
                    or _grading_fields(cell) != _grading_fields(released)):
                edited.append(grade_id)
            layout.append(_author_layout(original, released, cell.cell_id))
        elif grade_id is not None and source_roles.get(grade_id) == "solution":
            if grade_id in answers_seen and grade_id not in duplicated_answers:
                duplicated_answers.append(grade_id)
            answers_seen.add(grade_id)
            released = release_by_id.get(grade_id)
            if released is not None and _grading_fields(cell) | {"checksum": None, "cell_type": None} \
                    != _grading_fields(released) | {"checksum": None, "cell_type": None}:
                answer_settings.append(grade_id)
            metadata = copy.deepcopy(released.metadata) if released is not None else {}
            layout.append(LayoutCell(cell.cell_type, cell.source, "solution", grade_id, metadata, cell.cell_id))
        else:
            if grade_id is not None and grade_id not in unknown:
                unknown.append(grade_id)
            layout.append(LayoutCell(cell.cell_type, cell.source, "student", None, {}, cell.cell_id))

    deleted = [grade_id for grade_id in author_cells if grade_id not in placed]
    _put_back(layout, deleted, source_cells, author_cells, release_by_id)

    problems = []
    if duplicated_author:
        problems.append(f"The read-only {_cells(duplicated_author)} {_be(duplicated_author)} in the notebook "
                        "more than once; the grader kept one copy of the original.")
    if duplicated_answers:
        problems.append(f"The answer {_cells(duplicated_answers)} {_be(duplicated_answers)} in the notebook "
                        "more than once; every copy was run as your code, in order.")
    if deleted:
        problems.append(f"The read-only {_cells(deleted)} {'was' if len(deleted) == 1 else 'were'} deleted; "
                        "the grader put the original back.")
    if edited:
        problems.append(f"The read-only {_cells(edited)} {'was' if len(edited) == 1 else 'were'} changed "
                        "(code or settings); the grader used the original instead.")
    if answer_settings:
        problems.append(f"The settings of the answer {_cells(answer_settings)} were changed; "
                        "the assignment's settings were used.")
    if unknown:
        problems.append(f"The {_cells(unknown)} {_be(unknown)} not part of the assignment; "
                        "the grader ran {} as your own code, worth no points.".format(
                            "it" if len(unknown) == 1 else "them"))
    return layout, problems


def _cells(grade_ids: list[str]) -> str:
    return ("cell " if len(grade_ids) == 1 else "cells ") + _names(grade_ids)


def _author_layout(original: _Cell, released: _Cell, cell_id: str | None) -> LayoutCell:
    role = _role(original)
    shown = released.source if role == "test" else original.source
    return LayoutCell(original.cell_type, shown, role, original.grade_id,
                      copy.deepcopy(released.metadata), cell_id)


def _put_back(layout: list[LayoutCell], deleted: list[str], source_cells: list[_Cell],
              author_cells: dict[str, _Cell], release_by_id: dict[str, _Cell]) -> None:
    """Insert deleted author cells after the nearest earlier nbgrader cell of the source."""
    order = [cell.grade_id for cell in source_cells if cell.grade_id]
    for grade_id in deleted:
        position = 0
        for earlier in reversed(order[:order.index(grade_id)]):
            found = [i for i, cell in enumerate(layout) if cell.grade_id == earlier]
            if found:
                position = found[-1] + 1
                break
        layout.insert(position, _author_layout(author_cells[grade_id], release_by_id[grade_id], None))
