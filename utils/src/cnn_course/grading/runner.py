"""Runs a student's notebook cells inside a sandbox and serves the names they define.

Started as ``python <folder>/runner.py`` inside a student sandbox (A: the full environment;
B: forbidden packages replaced by stubs), with ``protocol.py`` next to it in ``<folder>``.
It imports only the standard library, IPython and NumPy, and nothing from ``cnn_course``
(which is stubbed in B): the coordinator binds this file and ``protocol.py`` at a neutral
place such as ``/opt/cnn-course-grading/``.

The channel is on the file descriptors named by ``CNN_COURSE_GRADING_CHANNEL`` ("3,4":
requests in, replies out). The runner first sends ``{"op": "ready"}``, then answers:

``run_cell {index, source, timeout, discard}``
    Runs one cell in an in-process IPython shell (matplotlib's inline backend, so figures
    become ``image/png`` outputs) and replies ``cell_done {index, status, outputs, seconds,
    defined}``: ``status`` is "ok" or "error", ``outputs`` nbformat output dicts (capped at
    ``max_output_bytes``, cut with a visible "[output truncated]"), ``defined`` the names the
    cell (re)bound. With ``discard`` (the outputs will not be shown) figures are not drawn.
    Time limits are enforced from outside: the coordinator kills the sandbox.
``manifest``
    ``manifest {names: [{name, kind, type}]}``: every name the notebook defined, with kind
    "function", "data", "keras_model" or "other". Modules, names starting with ``_`` and
    IPython's own names are left out. The judge applies the rest of the rule: it ignores names
    its own cells define and the names of Python's builtins, so a student cannot replace
    ``len``, ``np`` or a grading helper in the hidden tests.
``get {name, max_bytes}``
    ``value {value}`` (see ``protocol.encode_value``) or ``error`` (also when the value's
    data is larger than the optional ``max_bytes``).
``set {name, value}``
    Binds ``name`` to the decoded value in the notebook's namespace (the restricted run gets
    the data an assignment's own cell could not make there) and replies ``set_done``, or
    ``error``.
``call {name, args, kwargs}``
    Calls the function with the decoded arguments: ``value {value, outputs, mutated}``
    (``mutated``: the arguments the call changed in place, so the judge can mirror that) or
    ``error {type, builtin, message, name, frame, outputs}``.
``exit``
    Ends the runner.

Student code runs in this very process and can change anything in it, the runner included.
That is accepted: whatever the runner sends is untrusted data, checked by the coordinator and
decoded only by the judge, in another sandbox.
"""

from __future__ import annotations

import base64
import builtins
import importlib.util
import io
import json
import linecache
import os
import sys
import time
import types

TRUNCATION_NOTE = "\n[output truncated]: this cell wrote more than {limit:,} bytes of output; the rest was dropped.\n"
MAX_NAMES = 10_000
MAX_TEXT = 10_000  # characters of an exception message or traceback line sent back


def load_protocol():
    """Import ``protocol.py`` from this file's folder under a private module name."""
    name = "_cnn_course_grading_protocol"
    if name not in sys.modules:
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "protocol.py")
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


# --------------------------------------------------------------------------------------------
# Output capture


def _text(value, limit=MAX_TEXT) -> str:
    try:
        text = value if isinstance(value, str) else str(value)
    except Exception:
        text = f"<{type(value).__name__} that cannot be shown as text>"
    return text if len(text) <= limit else text[:limit] + " [...]"


def mime_bundle(data) -> dict:
    """Turn a display mime bundle into JSON data (bytes as base64, as Jupyter does)."""
    bundle = {}
    if not isinstance(data, dict):
        return bundle
    for mime, value in data.items():
        if not isinstance(mime, str):
            continue
        if isinstance(value, (bytes, bytearray)):
            value = base64.b64encode(bytes(value)).decode("ascii")
        elif mime == "application/json" or mime.endswith("+json"):
            try:
                json.dumps(value)
            except (TypeError, ValueError):
                value = _text(value)
        elif not isinstance(value, str):
            value = _text(value)
        bundle[mime] = value
    return bundle


