"""Shared pytest set-up: quiet TensorFlow, headless plots, and a run-time report."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Set before any test imports TensorFlow or matplotlib (kernels started by the
# notebook tests inherit them too).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")

REPO_ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO_ROOT / "tests" / "artifacts"

_notebook_times: dict[str, float] = {}


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def notebook_times() -> dict[str, float]:
    """Notebook path -> seconds it took to execute; printed at the end of the run."""
    return _notebook_times


def pytest_terminal_summary(terminalreporter):
    if not _notebook_times:
        return
    terminalreporter.section("notebook run times")
    for name, seconds in sorted(_notebook_times.items()):
        terminalreporter.write_line(f"{seconds:7.1f} s  {name}")
    terminalreporter.write_line(f"{sum(_notebook_times.values()):7.1f} s  total")
