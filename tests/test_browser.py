"""End to end: notebooks run in JupyterLab in a real browser and their widgets respond.

One JupyterLab server (module-scoped) serves a temporary folder for all tests here:

* a copy of ``course/00_start_here.ipynb`` (the committed notebook stays output-free):
  headless Chromium runs all cells through the Run menu, moves the blur slider with
  the arrow keys, and checks that the picture and the caption change;
* a small notebook written by the test that shows the sliding-window stepper and the
  convolution explorer: the test steps the kernel, flips it, plays it to the end,
  switches the padding and types a bad kernel, and checks every caption and picture.

Screenshots land in ``tests/artifacts/``.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import time

import nbformat
import pytest
from browser_helpers import chromium_page, find_chromium, jupyter_lab
from conftest import ARTIFACTS, REPO_ROOT

pytestmark = [pytest.mark.browser, pytest.mark.slow]

START_PAGE = REPO_ROOT / "course" / "00_start_here.ipynb"
WIDGET = ".cnn-course-blur-explorer"
STEPPER = ".cnn-course-sliding-window-stepper"
EXPLORER = ".cnn-course-convolution-explorer"
WIDGETS_NOTEBOOK = "convolution_widgets.ipynb"
# Short play interval: 15 steps still take a few seconds of round trips to the kernel.
WIDGETS_NOTEBOOK_CELLS = [
    "from cnn_course.widgets import convolution_explorer, sliding_window_stepper",
    "stepper = sliding_window_stepper(interval_ms=150)\nstepper",
    'explorer = convolution_explorer(source="square")\nexplorer',
]
# Generous for a 2-core machine: the setup check imports TensorFlow and loads every data set.
RUN_ALL_TIMEOUT_MS = 240_000
KERNEL_IDLE_JS = r"""() => {
    const bar = document.querySelector(".jp-StatusBar-Widget");
    return bar !== null && /(^|\n)(?!No Kernel)[^\n|]+ \| Idle(\n|$)/.test(bar.innerText);
}"""


def _sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """One JupyterLab server for every test in this module (starting one takes seconds)."""
    find_chromium()  # skip (or fail on CI) before starting a server for nothing
    root = tmp_path_factory.mktemp("root")
    (root / "course").mkdir()
    shutil.copy2(START_PAGE, root / "course" / START_PAGE.name)
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in WIDGETS_NOTEBOOK_CELLS])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)",
                                       "language": "python"}
    nbformat.write(notebook, root / WIDGETS_NOTEBOOK)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with jupyter_lab(root, tmp_path_factory.mktemp("state")) as server:
        yield server


def open_and_run_all(page, server, relative_path: str, *, workspace: str):
    """Open a notebook, wait for its kernel, Run ▸ Run All Cells, and check that every cell ran.

    Returns the notebook panel's locator.
    """
    page.goto(server.lab_url(relative_path, workspace=workspace))
    notebook = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
    notebook.locator(".jp-Cell").first.wait_for(timeout=60_000)
    # Wait until the kernel is connected and idle. (The toolbar's execution indicator
    # says "idle" even before a kernel exists, so read the status bar instead, which
    # goes "No Kernel | Initializing" ... "Python 3 (ipykernel) | Idle".)
    page.wait_for_function(KERNEL_IDLE_JS, timeout=90_000)

    # Run ▸ Run All Cells, the way a student would.
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()

    _wait_until(_run_finished(notebook), "Run All Cells to finish", timeout=RUN_ALL_TIMEOUT_MS / 1000)
    # JupyterLab renders a traceback as stderr text; IPython's always has this header.
    tracebacks = [
        text for text in _texts(notebook, ".jp-OutputArea-output")
        if "Traceback (most recent call last)" in text
    ]
    assert not tracebacks, f"a cell raised an error:\n{tracebacks[0][:3000]}"
    prompts = _texts(notebook, ".jp-CodeCell .jp-InputPrompt")
    assert all(re.fullmatch(r"\[\d+\]:", p.strip()) for p in prompts), f"not every code cell ran: {prompts}"
    return notebook


@pytest.mark.timeout(480)
def test_start_page_runs_and_blur_slider_updates_the_picture(lab, tmp_path):
    committed_hash = _sha256(START_PAGE)
    started = time.perf_counter()
    with chromium_page(tmp_path / "chromium-profile") as page:
        try:
            notebook = open_and_run_all(page, lab, f"course/{START_PAGE.name}", workspace="start-page")
            outputs = "\n".join(_texts(notebook, ".jp-OutputArea-output"))
            assert "All checks passed" in outputs, "the setup check did not report success"

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
    assert _sha256(START_PAGE) == committed_hash, "the committed notebook was modified"
    print(f"browser end-to-end test: {seconds:.1f} s")


@pytest.mark.timeout(300)
def test_convolution_widgets_respond_to_slider_toggle_play_buttons_and_typing(lab, tmp_path):
    from cnn_course import conv, kernels
    from cnn_course.widgets.convolution import DEFAULT_KERNEL, DEFAULT_STEPPER_IMAGE

    correlation = conv.correlate2d(DEFAULT_STEPPER_IMAGE, kernels.PRESETS[DEFAULT_KERNEL])
    convolution = conv.convolve2d(DEFAULT_STEPPER_IMAGE, kernels.PRESETS[DEFAULT_KERNEL])
    started = time.perf_counter()
    with chromium_page(tmp_path / "chromium-profile", height=1300) as page:
        try:
            notebook = open_and_run_all(page, lab, WIDGETS_NOTEBOOK, workspace="convolution-widgets")

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
        except Exception:
            page.screenshot(path=ARTIFACTS / "convolution_widgets_failure.png")
            raise
    print(f"convolution widgets in the browser: {time.perf_counter() - started:.1f} s")


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
