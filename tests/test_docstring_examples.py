"""The examples in cnn_course's docstrings run and print what they show."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import cnn_course
import pytest

MODULES = sorted(
    info.name for info in pkgutil.walk_packages(cnn_course.__path__, prefix="cnn_course.")
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
                             verbose=False, report=True)
    assert result.failed == 0, f"{result.failed} docstring example(s) in {name} failed (see output above)"
