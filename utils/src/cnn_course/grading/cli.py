"""The command line: ``python -m cnn_course.grading autograde <assignment>``, run from the course root.

::

    python -m cnn_course.grading autograde ps1_convolution                # every submission, all cores
    python -m cnn_course.grading autograde ps1_convolution --workers 2 --student alice bob
    python -m cnn_course.grading autograde ps1_convolution --dask local   # a LocalCluster on this machine
    python -m cnn_course.grading autograde ps1_convolution --dask tcp://scheduler:8786
    python -m cnn_course.grading check                                    # is there a working sandbox?

It grades every collected submission (``nbgrader/submitted/<student>/<assignment>/``), each in
its own sandboxes, writes the autograded notebooks and the grades into the course's nbgrader
gradebook (so the Formgrader, ``nbgrader export`` and ``nbgrader generate_feedback`` work as
usual), and a per-student CSV. See docs/nbgrader.md.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

import nbformat

from .backends import AssignmentData, GradeNotebook, default_workers, read_payload, run_dask, run_local
from .gradebook import Course, CourseError, GradebookWriter, JournalEntry, assignment_sha256, write_csv
from .plan import AssignmentError, make_plan
from .results import SubmissionOutcome

__all__ = ["build_parser", "load_assignment", "main"]

PROGRAM = "python -m cnn_course.grading"
UNSAFE_WARNING = ("WARNING: --unsafe-no-sandbox: student code runs with your permissions and can read, "
                  "change or delete everything you can. Grade only work you trust this way.")
SandboxCheck = Callable[[], tuple[bool, str]]


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected 1 or more, got {value}")
    return value


def _dask_address(text: str) -> str:
    if text == "local" or "://" in text:
        return text
    raise argparse.ArgumentTypeError(f"expected 'local' or a scheduler address such as tcp://host:8786, got {text!r}")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m cnn_course.grading``."""
    parser = argparse.ArgumentParser(
        prog=PROGRAM, description="Grade nbgrader assignments safely: every submission in its own sandbox, "
        "hidden tests in a separate judge, results in the course's nbgrader gradebook. Run from the course root.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    autograde = commands.add_parser(
        "autograde", help="grade every collected submission of an assignment",
        description="Grade the submissions in nbgrader/submitted/<student>/<assignment>/ and write the grades "
        "into the gradebook, the autograded notebooks into nbgrader/autograded/, and a CSV.")
    autograde.add_argument("assignment", help="the assignment's name, e.g. ps1_convolution")
    autograde.add_argument("--workers", type=_positive, metavar="N",
                           help=f"submissions graded at once (default: the number of cores, {default_workers()}); "
                           "with --dask local, the number of worker processes")
    autograde.add_argument("--dask", type=_dask_address, metavar="local|tcp://HOST:PORT",
                           help="grade on Dask workers: 'local' starts a LocalCluster on this machine, an address "
                           "connects to a running scheduler (every worker needs this package and a sandbox)")
    autograde.add_argument("--student", nargs="+", action="extend", metavar="ID",
                           help="grade only these students")
    autograde.add_argument("--resume", action=argparse.BooleanOptionalAction, default=True,
                           help="skip students graded before whose submission and assignment did not change "
                           "(default: on); --no-resume grades everybody again")
    autograde.add_argument("--csv", type=Path, metavar="PATH",
                           help="where to write the per-student table (default: "
                           "nbgrader/grading/<assignment>/grades.csv)")
    autograde.add_argument("--unsafe-no-sandbox", action="store_true",
                           help="run student code without a sandbox, with your permissions "
                           "(only for work you trust; for machines without bubblewrap, e.g. macOS)")
    autograde.add_argument("--no-progress", action="store_true", help="no progress bar")
    commands.add_parser("check", help="say whether this machine has a working sandbox")
    return parser


