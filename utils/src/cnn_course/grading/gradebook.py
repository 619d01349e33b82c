"""The course's folders and the one process that writes the gradebook.

Grading a class writes three things, always from one process (the coordinator), in this order
for each student:

1. the autograded notebook, ``nbgrader/autograded/<student>/<assignment>/<notebook>.ipynb``
   (written whole or not at all);
2. the gradebook (nbgrader's ``gradebook.db``), in **one transaction per student**: the
   submission and its time stamp, every grade cell's ``auto_score`` and ``needs_manual_grade``,
   every answer cell's automatic comment, exactly the rows nbgrader's own ``autograde``
   fills in. Before the first write of a run, the whole database is copied with SQLite's
   backup API to ``nbgrader/grading/<assignment>/gradebook-before-<time>.db``;
3. one line in the journal ``nbgrader/grading/<assignment>/journal.jsonl``, after the commit.

A run killed at any point loses nothing that was committed; ``--resume`` reads the journal
and skips every student whose submission (and the assignment) has the same hash as when it
was graded. A student killed between commit and journal line is simply graded again.

:func:`write_csv` writes the per-student table (status, score, max, seconds, problems).
"""

from __future__ import annotations

import csv
import datetime
import glob
import hashlib
import json
import os
import re
import sqlite3
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nbgrader.api import (
    Comment,
    Grade,
    Gradebook,
    MissingEntry,
    Student,
    SubmittedAssignment,
    SubmittedNotebook,
)
from nbgrader.coursedir import CourseDirectory
from nbgrader.plugins.export import ExportPlugin
from nbgrader.utils import parse_utc
from sqlalchemy.exc import OperationalError
from traitlets.config.loader import PyFileConfigLoader

from .results import SubmissionOutcome, write_notebook, write_text_atomically

__all__ = [
    "CONFIG_FILE",
    "CanvasCsvExportPlugin",
    "Course",
    "CourseError",
    "GradebookWriter",
    "JournalEntry",
    "read_journal",
    "write_csv",
]

CONFIG_FILE = "nbgrader_config.py"
CSV_COLUMNS = ("student", "status", "score", "max_score", "seconds", "problems")


class CourseError(RuntimeError):
    """The course folder or gradebook is not ready for grading (the message says what to do)."""


@dataclass
class Course:
    """An nbgrader course folder, read through its ``nbgrader_config.py``.

    Attributes
    ----------
    root : Path
        The course root (the folder holding ``nbgrader_config.py``).
    coursedir : nbgrader.coursedir.CourseDirectory
        nbgrader's own view of the folders, with the course's settings.
    """

    root: Path
    coursedir: CourseDirectory

    @classmethod
    def load(cls, root: str | os.PathLike = ".") -> Course:
        """Read the course at ``root`` (default: the current folder).

        Raises
        ------
        CourseError
            When ``root`` holds no ``nbgrader_config.py``.
        """
        root = Path(root).resolve()
        if not (root / CONFIG_FILE).is_file():
            raise CourseError(f"{root} has no {CONFIG_FILE}: run the grader from the course root, "
                              "the folder that holds nbgrader_config.py")
        config = PyFileConfigLoader(CONFIG_FILE, path=str(root)).load_config()
        coursedir = CourseDirectory(config=config)
        if not coursedir.root:
            coursedir.root = str(root)
        return cls(root=Path(coursedir.root), coursedir=coursedir)

    # Folders -----------------------------------------------------------------------------

    def _folder(self, step: str, student: str, assignment: str) -> Path:
        return Path(self.coursedir.format_path(step, student, assignment))

    def source_folder(self, assignment: str) -> Path:
        return self._folder(self.coursedir.source_directory, ".", assignment)

    def release_folder(self, assignment: str) -> Path:
        return self._folder(self.coursedir.release_directory, ".", assignment)

    def submitted_folder(self, student: str, assignment: str) -> Path:
        return self._folder(self.coursedir.submitted_directory, student, assignment)

    def autograded_folder(self, student: str, assignment: str) -> Path:
        return self._folder(self.coursedir.autograded_directory, student, assignment)

    def grading_folder(self, assignment: str) -> Path:
        """``nbgrader/grading/<assignment>/``: journal, backups and the CSV of this grader."""
        return Path(self.coursedir.root) / Path(self.coursedir.autograded_directory).parent / "grading" / assignment

    def students(self, assignment: str) -> list[str]:
        """Ids of the students with a submitted folder for ``assignment``, sorted."""
        step = self.coursedir.submitted_directory
        pattern = self.coursedir.format_path(step, "*", glob.escape(assignment))
        regexp = re.compile(self.coursedir.format_path(step, "(?P<student>[^/]+)", re.escape(assignment), escape=True))
        students = set()
        for folder in glob.glob(pattern):
            match = regexp.fullmatch(folder)
            if match and os.path.isdir(folder) and not match["student"].startswith("."):
                students.add(match["student"])
        return sorted(students)

    @property
    def db_url(self) -> str:
        return self.coursedir.db_url

    def sqlite_path(self) -> Path | None:
        """The gradebook's file when it is SQLite (nbgrader's default), else ``None``."""
        prefix = "sqlite:///"
        return Path(self.db_url[len(prefix):]) if self.db_url.startswith(prefix) else None


