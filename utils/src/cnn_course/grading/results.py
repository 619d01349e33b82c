"""The autograded notebook of one submission, as nbgrader's Formgrader and feedback expect it.

:func:`autograded_notebook` puts a :class:`~cnn_course.grading.plan.Plan` and the
:class:`~cnn_course.grading.model.NotebookResult` of running it together into the notebook
that ``nbgrader autograde`` would have written to ``nbgrader/autograded/<student>/<assignment>/``:

- the cells in the submission's order, author cells restored from the source;
- nbgrader cell metadata as nbgrader writes it (the release's: ``grade_id``, ``points``,
  ``checksum``, ``locked``), so the Formgrader finds every cell and ``nbgrader
  generate_feedback`` works;
- the student run's outputs under each cell it ran, with a one-line note where a cell ran past
  its time limit, crashed or was not run;
- test cells with their *release* code (the visible part only) and the judge's visible outputs,
  followed by one line for the hidden part: "hidden tests: passed" or "hidden tests: failed".
  No hidden-test code and no traceback line of a hidden test ever reaches the notebook.
- a "Grader's notes" cell at the top listing the plan's problems and the run's events, when
  there are any.

Everything a sandbox produced is untrusted: outputs are rebuilt from known fields only (plain
text, PNG and JPEG images; HTML, JavaScript and SVG are dropped, since the instructor's browser
shows them) and capped in size.

Examples
--------
>>> notes_cell(["The cell 'setup' was deleted; the grader put the original back."]).source
"**Grader's notes**\\n\\n- The cell 'setup' was deleted; the grader put the original back."
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import nbformat
from nbgrader.utils import compute_checksum

from .model import CellResult, GradeResult, NotebookResult
from .plan import HIDDEN_BEGIN, HIDDEN_END, Plan

__all__ = [
    "KEPT_MIME_TYPES",
    "NOTES_METADATA",
    "CellGrade",
    "NotebookOutcome",
    "SubmissionOutcome",
    "autograded_notebook",
    "clean_outputs",
    "graded_outcome",
    "notes_cell",
    "ungraded_outcome",
    "unreadable_notebook",
    "write_notebook",
    "write_text_atomically",
]

#: Output formats kept in the autograded notebook (the rest could run script in a browser).
KEPT_MIME_TYPES = ("text/plain", "image/png", "image/jpeg")
#: Cell metadata marking the grader's own notes cell.
NOTES_METADATA = {"cnn_course_grading": "notes"}
_STATUS_NOTES = {
    "timeout": "[grader] This cell ran past its time limit and was stopped.",
    "crashed": "[grader] The Python process running this cell died (a crash, os._exit or the memory limit).",
    "not run": "[grader] Not run: an earlier cell ran past its time limit or crashed.",
}
_HIDDEN_VERDICT = {"passed": "hidden tests: passed\n", "failed": "hidden tests: failed\n"}
_CELL_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_MAX_OUTPUTS_PER_CELL = 200


def notes_cell(lines: Iterable[str]) -> nbformat.NotebookNode:
    """A markdown cell listing the grader's notes for the student and the instructor."""
    items = "\n".join(f"- {line}" for line in lines)
    return nbformat.v4.new_markdown_cell("**Grader's notes**\n\n" + items, metadata=copy.deepcopy(NOTES_METADATA))


def autograded_notebook(plan: Plan, result: NotebookResult, *,
                        max_output_bytes_per_cell: int | None = None) -> nbformat.NotebookNode:
    """Build the autograded notebook of one submission.

    Parameters
    ----------
    plan : Plan
        The submission's plan (its ``layout`` gives the cells and their order).
    result : NotebookResult
        What the student run and the judge produced for it.
    max_output_bytes_per_cell : int, optional
        Cap of each cell's outputs (default: the plan's ``config.max_output_bytes_per_cell``).

    Returns
    -------
    nbformat.NotebookNode
        A valid nbformat-4 notebook.
    """
    cap = max_output_bytes_per_cell or plan.config.max_output_bytes_per_cell
    ran = {cell.index: cell for cell in result.cells}
    graded = {grade.grade_id: grade for grade in result.grades}
    cells = []
    notes = list(plan.problems) + list(result.events)
    if notes:
        cells.append(notes_cell(notes))
    execution_count = 0
    for entry in plan.layout:
        metadata = copy.deepcopy(entry.metadata)
        source = entry.source if entry.role in ("author", "test") else _defuse_markers(entry.source)
        if entry.cell_type == "markdown":
            cells.append(nbformat.v4.new_markdown_cell(source, metadata=metadata))
        elif entry.cell_type == "raw":
            cells.append(nbformat.v4.new_raw_cell(source, metadata=metadata))
        elif entry.role == "test":
            grade = graded.get(entry.grade_id)
            outputs = _test_outputs(grade, cap)
            if grade is not None:
                execution_count += 1
            cells.append(nbformat.v4.new_code_cell(source, metadata=metadata, outputs=outputs,
                                                   execution_count=execution_count if grade is not None else None))
        else:
            cell_result = ran.get(entry.sandbox_index)
            outputs, count = _student_outputs(cell_result, cap)
            if count:
                execution_count += 1
            cells.append(nbformat.v4.new_code_cell(source, metadata=metadata, outputs=outputs,
                                                   execution_count=execution_count if count else None))
        cells[-1].id = entry.cell_id or ""
    _give_unique_ids(cells)
    notebook = nbformat.v4.new_notebook(cells=cells, metadata=copy.deepcopy(plan.metadata))
    nbformat.validate(notebook)
    return notebook


