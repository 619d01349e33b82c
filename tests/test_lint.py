"""The course package, the tests and the tools pass ruff (configured in ruff.toml)."""

from __future__ import annotations

import shutil
import subprocess
import sys

from conftest import REPO_ROOT


def test_ruff_finds_nothing():
    ruff = shutil.which("ruff", path=str(REPO_ROOT / ".venv" / "bin")) or shutil.which("ruff")
    command = [ruff] if ruff else [sys.executable, "-m", "ruff"]
    targets = [p for p in ("utils", "tests", "tools", "benchmarks", "jupyter_config", "nbgrader_config.py")
               if (REPO_ROOT / p).exists()]
    result = subprocess.run([*command, "check", *targets], cwd=REPO_ROOT,
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"ruff found problems:\n{result.stdout}{result.stderr}"
