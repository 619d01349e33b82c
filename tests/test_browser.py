"""End to end: the course served by `make lab`, driven in a real headless Chromium.

One server for every test here (module-scoped), started by the Makefile's own `make lab`
in a committed git copy of the repository (so saved notebooks and nbgrader's gradebook
land in that copy, never in the checkout):

* the URL `make lab` prints opens the start page; Run ▸ Run All Cells runs it (this is
  the start page's only run in the suite: the saved notebook must hold no error output,
  and its run time goes into the notebook report); git sees no change after saving;
  the blur slider, moved with the arrow keys, changes the picture and the caption;
* a student follows the start page's PS1 link into the problem set, and an instructor
  opens Nbgrader ▸ Formgrader and sees every assignment in solutions/;
* a small notebook written by the test shows the sliding-window stepper and the
  convolution explorer: the test steps the kernel, flips it, plays it to the end,
  switches the padding and types a bad kernel, and checks every caption and picture.

Screenshots land in ``tests/artifacts/``.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest
from browser_helpers import LabServer, chromium_page, find_chromium, make_lab, skip_or_fail_on_ci
from conftest import ARTIFACTS, REPO_ROOT

pytestmark = [pytest.mark.browser, pytest.mark.slow]

START_PAGE = REPO_ROOT / "course" / "00_start_here.ipynb"
START_PAGE_KEY = START_PAGE.relative_to(REPO_ROOT).as_posix()  # "course/00_start_here.ipynb"
PS1 = "assignments/ps1_convolution/ps1_convolution.ipynb"
PS3 = "assignments/ps3_deeper_networks/ps3_deeper_networks.ipynb"
WIDGET = ".cnn-course-blur-explorer"
STEPPER = ".cnn-course-sliding-window-stepper"
EXPLORER = ".cnn-course-convolution-explorer"
RF_EXPLORER = ".cnn-course-receptive-field"
WIDGETS_NOTEBOOK = "convolution_widgets.ipynb"
# Short play interval: 15 steps still take a few seconds of round trips to the kernel.
WIDGETS_NOTEBOOK_CELLS = [
    "from cnn_course.widgets import convolution_explorer, receptive_field_explorer, sliding_window_stepper",
    "stepper = sliding_window_stepper(interval_ms=150)\nstepper",
    'explorer = convolution_explorer(source="square")\nexplorer',
    'rf_explorer = receptive_field_explorer(photo="camera")\nrf_explorer',
]
# Generous for a 2-core machine: the setup check imports TensorFlow and loads every data set.
RUN_ALL_TIMEOUT_MS = 240_000
KERNEL_IDLE_JS = r"""() => {
    const bar = document.querySelector(".jp-StatusBar-Widget");
    return bar !== null && /(^|\n)(?!No Kernel)[^\n|]+ \| Idle(\n|$)/.test(bar.innerText);
}"""
NEWS_QUESTION = "Would you like to get notified about official Jupyter news?"


def _sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _assignments(root: Path) -> set[str]:
    """nbgrader's assignments: the folders of solutions/ that hold a notebook."""
    return {folder.name for folder in (root / "solutions").iterdir()
            if folder.is_dir() and any(folder.glob("*.ipynb"))}


def _grading_state(root: Path) -> dict[str, float]:
    """Every file nbgrader keeps under ``root``/nbgrader, with its modification time."""
    folder = root / "nbgrader"
    return {str(p.relative_to(folder)): p.stat().st_mtime for p in folder.rglob("*")} if folder.exists() else {}


def _git(repo: Path, *arguments: str) -> subprocess.CompletedProcess:
    identity = ["-c", "user.name=browser test", "-c", "user.email=test@example.invalid", "-c", "commit.gpgsign=false"]
    return subprocess.run(["git", *identity, *arguments], cwd=repo, capture_output=True, text=True, check=False)