def unreadable_notebook(release: Mapping[str, Any], message: str) -> nbformat.NotebookNode:
    """The autograded notebook of a submission that could not be read: the release and why.

    The Formgrader and the feedback then show the student the assignment's cells, every test
    cell without output, and the reason at the top.
    """
    notebook = nbformat.from_dict(copy.deepcopy(dict(release)))
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    notebook.cells.insert(0, notes_cell([message]))
    _give_unique_ids(notebook.cells)
    nbformat.validate(notebook)
    return notebook


def write_notebook(notebook: nbformat.NotebookNode | str, path: Path) -> Path:
    """Write a notebook (a node or its JSON text) to ``path`` atomically.

    The file appears complete or not at all, even if the grading run is killed while writing.
    """
    return write_text_atomically(path, notebook if isinstance(notebook, str) else nbformat.writes(notebook))


def write_text_atomically(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file and a rename.

    The file appears complete or not at all, and an old read-only copy (nbgrader writes its
    autograded files with mode 444) is replaced rather than opened for writing.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)
    return path


# --------------------------------------------------------------------------------------------
# What the gradebook gets (plain data: it travels back from a worker)

#: How grading a whole submission ended: ``graded`` (every notebook ran), ``flagged`` (graded,
#: but the grader had to undo something or a limit stopped a cell: see the problems),
#: ``invalid`` (a notebook could not be read: 0 for it), ``missing`` (no notebook handed in),
#: ``error`` (the grader itself failed: nothing written, a rerun tries again).
SubmissionStatus = Literal["graded", "flagged", "invalid", "missing", "error"]


@dataclass
class CellGrade:
    """What the gradebook records for one grade cell (nbgrader's ``Grade`` row).

    ``auto_score`` is ``None`` for an answer that needs a person (a changed, manually graded
    answer cell); ``needs_manual_grade`` flags the cell in the Formgrader.
    """

    grade_id: str
    auto_score: float | None
    max_score: float
    needs_manual_grade: bool = False


@dataclass
class NotebookOutcome:
    """One graded notebook: its grades, answer-cell comments and the autograded notebook (JSON)."""

    notebook: str
    status: Literal["graded", "flagged", "invalid", "missing"]
    grades: list[CellGrade] = field(default_factory=list)
    comments: dict[str, str | None] = field(default_factory=dict)
    autograded: str | None = None
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def score(self) -> float:
        return sum(grade.auto_score or 0.0 for grade in self.grades)

    @property
    def max_score(self) -> float:
        return sum(grade.max_score for grade in self.grades)


@dataclass
class SubmissionOutcome:
    """Everything grading one student's submission produced, for the single gradebook writer.

    Attributes
    ----------
    student : str
    submission_sha256 : str
        Hash of what was handed in (notebooks and time stamp); ``--resume`` skips a student
        whose journal entry has the same hash.
    assignment_sha256 : str
        Hash of the assignment's source and release notebooks: new tests mean a regrade.
    status : {"graded", "flagged", "invalid", "missing", "error"}
    notebooks : list of NotebookOutcome
    timestamp : str or None
        The submission's ``timestamp.txt`` text, as nbgrader records it.
    seconds : float
    error : str or None
        For status ``error``: what went wrong, in one line.
    """

    student: str
    submission_sha256: str
    assignment_sha256: str
    status: SubmissionStatus
    notebooks: list[NotebookOutcome] = field(default_factory=list)
    timestamp: str | None = None
    seconds: float = 0.0
    error: str | None = None

    @property
    def score(self) -> float:
        return sum(notebook.score for notebook in self.notebooks)

    @property
    def max_score(self) -> float:
        return sum(notebook.max_score for notebook in self.notebooks)

    @property
    def problems(self) -> list[str]:
        found = [self.error] if self.error else []
        for notebook in self.notebooks:
            prefix = f"{notebook.notebook}: " if len(self.notebooks) > 1 else ""
            found.extend(prefix + problem for problem in notebook.problems)
        return found


