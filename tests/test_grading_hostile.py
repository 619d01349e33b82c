"""Issue 8's hostile submissions, graded in ONE batch next to two honest students.

A temporary course holds the tiny assignment of ``tests/grading_fixtures/`` (6 points:
``ex1-check`` 1, ``ex1-hidden`` 2, ``ex2-test`` 1, ``ex3-test`` 2), released with nbgrader,
with short limits so that every runaway case ends in seconds (5 s a cell, 768 MiB and 32
processes a sandbox) and SciPy and ``cnn_course`` forbidden in answers. One run of
``python -m cnn_course.grading autograde tiny --workers 2`` grades, in real sandboxes, two
honest students (one full marks, one partial) and one submission per hostile case of the
issue's catalogue: each tries one thing, and answers some exercises honestly, so that the
right grade is what those answers earn and nothing more.

Afterwards the test checks that every student got the right grade (the table ``CASES``), that
the gradebook is intact (its scores are those grades, SQLite's integrity check passes),
that every file of the course is unchanged except the grader's own outputs (the tree is
hashed before and after), that no process a submission started is alive, that nothing was
planted outside the sandboxes, that a server on the host's loopback got no connection, and
that the autograded notebooks and feedback are small and hold neither hidden-test source
nor a classmate's answer. It prints, and saves in ``tests/artifacts/hostile_grading.md``,
the table: case | grade given | right grade | effect on others.

Real sandboxes only: without bubblewrap the test skips on a laptop and fails on CI.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import site
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest
from conftest import (
    ARTIFACTS,
    FIXTURE_HIDDEN_MARKER,
    REPO_ROOT,
    fixture_answers,
    hand_in,
    make_fixture_course,
    require_sandbox,
)

pytestmark = [pytest.mark.slow, pytest.mark.nbgrader]

ASSIGNMENT = "tiny"
MAX_SCORE = 6
#: Short limits: the runaway cases end in seconds, the honest cells take milliseconds.
SETTINGS = {"cell_timeout": 5, "notebook_timeout": 30, "call_timeout": 5, "memory_bytes": 768 * 1024**2,
            "max_processes": 32, "forbidden_modules": ["scipy", "cnn_course"]}
#: The grader's own outputs: the only paths of the course that may change.
GRADER_OUTPUTS = ("nbgrader/autograded/", "nbgrader/grading/", "nbgrader/feedback/", "nbgrader/gradebook.db")
MAX_FILE_BYTES = 2 * 1024**2   # an autograded notebook or a feedback file
TOKEN = f"hostile-{uuid.uuid4().hex[:12]}"   # in every process and file a hostile case makes
WRONG_EX1 = "def correlate_valid(x, w):\n    return np.zeros((1, 1))  # wrong on purpose"


# --- Building the submissions ------------------------------------------------------------------


@dataclass
class World:
    """What the submissions' code may name: the course on the host, the loopback server's port."""

    root: Path
    port: int
    release: nbformat.NotebookNode
    answers: dict[str, str]

    def code(self, text: str, case: str) -> str:
        return (text.replace("%ROOT%", str(self.root)).replace("%REPO%", str(REPO_ROOT))
                .replace("%PORT%", str(self.port)).replace("%TOKEN%", f"{TOKEN}-{case}"))


@dataclass
class Case:
    """One student of the batch.

    ``right`` is what the honest part of the notebook earns; ``planted`` are host paths the
    case tries to create (they must not exist afterwards); ``says`` a phrase the grader's
    notes for the student must hold.
    """

    student: str
    what: str
    right: float
    status: str
    build: Callable[[World, str], nbformat.NotebookNode | bytes]
    says: str | None = None
    planted: tuple[str, ...] = ()
    shows: tuple[str, ...] = ()   # text the student's own (autograded) outputs must hold


def notebook(world: World, case: str, *, answered=("ex1-solution", "ex2-solution", "ex3-solution"),
             replace: dict[str, str] | None = None, after: dict[str, str] | None = None,
             at_end: str | None = None) -> nbformat.NotebookNode:
    """The release with some exercises answered (``replace`` gives other answers) and student cells added."""
    submission = nbformat.from_dict(json.loads(json.dumps(world.release)))
    for cell in submission.cells:
        if cell.id in answered:
            cell.source = world.answers[cell.id]
        if replace and cell.id in replace:
            cell.source = replace[cell.id]
    for grade_id, code in (after or {}).items():
        position = next(i for i, cell in enumerate(submission.cells) if cell.id == grade_id)
        submission.cells.insert(position + 1, nbformat.v4.new_code_cell(world.code(code, case)))
    if at_end:
        submission.cells.append(nbformat.v4.new_code_cell(world.code(at_end, case)))
    return submission


def honest_full(world, case):
    # A comment only this student wrote: no one else's output or feedback may show it.
    answer = world.answers["ex3-solution"] + f"\n# {TOKEN}-answer-of-{case}"
    return notebook(world, case, replace={"ex3-solution": answer})


def honest_partial(world, case):
    ex1 = world.answers["ex1-solution"].replace("raise ValueError", "print")   # no ValueError for 1-D input
    return notebook(world, case, replace={"ex1-solution": ex1 + f"\n# {TOKEN}-answer-of-{case}",
                                          "ex2-solution": "EDGE_KERNEL = np.array([[1.0, -1.0]])  # signs swapped"})


def with_cell(code: str, *, after: str | None = None, answered=("ex1-solution", "ex2-solution", "ex3-solution"),
              replace=None):
    """A builder: the given exercises answered, ``code`` added after cell ``after`` (or at the end)."""
    def build(world, case):
        placement = {"after": {after: code}} if after else {"at_end": code}
        return notebook(world, case, answered=answered, replace=replace, **placement)
    return build


def tampering(code: str):
    """Exercise 1 answered wrongly, 2 and 3 rightly (3 points), ``code`` right after the setup cell."""
    return with_cell(code, after="setup", replace={"ex1-solution": WRONG_EX1})


def library_answer(code: str):
    """``code`` as the answer to Exercise 1; Exercises 2 and 3 answered rightly."""
    return lambda world, case: notebook(world, case, replace={"ex1-solution": code})


def edited_cells(edit: Callable[[nbformat.NotebookNode], None], *, wrong_ex1: bool):
    def build(world, case):
        submission = notebook(world, case, replace={"ex1-solution": WRONG_EX1} if wrong_ex1 else None)
        edit(submission)
        return submission
    return build


def cell_of(submission, grade_id):
    return next(cell for cell in submission.cells if cell.id == grade_id)


def duplicate(submission):
    for grade_id in ("ex1-check", "ex2-solution"):
        original = cell_of(submission, grade_id)
        copy = nbformat.from_dict(json.loads(json.dumps(original)))
        copy.id = f"{grade_id}-copy"
        submission.cells.insert(submission.cells.index(original) + 1, copy)


def edit_tests(submission):
    cell_of(submission, "ex1-check").source = 'print("Exercise 1: check passed")'
    cell_of(submission, "ex1-hidden").source = "pass"
    cell_of(submission, "ex3-test").source = "assert True"


def delete_tests(submission):
    submission.cells = [cell for cell in submission.cells if cell.id not in ("ex1-hidden", "ex3-test")]


def add_test_cell(submission):
    submission.cells.append(nbformat.v4.new_code_cell("print('a test cell of my own, worth 100 points')", metadata={
        "nbgrader": {"grade": True, "solution": False, "locked": True, "grade_id": "bonus", "points": 100,
                     "schema_version": 3}}))


def alter_checksums(submission):
    for cell in submission.cells:
        if "nbgrader" in cell.metadata and "checksum" in cell.metadata.nbgrader:
            cell.metadata.nbgrader.checksum = "0" * 32
    cell_of(submission, "ex1-check").metadata.nbgrader.points = 100
    # An answer cell made into a test cell worth 50 points:
    cell_of(submission, "ex1-solution").metadata.nbgrader.update(grade=True, points=50)


GRADEBOOK_WRITE = """\
import sqlite3
for path in ["../../../../nbgrader/gradebook.db", "%ROOT%/nbgrader/gradebook.db"]:
    try:
        with sqlite3.connect(f"file:{path}?mode=rw", uri=True) as db:
            db.execute("update grade set auto_score = 0")
        print("wrote", path)
    except sqlite3.Error as error:
        print("cannot write", path, error)
