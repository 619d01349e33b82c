"""The README's two commands: `make lab` opens the start page, and neither reinstalls needlessly."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from conftest import REPO_ROOT

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def _dry_run(*arguments):
    """What make would run, without running it (-n), as text."""
    result = subprocess.run(["make", "-n", *arguments], cwd=REPO_ROOT, capture_output=True,
                            text=True, check=True)
    return result.stdout


def _installed():
    return (REPO_ROOT / ".venv" / ".cnn-course-installed").exists()


@pytest.mark.skipif(not _installed(), reason="run through `make test` (the install stamp is missing)")
def test_rerunning_make_does_not_reinstall():
    for target in ("test", "lab"):
        assert "pip install" not in _dry_run(target), f"`make {target}` would reinstall although nothing changed"


@pytest.mark.skipif(not _installed(), reason="run through `make test` (the install stamp is missing)")
def test_a_changed_requirements_file_triggers_an_install():
    # -W pretends the file was just modified.
    plan = _dry_run("-W", "requirements.txt", "test")
    assert "pip install -r requirements.txt" in plan
    assert "pip install --no-deps -r requirements-nodeps.txt" in plan
    assert "fetch_offline_assets.sh" in plan


def test_make_lab_opens_the_start_page():
    plan = _dry_run("-W", "requirements.txt", "lab")
    assert "jupyter lab course/00_start_here.ipynb" in plan
    assert (REPO_ROOT / "course" / "00_start_here.ipynb").exists()


def test_ci_runs_the_readme_test_command():
    readme = (REPO_ROOT / "README.md").read_text()
    ci = (REPO_ROOT / ".ci" / "run").read_text()
    assert "make lab" in readme and "make test" in readme
    assert ci.strip().splitlines()[-1] == "make test"
