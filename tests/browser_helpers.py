"""Run JupyterLab and a headless Chromium for end-to-end tests of the notebooks.

Used by tests/test_browser.py. Nothing is downloaded: the browser is the system's
Chromium (``$CHROMIUM``, /usr/bin/chromium, or ``chromium`` on the PATH), and the
JupyterLab server is this Python's, so the widget extension installed in the venv
is found (``JUPYTER_CONFIG_DIR``/``JUPYTER_DATA_DIR`` are deliberately left alone).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
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

# JupyterLab settings for a quiet, deterministic session: no news or update pop-ups
# (they would try to reach the internet), no autosave of the notebook under test.
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
}


def find_chromium() -> str:
    """Path of the system's Chromium, or skip the test (fail it when ``$CI`` is set)."""
    candidates = [os.environ.get("CHROMIUM"), "/usr/bin/chromium"]
    candidates += [shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome")]
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    _skip_or_fail_on_ci(
        "no Chromium found (looked at $CHROMIUM, /usr/bin/chromium and the PATH); "
        "install it with `sudo make system-deps` (Debian package chromium)"
    )


def _skip_or_fail_on_ci(reason: str):
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


def _status_ok(url: str, token: str) -> bool:
    request = urllib.request.Request(f"{url}/api/status", headers={"Authorization": f"token {token}"})
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            return response.status == 200 and "started" in json.load(response)
    except (urllib.error.URLError, OSError, ValueError):
        return False


@contextlib.contextmanager
def jupyter_lab(root_dir: Path, state_dir: Path, *, startup_timeout: float = 90) -> Iterator[LabServer]:
    """Start JupyterLab on a free local port serving ``root_dir``; stop it (and its kernels) after.

    ``state_dir`` receives the server's log, runtime files, workspaces and settings,
    so the user's own JupyterLab state is neither used nor changed.
    """
    token = secrets.token_hex(16)
    port = _free_port()
    settings_dir = state_dir / "lab-settings"
    for name, values in LAB_SETTINGS.items():
        path = settings_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    env = dict(os.environ)
    env["JUPYTER_RUNTIME_DIR"] = str(state_dir / "runtime")
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    env.pop("MPLBACKEND", None)  # let the kernel use the notebook's inline backend, as for a student
    log_path = state_dir / "jupyter-lab.log"
    command = [
        sys.executable, "-m", "jupyter", "lab",
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root_dir}",
        f"--LabApp.user_settings_dir={settings_dir}",
        f"--LabApp.workspaces_dir={state_dir / 'workspaces'}",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")  # CI containers run as root
    with open(log_path, "wb") as log:
        # A new session makes the server and the kernels it starts one process group,
        # which the finally block can end without touching anything else.
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=root_dir,
            start_new_session=True,
        )
    server = LabServer(f"http://127.0.0.1:{port}", token, process, log_path)
    try:
        deadline = time.monotonic() + startup_timeout
        while not _status_ok(server.url, token):
            if process.poll() is not None:
                pytest.fail(f"JupyterLab exited with code {process.returncode}:\n{server.log_tail()}")
            if time.monotonic() > deadline:
                pytest.fail(f"JupyterLab did not answer within {startup_timeout} s:\n{server.log_tail()}")
            time.sleep(0.5)
        yield server
    finally:
        _stop(server)


def _stop(server: LabServer) -> None:
    """Ask the server to shut down (it stops its kernels), then make sure the group is gone."""
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
        _skip_or_fail_on_ci("the Python package playwright is not installed (pip install playwright)")
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
