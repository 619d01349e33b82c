"""End to end: the start page runs in JupyterLab in a real browser and its widget responds.

JupyterLab serves a temporary copy of ``course/00_start_here.ipynb`` (the committed
notebook stays output-free), headless Chromium runs all cells through the Run menu,
moves the blur slider with the arrow keys, and checks that the picture and the
caption change. Screenshots land in ``tests/artifacts/``.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import time

import pytest
from browser_helpers import chromium_page, find_chromium, jupyter_lab
from conftest import ARTIFACTS, REPO_ROOT

pytestmark = [pytest.mark.browser, pytest.mark.slow]

START_PAGE = REPO_ROOT / "course" / "00_start_here.ipynb"
WIDGET = ".cnn-course-blur-explorer"
# Generous for a 2-core machine: the setup check imports TensorFlow and loads every data set.
RUN_ALL_TIMEOUT_MS = 240_000
KERNEL_IDLE_JS = r"""() => {
    const bar = document.querySelector(".jp-StatusBar-Widget");
    return bar !== null && /(^|\n)(?!No Kernel)[^\n|]+ \| Idle(\n|$)/.test(bar.innerText);
}"""


def _sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.timeout(480)
def test_start_page_runs_and_blur_slider_updates_the_picture(tmp_path):
    find_chromium()  # skip (or fail on CI) before starting a server for nothing
    committed_hash = _sha256(START_PAGE)
    root = tmp_path / "root"
    (root / "course").mkdir(parents=True)
    shutil.copy2(START_PAGE, root / "course" / START_PAGE.name)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    state = tmp_path / "state"
    state.mkdir()

    started = time.perf_counter()
    with jupyter_lab(root, state) as server, chromium_page(tmp_path / "chromium-profile") as page:
        try:
            page.goto(server.lab_url(f"course/{START_PAGE.name}"))
            notebook = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
            notebook.locator(".jp-Cell").first.wait_for(timeout=60_000)
            # Wait until the kernel is connected and idle. (The toolbar's execution indicator
            # says "idle" even before a kernel exists, so read the status bar instead, which
            # goes "No Kernel | Initializing" ... "Python 3 (ipykernel) | Idle".)
            page.wait_for_function(KERNEL_IDLE_JS, timeout=90_000)

            # Run ▸ Run All Cells, the way a student would.
            page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
            page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()

            _wait_until(
                _run_finished(notebook), "Run All Cells to finish", timeout=RUN_ALL_TIMEOUT_MS / 1000
            )
            # JupyterLab renders a traceback as stderr text; IPython's always has this header.
            tracebacks = [
                text for text in _texts(notebook, ".jp-OutputArea-output")
                if "Traceback (most recent call last)" in text
            ]
            assert not tracebacks, f"a cell raised an error:\n{tracebacks[0][:3000]}"
            prompts = _texts(notebook, ".jp-CodeCell .jp-InputPrompt")
            assert all(re.fullmatch(r"\[\d+\]:", p.strip()) for p in prompts), (
                f"not every code cell ran: {prompts}"
            )
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