def _clone_of_the_working_tree(destination: Path) -> Path:
    """The repository's files as they are now (tracked and new, not ignored), committed in a new git repository.

    A student's clone, with the developer's uncommitted changes: `make lab` sets up
    its git filter there, the server serves it, and whatever the server writes (saved
    notebooks, nbgrader's gradebook) stays in it.
    """
    if shutil.which("git") is None:
        skip_or_fail_on_ci("`git` is not installed")
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=REPO_ROOT, capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = REPO_ROOT / name
        if source.is_file():  # a tracked file deleted in the working tree is listed too
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in WIDGETS_NOTEBOOK_CELLS])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)",
                                       "language": "python"}
    nbformat.write(notebook, destination / WIDGETS_NOTEBOOK)
    for arguments in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "the course as a student clones it"]):
        result = _git(destination, *arguments)
        assert result.returncode == 0, f"git {' '.join(arguments)}: {result.stderr}"
    return destination


@dataclass
class Course:
    """The course's git clone and the `make lab` server that serves it."""

    clone: Path
    server: LabServer


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """One `make lab` server for every test in this module (starting one takes seconds)."""
    find_chromium()  # skip (or fail on CI) before starting a server for nothing
    clone = _clone_of_the_working_tree(tmp_path_factory.mktemp("clone"))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with make_lab(clone, tmp_path_factory.mktemp("state")) as server:
        yield Course(clone, server)


def test_make_lab_serves_the_repository_and_prints_the_start_pages_url(course):
    server = course.server
    assert server.printed_url.startswith(f"{server.url}/lab/tree/{START_PAGE_KEY}?token="), (
        f"`make lab` should print a URL that opens the start page, not {server.printed_url}"
    )
    status, root = server.get_json("/api/contents")
    assert status == 200
    served = {item["name"] for item in root["content"] if item["type"] == "directory"}
    assert {"course", "assignments", "solutions"} <= served, f"the server's root folder holds only {served}"
    # The git filter `make lab` set up in the clone.
    assert "nbstripout" in _git(course.clone, "config", "--local", "filter.nbstripout.clean").stdout


def open_and_run_all(page, url: str):
    """Open a notebook's URL, wait for its kernel, Run ▸ Run All Cells, and wait until it finished.

    Returns the notebook panel's locator and the seconds Run All took.
    """
    page.goto(url)
    notebook = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
    notebook.locator(".jp-Cell").first.wait_for(timeout=60_000)
    # Wait until the kernel is connected and idle. (The toolbar's execution indicator
    # says "idle" even before a kernel exists, so read the status bar instead, which
    # goes "No Kernel | Initializing" ... "Python 3 (ipykernel) | Idle".)
    page.wait_for_function(KERNEL_IDLE_JS, timeout=90_000)

    # Run ▸ Run All Cells, the way a student would.
    started = time.perf_counter()
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
    _wait_until(_run_finished(notebook), "Run All Cells to finish", timeout=RUN_ALL_TIMEOUT_MS / 1000)
    seconds = time.perf_counter() - started
    # A quick look first: JupyterLab renders a traceback as text with IPython's header.
    tracebacks = [text for text in _texts(notebook, ".jp-OutputArea-output")
                  if "Traceback (most recent call last)" in text]
    assert not tracebacks, f"a cell raised an error:\n{tracebacks[0][:3000]}"
    return notebook, seconds


def save_and_read(page, path: Path) -> nbformat.NotebookNode:
    """File ▸ Save, wait until the file on disk changed, and read it back."""
    before = path.stat().st_mtime_ns
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^File$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Save( Notebook)?$")).click()
    _wait_until(lambda: path.stat().st_mtime_ns != before, f"{path.name} to be saved")
    time.sleep(0.5)  # let the server finish writing
    return nbformat.read(path, as_version=4)


def problems_in_outputs(notebook: nbformat.NotebookNode) -> list[str]:
    """Every code cell that did not run, raised an error or printed a traceback, read from the saved file.

    (The file holds every cell's outputs; JupyterLab's page may not render cells
    scrolled out of view.)
    """
    problems = []
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        if cell.execution_count is None:
            problems.append(f"cell {index} did not run")
        for output in cell.outputs:
            if output.output_type == "error":
                problems.append(f"cell {index} raised {output.ename}: {output.evalue}")
            elif output.output_type == "stream" and "Traceback (most recent call last)" in output.text:
                problems.append(f"cell {index} printed a traceback:\n{output.text[-2000:]}")
    return problems


