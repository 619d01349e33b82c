"""The Makefile: `make lab` serves the whole course, `make test-fast` skips the slow tests,
git leaves notebook outputs alone, and nothing reinstalls needlessly.

These are dry runs (``make -n``) and small git repositories in a temporary folder;
tests/test_browser.py starts `make lab` for real and drives it in a browser.
"""

from __future__ import annotations

import configparser
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from conftest import REPO_ROOT
from notebooks import find_notebooks
from traitlets.config.loader import PyFileConfigLoader

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")

START_PAGE = REPO_ROOT / "course" / "00_start_here.ipynb"
JUPYTER_CONFIG = REPO_ROOT / "jupyter_config"
VENV = Path(sys.prefix)
# With -o, make treats the install stamp as up to date: only the target's own recipe is planned.
INSTALLED = ("-o", str(VENV / ".cnn-course-installed"), f"VENV={VENV}")


def _dry_run(*arguments, cwd=REPO_ROOT):
    """What make would run, without running it (-n), as text."""
    result = subprocess.run(["make", "-n", *arguments], cwd=cwd, capture_output=True,
                            text=True, check=True)
    return result.stdout


def _installed():
    return (REPO_ROOT / ".venv" / ".cnn-course-installed").exists()


@pytest.mark.skipif(not _installed(), reason="run through `make test` (the install stamp is missing)")
def test_rerunning_make_does_not_reinstall():
    for target in ("test", "lab", "test-fast"):
        assert "pip install" not in _dry_run(target), f"`make {target}` would reinstall although nothing changed"


@pytest.mark.skipif(not _installed(), reason="run through `make test` (the install stamp is missing)")
def test_a_changed_requirements_file_triggers_an_install():
    # -W pretends the file was just modified.
    plan = _dry_run("-W", "requirements.txt", "test")
    assert "pip install -r requirements.txt" in plan
    assert "pip install --no-deps -r requirements-nodeps.txt" in plan
    assert "fetch_offline_assets.sh" in plan


def _lab_command() -> str:
    """The shell command `make lab` runs (one logical line; the install step skipped)."""
    plan = _dry_run(*INSTALLED, "lab").replace("\\\n", " ")
    commands = [line for line in plan.splitlines() if re.search(r"/jupyter lab\b", line)]
    assert len(commands) == 1, f"`make lab` should run `jupyter lab` once:\n{plan}"
    return commands[0]


def test_make_lab_runs_jupyter_with_the_course_settings_and_the_environment_on_path():
    command = _lab_command()
    # nbgrader's Formgrader runs the `alembic` program: the environment's scripts must be on PATH.
    assert f'PATH="{VENV / "bin"}:$PATH"' in command
    assert f'JUPYTER_CONFIG_PATH="{JUPYTER_CONFIG}' in command
    # A notebook given on the command line would make its folder (course/) the server's root.
    assert ".ipynb" not in command, command
    with_options = _dry_run(*INSTALLED, "lab", "LAB_ARGS=--no-browser --port=8999")
    assert "jupyter lab --no-browser --port=8999" in with_options


def _jupyter_config():
    loader = PyFileConfigLoader("jupyter_server_config.py", path=str(JUPYTER_CONFIG))
    return loader.load_config()


def test_make_lab_serves_the_repository_root_and_opens_the_start_page():
    config = _jupyter_config()
    assert Path(config.ServerApp.root_dir) == REPO_ROOT
    prefix = "/lab/tree/"
    assert config.LabApp.default_url.startswith(prefix)
    assert (REPO_ROOT / config.LabApp.default_url[len(prefix):]) == START_PAGE
    assert START_PAGE.is_file()
    # As root (Docker, cloud VMs) JupyterLab refuses to start without this.
    assert config.ServerApp.allow_root is True


def _installed_plugin_ids() -> set[str]:
    """Ids of the JupyterLab plugins in this environment: core ones and installed extensions."""
    share = VENV / "share" / "jupyter"
    bundles = [*(share / "lab" / "static").glob("*.js"), *(share / "labextensions").glob("**/static/*.js")]
    found = set()
    for bundle in bundles:
        found.update(re.findall(r'id:\s*"(@[\w.-]+/[\w.-]+:[\w.-]+)"', bundle.read_text(errors="replace")))
    return found


def test_make_lab_turns_off_the_news_pop_up_and_nbgraders_exchange_only_views():
    page_config = json.loads((JUPYTER_CONFIG / "labconfig" / "page_config.json").read_text())
    disabled = {plugin for plugin, off in page_config["disabledExtensions"].items() if off}
    assert disabled == {
        "@jupyterlab/apputils-extension:announcements",  # "get notified about Jupyter news?"
        "@jupyter/nbgrader:assignment-list",  # needs an exchange (a shared JupyterHub)
        "@jupyter/nbgrader:course-list",
    }
    installed = _installed_plugin_ids()
    assert disabled <= installed, f"no such plugin (renamed?): {sorted(disabled - installed)}"