"""

GRADEBOOK_DELETE = """\
import glob, os, shutil
for path in ["../../../../nbgrader/gradebook.db", "%ROOT%/nbgrader/gradebook.db"]:
    try:
        os.remove(path)
        print("deleted", path)
    except OSError as error:
        print("cannot delete", path, type(error).__name__)
for folder in glob.glob("%ROOT%/nbgrader/submitted/*") + ["%ROOT%/nbgrader", "../../../../nbgrader"]:
    shutil.rmtree(folder, ignore_errors=True)
"""

PLANTS = """\
import subprocess, sys
for path in ["%ROOT%/solutions/tiny/planted.py", "../../../../solutions/tiny/planted.py", "%ROOT%/nbgrader_config.py"]:
    try:
        with open(path, "a") as planted:
            planted.write("c.Execute.timeout = 1  # planted\\n")
        print("planted", path)
    except OSError as error:
        print("cannot plant", path, type(error).__name__)
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)", "%TOKEN%"], start_new_session=True)
"""

INPUT_TRANSFORMER = "get_ipython().input_transformers_post.append(lambda lines: ['pass\\n'])"

EXEC_LIBRARY_SOURCE = """\
import inspect
import cnn_course.conv
library = {"__name__": "copied_conv", "__package__": "cnn_course"}
exec(inspect.getsource(cnn_course.conv), library)


