"""The judge (cnn_course.grading.judge), driven as a plain process by a stand-in coordinator.

The test plays the coordinator and the student sandbox at once: it answers the judge's
``get``/``call`` requests itself, so each rule of the judge is checked on its own, fast.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cnn_course.grading import protocol
from cnn_course.grading.protocol import Channel, decode_value, encode_value

JUDGE = Path(protocol.__file__).with_name("judge.py")
MARKER = "HIDDEN-b41d"

NOT_ANSWERED_HOOK = '''\
import linecache
import numpy as np


def _show_not_answered(shell, error_type, error, traceback, tb_offset=None):
    while traceback.tb_next is not None:
        traceback = traceback.tb_next
    line = linecache.getline(traceback.tb_frame.f_code.co_filename, traceback.tb_lineno).strip()
    if line == "raise NotImplementedError()" and traceback.tb_frame.f_code.co_name == "stub":
        error._render_traceback_ = lambda: ["Exercise 1 is not answered yet."]
    shell.showtraceback((error_type, error, traceback), tb_offset=tb_offset)


get_ipython().set_custom_exc((NotImplementedError,), _show_not_answered)
'''


def locked(grade_id, source):
    return {"grade_id": grade_id, "grade": False, "points": 0, "segments": [{"source": source, "hidden": False}]}


def grade_cell(grade_id, *segments, points=1):
    # segments: (source, hidden) pairs
    return {"grade_id": grade_id, "grade": True, "points": points,
            "segments": [{"source": source, "hidden": hidden} for source, hidden in segments]}


def judge(tmp_path, cells, manifest, student):
    """Run judge.py on ``cells``; ``student[name]`` answers requests: a value, or a callable
    ``(header, blobs, channel) -> (reply, blobs)``. Returns (messages, requests)."""
    request_read, request_write = os.pipe()
    reply_read, reply_write = os.pipe()
    env = {"PATH": os.environ.get("PATH", "/usr/bin"), "HOME": str(tmp_path), "TF_CPP_MIN_LOG_LEVEL": "2",
           "CNN_COURSE_GRADING_CHANNEL": f"{request_read},{reply_write}"}
    process = subprocess.Popen([sys.executable, str(JUDGE)], pass_fds=(request_read, reply_write), env=env,
                               cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(request_read)
    os.close(reply_write)
    channel = Channel(reply_read, request_write)
    messages, requests = [], []
    try:
        assert channel.receive(timeout=60)[0]["op"] == "ready"
        channel.send({"op": "judge", "cells": cells, "manifest": manifest, "max_output_bytes": 100_000}, timeout=30)
        while True:
            header, blobs = channel.receive(timeout=60)
            messages.append(header)
            if header["op"] == "done":
                break
            if header["op"] in ("call", "get"):
                requests.append((header["op"], header["name"]))
                answer = student[header["name"]]
                if callable(answer):
                    channel.send(*answer(header, blobs, channel), timeout=30)
                else:
                    description, reply_blobs = encode_value(answer)
                    channel.send({"op": "value", "value": description}, reply_blobs, timeout=30)
    finally:
        process.kill()
        process.wait(10)
        os.close(reply_read)
        os.close(request_write)
    return messages, requests


def grades(messages):
    return {message["grade_id"]: message for message in messages if message["op"] == "grade"}


def error_reply(builtin, message, function="f", line="raise"):
    return {"op": "error", "type": builtin, "builtin": builtin, "message": message, "name": None,
            "frame": {"function": function, "line": line}, "outputs": []}, []


def test_student_names_are_bound_unless_the_judge_defines_them(tmp_path):
    manifest = [{"name": "area", "kind": "function", "type": "function"},
                {"name": "helper", "kind": "function", "type": "function"},   # shadows the judge's helper
                {"name": "len", "kind": "function", "type": "function"},      # shadows a builtin
                {"name": "SIZE", "kind": "data", "type": "int"},
                {"name": "UNUSED", "kind": "data", "type": "int"},            # no judge cell mentions it
                {"name": "net", "kind": "other", "type": "Net"},
                {"name": "images", "kind": "data", "type": "numpy.ndarray"}]  # also loaded by a locked cell
    cells = [locked("setup", "def helper():\n    return 'judge'\n\nimages = [0] * 3\n"),
             grade_cell("check", ("assert helper() == 'judge' and len([1, 2]) == 2\n"
                                 "assert area(2, 3) == 6 and SIZE == 4 and images == [0] * 3\n", False)),
             grade_cell("other", ("net.layers", False))]

    def area(header, blobs, channel):
        args = decode_value(header["args"], blobs)
        return {"op": "value", "value": encode_value(args[0] * args[1])[0], "outputs": [], "mutated": []}, []

    messages, requests = judge(tmp_path, cells, manifest, {"area": area, "SIZE": 4})
    assert sorted(requests) == [("call", "area"), ("get", "SIZE")]
    result = grades(messages)
    assert result["check"]["points"] == 1 and result["check"]["hidden"] == "none"
    (error,) = result["other"]["visible_outputs"]
    assert result["other"]["points"] == 0
    assert error["ename"] == "RuntimeError" and "it is a Net, which cannot be passed" in error["evalue"]


def test_student_data_is_fetched_only_for_cells_that_mention_it(tmp_path):
    # The data set a later locked cell loads is never fetched from the student (it may be
    # hundreds of MB); the student's answer is fetched before the first cell that mentions it,
    # here a helper that reads it when called.
    manifest = [{"name": "x_train", "kind": "data", "type": "numpy.ndarray"},
                {"name": "answer", "kind": "data", "type": "int"}]
    cells = [locked("setup", "def read_answer():\n    return answer\n"),
             locked("data", "x_train = [1, 2, 3]\n"),
             grade_cell("check", ("assert read_answer() == 42 and x_train == [1, 2, 3]\n", False))]
    messages, requests = judge(tmp_path, cells, manifest, {"answer": 42, "x_train": "the student's copy"})
    assert requests == [("get", "answer")]
    assert grades(messages)["check"]["points"] == 1


def test_hidden_outputs_and_code_never_leave_the_judge(tmp_path):
    cells = [grade_cell("ex1", ("print('visible part')", False),
                       (f"print('{MARKER} output')\n"
                        f"def reference():\n    assert False, 'the reference disagrees'  # {MARKER} source\n", True),
                       ("x = 1", False), points=2),
             grade_cell("ex2", ("reference()", False)),
             grade_cell("ex3", (f"assert 1 == 2, '{MARKER} message'", True)),
             grade_cell("ex4", ("import sys\nprint('a warning', file=sys.stderr)", False))]
    messages, _ = judge(tmp_path, cells, [], {})
    assert MARKER not in json.dumps(messages)
    result = grades(messages)
    assert (result["ex1"]["points"], result["ex1"]["hidden"]) == (2, "passed")
    assert result["ex1"]["visible_outputs"] == [{"output_type": "stream", "name": "stdout", "text": "visible part\n"}]
    (error,) = result["ex2"]["visible_outputs"]
    assert (error["ename"], error["evalue"]) == ("AssertionError", "the reference disagrees")
    assert not any("reference disagrees" in line and "assert False" in line for line in error["traceback"]), \
        "the traceback should not show the hidden function's lines"
    assert (result["ex3"]["points"], result["ex3"]["hidden"], result["ex3"]["visible_outputs"]) == (0, "failed", [])
    assert result["ex4"]["points"] == 0, "a test cell that writes to stderr fails, as in nbgrader"


def test_student_errors_come_back_as_the_builtin_class_from_the_students_line(tmp_path):
    manifest = [{"name": "pad", "kind": "function", "type": "function"},
                {"name": "stub", "kind": "function", "type": "function"}]
    cells = [locked("setup", NOT_ANSWERED_HOOK),
             grade_cell("raises", ("try:\n    pad(-1)\nexcept ValueError as error:\n    assert 'negative' in str(error)\n"
                                  "else:\n    raise AssertionError('pad(-1) should raise ValueError')", True)),
             grade_cell("stub", ("stub()", False)),
             grade_cell("other", ("pad(1)", False))]
    student = {"pad": lambda *_: error_reply("ValueError", "padding cannot be negative", "pad", "raise ValueError(...)"),
               "stub": lambda *_: error_reply("NotImplementedError", "", "stub", "raise NotImplementedError()")}
    messages, _ = judge(tmp_path, cells, manifest, student)
    result = grades(messages)
    assert result["raises"]["points"] == 1 and result["raises"]["hidden"] == "passed"
    assert result["stub"]["visible_outputs"][0]["traceback"] == ["Exercise 1 is not answered yet."]
    (error,) = result["other"]["visible_outputs"]
    assert error["ename"] == "ValueError"
    assert any("raise ValueError(...)" in line for line in error["traceback"]), "the student's line is shown"
    assert not any("judge.py" in line or "protocol.py" in line for line in error["traceback"])


def test_functions_of_the_tests_are_called_back_and_in_place_changes_mirrored(tmp_path):
    manifest = [{"name": "apply", "kind": "function", "type": "function"},
                {"name": "zero_first", "kind": "function", "type": "function"}]
    cells = [locked("setup", "import numpy as np\n"),
             grade_cell("callback", ("calls = []\ndef square(t):\n    calls.append(t)\n    return t * t\n"
                                    "assert apply(square, 3) == 9 and calls == [3]", False)),
             grade_cell("mirror", ("x = np.ones(3)\nzero_first(x)\nassert x[0] == 0 and x[1] == 1", False))]

    def apply(header, blobs, channel):
        function, argument = decode_value(header["args"], blobs)
        assert isinstance(function, protocol.UnsupportedValue)  # the test cannot run it: it asks back
        callback = header["args"]["v"][0]
        channel.send({"op": "callback", "id": callback["id"], "args": encode_value([argument])[0]}, timeout=30)
        answer, answer_blobs = channel.receive(timeout=30)
        assert answer["op"] == "callback_value"
        return {"op": "value", "value": answer["value"], "outputs": [], "mutated": []}, answer_blobs

    def zero_first(header, blobs, channel):
        (array,) = decode_value(header["args"], blobs)
        array[0] = 0
        description, reply_blobs = encode_value(None)
        mutated = [{"arg": 0, "value": encode_value(array, reply_blobs)[0]}]
        return {"op": "value", "value": description, "outputs": [], "mutated": mutated}, reply_blobs

    messages, _ = judge(tmp_path, cells, manifest, {"apply": apply, "zero_first": zero_first})
    result = grades(messages)
    assert result["callback"]["points"] == 1, result["callback"]["visible_outputs"]
    assert result["mirror"]["points"] == 1, result["mirror"]["visible_outputs"]


@pytest.mark.parametrize("reply", [
    {"op": "value", "value": {"t": "ndarray", "blob": 3}},                 # refers to a missing attachment
    {"op": "value", "value": {"unsupported": "Sneaky"}},                   # not data
    {"op": "surprise"},
])
def test_broken_or_hostile_answers_fail_the_test_not_the_judge(tmp_path, reply):
    manifest = [{"name": "answer", "kind": "function", "type": "function"}]
    cells = [locked("setup", "import numpy as np"),
             grade_cell("uses", ("assert np.array_equal(answer(), [1, 2])", False)),
             grade_cell("after", ("assert 1 + 1 == 2", False))]
    messages, _ = judge(tmp_path, cells, manifest, {"answer": lambda *_: (reply, [])})
    result = grades(messages)
    assert result["uses"]["points"] == 0 and result["after"]["points"] == 1
