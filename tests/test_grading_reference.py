"""Reference scripts of hidden tests (cnn_course.grading.reference_scripts): run anywhere, kept by the grader.

The grader tests change the tiny assignment's hidden test of Exercise 2 so that it gets the
expected kernel from a reference script, and count how often the coordinator starts the
reference sandbox across several submissions graded by one process.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import os
import sys
from pathlib import Path

import nbformat
import pytest
from cnn_course.grading import judge as judge_module
from cnn_course.grading import pipeline
from cnn_course.grading.pipeline import grade_notebook, local_course_paths, sandbox_factory
from cnn_course.grading.plan import make_plan
from cnn_course.grading.reference_scripts import GRADER_HOOK, run_reference_script
from conftest import require_sandbox
from test_grading_pipeline import RELEASE, SOLUTIONS, SOURCE, submission

ECHO_JSON = "import json, sys; print(json.dumps(json.load(sys.stdin)))"


# --------------------------------------------------------------------------------------------
# Outside the grader: a subprocess, every time


def test_a_script_gets_its_input_and_returns_its_output():
    assert run_reference_script(ECHO_JSON, json.dumps({"a": [1, 2]}).encode()) == b'{"a": [1, 2]}\n'
    assert run_reference_script("print('no input')") == b"no input\n"


def test_a_script_runs_in_a_fresh_interpreter_that_sees_none_of_the_callers_names():
    secret = "only-in-the-caller"  # noqa: F841 (the script must not see it)
    output = run_reference_script("print('secret' in globals(), __name__)")
    assert output == b"False __main__\n"


def test_a_failing_script_raises_with_its_exit_status_and_stderr():
    with pytest.raises(RuntimeError, match=r"exit status 3[\s\S]*bad input"):
        run_reference_script("import sys; sys.stderr.write('bad input'); sys.exit(3)")


def test_a_slow_script_raises_timeout_error():
    with pytest.raises(TimeoutError, match="did not finish within 0.5 s"):
        run_reference_script("import time; time.sleep(30)", timeout=0.5)


@pytest.mark.parametrize("script, data, timeout, error, message", [
    (b"print(1)", b"", 10, TypeError, "script must be Python source as a str, got bytes"),
    ("print(1)", "text", 10, TypeError, r"data must be bytes .* got str; encode text with \.encode\(\)"),
    ("print(1)", b"", 0, ValueError, "timeout must be a positive number of seconds, got 0"),
    ("print(1)", b"", True, ValueError, "timeout must be a positive number"),
])
def test_bad_requests_say_what_was_expected(script, data, timeout, error, message):
    with pytest.raises(error, match=message):
        run_reference_script(script, data, timeout=timeout)


def test_the_judge_registers_itself_under_the_name_the_module_looks_for():
    assert judge_module.REFERENCE_HOOK == GRADER_HOOK


def test_inside_the_judge_the_request_goes_to_the_grader(monkeypatch):
    asked = []

    class Grader:
        @staticmethod
        def run_reference_script(script, data, timeout):
            asked.append((script, data, timeout))
            return b"from the grader"

    monkeypatch.setitem(sys.modules, GRADER_HOOK, Grader)
    assert run_reference_script("print(1)", bytearray(b"in"), timeout=7) == b"from the grader"
    assert asked == [("print(1)", b"in", 7)]


# --------------------------------------------------------------------------------------------
# In the grader: kept per process, computed in a sandbox of its own

REFERENCE_TEST = '''
from cnn_course.grading.reference_scripts import run_reference_script

# The expected kernel comes from a reference script (the same for every student).
expected = json.loads(run_reference_script(
    "import json, sys; print(json.dumps([[-x for x in json.load(sys.stdin)], [1.0]]))", json.dumps([1.0]).encode()))
assert np.allclose(EDGE_KERNEL, [expected[0] + expected[1]]), "wrong kernel"
'''


def source_with_reference_test(test: str):
    """The tiny assignment's source whose hidden test of Exercise 2 is ``test``."""
    notebook = nbformat.from_dict(json.loads(json.dumps(SOURCE)))
    cell = next(cell for cell in notebook.cells if cell.id == "ex2-test")
    before, _, rest = cell.source.partition("### BEGIN HIDDEN TESTS\n")
    _, _, after = rest.partition("### END HIDDEN TESTS\n")
    cell.source = f"{before}### BEGIN HIDDEN TESTS\nimport json\n{test}\n### END HIDDEN TESTS\n{after}"
    return notebook