def write_widget_notebook(course, name: str, setup: str, widget_cell: str, *, widget_import: str) -> dict:
    """Write a two-cell notebook (set-up, then the widget) into the course and run the set-up here too.

    Returns the set-up's variables, computed in this process from the same seeded code (without
    ``widget_import``), so that the test can work out the captions the kernel should show.
    """
    assert widget_import in setup, f"the set-up should import the widget with {widget_import!r}"
    notebook_file = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(setup),
                                                    nbformat.v4.new_code_cell(widget_cell)])
    notebook_file.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)",
                                            "language": "python"}
    nbformat.write(notebook_file, course.clone / name)
    values: dict = {}
    exec(setup.replace(widget_import, ""), values)  # noqa: S102 - the test's own set-up code
    return values


def run_widget_notebook(page, course, name: str, workspace: str):
    """Open the notebook in JupyterLab, Run All, check every cell ran cleanly; return the notebook panel."""
    notebook, _ = open_and_run_all(page, course.server.lab_url(name, workspace=workspace))
    problems = problems_in_outputs(save_and_read(page, course.clone / name))
    assert not problems, f"{name} did not run cleanly:\n" + "\n".join(problems)
    return notebook


@pytest.mark.timeout(480)
def test_start_page_runs_and_blur_slider_updates_the_picture(course, notebook_times, tmp_path):
    committed_hash = _sha256(START_PAGE)
    saved_path = course.clone / START_PAGE_KEY
    started = time.perf_counter()
    with chromium_page(tmp_path / "chromium-profile") as page:
        try:
            # The URL `make lab` printed, as a student would paste it.
            notebook, run_seconds = open_and_run_all(page, course.server.printed_url)
            saved = save_and_read(page, saved_path)
            problems = problems_in_outputs(saved)
            assert not problems, "the start page did not run cleanly:\n" + "\n".join(problems)
            notebook_times[START_PAGE_KEY] = run_seconds
            printed = "".join(o.get("text", "") for cell in saved.cells if cell.cell_type == "code"
                              for o in cell.outputs)
            assert "All checks passed" in printed, "the setup check did not report success"
            # The student keeps the outputs; git sees no change (the nbstripout filter of `make lab`).
            assert sum(len(cell.get("outputs", [])) for cell in saved.cells) > 0
            diff = _git(course.clone, "diff", "--exit-code", "--stat", "--", START_PAGE_KEY)
            assert diff.returncode == 0, f"git sees the saved outputs as a change:\n{diff.stdout}{diff.stderr}"
            assert NEWS_QUESTION not in page.content(), "JupyterLab's news pop-up greets the student"

            widget = notebook.locator(WIDGET)
            widget.scroll_into_view_if_needed()
            handle = widget.locator(".noUi-handle")
            handle.wait_for(timeout=60_000)
            picture = widget.locator("img.cnn-course-picture")
            caption = widget.locator(".cnn-course-caption")
            _wait_until(lambda: caption.text_content().startswith("σ = 0.0 px"), "the initial caption")

            page.get_by_text("All checks passed").scroll_into_view_if_needed()
            page.screenshot(path=ARTIFACTS / "start_here_setup_check.png")
            widget.scroll_into_view_if_needed()
            page.screenshot(path=ARTIFACTS / "start_here_before.png")
            before_src = picture.get_attribute("src")
            before_caption = caption.text_content()
            before_pixels = picture.screenshot()

            # Move the slider the keyboard way: focus the handle, four steps of 0.5 to the right.
            handle.click()
            for _ in range(4):
                page.keyboard.press("ArrowRight")
            _wait_until(lambda: picture.get_attribute("src") != before_src, "the picture to change")
            _wait_until(lambda: caption.text_content().startswith("σ = 2.0 px"), "the caption to say σ = 2.0")

            after_caption = caption.text_content()
            after_pixels = picture.screenshot()
            page.screenshot(path=ARTIFACTS / "start_here_after.png")
            widget.screenshot(path=ARTIFACTS / "blur_widget_after.png")
        except Exception:
            page.screenshot(path=ARTIFACTS / "start_here_failure.png")
            raise
    seconds = time.perf_counter() - started

    assert widget_readout_changed(before_caption, after_caption)
    assert before_pixels != after_pixels, "the slider moved but the picture on screen looks the same"
    assert _sha256(START_PAGE) == committed_hash, "the notebook in the checkout was modified"
    print(f"start page in the browser: Run All {run_seconds:.1f} s, whole test {seconds:.1f} s")


