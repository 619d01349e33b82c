"""Reference values for hidden tests that do not depend on the student, computed once per worker.

Some hidden tests compare a student's answer with what a library computes for the same fixed
inputs, e.g. Keras' ``Conv2D`` output for seeded random arrays. Starting TensorFlow for that
takes seconds, and the answer is the same for every student. An assignment's author writes
such a computation as a *reference script*: Python source run in a fresh interpreter whose only
input is the bytes given to it on its standard input, and whose answer is what it writes to
its standard output. Nothing else reaches the script (no student value, no file of the
notebook), so the same script with the same input gives the same output, and a grader may
keep the answer:

- anywhere (plain ``nbgrader autograde``, a student's own machine) :func:`run_reference_script`
  runs the script in a subprocess each time;
- in the course's grader (``python -m cnn_course.grading autograde``) the judge asks the
  coordinator, which keeps each answer for the rest of the grading run, per worker process.
  A missing answer is computed in a new sandbox of its own that holds no student data, and
  only its output is kept: a judge (which handles student data) can ask for a script, but
  cannot write an answer another student's tests would read.

Examples
--------
>>> from cnn_course.grading.reference_scripts import run_reference_script
>>> run_reference_script("import sys; print(sys.stdin.read().upper())", b"conv")
b'CONV\\n'
"""

from __future__ import annotations

import subprocess
import sys

#: Name under which the course's judge registers the function that asks its coordinator.
GRADER_HOOK = "_cnn_course_grading_reference_scripts"
#: Longest script accepted (characters) and largest input (bytes).
MAX_SCRIPT_CHARACTERS = 1_000_000
MAX_INPUT_BYTES = 64 * 1024**2


def check_request(script, data, timeout) -> None:
    """Raise ``TypeError``/``ValueError`` saying what is wrong with a reference-script request."""
    if not isinstance(script, str):
        raise TypeError(f"script must be Python source as a str, got {type(script).__name__}")
    if len(script) > MAX_SCRIPT_CHARACTERS:
        raise ValueError(f"script has {len(script):,} characters; at most {MAX_SCRIPT_CHARACTERS:,} are allowed")
    if not isinstance(data, (bytes, bytearray)):
        raise TypeError(f"data must be bytes (the script's standard input), got {type(data).__name__}; "
                        "encode text with .encode() and arrays with numpy.savez into io.BytesIO")
    if len(data) > MAX_INPUT_BYTES:
        raise ValueError(f"data has {len(data):,} bytes; at most {MAX_INPUT_BYTES:,} are allowed")
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")


def run_in_subprocess(script: str, data: bytes, timeout: float, python: str | None = None) -> bytes:
    """Run ``script`` with ``python -c`` here, ``data`` on its stdin; return its stdout.

    Raises ``RuntimeError`` (exit status and the end of its stderr) if it fails and
    ``TimeoutError`` if it runs longer than ``timeout`` seconds.
    """
    try:
        finished = subprocess.run([python or sys.executable, "-c", script], input=bytes(data),
                                  capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise TimeoutError(f"the reference script did not finish within {timeout:g} s") from None
    if finished.returncode != 0:
        tail = finished.stderr.decode("utf-8", "replace").strip()[-2000:]
        raise RuntimeError(f"the reference script failed (exit status {finished.returncode}):\n{tail}")
    return finished.stdout


def run_reference_script(script: str, data: bytes = b"", *, timeout: float = 300.0) -> bytes:
    """Run ``script`` in a fresh Python interpreter with ``data`` on its standard input.

    Use it in hidden tests for a value that does not depend on the student (see the module
    docstring): the course's grader then computes it once per worker instead of once per
    submission. The script must read everything it needs from its standard input (and
    nothing from files or the environment), write its answer to its standard output, and
    give the same answer for the same input (set seeds if it draws random numbers).

    Parameters
    ----------
    script : str
        Python source, run as ``python -c script``.
    data : bytes
        Its standard input.
    timeout : float
        Seconds it may run.

    Returns
    -------
    bytes
        What it wrote to its standard output (its standard error is not shown).

    Raises
    ------
    RuntimeError
        The script failed (its exit status and the end of its standard error are in the message).
    TimeoutError
        It ran longer than ``timeout``.

    Examples
    --------
    >>> import json
    >>> script = "import json, sys; print(json.dumps(sum(json.load(sys.stdin))))"
    >>> json.loads(run_reference_script(script, json.dumps([1, 2, 3]).encode()))
    6
    """
    check_request(script, data, timeout)
    grader = sys.modules.get(GRADER_HOOK)
    if grader is not None:
        return grader.run_reference_script(script, bytes(data), timeout)
    return run_in_subprocess(script, bytes(data), timeout)