def load_assignment(course: Course, name: str) -> tuple[AssignmentData, dict[str, dict[str, float]]]:
    """Read an assignment's source and release notebooks and check that the grader can use them.

    Returns the data every worker needs, and ``{notebook: {grade_id: points}}`` of the release.

    Raises
    ------
    CourseError, AssignmentError
        With what to do: a missing assignment or release, a source the grader cannot use.
    """
    source_folder = course.source_folder(name)
    sources = sorted(path for path in source_folder.glob("*.ipynb")) if source_folder.is_dir() else []
    if not sources:
        parent = source_folder.parent
        known = sorted(folder.name for folder in parent.iterdir() if folder.is_dir() and any(folder.glob("*.ipynb"))) \
            if parent.is_dir() else []
        raise CourseError(f"there is no assignment {name!r}: {source_folder} holds no notebook "
                          f"(assignments: {', '.join(known) or 'none'})")
    notebooks: dict[str, tuple[str, str]] = {}
    files: dict[str, tuple[bytes, bytes]] = {}
    max_scores: dict[str, dict[str, float]] = {}
    for source_path in sources:
        notebook = source_path.stem
        release_path = course.release_folder(name) / source_path.name
        if not release_path.is_file():
            raise CourseError(f"{release_path} is missing: run `make release` (nbgrader generate_assignment {name})")
        source_bytes, release_bytes = source_path.read_bytes(), release_path.read_bytes()
        source, release = nbformat.reads(source_bytes.decode(), 4), nbformat.reads(release_bytes.decode(), 4)
        # The release, graded as a submission, must plan cleanly: this checks the source's
        # settings, hidden-test markers and cells against the release before anyone is graded.
        plan = make_plan(release_bytes, source, release, notebook=notebook, where=str(source_path))
        if plan.problems:
            raise AssignmentError(f"{release_path} does not match {source_path}: {' '.join(plan.problems)} "
                                  "Run `make release`.")
        max_scores[notebook] = {cell.metadata.nbgrader["grade_id"]: float(cell.metadata.nbgrader.get("points", 0))
                                for cell in release.cells if cell.metadata.get("nbgrader", {}).get("grade")}
        notebooks[notebook] = (source_bytes.decode(), release_bytes.decode())
        files[notebook] = (source_bytes, release_bytes)
    return AssignmentData(name, notebooks, assignment_sha256(files)), max_scores


def _local_sandbox_status() -> tuple[bool, str]:
    from .sandbox import sandbox_status

    return sandbox_status()


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None,
         grade_notebook: GradeNotebook | None = None, sandbox_check: SandboxCheck | None = None,
         dask_client=None) -> int:
    """Run the command line; returns the exit status.

    ``grade_notebook``, ``sandbox_check`` and ``dask_client`` replace the real pipeline,
    sandbox check and Dask client (tests).

    Exit status: 0 when every submission got a grade (invalid or missing notebooks included),
    1 when the grader failed on some (rerun to retry them), 2 when nothing could be graded
    (a message says why), 130 when interrupted.
    """
    out = out or sys.stdout
    args = build_parser().parse_args(argv)
    sandbox_check = sandbox_check or _local_sandbox_status
    if args.command == "check":
        available, description = sandbox_check()
        print(("sandbox available: " if available else "no working sandbox: ") + description, file=out)
        return 0 if available else 2
    try:
        return _autograde(args, out=out, grade_notebook=grade_notebook, sandbox_check=sandbox_check,
                          dask_client=dask_client)
    except (CourseError, AssignmentError) as error:
        print(f"error: {error}", file=out)
        return 2


def _check_sandboxes(args, out: TextIO, sandbox_check: SandboxCheck, dask_client) -> str | None:
    """Refuse to run without a working sandbox (unless the instructor accepts the risk); describe it."""
    if args.unsafe_no_sandbox:
        print(UNSAFE_WARNING, file=out)
        return None
    if args.dask and dask_client is not None:
        statuses = dask_client.run(sandbox_check)
    elif args.dask and args.dask != "local":
        from distributed import Client

        with Client(args.dask) as client:
            statuses = client.run(sandbox_check)
    else:
        statuses = {"this machine": sandbox_check()}
    missing = {where: reason for where, (available, reason) in statuses.items() if not available}
    if missing:
        reasons = "\n".join(f"  {place}: {reason}" for place, reason in missing.items())
        raise CourseError(
            f"no working sandbox, and student code only runs inside one:\n{reasons}\n"
            "To grade work you trust without a sandbox (e.g. your own test submissions on macOS), "
            "add --unsafe-no-sandbox: student code then runs with your permissions.")
    return next(iter(statuses.values()))[1]