def _open_from_start_page(page, course, assignment):
    """Follow the start page's link to `assignment` and wait until its first cell shows."""
    page.goto(course.server.lab_url(START_PAGE_KEY, workspace="links"))
    start_page = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
    # JupyterLab resolves the link ../assignments/... to the server's /files/assignments/...
    link = start_page.locator(f'.jp-RenderedMarkdown a[href*="/files/{assignment}"]').first
    link.wait_for(state="attached", timeout=60_000)
    link.scroll_into_view_if_needed()
    link.click()
    current_tab = page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab.lm-mod-current")
    _wait_until(lambda: current_tab.text_content().strip() == assignment.rsplit("/", 1)[1],
                f"the notebook {assignment} to open in a tab")
    opened = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
    opened.locator(".jp-Cell").first.wait_for(timeout=60_000)
    first_cell = nbformat.read(course.clone / assignment, as_version=4).cells[0].source.splitlines()[0]
    _wait_until(lambda: first_cell.lstrip("# ") in (opened.locator(".jp-Cell").first.text_content() or ""),
                f"the first cell of {assignment}")
    assert page.locator(".jp-Dialog").count() == 0, page.locator(".jp-Dialog").first.text_content()


@pytest.mark.timeout(300)
def test_a_student_reaches_ps1_and_ps3_and_an_instructor_sees_every_assignment_in_the_formgrader(course, tmp_path):
    server = course.server
    expected = _assignments(course.clone)
    assert {"ps0_images", "ps1_convolution", "ps2_keras_cnn", "ps3_deeper_networks"} <= expected
    checkout_grading_state = _grading_state(REPO_ROOT)
    with chromium_page(tmp_path / "chromium-profile") as page:
        try:
            # --- the student: start page -> PS1, and back on the start page -> PS3 (week 4)
            _open_from_start_page(page, course, PS1)
            page.screenshot(path=ARTIFACTS / "start_here_to_ps1.png")
            _open_from_start_page(page, course, PS3)
            page.screenshot(path=ARTIFACTS / "start_here_to_ps3.png")

            # --- the instructor: Nbgrader ▸ Formgrader lists every assignment
            page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Nbgrader$")).click()
            items = [t.strip() for t in _texts(page.locator(".lm-Menu").last, ".lm-Menu-itemLabel")]
            assert "Formgrader" in items, f"the Nbgrader menu offers {items}"
            assert "Assignment List" not in items and "Course List" not in items, (
                f"`make lab` should hide nbgrader's exchange-only views: the menu offers {items}"
            )
            page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Formgrader$")).click()
            # In the full suite on a busy machine JupyterLab twice made the start page current again
            # after the Formgrader had opened (the tab was there, its list hidden behind the start
            # page): bring the Formgrader's tab back to the front until every assignment shows.
            tab = page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text=re.compile(r"^Formgrader$"))
            tab.wait_for(timeout=30_000)
            current_tab = page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab.lm-mod-current")
            formgrader = page.frame_locator("iframe").last

            def listed_in_front(name):
                if (current_tab.text_content() or "").strip() != "Formgrader":
                    tab.click()
                    return False
                return formgrader.get_by_text(name, exact=True).first.is_visible()

            for name in sorted(expected):
                _wait_until(lambda name=name: listed_in_front(name), f"the Formgrader to list {name}", timeout=90)
            page.screenshot(path=ARTIFACTS / "formgrader_assignments.png")
        except Exception:
            page.screenshot(path=ARTIFACTS / "links_and_formgrader_failure.png")
            raise

    status, listed = server.get_json("/formgrader/api/assignments")
    assert status == 200, f"the formgrader's API answered {status}:\n{server.log_tail()}"
    assert {assignment["name"] for assignment in listed} == expected
    # Grading state went to the clone, not to the checkout.
    assert (course.clone / "nbgrader" / "gradebook.db").is_file()
    assert _grading_state(REPO_ROOT) == checkout_grading_state, "the test changed the checkout's nbgrader/ folder"