class OutputCollector:
    """nbformat outputs of one cell or call, capped at ``max_bytes`` (roughly, as UTF-8)."""

    def __init__(self, max_bytes: int = 100_000):
        self.max_bytes = max_bytes
        self.outputs: list[dict] = []
        self.used = 0
        self.truncated = False
        self.stderr_written = False
        self.execution_count = None

    def _append(self, output: dict, size: int) -> bool:
        if self.truncated:
            return False
        if self.used + size > self.max_bytes:
            self._truncate()
            return False
        self.used += size
        self.outputs.append(output)
        return True

    def _truncate(self) -> None:
        self.truncated = True
        self.outputs.append({"output_type": "stream", "name": "stdout",
                             "text": [TRUNCATION_NOTE.format(limit=self.max_bytes)]})

    def stream(self, name: str, text: str) -> None:
        """Add text written to stdout or stderr (consecutive writes share one output)."""
        if not text:
            return
        if name == "stderr":
            self.stderr_written = True
        if self.truncated:
            return
        data = text.encode("utf-8", "replace")
        room = max(self.max_bytes - self.used, 0)
        overflow = len(data) > room
        if overflow:
            text = data[:room].decode("utf-8", "ignore")
        if text:
            last = self.outputs[-1] if self.outputs else None
            if last is not None and last["output_type"] == "stream" and last["name"] == name:
                last["text"].append(text)
            else:
                self.outputs.append({"output_type": "stream", "name": name, "text": [text]})
            self.used += min(len(data), room)
        if overflow:
            self._truncate()

    def add(self, output: dict) -> None:
        """Add a display_data, execute_result or error output."""
        try:
            size = len(json.dumps(output))
        except (TypeError, ValueError):
            return
        self._append(output, size)

    def error(self, ename: str, evalue: str, traceback: list) -> None:
        """Add an error output; one still fits after the cap (shortened), so a cell that printed
        too much and then failed shows why it failed."""
        output = {"output_type": "error", "ename": _text(ename, 200), "evalue": _text(evalue),
                  "traceback": [_text(line) for line in traceback][:200]}
        if not (self.truncated or self.used + len(json.dumps(output)) > self.max_bytes):
            self.add(output)
        elif not getattr(self, "late_error", False):
            self.late_error = True
            self.truncated = True
            output["evalue"] = _text(evalue, 2_000)
            output["traceback"] = [_text(line, 2_000) for line in traceback][-20:]
            self.outputs.append(output)

    def clear(self) -> None:
        """What ``IPython.display.clear_output`` does in a notebook."""
        self.outputs.clear()
        self.used = 0

    def finish(self) -> list[dict]:
        """The outputs, with each stream's pieces joined."""
        finished = []
        for output in self.outputs:
            if output["output_type"] == "stream":
                output = dict(output, text="".join(output["text"]))
            finished.append(output)
        return finished


class CaptureStream(io.TextIOBase):
    """A text stream (``sys.stdout``/``sys.stderr``) that writes into the current collector."""

    def __init__(self, capture: Capture, name: str):
        super().__init__()
        self._capture = capture
        self.name = name

    @property
    def encoding(self):
        return "utf-8"

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def write(self, text) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        self._capture.current.stream(self.name, text)
        return len(text)

    def flush(self) -> None:
        pass


class Capture:
    """Where output goes right now: one collector at a time (a cell, a call)."""

    def __init__(self, max_bytes: int = 100_000):
        self.current = OutputCollector(max_bytes)

    def start(self, max_bytes: int) -> OutputCollector:
        self.current = OutputCollector(max_bytes)
        return self.current


