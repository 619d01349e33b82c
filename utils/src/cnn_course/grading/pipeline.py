"""Grade one notebook: the student run, the restricted run and the judge, each in a sandbox.

:func:`grade_notebook` is steps 2-4 of the grading design for one planned notebook:

A. **Student run.** ``runner.py`` runs the notebook's code cells (``plan.sandbox_cells``) one
   at a time in sandbox A. Time limits are enforced from here: a cell that runs past the cell
   limit (or the notebook limit), or whose process dies, is stopped by killing the sandbox; a
   fresh sandbox runs the cells before it again ("retry once, then grade what ran"), and that
   cell and the later ones are marked not run.
B. **Restricted run** (only when the assignment has ``forbidden_modules``). The same runner,
   where each forbidden package is an inert stub, runs the cells up to the last one that
   defines a function the hidden tests call; those calls go to B, so a library answer fails
   there (except names in ``full_environment_names``, served by A, or by B' where only the
   ``full_environment_forbidden_modules`` are stubs when the assignment lists some).
C. **Judge.** ``judge.py`` runs the author's cells, hidden tests included, in sandbox C, which
   holds no student code. Its requests for student names are relayed here to A or B, with a
   time limit per call and a size limit per answer; a student function that runs past the
   call limit is stopped (its sandbox is killed) and a fresh one is started for later calls.
   A reference script of the hidden tests (``reference_scripts.py``) is answered from
   :data:`REFERENCE_OUTPUTS` or run in a new sandbox of its own (``reference.py``).

This process never decodes a value from a sandbox: it relays the messages (size-capped) and
reads only the plain JSON fields it needs (an operation, a status, outputs, which it
rebuilds field by field). Every sandbox is killed when grading ends, whatever happens.
"""

from __future__ import annotations

import atexit
import functools
import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .model import CellResult, CoursePaths, GradeResult, GradingConfig, NotebookResult
from .protocol import Channel, ChannelTimeout, MessageTooLarge, ProtocolError

#: Where the grader's own files appear inside every sandbox (outside any package folder).
TOOLS_INSIDE = "/opt/cnn-course-grading"
_TOOL_FILES = ("runner.py", "protocol.py", "judge.py", "reference.py")
#: Seconds a runner or judge may take to start and say it is ready.
STARTUP_SECONDS = 60.0
#: Largest message relayed from a student sandbox (a call's result, a data value).
MAX_RELAY_BYTES = 128 * 1024**2
#: Largest value of an assignment's cell copied from the student run into the restricted run
#: (a photo, not a whole data set: the student's own functions do not use those).
MAX_COPIED_BYTES = 32 * 1024**2
#: Largest message from the judge (its requests carry the hidden tests' arguments).
MAX_JUDGE_BYTES = 128 * 1024**2
#: How many times one student sandbox role may be started in all (first run and restarts).
MAX_STARTS = 3
#: How deep judge -> student -> judge callbacks may nest.
MAX_NESTING = 16
#: Grading one notebook ends after this many times its notebook time limit, whatever runs:
#: the student run, a run again after a crash, the tests, the calls and restarts for them.
TOTAL_TIME_FACTOR = 4


def sandbox_factory(*, unsafe_no_sandbox: bool = False) -> Callable[..., Any]:
    """The factory :func:`grade_notebook` uses on this machine: :class:`~.sandbox.Sandbox`.

    Parameters
    ----------
    unsafe_no_sandbox : bool
        Run plain subprocesses instead (trusted notebooks only; see ``sandbox.py``).
    """
    from .sandbox import Sandbox

    return functools.partial(Sandbox, unsafe_no_sandbox=unsafe_no_sandbox)


def local_course_paths(config: GradingConfig) -> CoursePaths:
    """:class:`CoursePaths` of this machine: its Python, and the data folders that exist here.

    ``config.data_folders`` may start with ``~`` (the grading user's home); folders missing
    on this machine are left out (the notebook then fails to load that data, visibly).
    """
    folders = []
    for folder in config.data_folders:
        path = Path(folder).expanduser()
        if path.is_absolute() and path.exists():
            folders.append(str(path.resolve()))
    return CoursePaths(python=sys.executable, data_folders=tuple(folders))