@pytest.mark.timeout(300)
def test_convolution_widgets_respond_to_slider_toggle_play_buttons_and_typing(course, tmp_path):
    from cnn_course import conv, kernels
    from cnn_course.widgets.convolution import DEFAULT_KERNEL
    from cnn_course.widgets.sliding_window import DEFAULT_STEPPER_IMAGE

    correlation = conv.correlate2d(DEFAULT_STEPPER_IMAGE, kernels.PRESETS[DEFAULT_KERNEL])
    convolution = conv.convolve2d(DEFAULT_STEPPER_IMAGE, kernels.PRESETS[DEFAULT_KERNEL])
    started = time.perf_counter()
    with chromium_page(tmp_path / "chromium-profile", height=1300) as page:
        try:
            url = course.server.lab_url(WIDGETS_NOTEBOOK, workspace="convolution-widgets")
            notebook, _ = open_and_run_all(page, url)
            saved = save_and_read(page, course.clone / WIDGETS_NOTEBOOK)
            problems = problems_in_outputs(saved)
            assert not problems, "the widgets notebook did not run cleanly:\n" + "\n".join(problems)

            # --- the sliding-window stepper
            stepper = notebook.locator(STEPPER)
            picture = stepper.locator("img.cnn-course-picture")
            caption = stepper.locator(".cnn-course-caption")
            handle = stepper.locator(".noUi-handle")
            handle.wait_for(timeout=60_000)
            _wait_until(lambda: caption.text_content().startswith("step 1 of 16, cross-correlation"),
                        "the stepper's first caption")
            first_src = picture.get_attribute("src")

            # Five steps to the right: the window is at output[1, 1].
            handle.click()
            for _ in range(5):
                page.keyboard.press("ArrowRight")
            _wait_until(lambda: caption.text_content().startswith("step 6 of 16, cross-correlation"),
                        "the caption to say step 6")
            assert picture.get_attribute("src") != first_src
            assert _caption_total(caption.text_content()) == correlation[1, 1]
            stepper.screenshot(path=ARTIFACTS / "stepper_step6.png")
            step6_src = picture.get_attribute("src")

            stepper.get_by_role("button", name="flip kernel (true convolution)").click()
            _wait_until(lambda: caption.text_content().startswith("step 6 of 16, convolution (kernel rotated"),
                        "the caption to say convolution")
            assert picture.get_attribute("src") != step6_src
            assert _caption_total(caption.text_content()) == convolution[1, 1] == -correlation[1, 1] != 0

            # Play runs the remaining steps by itself and stops at the last one.
            stepper.locator(".widget-play button").first.click()
            _wait_until(lambda: caption.text_content().startswith("step 16 of 16, convolution"),
                        "play to reach the last step", timeout=90)
            assert _caption_total(caption.text_content()) == convolution[3, 3]
            stepper.screenshot(path=ARTIFACTS / "stepper_played_flipped.png")

            # --- the convolution explorer
            explorer = notebook.locator(EXPLORER)
            explorer.scroll_into_view_if_needed()
            picture = explorer.locator("img.cnn-course-picture")
            caption = explorer.locator(".cnn-course-caption")
            _wait_until(lambda: caption.text_content().startswith("8×8 input → 6×6 output (padding valid"),
                        "the explorer's first caption")
            valid_src = picture.get_attribute("src")

            explorer.locator(".widget-toggle-buttons button", has_text=re.compile(r"^full$")).click()
            _wait_until(lambda: caption.text_content().startswith("8×8 input → 10×10 output (padding full"),
                        "the caption to show full padding")
            assert picture.get_attribute("src") != valid_src
            explorer.screenshot(path=ARTIFACTS / "explorer_full_padding.png")
            full_src = picture.get_attribute("src")

            weights = explorer.locator(".widget-text input")
            weights.fill("1 2 3; 4 5")
            weights.press("Enter")
            _wait_until(lambda: caption.text_content().startswith("⚠ every row of the kernel needs the same"),
                        "the caption to explain the bad kernel")
            assert picture.get_attribute("src") != full_src
            assert explorer.locator("select").nth(1).input_value() == "custom"
            explorer.screenshot(path=ARTIFACTS / "explorer_bad_kernel.png")

            # --- the receptive-field explorer: a stack it cannot read gets a caption that
            # wraps (no sideways scrolling), and the preset menu names the typed stack.
            rf_explorer = notebook.locator(RF_EXPLORER)
            rf_explorer.scroll_into_view_if_needed()
            caption = rf_explorer.locator(".cnn-course-caption")
            caption.wait_for(timeout=60_000)
            stack = rf_explorer.locator(".widget-text input")
            stack.fill("c3 q9")
            stack.press("Enter")
            _wait_until(lambda: caption.text_content().startswith("⚠ cannot read layer 2"),
                        "the caption to explain the unreadable layer")
            for scope in (caption, rf_explorer.locator(".cnn-course-hint")):
                scroll, client = scope.evaluate("e => [e.scrollWidth, e.clientWidth]")
                assert scroll <= client, f"{scope} scrolls sideways: {scroll} px of text in {client} px"
            assert rf_explorer.locator("select").first.input_value() == "(your own stack)", "the preset menu went blank"
            rf_explorer.screenshot(path=ARTIFACTS / "receptive_field_bad_stack.png")
        except Exception:
            page.screenshot(path=ARTIFACTS / "convolution_widgets_failure.png")
            raise
    print(f"convolution widgets in the browser: {time.perf_counter() - started:.1f} s")