def make_shell(capture: Capture, traceback_filter=None):
    """An in-process IPython shell whose outputs, displays and tracebacks go to ``capture``.

    Shared with ``judge.py``. Figures of matplotlib become ``image/png`` display outputs
    (the inline backend, chosen through ``MPLBACKEND`` as in a Jupyter kernel).
    ``traceback_filter(traceback) -> traceback`` (the judge's) chooses the frames a traceback
    shows; chained exceptions are then left out, as they could show other frames.
    """
    os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    from IPython.core.displayhook import DisplayHook
    from IPython.core.displaypub import DisplayPublisher
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets import Type
    from traitlets.config import Config

    class CapturingDisplayHook(DisplayHook):
        def start_displayhook(self):
            pass

        def write_output_prompt(self):
            pass

        def write_format_data(self, format_dict, md_dict=None):
            count = getattr(capture.current, "execution_count", None)
            capture.current.add({"output_type": "execute_result", "execution_count": count,
                                 "data": mime_bundle(format_dict), "metadata": mime_bundle(md_dict or {})})

        def finish_displayhook(self):
            pass

    class CapturingDisplayPublisher(DisplayPublisher):
        def publish(self, data, metadata=None, source=None, *, transient=None, update=False, **kwargs):
            capture.current.add({"output_type": "display_data", "data": mime_bundle(data),
                                 "metadata": mime_bundle(metadata or {})})

        def clear_output(self, wait=False):
            capture.current.clear()

    class CapturingShell(InteractiveShell):
        displayhook_class = Type(CapturingDisplayHook)
        display_pub_class = Type(CapturingDisplayPublisher)

        def _showtraceback(self, etype, evalue, stb):
            capture.current.error(getattr(etype, "__name__", "Exception"), _text(evalue), list(stb))

        def showtraceback(self, exc_tuple=None, filename=None, tb_offset=None, exception_only=False,
                          running_compiled_code=False):
            if traceback_filter is None:
                return super().showtraceback(exc_tuple, filename, tb_offset, exception_only, running_compiled_code)
            try:
                etype, value, traceback = self._get_exc_info(exc_tuple)
            except ValueError:
                return None
            if isinstance(value, getattr(builtins, "BaseExceptionGroup", ())) or not isinstance(value, BaseException):
                # IPython prints groups with the standard library, unfiltered: name and message only.
                capture.current.error(getattr(etype, "__name__", "Exception"), _text(value),
                                      [f"{getattr(etype, '__name__', 'Exception')}: {_text(value)}"])
                return None
            if not issubclass(etype, SyntaxError):
                traceback = traceback_filter(traceback)
                value.__cause__ = value.__context__ = None
                value.__suppress_context__ = True
                value = value.with_traceback(traceback)
            return super().showtraceback((etype, value, traceback), filename, 0, exception_only,
                                         running_compiled_code)

    config = Config()
    config.HistoryManager.enabled = False  # no history database in the scratch folder
    config.InteractiveShell.colors = "nocolor"
    config.InteractiveShell.xmode = "Context"
    shell = CapturingShell.instance(config=config)
    sys.stdout = CaptureStream(capture, "stdout")
    sys.stderr = CaptureStream(capture, "stderr")
    sys.stdin = io.StringIO("")
    return shell


# --------------------------------------------------------------------------------------------
# Serving the notebook's names


class PlainTextOnly:
    """While active, outputs are computed as text only: no figure is drawn into a PNG.

    For cells whose outputs nobody sees (a run again after a restart, the restricted run, the
    judge's read-only cells), drawing their figures would only cost time.
    """

    def __init__(self, shell):
        self.formatters = [formatter for mime, formatter in shell.display_formatter.formatters.items()
                           if mime != "text/plain"]
        self.enabled = []

    def __enter__(self):
        self.enabled = [formatter.enabled for formatter in self.formatters]
        for formatter in self.formatters:
            formatter.enabled = False
        return self

    def __exit__(self, *exc_info):
        for formatter, enabled in zip(self.formatters, self.enabled, strict=True):
            formatter.enabled = enabled


def _type_name(value) -> str:
    kind = type(value)
    module = getattr(kind, "__module__", "") or ""
    name = getattr(kind, "__qualname__", kind.__name__)
    return _text(name if module in ("builtins", "__main__", "") else f"{module}.{name}", 200)


def _kind(value, protocol) -> str | None:
    if isinstance(value, types.ModuleType):
        return None
    if protocol.is_keras_model(value):
        return "keras_model"
    if isinstance(value, type):
        return "other"
    if callable(value):
        return "function"
    numpy = sys.modules.get("numpy")
    if type(value) in (type(None), bool, int, float, complex, str, bytes, bytearray,
                       list, tuple, dict, set, frozenset):
        return "data"
    if numpy is not None and isinstance(value, (numpy.ndarray, numpy.generic, numpy.dtype)):
        return "data"
    return "other"


def _visible_names(shell) -> dict:
    hidden = shell.user_ns_hidden
    return {name: value for name, value in list(shell.user_ns.items())
            if isinstance(name, str) and name.isidentifier() and not name.startswith("_") and name not in hidden}


def _innermost_frame(traceback) -> dict | None:
    # The innermost frame outside the grader's own files: the student's line that raised.
    here = os.path.dirname(os.path.abspath(__file__))
    found = None
    while traceback is not None:
        if os.path.dirname(os.path.abspath(traceback.tb_frame.f_code.co_filename)) != here:
            found = traceback
        traceback = traceback.tb_next
    if found is None:
        return None
    code = found.tb_frame.f_code
    line = linecache.getline(code.co_filename, found.tb_lineno).strip()
    return {"function": _text(code.co_name, 200), "line": _text(line, 500)}


