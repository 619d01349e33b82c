"""Grade many submissions at once: local worker threads, or the workers of a Dask cluster.

The unit of work is :func:`grade_submission`: plain data in (a :class:`Payload` holding the
student's notebook files as bytes, and the :class:`AssignmentData` holding the source and
release notebooks), plain data out (a :class:`~cnn_course.grading.results.SubmissionOutcome`
holding scores and the autograded notebook as JSON). Nothing assumes a shared filesystem, so
the same function runs in a thread of this process or on a Dask worker on another machine.
Each submission's code runs in its own sandboxes on whichever machine grades it.

:func:`run_local` and :func:`run_dask` hand every finished outcome, as it finishes, to one
callback in the calling thread: the single gradebook writer. A submission whose grading
fails (even a worker that dies) becomes that student's ``error`` outcome; the batch goes on.
A tqdm bar shows progress.
"""

from __future__ import annotations

import concurrent.futures
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat

from .plan import InvalidSubmission, make_plan
from .results import NotebookOutcome, SubmissionOutcome, graded_outcome, ungraded_outcome

__all__ = [
    "AssignmentData",
    "Payload",
    "default_workers",
    "error_outcome",
    "grade_submission",
    "run_dask",
    "run_local",
]

#: Submissions handed to the workers ahead of time, per worker: enough to keep every worker
#: busy, few enough that a class of large notebooks does not all sit in memory at once.
AHEAD_PER_WORKER = 2


@dataclass(frozen=True)
class AssignmentData:
    """The assignment as the workers need it: per notebook, the source and release files (JSON text).

    Attributes
    ----------
    name : str
        The assignment's name, e.g. ``"ps1_convolution"``.
    notebooks : mapping
        ``{notebook name: (source notebook JSON, release notebook JSON)}``.
    sha256 : str
        Hash of all of it (a changed test means a regrade on ``--resume``).
    """

    name: str
    notebooks: Mapping[str, tuple[str, str]]
    sha256: str


@dataclass(frozen=True)
class Payload:
    """One student's submission, as data.

    Attributes
    ----------
    student : str
    notebooks : mapping
        ``{notebook name: file bytes, or None when not handed in}``.
    timestamp : str or None
        The text of the submission's ``timestamp.txt``.
    submission_sha256 : str
    unsafe_no_sandbox : bool
        Run the student's code without a sandbox (the instructor accepted the risk).
    """

    student: str
    notebooks: Mapping[str, bytes | None]
    timestamp: str | None
    submission_sha256: str
    unsafe_no_sandbox: bool = False


GradeNotebook = Callable[..., Any]


def default_workers() -> int:
    """Local workers when ``--workers`` is not given: the number of cores."""
    return os.cpu_count() or 1


def grade_submission(payload: Payload, assignment: AssignmentData, *,
                     grade_notebook: GradeNotebook | None = None) -> SubmissionOutcome:
    """Grade one student's submission (every notebook of the assignment); never raises.

    Parameters
    ----------
    payload : Payload
    assignment : AssignmentData
    grade_notebook : callable, optional
        ``grade_notebook(plan, unsafe_no_sandbox=...) -> NotebookResult``; the default runs
        :func:`cnn_course.grading.pipeline.grade_notebook` in this machine's sandboxes.

    Returns
    -------
    SubmissionOutcome
        Status ``error`` (and nothing else) when grading itself failed.
    """
    started = time.monotonic()
    try:
        run = grade_notebook or _grade_in_sandboxes
        notebooks: list[NotebookOutcome] = []
        for name, (source_text, release_text) in assignment.notebooks.items():
            source, release = nbformat.reads(source_text, 4), nbformat.reads(release_text, 4)
            data = payload.notebooks.get(name)
            if data is None:
                notebooks.append(ungraded_outcome(name, release, "missing", f"{name}.ipynb was not handed in."))
                continue
            try:
                plan = make_plan(data, source, release, notebook=name,
                                 where=f"the source of {assignment.name}/{name}.ipynb")
            except InvalidSubmission as invalid:
                notebooks.append(ungraded_outcome(name, release, "invalid", str(invalid)))
                continue
            result = run(plan, unsafe_no_sandbox=payload.unsafe_no_sandbox)
            notebooks.append(graded_outcome(plan, result))
        statuses = {notebook.status for notebook in notebooks}
        if "invalid" in statuses:
            status = "invalid"
        elif statuses == {"missing"}:
            status = "missing"
        elif statuses - {"graded"}:
            status = "flagged"
        else:
            status = "graded"
        return SubmissionOutcome(payload.student, payload.submission_sha256, assignment.sha256, status, notebooks,
                                 payload.timestamp, time.monotonic() - started)
    except Exception as error:  # one submission never stops the batch
        return error_outcome(payload, assignment, f"the grader failed: {type(error).__name__}: {error}",
                             time.monotonic() - started)


