"""Run a script of benchmarks/ in a subprocess, the way its smoke test needs it.

Every benchmark prints readable lines and, as its last line, one JSON object with its
figures. The smoke tests check the code path and the shape of that JSON, never the
timings (timing depends on the machine; see CONTRIBUTING.md "Benchmarks").
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import REPO_ROOT


def run_benchmark(script: str, *arguments: str, timeout: float = 600) -> tuple[list[str], dict]:
    """Run ``benchmarks/<script>`` with ``arguments``; return its printed lines and its last line as JSON.

    The script runs from the repository root with this Python and TensorFlow's C++ logging
    quietened; a non-zero exit fails the test with the end of the script's stderr.
    """
    completed = subprocess.run([sys.executable, str(REPO_ROOT / "benchmarks" / script), *arguments],
                               capture_output=True, text=True, timeout=timeout,
                               env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"), cwd=REPO_ROOT)
    assert completed.returncode == 0, f"benchmarks/{script} failed:\n{completed.stderr[-3000:]}"
    lines = completed.stdout.strip().splitlines()
    assert lines, f"benchmarks/{script} printed nothing"
    return lines, json.loads(lines[-1])