def correlate_valid(x, w):
    return library["correlate2d"](x, w)


print("library answer works here:", np.allclose(correlate_valid(np.arange(9.0).reshape(3, 3), np.ones((2, 2))),
                                                [[8, 12], [20, 24]]))
"""

SCIPY_COMPILED = """\
from scipy.signal import _sigtools


def correlate_valid(x, w):
    x, w = np.asarray(x, dtype=float), np.asarray(w, dtype=float)
    if x.ndim != 2 or w.ndim != 2:
        raise ValueError("2-D only")
    return _sigtools._convolve2d(x, w, 0, 0, 0, 0)   # flip=0, mode="valid": a correlation


print("library answer works here:", np.allclose(correlate_valid(np.arange(9.0).reshape(3, 3), np.ones((2, 2))),
                                                [[8, 12], [20, 24]]))
"""

SWALLOWS_INTERRUPTS = """\
import signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
while True:
    try:
        time.sleep(0.5)
    except KeyboardInterrupt:
        print("interrupt ignored")
"""

READS_SECRETS = """\
import glob
for path in ["../../../../solutions/tiny/tiny.ipynb", "%ROOT%/solutions/tiny/tiny.ipynb", "%ROOT%/nbgrader/gradebook.db",
             "%ROOT%/nbgrader/submitted/aa-honest-full/tiny/tiny.ipynb",
             "%ROOT%/nbgrader/autograded/aa-honest-full/tiny/tiny.ipynb", "%ROOT%/nbgrader_config.py"]:
    try:
        with open(path, "rb") as secret:
            print(path, secret.read().decode(errors="replace"))
    except OSError as error:
        print("cannot read", path, type(error).__name__)