@pytest.mark.timeout(300)
def test_neighbour_explorer_follows_the_query_slider_and_the_metric_buttons(course, tmp_path):
    from cnn_course.widgets import neighbours_view

    # Tiny seeded images and embeddings: 12 queries (a slider, not a menu), 30 gallery images.
    setup = "\n".join([
        "import numpy as np",
        "from cnn_course.widgets import neighbour_explorer",
        "rng = np.random.default_rng(5)",
        "images = rng.integers(0, 256, (42, 8, 8), dtype=np.uint8)",
        "embeddings = rng.normal(size=(42, 16))",
        "labels = (rng.integers(0, 3, 12), rng.integers(0, 3, 30))",
        'names = ["cat", "dog", "bird"]',
    ])
    widget_cell = ("explorer = neighbour_explorer(images[:12], embeddings[:12], images[12:], embeddings[12:], "
                   "labels=labels, class_names=names, k=4)\nexplorer")
    name = "neighbours_widget.ipynb"
    # The captions the kernel should show are computed here from the same seeded data.
    values = write_widget_notebook(course, name, setup, widget_cell,
                                   widget_import="from cnn_course.widgets import neighbour_explorer")
    images, embeddings = values["images"], values["embeddings"]

    def expected(query: int, metric: str) -> str:
        return neighbours_view(query, images[:12], embeddings[:12], images[12:], embeddings[12:], 4, metric,
                               labels=values["labels"], class_names=values["names"]).caption

    started = time.perf_counter()
    with chromium_page(tmp_path / "chromium-profile") as page:
        try:
            notebook = run_widget_notebook(page, course, name, workspace="neighbours")
            explorer = notebook.locator(".cnn-course-neighbours")
            picture = explorer.locator("img.cnn-course-picture")
            caption = explorer.locator(".cnn-course-caption")
            query_handle = explorer.locator(".noUi-handle").first  # the query slider comes before k
            query_handle.wait_for(timeout=60_000)
            _wait_until(lambda: caption.text_content() == expected(0, "euclidean"), "the first caption")
            explorer.screenshot(path=ARTIFACTS / "neighbours_query0.png")
            before_src = picture.get_attribute("src")
            before_pixels = picture.screenshot()

            query_handle.click()
            for _ in range(2):
                page.keyboard.press("ArrowRight")
            _wait_until(lambda: caption.text_content() == expected(2, "euclidean"), "the caption of query 2")
            _wait_until(lambda: picture.get_attribute("src") != before_src, "the picture to change")
            after_pixels = picture.screenshot()
            explorer.screenshot(path=ARTIFACTS / "neighbours_query2.png")
            query2_src = picture.get_attribute("src")

            explorer.locator(".widget-toggle-buttons button", has_text=re.compile(r"^cosine$")).click()
            _wait_until(lambda: caption.text_content() == expected(2, "cosine"), "the caption to use cosine")
            _wait_until(lambda: picture.get_attribute("src") != query2_src, "the picture to change with the metric")
            scroll, client = caption.evaluate("e => [e.scrollWidth, e.clientWidth]")
            assert scroll <= client, f"the caption scrolls sideways: {scroll} px of text in {client} px"
            explorer.screenshot(path=ARTIFACTS / "neighbours_query2_cosine.png")
        except Exception:
            page.screenshot(path=ARTIFACTS / "neighbours_failure.png")
            raise
    assert before_pixels != after_pixels, "the query slider moved but the picture on screen looks the same"
    print(f"neighbour explorer in the browser: {time.perf_counter() - started:.1f} s")


