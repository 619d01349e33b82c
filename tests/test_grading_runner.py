"""The student-side runner (cnn_course.grading.runner), driven through its channel as a plain process.

These tests talk to ``runner.py`` the way the coordinator does, without a sandbox (the
sandbox is tested in test_grading_sandbox.py, the whole chain in test_grading_pipeline.py).
"""

import base64
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from cnn_course.grading import protocol
from cnn_course.grading.protocol import Channel, decode_value, encode_value

RUNNER = Path(protocol.__file__).with_name("runner.py")


class RunnerProcess:
    """runner.py in a subprocess, with the channel on two pipes."""

    def __init__(self, tmp_path, max_output_bytes=100_000):
        request_read, self._request_write = os.pipe()
        self._reply_read, reply_write = os.pipe()
        env = {"PATH": os.environ.get("PATH", "/usr/bin"), "HOME": str(tmp_path), "TF_CPP_MIN_LOG_LEVEL": "2",
               "CNN_COURSE_GRADING_CHANNEL": f"{request_read},{reply_write}",
               "CNN_COURSE_GRADING_MAX_OUTPUT": str(max_output_bytes)}
        self.process = subprocess.Popen([sys.executable, str(RUNNER)], pass_fds=(request_read, reply_write), env=env,
                                        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(request_read)
        os.close(reply_write)
        self.channel = Channel(self._reply_read, self._request_write)
        header, _ = self.channel.receive(timeout=60)
        assert header["op"] == "ready"

    def run(self, source, index=0):
        header, _ = self.channel.request({"op": "run_cell", "index": index, "source": source, "timeout": 30}, timeout=60)
        assert header["op"] == "cell_done" and header["index"] == index
        return header

    def call(self, name, *args, **kwargs):
        description, blobs = encode_value(list(args))
        kwargs_description, _ = encode_value(kwargs, blobs)
        return self.channel.request({"op": "call", "name": name, "args": description, "kwargs": kwargs_description},
                                    blobs, timeout=60)

    def close(self):
        self.process.kill()
        self.process.wait(10)
        os.close(self._reply_read)
        os.close(self._request_write)


@pytest.fixture
def runner(tmp_path):
    process = RunnerProcess(tmp_path)
    yield process
    process.close()


def texts(outputs, name="stdout"):
    return "".join(output["text"] for output in outputs if output["output_type"] == "stream" and output["name"] == name)


def test_cells_give_nbformat_outputs_of_each_kind(runner):
    done = runner.run("import numpy as np\nprint('hello')\nimport sys; print('careful', file=sys.stderr)\nnp.arange(3)")
    assert done["status"] == "ok" and done["defined"] == ["np", "sys"]
    assert texts(done["outputs"]) == "hello\n" and texts(done["outputs"], "stderr") == "careful\n"
    result = [output for output in done["outputs"] if output["output_type"] == "execute_result"]
    assert result and result[0]["data"]["text/plain"] == "array([0, 1, 2])"

    done = runner.run("import matplotlib.pyplot as plt\nplt.plot([1, 2, 1])\nplt.title('a figure')\nplt.show()", 1)
    images = [output["data"]["image/png"] for output in done["outputs"] if output["output_type"] == "display_data"]
    assert len(images) == 1 and base64.b64decode(images[0]).startswith(b"\x89PNG")

    # A cell run again only to restore state (outputs thrown away) does not draw its figure.
    header, _ = runner.channel.request({"op": "run_cell", "index": 1, "source": "plt.plot([3, 1])\nplt.show()",
                                        "timeout": 30, "discard": True}, timeout=60)
    kinds = [sorted(output.get("data", {})) for output in header["outputs"]]
    assert header["status"] == "ok" and kinds == [["text/plain"]], kinds
    done = runner.run("plt.plot([1, 3])\nplt.show()", 1)
    assert [sorted(output["data"]) for output in done["outputs"]] == [["image/png", "text/plain"]]

    done = runner.run("def broken():\n    return 1 / 0\nbroken()", 2)
    assert done["status"] == "error"
    (error,) = [output for output in done["outputs"] if output["output_type"] == "error"]
    assert error["ename"] == "ZeroDivisionError" and error["evalue"] == "division by zero"
    assert any("return 1 / 0" in line for line in error["traceback"])

    assert runner.run("x = (", 3)["status"] == "error"


def test_output_is_capped_with_a_visible_note(tmp_path):
    process = RunnerProcess(tmp_path, max_output_bytes=2_000)
    try:
        done = process.run("for i in range(10_000):\n    print('a line of output', i)")
        text = texts(done["outputs"])
        assert done["status"] == "ok"
        assert len(text.encode()) < 2_500 and "[output truncated]" in text
        # The next cell starts with a fresh budget.
        assert texts(process.run("print('next')", 1)["outputs"]) == "next\n"
        # A cell that printed too much and then failed still shows its error.
        done = process.run("print('x' * 5_000)\nraise ValueError('after the flood')", 2)
        assert done["outputs"][-1]["evalue"] == "after the flood"
    finally:
        process.close()


def test_manifest_names_kinds_and_leaves_out_modules_and_private_names(runner):
    runner.run("import numpy as np\nimport os\n"
               "def add(a, b):\n    return a + b\n"
               "KERNEL = np.ones((2, 2))\nsizes = [1, 2]\n_helper = 3\n"
               "class Net:\n    pass\nnet = Net()\n")
    header, _ = runner.channel.request({"op": "manifest"}, timeout=30)
    kinds = {entry["name"]: entry["kind"] for entry in header["names"]}
    assert kinds == {"add": "function", "KERNEL": "data", "sizes": "data", "Net": "other", "net": "other"}


def test_calls_return_values_errors_and_changes_to_arguments(runner):
    runner.run("import numpy as np\n"
               "class ShapeError(ValueError):\n    pass\n"
               "def scale(x, factor=2):\n    print('scaling')\n    x *= factor\n    return x.sum()\n"
               "def strict(x):\n    if np.ndim(x) != 2:\n        raise ShapeError(f'expected 2-D, got {np.ndim(x)}-D')\n"
               "def stub():\n    raise NotImplementedError()\n")
    array = np.arange(4.0)
    header, blobs = runner.call("scale", array, factor=3)
    assert header["op"] == "value" and decode_value(header["value"], blobs) == 18.0
    assert texts(header["outputs"]) == "scaling\n"
    (change,) = header["mutated"]
    assert change["arg"] == 0 and np.array_equal(decode_value(change["value"], blobs), array * 3)

    header, _ = runner.call("strict", [1, 2])
    assert (header["op"], header["type"], header["builtin"]) == ("error", "ShapeError", "ValueError")
    assert header["message"] == "expected 2-D, got 1-D"
    assert header["frame"] == {"function": "strict", "line": "raise ShapeError(f'expected 2-D, got {np.ndim(x)}-D')"}

    header, _ = runner.call("stub")
    assert header["builtin"] == "NotImplementedError" and header["frame"]["line"] == "raise NotImplementedError()"

    header, _ = runner.call("missing")
    assert (header["type"], header["name"]) == ("NameError", "missing")


def test_values_are_sent_set_and_refused_when_over_a_size_limit(runner):
    runner.run("import numpy as np\nphoto = np.arange(12.0).reshape(3, 4)\nbig = np.zeros(100_000)\n")
    header, blobs = runner.channel.request({"op": "get", "name": "photo", "max_bytes": 10_000}, timeout=30)
    assert header["op"] == "value"
    photo = decode_value(header["value"], blobs)
    # Over the limit the runner says so rather than sending 800 kB.
    header, blobs = runner.channel.request({"op": "get", "name": "big", "max_bytes": 10_000}, timeout=30)
    assert (header["op"], header["type"], blobs) == ("error", "ValueError", [])
    assert "larger than 10000 bytes" in header["message"]
    # What one run made can be bound in another (the restricted run gets the set-up's photo).
    description, blobs = encode_value(photo * 2)
    header, _ = runner.channel.request({"op": "set", "name": "copied", "value": description}, blobs, timeout=30)
    assert header == {"op": "set_done", "name": "copied"}
    assert runner.run("assert copied[2, 3] == 22.0 and copied.shape == (3, 4)")["status"] == "ok"
    header, _ = runner.channel.request({"op": "set", "name": "not a name", "value": description}, blobs, timeout=30)
    assert header["op"] == "error" and "set needs a name" in header["message"]


def test_values_the_judge_cannot_use_arrive_as_unsupported(runner):
    runner.run("def make_generator():\n    return (i for i in range(3))\n")
    header, blobs = runner.call("make_generator")
    value = decode_value(header["value"], blobs)
    assert isinstance(value, protocol.UnsupportedValue) and value.type_name == "generator"


def test_a_function_of_the_judge_passed_as_argument_is_called_back(runner):
    runner.run("def twice(f, x):\n    return f(f(x))\n")
    # What the judge sends for its own function `inc` as the first argument.
    description = {"t": "list", "v": [{"t": "function", "id": 7, "name": "inc"}, 1]}
    runner.channel.send({"op": "call", "name": "twice", "args": description}, timeout=30)
    seen = []
    while True:
        header, blobs = runner.channel.receive(timeout=30)
        if header["op"] != "callback":
            break
        assert header["id"] == 7
        (argument,) = decode_value(header["args"], blobs)
        seen.append(argument)
        runner.channel.send({"op": "callback_value", "value": encode_value(argument + 1)[0]}, timeout=30)
    assert header["op"] == "value" and decode_value(header["value"], blobs) == 3 and seen == [1, 2]


def test_a_notebook_that_breaks_its_own_runner_only_hurts_itself(runner):
    # Student code runs in the runner's process: it may replace its streams or the shell's
    # hooks. The runner keeps answering; what it sends is data the coordinator checks anyway.
    assert runner.run("import sys\nsys.stdout = None\nprint('lost')")["status"] == "ok"
    assert texts(runner.run("print('back')", 1)["outputs"]) == "back\n"
    assert runner.run("raise SystemExit(3)", 2)["status"] == "error"
    header, _ = runner.channel.request({"op": "no such request"}, timeout=30)
    assert header["op"] == "error" and "no such request" in header["message"]