class CountingFactory:
    """The sandbox factory, counting the reference sandboxes it starts."""

    def __init__(self):
        self.factory = sandbox_factory()
        self.reference_starts = 0

    def __call__(self, **kwargs):
        sandbox = self.factory(**kwargs)
        start = sandbox.start

        def counting_start(command, **start_kwargs):
            if any(str(part).endswith("/reference.py") for part in command):
                self.reference_starts += 1
            return start(command, **start_kwargs)

        sandbox.start = counting_start
        return sandbox


def grade_with(source, notebook: bytes, factory):
    plan = make_plan(notebook, source, RELEASE, notebook="tiny")
    plan.config = dataclasses.replace(plan.config, notebook_timeout=120, cell_timeout=60)
    return grade_notebook(plan, sandbox_factory=factory, course_paths=local_course_paths(plan.config))


@pytest.fixture
def fresh_outputs():
    pipeline.REFERENCE_OUTPUTS.clear()
    yield pipeline.REFERENCE_OUTPUTS
    pipeline.REFERENCE_OUTPUTS.clear()


def test_a_reference_script_runs_once_for_many_submissions(fresh_outputs):
    require_sandbox()
    source, factory = source_with_reference_test(REFERENCE_TEST), CountingFactory()
    right = submission(SOLUTIONS)
    wrong = submission({"ex2-solution": SOLUTIONS["ex2-solution"].replace("[[-1.0, 1.0]]", "[[1.0, -1.0]]")})
    results = [grade_with(source, notebook, factory) for notebook in (right, wrong, right)]
    ex2 = [next(g.points for g in result.grades if g.grade_id == "ex2-test") for result in results]
    assert ex2 == [1.0, 0.0, 1.0]
    assert factory.reference_starts == 1 and fresh_outputs.computed == 1
    assert all(result.events == [] for result in results)


def test_workers_grading_at_the_same_time_compute_a_reference_script_once(fresh_outputs):
    require_sandbox()
    slow = REFERENCE_TEST.replace('"import json, sys; print', '"import json, sys, time; time.sleep(1); print')
    assert slow != REFERENCE_TEST
    source, factory = source_with_reference_test(slow), CountingFactory()
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda _: grade_with(source, submission(SOLUTIONS), factory), range(2)))
    assert [result.score for result in results] == [6, 6]
    assert factory.reference_starts == 1 and fresh_outputs.computed == 1


def test_a_failing_reference_script_fails_the_test_and_is_not_kept(fresh_outputs):
    require_sandbox()
    failing = ("from cnn_course.grading.reference_scripts import run_reference_script\n"
               'run_reference_script("import sys; sys.exit(4)")\n')
    source, factory = source_with_reference_test(failing), CountingFactory()
    results = [grade_with(source, submission(SOLUTIONS), factory) for _ in range(2)]
    assert [next(g.points for g in result.grades if g.grade_id == "ex2-test") for result in results] == [0.0, 0.0]
    assert factory.reference_starts == 2 and fresh_outputs.computed == 0


def test_the_reference_sandbox_sees_no_notebook_and_no_course_files(fresh_outputs):
    require_sandbox()
    solutions = Path(__file__).resolve().parents[1] / "solutions"
    assert solutions.is_dir()
    probe = f'''
from cnn_course.grading.reference_scripts import run_reference_script
seen = json.loads(run_reference_script("""
import json, os
print(json.dumps({{"files": sorted(os.listdir(".")), "course": os.path.exists({str(solutions)!r})}}))
"""))
assert seen["course"] is False and not any(name.endswith(".ipynb") for name in seen["files"]), seen
'''
    result = grade_with(source_with_reference_test(probe), submission(SOLUTIONS), CountingFactory())
    assert next(g.points for g in result.grades if g.grade_id == "ex2-test") == 1.0, result


def test_outputs_are_keyed_by_interpreter_script_and_input():
    key = pipeline.ReferenceOutputs.key
    assert key("py", "s", b"d") == key("py", "s", b"d")
    assert len({key("py", "s", b"d"), key("py", "s", b"e"), key("py", "t", b"d"), key("python", "s", b"d"),
                key("py", "sd", b""), key("pys", "", b"d")}) == 6


def test_the_kept_outputs_stop_growing_at_their_limit():
    outputs = pipeline.ReferenceOutputs(max_bytes=10)
    outputs.keep("a", b"12345678")
    outputs.keep("b", b"12345")  # over the limit: computed, not kept
    assert outputs.get("a") == b"12345678" and outputs.get("b") is None and outputs.computed == 2


def test_the_tool_files_include_the_reference_runner():
    assert "reference.py" in pipeline._TOOL_FILES
    assert os.path.exists(os.path.join(os.path.dirname(pipeline.__file__), "reference.py"))
