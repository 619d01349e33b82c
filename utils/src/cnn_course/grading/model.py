"""Plain data shared by the grader's parts: cells to run, grading settings, results.

Everything here is a plain dataclass of strings, numbers, tuples and lists, so that it travels
as data (to a thread, to a Dask worker, into JSON) and nothing in it runs code. ``plan.py``
builds :class:`SandboxCell`, :class:`JudgeCell` and :class:`GradingConfig`; ``pipeline.py``
consumes them and returns a :class:`NotebookResult`.

Cell outputs are nbformat output dictionaries (``{"output_type": "stream", "name": "stdout",
"text": "..."}``, ``display_data``, ``execute_result``, ``error``), ready to be put into a
notebook with ``nbformat.from_dict``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

#: How a cell of the student run ended.
#: ``"ok"``: ran without error; ``"error"``: raised an exception (its traceback is in the
#: outputs); ``"timeout"``: ran past the per-cell or per-notebook time limit and was killed;
#: ``"crashed"``: the process died while running it (``os._exit``, segfault, memory limit);
#: ``"not run"``: never run because an earlier cell timed out or crashed twice.
CellStatus = Literal["ok", "error", "timeout", "crashed", "not run"]

#: What the hidden part of a grade cell did: ``"none"`` when the cell has no hidden segment.
HiddenVerdict = Literal["passed", "failed", "none"]


@dataclass
class GradingConfig:
    """Grading settings of one assignment.

    Read from the source notebook's metadata key ``"cnn_course_grading"``; every field has a
    default, so an assignment only states what it changes.

    Attributes
    ----------
    cell_timeout : float
        Seconds one cell of the student run may take before its sandbox is killed.
    notebook_timeout : float
        Seconds the whole student run (all cells) may take.
    call_timeout : float
        Seconds one call of a student function from the hidden tests may take.
    memory_bytes : int
        Memory limit of each sandbox (everything inside it together).
    max_processes : int
        Process limit of each sandbox.
    max_output_bytes_per_cell : int
        Output kept per cell; the rest is cut off with a visible "[output truncated]".
    forbidden_modules : tuple of str
        Packages that must not do the work of an answer ("no library answers"): the student
        functions called by the hidden tests run where these packages are inert stubs.
    full_environment_names : tuple of str
        Student names served from the unrestricted run (for answers that may use the
        forbidden packages, e.g. a Keras model).
    full_environment_forbidden_modules : tuple of str
        Packages that are inert stubs even for ``full_environment_names`` (e.g. ``cnn_course``,
        whose reference builders a Keras answer must not call): those functions are then
        served from a run of their own where only these packages are stubs.
    data_folders : tuple of str
        Extra read-only folders the sandboxes see, e.g. ``"~/.keras/datasets"``.
    """

    cell_timeout: float = 120.0
    notebook_timeout: float = 900.0
    call_timeout: float = 60.0
    memory_bytes: int = 8 * 1024**3
    max_processes: int = 256
    max_output_bytes_per_cell: int = 100_000
    forbidden_modules: tuple[str, ...] = ()
    full_environment_names: tuple[str, ...] = ()
    full_environment_forbidden_modules: tuple[str, ...] = ()
    data_folders: tuple[str, ...] = ()


@dataclass
class CoursePaths:
    """Where things are on the machine that grades (a worker), for the sandboxes.

    Attributes
    ----------
    python : str
        The Python interpreter started inside the sandboxes (the course environment's).
    data_folders : tuple of str
        Host folders the sandboxes see read-only (e.g. ``~/.keras/datasets``, expanded).
    scratch_root : str or None
        Where the private scratch folders are made (the system's temporary folder if None).
    """

    python: str
    data_folders: tuple[str, ...] = ()
    scratch_root: str | None = None


@dataclass
class SandboxCell:
    """One code cell of the student run, in submission order.

    Attributes
    ----------
    source : str
        The code to run: the source notebook's for author cells, the submission's for
        student cells.
    cell_id : str or None
        The nbformat cell id in the submission (``None`` for an author cell the student
        deleted and the plan restored), so results can be put back into the notebook.
    grade_id : str or None
        The nbgrader ``grade_id``, ``None`` for cells without nbgrader metadata.
    author : bool
        True for a locked author cell (its source comes from the source notebook).
    """

    source: str
    cell_id: str | None = None
    grade_id: str | None = None
    author: bool = False


@dataclass
class TestSegment:
    """A stretch of a test cell: visible code, or the code between the hidden-test markers."""

    source: str
    hidden: bool = False


@dataclass
class JudgeCell:
    """An author code cell run by the judge, in source-notebook order.

    A locked (setup) cell is one visible segment with ``points == 0`` and ``grade == False``;
    a test cell has ``grade == True``, its points, and its visible and hidden segments in order.

    Attributes
    ----------
    grade_id : str
        The nbgrader ``grade_id``.
    segments : tuple of TestSegment
        The cell's code, split at ``### BEGIN HIDDEN TESTS`` / ``### END HIDDEN TESTS``.
    grade : bool
        True for a test cell that scores points.
    points : float
        The cell's maximum score (0 for locked cells).
    """

    grade_id: str
    segments: tuple[TestSegment, ...]
    grade: bool = False
    points: float = 0.0


@dataclass
class CellResult:
    """How one :class:`SandboxCell` ran in the student run.

    ``index`` is its position in ``plan.sandbox_cells``; ``outputs`` are nbformat output
    dictionaries (capped); ``seconds`` is its wall time (0 when not run).
    """

    index: int
    status: CellStatus
    outputs: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    cell_id: str | None = None
    grade_id: str | None = None


@dataclass
class GradeResult:
    """The verdict on one test (grade) cell of the judge.

    Attributes
    ----------
    grade_id : str
        The test cell's ``grade_id``.
    points, max_points : float
        Score earned (all or nothing) and the cell's maximum.
    visible_outputs : list of dict
        nbformat outputs of the cell's visible segments (errors keep only the lines of
        visible code); hidden segments never contribute anything here.
    hidden : {"passed", "failed", "none"}
        Verdict of the hidden segments, ``"none"`` when the cell has none.
    """

    grade_id: str
    points: float
    max_points: float
    visible_outputs: list[dict[str, Any]] = field(default_factory=list)
    hidden: HiddenVerdict = "none"


@dataclass
class NotebookResult:
    """Everything grading one notebook produced, as plain data (no hidden-test source).

    Attributes
    ----------
    cells : list of CellResult
        One per ``plan.sandbox_cells`` entry, same order.
    grades : list of GradeResult
        One per grade cell of ``plan.judge_cells``, same order.
    events : list of str
        Plain one-line messages about what happened (time limits, crashes, restarts).
    seconds : float
        Wall time of the whole grading of this notebook.
    """

    cells: list[CellResult] = field(default_factory=list)
    grades: list[GradeResult] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def score(self) -> float:
        """Points earned over all grade cells."""
        return sum(grade.points for grade in self.grades)

    @property
    def max_score(self) -> float:
        """Points available over all grade cells."""
        return sum(grade.max_points for grade in self.grades)