def _autograde(args, *, out: TextIO, grade_notebook, sandbox_check: SandboxCheck, dask_client) -> int:
    course = Course.load(Path.cwd())
    assignment, max_scores = load_assignment(course, args.assignment)
    with GradebookWriter(course, args.assignment, max_scores=max_scores) as writer:
        sandbox = _check_sandboxes(args, out, sandbox_check, dask_client)
        students = course.students(args.assignment)
        if args.student:
            unknown = [student for student in args.student if student not in students]
            if unknown:
                raise CourseError(f"no submission of {args.assignment} for {', '.join(unknown)} "
                                  f"(looked in {course.submitted_folder('<student>', args.assignment)})")
            students = [student for student in students if student in set(args.student)]
        if not students:
            raise CourseError(f"there are no submissions of {args.assignment} in "
                              f"{course.submitted_folder('<student>', args.assignment)}: collect them first "
                              "(docs/nbgrader.md, step 3)")

        journal = writer.graded()
        to_grade, skipped = [], []
        for student in students:
            payload = read_payload(course.submitted_folder(student, args.assignment), student, max_scores,
                                   unsafe_no_sandbox=args.unsafe_no_sandbox)
            entry = journal.get(student)
            if args.resume and entry is not None and entry.submission_sha256 == payload.submission_sha256 \
                    and entry.assignment_sha256 == assignment.sha256:
                skipped.append(student)
            else:
                to_grade.append(student)
        where = (f"Dask scheduler {args.dask}" if args.dask and args.dask != "local"
                 else f"{args.workers or default_workers()} {'Dask worker processes' if args.dask else 'local workers'}")
        print(f"Grading {args.assignment}: {len(to_grade)} submission(s) on {where}"
              + (f", each in its own sandbox ({sandbox})." if sandbox else ", WITHOUT a sandbox."), file=out)
        if skipped:
            print(f"Skipping {len(skipped)} student(s) graded before with the same submission "
                  "(--no-resume grades them again).", file=out)

        outcomes: list[SubmissionOutcome] = []

        def record(outcome: SubmissionOutcome) -> None:
            writer.record(outcome)
            outcomes.append(outcome)

        payloads = (read_payload(course.submitted_folder(student, args.assignment), student, max_scores,
                                 unsafe_no_sandbox=args.unsafe_no_sandbox) for student in to_grade)
        options = dict(total=len(to_grade), progress=not args.no_progress, grade_notebook=grade_notebook)
        try:
            if args.dask:
                run_dask(payloads, assignment, record, address=args.dask, workers=args.workers,
                         client=dask_client, **options)
            else:
                run_local(payloads, assignment, record, workers=args.workers, **options)
        except KeyboardInterrupt:
            print(f"\nInterrupted: {len(outcomes)} submission(s) graded and saved. Run the same command again "
                  "to grade the rest (students already graded are skipped). Submissions being graded right now "
                  "finish first, within their time limits.", file=out)
            return 130
        finally:
            csv_path = _write_table(args, course, students, writer.graded(), outcomes)
        if writer.backup_path:
            print(f"The gradebook as it was before this run: {_relative(writer.backup_path, course.root)}", file=out)
    return _summary(outcomes, csv_path, course.root, out)


def _write_table(args, course: Course, students: list[str], journal: dict[str, JournalEntry],
                 outcomes: list[SubmissionOutcome]) -> Path:
    rows: dict[str, JournalEntry | SubmissionOutcome] = {}
    for student in course.students(args.assignment):
        if student in journal:
            rows[student] = journal[student]
    for outcome in outcomes:
        if outcome.status == "error":
            rows[outcome.student] = outcome
    path = args.csv or course.grading_folder(args.assignment) / "grades.csv"
    return write_csv(path, rows.values())


def _relative(path: Path, root: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


def _summary(outcomes: list[SubmissionOutcome], csv_path: Path, root: Path, out: TextIO) -> int:
    counts = {status: 0 for status in ("graded", "flagged", "invalid", "missing", "error")}
    for outcome in outcomes:
        counts[outcome.status] += 1
    print("Done: " + ", ".join(f"{count} {status}" for status, count in counts.items()) + ".", file=out)
    for outcome in outcomes:
        if outcome.status == "error":
            print(f"  {outcome.student}: {outcome.error}", file=out)
    if counts["flagged"] or counts["invalid"]:
        print("Flagged and invalid submissions have the grader's notes at the top of their autograded notebook; "
              "cells that lost points to a time limit or crash need a manual grade in the Formgrader.", file=out)
    if counts["error"]:
        print("Run the same command again to retry the submissions the grader failed on.", file=out)
    print(f"Per-student table: {_relative(csv_path, root)}", file=out)
    return 1 if counts["error"] else 0