def _caption_total(caption: str) -> float:
    """The value of the current output cell: the number after the last "=" of the stepper's caption."""
    return float(caption.rsplit("=", 1)[1])


def widget_readout_changed(before: str, after: str) -> bool:
    """The caption's sharpness fell when the blur went up."""
    number = re.compile(r"sharpness (\d+\.\d+)")
    sharp_before = float(number.search(before).group(1))
    sharp_after = float(number.search(after).group(1))
    return sharp_after < sharp_before


def _texts(scope, selector: str) -> list[str]:
    """textContent of every match, including cells scrolled out of view.

    (JupyterLab skips rendering off-screen cells, so their ``innerText`` is empty.)
    """
    return scope.locator(selector).evaluate_all("elements => elements.map(e => e.textContent)")


def _run_finished(notebook):
    """Run All has finished or stopped: no cell is queued or running ([*]), the first one ran.

    After an error JupyterLab un-queues the remaining cells (their prompt goes back to [ ]).
    """

    def finished() -> bool:
        prompts = [p.strip() for p in _texts(notebook, ".jp-CodeCell .jp-InputPrompt")]
        return bool(prompts) and re.fullmatch(r"\[\d+\]:", prompts[0]) is not None and not any(
            "*" in prompt for prompt in prompts
        )

    return finished


def _wait_until(condition, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.2)


def move_first_slider_and_check(page, widget, *, presses: int, caption_before: str, caption_after: str,
                                what: str, shots: tuple[str, str]) -> None:
    """Press → ``presses`` times on the widget's first slider; check its caption and its picture follow.

    The caption must read ``caption_before``, then ``caption_after``; the picture must change on
    screen, and the caption must wrap instead of scrolling sideways. ``shots`` names the two
    screenshots saved in tests/artifacts/ (before and after).
    """
    picture = widget.locator("img.cnn-course-picture")
    caption = widget.locator(".cnn-course-caption")
    handle = widget.locator(".noUi-handle").first
    handle.wait_for(timeout=60_000)
    _wait_until(lambda: caption.text_content() == caption_before, f"the first caption ({what})")
    widget.screenshot(path=ARTIFACTS / shots[0])
    before_src = picture.get_attribute("src")
    before_pixels = picture.screenshot()

    handle.click()
    for _ in range(presses):
        page.keyboard.press("ArrowRight")
    _wait_until(lambda: caption.text_content() == caption_after, f"the caption after moving the {what} slider")
    _wait_until(lambda: picture.get_attribute("src") != before_src, "the picture to change")
    scroll, client = caption.evaluate("e => [e.scrollWidth, e.clientWidth]")
    assert scroll <= client, f"the caption scrolls sideways: {scroll} px of text in {client} px"
    widget.screenshot(path=ARTIFACTS / shots[1])
    assert picture.screenshot() != before_pixels, f"the {what} slider moved but the picture on screen looks the same"


