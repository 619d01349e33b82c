"""Smoke test of benchmarks/attack_speed.py: its code path, not its figures (timing is never asserted)."""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
def test_attack_speed_benchmark_quick_mode_reports_every_attack():
    completed = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "attack_speed.py"), "--quick"],
                               capture_output=True, text=True, timeout=600,
                               env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"), cwd=ROOT)
    assert completed.returncode == 0, completed.stderr[-3000:]
    lines = completed.stdout.strip().splitlines()
    result = json.loads(lines[-1])
    assert list(result["mobilenet"]) == ["96"] and result["mobilenet"]["96"]["batch"] == 1
    assert result["mnist"]["batch_20"]["batch"] == 20 and result["mnist"]["batch_1"]["batch"] == 1
    for row in [*result["mobilenet"].values(), *result["mnist"].values()]:
        for attack in ("fgsm", "pgd10"):
            assert row[attack]["seconds_per_call"] > 0
            assert row[attack]["attacks_per_second"] == pytest.approx(
                row["batch"] / row[attack]["seconds_per_call"], rel=0.02)
    assert sum(line.startswith("MobileNetV2 96x96") for line in lines) == 2
    assert sum(line.startswith("MNIST, batch 20") for line in lines) == 2
