"""Runs an assignment's author cells, hidden tests included, in the judge sandbox (C).

Started as ``python <folder>/judge.py`` inside sandbox C, which holds the full course
environment but no student code; ``runner.py`` and ``protocol.py`` are in the same folder
(bound at a neutral place, so none of the judge's code lives inside a package that the
problem sets' "no library answers" helpers watch).

Conversation on the channel (``CNN_COURSE_GRADING_CHANNEL``, requests in, replies out; the
other end is the coordinator, which relays to the student sandboxes):

1. the judge sends ``ready``; the coordinator sends ``judge {cells, manifest,
   max_output_bytes}``: the judge cells (``{grade_id, grade, points, segments: [{source,
   hidden}]}``) and the student run's manifest (``{name, kind, type}``);
2. for each cell the judge sends ``cell_start {index}``, runs the cell, and sends
   ``grade {index, grade_id, points, max_points, visible_outputs, hidden}`` for a test cell or
   ``cell_done {index, grade_id, status, message}`` for a set-up cell;
3. while a cell runs, a student name is used through ``get {name}`` / ``call {name, args,
   kwargs}``; the reply is ``value`` or ``error``. A reference script of the hidden tests
   (``cnn_course.grading.reference_scripts``) is ``reference {script, timeout}`` with its
   input as the one blob, answered by ``reference_output`` (the output as the one blob) or
   ``error``. A student function that calls a function of
   the judge (passed as an argument) makes the coordinator relay ``callback {id, args,
   kwargs}`` here, answered with ``callback_value {value}`` or ``callback_error``;
4. at the end the judge sends ``done``.

Student names. Before each cell, every name of the manifest is bound in the judge's namespace
unless a judge cell has defined it, it is the name of a Python builtin, or it starts with an
underscore: functions become :class:`StudentFunction` proxies (calls cross to the student
sandbox, arguments and results as data), data values and Keras models are fetched once as data
(before the first judge cell that mentions their name), anything else becomes an
:class:`Unavailable` placeholder that says why it cannot be used. A student's exception comes
back as the same builtin class with its message, raised from a frame named after the student's
function showing the student's line (so the problem sets' "Exercise N is not answered yet"
handler recognises a stub).

Verdicts. Each segment of a test cell is run as its own IPython cell. Visible segments'
outputs are kept; their tracebacks show only frames of visible author cells, of the student's
line and of libraries, never of hidden segments or of the grader. Hidden segments' outputs are
dropped: only whether they passed. A test cell scores its points iff every segment ran without
an error and without writing to stderr (as nbgrader scores a cell with an error or a warning).
"""

from __future__ import annotations

import ast
import builtins
import importlib.util
import keyword
import linecache
import os
import re
import sys
import types
import warnings