@pytest.mark.timeout(300)
def test_epsilon_explorer_follows_its_slider_on_a_photo(course, tmp_path):
    from cnn_course import adversarial
    from cnn_course.widgets.adversarial import epsilon_view, grey_level

    # A tiny seeded classifier of the cat photo at 24 px: the widget's wiring, not MobileNetV2's speed.
    setup = "\n".join([
        "import keras",
        "import numpy as np",
        "from cnn_course import pretrained",
        "from cnn_course.data import load_photo",
        "from cnn_course.widgets.adversarial import epsilon_explorer",
        "x = pretrained.preprocess(pretrained.resize_for_model(load_photo('chelsea'), 24), size=24)[0]",
        "model = keras.Sequential([keras.Input((24, 24, 3)), keras.layers.Conv2D(4, 3, activation='relu'),",
        "                          keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(6, activation='softmax')])",
        "rng = np.random.default_rng(6)",
        "model.set_weights([rng.normal(size=w.shape) for w in model.get_weights()])",
        'names = ["ant", "bee", "cat", "dog", "eel", "fox"]',
    ])
    widget_cell = "explorer = epsilon_explorer(model, x, class_names=names, levels=0.0, max_levels=8)\nexplorer"
    name = "epsilon_widget.ipynb"
    # The captions the kernel should show are computed here from the same seeded model.
    values = write_widget_notebook(course, name, setup, widget_cell,
                                   widget_import="from cnn_course.widgets.adversarial import epsilon_explorer")
    model, x = values["model"], values["x"]
    label = int(model.predict(x[None], verbose=0)[0].argmax())
    direction = adversarial.gradient_sign(model, x, label, clip=(-1.0, 1.0))

    def expected(levels: float) -> str:
        return epsilon_view(model, x, direction, levels * grey_level((-1.0, 1.0)),
                            class_names=values["names"]).caption

    started = time.perf_counter()
    with chromium_page(tmp_path / "chromium-profile") as page:
        try:
            notebook = run_widget_notebook(page, course, name, workspace="epsilon")
            # quarter grey levels: 8 presses are 2 grey levels
            move_first_slider_and_check(page, notebook.locator(".cnn-course-epsilon"), presses=8,
                                        caption_before=expected(0.0), caption_after=expected(2.0), what="ε",
                                        shots=("epsilon_0.png", "epsilon_2_levels.png"))
        except Exception:
            page.screenshot(path=ARTIFACTS / "epsilon_failure.png")
            raise
    print(f"ε explorer in the browser: {time.perf_counter() - started:.1f} s")


@pytest.mark.timeout(300)
def test_mask_viewer_follows_its_threshold_slider(course, tmp_path):
    from cnn_course.widgets.masks import mask_view

    # Tiny seeded arrays: a 32×16 image, two blocks of "nuclei" and noisy probabilities around them.
    setup = "\n".join([
        "import numpy as np",
        "from cnn_course.widgets import mask_viewer",
        "rng = np.random.default_rng(7)",
        "mask = np.zeros((32, 16), np.uint8)",
        "mask[3:12, 2:9] = 1",
        "mask[18:29, 6:15] = 1",
        "probabilities = np.clip(0.55 * mask + rng.uniform(0, 0.6, mask.shape), 0, 1)",
        "image = rng.uniform(0, 1, (32, 16, 1))",
    ])
    widget_cell = "viewer = mask_viewer(image, mask, probabilities, threshold=0.5)\nviewer"
    name = "mask_viewer_widget.ipynb"
    # The captions the kernel should show are computed here from the same seeded arrays.
    values = write_widget_notebook(course, name, setup, widget_cell,
                                   widget_import="from cnn_course.widgets import mask_viewer")

    def expected(threshold: float) -> str:
        return mask_view(values["image"], values["mask"], values["probabilities"], threshold).caption

    assert expected(0.5) != expected(0.6), "the test's arrays should score differently at the two thresholds"
    started = time.perf_counter()
    with chromium_page(tmp_path / "chromium-profile") as page:
        try:
            notebook = run_widget_notebook(page, course, name, workspace="masks")
            # steps of 0.05: two presses are 0.6
            move_first_slider_and_check(page, notebook.locator(".cnn-course-mask-viewer"), presses=2,
                                        caption_before=expected(0.5), caption_after=expected(0.6), what="threshold",
                                        shots=("mask_viewer_0.5.png", "mask_viewer_0.6.png"))
        except Exception:
            page.screenshot(path=ARTIFACTS / "mask_viewer_failure.png")
            raise
    print(f"mask viewer in the browser: {time.perf_counter() - started:.1f} s")