class Callback:
    """A function of the judge passed as an argument: calling it asks the judge to run it."""

    def __init__(self, runner: Runner, description: dict):
        self._runner = runner
        self._id = description.get("id")
        self.__name__ = self.__qualname__ = _text(description.get("name"), 100)

    def __repr__(self) -> str:
        return f"<function {self.__name__} of the grader>"

    def __call__(self, *args, **kwargs):
        return self._runner.run_callback(self._id, args, kwargs)


class Runner:
    """The request loop: one IPython shell, the channel, the protocol module."""

    def __init__(self, requests, replies, *, max_output_bytes: int = 100_000, protocol=None):
        self.protocol = protocol or load_protocol()
        self.requests = requests
        self.replies = replies
        self.max_output_bytes = max_output_bytes
        self.capture = Capture(max_output_bytes)
        self.shell = make_shell(self.capture)
        self.streams = (sys.stdout, sys.stderr)

    def send(self, header: dict, blobs=()) -> None:
        self.protocol.write_message(self.replies, header, blobs)

    def serve(self) -> None:
        """Answer requests until ``exit`` or the end of the channel."""
        self.send({"op": "ready", "pid": os.getpid()})
        while True:
            try:
                header, blobs = self.protocol.read_message(self.requests)
            except self.protocol.ChannelClosed:
                return
            if header.get("op") == "exit":
                return
            self.send(*self.handle(header, blobs))

    def handle(self, header: dict, blobs: list) -> tuple[dict, list]:
        """The reply to one request."""
        op = header.get("op")
        # Each request starts with the runner's own streams, whatever a cell did to them.
        sys.stdout, sys.stderr = self.streams
        handler = {"run_cell": self.run_cell, "manifest": self.manifest,
                   "get": self.get, "set": self.set, "call": self.call}.get(op)
        try:
            if handler is None:
                raise ValueError(f"unknown request {op!r}")
            return handler(header, blobs)
        except Exception as error:  # a broken request, or a value that could not be encoded
            return {"op": "error", "type": "RuntimeError", "builtin": "RuntimeError",
                    "message": f"the runner could not answer {_text(op, 50)!r}: "
                               f"{type(error).__name__}: {_text(error, 500)}"}, []

    def run_cell(self, header, blobs):
        source = header.get("source")
        if not isinstance(source, str):
            raise ValueError("run_cell needs the cell's source")
        before = {name: id(value) for name, value in _visible_names(self.shell).items()}
        collector = self.capture.start(int(header.get("max_output_bytes", self.max_output_bytes)))
        collector.execution_count = self.shell.execution_count
        started = time.perf_counter()
        if header.get("discard"):
            with PlainTextOnly(self.shell):
                result = self.shell.run_cell(source, store_history=True)
        else:
            result = self.shell.run_cell(source, store_history=True)
        seconds = time.perf_counter() - started
        after = _visible_names(self.shell)
        defined = sorted(name for name, value in after.items() if before.get(name) != id(value))
        outputs = collector.finish()
        self.capture.start(self.max_output_bytes)
        return {"op": "cell_done", "index": header.get("index"), "status": "ok" if result.success else "error",
                "outputs": outputs, "seconds": seconds, "defined": defined[:MAX_NAMES]}, []

    def manifest(self, header, blobs):
        names = []
        for name, value in _visible_names(self.shell).items():
            kind = _kind(value, self.protocol)
            if kind is not None:
                names.append({"name": name, "kind": kind, "type": _type_name(value)})
        return {"op": "manifest", "names": names[:MAX_NAMES]}, []

    def _lookup(self, name):
        if not isinstance(name, str) or name not in self.shell.user_ns:
            raise NameError(f"name {_text(name, 100)!r} is not defined", name=name if isinstance(name, str) else None)
        return self.shell.user_ns[name]

    def _error_reply(self, error, traceback, outputs) -> dict:
        return dict(self.protocol.describe_error(error), op="error", frame=_innermost_frame(traceback),
                    outputs=outputs)

    # Functions crossing the boundary: the judge's functions come as callbacks, the notebook's
    # own top-level functions by name.
    def _decode_function(self, description):
        if description.get("t") == "function":
            return Callback(self, description)
        function = self.shell.user_ns.get(description.get("name"))
        return function if callable(function) else self.protocol.UnsupportedValue("function")

    def _encode_callable(self, value):
        name = getattr(value, "__name__", None)
        if isinstance(name, str) and self.shell.user_ns.get(name) is value:
            return {"t": "student_function", "name": name}
        return None

    def decode(self, description, blobs):
        return self.protocol.decode_value(description, blobs, decode_function=self._decode_function)

    def encode(self, value, blobs=None):
        return self.protocol.encode_value(value, blobs, encode_callable=self._encode_callable)

    def get(self, header, blobs):
        try:
            value = self._lookup(header.get("name"))
        except NameError as error:
            return self._error_reply(error, None, []), []
        description, out_blobs = self.encode(value)
        limit = header.get("max_bytes")
        if isinstance(limit, int) and sum(len(blob) for blob in out_blobs) > limit:
            # Said instead of sent: a message over the coordinator's limit would end this sandbox.
            return self._error_reply(ValueError(f"{header.get('name')} is larger than {limit} bytes"), None, []), []
        return {"op": "value", "value": description}, out_blobs

    def set(self, header, blobs):
        name = header.get("name")
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError("set needs a name")
        value = self.decode(header.get("value"), blobs)
        if isinstance(value, self.protocol.UnsupportedValue):
            raise ValueError(f"{name} cannot be sent here")
        self.shell.user_ns[name] = value
        return {"op": "set_done", "name": name}, []

    def call(self, header, blobs):
        try:
            function = self._lookup(header.get("name"))
        except NameError as error:
            return self._error_reply(error, None, []), []
        args = self.decode(header.get("args", {"t": "list", "v": []}), blobs)
        kwargs = self.decode(header.get("kwargs", {"t": "dict", "v": []}), blobs)
        if not isinstance(args, (list, tuple)) or not isinstance(kwargs, dict) \
                or not all(isinstance(key, str) for key in kwargs):
            raise ValueError("call needs a list of arguments and a dict of keyword arguments")
        watched = list(enumerate(args)) + list(kwargs.items())
        snapshots = {key: self._snapshot(value) for key, value in watched}
        outer = self.capture.current
        collector = self.capture.start(self.max_output_bytes)
        try:
            result = function(*args, **kwargs)
        except BaseException as error:  # SystemExit and KeyboardInterrupt of student code too
            return self._error_reply(error, error.__traceback__, collector.finish()), []
        finally:
            self.capture.current = outer
        outputs = collector.finish()
        description, out_blobs = self.encode(result)
        mutated = []
        for key, value in watched:
            if snapshots[key] is not None and self._snapshot(value) != snapshots[key]:
                mutated.append({"arg": key, "value": self.encode(value, out_blobs)[0]})
        return {"op": "value", "value": description, "outputs": outputs, "mutated": mutated}, out_blobs

    def run_callback(self, callback_id, args, kwargs):
        """Ask the judge to run its function ``callback_id``; serve nested requests meanwhile."""
        description, blobs = self.encode(list(args))
        kwargs_description, _ = self.encode(dict(kwargs), blobs)
        self.send({"op": "callback", "id": callback_id, "args": description, "kwargs": kwargs_description}, blobs)
        while True:
            header, blobs = self.protocol.read_message(self.requests)
            op = header.get("op")
            if op == "callback_value":
                return self.decode(header.get("value"), blobs)
            if op == "callback_error":
                raise self.protocol.rebuild_error(header)
            if op == "exit":
                os._exit(0)
            self.send(*self.handle(header, blobs))

    def _snapshot(self, value):
        # What a mutable argument holds, to tell whether the call changed it in place.
        numpy = sys.modules.get("numpy")
        if numpy is not None and isinstance(value, numpy.ndarray):
            return ("ndarray", value.shape, value.dtype.str, value.tobytes())
        if type(value) in (list, dict, set, bytearray):
            description, blobs = self.encode(value)
            return (json.dumps(description, sort_keys=True, default=str), tuple(blobs))
        return None


def main() -> None:
    """Entry point inside the sandbox."""
    # The folder of this file is on sys.path as the script's folder: take it off, so student
    # code cannot import the grader's files by accident.
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [entry for entry in sys.path if os.path.abspath(entry or ".") != here]
    in_fd, out_fd = (int(fd) for fd in os.environ.get("CNN_COURSE_GRADING_CHANNEL", "3,4").split(","))
    requests = os.fdopen(in_fd, "rb", buffering=0)
    replies = os.fdopen(out_fd, "wb", buffering=0)
    max_output_bytes = int(os.environ.get("CNN_COURSE_GRADING_MAX_OUTPUT", "100000"))
    Runner(requests, replies, max_output_bytes=max_output_bytes).serve()
    sys.stdout.flush()
    os._exit(0)  # no atexit handlers of student code


if __name__ == "__main__":
    main()