def assignment_sha256(notebooks: Mapping[str, tuple[bytes, bytes]]) -> str:
    """Hash of an assignment's (source, release) notebook files, by notebook name."""
    digest = hashlib.sha256()
    for name in sorted(notebooks):
        source, release = notebooks[name]
        for part in (name.encode(), source, release):
            digest.update(len(part).to_bytes(8, "big") + part)
    return digest.hexdigest()


def submission_sha256(notebooks: Mapping[str, bytes | None], timestamp: str | None) -> str:
    """Hash of what a student handed in: every notebook (or its absence) and the time stamp."""
    digest = hashlib.sha256()
    for name in sorted(notebooks):
        data = notebooks[name]
        for part in (name.encode(), b"missing" if data is None else b"file:" + data):
            digest.update(len(part).to_bytes(8, "big") + part)
    stamp = (timestamp or "").encode()
    digest.update(len(stamp).to_bytes(8, "big") + stamp)
    return digest.hexdigest()


# --------------------------------------------------------------------------------------------
# Journal


@dataclass
class JournalEntry:
    """One line of ``journal.jsonl``: a student whose grades were committed."""

    student: str
    submission_sha256: str
    assignment_sha256: str
    status: str
    score: float
    max_score: float
    seconds: float
    problems: list[str]
    graded_at: str

    @classmethod
    def of(cls, outcome: SubmissionOutcome) -> JournalEntry:
        return cls(outcome.student, outcome.submission_sha256, outcome.assignment_sha256, outcome.status,
                   outcome.score, outcome.max_score, round(outcome.seconds, 2), outcome.problems,
                   datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"))


def read_journal(path: Path) -> dict[str, JournalEntry]:
    """The latest journal entry of every student (a line cut short by a killed run is skipped)."""
    entries: dict[str, JournalEntry] = {}
    if not Path(path).exists():
        return entries
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            entry = JournalEntry(**json.loads(line))
        except (ValueError, TypeError):
            continue
        entries[entry.student] = entry
    return entries


# --------------------------------------------------------------------------------------------
# The writer


class GradebookWriter:
    """The only writer of an assignment's grades during a grading run (see the module docstring).

    Parameters
    ----------
    course : Course
    assignment : str
        Must already be in the gradebook (``make release`` records it).
    max_scores : mapping, optional
        ``{notebook: {grade_id: points}}`` of the source notebooks; when given, the gradebook
        must agree with it (a source changed after its release is refused).

    Raises
    ------
    CourseError
        When the gradebook or the assignment in it is missing, or disagrees with the source.
    """

    def __init__(self, course: Course, assignment: str, *,
                 max_scores: Mapping[str, Mapping[str, float]] | None = None):
        self.course = course
        self.assignment = assignment
        self.folder = course.grading_folder(assignment)
        self.journal_path = self.folder / "journal.jsonl"
        self.backup_path: Path | None = None
        sqlite_file = course.sqlite_path()
        if sqlite_file is not None and not sqlite_file.exists():
            raise CourseError(f"there is no gradebook yet ({sqlite_file}): run `make release` "
                              "(nbgrader generate_assignment) first")
        self._gradebook = Gradebook(course.db_url, course.coursedir.course_id)
        try:
            self._notebooks = self._check_assignment(max_scores)
        except Exception:
            self._gradebook.close()
            raise

    def __enter__(self) -> GradebookWriter:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def close(self) -> None:
        self._gradebook.close()

    @property
    def notebooks(self) -> list[str]:
        """The assignment's notebook names, as the gradebook knows them."""
        return list(self._notebooks)

    def _check_assignment(self, max_scores: Mapping[str, Mapping[str, float]] | None) -> list[str]:
        try:
            assignment = self._gradebook.find_assignment(self.assignment)
        except MissingEntry:
            raise CourseError(f"the assignment {self.assignment!r} is not in the gradebook: run `make release` "
                              f"(nbgrader generate_assignment {self.assignment}) first") from None
        known = {notebook.name: {cell.name: float(cell.max_score) for cell in notebook.grade_cells}
                 for notebook in assignment.notebooks}
        if not known:
            raise CourseError(f"the assignment {self.assignment!r} has no notebooks in the gradebook: "
                              "run `make release` first")
        if max_scores is not None:
            for notebook, cells in max_scores.items():
                if notebook not in known:
                    raise CourseError(f"{self.assignment}/{notebook}.ipynb is not in the gradebook: "
                                      "run `make release` after changing the source")
                expected = {name: float(points) for name, points in cells.items()}
                if expected != known[notebook]:
                    raise CourseError(f"the grade cells of {self.assignment}/{notebook}.ipynb differ between the "
                                      "source and the gradebook: run `make release` after changing the source")
        return sorted(known)

    def graded(self) -> dict[str, JournalEntry]:
        """Students already graded, from the journal (latest entry each)."""
        return read_journal(self.journal_path)

    def backup(self) -> Path | None:
        """Copy the gradebook with SQLite's backup API (once per run); ``None`` if it is not SQLite."""
        if self.backup_path is not None:
            return self.backup_path
        sqlite_file = self.course.sqlite_path()
        if sqlite_file is None:
            return None
        self.folder.mkdir(parents=True, exist_ok=True)
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
        target = self.folder / f"gradebook-before-{stamp}.db"
        source = sqlite3.connect(sqlite_file)
        try:
            copy = sqlite3.connect(target)
            try:
                source.backup(copy)
            finally:
                copy.close()
        finally:
            source.close()
        self.backup_path = target
        return target

    def record(self, outcome: SubmissionOutcome) -> None:
        """Write one student's outcome: autograded notebooks, gradebook (one transaction), journal.

        An outcome with status ``error`` writes nothing (the next run grades the student again).
        """
        if outcome.status == "error":
            return
        unknown = [nb.notebook for nb in outcome.notebooks if nb.notebook not in self._notebooks]
        if unknown:
            raise CourseError(f"notebooks {unknown} are not part of {self.assignment!r} in the gradebook")
        self.backup()
        autograded = self.course.autograded_folder(outcome.student, self.assignment)
        for notebook in outcome.notebooks:
            target = autograded / f"{notebook.notebook}.ipynb"
            if notebook.autograded is not None:
                write_notebook(notebook.autograded, target)
            elif target.exists():
                target.unlink()
        if outcome.timestamp:
            write_text_atomically(autograded / "timestamp.txt", outcome.timestamp)
        self._commit_with_retries(outcome)
        self._append_journal(JournalEntry.of(outcome))

    def _commit_with_retries(self, outcome: SubmissionOutcome, attempts: int = 5) -> None:
        # A Formgrader open at the same time may hold SQLite's lock for a moment.
        for attempt in range(attempts):
            try:
                self._write_student(outcome)
                return
            except OperationalError:
                if attempt == attempts - 1:
                    raise
                time.sleep(0.5 * (attempt + 1))

    def _write_student(self, outcome: SubmissionOutcome) -> None:
        """One transaction: the rows nbgrader's autograde fills in, committed together or not at all."""
        gradebook, session = self._gradebook, self._gradebook.db
        try:
            try:
                student = gradebook.find_student(outcome.student)
            except MissingEntry:
                student = Student(id=outcome.student)
                session.add(student)
            try:
                submission = gradebook.find_submission(self.assignment, outcome.student)
            except MissingEntry:
                with session.no_autoflush:  # the rows are built first, then flushed together
                    submission = _new_submission(gradebook.find_assignment(self.assignment), student)
                session.add(submission)
            if outcome.timestamp:
                submission.timestamp = parse_utc(outcome.timestamp)
            for notebook in outcome.notebooks:
                for cell in notebook.grades:
                    grade = gradebook.find_grade(cell.grade_id, notebook.notebook, self.assignment, outcome.student)
                    grade.auto_score = cell.auto_score
                    # As nbgrader: a grader's manual score stays, and the cell is flagged for review.
                    grade.needs_manual_grade = bool(cell.needs_manual_grade or grade.manual_score is not None
                                                    or cell.auto_score is None)
                for grade_id, text in notebook.comments.items():
                    comment = gradebook.find_comment(grade_id, notebook.notebook, self.assignment, outcome.student)
                    comment.auto_comment = text
            session.commit()
        except BaseException:
            session.rollback()
            raise

    def _append_journal(self, entry: JournalEntry) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        line = json.dumps(entry.__dict__, ensure_ascii=False) + "\n"
        with open(self.journal_path, "a", encoding="utf-8") as journal:
            journal.write(line)
            journal.flush()
            os.fsync(journal.fileno())


def _new_submission(assignment: Any, student: Student) -> SubmittedAssignment:
    """A submission with a row for every notebook, grade and comment (nbgrader's ``add_submission``)."""
    submission = SubmittedAssignment(assignment=assignment, student=student)
    for notebook in assignment.notebooks:
        submitted = SubmittedNotebook(notebook=notebook, assignment=submission)
        for cell in notebook.grade_cells:
            Grade(cell_id=cell.id, notebook=submitted)
        for cell in notebook.solution_cells:
            Comment(cell_id=cell.id, notebook=submitted)
        for cell in notebook.task_cells:
            Comment(cell_id=cell.id, notebook=submitted)
            Grade(cell_id=cell.id, notebook=submitted)
    return submission


# --------------------------------------------------------------------------------------------
# CSV


def write_csv(path: Path, entries: Iterable[JournalEntry | SubmissionOutcome]) -> Path:
    """Write the per-student table: student, status, score, max_score, seconds, problems.

    Problems are joined with `` | `` in one column. The file is replaced atomically.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    with open(partial, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        for entry in sorted(entries, key=lambda item: item.student):
            writer.writerow([entry.student, entry.status, f"{entry.score:g}", f"{entry.max_score:g}",
                             f"{entry.seconds:.1f}", " | ".join(entry.problems)])
    os.replace(partial, path)
    return path


# --------------------------------------------------------------------------------------------
# Canvas


class CanvasCsvExportPlugin(ExportPlugin):
    """``nbgrader export`` to a CSV that Canvas' gradebook imports (*Grades > Import*).

    One row per student, the columns Canvas reads (``Student``, ``ID``, ``SIS User ID``,
    ``SIS Login ID``, ``Section``) and one column of points per assignment (a column whose
    name is not an assignment in Canvas yet becomes a new one). Canvas matches a row by its
    Canvas ``ID`` (nbgrader's ``lms_user_id``, when the roster has it), else by ``SIS User ID``
    (the nbgrader student id). A missing submission scores 0, as in nbgrader's own CSV. Use::

        nbgrader export --exporter=cnn_course.grading.gradebook.CanvasCsvExportPlugin --to nbgrader/canvas.csv

    ``--assignment`` and ``--student`` select as for nbgrader's CSV.
    """

    def export(self, gradebook: Gradebook) -> None:
        destination = self.to or "canvas.csv"
        wanted_assignments = {str(name) for name in self.assignment}
        wanted_students = {str(name) for name in self.student}
        assignments = [a for a in gradebook.assignments if not wanted_assignments or a.name in wanted_assignments]
        students = [s for s in gradebook.students if not wanted_students or s.id in wanted_students]
        self.log.info("Exporting grades of %d students for Canvas to %s", len(students), destination)
        with open(destination, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
                            + [assignment.name for assignment in assignments])
            named = [(", ".join(part for part in (s.last_name, s.first_name) if part) or s.id, s) for s in students]
            for name, student in sorted(named, key=lambda pair: (pair[0].lower(), pair[1].id)):
                row = [name, student.lms_user_id or "", student.id, "", ""]
                for assignment in assignments:
                    try:
                        submission = gradebook.find_submission(assignment.name, student.id)
                    except MissingEntry:
                        row.append("0")
                        continue
                    penalty = submission.late_submission_penalty or 0.0
                    row.append(f"{max(0.0, submission.score - penalty):g}")
                writer.writerow(row)