class ReferenceOutputs:
    """Outputs of the hidden tests' reference scripts, kept while this process grades.

    Keyed by the interpreter, the script and its input (``cnn_course.grading.reference_scripts``):
    a script sees nothing else, so a kept output is what running it again would give. Each
    output was computed in a sandbox of its own with no student data; a judge can only read
    them. Shared by the worker threads of one process (each Dask worker process has its own).
    """

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._outputs: dict[str, bytes] = {}
        self._computing: dict[str, threading.Lock] = {}
        self._bytes = 0
        self.computed = 0  # scripts run (not kept ones reused), so tests can see what was reused

    @staticmethod
    def key(python: str, script: str, data: bytes) -> str:
        digest = hashlib.sha256()
        for part in (python.encode(), script.encode(), bytes(data)):
            digest.update(len(part).to_bytes(8, "big"))
            digest.update(part)
        return digest.hexdigest()

    def get(self, key: str) -> bytes | None:
        with self._lock:
            return self._outputs.get(key)

    def computing(self, key: str) -> threading.Lock:
        """The lock a worker holds while it computes ``key`` (the others wait instead of computing it too)."""
        with self._lock:
            return self._computing.setdefault(key, threading.Lock())

    def keep(self, key: str, output: bytes) -> None:
        with self._lock:
            self.computed += 1
            if key not in self._outputs and self._bytes + len(output) <= self.max_bytes:
                self._outputs[key] = output
                self._bytes += len(output)

    def clear(self) -> None:
        with self._lock:
            self._outputs.clear()
            self._computing.clear()
            self._bytes = 0
            self.computed = 0


#: Most bytes of reference-script outputs one grading process keeps (later ones are run each time).
MAX_KEPT_REFERENCE_BYTES = 256 * 1024**2
REFERENCE_OUTPUTS = ReferenceOutputs(MAX_KEPT_REFERENCE_BYTES)


class _Stopped(Exception):
    """A sandbox stopped answering: ``status`` is "timeout" or "crashed"; ``why`` e.g. " (exit status 1)"."""

    def __init__(self, status: str, detail: str, why: str = ""):
        super().__init__(detail)
        self.status, self.detail, self.why = status, detail, why


class _JudgeStopped(Exception):
    """The judge sandbox stopped answering or broke the protocol."""


def _describe_cell(index: int, grade_id: str | None) -> str:
    return f"code cell {index + 1}" + (f" ({grade_id})" if grade_id else "")


def _seconds(value: float) -> str:
    return f"{value:g} s"


# --------------------------------------------------------------------------------------------
# Outputs from a sandbox, rebuilt field by field


def _text(value: Any, limit: int) -> str:
    if isinstance(value, list) and all(isinstance(part, str) for part in value):
        value = "".join(value)
    if not isinstance(value, str):
        return ""
    return value if len(value) <= limit else value[:limit] + "\n[output truncated]\n"


def _json_data(value: Any, limit: int) -> Any:
    try:
        text = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        return None
    return value if len(text) <= limit else None


def clean_outputs(outputs: Any, max_bytes: int) -> list[dict]:
    """nbformat outputs rebuilt from untrusted data: known types and fields only, capped.

    Parameters
    ----------
    outputs : object
        What a sandbox sent as a cell's outputs.
    max_bytes : int
        Size budget (of the JSON text) for all outputs together; what does not fit is replaced
        by one "[output truncated]" note (and one short error output after it, if there is one).
    """
    cleaned, used, truncated = [], 0, False
    if not isinstance(outputs, list):
        return cleaned
    for output in outputs[:10_000]:
        if not isinstance(output, dict):
            continue
        kind = output.get("output_type")
        if kind == "stream" and output.get("name") in ("stdout", "stderr"):
            item = {"output_type": "stream", "name": output["name"], "text": _text(output.get("text"), max_bytes)}
        elif kind in ("display_data", "execute_result") and isinstance(output.get("data"), dict):
            data = {mime: value for mime, value in output["data"].items()
                    if isinstance(mime, str) and len(mime) < 100 and "/" in mime
                    and (isinstance(value, str) or (mime.endswith("json") and _json_data(value, max_bytes) is not None))}
            metadata = output.get("metadata")
            metadata = metadata if isinstance(metadata, dict) and _json_data(metadata, 10_000) is not None else {}
            item = {"output_type": kind, "data": data, "metadata": metadata}
            if kind == "execute_result":
                count = output.get("execution_count")
                item["execution_count"] = count if type(count) is int and count >= 0 else None
        elif kind == "error":
            traceback = output.get("traceback")
            traceback = [line[:10_000] for line in traceback[:500] if isinstance(line, str)] \
                if isinstance(traceback, list) else []
            item = {"output_type": "error", "ename": _text(output.get("ename"), 200),
                    "evalue": _text(output.get("evalue"), 10_000), "traceback": traceback}
        else:
            continue
        size = len(json.dumps(item))
        if truncated:
            # Past the cap, one short error still shows why the cell failed.
            if item["output_type"] == "error" and size <= 50_000:
                cleaned.append(item)
                break
            continue
        if used + size > max_bytes:
            room = max_bytes - used - 200
            if item["output_type"] == "stream" and room > 0:  # keep what fits of a long text
                item["text"] = item["text"][:room]
                cleaned.append(item)
            cleaned.append({"output_type": "stream", "name": "stdout",
                            "text": f"\n[output truncated]: more than {max_bytes:,} bytes of output; the rest was dropped.\n"})
            truncated = True
            continue
        used += size
        cleaned.append(item)
    return cleaned


