"""`pip install ./utils` on its own gives a working cnn_course (for Colab or any environment)."""

from __future__ import annotations

import subprocess
import sys
import zipfile

import pytest
from conftest import REPO_ROOT

SOURCE = REPO_ROOT / "utils" / "src" / "cnn_course"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), str(REPO_ROOT / "utils")],
        check=True, capture_output=True, text=True,
    )
    (built,) = out.glob("cnn_course-*.whl")
    return built


def test_wheel_contains_every_module(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = {f"cnn_course/{p.relative_to(SOURCE).as_posix()}" for p in SOURCE.rglob("*.py")}
    assert modules and modules <= names, f"missing from the wheel: {sorted(modules - names)}"


def test_installed_wheel_imports_outside_the_repository(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--target", str(target),
                    str(wheel)], check=True)
    code = "import cnn_course, cnn_course.data as d; print(cnn_course.__file__); print(d.load_photo('coffee').shape)"
    result = subprocess.run([sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(target)!r}); {code}"],
                            capture_output=True, text=True, cwd=tmp_path, check=False)
    assert result.returncode == 0, result.stderr
    where, shape = result.stdout.strip().splitlines()[-2:]
    assert where.startswith(str(target)), f"imported the repository copy, not the wheel: {where}"
    assert shape == "(400, 600, 3)"
