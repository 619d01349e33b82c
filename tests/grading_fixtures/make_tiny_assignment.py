"""Write the tiny assignment the grading tests use: ``tiny_source.ipynb`` and ``tiny_release.ipynb``.

Run ``python tests/grading_fixtures/make_tiny_assignment.py`` after changing this file; the
two notebooks are committed next to it. The assignment is purpose-made and quick: three NumPy
exercises (6 points), a locked set-up cell with a grading helper and an "Exercise N is not
answered yet" handler like the problem sets', visible checks and hidden tests. The hidden
tests contain :data:`HIDDEN_MARKER`, which must never appear in anything shown to a student.
The release is made here by the same text rules as nbgrader (solutions replaced by
``raise NotImplementedError()``, hidden tests removed), so no nbgrader run is needed.
"""

import re
import sys
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
HIDDEN_MARKER = "HIDDEN-7f3a9c"
POINTS = {"ex1-check": 1, "ex1-hidden": 2, "ex2-test": 1, "ex3-test": 2}

SETUP = '''\
import numpy as np

SCALE = 3  # a value of the assignment, used by the checks


def close_enough(got, expected):
    # Used by the checks and the hidden tests.
    got = np.asarray(got, dtype=float)
    return got.shape == np.shape(expected) and np.allclose(got, expected)


def _show_not_answered(shell, error_type, error, traceback, tb_offset=None):
    # Checks that run before an exercise is answered say so instead of showing a traceback.
    import linecache
    while traceback.tb_next is not None:
        traceback = traceback.tb_next
    code = traceback.tb_frame.f_code
    stub = linecache.getline(code.co_filename, traceback.tb_lineno).strip() == "raise NotImplementedError()"
    exercise = {"correlate_valid": 1, "derivative": 3}.get(code.co_name)
    if stub and exercise:
        error._render_traceback_ = lambda: [f"Exercise {exercise} is not answered yet."]
    shell.showtraceback((error_type, error, traceback), tb_offset=tb_offset)


get_ipython().set_custom_exc((NotImplementedError,), _show_not_answered)
'''

EX1_SOLUTION = '''\
def correlate_valid(x, w):
    """2-D cross-correlation of x with w, 'valid' positions only."""
    ### BEGIN SOLUTION
    x, w = np.asarray(x, dtype=float), np.asarray(w, dtype=float)
    if x.ndim != 2 or w.ndim != 2:
        raise ValueError(f"x and w must be 2-D, got shapes {x.shape} and {w.shape}")
    rows, cols = x.shape[0] - w.shape[0] + 1, x.shape[1] - w.shape[1] + 1
    out = np.zeros((rows, cols))
    for i in range(w.shape[0]):
        for j in range(w.shape[1]):
            out += w[i, j] * x[i:i + rows, j:j + cols]
    return out
    ### END SOLUTION
'''

EX1_CHECK = '''\
# Check Exercise 1 (1 point)
x = np.arange(9).reshape(3, 3)
got = correlate_valid(x, np.ones((2, 2)))
assert close_enough(got, [[8, 12], [20, 24]]), f"correlate_valid(x, ones) gave\\n{got}"
print("Exercise 1: check passed")
'''

EX1_HIDDEN = f'''\
# Hidden tests for Exercise 1 (2 points)
### BEGIN HIDDEN TESTS
# {HIDDEN_MARKER}: other shapes against a plain loop, and bad input
rng = np.random.default_rng(5)
for shape, kernel_shape in [((5, 7), (3, 2)), ((4, 4), (1, 1)), ((6, 3), (6, 3))]:
    image, kernel = rng.normal(size=shape), rng.normal(size=kernel_shape)
    expected = np.array([[np.sum(image[r:r + kernel_shape[0], c:c + kernel_shape[1]] * kernel)
                          for c in range(shape[1] - kernel_shape[1] + 1)]
                         for r in range(shape[0] - kernel_shape[0] + 1)])
    assert close_enough(correlate_valid(image, kernel), expected), "{HIDDEN_MARKER} wrong values"
try:
    correlate_valid(np.ones(4), np.ones((1, 1)))
except ValueError:
    pass
else:
    raise AssertionError("{HIDDEN_MARKER} a 1-D image should raise ValueError")
### END HIDDEN TESTS
'''

EX2_SOLUTION = '''\
# Exercise 2: the kernel that gives the difference of neighbouring columns, x[:, j + 1] - x[:, j]
### BEGIN SOLUTION
EDGE_KERNEL = np.array([[-1.0, 1.0]])
### END SOLUTION
'''