def error_outcome(payload: Payload, assignment: AssignmentData, message: str, seconds: float = 0.0) -> SubmissionOutcome:
    """The outcome of a submission whose grading failed: nothing is written, a rerun tries again."""
    return SubmissionOutcome(payload.student, payload.submission_sha256, assignment.sha256, "error",
                             timestamp=payload.timestamp, seconds=seconds, error=" ".join(message.split()))


def _grade_in_sandboxes(plan, *, unsafe_no_sandbox: bool):
    """Run steps 2-4 (student run, restricted run, judge) of one notebook in this machine's sandboxes."""
    from .pipeline import grade_notebook, local_course_paths, sandbox_factory

    return grade_notebook(plan, sandbox_factory=sandbox_factory(unsafe_no_sandbox=unsafe_no_sandbox),
                          course_paths=local_course_paths(plan.config))


# --------------------------------------------------------------------------------------------
# Running many


def _progress(total: int, description: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=description, unit="submission", disable=not enabled, dynamic_ncols=True)


def _show(bar, outcome: SubmissionOutcome) -> None:
    if outcome.status == "error":
        bar.set_postfix_str(f"{outcome.student}: error", refresh=False)
    else:
        bar.set_postfix_str(f"{outcome.student}: {outcome.score:g}/{outcome.max_score:g}", refresh=False)
    bar.update(1)


def run_local(payloads: Iterable[Payload], assignment: AssignmentData, on_outcome: Callable[[SubmissionOutcome], None],
              *, workers: int | None = None, total: int | None = None, progress: bool = True,
              grade_notebook: GradeNotebook | None = None) -> None:
    """Grade submissions on ``workers`` threads of this process (each submission in its own sandboxes).

    ``on_outcome`` is called in the calling thread, once per submission, as each finishes.
    Payloads are read from ``payloads`` only as workers become free.
    """
    workers = workers or default_workers()
    if workers < 1:
        raise ValueError(f"workers should be 1 or more, got {workers}")
    pending_payloads = iter(payloads)
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="grading")
    with _progress(total or 0, assignment.name, progress) as bar:
        running: dict[concurrent.futures.Future, Payload] = {}

        def top_up() -> None:
            while len(running) < workers * AHEAD_PER_WORKER:
                payload = next(pending_payloads, None)
                if payload is None:
                    return
                future = pool.submit(grade_submission, payload, assignment, grade_notebook=grade_notebook)
                running[future] = payload

        try:
            top_up()
            while running:
                done, _ = concurrent.futures.wait(running, return_when=concurrent.futures.FIRST_COMPLETED)
                for future in [future for future in running if future in done]:   # in the order handed out
                    payload = running.pop(future)
                    outcome = _outcome_of(future, payload, assignment)
                    on_outcome(outcome)
                    _show(bar, outcome)
                top_up()
        except BaseException:
            # Interrupted: nothing new starts; submissions being graded finish on their own.
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    pool.shutdown(wait=True)