print("visible:", sorted(glob.glob("/home/*/*") + glob.glob("/tmp/*") + glob.glob("/opt/*/*")))
"""

PRINTS_HISTORY = "print(In[-2])\nprint(Out)\nprint([entry[2] for entry in get_ipython().history_manager.get_range()])"

NETWORK = """\
import socket
print("interfaces:", sorted(name for _, name in socket.if_nameindex()))
try:
    socket.create_connection(("127.0.0.1", %PORT%), timeout=2).sendall(b"%TOKEN%")
    print("connected to the host")
except OSError as error:
    print("no connection:", type(error).__name__)
"""

WRITES_OUTSIDE = """\
import site
for path in ["%ROOT%/planted-%TOKEN%", "%REPO%/planted-%TOKEN%", site.getsitepackages()[0] + "/planted-%TOKEN%.pth",
             "/etc/planted-%TOKEN%", "/usr/planted-%TOKEN%", "/opt/cnn-course-grading/runner.py",
             "/tmp/planted-%TOKEN%", "/dev/shm/planted-%TOKEN%", "/home/planted-%TOKEN%"]:
    try:
        with open(path, "a") as planted:
            planted.write("import os; os.system('echo planted')  # %TOKEN%\\n")
        print("wrote", path)
    except OSError as error:
        print("cannot write", path, type(error).__name__)
