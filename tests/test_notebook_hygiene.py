"""Committed notebooks are valid nbformat 4 with their outputs cleared, and small;
the problem sets' messages fit in JupyterLab's output area."""

from __future__ import annotations

import ast

import nbformat
import pytest
from notebooks import REPO_ROOT, find_notebooks

NOTEBOOKS = find_notebooks()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[str(p.relative_to(REPO_ROOT)) for p in NOTEBOOKS])
def test_notebook_is_valid_and_clean(path):
    notebook = nbformat.read(path, as_version=nbformat.NO_CONVERT)
    assert notebook.nbformat == 4, f"{path.name} is nbformat {notebook.nbformat}, expected 4"
    nbformat.validate(notebook)
    dirty = [
        index for index, cell in enumerate(notebook.cells)
        if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None)
    ]
    assert not dirty, (
        f"{path.relative_to(REPO_ROOT)}: cells {dirty} still have outputs; clear them with "
        f"`jupyter nbconvert --clear-output --inplace {path.relative_to(REPO_ROOT)}`"
    )


def test_notebook_files_are_small():
    too_big = [str(p.relative_to(REPO_ROOT)) for p in NOTEBOOKS if p.stat().st_size > 200_000]
    assert not too_big, f"notebooks over 200 kB (embedded images or outputs?): {too_big}"


# --- messages of the problem sets --------------------------------------------------------
# JupyterLab does not wrap tracebacks, so a long assertion message ends behind a scrollbar.
# The assertion messages, raised errors and printed lines of the locked cells of every problem
# set (checks, hidden tests, helpers) must fit in MAX_COLUMNS, counting "AssertionError: " in
# front of the first line; break them with \n. A formatted value {...} counts as
# VALUE_COLUMNS; tests/test_nbgrader_roundtrip.py checks the real outputs of the graded runs.
MAX_COLUMNS = 90
VALUE_COLUMNS = 6
ASSIGNMENT_NOTEBOOKS = find_notebooks("solutions")


def _message_text(node):
    """The text of a string expression, with VALUE_COLUMNS characters per formatted value."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(part.value if isinstance(part, ast.Constant) else "#" * VALUE_COLUMNS
                       for part in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _message_text(node.left), _message_text(node.right)
        return None if left is None or right is None else left + right
    return None


def _shown_messages(source):
    """(line number, text as shown) of every assertion message, raised error and print in source."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Assert) and node.msg is not None:
            text = _message_text(node.msg)
            prefix = "AssertionError: "
        elif (isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and node.exc.args
              and isinstance(node.exc.func, ast.Name)):
            text = _message_text(node.exc.args[0])
            prefix = f"{node.exc.func.id}: "
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print":
            parts = [_message_text(arg) for arg in node.args]
            text = " ".join(part if part is not None else "#" * VALUE_COLUMNS for part in parts)
            prefix = ""
        else:
            continue
        if text is not None:
            yield node.lineno, prefix + text


@pytest.mark.parametrize("path", ASSIGNMENT_NOTEBOOKS, ids=[p.parent.name for p in ASSIGNMENT_NOTEBOOKS])
def test_problem_set_messages_fit_the_output_area(path):
    too_wide = []
    for cell in nbformat.read(path, as_version=4).cells:
        nbgrader = cell.metadata.get("nbgrader", {})
        if cell.cell_type != "code" or nbgrader.get("solution"):
            continue  # students never see the reference answers' own messages
        for line_number, text in _shown_messages(cell.source):
            width = max(len(line) for line in text.split("\n"))
            if width > MAX_COLUMNS:
                too_wide.append(f"{nbgrader.get('grade_id', cell.id)} line {line_number}: {width} columns")
    assert not too_wide, (
        f"{path.relative_to(REPO_ROOT)}: messages wider than {MAX_COLUMNS} columns (break them with \\n): {too_wide}")