def _outcome_of(future, payload: Payload, assignment: AssignmentData) -> SubmissionOutcome:
    try:
        return future.result()
    except Exception as error:  # a dead Dask worker, a cancelled task
        return error_outcome(payload, assignment, f"the grading worker failed: {type(error).__name__}: {error}")


def run_dask(payloads: Iterable[Payload], assignment: AssignmentData, on_outcome: Callable[[SubmissionOutcome], None],
             *, address: str = "local", workers: int | None = None, total: int | None = None, progress: bool = True,
             grade_notebook: GradeNotebook | None = None, client: Any = None) -> None:
    """Grade submissions on a Dask cluster; ``on_outcome`` runs here, once per submission, as each finishes.

    Parameters
    ----------
    address : str
        ``"local"`` starts a ``LocalCluster`` of ``workers`` worker processes (one thread each) on
        this machine; ``"tcp://host:port"`` connects to a running scheduler (its workers decide
        the parallelism; e.g. a dask-jobqueue cluster on an HPC system).
    client : distributed.Client, optional
        Use this client instead (tests).

    Every worker must have this package (with its ``grading`` extra) and a sandbox installed;
    nothing else is shared: submissions go to the workers as data and outcomes come back as data.
    """
    from distributed import Client, LocalCluster, as_completed

    own_client = client is None
    cluster = None
    if own_client:
        if address == "local":
            cluster = LocalCluster(n_workers=workers or default_workers(), threads_per_worker=1, processes=True,
                                   dashboard_address=None)
            client = Client(cluster)
        else:
            client = Client(address)
    try:
        slots = max(sum(client.nthreads().values()), 1)
        shared = client.scatter(assignment, broadcast=True)
        pending_payloads = iter(payloads)
        running: dict[Any, Payload] = {}
        finished = as_completed()

        def top_up() -> None:
            while len(running) < slots * AHEAD_PER_WORKER:
                payload = next(pending_payloads, None)
                if payload is None:
                    return
                future = client.submit(grade_submission, payload, shared, grade_notebook=grade_notebook,
                                       key=f"grade-{assignment.name}-{payload.student}-{payload.submission_sha256[:12]}",
                                       pure=False, retries=0)
                running[future] = payload
                finished.add(future)

        with _progress(total or 0, assignment.name, progress) as bar:
            try:
                top_up()
                for future in finished:
                    payload = running.pop(future)
                    outcome = _outcome_of(future, payload, assignment)
                    future.release()
                    on_outcome(outcome)
                    _show(bar, outcome)
                    top_up()
            except BaseException:
                client.cancel(list(running))
                raise
    finally:
        if own_client:
            client.close()
            if cluster is not None:
                cluster.close()


def read_payload(course_folder: Path, student: str, notebook_names: Iterable[str], *,
                 unsafe_no_sandbox: bool = False) -> Payload:
    """A student's submission read from their submitted folder (by the coordinator)."""
    from .gradebook import submission_sha256

    folder = Path(course_folder)
    notebooks: dict[str, bytes | None] = {}
    for name in notebook_names:
        path = folder / f"{name}.ipynb"
        notebooks[name] = path.read_bytes() if path.is_file() else None
    stamp_path = folder / "timestamp.txt"
    timestamp = stamp_path.read_text(encoding="utf-8", errors="replace").strip() if stamp_path.is_file() else None
    return Payload(student, notebooks, timestamp or None, submission_sha256(notebooks, timestamp or None),
                   unsafe_no_sandbox)


def iter_payloads(folders: Mapping[str, Path], notebook_names: list[str], *,
                  unsafe_no_sandbox: bool = False) -> Iterator[Payload]:
    """Payloads of the given ``{student: submitted folder}``, read one at a time."""
    for student, folder in folders.items():
        yield read_payload(folder, student, notebook_names, unsafe_no_sandbox=unsafe_no_sandbox)