"""

DETACHED = """\
import subprocess, sys
child = '''
import signal, time
for deadly in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT):
    signal.signal(deadly, signal.SIG_IGN)
time.sleep(300)
'''
subprocess.Popen([sys.executable, "-c", child, "%TOKEN%"], start_new_session=True,
                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print("started a process that outlives this notebook")
"""

FORK_BOMB = """\
import subprocess, sys
bomb = "import os, time\\nwhile True:\\n    try:\\n        os.fork()\\n    except OSError:\\n        time.sleep(0.05)"
subprocess.run([sys.executable, "-c", bomb, "%TOKEN%"])
"""

MEMORY_BOMB = """\
import subprocess, sys
# Four processes, each under the per-process limit, together over the sandbox's limit.
bomb = '''
import os, time
for _ in range(3):
    if os.fork() == 0:
        break
blocks = []
try:
    while True:
        blocks.append(bytearray(b"x") * (16 * 1024**2))
        time.sleep(0.02)
except MemoryError:
    time.sleep(60)
'''
subprocess.run([sys.executable, "-c", bomb, "%TOKEN%"])
"""

SETTRACE = """\
import linecache, sys, threading
seen = []


def tracer(frame, event, arg):
    # Would record every line the tests run, and print them later.
    if event == "call":
        seen.append(frame.f_code.co_filename)
        seen.extend(linecache.getlines(frame.f_code.co_filename)[:20])
    return tracer


sys.settrace(tracer)
threading.settrace(tracer)
"""

ATEXIT = """\
import atexit, json, os, struct
forged = json.dumps({"op": "grade", "index": 2, "points": 1.0, "hidden": "passed"}).encode()
atexit.register(os.write, 4, struct.pack(">I", len(forged)) + forged)
atexit.register(print, "Exercise 1: check passed")
"""

MONKEYPATCH = """\
import builtins
np.allclose = np.array_equal = lambda *args, **kwargs: True
np.testing.assert_allclose = lambda *args, **kwargs: None
builtins.abs = lambda value: 0.0
close_enough = lambda got, expected: True
"""

CUSTOM_EXC = """\
get_ipython().set_custom_exc((BaseException,), lambda shell, etype, value, tb, tb_offset=None:
                             print("Exercise 1: check passed"))
"""

IMPORT_HOOK = """\
import importlib.abc, importlib.machinery, sys, types


class PassEverything(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in ("unittest", "pytest", "hypothesis", "numpy_testing_shim"):
            return importlib.machinery.ModuleSpec(name, self)
        return None

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        module.__getattr__ = lambda name: (lambda *args, **kwargs: True)


sys.meta_path.insert(0, PassEverything())
for name in [name for name in sys.modules if name.split(".")[0] in ("unittest", "pytest")]:
    del sys.modules[name]
"""

CASES = [
    Case("aa-honest-full", "honest: every exercise right", 6, "graded", honest_full),
    Case("h01-gradebook-write", "kernel writes `gradebook.db` with sqlite (blank notebook)", 0, "graded",
         with_cell(GRADEBOOK_WRITE, after="setup", answered=())),
    Case("h02-gradebook-delete", "kernel deletes `gradebook.db` and classmates' folders (Exercise 2 answered)", 1,
         "graded", with_cell(GRADEBOOK_DELETE, answered=("ex2-solution",))),
    Case("h03-plants-files", "plants a module in `solutions/tiny/`, appends to `nbgrader_config.py`, starts a "
         "detached process (all answered)", 6, "graded", with_cell(PLANTS)),
    Case("h04-input-transformer", "IPython input transformer (`input_transformers_post`) that blanks every "
         "later cell (blank notebook)", 0, "graded", with_cell(INPUT_TRANSFORMER, after="setup", answered=())),
    Case("h05-exec-library-source", "`exec(inspect.getsource(cnn_course.conv))` as Exercise 1 (2, 3 answered)", 3,
         "graded", library_answer(EXEC_LIBRARY_SOURCE),
         shows=("library answer works here: True",)),
    Case("h06-scipy-compiled", "SciPy's compiled `_sigtools._convolve2d` as Exercise 1 (2, 3 answered)", 3,
         "graded", library_answer(SCIPY_COMPILED),
         shows=("library answer works here: True", "scipy is not available while this problem set is graded")),
    Case("h07-duplicated-cells", "a test cell and an answer cell duplicated (same `grade_id`; all answered)", 6,
         "flagged", edited_cells(duplicate, wrong_ex1=False), says="'ex1-check' is in the notebook more than once"),
    Case("h08-swallows-interrupts", "endless loop that swallows KeyboardInterrupt and SIGTERM, after all answers",
         6, "flagged", with_cell(SWALLOWS_INTERRUPTS), says="ran past the cell's time limit"),
    Case("h09-os-exit", "`os._exit(1)` after Exercise 1 (all answered)", 3, "flagged",
         with_cell("import os\nos._exit(1)", after="ex1-solution"), says="stopped while running this cell"),
    Case("h10-reads-secrets", "reads `../../../../solutions/…`, the gradebook, a classmate's notebook; "
         "`print(In[-2])` after the hidden tests (all answered)", 6, "graded",
         lambda world, case: notebook(world, case, after={"ex1-hidden": PRINTS_HISTORY}, at_end=READS_SECRETS),
         shows=("cannot read %ROOT%/solutions/tiny/tiny.ipynb FileNotFoundError",)),
    Case("h11-allocates-30gb", "a 30 GB allocation (all answered)", 6, "graded",
         with_cell("big = np.ones(30 * 1024**3, dtype=np.uint8)"), shows=("MemoryError",)),
    Case("h12-prints-100mb", "one 100 MB output line (all answered)", 6, "graded",
         with_cell("print('x' * 100_000_000)"), shows=("[output truncated]",)),
    Case("h13-endless-loop", "endless loop before Exercise 3 (all answered)", 4, "flagged",
         with_cell("while True:\n    pass", after="ex2-test"), says="ran past the cell's time limit"),
    Case("h14-memory-bomb", "memory bomb: 4 processes, together over the limit (all answered)", 6, "flagged",
         with_cell(MEMORY_BOMB), says="memory limit"),
    Case("h15-fork-bomb", "fork bomb: every process forks until the process limit (all answered)", 6, "flagged", with_cell(FORK_BOMB),
         says="ran past the cell's time limit"),
    Case("h16-detached-process", "detached background process ignoring SIGHUP/SIGTERM (all answered)", 6,
         "graded", with_cell(DETACHED)),
    Case("h17-network", "connects to a server the test runs on the host's loopback (all answered)", 6, "graded",
         with_cell(NETWORK), shows=("interfaces: ['lo']", "no connection: ConnectionRefusedError")),
    Case("h18-writes-outside", "writes outside its scratch folder: course, repository, venv, /etc, /usr, "
         "the runner, /tmp, /dev/shm (all answered)", 6, "graded", with_cell(WRITES_OUTSIDE),
         planted=(f"{REPO_ROOT}/planted-{TOKEN}-h18-writes-outside",
                  f"{site.getsitepackages()[0]}/planted-{TOKEN}-h18-writes-outside.pth",
                  f"/etc/planted-{TOKEN}-h18-writes-outside", f"/usr/planted-{TOKEN}-h18-writes-outside",
                  f"/tmp/planted-{TOKEN}-h18-writes-outside", f"/dev/shm/planted-{TOKEN}-h18-writes-outside",
                  f"/home/planted-{TOKEN}-h18-writes-outside")),
    Case("h19-segfault", "segmentation fault before Exercise 3 (all answered)", 4, "flagged",
         with_cell("import ctypes\nctypes.string_at(0)", after="ex2-test"), says="signal 11"),
    Case("h20-invalid-json", "invalid JSON", 0, "invalid", lambda world, case: b'{"cells": [}',
         says="not valid JSON"),
    Case("h21-edited-tests", "test cells edited to pass (Exercise 1 wrong, 2 and 3 right)", 3, "flagged",
         edited_cells(edit_tests, wrong_ex1=True), says="were changed"),
    Case("h22-deleted-tests", "test cells deleted (all answered)", 6, "flagged",
         edited_cells(delete_tests, wrong_ex1=False), says="were deleted"),
    Case("h23-extra-test", "an extra test cell of its own worth 100 points (all answered)", 6, "flagged",
         edited_cells(add_test_cell, wrong_ex1=False), says="not part of the assignment"),
    Case("h24-checksums", "checksums altered, points raised, an answer made a test cell (Exercise 1 wrong)", 3,
         "flagged", edited_cells(alter_checksums, wrong_ex1=True),
         says="The settings of the answer cell 'ex1-solution' were changed"),
    Case("h25-settrace", "`sys.settrace` recording every line run (Exercise 1 wrong)", 3, "graded",
         tampering(SETTRACE)),
    Case("h26-atexit", "`atexit` forging a grade on the channel (Exercise 1 wrong)", 3, "graded", tampering(ATEXIT)),
    Case("h27-monkeypatch", "monkeypatches NumPy, `builtins.abs` and the checks' helper (Exercise 1 wrong)", 3,
         "graded", tampering(MONKEYPATCH)),
    Case("h28-custom-exc", "custom exception handler (`set_custom_exc`) hiding every error (Exercise 1 wrong)", 3,
         "graded", tampering(CUSTOM_EXC)),
    Case("h29-import-hook", "import hook (`sys.meta_path`) faking test libraries (Exercise 1 wrong)", 3, "graded",
         tampering(IMPORT_HOOK)),
    Case("zz-honest-partial", "honest: no ValueError in Exercise 1, wrong signs in 2", 3, "graded", honest_partial),
]


# --- Observing the host ---------------------------------------------------------------------------


class LoopbackServer:
    """A TCP server on the host's 127.0.0.1 that counts the connections it accepts."""

    def __init__(self):
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.socket.settimeout(0.2)
        self.port = self.socket.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        while not self._stop.is_set():
            try:
                connection, _ = self.socket.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            connection.close()

    def close(self):
        self._stop.set()
        self._thread.join()
        self.socket.close()


def tree_hashes(root: Path) -> dict[str, str]:
    """``{path relative to root: sha256}`` of every file; folders as ``"folder"``."""
    hashes = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if path.is_symlink():
            hashes[relative] = "link -> " + os.readlink(path)
        elif path.is_dir():
            hashes[relative + "/"] = "folder"
        else:
            hashes[relative] = hashlib.sha256(path.read_bytes()).hexdigest()
    return hashes


def is_grader_output(relative: str) -> bool:
    return relative.startswith(GRADER_OUTPUTS)   # the gradebook's journal file too


def processes_with(text: str) -> list[str]:
    """Command lines of the host's processes that contain ``text``."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            line = cmdline.read_bytes()
        except OSError:
            continue   # it ended meanwhile
        if text.encode() in line:
            found.append(line.replace(b"\0", b" ").decode(errors="replace")[:200])
    return found


def generate_feedback(root: Path) -> None:
    from cnn_course.grading.gradebook import Course
    from nbgrader.apps.api import NbGraderAPI

    course = Course.load(root)
    old_path = os.environ.get("PATH", "")
    os.environ["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), old_path])
    try:
        result = NbGraderAPI(coursedir=course.coursedir, config=course.coursedir.config).generate_feedback(
            ASSIGNMENT, force=True)
    finally:
        os.environ["PATH"] = old_path
    assert result["success"], result.get("log")


def gradebook_scores(root: Path) -> dict[str, tuple[float, float]]:
    from cnn_course.grading.gradebook import Course
    from nbgrader.api import Gradebook

    course = Course.load(root)
    with Gradebook(course.db_url, course.coursedir.course_id) as gradebook:
        assignment = gradebook.find_assignment(ASSIGNMENT)
        return {submission.student_id: (submission.score, submission.max_score)
                for submission in assignment.submissions}


def markdown_table(rows) -> str:
    lines = ["| Case | Grade given | Right grade | Effect on others |", "|---|---|---|---|"]
    lines += [f"| {what} | {given} | {right} | {effect} |" for what, given, right, effect in rows]
    return "\n".join(lines) + "\n"


# --- The batch ------------------------------------------------------------------------------------


def test_one_batch_of_hostile_submissions_grades_everyone_rightly_and_harms_no_one(tmp_path):
    require_sandbox()
    assert len({case.student for case in CASES}) == len(CASES)
    root = make_fixture_course(tmp_path / "course", assignment=ASSIGNMENT, settings=SETTINGS)
    source = nbformat.read(root / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
    release = nbformat.read(root / "assignments" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
    server = LoopbackServer()
    try:
        world = World(root, server.port, release, fixture_answers(source))
        with socket.create_connection(("127.0.0.1", server.port), timeout=5):
            pass   # the server works for the host itself: one connection, the test's own
        for case in CASES:
            hand_in(root, case.student, case.build(world, case.student), assignment=ASSIGNMENT)
        before = tree_hashes(root)
        grader_tmp = tmp_path / "grader-tmp"
        grader_tmp.mkdir()
        env = {**os.environ, "PATH": os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")]),
               "TMPDIR": str(grader_tmp)}
        started = time.monotonic()
        run = subprocess.run([sys.executable, "-m", "cnn_course.grading", "autograde", ASSIGNMENT, "--workers", "2",
                              "--no-progress"], cwd=root, env=env, capture_output=True, text=True, timeout=600)
        grading_seconds = time.monotonic() - started
        time.sleep(0.5)   # a process escaping the sandbox's end would show by now
        lingering = {case.student: processes_with(f"{TOKEN}-{case.student}") for case in CASES}
        leftover_sandboxes = processes_with(str(grader_tmp))
        generate_feedback(root)
    finally:
        server.close()
    after = tree_hashes(root)
    said = run.stdout + run.stderr
    print(said)
    print(f"grading took {grading_seconds:.1f} s")

    with open(root / "nbgrader" / "grading" / ASSIGNMENT / "grades.csv", newline="") as handle:
        table = {row["student"]: row for row in csv.DictReader(handle)}
    scores = gradebook_scores(root)
    changed = sorted(path for path in set(before) | set(after)
                     if before.get(path) != after.get(path) and not is_grader_output(path))
    autograded = {case.student: root / "nbgrader" / "autograded" / case.student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
                  for case in CASES}
    feedback = {case.student: root / "nbgrader" / "feedback" / case.student / ASSIGNMENT / f"{ASSIGNMENT}.html"
                for case in CASES}

    # What each case did to others, as observed: processes alive, files planted, connections.
    effects = {case.student: [f"process still running: {line}" for line in lingering[case.student]]
               + [f"planted {path}" for path in case.planted if os.path.lexists(path)] for case in CASES}
    if server.connections != 1:
        effects["h17-network"].append(f"{server.connections - 1} connection(s) to the host's loopback")
    rows = []
    for case in CASES:
        row = table.get(case.student, {})
        given = f"{row.get('score', '?')} / {row.get('max_score', '?')} ({row.get('status', 'no row')})"
        rows.append((f"`{case.student}`: {case.what}", given, f"{case.right:g} / {MAX_SCORE}",
                     "; ".join(effects[case.student]) or "none"))
    honest = ", ".join(f"{case.student} {table.get(case.student, {}).get('score', '?')}/{MAX_SCORE}"
                       for case in CASES if "honest" in case.student)
    summary = (f"\nOne batch, {len(CASES)} submissions, 2 workers, {grading_seconds:.0f} s. Honest students: {honest}. "
               f"Course files changed other than the grader's outputs: {', '.join(changed) or 'none'}. "
               f"Processes left: {sum(map(len, lingering.values())) + len(leftover_sandboxes)}. "
               f"Connections to the host's loopback from sandboxes: {server.connections - 1}.\n")
    report = markdown_table(rows) + summary
    print(report)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "hostile_grading.md").write_text(report)

    # The batch ran to the end and everyone got the right grade, in the table and the gradebook.
    assert run.returncode == 0, said
    assert f"Done: {sum(c.status in ('graded',) for c in CASES)} graded, " \
           f"{sum(c.status == 'flagged' for c in CASES)} flagged, 1 invalid, 0 missing, 0 error." in said
    given = {student: (float(row["score"]), row["status"]) for student, row in table.items()}
    assert given == {case.student: (float(case.right), case.status) for case in CASES}
    assert {student: row["max_score"] for student, row in table.items()} == {case.student: str(MAX_SCORE)
                                                                            for case in CASES}
    for case in CASES:
        if case.says:
            assert case.says in table[case.student]["problems"], (case.student, table[case.student]["problems"])
    # The gradebook is intact: what nbgrader reads is those grades, and SQLite finds no damage.
    assert scores == {case.student: (float(case.right), float(MAX_SCORE)) for case in CASES}
    with sqlite3.connect(root / "nbgrader" / "gradebook.db") as db:
        assert db.execute("pragma integrity_check").fetchall() == [("ok",)]
    # Nothing else of the course changed; nothing was left running or planted; no connection.
    assert changed == []
    assert not any(effects.values()), effects
    assert leftover_sandboxes == [] and server.connections == 1
    assert list(grader_tmp.iterdir()) == [], "the grader left scratch folders behind"
    # Small results, no hidden tests, no classmate's answers; what the cases printed is there.
    for case in CASES:
        for path in (autograded[case.student], feedback[case.student]):
            text = path.read_text(errors="replace")
            assert path.stat().st_size <= MAX_FILE_BYTES, (path, path.stat().st_size)
            assert FIXTURE_HIDDEN_MARKER not in text and "BEGIN HIDDEN TESTS" not in text, path
            others = [other.student for other in CASES if f"{TOKEN}-answer-of-{other.student}" in text]
            assert others in ([], [case.student]), (path, others)
        for text in case.shows:
            assert world.code(text, case.student) in autograded[case.student].read_text(), (case.student, text)