def _error_output(ename: str, message: str) -> dict:
    return {"output_type": "error", "ename": ename, "evalue": message, "traceback": [f"{ename}: {message}"]}


# --------------------------------------------------------------------------------------------
# One sandboxed process that speaks the protocol


@functools.cache
def _matplotlib_font_list(python: str) -> Path | None:
    """matplotlib's font cache for `python`, made once per grading process (None if it cannot be)."""
    folder = Path(tempfile.mkdtemp(prefix="cnn-course-matplotlib-"))
    atexit.register(shutil.rmtree, folder, True)
    try:
        subprocess.run([python, "-c", "import matplotlib.font_manager"], env={"MPLCONFIGDIR": str(folder),
                       "HOME": str(folder), "PATH": os.environ.get("PATH", "/usr/bin:/bin")},
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=STARTUP_SECONDS, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return next(iter(sorted(folder.glob("fontlist-*.json"))), None)


class _Process:
    """A runner or judge in its own sandbox, with its channel."""

    def __init__(self, grading: _Grading, label: str, script: str, *, stub_packages=None):
        self.grading = grading
        self.label = label
        scratch = Path(tempfile.mkdtemp(prefix=f"{label}-", dir=grading.workdir))
        config = grading.config
        from .sandbox import Limits

        limits = Limits(wall_seconds=grading.sandbox_wall_seconds, memory_bytes=config.memory_bytes,
                        max_processes=config.max_processes)
        self.sandbox = grading.factory(scratch=scratch, limits=limits,
                                       read_only=[Path(folder) for folder in grading.paths.data_folders],
                                       binds=[(grading.tools / name, f"{TOOLS_INSIDE}/{name}") for name in _TOOL_FILES],
                                       stub_packages=stub_packages or {})
        grading.open_sandboxes.append(self)
        self.alive = True  # until kill(): the sandbox holds resources from here on
        font_list = _matplotlib_font_list(grading.paths.python)
        if font_list is not None:
            # Without it matplotlib scans the system's fonts again in every sandbox (~0.3 s CPU each).
            cache = scratch / ".cache" / "matplotlib"
            cache.mkdir(parents=True)
            shutil.copyfile(font_list, cache / font_list.name)
        env = {"MPLBACKEND": "module://matplotlib_inline.backend_inline", "TF_CPP_MIN_LOG_LEVEL": "2",
               "PYTHONDONTWRITEBYTECODE": "1",
               "CNN_COURSE_GRADING_MAX_OUTPUT": str(config.max_output_bytes_per_cell)}
        self.process = self.sandbox.start([grading.paths.python, f"{TOOLS_INSIDE}/{script}"], env=env)
        self.channel = Channel(self.process.channel_out, self.process.channel_in, max_bytes=MAX_RELAY_BYTES)
        try:
            header, _ = self.channel.receive(timeout=STARTUP_SECONDS)
        except ChannelTimeout:
            self.kill()
            raise _Stopped("timeout", f"it did not start within {_seconds(STARTUP_SECONDS)}") from None
        except ProtocolError:
            why = self.why()
            self.kill()
            raise _Stopped("crashed", f"it stopped while starting{why}", why) from None
        if header.get("op") != "ready":
            self.kill()
            raise _Stopped("crashed", "it did not start properly")

    def why(self) -> str:
        """Why the process died, as the sandbox saw it, e.g. " (memory limit)" or " (exit status 1)"."""
        code = self.process.wait(timeout=2)
        reason = self.process.killed_reason
        if reason in ("memory", "wall time", "output"):
            return f" ({reason} limit)"
        if isinstance(code, int) and code < 0:
            return f" (signal {-code})"
        if isinstance(code, int):
            return f" (exit status {code})"
        return ""

    def kill(self) -> None:
        if not self.alive:
            return
        self.alive = False
        try:
            self.sandbox.close()
        except Exception:  # already gone
            pass

    def request(self, header: dict, blobs=(), *, timeout: float, max_bytes: int = MAX_RELAY_BYTES):
        """Send a request and wait for one answer; on silence or death, kill and raise _Stopped."""
        try:
            return self.channel.request(header, blobs, timeout=timeout, max_bytes=max_bytes)
        except ChannelTimeout:
            self.kill()
            raise _Stopped("timeout", "time limit") from None
        except MessageTooLarge:
            self.kill()
            why = f" (it sent a message over the grader's limit of {max_bytes:,} bytes and was stopped)"
            raise _Stopped("crashed", f"its process stopped{why}", why) from None
        except ProtocolError:
            why = self.why()
            self.kill()
            raise _Stopped("crashed", f"its process stopped{why}", why) from None


class _StudentSandbox:
    """Sandbox A or B: started, and started again after a crash, with cells replayed."""

    def __init__(self, grading: _Grading, label: str, *, stub_packages=None, forbidden: Sequence[str] = ()):
        self.grading, self.label, self.stub_packages = grading, label, stub_packages
        self.forbidden = tuple(forbidden)  # the packages that are stubs here, for messages
        self.process: _Process | None = None
        self.starts = 0
        self.replay_upto = -1  # cells 0..replay_upto are run again after a restart
        self.gone_reason: str | None = None

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.alive

    def start(self) -> _Process:
        self.starts += 1
        self.process = _Process(self.grading, self.label, "runner.py", stub_packages=self.stub_packages)
        return self.process

    def ensure(self) -> _Process:
        """A running sandbox with cells 0..replay_upto run; restarts it if needed (bounded)."""
        while not self.alive:
            if self.grading.time_left() <= 0:
                raise _Stopped("timeout", "the time for grading this notebook is used up")
            if self.starts >= MAX_STARTS:
                raise _Stopped("crashed", self.gone_reason or f"it was started {MAX_STARTS} times already")
            try:
                process = self.start()
            except _Stopped as stop:
                self.gone_reason = f"it could not be started: {stop.detail}"
                continue
            stopped = self.replay(process, self.replay_upto)
            if stopped is not None:
                self.replay_upto = stopped - 1
        return self.process

    def replay(self, process: _Process, upto: int) -> int | None:
        """Run cells 0..upto, outputs discarded; the index where it stopped, or None."""
        config = self.grading.config
        deadline = time.monotonic() + min(config.notebook_timeout, self.grading.time_left())
        for index, cell in enumerate(self.grading.plan.sandbox_cells[:upto + 1]):
            left = deadline - time.monotonic()
            try:
                if left <= 0:
                    raise _Stopped("timeout", "notebook time limit")
                reply, _ = process.request({"op": "run_cell", "index": index, "source": cell.source,
                                            "timeout": config.cell_timeout, "discard": True},
                                           timeout=min(config.cell_timeout, left))
            except _Stopped as stop:
                self.grading.event(f"The {self.label} run stopped again at {_describe_cell(index, cell.grade_id)} "
                                   f"({stop.detail}); only the cells before it count.")
                process.kill()
                return index
            if self.stub_packages and reply.get("status") == "error":
                if cell.author:
                    # The assignment's own cell may use the forbidden packages (to load a photo,
                    # say): what it made in the student's run is copied here, as data.
                    self.copy_from_student_run(process, index, deadline)
                else:
                    self.grading.failed_only_where_restricted(index, cell, reply.get("outputs"), self.forbidden)
        return None

    def copy_from_student_run(self, process: _Process, index: int, deadline: float) -> None:
        """Bind in this sandbox the data that cell `index` bound in the student's run."""
        for name in self.grading.defined_by.get(index, ()):
            left = deadline - time.monotonic()
            if left <= 0:
                return
            try:
                reply, blobs = self.grading.student.ensure().request(
                    {"op": "get", "name": name, "max_bytes": MAX_COPIED_BYTES}, timeout=min(STARTUP_SECONDS, left),
                    max_bytes=MAX_RELAY_BYTES)
            except _Stopped:
                return
            if reply.get("op") != "value":
                continue
            process.request({"op": "set", "name": name, "value": reply.get("value")}, blobs,
                            timeout=min(STARTUP_SECONDS, max(left, 1.0)))


class _Grading:
    """State of grading one notebook; :meth:`close` kills every sandbox."""

    def __init__(self, plan, factory, paths: CoursePaths, workdir: str):
        self.plan, self.factory, self.paths, self.config = plan, factory, paths, plan.config
        self.workdir = workdir
        self.tools = Path(workdir) / "tools"
        self.tools.mkdir()
        here = Path(__file__).resolve().parent
        for name in _TOOL_FILES:
            shutil.copyfile(here / name, self.tools / name)
            os.chmod(self.tools / name, 0o644)
        os.chmod(self.tools, 0o755)
        self.open_sandboxes: list[_Process] = []
        self.events: list[str] = []
        # The whole life of a sandbox: the student run, then the judge's own budget and the
        # calls' budget; a backstop only, everything is stopped from here before that.
        self.sandbox_wall_seconds = 3 * self.config.notebook_timeout + 2 * STARTUP_SECONDS
        self.defined_at: dict[str, int] = {}
        self.defined_by: dict[int, list[str]] = {}  # cell index -> names it bound in the student run
        self.student = _StudentSandbox(self, "student")
        self.restricted: _StudentSandbox | None = None
        self.builder: _StudentSandbox | None = None  # B': full_environment_names, where only some packages are stubs
        self.judge: _Process | None = None
        self.relay_left = self.config.notebook_timeout
        self.deadline = time.monotonic() + TOTAL_TIME_FACTOR * self.config.notebook_timeout
        self.judge_cell: str | None = None  # grade_id of the judge cell running now
        self.failed_in_student_run: set[str] = set()
        self.student_statuses: dict[int, str] = {}  # cell index -> status in the student run (A)
        self.restricted_failures: set[int] = set()

    def time_left(self) -> float:
        """Seconds left of the time for grading this notebook in all."""
        return self.deadline - time.monotonic()

    def event(self, message: str) -> None:
        self.events.append(message)

    def failed_only_where_restricted(self, index: int, cell, outputs, forbidden: Sequence[str]) -> None:
        """Say so, once, when a cell that ran in the student's run fails in the restricted run.

        Without this the student would only see the tests' NameError (or "not answered yet")
        and not why: their answer used a package the problem set does not allow.
        """
        if index in self.restricted_failures or self.student_statuses.get(index) != "ok":
            return
        self.restricted_failures.add(index)
        error = next((o for o in outputs if isinstance(o, dict) and o.get("output_type") == "error"), None) \
            if isinstance(outputs, list) else None
        detail = ""
        if error is not None:
            ename, evalue = str(error.get("ename", ""))[:80], str(error.get("evalue", ""))[:300]
            detail = f" ({ename}: {evalue})" if ename else ""
        names = list(forbidden)
        modules = names[0] + " is" if len(names) == 1 else ", ".join(names[:-1]) + f" and {names[-1]} are"
        where = _describe_cell(index, cell.grade_id)
        self.event(f"{where[0].upper()}{where[1:]} failed where {modules} not available{detail}; "
                   f"the tests call your functions there, so write this answer without them.")

    def close(self) -> None:
        for process in self.open_sandboxes:
            process.kill()

    # --- A: the student run -------------------------------------------------------------

    def student_run(self) -> list[CellResult]:
        cells, config = self.plan.sandbox_cells, self.config
        results: list[CellResult] = []
        try:
            process = self.student.start()
        except _Stopped as stop:
            self.event(f"The notebook could not be run: its sandbox {stop.detail}.")
            self.student.gone_reason = stop.detail
            return [CellResult(index, "not run", cell_id=cell.cell_id, grade_id=cell.grade_id)
                    for index, cell in enumerate(cells)]
        deadline = time.monotonic() + config.notebook_timeout
        stopped_at = None
        for index, cell in enumerate(cells):
            left = deadline - time.monotonic()
            where = _describe_cell(index, cell.grade_id)
            if left <= 0:
                self.event(f"The notebook ran past its time limit of {_seconds(config.notebook_timeout)} "
                           f"before {where}; it and the cells after it were not run.")
                stopped_at = index
                break
            limit = min(config.cell_timeout, left)
            started = time.monotonic()
            try:
                reply, _ = process.request({"op": "run_cell", "index": index, "source": cell.source,
                                            "timeout": limit}, timeout=limit)
            except _Stopped as stop:
                seconds = time.monotonic() - started
                if stop.status == "timeout":
                    which = "cell" if limit >= config.cell_timeout else "notebook"
                    limit_seconds = config.cell_timeout if which == "cell" else config.notebook_timeout
                    message = f"This cell ran past the {which}'s time limit of {_seconds(limit_seconds)} and was stopped."
                    ename = "TimeoutError"
                else:
                    message = f"The notebook's process stopped while running this cell{stop.why}."
                    ename = "RuntimeError"
                results.append(CellResult(index, stop.status, [_error_output(ename, message)], seconds,
                                          cell_id=cell.cell_id, grade_id=cell.grade_id))
                self.event(f"{where[0].upper()}{where[1:]}: {message} The cells before it were run again in a "
                           f"fresh sandbox for the tests; it and the cells after it count as not run.")
                stopped_at = index + 1
                break
            status = reply.get("status") if reply.get("status") in ("ok", "error") else "error"
            seconds = reply.get("seconds")
            seconds = float(seconds) if isinstance(seconds, (int, float)) and math.isfinite(seconds) and seconds >= 0 \
                else time.monotonic() - started
            results.append(CellResult(index, status, clean_outputs(reply.get("outputs"), config.max_output_bytes_per_cell),
                                      seconds, cell_id=cell.cell_id, grade_id=cell.grade_id))
            defined = reply.get("defined")
            for name in defined if isinstance(defined, list) else ():
                if isinstance(name, str) and name.isidentifier():
                    self.defined_at[name] = index
                    self.defined_by.setdefault(index, []).append(name)
        for index in range(len(results), len(cells)):
            results.append(CellResult(index, "not run", cell_id=cells[index].cell_id, grade_id=cells[index].grade_id))
        self.failed_in_student_run = {result.grade_id for result in results if result.status != "ok" and result.grade_id}
        self.student_statuses = {result.index: result.status for result in results}
        ran = [result for result in results if result.status in ("ok", "error")]
        self.student.replay_upto = ran[-1].index if ran else -1
        if stopped_at is not None and not self.student.alive:
            self.student.ensure()  # the fresh sandbox for the tests: cells 0..replay_upto again
        return results

    def manifest(self) -> list[dict]:
        try:
            process = self.student.ensure()
            reply, _ = process.request({"op": "manifest"}, timeout=STARTUP_SECONDS, max_bytes=16 * 1024**2)
        except _Stopped as stop:
            self.event(f"The names your notebook defined could not be read ({stop.detail}).")
            return []
        names = reply.get("names") if isinstance(reply.get("names"), list) else []
        return [{"name": entry["name"], "kind": entry.get("kind") if entry.get("kind") in
                 ("function", "data", "keras_model", "other") else "other",
                 "type": entry.get("type")[:200] if isinstance(entry.get("type"), str) else "object"}
                for entry in names[:10_000]
                if isinstance(entry, dict) and isinstance(entry.get("name"), str) and entry["name"].isidentifier()]

    # --- B: the restricted run ------------------------------------------------------------

    def prepare_restricted(self, manifest: list[dict]) -> None:
        """Set up B (and B' for ``full_environment_names`` with ``full_environment_forbidden_modules``).

        Each is started on the first call routed to it and runs the cells up to the last one
        that defines a student function served there.
        """
        config = self.config
        from .sandbox import inert_stubs

        # The student's own functions; the assignment's (defined by a read-only cell) run in the judge.
        cells = self.plan.sandbox_cells
        own_functions = [entry["name"] for entry in manifest
                         if entry["kind"] == "function" and 0 <= self.defined_at.get(entry["name"], -1) < len(cells)
                         and not cells[self.defined_at[entry["name"]]].author]
        if config.forbidden_modules:
            served = [name for name in own_functions if name not in config.full_environment_names]
            self.restricted = _StudentSandbox(self, "restricted", stub_packages=inert_stubs(config.forbidden_modules),
                                              forbidden=config.forbidden_modules)
            self.restricted.replay_upto = max((self.defined_at.get(name, -1) for name in served), default=-1)
        if config.full_environment_forbidden_modules:
            served = [name for name in own_functions if name in config.full_environment_names]
            self.builder = _StudentSandbox(self, "builder",
                                           stub_packages=inert_stubs(config.full_environment_forbidden_modules),
                                           forbidden=config.full_environment_forbidden_modules)
            self.builder.replay_upto = max((self.defined_at.get(name, -1) for name in served), default=-1)

    def route(self, header: dict) -> _StudentSandbox:
        if header.get("op") != "call":
            return self.student  # values always come from the student's own run
        if header.get("name") in self.config.full_environment_names:
            return self.builder if self.builder is not None else self.student
        return self.restricted if self.restricted is not None else self.student

    # --- C: the judge ---------------------------------------------------------------------

    def run_judge(self, manifest: list[dict]) -> list[GradeResult]:
        config = self.config
        judge_cells = self.plan.judge_cells
        grades: dict[int, GradeResult] = {}
        current = None
        try:
            self.judge = _Process(self, "judge", "judge.py")
            self.judge.channel.max_bytes = MAX_JUDGE_BYTES
            cells = [{"grade_id": cell.grade_id, "grade": bool(cell.grade), "points": float(cell.points),
                      "segments": [asdict(segment) for segment in cell.segments]} for cell in judge_cells]
            self.judge.channel.send({"op": "judge", "cells": cells, "manifest": manifest,
                                     "max_output_bytes": config.max_output_bytes_per_cell}, timeout=STARTUP_SECONDS)
            judge_left, cell_left = config.notebook_timeout, config.cell_timeout
            while True:
                started = time.monotonic()
                try:
                    header, blobs = self.judge.channel.receive(
                        timeout=max(min(judge_left, cell_left, self.time_left()), 0.0))
                except ChannelTimeout:
                    if self.time_left() <= 0:
                        raise _JudgeStopped("the time for grading this notebook is used up") from None
                    limit = "cell's" if cell_left <= judge_left else "notebook's"
                    raise _JudgeStopped(f"the tests ran past the {limit} time limit") from None
                except ProtocolError:
                    raise _JudgeStopped(f"the test process stopped{self.judge.why()}") from None
                spent = time.monotonic() - started
                judge_left -= spent
                cell_left -= spent
                op = header.get("op")
                if op == "cell_start" and isinstance(header.get("index"), int):
                    current, cell_left = header["index"], config.cell_timeout
                    if 0 <= current < len(judge_cells):
                        self.judge_cell = judge_cells[current].grade_id
                elif op == "grade":
                    self._record_grade(header, grades)
                elif op == "cell_done":
                    index = header.get("index")
                    if header.get("status") == "error" and isinstance(index, int) and 0 <= index < len(judge_cells) \
                            and judge_cells[index].grade_id not in self.failed_in_student_run:
                        # A read-only cell that failed in the student's run too (it uses a missing
                        # answer) is no news; one that failed only here points at the environment.
                        message = header.get("message") if isinstance(header.get("message"), str) else "an error"
                        self.event(f"The read-only cell {judge_cells[index].grade_id} failed when the tests ran "
                                   f"(but not in the notebook's own run): {message[:300]}")
                elif op in ("call", "get"):
                    self.relay(header, blobs, depth=0)
                elif op == "reference":
                    started = time.monotonic()
                    self.serve_reference(header, blobs, max(min(judge_left, cell_left, self.time_left()), 0.0))
                    spent = time.monotonic() - started
                    judge_left -= spent
                    cell_left -= spent
                elif op == "done":
                    break
                else:
                    raise _JudgeStopped(f"the test process sent an unexpected message ({str(op)[:40]!r})")
        except _Stopped as stop:
            self.event(f"The tests could not be run: their sandbox {stop.detail}.")
        except _JudgeStopped as stop:
            where = ""
            if current is not None and 0 <= current < len(judge_cells):
                where = f" in {judge_cells[current].grade_id}"
            self.event(f"The tests stopped{where}: {stop}; the test cells not graded by then score 0.")
        finally:
            if self.judge is not None:
                self.judge.kill()
        results = []
        for index, cell in enumerate(judge_cells):
            if not cell.grade:
                continue
            if index in grades:
                results.append(grades[index])
            else:
                has_hidden = any(segment.hidden for segment in cell.segments)
                results.append(GradeResult(cell.grade_id, 0.0, float(cell.points),
                                           [_error_output("RuntimeError", "These tests could not be run to the end.")],
                                           "failed" if has_hidden else "none"))
        return results

    def serve_reference(self, header: dict, blobs: Sequence[bytes], time_left: float) -> None:
        """Answer the judge's ``reference`` request: a kept output, or one computed now in a new sandbox."""
        from .reference_scripts import check_request

        script, asked = header.get("script"), header.get("timeout")
        data = blobs[0] if len(blobs) == 1 else None
        try:
            check_request(script, data, asked)
        except (TypeError, ValueError) as error:
            return self._judge_error(type(error).__name__, str(error))
        key = REFERENCE_OUTPUTS.key(self.paths.python, script, data)
        output = REFERENCE_OUTPUTS.get(key)
        if output is None:
            started = time.monotonic()
            computing = REFERENCE_OUTPUTS.computing(key)
            # Another worker computing the same script: wait for its output rather than run it too.
            acquired = computing.acquire(timeout=max(min(float(asked), time_left), 0.0))
            try:
                output = REFERENCE_OUTPUTS.get(key)
                if output is None:
                    limit = min(float(asked), time_left) - (time.monotonic() - started)
                    output = self._run_reference(script, data, limit)
                    if output is None:
                        return  # the judge has been told why
                    REFERENCE_OUTPUTS.keep(key, output)
            finally:
                if acquired:
                    computing.release()
        self._answer_judge({"op": "reference_output"}, [output])

    def _run_reference(self, script: str, data: bytes, limit: float) -> bytes | None:
        """Run a reference script in a new sandbox; its output, or None after telling the judge why not."""
        if limit <= 0:
            self._judge_error("TimeoutError", "no time is left for the reference script")
            return None
        process = None
        try:
            process = _Process(self, "reference", "reference.py")
            reply, reply_blobs = process.request({"op": "run", "script": script, "timeout": limit}, [data],
                                                 timeout=limit + 5.0, max_bytes=MAX_RELAY_BYTES)
        except _Stopped as stop:
            self._judge_error("RuntimeError", f"the reference script's sandbox {stop.detail}")
            return None
        finally:
            if process is not None:
                process.kill()
        if reply.get("op") != "output" or len(reply_blobs) != 1:
            kind = reply.get("type") if reply.get("type") in ("RuntimeError", "TimeoutError") else "RuntimeError"
            message = reply.get("message") if isinstance(reply.get("message"), str) else "it failed"
            self._judge_error(kind, message[:4000])
            return None
        return reply_blobs[0]

    def _record_grade(self, header: dict, grades: dict[int, GradeResult]) -> None:
        index = header.get("index")
        cells = self.plan.judge_cells
        if not isinstance(index, int) or not 0 <= index < len(cells) or not cells[index].grade or index in grades:
            raise _JudgeStopped("the test process reported a grade for a cell that is not a test cell")
        cell = cells[index]
        passed = header.get("points") == float(cell.points)  # all or nothing: the judge sends points or 0
        hidden = header.get("hidden") if header.get("hidden") in ("passed", "failed", "none") else "failed"
        grades[index] = GradeResult(cell.grade_id, float(cell.points) if passed else 0.0, float(cell.points),
                                    clean_outputs(header.get("visible_outputs"), self.config.max_output_bytes_per_cell),
                                    hidden)

    def _answer_judge(self, header: dict, blobs: Sequence[bytes] = ()) -> None:
        try:
            self.judge.channel.send(header, blobs, timeout=STARTUP_SECONDS)
        except ProtocolError:
            raise _JudgeStopped(f"the test process stopped{self.judge.why()}") from None

    def _judge_error(self, builtin: str, message: str) -> None:
        self._answer_judge({"op": "error", "type": builtin, "builtin": builtin, "message": message})

    def relay(self, header: dict, blobs: Sequence[bytes], depth: int) -> None:
        """Relay one judge request to A or B and its answer back, with callbacks in between."""
        name = header.get("name")
        shown = name if isinstance(name, str) and name.isidentifier() else "?"
        if depth > MAX_NESTING:
            return self._judge_error("RecursionError", "calls between the tests and your functions nest too deeply")
        if self.relay_left <= 0 or self.time_left() <= 0:
            return self._judge_error("TimeoutError", f"`{shown}` was not run: your functions have used up the "
                                                     f"{_seconds(self.config.notebook_timeout)} they may take in all")
        target = self.route(header)
        try:
            process = target.ensure()
        except _Stopped as stop:
            return self._judge_error("RuntimeError", f"`{shown}` cannot be run: your notebook's process is gone "
                                                     f"({stop.detail})")
        call_left = max(min(self.config.call_timeout, self.relay_left, self.time_left()), 0.0)
        what = f"`{shown}(...)`" if header.get("op") == "call" else f"`{shown}`"
        try:
            process.channel.send(header, blobs, timeout=call_left)
            while True:
                started = time.monotonic()
                reply, reply_blobs = process.channel.receive(timeout=max(call_left, 0.0), max_bytes=MAX_RELAY_BYTES)
                spent = time.monotonic() - started
                call_left -= spent
                self.relay_left -= spent
                op = reply.get("op")
                if op in ("value", "error"):
                    return self._answer_judge(reply, reply_blobs)
                if op != "callback":
                    process.kill()
                    return self._judge_error("RuntimeError", f"{what} sent something the grader does not understand")
                self._answer_judge(reply, reply_blobs)
                self._serve_callback(process, depth)
        except ChannelTimeout:
            process.kill()
            limit = _seconds(self.config.call_timeout)
            during = f" (in the tests of {self.judge_cell})" if self.judge_cell else ""
            self.event(f"{what} ran past the time limit of {limit} for one call{during} and was stopped.")
            return self._judge_error("TimeoutError", f"{what} did not finish within {limit} and was stopped")
        except MessageTooLarge:
            process.kill()
            return self._judge_error("RuntimeError", f"the value of {what} is larger than the "
                                                     f"{MAX_RELAY_BYTES // 1024**2} MiB the grader passes on")
        except ProtocolError:
            why = process.why()
            process.kill()
            during = f" (in the tests of {self.judge_cell})" if self.judge_cell else ""
            self.event(f"Your notebook's process stopped{why} while running {what} for the tests{during}.")
            return self._judge_error("RuntimeError", f"your notebook's process stopped{why} while running {what}")

    def _serve_callback(self, process: _Process, depth: int) -> None:
        """The judge runs a callback: relay its nested requests until its answer, then pass it on."""
        while True:
            try:
                header, blobs = self.judge.channel.receive(timeout=self.config.cell_timeout)
            except ChannelTimeout:
                raise _JudgeStopped("a function of the tests ran past the cell's time limit") from None
            except ProtocolError:
                raise _JudgeStopped(f"the test process stopped{self.judge.why()}") from None
            op = header.get("op")
            if op in ("callback_value", "callback_error"):
                process.channel.send(header, blobs, timeout=max(self.config.call_timeout, 1.0))
                return
            if op in ("call", "get"):
                self.relay(header, blobs, depth + 1)
            else:
                raise _JudgeStopped(f"the test process sent an unexpected message ({str(op)[:40]!r})")


def grade_notebook(plan, *, sandbox_factory: Callable[..., Any], course_paths: CoursePaths) -> NotebookResult:
    """Run one planned notebook and its tests in sandboxes; return what happened, as data.

    Parameters
    ----------
    plan : cnn_course.grading.plan.Plan
        ``sandbox_cells``, ``judge_cells`` and ``config`` of one submitted notebook.
    sandbox_factory : callable
        ``sandbox_factory(scratch=, limits=, read_only=, binds=, stub_packages=)`` returns a
        :class:`~cnn_course.grading.sandbox.Sandbox` (or an object with its API), e.g.
        :func:`sandbox_factory` of this module.
    course_paths : CoursePaths
        The interpreter and data folders of this machine (:func:`local_course_paths`).

    Returns
    -------
    NotebookResult
        Per sandbox cell its status and outputs, per test cell its points and visible outputs,
        plain event messages, and the seconds it all took. It holds no hidden-test source.
    """
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="cnn-course-grading-", dir=course_paths.scratch_root,
                                     ignore_cleanup_errors=True) as workdir:
        os.chmod(workdir, 0o711)
        grading = _Grading(plan, sandbox_factory, course_paths, workdir)
        try:
            cells = grading.student_run()
            manifest = grading.manifest() if grading.student.alive else []
            grading.prepare_restricted(manifest)
            grades = grading.run_judge(manifest)
        finally:
            grading.close()
    return NotebookResult(cells=cells, grades=grades, events=grading.events, seconds=time.monotonic() - started)
