"""Run the course's JupyterLab and a headless Chromium for end-to-end tests of the notebooks.

Used by tests/test_browser.py. Nothing is downloaded: the browser is the system's
Chromium (``$CHROMIUM``, /usr/bin/chromium, or ``chromium`` on the PATH), and the
server is started by ``make lab`` itself, with this Python's environment as the
Makefile's ``VENV``, so the widget and nbgrader extensions installed there are
found (``JUPYTER_CONFIG_DIR``/``JUPYTER_DATA_DIR`` are deliberately left alone).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
]

# User settings for a deterministic session: no autosave, so a notebook is written only
# when a test saves it. (The news and update pop-ups are left to `make lab`'s own
# configuration, which the tests check.)
LAB_SETTINGS = {
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
}
# The address `jupyter lab` prints for the browser, token included.
PRINTED_URL = re.compile(r"(http://127\.0\.0\.1:\d+/\S*\?token=[0-9a-f]+)")


def find_chromium() -> str:
    """Path of the system's Chromium, or skip the test (fail it when ``$CI`` is set)."""
    candidates = [os.environ.get("CHROMIUM"), "/usr/bin/chromium"]
    candidates += [shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome")]
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    skip_or_fail_on_ci(
        "no Chromium found (looked at $CHROMIUM, /usr/bin/chromium and the PATH); "
        "install it with `sudo make system-deps` (Debian package chromium)"
    )


def skip_or_fail_on_ci(reason: str):
    """A missing browser skips the test on a laptop but is an error on CI (``$CI`` set)."""
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class LabServer:
    """A running JupyterLab server."""

    url: str
    token: str
    printed_url: str
    process: subprocess.Popen
    log_path: Path

    def log_tail(self, characters: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-characters:]

    def lab_url(self, relative_path: str, *, workspace: str | None = None) -> str:
        """URL that opens ``relative_path`` (below the root folder) in JupyterLab.

        With a ``workspace`` name the page opens in that (new, empty) workspace, so a
        notebook opened earlier by another test in the same server is not restored
        next to it.
        """
        where = f"workspaces/{workspace}/tree" if workspace else "tree"
        return f"{self.url}/lab/{where}/{relative_path}?token={self.token}"

    def get_json(self, path: str):
        """GET ``path`` from the server with the token; returns (HTTP status, parsed JSON body)."""
        request = urllib.request.Request(f"{self.url}{path}", headers={"Authorization": f"token {self.token}"})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, json.load(response)
        except urllib.error.HTTPError as error:
            return error.code, None


def _status_ok(url: str, token: str) -> bool:
    request = urllib.request.Request(f"{url}/api/status", headers={"Authorization": f"token {token}"})
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            return response.status == 200 and "started" in json.load(response)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _path_without_this_venv() -> str:
    """$PATH without this virtual environment's scripts, so only `make lab` can put them there.

    (nbgrader's Formgrader fails when `alembic` is not on PATH.) Outside a virtual
    environment, e.g. a conda environment, $PATH is returned unchanged.
    """
    path = os.environ.get("PATH", "")
    if sys.prefix == sys.base_prefix:
        return path
    scripts = os.path.realpath(os.path.dirname(sys.executable))
    return os.pathsep.join(entry for entry in path.split(os.pathsep)
                           if entry and os.path.realpath(entry) != scripts)


@contextlib.contextmanager
def make_lab(repo: Path, state_dir: Path, *, startup_timeout: float = 90) -> Iterator[LabServer]:
    """Start the course's JupyterLab in ``repo`` the way a student does, with `make lab`; stop it after.

    ``repo`` is a copy of the repository (the server and nbgrader write into the folder
    they serve). The Makefile gets this Python's environment as ``VENV`` (``-o`` skips
    the install step) and, through its ``LAB_ARGS`` hook, only what a test needs on
    top: no browser, a free local port, and user settings and workspaces in
    ``state_dir``, so the user's own JupyterLab state is neither used nor changed.
    Everything else, the served folder, the page it opens, the extensions it turns
    off, the ``PATH`` nbgrader needs and ``--allow-root``, comes from the Makefile and
    ``jupyter_config/``. The token is read from the URL the server prints, as a
    student would copy it.
    """
    if shutil.which("make") is None:
        skip_or_fail_on_ci("`make` is not installed")
    port = _free_port()
    settings_dir = state_dir / "lab-settings"
    for name, values in LAB_SETTINGS.items():
        path = settings_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    lab_args = [
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        f"--LabApp.user_settings_dir={settings_dir}",
        f"--LabApp.workspaces_dir={state_dir / 'workspaces'}",
    ]
    venv = Path(sys.prefix)
    command = [
        "make", "--no-print-directory", "-C", str(repo),
        "-o", str(venv / ".cnn-course-installed"),  # the environment is already installed
        "lab", f"VENV={venv}", f"LAB_ARGS={shlex.join(lab_args)}",
    ]
    env = dict(os.environ)
    env["PATH"] = _path_without_this_venv()
    env["JUPYTER_RUNTIME_DIR"] = str(state_dir / "runtime")
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    env.pop("MPLBACKEND", None)  # let the kernel use the notebook's inline backend, as for a student
    env.pop("JUPYTER_CONFIG_PATH", None)
    log_path = state_dir / "make-lab.log"
    with open(log_path, "wb") as log:
        # A new session makes make, the server and the kernels it starts one process
        # group, which the finally block can end without touching anything else.
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env,
                                   start_new_session=True)
    server = LabServer("", "", "", process, log_path)
    try:
        deadline = time.monotonic() + startup_timeout
        while True:
            printed = PRINTED_URL.search(log_path.read_text(errors="replace"))
            if printed:
                server.printed_url = printed.group(1)
                server.url = "/".join(server.printed_url.split("/", 3)[:3])  # http://127.0.0.1:PORT
                server.token = server.printed_url.rsplit("token=", 1)[1]
                if _status_ok(server.url, server.token):
                    break
            if process.poll() is not None:
                pytest.fail(f"`make lab` exited with code {process.returncode}:\n{server.log_tail()}")
            if time.monotonic() > deadline:
                pytest.fail(f"`make lab` did not serve within {startup_timeout} s:\n{server.log_tail()}")
            time.sleep(0.5)
        yield server
    finally:
        _stop(server)


def _stop(server: LabServer) -> None:
    """Ask the server to shut down (it stops its kernels), then make sure the group is gone."""
    if server.url:
        request = urllib.request.Request(
            f"{server.url}/api/shutdown", method="POST", headers={"Authorization": f"token {server.token}"}
        )
        with contextlib.suppress(urllib.error.URLError, OSError):
            urllib.request.urlopen(request, timeout=5).close()
    try:
        server.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.process.pid, signal.SIGTERM)
        try:
            server.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.process.pid, signal.SIGKILL)
            server.process.wait(timeout=10)
    # Kernels are in the server's process group; end any the shutdown left behind.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(server.process.pid, signal.SIGKILL)


@contextlib.contextmanager
def chromium_page(profile_dir: Path, *, width: int = 1400, height: int = 1000):
    """A page in headless Chromium with a fresh profile in ``profile_dir``."""
    executable = find_chromium()
    try:
        from playwright import sync_api
    except ImportError:
        skip_or_fail_on_ci("the Python package playwright is not installed (pip install playwright)")
    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile_dir),
            executable_path=executable,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": width, "height": height},
        )
        try:
            yield context.pages[0] if context.pages else context.new_page()
        finally:
            context.close()