def test_make_test_fast_leaves_out_notebooks_nbgrader_and_the_browser():
    plan = _dry_run(*INSTALLED, "test-fast")
    selection = re.search(r'pytest -m "([^"]+)"', plan)
    assert selection, plan
    markers = set(re.findall(r"not (\w+)", selection.group(1)))
    assert markers == {"notebook", "nbgrader", "browser"}
    ini = configparser.ConfigParser()
    ini.read(REPO_ROOT / "pytest.ini")
    declared = {line.split(":")[0].strip() for line in ini["pytest"]["markers"].strip().splitlines()}
    assert markers <= declared
    help_text = subprocess.run(["make", "help"], cwd=REPO_ROOT, capture_output=True, text=True, check=True).stdout
    assert "make test-fast" in help_text


def test_make_autograde_runs_the_course_grader_on_the_named_assignment():
    plan = _dry_run(*INSTALLED, "autograde", "A=ps1_convolution", "ARGS=--workers 4 --student alice bob")
    assert f"{VENV / 'bin' / 'python'} -m cnn_course.grading autograde ps1_convolution --workers 4 --student alice bob" \
        in plan, plan
    without_name = subprocess.run(["make", "-n", *INSTALLED, "autograde"], cwd=REPO_ROOT, capture_output=True, text=True)
    assert without_name.returncode != 0 and "make autograde A=ps1_convolution" in without_name.stderr
    help_text = subprocess.run(["make", "help"], cwd=REPO_ROOT, capture_output=True, text=True, check=True).stdout
    assert "make autograde A=" in help_text


def test_ci_runs_the_readme_test_command():
    readme = (REPO_ROOT / "README.md").read_text()
    ci = (REPO_ROOT / ".ci" / "run").read_text()
    assert "make lab" in readme and "make test" in readme and "make test-fast" in readme
    assert ci.strip().splitlines()[-1] == "make test"


# --- git and notebook outputs ---------------------------------------------------------


def _git(repo: Path, *arguments: str, check: bool = True) -> subprocess.CompletedProcess:
    identity = ["-c", "user.name=test", "-c", "user.email=test@example.invalid", "-c", "commit.gpgsign=false"]
    return subprocess.run(["git", *identity, *arguments], cwd=repo, capture_output=True, text=True, check=check)


def _nbstripout_extra_keys() -> str:
    match = re.search(r"filter\.nbstripout\.extrakeys '([^']*)'", _dry_run(*INSTALLED, "git-filter"))
    assert match, "the git-filter target should set filter.nbstripout.extrakeys"
    return match.group(1)


def test_every_committed_notebook_is_what_the_git_filter_would_commit():
    """Otherwise, once `make` sets up the filter, git would list these notebooks as changed."""
    notebooks = [str(path) for path in find_notebooks()]
    result = subprocess.run(
        [sys.executable, "-m", "nbstripout", "--keep-id", "--verify", "--extra-keys", _nbstripout_extra_keys(),
         *notebooks], cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, (
        "clear these notebooks' outputs (jupyter nbconvert --clear-output --inplace) "
        f"and their JupyterLab metadata:\n{result.stdout}{result.stderr}"
    )


def _run_in_jupyterlab(path: Path) -> None:
    """Change a notebook on disk the way running and saving it in JupyterLab does."""
    notebook = nbformat.read(path, as_version=4)
    for count, cell in enumerate((c for c in notebook.cells if c.cell_type == "code"), start=1):
        cell.execution_count = count
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=f"output {count}\n")]
    notebook.metadata["language_info"].update(version="3.11.7", mimetype="text/x-python",
                                              codemirror_mode={"name": "ipython", "version": 3})
    notebook.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    nbformat.write(notebook, path)


@pytest.mark.slow  # every git step runs nbstripout: about 4 s on a quiet 2-core machine
@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_running_notebooks_never_blocks_git_pull(tmp_path):
    """A student runs and saves notebooks; the course changes one of them; `git pull` still works."""
    course = tmp_path / "course"
    course.mkdir()
    for name in ("Makefile", ".gitattributes"):
        shutil.copy2(REPO_ROOT / name, course / name)
    shutil.copy2(START_PAGE, course / START_PAGE.name)
    _git(course, "init", "-q")
    _git(course, "add", "-A")
    _git(course, "commit", "-q", "-m", "course")
    student = tmp_path / "student"
    _git(tmp_path, "clone", "-q", str(course), str(student))
    subprocess.run(["make", "-s", *INSTALLED, "git-filter"], cwd=student, check=True, capture_output=True)
    assert "nbstripout" in _git(student, "config", "--local", "filter.nbstripout.clean").stdout

    notebook = student / START_PAGE.name
    _run_in_jupyterlab(notebook)
    assert _git(student, "diff", "--exit-code", check=False).returncode == 0, "git sees the outputs as a change"
    # The student also edits a cell; the course updates another cell of the same notebook.
    edited = nbformat.read(notebook, as_version=4)
    edited.cells[-1].source += "\n# my note"
    nbformat.write(edited, notebook)
    upstream = nbformat.read(course / START_PAGE.name, as_version=4)
    upstream.cells[0].source += "\n\nUpdated by the instructor."
    nbformat.write(upstream, course / START_PAGE.name)
    _git(course, "commit", "-q", "-a", "-m", "update")

    pulled = _git(student, "pull", "-q", check=False)
    assert pulled.returncode == 0, f"git pull failed:\n{pulled.stdout}{pulled.stderr}"
    merged = nbformat.read(notebook, as_version=4)
    assert "Updated by the instructor." in merged.cells[0].source, "the course's update did not arrive"
    assert merged.cells[-1].source.endswith("# my note"), "the student's edit was lost"
