"""The grader on a Dask cluster of separate processes, and the grader run by an unprivileged user.

1. A scheduler and two workers are started as their own processes with the command-line
   programs a cluster uses (``dask scheduler``, ``dask worker --nthreads 1``, from this
   environment), on 127.0.0.1 with ports the system picks. ``python -m cnn_course.grading
   autograde tiny --dask tcp://…`` grades a small class of the tiny assignment of
   ``tests/grading_fixtures/`` on them, and gets exactly what ``--workers 2`` gets on this
   machine: statuses, scores, problems, the gradebook's grades and the autograded notebooks
   with their outputs. Afterwards every process of the cluster has ended.
2. CI runs the suite as root, where each sandbox gets a user id of its own; the same command
   must work for an instructor without privileges, where bubblewrap makes a user namespace.
   As root, the test runs the command as ``nobody`` (``setpriv``) on a course that user owns.

Both grade in real sandboxes: without bubblewrap they skip on a laptop and fail on CI.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import nbformat
import pytest
from conftest import FIXTURE_HIDDEN_MARKER, fixture_answers, hand_in, make_fixture_course, require_sandbox

pytestmark = [pytest.mark.slow, pytest.mark.nbgrader]   # releases with nbgrader; out of `make test-fast`

ASSIGNMENT = "tiny"
BIN = Path(sys.executable).parent
FLIPPED_EX1 = """def correlate_valid(x, w):
    x, w = np.asarray(x, dtype=float), np.asarray(w, dtype=float)[::-1, ::-1]   # flips: a convolution
    if x.ndim != 2:
        raise ValueError("2-D only")
    rows, cols = x.shape[0] - w.shape[0] + 1, x.shape[1] - w.shape[1] + 1
    return np.array([[np.sum(x[i:i + w.shape[0], j:j + w.shape[1]] * w) for j in range(cols)] for i in range(rows)])