def graded_outcome(plan: Plan, result: NotebookResult) -> NotebookOutcome:
    """The gradebook's view of a graded notebook, and its autograded notebook.

    Test cells score what the judge gave them. When a limit stopped part of the student run
    (a cell timed out, crashed or was not run), every test cell short of full marks is flagged
    for review in the Formgrader. Manually graded answer cells score 0 when unchanged from the
    release and wait for a person otherwise, as in nbgrader.
    """
    disturbed = any(cell.status in ("timeout", "crashed", "not run") for cell in result.cells)
    grades = [CellGrade(grade.grade_id, float(grade.points), float(grade.max_points),
                        needs_manual_grade=disturbed and grade.points < grade.max_points)
              for grade in result.grades]
    judged = {grade.grade_id for grade in grades}
    for cell in plan.layout:
        if cell.role == "test" and cell.grade_id not in judged:
            points = float(cell.metadata.get("nbgrader", {}).get("points", 0))
            grades.append(CellGrade(cell.grade_id, 0.0, points, needs_manual_grade=True))
            judged.add(cell.grade_id)
    comments: dict[str, str | None] = {}
    for cell in plan.layout:
        if cell.role != "solution" or cell.grade_id in comments:
            continue
        unchanged = _unchanged_answer(cell)
        comments[cell.grade_id] = "No response." if unchanged else None
        fields = cell.metadata.get("nbgrader", {})
        if fields.get("grade") and cell.grade_id not in judged:
            points = float(fields.get("points", 0))
            grades.append(CellGrade(cell.grade_id, 0.0 if unchanged else None, points,
                                    needs_manual_grade=not unchanged))
            judged.add(cell.grade_id)
    notebook = autograded_notebook(plan, result)
    # Flagged: the grader undid something in the submission, or a limit or crash stopped part of
    # the run. Other events (a locked cell failing because an answer is missing) are listed in
    # the notes and problems, but need no review.
    flagged = bool(plan.problems or disturbed)
    return NotebookOutcome(plan.notebook, "flagged" if flagged else "graded", grades, comments,
                           nbformat.writes(notebook), list(plan.problems) + list(result.events), result.seconds)


def ungraded_outcome(notebook: str, release: Mapping[str, Any], status: Literal["invalid", "missing"],
                     message: str) -> NotebookOutcome:
    """A notebook that could not be graded: 0 for every grade cell, as nbgrader gives a missing one.

    An unreadable notebook (``invalid``) still gets an autograded notebook (the release with the
    reason at the top), so the student's feedback says what went wrong; a ``missing`` one gets none.
    """
    grades = []
    for cell in release.get("cells", []):
        fields = cell.get("metadata", {}).get("nbgrader", {})
        if fields.get("grade"):
            grades.append(CellGrade(fields["grade_id"], 0.0, float(fields.get("points", 0))))
    autograded = nbformat.writes(unreadable_notebook(release, message)) if status == "invalid" else None
    return NotebookOutcome(notebook, status, grades, {}, autograded, [message])


def _unchanged_answer(cell) -> bool:
    """Whether an answer cell still holds the release's stub (nbgrader's checksum test)."""
    fields = cell.metadata.get("nbgrader", {})
    if "checksum" not in fields:
        return False
    node = nbformat.from_dict({"cell_type": cell.cell_type, "source": cell.source,
                               "metadata": {"nbgrader": dict(fields)}})
    return compute_checksum(node) == fields["checksum"]


# --------------------------------------------------------------------------------------------


def _student_outputs(cell: CellResult | None, cap: int) -> tuple[list[nbformat.NotebookNode], bool]:
    """Outputs of a cell of the student run, and whether it ran."""
    if cell is None:
        return [_stream("stderr", _STATUS_NOTES["not run"] + "\n")], False
    outputs = clean_outputs(cell.outputs, cap)
    note = _STATUS_NOTES.get(cell.status)
    if note:
        outputs.append(_stream("stderr", note + "\n"))
    return outputs, cell.status != "not run"


