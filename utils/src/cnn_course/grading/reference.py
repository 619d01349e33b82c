"""Runs one reference script of an assignment's hidden tests in a sandbox of its own.

Started as ``python <folder>/reference.py`` inside a sandbox that holds no student data (see
``cnn_course.grading.reference_scripts``). It sends ``ready``, receives ``run {script,
timeout}`` with the script's standard input as its one blob, runs the script exactly as
:func:`~cnn_course.grading.reference_scripts.run_reference_script` does outside the grader
(``python -c script`` in a subprocess) and replies ``output`` with the script's standard
output as its one blob, or ``failed {type, message}``. The coordinator keeps the output for
every later request with the same script and input.
"""

from __future__ import annotations

import importlib.util
import os
import sys


def _load_protocol():
    name = "_cnn_course_grading_protocol"
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "protocol.py")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def main() -> None:
    """Entry point inside the reference sandbox."""
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [entry for entry in sys.path if os.path.abspath(entry or ".") != here]
    protocol = _load_protocol()
    from cnn_course.grading.reference_scripts import check_request, run_in_subprocess

    in_fd, out_fd = (int(fd) for fd in os.environ.get("CNN_COURSE_GRADING_CHANNEL", "3,4").split(","))
    requests = os.fdopen(in_fd, "rb", buffering=0)
    replies = os.fdopen(out_fd, "wb", buffering=0)
    protocol.write_message(replies, {"op": "ready", "pid": os.getpid()})
    header, blobs = protocol.read_message(requests)
    try:
        if header.get("op") != "run" or len(blobs) != 1:
            raise ValueError("the reference sandbox expected one script and its input")
        script, data, timeout = header.get("script"), blobs[0], header.get("timeout")
        check_request(script, data, timeout)
        output = run_in_subprocess(script, data, timeout)
    except Exception as error:
        protocol.write_message(replies, {"op": "failed", "type": type(error).__name__, "message": str(error)[:4000]})
    else:
        protocol.write_message(replies, {"op": "output"}, [output])
    os._exit(0)


if __name__ == "__main__":
    main()