def _load_sibling(module_name: str, filename: str):
    if module_name not in sys.modules:
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), filename)
        spec = importlib.util.spec_from_file_location(module_name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    return sys.modules[module_name]


runner = _load_sibling("_cnn_course_grading_runner", "runner.py")
protocol = runner.load_protocol()

_MISSING = object()
_BUILTIN_NAMES = frozenset(dir(builtins))
_STUDENT_FILE = "<student code: {name}>"
#: ``cnn_course.grading.reference_scripts.GRADER_HOOK`` (not imported: nothing of cnn_course is).
REFERENCE_HOOK = "_cnn_course_grading_reference_scripts"


def _message(text, limit=300) -> str:
    text = str(text)
    return text if len(text) <= limit else text[:limit] + " [...]"


class Unavailable:
    """Stands for a student name that cannot be used in the hidden tests, saying why."""

    def __init__(self, name: str, reason: str):
        self._name, self._reason = name, reason

    def _fail(self):
        raise RuntimeError(f"`{self._name}` from your notebook cannot be used by the grader: {self._reason}")

    def __getattr__(self, attribute):
        if attribute.startswith("_"):
            raise AttributeError(attribute)
        self._fail()

    def __call__(self, *args, **kwargs):
        self._fail()

    def __repr__(self) -> str:
        return f"<{self._name}: {self._reason}>"


class StudentFunction:
    """A student's function; calling it runs it in the student sandbox."""

    def __init__(self, link: StudentLink, name: str):
        self._link = link
        self.__name__ = self.__qualname__ = name
        self.__doc__ = f"Your function `{name}`, run in your notebook's sandbox."

    def __call__(self, *args, **kwargs):
        return self._link.call(self.__name__, args, kwargs)

    def __repr__(self) -> str:
        return f"<function {self.__name__}>"


def _raise_from_student_frame(error: BaseException, frame) -> None:
    """Raise ``error`` from a frame named after the student's function, showing its line."""
    frame = frame if isinstance(frame, dict) else {}
    function = frame.get("function")
    if not isinstance(function, str) or not function.isidentifier() or keyword.iskeyword(function):
        function = "student_code"
    line = frame.get("line") if isinstance(frame.get("line"), str) else ""
    line = " ".join(line.split())[:300] or "..."
    filename = _STUDENT_FILE.format(name=function)
    lines = [f"def {function}(...):  # in your notebook\n", f"    {line}\n"]
    linecache.cache[filename] = (sum(map(len, lines)), None, lines, filename)
    namespace = {"__error__": error}  # no parameters: tracebacks then show "in zero_pad()"
    exec(compile(f"def {function}():\n    raise __error__\n", filename, "exec"), namespace)
    namespace[function]()


class StudentLink:
    """The judge's end of the channel: requests for student names, callbacks from them."""

    def __init__(self, requests, replies, capture):
        self.requests, self.replies, self.capture = requests, replies, capture
        self.callbacks: dict[int, object] = {}
        self.callback_ids: dict[int, int] = {}
        self.proxies: dict[str, StudentFunction] = {}

    def send(self, header: dict, blobs=()) -> None:
        protocol.write_message(self.replies, header, blobs)

    def receive(self):
        return protocol.read_message(self.requests)

    # Values crossing: the judge's functions go as callbacks, student functions by name.
    def _encode_callable(self, value):
        if isinstance(value, StudentFunction):
            return {"t": "student_function", "name": value.__name__}
        callback_id = self.callback_ids.get(id(value))
        if callback_id is None:  # registered once: a test may pass the same function many times
            callback_id = self.callback_ids[id(value)] = len(self.callbacks)
            self.callbacks[callback_id] = value  # kept alive, so its id() stays its own
        return {"t": "function", "id": callback_id, "name": _message(getattr(value, "__name__", "function"), 100)}

    def _decode_function(self, description):
        if description.get("t") == "student_function":
            return self.function(description["name"])
        return protocol.UnsupportedValue("function")

    def encode(self, value, blobs=None):
        return protocol.encode_value(value, blobs, encode_callable=self._encode_callable)

    def decode(self, description, blobs):
        with warnings.catch_warnings():  # e.g. Keras loading a model: not the student's warning
            warnings.simplefilter("ignore")
            return protocol.decode_value(description, blobs, decode_function=self._decode_function)

    def function(self, name: str) -> StudentFunction:
        if name not in self.proxies:
            self.proxies[name] = StudentFunction(self, name)
        return self.proxies[name]

    def request(self, header: dict, blobs=()):
        """Send a request; run callbacks until its answer arrives."""
        self.send(header, blobs)
        while True:
            reply, reply_blobs = self.receive()
            if reply.get("op") != "callback":
                return reply, reply_blobs
            self._run_callback(reply, reply_blobs)

    def _run_callback(self, header, blobs) -> None:
        function = self.callbacks.get(header.get("id"))
        try:
            if function is None:
                raise RuntimeError("the grader's function is not known any more")
            args = self.decode(header.get("args", {"t": "list", "v": []}), blobs)
            kwargs = self.decode(header.get("kwargs", {"t": "dict", "v": []}), blobs)
            if not isinstance(args, list) or not isinstance(kwargs, dict) or not all(isinstance(k, str) for k in kwargs):
                raise TypeError("a callback needs a list of arguments and a dict of keyword arguments")
            result = function(*args, **kwargs)
            description, out_blobs = self.encode(result)
        except Exception as error:
            self.send(dict(protocol.describe_error(error), op="callback_error"))
            return
        self.send({"op": "callback_value", "value": description}, out_blobs)

    def _replay(self, outputs) -> None:
        # What the student's function printed or displayed during the call, as in a notebook.
        if not isinstance(outputs, list):
            return
        for output in outputs[:1000]:
            if not isinstance(output, dict):
                continue
            kind = output.get("output_type")
            if kind == "stream" and output.get("name") in ("stdout", "stderr") and isinstance(output.get("text"), str):
                (sys.stdout if output["name"] == "stdout" else sys.stderr).write(output["text"])
            elif kind == "display_data" and isinstance(output.get("data"), dict):
                self.capture.current.add({"output_type": "display_data", "data": runner.mime_bundle(output["data"]),
                                          "metadata": {}})

    def _answer(self, reply, blobs):
        if reply.get("op") == "value":
            return self.decode(reply.get("value"), blobs)
        if reply.get("op") == "error":
            _raise_from_student_frame(protocol.rebuild_error(reply), reply.get("frame"))
        raise RuntimeError(f"the grader got an unexpected answer {_message(reply.get('op'), 50)!r}")

    def call(self, name: str, args, kwargs):
        """Call the student's function ``name`` in its sandbox; mirror in-place changes."""
        description, blobs = self.encode(list(args))
        kwargs_description, _ = self.encode(dict(kwargs), blobs)
        reply, reply_blobs = self.request({"op": "call", "name": name, "args": description,
                                           "kwargs": kwargs_description}, blobs)
        self._replay(reply.get("outputs"))
        if reply.get("op") == "value":
            self._mirror(reply.get("mutated"), reply_blobs, args, kwargs)
        return self._answer(reply, reply_blobs)

    def run_reference_script(self, script: str, data: bytes, timeout: float) -> bytes:
        """The output of a reference script (``cnn_course.grading.reference_scripts``), from the coordinator."""
        reply, reply_blobs = self.request({"op": "reference", "script": script, "timeout": timeout}, [data])
        if reply.get("op") == "reference_output" and len(reply_blobs) == 1:
            return reply_blobs[0]
        if reply.get("op") == "error":
            raise protocol.rebuild_error(reply)
        raise RuntimeError(f"the grader got an unexpected answer {_message(reply.get('op'), 50)!r}")

    def get(self, name: str):
        """Fetch the value of the student's name ``name`` as data."""
        reply, reply_blobs = self.request({"op": "get", "name": name})
        return self._answer(reply, reply_blobs)

    def _mirror(self, mutated, blobs, args, kwargs) -> None:
        # The student's function changed an argument in place: do the same to the judge's own
        # object, so a test like "your function must not change its input" sees it.
        import numpy as np

        if not isinstance(mutated, list):
            return
        for change in mutated:
            if not isinstance(change, dict):
                continue
            key = change.get("arg")
            if isinstance(key, int) and 0 <= key < len(args):
                original = args[key]
            elif isinstance(key, str) and key in kwargs:
                original = kwargs[key]
            else:
                continue
            try:
                new = self.decode(change.get("value"), blobs)
                if isinstance(original, np.ndarray) and isinstance(new, np.ndarray) and original.flags.writeable:
                    if new.shape == original.shape:
                        np.copyto(original, new, casting="unsafe")
                elif isinstance(original, (list, bytearray)) and isinstance(new, type(original)):
                    original[:] = new
                elif isinstance(original, (dict, set)) and isinstance(new, type(original)):
                    original.clear()
                    original.update(new)
            except Exception:  # a change the judge cannot mirror leaves its object as it was
                continue


class _TopLevelNames(ast.NodeVisitor):
    """Names a cell binds at its top level (assignments, imports, def, for, with, except)."""

    def __init__(self):
        self.names: set[str] = set()

    def visit_Name(self, node):
        if isinstance(node.ctx, (ast.Store, ast.Del)):
            self.names.add(node.id)

    def _scope(self, node):
        self.names.add(node.name)  # its body is another scope: not visited
        for decorator in node.decorator_list:
            self.visit(decorator)

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = _scope

    def visit_Lambda(self, node):
        pass

    def visit_ListComp(self, node):
        pass

    visit_SetComp = visit_DictComp = visit_GeneratorExp = visit_ListComp

    def visit_Import(self, node):
        for alias in node.names:
            self.names.add(alias.asname or alias.name.split(".")[0])

    visit_ImportFrom = visit_Import

    def visit_ExceptHandler(self, node):
        if node.name:
            self.names.add(node.name)
        self.generic_visit(node)


def bound_names(source: str) -> set[str]:
    """Top-level names ``source`` binds (empty if it is not plain Python, e.g. has magics)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return set()
    visitor = _TopLevelNames()
    visitor.visit(tree)
    return visitor.names


class Judge:
    """Runs the judge cells with student names bound, and reports verdicts."""

    def __init__(self, link: StudentLink, cells: list, manifest: list, *, max_output_bytes: int = 100_000):
        self.link = link
        self.capture = link.capture
        self.cells = cells
        self.manifest = [entry for entry in manifest if isinstance(entry, dict)
                         and isinstance(entry.get("name"), str) and entry["name"].isidentifier()
                         and not entry["name"].startswith("_") and entry["name"] not in _BUILTIN_NAMES]
        self.max_output_bytes = max_output_bytes
        self.visible_files: set[str] = set()
        self.hidden_files: set[str] = set()
        self.in_hidden = False
        self.bound: dict[str, object] = {}
        self.judge_names: set[str] = set()
        self.fetched: dict[str, object] = {}
        # A student's data is fetched before the first cell that mentions it (or defines a
        # function that does), not before: a data set the judge's own locked cell loads later
        # is never sent across.
        self.mentioned_upto: list[set[str]] = []
        mentioned: set[str] = set()
        for cell in cells:
            source = "\n".join(str(segment.get("source", "")) for segment in cell.get("segments", ()))
            mentioned = mentioned | set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", source))
            self.mentioned_upto.append(mentioned)
        # Data a cell defines itself is not fetched before it (e.g. a data set loaded by a
        # locked cell, which the student run loaded too).
        self.bound_by_cell = [set().union(*(bound_names(str(segment.get("source", "")))
                                            for segment in cell.get("segments", ()))) for cell in cells]
        self.tool_folder = os.path.dirname(os.path.abspath(__file__))
        import IPython

        self.ipython_folder = os.path.dirname(os.path.abspath(IPython.__file__))
        self.shell = runner.make_shell(self.capture, traceback_filter=self.filter_traceback)
        # Record the file name IPython gives each segment before it runs, to tell hidden from
        # visible code in tracebacks.
        compile_cache = self.shell.compile.cache

        def cache(*args, **kwargs):
            name = compile_cache(*args, **kwargs)
            (self.hidden_files if self.in_hidden else self.visible_files).add(name)
            return name

        self.shell.compile.cache = cache

    def _visible_frame(self, filename: str) -> bool:
        if filename in self.hidden_files:
            return False
        if filename in self.visible_files or filename.startswith("<student code: "):
            return True
        if filename.startswith("<ipython-input-") or filename.startswith("<cell"):
            return False  # a cell the judge did not record: better not shown
        path = os.path.abspath(filename)
        return not (path.startswith(self.tool_folder + os.sep) or path.startswith(self.ipython_folder + os.sep))

    def filter_traceback(self, traceback):
        """The traceback with only the frames a student may see."""
        kept = []
        while traceback is not None:
            if self._visible_frame(traceback.tb_frame.f_code.co_filename):
                kept.append(traceback)
            traceback = traceback.tb_next
        rebuilt = None
        for frame in reversed(kept):
            rebuilt = types.TracebackType(rebuilt, frame.tb_frame, frame.tb_lasti, frame.tb_lineno)
        return rebuilt

    def bind_student_names(self, index: int) -> None:
        """Bind every student name the judge's own cells have not defined (see module docstring)."""
        namespace = self.shell.user_ns
        for entry in self.manifest:
            name, kind = entry["name"], entry.get("kind")
            if name in self.judge_names or (kind != "function" and name in self.bound_by_cell[index]):
                continue
            current = namespace.get(name, _MISSING)
            if current is not _MISSING and current is not self.bound.get(name, _MISSING):
                self.judge_names.add(name)  # the judge defined it: the judge's version counts
                continue
            if current is not _MISSING:
                continue
            if kind in ("data", "keras_model") and name not in self.mentioned_upto[index]:
                continue
            value = self._student_value(name, kind, entry.get("type"))
            if value is not _MISSING:
                namespace[name] = self.bound[name] = value

    def _student_value(self, name: str, kind, type_name):
        if kind == "function":
            return self.link.function(name)
        if kind in ("data", "keras_model"):
            if name not in self.fetched:
                try:
                    self.fetched[name] = self.link.get(name)
                except Exception as error:
                    self.fetched[name] = Unavailable(name, f"{type(error).__name__}: {_message(error)}")
            return self.fetched[name]
        return Unavailable(name, f"it is a {_message(type_name, 100)}, which cannot be passed between processes")

    def run_segment(self, source: str, hidden: bool, collector) -> bool:
        """Run one segment into ``collector``; True if it raised nothing and wrote no stderr."""
        self.capture.current = collector
        self.in_hidden = hidden
        try:
            result = self.shell.run_cell(source, store_history=True)
        finally:
            self.in_hidden = False
        return bool(result.success) and not collector.stderr_written

    def run_cell(self, cell: dict) -> dict:
        visible = runner.OutputCollector(self.max_output_bytes)
        visible.execution_count = self.shell.execution_count
        passed, hidden_verdict = True, "none"
        for segment in cell.get("segments", ()):
            hidden = bool(segment.get("hidden"))
            collector = runner.OutputCollector(self.max_output_bytes) if hidden else visible
            if cell.get("grade"):
                ok = self.run_segment(str(segment.get("source", "")), hidden, collector)
            else:  # a read-only cell: its outputs are the student run's, not drawn again here
                with runner.PlainTextOnly(self.shell):
                    ok = self.run_segment(str(segment.get("source", "")), hidden, collector)
            if hidden:
                hidden_verdict = "passed" if ok else "failed"
            if not ok:
                passed = False
                break
        if not passed and hidden_verdict == "none" and any(s.get("hidden") for s in cell.get("segments", ())):
            hidden_verdict = "failed"  # stopped before its hidden tests: they did not pass
        self.capture.start(self.max_output_bytes)
        return {"passed": passed, "hidden": hidden_verdict, "outputs": visible.finish()}

    def run(self) -> None:
        for index, cell in enumerate(self.cells):
            self.link.send({"op": "cell_start", "index": index})
            self.bind_student_names(index)
            result = self.run_cell(cell)
            grade_id = cell.get("grade_id")
            if cell.get("grade"):
                max_points = float(cell.get("points") or 0)
                self.link.send({"op": "grade", "index": index, "grade_id": grade_id,
                                "points": max_points if result["passed"] else 0.0, "max_points": max_points,
                                "visible_outputs": result["outputs"], "hidden": result["hidden"]})
            else:
                errors = [output for output in result["outputs"] if output["output_type"] == "error"]
                message = f"{errors[0]['ename']}: {_message(errors[0]['evalue'])}" if errors else None
                self.link.send({"op": "cell_done", "index": index, "grade_id": grade_id,
                                "status": "ok" if result["passed"] else "error", "message": message})
        self.link.send({"op": "done"})


def main() -> None:
    """Entry point inside the judge sandbox."""
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [entry for entry in sys.path if os.path.abspath(entry or ".") != here]
    in_fd, out_fd = (int(fd) for fd in os.environ.get("CNN_COURSE_GRADING_CHANNEL", "3,4").split(","))
    requests = os.fdopen(in_fd, "rb", buffering=0)
    replies = os.fdopen(out_fd, "wb", buffering=0)
    capture = runner.Capture()
    link = StudentLink(requests, replies, capture)
    # cnn_course.grading.reference_scripts.run_reference_script asks the coordinator through
    # this module (its GRADER_HOOK), which keeps each script's output for later submissions.
    hook = types.ModuleType(REFERENCE_HOOK)
    hook.run_reference_script = link.run_reference_script
    sys.modules[REFERENCE_HOOK] = hook
    link.send({"op": "ready", "pid": os.getpid()})
    header, _ = link.receive()
    if header.get("op") != "judge":
        raise SystemExit("the judge expected its cells first")
    judge = Judge(link, list(header.get("cells") or []), list(header.get("manifest") or []),
                  max_output_bytes=int(header.get("max_output_bytes") or 100_000))
    judge.run()
    os._exit(0)


if __name__ == "__main__":
    main()
