"""The examples in cnn_course's docstrings run and print what they show."""

from __future__ import annotations

import doctest
import importlib
import pkgutil
import re
from pathlib import Path

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


def test_docstrings_name_notebooks_that_exist():
    # Library code names the notebook that teaches it; a renamed notebook must not leave
    # a docstring pointing nowhere.
    root = Path(cnn_course.__file__).resolve().parents[3]
    named = set()
    for source in Path(cnn_course.__file__).parent.rglob("*.py"):
        named.update(re.findall(r"course/[\w/]+\.ipynb", source.read_text(encoding="utf-8")))
    assert len(named) >= 10
    if not (root / "course").is_dir():
        pytest.skip("the package is installed outside the repository")
    missing = sorted(path for path in named if not (root / path).is_file())
    assert not missing, f"docstrings name notebooks that do not exist: {missing}"