EX2_TEST = f'''\
# Check Exercise 2 (1 point)
kernel_shape = np.shape(EDGE_KERNEL)  # noqa: F821 (defined by the answer above)
assert kernel_shape == (1, 2), f"EDGE_KERNEL should have shape (1, 2), it has {{kernel_shape}}"
### BEGIN HIDDEN TESTS
assert np.allclose(EDGE_KERNEL, [[-1, 1]]), "{HIDDEN_MARKER} wrong kernel"
### END HIDDEN TESTS
print("Exercise 2: check passed")
'''

EX3_SOLUTION = '''\
def derivative(f, x, eps=1e-5):
    """Central-difference estimate of f'(x) for a function f of one number."""
    ### BEGIN SOLUTION
    return (f(x + eps) - f(x - eps)) / (2 * eps)
    ### END SOLUTION
'''

EX3_TEST = f'''\
# Check Exercise 3 (2 points)
slope = derivative(lambda t: SCALE * t * t, 2.0)
assert abs(slope - 12) < 1e-4, f"the derivative of 3t² at 2 is 12, got {{slope}}"
### BEGIN HIDDEN TESTS
calls = []


def cubic(t):  # {HIDDEN_MARKER}
    calls.append(t)
    return t ** 3


assert abs(derivative(cubic, 1.0) - 3) < 1e-4 and len(calls) >= 2, "{HIDDEN_MARKER} derivative of t³"
### END HIDDEN TESTS
print("Exercise 3: check passed")
'''


def nbgrader(grade_id, *, solution=False, grade=False, locked=False):
    metadata = {"grade": grade, "grade_id": grade_id, "locked": locked, "schema_version": 3, "solution": solution}
    if grade:
        metadata["points"] = POINTS[grade_id]
    return {"nbgrader": metadata}


def source_notebook():
    new_code, new_markdown = nbformat.v4.new_code_cell, nbformat.v4.new_markdown_cell
    cells = [
        new_markdown("# A tiny assignment\n\nThree exercises with NumPy (6 points).",
                     metadata=nbgrader("intro", locked=True)),
        new_code(SETUP, metadata=nbgrader("setup", locked=True)),
        new_markdown("## Exercise 1: `correlate_valid(x, w)`", metadata=nbgrader("ex1-text", locked=True)),
        new_code(EX1_SOLUTION, metadata=nbgrader("ex1-solution", solution=True)),
        new_code(EX1_CHECK, metadata=nbgrader("ex1-check", grade=True, locked=True)),
        new_code(EX1_HIDDEN, metadata=nbgrader("ex1-hidden", grade=True, locked=True)),
        new_code(EX2_SOLUTION, metadata=nbgrader("ex2-solution", solution=True)),
        new_code(EX2_TEST, metadata=nbgrader("ex2-test", grade=True, locked=True)),
        new_code(EX3_SOLUTION, metadata=nbgrader("ex3-solution", solution=True)),
        new_code(EX3_TEST, metadata=nbgrader("ex3-test", grade=True, locked=True)),
    ]
    for cell in cells:
        cell.id = cell.metadata["nbgrader"]["grade_id"]
    notebook = nbformat.v4.new_notebook(cells=cells)
    notebook.metadata = {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                         "cnn_course_grading": {"cell_timeout": 30, "notebook_timeout": 90, "call_timeout": 5,
                                                "forbidden_modules": ["scipy"]}}
    return notebook


def release_notebook(source):
    release = nbformat.from_dict(source)
    for cell in release.cells:
        if cell.cell_type != "code":
            continue
        cell.source = re.sub(r"( *)### BEGIN SOLUTION\n.*?### END SOLUTION\n",
                             lambda match: f"{match.group(1)}# YOUR CODE HERE\n{match.group(1)}raise NotImplementedError()\n",
                             cell.source, flags=re.S)
        cell.source = re.sub(r"### BEGIN HIDDEN TESTS\n.*?### END HIDDEN TESTS\n", "", cell.source, flags=re.S)
    return release


def main():
    source = source_notebook()
    nbformat.validate(source)
    release = release_notebook(source)
    nbformat.validate(release)
    assert HIDDEN_MARKER not in nbformat.writes(release)
    nbformat.write(source, HERE / "tiny_source.ipynb")
    nbformat.write(release, HERE / "tiny_release.ipynb")
    print("wrote", HERE / "tiny_source.ipynb", "and", HERE / "tiny_release.ipynb", file=sys.stderr)


if __name__ == "__main__":
    main()