"""
#: Status and score of each student of `hand_in_class` (6 points in all).
EXPECTED = {"blank": ("graded", "0"), "crashes-after-ex1": ("flagged", "3"), "flipped-kernel": ("graded", "4"),
            "honest": ("graded", "6"), "not-json": ("invalid", "0")}


def hand_in_class(root: Path) -> None:
    """Five students: right, blank, a flipped kernel (only the hidden test of Exercise 1 catches it:
    its visible check uses a symmetric kernel), a crash after Exercise 1, a file that is not JSON."""
    release = nbformat.read(root / "assignments" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
    answers = fixture_answers(nbformat.read(root / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4))

    def answered(**replace):
        notebook = nbformat.from_dict(json.loads(json.dumps(release)))
        for cell in notebook.cells:
            cell.source = {**answers, **replace}.get(cell.id, cell.source)
        return notebook

    crashes = answered()
    position = next(i for i, cell in enumerate(crashes.cells) if cell.id == "ex1-solution")
    crashes.cells.insert(position + 1, nbformat.v4.new_code_cell("import os\nos._exit(1)"))
    hand_in(root, "honest", answered())
    hand_in(root, "blank", release)
    hand_in(root, "flipped-kernel", answered(**{"ex1-solution": FLIPPED_EX1}))
    hand_in(root, "crashes-after-ex1", crashes)
    hand_in(root, "not-json", b"{ this is not a notebook")


def autograde(root: Path, *options: str, prefix: tuple[str, ...] = (), env: dict | None = None):
    """Run ``python -m cnn_course.grading autograde tiny`` in the course folder; the finished process."""
    command = [*prefix, sys.executable, "-m", "cnn_course.grading", "autograde", ASSIGNMENT, "--no-progress", *options]
    env = dict(env or os.environ)
    env["PATH"] = os.pathsep.join([str(BIN), env.get("PATH", "")])   # nbgrader runs the venv's `alembic`
    run = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    return run


def results(root: Path):
    """What grading produced, without times and cell ids: the table, the gradebook's grades, the notebooks."""
    from cnn_course.grading.gradebook import Course
    from nbgrader.api import Gradebook

    with open(root / "nbgrader" / "grading" / ASSIGNMENT / "grades.csv", newline="") as handle:
        table = {row["student"]: {k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(handle)}
    course = Course.load(root)
    with Gradebook(course.db_url, course.coursedir.course_id) as gradebook:
        grades = {student: {grade.name: (grade.auto_score, grade.max_score, grade.needs_manual_grade)
                            for grade in gradebook.find_submission_notebook(ASSIGNMENT, ASSIGNMENT, student).grades}
                  for student in table}
    notebooks = {}
    for student in table:
        notebook = json.loads((root / "nbgrader" / "autograded" / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")
                              .read_text())
        for cell in notebook["cells"]:
            cell.pop("id", None)
        notebooks[student] = notebook
    return table, grades, notebooks


def processes_with(text: str) -> list[int]:
    """Host processes whose command line contains ``text``."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if text.encode() in cmdline.read_bytes():
                found.append(int(cmdline.parent.name))
        except OSError:
            continue   # it ended meanwhile
    return found


@pytest.fixture(scope="module")
def released_course(tmp_path_factory) -> Path:
    require_sandbox()
    root = make_fixture_course(tmp_path_factory.mktemp("dask-course") / "course", assignment=ASSIGNMENT)
    hand_in_class(root)
    return root


class DaskCluster:
    """``dask scheduler`` and ``dask worker`` processes on 127.0.0.1; :meth:`stop` ends them all."""

    def __init__(self, folder: Path, workers: int = 2):
        self.token = f"grading-test-{uuid.uuid4().hex[:12]}"   # in every command line, to find them
        self.folder = folder
        self.processes: list[subprocess.Popen] = []
        scheduler_file = folder / f"scheduler-{self.token}.json"
        # Ports 0: the system picks free ones. The time-outs end the processes if this test dies.
        self._start("scheduler", "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                    "--scheduler-file", str(scheduler_file), "--idle-timeout", "600s")
        deadline = time.monotonic() + 60
        while not scheduler_file.exists():
            assert time.monotonic() < deadline and self.processes[0].poll() is None, self.logs()
            time.sleep(0.2)
        self.address = json.loads(scheduler_file.read_text())["address"]
        for number in range(workers):
            self._start(f"worker-{number}", "worker", self.address, "--nthreads", "1", "--no-nanny",
                        "--host", "127.0.0.1", "--no-dashboard", "--name", f"{self.token}-worker-{number}",
                        "--death-timeout", "60s", "--local-directory", str(folder / f"worker-{number}-files"))

    def _start(self, name: str, *arguments: str) -> None:
        workdir = self.folder / name
        workdir.mkdir()
        with open(self.folder / f"{name}.log", "wb") as log:   # the process keeps its own copy open
            self.processes.append(subprocess.Popen([str(BIN / "dask"), *arguments], cwd=workdir, stdout=log,
                                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL))

    def logs(self) -> str:
        return "\n".join(f"--- {path.name}\n{path.read_text(errors='replace')[-3000:]}"
                         for path in sorted(self.folder.glob("*.log")))

    def stop(self) -> None:
        for process in reversed(self.processes):   # workers first, then the scheduler
            if process.poll() is None:
                process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=30)


def test_a_dask_cluster_of_separate_processes_grades_like_local_workers(released_course, tmp_path):
    from distributed import Client

    local = shutil.copytree(released_course, tmp_path / "local")
    on_dask = shutil.copytree(released_course, tmp_path / "dask")
    said = autograde(local, "--workers", "2").stdout
    assert "on 2 local workers, each in its own sandbox" in said

    cluster_folder = tmp_path / "cluster"
    cluster_folder.mkdir()
    cluster = DaskCluster(cluster_folder)
    try:
        with Client(cluster.address, timeout=60) as client:
            client.wait_for_workers(2, timeout=60)
            worker_pids = set(client.run(os.getpid).values())
        said = autograde(on_dask, "--dask", cluster.address).stdout
        with Client(cluster.address, timeout=60) as client:
            executed = client.run(lambda dask_worker: dask_worker.state.executed_count)
    finally:
        cluster.stop()
    print(cluster.logs())

    # The workers were the two separate processes, and they did the grading.
    assert worker_pids == {process.pid for process in cluster.processes[1:]}
    assert f"on Dask scheduler {cluster.address}, each in its own sandbox" in said
    assert sum(executed.values()) == len(EXPECTED), executed
    # The same results as local workers, and the right ones.
    assert results(on_dask) == results(local)
    table, _, notebooks = results(on_dask)
    assert {student: (row["status"], row["score"]) for student, row in table.items()} == EXPECTED
    assert FIXTURE_HIDDEN_MARKER not in json.dumps(notebooks)
    # Every process of the cluster has ended.
    assert all(process.returncode is not None for process in cluster.processes)
    assert processes_with(cluster.token) == []


def test_an_unprivileged_instructor_grades_the_same_way(released_course):
    """As root (CI), run the command as ``nobody`` on a course that user owns."""
    if os.geteuid() != 0:
        pytest.skip("the test switches to an unprivileged user, which needs root; this run already has no privileges")
    nobody = 65534
    folder = Path(tempfile.mkdtemp(prefix="cnn-course-unprivileged-"))   # outside root's private tmp folders
    try:
        root = shutil.copytree(released_course, folder / "course")
        home = folder / "home"
        home.mkdir()
        for path in [folder, *folder.rglob("*")]:
            os.lchown(path, nobody, nobody)
        env = {**os.environ, "HOME": str(home), "TMPDIR": str(home), "USER": "nobody", "LOGNAME": "nobody"}
        prefix = ("setpriv", f"--reuid={nobody}", f"--regid={nobody}", "--clear-groups", "--")
        # Python may live in root's home (e.g. pyenv in /root, mode 700), which nobody cannot enter:
        # then show nobody only that interpreter's folders there, read-only, in a mount namespace.
        python_home = Path(sys.base_prefix).resolve()
        if subprocess.run([*prefix, "test", "-r", str(python_home / "lib")], env=env).returncode != 0:
            hidden = next(folder for folder in [*reversed(python_home.parents), python_home]
                          if not os.stat(folder).st_mode & 0o001)   # the outermost folder nobody cannot enter
            between = [str(hidden / Path(*python_home.relative_to(hidden).parts[:depth]))
                       for depth in range(1, len(python_home.relative_to(hidden).parts))]
            prefix = ("bwrap", "--dev-bind", "/", "/", "--perms", "0755", "--tmpfs", str(hidden),
                      *[option for folder in between for option in ("--perms", "0755", "--dir", folder)],
                      "--ro-bind", str(python_home), str(python_home), "--die-with-parent", "--", *prefix)
        check = subprocess.run([*prefix, sys.executable, "-m", "cnn_course.grading", "check"], env=env,
                               capture_output=True, text=True)
        if check.returncode != 0 and "namespace" in check.stdout:
            pytest.skip(f"this kernel lets no unprivileged user make a sandbox: {check.stdout.strip()}")
        said = autograde(root, "--workers", "2", prefix=prefix, env=env).stdout
        assert "unprivileged user namespaces" in said, said
        table, grades, notebooks = results(root)
        assert {student: (row["status"], row["score"]) for student, row in table.items()} == EXPECTED
        assert FIXTURE_HIDDEN_MARKER not in json.dumps(notebooks)
        # What the grader wrote belongs to the instructor who ran it.
        written = root / "nbgrader" / "autograded" / "honest" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
        assert (os.stat(written).st_uid, os.stat(root / "nbgrader" / "gradebook.db").st_uid) == (nobody, nobody)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