def _test_outputs(grade: GradeResult | None, cap: int) -> list[nbformat.NotebookNode]:
    if grade is None:
        return [_stream("stderr", "[grader] This test did not run.\n")]
    outputs = clean_outputs(grade.visible_outputs, cap)
    verdict = _HIDDEN_VERDICT.get(grade.hidden)
    if verdict:
        outputs.append(_stream("stdout" if grade.hidden == "passed" else "stderr", verdict))
    return outputs


def _stream(name: str, text: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_output("stream", name=name, text=text)


def clean_outputs(outputs: Any, cap: int) -> list[nbformat.NotebookNode]:
    """Rebuild untrusted output dictionaries from their known fields, within ``cap`` bytes.

    Parameters
    ----------
    outputs : list of dict
        nbformat outputs as a sandbox reported them.
    cap : int
        Bytes of text and images kept for the whole cell; past it one
        "[output truncated]" line replaces the rest.

    Returns
    -------
    list of nbformat.NotebookNode

    Examples
    --------
    >>> [o.text for o in clean_outputs([{"output_type": "stream", "name": "stdout", "text": "x" * 50}], 10)]
    ['xxxxxxxxxx', '\\n[output truncated]\\n']
    >>> clean_outputs([{"output_type": "display_data", "data": {"text/html": "<script>", "text/plain": "t"}}], 100)
    [{'output_type': 'display_data', 'metadata': {}, 'data': {'text/plain': 't'}}]
    """
    cleaned: list[nbformat.NotebookNode] = []
    budget = cap
    if not isinstance(outputs, list):
        return cleaned
    for output in outputs[:_MAX_OUTPUTS_PER_CELL]:
        if budget <= 0:
            break
        rebuilt, size = _clean_output(output, budget)
        if rebuilt is not None:
            cleaned.append(rebuilt)
            budget -= size
    if budget <= 0 or len(outputs) > _MAX_OUTPUTS_PER_CELL:
        cleaned.append(_stream("stderr", "\n[output truncated]\n"))
    return cleaned


def _clean_output(output: Any, budget: int) -> tuple[nbformat.NotebookNode | None, int]:
    if not isinstance(output, dict):
        return None, 0
    kind = output.get("output_type")
    if kind == "stream":
        text = _as_text(output.get("text"))[:budget]
        name = "stderr" if output.get("name") == "stderr" else "stdout"
        return _stream(name, text), max(len(text.encode()), 1)
    if kind == "error":
        ename, evalue = _as_text(output.get("ename"))[:200], _as_text(output.get("evalue"))[:budget]
        traceback, size = [], len(ename) + len(evalue)
        lines = output.get("traceback")
        for line in lines if isinstance(lines, list) else []:
            line = _as_text(line)
            if size + len(line) > budget:
                break
            traceback.append(line)
            size += len(line)
        return nbformat.v4.new_output("error", ename=ename, evalue=evalue, traceback=traceback), max(size, 1)
    if kind in ("display_data", "execute_result"):
        data = output.get("data")
        data = data if isinstance(data, dict) else {}
        kept, size = {}, 0
        for mime in KEPT_MIME_TYPES:
            value = _as_text(data.get(mime)) if mime in data else ""
            if value and size + len(value) <= budget:
                kept[mime] = value
                size += len(value)
        if not kept:
            left_out = ", ".join(sorted(str(mime) for mime in data)[:5]) or "nothing"
            kept = {"text/plain": f"[output left out: {left_out}]"[:200]}
            size = len(kept["text/plain"])
        if kind == "execute_result":
            return nbformat.v4.new_output("execute_result", data=kept, execution_count=None), size
        return nbformat.v4.new_output("display_data", data=kept), size
    return None, 0


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(part, str) for part in value):
        return "".join(value)
    return ""


def _defuse_markers(source: str) -> str:
    """Student code shown in the autograded notebook without nbgrader's hidden-test markers.

    ``nbgrader generate_feedback`` runs ``ClearHiddenTests`` (nbgrader_config.py), which stops
    with an error on a marker outside a test cell; a student who types one must not be able to
    break their own feedback.
    """
    return source.replace(HIDDEN_BEGIN, "BEGIN HIDDEN-TESTS").replace(HIDDEN_END, "END HIDDEN-TESTS")


def _give_unique_ids(cells: list[nbformat.NotebookNode]) -> None:
    """Keep valid, unique cell ids; give every other cell a fresh one."""
    used: set[str] = set()
    for cell in cells:
        cell_id = cell.get("id") or ""
        if not _CELL_ID.match(cell_id) or cell_id in used:
            cell_id = nbformat.corpus.words.generate_corpus_id()
            while cell_id in used:
                cell_id = nbformat.corpus.words.generate_corpus_id()
        cell.id = cell_id
        used.add(cell_id)
